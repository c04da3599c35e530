//! Discovery's settings: the `[runtime]` section of `gannet.toml`, deserialized straight
//! into [`Config`], and its one check ([`Config::validate`]), which `gannet config check`,
//! `gannet run` and the loop all call.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::DiscoveryError;
use crate::runtime::cri::{resolve_socket, SOCKET_ENV};
use crate::validate::{invalid, FieldError};

/// Directories searched for a container's rootfs after `containerd_state_dir` and
/// `$CONTAINERD_STATE_DIR` (the reference's list).
const DEFAULT_STATE_DIRS: [&str; 2] = ["/run/containerd", "/var/run/containerd"];
/// The default of `events_sync_period_secs`: with the stream up, the list only catches
/// what events missed (docs/BENCHMARKS.md, "Idle cost").
pub const EVENTS_SYNC_PERIOD_SECS: u64 = 60;
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
    /// The node's name, which every record carries: set by the CLI from `--node-name`,
    /// `$NODE_NAME` or the host's hostname, never from a file.
    #[serde(skip)]
    pub node_name: String,
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
    /// Seconds between incremental syncs in `events` mode while the event stream is up:
    /// the periodic list is then only a safety net (a broken stream resubscribes and
    /// resyncs at once), so it runs rarely. While the stream is down, or has fallen back to
    /// polling, `sync_period_secs` applies. At least 1; a value below `sync_period_secs`
    /// counts as `sync_period_secs`.
    #[serde(with = "secs")]
    pub events_sync_period_secs: Duration,
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
            node_name: String::new(),
            host_root: PathBuf::from("/"),
            sync_mode: SyncMode::Events,
            sync_period_secs: Duration::from_secs(3),
            events_sync_period_secs: Duration::from_secs(EVENTS_SYNC_PERIOD_SECS),
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
        if self.events_sync_period_secs.is_zero() {
            return Err(invalid(
                "events_sync_period_secs",
                secs(self.events_sync_period_secs),
                format!("must be at least 1 (the default is {EVENTS_SYNC_PERIOD_SECS})"),
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

    pub(super) fn state_dirs(&self) -> Vec<PathBuf> {
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
