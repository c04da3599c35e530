//! Gannet's test kit: what the end-to-end suite, the examples that drive a lab, and the
//! host's plugin tests and benchmark stand on.
//!
//! - [`Containerd`]: a real containerd on a private socket. [`Containerd::shared`] is the
//!   one containerd most tests share (started by `scripts/test.sh`, named by
//!   `GANNET_E2E_LAB`); [`Containerd::private`] is a test's own instance, for tests that
//!   stop or restart containerd; [`Containerd::attach`] joins a lab someone else owns.
//!   All are run by `tests/harness/containerd.sh`, which owns every shell-level detail.
//! - [`CriDriver`]: creates pods and containers the way a kubelet does and removes the pods
//!   it created when dropped, so tests that share a containerd never touch each other's pods.
//!   Pods use the host network unless [`PodSpec::pod_network`] puts them on the lab's own CNI
//!   bridge ([`Containerd::pod_network`]), with a real IP ([`CriDriver::pod_ips`]).
//! - [`Gannet`]: runs the built `gannet` binary (`target/<profile>/gannet` or `GANNET_BIN`)
//!   and captures its output.
//! - [`wait_until`] / [`wait_until_blocking`]: every wait polls a condition against a
//!   deadline; no test asserts on a fixed sleep.
//! - [`PluginWorkspace`]: builds a workspace of wasm plugins (`plugins/` or
//!   `tests/plugins/`) for wasm32-wasip2 once per process and finds its `.wasm` files,
//!   and the Python and JavaScript components `plugins/build.sh` built
//!   ([`PluginWorkspace::built_component`]).
//!
//! Failures carry the command, its output and the tail of the containerd log.
//!
//! The kit does not depend on the `gannet` crate (whose tests use the plugin builder): it
//! talks to Gannet through its binary, and to containerd through CRI and the harness script.
//!
//! A typical test (`tests/e2e/harness_selftest.rs` has more):
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use anyhow::{ensure, Result};
//! use gannet_test_kit::{ContainerSpec, Containerd, PodSpec};
//! use k8s_cri::v1::ContainerState;
//!
//! async fn pods_show_up_in_gannet_list() -> Result<()> {
//!     let lab = Containerd::shared()?; // or Containerd::private("name")?
//!     let cri = lab.cri().await?; // removes its pods when dropped
//!     let pod = cri.create_pod(&PodSpec::new("list").namespace("e2e")).await?;
//!     let web = cri.run_container(&pod, &ContainerSpec::sleeper("web")).await?;
//!     cri.wait_state(&web, ContainerState::ContainerRunning, Duration::from_secs(30))
//!         .await?;
//!     let out = lab.gannet(["list", "--json"]).run()?.success()?;
//!     let records = out.json_lines()?;
//!     ensure!(records.iter().any(|r| r["id"] == web.id.as_str()), "{out}");
//!     Ok(())
//! }
//! ```

mod containerd;
mod cri;
pub mod daemonset;
pub mod fault_proxy;
mod gannet;
mod http_server;
pub mod json_receiver;
pub mod otlp;
mod wasm;

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub use containerd::{script_path, Containerd, PodNetwork, SharedSource, IMAGES_ENV, LAB_ENV};
pub use cri::{
    ContainerSpec, CriContainer, CriDriver, ExecOutput, Pod, PodSpec, BUSYBOX_IMAGE,
    LOOK_ALIKE_ENVS, PAUSE_IMAGE, SERVICE_LINK_ENVS, SLEEPER_SCRIPT,
};
pub use gannet::{CmdOutput, Gannet, GannetCmd, GannetProcess, BIN_ENV};
pub use wasm::{ComponentLang, PluginWorkspace, WASM_TARGET};

/// GET `path` over the unix socket `socket` with HTTP/1.0 (the data API's socket); the
/// body.
///
/// # Errors
/// When the socket cannot be reached or the answer cannot be read.
pub async fn get_unix(socket: &Path, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::UnixStream::connect(socket)
        .await
        .with_context(|| format!("connecting to {}", socket.display()))?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// VmRSS of process `pid`, in KiB (`/proc/PID/status`).
///
/// # Errors
/// When the process is gone or the field is missing.
pub fn vm_rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

/// The anonymous part of process `pid`'s resident memory (`RssAnon`: heap, stacks, wasm
/// memories), in KiB: what a leak grows. File pages (the executable's code, which the
/// agent gives back once ready and which faults back in as code paths first run) are not
/// in it.
///
/// # Errors
/// When `/proc/PID/status` cannot be read or has no `RssAnon`.
pub fn rss_anon_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "RssAnon")
}

/// The `field:` line of `/proc/PID/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Open file descriptors of process `pid` (entries of `/proc/PID/fd`) but its pidfds, whose
/// number follows the running containers (see [`pidfds`]).
///
/// # Errors
/// When the process is gone.
pub fn open_fds(pid: u32) -> Result<usize> {
    Ok(fd_targets(pid)?
        .iter()
        .filter(|t| t.as_str() != PIDFD_TARGET)
        .count())
}

