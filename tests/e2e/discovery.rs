//! Discovery against a real containerd: `gannet list --json` values, exit
//! codes of self-exited and `kill -9`'d containers, RemoveContainer, containers that exited
//! before the loop started, the pid start-time guard with a fake host root, reconnecting
//! after containerd stops and starts, and attempt 1 replacing attempt 0.
//!
//! Loop-level tests drive the library's [`Discovery`] loop directly and watch its events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use gannet::discovery::{Config, Discovery, SharedTable, SyncMode};
use gannet::runtime::events::{Expect, Nudge};
use gannet::table::ContainerEvent;
use gannet::{ContainerState, Lifecycle};
use k8s_cri::v1::ContainerState as CriState;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use gannet_test_kit::{
    random_hex, wait_until, ContainerSpec, Containerd, Gannet, PodSpec, LOOK_ALIKE_ENVS,
    SERVICE_LINK_ENVS,
};

/// Generous: two cores may be busy building or running other tests.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);
/// Capacity of the test's event channel: a test sees tens of events at most.
const EVENT_BUFFER: usize = 256;

/// A discovery loop running in the test process, recording every event.
pub(crate) struct LoopUnderTest {
    pub(crate) events: Arc<Mutex<Vec<ContainerEvent>>>,
    ready: watch::Receiver<bool>,
    pub(crate) table: SharedTable,
    nudges: mpsc::Sender<Nudge>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl LoopUnderTest {
    /// Starts the loop on `lab`'s socket with a 1 s sync period.
    fn start(lab: &Containerd, host_root: Option<&Path>) -> Self {
        Self::start_with(Config {
            socket_flag: Some(lab.socket()),
            host_root: host_root.map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
            sync_period_secs: Duration::from_secs(1),
            containerd_state_dir: Some(lab.lab().join("state")),
            ..Config::default()
        })
    }

    /// Asks the loop to fetch `id` now, as the event source's fetch nudge does.
    async fn fetch_now(&self, id: &str) -> Result<()> {
        let nudge = Nudge::Fetch {
            id: id.to_string(),
            expect: Expect::Any,
        };
        self.nudges.send(nudge).await?;
        Ok(())
    }

    /// Starts the loop with `config`.
    pub(crate) fn start_with(config: Config) -> Self {
        let discovery = Discovery::new(config);
        let nudges = discovery.nudge_sender();
        let ready = discovery.readiness();
        let table = discovery.table();
        let (tx, mut rx) = mpsc::channel(EVENT_BUFFER);
        let cancel = CancellationToken::new();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let run_cancel = cancel.clone();
        let task = tokio::spawn(async move {
            let collector = tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    if let Ok(mut all) = sink.lock() {
                        all.push(event);
                    }
                }
            });
            let _ = discovery.run(tx, run_cancel).await;
            let _ = collector.await;
        });
        Self {
            events,
            ready,
            table,
            nudges,
            cancel,
            task,
        }
    }

    /// Waits until the loop reports `ready`.
    pub(crate) async fn wait_ready(&mut self, ready: bool) -> Result<()> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while *self.ready.borrow_and_update() != ready {
            tokio::time::timeout_at(deadline, self.ready.changed())
                .await
                .with_context(|| format!("discovery readiness never became {ready}"))??;
        }
        Ok(())
    }

    /// The events seen so far for container `id`.
    pub(crate) fn events_for(&self, id: &str) -> Vec<ContainerEvent> {
        self.events
            .lock()
            .map(|all| all.iter().filter(|e| e.record.id == id).cloned().collect())
            .unwrap_or_default()
    }

    /// Waits for a `lifecycle` event of container `id` and returns it.
    pub(crate) async fn wait_event(
        &self,
        id: &str,
        lifecycle: Lifecycle,
    ) -> Result<ContainerEvent> {
        wait_until(TIMEOUT, &format!("{lifecycle} event for {id}"), || async {
            Ok(self
                .events_for(id)
                .into_iter()
                .find(|e| e.lifecycle == lifecycle))
        })
        .await
        .with_context(|| format!("events seen for {id}: {:?}", self.kinds(id)))
    }

    /// Waits for container `id`'s `removed` after a `kill -9`: exited, with code 137.
    pub(crate) async fn wait_killed(&self, id: &str) -> Result<ContainerEvent> {
        let killed = self.wait_event(id, Lifecycle::Removed).await?;
        ensure!(
            killed.record.state == ContainerState::Exited,
            "{:?}",
            killed.record
        );
        ensure!(killed.record.exit_code == Some(137), "{:?}", killed.record);
        Ok(killed)
    }

    pub(crate) fn kinds(&self, id: &str) -> Vec<Lifecycle> {
        self.events_for(id).iter().map(|e| e.lifecycle).collect()
    }

    pub(crate) async fn stop(self) -> Result<()> {
        self.cancel.cancel();
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .context("discovery loop did not stop after cancel")??;
        Ok(())
    }
}

