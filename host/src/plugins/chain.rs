//! A chain: the loaded plugins in file-name order, and the per-thread runner that sends
//! one record through them.
//!
//! Owns verdict folding (`route` replaces destinations, `pass` keeps them, `drop` ends
//! the chain), the failure policy, instance replacement after traps, and counting calls.
//! A chain is immutable; a reload builds a new one. The runner keeps one instance per
//! plugin per thread and never creates one per record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::instance::{CallOutcome, PluginInstance};
use super::plugin::{LoadedPlugin, PluginInfo};
use super::sidecar::FailurePolicy;
use crate::pipeline::Outcome;
use crate::record::{ContainerRecord, Lifecycle};

static NEXT_CHAIN_ID: AtomicU64 = AtomicU64::new(1);

/// The plugins of one directory generation, in run order.
#[derive(Debug)]
pub struct PluginChain {
    id: u64,
    plugins: Vec<Arc<LoadedPlugin>>,
}

impl PluginChain {
    /// A chain of these plugins, run in the given order.
    pub fn new(plugins: Vec<Arc<LoadedPlugin>>) -> Self {
        Self {
            id: NEXT_CHAIN_ID.fetch_add(1, Ordering::Relaxed),
            plugins,
        }
    }

    /// A chain with no plugins: every record passes unchanged.
    pub fn empty() -> Self {
        Self::new(Vec::new())
    }

    /// The plugins in run order.
    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// Per-plugin info for the API.
    pub fn infos(&self) -> Vec<PluginInfo> {
        self.plugins.iter().map(|p| p.info()).collect()
    }
}

/// One slot per plugin of the current chain: the plugin and, once started, its instance.
type Slot = (Arc<LoadedPlugin>, Option<PluginInstance>);

/// Runs records through chains on one thread, keeping one live instance per plugin.
#[derive(Default)]
pub struct ChainRunner {
    /// Aligned with the plugins of the chain last run (`last_chain`).
    slots: Vec<Slot>,
    last_chain: u64,
}

impl ChainRunner {
    /// A runner with no instances yet (they are created on first use).
    pub fn new() -> Self {
        Self::default()
    }

    /// Lines the slots up with `chain`, keeping the instances of plugins it still has and
    /// dropping the rest.
    fn align(&mut self, chain: &PluginChain) {
        let mut old = std::mem::take(&mut self.slots);
        self.slots = chain
            .plugins
            .iter()
            .map(|plugin| {
                let kept = old
                    .iter()
                    .position(|(p, _)| Arc::ptr_eq(p, plugin))
                    .and_then(|i| old.swap_remove(i).1);
                (plugin.clone(), kept)
            })
            .collect();
        self.last_chain = chain.id;
    }

    /// Sends `record` through `chain`.
    pub fn run(
        &mut self,
        chain: &PluginChain,
        event: Lifecycle,
        record: ContainerRecord,
    ) -> Outcome {
        if chain.plugins.is_empty() {
            return Outcome::Passed {
                record,
                destinations: None,
            };
        }
        if chain.id != self.last_chain {
            self.align(chain);
        }
        // The epoch ticks (and deadlines fire) only while some runner holds this.
        let _busy = chain.plugins.first().and_then(|p| p.engine().busy());
        // Boxed once per record, so lending it to each plugin is a pointer swap.
        let mut record = Box::new(record);
        let mut destinations: Option<Vec<String>> = None;
        // One clock read per plugin boundary: a call's end is the next call's start.
        let mut started = Instant::now();
        for (plugin, slot) in &mut self.slots {
            if plugin.is_quarantined() {
                continue;
            }
            let instance = match slot {
                Some(instance) => instance,
                None => match plugin.new_instance() {
                    Ok(instance) => {
                        // Starting an instance is not part of the call's latency.
                        started = Instant::now();
                        slot.insert(instance)
                    }
                    Err(failure) => {
                        plugin.context().counters.errors_init.inc();
                        let message = failure.to_string();
                        tracing::warn!(message = "Plugin instance failed to start.", plugin = plugin.name(), error = %message);
                        plugin.record_failure(&message);
                        started = Instant::now();
                        match plugin.sidecar().failure_policy {
                            FailurePolicy::Pass => continue,
                            FailurePolicy::Drop => {
                                plugin.context().counters.drops_failure.inc();
                                return Outcome::Dropped {
                                    record: *record,
                                    plugin: plugin.name().to_string(),
                                    intentional: false,
                                };
                            }
                        }
                    }
                },
            };
            let counters = &plugin.context().counters;
            counters.calls.inc();
            let outcome = instance.process(event, &mut record);
            let ended = Instant::now();
            counters
                .call_duration
                .observe(ended.duration_since(started).as_secs_f64());
            started = ended;
            match outcome {
                CallOutcome::Pass => plugin.record_success(),
                CallOutcome::Route(outputs) => {
                    plugin.record_success();
                    counters.routes.inc();
                    destinations = Some(outputs);
                }
                CallOutcome::Drop => {
                    plugin.record_success();
                    counters.drops_intentional.inc();
                    return Outcome::Dropped {
                        record: *record,
                        plugin: plugin.name().to_string(),
                        intentional: true,
                    };
                }
                CallOutcome::Failed(failure) => {
                    plugin.count_failure(&failure);
                    if failure.poisons_instance() {
                        // A trapped instance cannot be entered again: start afresh next time.
                        *slot = None;
                    }
                    let message = failure.to_string();
                    tracing::warn!(
                        message = "Plugin call failed; its changes were discarded.",
                        plugin = plugin.name(),
                        kind = failure.kind(),
                        container_id = %record.id,
                        error = %message,
                    );
                    plugin.record_failure(&message);
                    started = Instant::now();
                    if plugin.sidecar().failure_policy == FailurePolicy::Drop {
                        counters.drops_failure.inc();
                        return Outcome::Dropped {
                            record: *record,
                            plugin: plugin.name().to_string(),
                            intentional: false,
                        };
                    }
                }
            }
        }
        Outcome::Passed {
            record: *record,
            destinations,
        }
    }
}
