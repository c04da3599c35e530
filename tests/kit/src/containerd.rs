//! Containerd labs: the shared instance and per-test private ones.
//!
//! A lab is a directory that holds one containerd's config, socket, root, state, runc root,
//! logs and host-path data; its pods' cgroups live under their own root
//! (`LAB/cgroup-root`). `tests/harness/containerd.sh` starts and tears labs down; this module
//! decides which lab a test gets and when it goes away:
//!
//! - `GANNET_E2E_LAB` set (what `scripts/test.sh` does): [`Containerd::shared`] attaches to
//!   that lab and never tears it down; the script does.
//! - unset and `CI` true: [`Containerd::shared`] fails, so CI never silently skips e2e tests.
//! - unset otherwise (a developer's `cargo test`): the first test starts a lab under `/tmp`
//!   for the test process and a watchdog (`containerd.sh reap-after PID LAB`) tears it down
//!   within about half a second of the test process exiting, however it exits.
//!
//! A [`Containerd::private`] lab belongs to one test: it is torn down by pid on drop (and by
//! its watchdog if the test process dies first).
//!
//! Each lab also has a CNI network of its own for pods that do not use the host network
//! (a bridge and a /24 unique to the lab): [`Containerd::pod_network`] names them.

use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, ensure, Context, Result};

use crate::cri::CriDriver;
use crate::gannet::{Gannet, GannetCmd};
use crate::{random_hex, repo_root, tail};

/// Env var naming the shared lab directory (set by `scripts/test.sh`).
pub const LAB_ENV: &str = "GANNET_E2E_LAB";
/// Env var naming a directory of prebuilt image archives that labs may share.
pub const IMAGES_ENV: &str = "GANNET_E2E_IMAGES";
/// Lines of the containerd log that failure reports carry.
const LOG_TAIL_LINES: usize = 40;

/// `tests/harness/containerd.sh`: the script that owns every shell-level step (install,
/// images, start, stop, purge) of a lab.
pub fn script_path() -> PathBuf {
    repo_root().join("tests/harness/containerd.sh")
}

/// Where the shared containerd comes from, decided from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedSource {
    /// Attach to the lab the test command started.
    Lab(PathBuf),
    /// No lab was given and this is CI: end-to-end tests must fail, not skip.
    MissingInCi,
    /// No lab was given outside CI: start one for this test process.
    StartForProcess,
}

impl SharedSource {
    /// Decides from the values of `GANNET_E2E_LAB` and `CI`.
    pub fn decide(lab: Option<&OsStr>, ci: Option<&str>) -> Self {
        match lab {
            Some(lab) if !lab.is_empty() => Self::Lab(PathBuf::from(lab)),
            _ if is_ci(ci) => Self::MissingInCi,
            _ => Self::StartForProcess,
        }
    }
}

/// `CI` counts as set unless it is empty, `false` or `0`.
pub(crate) fn is_ci(ci: Option<&str>) -> bool {
    matches!(ci, Some(v) if !v.is_empty() && v != "false" && v != "0")
}

/// Who tears a lab down.
#[derive(Debug)]
enum Owner {
    /// Started by the test command: it tears the lab down.
    External,
    /// Started for this test process: the watchdog tears it down after the process exits.
    Process { _watchdog: Child },
    /// A private lab: torn down on drop.
    Test { watchdog: Option<Child> },
}

/// One containerd lab (see the module docs).
#[derive(Debug)]
pub struct Containerd {
    lab: PathBuf,
    cgroup_root: String,
    owner: Owner,
}

/// A lab's CNI pod network (`LAB/pod-network`, written by `containerd.sh up`): pods created
/// with [`crate::PodSpec::pod_network`] get an address of `subnet` on `bridge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNetwork {
    /// The host bridge (`gnt<6 hex>`), unique to the lab.
    pub bridge: String,
    /// The IPv4 subnet (`10.<a>.<b>.0/24`), unique to the lab.
    pub subnet: String,
    /// The gateway address, on the bridge (`10.<a>.<b>.1`).
    pub gateway: String,
    /// The CNI network name (`gannet-<6 hex>`).
    pub network: String,
}