/// `gannet list --json [--all]` against `lab`, parsed.
fn list_json(lab: &Containerd, extra: &[&str]) -> Result<Vec<Value>> {
    let mut cmd = Gannet::cmd(["list", "--json"]).socket(lab);
    for arg in extra {
        cmd = cmd.arg(arg);
    }
    cmd.env("CONTAINERD_STATE_DIR", lab.lab().join("state"))
        .run()?
        .success()?
        .json_lines()
}

fn find<'a>(records: &'a [Value], id: &str) -> Option<&'a Value> {
    records.iter().find(|r| r["id"] == id)
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn list_json_reports_every_field_with_correct_values() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(
            &PodSpec::new("disc-fields")
                .namespace("e2e-discovery")
                .label("team", "gannet")
                .annotation("example.com/purpose", "fields"),
        )
        .await?;
    let web = cri
        .run_container(
            &pod,
            &ContainerSpec::sleeper("web").annotation("example.com/c", "yes"),
        )
        .await?;
    cri.wait_state(&web, CriState::ContainerRunning, TIMEOUT)
        .await?;
    let records = list_json(lab, &[])?;
    let r = find(&records, &web.id)
        .with_context(|| format!("container {} missing from gannet list", web.id))?;

    ensure!(
        r["state"] == "running" && r["pid"].as_u64().unwrap_or(0) > 0,
        "{r}"
    );
    ensure!(
        r["name"] == "web" && r["sandbox_id"] == pod.id.as_str(),
        "{r}"
    );
    ensure!(
        r["runtime_name"] == "containerd" && r["log_format"] == "cri",
        "{r}"
    );
    let k8s = &r["k8s"];
    ensure!(k8s["namespace"] == "e2e-discovery", "{k8s}");
    ensure!(k8s["pod_name"] == pod.name.as_str(), "{k8s}");
    ensure!(k8s["pod_uid"] == pod.uid.as_str(), "{k8s}");
    ensure!(k8s["container_name"] == "web", "{k8s}");
    let pod_labels = str_map(&k8s["pod_labels"]);
    ensure!(
        pod_labels.get("team").map(String::as_str) == Some("gannet"),
        "{pod_labels:?}"
    );
    ensure!(
        !pod_labels.keys().any(|k| k.starts_with("io.kubernetes.")),
        "kubelet labels leaked into pod labels: {pod_labels:?}"
    );
    let pod_annotations = str_map(&k8s["pod_annotations"]);
    ensure!(
        pod_annotations
            .get("example.com/purpose")
            .map(String::as_str)
            == Some("fields"),
        "{pod_annotations:?}"
    );
    let annotations = str_map(&r["annotations"]);
    ensure!(
        annotations.get("example.com/c").map(String::as_str) == Some("yes"),
        "{annotations:?}"
    );
    ensure!(r["restart_count"] == 0, "{r}");

    let env = str_map(&r["env"]);
    for (k, _) in SERVICE_LINK_ENVS {
        ensure!(
            !env.contains_key(*k),
            "service-link var {k} was not dropped"
        );
    }
    for (k, v) in LOOK_ALIKE_ENVS {
        ensure!(
            env.get(*k).map(String::as_str) == Some(*v),
            "look-alike {k} was dropped or changed"
        );
    }
    ensure!(
        env.get("GANNET_E2E").map(String::as_str) == Some("1"),
        "{env:?}"
    );

    let mounts = r["mounts"].as_array().context("mounts is not a list")?;
    ensure!(
        mounts.iter().any(|m| m["destination"] == "/data"
            && m["source"] == pod.host_data.to_string_lossy().as_ref()
            && m["type"] == "bind"),
        "host-path mount missing: {mounts:?}"
    );
    let hosts = r["hosts_path"].as_str().context("hosts_path missing")?;
    let hostname_path = r["hostname_path"]
        .as_str()
        .context("hostname_path missing")?;
    ensure!(
        Path::new(hosts).is_file() && hosts.ends_with("/hosts"),
        "{hosts}"
    );
    let hostname_file = std::fs::read_to_string(hostname_path)?;
    ensure!(r["hostname"] == hostname_file.trim(), "{r}");

    ensure!(r["image"] == gannet_test_kit::BUSYBOX_IMAGE, "{r}");
    ensure!(
        r["image_digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{r}"
    );
    ensure!(
        r["log_path"] == web.log_path.to_string_lossy().as_ref(),
        "{r}"
    );
    let upper = r["upper_dir"].as_str().context("upper_dir missing")?;
    ensure!(
        upper.contains("overlayfs/snapshots/") && Path::new(upper).is_dir(),
        "{upper}"
    );
    let rootfs = r["rootfs_dir"].as_str().context("rootfs_dir missing")?;
    ensure!(
        rootfs.ends_with(&format!("{}/rootfs", web.id)) && Path::new(rootfs).is_dir(),
        "{rootfs}"
    );
    ensure!(
        r["cgroup_path"]
            .as_str()
            .is_some_and(|c| c.ends_with(&web.id)),
        "{r}"
    );
    ensure!(r["started"].is_string() && r["created"].is_string(), "{r}");

    // The readable table names it too.
    let table = Gannet::cmd(["list"]).socket(lab).run()?.success()?;
    ensure!(
        table.stdout.contains(&web.id[..13])
            && table
                .stdout
                .contains(&format!("e2e-discovery/{}/web", pod.name)),
        "{table}"
    );
    cri.remove_pod(&pod).await
}

