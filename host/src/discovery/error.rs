//! What can stop discovery: the runtime, a full fetch over its budget, a host root without
//! the node's `/proc`, or a bad setting.

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
    /// The host root has no `/proc` of the node: every pid would look dead, so the sync
    /// stops (not ready) instead of reporting every container exited.
    #[error(
        "host root {host_root}: {proc_stat} does not exist, so container pids cannot be \
         checked; mount the node's / there (in a pod: a hostPath / volume, read-only) or set \
         runtime.host_root to where it is mounted"
    )]
    HostRootWithoutProc {
        /// `runtime.host_root`.
        host_root: PathBuf,
        /// The file looked for (`<host_root>/proc/stat`).
        proc_stat: PathBuf,
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
