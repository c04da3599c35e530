//! containerd's native API, on the CRI client's channel.
//!
//! Owns the one native call discovery needs today: `Snapshots.Mounts` for a container's
//! snapshot, from which it hands on the overlay `upperdir`. Every call carries the
//! `containerd-namespace: k8s.io` header (CRI's namespace) and the per-call timeout. The
//! event stream (issue 5) will live here too. It never talks CRI and keeps no cache (the
//! upperdir cache belongs to discovery).

use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::MountsRequest;
use tonic::transport::Channel;

use crate::cri::{CALL_TIMEOUT, MAX_MESSAGE_BYTES};

/// The containerd namespace CRI objects live in.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The gRPC header containerd reads the namespace from.
const NAMESPACE_HEADER: &str = "containerd-namespace";

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
