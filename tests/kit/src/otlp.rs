//! OTLP receivers run by the tests: an OTLP/gRPC one (a tonic server on the upstream
//! `LogsService`) and an OTLP/HTTP one (protobuf bodies on `POST /v1/logs`), both keeping
//! every log record they accept. A script of answers lets a test refuse exports the way a
//! real collector does: a gRPC status (with `RetryInfo`), an HTTP status (with
//! `Retry-After`), or a partial success. [`OtlpReceiver::stop`] and [`OtlpReceiver::start`]
//! take it down and bring it back on the same port.

use std::collections::VecDeque;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message as _;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_types::{ErrorDetails, StatusExt as _};

/// Which OTLP transport a receiver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpTransport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP, protobuf bodies.
    Http,
}

/// One scripted answer to one export.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A gRPC error status, with a `RetryInfo` delay when given (gRPC receivers only).
    GrpcStatus(tonic::Code, Option<Duration>),
    /// An HTTP error status, with `Retry-After` seconds when given (HTTP receivers only).
    HttpStatus(u16, Option<u64>),
    /// Accept and keep the records, but answer that `n` were rejected.
    Partial(i64),
}

/// One received log record as JSON: `{"event_name", "time_unix_nano", "attributes": {...},
/// "resource": {...}}`, with maps as objects and arrays as arrays.
pub type Received = Value;

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Answer>>,
    records: Mutex<Vec<Received>>,
    exports: Mutex<usize>,
    times: Mutex<Vec<std::time::Instant>>,
    content_encodings: Mutex<Vec<String>>,
}

impl Shared {
    fn next_answer(&self) -> Option<Answer> {
        *self.exports.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(std::time::Instant::now());
        self.script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    fn keep(&self, request: &ExportLogsServiceRequest) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        for rl in &request.resource_logs {
            let resource = rl
                .resource
                .as_ref()
                .map(|r| attributes(&r.attributes))
                .unwrap_or(Value::Null);
            for sl in &rl.scope_logs {
                for lr in &sl.log_records {
                    records.push(serde_json::json!({
                        "event_name": lr.event_name,
                        "time_unix_nano": lr.time_unix_nano,
                        "attributes": attributes(&lr.attributes),
                        "resource": resource,
                    }));
                }
            }
        }
    }
}

/// An AnyValue as JSON.
pub fn any_value(v: &AnyValue) -> Value {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => Value::from(*d),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_value).collect())
        }
        Some(any_value::Value::KvlistValue(l)) => attributes(&l.values),
        Some(any_value::Value::BytesValue(b)) => Value::from(b.clone()),
        Some(_) | None => Value::Null,
    }
}

/// Attributes as a JSON object.
pub fn attributes(list: &[KeyValue]) -> Value {
    Value::Object(
        list.iter()
            .map(|kv| {
                (
                    kv.key.clone(),
                    kv.value.as_ref().map(any_value).unwrap_or(Value::Null),
                )
            })
            .collect(),
    )
}

#[derive(Clone)]
struct GrpcService(Arc<Shared>);

#[tonic::async_trait]
impl LogsService for GrpcService {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        if let Some(enc) = request.metadata().get("grpc-encoding") {
            self.0
                .content_encodings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(enc.to_str().unwrap_or_default().to_owned());
        }
        let request = request.into_inner();
        let rejected = match self.0.next_answer() {
            Some(Answer::GrpcStatus(code, delay)) => {
                return Err(match delay {
                    Some(d) => tonic::Status::with_error_details(
                        code,
                        "scripted",
                        ErrorDetails::with_retry_info(Some(d)),
                    ),
                    None => tonic::Status::new(code, "scripted"),
                })
            }
            Some(Answer::Partial(n)) => n,
            Some(Answer::HttpStatus(..)) | None => 0,
        };
        self.0.keep(&request);
        Ok(tonic::Response::new(response(rejected)))
    }
}

fn response(rejected: i64) -> ExportLogsServiceResponse {
    ExportLogsServiceResponse {
        partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: rejected,
            error_message: "scripted partial success".into(),
        }),
    }
}

