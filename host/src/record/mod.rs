//! The container record: the plain value every stage hands to the next, the envelope it
//! leaves the agent in, and the event ids those envelopes carry.
//!
//! Discovery builds the record, the table diffs it, plugins read and edit it, outputs and
//! the API serialize it. Its shape is written down once, in the `gannet-record` crate
//! (shared with the guest SDK's test mock); this module re-exports it so the agent's
//! stages name it `crate::record::ContainerRecord`. The envelope (with the `[record]`
//! config that governs env redaction) and the event ids live here too, so outputs and the
//! API take the record's wire form from one place. Nothing here does I/O.

mod envelope;
mod event_id;

pub use envelope::{
    encode, redacted, Encoded, EnvValues, Envelope, EventRecord, RecordConfig, REDACTED,
};
pub use event_id::EventIds;
pub use gannet_record::{
    ContainerPort, ContainerRecord, ContainerState, K8sInfo, Lifecycle, Mount, Owner, Resources,
    Timestamp,
};