impl PodNetwork {
    /// Parses `LAB/pod-network` (`key=value` lines).
    ///
    /// # Errors
    /// When a key is missing or the subnet is not an IPv4 prefix.
    pub fn parse(text: &str) -> Result<Self> {
        let field = |key: &str| -> Result<String> {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(|value| value.trim().to_string())
                .with_context(|| format!("no {key}= in the pod network record {text:?}"))
        };
        let this = Self {
            bridge: field("bridge")?,
            subnet: field("subnet")?,
            gateway: field("gateway")?,
            network: field("network")?,
        };
        this.prefix()?;
        Ok(this)
    }

    /// Whether `ip` is an IPv4 address inside the subnet.
    pub fn contains(&self, ip: &str) -> bool {
        let (Ok((net, len)), Ok(ip)) = (self.prefix(), ip.parse::<Ipv4Addr>()) else {
            return false;
        };
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        u32::from(ip) & mask == u32::from(net) & mask
    }

    fn prefix(&self) -> Result<(Ipv4Addr, u32)> {
        let (net, len) = self
            .subnet
            .split_once('/')
            .with_context(|| format!("subnet {:?} has no prefix length", self.subnet))?;
        let net: Ipv4Addr = net
            .parse()
            .with_context(|| format!("subnet {:?} is not IPv4", self.subnet))?;
        let len: u32 = len
            .parse()
            .ok()
            .filter(|len| *len <= 32)
            .with_context(|| format!("subnet {:?} has a bad prefix length", self.subnet))?;
        Ok((net, len))
    }
}

static SHARED: OnceLock<std::result::Result<Containerd, String>> = OnceLock::new();

