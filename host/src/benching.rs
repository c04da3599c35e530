//! Entry points for the benchmarks (`host/benches`) into crate-private parts: the outputs,
//! built from an `[outputs]` table as `gannet run` builds them, and the size of one event
//! in each wire format. Not part of the API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message as _;

use crate::outputs::{OutputConfig, OutputMetrics, Outputs};
use crate::record::{
    encode, ContainerRecord, EnvValues, EventIds, EventRecord, Lifecycle, RecordConfig, Timestamp,
};

/// Running outputs.
pub struct BenchOutputs {
    outputs: Outputs,
}

/// Builds the outputs of `toml_text` (the sections under `[outputs]`, as in `gannet.toml`)
/// and starts their senders (needs a tokio runtime).
///
/// # Errors
/// A config or build error, as text.
pub fn outputs(toml_text: &str) -> Result<BenchOutputs, String> {
    let config: BTreeMap<String, OutputConfig> =
        toml::from_str(toml_text).map_err(|e| e.to_string())?;
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(OutputMetrics::register(&mut registry));
    let outputs = Outputs::build(
        &config,
        &RecordConfig::default(),
        "bench-node",
        Arc::new(EventIds::new()),
        metrics,
    )
    .map_err(|e| e.to_string())?;
    Ok(BenchOutputs { outputs })
}

impl BenchOutputs {
    /// Sends one `updated` event of `record` to the `default` output.
    pub async fn send(&self, record: &ContainerRecord) {
        let _ = self.outputs.send(Lifecycle::Updated, record, &[]).await;
    }

    /// Flushes for up to `grace` and stops.
    pub async fn shutdown(&self, grace: Duration) {
        self.outputs.shutdown(grace).await;
    }
}

/// Bytes of one event of `record` in the `http` output's body (its JSON envelope, plus
/// the array's comma).
pub fn json_bytes_per_event(record: &ContainerRecord) -> usize {
    encode(
        &EventIds::new(),
        Lifecycle::Updated,
        record,
        "bench-node",
        EnvValues::Redact,
        false,
    )
    .map(|e| e.json.len() + 1)
    .unwrap_or(0)
}

/// Bytes per event of `record` in an `otlp` export of `batch` such events (the protobuf
/// request, uncompressed, divided by `batch`).
pub fn otlp_bytes_per_event(record: &ContainerRecord, batch: usize) -> usize {
    let ev = EventRecord {
        event: Lifecycle::Updated,
        time: Timestamp::now(),
        record: crate::record::redacted(record, EnvValues::Redact).into_owned(),
    };
    let ids = EventIds::new();
    let records = (0..batch)
        .map(|_| crate::outputs::otlp::entity::log_record(&ev, &ids.next_id(), 300))
        .collect();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![crate::outputs::otlp::entity::resource_logs(
            "bench-node",
            records,
        )],
    };
    request.encode_to_vec().len() / batch.max(1)
}