/// How many pidfds `pid` holds: Gannet watches one per running container, so their
/// number follows the containers, not time ([`open_fds`] leaves them out).
///
/// # Errors
/// When `/proc/<pid>/fd` cannot be read.
pub fn pidfds(pid: u32) -> Result<usize> {
    Ok(fd_targets(pid)?
        .iter()
        .filter(|t| t.as_str() == PIDFD_TARGET)
        .count())
}

/// What a pidfd's `/proc/<pid>/fd` link reads.
const PIDFD_TARGET: &str = "anon_inode:[pidfd]";

/// The targets of `pid`'s open fds (an fd closed while reading is skipped).
fn fd_targets(pid: u32) -> Result<Vec<String>> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("reading /proc/{pid}/fd"))?
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .collect())
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for a process the test starts.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// An HTTP/1.0 GET of `path` on 127.0.0.1:`port`, with an optional `Authorization` value:
/// the status code and the body. Gives up after 10 s without an answer.
///
/// # Errors
/// When nothing answers, or the answer is not HTTP.
pub fn http_get(port: u16, path: &str, authorization: Option<&str>) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n{auth}\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("GET {path} on port {port}: not an HTTP answer: {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

/// The repository root (this crate lives in `tests/kit/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How often [`wait_until`] probes its condition.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Polls `probe` until it returns `Ok(Some(value))`, and returns that value.
///
/// A probe error counts as "not yet" (the runtime may be restarting); the last one is
/// reported if the deadline passes.
///
/// # Errors
/// When `timeout` passes first: names `what`, the timeout and the last probe error.
pub async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            return Err(timed_out(timeout, what, last_error));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The error of a wait that timed out: what it waited for, how long, the last probe error.
fn timed_out(timeout: Duration, what: &str, last_error: Option<anyhow::Error>) -> anyhow::Error {
    match last_error {
        Some(error) => {
            anyhow::anyhow!("timed out after {timeout:?} waiting for {what}; last error: {error:#}")
        }
        None => anyhow::anyhow!("timed out after {timeout:?} waiting for {what}"),
    }
}

/// The blocking twin of [`wait_until`], for probes that need no runtime.
///
/// # Errors
/// When `timeout` passes first: names `what`, the timeout and the last probe error.
pub fn wait_until_blocking<T>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            return Err(timed_out(timeout, what, last_error));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// `n` random bytes as lower-case hex, from `/dev/urandom` (unique names and pod uids).
///
/// # Errors
/// When `/dev/urandom` cannot be read.
pub fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for a random name")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A random RFC 4122 version-4 UUID, the shape of a Kubernetes pod uid.
///
/// # Errors
/// When `/dev/urandom` cannot be read.
pub fn random_uuid() -> Result<String> {
    let h = random_hex(16)?;
    // Version 4, variant 10xx: the 13th hex digit is 4, the 17th one of 8/9/a/b.
    let variant = ["8", "9", "a", "b"][usize::from_str_radix(&h[16..17], 16)? % 4];
    Ok(format!(
        "{}-{}-4{}-{}{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        variant,
        &h[17..20],
        &h[20..32]
    ))
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_uuid_has_the_kubernetes_uid_shape() -> Result<()> {
        let uid = random_uuid()?;
        let parts: Vec<&str> = uid.split('-').collect();
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        anyhow::ensure!(lens == [8, 4, 4, 4, 12], "bad uuid {uid}");
        anyhow::ensure!(parts[2].starts_with('4'), "not version 4: {uid}");
        anyhow::ensure!(
            parts[3].starts_with(['8', '9', 'a', 'b']),
            "bad variant: {uid}"
        );
        anyhow::ensure!(random_uuid()? != uid, "two uuids are equal");
        Ok(())
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
        assert_eq!(tail("", 5), "");
    }

    #[tokio::test]
    async fn wait_until_reports_the_last_error_at_the_deadline() {
        let mut calls = 0;
        let result: Result<()> = wait_until(Duration::from_millis(120), "a thing", || {
            calls += 1;
            let n = calls;
            async move { anyhow::bail!("probe {n} failed") }
        })
        .await;
        let message = format!(
            "{:#}",
            result.err().map(|e| e.to_string()).unwrap_or_default()
        );
        assert!(message.contains("waiting for a thing"), "{message}");
        assert!(message.contains("failed"), "{message}");
        assert!(calls >= 2, "probed only {calls} times");
    }

    #[tokio::test]
    async fn wait_until_returns_the_first_value() -> Result<()> {
        let mut calls = 0;
        let got = wait_until(Duration::from_secs(5), "the third call", || {
            calls += 1;
            let n = calls;
            async move { Ok((n == 3).then_some(n)) }
        })
        .await?;
        assert_eq!(got, 3);
        Ok(())
    }
}
