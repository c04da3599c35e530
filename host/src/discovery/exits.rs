//! Container exits from the kernel: one pidfd (`pidfd_open(2)`, Linux 5.3+) per running
//! container, which becomes readable the moment its process exits.
//!
//! Owns the watches. While a container is watched, the periodic sync needs no
//! `/proc/<pid>` check for it: the kernel says when it exits. In `poll` mode (or when
//! `events` fell back to polling) an exit also nudges a fetch at once, which waits for CRI
//! to report the exit code; in `events` mode the runtime's own exit event does that, and
//! the watch only ends, so the next sync checks the pid again. Where pidfds cannot be
//! used (an older kernel, or Gannet in its own pid namespace), nothing is watched and the
//! per-sync check stays, with one log line saying so.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::{info, warn};

use crate::runtime::events::{Expect, Nudge};

/// The exit watches of the running containers.
#[derive(Debug)]
pub(super) struct ExitWatch {
    nudges: mpsc::Sender<Nudge>,
    /// True when an exit should nudge a fetch (no runtime event stream runs).
    nudge_on_exit: Arc<AtomicBool>,
    /// Container id -> (pid, the task waiting on its pidfd).
    watched: HashMap<String, (u32, AbortHandle)>,
    /// Why pidfds are not used, once found; `None` while they work.
    unusable: Option<String>,
}

impl ExitWatch {
    /// Watches for exits if this kernel and pid namespace allow it; `host_root` is where
    /// the node's root is mounted (`/` unless Gannet runs in a container).
    pub(super) fn new(nudges: mpsc::Sender<Nudge>, host_root: &Path, nudge_on_exit: bool) -> Self {
        let unusable = unusable_reason(host_root);
        match &unusable {
            None => info!(message = "Container exits are watched with pidfds."),
            Some(reason) => warn!(
                message = "Container exits are not watched with pidfds; each sync checks /proc/<pid> instead.",
                reason = %reason,
            ),
        }
        Self {
            nudges,
            nudge_on_exit: Arc::new(AtomicBool::new(nudge_on_exit)),
            watched: HashMap::new(),
            unusable,
        }
    }

    /// Whether an exit nudges a fetch: set when the event stream is not (or no longer)
    /// what reports exits.
    pub(super) fn set_nudge_on_exit(&self, nudge: bool) {
        self.nudge_on_exit.store(nudge, Ordering::Relaxed);
    }

    /// True while `id`'s process is watched: its exit will be noticed without a sync.
    pub(super) fn is_watched(&self, id: &str) -> bool {
        self.watched
            .get(id)
            .is_some_and(|(_, task)| !task.is_finished())
    }

    /// Watches `id`'s process `pid` (alive and checked against CRI's start time by the
    /// caller just before). A watch of another pid for `id` is replaced. `still_alive`
    /// checks again after the pidfd is open, so a pid reused in between is not watched.
    pub(super) fn watch(&mut self, id: &str, pid: u32, still_alive: impl FnOnce() -> bool) {
        if self.unusable.is_some() || pid == 0 {
            return;
        }
        if self
            .watched
            .get(id)
            .is_some_and(|(p, t)| *p == pid && !t.is_finished())
        {
            return;
        }
        self.unwatch(id);
        let Some(raw) = Pid::from_raw(pid.cast_signed()) else {
            return;
        };
        let fd = match pidfd_open(raw, PidfdFlags::NONBLOCK) {
            Ok(fd) => fd,
            // Gone already (the sync's check will see it), or out of fds: not watched.
            Err(error) => {
                tracing::debug!(message = "No pidfd for the container's process.", container_id = %id, pid, %error);
                return;
            }
        };
        if !still_alive() {
            return;
        }
        #[allow(unsafe_code)]
        // SAFETY: the AsyncFd takes ownership of the OwnedFd, which nothing else holds:
        // it stays open, as the same file description, until the AsyncFd drops it.
        let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
        let fd = match registered {
            Ok(fd) => fd,
            Err(error) => {
                tracing::debug!(message = "pidfd not pollable.", container_id = %id, pid, %error);
                return;
            }
        };
        let task = tokio::spawn(wait_for_exit(
            fd,
            id.to_owned(),
            self.nudges.clone(),
            self.nudge_on_exit.clone(),
        ));
        self.watched
            .insert(id.to_owned(), (pid, task.abort_handle()));
    }

