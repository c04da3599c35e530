//! The discovery loop: from the runtime socket to lifecycle events.
//!
//! Owns the sync policy: a full fetch at start, an incremental sync every
//! `sync_period_secs` (list calls only; verbose status is fetched just for containers that
//! are new or whose cheap fingerprint changed; every `events_sync_period_secs` instead
//! while containerd's event stream is up), a full resync every `resync_period_secs`,
//! the reference's history rules, one fetch in flight per container with a generation,
//! bounded concurrent fetches, and reconnecting after runtime errors. It hands on
//! [`ContainerEvent`]s through a bounded channel, a readiness `watch`, and a shared view of
//! the [`ContainerTable`]. [`discover_once`] is the one-shot form behind `gannet list`.
//!
//! `sync_mode` picks how changes are learnt. In `events` (the default, containerd only) the
//! loop starts a [`crate::runtime::events::EventSource`] at its first connect; its
//! [`Nudge`]s mark containers dirty with what CRI should show ([`Expect`]), and a fetch
//! re-tries with a short backoff until CRI agrees (the start race) or a bounded wait ends;
//! a broken stream ends in a full resync. A pod newer than the last list is looked up with
//! one ListPodSandbox from the fetch itself. The periodic list stays as the safety net.
//! `poll` is the reference: the periodic list and one fetch at a time.
//!
//! The jobs, one module each: `config` (the `[runtime]` section), `fetch` (one
//! container), `full_sync` (every container once), `state` (what the loop tracks between
//! syncs), `dirs` (the one cache of upper and rootfs dirs) and this module (the loop).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

mod config;
mod dirs;
mod error;
mod exits;
mod fetch;
mod full_sync;
mod oom;
mod pod_ips;
mod state;

pub use config::{
    Config, SyncMode, MAX_CONCURRENT_FETCHES, MAX_EVENT_FETCH_RATE_PER_SEC, STATE_DIR_ENV,
};
pub use error::DiscoveryError;
pub use fetch::OOM_KILLED_REASON;
pub use full_sync::{discover_once, FullSync};
pub use state::SyncState;

use exits::ExitWatch;
use fetch::{FetchContext, Fetched};
use state::{fingerprint, list_runtime, Listed};

use crate::liveness::Liveness;
use crate::record::ContainerState;
use crate::runtime::cri::{ContainerSummary, CriApiVersion, CriError, CriState, SandboxSummary};
use crate::runtime::events::{EventSource, Expect, Nudge};
use crate::table::{ContainerEvent, ContainerTable, Generation};

/// First wait after a runtime error; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Nudges from the event source waiting for the loop: the event source coalesces before
/// this channel, so a small buffer suffices; when full the dispatcher waits (its pending set
/// keeps coalescing) and the reader is never blocked.
const NUDGE_BUFFER: usize = 256;
/// How long a removed container's final record stays in the table, so that a fetch
/// started before the removal cannot bring it back. Not a setting: it only has to
/// outlast the slowest fetch (60 s).
const REMOVED_RETENTION: Duration = Duration::from_secs(120);

/// A shared, read-only view of the container table (for the local API).
pub type SharedTable = Arc<RwLock<ContainerTable>>;

/// Result of one fetch task.
struct FetchOutcome {
    id: String,
    generation: Generation,
    result: Result<Fetched, CriError>,
}

/// The discovery loop. Build with [`Discovery::new`], take readiness and the table view,
/// then [`Discovery::run`] it.
pub struct Discovery {
    config: Config,
    ready: watch::Sender<bool>,
    table: SharedTable,
    nudge_tx: mpsc::Sender<Nudge>,
    nudge_rx: mpsc::Receiver<Nudge>,
}

impl Discovery {
    /// A loop for `config` (not started).
    pub fn new(config: Config) -> Self {
        let table = ContainerTable::new(REMOVED_RETENTION);
        let (ready, _) = watch::channel(false);
        let (nudge_tx, nudge_rx) = mpsc::channel(NUDGE_BUFFER);
        Self {
            config,
            ready,
            table: Arc::new(RwLock::new(table)),
            nudge_tx,
            nudge_rx,
        }
    }

