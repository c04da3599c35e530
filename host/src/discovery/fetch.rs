//! One container's fetch: `ContainerStatus(verbose)` turned into a record with its
//! liveness, upper dir and rootfs, re-tried while CRI lags a runtime event (the start
//! race), and the connection every fetch shares ([`FetchContext`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::config::Config;
use super::dirs::Dirs;
use super::pod_ips::PodIpCache;
use crate::convert::{build_record, find_rootfs, parse_verbose_info, RecordSource};
use crate::liveness::{HostRoot, Liveness, LivenessChecker};
use crate::record::{ContainerRecord, ContainerState};
use crate::runtime::containerd::NativeClient;
use crate::runtime::cri::{CriClient, CriError, CriState, SandboxSummary};
use crate::runtime::events::Expect;

/// Everything a fetch needs, cheap to clone into a task.
#[derive(Clone)]
pub(super) struct FetchContext {
    pub(super) cri: CriClient,
    pub(super) native: Option<NativeClient>,
    pub(super) liveness: LivenessChecker,
    pub(super) root: HostRoot,
    pub(super) state_dirs: Arc<Vec<PathBuf>>,
    pub(super) pod_ips: PodIpCache,
    pub(super) node_name: Arc<str>,
}

/// What one fetch produced, plus the dirs it found (for the cache).
pub(super) struct Fetched {
    pub(super) record: ContainerRecord,
    pub(super) dirs: Dirs,
    /// A fresh ListPodSandbox, when the container's pod was not in the map (a pod created
    /// after the last sync, seen first through an event).
    pub(super) sandboxes: Option<Arc<HashMap<String, SandboxSummary>>>,
}

/// First wait before fetching again a container whose CRI state lags its event.
const AGREE_MIN_BACKOFF: Duration = Duration::from_millis(2);
/// Longest wait between such fetches (a ContainerStatus costs about 0.4 ms).
const AGREE_MAX_BACKOFF: Duration = Duration::from_millis(20);
/// Longest time CRI may lag a start event; then the loop takes what CRI says.
const AGREE_WAIT: Duration = Duration::from_secs(2);
/// How long CRI may lag an exit event: not at all. containerd's CRI marks a container
/// EXITED only after deleting its task, 25–100 ms after the exit on this hardware, so one
/// fetch decides: a container whose pid is gone is reported exited from the event (code,
/// time; CRI's own handler takes them from the same event), and its reason from the event
/// stream's `/tasks/oom` or the kernel's OOM count ([`super::oom`]). A wait here only made
/// `removed` late by CRI's bookkeeping (it was 10 ms, which CRI nearly never met).
const EXIT_AGREE_WAIT: Duration = Duration::ZERO;

/// The reason CRI gives an exit after a `/tasks/oom` (containerd's CRI sets it on the OOM
/// event, whatever the exit code).
pub const OOM_KILLED_REASON: &str = "OOMKilled";