impl Containerd {
    /// The containerd most tests share. Tests that share it must create uniquely named pods
    /// (the [`CriDriver`] does) and must not stop or restart it.
    ///
    /// # Errors
    /// With `CI` set and no `GANNET_E2E_LAB`; or when the lab cannot be reached or started.
    pub fn shared() -> Result<&'static Containerd> {
        let shared = SHARED.get_or_init(|| Self::open_shared().map_err(|e| format!("{e:#}")));
        shared.as_ref().map_err(|e| anyhow!("{e}"))
    }

    fn open_shared() -> Result<Containerd> {
        let lab = std::env::var_os(LAB_ENV);
        let ci = std::env::var("CI").ok();
        match SharedSource::decide(lab.as_deref(), ci.as_deref()) {
            SharedSource::Lab(lab) => Self::attach(&lab),
            SharedSource::MissingInCi => bail!(
                "{LAB_ENV} is not set and CI is true: end-to-end tests need the containerd \
                 that scripts/test.sh starts (run scripts/test.sh, or start a lab with \
                 `tests/harness/containerd.sh up LAB` and set {LAB_ENV}=LAB)"
            ),
            SharedSource::StartForProcess => {
                let lab = new_lab_dir(&format!("auto-{}", std::process::id()))?;
                // The watchdog first: it also cleans up after an `up` that fails half-way.
                let watchdog = spawn_watchdog(&lab)?;
                run_script(&["up".as_ref(), lab.as_os_str()], Some(&lab))?;
                let cgroup_root = read_cgroup_root(&lab)?;
                Ok(Containerd {
                    lab,
                    cgroup_root,
                    owner: Owner::Process {
                        _watchdog: watchdog,
                    },
                })
            }
        }
    }

    /// Attaches to a running lab that someone else tears down.
    ///
    /// # Errors
    /// When `lab` holds no containerd socket.
    pub fn attach(lab: &Path) -> Result<Containerd> {
        let socket = lab.join("containerd.sock");
        ensure!(
            socket.exists(),
            "{} does not exist: is the lab {} up? (tests/harness/containerd.sh up {})",
            socket.display(),
            lab.display(),
            lab.display()
        );
        Ok(Containerd {
            lab: lab.to_path_buf(),
            cgroup_root: read_cgroup_root(lab)?,
            owner: Owner::External,
        })
    }

    /// A containerd of this test's own, torn down by pid when dropped. `name` goes into the
    /// lab directory name (`/tmp/gannet-e2e-<name>-<random>`).
    ///
    /// # Errors
    /// When the lab cannot be started; the error carries the script's output and log.
    pub fn private(name: &str) -> Result<Containerd> {
        let lab = new_lab_dir(name)?;
        // Start the watchdog first: a test process that dies during `up` leaves nothing.
        let watchdog = spawn_watchdog(&lab)?;
        let mut this = Containerd {
            lab: lab.clone(),
            cgroup_root: String::new(),
            owner: Owner::Test {
                watchdog: Some(watchdog),
            },
        };
        run_script_with(
            &["up".as_ref(), lab.as_os_str()],
            Some(&lab),
            image_cache().as_deref(),
        )?;
        this.cgroup_root = read_cgroup_root(&lab)?;
        Ok(this)
    }

    /// The lab directory.
    pub fn lab(&self) -> &Path {
        &self.lab
    }

    /// The containerd socket (CRI v1, v1alpha2 and the native API).
    pub fn socket(&self) -> PathBuf {
        self.lab.join("containerd.sock")
    }

    /// The containerd log file.
    pub fn log_path(&self) -> PathBuf {
        self.lab.join("containerd.log")
    }

    /// The name of this lab's pod-cgroup root (`/sys/fs/cgroup/<ctrl>/<root>/pod<uid>`).
    pub fn cgroup_root(&self) -> &str {
        &self.cgroup_root
    }

    /// The lab's CNI pod network (bridge, subnet, gateway), for pods created with
    /// [`crate::PodSpec::pod_network`].
    ///
    /// # Errors
    /// When the lab has none: `up` found no CNI plugins (`containerd.sh deps` installs
    /// containernetworking-plugins), so it runs host-network pods only.
    pub fn pod_network(&self) -> Result<PodNetwork> {
        let path = self.lab.join("pod-network");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {}: the lab {} has no pod network (host network only; \
                 `tests/harness/containerd.sh deps` installs containernetworking-plugins)",
                path.display(),
                self.lab.display()
            )
        })?;
        PodNetwork::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The pid of the running containerd, if it runs.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.lab.join("containerd.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// The last `lines` lines of the containerd log (empty if there is none yet).
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail_of(&self.lab, lines)
    }

    /// Adds the tail of the containerd log to `error`, for a failure report.
    pub fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        error.context(format!(
            "containerd log ({}), last {LOG_TAIL_LINES} lines:\n{}",
            self.log_path().display(),
            self.log_tail(LOG_TAIL_LINES)
        ))
    }

    /// A `gannet` command line aimed at this containerd: `args`, then `--socket <socket>`;
    /// failure reports carry this lab's containerd log.
    pub fn gannet<I, S>(&self, args: I) -> GannetCmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Gannet::cmd(args).socket(self)
    }

    /// A CRI driver connected to this containerd.
    ///
    /// # Errors
    /// When the socket does not answer.
    pub async fn cri(&self) -> Result<CriDriver> {
        CriDriver::connect(self).await
    }

    /// Imports OCI image archives (`scripts/image.sh`, `scripts/plugin-image.sh`) into the
    /// lab's `k8s.io` namespace, where CRI finds them by name.
    ///
    /// # Errors
    /// When an archive is missing or `ctr` refuses it.
    pub fn import_images(&self, archives: &[&Path]) -> Result<()> {
        let mut args: Vec<&OsStr> = vec!["import".as_ref(), self.lab.as_os_str()];
        args.extend(archives.iter().map(|a| a.as_os_str()));
        run_script(&args, Some(&self.lab))
    }

    /// A stand-in for the node's root filesystem, as a pod's hostPath `/` sees it:
    /// `LAB/host-root`, a shared bind of `/` with the host's `/proc` inside
    /// (`containerd.sh host-root`). Torn down with the lab.
    ///
    /// # Errors
    /// On a shared lab, or when the mounts fail.
    pub fn host_root_stand_in(&self) -> Result<PathBuf> {
        self.require_private("host_root_stand_in")?;
        run_script(
            &["host-root".as_ref(), self.lab.as_os_str()],
            Some(&self.lab),
        )?;
        Ok(self.lab.join("host-root"))
    }

    /// An empty stand-in for a node's root (a shared mount of an empty directory,
    /// `LAB/empty-host-root`): a node missing what the manifest mounts.
    ///
    /// # Errors
    /// On a shared lab, or when the mount fails.
    pub fn empty_host_root(&self) -> Result<PathBuf> {
        self.require_private("empty_host_root")?;
        run_script(
            &["host-root".as_ref(), self.lab.as_os_str(), "empty".as_ref()],
            Some(&self.lab),
        )?;
        Ok(self.lab.join("empty-host-root"))
    }

    /// Stops containerd alone, by pid, and starts it again: containers keep running.
    ///
    /// # Errors
    /// On a shared lab, or when containerd does not come back.
    pub fn restart(&self) -> Result<()> {
        self.require_private("restart")?;
        run_script(&["restart".as_ref(), self.lab.as_os_str()], Some(&self.lab))
    }

    /// Stops containerd alone, by pid (containers and shims keep running).
    ///
    /// # Errors
    /// On a shared lab, or when the script fails.
    pub fn stop_daemon(&self) -> Result<()> {
        self.require_private("stop_daemon")?;
        run_script(
            &["stop-daemon".as_ref(), self.lab.as_os_str()],
            Some(&self.lab),
        )
    }

    /// Starts containerd again after [`Containerd::stop_daemon`] and waits until it answers.
    ///
    /// # Errors
    /// On a shared lab, or when containerd does not come up.
    pub fn start_daemon(&self) -> Result<()> {
        self.require_private("start_daemon")?;
        run_script(
            &["start-daemon".as_ref(), self.lab.as_os_str()],
            Some(&self.lab),
        )
    }

    /// Tears a private lab down now and reports what was left behind, if anything.
    ///
    /// # Errors
    /// On a shared lab, or when processes, mounts, shim sockets or cgroups survive.
    pub fn down(mut self) -> Result<()> {
        self.require_private("down")?;
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        if let Owner::Test { watchdog } = &mut self.owner {
            if let Some(mut child) = watchdog.take() {
                // The watchdog is ours (a child); kill it by its pid handle and reap it.
                let _ = child.kill();
                let _ = child.wait();
            }
            run_script(&["down".as_ref(), self.lab.as_os_str()], None)
        } else {
            Ok(())
        }
    }

    fn require_private(&self, what: &str) -> Result<()> {
        ensure!(
            matches!(self.owner, Owner::Test { .. }),
            "{what}() needs a Containerd::private() lab: other tests share {}",
            self.lab.display()
        );
        Ok(())
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            eprintln!(
                "harness: tearing down {} failed: {error:#}",
                self.lab.display()
            );
        }
    }
}

