//! CRI client over the runtime's unix socket.
//!
//! Owns the connection to the runtime: socket precedence, version negotiation (`runtime.v1`
//! first, then `runtime.v1alpha2`), message size and per-call timeouts. It hands on plain,
//! version-free values ([`ContainerSummary`], [`SandboxSummary`], [`ContainerStatus`],
//! defined in `values`) so nothing above this module knows which CRI version the runtime
//! speaks. It does not interpret the verbose info (that is `convert`) and keeps no state
//! between calls.

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

mod values;

pub use values::{ContainerStatus, ContainerSummary, CriState, LinuxResources, SandboxSummary};

/// Socket used when no flag, environment variable or config names one.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";
/// Environment variable that overrides the config's socket (the reference's name).
pub const SOCKET_ENV: &str = "CONTAINERD_SOCK_PATH";
/// Largest gRPC message accepted or sent: verbose infos of big pods exceed tonic's 4 MiB.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Timeout of one unary call (Version, ContainerStatus, Snapshots.Mounts).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of one list call (ListContainers, ListPodSandbox).
pub const LIST_TIMEOUT: Duration = Duration::from_secs(20);
/// Timeout of a whole full fetch (lists plus every status).
pub const FULL_FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// Picks the runtime socket: `--socket`, then `$CONTAINERD_SOCK_PATH`, then the config,
/// then [`DEFAULT_SOCKET`]. An empty environment value counts as unset.
pub fn resolve_socket(
    flag: Option<&Path>,
    env: Option<OsString>,
    config: Option<&Path>,
) -> PathBuf {
    if let Some(path) = flag {
        return path.to_path_buf();
    }
    if let Some(value) = env.filter(|v| !v.is_empty()) {
        return PathBuf::from(value);
    }
    if let Some(path) = config {
        return path.to_path_buf();
    }
    PathBuf::from(DEFAULT_SOCKET)
}

/// Errors of the CRI client. Each names the socket or the call and what to check.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// Nothing exists at the socket path.
    #[error("runtime socket {path} does not exist; check that containerd (or the CRI runtime) is running and pass --socket or set CONTAINERD_SOCK_PATH")]
    SocketMissing {
        /// The socket path.
        path: PathBuf,
    },
    /// The path exists but is not a unix socket.
    #[error("runtime socket {path} is not a unix socket; point --socket at the runtime's gRPC socket (e.g. /run/containerd/containerd.sock)")]
    NotASocket {
        /// The offending path.
        path: PathBuf,
    },
    /// The socket exists but this user may not open it.
    #[error("permission denied on runtime socket {path}; run as root or as a user allowed to open the socket")]
    PermissionDenied {
        /// The socket path.
        path: PathBuf,
    },
    /// The socket could not be stat'ed or connected for another reason.
    #[error("cannot connect to runtime socket {path}: {error}; check that the runtime is running and listening there")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The underlying error (in the message, so not repeated as a source).
        error: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Something listens on the socket but it does not answer gRPC/CRI.
    #[error("runtime socket {path} does not speak CRI gRPC ({detail}); check that it is the runtime's gRPC socket, not its ttrpc or another service's")]
    NotCri {
        /// The socket path.
        path: PathBuf,
        /// What the peer answered.
        detail: String,
    },
    /// A gRPC server answers but serves neither CRI version.
    #[error("runtime at {path} answers neither CRI runtime.v1 nor runtime.v1alpha2; check that the runtime's CRI plugin is enabled")]
    NoSupportedVersion {
        /// The socket path.
        path: PathBuf,
    },
    /// A call returned a gRPC error.
    #[error("CRI {call} failed: {status}")]
    Rpc {
        /// The CRI method.
        call: &'static str,
        /// The container or sandbox id, when the call has one.
        id: Option<String>,
        /// The gRPC status.
        status: Box<tonic::Status>,
    },
    /// A call did not answer within its timeout.
    #[error("CRI {call} timed out after {timeout:?}; the runtime is overloaded or hung")]
    Timeout {
        /// The CRI method.
        call: &'static str,
        /// The timeout that expired.
        timeout: Duration,
    },
}

impl CriError {
    /// True when the container or sandbox the call named does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Rpc { status, .. } if status.code() == tonic::Code::NotFound)
    }
}

/// The CRI API version the runtime answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CriApiVersion {
    /// `runtime.v1`.
    V1,
    /// `runtime.v1alpha2`.
    V1Alpha2,
}

impl CriApiVersion {
    /// Both, in the order they are tried.
    pub const ALL: [Self; 2] = [Self::V1, Self::V1Alpha2];

