//! Metrics of the discovery side: runtime RPC latency and errors, event-stream reconnects,
//! lifecycle events by kind and containers by state.
//!
//! The runtime clients and the discovery loop also run without a registry (`gannet list`),
//! so they record into one process-wide handle that `gannet run` installs with
//! [`RuntimeMetrics::install`]; until then every recording function is a no-op. Labels come
//! from bounded sets only: the RPC name, `timeout`/`rpc`, the lifecycle kind and the state.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::record::{ContainerState, Lifecycle};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallErrorLabels {
    call: &'static str,
    error: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    version: &'static str,
}

fn rpc_duration_histogram() -> Histogram {
    // 100 µs .. ~26 s: a status call takes about 0.4 ms, a list at most its 20 s timeout.
    Histogram::new(exponential_buckets(1e-4, 4.0, 10))
}

/// The discovery side's metric families.
#[derive(Debug)]
pub struct RuntimeMetrics {
    rpc_duration: Family<CallLabels, Histogram, fn() -> Histogram>,
    rpc_errors: Family<CallErrorLabels, Counter>,
    event_stream_reconnects: Counter,
    lifecycle_events: Family<EventLabels, Counter>,
    containers: Family<StateLabels, Gauge>,
    cri_api: Family<ApiLabels, Gauge>,
    cri_api_changes: Counter,
}

static METRICS: OnceLock<RuntimeMetrics> = OnceLock::new();

impl RuntimeMetrics {
    fn new() -> Self {
        Self {
            rpc_duration: Family::new_with_constructor(rpc_duration_histogram),
            rpc_errors: Family::default(),
            event_stream_reconnects: Counter::default(),
            lifecycle_events: Family::default(),
            containers: Family::default(),
            cri_api: Family::default(),
            cri_api_changes: Counter::default(),
        }
    }

    /// Starts recording and registers the families into `registry`. The handle is
    /// process-wide: a second call registers the same families into another registry.
    pub fn install(registry: &mut Registry) {
        let m = METRICS.get_or_init(Self::new);
        registry.register(
            "gannet_runtime_rpc_duration_seconds",
            "CRI RPC latency, by call",
            m.rpc_duration.clone(),
        );
        registry.register(
            "gannet_runtime_rpc_errors",
            "CRI RPCs that failed, by call and error (timeout, rpc)",
            m.rpc_errors.clone(),
        );
        registry.register(
            "gannet_runtime_event_stream_reconnects",
            "Times the containerd event stream broke and was subscribed again",
            m.event_stream_reconnects.clone(),
        );
        registry.register(
            "gannet_discovery_lifecycle_events",
            "Lifecycle events discovery emitted, by kind",
            m.lifecycle_events.clone(),
        );
        registry.register(
            "gannet_discovery_containers",
            "Containers in discovery's table, by state",
            m.containers.clone(),
        );
        registry.register(
            "gannet_runtime_cri_api",
            "1 for the CRI API version in use (negotiated at every connect), 0 for the other",
            m.cri_api.clone(),
        );
        registry.register(
            "gannet_runtime_cri_api_changes",
            "Times a reconnect negotiated another CRI API version than the connection before",
            m.cri_api_changes.clone(),
        );
    }
}

/// Records one finished runtime RPC: its latency, and the error kind when it failed.
pub(crate) fn rpc_finished(call: &'static str, elapsed: Duration, error: Option<&'static str>) {
    if let Some(m) = METRICS.get() {
        m.rpc_duration
            .get_or_create(&CallLabels { call })
            .observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            m.rpc_errors
                .get_or_create(&CallErrorLabels { call, error })
                .inc();
        }
    }
}

/// Records that the event stream broke and is being subscribed again.
pub(crate) fn event_stream_reconnected() {
    if let Some(m) = METRICS.get() {
        m.event_stream_reconnects.inc();
    }
}

/// Records the CRI API version a connect negotiated (`v1`), out of every version the
/// client speaks (`versions`: each gets its gauge, 1 for the negotiated one); `changed`
/// when it differs from the connection before. Names, not the client's type, so metrics
/// import nothing of the client that records into them.
pub(crate) fn cri_api_negotiated(version: &str, versions: &[&'static str], changed: bool) {
    let Some(m) = METRICS.get() else { return };
    for v in versions {
        m.cri_api
            .get_or_create(&ApiLabels { version: v })
            .set(i64::from(*v == version));
    }
    if changed {
        m.cri_api_changes.inc();
    }
}

/// Records one lifecycle event handed downstream.
pub(crate) fn lifecycle_event(kind: Lifecycle) {
    if let Some(m) = METRICS.get() {
        m.lifecycle_events
            .get_or_create(&EventLabels {
                event: kind.as_str(),
            })
            .inc();
    }
}

/// Sets the containers-by-state gauges from the table's current states.
pub(crate) fn containers_by_state(states: impl Iterator<Item = ContainerState>) {
    let Some(m) = METRICS.get() else { return };
    let all = [
        ContainerState::Created,
        ContainerState::Running,
        ContainerState::Exited,
        ContainerState::Unknown,
    ];
    let mut counts = [0i64; 4];
    for state in states {
        if let Some(i) = all.iter().position(|s| *s == state) {
            counts[i] += 1;
        }
    }
    for (state, count) in all.iter().zip(counts) {
        m.containers
            .get_or_create(&StateLabels {
                state: state.as_str(),
            })
            .set(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_metrics_show_rpcs_reconnects_events_and_states() -> Result<(), std::fmt::Error> {
        let mut registry = Registry::default();
        RuntimeMetrics::install(&mut registry);
        rpc_finished("ListContainers", Duration::from_millis(1), None);
        rpc_finished("ContainerStatus", Duration::from_secs(10), Some("timeout"));
        event_stream_reconnected();
        lifecycle_event(Lifecycle::Added);
        containers_by_state([ContainerState::Running, ContainerState::Running].into_iter());
        cri_api_negotiated("v1alpha2", &["v1", "v1alpha2"], true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        for expected in [
            "gannet_runtime_rpc_duration_seconds_count{call=\"ListContainers\"}",
            "gannet_runtime_rpc_errors_total{call=\"ContainerStatus\",error=\"timeout\"} 1",
            "gannet_runtime_event_stream_reconnects_total",
            "gannet_discovery_lifecycle_events_total{event=\"added\"}",
            "gannet_discovery_containers{state=\"running\"}",
            "gannet_discovery_containers{state=\"exited\"} 0",
            "gannet_runtime_cri_api{version=\"v1alpha2\"} 1",
            "gannet_runtime_cri_api{version=\"v1\"} 0",
            "gannet_runtime_cri_api_changes_total 1",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
        Ok(())
    }
}