/// A running (or stopped) receiver.
pub struct OtlpReceiver {
    transport: OtlpTransport,
    tls: Option<tokio_rustls::TlsAcceptor>,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<CancellationToken>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl OtlpReceiver {
    /// Starts a receiver on a free loopback port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn new(transport: OtlpTransport) -> Result<Self> {
        Self::bind(transport, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a receiver on `addr`.
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    pub async fn bind(transport: OtlpTransport, addr: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let addr = listener.local_addr()?;
        let mut me = Self {
            transport,
            tls: None,
            addr,
            shared: Arc::default(),
            stop: None,
            task: None,
        };
        me.serve(listener);
        Ok(me)
    }

    /// Starts a receiver on a free loopback port that serves TLS with the PEM chain `cert`
    /// and key `key` (ALPN `h2` for gRPC). Its endpoint is `https://localhost:PORT`.
    ///
    /// # Errors
    /// When no port can be bound or a file cannot be used.
    pub async fn new_tls(
        transport: OtlpTransport,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut me = Self {
            transport,
            tls: Some(crate::http_server::tls_acceptor(cert, key)?),
            addr: listener.local_addr()?,
            shared: Arc::default(),
            stop: None,
            task: None,
        };
        me.serve(listener);
        Ok(me)
    }

    /// The endpoint Gannet's `otlp` output should use.
    pub fn endpoint(&self) -> String {
        match self.tls {
            None => format!("http://{}", self.addr),
            Some(_) => format!("https://localhost:{}", self.addr.port()),
        }
    }

    /// Queues scripted answers for the next exports.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared
            .script
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(answers);
    }

    /// Every record accepted so far.
    pub fn records(&self) -> Vec<Received> {
        self.shared
            .records
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many records were accepted (without copying them).
    pub fn count(&self) -> usize {
        self.shared
            .records
            .lock()
            .map(|r| r.len())
            .unwrap_or_default()
    }

    /// Export calls seen (accepted or not).
    pub fn exports(&self) -> usize {
        *self
            .shared
            .exports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// When each export call arrived.
    pub fn export_times(&self) -> Vec<std::time::Instant> {
        self.shared
            .times
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// The content encodings exports arrived with (`gzip`), one per compressed export.
    pub fn content_encodings(&self) -> Vec<String> {
        self.shared
            .content_encodings
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Takes the receiver down: the port refuses connections until [`Self::start`].
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.cancel();
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Brings the receiver back on the same port.
    ///
    /// # Errors
    /// When the port cannot be bound again.
    pub async fn start(&mut self) -> Result<()> {
        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("rebinding {}", self.addr))?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = CancellationToken::new();
        self.stop = Some(stop.clone());
        let shared = Arc::clone(&self.shared);
        let tls = self.tls.clone();
        self.task = Some(match (self.transport, tls) {
            (OtlpTransport::Grpc, None) => tokio::spawn(async move {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let _ = tonic::transport::Server::builder()
                    .add_service(
                        LogsServiceServer::new(GrpcService(shared))
                            .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                    )
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await;
            }),
            (OtlpTransport::Grpc, Some(acceptor)) => tokio::spawn(async move {
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                let accept_stop = stop.clone();
                tokio::spawn(async move {
                    loop {
                        let accepted = tokio::select! {
                            a = listener.accept() => a,
                            () = accept_stop.cancelled() => break,
                        };
                        let Ok((stream, _)) = accepted else { break };
                        let (acceptor, tx) = (acceptor.clone(), tx.clone());
                        tokio::spawn(async move {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = tx.send(Ok::<_, std::io::Error>(TlsIo(tls))).await;
                            }
                        });
                    }
                });
                let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
                let _ = tonic::transport::Server::builder()
                    .add_service(LogsServiceServer::new(GrpcService(shared)))
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await;
            }),
            (OtlpTransport::Http, tls) => tokio::spawn(crate::http_server::serve_http1(
                listener,
                stop,
                tls,
                move |req| {
                    let shared = Arc::clone(&shared);
                    async move { http_answer(req, &shared).await }
                },
            )),
        });
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.cancel();
        }
    }
}

async fn http_answer(
    req: hyper::Request<hyper::body::Incoming>,
    shared: &Shared,
) -> hyper::Response<Full<Bytes>> {
    let status = |code: u16| {
        hyper::Response::builder()
            .status(code)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default()
    };
    if req.method() != hyper::Method::POST || req.uri().path() != "/v1/logs" {
        return status(404);
    }
    let content_type_ok = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "application/x-protobuf");
    let gzip = req
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let Ok(body) = req.into_body().collect().await else {
        return status(400);
    };
    let mut body = body.to_bytes().to_vec();
    if !content_type_ok {
        return status(415);
    }
    if gzip {
        shared
            .content_encodings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push("gzip".into());
        let mut plain = Vec::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .is_err()
        {
            return status(400);
        }
        body = plain;
    }
    let Ok(request) = ExportLogsServiceRequest::decode(&body[..]) else {
        return status(400);
    };
    let rejected = match shared.next_answer() {
        Some(Answer::HttpStatus(code, retry_after)) => {
            let mut b = hyper::Response::builder().status(code);
            if let Some(secs) = retry_after {
                b = b.header("retry-after", secs.to_string());
            }
            return b.body(Full::new(Bytes::new())).unwrap_or_default();
        }
        Some(Answer::Partial(n)) => n,
        Some(Answer::GrpcStatus(..)) | None => 0,
    };
    shared.keep(&request);
    hyper::Response::builder()
        .status(200)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(response(rejected).encode_to_vec())))
        .unwrap_or_default()
}

/// A server-side TLS stream as tonic's incoming connection.
struct TlsIo(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for TlsIo {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl tokio::io::AsyncRead for TlsIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
