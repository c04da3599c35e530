//! containerd's native event stream, turned into fetch requests for the discovery loop.
//!
//! Owns the subscription (namespace `k8s.io`, the lifecycle [`TOPICS`]), decoding each
//! envelope by topic (the `Any` type URLs carry no `type.googleapis.com/` prefix, so
//! `Any::to_msg` cannot be used), dropping exec processes (a `/tasks/exit` whose `id` is
//! not the container's), telling sandboxes from containers (`io.cri-containerd.kind`,
//! one `Containers.Get` per id, cached), coalescing, the fetch-rate cap, and
//! re-subscribing with backoff when the stream breaks. It hands on [`Nudge`]s: one per
//! dirty container (with what CRI should show once it catches up) and a `Resync` after
//! every re-subscription, so nothing that happened in the gap is missed.
//!
//! Two tasks: the reader never blocks (it only merges into the pending set and wakes the
//! dispatcher); the dispatcher drains the pending set at most `rate_per_sec` ids a second,
//! looks kinds up and sends nudges, waiting on the loop when it is busy. It never fetches
//! container status itself (the discovery loop does).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_client::events::{
    ContainerCreate, ContainerDelete, ContainerUpdate, TaskDelete, TaskExit, TaskOom, TaskStart,
};
use prost::Message;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::containerd::{ContainerKind, NativeClient};
use crate::cri::connect_channel;
use crate::discovery::{Expect, Nudge};

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
/// First wait before re-subscribing; doubles up to [`MAX_RESUBSCRIBE_BACKOFF`].
const MIN_RESUBSCRIBE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between subscription attempts.
const MAX_RESUBSCRIBE_BACKOFF: Duration = Duration::from_secs(2);
/// Time given to a subscription request to reach containerd before the resync that
/// catches up on the gap starts (containerd answers a subscription only with its first
/// event, so there is no acknowledgement to wait for).
const SUBSCRIBE_SETTLE: Duration = Duration::from_millis(50);
/// Most ids remembered in the kind cache; past it the cache is cleared (ids are removed
/// on `/containers/delete`, so this only bounds leaks from missed deletes).
const KIND_CACHE_LIMIT: usize = 65_536;

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
    /// as vague news here: the pending set keeps that fact apart ([`Pending::push`]).
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

/// Ids waiting for the dispatcher, in arrival order, one entry per id (coalesced).
#[derive(Debug, Default)]
struct PendingState {
    signals: HashMap<String, Signal>,
    order: VecDeque<String>,
    /// Pending ids with a `/tasks/oom` among their events (survives any merge).
    oom_killed: HashSet<String>,
    resync: bool,
}

/// The set the reader fills and the dispatcher drains. Never blocks the reader for more
/// than a map insert.
#[derive(Debug, Default)]
struct Pending {
    state: Mutex<PendingState>,
    wake: Notify,
}

impl Pending {
    fn push(&self, id: &str, signal: Signal) {
        if let Ok(mut s) = self.state.lock() {
            if signal == Signal::OomKilled {
                s.oom_killed.insert(id.to_owned());
            }
            match s.signals.get_mut(id) {
                Some(old) => *old = Signal::merge(*old, signal),
                None => {
                    s.signals.insert(id.to_owned(), signal);
                    s.order.push_back(id.to_owned());
                }
            }
        }
        self.wake.notify_one();
    }

    fn request_resync(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.resync = true;
        }
        self.wake.notify_one();
    }

    /// The resync flag (cleared) or the oldest pending id with its merged signal and
    /// whether an OOM kill was among its events.
    fn pop(&self) -> Option<Popped> {
        let mut s = self.state.lock().ok()?;
        if std::mem::take(&mut s.resync) {
            return Some(Popped::Resync);
        }
        while let Some(id) = s.order.pop_front() {
            if let Some(signal) = s.signals.remove(&id) {
                let oom_killed = s.oom_killed.remove(&id);
                return Some(Popped::Id(id, signal, oom_killed));
            }
        }
        None
    }
}

enum Popped {
    Resync,
    Id(String, Signal, bool),
}

/// The event source for one runtime socket. Build with [`EventSource::new`], then
/// [`EventSource::run`].
#[derive(Debug, Clone)]
pub struct EventSource {
    socket: PathBuf,
    rate_per_sec: u32,
}

impl EventSource {
    /// An event source for containerd at `socket`, nudging the loop at most
    /// `rate_per_sec` times a second (at least 1).
    pub fn new(socket: PathBuf, rate_per_sec: u32) -> Self {
        Self {
            socket,
            rate_per_sec: rate_per_sec.max(1),
        }
    }

