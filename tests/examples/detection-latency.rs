//! Detection-latency benchmark (issue 5 item 4a), `events` mode against `poll` mode, on a
//! real containerd. An example rather than a `[[bench]]`, so CI builds it with the test
//! build (`cargo test` builds examples) without a second, release build of every
//! dependency; CI never runs it. Run it optimised:
//!
//! ```text
//! cargo run --release -p gannet-e2e --example detection-latency -- [--events N] [--poll N] [--lab DIR]
//! ```
//!
//! Without `--lab` it starts a private containerd (tests/harness/containerd.sh) and tears
//! it down at the end. For each sample it creates a container in one pod, and measures:
//! - start: from `StartContainer` returning to the loop's `added` event;
//! - kill: from `kill -9` of the container's process returning to the `removed` event.
//!
//! The end point is the discovery loop's event channel, where the pipeline takes over;
//! the pipeline's own cost to a file output is not included here. Both modes run in the
//! same invocation, one after the other, with the default 3 s sync period.

// The e2e harness, shared with the test binary.
// Its unit tests' imports go unused in this binary's test build (`--all-targets`).
#[path = "../e2e/harness/mod.rs"]
#[allow(unused_imports)]
mod harness;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use gannet::discovery::{Config, Discovery, SyncMode};
use gannet::table::ContainerEvent;
use gannet::Lifecycle;
use harness::{ContainerSpec, Containerd, CriDriver, PodSpec};
use k8s_cri::v1::ContainerState;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Longest wait for one event (poll mode needs up to one period plus the fetch).
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Capacity of the event channel: one container lives at a time, a few events each.
const EVENT_BUFFER: usize = 1024;
/// How often the bench looks for the event it waits for (the event's own time is taken
/// by the collector on receipt, so this only bounds the bench's wall time).
const POLL_STEP: Duration = Duration::from_millis(1);

/// When each lifecycle event of each container reached the collector.
type Seen = Arc<Mutex<HashMap<(String, Lifecycle), Instant>>>;

struct Args {
    events: usize,
    poll: usize,
    lab: Option<PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        events: 100,
        poll: 20,
        lab: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--events" => args.events = it.next().context("--events N")?.parse()?,
            "--poll" => args.poll = it.next().context("--poll N")?.parse()?,
            "--lab" => args.lab = Some(PathBuf::from(it.next().context("--lab DIR")?)),
            other => bail!("unknown argument {other:?}; use --events N --poll N --lab DIR"),
        }
    }
    Ok(args)
}

/// Latencies of one mode.
struct Samples {
    start: Vec<Duration>,
    kill: Vec<Duration>,
}

async fn wait_seen(seen: &Seen, id: &str, lifecycle: Lifecycle) -> Result<Instant> {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        if let Some(at) = seen
            .lock()
            .ok()
            .and_then(|m| m.get(&(id.to_owned(), lifecycle)).copied())
        {
            return Ok(at);
        }
        if Instant::now() > deadline {
            bail!("no {lifecycle} event for {id} within {EVENT_TIMEOUT:?}");
        }
        tokio::time::sleep(POLL_STEP).await;
    }
}

async fn measure(lab: &Containerd, cri: &CriDriver, mode: SyncMode, n: usize) -> Result<Samples> {
    let discovery = Discovery::new(Config {
        socket_flag: Some(lab.socket()),
        containerd_state_dir: Some(lab.lab().join("state")),
        sync_mode: mode,
        ..Config::default()
    });
    let mut ready = discovery.readiness();
    let (tx, mut rx) = mpsc::channel::<ContainerEvent>(EVENT_BUFFER);
    let cancel = CancellationToken::new();
    let seen: Seen = Arc::default();
    let sink = Arc::clone(&seen);
    let collector = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let at = Instant::now();
            if let Ok(mut m) = sink.lock() {
                m.insert((event.record.id.clone(), event.lifecycle), at);
            }
        }
    });
    let run = tokio::spawn(discovery.run(tx, cancel.clone()));
    while !*ready.borrow_and_update() {
        tokio::time::timeout(EVENT_TIMEOUT, ready.changed())
            .await
            .context("discovery never became ready")??;
    }
    let pod = cri
        .create_pod(&PodSpec::new(&format!("bench-{mode}")).namespace("bench"))
        .await?;
    let mut samples = Samples {
        start: Vec::with_capacity(n),
        kill: Vec::with_capacity(n),
    };
    for i in 0..n {
        let c = cri
            .create_container(&pod, &ContainerSpec::sleeper(&format!("c{i}")))
            .await?;
        cri.start(&c).await?;
        let started = Instant::now();
        let added = wait_seen(&seen, &c.id, Lifecycle::Added).await?;
        samples.start.push(added.saturating_duration_since(started));

        let pid = cri.container_pid(&c).await?;
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()?;
        let killed = Instant::now();
        if !status.success() {
            bail!("kill -KILL {pid} failed: {status}");
        }
        let removed = wait_seen(&seen, &c.id, Lifecycle::Removed).await?;
        samples.kill.push(removed.saturating_duration_since(killed));
        // Gannet may report the exit before CRI has finished its own bookkeeping.
        cri.wait_state(&c, ContainerState::ContainerExited, EVENT_TIMEOUT)
            .await?;
        cri.remove(&c).await?;
    }
    cancel.cancel();
    run.await??;
    collector.await?;
    cri.remove_pod(&pod).await?;
    Ok(samples)
}

/// The `q` quantile (nearest rank) of sorted `v`.
fn quantile(v: &[Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn row(mode: &str, what: &str, v: &mut [Duration]) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| {mode} | {what} | {} | {:.1} | {:.1} | {:.1} |",
        v.len(),
        ms(quantile(v, 0.50)),
        ms(quantile(v, 0.99)),
        ms(v.last().copied().unwrap_or_default()),
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let private = match &args.lab {
        Some(_) => None,
        None => Some(Containerd::private("bench-detection")?),
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
    let mut events = measure(lab, &cri, SyncMode::Events, args.events).await?;
    let mut poll = measure(lab, &cri, SyncMode::Poll, args.poll).await?;
    println!("Detection latency to the discovery event (ms), sync period 3 s:");
    println!("| mode | what | samples | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    row("events", "start", &mut events.start);
    row("events", "kill -9", &mut events.kill);
    row("poll", "start", &mut poll.start);
    row("poll", "kill -9", &mut poll.kill);
    let p99 = quantile(&events.start, 0.99).max(quantile(&events.kill, 0.99));
    let poll_p50 = quantile(&poll.start, 0.50).min(quantile(&poll.kill, 0.50));
    println!(
        "events p99 (worst of start, kill): {:.1} ms; poll p50 (best of start, kill) / events p99: {:.1}x",
        p99.as_secs_f64() * 1000.0,
        poll_p50.as_secs_f64() / p99.as_secs_f64().max(1e-9),
    );
    drop(cri);
    if let Some(lab) = private {
        lab.down()?;
    }
    Ok(())
}
