//! Output tests: routing, local files, and the http output against a receiver run here on
//! 127.0.0.1 (429 with Retry-After, 5xx, 400, receiver down then back, overflow).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::metrics::{DropLabels, OutputLabel};
use super::*;
use super::{FileConfig, HttpConfig, OutputConfig};
use crate::record::RecordConfig;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

type Script = Arc<Mutex<VecDeque<(u16, Option<&'static str>)>>>;
type Batches = Arc<Mutex<Vec<(Instant, Vec<serde_json::Value>)>>>;

/// A scripted receiver: answers from `script` in order, then 200; keeps every body.
#[derive(Clone, Default)]
struct Receiver {
    script: Script,
    batches: Batches,
    attempts: Arc<Mutex<Vec<Instant>>>,
}

impl Receiver {
    fn scripted(script: &[(u16, Option<&'static str>)]) -> Self {
        let r = Self::default();
        r.script
            .lock()
            .map(|mut s| s.extend(script.iter().copied()))
            .ok();
        r
    }

    async fn serve_on(&self, listener: tokio::net::TcpListener) {
        let me = self.clone();
        let app = Router::new().route(
            "/events",
            post(move |body: String| {
                let me = me.clone();
                async move { me.answer(body) }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }

    async fn start(&self) -> Result<SocketAddr, std::io::Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        self.serve_on(listener).await;
        Ok(addr)
    }

    fn answer(&self, body: String) -> Response {
        let now = Instant::now();
        self.attempts.lock().map(|mut a| a.push(now)).ok();
        let next = self.script.lock().ok().and_then(|mut s| s.pop_front());
        let (status, retry_after) = next.unwrap_or((200, None));
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        if status.is_success() {
            let events: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap_or_default();
            self.batches.lock().map(|mut b| b.push((now, events))).ok();
        }
        match retry_after {
            Some(v) => (status, [("retry-after", v)]).into_response(),
            None => status.into_response(),
        }
    }

    fn ids(&self) -> Vec<String> {
        self.batches
            .lock()
            .map(|b| {
                b.iter()
                    .flat_map(|(_, evs)| evs.iter())
                    .filter_map(|e| e["record"]["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn attempt_times(&self) -> Vec<Instant> {
        self.attempts.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

fn config_with(outputs: Vec<(&str, OutputConfig)>) -> BTreeMap<String, OutputConfig> {
    outputs
        .into_iter()
        .map(|(name, o)| (name.to_string(), o))
        .collect()
}

fn http(url: &str, batch_size: usize) -> HttpConfig {
    let mut h = HttpConfig::with_url(url);
    h.batch_size = batch_size;
    h.linger_ms = 20;
    h.retry_initial_backoff_ms = 20;
    h.retry_max_backoff_ms = 200;
    h.request_timeout_secs = 2;
    h
}

fn record(id: &str) -> ContainerRecord {
    ContainerRecord {
        id: id.to_string(),
        ..Default::default()
    }
}

fn build(c: &BTreeMap<String, OutputConfig>) -> Result<(Outputs, Arc<OutputMetrics>), OutputError> {
    let metrics = Arc::new(OutputMetrics::default());
    let outputs = Outputs::build(
        c,
        &RecordConfig::default(),
        "node-a",
        Arc::new(EventIds::new()),
        metrics.clone(),
    )?;
    Ok((outputs, metrics))
}

fn dropped(m: &OutputMetrics, output: &str, reason: DropReason) -> u64 {
    m.dropped
        .get_or_create(&DropLabels {
            output: output.into(),
            reason,
        })
        .get()
}

fn sent(m: &OutputMetrics, output: &str) -> u64 {
    m.sent
        .get_or_create(&OutputLabel {
            output: output.into(),
        })
        .get()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

fn file_output(path: &std::path::Path) -> OutputConfig {
    OutputConfig::File(FileConfig {
        path: path.to_path_buf(),
        max_file_size_bytes: 1 << 20,
        max_files: 2,
    })
}

fn read_lines(
    path: &std::path::Path,
) -> Result<Vec<serde_json::Value>, Box<dyn std::error::Error + Send + Sync>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<_>, _>>()?)
}

#[tokio::test]
async fn routes_to_destinations_default_when_none_and_counts_unknown() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (d, a) = (
        dir.path().join("default.jsonl"),
        dir.path().join("audit.jsonl"),
    );
    let c = config_with(vec![
        ("default", file_output(&d)),
        ("audit", file_output(&a)),
    ]);
    let (outputs, metrics) = build(&c)?;
    outputs.send(Lifecycle::Added, &record("c1"), &[]).await;
    outputs
        .send(
            Lifecycle::Added,
            &record("c2"),
            &["audit".into(), "audit".into()],
        )
        .await;
    outputs
        .send(
            Lifecycle::Updated,
            &record("c3"),
            &["audit".into(), "nope-1".into()],
        )
        .await;
    outputs
        .send(Lifecycle::Removed, &record("c4"), &["nope-2".into()])
        .await;
    outputs.shutdown(Duration::from_secs(5)).await;

    let ids =
        |p: &std::path::Path| -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
            Ok(read_lines(p)?
                .iter()
                .filter_map(|v| v["record"]["id"].as_str().map(String::from))
                .collect())
        };
    assert_eq!(ids(&d)?, ["c1"]);
    assert_eq!(ids(&a)?, ["c2", "c3"], "deduplicated and in order");
    assert_eq!(dropped(&metrics, "unknown", DropReason::unknown_output), 2);
    assert_eq!(dropped(&metrics, "nope-1", DropReason::unknown_output), 0);
    assert_eq!(sent(&metrics, "audit"), 2);
    let lines = read_lines(&a)?;
    assert_eq!(lines[1]["event"], "updated");
    assert_eq!(lines[1]["node"], "node-a");
    Ok(())
}

#[tokio::test]
async fn unwritable_file_output_fails_the_build() {
    let c = config_with(vec![(
        "default",
        file_output(std::path::Path::new("/nonexistent/x.jsonl")),
    )]);
    let e = build(&c).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        e.starts_with(
            "output \"default\": file /nonexistent/x.jsonl: cannot be opened for writing"
        ),
        "{e}"
    );
}

#[tokio::test]
async fn http_batches_and_retries_429_honouring_retry_after() -> TestResult {
    let rx = Receiver::scripted(&[(429, Some("1"))]);
    let addr = rx.start().await?;
    let c = config_with(vec![(
        "default",
        OutputConfig::Http(http(&format!("http://{addr}/events"), 10)),
    )]);
    let (outputs, metrics) = build(&c)?;
    for i in 0..3 {
        outputs
            .send(Lifecycle::Added, &record(&format!("c{i}")), &[])
            .await;
    }
    wait_for("3 events", || rx.ids().len() >= 3).await?;
    assert_eq!(rx.ids(), ["c0", "c1", "c2"]);
    let times = rx.attempt_times();
    assert_eq!(times.len(), 2, "one 429, one success");
    let gap = times[1].duration_since(times[0]);
    assert!(
        gap >= Duration::from_millis(900),
        "Retry-After: 1 honoured, gap {gap:?}"
    );
    // The sender counts a batch once the receiver's answer is read, just after the
    // receiver has recorded it.
    wait_for("3 sent counted", || sent(&metrics, "default") == 3).await?;
    assert_eq!(dropped(&metrics, "default", DropReason::rejected), 0);
    outputs.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn http_retries_5xx_and_drops_and_counts_400() -> TestResult {
    let rx = Receiver::scripted(&[(503, None), (500, None), (400, None)]);
    let addr = rx.start().await?;
    let c = config_with(vec![(
        "default",
        OutputConfig::Http(http(&format!("http://{addr}/events"), 1)),
    )]);
    let (outputs, metrics) = build(&c)?;
    // The script is consumed in order: the first batch sees 503, 500, then 400 (dropped).
    outputs.send(Lifecycle::Added, &record("first"), &[]).await;
    wait_for("the 400", || {
        dropped(&metrics, "default", DropReason::rejected) == 1
    })
    .await?;
    outputs.send(Lifecycle::Added, &record("second"), &[]).await;
    wait_for("second", || rx.ids().len() == 1).await?;
    assert_eq!(rx.ids(), ["second"]);
    assert_eq!(rx.attempt_times().len(), 4);
    wait_for("1 sent counted", || sent(&metrics, "default") == 1).await?;
    assert_eq!(
        metrics
            .failed
            .get_or_create(&metrics::FailLabels {
                output: "default".into(),
                reason: FailReason::server_error
            })
            .get(),
        2
    );
    outputs.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn http_receiver_down_then_back_loses_nothing_within_the_queue() -> TestResult {
    // Reserve a port, then close it: connections are refused until the receiver starts.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    drop(listener);
    let c = config_with(vec![(
        "default",
        OutputConfig::Http(http(&format!("http://{addr}/events"), 5)),
    )]);
    let (outputs, metrics) = build(&c)?;
    for i in 0..40 {
        outputs
            .send(Lifecycle::Added, &record(&format!("c{i:02}")), &[])
            .await;
    }
    wait_for("a failed attempt", || {
        metrics
            .failed
            .get_or_create(&metrics::FailLabels {
                output: "default".into(),
                reason: FailReason::connect,
            })
            .get()
            >= 2
    })
    .await?;
    let rx = Receiver::default();
    rx.serve_on(tokio::net::TcpListener::bind(addr).await?)
        .await;
    wait_for("40 events", || rx.ids().len() >= 40).await?;
    let expected: Vec<String> = (0..40).map(|i| format!("c{i:02}")).collect();
    assert_eq!(rx.ids(), expected, "all, once, in order");
    outputs.shutdown(Duration::from_secs(5)).await;
    assert_eq!(dropped(&metrics, "default", DropReason::shutdown), 0);
    Ok(())
}

#[tokio::test]
async fn drop_oldest_counts_every_overflow() -> TestResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    drop(listener);
    let mut h = http(&format!("http://{addr}/events"), 2);
    h.queue_capacity = 4;
    h.overflow = super::OverflowPolicy::DropOldest;
    let c = config_with(vec![("default", OutputConfig::Http(h))]);
    let (outputs, metrics) = build(&c)?;
    for i in 0..20 {
        outputs
            .send(Lifecycle::Added, &record(&format!("c{i:02}")), &[])
            .await;
    }
    let overflowed = dropped(&metrics, "default", DropReason::overflow);
    assert!(
        overflowed >= 14,
        "at most 4 queued + 2 in flight: {overflowed}"
    );
    let rx = Receiver::default();
    rx.serve_on(tokio::net::TcpListener::bind(addr).await?)
        .await;
    wait_for("the rest", || rx.ids().len() as u64 + overflowed >= 20).await?;
    assert_eq!(
        rx.ids().len() as u64 + overflowed,
        20,
        "nothing lost uncounted"
    );
    assert!(rx.ids().contains(&"c19".to_string()), "the newest is kept");
    outputs.shutdown(Duration::from_secs(5)).await;
    Ok(())
}

#[tokio::test]
async fn shutdown_with_receiver_down_counts_what_is_left() -> TestResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    drop(listener);
    let c = config_with(vec![(
        "default",
        OutputConfig::Http(http(&format!("http://{addr}/events"), 2)),
    )]);
    let (outputs, metrics) = build(&c)?;
    for i in 0..5 {
        outputs
            .send(Lifecycle::Added, &record(&format!("c{i}")), &[])
            .await;
    }
    let metrics2 = metrics.clone();
    outputs.shutdown(Duration::from_millis(300)).await;
    assert_eq!(dropped(&metrics2, "default", DropReason::shutdown), 5);
    Ok(())
}

#[tokio::test]
async fn bearer_token_and_header_are_sent() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("token"), "s3cret\n")?;
    std::fs::write(dir.path().join("key"), "k-1")?;
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let seen2 = seen.clone();
    let app = Router::new().route(
        "/events",
        post(move |headers: axum::http::HeaderMap| {
            let seen = seen2.clone();
            async move {
                let get = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                seen.lock()
                    .map(|mut s| s.push((get("authorization"), get("x-api-key"))))
                    .ok();
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut h = http(&format!("http://{addr}/events"), 1);
    h.bearer_token_file = Some(dir.path().join("token"));
    h.header_name = Some("X-Api-Key".into());
    h.header_value_file = Some(dir.path().join("key"));
    let (outputs, _) = build(&config_with(vec![("default", OutputConfig::Http(h))]))?;
    outputs.send(Lifecycle::Added, &record("c"), &[]).await;
    wait_for("a request", || {
        seen.lock().map(|s| !s.is_empty()).unwrap_or(false)
    })
    .await?;
    let got = seen.lock().map(|s| s[0].clone()).unwrap_or_default();
    assert_eq!(got, ("Bearer s3cret".to_string(), "k-1".to_string()));
    outputs.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
