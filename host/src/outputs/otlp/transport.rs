//! One OTLP export over the configured transport, and what its answer means for the
//! batch: delivered (perhaps partly rejected), rejected for good, or retry (with the
//! receiver's requested delay). The retry rules are the OTLP specification's: gRPC
//! `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `ABORTED`, `CANCELLED`, `OUT_OF_RANGE`,
//! `DATA_LOSS`, and `RESOURCE_EXHAUSTED` only with `RetryInfo`; HTTP 429, 502, 503, 504
//! (honouring `Retry-After`).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderName, HeaderValue, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_util::either::Either;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt as _;

use super::super::client::{
    file_error, http_client, post, tls_config, tls_error, HttpClient, NoAnswer, RETRY_AFTER_CAP,
};
use super::super::metrics::FailReason;
use super::super::OutputError;
use super::config::{Compression, HeaderSource, OtlpConfig, OtlpProtocol};
use crate::tls;

/// What one export came to.
#[derive(Debug)]
pub enum Exported {
    /// Accepted; `rejected` records were refused by the receiver (partial success).
    Delivered {
        /// `partial_success.rejected_log_records`.
        rejected: u64,
        /// `partial_success.error_message`.
        message: String,
    },
    /// Refused for good: dropped and counted.
    Rejected {
        /// The status or code, for the log.
        detail: String,
    },
    /// Failed for now: retried.
    Retry {
        /// For the failure counter.
        reason: FailReason,
        /// The receiver's requested delay, when it gave one.
        retry_after: Option<Duration>,
        /// For the log.
        detail: String,
    },
}

/// The configured transport, ready to export.
pub enum Transport {
    /// OTLP/gRPC.
    Grpc {
        /// The client (lazily connected; cheap to clone).
        client: LogsServiceClient<Channel>,
        /// Headers as gRPC metadata.
        metadata: tonic::metadata::MetadataMap,
        /// Per-export deadline.
        timeout: Duration,
    },
    /// OTLP/HTTP with protobuf bodies.
    Http {
        /// The client (boxed: it is most of the enum's size).
        client: Box<HttpClient>,
        /// `{endpoint}/v1/logs`.
        uri: Uri,
        /// Content type, encoding and configured headers.
        headers: Vec<(HeaderName, HeaderValue)>,
        /// Per-export deadline.
        timeout: Duration,
        /// gzip the body.
        gzip: bool,
    },
}

/// The configured headers, as header names and values (files are read now, so a bad one
/// stops the start).
fn header_values(
    name: &str,
    config: &OtlpConfig,
) -> Result<Vec<(HeaderName, HeaderValue)>, OutputError> {
    let mut out = Vec::new();
    for (key, source) in &config.headers {
        let field = format!("headers.{key}");
        let value = match source {
            HeaderSource::Value(v) => v.clone(),
            HeaderSource::File { file } => {
                tls::read_secret(&field, file).map_err(file_error(name))?
            }
        };
        let invalid = |what: &str| tls_error(name, &field, std::path::Path::new(""), what);
        let k = HeaderName::from_bytes(key.to_ascii_lowercase().as_bytes())
            .map_err(|_| invalid("not a valid header name"))?;
        let v = HeaderValue::from_str(&value).map_err(|_| invalid("not a valid header value"))?;
        out.push((k, v));
    }
    Ok(out)
}

/// TCP, then TLS when the endpoint is `https://` (ALPN `h2`, as gRPC servers require).
#[derive(Clone)]
struct GrpcConnector {
    tls: Option<tokio_rustls::TlsConnector>,
}

impl tower::Service<Uri> for GrpcConnector {
    type Response = TokioIo<Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let bad =
                |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
            let host = uri
                .host()
                .ok_or_else(|| bad("endpoint has no host"))?
                .to_owned();
            let https = uri.scheme_str() == Some("https");
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let host_for_connect = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let tcp = TcpStream::connect((host_for_connect.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            match (https, tls) {
                (true, Some(tls)) => {
                    let name = rustls::pki_types::ServerName::try_from(host_for_connect)
                        .map_err(|_| bad("endpoint host is not a valid TLS server name"))?;
                    let stream = tls.connect(name, tcp).await?;
                    Ok(TokioIo::new(Either::Right(stream)))
                }
                (true, None) => Err(bad("https:// endpoint without a TLS config")),
                (false, _) => Ok(TokioIo::new(Either::Left(tcp))),
            }
        })
    }
}

