//! What the network outputs (`http`, `otlp`) share: the `[outputs.NAME.tls]` section and
//! the rustls client config it gives, errors naming a bad TLS or secret file, and the
//! retry backoff.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::OutputError;
use crate::tls::{self, TlsFileError};
use crate::validate::{check_readable, invalid, FieldError};

/// `[outputs.NAME.tls]`: PEM files for an `https://` receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// CA bundle that signs the receiver's certificate (PEM).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain for mutual TLS (PEM); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM); needs `cert_file`.
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Checks the section of an output whose URL is `url` (named by `url_field`): TLS needs
    /// `https://`, the client certificate and key go together, and every file is readable.
    ///
    /// # Errors
    /// The first field that cannot be used, named `tls.*` (or `url_field`).
    pub fn validate(&self, url_field: &str, url: &str) -> Result<(), FieldError> {
        if !url.starts_with("https://") {
            return Err(invalid(
                url_field,
                url,
                "TLS settings need an https:// URL; use https:// or remove [tls]",
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(invalid(
                "tls.cert_file",
                self.cert_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                "cert_file and key_file go together; set both or neither",
            ));
        }
        for (key, path) in [
            ("tls.ca_file", &self.ca_file),
            ("tls.cert_file", &self.cert_file),
            ("tls.key_file", &self.key_file),
        ] {
            if let Some(path) = path {
                check_readable(key, path)?;
            }
        }
        Ok(())
    }
}

/// The CA bundle used for `https://` when `tls.ca_file` is unset.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The longest `Retry-After` (or gRPC `RetryInfo`) honoured: a receiver asking for more
/// gets this.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);

/// A TLS, token or header file of output `output` that cannot be used.
pub fn tls_error(output: &str, field: &str, path: &Path, reason: impl ToString) -> OutputError {
    OutputError::Tls {
        output: output.to_string(),
        field: field.to_string(),
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// A bad TLS or token file, as this output's error.
pub fn file_error(output: &str) -> impl Fn(TlsFileError) -> OutputError + '_ {
    move |e| tls_error(output, &e.field, &e.path, e.problem)
}

/// The rustls client config of `tls` (the system CA bundle when `ca_file` is unset).
///
/// # Errors
/// [`OutputError::Tls`] naming the file that cannot be read or parsed.
pub fn tls_config(output: &str, tls: &TlsConfig) -> Result<rustls::ClientConfig, OutputError> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = tls
        .ca_file
        .clone()
        .unwrap_or_else(|| SYSTEM_CA_BUNDLE.into());
    for cert in tls::load_certs("tls.ca_file", &ca).map_err(file_error(output))? {
        roots
            .add(cert)
            .map_err(|e| tls_error(output, "tls.ca_file", &ca, e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(output, "tls", &ca, e))?
        .with_root_certificates(roots);
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = tls::load_certs("tls.cert_file", cert).map_err(file_error(output))?;
            let key_der = tls::load_key("tls.key_file", key).map_err(file_error(output))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| tls_error(output, "tls.key_file", key, e))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Exponential backoff with jitter: `initial_ms * 2^attempt`, capped at `max_ms`, then a
/// random point in its upper half.
pub fn backoff(initial_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let max = max_ms.max(1);
    let exp = initial_ms.saturating_mul(1u64 << attempt.min(32)).min(max);
    let jittered = exp / 2 + fastrand::u64(0..=exp / 2);
    Duration::from_millis(jittered.max(1))
}

/// The retries of one batch: counts each failed attempt, waits the receiver's delay (up to
/// [`RETRY_AFTER_CAP`]) or the next backoff step, and gives up when the hard stop fires.
pub struct Retries<'a> {
    /// The output's name.
    pub output: &'a str,
    /// The output metrics.
    pub metrics: &'a super::metrics::OutputMetrics,
    /// `retry_initial_backoff_ms`.
    pub initial_ms: u64,
    /// `retry_max_backoff_ms`.
    pub max_ms: u64,
    /// Failed attempts so far.
    pub attempt: u32,
}

impl Retries<'_> {
    /// Counts a failed attempt of a batch of `events` and waits before the next one; false
    /// when `hard_stop` fired meanwhile (the batch is then counted as dropped at shutdown).
    pub async fn wait(
        &mut self,
        reason: super::metrics::FailReason,
        retry_after: Option<Duration>,
        detail: &str,
        events: usize,
        hard_stop: &tokio_util::sync::CancellationToken,
    ) -> bool {
        self.metrics.fail(self.output, reason);
        let delay = retry_after
            .map(|d| d.min(RETRY_AFTER_CAP))
            .unwrap_or_else(|| backoff(self.initial_ms, self.max_ms, self.attempt));
        self.attempt = self.attempt.saturating_add(1);
        tracing::warn!(message = "Output batch delivery failed; retrying.", output = %self.output, reason = ?reason, error = %detail, attempt = self.attempt, retry_in_ms = delay.as_millis() as u64);
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = hard_stop.cancelled() => {
                self.metrics.drop_events(self.output, super::metrics::DropReason::shutdown, events);
                tracing::warn!(message = "Output batch dropped at shutdown after failed attempts.", output = %self.output, events);
                false
            }
        }
    }
}

