//! The `http` output: POSTs JSON arrays of envelopes, batched by size and linger time,
//! retried with exponential backoff and jitter (honouring `Retry-After`), over plain HTTP
//! or rustls (ring provider) with an optional CA bundle, client certificate and a token
//! or header read from a file. Owns its config section (`type = "http"`) and its check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderName, HeaderValue, StatusCode, Uri};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::client::{
    file_error, http_client, post, tls_error, HttpClient, NoAnswer, Retries, TlsConfig,
};
use super::metrics::{DropReason, FailReason, OutputMetrics};
use super::queue::{EventQueue, OverflowPolicy};
use super::OutputError;
use crate::record::Encoded;
use crate::tls;
use crate::validate::{check_readable, invalid, FieldError};

/// `type = "http"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `http://` or `https://` URL to POST JSON arrays of events to.
    pub url: String,
    /// Most events in one POST.
    #[serde(default = "HttpConfig::default_batch_size")]
    pub batch_size: usize,
    /// Milliseconds to wait for a batch to fill before sending what there is.
    #[serde(default = "HttpConfig::default_linger_ms")]
    pub linger_ms: u64,
    /// Seconds one POST may take before it counts as failed and is retried.
    #[serde(default = "HttpConfig::default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Events the queue holds before the overflow policy applies.
    #[serde(default = "HttpConfig::default_queue_capacity")]
    pub queue_capacity: usize,
    /// `block` (default) or `drop_oldest`.
    #[serde(default)]
    pub overflow: OverflowPolicy,
    /// First retry delay in milliseconds; doubled per attempt, with jitter.
    #[serde(default = "HttpConfig::default_retry_initial_backoff_ms")]
    pub retry_initial_backoff_ms: u64,
    /// Longest retry delay in milliseconds (`Retry-After` is honoured up to 300 s).
    #[serde(default = "HttpConfig::default_retry_max_backoff_ms")]
    pub retry_max_backoff_ms: u64,
    /// Optional TLS settings (for `https://` URLs).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// File holding a bearer token sent as `Authorization: Bearer ...`.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Name of a header whose value is read from `header_value_file`.
    #[serde(default)]
    pub header_name: Option<String>,
    /// File holding the value of `header_name`.
    #[serde(default)]
    pub header_value_file: Option<PathBuf>,
}

impl HttpConfig {
    fn default_batch_size() -> usize {
        100
    }
    fn default_linger_ms() -> u64 {
        500
    }
    fn default_request_timeout_secs() -> u64 {
        10
    }
    fn default_queue_capacity() -> usize {
        10_000
    }
    fn default_retry_initial_backoff_ms() -> u64 {
        200
    }
    fn default_retry_max_backoff_ms() -> u64 {
        30_000
    }

