//! Events per second through the `otlp` output (gRPC and HTTP/protobuf) to a local
//! receiver, against the `http` output (JSON) in the same run, with the realistic record of
//! the plugin-chain benchmark; and the bytes per event of each wire format.
//!
//! `encode/json` and `encode/otlp` time Gannet's side alone: one event serialized in each
//! format. Each `output/*` iteration builds the output, sends 2,000 events and waits until the receiver holds
//! them all (the output's own batching: 512 per export for otlp, 100 per POST for http).
//! The receivers are the test kit's (`tests/kit/src/{otlp,json_receiver}.rs`), run in the
//! same process. Run: `cargo bench -p gannet --bench outputs`. Results:
//! docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use criterion::Criterion;
use gannet::benching::{json_bytes_per_event, otlp_bytes_per_event, outputs};
use gannet_test_kit::json_receiver::JsonReceiver;
use gannet_test_kit::otlp::{OtlpReceiver, OtlpTransport};

mod common;
use common::realistic_record;

/// Events per iteration.
const EVENTS: usize = 2_000;

enum Receiver {
    Json(JsonReceiver),
    Otlp(OtlpReceiver),
}

impl Receiver {
    fn received(&self) -> usize {
        match self {
            Self::Json(r) => r.count(),
            Self::Otlp(r) => r.count(),
        }
    }
}

async fn receiver(kind: &str) -> Receiver {
    match kind {
        "http" => Receiver::Json(JsonReceiver::new().await.unwrap_or_else(|e| panic!("{e}"))),
        "otlp_grpc" => Receiver::Otlp(
            OtlpReceiver::new(OtlpTransport::Grpc)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        ),
        _ => Receiver::Otlp(
            OtlpReceiver::new(OtlpTransport::Http)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    }
}

fn config(kind: &str, receiver: &Receiver) -> String {
    match (kind, receiver) {
        ("http", Receiver::Json(r)) => format!(
            "[default]\ntype = \"http\"\nurl = \"{}\"\nlinger_ms = 5\n",
            r.url()
        ),
        ("otlp_grpc", Receiver::Otlp(r)) => format!(
            "[default]\ntype = \"otlp\"\nendpoint = \"{}\"\nlinger_ms = 5\nreport_interval_secs = 0\n",
            r.endpoint()
        ),
        (_, Receiver::Otlp(r)) => format!(
            "[default]\ntype = \"otlp\"\nprotocol = \"http/protobuf\"\nendpoint = \"{}\"\nlinger_ms = 5\nreport_interval_secs = 0\n",
            r.endpoint()
        ),
        _ => unreachable!("receiver and kind are made together"),
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"));
    let record = realistic_record();
    println!(
        "bytes per event: http (JSON) {}, otlp (protobuf, batches of 512) {}",
        json_bytes_per_event(&record),
        otlp_bytes_per_event(&record, 512)
    );
    let mut c = Criterion::default().configure_from_args();
    // Gannet's side alone: one event encoded as the http output's JSON, and as one OTLP
    // LogRecord (built and serialized, in an export of one).
    let mut encode = c.benchmark_group("encode");
    encode.bench_function("json", |b| {
        b.iter(|| std::hint::black_box(json_bytes_per_event(&record)))
    });
    encode.bench_function("otlp", |b| {
        b.iter(|| std::hint::black_box(otlp_bytes_per_event(&record, 1)))
    });
    encode.finish();
    let mut group = c.benchmark_group("output");
    group.sample_size(10);
    group.throughput(criterion::Throughput::Elements(EVENTS as u64));
    for kind in ["http", "otlp_grpc", "otlp_http"] {
        group.bench_function(kind, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let rx = receiver(kind).await;
                        let out = outputs(&config(kind, &rx)).unwrap_or_else(|e| panic!("{e}"));
                        let start = Instant::now();
                        for _ in 0..EVENTS {
                            out.send(&record).await;
                        }
                        while rx.received() < EVENTS {
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                        total += start.elapsed();
                        out.shutdown(Duration::from_secs(5)).await;
                    }
                    total
                })
            });
        });
    }
    group.finish();
    c.final_summary();
}
