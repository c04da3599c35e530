//! Pid liveness with a pid-reuse guard, read through the host root.
//!
//! Owns the answer to "is this container's process still the one CRI started?": the pid
//! must exist under `<host-root>/proc` and its start time (field 22 of `/proc/<pid>/stat`,
//! in clock ticks since boot, turned into wall time with the boot time) must match CRI
//! `started_at` within a tolerance. A pid that exists but started at another time was
//! reused by another process and is not alive. Hands on a [`Liveness`]; reads files only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Kernel clock ticks per second (`USER_HZ`): 100 on every Linux architecture Gannet
/// targets; `/proc/<pid>/stat` start times are in these units.
const CLOCK_TICKS_PER_SEC: u64 = 100;
/// How long a boot time read from `/proc` is reused. Every sync checks every container,
/// and reading `/proc/uptime` per check doubled the `/proc` reads of a steady-state sync;
/// the boot time only moves with wall-clock adjustments, far below the start-time
/// tolerance within this window.
const BOOT_TIME_REUSE: Duration = Duration::from_secs(10);

/// Where the node's root filesystem is mounted (`/` unless Gannet runs in a container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot(PathBuf);

impl Default for HostRoot {
    fn default() -> Self {
        Self(PathBuf::from("/"))
    }
}

impl HostRoot {
    /// A host root at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    /// The host path `path` as seen from here: `path` under the host root.
    pub fn resolve(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        let relative = path.strip_prefix("/").unwrap_or(path);
        self.0.join(relative)
    }
}

/// The verdict on one pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The pid exists and started when the container did (or no start time to compare).
    Alive,
    /// No such pid (or pid 0).
    Gone,
    /// The pid exists but belongs to a process that started at another time.
    Reused,
}

impl Liveness {
    /// True only for [`Liveness::Alive`].
    pub fn is_alive(self) -> bool {
        self == Self::Alive
    }
}

/// Checks pids under one host root.
#[derive(Debug, Clone)]
pub struct LivenessChecker {
    root: HostRoot,
    tolerance: Duration,
    /// The last boot time read, and when (shared by clones: one read per window).
    boot: Arc<Mutex<Option<(Instant, SystemTime)>>>,
}

impl LivenessChecker {
    /// A checker reading `<root>/proc`, accepting start times within `tolerance`.
    pub fn new(root: HostRoot, tolerance: Duration) -> Self {
        Self {
            root,
            tolerance,
            boot: Arc::default(),
        }
    }

    /// Whether `pid` is alive and is the process that CRI started at `started_at_nanos`
    /// (ns since the epoch; 0 means unknown, and then existence alone decides).
    pub fn check(&self, pid: u32, started_at_nanos: i64) -> Liveness {
        if pid == 0 {
            return Liveness::Gone;
        }
        let stat = match std::fs::read_to_string(self.root.resolve(format!("/proc/{pid}/stat"))) {
            Ok(text) => text,
            Err(_) => return Liveness::Gone,
        };
        if started_at_nanos <= 0 {
            return Liveness::Alive;
        }
        let (Some(ticks), Some(boot)) = (start_ticks(&stat), self.boot_time()) else {
            // Unreadable start or boot time: existence is all we can tell.
            return Liveness::Alive;
        };
        let started =
            boot + Duration::from_nanos(ticks.saturating_mul(1_000_000_000 / CLOCK_TICKS_PER_SEC));
        let cri_started =
            UNIX_EPOCH + Duration::from_nanos(u64::try_from(started_at_nanos).unwrap_or(0));
        let gap = started
            .duration_since(cri_started)
            .or_else(|_| cri_started.duration_since(started))
            .unwrap_or_default();
        if gap <= self.tolerance {
            Liveness::Alive
        } else {
            Liveness::Reused
        }
    }

    /// [`Self::read_boot_time`], reused for [`BOOT_TIME_REUSE`].
    fn boot_time(&self) -> Option<SystemTime> {
        let mut cached = self.boot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((read_at, boot)) = *cached {
            if read_at.elapsed() < BOOT_TIME_REUSE {
                return Some(boot);
            }
        }
        let boot = self.read_boot_time()?;
        *cached = Some((Instant::now(), boot));
        Some(boot)
    }

    /// Boot time as wall time: now minus `/proc/uptime` (10 ms precision), else
    /// `/proc/stat` `btime` (1 s precision).
    fn read_boot_time(&self) -> Option<SystemTime> {
        let from_uptime = std::fs::read_to_string(self.root.resolve("/proc/uptime"))
            .ok()
            .and_then(|t| {
                t.split_whitespace()
                    .next()
                    .and_then(|s| s.parse::<f64>().ok())
            })
            .filter(|s| s.is_finite() && *s >= 0.0)
            .and_then(|s| SystemTime::now().checked_sub(Duration::from_secs_f64(s)));
        from_uptime.or_else(|| {
            let stat = std::fs::read_to_string(self.root.resolve("/proc/stat")).ok()?;
            let secs = stat
                .lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())?;
            Some(UNIX_EPOCH + Duration::from_secs(secs))
        })
    }
}