    /// Checks every rule the types cannot express and that each named file can be read.
    /// Fields are named relative to the output's section (`tls.ca_file`).
    ///
    /// # Errors
    /// The first field that cannot be used.
    pub fn validate(&self) -> Result<(), FieldError> {
        let uri: Result<Uri, _> = self.url.parse();
        let scheme_ok = matches!(
            uri.as_ref().ok().and_then(|u| u.scheme_str()),
            Some("http" | "https")
        );
        if !scheme_ok || uri.as_ref().ok().and_then(|u| u.host()).is_none() {
            return Err(invalid(
                "url",
                &self.url,
                "is not an http:// or https:// URL with a host",
            ));
        }
        if self.batch_size == 0 {
            return Err(invalid("batch_size", 0, "must be at least 1"));
        }
        if self.queue_capacity < self.batch_size {
            return Err(invalid(
                "queue_capacity",
                self.queue_capacity,
                "must be at least batch_size",
            ));
        }
        if self.request_timeout_secs == 0 {
            return Err(invalid("request_timeout_secs", 0, "must be at least 1"));
        }
        if self.retry_initial_backoff_ms == 0
            || self.retry_max_backoff_ms < self.retry_initial_backoff_ms
        {
            return Err(invalid(
                "retry_max_backoff_ms",
                self.retry_max_backoff_ms,
                "must be at least retry_initial_backoff_ms, which must be at least 1",
            ));
        }
        if self.header_name.is_some() != self.header_value_file.is_some() {
            return Err(invalid(
                "header_name",
                self.header_name.as_deref().unwrap_or(""),
                "header_name and header_value_file go together; set both or neither",
            ));
        }
        if let Some(name) = &self.header_name {
            if HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(invalid(
                    "header_name",
                    name,
                    "is not a valid HTTP header name",
                ));
            }
        }
        for (key, path) in [
            ("bearer_token_file", &self.bearer_token_file),
            ("header_value_file", &self.header_value_file),
        ] {
            if let Some(path) = path {
                check_readable(key, path)?;
            }
        }
        if let Some(tls) = &self.tls {
            tls.validate("tls", &self.url)?;
        }
        Ok(())
    }

    /// A config with every default and the given URL.
    #[cfg(test)]
    pub fn with_url(url: &str) -> Self {
        Self {
            url: url.to_string(),
            batch_size: Self::default_batch_size(),
            linger_ms: Self::default_linger_ms(),
            request_timeout_secs: Self::default_request_timeout_secs(),
            queue_capacity: Self::default_queue_capacity(),
            overflow: OverflowPolicy::default(),
            retry_initial_backoff_ms: Self::default_retry_initial_backoff_ms(),
            retry_max_backoff_ms: Self::default_retry_max_backoff_ms(),
            tls: None,
            bearer_token_file: None,
            header_name: None,
            header_value_file: None,
        }
    }
}

/// One http output's sender: owns the client and drains the output's queue.
pub struct HttpSender {
    name: String,
    config: HttpConfig,
    uri: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    client: HttpClient,
    queue: Arc<EventQueue>,
    metrics: Arc<OutputMetrics>,
}

/// What one POST came to.
enum Attempt {
    Delivered,
    Rejected(StatusCode),
    Retry {
        reason: FailReason,
        retry_after: Option<Duration>,
        detail: String,
    },
}

