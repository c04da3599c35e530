//! The performance benchmarks on a real containerd, in one run that
//! prints one table. An example rather than a `[[bench]]`, so CI builds it with the test
//! build and runs only a smoke (`--smoke`, about 10 containers). Run it optimised, with
//! a release `gannet` beside it (`scripts/bench.sh` builds both and the plugins):
//!
//! ```text
//! cargo run --release -p gannet-e2e --example perf -- [--events N] [--poll N]
//!     [--containers N] [--sync-reps N] [--steady-secs N] [--lab DIR] [--smoke]
//!     [--only latency,sync,steady] [--rss-variants] [--scale 0,50,100,200,400]
//!     [--baseline-bin PATH]
//! ```
//!
//! Without `--lab` it starts a private containerd (tests/harness/containerd.sh) and tears
//! it down at the end. Every figure is measured in this run, beside its comparison:
//!
//! - **a. detection latency** to the file output of a `gannet run` (the `gannet` next to
//!   this executable, or `GANNET_BIN`): from `StartContainer` returning to the record's
//!   `added` line in the file, and from `kill(2)` SIGKILL of the container's process to
//!   its `removed` line; `events` mode (`--events` samples) against `poll` mode (`--poll`
//!   samples), one container at a time, the default 3 s sync period.
//! - **b. full sync** with `--containers` running (one pod each): Gannet's full sync
//!   ([`gannet::discovery::FullSync`]: two lists, then concurrent verbose fetches) against
//!   the reference algorithm built here from CRI calls (ListContainers, then per container
//!   a verbose ContainerStatus, its pid checked in `/proc`, and a verbose PodSandboxStatus,
//!   one after another), `--sync-reps` repetitions, interleaved (ABBA), medians.
//! - **c. steady state** of a `gannet run` with the four example plugins over the same
//!   containers for `--steady-secs`: CPU (% of one core, utime+stime from
//!   `/proc/PID/stat`) and memory (VmRSS, VmHWM from `/proc/PID/status`).
//!   `--rss-variants` also runs short variants to explain the RSS (no plugins, a warm
//!   plugin cache, in-process compiles, `poll` mode, the 3 s events-mode list).
//!   `--baseline-bin PATH` runs the cold-cache row again, right after, with another
//!   `gannet` (a build of an earlier commit): before and after a change, in one run.
//! - **e. scale curve** (`--scale LIST`, instead of a-c): for each container count of
//!   LIST, ascending, with that many running pods: Gannet's full sync (median of
//!   `--sync-reps`), and a `gannet run` with the four example plugins and a warm plugin
//!   cache: exec → `/readyz` 200, steady CPU over `--steady-secs` and VmRSS, and the RSS
//!   added per container between counts.
//! - **d.** the plugin-chain throughput comes from `cargo bench -p gannet --bench
//!   plugin_chain`; the table keeps a row for it.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use gannet::discovery::{Config, FullSync, SyncMode};
use gannet_test_kit::{
    free_port, wait_until, ContainerSpec, Containerd, CriContainer, CriDriver, Gannet,
    PluginWorkspace, PodSpec,
};
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerState, ContainerStatusRequest, ListContainersRequest, PodSandboxStatusRequest,
};

/// Longest wait for one line in the output (poll mode needs up to a period plus the fetch).
const LINE_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for a `gannet run` to be ready, or for many records to arrive.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the output watcher looks at the file (the resolution of the latencies).
const WATCH_STEP: Duration = Duration::from_micros(500);
/// How long a steady-state run settles before CPU is sampled.
const STEADY_SETTLE: Duration = Duration::from_secs(5);
/// Timeout of one reference CRI call (the reference's default context timeout).
const REFERENCE_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The example plugins: crate (its .wasm name) -> the name deployed (sets the order).
const PLUGINS: [(&str, &str); 4] = [
    ("lc_filter", "10-lc-filter"),
    ("team_labels", "20-team-labels"),
    ("redact_env", "30-redact-env"),
    ("route_by_namespace", "40-route-by-namespace"),
];
/// The namespace of the sync/steady pods: lc-filter keeps it, so records reach the output.
const BENCH_NAMESPACE: &str = "shop";

