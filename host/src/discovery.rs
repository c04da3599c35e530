//! The discovery loop: from the runtime socket to lifecycle events.
//!
//! Owns the sync policy: a full fetch at start, an incremental sync every
//! `sync_period_secs` (list calls only; verbose status is fetched just for containers that
//! are new or whose cheap fingerprint changed), a full resync every `resync_period_secs`,
//! the reference's history rules, one fetch in flight per container with a generation,
//! bounded concurrent fetches, the rootfs and upperdir caches, and reconnecting after
//! runtime errors. It hands on [`ContainerEvent`]s through a bounded channel, a readiness
//! `watch`, and a shared view of the [`ContainerTable`]. [`discover_once`] is the one-shot
//! form behind `gannet list`.
//!
//! `sync_mode` picks how changes are learnt. In `events` (the default, containerd only) the
//! loop starts a [`crate::runtime::events::EventSource`] at its first connect; its
//! [`Nudge`]s mark containers dirty with what CRI should show ([`Expect`]), and a fetch
//! re-tries with a short backoff until CRI agrees (the start race) or [`AGREE_WAIT`]
//! ends; a broken stream ends in a full resync. A pod newer than the last list is looked
//! up with one ListPodSandbox from the fetch itself. The periodic list stays as the
//! safety net. `poll` is the reference: the periodic list and one fetch at a time.
//! [`Discovery::dirty_sender`] remains a plain hook: an id sent there is fetched at once;
//! an unknown id triggers an immediate sync so its pod is listed with it.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::convert::{build_record, find_rootfs, parse_verbose_info, RecordSource};
use crate::liveness::{HostRoot, Liveness, LivenessChecker};
use crate::record::{ContainerRecord, ContainerState};
use crate::runtime::containerd::NativeClient;
use crate::runtime::cri::{
    resolve_socket, ContainerSummary, CriClient, CriError, CriState, SandboxSummary,
    FULL_FETCH_TIMEOUT, SOCKET_ENV,
};
use crate::runtime::events::{EventSource, Expect, Nudge};
use crate::table::{ContainerEvent, ContainerTable, Generation};
use crate::validate::{invalid, FieldError};

/// First wait after a runtime error; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Directories searched for a container's rootfs after `containerd_state_dir` and
/// `$CONTAINERD_STATE_DIR` (the reference's list).
const DEFAULT_STATE_DIRS: [&str; 2] = ["/run/containerd", "/var/run/containerd"];
/// Ids waiting to be marked dirty: room for a burst of runtime events (a node drain stops
/// hundreds of containers at once); a full buffer makes the sender wait, and the periodic
/// sync remains the safety net.
const DIRTY_BUFFER: usize = 1024;
/// Nudges from the event source waiting for the loop: the event source coalesces before
/// this channel, so a small buffer suffices; when full the dispatcher waits (its pending set
/// keeps coalescing) and the reader is never blocked.
const NUDGE_BUFFER: usize = 256;
/// Environment variable naming containerd's state directory (the reference's name).
pub const STATE_DIR_ENV: &str = "CONTAINERD_STATE_DIR";

/// Discovery's settings: the `[runtime]` section of the config file, deserialized
/// straight into this type. Every field's doc comment is its reference text
/// (`docs/configuration.md`); [`Config::validate`] is the one check of their bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The containerd / CRI unix socket. `--socket` and then `$CONTAINERD_SOCK_PATH` take
    /// precedence; unset, it is `/run/containerd/containerd.sock`.
    pub socket: Option<PathBuf>,
    /// The `--socket` flag, which wins over everything (set by the CLI, never from a file).
    #[serde(skip)]
    pub socket_flag: Option<PathBuf>,
    /// Where the node's root filesystem is mounted (`/` unless Gannet runs in a
    /// container); `/proc`, hostname files and rootfs directories are read under it.
    pub host_root: PathBuf,
    /// How discovery learns about changes: `events` (containerd's event stream plus the
    /// periodic list) or `poll` (the periodic list only, one fetch at a time: the
    /// reference behaviour). A runtime that is not containerd falls back to `poll` with a
    /// warning.
    pub sync_mode: SyncMode,
    /// Seconds between incremental syncs: list calls, plus verbose fetches of the
    /// containers that are new or whose list fields changed. At least 1.
    #[serde(with = "secs")]
    pub sync_period_secs: Duration,
    /// Seconds between full resyncs (every container fetched again, history pruned), a
    /// safety net for missed events. At least `sync_period_secs`.
    #[serde(with = "secs")]
    pub resync_period_secs: Duration,
    /// Most verbose-status fetches in flight at once in `events` mode (`poll` fetches one
    /// at a time). 1 to [`MAX_CONCURRENT_FETCHES`].
    pub max_concurrent_fetches: usize,
    /// Most containers fetched per second because of runtime events (`events` mode; the
    /// reference caps at 200); a burst beyond it is coalesced and caught up. 1 to
    /// [`MAX_EVENT_FETCH_RATE_PER_SEC`].
    pub event_fetch_rate_per_sec: u32,
    /// Largest gap, in milliseconds, between a pid's start time and CRI `started_at` for
    /// the pid to count as the container's (a larger gap means the pid was reused).
    #[serde(with = "millis")]
    pub pid_start_tolerance_ms: Duration,
    /// containerd's state directory, searched first for the rootfs (then
    /// `$CONTAINERD_STATE_DIR`, `/run/containerd`, `/var/run/containerd`).
    pub containerd_state_dir: Option<PathBuf>,
    /// Ask containerd's snapshot service for the overlay upperdir of each container.
    pub detect_upper_dir: bool,
    /// Seconds SIGTERM may spend draining: discovery stops first, then in-flight records
    /// finish the chain and the outputs flush. Read by `gannet run`, not by the loop.
    #[serde(with = "secs")]
    pub shutdown_grace_period_secs: Duration,
}