    /// Stops watching `id` (removed, exited or forgotten).
    pub(super) fn unwatch(&mut self, id: &str) {
        if let Some((_, task)) = self.watched.remove(id) {
            task.abort();
        }
    }

    /// Stops every watch (shutdown).
    pub(super) fn clear(&mut self) {
        for (_, (_, task)) in self.watched.drain() {
            task.abort();
        }
    }
}

impl Drop for ExitWatch {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Waits until the process behind `fd` exits; then, if asked, nudges a fetch of `id`.
async fn wait_for_exit(
    fd: AsyncFd<OwnedFd>,
    id: String,
    nudges: mpsc::Sender<Nudge>,
    nudge_on_exit: Arc<AtomicBool>,
) {
    // Readable means exited; an error (never seen) ends the watch the same way, and the
    // next sync's /proc check takes over.
    let _ = fd.readable().await;
    if nudge_on_exit.load(Ordering::Relaxed) {
        // The loop gone means shutdown: nothing to tell.
        let _ = nudges
            .send(Nudge::Fetch {
                id,
                expect: Expect::Gone,
            })
            .await;
    }
}

/// Why pidfds cannot watch the node's processes here, or `None` when they can.
fn unusable_reason(host_root: &Path) -> Option<String> {
    if let Err(error) = pidfd_open(rustix::process::getpid(), PidfdFlags::empty()) {
        return Some(format!(
            "pidfd_open is not available ({error}; Linux 5.3 or later has it)"
        ));
    }
    if host_root == Path::new("/") {
        return None;
    }
    // CRI's pids are the node's: a pidfd means the same process only in the node's pid
    // namespace (a DaemonSet with hostPID: true).
    let ours = std::fs::read_link("/proc/self/ns/pid").ok();
    let node = std::fs::read_link(host_root.join("proc/1/ns/pid")).ok();
    match (ours, node) {
        (Some(a), Some(b)) if a == b => None,
        (Some(_), Some(_)) => Some(
            "Gannet is not in the node's pid namespace (set hostPID: true to watch exits)".into(),
        ),
        _ => Some("the pid namespaces cannot be compared through the host root".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_exit_is_noticed_and_nudges_only_when_asked(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (tx, mut rx) = mpsc::channel(4);
        let mut watch = ExitWatch::new(tx, Path::new("/"), true);
        if watch.unusable.is_some() {
            // An old kernel: the fallback is what runs, and it is covered elsewhere.
            return Ok(());
        }
        let mut child = std::process::Command::new("sleep").arg("30").spawn()?;
        watch.watch("c1", child.id(), || true);
        assert!(watch.is_watched("c1"));
        child.kill()?;
        child.wait()?;
        let nudge = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await?;
        assert!(
            matches!(&nudge, Some(Nudge::Fetch { id, expect: Expect::Gone }) if id == "c1"),
            "{nudge:?}"
        );
        // Without nudging: the watch just ends.
        watch.set_nudge_on_exit(false);
        let mut child = std::process::Command::new("sleep").arg("30").spawn()?;
        watch.watch("c2", child.id(), || true);
        child.kill()?;
        child.wait()?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!watch.is_watched("c2"), "the watch ended with the process");
        assert!(rx.try_recv().is_err(), "no nudge in events mode");
        Ok(())
    }

    #[tokio::test]
    async fn a_pid_that_fails_the_second_check_is_not_watched(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (tx, _rx) = mpsc::channel(4);
        let mut watch = ExitWatch::new(tx, Path::new("/"), true);
        let mut child = std::process::Command::new("sleep").arg("30").spawn()?;
        watch.watch("c1", child.id(), || false);
        assert!(!watch.is_watched("c1"));
        watch.watch("c0", 0, || true);
        assert!(!watch.is_watched("c0"));
        child.kill()?;
        child.wait()?;
        Ok(())
    }
}
