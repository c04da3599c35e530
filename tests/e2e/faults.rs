//! Faults the real runtime cannot be made to produce on demand, added by the test kit's
//! fault proxy between `gannet run` and the real containerd: CRI v1 disappearing in the
//! middle of a run (an in-place upgrade or downgrade) and back, and one container whose
//! `ContainerStatus` never answers. Everything the proxy passes on comes from containerd.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::Value;

use gannet_test_kit::fault_proxy::{Fault, FaultProxy, Rule, UNIMPLEMENTED};
use gannet_test_kit::{
    free_port, http_get, random_hex, vm_rss_kib, wait_until, wait_until_blocking, ContainerSpec,
    Containerd, Gannet, GannetProcess, PodSpec,
};

const TIMEOUT: Duration = Duration::from_secs(60);
const V1: &str = "/runtime.v1.RuntimeService/";
const V1ALPHA2: &str = "/runtime.v1alpha2.RuntimeService/";

fn ready(health: u16) -> bool {
    http_get(health, "/readyz", None).is_ok_and(|(status, _)| status == 200)
}

/// `gannet run` on the proxy's socket with a file output `d/out.jsonl`, syncing every
/// second so a fault is met quickly.
fn start_agent(
    d: &Path,
    proxy: &FaultProxy,
    lab: &Containerd,
    health: u16,
) -> Result<GannetProcess> {
    let config = d.join("gannet.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[runtime]
sync_period_secs = 1
resync_period_secs = 5
[outputs.default]
type = "file"
path = "{d}/out.jsonl"
[api]
socket = "{d}/api.sock"
grpc_socket = "{d}/grpc.sock"
health_listen = "127.0.0.1:{health}"
"#,
            d = d.display()
        ),
    )?;
    Gannet::cmd(["run", "--node-name", "e2e-node", "--config"])
        .arg(&config)
        .arg("--socket")
        .arg(proxy.socket())
        .lab(lab)
        .spawn()
}

/// The events of `id` in the file output.
fn events_of(d: &Path, id: &str) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(d.join("out.jsonl")).unwrap_or_default();
    let mut events = Vec::new();
    for line in text.lines() {
        let event: Value = serde_json::from_str(line)?;
        if event["record"]["id"] == id {
            events.push(event);
        }
    }
    Ok(events)
}

fn added(d: &Path, id: &str) -> Result<bool> {
    Ok(events_of(d, id)?.iter().any(|e| e["event"] == "added"))
}

/// Waits for `/readyz` to leave 200 and come back, through the fault in between.
async fn renegotiated(health: u16, what: &str) -> Result<()> {
    wait_until_blocking(TIMEOUT, &format!("not ready once {what}"), || {
        Ok((!ready(health)).then_some(()))
    })?;
    wait_until_blocking(TIMEOUT, &format!("ready again after {what}"), || {
        Ok(ready(health).then_some(()))
    })
}

/// One fault test's world: the shared lab, a fault proxy in front of it (with `rules` from
/// the start), `gannet run` on the proxy, ready, and a namespace of its own.
struct Faulty {
    lab: &'static Containerd,
    dir: tempfile::TempDir,
    proxy: FaultProxy,
    health: u16,
    agent: GannetProcess,
    ns: String,
}