    /// Runs the reader and the dispatcher until `cancel` fires or `nudges`' receiver is
    /// dropped. Stream failures are logged and retried with backoff; they never end it.
    pub async fn run(self, nudges: mpsc::Sender<Nudge>, cancel: CancellationToken) {
        let pending = Arc::new(Pending::default());
        let reader_cancel = cancel.child_token();
        let reader = tokio::spawn(read_stream(
            self.socket.clone(),
            Arc::clone(&pending),
            reader_cancel.clone(),
        ));
        dispatch(self.socket, self.rate_per_sec, &pending, &nudges, &cancel).await;
        reader_cancel.cancel();
        let _ = reader.await;
    }
}

/// The reader: subscribe, decode, filter, merge into `pending`; re-subscribe with backoff.
async fn read_stream(socket: PathBuf, pending: Arc<Pending>, cancel: CancellationToken) {
    let mut backoff = MIN_RESUBSCRIBE_BACKOFF;
    let mut subscribed_before = false;
    loop {
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            c = connect_channel(&socket) => c.map_err(|e| e.to_string()),
        };
        let subscribed = match connected {
            Err(error) => Err(error),
            Ok(channel) => {
                let native = NativeClient::new(channel);
                let subscribing = native.subscribe(&TOPICS);
                tokio::pin!(subscribing);
                let early = tokio::select! {
                    () = cancel.cancelled() => return,
                    r = &mut subscribing => Some(r),
                    () = tokio::time::sleep(SUBSCRIBE_SETTLE) => None,
                };
                if early.as_ref().is_none_or(Result::is_ok) {
                    info!(message = "Subscribed to containerd events.", socket = %socket.display());
                    if subscribed_before {
                        // Events in the gap are lost: a full resync catches up.
                        pending.request_resync();
                    }
                    subscribed_before = true;
                }
                let result = match early {
                    Some(r) => r,
                    None => tokio::select! {
                        () = cancel.cancelled() => return,
                        r = &mut subscribing => r,
                    },
                };
                result.map_err(|e| e.to_string())
            }
        };
        let mut stream = match subscribed {
            Ok(stream) => stream,
            Err(error) => {
                debug!(message = "Event subscription failed; retrying.", %error, retry_in = ?backoff);
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_RESUBSCRIBE_BACKOFF);
                continue;
            }
        };
        backoff = MIN_RESUBSCRIBE_BACKOFF;
        loop {
            let message = tokio::select! {
                () = cancel.cancelled() => return,
                m = stream.message() => m,
            };
            match message {
                Ok(Some(envelope)) => {
                    let Some(any) = envelope.event else { continue };
                    match RuntimeEvent::decode(&envelope.topic, &any.value) {
                        Ok(Some(event)) => {
                            if let Some((id, signal)) = event.signal() {
                                pending.push(id, signal);
                            }
                        }
                        Ok(None) => {}
                        Err(error) => {
                            warn!(message = "Undecodable containerd event skipped.", %error)
                        }
                    }
                }
                Ok(None) => {
                    warn!(message = "containerd closed the event stream; re-subscribing.");
                    crate::runtime_metrics::event_stream_reconnected();
                    break;
                }
                Err(status) => {
                    warn!(message = "containerd event stream broke; re-subscribing.", error = %status);
                    crate::runtime_metrics::event_stream_reconnected();
                    break;
                }
            }
        }
    }
}