    /// A sender of [`Nudge`]s, as the event source sends them: fetch a container now (an
    /// unknown id is fetched and added if it runs; one the loop finished with is skipped),
    /// or resync. In `events` mode the loop starts its own event source; this is for tests
    /// and other sources.
    pub fn nudge_sender(&self) -> mpsc::Sender<Nudge> {
        self.nudge_tx.clone()
    }

    /// Readiness: `true` once the first full sync is complete (every container it listed
    /// fetched and its event handed on) and while the runtime answers.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// A read-only view of the table (live records and recently removed ones).
    pub fn table(&self) -> SharedTable {
        Arc::clone(&self.table)
    }

    /// Runs until `cancel` fires or `events`' receiver is dropped, sending every lifecycle
    /// event on `events`. Runtime errors are logged and retried with backoff (the loop
    /// reconnects and resyncs when the runtime returns); they never end the loop.
    ///
    /// # Errors
    /// [`DiscoveryError::InvalidConfig`] before starting.
    pub async fn run(
        self,
        events: mpsc::Sender<ContainerEvent>,
        cancel: CancellationToken,
    ) -> Result<(), DiscoveryError> {
        self.config.validate()?;
        // Poll mode is the reference: one fetch at a time.
        let concurrency = match self.config.sync_mode {
            SyncMode::Events => self.config.max_concurrent_fetches,
            SyncMode::Poll => 1,
        };
        let exits = ExitWatch::new(
            self.nudge_tx.clone(),
            &self.config.host_root,
            self.config.sync_mode == SyncMode::Poll,
        );
        let mut runner = Runner {
            exits,
            config: self.config,
            ready: self.ready,
            table: self.table,
            nudges: self.nudge_rx,
            nudge_tx: self.nudge_tx,
            events,
            state: SyncState::new(),
            ctx: None,
            fetches: JoinSet::new(),
            limit: Arc::new(Semaphore::new(concurrency)),
            warned_not_containerd: false,
            first_sync: FirstSync::NotYet,
            cri_api: None,
            warned_poll_fallback: false,
            event_source: None,
            stream_up: watch::channel(false).1,
        };
        runner.run(cancel.clone()).await;
        if let Some((source_cancel, task)) = runner.event_source.take() {
            source_cancel.cancel();
            let _ = task.await;
        }
        Ok(())
    }
}

/// The running loop.
struct Runner {
    /// The pidfds of the running containers' processes.
    exits: ExitWatch,
    config: Config,
    ready: watch::Sender<bool>,
    table: SharedTable,
    nudges: mpsc::Receiver<Nudge>,
    /// Handed to the event source when it starts.
    nudge_tx: mpsc::Sender<Nudge>,
    events: mpsc::Sender<ContainerEvent>,
    state: SyncState,
    ctx: Option<FetchContext>,
    fetches: JoinSet<FetchOutcome>,
    limit: Arc<Semaphore>,
    warned_not_containerd: bool,
    /// Readiness waits for the first full sync to be complete: listed and fetched.
    first_sync: FirstSync,
    /// The CRI API version of the last connection.
    cri_api: Option<CriApiVersion>,
    warned_poll_fallback: bool,
    /// The running event source (`events` mode on containerd), started at first connect.
    event_source: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    /// Whether the event source's stream is subscribed now (false without one).
    stream_up: watch::Receiver<bool>,
}

/// How far the first full sync is: readiness means every container it listed has been
/// fetched and its event handed on, so the table is complete.
#[derive(Debug)]
enum FirstSync {
    /// No full list has come back yet.
    NotYet,
    /// Listed; these containers' first fetches have not finished.
    Fetching(HashSet<String>),
    /// Every container of the first full sync was fetched (or failed, or vanished).
    Done,
}

/// Whether the loop should keep going.
enum Flow {
    Continue,
    Stop,
}

