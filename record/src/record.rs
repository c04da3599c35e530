//! The container record: the plain value every stage hands to the next.
//!
//! Discovery builds it, the table diffs it, plugins read and edit it, outputs and the API
//! serialize it. Its JSON form (snake_case field names) is documented field by field in
//! `docs/record.md`; keep the two in step. The agent re-exports these types as
//! `gannet::record`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One container as Gannet reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerRecord {
    /// Full container id from the runtime.
    pub id: String,
    /// Container name from CRI metadata (`web`, not the pod name).
    pub name: String,
    /// `running` only when CRI says RUNNING and the process is alive.
    pub state: ContainerState,
    /// Host pid of the container's init process; 0 when it has none (exited, not started).
    pub pid: u32,
    /// When the runtime created the container.
    pub created: Option<Timestamp>,
    /// When the container's process started.
    pub started: Option<Timestamp>,
    /// When the container's process finished.
    pub finished: Option<Timestamp>,
    /// Exit code, once the container has exited.
    pub exit_code: Option<i32>,
    /// Runtime's reason for the exit (`Completed`, `Error`, `OOMKilled`).
    pub reason: Option<String>,
    /// The kubelet's restart count (`io.kubernetes.container.restartCount`).
    pub restart_count: u32,
    /// Sandbox (pod) id the container belongs to.
    pub sandbox_id: String,
    /// Runtime name from CRI `Version` (`containerd`, `cri-o`).
    pub runtime_name: String,
    /// Snapshotter that holds the container's root filesystem (`overlayfs`).
    pub snapshotter: Option<String>,
    /// Image name as given at creation, else the image reference.
    pub image: String,
    /// Image reference (`sha256:...`, or a repo digest) from CRI `imageRef`.
    pub image_digest: Option<String>,
    /// Absolute path of the container's log file on the host.
    pub log_path: String,
    /// Format of the log file: always `cri` for CRI runtimes.
    pub log_format: String,
    /// Cgroup path from the runtime spec (`linux.cgroupsPath`).
    pub cgroup_path: Option<String>,
    /// Container labels (CRI labels, fixed at creation).
    pub labels: BTreeMap<String, String>,
    /// Container annotations (CRI annotations, fixed at creation).
    pub annotations: BTreeMap<String, String>,
    /// Environment, minus the variables Kubernetes service links inject.
    pub env: BTreeMap<String, String>,
    /// Mounts from the runtime spec, paths cleaned.
    pub mounts: Vec<Mount>,
    /// Host path of the file mounted at `/etc/hosts`.
    pub hosts_path: Option<String>,
    /// Host path of the file mounted at `/etc/hostname`.
    pub hostname_path: Option<String>,
    /// Content of the hostname file, read through the host root and trimmed.
    pub hostname: Option<String>,
    /// Overlay `upperdir` of the container's snapshot: where its writes land.
    pub upper_dir: Option<String>,
    /// The container's root filesystem as mounted by the runtime.
    pub rootfs_dir: Option<String>,
    /// CPU and memory requests and limits, as the runtime applies them.
    pub resources: Resources,
    /// Ports the pod spec declares for this container (the kubelet's
    /// `io.kubernetes.container.ports` annotation).
    pub ports: Vec<ContainerPort>,
    /// Kubernetes identity, from the `io.kubernetes.*` labels and the sandbox.
    pub k8s: K8sInfo,
    /// Free-form key/values added by plugins.
    pub tags: BTreeMap<String, String>,
}

/// Kubernetes identity of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct K8sInfo {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod uid.
    pub pod_uid: String,
    /// Container name within the pod.
    pub container_name: String,
    /// Pod labels: sandbox labels minus `io.kubernetes.*` and `annotation.io.kubernetes.*`.
    pub pod_labels: BTreeMap<String, String>,
    /// Pod annotations, from the sandbox.
    pub pod_annotations: BTreeMap<String, String>,
    /// True for the pod's sandbox (pause) container.
    pub is_sandbox: bool,
    /// The pod's IPs from `PodSandboxStatus` (`network.ip`, then `additional_ips`); empty
    /// for a host-network pod on runtimes that report none.
    pub pod_ips: Vec<String>,
    /// When the pod's sandbox was created: the pod's start time on this node.
    pub pod_start_time: Option<Timestamp>,
    /// The node's name (`--node-name`, `NODE_NAME`, else the host's hostname).
    pub node_name: String,
    /// The workload that owns the pod, derived from the kubelet's labels and the pod
    /// name (see `docs/record.md` for each rule; all are inferences).
    pub owner: Owner,
}

