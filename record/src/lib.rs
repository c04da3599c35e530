//! The container record's shape, written down once: the agent and the guest SDK's test
//! mock both build on this crate.
//!
//! Owns the record type ([`ContainerRecord`] and its parts), [`select`] (reading
//! [`Field`]s of a record and packing the answer as one string plus byte ranges), and
//! [`GlobSet`] (the env-name globs of the `env-matching` accessors and mutators). It knows
//! nothing of wasm, WIT bindings or the runtime: the host converts its generated WIT types
//! to these, and the SDK's mock does the same, so a plugin's unit tests run the code the
//! agent runs.

mod glob;
mod record;
mod select;
#[doc(hidden)]
pub mod wit_names;

pub use glob::GlobSet;
pub use record::{
    ContainerPort, ContainerRecord, ContainerState, K8sInfo, Lifecycle, Mount, Owner, Resources,
    Timestamp,
};
pub use select::{select, value, AnswerTooLarge, Field, Selection, ABSENT};