impl Runner {
    async fn run(&mut self, cancel: CancellationToken) {
        let mut backoff = MIN_BACKOFF;
        let mut next_sync = tokio::time::Instant::now();
        let mut next_full = tokio::time::Instant::now();
        // The list calls run in their own task, so a slow runtime never stalls fetch
        // results or events; at most one list is in flight.
        let mut listing: JoinSet<Listed> = JoinSet::new();
        // A sync asked for while a list was in flight (`Some(full)`): runs right after it.
        let mut requested: Option<bool> = None;
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                Some(joined) = self.fetches.join_next(), if !self.fetches.is_empty() => {
                    let Ok(outcome) = joined else { continue };
                    if let Flow::Stop = self.on_fetched(outcome, &cancel).await {
                        break;
                    }
                }
                Ok(()) = self.stream_up.changed(), if self.event_source.is_some() => {
                    // The stream went down: back to the short period until it is up again.
                    if !*self.stream_up.borrow_and_update() {
                        next_sync = next_sync.min(tokio::time::Instant::now() + self.config.sync_period_secs);
                    }
                }
                Some(nudge) = self.nudges.recv() => {
                    if self.on_nudge(nudge) {
                        // Missed events: a full sync now.
                        next_sync = tokio::time::Instant::now();
                        next_full = next_sync;
                        if !listing.is_empty() {
                            requested = Some(true);
                        }
                    }
                }
                Some(joined) = listing.join_next(), if !listing.is_empty() => {
                    let Ok(listed) = joined else { continue };
                    let (full, started) = (listed.full, listed.started);
                    self.warned_not_containerd = listed.warned_not_containerd;
                    let result = match listed.result {
                        Ok((ctx, containers, sandboxes)) => {
                            if self.ctx.is_none() {
                                self.note_cri_api(ctx.cri.api_version());
                                self.ctx = Some(ctx.clone());
                                self.start_event_source(&cancel);
                            }
                            Ok(self.apply_lists(full, &ctx, containers, sandboxes, &cancel).await)
                        }
                        Err(error) => Err(error),
                    };
                    match result {
                        Ok(Flow::Stop) => break,
                        Ok(Flow::Continue) => {
                            backoff = MIN_BACKOFF;
                            if full {
                                next_full = started + self.config.resync_period_secs;
                            }
                            next_sync = tokio::time::Instant::now() + self.sync_period();
                        }
                        Err(error) => {
                            warn!(message = "Runtime sync failed; retrying.", %error, retry_in = ?backoff);
                            self.ctx = None;
                            self.set_ready(false);
                            next_sync = tokio::time::Instant::now() + backoff;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                    if let Some(full) = requested.take() {
                        next_sync = next_sync.min(tokio::time::Instant::now());
                        if full {
                            next_full = next_sync;
                        }
                    }
                }
                () = tokio::time::sleep_until(next_sync), if listing.is_empty() => {
                    let started = tokio::time::Instant::now();
                    let full = started >= next_full || self.ctx.is_none();
                    let (config, ctx) = (self.config.clone(), self.ctx.clone());
                    let warned = self.warned_not_containerd;
                    listing.spawn(list_runtime(config, ctx, warned, full, started));
                }
            }
        }
        listing.abort_all();
        self.fetches.abort_all();
        self.exits.clear();
        self.set_ready(false);
    }