    /// The package name's version part (`v1`, `v1alpha2`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V1Alpha2 => "v1alpha2",
        }
    }
}

/// What the runtime said in `Version`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// Runtime name (`containerd`, `cri-o`).
    pub runtime_name: String,
    /// Runtime version.
    pub runtime_version: String,
    /// CRI API version string the runtime reports.
    pub runtime_api_version: String,
}

/// Runs the same call on whichever CRI version was negotiated: `runtime.v1` and
/// `runtime.v1alpha2` have the same messages in different modules, so the body is written
/// once with `$client` (a clone of the client) and `$cri` (the version's module).
macro_rules! on_api {
    ($api:expr, |$client:ident, $cri:ident| $body:block) => {
        match &$api {
            Api::V1(client) => {
                let mut $client = client.clone();
                use k8s_cri::v1 as $cri;
                $body
            }
            Api::V1Alpha2(client) => {
                let mut $client = client.clone();
                use k8s_cri::v1alpha2 as $cri;
                $body
            }
        }
    };
}

#[derive(Debug, Clone)]
enum Api {
    V1(k8s_cri::v1::runtime_service_client::RuntimeServiceClient<Channel>),
    V1Alpha2(k8s_cri::v1alpha2::runtime_service_client::RuntimeServiceClient<Channel>),
}

/// A connected CRI client. Cheap to clone; clones share the channel.
#[derive(Debug, Clone)]
pub struct CriClient {
    api: Api,
    channel: Channel,
    socket: PathBuf,
    version: RuntimeVersion,
}

/// Runs `fut` under `timeout`, mapping both failure kinds to [`CriError`].
async fn timed<T>(
    call: &'static str,
    id: Option<&str>,
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, CriError> {
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(timeout, fut).await;
    let error = match &result {
        Err(_) => Some("timeout"),
        Ok(Err(_)) => Some("rpc"),
        Ok(Ok(_)) => None,
    };
    crate::runtime::metrics::rpc_finished(call, started.elapsed(), error);
    match result {
        Err(_) => Err(CriError::Timeout { call, timeout }),
        Ok(Err(status)) => Err(CriError::Rpc {
            call,
            id: id.map(str::to_owned),
            status: Box::new(status),
        }),
        Ok(Ok(response)) => Ok(response.into_inner()),
    }
}

/// Checks the socket path before connecting, so the common mistakes get a precise error.
fn check_socket(path: &Path) -> Result<(), CriError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CriError::SocketMissing {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(CriError::PermissionDenied {
                path: path.to_path_buf(),
            })
        }
        Err(e) => Err(CriError::Connect {
            path: path.to_path_buf(),
            error: Box::new(e),
        }),
        Ok(meta) if !meta.file_type().is_socket() => Err(CriError::NotASocket {
            path: path.to_path_buf(),
        }),
        Ok(_) => Ok(()),
    }
}

/// Opens a tonic channel over the unix socket at `path`.
///
/// # Errors
/// [`CriError`] naming the socket: missing, not a socket, permission denied, nothing
/// listening, or a peer that does not speak HTTP/2 gRPC.
pub async fn connect_channel(path: &Path) -> Result<Channel, CriError> {
    check_socket(path)?;
    let socket = path.to_path_buf();
    // A plain connect first, so refusal and permission problems get their own error.
    match tokio::time::timeout(CALL_TIMEOUT, tokio::net::UnixStream::connect(path)).await {
        Err(_) => {
            return Err(CriError::NotCri {
                path: socket,
                detail: "connect did not complete within 10s".into(),
            })
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(CriError::PermissionDenied { path: socket })
        }
        Ok(Err(e)) => {
            return Err(CriError::Connect {
                path: socket,
                error: Box::new(e),
            })
        }
        Ok(Ok(_probe)) => {}
    }
    let endpoint = Endpoint::try_from("http://[::]:50051")
        .map_err(|e| CriError::Connect {
            path: socket.clone(),
            error: Box::new(e),
        })?
        .connect_timeout(CALL_TIMEOUT);
    let connector_path = socket.clone();
    let connect = endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
        let path = connector_path.clone();
        async move {
            Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
        }
    }));
    match tokio::time::timeout(CALL_TIMEOUT, connect).await {
        Err(_) => Err(CriError::NotCri {
            path: socket,
            detail: "no HTTP/2 answer within 10s".into(),
        }),
        Ok(Err(e)) => {
            // The socket accepted a connection, so a failure here is the protocol.
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                detail = inner.to_string();
                source = inner.source();
            }
            Err(CriError::NotCri {
                path: socket,
                detail,
            })
        }
        Ok(Ok(channel)) => Ok(channel),
    }
}

