//! Event-driven discovery against a real containerd: with the periodic
//! list an hour apart, a started container is added and a killed one removed through the
//! event stream alone; an exec (`ExecSync`) nudges nothing and gives no lifecycle event;
//! the event source never nudges a sandbox; and containerd restarted while containers
//! start and stop leaves the table equal to the runtime, with no duplicate `added` and no
//! missed `removed`; a real OOM kill (a container over its memory limit) is removed with
//! reason `OOMKilled`, agreeing with what CRI reports afterwards, even when its
//! `/tasks/oom` event is lost (a fault proxy drops it: the kernel's count decides).

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use gannet::discovery::Config;
use gannet::runtime::events::EventSource;
use gannet::runtime::events::{Expect, Nudge};
use gannet::{ContainerState, Lifecycle};
use k8s_cri::v1::ContainerState as CriState;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::discovery::{LoopUnderTest, TIMEOUT};
use gannet_test_kit::fault_proxy::{Fault, FaultProxy, Rule};
use gannet_test_kit::{wait_until, ContainerSpec, Containerd, PodSpec};

/// Long enough that no periodic list runs during a test: only events (and the resync
/// after a re-subscription) can explain what the loop sees.
const NO_PERIODIC_SYNC: Duration = Duration::from_secs(3600);
/// Capacity of the nudge channel in the event-source test: tens of events at most.
const NUDGE_BUFFER: usize = 256;

/// A loop in `events` mode on `lab` whose periodic list never fires during the test.
fn events_only_loop(lab: &Containerd) -> LoopUnderTest {
    LoopUnderTest::start_with(Config {
        socket_flag: Some(lab.socket()),
        sync_period_secs: NO_PERIODIC_SYNC,
        resync_period_secs: NO_PERIODIC_SYNC,
        containerd_state_dir: Some(lab.lab().join("state")),
        ..Config::default()
    })
}

#[tokio::test]
async fn a_started_container_is_added_and_a_killed_one_removed_through_events() -> Result<()> {
    let lab = Containerd::shared()?;
    let mut running = events_only_loop(lab);
    running.wait_ready(true).await?;
    let cri = lab.cri().await?;
    // The pod is created after the loop's only list: its labels must come from the
    // fetch's own ListPodSandbox.
    let pod = cri
        .create_pod(
            &PodSpec::new("ev-path")
                .namespace("e2e-events")
                .label("team", "events"),
        )
        .await?;
    let web = cri
        .run_container(&pod, &ContainerSpec::sleeper("web"))
        .await?;
    let added = running.wait_event(&web.id, Lifecycle::Added).await?;
    ensure!(
        added.record.state == ContainerState::Running && added.record.pid > 0,
        "the start race: added before CRI showed RUNNING with a pid: {:?}",
        added.record
    );
    ensure!(
        added.record.k8s.pod_labels.get("team").map(String::as_str) == Some("events"),
        "pod labels of a pod newer than the last list: {:?}",
        added.record.k8s
    );
    ensure!(
        running.events_for(&pod.id).is_empty(),
        "the sandbox was reported as a container"
    );

    // Execs (an exec probe's shape: a quick command, any exit code) are not lifecycle.
    for cmd in [&["true"][..], &["sh", "-c", "exit 7"][..]] {
        cri.exec_sync(&web, cmd).await?;
    }
    cri.kill_9(&web).await?;
    let removed = running.wait_event(&web.id, Lifecycle::Removed).await?;
    ensure!(
        removed.record.exit_code == Some(137),
        "the kill's exit code, not an exec's: {:?}",
        removed.record
    );
    ensure!(
        running.kinds(&web.id) == [Lifecycle::Added, Lifecycle::Removed],
        "exactly added then removed: {:?}",
        running.kinds(&web.id)
    );
    running.stop().await?;
    cri.remove_pod(&pod).await
}

/// A container over its memory limit is OOM-killed by the kernel; the `removed` record
/// (events only, no periodic list) carries the state, exit code and reason CRI reports
/// once it has caught up: EXITED, 137, `OOMKilled`.
#[tokio::test]
async fn an_oom_kill_is_removed_as_oom_killed_agreeing_with_cri() -> Result<()> {
    let lab = Containerd::shared()?;
    oom_kill_agrees_with_cri(lab, events_only_loop(lab), "ev-oom").await
}