#[tokio::test]
async fn self_exit_and_kill_9_are_reported_exited_with_their_exit_codes() -> Result<()> {
    let lab = Containerd::shared()?;
    let mut running = LoopUnderTest::start(lab, None);
    running.wait_ready(true).await?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("disc-exit").namespace("e2e-discovery"))
        .await?;
    let victim = cri
        .run_container(&pod, &ContainerSpec::sleeper("victim"))
        .await?;
    let quitter = cri
        .run_container(&pod, &ContainerSpec::new("quitter", "sleep 2; exit 3"))
        .await?;
    running.wait_event(&victim.id, Lifecycle::Added).await?;
    cri.kill_9(&victim).await?;

    running.wait_killed(&victim.id).await?;
    let quit = running.wait_event(&quitter.id, Lifecycle::Removed).await?;
    ensure!(quit.record.exit_code == Some(3), "{:?}", quit.record);
    ensure!(quit.record.finished.is_some(), "{:?}", quit.record);
    // One removed each, never undone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in [&victim.id, &quitter.id] {
        let kinds = running.kinds(id);
        ensure!(
            kinds.iter().filter(|k| **k == Lifecycle::Removed).count() == 1
                && kinds.last() == Some(&Lifecycle::Removed),
            "events for {id}: {kinds:?}"
        );
    }
    // gannet list --all still shows both with their exit codes.
    let all = list_json(lab, &["--all"])?;
    let exit_of = |id: &str| find(&all, id).map(|r| (r["state"].clone(), r["exit_code"].clone()));
    ensure!(
        exit_of(&victim.id) == Some(("exited".into(), 137.into())),
        "{:?}",
        exit_of(&victim.id)
    );
    ensure!(
        exit_of(&quitter.id) == Some(("exited".into(), 3.into())),
        "{:?}",
        exit_of(&quitter.id)
    );
    let running_only = list_json(lab, &[])?;
    ensure!(
        find(&running_only, &victim.id).is_none(),
        "exited container listed without --all"
    );
    running.stop().await?;
    cri.remove_pod(&pod).await
}

#[tokio::test]
async fn a_kill_9_is_seen_from_the_kernel_long_before_the_next_poll() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("disc-pidfd").namespace("e2e-discovery"))
        .await?;
    let victim = cri
        .run_container(&pod, &ContainerSpec::sleeper("victim"))
        .await?;
    // Poll mode, and no sync for two minutes after the first: only the pidfd can tell.
    let mut running = LoopUnderTest::start_with(Config {
        socket_flag: Some(lab.socket()),
        sync_mode: SyncMode::Poll,
        sync_period_secs: Duration::from_secs(120),
        resync_period_secs: Duration::from_secs(120),
        containerd_state_dir: Some(lab.lab().join("state")),
        ..Config::default()
    });
    running.wait_ready(true).await?;
    running.wait_event(&victim.id, Lifecycle::Added).await?;
    cri.kill_9(&victim).await?;
    // Within TIMEOUT (30 s), far from the next sync: the exit came from the kernel, and the
    // record still carries CRI's exit code (the fetch waited for CRI to catch up).
    running.wait_killed(&victim.id).await?;
    running.stop().await?;
    cri.remove_pod(&pod).await
}