/// A new, not yet existing lab path under `/tmp` (short: socket paths are limited to 108 bytes).
fn new_lab_dir(name: &str) -> Result<PathBuf> {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(24)
        .collect();
    Ok(PathBuf::from(format!(
        "/tmp/gannet-e2e-{clean}-{}",
        random_hex(3)?
    )))
}

fn read_cgroup_root(lab: &Path) -> Result<String> {
    let path = lab.join("cgroup-root");
    let root = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (is {} a lab?)", path.display(), lab.display()))?;
    Ok(root.trim().to_string())
}

fn log_tail_of(lab: &Path, lines: usize) -> String {
    std::fs::read_to_string(lab.join("containerd.log"))
        .map(|log| tail(&log, lines))
        .unwrap_or_default()
}

/// Starts `containerd.sh reap-after <this pid> LAB` in its own process group, detached
/// from our stdio so it never holds a pipe of whoever reads the test output.
fn spawn_watchdog(lab: &Path) -> Result<Child> {
    use std::os::unix::process::CommandExt;
    Command::new("bash")
        .arg(script_path())
        .arg("reap-after")
        .arg(std::process::id().to_string())
        .arg(lab)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting the teardown watchdog for {}", lab.display()))
}

/// Prebuilt image archives a new lab can import instead of building its own (about 2 s):
/// `GANNET_E2E_IMAGES`, else the shared lab's, if it has them.
fn image_cache() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(IMAGES_ENV) {
        return Some(PathBuf::from(dir));
    }
    let shared = match std::env::var_os(LAB_ENV) {
        Some(lab) if !lab.is_empty() => PathBuf::from(lab),
        _ => SHARED.get()?.as_ref().ok()?.lab.clone(),
    };
    let images = shared.join("images");
    (images.join("pause.tar").is_file() && images.join("busybox.tar").is_file()).then_some(images)
}

