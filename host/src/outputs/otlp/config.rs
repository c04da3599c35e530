//! `type = "otlp"`: the section, its defaults and its one check.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::http::{HeaderName, HeaderValue, Uri};
use serde::{Deserialize, Serialize};

use super::super::client::TlsConfig;
use super::super::queue::OverflowPolicy;
use crate::validate::{check_readable, invalid, FieldError};

/// Longest `report_interval_secs`: a day.
pub const MAX_REPORT_INTERVAL_SECS: u64 = 86_400;

/// `type = "otlp"`: container entity events as OTLP logs, to an OpenTelemetry Collector or
/// any OTLP receiver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// `http://host:port` or `https://host:port` (TLS). For `http/protobuf` it may carry a
    /// path prefix; logs are POSTed to `{endpoint}/v1/logs`.
    pub endpoint: String,
    /// `grpc` (default; `LogsService/Export`) or `http/protobuf`.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Headers sent with every export: `name = "value"`, or `name = { file = "/path" }` to
    /// read the value from a file (for tokens: the value is never logged).
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderSource>,
    /// Optional TLS settings (for `https://` endpoints).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Seconds one export may take before it counts as failed and is retried.
    #[serde(default = "OtlpConfig::default_timeout_secs")]
    pub timeout_secs: u64,
    /// `none` (default) or `gzip`.
    #[serde(default)]
    pub compression: Compression,
    /// Seconds between re-reports of every present container (`entity.state`), spread over
    /// the interval; 0 turns them off.
    #[serde(default = "OtlpConfig::default_report_interval_secs")]
    pub report_interval_secs: u64,
    /// Most log records in one export.
    #[serde(default = "OtlpConfig::default_batch_size")]
    pub batch_size: usize,
    /// Milliseconds to wait for a batch to fill before sending what there is.
    #[serde(default = "OtlpConfig::default_linger_ms")]
    pub linger_ms: u64,
    /// Events the queue holds before the overflow policy applies.
    #[serde(default = "OtlpConfig::default_queue_capacity")]
    pub queue_capacity: usize,
    /// `block` (default) or `drop_oldest`.
    #[serde(default)]
    pub overflow: OverflowPolicy,
    /// First retry delay in milliseconds; doubled per attempt, with jitter.
    #[serde(default = "OtlpConfig::default_retry_initial_backoff_ms")]
    pub retry_initial_backoff_ms: u64,
    /// Longest retry delay in milliseconds (`Retry-After` and gRPC `RetryInfo` are
    /// honoured up to 300 s).
    #[serde(default = "OtlpConfig::default_retry_max_backoff_ms")]
    pub retry_max_backoff_ms: u64,
}

/// The OTLP transport. Parsed from its name with an error that names the key (inside an
/// output's tagged table, serde's own "unknown variant" would name only the table).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum OtlpProtocol {
    /// OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export`.
    #[default]
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with protobuf bodies: `POST {endpoint}/v1/logs`.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl TryFrom<String> for OtlpProtocol {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        match name.as_str() {
            "grpc" => Ok(Self::Grpc),
            "http/protobuf" => Ok(Self::HttpProtobuf),
            _ => Err(format!(
                "protocol = {name:?} is not an OTLP protocol Gannet speaks; use \"grpc\" or \"http/protobuf\""
            )),
        }
    }
}

/// Body compression. Parsed from its name with an error that names the key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Compression {
    /// Uncompressed.
    #[default]
    None,
    /// gzip (`grpc-encoding: gzip`, or `Content-Encoding: gzip`).
    Gzip,
}

impl TryFrom<String> for Compression {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        match name.as_str() {
            "none" => Ok(Self::None),
            "gzip" => Ok(Self::Gzip),
            _ => Err(format!(
                "compression = {name:?} is not supported; use \"gzip\" or \"none\""
            )),
        }
    }
}

