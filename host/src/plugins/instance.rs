//! One live plugin instance: a Store (with its limits) and the instantiated bindings.
//!
//! Owns calling `init` and `process`, lending the record as a borrowed handle, keeping or
//! rolling back the call's edits, and classifying failures (with `downcast_ref::<Trap>`).
//! An instance is used by one thread at a time; the chain replaces it after a trap.

use std::time::Duration;

use wasmtime::component::Resource;
use wasmtime::{Store, Trap};

use super::engine::{one_line, EPOCH_TICK};
use super::host_state::HostState;
use super::served::{Bindings, Verdict};
use super::wit::ContainerHandle;
use crate::record::{ContainerRecord, Lifecycle};

/// How a `process` call went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// Returned `ok(pass)`.
    Pass,
    /// Returned `ok(drop)`.
    Drop,
    /// Returned `ok(route(outputs))`.
    Route(Vec<String>),
    /// Failed; the record is as it was before the call.
    Failed(CallFailure),
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// `process` returned `err(message)`; the instance stays usable.
    Err(String),
    /// The guest trapped; the instance must be replaced.
    Trap(String),
    /// The call ran past its deadline; the instance must be replaced.
    Timeout,
    /// The guest hit its memory limit; the instance must be replaced.
    Memory,
}

impl CallFailure {
    /// True when the instance is unusable after this failure.
    pub fn poisons_instance(&self) -> bool {
        !matches!(self, Self::Err(_))
    }

    /// The bounded metric label for this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Err(_) => "err",
            Self::Trap(_) => "trap",
            Self::Timeout => "timeout",
            Self::Memory => "memory",
        }
    }
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Err(m) => write!(f, "process returned err: {m}"),
            Self::Trap(m) => write!(f, "trapped: {m}"),
            Self::Timeout => f.write_str("ran past its deadline"),
            Self::Memory => f.write_str("hit its memory limit"),
        }
    }
}

/// Why `init` on a new instance failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InitFailure {
    /// The plugin refused its config.
    #[error("init rejected the config: {0}")]
    Rejected(String),
    /// Instantiation or `init` trapped or timed out.
    #[error("instantiation failed: {0}")]
    Trap(String),
    /// The plugin needs more memory to start (its initial memory, or what `init`
    /// allocates) than its memory limit allows.
    #[error("it needs more memory to start than memory_limit_bytes = {limit_bytes} allows")]
    Memory {
        /// The limit it hit.
        limit_bytes: usize,
    },
}

impl InitFailure {
    /// What the operator should change in the plugin's sidecar.
    pub fn fix(&self) -> &'static str {
        match self {
            Self::Rejected(_) => "fix `config` in its sidecar",
            Self::Memory { .. } => "raise `memory_limit_bytes` in its sidecar",
            Self::Trap(_) => {
                "check its `config` and `call_deadline_ms` in its sidecar, and its log lines"
            }
        }
    }

    /// The failure of instantiation or `init` in `store`: memory when the limiter refused
    /// a growth, else a trap with wasmtime's reason.
    pub(crate) fn of(store: &Store<HostState>, error: &wasmtime::Error) -> Self {
        match (store.data().limiter.hit, store.data().limiter.limit_bytes()) {
            (true, Some(limit_bytes)) => Self::Memory { limit_bytes },
            _ => Self::Trap(classify(store, error).to_string()),
        }
    }
}

/// The limits applied to one Store.
#[derive(Debug, Clone, Copy)]
pub struct InstanceLimits {
    /// Per-call deadline; `None` when the engine does not enforce limits.
    pub call_deadline: Option<Duration>,
}

/// Epoch ticks for a deadline: rounded up, plus one because the current tick is partial.
fn deadline_ticks(deadline: Duration) -> u64 {
    let tick = EPOCH_TICK.as_nanos().max(1);
    let ticks = deadline.as_nanos().div_ceil(tick);
    u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
}

/// How long `init` may run: generous, since it may compile regexes.
fn init_deadline(call_deadline: Duration) -> Duration {
    (call_deadline * 10).max(Duration::from_secs(2))
}

