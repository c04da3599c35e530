//! What the event source hands the discovery loop: [`Nudge`]s, each fetch carrying what CRI
//! should show once it catches up with the event ([`Expect`]).

use crate::record::{ContainerRecord, ContainerState};

/// What a runtime event says CRI will show once it catches up (the start race): the
/// loop re-fetches with a short backoff until CRI agrees or a bounded wait ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expect {
    /// Nothing in particular: fetch once.
    #[default]
    Any,
    /// `/tasks/start`: RUNNING with a pid.
    Running,
    /// `/tasks/exit`: EXITED. After the bounded wait, a dead pid is taken as exited with
    /// this code.
    Exited {
        /// The exit status the event carried.
        exit_code: i32,
        /// The exit time the event carried (nanoseconds since the epoch, 0 when absent).
        exited_at_nanos: i64,
    },
    /// The kernel says the process exited (its pidfd): EXITED, with the exit code only CRI
    /// can give. CRI marks the exit 25-100 ms later; the fetch waits for it, bounded.
    Gone,
}

/// A message to the loop from the event source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nudge {
    /// Fetch this container now (an unknown id is fetched and added if it runs).
    Fetch {
        /// The container id.
        id: String,
        /// What CRI should show.
        expect: Expect,
    },
    /// Events may have been missed (the stream broke): run a full sync now.
    Resync,
    /// The kernel OOM-killed a process of this container (`/tasks/oom`): its exit, when
    /// it comes, reads `OOMKilled`, as CRI reports it. Sent before the id's fetch nudge.
    OomKilled {
        /// The container id.
        id: String,
    },
}

impl Expect {
    /// Whether `record` shows what the event announced.
    pub(crate) fn agrees(self, record: &ContainerRecord) -> bool {
        let exited = record.state == ContainerState::Exited && record.exit_code.is_some();
        match self {
            Self::Any => true,
            Self::Running => (record.state == ContainerState::Running && record.pid > 0) || exited,
            Self::Exited { .. } | Self::Gone => exited,
        }
    }
}