/// A header value: literal, or read from a file at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a header value: a string, or { file = \"/path\" } to read it from a file"
)]
pub enum HeaderSource {
    /// The value as written.
    Value(String),
    /// The value is the file's content, trimmed.
    File {
        /// The file.
        file: PathBuf,
    },
}

/// Headers an export sets itself; configuring them would break the protocol.
const RESERVED_HEADERS: [&str; 6] = [
    "content-type",
    "content-encoding",
    "content-length",
    "te",
    "grpc-encoding",
    "grpc-timeout",
];

impl OtlpConfig {
    fn default_timeout_secs() -> u64 {
        10
    }
    fn default_report_interval_secs() -> u64 {
        300
    }
    fn default_batch_size() -> usize {
        512
    }
    fn default_linger_ms() -> u64 {
        200
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

    /// A config with every default and the given endpoint.
    pub fn with_endpoint(endpoint: &str, protocol: OtlpProtocol) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            protocol,
            headers: BTreeMap::new(),
            tls: None,
            timeout_secs: Self::default_timeout_secs(),
            compression: Compression::None,
            report_interval_secs: Self::default_report_interval_secs(),
            batch_size: Self::default_batch_size(),
            linger_ms: Self::default_linger_ms(),
            queue_capacity: Self::default_queue_capacity(),
            overflow: OverflowPolicy::default(),
            retry_initial_backoff_ms: Self::default_retry_initial_backoff_ms(),
            retry_max_backoff_ms: Self::default_retry_max_backoff_ms(),
        }
    }

    /// The URL exports go to: the endpoint for gRPC, `{endpoint}/v1/logs` for HTTP.
    pub fn export_url(&self) -> String {
        match self.protocol {
            OtlpProtocol::Grpc => self.endpoint.clone(),
            OtlpProtocol::HttpProtobuf => {
                format!("{}/v1/logs", self.endpoint.trim_end_matches('/'))
            }
        }
    }

    /// Checks every rule the types cannot express and that each named file can be read.
    /// Fields are named relative to the output's section (`headers.authorization`).
    ///
    /// # Errors
    /// The first field that cannot be used.
    pub fn validate(&self) -> Result<(), FieldError> {
        let uri: Option<Uri> = self.endpoint.parse().ok();
        let scheme_ok = matches!(
            uri.as_ref().and_then(|u| u.scheme_str()),
            Some("http" | "https")
        );
        if !scheme_ok || uri.as_ref().and_then(|u| u.host()).is_none() {
            return Err(invalid(
                "endpoint",
                &self.endpoint,
                "is not an http:// or https:// URL with a host (https:// for TLS)",
            ));
        }
        let path = uri.as_ref().map(|u| u.path()).unwrap_or("/");
        if self.protocol == OtlpProtocol::Grpc && !matches!(path, "" | "/") {
            return Err(invalid(
                "endpoint",
                &self.endpoint,
                "a gRPC endpoint has no path; write http://host:4317, or set protocol = \"http/protobuf\"",
            ));
        }
        if uri.as_ref().and_then(|u| u.query()).is_some() {
            return Err(invalid("endpoint", &self.endpoint, "must not have a query"));
        }
        if self.timeout_secs == 0 {
            return Err(invalid("timeout_secs", 0, "must be at least 1"));
        }
        if self.report_interval_secs > MAX_REPORT_INTERVAL_SECS {
            return Err(invalid(
                "report_interval_secs",
                self.report_interval_secs,
                "must be at most 86400 (a day); 0 turns re-reports off",
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
        if self.retry_initial_backoff_ms == 0
            || self.retry_max_backoff_ms < self.retry_initial_backoff_ms
        {
            return Err(invalid(
                "retry_max_backoff_ms",
                self.retry_max_backoff_ms,
                "must be at least retry_initial_backoff_ms, which must be at least 1",
            ));
        }
        for (name, source) in &self.headers {
            let field = format!("headers.{name}");
            let lower = name.to_ascii_lowercase();
            if HeaderName::from_bytes(lower.as_bytes()).is_err() {
                return Err(invalid(&field, name, "is not a valid header name"));
            }
            if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with(':') {
                return Err(invalid(
                    &field,
                    name,
                    "is set by the exporter itself; remove it",
                ));
            }
            match source {
                HeaderSource::Value(v) => {
                    if HeaderValue::from_str(v).is_err() {
                        // Never quote the value: it may be a secret.
                        return Err(invalid(
                            &field,
                            "<value>",
                            "is not a valid header value (printable ASCII, no newline)",
                        ));
                    }
                }
                HeaderSource::File { file } => check_readable(&field, file)?,
            }
        }
        if let Some(tls) = &self.tls {
            tls.validate("endpoint", &self.endpoint)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Result<(), String> {
        let c: OtlpConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn minimal_grpc_and_http_configs_pass() {
        assert_eq!(check(r#"endpoint = "http://127.0.0.1:4317""#), Ok(()));
        assert_eq!(
            check("endpoint = \"http://c:4318/prefix\"\nprotocol = \"http/protobuf\""),
            Ok(())
        );
    }

    #[test]
    fn bad_inputs_name_the_field() {
        let e = check(r#"endpoint = "127.0.0.1:4317""#)
            .err()
            .unwrap_or_default();
        assert!(e.contains("endpoint"), "{e}");
        let e = check("endpoint = \"http://c:4317\"\nprotocol = \"http/json\"")
            .err()
            .unwrap_or_default();
        assert!(
            e.contains("protocol = \"http/json\" is not an OTLP protocol"),
            "{e}"
        );
        assert!(e.contains("\"http/protobuf\""), "{e}");
        let e = check("endpoint = \"http://c:4317\"\ncompression = \"zstd\"")
            .err()
            .unwrap_or_default();
        assert!(e.contains("compression = \"zstd\" is not supported"), "{e}");
        let e = check(r#"endpoint = "http://c:4317/v1/logs""#)
            .err()
            .unwrap_or_default();
        assert!(e.contains("gRPC endpoint has no path"), "{e}");
        let e = check("endpoint = \"http://c:4317\"\n[headers]\nauthorization = { file = \"/nonexistent/token\" }")
            .err()
            .unwrap_or_default();
        assert!(e.contains("headers.authorization"), "{e}");
        let e = check("endpoint = \"http://c:4317\"\n[headers]\ncontent-type = \"x\"")
            .err()
            .unwrap_or_default();
        assert!(e.contains("set by the exporter"), "{e}");
        let e = check("endpoint = \"http://c:4317\"\n[headers]\nx = 3")
            .err()
            .unwrap_or_default();
        assert!(e.contains("file = "), "{e}");
        let e = check("endpoint = \"http://c:4317\"\n[tls]\nca_file = \"/etc/hostname\"")
            .err()
            .unwrap_or_default();
        assert!(e.contains("https://"), "{e}");
        let e = check("endpoint = \"http://c:4317\"\nreport_interval_secs = 100000")
            .err()
            .unwrap_or_default();
        assert!(e.contains("report_interval_secs"), "{e}");
    }

    #[test]
    fn secret_header_value_is_not_quoted() {
        let e = check("endpoint = \"http://c:4317\"\n[headers]\nx-token = \"sec\\nret\"")
            .err()
            .unwrap_or_default();
        assert!(!e.contains("sec"), "{e}");
    }

    #[test]
    fn export_url_appends_the_logs_path_for_http() {
        let c = OtlpConfig::with_endpoint("http://c:4318/", OtlpProtocol::HttpProtobuf);
        assert_eq!(c.export_url(), "http://c:4318/v1/logs");
        let g = OtlpConfig::with_endpoint("http://c:4317", OtlpProtocol::Grpc);
        assert_eq!(g.export_url(), "http://c:4317");
    }
}