/// Field 22 (`starttime`) of a `/proc/<pid>/stat` line. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
fn start_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // After the name comes field 3; field 22 is the 20th from there.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a fake `/proc` under `root`: uptime, btime and one pid started `age` ago.
    pub(crate) fn fake_proc(
        root: &Path,
        pid: u32,
        uptime_secs: f64,
        started_ticks: u64,
    ) -> std::io::Result<()> {
        let proc_dir = root.join("proc");
        std::fs::create_dir_all(proc_dir.join(pid.to_string()))?;
        std::fs::write(proc_dir.join("uptime"), format!("{uptime_secs:.2} 1.00\n"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let btime = (now - uptime_secs) as u64;
        std::fs::write(proc_dir.join("stat"), format!("cpu 1 2 3\nbtime {btime}\n"))?;
        let stat = format!(
            "{pid} (sh (weird) name) S 1 {pid} {pid} 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 {started_ticks} 1000 10 18446744073709551615\n"
        );
        std::fs::write(proc_dir.join(pid.to_string()).join("stat"), stat)
    }

    fn now_nanos() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0)
    }

    #[test]
    fn start_time_is_field_22_after_the_command_name() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0";
        assert_eq!(start_ticks(line), Some(12345));
    }

    #[test]
    fn matching_start_time_is_alive() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        // Booted 1000 s ago; the process started at tick 90000 = 900 s after boot = 100 s ago.
        fake_proc(dir.path(), 4242, 1000.0, 90_000)?;
        let checker = LivenessChecker::new(HostRoot::new(dir.path()), Duration::from_secs(2));
        let started = now_nanos() - 100 * 1_000_000_000;
        assert_eq!(checker.check(4242, started), Liveness::Alive);
        Ok(())
    }

    #[test]
    fn reused_pid_with_other_start_time_is_not_alive() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        fake_proc(dir.path(), 4242, 1000.0, 90_000)?;
        let checker = LivenessChecker::new(HostRoot::new(dir.path()), Duration::from_secs(2));
        // CRI says the container started 500 s ago; the pid's process started 100 s ago.
        let started = now_nanos() - 500 * 1_000_000_000;
        assert_eq!(checker.check(4242, started), Liveness::Reused);
        assert!(!checker.check(4242, started).is_alive());
        Ok(())
    }

    #[test]
    fn missing_pid_and_pid_zero_are_gone() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        fake_proc(dir.path(), 4242, 1000.0, 90_000)?;
        let checker = LivenessChecker::new(HostRoot::new(dir.path()), Duration::from_secs(2));
        assert_eq!(checker.check(4243, now_nanos()), Liveness::Gone);
        assert_eq!(checker.check(0, now_nanos()), Liveness::Gone);
        Ok(())
    }

    #[test]
    fn btime_is_used_when_uptime_is_missing() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        fake_proc(dir.path(), 7, 1000.0, 90_000)?;
        std::fs::remove_file(dir.path().join("proc/uptime"))?;
        let checker = LivenessChecker::new(HostRoot::new(dir.path()), Duration::from_secs(2));
        assert_eq!(
            checker.check(7, now_nanos() - 100 * 1_000_000_000),
            Liveness::Alive
        );
        assert_eq!(
            checker.check(7, now_nanos() - 300 * 1_000_000_000),
            Liveness::Reused
        );
        Ok(())
    }

    #[test]
    fn the_boot_time_is_read_once_per_window_and_shared_by_clones() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        fake_proc(dir.path(), 7, 1000.0, 90_000)?;
        let checker = LivenessChecker::new(HostRoot::new(dir.path()), Duration::from_secs(2));
        let started = now_nanos() - 100 * 1_000_000_000;
        assert_eq!(checker.check(7, started), Liveness::Alive);
        // Without uptime and btime the start time could not be compared any more; the
        // boot time read a moment ago still is, by this checker and its clones.
        std::fs::remove_file(dir.path().join("proc/uptime"))?;
        std::fs::write(dir.path().join("proc/stat"), "cpu 1 2 3\n")?;
        let clone = checker.clone();
        assert_eq!(
            clone.check(7, now_nanos() - 300 * 1_000_000_000),
            Liveness::Reused
        );
        assert_eq!(checker.check(7, started), Liveness::Alive);
        Ok(())
    }

    #[test]
    fn host_root_prefixes_absolute_paths() {
        let root = HostRoot::new("/host");
        assert_eq!(
            root.resolve("/proc/1/stat"),
            PathBuf::from("/host/proc/1/stat")
        );
        assert_eq!(
            HostRoot::default().resolve("/etc/x"),
            PathBuf::from("/etc/x")
        );
    }
}