/// Highest `max_concurrent_fetches`: more fetches in flight only queue inside the runtime,
/// which serves them from one process.
pub const MAX_CONCURRENT_FETCHES: usize = 256;

/// Highest `event_fetch_rate_per_sec`: well above any real churn (the reference caps at
/// 200), low enough that the dispatcher's tick stays a real interval.
pub const MAX_EVENT_FETCH_RATE_PER_SEC: u32 = 10_000;

/// How long a removed container's final record stays in the table, so that a fetch
/// started before the removal cannot bring it back. Not a setting: it only has to
/// outlast the slowest fetch (60 s).
const REMOVED_RETENTION: Duration = Duration::from_secs(120);

/// How the loop learns about changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// containerd's event stream plus the periodic list.
    #[default]
    Events,
    /// The periodic list only, with sequential fetches (the reference behaviour).
    Poll,
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Events => "events",
            Self::Poll => "poll",
        })
    }
}

impl std::str::FromStr for SyncMode {
    type Err = DiscoveryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "events" => Ok(Self::Events),
            "poll" => Ok(Self::Poll),
            _ => Err(DiscoveryError::InvalidSyncMode {
                value: s.to_owned(),
            }),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            socket: None,
            socket_flag: None,
            host_root: PathBuf::from("/"),
            sync_mode: SyncMode::Events,
            sync_period_secs: Duration::from_secs(3),
            resync_period_secs: Duration::from_secs(300),
            max_concurrent_fetches: 16,
            event_fetch_rate_per_sec: 200,
            pid_start_tolerance_ms: Duration::from_millis(3000),
            containerd_state_dir: None,
            detect_upper_dir: true,
            shutdown_grace_period_secs: Duration::from_secs(10),
        }
    }
}

impl Config {
    /// The socket to use: `--socket`, then `$CONTAINERD_SOCK_PATH`, then `socket`, then
    /// the default.
    pub fn resolved_socket(&self) -> PathBuf {
        resolve_socket(
            self.socket_flag.as_deref(),
            std::env::var_os(SOCKET_ENV),
            self.socket.as_deref(),
        )
    }

    /// Checks what serde cannot: the bounds of every field. `gannet config check`,
    /// `gannet run` and the loop itself all call this one check.
    ///
    /// # Errors
    /// The first field out of bounds, named relative to the section
    /// (`resync_period_secs`), with its value and the fix.
    pub fn validate(&self) -> Result<(), FieldError> {
        let secs = |d: Duration| d.as_secs();
        if self.sync_period_secs.is_zero() {
            return Err(invalid(
                "sync_period_secs",
                secs(self.sync_period_secs),
                "must be at least 1 (the default is 3)",
            ));
        }
        if self.resync_period_secs < self.sync_period_secs {
            return Err(invalid(
                "resync_period_secs",
                secs(self.resync_period_secs),
                format!(
                    "must be at least sync_period_secs ({}): a full resync is also a sync (the default is 300)",
                    secs(self.sync_period_secs)
                ),
            ));
        }
        if !(1..=MAX_CONCURRENT_FETCHES).contains(&self.max_concurrent_fetches) {
            return Err(invalid(
                "max_concurrent_fetches",
                self.max_concurrent_fetches,
                format!("must be from 1 to {MAX_CONCURRENT_FETCHES} (the default is 16)"),
            ));
        }
        if !(1..=MAX_EVENT_FETCH_RATE_PER_SEC).contains(&self.event_fetch_rate_per_sec) {
            return Err(invalid(
                "event_fetch_rate_per_sec",
                self.event_fetch_rate_per_sec,
                format!("must be from 1 to {MAX_EVENT_FETCH_RATE_PER_SEC} (containers per second; the default is 200)"),
            ));
        }
        Ok(())
    }

    fn state_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.containerd_state_dir.iter().cloned().collect();
        if let Some(env) = std::env::var_os(STATE_DIR_ENV).filter(|v| !v.is_empty()) {
            dirs.push(PathBuf::from(env));
        }
        dirs.extend(DEFAULT_STATE_DIRS.iter().map(PathBuf::from));
        dirs
    }
}

/// Serde for a `Duration` written as whole seconds.
mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Serde for a `Duration` written as whole milliseconds.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

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
    /// A setting is out of bounds (see [`Config::validate`]).
    #[error(transparent)]
    InvalidConfig(#[from] FieldError),
}

/// A shared, read-only view of the container table (for the local API).
pub type SharedTable = Arc<RwLock<ContainerTable>>;

/// Everything a fetch needs, cheap to clone into a task.
#[derive(Clone)]
struct FetchContext {
    cri: CriClient,
    native: Option<NativeClient>,
    liveness: LivenessChecker,
    root: HostRoot,
    state_dirs: Arc<Vec<PathBuf>>,
}

/// What one fetch produced, plus the cache entries it found.
struct Fetched {
    record: ContainerRecord,
    upper_dir: Option<String>,
    rootfs_dir: Option<String>,
    /// A fresh ListPodSandbox, when the container's pod was not in the map (a pod created
    /// after the last sync, seen first through an event).
    sandboxes: Option<Arc<HashMap<String, SandboxSummary>>>,
}

/// First wait before fetching again a container whose CRI state lags its event.
const AGREE_MIN_BACKOFF: Duration = Duration::from_millis(2);
/// Longest wait between such fetches (a ContainerStatus costs about 0.4 ms).
const AGREE_MAX_BACKOFF: Duration = Duration::from_millis(20);
/// Longest time CRI may lag a start event; then the loop takes what CRI says.
const AGREE_WAIT: Duration = Duration::from_secs(2);
/// Longest time CRI may lag an exit event. containerd's CRI marks a container EXITED only
/// after deleting its task, 25–100 ms after the exit on this hardware; past this wait a
/// container whose pid is gone is reported exited from the event (code, time) instead, so
/// `removed` is not late by CRI's bookkeeping.
const EXIT_AGREE_WAIT: Duration = Duration::from_millis(10);

