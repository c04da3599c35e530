//! The local API: the HTTP data API on a unix socket (mode 0600 by default, optionally
//! also TCP: loopback, or beyond it with a bearer token and TLS), the gRPC API on its own
//! unix socket, and the health listener (`/healthz`, `/readyz`, `/metrics`) on its own
//! address.
//!
//! It owns the after-chain view of the table ([`ContainerView`]) that the run loop feeds,
//! and the listeners. Listeners are bound by [`ApiListeners::bind`] before discovery
//! starts, so an address in use stops the start. It never calls the runtime or plugins.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, Instrument};

mod auth;
mod config;
mod data;
pub(crate) use data::parse_filter;
pub mod grpc;
mod health;
mod tls_listener;
mod view;

use auth::BearerToken;
pub use config::{ApiConfig, ApiTlsConfig};
pub use health::Health;
pub use view::{ContainerFilter, ContainerView, PluginInfo, PluginSource, ViewEvent};

use crate::record::{EnvValues, EventIds};
use crate::tls::{self, TlsFileError};
use tls_listener::TlsListener;

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Another process listens there.
    #[error("{field} {address}: address already in use; stop the other process or choose another address")]
    InUse {
        /// Config field (`api.health_listen`).
        field: &'static str,
        /// The address or socket path.
        address: String,
    },
    /// A token or TLS file of `[api]` cannot be used.
    #[error("api.{0}; fix the file or the setting")]
    File(TlsFileError),
    /// Binding failed for another reason.
    #[error("{field} {address}: cannot listen: {source}; fix the address or its directory's permissions")]
    Bind {
        /// Config field.
        field: &'static str,
        /// The address or socket path.
        address: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiContext {
    /// The after-chain table.
    pub view: ContainerView,
    /// Event ids for watch lines.
    pub ids: Arc<EventIds>,
    /// The node name.
    pub node: String,
    include_env: Arc<AtomicBool>,
    /// Ends watch streams on shutdown.
    pub stop: CancellationToken,
}

impl ApiContext {
    /// A context over `view`.
    pub fn new(
        view: ContainerView,
        ids: Arc<EventIds>,
        node: &str,
        env_values: EnvValues,
        stop: CancellationToken,
    ) -> Self {
        let ctx = Self {
            view,
            ids,
            node: node.to_string(),
            include_env: Arc::new(AtomicBool::new(false)),
            stop,
        };
        ctx.set_env_values(env_values);
        ctx
    }

    /// Changes redaction (on reload).
    pub fn set_env_values(&self, env_values: EnvValues) {
        self.include_env
            .store(env_values == EnvValues::Include, Ordering::Relaxed);
    }

    fn env_values(&self) -> EnvValues {
        if self.include_env.load(Ordering::Relaxed) {
            EnvValues::Include
        } else {
            EnvValues::Redact
        }
    }
}

/// The data API's TCP listener and what guards it.
struct DataTcp {
    listener: TcpListener,
    token: Option<BearerToken>,
    tls: Option<rustls::ServerConfig>,
}

/// Every listener, bound and ready to serve.
pub struct ApiListeners {
    data_unix: UnixListener,
    data_unix_path: PathBuf,
    data_tcp: Option<DataTcp>,
    grpc_unix: UnixListener,
    grpc_unix_path: PathBuf,
    health: TcpListener,
}

fn bind_unix(
    field: &'static str,
    path: &Path,
    mode: u32,
    gid: Option<u32>,
) -> Result<UnixListener, ApiError> {
    let address = path.display().to_string();
    let bind_err = |source| ApiError::Bind {
        field,
        address: address.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(bind_err)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ApiError::InUse {
                field,
                address: address.clone(),
            });
        }
        // A stale socket from a previous run.
        std::fs::remove_file(path).map_err(bind_err)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(bind_err)?;
    if gid.is_some() {
        std::os::unix::fs::chown(path, None, gid).map_err(bind_err)?;
    }
    Ok(listener)
}

async fn bind_tcp(
    field: &'static str,
    addr: std::net::SocketAddr,
) -> Result<TcpListener, ApiError> {
    TcpListener::bind(addr).await.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            ApiError::InUse {
                field,
                address: addr.to_string(),
            }
        } else {
            ApiError::Bind {
                field,
                address: addr.to_string(),
                source,
            }
        }
    })
}