impl HttpSender {
    /// Builds the client: reads the TLS and token files now, so a bad one stops the start.
    ///
    /// # Errors
    /// [`OutputError::Tls`] naming the file that cannot be read or parsed, or
    /// [`OutputError::Url`].
    pub fn build(
        name: &str,
        config: &HttpConfig,
        queue: Arc<EventQueue>,
        metrics: Arc<OutputMetrics>,
    ) -> Result<Self, OutputError> {
        let uri: Uri = config.url.parse().map_err(|_| OutputError::Url {
            output: name.to_string(),
            url: config.url.clone(),
        })?;
        let client = http_client(name, uri.scheme_str() == Some("https"), config.tls.as_ref())?;

        let mut headers = vec![(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )];
        if let Some(path) = &config.bearer_token_file {
            let token = tls::read_secret("bearer_token_file", path).map_err(file_error(name))?;
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|e| tls_error(name, "bearer_token_file", path, e))?;
            headers.push((header::AUTHORIZATION, value));
        }
        if let (Some(header_name), Some(path)) = (&config.header_name, &config.header_value_file) {
            let key = HeaderName::from_bytes(header_name.as_bytes())
                .map_err(|e| tls_error(name, "header_name", path, e))?;
            let secret = tls::read_secret("header_value_file", path).map_err(file_error(name))?;
            let value = HeaderValue::from_str(&secret)
                .map_err(|e| tls_error(name, "header_value_file", path, e))?;
            headers.push((key, value));
        }
        Ok(Self {
            name: name.to_string(),
            config: config.clone(),
            uri,
            headers,
            client,
            queue,
            metrics,
        })
    }

    /// Sends batches until the queue is closed and empty, or `hard_stop` fires (then what
    /// is left is counted as dropped for `shutdown`, and logged).
    pub async fn run(self, hard_stop: CancellationToken) {
        let linger = Duration::from_millis(self.config.linger_ms);
        loop {
            let batch = tokio::select! {
                batch = self.queue.pop_batch(self.config.batch_size, linger) => batch,
                () = hard_stop.cancelled() => break,
            };
            self.metrics.queued(&self.name, self.queue.len());
            if batch.is_empty() {
                return;
            }
            if !self.deliver(&batch, &hard_stop).await {
                break;
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
    async fn deliver(&self, batch: &[Arc<Encoded>], hard_stop: &CancellationToken) -> bool {
        let mut body =
            String::with_capacity(batch.iter().map(|e| e.json.len() + 1).sum::<usize>() + 2);
        body.push('[');
        for (i, e) in batch.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&e.json);
        }
        body.push(']');
        let body = Bytes::from(body);
        let mut retries = Retries {
            output: &self.name,
            metrics: &self.metrics,
            initial_ms: self.config.retry_initial_backoff_ms,
            max_ms: self.config.retry_max_backoff_ms,
            attempt: 0,
        };
        loop {
            match self.post(body.clone()).await {
                Attempt::Delivered => {
                    self.metrics.sent(&self.name, batch.len());
                    debug!(message = "Output batch delivered.", output = %self.name, events = batch.len());
                    return true;
                }
                Attempt::Rejected(status) => {
                    self.metrics.fail(&self.name, FailReason::rejected);
                    self.metrics
                        .drop_events(&self.name, DropReason::rejected, batch.len());
                    warn!(message = "Output batch rejected by the receiver; dropped.", output = %self.name, status = status.as_u16(), events = batch.len());
                    return true;
                }
                Attempt::Retry {
                    reason,
                    retry_after,
                    detail,
                } => {
                    if !retries
                        .wait(reason, retry_after, &detail, batch.len(), hard_stop)
                        .await
                    {
                        return false;
                    }
                }
            }
        }
    }

    async fn post(&self, body: Bytes) -> Attempt {
        let timeout = Duration::from_secs(self.config.request_timeout_secs);
        match post(&self.client, &self.uri, &self.headers, body, timeout).await {
            Ok(answer) => classify(answer.status, answer.retry_after),
            Err(NoAnswer { reason, detail }) => Attempt::Retry {
                reason,
                retry_after: None,
                detail,
            },
        }
    }
}

fn classify(status: StatusCode, retry_after: Option<Duration>) -> Attempt {
    if status.is_success() {
        return Attempt::Delivered;
    }
    let reason = match status {
        StatusCode::TOO_MANY_REQUESTS => FailReason::rate_limited,
        StatusCode::REQUEST_TIMEOUT => FailReason::request_timeout,
        s if s.is_server_error() => FailReason::server_error,
        s if s.is_client_error() => return Attempt::Rejected(s),
        // 1xx/3xx: the receiver is misconfigured; retry rather than lose the batch.
        _ => FailReason::server_error,
    };
    Attempt::Retry {
        reason,
        retry_after,
        detail: format!("status {}", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_the_retry_rules() {
        assert!(matches!(classify(StatusCode::OK, None), Attempt::Delivered));
        assert!(matches!(
            classify(StatusCode::NO_CONTENT, None),
            Attempt::Delivered
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, None),
            Attempt::Rejected(StatusCode::BAD_REQUEST)
        ));
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, None),
            Attempt::Rejected(_)
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2))),
            Attempt::Retry { reason: FailReason::rate_limited, retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            classify(StatusCode::REQUEST_TIMEOUT, None),
            Attempt::Retry {
                reason: FailReason::request_timeout,
                ..
            }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None),
            Attempt::Retry {
                reason: FailReason::server_error,
                ..
            }
        ));
    }
}