    /// One sync from fresh lists: fingerprints, removals, fetch scheduling.
    async fn apply_lists(
        &mut self,
        full: bool,
        ctx: &FetchContext,
        containers: Vec<ContainerSummary>,
        sandboxes: Vec<SandboxSummary>,
        cancel: &CancellationToken,
    ) -> Flow {
        self.state.sandboxes = Arc::new(sandboxes.into_iter().map(|s| (s.id.clone(), s)).collect());
        let sandboxes = Arc::clone(&self.state.sandboxes);
        let mut listed: HashSet<&str> = HashSet::with_capacity(containers.len());
        let mut events = Vec::new();
        for c in &containers {
            listed.insert(&c.id);
            let state = c.state();
            let sandbox = sandboxes.get(&c.sandbox_id);
            let known = self.state.tracked.contains_key(&c.id);
            if !known {
                if self.state.history.contains(&c.id) {
                    continue;
                }
                match state {
                    CriState::Running => {}
                    CriState::Exited if c.created_at >= self.state.started_at_nanos => {}
                    CriState::Exited => {
                        // Exited before Gannet started: ignored, never fetched.
                        self.state.history.insert(c.id.clone());
                        continue;
                    }
                    CriState::Created | CriState::Unknown => continue,
                }
                self.state.mark_dirty(&c.id, &c.sandbox_id);
                if let Some(t) = self.state.tracked.get_mut(&c.id) {
                    t.fingerprint = fingerprint(c, sandbox, None);
                }
                continue;
            }
            let liveness = self.table_liveness(ctx, &c.id);
            let fp = fingerprint(c, sandbox, liveness);
            let changed = self
                .state
                .tracked
                .get(&c.id)
                .is_none_or(|t| t.fingerprint != fp);
            if changed || full {
                self.state.mark_dirty(&c.id, &c.sandbox_id);
                if let Some(t) = self.state.tracked.get_mut(&c.id) {
                    t.fingerprint = fp;
                }
            }
        }
        // Vanished: tracked but no longer listed.
        let vanished: Vec<String> = self
            .state
            .tracked
            .keys()
            .filter(|id| !listed.contains(id.as_str()))
            .cloned()
            .collect();
        for id in &vanished {
            let generation = self.state.generation();
            let removed = self.table_write(|t| t.remove(id, generation));
            events.extend(removed);
            self.state.forget(id);
            self.exits.unwatch(id);
        }
        if full {
            let listed_ids: HashSet<String> = listed.iter().map(|s| (*s).to_owned()).collect();
            self.state.history.retain(|id| listed_ids.contains(id));
        }
        self.table_write(|t| t.sweep(Instant::now()));
        self.start_fetches(ctx);
        if let Flow::Stop = self.send(events, cancel).await {
            return Flow::Stop;
        }
        for id in &vanished {
            self.first_sync_settled(Some(id));
        }
        if full && matches!(self.first_sync, FirstSync::NotYet) {
            let fetching: HashSet<String> = self
                .state
                .tracked
                .iter()
                .filter(|(id, t)| t.in_flight.is_some() || self.state.dirty.contains(*id))
                .map(|(id, _)| id.clone())
                .collect();
            self.first_sync = FirstSync::Fetching(fetching);
            self.first_sync_settled(None);
        }
        if matches!(self.first_sync, FirstSync::Done) {
            self.set_ready(true);
        }
        Flow::Continue
    }

    /// Notes that `id`'s fetch of the first full sync has finished (its events already
    /// handed on), or that it vanished; readiness comes with the last one.
    fn first_sync_settled(&mut self, id: Option<&str>) {
        let FirstSync::Fetching(waiting) = &mut self.first_sync else {
            return;
        };
        if let Some(id) = id {
            waiting.remove(id);
        }
        if waiting.is_empty() {
            self.first_sync = FirstSync::Done;
            self.set_ready(true);
        }
    }

    /// A [`Nudge`] from the event source. Returns true when a full sync is wanted now.
    /// A fetch nudge marks the container dirty with its expectation (an unknown id is
    /// tracked from here; one the loop finished with is skipped).
    fn on_nudge(&mut self, nudge: Nudge) -> bool {
        match nudge {
            Nudge::Resync => true,
            Nudge::OomKilled { id } => {
                // The id's fetch nudge follows; only a container still tracked (or new)
                // can take the fact. One already removed keeps the reason it was sent with.
                if let Some(t) = self.state.tracked.get_mut(&id) {
                    t.oom_killed = true;
                } else if !self.state.history.contains(&id) {
                    self.state.mark_dirty_expecting(&id, "", Expect::Any);
                    if let Some(t) = self.state.tracked.get_mut(&id) {
                        t.oom_killed = true;
                    }
                }
                false
            }
            Nudge::Fetch { id, expect } => {
                if !self.state.tracked.contains_key(&id) && self.state.history.contains(&id) {
                    // Finished with (exited and removed, or ignored). A restart in place
                    // (same id) is not something CRI does; the list would catch it.
                    return false;
                }
                self.state.mark_dirty_expecting(&id, "", expect);
                if let Some(ctx) = self.ctx.clone() {
                    self.start_fetches(&ctx);
                }
                false
            }
        }
    }

    /// The wait before the next incremental sync: `events_sync_period_secs` while the event
    /// stream is up (the list is only a safety net then; never shorter than
    /// `sync_period_secs`), else `sync_period_secs`.
    fn sync_period(&self) -> Duration {
        if self.event_source.is_some() && *self.stream_up.borrow() {
            self.config
                .events_sync_period_secs
                .max(self.config.sync_period_secs)
        } else {
            self.config.sync_period_secs
        }
    }

