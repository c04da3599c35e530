//! The `[api]` section: where the data API, the gRPC API and the health listener listen,
//! and how long the view keeps what it shows. Owns the section's check; nothing here
//! binds a socket ([`super::ApiListeners::bind`] does).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::validate::{invalid, FieldError};

/// `[api]`: the local data API and the health listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Unix socket of the HTTP data API (`/v1/containers`, `/v1/watch`, `/v1/plugins`).
    pub socket: PathBuf,
    /// Permission bits of the data and gRPC sockets.
    pub socket_mode: u32,
    /// Optional loopback TCP address that also serves the data API.
    pub listen: Option<SocketAddr>,
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
            listen: None,
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
        if let Some(addr) = self.listen {
            if !addr.ip().is_loopback() {
                return Err(invalid(
                    "listen",
                    addr,
                    "the data API shows env names and container details, so it only listens on loopback; use 127.0.0.1 or ::1",
                ));
            }
        }
        if self.watch_buffer_events == 0 {
            return Err(invalid("watch_buffer_events", 0, "must be at least 1"));
        }
        Ok(())
    }
}
