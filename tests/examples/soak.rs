//! The soak behind `scripts/soak.sh`: `gannet run` on a private containerd while pods churn
//! (creations, `kill -9`s, stops and removals, several a second), containerd restarts every
//! `--restart-every` seconds, and the HTTP and OTLP receivers go down and come back. At the
//! end it checks, and exits non-zero when one fails:
//!
//! - the agent's table (the data API) equals the runtime's running containers;
//! - every container was seen `added` exactly once, and every container that ended was
//!   seen `removed` exactly once, at the HTTP receiver, counted by event id after dedup;
//!   the OTLP receiver got an `entity.state` for every container and an `entity.delete`
//!   for every one that ended;
//! - anonymous RSS (`RssAnon`) grew at most 1 MiB after the warm-up (the median of its samples over 20 s right
//!   after the warm-up, against the same over the last 20 s of churn);
//! - the open file-descriptor count is the same as after the warm-up.
//!
//! `soak --minutes N [--restart-every SECS] [--warmup SECS]`: N minutes in all (default
//! 4.5), of which the first `--warmup` seconds (default 150: the table keeps removed
//! records for 120 s, so what the agent holds grows until then) are not measured.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use gannet_test_kit::json_receiver::JsonReceiver;
use gannet_test_kit::otlp::{OtlpReceiver, OtlpTransport};
use gannet_test_kit::{
    free_port, get_unix, http_get, open_fds, pidfds, rss_anon_kib, ContainerSpec, Containerd,
    CriContainer, CriDriver, Gannet, PluginWorkspace, Pod, PodSpec,
};

/// Most pods alive at once.
const MAX_PODS: usize = 12;
/// One churn step every this long.
const STEP: Duration = Duration::from_millis(150);
/// A receiver is taken down every this long, for `OUTAGE`.
const OUTAGE_EVERY: Duration = Duration::from_secs(25);
const OUTAGE: Duration = Duration::from_secs(4);
/// RssAnon is compared as the median of its samples over this long right after the
/// warm-up and at the end of the churn: both under the same load, so a transient buffer
/// (a receiver's outage queues events) does not count as growth, and a leak still does.
const RSS_WINDOW: Duration = Duration::from_secs(20);
/// Growth of RssAnon allowed after the warm-up.
const RSS_GROWTH_LIMIT_KIB: i64 = 1024;
/// How long the end state may take to settle (retries after the last outage included).
const SETTLE: Duration = Duration::from_secs(60);

struct Args {
    minutes: f64,
    restart_every: Duration,
    warmup: Duration,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        minutes: 4.5,
        restart_every: Duration::from_secs(50),
        // Past the table's 120 s retention of removed records and one full resync: from
        // then on, what the agent holds no longer grows with the containers it has seen.
        warmup: Duration::from_secs(150),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--minutes" => args.minutes = value("--minutes")?.parse()?,
            "--restart-every" => {
                args.restart_every = Duration::from_secs(value("--restart-every")?.parse()?)
            }
            "--warmup" => args.warmup = Duration::from_secs(value("--warmup")?.parse()?),
            other => bail!(
                "unknown argument {other:?}; use --minutes N [--restart-every SECS] [--warmup SECS]"
            ),
        }
    }
    ensure!(args.minutes > 0.0, "--minutes must be positive");
    Ok(args)
}

