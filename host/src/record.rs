//! The container record: the plain value every stage hands to the next.
//!
//! Discovery builds it, the table diffs it, plugins read and edit it, outputs and the API
//! serialize it. Its shape is written down once, in the `gannet-record` crate (shared with
//! the guest SDK's test mock); this module re-exports it so the agent's stages name it
//! `crate::record::ContainerRecord`.

pub use gannet_record::{ContainerRecord, ContainerState, K8sInfo, Lifecycle, Mount, Timestamp};