impl ApiListeners {
    /// Binds every listener of the config.
    ///
    /// # Errors
    /// [`ApiError::InUse`] or [`ApiError::Bind`] naming the field and address.
    pub async fn bind(config: &ApiConfig) -> Result<Self, ApiError> {
        let health = bind_tcp("api.health_listen", config.health_listen).await?;
        let data_tcp = match config.listen {
            Some(addr) => {
                // The files first: a bad one stops the start before anything listens.
                let token = match &config.token_file {
                    Some(path) => Some(BearerToken::new(
                        tls::read_secret("token_file", path).map_err(ApiError::File)?,
                    )),
                    None => None,
                };
                let tls = match &config.tls {
                    Some(tls) => Some(tls.server_config().map_err(ApiError::File)?),
                    None => None,
                };
                let listener = bind_tcp("api.listen", addr).await?;
                Some(DataTcp {
                    listener,
                    token,
                    tls,
                })
            }
            None => None,
        };
        let (mode, gid) = (config.socket_mode, config.socket_gid);
        let data_unix = bind_unix("api.socket", &config.socket, mode, gid)?;
        let grpc_unix = bind_unix("api.grpc_socket", &config.grpc_socket, mode, gid)?;
        Ok(Self {
            data_unix,
            data_unix_path: config.socket.clone(),
            data_tcp,
            grpc_unix,
            grpc_unix_path: config.grpc_socket.clone(),
            health,
        })
    }

    /// The health listener's bound address (tests bind port 0).
    #[cfg(test)]
    pub fn health_addr(&self) -> Option<std::net::SocketAddr> {
        self.health.local_addr().ok()
    }

    /// The data TCP listener's bound address (tests bind port 0).
    #[cfg(test)]
    fn data_tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.data_tcp
            .as_ref()
            .and_then(|t| t.listener.local_addr().ok())
    }

    /// Serves everything until `ctx.stop` fires; the socket files are removed at the end.
    pub fn serve(
        self,
        ctx: ApiContext,
        health: Arc<Health>,
        registry: Arc<Registry>,
    ) -> Vec<JoinHandle<()>> {
        let stop = ctx.stop.clone();
        let mut tasks = Vec::new();
        let data = data::router(ctx.clone());
        {
            let (app, stop, path) = (data.clone(), stop.clone(), self.data_unix_path);
            let listener = self.data_unix;
            tasks.push(tokio::spawn(
                async move {
                    let served = axum::serve(listener, app)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .await;
                    if let Err(e) = served {
                        error!(message = "Data API stopped.", error = %e);
                    }
                    let _ = std::fs::remove_file(path);
                }
                .instrument(tracing::info_span!("stage", stage = "api")),
            ));
        }
        if let Some(tcp) = self.data_tcp {
            let app = match tcp.token {
                Some(token) => auth::require(data, token),
                None => data,
            };
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let served = match tcp.tls {
                    Some(config) => {
                        let listener = TlsListener::start(tcp.listener, config, stop.clone());
                        axum::serve(listener, app)
                            .with_graceful_shutdown(stop.cancelled_owned())
                            .await
                    }
                    None => {
                        axum::serve(tcp.listener, app)
                            .with_graceful_shutdown(stop.cancelled_owned())
                            .await
                    }
                };
                if let Err(e) = served {
                    error!(message = "Data API (TCP) stopped.", error = %e);
                }
            }));
        }
        {
            let app = health::router(health, registry);
            let (stop, listener) = (stop.clone(), self.health);
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                {
                    error!(message = "Health listener stopped.", error = %e);
                }
            }));
        }
        {
            let service = grpc::pb::agent_server::AgentServer::new(grpc::AgentService::new(ctx));
            let (listener, path) = (self.grpc_unix, self.grpc_unix_path);
            tasks.push(tokio::spawn(async move {
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                let served = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    error!(message = "gRPC API stopped.", error = %e);
                }
                let _ = std::fs::remove_file(path);
            }));
        }
        tasks
    }
}

#[cfg(test)]
mod tests;
