//! The `[api]` section: where the data API, the gRPC API and the health listener listen,
//! who may use them (socket mode and group, the TCP listener's bearer token and TLS), and
//! how long the view keeps what it shows. Owns the section's check; nothing here binds a
//! socket ([`super::ApiListeners::bind`] does).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::tls::{self, TlsFileError};
use crate::validate::{invalid, FieldError};

/// `[api]`: the local data API and the health listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Unix socket of the HTTP data API (`/v1/containers`, `/v1/watch`, `/v1/plugins`).
    pub socket: PathBuf,
    /// Permission bits of the data and gRPC sockets.
    pub socket_mode: u32,
    /// Group id given the data and gRPC sockets (with `socket_mode = 0o660`, that group's
    /// members may connect); unset keeps the agent's own group.
    pub socket_gid: Option<u32>,
    /// Optional TCP address that also serves the data API: loopback, or any address with
    /// both `token_file` and `tls`.
    pub listen: Option<SocketAddr>,
    /// File holding the bearer token that every request to `listen` must carry
    /// (`Authorization: Bearer <token>`); others get 401.
    pub token_file: Option<PathBuf>,
    /// Serves `listen` over TLS with this certificate and key.
    pub tls: Option<ApiTlsConfig>,
    /// Unix socket of the gRPC API (`gannet.v1.Agent`).
    pub grpc_socket: PathBuf,
    /// Address of the health listener (`/healthz`, `/readyz`, `/metrics`).
    pub health_listen: SocketAddr,
    /// Seconds a removed container stays visible under `?state=removed`.
    pub removed_retention_secs: u64,
    /// Events a watcher may lag behind before it is disconnected.
    pub watch_buffer_events: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/gannet/api.sock"),
            socket_mode: 0o600,
            socket_gid: None,
            listen: None,
            token_file: None,
            tls: None,
            grpc_socket: PathBuf::from("/run/gannet/grpc.sock"),
            health_listen: SocketAddr::from(([0, 0, 0, 0], 9464)),
            removed_retention_secs: 120,
            watch_buffer_events: 1024,
        }
    }
}

impl ApiConfig {
    /// Checks what serde cannot. Fields are named relative to the section.
    ///
    /// # Errors
    /// The first field that cannot be used.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.socket_mode > 0o777 {
            return Err(invalid(
                "socket_mode",
                format!("{:o}", self.socket_mode),
                "is not a permission mode; use an octal number like 0o600",
            ));
        }
        match self.listen {
            Some(addr) if !addr.ip().is_loopback() => {
                if self.token_file.is_none() || self.tls.is_none() {
                    return Err(invalid(
                        "listen",
                        addr,
                        "the data API shows env names and container details, so beyond loopback it needs token_file and tls; set both, or use 127.0.0.1 or ::1",
                    ));
                }
            }
            Some(_) => {}
            None => {
                for (field, set) in [
                    ("token_file", self.token_file.is_some()),
                    ("tls", self.tls.is_some()),
                ] {
                    if set {
                        return Err(invalid(
                            field,
                            "set",
                            "applies to the TCP listener only; set listen too, or remove it",
                        ));
                    }
                }
            }
        }
        if let Some(path) = &self.token_file {
            tls::read_secret("token_file", path).map_err(file_field_error)?;
        }
        if let Some(tls) = &self.tls {
            tls.server_config().map_err(file_field_error)?;
        }
        if self.watch_buffer_events == 0 {
            return Err(invalid("watch_buffer_events", 0, "must be at least 1"));
        }
        Ok(())
    }
}

/// `[api.tls]`: the certificate the TCP listener presents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTlsConfig {
    /// Certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
}

impl ApiTlsConfig {
    /// Reads both files into a server config.
    ///
    /// # Errors
    /// A file error naming `tls.cert_file` or `tls.key_file`.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsFileError> {
        tls::server_config(
            ("tls.cert_file", &self.cert_file),
            ("tls.key_file", &self.key_file),
        )
    }
}

fn file_field_error(e: TlsFileError) -> FieldError {
    FieldError::File {
        field: e.field,
        path: e.path,
        problem: e.problem,
    }
}
