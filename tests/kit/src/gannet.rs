//! Running the built `gannet` binary and capturing what it prints.
//!
//! Cargo cannot build a binary of another package inside a running `cargo test`, so the
//! test command builds it first (`cargo test --workspace` builds every binary of the
//! workspace before it runs a test). The binary is `GANNET_BIN` if set, else `gannet` in
//! the running executable's profile directory (`target/debug/deps/e2e-<hash>` and
//! `target/debug/examples/perf` both look in `target/debug`; this honours
//! `CARGO_TARGET_DIR`), else `<repo>/target/debug/gannet`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::containerd::Containerd;
use crate::{repo_root, tail};

/// Env var that overrides the binary path.
pub const BIN_ENV: &str = "GANNET_BIN";
/// How long [`GannetCmd::run`] waits by default before killing the process.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`GannetProcess::stop`] waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Log lines a failure report carries.
const LOG_TAIL_LINES: usize = 40;

/// Entry point: `Gannet::cmd(["list", "--json"])`.
#[derive(Debug)]
pub struct Gannet;

impl Gannet {
    /// The `gannet` binary to run.
    ///
    /// # Errors
    /// When it is missing: names the places looked at and the build command.
    pub fn bin() -> Result<PathBuf> {
        if let Some(bin) = std::env::var_os(BIN_ENV) {
            let bin = PathBuf::from(bin);
            if bin.is_file() {
                return Ok(bin);
            }
            bail!("{BIN_ENV}={} is not a file", bin.display());
        }
        let mut candidates = Vec::new();
        // <target>/<profile>/deps/e2e-<hash> -> <target>/<profile>/gannet
        if let Ok(exe) = std::env::current_exe() {
            if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
                candidates.push(profile_dir.join("gannet"));
            }
        }
        if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
            candidates.push(PathBuf::from(target).join("debug/gannet"));
        }
        candidates.push(repo_root().join("target/debug/gannet"));
        if let Some(found) = candidates.iter().find(|c| c.is_file()) {
            return Ok(found.clone());
        }
        let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        bail!(
            "the gannet binary is missing (looked at {}): run `cargo build --workspace --bins` \
             first, or set {BIN_ENV}",
            looked.join(", ")
        )
    }

    /// A command line for the binary; nothing runs until [`GannetCmd::run`] or
    /// [`GannetCmd::spawn`].
    pub fn cmd<I, S>(args: I) -> GannetCmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        GannetCmd {
            args: args
                .into_iter()
                .map(|a| a.as_ref().to_os_string())
                .collect(),
            envs: Vec::new(),
            dir: None,
            timeout: DEFAULT_TIMEOUT,
            lab_log: None,
        }
    }
}

/// A `gannet` command line being built.
#[derive(Debug, Clone)]
pub struct GannetCmd {
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    timeout: Duration,
    lab_log: Option<PathBuf>,
}

impl GannetCmd {
    /// Appends an argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an env var for the process.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Runs the process in `dir` (default: the test's working directory).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Appends `--socket <lab socket>` and puts the lab's containerd log into failure reports.
    pub fn socket(mut self, lab: &Containerd) -> Self {
        self.args.push("--socket".into());
        self.args.push(lab.socket().into_os_string());
        self.lab_log = Some(lab.log_path());
        self
    }

    /// Puts the lab's containerd log into failure reports (without adding `--socket`).
    pub fn lab(mut self, lab: &Containerd) -> Self {
        self.lab_log = Some(lab.log_path());
        self
    }

