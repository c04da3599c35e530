//! A fault proxy in front of the real containerd: a unix socket that forwards every gRPC
//! call (CRI and the native API alike, over HTTP/2) to the runtime's socket, and can, per
//! method, delay a call, stall it, reset its stream, or answer a gRPC status instead.
//!
//! It is not a fake runtime: every answer that is not a fault comes from containerd. Rules
//! match a method by its path prefix (`/runtime.v1.RuntimeService/`, or a whole path) and,
//! optionally, by bytes the request's message contains (a container id), so one container's
//! calls can misbehave while the others flow. The first matching rule applies.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// What a matching call gets instead of a plain forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded after this long.
    Delay(Duration),
    /// Never answered (until the caller gives up).
    Stall,
    /// Its stream is reset.
    Reset,
    /// Answered with this gRPC status code (`12` is UNIMPLEMENTED, `14` UNAVAILABLE).
    Status(i32),
    /// Forwarded, but every answer message containing these bytes is dropped: a streamed
    /// event that never arrives (`/tasks/oom`), the rest of the stream intact.
    DropMessages(Vec<u8>),
}

/// gRPC `UNIMPLEMENTED`.
pub const UNIMPLEMENTED: i32 = 12;
/// gRPC `UNAVAILABLE`.
pub const UNAVAILABLE: i32 = 14;

/// Which calls a fault applies to.
#[derive(Debug, Clone)]
pub struct Rule {
    /// A prefix of the method path (`/runtime.v1.RuntimeService/ContainerStatus`).
    pub method: String,
    /// Bytes the request message must contain (a container id), if any.
    pub body_contains: Option<Vec<u8>>,
    /// What the call gets.
    pub fault: Fault,
}

impl Rule {
    /// `fault` for every call whose method path starts with `method`.
    pub fn new(method: &str, fault: Fault) -> Self {
        Self {
            method: method.to_string(),
            body_contains: None,
            fault,
        }
    }

    /// Only for calls whose request message contains `needle`.
    pub fn containing(mut self, needle: &str) -> Self {
        self.body_contains = Some(needle.as_bytes().to_vec());
        self
    }

    fn matches(&self, method: &str, body: &[u8]) -> bool {
        method.starts_with(&self.method)
            && self
                .body_contains
                .as_ref()
                .is_none_or(|needle| contains(body, needle))
    }
}

/// Whether `haystack` holds the bytes `needle`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One call the proxy saw: its method and whether a rule applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The method path.
    pub method: String,
    /// The request message (the gRPC frame, undecoded).
    pub body: Vec<u8>,
    /// The fault it got, if any.
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Shared {
    rules: Mutex<Vec<Rule>>,
    seen: Mutex<Vec<Seen>>,
    /// Calls in flight now, and the most ever.
    in_flight: Mutex<(usize, usize)>,
    /// Answer messages dropped by [`Fault::DropMessages`].
    dropped: Mutex<usize>,
}

/// Counts a call in flight until dropped.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let mut counts = lock(&shared.in_flight);
        counts.0 += 1;
        counts.1 = counts.1.max(counts.0);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(&self.0.in_flight).0 -= 1;
    }
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    socket: PathBuf,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;
/// The service's error: any error makes hyper reset the call's stream.
type ProxyError = Box<dyn std::error::Error + Send + Sync>;

