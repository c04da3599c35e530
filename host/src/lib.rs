//! Gannet: a node agent that discovers containers from the container runtime, turns each
//! into a [`ContainerRecord`], and runs records through WebAssembly plugins.
//!
//! One module per stage (see `docs/ARCHITECTURE.md`); each hands a plain value to the next.

pub mod cli;
pub mod plugins;
pub mod record;
pub(crate) mod tls;
pub(crate) mod toml_doc;
pub(crate) mod validate;

// Discovery: the runtime clients, conversion, the table and the sync loop.
pub(crate) mod convert;
pub mod discovery;
pub(crate) mod liveness;
pub mod runtime;
pub mod table;

pub use record::{ContainerRecord, ContainerState, K8sInfo, Lifecycle, Mount, Timestamp};

// The agent: config, outputs, the local API and the pipeline.
pub mod api;
pub(crate) mod config;
pub(crate) mod logging;
pub(crate) mod outputs;
pub mod pipeline;