/// The reason CRI gives an exit after a `/tasks/oom` (containerd's CRI sets it on the OOM
/// event, whatever the exit code).
pub const OOM_KILLED_REASON: &str = "OOMKilled";

/// CRI still says RUNNING but the pid is gone (the record reads exited without a code):
/// takes the exit event's code and time, and the reason CRI will give (`Completed` for 0,
/// else `Error`; `OOMKilled` is set by [`oom_killed_reason`]). A record in any other
/// state is left alone.
fn exited_from_event(record: &mut ContainerRecord, exit_code: i32, exited_at_nanos: i64) {
    if record.state != ContainerState::Exited || record.exit_code.is_some() {
        return;
    }
    record.exit_code = Some(exit_code);
    if record.finished.is_none() {
        record.finished = crate::record::Timestamp::from_unix_nanos(exited_at_nanos);
    }
    if record.reason.is_none() {
        let reason = if exit_code == 0 { "Completed" } else { "Error" };
        record.reason = Some(reason.to_owned());
    }
}

/// An exited record of a container that had a `/tasks/oom`: reason `OOMKilled`, which is
/// what CRI reports once its own handler of that event ran (it may still say `Error` for
/// a moment when Gannet fetches first). A live record is left alone.
fn oom_killed_reason(record: &mut ContainerRecord, oom_killed: bool) {
    if oom_killed && record.state == ContainerState::Exited {
        record.reason = Some(OOM_KILLED_REASON.to_owned());
    }
}

impl FetchContext {
    /// `ContainerStatus(verbose)` -> record, with liveness, upperdir and rootfs.
    async fn fetch(
        &self,
        summary_sandbox_id: &str,
        id: &str,
        sandboxes: &Arc<HashMap<String, SandboxSummary>>,
        cached_upper: Option<String>,
        cached_rootfs: Option<String>,
    ) -> Result<Fetched, CriError> {
        let status = self.cri.container_status(id).await?;
        let info = parse_verbose_info(&status.info);
        if !info.problems.is_empty() {
            warn!(
                message = "Container verbose info partly unreadable; reporting the fields that could be read.",
                container_id = %id,
                problems = ?info.problems,
            );
        }
        // The list's sandbox id, else the info's (a container known only from an event).
        let sandbox_id = if summary_sandbox_id.is_empty() {
            info.sandbox_id.clone().unwrap_or_default()
        } else {
            summary_sandbox_id.to_owned()
        };
        let mut refreshed = None;
        if !sandbox_id.is_empty() && !sandboxes.contains_key(&sandbox_id) {
            // A pod newer than the last list: one ListPodSandbox, shared with the loop.
            match self.cri.list_sandboxes().await {
                Ok(list) => {
                    refreshed = Some(Arc::new(
                        list.into_iter().map(|s| (s.id.clone(), s)).collect(),
                    ));
                }
                Err(error) => {
                    debug!(message = "Sandbox list for a new pod failed.", container_id = %id, %error)
                }
            }
        }
        let sandbox = refreshed.as_ref().unwrap_or(sandboxes).get(&sandbox_id);
        let liveness = match status.state() {
            CriState::Running => self
                .liveness
                .check(info.pid.unwrap_or(0), status.started_at),
            _ => Liveness::Gone,
        };
        let mut record = build_record(
            RecordSource {
                status: &status,
                info: &info,
                sandbox,
                sandbox_id: &sandbox_id,
                runtime_name: &self.cri.runtime_version().runtime_name,
                liveness,
            },
            &self.root,
        );
        let upper_dir = match (
            cached_upper,
            &self.native,
            &info.snapshotter,
            &info.snapshot_key,
        ) {
            (Some(dir), _, _, _) => Some(dir),
            (None, Some(native), Some(snapshotter), Some(key)) => {
                match native.upper_dir(snapshotter, key).await {
                    Ok(dir) => dir,
                    Err(error) => {
                        debug!(message = "Snapshot upperdir not found.", container_id = %id, %error);
                        None
                    }
                }
            }
            _ => None,
        };
        let rootfs_dir =
            cached_rootfs.or_else(|| find_rootfs(&self.root, &self.state_dirs, &record.id));
        record.upper_dir = upper_dir.clone();
        record.rootfs_dir = rootfs_dir.clone();
        Ok(Fetched {
            record,
            upper_dir,
            rootfs_dir,
            sandboxes: refreshed,
        })
    }

