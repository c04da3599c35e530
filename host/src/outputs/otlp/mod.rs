//! The `otlp` output: container entity events as OTLP logs (`entity.state` and
//! `entity.delete`), over gRPC or HTTP/protobuf, batched by size and linger time, retried
//! by the OTLP specification's rules with backoff and jitter, and re-reported periodically.
//! Owns its config section (`type = "otlp"`, [`config`]), the mapping of a record to an
//! entity event ([`entity`]), the transports ([`transport`]) and the re-report schedule
//! ([`report`]).

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

mod config;
pub mod entity;
mod report;
mod transport;

pub use config::OtlpConfig;
#[cfg(test)]
pub use config::{HeaderSource, OtlpProtocol};

use super::client::Retries;
use super::metrics::{DropReason, OutputMetrics};
use super::queue::EventQueue;
use super::OutputError;
use crate::record::{EventIds, EventRecord};
use report::Reports;
use transport::{Exported, Transport};

/// One otlp output's sender: drains the output's queue and re-reports what is present.
pub struct OtlpSender {
    name: String,
    config: OtlpConfig,
    node: String,
    transport: Transport,
    queue: Arc<EventQueue>,
    metrics: Arc<OutputMetrics>,
    ids: Arc<EventIds>,
}

impl OtlpSender {
    /// Builds the transport: reads the TLS and header files now, so a bad one stops the
    /// start. Never connects: an unreachable endpoint is retried and counted at run time.
    ///
    /// # Errors
    /// [`OutputError::Tls`] naming the file, or [`OutputError::Url`].
    pub fn build(
        name: &str,
        config: &OtlpConfig,
        node: &str,
        queue: Arc<EventQueue>,
        metrics: Arc<OutputMetrics>,
        ids: Arc<EventIds>,
    ) -> Result<Self, OutputError> {
        Ok(Self {
            name: name.to_string(),
            transport: Transport::build(name, config)?,
            config: config.clone(),
            node: node.to_string(),
            queue,
            metrics,
            ids,
        })
    }

    /// Sends batches and re-reports until the queue is closed and empty, or `hard_stop`
    /// fires (then what is left is counted as dropped for `shutdown`, and logged).
    pub async fn run(self, hard_stop: CancellationToken) {
        let linger = Duration::from_millis(self.config.linger_ms);
        let reports_on = self.config.report_interval_secs > 0;
        let mut reports = Reports::new(self.config.report_interval_secs);
        let mut ticker = tokio::time::interval(report::SLOT);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                batch = self.queue.pop_batch(self.config.batch_size, linger) => {
                    self.metrics.queued(&self.name, self.queue.len());
                    if batch.is_empty() {
                        return;
                    }
                    let mut events = Vec::with_capacity(batch.len());
                    for encoded in &batch {
                        match &encoded.event {
                            Some(ev) => {
                                reports.note(ev);
                                events.push((encoded.id.clone(), Arc::clone(ev)));
                            }
                            None => {
                                // Outputs keeps the record whenever an otlp output exists.
                                self.metrics.drop_events(&self.name, DropReason::encode_error, 1);
                                warn!(message = "Event reached the otlp output without its record; dropped.", output = %self.name, event_id = %encoded.id);
                            }
                        }
                    }
                    if !self.deliver(&events, &hard_stop).await {
                        break;
                    }
                }
                _ = ticker.tick(), if reports_on && !reports.is_empty() => {
                    let due = reports.next_due();
                    for chunk in due.chunks(self.config.batch_size) {
                        let events: Vec<_> = chunk.iter().map(|ev| (self.ids.next_id(), Arc::clone(ev))).collect();
                        if !self.deliver(&events, &hard_stop).await {
                            break;
                        }
                    }
                    if hard_stop.is_cancelled() {
                        break;
                    }
                }
                () = hard_stop.cancelled() => break,
            }
        }
        let left = self.queue.len();
        self.queue.close();
        if left > 0 {
            self.metrics
                .drop_events(&self.name, DropReason::shutdown, left);
            warn!(message = "Output queue not flushed before the grace period ended.", output = %self.name, dropped = left);
        }
    }

    /// Delivers one batch, retrying; false when `hard_stop` ended it early.
    async fn deliver(
        &self,
        events: &[(String, Arc<EventRecord>)],
        hard_stop: &CancellationToken,
    ) -> bool {
        if events.is_empty() {
            return true;
        }
        let interval = self.config.report_interval_secs;
        let records = events
            .iter()
            .map(|(id, ev)| entity::log_record(ev, id, interval))
            .collect();
        let request = ExportLogsServiceRequest {
            resource_logs: vec![entity::resource_logs(&self.node, records)],
        };
        let n = events.len();
        let mut retries = Retries {
            output: &self.name,
            metrics: &self.metrics,
            initial_ms: self.config.retry_initial_backoff_ms,
            max_ms: self.config.retry_max_backoff_ms,
            attempt: 0,
        };
        loop {
            match self.transport.export(&request).await {
                Exported::Delivered { rejected, message } => {
                    let rejected = usize::try_from(rejected).unwrap_or(n).min(n);
                    self.metrics.sent(&self.name, n - rejected);
                    if rejected > 0 {
                        self.metrics
                            .drop_events(&self.name, DropReason::rejected, rejected);
                        warn!(message = "Receiver rejected part of an export (partial success); those records are dropped.", output = %self.name, rejected, events = n, receiver_message = %message);
                    } else {
                        debug!(message = "Output batch delivered.", output = %self.name, events = n);
                    }
                    return true;
                }
                Exported::Rejected { detail } => {
                    self.metrics
                        .fail(&self.name, super::metrics::FailReason::rejected);
                    self.metrics
                        .drop_events(&self.name, DropReason::rejected, n);
                    warn!(message = "Export rejected by the receiver, not retryable; dropped.", output = %self.name, error = %detail, events = n);
                    return true;
                }
                Exported::Retry {
                    reason,
                    retry_after,
                    detail,
                } => {
                    if !retries
                        .wait(reason, retry_after, &detail, n, hard_stop)
                        .await
                    {
                        return false;
                    }
                }
            }
        }
    }
}