#[derive(Debug, Clone)]
struct Args {
    events: usize,
    poll: usize,
    containers: usize,
    sync_reps: usize,
    steady_secs: u64,
    lab: Option<PathBuf>,
    smoke: bool,
    only: Vec<String>,
    rss_variants: bool,
    scale: Vec<usize>,
    baseline: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        events: 100,
        poll: 20,
        containers: 200,
        sync_reps: 8,
        steady_secs: 60,
        lab: None,
        smoke: false,
        only: Vec::new(),
        rss_variants: false,
        scale: Vec::new(),
        baseline: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--events" => args.events = value("--events")?.parse()?,
            "--poll" => args.poll = value("--poll")?.parse()?,
            "--containers" => args.containers = value("--containers")?.parse()?,
            "--sync-reps" => args.sync_reps = value("--sync-reps")?.parse()?,
            "--steady-secs" => args.steady_secs = value("--steady-secs")?.parse()?,
            "--lab" => args.lab = Some(PathBuf::from(value("--lab")?)),
            "--only" => args.only = value("--only")?.split(',').map(str::to_owned).collect(),
            "--rss-variants" => args.rss_variants = true,
            "--baseline-bin" => args.baseline = Some(PathBuf::from(value("--baseline-bin")?)),
            "--scale" => {
                args.scale = value("--scale")?
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse()
                            .context("--scale takes counts, e.g. 0,50,100")
                    })
                    .collect::<Result<_>>()?;
                args.scale.sort_unstable();
            }
            "--smoke" => {
                args.smoke = true;
                args.events = 10;
                args.poll = 2;
                args.containers = 10;
                args.sync_reps = 2;
                args.steady_secs = 5;
            }
            other => bail!(
                "unknown argument {other:?}; use --events N --poll N --containers N \
                 --sync-reps N --steady-secs N --lab DIR --smoke --only LIST --rss-variants \
                 --scale LIST --baseline-bin PATH"
            ),
        }
    }
    for part in &args.only {
        ensure!(
            ["latency", "sync", "steady"].contains(&part.as_str()),
            "--only takes latency, sync, steady (comma-separated), not {part:?}"
        );
    }
    Ok(args)
}

impl Args {
    fn runs(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| p == part)
    }
}

// ---------------------------------------------------------------------------------------
// A `gannet run` with a file output.

/// What one agent run is given.
struct AgentSpec<'a> {
    mode: SyncMode,
    plugins: bool,
    cache_dir: Option<&'a Path>,
    envs: Vec<(&'a str, &'a str)>,
    /// Extra lines for the `[runtime]` section.
    runtime: &'a str,
    /// The `gannet` to run; `None`: the one under test ([`Gannet::bin`]).
    bin: Option<&'a Path>,
}

/// A running `gannet run`, killed on drop.
struct Agent {
    child: Child,
    dir: tempfile::TempDir,
    output: PathBuf,
    /// The executable it runs.
    bin: PathBuf,
    /// From spawning `gannet run` to its first `/readyz` 200 (polled every 5 ms).
    ready_after: Duration,
}