/// CRI still says RUNNING but the pid is gone (the record reads exited without a code):
/// takes the exit event's code and time, and the reason CRI will give (`Completed` for 0,
/// else `Error`; `OOMKilled` is set by [`oom_killed_reason`]). A record in any other
/// state is left alone.
pub(super) fn exited_from_event(
    record: &mut ContainerRecord,
    exit_code: i32,
    exited_at_nanos: i64,
) {
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
pub(super) fn oom_killed_reason(record: &mut ContainerRecord, oom_killed: bool) {
    if oom_killed && record.state == ContainerState::Exited {
        record.reason = Some(OOM_KILLED_REASON.to_owned());
    }
}

impl FetchContext {
    /// `ContainerStatus(verbose)` -> record, with liveness, upperdir and rootfs.
    pub(super) async fn fetch(
        &self,
        summary_sandbox_id: &str,
        id: &str,
        sandboxes: &Arc<HashMap<String, SandboxSummary>>,
        cached: Dirs,
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
        let live = refreshed.as_ref().unwrap_or(sandboxes);
        let sandbox = live.get(&sandbox_id);
        let pod_ips = match sandbox {
            Some(_) => self.pod_ips.get(&self.cri, &sandbox_id, live).await,
            None => Arc::from([]),
        };
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
                pod_ips: &pod_ips,
                node_name: &self.node_name,
            },
            &self.root,
        );
        let upper_dir = match (
            cached.upper,
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
        let rootfs_dir = cached
            .rootfs
            .or_else(|| find_rootfs(&self.root, &self.state_dirs, &record.id));
        record.upper_dir = upper_dir.clone();
        record.rootfs_dir = rootfs_dir.clone();
        Ok(Fetched {
            record,
            dirs: Dirs {
                upper: upper_dir,
                rootfs: rootfs_dir,
            },
            sandboxes: refreshed,
        })
    }

    /// [`Self::fetch`] until the record shows what `expect` announced, with a short
    /// backoff, for at most [`AGREE_WAIT`]; each attempt holds one `limit` permit, the
    /// waits between attempts hold none. Errors end it at once. `oom_killed`: the
    /// container had a `/tasks/oom`, so an exited record reads `OOMKilled`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn fetch_agreeing(
        &self,
        limit: &Semaphore,
        expect: Expect,
        oom_killed: bool,
        sandbox_id: &str,
        id: &str,
        sandboxes: Arc<HashMap<String, SandboxSummary>>,
        mut cached: Dirs,
    ) -> Result<Fetched, CriError> {
        let wait = match expect {
            Expect::Exited { .. } => EXIT_AGREE_WAIT,
            // A pidfd exit carries no code: wait for CRI's, as long as for a start.
            Expect::Any | Expect::Running | Expect::Gone => AGREE_WAIT,
        };
        let deadline = Instant::now() + wait;
        let mut backoff = AGREE_MIN_BACKOFF;
        let mut sandboxes = sandboxes;
        let mut refreshed = None;
        loop {
            let mut fetched = {
                let _permit = limit.acquire().await;
                self.fetch(sandbox_id, id, &sandboxes, cached.clone())
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
                let oom_killed = oom_killed || kernel_saw_oom_kill(&self.root, &fetched.record);
                oom_killed_reason(&mut fetched.record, oom_killed);
                fetched.sandboxes = refreshed;
                return Ok(fetched);
            }
            debug!(message = "CRI lags the runtime event; fetching again.", container_id = %id, ?expect, retry_in = ?backoff);
            cached = cached.or(&fetched.dirs);
            // Never sleep past the deadline: the last attempt runs at the deadline, not
            // up to a whole backoff step after it (that overshoot was up to 8 ms of an
            // exit's 10 ms wait).
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(AGREE_MAX_BACKOFF);
        }
    }
}

/// An exited record not already `OOMKilled`: whether the kernel counted an OOM kill in
/// its memory cgroup (under `root`). CRI reads `OOMKilled` once its handler of
/// `/tasks/oom` ran, whatever the exit code, and that event may reach CRI or Gannet after
/// the exit; the kernel's count is already there. One small file read per exit (a cgroup
/// CRI has already deleted fails to open and changes nothing).
pub(super) fn kernel_saw_oom_kill(root: &HostRoot, record: &ContainerRecord) -> bool {
    if record.state != ContainerState::Exited || record.reason.as_deref() == Some(OOM_KILLED_REASON)
    {
        return false;
    }
    let Some(path) = record.cgroup_path.as_deref() else {
        return false;
    };
    super::oom::oom_kill_count(root, path).is_some_and(|kills| kills > 0)
}

/// Connects and builds the fetch context; warns once when the runtime is not containerd.
pub(super) async fn connect(
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
        cri_api = cri.api_version().as_str(),
    );
    let root = HostRoot::new(&config.host_root);
    Ok(FetchContext {
        liveness: LivenessChecker::new(root.clone(), config.pid_start_tolerance_ms),
        root,
        cri,
        native,
        state_dirs: Arc::new(config.state_dirs()),
        pod_ips: PodIpCache::default(),
        node_name: Arc::from(config.node_name.as_str()),
    })
}