/// The same OOM kill with containerd's `/tasks/oom` event lost on its way to Gannet (a
/// fault proxy drops it from the stream, as when the shim publishes it after the exit):
/// the `removed` record still reads `OOMKilled`, agreeing with CRI. On containerd 1.6 the
/// reason then comes from CRI's status (its own OOM handler usually ran already, and CRI
/// shows the reason even while it still says RUNNING); when it has not, from the kernel's
/// OOM count in the container's memory cgroup (unit-tested in `discovery::tests`).
#[tokio::test]
async fn an_oom_kill_whose_oom_event_is_lost_still_reads_oom_killed_from_the_kernel() -> Result<()>
{
    let lab = Containerd::shared()?;
    let dir = tempfile::tempdir()?;
    let proxy = FaultProxy::start(&lab.socket(), &dir.path().join("proxy.sock"))?;
    proxy.set_rules(vec![Rule::new(
        "/containerd.services.events.v1.Events/Subscribe",
        Fault::DropMessages(b"/tasks/oom".to_vec()),
    )]);
    let running = LoopUnderTest::start_with(Config {
        socket_flag: Some(proxy.socket().to_path_buf()),
        sync_period_secs: NO_PERIODIC_SYNC,
        resync_period_secs: NO_PERIODIC_SYNC,
        containerd_state_dir: Some(lab.lab().join("state")),
        ..Config::default()
    });
    oom_kill_agrees_with_cri(lab, running, "ev-oom-lost").await?;
    ensure!(
        proxy.dropped_messages() >= 1,
        "the proxy dropped no /tasks/oom: the test did not test the lost event"
    );
    Ok(())
}

/// Runs a container that the kernel OOM-kills under `running` and checks its `removed`
/// record against CRI's final status.
async fn oom_kill_agrees_with_cri(
    lab: &Containerd,
    mut running: LoopUnderTest,
    pod_name: &str,
) -> Result<()> {
    running.wait_ready(true).await?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new(pod_name).namespace("e2e-events"))
        .await?;
    // PID 1 becomes dd, whose 64 MiB buffer cannot fit in 16 MiB: the kernel kills it.
    let hog = ContainerSpec::new(
        "hog",
        "sleep 0.5; exec dd if=/dev/zero of=/dev/null bs=64M count=4",
    )
    .memory_limit(16 * 1024 * 1024);
    let hog = cri.run_container(&pod, &hog).await?;
    let removed = running.wait_event(&hog.id, Lifecycle::Removed).await?;
    let status = cri
        .wait_state(&hog, CriState::ContainerExited, TIMEOUT)
        .await?;
    ensure!(
        status.reason == "OOMKilled",
        "CRI does not report an OOM kill (is the memory cgroup limit applied?): {status:?}"
    );
    ensure!(
        removed.record.state == ContainerState::Exited
            && removed.record.exit_code == Some(status.exit_code)
            && removed.record.reason.as_deref() == Some(status.reason.as_str()),
        "removed {:?} / exit {:?} / {:?}, CRI: exit {} / {}",
        removed.record.state,
        removed.record.exit_code,
        removed.record.reason,
        status.exit_code,
        status.reason
    );
    ensure!(
        removed.record.finished.map(|t| t.unix_nanos) == Some(status.finished_at),
        "finish time {:?}, CRI {}",
        removed.record.finished,
        status.finished_at
    );
    running.stop().await?;
    cri.remove_pod(&pod).await
}

/// The event source alone: the real stream, decoded, exec exits and sandboxes dropped.
#[tokio::test]
async fn the_event_source_nudges_container_lifecycle_only_never_execs_or_sandboxes() -> Result<()> {
    let lab = Containerd::shared()?;
    let (tx, mut rx) = mpsc::channel(NUDGE_BUFFER);
    let cancel = CancellationToken::new();
    let (stream_up_tx, mut stream_up) = tokio::sync::watch::channel(false);
    let source =
        tokio::spawn(EventSource::new(lab.socket(), 200).run(tx, stream_up_tx, cancel.clone()));
    // The source says when its stream is subscribed (the loop then lists rarely): wait for
    // that before the first event.
    tokio::time::timeout(TIMEOUT, stream_up.wait_for(|up| *up))
        .await
        .context("the event source never said its stream is up")??;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("ev-exec").namespace("e2e-events"))
        .await?;
    let app = cri
        .run_container(&pod, &ContainerSpec::sleeper("app"))
        .await?;
    let out = cri.exec_sync(&app, &["sh", "-c", "exit 7"]).await?;
    ensure!(out.exit_code == 7, "exec ran: {out:?}");
    cri.exec_sync(&app, &["true"]).await?;
    cri.kill_9(&app).await?;

    let mut seen: Vec<(String, Expect)> = Vec::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !seen
        .iter()
        .any(|(id, e)| *id == app.id && matches!(e, Expect::Exited { .. }))
    {
        let nudge = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .with_context(|| format!("no exit nudge for {}; seen {seen:?}", app.id))?;
        match nudge {
            Some(Nudge::Fetch { id, expect }) => seen.push((id, expect)),
            Some(Nudge::Resync) => bail!("resync without a stream break"),
            Some(Nudge::OomKilled { id }) => {
                bail!("an OOM nudge for {id}: nothing here ran out of memory")
            }
            None => bail!("event source ended"),
        }
    }
    cancel.cancel();
    tokio::time::timeout(TIMEOUT, source).await??;

    ensure!(
        !seen.iter().any(|(id, _)| *id == pod.id),
        "the sandbox {} was nudged: {seen:?}",
        pod.id
    );
    let mine: Vec<Expect> = seen
        .iter()
        .filter(|(id, _)| *id == app.id)
        .map(|(_, e)| *e)
        .collect();
    ensure!(
        mine.first() == Some(&Expect::Running),
        "the start comes first: {mine:?}"
    );
    let codes: Vec<i32> = mine
        .iter()
        .filter_map(|e| match e {
            Expect::Exited { exit_code, .. } => Some(*exit_code),
            _ => None,
        })
        .collect();
    ensure!(
        !codes.contains(&7) && !codes.contains(&0),
        "an exec's exit was taken for the container's: {mine:?}"
    );
    ensure!(codes.contains(&137), "{mine:?}");
    cri.remove_pod(&pod).await
}