impl Agent {
    fn start(lab: &Containerd, spec: &AgentSpec<'_>) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("gannet-perf-")
            .tempdir_in(lab.lab())?;
        let d = dir.path();
        let output = d.join("out.jsonl");
        let health = free_port()?;
        let mut plugins = String::new();
        if spec.plugins {
            let plugin_dir = d.join("plugins");
            deploy_plugins(&plugin_dir)?;
            plugins = format!("[plugins]\ndir = \"{}\"\n", plugin_dir.display());
            if let Some(cache) = spec.cache_dir {
                plugins.push_str(&format!("cache_dir = \"{}\"\n", cache.display()));
            }
        }
        let config = d.join("gannet.toml");
        std::fs::write(
            &config,
            format!(
                r#"[runtime]
socket = "{socket}"
sync_mode = "{mode}"
shutdown_grace_period_secs = 2
{runtime}
{plugins}
[outputs.default]
type = "file"
path = "{output}"

[api]
socket = "{d}/api.sock"
grpc_socket = "{d}/grpc.sock"
health_listen = "127.0.0.1:{health}"

[logging]
level = "warn"
"#,
                socket = lab.socket().display(),
                mode = spec.mode,
                runtime = spec.runtime,
                output = output.display(),
                d = d.display(),
            ),
        )?;
        std::fs::File::create(&output)?;
        let stderr = std::fs::File::create(d.join("gannet.log"))?;
        let spawned = Instant::now();
        let bin = match spec.bin {
            Some(bin) => bin.to_path_buf(),
            None => Gannet::bin()?,
        };
        let child = Command::new(&bin)
            .args(["run", "--node-name", "perf", "--config"])
            .arg(&config)
            .envs(spec.envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("starting gannet run")?;
        let mut agent = Self {
            child,
            dir,
            output,
            bin,
            ready_after: Duration::ZERO,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while http_status(health, "/readyz") != Some(200) {
            if let Some(status) = agent.child.try_wait()? {
                bail!(
                    "gannet run exited ({status}) before ready:\n{}",
                    agent.log()
                );
            }
            ensure!(
                Instant::now() < deadline,
                "gannet run not ready after {START_TIMEOUT:?}:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        agent.ready_after = spawned.elapsed();
        Ok(agent)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("gannet.log")).unwrap_or_default();
        gannet_test_kit::tail(&text, 30)
    }

    /// `(event, container id)` of every line in the output so far.
    fn lines(&self) -> Result<Vec<(String, String)>> {
        let text = std::fs::read_to_string(&self.output)?;
        Ok(text.lines().filter_map(parse_line).collect())
    }

    /// SIGTERM, then a bounded wait; SIGKILL after it.
    fn stop(mut self) -> Result<()> {
        signal(self.child.id(), libc::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("gannet run did not stop within 10 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copies the four example plugins (built wasm + sidecar) into `dir`; builds them first
/// if they are not up to date (a no-op after `scripts/bench.sh` or `scripts/test.sh`).
fn deploy_plugins(dir: &Path) -> Result<()> {
    let root = gannet_test_kit::repo_root();
    std::fs::create_dir_all(dir)?;
    for (krate, name) in PLUGINS {
        let built = PluginWorkspace::Examples.wasm(krate)?;
        std::fs::copy(&built, dir.join(format!("{name}.wasm")))?;
        std::fs::copy(
            root.join(format!("examples/plugins/{name}.toml")),
            dir.join(format!("{name}.toml")),
        )?;
    }
    Ok(())
}

fn parse_line(line: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some((
        v["event"].as_str()?.to_owned(),
        v["record"]["id"].as_str()?.to_owned(),
    ))
}

/// GET over plain TCP; the status code, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

#[allow(unsafe_code)]
fn signal(pid: u32, sig: libc::c_int) -> Result<()> {
    let pid = libc::pid_t::try_from(pid)?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, sig) };
    ensure!(
        rc == 0,
        "kill({pid}, {sig}) failed: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// a. Detection latency to the file output.

/// When each `(event, id)` line appeared in the output file.
type Seen = Arc<Mutex<HashMap<(String, String), Instant>>>;

/// A thread that tails the output file and stamps each new line when it sees it.
struct Watcher {
    seen: Seen,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let seen: Seen = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut offset = 0u64;
            let mut partial = String::new();
            while !stop2.load(Ordering::Relaxed) {
                let len = file.metadata().map(|m| m.len()).unwrap_or(offset);
                if len > offset {
                    let mut chunk = String::new();
                    if file.seek(SeekFrom::Start(offset)).is_ok()
                        && file.read_to_string(&mut chunk).is_ok()
                    {
                        let at = Instant::now();
                        offset += chunk.len() as u64;
                        partial.push_str(&chunk);
                        while let Some(end) = partial.find('\n') {
                            let line: String = partial.drain(..=end).collect();
                            if let Some(key) = parse_line(&line) {
                                if let Ok(mut m) = seen2.lock() {
                                    m.entry(key).or_insert(at);
                                }
                            }
                        }
                    }
                }
                std::thread::sleep(WATCH_STEP);
            }
        });
        Ok(Self {
            seen,
            stop,
            thread: Some(thread),
        })
    }

    async fn wait(&self, event: &str, id: &str) -> Result<Instant> {
        let key = (event.to_owned(), id.to_owned());
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            if let Some(at) = self.seen.lock().ok().and_then(|m| m.get(&key).copied()) {
                return Ok(at);
            }
            ensure!(
                Instant::now() < deadline,
                "no {event} line for {id} within {LINE_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Latencies of one mode.
#[derive(Default)]
struct Latencies {
    start: Vec<Duration>,
    kill: Vec<Duration>,
}

async fn measure_latency(
    lab: &Containerd,
    cri: &CriDriver,
    mode: SyncMode,
    n: usize,
) -> Result<Latencies> {
    let agent = Agent::start(
        lab,
        &AgentSpec {
            mode,
            plugins: false,
            cache_dir: None,
            envs: Vec::new(),
            runtime: "",
            bin: None,
        },
    )?;
    let watcher = Watcher::start(&agent.output)?;
    let pod = cri
        .create_pod(&PodSpec::new(&format!("lat-{mode}")).namespace("perf"))
        .await?;
    let mut out = Latencies::default();
    for i in 0..n {
        let c = cri
            .create_container(&pod, &ContainerSpec::sleeper(&format!("c{i}")))
            .await?;
        cri.start(&c).await?;
        let started = Instant::now();
        let added = watcher
            .wait("added", &c.id)
            .await
            .map_err(|e| e.context(agent.log()))?;
        out.start.push(added.saturating_duration_since(started));

        let pid = cri.container_pid(&c).await?;
        let killed = Instant::now();
        signal(pid, libc::SIGKILL)?;
        let removed = watcher
            .wait("removed", &c.id)
            .await
            .map_err(|e| e.context(agent.log()))?;
        out.kill.push(removed.saturating_duration_since(killed));
        // Gannet may report the exit before CRI has finished its own bookkeeping.
        cri.wait_state(&c, ContainerState::ContainerExited, LINE_TIMEOUT)
            .await?;
        cri.remove(&c).await?;
    }
    drop(watcher);
    agent.stop()?;
    cri.remove_pod(&pod).await?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// b. Full sync, Gannet against the reference algorithm.

/// The reference's full sync: ListContainers, then for each running or exited container
/// a verbose ContainerStatus (its info JSON parsed, its pid checked in /proc) and a
/// verbose PodSandboxStatus for its labels, one call after another. Returns how many
/// containers it found running.
async fn reference_sync(client: &RuntimeServiceClient<tonic::transport::Channel>) -> Result<usize> {
    let mut c = client.clone();
    let list = tokio::time::timeout(
        REFERENCE_CALL_TIMEOUT,
        c.list_containers(ListContainersRequest { filter: None }),
    )
    .await??
    .into_inner();
    let mut running = 0;
    for container in list.containers {
        let state = container.state;
        if state != ContainerState::ContainerRunning as i32
            && state != ContainerState::ContainerExited as i32
        {
            continue;
        }
        let status = tokio::time::timeout(
            REFERENCE_CALL_TIMEOUT,
            c.container_status(ContainerStatusRequest {
                container_id: container.id.clone(),
                verbose: true,
            }),
        )
        .await??
        .into_inner();
        let info: serde_json::Value = match status.info.get("info") {
            Some(raw) => serde_json::from_str(raw)?,
            None => continue,
        };
        let pid = info["pid"].as_u64().unwrap_or(0);
        let alive = pid > 0 && Path::new(&format!("/proc/{pid}/stat")).exists();
        let cri_running = status
            .status
            .as_ref()
            .is_some_and(|s| s.state == ContainerState::ContainerRunning as i32);
        if cri_running && alive {
            running += 1;
        }
        let sandbox = tokio::time::timeout(
            REFERENCE_CALL_TIMEOUT,
            c.pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: container.pod_sandbox_id.clone(),
                verbose: true,
            }),
        )
        .await??
        .into_inner();
        // The reference copies the pod labels into the record.
        std::hint::black_box(sandbox.status.map(|s| s.labels.len()));
    }
    Ok(running)
}

struct SyncTimes {
    gannet_cold: Duration,
    gannet: Vec<Duration>,
    reference: Vec<Duration>,
    found: usize,
}

async fn measure_sync(lab: &Containerd, reps: usize, expected: usize) -> Result<SyncTimes> {
    let config = Config {
        socket_flag: Some(lab.socket()),
        containerd_state_dir: Some(lab.lab().join("state")),
        ..Config::default()
    };
    let gannet = FullSync::connect(&config).await?;
    let channel = gannet::runtime::cri::connect_channel(&lab.socket()).await?;
    let reference = RuntimeServiceClient::new(channel);
    // The first Gannet sync also asks the snapshot service for every upperdir (cached
    // for the container's life afterwards); it is reported on its own.
    let t = Instant::now();
    let records = gannet.run(false).await?;
    let gannet_cold = t.elapsed();
    ensure!(
        records.len() >= expected,
        "Gannet's sync found {} running containers, expected at least {expected}",
        records.len()
    );
    // One untimed reference pass, so both sides start with warm connections.
    let found = reference_sync(&reference).await?;
    ensure!(
        found >= expected,
        "the reference sync found {found} running containers, expected at least {expected}"
    );
    let mut out = SyncTimes {
        gannet_cold,
        gannet: Vec::with_capacity(reps),
        reference: Vec::with_capacity(reps),
        found: records.len(),
    };
    for rep in 0..reps {
        // ABBA order, so neither side always runs right after the other.
        let gannet_first = rep % 4 == 0 || rep % 4 == 3;
        for turn in 0..2 {
            let t = Instant::now();
            if (turn == 0) == gannet_first {
                let n = gannet.run(false).await?.len();
                out.gannet.push(t.elapsed());
                ensure!(
                    n == records.len(),
                    "Gannet's sync found {n}, then {}",
                    records.len()
                );
            } else {
                let n = reference_sync(&reference).await?;
                out.reference.push(t.elapsed());
                ensure!(n == found, "the reference found {n}, then {found}");
            }
        }
    }
    Ok(out)
}

/// Runs `n` pods of one sleeper each in [`BENCH_NAMESPACE`].
async fn start_pods(cri: &CriDriver, n: usize) -> Result<Vec<CriContainer>> {
    let mut containers = Vec::with_capacity(n);
    for i in 0..n {
        let pod = cri
            .create_pod(
                &PodSpec::new(&format!("sync{i}"))
                    .namespace(BENCH_NAMESPACE)
                    .label("app.kubernetes.io/team", "bench"),
            )
            .await?;
        containers.push(
            cri.run_container(&pod, &ContainerSpec::sleeper("app"))
                .await?,
        );
    }
    for c in &containers {
        cri.wait_state(c, ContainerState::ContainerRunning, LINE_TIMEOUT)
            .await?;
    }
    Ok(containers)
}

// ---------------------------------------------------------------------------------------
// c. Steady state.

struct Steady {
    label: String,
    secs: f64,
    cpu_percent: f64,
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
    /// Exec → `/readyz` 200.
    ready_after: Duration,
    /// Context switches per second over the window, per thread name, most first: how
    /// often it wakes, and what.
    wakeups_by_thread: Vec<(String, f64)>,
    /// Where the RSS sits, from `/proc/PID/smaps` at the end of the window.
    memory: MemoryMap,
}

impl Steady {
    /// Context switches per second over the window, all threads.
    fn wakeups_per_sec(&self) -> f64 {
        self.wakeups_by_thread.iter().map(|(_, n)| n).sum()
    }
}

/// The RSS of one process by kind of mapping, in KiB.
#[derive(Debug, Default, Clone, Copy)]
struct MemoryMap {
    /// The `gannet` executable's own pages (code, read-only data, relocations).
    binary: u64,
    /// Shared libraries (libc, libm, libgcc_s, the loader).
    libs: u64,
    /// Compiled plugin code: anonymous executable mappings (wasmtime copies a module's
    /// code out of the cache file and maps it executable).
    plugin_code: u64,
    /// Plugin instances' linear memories: the accessible part of each of wasmtime's
    /// reservations (an anonymous mapping right before a 1 GiB-or-more `---p` one), and
    /// their copy-on-write initial images (`memfd:wasm-memory-image`).
    wasm_memories: u64,
    /// The rest of the anonymous memory: malloc's heap (the table, the API's view, tokio,
    /// tonic and axum, wasmtime's module metadata) and thread stacks.
    heap_and_stacks: u64,
    /// Any other file mapping.
    other: u64,
}

impl MemoryMap {
    fn total(&self) -> u64 {
        self.binary
            + self.libs
            + self.plugin_code
            + self.wasm_memories
            + self.heap_and_stacks
            + self.other
    }
}

/// One mapping of `/proc/PID/smaps`.
struct Mapping {
    start: u64,
    end: u64,
    perms: String,
    path: String,
    rss_kib: u64,
}

/// `pid`'s RSS by kind of mapping; `binary` is its executable.
fn memory_map(pid: u32, binary: &Path) -> Result<MemoryMap> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let binary = std::fs::canonicalize(binary).unwrap_or_else(|_| binary.to_path_buf());
    // Each mapping is a header line, `start-end perms offset dev inode [path]`, then its
    // `Field: value` lines.
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if first == "Rss:" {
            if let Some(m) = mappings.last_mut() {
                m.rss_kib = words.next().context("empty Rss")?.parse()?;
            }
            continue;
        }
        let Some((start, end)) = first.split_once('-').filter(|_| !first.ends_with(':')) else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        else {
            continue;
        };
        let perms = words.next().unwrap_or("").to_owned();
        let path = words.nth(3).unwrap_or("").to_owned();
        mappings.push(Mapping {
            start,
            end,
            perms,
            path,
            rss_kib: 0,
        });
    }
    let reservation =
        |m: &Mapping| m.path.is_empty() && m.perms.starts_with("---") && m.end - m.start >= 1 << 30;
    let mut map = MemoryMap::default();
    for (i, m) in mappings.iter().enumerate() {
        let before_reservation = mappings
            .get(i + 1)
            .is_some_and(|next| next.start == m.end && reservation(next));
        let slot = if m.path.is_empty() {
            if m.perms.contains('x') {
                &mut map.plugin_code
            } else if before_reservation {
                &mut map.wasm_memories
            } else {
                &mut map.heap_and_stacks
            }
        } else if m.path.starts_with("/memfd:wasm-memory-image") {
            &mut map.wasm_memories
        } else if m.path.starts_with('[') {
            &mut map.heap_and_stacks
        } else if Path::new(&m.path) == binary {
            &mut map.binary
        } else if m.path.contains(".so") {
            &mut map.libs
        } else {
            &mut map.other
        };
        *slot += m.rss_kib;
    }
    Ok(map)
}

/// Context switches so far of each of `pid`'s threads: `(tid, name, count)`.
fn context_switches(pid: u32) -> Result<Vec<(String, String, u64)>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let task = task?;
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // the thread ended
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
                .to_owned()
        };
        let switches = field("voluntary_ctxt_switches:")
            .parse::<u64>()
            .unwrap_or(0)
            + field("nonvoluntary_ctxt_switches:")
                .parse::<u64>()
                .unwrap_or(0);
        let tid = task.file_name().to_string_lossy().into_owned();
        out.push((tid, field("Name:"), switches));
    }
    Ok(out)
}

/// Context switches per second between two [`context_switches`] readings, by thread
/// name, most first; a thread that started in between counts from zero.
fn wakeups_by_thread(
    before: &[(String, String, u64)],
    after: &[(String, String, u64)],
    secs: f64,
) -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    for (tid, name, n) in after {
        let then = before
            .iter()
            .find(|(t, _, _)| t == tid)
            .map_or(0, |(_, _, b)| *b);
        let rate = n.saturating_sub(then) as f64 / secs;
        match by_name.iter_mut().find(|(known, _)| known == name) {
            Some((_, r)) => *r += rate,
            None => by_name.push((name.clone(), rate)),
        }
    }
    by_name.sort_by(|a, b| b.1.total_cmp(&a.1));
    by_name
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which may hold spaces) start at state (field 3).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    ensure!(fields.len() > 12, "short /proc/{pid}/stat: {stat}");
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    #[allow(unsafe_code)]
    // SAFETY: sysconf takes and returns plain integers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ensure!(hz > 0, "sysconf(_SC_CLK_TCK) failed");
    Ok(ticks as f64 / hz as f64)
}