    /// [`Self::fetch`] until the record shows what `expect` announced, with a short
    /// backoff, for at most [`AGREE_WAIT`]; each attempt holds one `limit` permit, the
    /// waits between attempts hold none. Errors end it at once. `oom_killed`: the
    /// container had a `/tasks/oom`, so an exited record reads `OOMKilled`.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_agreeing(
        &self,
        limit: &Semaphore,
        expect: Expect,
        oom_killed: bool,
        sandbox_id: &str,
        id: &str,
        sandboxes: Arc<HashMap<String, SandboxSummary>>,
        mut cached_upper: Option<String>,
        mut cached_rootfs: Option<String>,
    ) -> Result<Fetched, CriError> {
        let wait = match expect {
            Expect::Exited { .. } => EXIT_AGREE_WAIT,
            Expect::Any | Expect::Running => AGREE_WAIT,
        };
        let deadline = Instant::now() + wait;
        let mut backoff = AGREE_MIN_BACKOFF;
        let mut sandboxes = sandboxes;
        let mut refreshed = None;
        loop {
            let mut fetched = {
                let _permit = limit.acquire().await;
                self.fetch(
                    sandbox_id,
                    id,
                    &sandboxes,
                    cached_upper.clone(),
                    cached_rootfs.clone(),
                )
                .await?
            };
            if let Some(fresh) = fetched.sandboxes.take() {
                sandboxes = Arc::clone(&fresh);
                refreshed = Some(fresh);
            }
            let agreed = expect.agrees(&fetched.record);
            if agreed || Instant::now() >= deadline {
                if let (
                    false,
                    Expect::Exited {
                        exit_code,
                        exited_at_nanos,
                    },
                ) = (agreed, expect)
                {
                    exited_from_event(&mut fetched.record, exit_code, exited_at_nanos);
                }
                oom_killed_reason(&mut fetched.record, oom_killed);
                fetched.sandboxes = refreshed;
                return Ok(fetched);
            }
            debug!(message = "CRI lags the runtime event; fetching again.", container_id = %id, ?expect, retry_in = ?backoff);
            cached_upper = cached_upper.or_else(|| fetched.upper_dir.clone());
            cached_rootfs = cached_rootfs.or_else(|| fetched.rootfs_dir.clone());
            // Never sleep past the deadline: the last attempt runs at the deadline, not
            // up to a whole backoff step after it (that overshoot was up to 8 ms of an
            // exit's 10 ms wait).
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(AGREE_MAX_BACKOFF);
        }
    }
}

/// Connects and builds the fetch context; warns once when the runtime is not containerd.
async fn connect(
    config: &Config,
    warned_not_containerd: &mut bool,
) -> Result<FetchContext, CriError> {
    let socket = config.resolved_socket();
    let cri = CriClient::connect(&socket).await?;
    let runtime = cri.runtime_version().runtime_name.clone();
    let native = if !config.detect_upper_dir {
        None
    } else if runtime == "containerd" {
        Some(NativeClient::new(cri.channel()))
    } else {
        if !*warned_not_containerd {
            warn!(
                message = "Runtime is not containerd; going on without the native client (no upper_dir).",
                runtime = %runtime,
            );
            *warned_not_containerd = true;
        }
        None
    };
    info!(
        message = "Connected to the container runtime.",
        socket = %socket.display(),
        runtime = %runtime,
        runtime_version = %cri.runtime_version().runtime_version,
        cri_api = ?cri.api_version(),
    );
    let root = HostRoot::new(&config.host_root);
    Ok(FetchContext {
        liveness: LivenessChecker::new(root.clone(), config.pid_start_tolerance_ms),
        root,
        cri,
        native,
        state_dirs: Arc::new(config.state_dirs()),
    })
}

/// One-shot discovery for `gannet list`: every running container (with `include_all`,
/// also the created and exited ones the runtime still holds), sorted by namespace, pod
/// and container name.
///
/// # Errors
/// [`DiscoveryError::Cri`] when the runtime cannot be reached or a list call fails;
/// [`DiscoveryError::FullFetchTimedOut`] after 60 s. A single container's failed fetch
/// is logged and that container skipped.
pub async fn discover_once(
    config: &Config,
    include_all: bool,
) -> Result<Vec<ContainerRecord>, DiscoveryError> {
    FullSync::connect(config).await?.run(include_all).await
}

/// A full sync on a connected runtime, as the loop's full resync does it: one
/// ListContainers, one ListPodSandbox, then a verbose fetch per container, at most
/// `max_concurrent_fetches` in flight. The upperdir and rootfs caches persist across
/// [`FullSync::run`] calls (for a container's life, as in the loop), so the first run
/// also asks the snapshot service for each upperdir and later runs do not. Behind
/// [`discover_once`]; public so benchmarks can time a sync without the connect.
pub struct FullSync {
    ctx: FetchContext,
    max_concurrent_fetches: usize,
    caches: std::sync::Mutex<HashMap<String, CachedDirs>>,
}

/// A live container's upperdir and rootfs dir, found by an earlier [`FullSync::run`].
type CachedDirs = (Option<String>, Option<String>);

impl FullSync {
    /// Connects to the runtime `config` names (CRI version negotiation included).
    ///
    /// # Errors
    /// [`DiscoveryError::InvalidConfig`] or [`DiscoveryError::Cri`] when the runtime
    /// cannot be reached.
    pub async fn connect(config: &Config) -> Result<Self, DiscoveryError> {
        config.validate()?;
        let mut warned = false;
        let ctx = connect(config, &mut warned).await?;
        Ok(Self {
            ctx,
            max_concurrent_fetches: config.max_concurrent_fetches,
            caches: std::sync::Mutex::default(),
        })
    }

