//! Outputs: where records go after the plugin chain.
//!
//! This module owns the named outputs of the config (stdout, file, http, otlp), each output's
//! bounded queue and sender task, and routing: a record's destinations from the chain,
//! `default` when it has none, and the count of routes to names nobody configured. The
//! envelope, its redaction and event ids come from [`crate::record`]. It hands nothing
//! on: it is the end of the pipeline. It never calls the runtime or the plugins.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, warn, Instrument};

mod client;
mod http;
mod local;
mod metrics;
pub(crate) mod otlp;
mod queue;

#[cfg(test)]
pub use client::TlsConfig;
pub use http::HttpConfig;
pub use local::{FileConfig, StdoutConfig};
pub use metrics::{DropReason, FailReason, OutputMetrics};
pub use otlp::OtlpConfig;
pub use queue::{EventQueue, OverflowPolicy, Pushed};

use serde::{Deserialize, Serialize};

use crate::record::{encode, ContainerRecord, EnvValues, EventIds, Lifecycle, RecordConfig};
use crate::validate::{invalid, FieldError, WriteCheck};
use local::{LocalWriter, RotatingFile};

/// The output that receives records with no destination.
pub const DEFAULT_OUTPUT: &str = "default";

/// One `[outputs.NAME]` section, chosen by its `type` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputConfig {
    /// JSON lines on stdout.
    Stdout(StdoutConfig),
    /// JSON lines in a file, rotated by size.
    File(FileConfig),
    /// JSON arrays POSTed to a URL.
    Http(HttpConfig),
    /// OpenTelemetry entity events as OTLP logs.
    Otlp(OtlpConfig),
}

impl OutputConfig {
    /// The `type` key of this section.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdout(_) => "stdout",
            Self::File(_) => "file",
            Self::Http(_) => "http",
            Self::Otlp(_) => "otlp",
        }
    }

    /// Checks the output named `name`: the name itself, then its section's fields
    /// (named relative to `outputs.NAME`). A file output's file is proved writable as
    /// `how` says.
    ///
    /// # Errors
    /// The first field that cannot be used.
    pub fn validate(&self, name: &str, how: WriteCheck) -> Result<(), FieldError> {
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            return Err(invalid(
                "outputs",
                name,
                "output names are 1-64 of a-z, A-Z, 0-9, '_' and '-'",
            ));
        }
        let checked = match self {
            Self::Stdout(_) => Ok(()),
            Self::File(file) => file.validate(how),
            Self::Http(http) => http.validate(),
            Self::Otlp(otlp) => otlp.validate(),
        };
        checked.map_err(|e| e.within(&format!("outputs.{name}")))
    }
}

/// Queue size of a stdout or file output: a local write drains it within milliseconds, so
/// a few thousand events only absorb a burst (a full resync of a busy node).
const LOCAL_QUEUE_EVENTS: usize = 4096;

/// Most events written per local write call.
const LOCAL_BATCH_EVENTS: usize = 256;

/// At most one log line per this period for routes to unknown outputs.
const UNKNOWN_ROUTE_LOG_PERIOD: Duration = Duration::from_secs(10);

/// The metric label under which routes to unconfigured outputs are counted.
pub const UNKNOWN_OUTPUT_LABEL: &str = "unknown";