/// `(VmRSS, VmHWM, Threads)` of `pid`, in KiB (threads: a count).
fn memory(pid: u32) -> Result<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("empty field")?
            .parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?, field("Threads:")?))
}

async fn measure_steady(
    lab: &Containerd,
    label: &str,
    spec: &AgentSpec<'_>,
    expected: &[CriContainer],
    secs: u64,
) -> Result<Steady> {
    let agent = Agent::start(lab, spec)?;
    let ready_after = agent.ready_after;
    // Every container's record reached the output (through the plugins).
    wait_until(
        START_TIMEOUT,
        "every bench record in the output",
        || async {
            let added: std::collections::HashSet<String> = agent
                .lines()?
                .into_iter()
                .filter(|(e, _)| e == "added")
                .map(|(_, id)| id)
                .collect();
            Ok(expected.iter().all(|c| added.contains(&c.id)).then_some(()))
        },
    )
    .await
    .map_err(|e| e.context(agent.log()))?;
    tokio::time::sleep(STEADY_SETTLE).await;
    let pid = agent.pid();
    let switches0 = context_switches(pid)?;
    let (cpu0, t0) = (cpu_seconds(pid)?, Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (cpu1, elapsed) = (cpu_seconds(pid)?, t0.elapsed());
    let switches1 = context_switches(pid)?;
    let (rss_kib, hwm_kib, threads) = memory(pid)?;
    let memory = memory_map(pid, &agent.bin)?;
    agent.stop()?;
    let wakeups_by_thread = wakeups_by_thread(&switches0, &switches1, elapsed.as_secs_f64());
    Ok(Steady {
        wakeups_by_thread,
        memory,
        label: label.to_owned(),
        secs: elapsed.as_secs_f64(),
        cpu_percent: (cpu1 - cpu0) / elapsed.as_secs_f64() * 100.0,
        rss_kib,
        hwm_kib,
        threads,
        ready_after,
    })
}

// ---------------------------------------------------------------------------------------
// e. The scale curve.

/// A temporary directory only its owner can read: the agent refuses a plugin cache others
/// can read.
fn private_dir() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    Ok(dir)
}