    /// Every running container (with `include_all`, also created and exited ones), sorted
    /// by namespace, pod and container name.
    ///
    /// # Errors
    /// [`DiscoveryError::Cri`] when a list call fails; [`DiscoveryError::FullFetchTimedOut`]
    /// after 60 s. A single container's failed fetch is logged and that container skipped.
    pub async fn run(&self, include_all: bool) -> Result<Vec<ContainerRecord>, DiscoveryError> {
        let ctx = &self.ctx;
        let socket = ctx.cri.socket().to_path_buf();
        let work = async {
            let containers = ctx.cri.list_containers().await?;
            let sandboxes: HashMap<String, SandboxSummary> = ctx
                .cri
                .list_sandboxes()
                .await?
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect();
            let sandboxes = Arc::new(sandboxes);
            let limit = Arc::new(Semaphore::new(self.max_concurrent_fetches));
            let cached = match self.caches.lock() {
                Ok(c) => c.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            let mut tasks = JoinSet::new();
            for c in containers {
                if !include_all && c.state() != CriState::Running {
                    continue;
                }
                let (upper, rootfs) = cached.get(&c.id).cloned().unwrap_or_default();
                let (ctx, sandboxes, limit) =
                    (ctx.clone(), Arc::clone(&sandboxes), Arc::clone(&limit));
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    let result = ctx
                        .fetch(&c.sandbox_id, &c.id, &sandboxes, upper, rootfs)
                        .await;
                    (c.id, result)
                });
            }
            let mut records = Vec::new();
            let mut found = HashMap::new();
            while let Some(joined) = tasks.join_next().await {
                let Ok((id, result)) = joined else { continue };
                match result {
                    Ok(f) => {
                        let keep = include_all || f.record.state == ContainerState::Running;
                        if f.record.state == ContainerState::Running {
                            found.insert(id, (f.upper_dir, f.rootfs_dir));
                        }
                        if keep {
                            records.push(f.record);
                        }
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(error) => {
                        warn!(message = "Container status fetch failed; skipping it.", container_id = %id, %error)
                    }
                }
            }
            // Only live containers stay cached, as in the loop.
            match self.caches.lock() {
                Ok(mut c) => *c = found,
                Err(poisoned) => *poisoned.into_inner() = found,
            }
            records.sort_by(|a, b| {
                (&a.k8s.namespace, &a.k8s.pod_name, &a.name, &a.id).cmp(&(
                    &b.k8s.namespace,
                    &b.k8s.pod_name,
                    &b.name,
                    &b.id,
                ))
            });
            Ok::<_, DiscoveryError>(records)
        };
        tokio::time::timeout(FULL_FETCH_TIMEOUT, work)
            .await
            .map_err(|_| DiscoveryError::FullFetchTimedOut { socket })?
    }
}

/// Per-container sync bookkeeping.
#[derive(Debug, Default)]
struct Tracked {
    /// Fingerprint of the list fields (+ liveness) at the last sync; 0 forces a fetch.
    fingerprint: u64,
    /// Generation of the newest wish to fetch.
    wanted: Generation,
    /// Generation of the fetch in flight, if any.
    in_flight: Option<Generation>,
    /// The last fetch saw CRI RUNNING with a dead pid; a second such fetch confirms it.
    suspect_dead: bool,
    /// Sandbox id from the list.
    sandbox_id: String,
    /// What the next fetch should wait for CRI to show (from a runtime event).
    expect: Expect,
    /// A `/tasks/oom` was seen for it: its exit reads `OOMKilled`.
    oom_killed: bool,
}

/// The loop's state: tracked containers, history, caches, generations.
pub struct SyncState {
    tracked: HashMap<String, Tracked>,
    /// Ids already fetched or deliberately ignored (exited before Gannet started).
    history: HashSet<String>,
    /// Ids whose fetch is wanted and not yet started (the dirty set).
    dirty: HashSet<String>,
    next_generation: Generation,
    sandboxes: Arc<HashMap<String, SandboxSummary>>,
    upper_dirs: HashMap<String, String>,
    rootfs_dirs: HashMap<String, String>,
    started_at_nanos: i64,
}

impl SyncState {
    fn new() -> Self {
        Self {
            tracked: HashMap::new(),
            history: HashSet::new(),
            dirty: HashSet::new(),
            next_generation: 1,
            sandboxes: Arc::new(HashMap::new()),
            upper_dirs: HashMap::new(),
            rootfs_dirs: HashMap::new(),
            started_at_nanos: crate::record::Timestamp::now().unix_nanos,
        }
    }

    fn generation(&mut self) -> Generation {
        self.next_generation += 1;
        self.next_generation
    }

    /// Marks a container for a fresh fetch (the hook for runtime events): its wanted
    /// generation grows, and a fetch starts as soon as none is in flight for it.
    pub fn mark_dirty(&mut self, id: &str, sandbox_id: &str) {
        self.mark_dirty_expecting(id, sandbox_id, Expect::Any);
    }

    /// [`Self::mark_dirty`] for a runtime event: the fetch waits (briefly) until CRI shows
    /// what `expect` says. A pending exit is not weakened by vaguer news.
    pub fn mark_dirty_expecting(&mut self, id: &str, sandbox_id: &str, expect: Expect) {
        let generation = self.generation();
        let t = self.tracked.entry(id.to_owned()).or_default();
        t.wanted = generation;
        if !sandbox_id.is_empty() {
            t.sandbox_id = sandbox_id.to_owned();
        }
        if !(matches!(t.expect, Expect::Exited { .. }) && expect == Expect::Any) {
            t.expect = expect;
        }
        self.dirty.insert(id.to_owned());
    }

    fn forget(&mut self, id: &str) {
        self.tracked.remove(id);
        self.dirty.remove(id);
        self.upper_dirs.remove(id);
        self.rootfs_dirs.remove(id);
    }
}

/// Fingerprint of what the list calls say about a container, plus its liveness.
fn fingerprint(
    c: &ContainerSummary,
    sandbox: Option<&SandboxSummary>,
    liveness: Option<Liveness>,
) -> u64 {
    let mut h = DefaultHasher::new();
    c.state().hash(&mut h);
    c.attempt.hash(&mut h);
    c.name.hash(&mut h);
    c.image_ref.hash(&mut h);
    c.labels.iter().collect::<BTreeMap<_, _>>().hash(&mut h);
    c.annotations
        .iter()
        .collect::<BTreeMap<_, _>>()
        .hash(&mut h);
    if let Some(sb) = sandbox {
        sb.ready.hash(&mut h);
        sb.attempt.hash(&mut h);
        sb.name.hash(&mut h);
        sb.namespace.hash(&mut h);
        sb.uid.hash(&mut h);
        sb.labels.iter().collect::<BTreeMap<_, _>>().hash(&mut h);
        sb.annotations
            .iter()
            .collect::<BTreeMap<_, _>>()
            .hash(&mut h);
    }
    // Alive and "not checked yet" (first sight) hash alike, so a new container's first
    // fetch is not followed by a second one only because liveness became known.
    liveness.filter(|l| *l != Liveness::Alive).hash(&mut h);
    // 0 is reserved for "force a fetch".
    h.finish().max(1)
}

