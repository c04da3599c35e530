//! containerd's native API, on the CRI client's channel.
//!
//! Owns the one native call discovery needs today: `Snapshots.Mounts` for a container's
//! snapshot, from which it hands on the overlay `upperdir`. Every call carries the
//! `containerd-namespace: k8s.io` header (CRI's namespace) and the per-call timeout. It
//! also opens the event stream (`Events.Subscribe`) and tells containers from sandboxes
//! (`Containers.Get`, the `io.cri-containerd.kind` label) for [`crate::runtime::events`].
//! It never talks CRI and keeps no cache (the upperdir and kind caches belong to their
//! users).

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::services::v1::{GetContainerRequest, SubscribeRequest};
use containerd_client::types::Envelope;
use tonic::transport::Channel;

use crate::runtime::cri::{CALL_TIMEOUT, MAX_MESSAGE_BYTES};

/// The containerd namespace CRI objects live in.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The gRPC header containerd reads the namespace from.
const NAMESPACE_HEADER: &str = "containerd-namespace";
/// The label containerd's CRI plugin puts on every container: `container` or `sandbox`.
pub const KIND_LABEL: &str = "io.cri-containerd.kind";

/// Errors of the native client.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    /// `Snapshots.Mounts` failed.
    #[error("containerd Snapshots.Mounts for snapshot {key} (snapshotter {snapshotter}) failed: {status}")]
    Mounts {
        /// Snapshot key (the container id under CRI).
        key: String,
        /// Snapshotter name.
        snapshotter: String,
        /// The gRPC status.
        status: Box<tonic::Status>,
    },
    /// `Containers.Get` failed.
    #[error("containerd Containers.Get for container {id} failed: {status}")]
    Get {
        /// The container id.
        id: String,
        /// The gRPC status.
        status: Box<tonic::Status>,
    },
    /// `Containers.Get` did not answer in time.
    #[error("containerd Containers.Get for container {id} timed out after 10s; containerd is overloaded or hung")]
    GetTimeout {
        /// The container id.
        id: String,
    },
    /// `Events.Subscribe` was refused.
    #[error("containerd Events.Subscribe failed: {status}; check that the socket is containerd's and the events service is enabled")]
    Subscribe {
        /// The gRPC status.
        status: Box<tonic::Status>,
    },
    /// The call did not answer in time.
    #[error("containerd Snapshots.Mounts for snapshot {key} timed out after 10s; containerd is overloaded or hung")]
    Timeout {
        /// Snapshot key.
        key: String,
    },
}

/// A containerd native client sharing the CRI channel. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NativeClient {
    channel: Channel,
}

impl NativeClient {
    /// Wraps the channel the CRI client already opened.
    pub fn new(channel: Channel) -> Self {
        Self { channel }
    }

    /// The overlay `upperdir` of snapshot `key`, or `None` when its mounts have none
    /// (the `native` snapshotter, for one).
    ///
    /// # Errors
    /// [`ContainerdError`] when the call fails or times out.
    pub async fn upper_dir(
        &self,
        snapshotter: &str,
        key: &str,
    ) -> Result<Option<String>, ContainerdError> {
        let mut client =
            SnapshotsClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let mut request = tonic::Request::new(MountsRequest {
            snapshotter: snapshotter.to_owned(),
            key: key.to_owned(),
        });
        request.metadata_mut().insert(
            NAMESPACE_HEADER,
            tonic::metadata::MetadataValue::from_static(CRI_NAMESPACE),
        );
        let answer = tokio::time::timeout(CALL_TIMEOUT, client.mounts(request))
            .await
            .map_err(|_| ContainerdError::Timeout {
                key: key.to_owned(),
            })?
            .map_err(|status| ContainerdError::Mounts {
                key: key.to_owned(),
                snapshotter: snapshotter.to_owned(),
                status: Box::new(status),
            })?;
        Ok(upper_dir_of(
            answer
                .into_inner()
                .mounts
                .iter()
                .flat_map(|m| m.options.iter().map(String::as_str)),
        ))
    }

    /// Whether `id` is a CRI container or a pod sandbox, from its `io.cri-containerd.kind`
    /// label (`Containers.Get`); `None` when containerd no longer holds it or the label is
    /// missing (not a CRI object).
    ///
    /// # Errors
    /// [`ContainerdError`] when the call fails (other than not found) or times out.
    pub async fn container_kind(&self, id: &str) -> Result<Option<ContainerKind>, ContainerdError> {
        let mut client = ContainersClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let request = with_namespace(GetContainerRequest { id: id.to_owned() });
        let answer = match tokio::time::timeout(CALL_TIMEOUT, client.get(request)).await {
            Err(_) => {
                return Err(ContainerdError::GetTimeout { id: id.to_owned() });
            }
            Ok(Err(status)) if status.code() == tonic::Code::NotFound => return Ok(None),
            Ok(Err(status)) => {
                return Err(ContainerdError::Get {
                    id: id.to_owned(),
                    status: Box::new(status),
                })
            }
            Ok(Ok(answer)) => answer.into_inner(),
        };
        Ok(answer.container.and_then(|c| {
            c.labels
                .get(KIND_LABEL)
                .map(|k| ContainerKind::from_label(k))
        }))
    }

    /// Subscribes to the event stream of namespace `k8s.io`, limited to `topics`.
    ///
    /// Deliberately without a timeout: containerd (grpc-go) sends the stream's headers
    /// with the first event, so this resolves only when an event arrives, however long
    /// that takes; the subscription is live once the request has reached containerd. A
    /// broken connection ends it with an error.
    ///
    /// # Errors
    /// [`ContainerdError::Subscribe`] when the subscription is refused or the connection
    /// breaks first.
    pub async fn subscribe(
        &self,
        topics: &[&str],
    ) -> Result<tonic::Streaming<Envelope>, ContainerdError> {
        let mut client =
            EventsClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let filters = topics.iter().map(|t| format!("topic==\"{t}\"")).collect();
        let request = with_namespace(SubscribeRequest { filters });
        client
            .subscribe(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|status| ContainerdError::Subscribe {
                status: Box::new(status),
            })
    }
}

/// What a containerd container is under CRI (its `io.cri-containerd.kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// A workload container.
    Container,
    /// A pod sandbox (the pause container).
    Sandbox,
}

impl ContainerKind {
    /// The kind named by a label value; anything but `sandbox` is a container.
    pub fn from_label(value: &str) -> Self {
        if value == "sandbox" {
            Self::Sandbox
        } else {
            Self::Container
        }
    }
}

/// A request carrying the `containerd-namespace: k8s.io` header.
fn with_namespace<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        NAMESPACE_HEADER,
        tonic::metadata::MetadataValue::from_static(CRI_NAMESPACE),
    );
    request
}

/// The value of the first `upperdir=` option.
pub fn upper_dir_of<'a>(options: impl IntoIterator<Item = &'a str>) -> Option<String> {
    options
        .into_iter()
        .find_map(|o| o.strip_prefix("upperdir="))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upperdir_is_read_from_overlay_options() {
        let opts = [
            "index=off",
            "workdir=/r/snapshots/4/work",
            "upperdir=/r/snapshots/4/fs",
            "lowerdir=/r/snapshots/2/fs",
        ];
        assert_eq!(upper_dir_of(opts), Some("/r/snapshots/4/fs".to_owned()));
    }

    #[test]
    fn bind_mount_has_no_upperdir() {
        assert_eq!(upper_dir_of(["rbind", "rw"]), None);
    }
}
