//! What can stop discovery: the runtime, a full fetch over its budget, or a bad setting.

use std::path::PathBuf;

use crate::runtime::cri::CriError;
use crate::validate::FieldError;

/// Errors of discovery.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The runtime could not be reached or answered an error.
    #[error(transparent)]
    Cri(#[from] CriError),
    /// A full fetch took longer than its 60 s budget.
    #[error(
        "full fetch from runtime socket {socket} took longer than 60s; the runtime is overloaded"
    )]
    FullFetchTimedOut {
        /// The socket.
        socket: PathBuf,
    },
    /// `--sync-mode` (or `sync_mode`) is neither `events` nor `poll`.
    #[error("sync mode {value:?} is not known; use events or poll")]
    InvalidSyncMode {
        /// The value given.
        value: String,
    },
    /// A setting is out of bounds (see [`super::Config::validate`]).
    #[error(transparent)]
    InvalidConfig(#[from] FieldError),
}