/// Result of one list task.
struct Listed {
    full: bool,
    started: tokio::time::Instant,
    warned_not_containerd: bool,
    result: Result<(FetchContext, Vec<ContainerSummary>, Vec<SandboxSummary>), DiscoveryError>,
}

/// The list calls of one sync (connecting first when there is no context), as a task.
async fn list_runtime(
    config: Config,
    ctx: Option<FetchContext>,
    mut warned_not_containerd: bool,
    full: bool,
    started: tokio::time::Instant,
) -> Listed {
    let result = async {
        let ctx = match ctx {
            Some(ctx) => ctx,
            None => connect(&config, &mut warned_not_containerd).await?,
        };
        let containers = ctx.cri.list_containers().await?;
        let sandboxes = ctx.cri.list_sandboxes().await?;
        Ok((ctx, containers, sandboxes))
    }
    .await;
    Listed {
        full,
        started,
        warned_not_containerd,
        result,
    }
}

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
    dirty_tx: mpsc::Sender<String>,
    dirty_rx: mpsc::Receiver<String>,
    nudge_tx: mpsc::Sender<Nudge>,
    nudge_rx: mpsc::Receiver<Nudge>,
}

impl Discovery {
    /// A loop for `config` (not started).
    pub fn new(config: Config) -> Self {
        let table = ContainerTable::new(REMOVED_RETENTION);
        let (ready, _) = watch::channel(false);
        let (dirty_tx, dirty_rx) = mpsc::channel(DIRTY_BUFFER);
        let (nudge_tx, nudge_rx) = mpsc::channel(NUDGE_BUFFER);
        Self {
            config,
            ready,
            table: Arc::new(RwLock::new(table)),
            dirty_tx,
            dirty_rx,
            nudge_tx,
            nudge_rx,
        }
    }

    /// A sender of container ids to fetch now, without waiting for the next sync: the hook
    /// for runtime events (containerd's event stream, issue 5). Ids the loop already
    /// finished with (exited and removed, or ignored) are skipped; an unknown id is fetched
    /// and added if it runs.
    pub fn dirty_sender(&self) -> mpsc::Sender<String> {
        self.dirty_tx.clone()
    }

    /// A sender of [`Nudge`]s, the richer form of [`Self::dirty_sender`] the event source
    /// uses (what CRI should show; resync requests). In `events` mode the loop starts its
    /// own event source; this is for tests and other sources.
    pub fn nudge_sender(&self) -> mpsc::Sender<Nudge> {
        self.nudge_tx.clone()
    }

    /// Readiness: `true` once the first full sync is done and while the runtime answers.
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
        let mut runner = Runner {
            config: self.config,
            ready: self.ready,
            table: self.table,
            dirty: self.dirty_rx,
            nudges: self.nudge_rx,
            nudge_tx: self.nudge_tx,
            events,
            state: SyncState::new(),
            ctx: None,
            fetches: JoinSet::new(),
            limit: Arc::new(Semaphore::new(concurrency)),
            warned_not_containerd: false,
            first_full_done: false,
            warned_poll_fallback: false,
            event_source: None,
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
    config: Config,
    ready: watch::Sender<bool>,
    table: SharedTable,
    dirty: mpsc::Receiver<String>,
    nudges: mpsc::Receiver<Nudge>,
    /// Handed to the event source when it starts.
    nudge_tx: mpsc::Sender<Nudge>,
    events: mpsc::Sender<ContainerEvent>,
    state: SyncState,
    ctx: Option<FetchContext>,
    fetches: JoinSet<FetchOutcome>,
    limit: Arc<Semaphore>,
    warned_not_containerd: bool,
    first_full_done: bool,
    warned_poll_fallback: bool,
    /// The running event source (`events` mode on containerd), started at first connect.
    event_source: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
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
                Some(id) = self.dirty.recv() => {
                    if self.on_dirty(id) {
                        next_sync = tokio::time::Instant::now();
                        if !listing.is_empty() {
                            requested = Some(requested.unwrap_or(false));
                        }
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
                            next_sync = tokio::time::Instant::now() + self.config.sync_period_secs;
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
        for id in vanished {
            let generation = self.state.generation();
            let removed = self.table_write(|t| t.remove(&id, generation));
            events.extend(removed);
            self.state.forget(&id);
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
        if full && !self.first_full_done {
            self.first_full_done = true;
        }
        if self.first_full_done {
            self.set_ready(true);
        }
        Flow::Continue
    }

    /// An id from [`Discovery::dirty_sender`]. A tracked container is fetched now; an
    /// unknown one asks for a sync now (returns true), so its pod is listed with it; one
    /// the loop finished with (exited, or ignored) is skipped.
    fn on_dirty(&mut self, id: String) -> bool {
        if !self.state.tracked.contains_key(&id) {
            return !self.state.history.contains(&id);
        }
        self.state.mark_dirty(&id, "");
        if let Some(ctx) = self.ctx.clone() {
            self.start_fetches(&ctx);
        }
        false
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
            }
            return;
        }
        let source = EventSource::new(
            ctx.cri.socket().to_path_buf(),
            self.config.event_fetch_rate_per_sec,
        );
        let source_cancel = cancel.child_token();
        let task = tokio::spawn(source.run(self.nudge_tx.clone(), source_cancel.clone()));
        self.event_source = Some((source_cancel, task));
    }

    /// Publishes readiness, waking watchers only on a change.
    fn set_ready(&self, ready: bool) {
        self.ready.send_if_modified(|current| {
            let changed = *current != ready;
            *current = ready;
            changed
        });
    }

    /// Liveness of a live container's pid, from the record the table holds.
    fn table_liveness(&self, ctx: &FetchContext, id: &str) -> Option<Liveness> {
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
            let cached_upper = self.state.upper_dirs.get(&id).cloned();
            let cached_rootfs = self.state.rootfs_dirs.get(&id).cloned();
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
                        cached_upper,
                        cached_rootfs,
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
                    if let Some(dir) = fetched.upper_dir {
                        self.state.upper_dirs.insert(id.clone(), dir);
                    }
                    if let Some(dir) = fetched.rootfs_dir {
                        self.state.rootfs_dirs.insert(id.clone(), dir);
                    }
                    events = self.table_write(|table| table.apply(record, generation));
                    self.state.history.insert(id.clone());
                    if terminal {
                        self.state.forget(&id);
                    }
                }
            }
            Err(e) if e.is_not_found() => {
                let generation = self.state.generation();
                events.extend(self.table_write(|table| table.remove(&id, generation)));
                self.state.history.insert(id.clone());
                self.state.forget(&id);
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
        self.send(events, cancel).await
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
mod tests {
    use super::*;

    impl Runner {
        /// A loop that is not running (no runtime), to drive its handlers directly.
        fn for_tests() -> Self {
            let d = Discovery::new(Config::default());
            let (events, _) = mpsc::channel(1);
            Runner {
                config: d.config,
                ready: d.ready,
                table: d.table,
                dirty: d.dirty_rx,
                nudges: d.nudge_rx,
                nudge_tx: d.nudge_tx,
                events,
                state: SyncState::new(),
                ctx: None,
                fetches: JoinSet::new(),
                limit: Arc::new(Semaphore::new(1)),
                warned_not_containerd: false,
                first_full_done: false,
                warned_poll_fallback: false,
                event_source: None,
            }
        }
    }

    #[test]
    fn config_defaults_match_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.sync_period_secs, Duration::from_secs(3));
        assert_eq!(c.resync_period_secs, Duration::from_secs(300));
        assert_eq!(c.shutdown_grace_period_secs, Duration::from_secs(10));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn config_parses_from_toml_and_rejects_unknown_keys() -> Result<(), Box<dyn std::error::Error>>
    {
        let c: Config = toml::from_str(
            "socket = \"/x.sock\"\nsync_period_secs = 5\npid_start_tolerance_ms = 500\nmax_concurrent_fetches = 4\n",
        )?;
        assert_eq!(c.socket.as_deref(), Some(std::path::Path::new("/x.sock")));
        assert_eq!(c.sync_period_secs, Duration::from_secs(5));
        assert_eq!(c.pid_start_tolerance_ms, Duration::from_millis(500));
        assert_eq!(
            c.resync_period_secs,
            Duration::from_secs(300),
            "unset keys keep defaults"
        );
        let err = toml::from_str::<Config>("sync_period = 5")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown field `sync_period`"), "{err}");
        let err = toml::from_str::<Config>("socket_flag = \"/y\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown field"),
            "the flag is not a file key: {err}"
        );
        Ok(())
    }

