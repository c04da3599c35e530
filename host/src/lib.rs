//! Gannet: a node agent that discovers containers from the container runtime, turns each
//! into a [`ContainerRecord`], and runs records through WebAssembly plugins.
//!
//! One module per stage (see `docs/ARCHITECTURE.md`); each hands a plain value to the next.

pub mod cli;
pub mod plugins;
pub mod record;

pub use record::{ContainerRecord, ContainerState, K8sInfo, Lifecycle, Mount, Timestamp};
