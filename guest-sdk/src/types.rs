//! Plain types of the plugin API: the event, the verdict, the container state, mounts and
//! log levels.
//!
//! Owns the curated Rust forms of the WIT `types` interface and their conversions to and
//! from the wit-bindgen types (used only by the glue).

use crate::wit::gannet::plugin::types as wit;

/// What happened to the container this call is about.
///
/// ```
/// use gannet_guest::Lifecycle;
/// assert_eq!(Lifecycle::Removed.as_str(), "removed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// The container was seen for the first time.
    Added,
    /// The container was seen before and its record changed.
    Updated,
    /// The container is gone or has exited; the record is its final state.
    Removed,
}

impl Lifecycle {
    /// The lowercase name (`added`, `updated`, `removed`), as in Gannet's JSON.
    ///
    /// ```
    /// assert_eq!(gannet_guest::Lifecycle::Added.as_str(), "added");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Updated => "updated",
            Self::Removed => "removed",
        }
    }
}

impl From<wit::Lifecycle> for Lifecycle {
    fn from(event: wit::Lifecycle) -> Self {
        match event {
            wit::Lifecycle::Added => Self::Added,
            wit::Lifecycle::Updated => Self::Updated,
            wit::Lifecycle::Removed => Self::Removed,
        }
    }
}

/// What becomes of the record after this plugin.
///
/// ```
/// use gannet_guest::Verdict;
/// let v = Verdict::route(["audit", "archive"]);
/// assert_eq!(v, Verdict::Route(vec!["audit".to_string(), "archive".to_string()]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Pass the record (with any changes) on, keeping its current destinations.
    Pass,
    /// Drop the record: later plugins and outputs never see this event.
    Drop,
    /// Pass the record on and send it to these named outputs. A later plugin's `Route`
    /// replaces this list; `Pass` keeps it.
    Route(Vec<String>),
}

impl Verdict {
    /// `Route` to these outputs.
    ///
    /// ```
    /// assert_eq!(
    ///     gannet_guest::Verdict::route(["audit"]),
    ///     gannet_guest::Verdict::Route(vec!["audit".into()])
    /// );
    /// ```
    pub fn route<I, S>(outputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Route(outputs.into_iter().map(Into::into).collect())
    }
}

impl From<Verdict> for wit::Verdict {
    fn from(verdict: Verdict) -> Self {
        match verdict {
            Verdict::Pass => Self::Pass,
            Verdict::Drop => Self::Drop,
            Verdict::Route(outputs) => Self::Route(outputs),
        }
    }
}

/// The container's state as Gannet reports it.
///
/// ```
/// assert_eq!(gannet_guest::ContainerState::Running.as_str(), "running");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ContainerState {
    /// Created, not started.
    Created,
    /// The runtime says running and its process is alive.
    Running,
    /// Exited, or its process is gone.
    Exited,
    /// The runtime did not say.
    #[default]
    Unknown,
}

impl ContainerState {
    /// The lowercase name, as in Gannet's JSON.
    ///
    /// ```
    /// assert_eq!(gannet_guest::ContainerState::Exited.as_str(), "exited");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Exited => "exited",
            Self::Unknown => "unknown",
        }
    }
}

impl From<wit::ContainerState> for ContainerState {
    fn from(state: wit::ContainerState) -> Self {
        match state {
            wit::ContainerState::Created => Self::Created,
            wit::ContainerState::Running => Self::Running,
            wit::ContainerState::Exited => Self::Exited,
            wit::ContainerState::Unknown => Self::Unknown,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl From<ContainerState> for wit::ContainerState {
    fn from(state: ContainerState) -> Self {
        match state {
            ContainerState::Created => Self::Created,
            ContainerState::Running => Self::Running,
            ContainerState::Exited => Self::Exited,
            ContainerState::Unknown => Self::Unknown,
        }
    }
}

/// One mount of the container.
///
/// ```
/// let m = gannet_guest::Mount {
///     source: "/var/lib/kubelet/pods/x/volumes/data".into(),
///     destination: "/data".into(),
///     kind: "bind".into(),
/// };
/// assert_eq!(m.kind, "bind");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Mount {
    /// Host-side source path.
    pub source: String,
    /// Path inside the container.
    pub destination: String,
    /// Mount type: `bind`, `proc`, `tmpfs`, ...
    pub kind: String,
}

impl From<wit::Mount> for Mount {
    fn from(m: wit::Mount) -> Self {
        Self {
            source: m.source,
            destination: m.destination,
            kind: m.kind,
        }
    }
}

/// The workload that owns the pod, inferred by the agent from the pod's labels and name;
/// each field is `None` when no rule matched. Since `gannet:plugin@0.2.0`.
///
/// ```
/// let owner = gannet_guest::Owner { deployment: Some("web".into()), ..Default::default() };
/// assert_eq!(owner.deployment.as_deref(), Some("web"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Owner {
    /// ReplicaSet name.
    pub replicaset: Option<String>,
    /// Deployment name.
    pub deployment: Option<String>,
    /// StatefulSet name.
    pub statefulset: Option<String>,
    /// DaemonSet name.
    pub daemonset: Option<String>,
    /// Job name.
    pub job: Option<String>,
    /// CronJob name.
    pub cronjob: Option<String>,
}

impl From<wit::Owner> for Owner {
    fn from(o: wit::Owner) -> Self {
        Self {
            replicaset: o.replicaset,
            deployment: o.deployment,
            statefulset: o.statefulset,
            daemonset: o.daemonset,
            job: o.job,
            cronjob: o.cronjob,
        }
    }
}

/// The container's CPU and memory requests and limits, as the runtime was given them.
/// Since `gannet:plugin@0.2.0`.
///
/// ```
/// let r = gannet_guest::Resources { cpu_limit_millis: Some(500), ..Default::default() };
/// assert_eq!(r.cpu_limit_millis, Some(500));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Resources {
    /// CPU request in millicores.
    pub cpu_request_millis: Option<u64>,
    /// CPU limit in millicores.
    pub cpu_limit_millis: Option<u64>,
    /// Memory request in bytes (only when the runtime is given one).
    pub memory_request_bytes: Option<u64>,
    /// Memory limit in bytes.
    pub memory_limit_bytes: Option<u64>,
}

impl From<wit::Resources> for Resources {
    fn from(r: wit::Resources) -> Self {
        Self {
            cpu_request_millis: r.cpu_request_millis,
            cpu_limit_millis: r.cpu_limit_millis,
            memory_request_bytes: r.memory_request_bytes,
            memory_limit_bytes: r.memory_limit_bytes,
        }
    }
}

/// One port the container declares. Since `gannet:plugin@0.2.0`.
///
/// ```
/// let p = gannet_guest::Port { name: Some("http".into()), container_port: 8080, protocol: "TCP".into() };
/// assert_eq!(p.container_port, 8080);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Port {
    /// The port's name, when it has one.
    pub name: Option<String>,
    /// The port number in the container.
    pub container_port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
}

impl From<wit::Port> for Port {
    fn from(p: wit::Port) -> Self {
        Self {
            name: p.name,
            container_port: p.container_port,
            protocol: p.protocol,
        }
    }
}

/// Severity of a line sent to the agent's log with [`log`](crate::log).
///
/// ```
/// gannet_guest::log(gannet_guest::Level::Info, "plugin ready");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something failed.
    Error,
}

impl From<Level> for wit::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}

/// Turns WIT key-value pairs into tuples.
pub(crate) fn pairs(list: Vec<wit::KeyValue>) -> Vec<(String, String)> {
    list.into_iter().map(|kv| (kv.key, kv.value)).collect()
}