    #[test]
    fn out_of_bounds_values_are_rejected_with_the_field_and_the_fix() {
        let err = |c: Config| {
            c.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            err(Config {
                max_concurrent_fetches: 0,
                ..Config::default()
            }),
            "config field max_concurrent_fetches = \"0\": must be from 1 to 256 (the default is 16)"
        );
        assert_eq!(
            err(Config {
                sync_period_secs: Duration::ZERO,
                ..Config::default()
            }),
            "config field sync_period_secs = \"0\": must be at least 1 (the default is 3)"
        );
        assert_eq!(
            err(Config {
                resync_period_secs: Duration::from_secs(2),
                ..Config::default()
            }),
            "config field resync_period_secs = \"2\": must be at least sync_period_secs (3): a full resync is also a sync (the default is 300)"
        );
    }

    #[test]
    fn sync_mode_defaults_to_events_and_parses_poll() -> Result<(), Box<dyn std::error::Error>> {
        assert_eq!(Config::default().sync_mode, SyncMode::Events);
        assert_eq!(Config::default().event_fetch_rate_per_sec, 200);
        let c: Config = toml::from_str("sync_mode = \"poll\"\nevent_fetch_rate_per_sec = 50\n")?;
        assert_eq!(c.sync_mode, SyncMode::Poll);
        assert_eq!(c.event_fetch_rate_per_sec, 50);
        assert!(toml::from_str::<Config>("sync_mode = \"push\"").is_err());
        assert_eq!("events".parse::<SyncMode>()?, SyncMode::Events);
        let err = "Poll"
            .parse::<SyncMode>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(err, "sync mode \"Poll\" is not known; use events or poll");
        assert_eq!(SyncMode::Poll.to_string(), "poll");
        Ok(())
    }

    fn record(state: ContainerState, pid: u32, exit_code: Option<i32>) -> ContainerRecord {
        ContainerRecord {
            state,
            pid,
            exit_code,
            ..ContainerRecord::default()
        }
    }

    #[test]
    fn expectations_agree_only_with_what_the_event_announced() {
        let created = record(ContainerState::Created, 0, None);
        let running = record(ContainerState::Running, 42, None);
        let running_no_pid = record(ContainerState::Running, 0, None);
        let exited = record(ContainerState::Exited, 0, Some(137));
        let dead_but_cri_running = record(ContainerState::Exited, 0, None);
        assert!(Expect::Any.agrees(&created));
        assert!(!Expect::Running.agrees(&created), "the start race");
        assert!(!Expect::Running.agrees(&running_no_pid));
        assert!(Expect::Running.agrees(&running));
        assert!(Expect::Running.agrees(&exited), "already over");
        let exit = Expect::Exited {
            exit_code: 137,
            exited_at_nanos: 0,
        };
        assert!(!exit.agrees(&running));
        assert!(
            !exit.agrees(&dead_but_cri_running),
            "CRI has not noticed yet"
        );
        assert!(exit.agrees(&exited));
    }