    /// How long [`GannetCmd::run`] waits before killing the process (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn command_line(&self, bin: &Path) -> String {
        std::iter::once(bin.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn spawn_child(&self) -> Result<(Child, String)> {
        let bin = Gannet::bin()?;
        let command = self.command_line(&bin);
        let mut child = Command::new(&bin);
        if let Some(dir) = &self.dir {
            child.current_dir(dir);
        }
        let child = child
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting `{command}`"))?;
        Ok((child, command))
    }

    /// Runs to completion (killed after the timeout) and captures its output. A non-zero
    /// exit is not an error here: check it with [`CmdOutput::success`] or
    /// [`CmdOutput::failure`].
    ///
    /// # Errors
    /// When the binary is missing or cannot start, or the timeout passes.
    pub fn run(self) -> Result<CmdOutput> {
        let mut process = GannetProcess::start(&self)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(status) = process.child.try_wait()? {
                return Ok(process.finish(status));
            }
            if Instant::now() >= deadline {
                let _ = process.child.kill();
                let status = process.child.wait()?;
                let output = process.finish(status);
                bail!("timed out after {:?}, killed\n{output}", self.timeout);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the process in the background (for long-running commands such as `gannet run`);
    /// it is killed when the handle is dropped.
    ///
    /// # Errors
    /// When the binary is missing or cannot start.
    pub fn spawn(self) -> Result<GannetProcess> {
        GannetProcess::start(&self)
    }
}

/// A finished `gannet` run.
#[derive(Debug, Clone)]
pub struct CmdOutput {
    /// The command line.
    pub command: String,
    /// How it ended.
    pub status: ExitStatus,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    lab_log: Option<PathBuf>,
}

impl CmdOutput {
    /// This output if the exit status is 0.
    ///
    /// # Errors
    /// Otherwise, with the command, its output and the containerd log tail.
    pub fn success(self) -> Result<Self> {
        if self.status.success() {
            Ok(self)
        } else {
            bail!("command failed\n{self}")
        }
    }

    /// This output if the exit status is non-zero (for bad-input tests).
    ///
    /// # Errors
    /// When it exited 0, with the full report.
    pub fn failure(self) -> Result<Self> {
        if self.status.success() {
            bail!("command succeeded but should have failed\n{self}")
        } else {
            Ok(self)
        }
    }

    /// Stdout parsed as JSON, one value per non-empty line.
    ///
    /// # Errors
    /// When a line is not JSON, with the full report.
    pub fn json_lines(&self) -> Result<Vec<serde_json::Value>> {
        self.stdout
            .lines()
            .filter(|line| !line.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                serde_json::from_str(line)
                    .with_context(|| format!("stdout line {} is not JSON\n{self}", i + 1))
            })
            .collect()
    }
}

impl fmt::Display for CmdOutput {
    /// The failure report: command, status, stdout, stderr and the containerd log tail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "command: {}", self.command)?;
        writeln!(f, "status: {}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        writeln!(f, "--- stderr ---\n{}", self.stderr.trim_end())?;
        if let Some(log) = &self.lab_log {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            writeln!(
                f,
                "--- containerd log ({}), last {LOG_TAIL_LINES} lines ---\n{}",
                log.display(),
                tail(&text, LOG_TAIL_LINES)
            )?;
        }
        Ok(())
    }
}

/// A `gannet` process running in the background; killed on drop.
#[derive(Debug)]
pub struct GannetProcess {
    child: Child,
    command: String,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    lab_log: Option<PathBuf>,
}

impl GannetProcess {
    fn start(cmd: &GannetCmd) -> Result<Self> {
        let (mut child, command) = cmd.spawn_child()?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            readers.push(collect(pipe, Arc::clone(&stdout)));
        }
        if let Some(pipe) = child.stderr.take() {
            readers.push(collect(pipe, Arc::clone(&stderr)));
        }
        Ok(Self {
            child,
            command,
            stdout,
            stderr,
            readers,
            lab_log: cmd.lab_log.clone(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed on stdout so far.
    pub fn stdout(&self) -> String {
        read_shared(&self.stdout)
    }

    /// Everything it printed on stderr so far.
    pub fn stderr(&self) -> String {
        read_shared(&self.stderr)
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM, waits up to 10 s (then SIGKILL) and returns the whole output.
    ///
    /// # Errors
    /// When signalling or waiting fails.
    pub fn stop(mut self) -> Result<CmdOutput> {
        let pid = self.child.id().to_string();
        if self.child.try_wait()?.is_none() {
            let _ = Command::new("sh")
                .args(["-c", "kill -TERM \"$0\"", &pid])
                .status();
        }
        let deadline = Instant::now() + STOP_GRACE;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                break self.child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Ok(self.finish(status))
    }

    fn finish(&mut self, status: ExitStatus) -> CmdOutput {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        CmdOutput {
            command: self.command.clone(),
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
            lab_log: self.lab_log.clone(),
        }
    }
}

impl Drop for GannetProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(mut pipe: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .extend_from_slice(&buf[..n]),
            }
        }
    })
}

fn read_shared(bytes: &Arc<Mutex<Vec<u8>>>) -> String {
    let bytes = bytes
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    String::from_utf8_lossy(&bytes).into_owned()
}
