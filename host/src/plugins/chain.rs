//! A chain: the loaded plugins in file-name order, and the per-thread runner that sends
//! one record through them.
//!
//! Owns verdict folding (`route` replaces destinations, `pass` keeps them, `drop` ends
//! the chain), the failure policy, instance replacement after traps, and counting calls.
//! A chain is immutable; a reload builds a new one. The runner keeps one instance per
//! plugin per thread and never creates one per record.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::instance::{CallOutcome, PluginInstance};
use super::plugin::{LoadedPlugin, PluginInfo};
use super::sidecar::FailurePolicy;
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

    /// A number unique to this chain generation.
    pub fn id(&self) -> u64 {
        self.id
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

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainOutcome {
    /// A plugin dropped it. `record` is as the chain left it.
    Dropped {
        /// The record as it was when dropped.
        record: ContainerRecord,
        /// The plugin that dropped it.
        plugin: String,
        /// True for the plugin's own `drop` verdict; false for the failure policy.
        intentional: bool,
    },
    /// It went through every plugin.
    Passed {
        /// The edited record.
        record: ContainerRecord,
        /// The outputs the last `route` named; `None` means the default outputs.
        destinations: Option<Vec<String>>,
    },
}

impl ChainOutcome {
    /// The record, whatever the verdict.
    pub fn record(&self) -> &ContainerRecord {
        match self {
            Self::Dropped { record, .. } | Self::Passed { record, .. } => record,
        }
    }
}

fn plugin_key(plugin: &Arc<LoadedPlugin>) -> usize {
    Arc::as_ptr(plugin) as usize
}

/// Runs records through chains on one thread, keeping one live instance per plugin.
#[derive(Default)]
pub struct ChainRunner {
    /// Keyed by the plugin's address; the `Arc` keeps that address from being reused.
    instances: HashMap<usize, (Arc<LoadedPlugin>, PluginInstance)>,
    last_chain: u64,
}

impl ChainRunner {
    /// A runner with no instances yet (they are created on first use).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `record` through `chain`.
    pub fn run(
        &mut self,
        chain: &PluginChain,
        event: Lifecycle,
        mut record: ContainerRecord,
    ) -> ChainOutcome {
        if chain.id != self.last_chain {
            // A new generation: forget instances of plugins it no longer has.
            self.instances
                .retain(|key, _| chain.plugins.iter().any(|p| plugin_key(p) == *key));
            self.last_chain = chain.id;
        }
        let mut destinations: Option<Vec<String>> = None;
        for plugin in &chain.plugins {
            if plugin.is_quarantined() {
                continue;
            }
            let _span = tracing::debug_span!("plugin", plugin = plugin.name()).entered();
            let key = plugin_key(plugin);
            if !self.instances.contains_key(&key) {
                match plugin.new_instance() {
                    Ok(instance) => {
                        self.instances.insert(key, (plugin.clone(), instance));
                    }
                    Err(failure) => {
                        plugin.context().counters.errors_init.inc();
                        let message = failure.to_string();
                        tracing::warn!(message = "Plugin instance failed to start.", plugin = plugin.name(), error = %message);
                        plugin.record_failure(&message);
                        match plugin.sidecar().failure_policy {
                            FailurePolicy::Pass => continue,
                            FailurePolicy::Drop => {
                                plugin.context().counters.drops_failure.inc();
                                return ChainOutcome::Dropped {
                                    record,
                                    plugin: plugin.name().to_string(),
                                    intentional: false,
                                };
                            }
                        }
                    }
                }
            }
            let Some((_, instance)) = self.instances.get_mut(&key) else {
                continue;
            };
            let counters = &plugin.context().counters;
            counters.calls.inc();
            let started = Instant::now();
            let outcome = instance.process(event, &mut record);
            counters
                .call_duration
                .observe(started.elapsed().as_secs_f64());
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
                    return ChainOutcome::Dropped {
                        record,
                        plugin: plugin.name().to_string(),
                        intentional: true,
                    };
                }
                CallOutcome::Failed(failure) => {
                    plugin.count_failure(&failure);
                    if failure.poisons_instance() {
                        // A trapped instance cannot be entered again: start afresh next time.
                        self.instances.remove(&key);
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
                    if plugin.sidecar().failure_policy == FailurePolicy::Drop {
                        counters.drops_failure.inc();
                        return ChainOutcome::Dropped {
                            record,
                            plugin: plugin.name().to_string(),
                            intentional: false,
                        };
                    }
                }
            }
        }
        ChainOutcome::Passed {
            record,
            destinations,
        }
    }
}