    /// Starts the event source once, in `events` mode on containerd; otherwise warns once
    /// and stays with polling.
    fn start_event_source(&mut self, cancel: &CancellationToken) {
        if self.event_source.is_some() || self.config.sync_mode != SyncMode::Events {
            return;
        }
        let Some(ctx) = &self.ctx else { return };
        let runtime = &ctx.cri.runtime_version().runtime_name;
        if runtime != "containerd" {
            if !self.warned_poll_fallback {
                warn!(
                    message = "Runtime is not containerd; sync_mode events falls back to poll.",
                    runtime = %runtime,
                );
                self.warned_poll_fallback = true;
                self.limit = Arc::new(Semaphore::new(1));
                // No exit events will come: a pidfd's exit fetches at once.
                self.exits.set_nudge_on_exit(true);
            }
            return;
        }
        let source = EventSource::new(
            ctx.cri.socket().to_path_buf(),
            self.config.event_fetch_rate_per_sec,
        );
        let source_cancel = cancel.child_token();
        let (stream_up_tx, stream_up) = watch::channel(false);
        self.stream_up = stream_up;
        let task =
            tokio::spawn(source.run(self.nudge_tx.clone(), stream_up_tx, source_cancel.clone()));
        self.event_source = Some((source_cancel, task));
    }

    /// Notes the CRI API version a connect negotiated. A change from the connection before
    /// (the runtime was upgraded or downgraded in place) is said in the log and counted.
    fn note_cri_api(&mut self, version: CriApiVersion) {
        let changed = self.cri_api.is_some_and(|before| before != version);
        if let (true, Some(before)) = (changed, self.cri_api) {
            warn!(
                message = "The runtime's CRI API version changed; renegotiated without a restart.",
                before = before.as_str(),
                now = version.as_str(),
            );
        }
        crate::runtime::metrics::cri_api_negotiated(
            version.as_str(),
            &CriApiVersion::ALL.map(CriApiVersion::as_str),
            changed,
        );
        self.cri_api = Some(version);
    }

    /// Publishes readiness, waking watchers only on a change.
    fn set_ready(&self, ready: bool) {
        self.ready.send_if_modified(|current| {
            let changed = *current != ready;
            *current = ready;
            changed
        });
    }

    /// Liveness of a live container's pid, from the record the table holds; no `/proc`
    /// read while its pidfd is watched (the kernel says when it exits).
    fn table_liveness(&self, ctx: &FetchContext, id: &str) -> Option<Liveness> {
        if self.exits.is_watched(id) {
            return Some(Liveness::Alive);
        }
        let table = self.table.read().ok()?;
        let record = table.get(id)?;
        let started = record.started.map(|t| t.unix_nanos).unwrap_or(0);
        Some(ctx.liveness.check(record.pid, started))
    }