/// The dispatcher: drains `pending` at the capped rate, drops sandboxes, nudges the loop.
async fn dispatch(
    socket: PathBuf,
    rate_per_sec: u32,
    pending: &Pending,
    nudges: &mpsc::Sender<Nudge>,
    cancel: &CancellationToken,
) {
    let interval = Duration::from_secs(1) / rate_per_sec;
    let mut kinds: HashMap<String, ContainerKind> = HashMap::new();
    let mut native: Option<NativeClient> = None;
    loop {
        let popped = loop {
            // Register for a wake-up before looking, so a push in between is not lost.
            let woken = pending.wake.notified();
            if let Some(p) = pending.pop() {
                break p;
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = woken => {}
            }
        };
        let nudge = match popped {
            Popped::Resync => {
                // Whatever containerd did during the gap, kinds of live ids do not change.
                native = None;
                Nudge::Resync
            }
            Popped::Id(id, signal, oom_killed) => {
                let kind = match kinds.get(&id) {
                    Some(kind) => Some(*kind),
                    None => {
                        let kind = lookup_kind(&socket, &mut native, &id, cancel).await;
                        if let Some(kind) = kind {
                            if kinds.len() >= KIND_CACHE_LIMIT {
                                kinds.clear();
                            }
                            kinds.insert(id.clone(), kind);
                        }
                        kind
                    }
                };
                if signal == Signal::Changed {
                    // A delete (or update) ends the id's life as far as the cache knows.
                    kinds.remove(&id);
                }
                if kind == Some(ContainerKind::Sandbox) {
                    continue;
                }
                let Some(expect) = signal.expect() else {
                    continue;
                };
                if oom_killed {
                    // Before the fetch, so the exit it may carry reads OOMKilled.
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        sent = nudges.send(Nudge::OomKilled { id: id.clone() }) => if sent.is_err() { return },
                    }
                }
                Nudge::Fetch { id, expect }
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            sent = nudges.send(nudge) => if sent.is_err() { return },
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The kind of `id`, or `None` when containerd no longer holds it or cannot be asked (the
/// loop's fetch then decides).
async fn lookup_kind(
    socket: &std::path::Path,
    native: &mut Option<NativeClient>,
    id: &str,
    cancel: &CancellationToken,
) -> Option<ContainerKind> {
    if native.is_none() {
        let channel = tokio::select! {
            () = cancel.cancelled() => return None,
            c = connect_channel(socket) => c.ok()?,
        };
        *native = Some(NativeClient::new(channel));
    }
    let client = native.as_ref()?;
    match client.container_kind(id).await {
        Ok(kind) => kind,
        Err(error) => {
            debug!(message = "Container kind lookup failed; treating it as a container.", container_id = %id, %error);
            *native = None;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode<M: Message>(m: &M) -> Vec<u8> {
        m.encode_to_vec()
    }

    #[test]
    fn task_start_and_exit_decode_by_topic() -> Result<(), RuntimeEventsError> {
        let start = encode(&TaskStart {
            container_id: "c1".into(),
            pid: 42,
        });
        assert_eq!(
            RuntimeEvent::decode("/tasks/start", &start)?,
            Some(RuntimeEvent::TaskStart {
                container_id: "c1".into(),
                pid: 42
            })
        );
        let exit = encode(&TaskExit {
            container_id: "c1".into(),
            id: "c1".into(),
            pid: 42,
            exit_status: 137,
            exited_at: None,
        });
        let event = RuntimeEvent::decode("/tasks/exit", &exit)?;
        assert_eq!(
            event.as_ref().and_then(RuntimeEvent::signal),
            Some((
                "c1",
                Signal::Exited {
                    exit_code: 137,
                    exited_at_nanos: 0
                }
            ))
        );
        Ok(())
    }

    #[test]
    fn an_exec_exit_is_not_a_lifecycle_event() -> Result<(), RuntimeEventsError> {
        let exec_exit = encode(&TaskExit {
            container_id: "c1".into(),
            id: "exec-probe-7".into(),
            pid: 99,
            exit_status: 0,
            exited_at: None,
        });
        let event = RuntimeEvent::decode("/tasks/exit", &exec_exit)?;
        assert!(event.is_some(), "decodes");
        assert_eq!(event.as_ref().and_then(RuntimeEvent::signal), None);
        let exec_delete = encode(&TaskDelete {
            container_id: "c1".into(),
            id: "exec-probe-7".into(),
            pid: 99,
            exit_status: 0,
            exited_at: None,
        });
        assert_eq!(RuntimeEvent::decode("/tasks/delete", &exec_delete)?, None);
        Ok(())
    }

    #[test]
    fn container_events_and_unknown_topics() -> Result<(), RuntimeEventsError> {
        let delete = encode(&ContainerDelete { id: "c9".into() });
        let event = RuntimeEvent::decode("/containers/delete", &delete)?;
        assert_eq!(
            event.as_ref().and_then(RuntimeEvent::signal),
            Some(("c9", Signal::Changed))
        );
        let create = encode(&ContainerCreate {
            id: "c9".into(),
            image: "busybox".into(),
            runtime: None,
        });
        let event = RuntimeEvent::decode("/containers/create", &create)?;
        assert_eq!(
            event.as_ref().and_then(RuntimeEvent::signal),
            Some(("c9", Signal::Created))
        );
        assert_eq!(Signal::Created.expect(), None, "nothing to fetch at create");
        assert_eq!(
            RuntimeEvent::decode("/snapshot/remove", b"\x0a\x01k")?,
            None
        );
        Ok(())
    }

    #[test]
    fn a_payload_of_the_wrong_shape_is_a_decode_error() {
        // Field 1 declared as a varint where TaskStart has a string.
        let err = RuntimeEvent::decode("/tasks/start", &[0x08, 0x01])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("containerd event on topic /tasks/start has a payload that does not decode as TaskStart"),
            "{err}"
        );
    }

    #[test]
    fn the_recorded_lab_sample_decodes_and_filters() -> Result<(), Box<dyn std::error::Error>> {
        // The lab's sample, re-encoded with prost from its JSON form.
        let sample = include_str!("../../tests/fixtures/containerd-1.6-native-events.jsonl");
        let mut signals = Vec::new();
        for line in sample.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let topic = v["topic"].as_str().unwrap_or_default();
            let e = &v["event"];
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            let n = |k: &str| u32::try_from(e[k].as_u64().unwrap_or(0)).unwrap_or(0);
            let bytes = match topic {
                "/tasks/start" => encode(&TaskStart {
                    container_id: s("container_id"),
                    pid: n("pid"),
                }),
                "/tasks/exit" => encode(&TaskExit {
                    container_id: s("container_id"),
                    id: s("id"),
                    pid: n("pid"),
                    exit_status: n("exit_status"),
                    exited_at: None,
                }),
                "/tasks/delete" => encode(&TaskDelete {
                    container_id: s("container_id"),
                    id: s("id"),
                    pid: n("pid"),
                    exit_status: n("exit_status"),
                    exited_at: None,
                }),
                "/containers/create" | "/containers/delete" => {
                    encode(&ContainerDelete { id: s("id") })
                }
                _ => Vec::new(),
            };
            if let Some((id, signal)) = RuntimeEvent::decode(topic, &bytes)?
                .as_ref()
                .and_then(RuntimeEvent::signal)
            {
                signals.push((id.to_owned(), signal));
            }
        }
        assert!(
            signals.iter().any(|(_, s)| *s
                == Signal::Exited {
                    exit_code: 137,
                    exited_at_nanos: 0
                }),
            "kill -9 exit seen: {signals:?}"
        );
        assert!(signals.iter().any(|(_, s)| *s == Signal::Started));
        Ok(())
    }

    #[test]
    fn pending_set_coalesces_and_keeps_the_exit() {
        let p = Pending::default();
        p.push("a", Signal::Started);
        p.push("b", Signal::Started);
        p.push(
            "a",
            Signal::Exited {
                exit_code: 3,
                exited_at_nanos: 0,
            },
        );
        p.push("a", Signal::Changed);
        p.request_resync();
        assert!(matches!(p.pop(), Some(Popped::Resync)));
        match p.pop() {
            Some(Popped::Id(id, signal, oom_killed)) => {
                assert!(!oom_killed);
                assert_eq!(id, "a");
                assert_eq!(
                    signal,
                    Signal::Exited {
                        exit_code: 3,
                        exited_at_nanos: 0
                    }
                );
            }
            _ => panic!("a pending"),
        }
        assert!(matches!(p.pop(), Some(Popped::Id(id, Signal::Started, false)) if id == "b"));
        assert!(p.pop().is_none(), "one entry per id");
    }

    #[test]
    fn merge_prefers_news_over_a_create_and_an_exit_over_a_delete() {
        assert_eq!(
            Signal::merge(Signal::Created, Signal::Started),
            Signal::Started
        );
        assert_eq!(
            Signal::merge(Signal::Started, Signal::Created),
            Signal::Started
        );
        assert_eq!(
            Signal::merge(
                Signal::Exited {
                    exit_code: 1,
                    exited_at_nanos: 0
                },
                Signal::Changed
            ),
            Signal::Exited {
                exit_code: 1,
                exited_at_nanos: 0
            }
        );
        assert_eq!(
            Signal::merge(
                Signal::Exited {
                    exit_code: 1,
                    exited_at_nanos: 0
                },
                Signal::Started
            ),
            Signal::Started,
            "a restart after the exit wins"
        );
    }

    #[test]
    fn an_oom_kill_survives_coalescing_with_the_exit_in_either_order() {
        let exit = Signal::Exited {
            exit_code: 137,
            exited_at_nanos: 5,
        };
        for events in [
            [Signal::OomKilled, exit, Signal::Changed],
            [exit, Signal::OomKilled, Signal::Changed],
        ] {
            let p = Pending::default();
            for e in events {
                p.push("a", e);
            }
            match p.pop() {
                Some(Popped::Id(id, signal, oom_killed)) => {
                    assert_eq!(id, "a");
                    assert_eq!(signal, exit, "the exit code is kept: {events:?}");
                    assert!(oom_killed, "the OOM kill is kept: {events:?}");
                }
                _ => panic!("a pending"),
            }
            assert!(p.pop().is_none());
        }
        // An OOM kill alone is a fetch, flagged.
        let p = Pending::default();
        p.push("b", Signal::OomKilled);
        assert!(matches!(p.pop(), Some(Popped::Id(id, Signal::OomKilled, true)) if id == "b"));
        assert_eq!(Signal::OomKilled.expect(), Some(Expect::Any));
    }

    #[test]
    fn the_oom_event_decodes_to_an_oom_kill() -> Result<(), RuntimeEventsError> {
        let oom = encode(&TaskOom {
            container_id: "c1".into(),
        });
        let event = RuntimeEvent::decode("/tasks/oom", &oom)?;
        assert_eq!(
            event.as_ref().and_then(RuntimeEvent::signal),
            Some(("c1", Signal::OomKilled))
        );
        Ok(())
    }
}