/// Classifies a failed `Version` call: unimplemented means "try the other version".
enum Probe {
    Answered(RuntimeVersion),
    Unimplemented,
}

fn probe_error(path: &Path, status: tonic::Status) -> CriError {
    let detail = format!("{}: {}", status.code(), status.message());
    CriError::NotCri {
        path: path.to_path_buf(),
        detail,
    }
}

impl CriClient {
    /// Connects to the socket and negotiates the CRI version through `Version`:
    /// `runtime.v1` first, then `runtime.v1alpha2`.
    ///
    /// # Errors
    /// A missing socket, a non-socket path, permission denied, a peer that does not speak
    /// gRPC, and a runtime that serves neither version each give their own [`CriError`].
    pub async fn connect(path: &Path) -> Result<Self, CriError> {
        let channel = connect_channel(path).await?;
        Self::negotiate(path, channel).await
    }

    /// Negotiates the CRI version on an open channel.
    ///
    /// # Errors
    /// As [`CriClient::connect`], minus the socket checks.
    pub async fn negotiate(path: &Path, channel: Channel) -> Result<Self, CriError> {
        let v1 = k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut probe_v1 = v1.clone();
        let request = k8s_cri::v1::VersionRequest {
            version: "v1".into(),
        };
        let answer = tokio::time::timeout(CALL_TIMEOUT, probe_v1.version(request)).await;
        let first = match answer {
            Err(_) => {
                return Err(CriError::NotCri {
                    path: path.to_path_buf(),
                    detail: "Version did not answer within 10s".into(),
                })
            }
            Ok(Ok(r)) => {
                let r = r.into_inner();
                Probe::Answered(RuntimeVersion {
                    runtime_name: r.runtime_name,
                    runtime_version: r.runtime_version,
                    runtime_api_version: r.runtime_api_version,
                })
            }
            Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => Probe::Unimplemented,
            Ok(Err(s)) => return Err(probe_error(path, s)),
        };
        if let Probe::Answered(version) = first {
            return Ok(Self {
                api: Api::V1(v1),
                channel,
                socket: path.to_path_buf(),
                version,
            });
        }
        let alpha =
            k8s_cri::v1alpha2::runtime_service_client::RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let mut probe_alpha = alpha.clone();
        let request = k8s_cri::v1alpha2::VersionRequest {
            version: "v1alpha2".into(),
        };
        match tokio::time::timeout(CALL_TIMEOUT, probe_alpha.version(request)).await {
            Err(_) => Err(CriError::NotCri {
                path: path.to_path_buf(),
                detail: "Version did not answer within 10s".into(),
            }),
            Ok(Ok(r)) => {
                let r = r.into_inner();
                Ok(Self {
                    api: Api::V1Alpha2(alpha),
                    channel,
                    socket: path.to_path_buf(),
                    version: RuntimeVersion {
                        runtime_name: r.runtime_name,
                        runtime_version: r.runtime_version,
                        runtime_api_version: r.runtime_api_version,
                    },
                })
            }
            Ok(Err(s)) if s.code() == tonic::Code::Unimplemented => {
                Err(CriError::NoSupportedVersion {
                    path: path.to_path_buf(),
                })
            }
            Ok(Err(s)) => Err(probe_error(path, s)),
        }
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The negotiated CRI API version.
    pub fn api_version(&self) -> CriApiVersion {
        match self.api {
            Api::V1(_) => CriApiVersion::V1,
            Api::V1Alpha2(_) => CriApiVersion::V1Alpha2,
        }
    }

    /// What the runtime answered to `Version` at connect time.
    pub fn runtime_version(&self) -> &RuntimeVersion {
        &self.version
    }

    /// The underlying channel, for the containerd native client to share.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// `ListContainers` without a filter.
    ///
    /// # Errors
    /// [`CriError::Rpc`] or [`CriError::Timeout`].
    pub async fn list_containers(&self) -> Result<Vec<ContainerSummary>, CriError> {
        on_api!(self.api, |c, cri| {
            let request = cri::ListContainersRequest { filter: None };
            let r = timed(
                "ListContainers",
                None,
                LIST_TIMEOUT,
                c.list_containers(request),
            )
            .await?;
            Ok(r.containers.into_iter().map(Into::into).collect())
        })
    }

    /// `ListPodSandbox` without a filter.
    ///
    /// # Errors
    /// [`CriError::Rpc`] or [`CriError::Timeout`].
    pub async fn list_sandboxes(&self) -> Result<Vec<SandboxSummary>, CriError> {
        on_api!(self.api, |c, cri| {
            let request = cri::ListPodSandboxRequest { filter: None };
            let r = timed(
                "ListPodSandbox",
                None,
                LIST_TIMEOUT,
                c.list_pod_sandbox(request),
            )
            .await?;
            Ok(r.items.into_iter().map(Into::into).collect())
        })
    }

    /// `PodSandboxStatus`: the pod's IPs, `network.ip` first, then `additional_ips`
    /// (empty when the runtime reports none, as for most host-network pods).
    ///
    /// # Errors
    /// [`CriError::Rpc`] (see [`CriError::is_not_found`]) or [`CriError::Timeout`].
    pub async fn pod_ips(&self, sandbox_id: &str) -> Result<Vec<String>, CriError> {
        on_api!(self.api, |c, cri| {
            let request = cri::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox_id.to_owned(),
                verbose: false,
            };
            let r = timed(
                "PodSandboxStatus",
                Some(sandbox_id),
                CALL_TIMEOUT,
                c.pod_sandbox_status(request),
            )
            .await?;
            let network = r.status.and_then(|s| s.network).unwrap_or_default();
            Ok(std::iter::once(network.ip)
                .chain(network.additional_ips.into_iter().map(|p| p.ip))
                .filter(|ip| !ip.is_empty())
                .collect())
        })
    }