/// For each count of `--scale`: full sync, then a warm-cache `gannet run` with the four
/// example plugins (exec → ready, steady CPU, VmRSS). Prints its own table.
async fn scale_curve(lab: &Containerd, cri: &CriDriver, args: &Args) -> Result<()> {
    let cache = private_dir()?;
    let spec = AgentSpec {
        mode: SyncMode::Events,
        plugins: true,
        cache_dir: Some(cache.path()),
        envs: Vec::new(),
        runtime: "",
        bin: None,
    };
    eprintln!("perf: filling the plugin cache");
    Agent::start(lab, &spec)?.stop()?;
    let mut containers: Vec<CriContainer> = Vec::new();
    let mut rows = Vec::new();
    for &n in &args.scale {
        if n > containers.len() {
            eprintln!("perf: starting pods up to {n}");
            containers.extend(start_pods(cri, n - containers.len()).await?);
        }
        eprintln!("perf: {n} containers: full sync x{}", args.sync_reps);
        let mut sync = measure_sync(lab, args.sync_reps, containers.len()).await?;
        let sync_median = median(&mut sync.gannet);
        eprintln!("perf: {n} containers: steady state, {} s", args.steady_secs);
        let steady = measure_steady(lab, "scale", &spec, &containers, args.steady_secs).await?;
        rows.push((n, sync_median, steady));
    }
    println!();
    println!("Scale curve (events mode, 4 example plugins, warm plugin cache):");
    println!();
    println!("| containers | full sync (median) | exec -> ready | steady CPU | wakeups/s | VmRSS | heap and stacks | RSS added per container | heap added per container |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut previous: Option<(usize, u64, u64)> = None;
    for (n, sync, steady) in &rows {
        let heap = steady.memory.heap_and_stacks;
        let per = |now: u64, then: u64, pn: usize| {
            format!(
                "{:.0} bytes",
                (now as f64 - then as f64) * 1024.0 / (*n - pn) as f64
            )
        };
        let (per_rss, per_heap) = match previous {
            Some((pn, prss, pheap)) if *n > pn => {
                (per(steady.rss_kib, prss, pn), per(heap, pheap, pn))
            }
            _ => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "| {n} | {:.1} ms | {:.0} ms | {:.2}% | {:.2} | {:.1} MiB | {:.1} MiB | {per_rss} | {per_heap} |",
            ms(*sync),
            ms(steady.ready_after),
            steady.cpu_percent,
            steady.wakeups_per_sec(),
            steady.rss_kib as f64 / 1024.0,
            heap as f64 / 1024.0,
        );
        previous = Some((*n, steady.rss_kib, heap));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The table.

/// The `q` quantile (nearest rank) of sorted `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn yes_no(ok: bool) -> &'static str {
    if ok {
        "yes"
    } else {
        "**no**"
    }
}

fn latency_row(what: &str, v: &mut [Duration], target: &str) {
    v.sort();
    println!(
        "| 4a | {what} | {} | p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms | {target} |",
        v.len(),
        ms(quantile(v, 0.50)),
        ms(quantile(v, 0.99)),
        ms(v.last().copied().unwrap_or_default()),
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    quantile(v, 0.5)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let private = match &args.lab {
        Some(_) => None,
        None => Some(Containerd::private("perf")?),
    };
    let attached = match &args.lab {
        Some(dir) => Some(Containerd::attach(dir)?),
        None => None,
    };
    let lab = private
        .as_ref()
        .or(attached.as_ref())
        .context("no containerd lab")?;
    let cri = lab.cri().await?;
    let bin = Gannet::bin()?;
    eprintln!("perf: gannet binary {}", bin.display());

    if !args.scale.is_empty() {
        scale_curve(lab, &cri, &args).await?;
        drop(cri);
        if let Some(lab) = private {
            lab.down()?;
        }
        return Ok(());
    }

    let mut latency = None;
    if args.runs("latency") {
        eprintln!(
            "perf: detection latency, events mode, {} samples",
            args.events
        );
        let events = measure_latency(lab, &cri, SyncMode::Events, args.events).await?;
        eprintln!("perf: detection latency, poll mode, {} samples", args.poll);
        let poll = measure_latency(lab, &cri, SyncMode::Poll, args.poll).await?;
        latency = Some((events, poll));
    }
    let mut sync = None;
    let mut steady = Vec::new();
    if args.runs("sync") || args.runs("steady") {
        eprintln!("perf: starting {} pods x 1 container", args.containers);
        let t = Instant::now();
        let containers = start_pods(&cri, args.containers).await?;
        eprintln!("perf: started in {:.1} s", t.elapsed().as_secs_f64());
        if args.runs("sync") {
            eprintln!("perf: full sync, {} repetitions each", args.sync_reps);
            sync = Some(measure_sync(lab, args.sync_reps, containers.len()).await?);
        }
        if args.runs("steady") {
            eprintln!("perf: steady state, {} s", args.steady_secs);
            // A cold plugin cache: a child `gannet plugin compile` fills it, the agent
            // only loads (what a new node does).
            let cold = private_dir()?;
            let spec = AgentSpec {
                mode: SyncMode::Events,
                plugins: true,
                cache_dir: Some(cold.path()),
                envs: Vec::new(),
                runtime: "",
                bin: None,
            };
            steady.push(
                measure_steady(
                    lab,
                    "4 plugins, cold plugin cache",
                    &spec,
                    &containers,
                    args.steady_secs,
                )
                .await?,
            );
            if let Some(baseline) = &args.baseline {
                let label = format!(
                    "4 plugins, cold plugin cache, baseline {}",
                    baseline.display()
                );
                eprintln!("perf: steady state, {label}, {} s", args.steady_secs);
                let baseline_cache = private_dir()?;
                let spec = AgentSpec {
                    cache_dir: Some(baseline_cache.path()),
                    bin: Some(baseline),
                    ..spec
                };
                steady
                    .push(measure_steady(lab, &label, &spec, &containers, args.steady_secs).await?);
            }
            if args.rss_variants {
                let variant_secs = args.steady_secs.min(20);
                let variants: Vec<(&str, AgentSpec<'_>)> = vec![
                    (
                        "4 plugins, warm plugin cache (a pod restart)",
                        AgentSpec {
                            mode: SyncMode::Events,
                            plugins: true,
                            cache_dir: Some(cold.path()),
                            envs: Vec::new(),
                            runtime: "",
                            bin: None,
                        },
                    ),
                    (
                        "4 plugins compiled in-process (no cache_dir)",
                        AgentSpec {
                            mode: SyncMode::Events,
                            plugins: true,
                            cache_dir: None,
                            envs: Vec::new(),
                            runtime: "",
                            bin: None,
                        },
                    ),
                    (
                        "no plugins",
                        AgentSpec {
                            mode: SyncMode::Events,
                            plugins: false,
                            cache_dir: None,
                            envs: Vec::new(),
                            runtime: "",
                            bin: None,
                        },
                    ),
                    (
                        "4 plugins, warm plugin cache, poll mode",
                        AgentSpec {
                            mode: SyncMode::Poll,
                            plugins: true,
                            cache_dir: Some(cold.path()),
                            envs: Vec::new(),
                            runtime: "",
                            bin: None,
                        },
                    ),
                    (
                        "4 plugins, events-mode list every 3 s (before events_sync_period_secs)",
                        AgentSpec {
                            mode: SyncMode::Events,
                            plugins: true,
                            cache_dir: Some(cold.path()),
                            envs: Vec::new(),
                            runtime: "events_sync_period_secs = 3",
                            bin: None,
                        },
                    ),
                ];
                for (label, spec) in &variants {
                    eprintln!("perf: steady-state variant {label}, {variant_secs} s");
                    steady.push(measure_steady(lab, label, spec, &containers, variant_secs).await?);
                }
            }
        }
        eprintln!("perf: removing the pods");
    }
    drop(cri);

    println!();
    println!(
        "Gannet benchmarks on containerd ({} build of gannet{}):",
        if bin.components().any(|c| c.as_os_str() == "release") {
            "release"
        } else {
            "debug"
        },
        if args.smoke {
            ", SMOKE: figures mean nothing"
        } else {
            ""
        }
    );
    println!();
    println!("| item | what | n | measured | comparison / target |");
    println!("|---|---|---|---|---|");
    if let Some((mut events, mut poll)) = latency {
        latency_row(
            "StartContainer -> `added` line in the file, `events`",
            &mut events.start,
            "p99 <= 10 ms",
        );
        latency_row(
            "kill -9 -> `removed` line in the file, `events`",
            &mut events.kill,
            "p99 <= 15 ms",
        );
        latency_row(
            "StartContainer -> `added` line, `poll`",
            &mut poll.start,
            "-",
        );
        latency_row("kill -9 -> `removed` line, `poll`", &mut poll.kill, "-");
        // Exits reach both modes through the kernel (pidfds), so polling now costs only on
        // starts: the comparison is the start, events p99 against poll p50.
        let p99 = quantile(&events.start, 0.99);
        let poll_p50 = quantile(&poll.start, 0.50);
        let ratio = poll_p50.as_secs_f64() / p99.as_secs_f64().max(1e-9);
        println!(
            "| 4a | start: events p99 vs poll p50 | - | {:.1} ms vs {:.0} ms: {ratio:.0}x | >= 30x: {} |",
            ms(p99),
            ms(poll_p50),
            yes_no(ratio >= 30.0),
        );
    }
    if let Some(mut s) = sync {
        let g = median(&mut s.gannet);
        let r = median(&mut s.reference);
        let ratio = r.as_secs_f64() / g.as_secs_f64().max(1e-9);
        println!(
            "| 4b | full sync, Gannet (2 lists + concurrent verbose fetches, upperdir cached), {} containers | {} | median {:.1} ms (min {:.1}, max {:.1}) | - |",
            s.found,
            s.gannet.len(),
            ms(g),
            ms(s.gannet.first().copied().unwrap_or_default()),
            ms(s.gannet.last().copied().unwrap_or_default()),
        );
        println!(
            "| 4b | full sync, Gannet's first (cold: + one Snapshots.Mounts per container) | 1 | {:.1} ms | - |",
            ms(s.gannet_cold),
        );
        println!(
            "| 4b | full sync, reference (list + sequential verbose ContainerStatus + PodSandboxStatus) | {} | median {:.1} ms (min {:.1}, max {:.1}) | - |",
            s.reference.len(),
            ms(r),
            ms(s.reference.first().copied().unwrap_or_default()),
            ms(s.reference.last().copied().unwrap_or_default()),
        );
        println!(
            "| 4b | reference / Gannet (medians) | - | {ratio:.1}x | >= 2x: {} |",
            yes_no(ratio >= 2.0)
        );
    }
    for (i, s) in steady.iter().enumerate() {
        let target = if i == 0 {
            format!(
                "CPU <= 0.1%: {}; RSS <= 20 MB: {}",
                yes_no(s.cpu_percent <= 0.1),
                yes_no(s.rss_kib * 1024 <= 20_000_000)
            )
        } else {
            "(variant)".to_owned()
        };
        println!(
            "| 4c | steady state, {} containers, events mode, {} | {:.0} s | CPU {:.2}% of one core; {:.2} wakeups/s; VmRSS {:.1} MiB ({:.1} MB), VmHWM {:.1} MiB; {} threads; exec -> ready {:.0} ms | {target} |",
            args.containers,
            s.label,
            s.secs,
            s.cpu_percent,
            s.wakeups_per_sec(),
            s.rss_kib as f64 / 1024.0,
            s.rss_kib as f64 * 1024.0 / 1e6,
            s.hwm_kib as f64 / 1024.0,
            s.threads,
            ms(s.ready_after),
        );
    }
    if !steady.is_empty() {
        println!();
        println!("Steady-state RSS by mapping (/proc/PID/smaps, KiB) and wakeups by thread:");
        println!();
        println!("| variant | binary | shared libs | plugin code | wasm memories | heap and stacks | other | total | wakeups/s by thread |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for s in &steady {
            let m = s.memory;
            let mut threads: Vec<String> = s
                .wakeups_by_thread
                .iter()
                .filter(|(_, n)| *n >= 0.01)
                .map(|(name, n)| format!("{name} {n:.2}"))
                .collect();
            if threads.is_empty() {
                threads.push("none".to_owned());
            }
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.label,
                m.binary,
                m.libs,
                m.plugin_code,
                m.wasm_memories,
                m.heap_and_stacks,
                m.other,
                m.total(),
                threads.join(", "),
            );
        }
    }
    println!(
        "| 4d | plugin chain throughput (lc-filter -> team-labels -> redact-env) | - | from `cargo bench -p gannet --bench plugin_chain -- --interleaved` (docs/BENCHMARKS.md, Plugin chain) | >= 200,000 records/s |"
    );
    if let Some(lab) = private {
        lab.down()?;
    }
    Ok(())
}