impl Transport {
    /// Builds the transport of output `name`: reads the TLS and header files now, so a bad
    /// one stops the start. Never connects: the first export does.
    ///
    /// # Errors
    /// [`OutputError::Tls`] naming a file that cannot be read or parsed, or
    /// [`OutputError::Url`].
    pub fn build(name: &str, config: &OtlpConfig) -> Result<Self, OutputError> {
        let url = config.export_url();
        let uri: Uri = url.parse().map_err(|_| OutputError::Url {
            output: name.to_string(),
            url: url.clone(),
        })?;
        let https = uri.scheme_str() == Some("https");
        let timeout = Duration::from_secs(config.timeout_secs);
        let headers = header_values(name, config)?;
        let mut tls = if https {
            Some(tls_config(name, &config.tls.clone().unwrap_or_default())?)
        } else {
            None
        };
        match config.protocol {
            OtlpProtocol::Grpc => {
                if let Some(tls) = tls.as_mut() {
                    tls.alpn_protocols = vec![b"h2".to_vec()];
                }
                let endpoint = Endpoint::from_shared(url.clone())
                    .map_err(|_| OutputError::Url {
                        output: name.to_string(),
                        url: url.clone(),
                    })?
                    .connect_timeout(timeout)
                    .timeout(timeout);
                let channel = endpoint.connect_with_connector_lazy(GrpcConnector {
                    tls: tls.map(|t| tokio_rustls::TlsConnector::from(Arc::new(t))),
                });
                let mut client = LogsServiceClient::new(channel);
                if config.compression == Compression::Gzip {
                    client = client
                        .send_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Gzip);
                }
                let metadata =
                    tonic::metadata::MetadataMap::from_headers(headers.into_iter().collect());
                Ok(Self::Grpc {
                    client,
                    metadata,
                    timeout,
                })
            }
            OtlpProtocol::HttpProtobuf => {
                let client = http_client(name, https, config.tls.as_ref())?;
                let gzip = config.compression == Compression::Gzip;
                let mut list = vec![(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                )];
                if gzip {
                    list.push((header::CONTENT_ENCODING, HeaderValue::from_static("gzip")));
                }
                list.extend(headers);
                Ok(Self::Http {
                    client: Box::new(client),
                    uri,
                    headers: list,
                    timeout,
                    gzip,
                })
            }
        }
    }

    /// One export of `request`.
    pub async fn export(&self, request: &ExportLogsServiceRequest) -> Exported {
        match self {
            Self::Grpc {
                client,
                metadata,
                timeout,
            } => {
                let mut req = tonic::Request::from_parts(
                    metadata.clone(),
                    tonic::Extensions::default(),
                    request.clone(),
                );
                req.set_timeout(*timeout);
                let mut client = client.clone();
                match tokio::time::timeout(*timeout, client.export(req)).await {
                    Err(_) => Exported::Retry {
                        reason: FailReason::timeout,
                        retry_after: None,
                        detail: format!("no answer within {}s", timeout.as_secs()),
                    },
                    Ok(Ok(response)) => delivered(response.into_inner()),
                    Ok(Err(status)) => classify_grpc(&status),
                }
            }
            Self::Http {
                client,
                uri,
                headers,
                timeout,
                gzip,
            } => {
                let mut body = request.encode_to_vec();
                if *gzip {
                    let mut encoder =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    if let Err(e) = encoder.write_all(&body) {
                        return Exported::Retry {
                            reason: FailReason::write,
                            retry_after: None,
                            detail: format!("gzip: {e}"),
                        };
                    }
                    body = match encoder.finish() {
                        Ok(b) => b,
                        Err(e) => {
                            return Exported::Retry {
                                reason: FailReason::write,
                                retry_after: None,
                                detail: format!("gzip: {e}"),
                            }
                        }
                    };
                }
                match post(client, uri, headers, Bytes::from(body), *timeout).await {
                    Ok(answer) => classify_http(answer.status, answer.retry_after, &answer.body),
                    Err(NoAnswer { reason, detail }) => Exported::Retry {
                        reason,
                        retry_after: None,
                        detail,
                    },
                }
            }
        }
    }
}

fn delivered(response: ExportLogsServiceResponse) -> Exported {
    let partial = response.partial_success.unwrap_or_default();
    Exported::Delivered {
        rejected: u64::try_from(partial.rejected_log_records).unwrap_or(0),
        message: partial.error_message,
    }
}

/// The OTLP/gRPC retry rules.
fn classify_grpc(status: &tonic::Status) -> Exported {
    use tonic::Code;
    let detail = format!("{:?}: {}", status.code(), status.message());
    let retry_info = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .map(|d| d.min(RETRY_AFTER_CAP));
    let reason = match status.code() {
        Code::ResourceExhausted if retry_info.is_some() => FailReason::rate_limited,
        Code::Unavailable => FailReason::connect,
        Code::DeadlineExceeded => FailReason::timeout,
        Code::Cancelled | Code::Aborted | Code::OutOfRange | Code::DataLoss => {
            FailReason::server_error
        }
        _ => return Exported::Rejected { detail },
    };
    Exported::Retry {
        reason,
        retry_after: retry_info,
        detail,
    }
}

