//! Pipeline tests: per-container order under random chain delays, drops, routing.

use std::time::Duration;

use super::*;
use crate::outputs::{FileConfig, OutputConfig, OutputMetrics};
use crate::record::{EventIds, RecordConfig};

/// Drops namespace `dropme`, routes namespace `audited` to `audit`, and takes a random
/// 0-3 ms per event so outcomes finish out of order unless the pipeline orders them.
struct TestChain;

#[allow(clippy::async_yields_async)]
impl Chain for TestChain {
    fn start(
        &self,
        _event: Lifecycle,
        mut record: ContainerRecord,
    ) -> BoxFuture<'_, BoxFuture<'static, Outcome>> {
        Box::pin(async move {
            let done: BoxFuture<'static, Outcome> = Box::pin(async move {
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..3000))).await;
                match record.k8s.namespace.as_str() {
                    "dropme" => Outcome::Dropped {
                        record,
                        plugin: "test".into(),
                        intentional: true,
                    },
                    "audited" => {
                        record.tags.insert("seen".into(), "yes".into());
                        Outcome::Passed {
                            record,
                            destinations: Some(vec!["audit".into()]),
                        }
                    }
                    _ => Outcome::Passed {
                        record,
                        destinations: None,
                    },
                }
            });
            done
        })
    }
}

fn rec(id: &str, ns: &str, seq: usize) -> ContainerRecord {
    let mut r = ContainerRecord {
        id: id.into(),
        ..Default::default()
    };
    r.k8s.namespace = ns.into();
    r.labels.insert("seq".into(), seq.to_string());
    r
}

/// A sink with a file output `NAME.jsonl` in `dir` for each name, and its view.
fn file_sink(
    dir: &std::path::Path,
    names: &[&str],
) -> Result<(Arc<Sink>, ContainerView), Box<dyn std::error::Error>> {
    let config = names
        .iter()
        .map(|name| {
            let file = FileConfig {
                path: dir.join(format!("{name}.jsonl")),
                max_file_size_bytes: 1 << 30,
                max_files: 1,
            };
            (name.to_string(), OutputConfig::File(file))
        })
        .collect();
    let outputs = Outputs::build(
        &config,
        &RecordConfig::default(),
        "n",
        Arc::new(EventIds::new()),
        Arc::new(OutputMetrics::default()),
    )?;
    let view = ContainerView::new(Duration::from_secs(60), 256);
    let sink = Arc::new(Sink {
        view: view.clone(),
        outputs: RwLock::new(Arc::new(outputs)),
    });
    Ok((sink, view))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_per_container_order_drops_and_routes() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (sink, view) = file_sink(dir.path(), &["default", "audit"])?;
    let (tx, rx) = mpsc::channel(8);
    let (_flushes, flush_rx) = mpsc::channel(1);
    let pipeline = tokio::spawn(run(rx, flush_rx, Arc::new(TestChain), sink.clone()));
    let containers = [
        ("c1", "plain"),
        ("c2", "plain"),
        ("c3", "audited"),
        ("c4", "dropme"),
    ];
    for seq in 0..30 {
        for (id, ns) in containers {
            let event = if seq == 0 {
                Lifecycle::Added
            } else {
                Lifecycle::Updated
            };
            tx.send(ContainerEvent {
                lifecycle: event,
                record: Arc::new(rec(id, ns, seq)),
            })
            .await?;
        }
    }
    drop(tx);
    pipeline.await?;
    sink.outputs
        .read()
        .await
        .shutdown(Duration::from_secs(5))
        .await;

    let read = |name: &str| -> Result<Vec<serde_json::Value>, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(dir.path().join(format!("{name}.jsonl")))?;
        Ok(text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?)
    };
    let default = read("default")?;
    let audit = read("audit")?;
    assert_eq!(default.len(), 60, "c1 and c2, 30 events each");
    assert_eq!(audit.len(), 30);
    for (id, lines) in [("c1", &default), ("c2", &default), ("c3", &audit)] {
        let seqs: Vec<usize> = lines
            .iter()
            .filter(|l| l["record"]["id"] == id)
            .filter_map(|l| l["record"]["labels"]["seq"].as_str()?.parse().ok())
            .collect();
        assert_eq!(seqs, (0..30).collect::<Vec<_>>(), "order of {id}");
    }
    assert!(audit.iter().all(|l| l["record"]["tags"]["seen"] == "yes"));
    assert!(!default
        .iter()
        .chain(&audit)
        .any(|l| l["record"]["id"] == "c4"));
    let listed: Vec<String> = view
        .list(&crate::api::ContainerFilter::default())
        .iter()
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(
        listed,
        ["c1", "c2", "c3"],
        "the dropped container is not in the view"
    );
    Ok(())
}

/// Readiness relies on this: a flush sent after some events is answered only once each of
/// them is in the view, although the chain finishes them out of order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_is_answered_once_every_earlier_event_is_delivered(
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (sink, view) = file_sink(dir.path(), &["default"])?;
    let (tx, rx) = mpsc::channel(8);
    let (flushes, flush_rx) = mpsc::channel(1);
    let pipeline = tokio::spawn(run(rx, flush_rx, Arc::new(TestChain), sink.clone()));
    for n in 0..40 {
        tx.send(ContainerEvent {
            lifecycle: Lifecycle::Added,
            record: Arc::new(rec(&format!("c{n:02}"), "plain", 0)),
        })
        .await?;
    }
    let (done, flushed) = tokio::sync::oneshot::channel();
    flushes.send(done).await?;
    tokio::time::timeout(Duration::from_secs(10), flushed).await??;
    let listed = view.list(&crate::api::ContainerFilter::default()).len();
    assert_eq!(
        listed, 40,
        "every event sent before the flush is in the view"
    );
    drop(tx);
    pipeline.await?;
    Ok(())
}
