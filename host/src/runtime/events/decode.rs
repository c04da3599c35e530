//! Decoding one envelope of containerd's event stream by its topic.
//!
//! The `Any` type URLs of containerd's events carry no `type.googleapis.com/` prefix, so
//! `Any::to_msg` cannot be used: the topic says which message to decode. A decoded event
//! says what it means for the discovery loop ([`Signal`]); exec processes (a `/tasks/exit`
//! whose `id` is not the container's) mean nothing.

use containerd_client::events::{
    ContainerCreate, ContainerDelete, ContainerUpdate, TaskDelete, TaskExit, TaskOom, TaskStart,
};
use prost::Message;

use super::nudge::Expect;

/// The topics Gannet subscribes to.
pub const TOPICS: [&str; 7] = [
    "/tasks/start",
    "/tasks/exit",
    "/tasks/oom",
    "/tasks/delete",
    "/containers/create",
    "/containers/update",
    "/containers/delete",
];
/// Errors of the event stream.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeEventsError {
    /// An event's payload did not decode as its topic's message.
    #[error("containerd event on topic {topic} has a payload that does not decode as {message}: {error}; containerd's event schema changed")]
    Decode {
        /// The topic.
        topic: String,
        /// The message type expected for the topic.
        message: &'static str,
        /// The prost error.
        error: prost::DecodeError,
    },
}

/// One decoded lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeEvent {
    /// `/tasks/start`: a task's init process started.
    TaskStart {
        /// The container.
        container_id: String,
        /// Host pid (a hint; CRI is the source of truth).
        pid: u32,
    },
    /// `/tasks/exit`: a process of the task exited (the init, or an exec).
    TaskExit {
        /// The container.
        container_id: String,
        /// The process id: the container id for the init, the exec id for an exec.
        process_id: String,
        /// Exit status.
        exit_status: u32,
        /// Exit time, nanoseconds since the epoch (0 when absent).
        exited_at_nanos: i64,
    },
    /// `/tasks/oom`: the container hit its memory limit.
    TaskOom {
        /// The container.
        container_id: String,
    },
    /// `/tasks/delete`: the task was deleted (after its exit).
    TaskDelete {
        /// The container.
        container_id: String,
        /// Exit status of the init.
        exit_status: u32,
        /// Exit time, nanoseconds since the epoch (0 when absent).
        exited_at_nanos: i64,
    },
    /// `/containers/create` (no labels in the event).
    ContainerCreate {
        /// The container.
        id: String,
    },
    /// `/containers/update`.
    ContainerUpdate {
        /// The container.
        id: String,
    },
    /// `/containers/delete`.
    ContainerDelete {
        /// The container.
        id: String,
    },
}

/// What one event means for the discovery loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The container was created: learn its kind, nothing to fetch yet.
    Created,
    /// The container started: fetch until CRI shows it running.
    Started,
    /// The container's init exited: fetch until CRI shows it exited.
    Exited {
        /// The event's exit status (used when CRI stays behind).
        exit_code: i32,
        /// The event's exit time, nanoseconds since the epoch (0 when absent).
        exited_at_nanos: i64,
    },
    /// Something else changed (update, delete): fetch once.
    Changed,
    /// `/tasks/oom`: the kernel OOM-killed a process of the container. Fetch once, and
    /// the container's exit reads `OOMKilled` (as CRI reports it once its own handler of
    /// the same event ran). Kept beside whatever else is pending for the id.
    OomKilled,
}

impl Signal {
    /// The merge of an older pending signal with a newer one for the same id. An exit is
    /// kept over later, vaguer news about the same container (its task delete, its
    /// container delete), so the removal still carries the exit code. An OOM kill counts
    /// as vague news here: the pending set keeps that fact apart (`Pending::push` in the event source).
    pub fn merge(older: Self, newer: Self) -> Self {
        match (older, newer) {
            (Self::Exited { .. }, Self::Changed | Self::Created | Self::OomKilled) => older,
            (_, Self::Created) if older != Self::Created => older,
            _ => newer,
        }
    }