/// The OTLP/HTTP retry rules.
fn classify_http(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Exported {
    if status.is_success() {
        return match ExportLogsServiceResponse::decode(body) {
            Ok(response) => delivered(response),
            // An empty or foreign body on 2xx: accepted, nothing known to be rejected.
            Err(_) => Exported::Delivered {
                rejected: 0,
                message: String::new(),
            },
        };
    }
    let detail = format!("status {}", status.as_u16());
    let reason = match status {
        StatusCode::TOO_MANY_REQUESTS => FailReason::rate_limited,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT => {
            FailReason::server_error
        }
        _ => return Exported::Rejected { detail },
    };
    Exported::Retry {
        reason,
        retry_after: retry_after.map(|d| d.min(RETRY_AFTER_CAP)),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::OtlpProtocol;
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess;
    use tonic_types::{ErrorDetails, StatusExt};

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/tls")
            .join(name)
    }

    fn one_record() -> ExportLogsServiceRequest {
        let ev = crate::record::EventRecord {
            event: crate::record::Lifecycle::Added,
            time: crate::record::Timestamp::now(),
            record: crate::record::ContainerRecord {
                id: "c1".into(),
                ..Default::default()
            },
        };
        ExportLogsServiceRequest {
            resource_logs: vec![super::super::entity::resource_logs(
                "n",
                vec![super::super::entity::log_record(&ev, "e1", 0)],
            )],
        }
    }

    /// Both transports over TLS to a receiver with the test certificate: delivered with
    /// `tls.ca_file`; refused as a connection failure (retried) with the system CA bundle,
    /// which does not know the test CA.
    #[tokio::test]
    async fn both_transports_export_over_tls_and_check_the_certificate(
    ) -> Result<(), Box<dyn std::error::Error>> {
        use gannet_test_kit::otlp::{OtlpReceiver, OtlpTransport};
        for (transport, protocol) in [
            (OtlpTransport::Grpc, OtlpProtocol::Grpc),
            (OtlpTransport::Http, OtlpProtocol::HttpProtobuf),
        ] {
            let rx =
                OtlpReceiver::new_tls(transport, &fixture("server.pem"), &fixture("server.key"))
                    .await?;
            let mut config = OtlpConfig::with_endpoint(&rx.endpoint(), protocol);
            config.timeout_secs = 5;
            config.tls = Some(crate::outputs::TlsConfig {
                ca_file: Some(fixture("ca.pem")),
                ..Default::default()
            });
            config.validate()?;
            let trusted = Transport::build("tls", &config)?;
            let answer = trusted.export(&one_record()).await;
            assert!(
                matches!(answer, Exported::Delivered { rejected: 0, .. }),
                "{protocol:?}: {answer:?}"
            );
            assert_eq!(rx.count(), 1, "{protocol:?}");
            config.tls = None;
            let untrusted = Transport::build("tls", &config)?;
            let answer = untrusted.export(&one_record()).await;
            assert!(
                matches!(
                    answer,
                    Exported::Retry {
                        reason: FailReason::connect,
                        ..
                    }
                ),
                "{protocol:?}, unknown CA: {answer:?}"
            );
            assert_eq!(rx.count(), 1, "nothing reached the receiver without trust");
        }
        Ok(())
    }

    #[test]
    fn grpc_codes_follow_the_otlp_retry_rules() {
        let retry = |s: tonic::Status| matches!(classify_grpc(&s), Exported::Retry { .. });
        assert!(retry(tonic::Status::unavailable("x")));
        assert!(retry(tonic::Status::deadline_exceeded("x")));
        assert!(retry(tonic::Status::aborted("x")));
        assert!(!retry(tonic::Status::invalid_argument("x")));
        assert!(!retry(tonic::Status::permission_denied("x")));
        assert!(
            !retry(tonic::Status::resource_exhausted("x")),
            "RESOURCE_EXHAUSTED without RetryInfo is not retried"
        );
        let with_info = tonic::Status::with_error_details(
            tonic::Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(1500))),
        );
        match classify_grpc(&with_info) {
            Exported::Retry {
                reason: FailReason::rate_limited,
                retry_after: Some(d),
                ..
            } => assert_eq!(d, Duration::from_millis(1500)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn http_statuses_follow_the_otlp_retry_rules() {
        let ok = ExportLogsServiceResponse {
            partial_success: Some(ExportLogsPartialSuccess {
                rejected_log_records: 3,
                error_message: "bad attrs".into(),
            }),
        }
        .encode_to_vec();
        assert!(matches!(
            classify_http(StatusCode::OK, None, &ok),
            Exported::Delivered { rejected: 3, .. }
        ));
        assert!(matches!(
            classify_http(StatusCode::OK, None, b""),
            Exported::Delivered { rejected: 0, .. }
        ));
        assert!(matches!(
            classify_http(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2)), b""),
            Exported::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        for s in [502, 503, 504] {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::OK);
            assert!(matches!(
                classify_http(status, None, b""),
                Exported::Retry { .. }
            ));
        }
        for s in [400, 401, 404, 413, 500] {
            let status = StatusCode::from_u16(s).unwrap_or(StatusCode::OK);
            assert!(
                matches!(classify_http(status, None, b""), Exported::Rejected { .. }),
                "{s}"
            );
        }
    }
}