#[tokio::test]
async fn remove_container_is_seen_as_removed() -> Result<()> {
    let lab = Containerd::shared()?;
    let mut running = LoopUnderTest::start(lab, None);
    running.wait_ready(true).await?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("disc-remove").namespace("e2e-discovery"))
        .await?;
    let web = cri
        .run_container(&pod, &ContainerSpec::sleeper("web"))
        .await?;
    running.wait_event(&web.id, Lifecycle::Added).await?;
    cri.stop(&web, 0).await?;
    cri.remove(&web).await?;
    let removed = running.wait_event(&web.id, Lifecycle::Removed).await?;
    ensure!(
        removed.record.state == ContainerState::Exited,
        "{:?}",
        removed.record
    );
    {
        let table = running
            .table
            .read()
            .map_err(|_| anyhow::anyhow!("table lock poisoned"))?;
        ensure!(
            !table.contains(&web.id),
            "removed container still live in the table"
        );
        ensure!(
            table.get_removed(&web.id).is_some(),
            "removed entry not kept for late readers"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        running.kinds(&web.id) == [Lifecycle::Added, Lifecycle::Removed],
        "{:?}",
        running.kinds(&web.id)
    );
    running.stop().await?;
    cri.remove_pod(&pod).await
}

#[tokio::test]
async fn container_exited_before_the_loop_started_is_ignored() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("disc-before").namespace("e2e-discovery"))
        .await?;
    let early = cri
        .run_container(&pod, &ContainerSpec::new("early", "exit 0"))
        .await?;
    cri.wait_state(&early, CriState::ContainerExited, TIMEOUT)
        .await?;
    let mut running = LoopUnderTest::start(lab, None);
    running.wait_ready(true).await?;
    // A marker started after the loop: once it is seen, the early one had its chance.
    let marker = cri
        .run_container(&pod, &ContainerSpec::sleeper("marker"))
        .await?;
    running.wait_event(&marker.id, Lifecycle::Added).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ensure!(
        running.events_for(&early.id).is_empty(),
        "exited-before-start container produced events: {:?}",
        running.kinds(&early.id)
    );
    running.stop().await?;
    cri.remove_pod(&pod).await
}

/// Copies `/proc/<pid>/stat` and `/proc/uptime` into a fake host root, shifting the
/// start time (field 22) by `shift_ticks`; also exposes the real hostname files.
fn fake_host_root(pid: u32, shift_ticks: i64) -> Result<PathBuf> {
    let root = std::env::temp_dir().join(format!("gannet-e2e-hostroot-{}", random_hex(6)?));
    let proc_pid = root.join("proc").join(pid.to_string());
    std::fs::create_dir_all(&proc_pid)?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let close = stat.rfind(')').context("no ) in stat")?;
    let (head, tail) = stat.split_at(close + 1);
    let mut fields: Vec<String> = tail.split_whitespace().map(str::to_owned).collect();
    let start: i64 = fields.get(19).context("short stat")?.parse()?;
    fields[19] = (start + shift_ticks).max(1).to_string();
    std::fs::write(
        proc_pid.join("stat"),
        format!("{head} {}\n", fields.join(" ")),
    )?;
    std::fs::copy("/proc/uptime", root.join("proc/uptime"))?;
    std::fs::copy("/proc/stat", root.join("proc/stat"))?;
    Ok(root)
}