/// An error and its sources, `: `-joined.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The HTTP/1.1 client of the `http` output and of `otlp` with `http/protobuf`.
pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<axum::body::Bytes>,
>;

/// The most of a response body read.
const MAX_RESPONSE_BODY_BYTES: usize = 64 * 1024;

/// An HTTP client for output `output`: rustls with `tls` (the system CA bundle when unset)
/// for `https`, plain otherwise. Reads the TLS files now.
///
/// # Errors
/// [`OutputError::Tls`] naming the file that cannot be read or parsed.
pub fn http_client(
    output: &str,
    https: bool,
    tls: Option<&TlsConfig>,
) -> Result<HttpClient, OutputError> {
    let tls = if https {
        tls_config(output, &tls.cloned().unwrap_or_default())?
    } else {
        // Plain http: an empty root store is never consulted.
        rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(output, "tls", Path::new(""), e))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

/// A POST that got an answer: its status, `Retry-After` (seconds) and body (at most
/// 64 KiB; read so the connection is reused).
pub struct Answered {
    /// The status.
    pub status: axum::http::StatusCode,
    /// `Retry-After`, when given in seconds.
    pub retry_after: Option<Duration>,
    /// The body, truncated to 64 KiB.
    pub body: axum::body::Bytes,
}

/// Why a POST got no answer: for the failure counter and the log.
pub struct NoAnswer {
    /// `timeout` or `connect`.
    pub reason: super::metrics::FailReason,
    /// What happened.
    pub detail: String,
}

/// POSTs `body` to `uri` with `headers`, all within `timeout`.
///
/// # Errors
/// [`NoAnswer`] when the request cannot be built, times out or cannot connect.
pub async fn post(
    client: &HttpClient,
    uri: &axum::http::Uri,
    headers: &[(axum::http::HeaderName, axum::http::HeaderValue)],
    body: axum::body::Bytes,
    timeout: Duration,
) -> Result<Answered, NoAnswer> {
    use super::metrics::FailReason;
    use http_body_util::BodyExt as _;
    let mut request = axum::http::Request::post(uri.clone());
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let request = request
        .body(http_body_util::Full::new(body))
        .map_err(|e| NoAnswer {
            reason: FailReason::connect,
            detail: e.to_string(),
        })?;
    let response = match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => {
            return Err(NoAnswer {
                reason: FailReason::timeout,
                detail: format!("no answer within {}s", timeout.as_secs()),
            })
        }
        Ok(Err(e)) => {
            return Err(NoAnswer {
                reason: FailReason::connect,
                detail: error_chain(&e),
            })
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(axum::http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let limited = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BODY_BYTES);
    let body = match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => axum::body::Bytes::new(),
    };
    Ok(Answered {
        status,
        retry_after,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_jittered_and_capped() {
        for _ in 0..100 {
            let d0 = backoff(100, 1000, 0).as_millis();
            assert!((50..=100).contains(&d0), "{d0}");
            let d3 = backoff(100, 1000, 3).as_millis();
            assert!((400..=800).contains(&d3), "{d3}");
            let d20 = backoff(100, 1000, 20).as_millis();
            assert!((500..=1000).contains(&d20), "{d20}");
        }
    }

    #[test]
    fn unreadable_ca_file_names_output_field_and_path() {
        let tls = TlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = tls_config("audit", &tls)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with("output \"audit\": tls.ca_file /nonexistent/ca.pem:"),
            "{e}"
        );
    }
}