    fn table_write<T: Default>(&self, f: impl FnOnce(&mut ContainerTable) -> T) -> T {
        match self.table.write() {
            Ok(mut t) => f(&mut t),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Starts a fetch for every dirty container without one in flight.
    fn start_fetches(&mut self, ctx: &FetchContext) {
        let dirty: Vec<String> = self.state.dirty.iter().cloned().collect();
        for id in dirty {
            let Some(t) = self.state.tracked.get_mut(&id) else {
                self.state.dirty.remove(&id);
                continue;
            };
            if t.in_flight.is_some() {
                continue;
            }
            self.state.dirty.remove(&id);
            let generation = t.wanted;
            t.in_flight = Some(generation);
            let expect = std::mem::take(&mut t.expect);
            let oom_killed = t.oom_killed;
            let sandbox_id = t.sandbox_id.clone();
            let sandboxes = Arc::clone(&self.state.sandboxes);
            let cached = self.state.dirs.get(&id);
            let (ctx, limit) = (ctx.clone(), Arc::clone(&self.limit));
            self.fetches.spawn(async move {
                let result = ctx
                    .fetch_agreeing(
                        &limit,
                        expect,
                        oom_killed,
                        &sandbox_id,
                        &id,
                        sandboxes,
                        cached,
                    )
                    .await;
                FetchOutcome {
                    id,
                    generation,
                    result,
                }
            });
        }
    }

    /// Applies one fetch result to the table and sends its events.
    async fn on_fetched(&mut self, outcome: FetchOutcome, cancel: &CancellationToken) -> Flow {
        let FetchOutcome {
            id,
            generation,
            result,
        } = outcome;
        let Some(t) = self.state.tracked.get_mut(&id) else {
            // Forgotten while in flight (vanished): the result is stale.
            self.first_sync_settled(Some(&id));
            return Flow::Continue;
        };
        if t.in_flight == Some(generation) {
            t.in_flight = None;
        }
        let mut events = Vec::new();
        match result {
            Ok(fetched) => {
                if let Some(fresh) = fetched.sandboxes {
                    self.state.sandboxes = fresh;
                }
                let record = fetched.record;
                let dead_but_cri_running =
                    record.state == ContainerState::Exited && record.exit_code.is_none();
                if matches!(
                    record.state,
                    ContainerState::Unknown | ContainerState::Created
                ) {
                    // Not started yet (a create event), or the runtime cannot tell (just
                    // after its restart): keep the last record, if any. The change to
                    // RUNNING or EXITED changes the fingerprint and fetches again.
                    debug!(message = "Container not running or exited yet; keeping its last record.", container_id = %id, state = %record.state);
                } else if dead_but_cri_running && !t.suspect_dead {
                    // CRI has not noticed the exit yet (or the pid was reused): look again
                    // next sync before removing, so the removal carries the exit code.
                    t.suspect_dead = true;
                    t.fingerprint = 0;
                } else {
                    t.suspect_dead = false;
                    let terminal = record.state == ContainerState::Exited;
                    let process = (record.state == ContainerState::Running).then(|| {
                        let started = record.started.map(|t| t.unix_nanos).unwrap_or(0);
                        (record.pid, started)
                    });
                    self.state.dirs.remember(&id, &fetched.dirs);
                    events = self.table_write(|table| table.apply(record, generation));
                    self.state.history.insert(id.clone());
                    if terminal {
                        self.state.forget(&id);
                        self.exits.unwatch(&id);
                    } else if let (Some((pid, started)), Some(ctx)) = (process, &self.ctx) {
                        let liveness = &ctx.liveness;
                        self.exits
                            .watch(&id, pid, || liveness.check(pid, started) == Liveness::Alive);
                    }
                }
            }
            Err(e) if e.is_not_found() => {
                let generation = self.state.generation();
                events.extend(self.table_write(|table| table.remove(&id, generation)));
                self.state.history.insert(id.clone());
                self.state.forget(&id);
                self.exits.unwatch(&id);
            }
            Err(error) => {
                warn!(message = "Container status fetch failed; will retry next sync.", container_id = %id, %error);
                t.fingerprint = 0;
            }
        }
        // A newer wish arrived while this fetch ran: fetch again.
        if let Some(t) = self.state.tracked.get(&id) {
            if t.in_flight.is_none() && t.wanted > generation {
                self.state.dirty.insert(id.clone());
            }
        }
        if let Some(ctx) = self.ctx.clone() {
            self.start_fetches(&ctx);
        }
        let flow = self.send(events, cancel).await;
        self.first_sync_settled(Some(&id));
        flow
    }

    async fn send(&self, events: Vec<ContainerEvent>, cancel: &CancellationToken) -> Flow {
        if !events.is_empty() {
            if let Ok(table) = self.table.read() {
                crate::runtime::metrics::containers_by_state(
                    table.records().iter().map(|r| r.state),
                );
            }
        }
        for event in events {
            crate::runtime::metrics::lifecycle_event(event.lifecycle);
            debug!(
                message = "Container lifecycle event.",
                lifecycle = %event.lifecycle,
                container_id = %event.record.id,
            );
            tokio::select! {
                () = cancel.cancelled() => return Flow::Stop,
                sent = self.events.send(event) => if sent.is_err() {
                    warn!(message = "Discovery event receiver dropped; stopping discovery.");
                    return Flow::Stop;
                },
            }
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests;