    /// What CRI should show once it catches up, or `None` when nothing needs fetching.
    pub fn expect(self) -> Option<Expect> {
        match self {
            Self::Created => None,
            Self::Started => Some(Expect::Running),
            Self::Exited {
                exit_code,
                exited_at_nanos,
            } => Some(Expect::Exited {
                exit_code,
                exited_at_nanos,
            }),
            Self::Changed | Self::OomKilled => Some(Expect::Any),
        }
    }
}

impl RuntimeEvent {
    /// Decodes an envelope's payload, choosing the message by `topic`. `Ok(None)` for a
    /// topic Gannet does not use.
    ///
    /// # Errors
    /// [`RuntimeEventsError::Decode`] when the payload is not the topic's message.
    pub fn decode(topic: &str, value: &[u8]) -> Result<Option<Self>, RuntimeEventsError> {
        fn msg<M: Message + Default>(
            topic: &str,
            name: &'static str,
            value: &[u8],
        ) -> Result<M, RuntimeEventsError> {
            M::decode(value).map_err(|error| RuntimeEventsError::Decode {
                topic: topic.to_owned(),
                message: name,
                error,
            })
        }
        Ok(Some(match topic {
            "/tasks/start" => {
                let e: TaskStart = msg(topic, "TaskStart", value)?;
                Self::TaskStart {
                    container_id: e.container_id,
                    pid: e.pid,
                }
            }
            "/tasks/exit" => {
                let e: TaskExit = msg(topic, "TaskExit", value)?;
                Self::TaskExit {
                    container_id: e.container_id,
                    process_id: e.id,
                    exit_status: e.exit_status,
                    exited_at_nanos: nanos(e.exited_at.as_ref()),
                }
            }
            "/tasks/oom" => {
                let e: TaskOom = msg(topic, "TaskOOM", value)?;
                Self::TaskOom {
                    container_id: e.container_id,
                }
            }
            "/tasks/delete" => {
                let e: TaskDelete = msg(topic, "TaskDelete", value)?;
                // An exec's delete names the exec in `id`; only the init's matters.
                if !e.id.is_empty() && e.id != e.container_id {
                    return Ok(None);
                }
                Self::TaskDelete {
                    container_id: e.container_id,
                    exit_status: e.exit_status,
                    exited_at_nanos: nanos(e.exited_at.as_ref()),
                }
            }
            "/containers/create" => {
                let e: ContainerCreate = msg(topic, "ContainerCreate", value)?;
                Self::ContainerCreate { id: e.id }
            }
            "/containers/update" => {
                let e: ContainerUpdate = msg(topic, "ContainerUpdate", value)?;
                Self::ContainerUpdate { id: e.id }
            }
            "/containers/delete" => {
                let e: ContainerDelete = msg(topic, "ContainerDelete", value)?;
                Self::ContainerDelete { id: e.id }
            }
            _ => return Ok(None),
        }))
    }

    /// The container this event is about and what it means, or `None` for an exec
    /// process's exit (it says nothing about the container's lifecycle).
    pub fn signal(&self) -> Option<(&str, Signal)> {
        match self {
            Self::TaskStart { container_id, .. } => Some((container_id, Signal::Started)),
            Self::TaskExit {
                container_id,
                process_id,
                exit_status,
                exited_at_nanos,
            } => {
                if !process_id.is_empty() && process_id != container_id {
                    return None;
                }
                Some((
                    container_id,
                    Signal::Exited {
                        exit_code: exit_code(*exit_status),
                        exited_at_nanos: *exited_at_nanos,
                    },
                ))
            }
            Self::TaskDelete {
                container_id,
                exit_status,
                exited_at_nanos,
            } => Some((
                container_id,
                Signal::Exited {
                    exit_code: exit_code(*exit_status),
                    exited_at_nanos: *exited_at_nanos,
                },
            )),
            Self::TaskOom { container_id } => Some((container_id, Signal::OomKilled)),
            Self::ContainerCreate { id } => Some((id, Signal::Created)),
            Self::ContainerUpdate { id } | Self::ContainerDelete { id } => {
                Some((id, Signal::Changed))
            }
        }
    }
}

/// A protobuf timestamp as nanoseconds since the epoch (0 when absent).
fn nanos(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| {
        t.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(t.nanos))
    })
}

/// containerd's `u32` exit status as CRI's `i32` exit code.
fn exit_code(status: u32) -> i32 {
    i32::try_from(status).unwrap_or(i32::MAX)
}
