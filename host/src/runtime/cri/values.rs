//! The version-free values the CRI client hands on ([`ContainerSummary`],
//! [`SandboxSummary`], [`ContainerStatus`] with its [`LinuxResources`], [`CriState`]), and
//! their conversions from the generated types of `runtime.v1` and `runtime.v1alpha2`.

use std::collections::HashMap;

/// CRI container state, version-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CriState {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// Unknown or unrecognised.
    Unknown,
}

impl CriState {
    fn from_i32(value: i32) -> Self {
        match value {
            0 => Self::Created,
            1 => Self::Running,
            2 => Self::Exited,
            _ => Self::Unknown,
        }
    }
}

/// One entry of `ListContainers`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSummary {
    /// Container id.
    pub id: String,
    /// Sandbox (pod) id.
    pub sandbox_id: String,
    /// CRI metadata name.
    pub name: String,
    /// CRI metadata attempt (restart number).
    pub attempt: u32,
    /// Image as given at creation.
    pub image: String,
    /// Image reference.
    pub image_ref: String,
    /// State.
    pub state: Option<CriState>,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Annotations.
    pub annotations: HashMap<String, String>,
}

impl ContainerSummary {
    /// The state, `Unknown` when the runtime sent none.
    pub fn state(&self) -> CriState {
        self.state.unwrap_or(CriState::Unknown)
    }
}

/// One entry of `ListPodSandbox`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxSummary {
    /// Sandbox id.
    pub id: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// Sandbox attempt.
    pub attempt: u32,
    /// True when the sandbox is ready.
    pub ready: bool,
    /// Creation time, ns since the epoch.
    pub created_at: i64,
    /// Pod labels (with the `io.kubernetes.*` ones).
    pub labels: HashMap<String, String>,
    /// Pod annotations.
    pub annotations: HashMap<String, String>,
}

/// `ContainerStatus(verbose)`: the status plus the runtime's verbose info map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStatus {
    /// Container id.
    pub id: String,
    /// CRI metadata name.
    pub name: String,
    /// CRI metadata attempt.
    pub attempt: u32,
    /// State.
    pub state: Option<CriState>,
    /// Creation time, ns.
    pub created_at: i64,
    /// Start time, ns (0 when not started).
    pub started_at: i64,
    /// Finish time, ns (0 when not finished).
    pub finished_at: i64,
    /// Exit code (meaningful once exited).
    pub exit_code: i32,
    /// Image as given at creation.
    pub image: String,
    /// Image reference (`imageRef`).
    pub image_ref: String,
    /// Exit reason (`Completed`, `Error`, `OOMKilled`).
    pub reason: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Annotations.
    pub annotations: HashMap<String, String>,
    /// Absolute log path.
    pub log_path: String,
    /// The verbose info map (`info` -> JSON for containerd and CRI-O).
    pub info: HashMap<String, String>,
    /// `resources.linux`, when the runtime reports it (containerd 1.7+, CRI-O).
    pub resources: Option<LinuxResources>,
}

/// The Linux CPU and memory settings of a container, as CRI's `LinuxContainerResources`
/// and the runtime spec's `linux.resources` both carry them. 0 means unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinuxResources {
    /// CFS period, µs.
    pub cpu_period: i64,
    /// CFS quota, µs per period (`-1` or 0: no limit).
    pub cpu_quota: i64,
    /// CPU shares (cgroup v1 weight; the kubelet sets `request_millis * 1024 / 1000`).
    pub cpu_shares: i64,
    /// Memory limit, bytes (0: none).
    pub memory_limit_bytes: i64,
    /// cgroup v2 unified settings (`memory.min` carries a memory request under MemoryQoS).
    pub unified: HashMap<String, String>,
}

impl ContainerStatus {
    /// The state, `Unknown` when the runtime sent none.
    pub fn state(&self) -> CriState {
        self.state.unwrap_or(CriState::Unknown)
    }
}

/// Converts the generated types of one CRI version into the version-free ones.
macro_rules! impl_from_generated {
    ($v:ident) => {
        impl From<k8s_cri::$v::Container> for ContainerSummary {
            fn from(c: k8s_cri::$v::Container) -> Self {
                let (name, attempt) = c.metadata.map(|m| (m.name, m.attempt)).unwrap_or_default();
                Self {
                    id: c.id,
                    sandbox_id: c.pod_sandbox_id,
                    name,
                    attempt,
                    image: c.image.map(|i| i.image).unwrap_or_default(),
                    image_ref: c.image_ref,
                    state: Some(CriState::from_i32(c.state)),
                    created_at: c.created_at,
                    labels: c.labels,
                    annotations: c.annotations,
                }
            }
        }

        impl From<k8s_cri::$v::PodSandbox> for SandboxSummary {
            fn from(s: k8s_cri::$v::PodSandbox) -> Self {
                let m = s.metadata.unwrap_or_default();
                Self {
                    id: s.id,
                    name: m.name,
                    namespace: m.namespace,
                    uid: m.uid,
                    attempt: m.attempt,
                    // SANDBOX_READY is 0.
                    ready: s.state == 0,
                    created_at: s.created_at,
                    labels: s.labels,
                    annotations: s.annotations,
                }
            }
        }

        impl From<(k8s_cri::$v::ContainerStatus, HashMap<String, String>)> for ContainerStatus {
            fn from((s, info): (k8s_cri::$v::ContainerStatus, HashMap<String, String>)) -> Self {
                let (name, attempt) = s.metadata.map(|m| (m.name, m.attempt)).unwrap_or_default();
                Self {
                    id: s.id,
                    name,
                    attempt,
                    state: Some(CriState::from_i32(s.state)),
                    created_at: s.created_at,
                    started_at: s.started_at,
                    finished_at: s.finished_at,
                    exit_code: s.exit_code,
                    image: s.image.map(|i| i.image).unwrap_or_default(),
                    image_ref: s.image_ref,
                    reason: s.reason,
                    labels: s.labels,
                    annotations: s.annotations,
                    log_path: s.log_path,
                    resources: s.resources.and_then(|r| r.linux).map(|l| LinuxResources {
                        cpu_period: l.cpu_period,
                        cpu_quota: l.cpu_quota,
                        cpu_shares: l.cpu_shares,
                        memory_limit_bytes: l.memory_limit_in_bytes,
                        unified: l.unified,
                    }),
                    info,
                }
            }
        }
    };
}

impl_from_generated!(v1);
impl_from_generated!(v1alpha2);