/// Why the outputs could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file output's file cannot be opened for writing.
    #[error("output {output:?}: file {}: cannot be opened for writing: {source}; fix the path or its permissions", path.display())]
    File {
        /// Output name.
        output: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A TLS, token or header file cannot be read or parsed.
    #[error("output {output:?}: {field} {}: {reason}; fix the file or the path", path.display())]
    Tls {
        /// Output name.
        output: String,
        /// Config key (`tls.ca_file`).
        field: String,
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The URL does not parse.
    #[error("output {output:?}: url {url:?} is not a valid URL")]
    Url {
        /// Output name.
        output: String,
        /// The URL.
        url: String,
    },
    /// There is no `default` output.
    #[error("no output named \"default\"; add an [outputs.default] section")]
    NoDefault,
}

struct UnknownRouteLog {
    last: Option<Instant>,
    suppressed: u64,
}

/// The running outputs: one queue and one sender task each.
pub struct Outputs {
    queues: BTreeMap<String, Arc<EventQueue>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    hard_stop: CancellationToken,
    metrics: Arc<OutputMetrics>,
    unknown_log: Mutex<UnknownRouteLog>,
    ids: Arc<EventIds>,
    node: String,
    env_values: EnvValues,
    /// An otlp output exists: events keep their record for it
    /// ([`crate::record::Encoded::event`]).
    keep_records: bool,
}

impl Outputs {
    /// Opens every output of the config and spawns its sender task (needs a tokio runtime).
    ///
    /// # Errors
    /// The first output that cannot start: an unwritable file, an unreadable TLS or token
    /// file, a bad URL, or no `default` output.
    pub fn build(
        config: &BTreeMap<String, OutputConfig>,
        record: &RecordConfig,
        node: &str,
        ids: Arc<EventIds>,
        metrics: Arc<OutputMetrics>,
    ) -> Result<Self, OutputError> {
        if !config.contains_key(DEFAULT_OUTPUT) {
            return Err(OutputError::NoDefault);
        }
        let hard_stop = CancellationToken::new();
        let mut queues = BTreeMap::new();
        let mut starters: Vec<Box<dyn FnOnce() -> JoinHandle<()>>> = Vec::new();
        for (name, output) in config {
            let span = tracing::info_span!("output", output = %name, kind = output.kind());
            match output {
                OutputConfig::Stdout(_) | OutputConfig::File(_) => {
                    let writer = match output {
                        OutputConfig::File(f) => LocalWriter::File(
                            RotatingFile::open(&f.path, f.max_file_size_bytes, f.max_files)
                                .map_err(|source| OutputError::File {
                                    output: name.clone(),
                                    path: f.path.clone(),
                                    source,
                                })?,
                        ),
                        _ => LocalWriter::Stdout,
                    };
                    let queue =
                        Arc::new(EventQueue::new(LOCAL_QUEUE_EVENTS, OverflowPolicy::Block));
                    queues.insert(name.clone(), queue.clone());
                    let (name, metrics) = (name.clone(), metrics.clone());
                    starters.push(Box::new(move || {
                        tokio::spawn(run_local(name, writer, queue, metrics).instrument(span))
                    }));
                }
                OutputConfig::Http(h) => {
                    let queue = Arc::new(EventQueue::new(h.queue_capacity, h.overflow));
                    let sender = http::HttpSender::build(name, h, queue.clone(), metrics.clone())?;
                    queues.insert(name.clone(), queue);
                    let stop = hard_stop.clone();
                    starters.push(Box::new(move || {
                        tokio::spawn(sender.run(stop).instrument(span))
                    }));
                }
                OutputConfig::Otlp(o) => {
                    let queue = Arc::new(EventQueue::new(o.queue_capacity, o.overflow));
                    let sender = otlp::OtlpSender::build(
                        name,
                        o,
                        node,
                        queue.clone(),
                        metrics.clone(),
                        ids.clone(),
                    )?;
                    queues.insert(name.clone(), queue);
                    let stop = hard_stop.clone();
                    starters.push(Box::new(move || {
                        tokio::spawn(sender.run(stop).instrument(span))
                    }));
                }
            }
        }
        // Spawn only once every output built, so a failure leaves no task behind.
        let tasks = starters.into_iter().map(|start| start()).collect();
        Ok(Self {
            queues,
            tasks: Mutex::new(tasks),
            hard_stop,
            metrics,
            unknown_log: Mutex::new(UnknownRouteLog {
                last: None,
                suppressed: 0,
            }),
            ids,
            node: node.to_string(),
            env_values: record.env_values,
            keep_records: config.values().any(|o| matches!(o, OutputConfig::Otlp(_))),
        })
    }

    /// Serializes one event once and queues it on each destination (`default` when there
    /// are none). Waits when a `block` queue is full. Returns the event id.
    pub async fn send(
        &self,
        event: Lifecycle,
        record: &ContainerRecord,
        destinations: &[String],
    ) -> Option<String> {
        let encoded = match encode(
            &self.ids,
            event,
            record,
            &self.node,
            self.env_values,
            self.keep_records,
        ) {
            Ok(e) => Arc::new(e),
            Err(e) => {
                self.metrics
                    .drop_events(DEFAULT_OUTPUT, DropReason::encode_error, 1);
                error!(message = "Event could not be serialized; dropped.", error = %e);
                return None;
            }
        };
        let default = [DEFAULT_OUTPUT.to_string()];
        let targets = if destinations.is_empty() {
            &default[..]
        } else {
            destinations
        };
        for (i, name) in targets.iter().enumerate() {
            if targets[..i].contains(name) {
                continue;
            }
            let Some(queue) = self.queues.get(name) else {
                self.unknown_route(name);
                continue;
            };
            match queue.push(encoded.clone()).await {
                Pushed::Queued => {}
                Pushed::DroppedOldest => {
                    self.metrics.drop_events(name, DropReason::overflow, 1);
                }
                Pushed::Closed => {
                    self.metrics.drop_events(name, DropReason::shutdown, 1);
                }
            }
            self.metrics.queued(name, queue.len());
        }
        Some(encoded.id.clone())
    }

    fn unknown_route(&self, name: &str) {
        self.metrics
            .drop_events(UNKNOWN_OUTPUT_LABEL, DropReason::unknown_output, 1);
        let mut log = self.unknown_log.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if log
            .last
            .is_some_and(|t| now.duration_since(t) < UNKNOWN_ROUTE_LOG_PERIOD)
        {
            log.suppressed += 1;
            return;
        }
        warn!(
            message = "Record routed to an output that is not configured; dropped for that route.",
            output = %name,
            suppressed_since_last = log.suppressed,
        );
        log.last = Some(now);
        log.suppressed = 0;
    }

    /// Stops accepting events, lets every output flush for up to `grace`, then stops what
    /// is left and counts it as dropped for `shutdown`.
    pub async fn shutdown(&self, grace: Duration) {
        for queue in self.queues.values() {
            queue.close();
        }
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let all = futures::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(grace, all).await.is_err() {
            self.hard_stop.cancel();
            // Senders notice the stop at their next await; give them a moment to count.
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                futures::future::join_all(tasks.iter_mut()),
            )
            .await;
            for task in &tasks {
                task.abort();
            }
        }
    }
}

async fn run_local(
    name: String,
    writer: LocalWriter,
    queue: Arc<EventQueue>,
    metrics: Arc<OutputMetrics>,
) {
    let mut writer = Some(writer);
    loop {
        let batch = queue.pop_batch(LOCAL_BATCH_EVENTS, Duration::ZERO).await;
        metrics.queued(&name, queue.len());
        if batch.is_empty() {
            return;
        }
        let Some(mut w) = writer.take() else { return };
        let n = batch.len();
        let joined = tokio::task::spawn_blocking(move || {
            let result = w.write_batch(&batch);
            (w, result)
        })
        .await;
        match joined {
            Ok((w, Ok(()))) => {
                metrics.sent(&name, n);
                writer = Some(w);
            }
            Ok((w, Err(e))) => {
                metrics.fail(&name, FailReason::write);
                metrics.drop_events(&name, DropReason::write_error, n);
                error!(message = "Output write failed; events dropped.", output = %name, events = n, error = %e);
                writer = Some(w);
            }
            Err(e) => {
                metrics.drop_events(&name, DropReason::write_error, n);
                error!(message = "Output writer task failed.", output = %name, error = %e);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