    #[test]
    fn an_exit_cri_has_not_seen_takes_the_event_facts() {
        let mut dead = record(ContainerState::Exited, 0, None);
        exited_from_event(&mut dead, 137, 1_700_000_000_000_000_000);
        assert_eq!(dead.exit_code, Some(137));
        assert_eq!(dead.reason.as_deref(), Some("Error"));
        assert_eq!(
            dead.finished.map(|t| t.unix_nanos),
            Some(1_700_000_000_000_000_000)
        );
        let mut alive = record(ContainerState::Running, 42, None);
        exited_from_event(&mut alive, 137, 1);
        assert_eq!(alive.exit_code, None, "a live pid is not overruled");
        let mut confirmed = record(ContainerState::Exited, 0, Some(3));
        exited_from_event(&mut confirmed, 137, 1);
        assert_eq!(confirmed.exit_code, Some(3), "CRI's code wins");
    }

    #[test]
    fn an_oom_kill_makes_the_exit_read_oom_killed_as_cri_will() {
        // CRI has not noticed the exit yet: the event's facts, and OOMKilled.
        let mut dead = record(ContainerState::Exited, 0, None);
        exited_from_event(&mut dead, 137, 7);
        oom_killed_reason(&mut dead, true);
        assert_eq!(dead.exit_code, Some(137));
        assert_eq!(dead.reason.as_deref(), Some("OOMKilled"));
        // CRI already says EXITED but its OOM handler has not run yet (reason Error).
        let mut exited = record(ContainerState::Exited, 0, Some(137));
        exited.reason = Some("Error".into());
        oom_killed_reason(&mut exited, true);
        assert_eq!(exited.reason.as_deref(), Some("OOMKilled"));
        // No OOM event: CRI's reason stands.
        let mut plain = record(ContainerState::Exited, 0, Some(137));
        plain.reason = Some("Error".into());
        oom_killed_reason(&mut plain, false);
        assert_eq!(plain.reason.as_deref(), Some("Error"));
        // A child OOM-killed in a container that keeps running: no exit reason invented.
        let mut alive = record(ContainerState::Running, 42, None);
        oom_killed_reason(&mut alive, true);
        assert_eq!(alive.reason, None);
    }

    #[test]
    fn an_oom_nudge_flags_the_container_for_its_exit() {
        let mut r = Runner::for_tests();
        r.state.mark_dirty("a", "sb");
        assert!(!r.on_nudge(Nudge::OomKilled { id: "a".into() }));
        assert_eq!(r.state.tracked.get("a").map(|t| t.oom_killed), Some(true));
        // Unknown (not yet listed): tracked from here, flagged, to be fetched.
        assert!(!r.on_nudge(Nudge::OomKilled { id: "b".into() }));
        assert_eq!(r.state.tracked.get("b").map(|t| t.oom_killed), Some(true));
        assert!(r.state.dirty.contains("b"));
        // Finished with: ignored.
        r.state.history.insert("c".into());
        assert!(!r.on_nudge(Nudge::OomKilled { id: "c".into() }));
        assert!(!r.state.tracked.contains_key("c"));
    }

    #[test]
    fn a_pending_exit_is_not_weakened_by_vaguer_news() {
        let mut s = SyncState::new();
        s.mark_dirty_expecting(
            "a",
            "",
            Expect::Exited {
                exit_code: 1,
                exited_at_nanos: 0,
            },
        );
        s.mark_dirty("a", "sb");
        assert_eq!(
            s.tracked.get("a").map(|t| t.expect),
            Some(Expect::Exited {
                exit_code: 1,
                exited_at_nanos: 0
            })
        );
        s.mark_dirty_expecting("a", "", Expect::Running);
        assert_eq!(s.tracked.get("a").map(|t| t.expect), Some(Expect::Running));
    }

    fn summary(state: CriState, attempt: u32) -> ContainerSummary {
        ContainerSummary {
            id: "c".into(),
            state: Some(state),
            attempt,
            labels: HashMap::from([("a".to_owned(), "1".to_owned())]),
            ..Default::default()
        }
    }

    #[test]
    fn fingerprint_changes_with_state_attempt_sandbox_and_liveness() {
        let base = fingerprint(&summary(CriState::Running, 0), None, Some(Liveness::Alive));
        assert_eq!(
            base,
            fingerprint(&summary(CriState::Running, 0), None, Some(Liveness::Alive))
        );
        assert_ne!(
            base,
            fingerprint(&summary(CriState::Exited, 0), None, Some(Liveness::Alive))
        );
        assert_ne!(
            base,
            fingerprint(&summary(CriState::Running, 1), None, Some(Liveness::Alive))
        );
        assert_ne!(
            base,
            fingerprint(&summary(CriState::Running, 0), None, Some(Liveness::Gone))
        );
        assert_eq!(
            base,
            fingerprint(&summary(CriState::Running, 0), None, None)
        );
        let sb = SandboxSummary {
            ready: true,
            ..Default::default()
        };
        assert_ne!(
            base,
            fingerprint(
                &summary(CriState::Running, 0),
                Some(&sb),
                Some(Liveness::Alive)
            )
        );
    }

    #[test]
    fn mark_dirty_grows_the_generation_and_fills_the_dirty_set() {
        let mut s = SyncState::new();
        s.mark_dirty("a", "sb");
        let first = s.tracked.get("a").map(|t| t.wanted).unwrap_or(0);
        s.mark_dirty("a", "");
        let second = s.tracked.get("a").map(|t| t.wanted).unwrap_or(0);
        assert!(second > first);
        assert!(s.dirty.contains("a"));
        assert_eq!(
            s.tracked.get("a").map(|t| t.sandbox_id.as_str()),
            Some("sb")
        );
    }
}