#[tokio::test]
async fn a_pid_whose_start_time_does_not_match_is_not_alive() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("disc-reuse").namespace("e2e-discovery"))
        .await?;
    let web = cri
        .run_container(&pod, &ContainerSpec::sleeper("web"))
        .await?;
    cri.wait_state(&web, CriState::ContainerRunning, TIMEOUT)
        .await?;
    let pid = cri.container_pid(&web).await?;

    // Same start time: alive.
    let same = fake_host_root(pid, 0)?;
    let records = list_json(lab, &["--host-root", &same.to_string_lossy()])?;
    let r = find(&records, &web.id).context("container missing with a matching fake root")?;
    ensure!(r["state"] == "running" && r["pid"] == pid, "{r}");

    // The pid exists but its process started an hour later: a reused pid, not alive.
    let reused = fake_host_root(pid, 360_000)?;
    let root_arg = reused.to_string_lossy().into_owned();
    let records = list_json(lab, &["--host-root", &root_arg])?;
    ensure!(
        find(&records, &web.id).is_none(),
        "reused pid listed as running"
    );
    let all = list_json(lab, &["--all", "--host-root", &root_arg])?;
    let r = find(&all, &web.id).context("container missing from --all")?;
    ensure!(r["state"] == "exited" && r["pid"] == 0, "{r}");

    // The loop agrees: never added as running.
    let mut running = LoopUnderTest::start(lab, Some(&reused));
    running.wait_ready(true).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    ensure!(
        running
            .events_for(&web.id)
            .iter()
            .all(|e| e.record.state != ContainerState::Running),
        "reused pid reported running: {:?}",
        running.kinds(&web.id)
    );
    running.stop().await?;
    let _ = std::fs::remove_dir_all(&same);
    let _ = std::fs::remove_dir_all(&reused);
    cri.remove_pod(&pod).await
}

#[tokio::test]
async fn loop_reconnects_and_converges_after_containerd_stops_and_starts() -> Result<()> {
    let lab = Containerd::private("disc-restart")?;
    let mut running = LoopUnderTest::start(&lab, None);
    running.wait_ready(true).await?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("disc-restart").namespace("e2e-discovery"))
        .await?;
    let first = cri
        .run_container(&pod, &ContainerSpec::sleeper("first"))
        .await?;
    running.wait_event(&first.id, Lifecycle::Added).await?;

    lab.stop_daemon()?;
    running.wait_ready(false).await?;
    // While containerd is down, the container dies; nobody can tell the loop yet.
    let pid = first_pid(&running, &first.id)?;
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -KILL {pid} failed");
    lab.start_daemon()?;
    running.wait_ready(true).await?;

    let cri = lab.cri().await?;
    let second = cri
        .run_container(&pod, &ContainerSpec::sleeper("second"))
        .await?;
    running.wait_event(&second.id, Lifecycle::Added).await?;
    let removed = running.wait_event(&first.id, Lifecycle::Removed).await?;
    ensure!(
        removed.record.state == ContainerState::Exited,
        "{:?}",
        removed.record
    );
    running.stop().await?;
    cri.remove_pod(&pod).await?;
    lab.down()
}

fn first_pid(running: &LoopUnderTest, id: &str) -> Result<u32> {
    match running.events_for(id).first() {
        Some(e) if e.record.pid > 0 => Ok(e.record.pid),
        other => bail!("no pid for {id}: {other:?}"),
    }
}

#[tokio::test]
async fn attempt_1_replacing_attempt_0_gives_removed_then_added() -> Result<()> {
    let lab = Containerd::shared()?;
    let mut running = LoopUnderTest::start(lab, None);
    running.wait_ready(true).await?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("disc-attempt").namespace("e2e-discovery"))
        .await?;
    let old = cri
        .run_container(&pod, &ContainerSpec::new("app", "sleep 1; exit 1"))
        .await?;
    running.wait_event(&old.id, Lifecycle::Added).await?;
    let gone = running.wait_event(&old.id, Lifecycle::Removed).await?;
    ensure!(gone.record.exit_code == Some(1), "{:?}", gone.record);
    // The kubelet's restart: same name, attempt 1, old container removed.
    let new = cri
        .run_container(&pod, &ContainerSpec::sleeper("app").attempt(1))
        .await?;
    // In events mode `removed` may come from the exit event before CRI marks the
    // container EXITED (its bookkeeping lags 25-100 ms); RemoveContainer needs EXITED.
    cri.wait_state(&old, CriState::ContainerExited, TIMEOUT)
        .await?;
    cri.remove(&old).await?;
    let added = running.wait_event(&new.id, Lifecycle::Added).await?;
    ensure!(added.record.restart_count == 1, "{:?}", added.record);
    ensure!(
        added.record.k8s.container_name == "app",
        "{:?}",
        added.record
    );
    ensure!(
        running.kinds(&old.id) == [Lifecycle::Added, Lifecycle::Removed],
        "{:?}",
        running.kinds(&old.id)
    );
    running.stop().await?;
    cri.remove_pod(&pod).await
}