/// Epoch ticks allowed for instantiation and `init`.
pub fn init_deadline_ticks(call_deadline: Duration) -> u64 {
    deadline_ticks(init_deadline(call_deadline))
}

/// A live instance of one plugin.
pub struct PluginInstance {
    store: Store<HostState>,
    bindings: Bindings,
    handle: Resource<ContainerHandle>,
    deadline_ticks: Option<u64>,
}

impl PluginInstance {
    /// Wraps an instantiated plugin and runs `init(config_json)` on it.
    ///
    /// # Errors
    /// [`InitFailure`] when `init` returns `err`, traps or times out.
    pub fn start(
        mut store: Store<HostState>,
        bindings: Bindings,
        limits: InstanceLimits,
        config_json: &str,
    ) -> Result<Self, InitFailure> {
        let handle = store
            .data_mut()
            .push_handle()
            .map_err(|e| InitFailure::Trap(one_line(&e)))?;
        if let Some(deadline) = limits.call_deadline {
            store.set_epoch_deadline(init_deadline_ticks(deadline));
        }
        match bindings.call_init(&mut store, config_json) {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(InitFailure::Rejected(message)),
            Err(error) => return Err(InitFailure::of(&store, &error)),
        }
        Ok(Self {
            store,
            bindings,
            handle,
            deadline_ticks: limits.call_deadline.map(deadline_ticks),
        })
    }

    /// Runs `process` on `record`. On `ok` the call's edits stay in `record`; on
    /// any failure `record` is left exactly as it was.
    ///
    /// The record is lent by swapping boxes with the Store: no copy, no clone.
    pub fn process(&mut self, event: Lifecycle, record: &mut Box<ContainerRecord>) -> CallOutcome {
        {
            let data = self.store.data_mut();
            std::mem::swap(&mut data.record, record);
            data.limiter.hit = false;
        }
        if let Some(ticks) = self.deadline_ticks {
            self.store.set_epoch_deadline(ticks);
        }
        let borrow = Resource::<ContainerHandle>::new_borrow(self.handle.rep());
        let result = self.bindings.call_process(&mut self.store, event, borrow);
        let outcome = match result {
            Ok(Ok(verdict)) => {
                self.store.data_mut().undo.commit();
                match verdict {
                    Verdict::Pass => CallOutcome::Pass,
                    Verdict::Drop => CallOutcome::Drop,
                    Verdict::Route(outputs) => CallOutcome::Route(outputs),
                }
            }
            Ok(Err(message)) => {
                self.rollback();
                CallOutcome::Failed(CallFailure::Err(message))
            }
            Err(error) => {
                let failure = classify(&self.store, &error);
                self.rollback();
                CallOutcome::Failed(failure)
            }
        };
        std::mem::swap(&mut self.store.data_mut().record, record);
        outcome
    }

    /// Undoes the failed call's edits of the lent record.
    fn rollback(&mut self) {
        let data = self.store.data_mut();
        if !data.undo.is_empty() {
            data.undo.rollback(&mut data.record);
        }
    }
}

/// Classifies a failed call: memory limit (the limiter refused a growth), deadline
/// (`Trap::Interrupt`) or another trap.
fn classify(store: &Store<HostState>, error: &wasmtime::Error) -> CallFailure {
    if store.data().limiter.hit {
        return CallFailure::Memory;
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallFailure::Timeout,
        _ => CallFailure::Trap(one_line(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_and_adds_a_partial_tick() {
        assert_eq!(deadline_ticks(Duration::from_millis(200)), 21);
        assert_eq!(deadline_ticks(Duration::from_millis(25)), 4);
    }

    #[test]
    fn only_err_keeps_the_instance() {
        assert!(!CallFailure::Err("x".into()).poisons_instance());
        assert!(CallFailure::Timeout.poisons_instance());
        assert!(CallFailure::Memory.poisons_instance());
        assert!(CallFailure::Trap("x".into()).poisons_instance());
    }
}