impl Faulty {
    async fn start(ns_prefix: &str, rules: Vec<Rule>, ready_what: &str) -> Result<Self> {
        let lab = Containerd::shared()?;
        let dir = tempfile::tempdir()?;
        let proxy = FaultProxy::start(&lab.socket(), &dir.path().join("proxy.sock"))?;
        proxy.set_rules(rules);
        let health = free_port()?;
        let agent = start_agent(dir.path(), &proxy, lab, health)?;
        let ns = format!("{ns_prefix}-{}", random_hex(3)?);
        let t = Self {
            lab,
            dir,
            proxy,
            health,
            agent,
            ns,
        };
        let readiness = wait_until_blocking(Duration::from_secs(120), ready_what, || {
            Ok(ready(health).then_some(()))
        });
        match readiness {
            Ok(()) => Ok(t),
            Err(error) => Err(t
                .finish(Err(error))
                .err()
                .unwrap_or_else(|| anyhow::anyhow!("gannet never became ready"))),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the agent; on failure prints its whole output.
    fn finish(self, result: Result<()>) -> Result<()> {
        let output = self.agent.stop()?;
        if result.is_err() {
            eprintln!("{output}");
        }
        result
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_v1_vanishing_mid_run_is_renegotiated_without_a_restart_and_back() -> Result<()> {
    let t = Faulty::start("e2e-faults", Vec::new(), "ready on CRI v1").await?;
    let cri = t.lab.cri().await?;
    let (d, proxy, health, agent, ns) = (t.dir(), &t.proxy, t.health, &t.agent, t.ns.as_str());
    let result = async {
        let metrics = http_get(health, "/metrics", None)?.1;
        ensure!(
            metrics.contains("gannet_runtime_cri_api{version=\"v1\"} 1"),
            "{metrics}"
        );

        // The runtime drops CRI v1 in place: every v1 call is UNIMPLEMENTED.
        proxy.set_rules(vec![Rule::new(V1, Fault::Status(UNIMPLEMENTED))]);
        renegotiated(health, "v1 went away").await?;
        let metrics = http_get(health, "/metrics", None)?.1;
        for expected in [
            "gannet_runtime_cri_api{version=\"v1alpha2\"} 1",
            "gannet_runtime_cri_api{version=\"v1\"} 0",
            "gannet_runtime_cri_api_changes_total 1",
        ] {
            ensure!(metrics.contains(expected), "no {expected} in:\n{metrics}");
        }
        let log = agent.stderr();
        ensure!(
            log.lines()
                .any(|l| l.contains("CRI API version changed") && l.contains("v1alpha2")),
            "the log does not say the API changed:\n{log}"
        );
        // Discovery works on v1alpha2: a new container is added.
        let pod = cri
            .create_pod(&PodSpec::new("fault-a").namespace(ns))
            .await?;
        let app = cri
            .run_container(&pod, &ContainerSpec::sleeper("app"))
            .await?;
        wait_until(TIMEOUT, "the container added over v1alpha2", || async {
            Ok(added(d, &app.id)?.then_some(()))
        })
        .await?;
        ensure!(
            proxy
                .seen()
                .iter()
                .any(|c| c.method.starts_with(V1ALPHA2) && c.fault.is_none()),
            "no v1alpha2 call reached containerd"
        );

        // And the reverse: v1alpha2 goes, v1 is back.
        proxy.set_rules(vec![Rule::new(V1ALPHA2, Fault::Status(UNIMPLEMENTED))]);
        renegotiated(health, "v1alpha2 went away").await?;
        let metrics = http_get(health, "/metrics", None)?.1;
        for expected in [
            "gannet_runtime_cri_api{version=\"v1\"} 1",
            "gannet_runtime_cri_api_changes_total 2",
        ] {
            ensure!(metrics.contains(expected), "no {expected} in:\n{metrics}");
        }
        cri.remove_pod(&pod).await?;
        wait_until(TIMEOUT, "the container removed over v1", || async {
            Ok(events_of(d, &app.id)?
                .iter()
                .any(|e| e["event"] == "removed")
                .then_some(()))
        })
        .await
    }
    .await;
    t.finish(result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_container_status_never_blocks_the_others() -> Result<()> {
    let t = Faulty::start("e2e-stall", Vec::new(), "ready").await?;
    let cri = t.lab.cri().await?;
    let (d, proxy, health, ns) = (t.dir(), &t.proxy, t.health, t.ns.as_str());
    let result = async {
        // Every status call stalls until the stuck container's id is known; then only its.
        let status_call = format!("{V1}ContainerStatus");
        proxy.set_rules(vec![Rule::new(&status_call, Fault::Stall)]);
        let stuck_pod = cri.create_pod(&PodSpec::new("stuck").namespace(ns)).await?;
        let stuck = cri
            .run_container(&stuck_pod, &ContainerSpec::sleeper("app"))
            .await?;
        proxy.set_rules(vec![
            Rule::new(&status_call, Fault::Stall).containing(&stuck.id)
        ]);
        wait_until_blocking(TIMEOUT, "the stuck container's status call", || {
            Ok(proxy
                .seen()
                .iter()
                .any(|c| {
                    c.fault == Some(Fault::Stall)
                        && c.body
                            .windows(stuck.id.len())
                            .any(|w| w == stuck.id.as_bytes())
                })
                .then_some(()))
        })?;

        // Others keep flowing while it hangs.
        let pod = cri
            .create_pod(&PodSpec::new("flowing").namespace(ns))
            .await?;
        let others = [
            cri.run_container(&pod, &ContainerSpec::sleeper("one"))
                .await?,
            cri.run_container(&pod, &ContainerSpec::sleeper("two"))
                .await?,
        ];
        for c in &others {
            wait_until(
                TIMEOUT,
                "a container beside the stuck one added",
                || async { Ok(added(d, &c.id)?.then_some(())) },
            )
            .await?;
        }
        ensure!(
            !added(d, &stuck.id)?,
            "the stuck container was added although its status never answered"
        );
        ensure!(
            ready(health),
            "a stalled status call made the agent unready"
        );

        // Once the runtime answers again, the stuck container arrives too.
        proxy.set_rules(Vec::new());
        wait_until(
            TIMEOUT,
            "the stuck container added once answered",
            || async { Ok(added(d, &stuck.id)?.then_some(())) },
        )
        .await?;
        cri.remove_pod(&stuck_pod).await?;
        cri.remove_pod(&pod).await
    }
    .await;
    t.finish(result)
}

/// Every call half a second late: discovery keeps working, stays ready, and never has more
/// calls outstanding than its fetch bound plus its one list and the event stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_runtime_piles_nothing_up() -> Result<()> {
    /// `runtime.max_concurrent_fetches` by default, plus the list, the subscription and the
    /// sandbox lookups of the event path.
    const BOUND: usize = 16 + 4;
    /// What 6 s of slow syncs may add to the agent's memory: queued calls or fetches would
    /// add their records and buffers every sync; a bounded loop adds nothing.
    const RSS_SLACK_KIB: u64 = 1024;
    let t = Faulty::start("e2e-slow", Vec::new(), "ready").await?;
    let cri = t.lab.cri().await?;
    let (d, proxy, health, ns) = (t.dir(), &t.proxy, t.health, t.ns.as_str());
    let result = async {
        proxy.set_rules(vec![Rule::new(
            "/",
            Fault::Delay(Duration::from_millis(500)),
        )]);
        let pod = cri.create_pod(&PodSpec::new("slow").namespace(ns)).await?;
        let mut containers = Vec::new();
        for name in ["one", "two", "three", "four"] {
            containers.push(
                cri.run_container(&pod, &ContainerSpec::sleeper(name))
                    .await?,
            );
        }
        for c in &containers {
            wait_until(
                TIMEOUT,
                "a container added through the slow runtime",
                || async { Ok(added(d, &c.id)?.then_some(())) },
            )
            .await?;
        }
        // Several syncs at half a second a call; memory stays where it was.
        let rss_before = vm_rss_kib(t.agent.pid())?;
        tokio::time::sleep(Duration::from_secs(6)).await;
        let rss_after = vm_rss_kib(t.agent.pid())?;
        ensure!(ready(health), "a slow runtime made the agent unready");
        ensure!(
            rss_after <= rss_before + RSS_SLACK_KIB,
            "VmRSS grew from {rss_before} to {rss_after} KiB in 6 s of a slow runtime"
        );
        let most = proxy.max_in_flight();
        ensure!(most <= BOUND, "{most} calls were outstanding at once");
        proxy.set_rules(Vec::new());
        cri.remove_pod(&pod).await
    }
    .await;
    t.finish(result)
}

/// Reset list calls: not ready while the runtime cannot be listed, ready again once it can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_list_calls_make_it_unready_until_they_answer() -> Result<()> {
    let t = Faulty::start("e2e-faults", Vec::new(), "ready").await?;
    let (proxy, health, agent) = (&t.proxy, t.health, &t.agent);
    let result = async {
        proxy.set_rules(vec![Rule::new(
            &format!("{V1}ListContainers"),
            Fault::Reset,
        )]);
        wait_until_blocking(TIMEOUT, "not ready while lists are reset", || {
            Ok((!ready(health)).then_some(()))
        })?;
        ensure!(
            agent.stderr().contains("Runtime sync failed"),
            "the log says nothing"
        );
        proxy.set_rules(Vec::new());
        wait_until_blocking(TIMEOUT, "ready once lists answer", || {
            Ok(ready(health).then_some(()))
        })
    }
    .await;
    t.finish(result)
}

/// An event stream that ends at once, every time (a subscription answered with an empty
/// OK): a few re-subscriptions with backoff, then one log line and polling; discovery
/// goes on through the periodic list, with no reconnect storm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_that_keeps_ending_falls_back_to_polling() -> Result<()> {
    const SUBSCRIBE: &str = "/containerd.services.events.v1.Events/Subscribe";
    let t = Faulty::start(
        "e2e-nostream",
        vec![Rule::new(SUBSCRIBE, Fault::Status(0))],
        "ready",
    )
    .await?;
    let cri = t.lab.cri().await?;
    let (d, proxy, agent, ns) = (t.dir(), &t.proxy, &t.agent, t.ns.as_str());
    let result = async {
        let fallback = "event stream keeps ending at once; falling back to polling";
        wait_until_blocking(TIMEOUT, "the fallback to polling", || {
            Ok(agent.stderr().contains(fallback).then_some(()))
        })?;
        // Discovery goes on without the stream.
        let pod = cri
            .create_pod(&PodSpec::new("polled").namespace(ns))
            .await?;
        let app = cri
            .run_container(&pod, &ContainerSpec::sleeper("app"))
            .await?;
        wait_until(TIMEOUT, "a container added by polling", || async {
            Ok(added(d, &app.id)?.then_some(()))
        })
        .await?;
        let subscriptions = proxy
            .seen()
            .iter()
            .filter(|c| c.method == SUBSCRIBE)
            .count();
        ensure!(
            subscriptions <= 6,
            "{subscriptions} subscriptions: a reconnect storm"
        );
        let log = agent.stderr();
        ensure!(
            log.matches(fallback).count() == 1,
            "the fallback was said more than once"
        );
        ensure!(
            log.matches("Event stream ended; re-subscribing").count() <= 1,
            "a log line per stream end"
        );
        cri.remove_pod(&pod).await
    }
    .await;
    t.finish(result)
}