/// `gannet list` against bad sockets: one clear line naming the path, non-zero exit.
#[test]
fn list_reports_bad_sockets_in_one_line() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("gannet-e2e-badsock-{}", random_hex(6)?));
    std::fs::create_dir_all(&dir)?;
    let missing = dir.join("missing.sock");
    let file = dir.join("plain-file");
    std::fs::write(&file, "not a socket")?;
    let plain = dir.join("plain.sock");
    let listener = std::os::unix::net::UnixListener::bind(&plain)?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            use std::io::Write;
            if let Ok(mut s) = stream {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        }
    });
    let cases = [
        (&missing, "does not exist"),
        (&file, "is not a unix socket"),
        (&plain, "does not speak CRI"),
    ];
    for (path, expected) in cases {
        let out = Gannet::cmd(["list"])
            .arg("--socket")
            .arg(path)
            .timeout(Duration::from_secs(30))
            .run()?
            .failure()?;
        let lines: Vec<&str> = out.stderr.lines().collect();
        ensure!(lines.len() == 1, "expected one error line\n{out}");
        ensure!(
            lines[0].starts_with("gannet: error: ")
                && lines[0].contains(&path.display().to_string())
                && lines[0].contains(expected),
            "{out}"
        );
        ensure!(
            out.status.code() == Some(1) && out.stdout.is_empty(),
            "{out}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A user who may not open the runtime socket gets "permission denied" naming it.
#[test]
fn list_as_an_unprivileged_user_reports_permission_denied() -> Result<()> {
    let lab = Containerd::shared()?;
    let socket = lab.socket();
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(Gannet::bin()?)
        .args(["list", "--socket"])
        .arg(&socket)
        .output()
        .context("running gannet list through setpriv")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "gannet list succeeded as nobody: {stderr}"
    );
    ensure!(
        stderr.trim()
            == format!(
                "gannet: error: permission denied on runtime socket {}; run as root or as a user allowed to open the socket",
                socket.display()
            ),
        "{stderr}"
    );
    Ok(())
}

/// A fetch nudge, as the event source sends it, is fetched at once, even in poll mode, long
/// before the next periodic sync.
#[tokio::test]
async fn a_container_marked_dirty_is_fetched_without_waiting_for_a_sync() -> Result<()> {
    let lab = Containerd::shared()?;
    let hour = Duration::from_secs(3600);
    let mut running = LoopUnderTest::start_with(Config {
        socket_flag: Some(lab.socket()),
        sync_period_secs: hour,
        resync_period_secs: hour,
        // The hook alone: no event source to find the container first.
        sync_mode: SyncMode::Poll,
        ..Config::default()
    });
    running.wait_ready(true).await?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(
            &PodSpec::new("disc-dirty")
                .namespace("e2e-discovery")
                .label("team", "dirty"),
        )
        .await?;
    let web = cri
        .run_container(&pod, &ContainerSpec::sleeper("web"))
        .await?;
    cri.wait_state(&web, CriState::ContainerRunning, TIMEOUT)
        .await?;
    ensure!(
        running.events_for(&web.id).is_empty(),
        "seen before being marked dirty"
    );
    running.fetch_now(&web.id).await?;
    let added = running.wait_event(&web.id, Lifecycle::Added).await?;
    ensure!(
        added.record.state == ContainerState::Running,
        "{:?}",
        added.record
    );
    ensure!(
        added.record.k8s.pod_name == pod.name,
        "{:?}",
        added.record.k8s
    );
    ensure!(
        added.record.k8s.pod_labels.get("team").map(String::as_str) == Some("dirty"),
        "pod labels of a pod created after the last sync: {:?}",
        added.record.k8s
    );
    cri.kill_9(&web).await?;
    cri.wait_state(&web, CriState::ContainerExited, TIMEOUT)
        .await?;
    running.fetch_now(&web.id).await?;
    let removed = running.wait_event(&web.id, Lifecycle::Removed).await?;
    ensure!(
        removed.record.exit_code == Some(137),
        "{:?}",
        removed.record
    );
    running.stop().await?;
    cri.remove_pod(&pod).await
}