/// Runs the harness script; a failure reports the command, its output and the log tail.
pub(crate) fn run_script(args: &[&OsStr], lab: Option<&Path>) -> Result<()> {
    run_script_with(args, lab, None)
}

/// [`run_script`] with `GANNET_E2E_IMAGES` set to `images` when given.
fn run_script_with(args: &[&OsStr], lab: Option<&Path>, images: Option<&Path>) -> Result<()> {
    let script = script_path();
    let mut command = Command::new("bash");
    command.arg(&script).args(args).stdin(Stdio::null());
    if let Some(images) = images {
        command.env(IMAGES_ENV, images);
    }
    let output = command
        .output()
        .with_context(|| format!("running bash {}", script.display()))?;
    if output.status.success() {
        return Ok(());
    }
    let command = std::iter::once(script.as_os_str())
        .chain(args.iter().copied())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let log = lab
        .map(|lab| {
            format!(
                "\n--- containerd log, last {LOG_TAIL_LINES} lines ---\n{}",
                log_tail_of(lab, LOG_TAIL_LINES)
            )
        })
        .unwrap_or_default();
    bail!(
        "`{command}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}{log}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim_end(),
        String::from_utf8_lossy(&output.stderr).trim_end(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_lab_wins_even_in_ci() {
        assert_eq!(
            SharedSource::decide(Some(OsStr::new("/tmp/lab")), Some("true")),
            SharedSource::Lab(PathBuf::from("/tmp/lab"))
        );
    }

    #[test]
    fn ci_without_a_lab_fails_instead_of_starting_one() {
        assert_eq!(
            SharedSource::decide(None, Some("true")),
            SharedSource::MissingInCi
        );
        assert_eq!(
            SharedSource::decide(Some(OsStr::new("")), Some("1")),
            SharedSource::MissingInCi
        );
    }

    #[test]
    fn outside_ci_a_lab_is_started_for_the_process() {
        for ci in [None, Some(""), Some("false"), Some("0")] {
            assert_eq!(
                SharedSource::decide(None, ci),
                SharedSource::StartForProcess,
                "CI={ci:?}"
            );
        }
    }

    #[test]
    fn a_pod_network_record_parses_and_contains_its_subnet() -> Result<()> {
        let net = PodNetwork::parse(
            "bridge=gnt1a2b3c\nsubnet=10.219.142.0/24\ngateway=10.219.142.1\nnetwork=gannet-1a2b3c\n",
        )?;
        assert_eq!(net.bridge, "gnt1a2b3c");
        assert_eq!(net.gateway, "10.219.142.1");
        assert_eq!(net.network, "gannet-1a2b3c");
        assert!(net.contains("10.219.142.7"));
        assert!(!net.contains("10.219.143.7"));
        assert!(!net.contains("192.0.2.2"));
        assert!(!net.contains("fd00::2"));
        assert!(PodNetwork::parse("bridge=gnt1\nsubnet=10.0.0.0/24\n").is_err());
        assert!(
            PodNetwork::parse("bridge=b\nsubnet=10.0.0.0/33\ngateway=10.0.0.1\nnetwork=n\n")
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn lab_dirs_are_short_unique_and_clean() -> Result<()> {
        let a = new_lab_dir("Restart Test/with a very long name indeed")?;
        let b = new_lab_dir("Restart Test/with a very long name indeed")?;
        assert_ne!(a, b);
        let name = a.to_string_lossy().into_owned();
        assert!(
            name.starts_with("/tmp/gannet-e2e-restart-test-with-a-very-"),
            "{name}"
        );
        // the longest socket path in a lab must fit sun_path (108 bytes)
        assert!(name.len() + "/containerd.sock.ttrpc".len() < 108, "{name}");
        Ok(())
    }
}