    /// `ContainerStatus(verbose = true)`.
    ///
    /// # Errors
    /// [`CriError::Rpc`] (see [`CriError::is_not_found`]) or [`CriError::Timeout`].
    pub async fn container_status(&self, id: &str) -> Result<ContainerStatus, CriError> {
        const CALL: &str = "ContainerStatus";
        let missing = || CriError::Rpc {
            call: CALL,
            id: Some(id.to_owned()),
            status: Box::new(tonic::Status::not_found("runtime returned no status")),
        };
        on_api!(self.api, |c, cri| {
            let request = cri::ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose: true,
            };
            let r = timed(CALL, Some(id), CALL_TIMEOUT, c.container_status(request)).await?;
            let status = r.status.ok_or_else(missing)?;
            Ok((status, r.info).into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_env_config_and_default() {
        let got = resolve_socket(
            Some(Path::new("/flag.sock")),
            Some("/env.sock".into()),
            Some(Path::new("/cfg.sock")),
        );
        assert_eq!(got, PathBuf::from("/flag.sock"));
    }

    #[test]
    fn env_wins_over_config() {
        let got = resolve_socket(None, Some("/env.sock".into()), Some(Path::new("/cfg.sock")));
        assert_eq!(got, PathBuf::from("/env.sock"));
    }

    #[test]
    fn empty_env_is_unset_and_config_wins_over_default() {
        let got = resolve_socket(None, Some("".into()), Some(Path::new("/cfg.sock")));
        assert_eq!(got, PathBuf::from("/cfg.sock"));
        assert_eq!(
            resolve_socket(None, None, None),
            PathBuf::from(DEFAULT_SOCKET)
        );
    }

    #[tokio::test]
    async fn missing_socket_is_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nope.sock");
        let err = CriClient::connect(&path).await.err().ok_or("connected")?;
        assert!(matches!(err, CriError::SocketMissing { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        Ok(())
    }

    #[tokio::test]
    async fn regular_file_is_not_a_socket() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("file");
        std::fs::write(&path, b"x")?;
        let err = CriClient::connect(&path).await.err().ok_or("connected")?;
        assert!(matches!(err, CriError::NotASocket { .. }), "{err}");
        Ok(())
    }

    #[tokio::test]
    async fn socket_that_is_not_grpc_is_not_cri() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("plain.sock");
        let listener = tokio::net::UnixListener::bind(&path)?;
        // A peer that accepts and answers garbage, then closes.
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                use tokio::io::AsyncWriteExt;
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let err = CriClient::connect(&path).await.err().ok_or("connected")?;
        assert!(matches!(err, CriError::NotCri { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn grpc_server_without_cri_answers_neither_version(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("grpc.sock");
        let listener = tokio::net::UnixListener::bind(&path)?;
        let incoming = futures::stream::unfold(listener, |l| async move {
            Some((l.accept().await.map(|(s, _)| s), l))
        });
        // A gRPC server that serves no service: every method is UNIMPLEMENTED.
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(tonic::service::Routes::default())
                .serve_with_incoming(incoming),
        );
        let err = CriClient::connect(&path).await.err().ok_or("connected")?;
        assert!(matches!(err, CriError::NoSupportedVersion { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("neither CRI runtime.v1 nor runtime.v1alpha2"),
            "{err}"
        );
        Ok(())
    }
}
