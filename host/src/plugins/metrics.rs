//! Plugin metrics: one family per measure, registered once into the agent's registry,
//! and per-plugin handles fetched once at load so the hot path only bumps atomics.
//!
//! Labels come from bounded sets only: the plugin name (a file in the plugin directory),
//! `kind` (err, trap, memory, init) and `intentional` (true, false).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels naming one plugin.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

/// Labels naming one plugin and a failure kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    plugin: String,
    kind: &'static str,
}

/// Labels naming one plugin and whether a drop was its own verdict.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DropLabels {
    plugin: String,
    intentional: &'static str,
}

type HistogramFamily = Family<PluginLabel, Histogram, fn() -> Histogram>;

fn call_duration_histogram() -> Histogram {
    // 1 µs .. ~2 s: a no-op call is a fraction of a µs, a deadline hit is hundreds of ms.
    Histogram::new(exponential_buckets(1e-6, 4.0, 11))
}

/// The plugin metric families. Cheap to clone (handles share the same series).
#[derive(Debug, Clone)]
pub struct PluginMetrics {
    calls: Family<PluginLabel, Counter>,
    drops: Family<DropLabels, Counter>,
    routes: Family<PluginLabel, Counter>,
    errors: Family<ErrorLabels, Counter>,
    timeouts: Family<PluginLabel, Counter>,
    quarantines: Family<PluginLabel, Counter>,
    quarantined: Family<PluginLabel, Gauge>,
    log_lines_dropped: Family<PluginLabel, Counter>,
    call_duration: HistogramFamily,
}

impl Default for PluginMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            drops: Family::default(),
            routes: Family::default(),
            errors: Family::default(),
            timeouts: Family::default(),
            quarantines: Family::default(),
            quarantined: Family::default(),
            log_lines_dropped: Family::default(),
            call_duration: Family::new_with_constructor(call_duration_histogram),
        }
    }
}

impl PluginMetrics {
    /// Families not registered anywhere (the CLI and tests).
    pub fn unregistered() -> Self {
        Self::default()
    }

    /// Creates the families and registers them into `registry` as `gannet_plugin_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "gannet_plugin_calls",
            "Plugin process calls",
            m.calls.clone(),
        );
        registry.register(
            "gannet_plugin_drops",
            "Records dropped at a plugin; intentional=true for its own drop verdict",
            m.drops.clone(),
        );
        registry.register("gannet_plugin_routes", "Route verdicts", m.routes.clone());
        registry.register(
            "gannet_plugin_errors",
            "Failed plugin calls by kind (err, trap, memory, init)",
            m.errors.clone(),
        );
        registry.register(
            "gannet_plugin_timeouts",
            "Plugin calls stopped at their deadline",
            m.timeouts.clone(),
        );
        registry.register(
            "gannet_plugin_quarantines",
            "Times a plugin was quarantined",
            m.quarantines.clone(),
        );
        registry.register(
            "gannet_plugin_quarantined",
            "1 while the plugin is quarantined",
            m.quarantined.clone(),
        );
        registry.register(
            "gannet_plugin_log_lines_dropped",
            "Plugin log lines dropped by the rate limit",
            m.log_lines_dropped.clone(),
        );
        registry.register(
            "gannet_plugin_call_duration_seconds",
            "Duration of one plugin process call",
            m.call_duration.clone(),
        );
        m
    }

    /// The handles of one plugin, fetched once.
    pub fn counters(&self, plugin: &str) -> PluginCounters {
        let p = || PluginLabel {
            plugin: plugin.to_string(),
        };
        let err = |kind| ErrorLabels {
            plugin: plugin.to_string(),
            kind,
        };
        let drop = |intentional| DropLabels {
            plugin: plugin.to_string(),
            intentional,
        };
        // One statement per handle: `get_or_create` returns a read guard, and a second
        // call on the same family while it is held would deadlock on the write lock.
        let calls = self.calls.get_or_create(&p()).clone();
        let drops_intentional = self.drops.get_or_create(&drop("true")).clone();
        let drops_failure = self.drops.get_or_create(&drop("false")).clone();
        let routes = self.routes.get_or_create(&p()).clone();
        let errors_err = self.errors.get_or_create(&err("err")).clone();
        let errors_trap = self.errors.get_or_create(&err("trap")).clone();
        let errors_memory = self.errors.get_or_create(&err("memory")).clone();
        let errors_init = self.errors.get_or_create(&err("init")).clone();
        let timeouts = self.timeouts.get_or_create(&p()).clone();
        let quarantines = self.quarantines.get_or_create(&p()).clone();
        let quarantined = self.quarantined.get_or_create(&p()).clone();
        let log_lines_dropped = self.log_lines_dropped.get_or_create(&p()).clone();
        let call_duration = self.call_duration.get_or_create(&p()).clone();
        PluginCounters {
            calls,
            drops_intentional,
            drops_failure,
            routes,
            errors_err,
            errors_trap,
            errors_memory,
            errors_init,
            timeouts,
            quarantines,
            quarantined,
            log_lines_dropped,
            call_duration,
        }
    }
}

/// One plugin's metric handles.
#[derive(Debug, Clone)]
pub struct PluginCounters {
    /// `process` calls.
    pub calls: Counter,
    /// Drops by the plugin's own verdict.
    pub drops_intentional: Counter,
    /// Drops by the failure policy.
    pub drops_failure: Counter,
    /// Route verdicts.
    pub routes: Counter,
    /// `process` returned `err`.
    pub errors_err: Counter,
    /// The call trapped.
    pub errors_trap: Counter,
    /// The call hit the memory limit.
    pub errors_memory: Counter,
    /// A new instance's `init` failed.
    pub errors_init: Counter,
    /// The call hit its deadline.
    pub timeouts: Counter,
    /// Times the plugin was quarantined.
    pub quarantines: Counter,
    /// 1 while quarantined.
    pub quarantined: Gauge,
    /// Log lines dropped by the rate limit.
    pub log_lines_dropped: Counter,
    /// Call latency.
    pub call_duration: Histogram,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn registered_families_show_plugin_label() -> Result<(), std::fmt::Error> {
        let mut registry = Registry::default();
        let metrics = PluginMetrics::register(&mut registry);
        let c = metrics.counters("10-filter");
        c.calls.inc();
        c.drops_intentional.inc();
        let mut text = String::new();
        encode(&mut text, &registry)?;
        assert!(
            text.contains("gannet_plugin_calls_total{plugin=\"10-filter\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("gannet_plugin_drops_total{plugin=\"10-filter\",intentional=\"true\"} 1"),
            "{text}"
        );
        Ok(())
    }
}