#[tokio::test]
async fn containerd_restarted_mid_churn_leaves_the_table_equal_to_the_runtime() -> Result<()> {
    let lab = Containerd::private("ev-restart")?;
    let mut running = events_only_loop(&lab);
    running.wait_ready(true).await?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("ev-restart").namespace("e2e-events"))
        .await?;
    let killed = cri
        .run_container(&pod, &ContainerSpec::sleeper("killed"))
        .await?;
    let self_exit = cri
        .run_container(&pod, &ContainerSpec::exits("self-exit", 3, 3000))
        .await?;
    running.wait_event(&killed.id, Lifecycle::Added).await?;
    running.wait_event(&self_exit.id, Lifecycle::Added).await?;
    let killed_pid = cri.container_pid(&killed).await?;

    // While containerd is down: one container is killed, one exits by itself.
    lab.stop_daemon()?;
    let status = std::process::Command::new("kill")
        .args(["-KILL", &killed_pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -KILL {killed_pid} failed");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    lab.start_daemon()?;

    // Right after it returns (likely before the stream is back): one that stays and one
    // that starts and exits at once.
    let cri = lab.cri().await?;
    // CRI answers "server is not initialized yet" for a moment after the socket is up.
    wait_until(TIMEOUT, "CRI to serve after the restart", || async {
        Ok(cri.list_containers(None).await.ok().map(|_| ()))
    })
    .await?;
    let stays = cri
        .run_container(&pod, &ContainerSpec::sleeper("stays"))
        .await?;
    let blink = cri
        .run_container(&pod, &ContainerSpec::exits("blink", 5, 0))
        .await?;
    cri.wait_state(&blink, CriState::ContainerExited, TIMEOUT)
        .await?;

    // Converged: the live table is exactly the runtime's running containers.
    let runtime_running = || async {
        let list = cri.list_containers(None).await?;
        Ok::<_, anyhow::Error>(
            list.into_iter()
                .filter(|c| c.state == CriState::ContainerRunning as i32)
                .map(|c| c.id)
                .collect::<BTreeSet<String>>(),
        )
    };
    let table_live = || -> BTreeSet<String> {
        running
            .table
            .read()
            .map(|t| t.live_ids().into_iter().collect())
            .unwrap_or_default()
    };
    wait_until(TIMEOUT, "the table to match the runtime", || async {
        let want = runtime_running().await?;
        let done = [&killed.id, &self_exit.id, &blink.id]
            .iter()
            .all(|id| running.kinds(id).contains(&Lifecycle::Removed));
        Ok((done && table_live() == want).then_some(()))
    })
    .await
    .with_context(|| {
        format!(
            "table {:?}; killed {:?}, self-exit {:?}, stays {:?}, blink {:?}",
            table_live(),
            running.kinds(&killed.id),
            running.kinds(&self_exit.id),
            running.kinds(&stays.id),
            running.kinds(&blink.id)
        )
    })?;
    ensure!(
        runtime_running().await? == BTreeSet::from([stays.id.clone()]),
        "runtime state as planned"
    );
    // Settle, then check nothing came twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (c, want) in [
        (&killed, &[Lifecycle::Added, Lifecycle::Removed][..]),
        (&self_exit, &[Lifecycle::Added, Lifecycle::Removed][..]),
        (&blink, &[Lifecycle::Added, Lifecycle::Removed][..]),
        (&stays, &[Lifecycle::Added][..]),
    ] {
        ensure!(
            running.kinds(&c.id) == want,
            "{}: {:?}, want {want:?}",
            c.name,
            running.kinds(&c.id)
        );
    }
    let exit_code = |id: &str| {
        running
            .events_for(id)
            .iter()
            .find(|e| e.lifecycle == Lifecycle::Removed)
            .and_then(|e| e.record.exit_code)
    };
    ensure!(exit_code(&self_exit.id) == Some(3), "self-exit code");
    ensure!(exit_code(&blink.id) == Some(5), "blink code");
    ensure!(exit_code(&killed.id) == Some(137), "killed code");
    running.stop().await?;
    cri.remove_pod(&pod).await?;
    lab.down()
}
