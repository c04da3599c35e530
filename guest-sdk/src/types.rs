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
