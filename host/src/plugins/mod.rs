//! The WebAssembly plugin runtime: loading plugins from a directory, running records
//! through them on dedicated threads, and reloading them when the directory changes.
//!
//! Data flow: `PluginEngine` (wasmtime config, linker, cache) compiles each file into a
//! `LoadedPlugin`; a `PluginSet` holds the current `PluginChain`; the `PluginStage` runs
//! records through it on worker threads and hands back the pipeline's `Outcome`: the stage
//! is the pipeline's `Chain`. The watcher calls `PluginSet::reload`. Nothing here talks to
//! the runtime or the outputs.

mod cache;
mod chain;
mod compiler;
mod config;
mod directory;
mod engine;
mod epoch;
mod host_state;
mod imports;
mod instance;
mod metrics;
mod plugin;
mod select;
mod served;
mod sidecar;
mod stage;
mod stderr;
mod undo;
mod watch;
mod wit;

pub use cache::{ArtifactCache, CacheError};
pub use chain::{ChainRunner, PluginChain};
pub use config::PluginsConfig;
pub use directory::{list_plugins, DirectoryError, PluginSet, ReloadSummary};
pub use engine::{
    content_hash, wasmtime_version, EngineError, EngineOptions, PluginEngine, EPOCH_TICK,
};
pub use instance::{CallFailure, CallOutcome, InitFailure, PluginInstance};
pub use metrics::{PluginCounters, PluginMetrics};
pub use plugin::{summarize, ComponentSummary, LoadError, LoadedPlugin, PluginInfo, PluginState};
pub use served::WitVersion;
pub use sidecar::{DirGrant, FailurePolicy, Grants, Sidecar, SidecarError};
pub use stage::{PendingOutcome, PluginStage, StageConfig, StageError};
pub use watch::{watch, DirWatcher, WatchError, DEFAULT_DEBOUNCE};
pub use wit::{SERVED_VERSIONS, WIT_PACKAGE, WIT_VERSION};
