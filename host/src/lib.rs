//! Gannet: a node agent that discovers every container from the container runtime, turns
//! each into a complete [`ContainerRecord`], and runs the records through the platform
//! team's own WebAssembly plugins before they reach the outputs.
//!
//! # The data flow
//!
//! Each module owns one job and hands a plain value to the next (`docs/ARCHITECTURE.md`
//! draws it):
//!
//! 1. [`runtime`] talks to the container runtime over its unix socket: CRI for the
//!    containers and pods, containerd's native API for what CRI does not say (upper dir,
//!    sandbox kind) and its event stream, decoded into nudges.
//! 2. [`discovery`] owns the sync policy: a full fetch at start and at every resync, cheap
//!    fingerprints on every list, targeted fetches on nudges; `liveness` checks that each
//!    container's pid is still the process CRI started, and `convert` builds the record.
//! 3. [`table`] keeps the current records and diffs them into `added`, `updated` and
//!    `removed` events.
//! 4. [`pipeline`] keeps one container's events in order while they pass through the
//!    [`plugins`] chain, the API's view and the `outputs`, which wrap each record in its
//!    envelope ([`record`]) and deliver it with batching, retries and a bounded queue.
//! 5. [`api`] serves the data API, gRPC and the health and metrics listeners; `config`
//!    reads `gannet.toml` into each component's own config type; [`cli`] is the binary.
//!
//! # Embedding wasmtime
//!
//! The plugin runtime follows wasmtime's own layering. One [`wasmtime::Engine`] per agent
//! (its `Config` lives in `plugins::engine` alone) compiles each `.wasm` component, through
//! an on-disk artifact cache keyed by the file's content hash and the engine's
//! compatibility hash, so a restart deserializes instead of compiling. One component
//! `Linker` holds WASI 0.2 and Gannet's host imports (`wit/plugin.wit`). Each plugin is
//! linked once into an `InstancePre`, so making an instance is cheap. The plugin stage runs
//! a few dedicated worker threads, never tokio's, and each worker has its own `Store` and
//! instance per plugin, with a memory limiter and an epoch deadline per call. An epoch
//! ticker thread ticks only while a call is in flight.
//!
//! A plugin edits the record through a borrowed resource handle. Each edit is applied in
//! place and logged in an undo log with what it replaced. A call that returns `ok` keeps its
//! edits; one that traps, times out or returns `err` has them rolled back, newest first,
//! and the plugin's failure policy decides what happens to the record. A trapped instance
//! is replaced, and a reload swaps in a new chain while records in flight finish on the
//! chain they started on.

#[doc(hidden)]
pub mod benching;
pub mod cli;
#[doc(hidden)]
pub mod fuzzing;
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
pub(crate) mod memory;
pub(crate) mod outputs;
pub mod pipeline;
