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

use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::runtime::containerd::{ContainerKind, NativeClient};
use crate::runtime::cri::connect_channel;

mod decode;
mod nudge;
pub use decode::{RuntimeEvent, RuntimeEventsError, Signal, TOPICS};
pub use nudge::{Expect, Nudge};

/// First wait before re-subscribing; doubles up to [`MAX_RESUBSCRIBE_BACKOFF`].
const MIN_RESUBSCRIBE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between subscription attempts.
const MAX_RESUBSCRIBE_BACKOFF: Duration = Duration::from_secs(2);
/// Time given to a subscription request to reach containerd before the resync that
/// catches up on the gap starts (containerd answers a subscription only with its first
/// event, so there is no acknowledgement to wait for).
const SUBSCRIBE_SETTLE: Duration = Duration::from_millis(50);
/// A stream that ends sooner than this after subscribing ended "at once".
const SHORT_STREAM: Duration = Duration::from_secs(1);
/// Streams in a row that end at once before the reader gives the stream up: the loop's
/// periodic list (polling) then carries discovery alone.
const QUICK_ENDS_BEFORE_POLLING: u32 = 5;
/// While polling, how often the stream is tried again.
const POLLING_RETRY: Duration = Duration::from_secs(300);

/// What the reader does after a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextTry {
    /// Subscribe again after this long.
    After(Duration),
    /// The stream keeps ending at once: say so once, then try again after
    /// [`POLLING_RETRY`] and rely on the periodic list meanwhile.
    FallBackToPolling,
}

/// When to subscribe again: at once after a stream that lasted, with a growing backoff
/// after streams that end at once, and rarely once they keep doing so, so a runtime whose
/// stream ends at once gets no reconnect storm (and no resync storm).
#[derive(Debug)]
struct Resubscribe {
    backoff: Duration,
    quick_ends: u32,
    polling: bool,
}

impl Resubscribe {
    fn new() -> Self {
        Self {
            backoff: MIN_RESUBSCRIBE_BACKOFF,
            quick_ends: 0,
            polling: false,
        }
    }

    /// The subscription itself failed: the wait before the next try.
    fn failed(&mut self) -> Duration {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_RESUBSCRIBE_BACKOFF);
        wait
    }

    /// A stream ended `lasted` after it was subscribed.
    fn ended(&mut self, lasted: Duration) -> NextTry {
        if lasted >= SHORT_STREAM {
            *self = Self::new();
            return NextTry::After(Duration::ZERO);
        }
        self.quick_ends += 1;
        if self.polling {
            return NextTry::After(POLLING_RETRY);
        }
        if self.quick_ends >= QUICK_ENDS_BEFORE_POLLING {
            self.polling = true;
            return NextTry::FallBackToPolling;
        }
        NextTry::After(self.failed())
    }

    /// Whether a subscription or a stream's end is worth a log line above debug: not while
    /// streams keep ending at once.
    fn worth_telling(&self) -> bool {
        self.quick_ends == 0
    }
}
/// Most ids remembered in the kind cache; past it the cache is cleared (ids are removed
/// on `/containers/delete`, so this only bounds leaks from missed deletes).
const KIND_CACHE_LIMIT: usize = 65_536;

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
    /// `stream_up` says whether a stream is subscribed now: the loop lists rarely while it
    /// is (`events_sync_period_secs`).
    pub async fn run(
        self,
        nudges: mpsc::Sender<Nudge>,
        stream_up: watch::Sender<bool>,
        cancel: CancellationToken,
    ) {
        let pending = Arc::new(Pending::default());
        let reader_cancel = cancel.child_token();
        let reader = tokio::spawn(read_stream(
            self.socket.clone(),
            Arc::clone(&pending),
            stream_up,
            reader_cancel.clone(),
        ));
        dispatch(self.socket, self.rate_per_sec, &pending, &nudges, &cancel).await;
        reader_cancel.cancel();
        let _ = reader.await;
    }
}

/// The reader: subscribe, decode, filter, merge into `pending`; re-subscribe with backoff.
async fn read_stream(
    socket: PathBuf,
    pending: Arc<Pending>,
    stream_up: watch::Sender<bool>,
    cancel: CancellationToken,
) {
    let mut retry = Resubscribe::new();
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
                    if retry.worth_telling() {
                        info!(message = "Subscribed to containerd events.", socket = %socket.display());
                    } else {
                        debug!(message = "Subscribed to containerd events again.", socket = %socket.display());
                    }
                    if subscribed_before {
                        // Events in the gap are lost: a full resync catches up.
                        pending.request_resync();
                    }
                    subscribed_before = true;
                    stream_up.send_replace(true);
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
                stream_up.send_replace(false);
                let wait = retry.failed();
                debug!(message = "Event subscription failed; retrying.", %error, retry_in = ?wait);
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        let since = tokio::time::Instant::now();
        let ended = loop {
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
                Ok(None) => break "containerd closed the event stream".to_string(),
                Err(status) => break format!("containerd event stream broke: {status}"),
            }
        };
        stream_up.send_replace(false);
        crate::runtime::metrics::event_stream_reconnected();
        let telling = retry.worth_telling();
        let wait = match retry.ended(since.elapsed()) {
            NextTry::After(wait) => {
                if telling {
                    warn!(message = "Event stream ended; re-subscribing.", reason = %ended, retry_in = ?wait);
                } else {
                    debug!(message = "Event stream ended again at once; re-subscribing.", reason = %ended, retry_in = ?wait);
                }
                wait
            }
            NextTry::FallBackToPolling => {
                warn!(
                    message = "containerd's event stream keeps ending at once; falling back to polling (the periodic list) and trying the stream again every 5 minutes.",
                    reason = %ended,
                    ends_in_a_row = QUICK_ENDS_BEFORE_POLLING,
                );
                POLLING_RETRY
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
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
mod tests;