impl FaultProxy {
    /// Listens on `socket` and forwards to the runtime at `upstream`.
    ///
    /// # Errors
    /// When `socket` cannot be bound.
    pub fn start(upstream: &Path, socket: &Path) -> Result<Self> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)
            .with_context(|| format!("fault proxy: cannot listen on {}", socket.display()))?;
        let shared = Arc::new(Shared::default());
        let (upstream, accept_shared) = (upstream.to_path_buf(), Arc::clone(&shared));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, shared) = (upstream.clone(), Arc::clone(&accept_shared));
                tokio::spawn(async move {
                    let _ = serve_connection(stream, &upstream, shared).await;
                });
            }
        });
        Ok(Self {
            socket: socket.to_path_buf(),
            shared,
            task,
        })
    }

    /// The proxy's socket, to give Gannet as `--socket`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Replaces the rules; calls already stalled stay stalled.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        *lock(&self.shared.rules) = rules;
    }

    /// Every call seen so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// How many answer messages [`Fault::DropMessages`] dropped so far.
    pub fn dropped_messages(&self) -> usize {
        *lock(&self.shared.dropped)
    }

    /// The most calls that were waiting for their answer at once (a streaming call counts
    /// until its answer starts).
    pub fn max_in_flight(&self) -> usize {
        lock(&self.shared.in_flight).1
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves one client connection over one HTTP/2 connection to the runtime.
async fn serve_connection(client: UnixStream, upstream: &Path, shared: Arc<Shared>) -> Result<()> {
    let runtime = UnixStream::connect(upstream).await?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(runtime)).await?;
    tokio::spawn(connection);
    let service = hyper::service::service_fn(move |request| {
        let (sender, shared) = (sender.clone(), Arc::clone(&shared));
        forward(request, sender, shared)
    });
    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(client), service)
        .await?;
    Ok(())
}

/// One call: the first matching rule's fault, else the runtime's own answer.
async fn forward(
    request: Request<Incoming>,
    mut sender: hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    shared: Arc<Shared>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let _in_flight = InFlight::enter(&shared);
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let method = parts.uri.path().to_string();
    let fault = lock(&shared.rules)
        .iter()
        .find(|rule| rule.matches(&method, &body))
        .map(|rule| rule.fault.clone());
    lock(&shared.seen).push(Seen {
        method,
        body: body.to_vec(),
        fault: fault.clone(),
    });
    let mut drop_containing = None;
    match fault {
        Some(Fault::Stall) => std::future::pending().await,
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::Reset) => return Err(ProxyError::from("fault proxy: stream reset")),
        Some(Fault::Status(code)) => return Ok(status_response(code)),
        Some(Fault::DropMessages(needle)) => drop_containing = Some(needle),
        None => {}
    }
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    Ok(match drop_containing {
        None => response.map(BodyExt::boxed),
        Some(needle) => {
            let shared = Arc::clone(&shared);
            response.map(|body| filter_messages(body, needle, shared))
        }
    })
}

/// The answer `body` without the gRPC messages (5-byte header, then the message) that
/// contain `needle`; the frames are re-cut at message boundaries, trailers pass.
fn filter_messages(mut body: Incoming, needle: Vec<u8>, shared: Arc<Shared>) -> ProxyBody {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut buffer = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(error) => {
                    let _ = tx.send(Err(error)).await;
                    return;
                }
            };
            let frame = match frame.into_data() {
                Ok(data) => {
                    buffer.extend_from_slice(&data);
                    send_kept_messages(&mut buffer, &needle, &shared, &tx).await;
                    continue;
                }
                Err(frame) => frame,
            };
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
        }
    });
    StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed()
}

/// Sends on every whole message in `buffer` that does not contain `needle`.
async fn send_kept_messages(
    buffer: &mut bytes::BytesMut,
    needle: &[u8],
    shared: &Shared,
    tx: &tokio::sync::mpsc::Sender<Result<hyper::body::Frame<Bytes>, hyper::Error>>,
) {
    while buffer.len() >= 5 {
        let len = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
        if buffer.len() < 5 + len {
            return;
        }
        let message = buffer.split_to(5 + len).freeze();
        if contains(&message, needle) {
            *lock(&shared.dropped) += 1;
        } else if tx
            .send(Ok(hyper::body::Frame::data(message)))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// A trailers-only gRPC answer with `code`.
fn status_response(code: i32) -> Response<ProxyBody> {
    let mut response = Response::new(
        Empty::<Bytes>::new()
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", code.into());
    headers.insert(
        "grpc-message",
        hyper::header::HeaderValue::from_static("fault%20proxy"),
    );
    response
}