/// `(RssAnon KiB, open fds)` of `pid`. Anonymous memory only: the agent gives its
/// executable's pages back once ready, and they fault back in as the churn first runs each
/// code path, which is not a leak.
fn footprint(pid: u32) -> Result<(i64, usize)> {
    Ok((i64::try_from(rss_anon_kib(pid)?)?, open_fds(pid)?))
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The churn's view: live pods with their containers, and every container id ever started.
#[derive(Default)]
struct Churn {
    pods: Vec<(Pod, Vec<CriContainer>)>,
    started: BTreeSet<String>,
    ended: BTreeSet<String>,
    failed_steps: usize,
}

impl Churn {
    async fn step(&mut self, cri: &CriDriver, n: u64) -> Result<()> {
        let roll = fastrand::u32(0..10);
        if self.pods.len() < MAX_PODS / 2 || (roll < 4 && self.pods.len() < MAX_PODS) {
            let pod = cri.create_pod(&PodSpec::new(&format!("soak{n}"))).await?;
            let c = cri
                .run_container(&pod, &ContainerSpec::sleeper("app"))
                .await?;
            self.started.insert(c.id.clone());
            self.pods.push((pod, vec![c]));
        } else if roll < 6 {
            let i = fastrand::usize(0..self.pods.len());
            let (pod, containers) = &mut self.pods[i];
            let c = cri
                .run_container(pod, &ContainerSpec::sleeper(&format!("side{n}")))
                .await?;
            self.started.insert(c.id.clone());
            containers.push(c);
        } else if roll < 8 {
            let i = fastrand::usize(0..self.pods.len());
            if let Some(c) = self.pods[i].1.pop() {
                cri.kill_9(&c).await?;
                self.ended.insert(c.id.clone());
            }
        } else {
            let i = fastrand::usize(0..self.pods.len());
            let (pod, containers) = self.pods.swap_remove(i);
            for c in &containers {
                cri.stop(c, 0).await?;
                self.ended.insert(c.id.clone());
            }
            cri.remove_pod(&pod).await?;
        }
        Ok(())
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let lab = Containerd::private("soak")?;
    let cri = lab.cri().await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut json = JsonReceiver::new().await?;
    let mut otlp = OtlpReceiver::new(OtlpTransport::Grpc).await?;
    let health = free_port()?;
    std::fs::create_dir_all(d.join("plugins"))?;
    std::fs::copy(
        PluginWorkspace::Examples.wasm("route_by_namespace")?,
        d.join("plugins/route.wasm"),
    )?;
    std::fs::write(
        d.join("plugins/route.toml"),
        "[config]\nfallback = [\"default\", \"collector\"]\n[config.routes]\n",
    )?;
    let config = d.join("gannet.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[runtime]
socket = "{socket}"
# Full resyncs prune the history of finished containers: a minute keeps it steady.
resync_period_secs = 60
[plugins]
dir = "{d}/plugins"
[outputs.default]
type = "http"
url = "{url}"
linger_ms = 50
retry_initial_backoff_ms = 100
retry_max_backoff_ms = 1000
[outputs.collector]
type = "otlp"
endpoint = "{endpoint}"
linger_ms = 50
report_interval_secs = 30
retry_initial_backoff_ms = 100
retry_max_backoff_ms = 1000
[api]
# Removed records leave the API's view after 10 s (the table keeps its own for 120 s).
removed_retention_secs = 10
socket = "{d}/api.sock"
grpc_socket = "{d}/grpc.sock"
health_listen = "127.0.0.1:{health}"
[logging]
level = "warn"
"#,
            socket = lab.socket().display(),
            d = d.display(),
            url = json.url(),
            endpoint = otlp.endpoint(),
        ),
    )?;
    let log = d.join("gannet.log");
    let agent = Agent(
        Command::new(Gannet::bin()?)
            .args(["run", "--node-name", "soak", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting gannet run")?,
    );
    let pid = agent.0.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !http_get(health, "/readyz", None).is_ok_and(|(s, _)| s == 200) {
        ensure!(Instant::now() < deadline, "gannet not ready in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let started = Instant::now();
    let mut churn = Churn::default();
    let mut warm: Option<(i64, usize)> = None;
    let mut rss_samples: Vec<(Duration, i64)> = Vec::new();
    let mut next_restart = started + args.restart_every;
    let mut next_outage = started + OUTAGE_EVERY;
    let (mut restarts, mut outages, mut steps) = (0, 0, 0u64);
    while started.elapsed() < total {
        steps += 1;
        if let Err(e) = churn.step(&cri, steps).await {
            churn.failed_steps += 1;
            eprintln!("soak: churn step {steps} failed (the runtime may be restarting): {e:#}");
        }
        if started.elapsed() >= args.warmup {
            let now = footprint(pid)?;
            warm.get_or_insert(now);
            rss_samples.push((started.elapsed(), now.0));
        }
        if Instant::now() >= next_restart {
            lab.restart()?;
            restarts += 1;
            next_restart += args.restart_every;
        }
        if Instant::now() >= next_outage {
            // Alternate: the HTTP receiver, then the OTLP one.
            if outages % 2 == 0 {
                json.stop().await;
                tokio::time::sleep(OUTAGE).await;
                json.start().await?;
            } else {
                otlp.stop().await;
                tokio::time::sleep(OUTAGE).await;
                otlp.start().await?;
            }
            outages += 1;
            next_outage += OUTAGE_EVERY;
        }
        tokio::time::sleep(STEP).await;
    }
    // Every container that ever ran is known; the ones still tracked as live may have been
    // lost to a failed step, so the runtime is the truth from here.
    let running: BTreeSet<String> = cri
        .list_containers(None)
        .await?
        .into_iter()
        .filter(|c| c.state == k8s_cri::v1::ContainerState::ContainerRunning as i32)
        .map(|c| c.id)
        .collect();
    let all_listed: BTreeSet<String> = cri
        .list_containers(None)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let known: BTreeSet<String> = churn.started.union(&all_listed).cloned().collect();
    let ended: BTreeSet<&String> = known.iter().filter(|id| !running.contains(*id)).collect();

    // Settle: the table equals the runtime and every event reached both receivers.
    let api = d.join("api.sock");
    let settle = Instant::now() + SETTLE;
    let verdict = loop {
        let verdict = check(&api, &running, &known, &ended, &json, &otlp).await;
        if verdict.is_ok() || Instant::now() >= settle {
            break verdict;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let end = footprint(pid)?;
    let (_, warm_fds) = warm.context("the run was shorter than the warm-up")?;
    let churn_end = rss_samples.last().map(|(t, _)| *t).unwrap_or_default();
    let median_in = |from: Duration, to: Duration| -> Option<i64> {
        let mut v: Vec<i64> = rss_samples
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, rss)| *rss)
            .collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    let warm_rss = median_in(args.warmup, args.warmup + RSS_WINDOW)
        .context("no RssAnon sample after the warm-up")?;
    let end_rss = median_in(churn_end.saturating_sub(RSS_WINDOW), churn_end)
        .context("no RssAnon sample at the end")?;
    ensure!(
        churn_end >= args.warmup + 2 * RSS_WINDOW,
        "the measured part is too short: run longer than the warm-up plus 40 s"
    );
    let rss_growth = end_rss - warm_rss;
    println!(
        "soak: {:.1} min, {} steps ({} failed), {} containers started, {} ended, {} running; \
         {restarts} containerd restarts, {outages} receiver outages",
        started.elapsed().as_secs_f64() / 60.0,
        steps,
        churn.failed_steps,
        known.len(),
        ended.len(),
        running.len(),
    );
    println!(
        "soak: RssAnon (median of {}s) {warm_rss} KiB after warm-up -> {end_rss} KiB at the end of the churn ({rss_growth:+} KiB), {} KiB once settled; fds {warm_fds} -> {}",
        RSS_WINDOW.as_secs(),
        end.0,
        end.1
    );
    let mut failures = Vec::new();
    if let Err(e) = verdict {
        failures.push(format!("{e:#}"));
    }
    if rss_growth > RSS_GROWTH_LIMIT_KIB {
        failures.push(format!(
            "RssAnon grew {rss_growth} KiB after the warm-up (limit {RSS_GROWTH_LIMIT_KIB})"
        ));
    }
    if end.1 != warm_fds {
        failures.push(format!(
            "open fds changed: {warm_fds} after the warm-up, {} at the end",
            end.1
        ));
    }
    // One pidfd per running container at most: a leaked watch would show here.
    let watches = pidfds(pid)?;
    println!(
        "soak: {watches} pidfds for {} running containers",
        running.len()
    );
    if watches > running.len() {
        failures.push(format!(
            "{watches} pidfds open for {} running containers: exit watches leaked",
            running.len()
        ));
    }
    drop(agent);
    if !failures.is_empty() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        bail!(
            "soak failed:\n- {}\n--- gannet log (last 40 lines) ---\n{}",
            failures.join("\n- "),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    println!("soak: passed");
    Ok(())
}

async fn check(
    api: &Path,
    running: &BTreeSet<String>,
    known: &BTreeSet<String>,
    ended: &BTreeSet<&String>,
    json: &JsonReceiver,
    otlp: &OtlpReceiver,
) -> Result<()> {
    let listed: Vec<Value> = serde_json::from_str(&get_unix(api, "/v1/containers").await?)?;
    let table: BTreeSet<String> = listed
        .iter()
        .filter(|r| r["state"] == "running")
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        &table == running,
        "the table differs from the runtime: only in the table {:?}, only in the runtime {:?}",
        table.difference(running).collect::<Vec<_>>(),
        running.difference(&table).collect::<Vec<_>>()
    );
    // HTTP: dedup by event id, then count per container and event.
    let mut seen = HashSet::new();
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in json.events() {
        let Some(id) = e["id"].as_str() else { continue };
        if !seen.insert(id.to_owned()) {
            continue;
        }
        let container = e["record"]["id"].as_str().unwrap_or_default().to_owned();
        let event = e["event"].as_str().unwrap_or_default().to_owned();
        *counts.entry((container, event)).or_default() += 1;
    }
    let count = |id: &str, event: &str| {
        counts
            .get(&(id.to_owned(), event.to_owned()))
            .copied()
            .unwrap_or(0)
    };
    let bad_added: Vec<(&String, usize)> = known
        .iter()
        .map(|id| (id, count(id, "added")))
        .filter(|(_, n)| *n != 1)
        .collect();
    ensure!(
        bad_added.is_empty(),
        "containers not added exactly once: {bad_added:?}"
    );
    let bad_removed: Vec<(&String, usize)> = known
        .iter()
        .map(|id| (id, count(id, "removed")))
        .filter(|(id, n)| *n != usize::from(ended.contains(id)))
        .collect();
    ensure!(
        bad_removed.is_empty(),
        "containers not removed exactly once (or removed while running): {bad_removed:?}"
    );
    // OTLP: a state for every container, a delete for every one that ended.
    let mut states = BTreeSet::new();
    let mut deletes = BTreeSet::new();
    for r in otlp.records() {
        let id = r["attributes"]["entity.id"]["container.id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match r["event_name"].as_str() {
            Some("entity.state") => {
                states.insert(id);
            }
            Some("entity.delete") => {
                deletes.insert(id);
            }
            _ => {}
        }
    }
    let no_state: Vec<&String> = known.iter().filter(|id| !states.contains(*id)).collect();
    ensure!(
        no_state.is_empty(),
        "no entity.state at the OTLP receiver for {no_state:?}"
    );
    let no_delete: Vec<&&String> = ended.iter().filter(|id| !deletes.contains(**id)).collect();
    ensure!(
        no_delete.is_empty(),
        "no entity.delete at the OTLP receiver for {no_delete:?}"
    );
    Ok(())
}