/// The workload that owns a pod, as far as the pod's labels and name tell. Every field is
/// an inference from naming conventions of the Kubernetes controllers; `None` when the
/// labels do not match a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Owner {
    /// ReplicaSet: the pod name minus its random suffix, when it ends in
    /// `-<pod-template-hash>`.
    pub replicaset: Option<String>,
    /// Deployment: the ReplicaSet name minus `-<pod-template-hash>`.
    pub deployment: Option<String>,
    /// StatefulSet: the pod name minus `-<ordinal>`.
    pub statefulset: Option<String>,
    /// DaemonSet: the pod name minus its random suffix.
    pub daemonset: Option<String>,
    /// Job: the `batch.kubernetes.io/job-name` (or `job-name`) label.
    pub job: Option<String>,
    /// CronJob: the Job name minus its scheduled-time suffix.
    pub cronjob: Option<String>,
}

/// CPU and memory requests and limits of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// CPU request in millicores, from the CPU shares (`shares * 1000 / 1024`).
    pub cpu_request_millis: Option<u64>,
    /// CPU limit in millicores, from the CFS quota and period.
    pub cpu_limit_millis: Option<u64>,
    /// Memory request in bytes: only when the runtime is given one (`memory.min` with the
    /// kubelet's MemoryQoS); CRI carries no memory request otherwise.
    pub memory_request_bytes: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit_bytes: Option<u64>,
}

/// One port a container declares.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerPort {
    /// The port's name, when it has one.
    pub name: Option<String>,
    /// The port number in the container.
    pub container_port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
}

/// One mount of the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mount {
    /// Host-side source path (cleaned).
    pub source: String,
    /// Path inside the container (cleaned).
    pub destination: String,
    /// Mount type (`bind`, `proc`, `tmpfs`, ...).
    #[serde(rename = "type")]
    pub kind: String,
}

/// Container state as Gannet reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created but not started.
    Created,
    /// CRI says RUNNING and the process is alive.
    Running,
    /// Exited, or CRI says RUNNING but the process is gone.
    Exited,
    /// The runtime did not say.
    #[default]
    Unknown,
}

impl ContainerState {
    /// The lowercase name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Exited => "exited",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to a container: the event a record travels with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// First seen.
    #[default]
    Added,
    /// Seen before, and its record changed.
    Updated,
    /// Gone or exited; the record is its last known state.
    Removed,
}

impl Lifecycle {
    /// The lowercase name used in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Updated => "updated",
            Self::Removed => "removed",
        }
    }
}

impl fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wall-clock instant with nanosecond precision, serialized as RFC 3339 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Nanoseconds since the Unix epoch.
    pub unix_nanos: i64,
}

impl Timestamp {
    /// From nanoseconds since the Unix epoch, as CRI gives them; `None` for 0 (unset).
    pub fn from_unix_nanos(nanos: i64) -> Option<Self> {
        (nanos > 0).then_some(Self { unix_nanos: nanos })
    }

    /// The current time.
    pub fn now() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self { unix_nanos: nanos }
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(self.unix_nanos).unwrap_or(0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_nanos(self.to_system_time())
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let time = humantime::parse_rfc3339_weak(&text)
            .map_err(|e| serde::de::Error::custom(format!("bad RFC 3339 time {text:?}: {e}")))?;
        let nanos = time
            .duration_since(UNIX_EPOCH)
            .map_err(|_| serde::de::Error::custom(format!("time {text:?} is before 1970")))?
            .as_nanos();
        Ok(Self {
            unix_nanos: i64::try_from(nanos)
                .map_err(|_| serde::de::Error::custom(format!("time {text:?} is out of range")))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_with_nanoseconds() -> Result<(), serde_json::Error> {
        let t = Timestamp {
            unix_nanos: 1_700_000_000_123_456_789,
        };
        let json = serde_json::to_string(&t)?;
        assert_eq!(json, "\"2023-11-14T22:13:20.123456789Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json)?, t);
        Ok(())
    }

    #[test]
    fn zero_time_is_unset() {
        assert_eq!(Timestamp::from_unix_nanos(0), None);
    }

    #[test]
    fn record_json_uses_snake_case_and_type_for_mounts() -> Result<(), serde_json::Error> {
        let mut r = ContainerRecord {
            id: "abc".into(),
            state: ContainerState::Running,
            ..Default::default()
        };
        r.mounts.push(Mount {
            source: "/a".into(),
            destination: "/b".into(),
            kind: "bind".into(),
        });
        let v = serde_json::to_value(&r)?;
        assert_eq!(v["state"], "running");
        assert_eq!(v["mounts"][0]["type"], "bind");
        assert_eq!(v["k8s"]["pod_name"], "");
        let back: ContainerRecord = serde_json::from_value(v)?;
        assert_eq!(back, r);
        Ok(())
    }

    #[test]
    fn unknown_record_field_is_an_error_naming_it() {
        let err = serde_json::from_str::<ContainerRecord>(r#"{"idd":"x"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown field `idd`"), "{err}");
    }
}
