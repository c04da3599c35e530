//! The outputs' metrics, registered once and shared across reloads. Labels come from
//! bounded sets: the configured output names (plus `unknown`) and fixed reasons.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The `output` label alone.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutputLabel {
    /// Configured output name, or `unknown` for routes to a name not configured.
    pub output: String,
}

/// Why an event was dropped. Output drops are never intentional (a plugin's `drop` is
/// counted by the plugin stage).
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum DropReason {
    /// The receiver answered a 4xx other than 408 and 429.
    rejected,
    /// The queue was full and the policy is `drop_oldest`.
    overflow,
    /// The shutdown grace period ended before the event was delivered.
    shutdown,
    /// A plugin routed to an output name that is not configured.
    unknown_output,
    /// A file or stdout write failed.
    write_error,
    /// The event could not be serialized.
    encode_error,
}

/// Why one delivery attempt failed.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FailReason {
    /// Connection refused, reset, DNS or TLS failure.
    connect,
    /// No answer within `request_timeout_secs`.
    timeout,
    /// A 5xx status (retried).
    server_error,
    /// 408 (retried).
    request_timeout,
    /// 429 (retried, honouring `Retry-After`).
    rate_limited,
    /// Another 4xx (dropped).
    rejected,
    /// A local write failed.
    write,
}

/// Labels of the drop counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// Output name.
    pub output: String,
    /// Why.
    pub reason: DropReason,
}

/// Labels of the failure counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailLabels {
    /// Output name.
    pub output: String,
    /// Why.
    pub reason: FailReason,
}

/// Every output metric.
#[derive(Debug, Default)]
pub struct OutputMetrics {
    /// `gannet_output_sent_events_total{output}`.
    pub sent: Family<OutputLabel, Counter>,
    /// `gannet_output_failed_attempts_total{output,reason}`.
    pub failed: Family<FailLabels, Counter>,
    /// `gannet_output_dropped_events_total{output,reason}`.
    pub dropped: Family<DropLabels, Counter>,
    /// `gannet_output_queued_events{output}`.
    pub queued: Family<OutputLabel, Gauge>,
}

impl OutputMetrics {
    /// Creates the metrics and registers them.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "gannet_output_sent_events",
            "Events delivered, per output",
            m.sent.clone(),
        );
        registry.register(
            "gannet_output_failed_attempts",
            "Failed delivery attempts, per output and reason",
            m.failed.clone(),
        );
        registry.register(
            "gannet_output_dropped_events",
            "Events dropped (never intentional here), per output and reason",
            m.dropped.clone(),
        );
        registry.register(
            "gannet_output_queued_events",
            "Events waiting in an output's queue",
            m.queued.clone(),
        );
        m
    }

    /// Adds `n` to the drop counter.
    pub fn drop_events(&self, output: &str, reason: DropReason, n: usize) {
        self.dropped
            .get_or_create(&DropLabels {
                output: output.to_string(),
                reason,
            })
            .inc_by(n as u64);
    }

    /// Counts one failed attempt.
    pub fn fail(&self, output: &str, reason: FailReason) {
        self.failed
            .get_or_create(&FailLabels {
                output: output.to_string(),
                reason,
            })
            .inc();
    }

    /// Adds `n` to the sent counter.
    pub fn sent(&self, output: &str, n: usize) {
        self.sent
            .get_or_create(&OutputLabel {
                output: output.to_string(),
            })
            .inc_by(n as u64);
    }

    /// Sets the queue gauge.
    pub fn queued(&self, output: &str, n: usize) {
        self.queued
            .get_or_create(&OutputLabel {
                output: output.to_string(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}
