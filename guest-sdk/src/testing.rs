//! Unit-test plugin logic on the host target, without wasm (not built for `wasm32`).
//!
//! Owns [`MockContainer`], a record held in memory that behaves like the host's handle
//! (glob matching, masks, sorted lists), plus the test stand-ins for the host imports:
//! [`take_logs`] and [`set_node_name`]. A [`Container`](crate::Container) built
//! `From` a mock is what a plugin function receives in a test.
//!
//! ```
//! use gannet_guest::testing::{self, MockContainer};
//! use gannet_guest::{Container, Lifecycle, Result, Verdict};
//!
//! // The plugin function under test (normally marked `#[gannet_guest::plugin]`).
//! fn process(_event: Lifecycle, record: &mut Container) -> Result<Verdict> {
//!     let team = record.pod_label("team").unwrap_or_else(|| "unknown".into());
//!     record.set_tag("team", &team);
//!     Ok(Verdict::Pass)
//! }
//!
//! # fn main() -> gannet_guest::Result<()> {
//! let mut record = Container::from(MockContainer::new().pod_label("team", "payments"));
//! assert_eq!(process(Lifecycle::Added, &mut record)?, Verdict::Pass);
//! assert_eq!(record.tag("team").as_deref(), Some("payments"));
//! # Ok(())
//! # }
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Deserialize;

use crate::types::{ContainerState, Level, Mount};
use crate::wit::gannet::plugin::types as wit;

thread_local! {
    static LOGS: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
    static NODE_NAME: RefCell<String> = RefCell::new(DEFAULT_NODE_NAME.to_string());
}

/// What [`node_name`](crate::node_name) returns in tests until [`set_node_name`] is called.
pub const DEFAULT_NODE_NAME: &str = "test-node";

/// A container record held in memory, standing in for the host's handle in unit tests.
///
/// Fields are public: set any of them directly, or chain the builder methods for the
/// common ones. [`MockContainer::new`] gives a running container `web` in pod `web-0` of
/// namespace `default`.
///
/// ```
/// use gannet_guest::testing::MockContainer;
/// use gannet_guest::Container;
///
/// let mock = MockContainer::new()
///     .namespace("shop")
///     .pod_name("cart-7d9f")
///     .label("io.kubernetes.container.name", "cart")
///     .env("DB_PASSWORD", "hunter2");
/// let record = Container::from(mock);
/// assert_eq!(record.pod_name(), "cart-7d9f");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockContainer {
    /// Full container id.
    pub id: String,
    /// Container name from the runtime.
    pub name: String,
    /// Current state.
    pub state: ContainerState,
    /// Host pid.
    pub pid: u32,
    /// Creation time, RFC 3339.
    pub created: Option<String>,
    /// Start time, RFC 3339.
    pub started: Option<String>,
    /// Finish time, RFC 3339.
    pub finished: Option<String>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Exit reason.
    pub reason: Option<String>,
    /// Restart count.
    pub restart_count: u32,
    /// Pod sandbox id.
    pub sandbox_id: String,
    /// Runtime name.
    pub runtime_name: String,
    /// Snapshotter.
    pub snapshotter: Option<String>,
    /// Image name.
    pub image: String,
    /// Image reference or digest.
    pub image_digest: Option<String>,
    /// Log file path.
    pub log_path: String,
    /// Log file format.
    pub log_format: String,
    /// Cgroup path.
    pub cgroup_path: Option<String>,
    /// Host path of `/etc/hosts`.
    pub hosts_path: Option<String>,
    /// Host path of `/etc/hostname`.
    pub hostname_path: Option<String>,
    /// Hostname.
    pub hostname: Option<String>,
    /// Overlay upper directory.
    pub upper_dir: Option<String>,
    /// Root filesystem on the host.
    pub rootfs_dir: Option<String>,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// Container annotations.
    pub annotations: BTreeMap<String, String>,
    /// Env vars.
    pub env: BTreeMap<String, String>,
    /// Mounts.
    pub mounts: Vec<Mount>,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod uid.
    pub pod_uid: String,
    /// Container name within the pod.
    pub container_name: String,
    /// Pod labels.
    pub pod_labels: BTreeMap<String, String>,
    /// Pod annotations.
    pub pod_annotations: BTreeMap<String, String>,
    /// True for the pod's sandbox (pause) container.
    pub is_sandbox: bool,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

impl Default for MockContainer {
    fn default() -> Self {
        Self::new()
    }
}

/// Defines chainable setters for string fields.
macro_rules! string_setters {
    ($( $(#[$doc:meta])* $name:ident; )*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: impl Into<String>) -> Self {
                self.$name = value.into();
                self
            }
        )*
    };
}

/// Defines chainable setters that insert into a map field.
macro_rules! map_setters {
    ($( $(#[$doc:meta])* $name:ident => $field:ident; )*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
                self.$field.insert(key.into(), value.into());
                self
            }
        )*
    };
}

impl MockContainer {
    /// A running container `web` in pod `web-0` of namespace `default`, with no labels,
    /// env vars, mounts or tags.
    ///
    /// ```
    /// let m = gannet_guest::testing::MockContainer::new();
    /// assert_eq!((m.namespace.as_str(), m.pod_name.as_str()), ("default", "web-0"));
    /// ```
    pub fn new() -> Self {
        Self {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            state: ContainerState::Running,
            pid: 4242,
            created: Some("2026-01-01T00:00:00Z".into()),
            started: Some("2026-01-01T00:00:01Z".into()),
            finished: None,
            exit_code: None,
            reason: None,
            restart_count: 0,
            sandbox_id: "fedcba9876543210".into(),
            runtime_name: "containerd".into(),
            snapshotter: Some("overlayfs".into()),
            image: "registry.example/web:1.0".into(),
            image_digest: None,
            log_path: "/var/log/pods/default_web-0_uid/web/0.log".into(),
            log_format: "cri".into(),
            cgroup_path: None,
            hosts_path: None,
            hostname_path: None,
            hostname: Some("web-0".into()),
            upper_dir: None,
            rootfs_dir: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            env: BTreeMap::new(),
            mounts: Vec::new(),
            namespace: "default".into(),
            pod_name: "web-0".into(),
            pod_uid: "00000000-0000-0000-0000-000000000000".into(),
            container_name: "web".into(),
            pod_labels: BTreeMap::new(),
            pod_annotations: BTreeMap::new(),
            is_sandbox: false,
            tags: BTreeMap::new(),
        }
    }

    /// A mock from one record in the JSON shape of `gannet list --json` (missing fields
    /// take [`MockContainer::new`]'s values; unknown fields are ignored), so a real
    /// record can be replayed in a test.
    ///
    /// # Errors
    /// The text is not a JSON object of that shape; the error names the field.
    ///
    /// ```
    /// let m = gannet_guest::testing::MockContainer::from_json(
    ///     r#"{"id":"abc","k8s":{"namespace":"shop","pod_labels":{"team":"a"}}}"#,
    /// )?;
    /// assert_eq!((m.id.as_str(), m.namespace.as_str()), ("abc", "shop"));
    /// # Ok::<(), gannet_guest::Error>(())
    /// ```
    pub fn from_json(json: &str) -> crate::Result<Self> {
        let r: RecordJson = serde_json::from_str(json)?;
        let d = Self::new();
        let state = match r.state.as_deref() {
            None => d.state,
            Some("created") => ContainerState::Created,
            Some("running") => ContainerState::Running,
            Some("exited") => ContainerState::Exited,
            Some(_) => ContainerState::Unknown,
        };
        let k8s = r.k8s.unwrap_or_default();
        Ok(Self {
            id: r.id.unwrap_or(d.id),
            name: r.name.unwrap_or(d.name),
            state,
            pid: r.pid.unwrap_or(d.pid),
            created: r.created.or(d.created),
            started: r.started.or(d.started),
            finished: r.finished,
            exit_code: r.exit_code,
            reason: r.reason,
            restart_count: r.restart_count.unwrap_or(0),
            sandbox_id: r.sandbox_id.unwrap_or(d.sandbox_id),
            runtime_name: r.runtime_name.unwrap_or(d.runtime_name),
            snapshotter: r.snapshotter.or(d.snapshotter),
            image: r.image.unwrap_or(d.image),
            image_digest: r.image_digest,
            log_path: r.log_path.unwrap_or(d.log_path),
            log_format: r.log_format.unwrap_or(d.log_format),
            cgroup_path: r.cgroup_path,
            hosts_path: r.hosts_path,
            hostname_path: r.hostname_path,
            hostname: r.hostname.or(d.hostname),
            upper_dir: r.upper_dir,
            rootfs_dir: r.rootfs_dir,
            labels: r.labels,
            annotations: r.annotations,
            env: r.env,
            mounts: r
                .mounts
                .into_iter()
                .map(|m| Mount {
                    source: m.source,
                    destination: m.destination,
                    kind: m.kind,
                })
                .collect(),
            namespace: k8s.namespace.unwrap_or(d.namespace),
            pod_name: k8s.pod_name.unwrap_or(d.pod_name),
            pod_uid: k8s.pod_uid.unwrap_or(d.pod_uid),
            container_name: k8s.container_name.unwrap_or(d.container_name),
            pod_labels: k8s.pod_labels,
            pod_annotations: k8s.pod_annotations,
            is_sandbox: k8s.is_sandbox,
            tags: r.tags,
        })
    }

    string_setters! {
        /// Sets the container id.
        id;
        /// Sets the runtime's container name.
        name;
        /// Sets the image name.
        image;
        /// Sets the Kubernetes namespace.
        namespace;
        /// Sets the pod name.
        pod_name;
        /// Sets the container name within the pod.
        container_name;
    }

    map_setters! {
        /// Adds a container label.
        label => labels;
        /// Adds a container annotation.
        annotation => annotations;
        /// Adds an env var.
        env => env;
        /// Adds a pod label.
        pod_label => pod_labels;
        /// Adds a pod annotation.
        pod_annotation => pod_annotations;
        /// Adds a tag.
        tag => tags;
    }

    /// Sets the state.
    ///
    /// ```
    /// use gannet_guest::{testing::MockContainer, ContainerState};
    /// assert_eq!(MockContainer::new().state(ContainerState::Exited).state, ContainerState::Exited);
    /// ```
    pub fn state(mut self, state: ContainerState) -> Self {
        self.state = state;
        self
    }

    /// Marks the record as the pod's sandbox (pause) container, or not.
    ///
    /// ```
    /// assert!(gannet_guest::testing::MockContainer::new().sandbox(true).is_sandbox);
    /// ```
    pub fn sandbox(mut self, is_sandbox: bool) -> Self {
        self.is_sandbox = is_sandbox;
        self
    }

    /// Adds a mount.
    ///
    /// ```
    /// let m = gannet_guest::testing::MockContainer::new().mount("/host/data", "/data", "bind");
    /// assert_eq!(m.mounts[0].destination, "/data");
    /// ```
    pub fn mount(
        mut self,
        source: impl Into<String>,
        destination: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        self.mounts.push(Mount {
            source: source.into(),
            destination: destination.into(),
            kind: kind.into(),
        });
        self
    }
}

/// The WIT resource's methods, with the same names and types, so [`Container`](crate::Container)
/// forwards to either the handle or the mock with the same code.
/// A [`MockContainer`] seen through the WIT resource's method names and types.
pub(crate) struct MockHandle(pub(crate) MockContainer);

impl MockHandle {
    pub(crate) fn select(&self, fields: &[wit::Field]) -> wit::Selection {
        let m = &self.0;
        let numbers: Vec<Option<String>> = fields
            .iter()
            .map(|field| match field {
                wit::Field::Pid => Some(m.pid.to_string()),
                wit::Field::ExitCode => m.exit_code.map(|c| c.to_string()),
                wit::Field::RestartCount => Some(m.restart_count.to_string()),
                _ => None,
            })
            .collect();
        crate::selection::pack(
            fields
                .iter()
                .zip(&numbers)
                .map(|(field, number)| selected(m, field, number)),
        )
    }
    pub(crate) fn state(&self) -> wit::ContainerState {
        self.0.state.into()
    }
    pub(crate) fn label(&self, key: &str) -> Option<String> {
        self.0.labels.get(key).cloned()
    }
    pub(crate) fn label_values(&self, keys: &[String]) -> Vec<Option<String>> {
        values(&self.0.labels, keys)
    }
    pub(crate) fn labels(&self) -> Vec<wit::KeyValue> {
        key_values(&self.0.labels)
    }
    pub(crate) fn pod_label(&self, key: &str) -> Option<String> {
        self.0.pod_labels.get(key).cloned()
    }
    pub(crate) fn pod_label_values(&self, keys: &[String]) -> Vec<Option<String>> {
        values(&self.0.pod_labels, keys)
    }
    pub(crate) fn pod_labels(&self) -> Vec<wit::KeyValue> {
        key_values(&self.0.pod_labels)
    }
    pub(crate) fn annotation(&self, key: &str) -> Option<String> {
        self.0.annotations.get(key).cloned()
    }
    pub(crate) fn annotation_values(&self, keys: &[String]) -> Vec<Option<String>> {
        values(&self.0.annotations, keys)
    }
    pub(crate) fn annotations(&self) -> Vec<wit::KeyValue> {
        key_values(&self.0.annotations)
    }
    pub(crate) fn pod_annotation(&self, key: &str) -> Option<String> {
        self.0.pod_annotations.get(key).cloned()
    }
    pub(crate) fn pod_annotation_values(&self, keys: &[String]) -> Vec<Option<String>> {
        values(&self.0.pod_annotations, keys)
    }
    pub(crate) fn pod_annotations(&self) -> Vec<wit::KeyValue> {
        key_values(&self.0.pod_annotations)
    }
    pub(crate) fn env(&self, name: &str) -> Option<String> {
        self.0.env.get(name).cloned()
    }
    pub(crate) fn env_values(&self, names: &[String]) -> Vec<Option<String>> {
        values(&self.0.env, names)
    }
    pub(crate) fn env_names(&self) -> Vec<String> {
        self.0.env.keys().cloned().collect()
    }
    pub(crate) fn env_matching(&self, patterns: &[String]) -> Vec<wit::KeyValue> {
        self.0
            .env
            .iter()
            .filter(|(k, _)| any_match(patterns, k))
            .map(|(k, v)| wit::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }
    pub(crate) fn envs(&self) -> Vec<wit::KeyValue> {
        key_values(&self.0.env)
    }
    pub(crate) fn mounts(&self) -> Vec<wit::Mount> {
        self.0
            .mounts
            .iter()
            .map(|m| wit::Mount {
                source: m.source.clone(),
                destination: m.destination.clone(),
                kind: m.kind.clone(),
            })
            .collect()
    }
    pub(crate) fn tag(&self, key: &str) -> Option<String> {
        self.0.tags.get(key).cloned()
    }
    pub(crate) fn tags(&self) -> Vec<wit::KeyValue> {
        key_values(&self.0.tags)
    }
    pub(crate) fn to_json(&self) -> String {
        let mounts: Vec<_> = self
            .0
            .mounts
            .iter()
            .map(|m| {
                serde_json::json!({
                    "source": m.source, "destination": m.destination, "type": m.kind,
                })
            })
            .collect();
        serde_json::json!({
            "id": self.0.id,
            "name": self.0.name,
            "state": self.0.state.as_str(),
            "pid": self.0.pid,
            "created": self.0.created,
            "started": self.0.started,
            "finished": self.0.finished,
            "exit_code": self.0.exit_code,
            "reason": self.0.reason,
            "restart_count": self.0.restart_count,
            "sandbox_id": self.0.sandbox_id,
            "runtime_name": self.0.runtime_name,
            "snapshotter": self.0.snapshotter,
            "image": self.0.image,
            "image_digest": self.0.image_digest,
            "log_path": self.0.log_path,
            "log_format": self.0.log_format,
            "cgroup_path": self.0.cgroup_path,
            "labels": self.0.labels,
            "annotations": self.0.annotations,
            "env": self.0.env,
            "mounts": mounts,
            "hosts_path": self.0.hosts_path,
            "hostname_path": self.0.hostname_path,
            "hostname": self.0.hostname,
            "upper_dir": self.0.upper_dir,
            "rootfs_dir": self.0.rootfs_dir,
            "k8s": {
                "namespace": self.0.namespace,
                "pod_name": self.0.pod_name,
                "pod_uid": self.0.pod_uid,
                "container_name": self.0.container_name,
                "pod_labels": self.0.pod_labels,
                "pod_annotations": self.0.pod_annotations,
                "is_sandbox": self.0.is_sandbox,
            },
            "tags": self.0.tags,
        })
        .to_string()
    }
    pub(crate) fn set_tag(&mut self, key: &str, value: &str) {
        self.0.tags.insert(key.into(), value.into());
    }
    pub(crate) fn set_tags(&mut self, tags: &[wit::KeyValue]) {
        for kv in tags {
            self.0.tags.insert(kv.key.clone(), kv.value.clone());
        }
    }
    pub(crate) fn remove_tag(&mut self, key: &str) -> bool {
        self.0.tags.remove(key).is_some()
    }
    pub(crate) fn set_label(&mut self, key: &str, value: &str) {
        self.0.labels.insert(key.into(), value.into());
    }
    pub(crate) fn remove_label(&mut self, key: &str) -> bool {
        self.0.labels.remove(key).is_some()
    }
    pub(crate) fn remove_env(&mut self, name: &str) -> bool {
        self.0.env.remove(name).is_some()
    }
    pub(crate) fn mask_env(&mut self, name: &str, mask: &str) -> bool {
        match self.0.env.get_mut(name) {
            Some(value) => {
                *value = mask.to_string();
                true
            }
            None => false,
        }
    }
    pub(crate) fn remove_env_matching(&mut self, patterns: &[String]) -> u32 {
        let before = self.0.env.len();
        self.0.env.retain(|k, _| !any_match(patterns, k));
        u32::try_from(before - self.0.env.len()).unwrap_or(u32::MAX)
    }
    pub(crate) fn mask_env_matching(&mut self, patterns: &[String], mask: &str) -> u32 {
        let mut n = 0u32;
        for (k, v) in self.0.env.iter_mut() {
            if any_match(patterns, k) {
                *v = mask.to_string();
                n = n.saturating_add(1);
            }
        }
        n
    }
}

/// Plain-field accessors of the WIT resource, forwarded by [`Container`](crate::Container).
macro_rules! field_accessors {
    ($($name:ident -> $ty:ty;)*) => {
        impl MockHandle {
            $(
                pub(crate) fn $name(&self) -> $ty {
                    self.0.$name.clone()
                }
            )*
        }
    };
}

field_accessors! {
    id -> String; name -> String; pid -> u32; created -> Option<String>;
    started -> Option<String>; finished -> Option<String>; exit_code -> Option<i32>;
    reason -> Option<String>; restart_count -> u32; sandbox_id -> String;
    runtime_name -> String; snapshotter -> Option<String>; image -> String;
    image_digest -> Option<String>; log_path -> String; log_format -> String;
    cgroup_path -> Option<String>; hosts_path -> Option<String>;
    hostname_path -> Option<String>; hostname -> Option<String>;
    upper_dir -> Option<String>; rootfs_dir -> Option<String>; namespace -> String;
    pod_name -> String; pod_uid -> String; container_name -> String; is_sandbox -> bool;
}

/// The text of `field` in the mock, as the host would give it; `number` holds the
/// formatted value of the numeric fields.
fn selected<'a>(
    m: &'a MockContainer,
    field: &'a wit::Field,
    number: &'a Option<String>,
) -> Option<&'a str> {
    match field {
        wit::Field::Pid | wit::Field::ExitCode | wit::Field::RestartCount => number.as_deref(),
        wit::Field::Id => Some(&m.id),
        wit::Field::Name => Some(&m.name),
        wit::Field::State => Some(m.state.as_str()),
        wit::Field::Created => m.created.as_deref(),
        wit::Field::Started => m.started.as_deref(),
        wit::Field::Finished => m.finished.as_deref(),
        wit::Field::Reason => m.reason.as_deref(),
        wit::Field::SandboxId => Some(&m.sandbox_id),
        wit::Field::RuntimeName => Some(&m.runtime_name),
        wit::Field::Snapshotter => m.snapshotter.as_deref(),
        wit::Field::Image => Some(&m.image),
        wit::Field::ImageDigest => m.image_digest.as_deref(),
        wit::Field::LogPath => Some(&m.log_path),
        wit::Field::LogFormat => Some(&m.log_format),
        wit::Field::CgroupPath => m.cgroup_path.as_deref(),
        wit::Field::HostsPath => m.hosts_path.as_deref(),
        wit::Field::HostnamePath => m.hostname_path.as_deref(),
        wit::Field::Hostname => m.hostname.as_deref(),
        wit::Field::UpperDir => m.upper_dir.as_deref(),
        wit::Field::RootfsDir => m.rootfs_dir.as_deref(),
        wit::Field::Namespace => Some(&m.namespace),
        wit::Field::PodName => Some(&m.pod_name),
        wit::Field::PodUid => Some(&m.pod_uid),
        wit::Field::ContainerName => Some(&m.container_name),
        wit::Field::IsSandbox => Some(if m.is_sandbox { "true" } else { "false" }),
        wit::Field::Label(k) => m.labels.get(k).map(String::as_str),
        wit::Field::PodLabel(k) => m.pod_labels.get(k).map(String::as_str),
        wit::Field::Annotation(k) => m.annotations.get(k).map(String::as_str),
        wit::Field::PodAnnotation(k) => m.pod_annotations.get(k).map(String::as_str),
        wit::Field::Env(k) => m.env.get(k).map(String::as_str),
        wit::Field::Tag(k) => m.tags.get(k).map(String::as_str),
    }
}

fn values(map: &BTreeMap<String, String>, keys: &[String]) -> Vec<Option<String>> {
    keys.iter().map(|k| map.get(k).cloned()).collect()
}

fn key_values(map: &BTreeMap<String, String>) -> Vec<wit::KeyValue> {
    map.iter()
        .map(|(k, v)| wit::KeyValue {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// True when `name` matches any pattern; the same rule as the host's env matching.
fn any_match(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, name))
}

/// `*` matches any run of characters (including none); every other byte matches itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let p = pattern.as_bytes();
    let n = name.as_bytes();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if p.get(pi) == Some(&b'*') {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p.get(pi) == n.get(ni) {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|&c| c == b'*')
}

/// Parses a plugin's config from JSON exactly as `init` does, for tests of config
/// handling and of functions named with `#[plugin(init = ...)]`.
///
/// # Errors
/// The JSON does not fit `C`; the message is the one the operator would see.
///
/// ```
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config { mask: String }
///
/// let c: Config = gannet_guest::testing::config(r#"{"mask":"***"}"#)?;
/// assert_eq!(c.mask, "***");
/// let err = gannet_guest::testing::config::<Config>(r#"{"mask":"*","maks":1}"#).err();
/// assert!(err.is_some_and(|e| e.message().contains("unknown field `maks`")));
/// # Ok::<(), gannet_guest::Error>(())
/// ```
pub fn config<C: serde::de::DeserializeOwned>(json: &str) -> crate::Result<C> {
    crate::__private::parse_config(json).map_err(crate::Error::msg)
}

/// Takes the lines logged with [`log`](crate::log) on this thread so far.
///
/// ```
/// use gannet_guest::{log, testing, Level};
/// log(Level::Warn, "label missing");
/// assert_eq!(testing::take_logs(), vec![(Level::Warn, "label missing".to_string())]);
/// assert!(testing::take_logs().is_empty());
/// ```
pub fn take_logs() -> Vec<(Level, String)> {
    LOGS.with(|logs| logs.try_borrow_mut().map(|mut l| std::mem::take(&mut *l)))
        .unwrap_or_default()
}

/// Sets what [`node_name`](crate::node_name) returns on this thread.
///
/// ```
/// gannet_guest::testing::set_node_name("node-7");
/// assert_eq!(gannet_guest::node_name(), "node-7");
/// ```
pub fn set_node_name(name: impl Into<String>) {
    let name = name.into();
    NODE_NAME.with(|n| {
        if let Ok(mut n) = n.try_borrow_mut() {
            *n = name;
        }
    });
}

pub(crate) fn push_log(level: Level, message: &str) {
    LOGS.with(|logs| {
        if let Ok(mut logs) = logs.try_borrow_mut() {
            logs.push((level, message.to_string()));
        }
    });
}

pub(crate) fn node_name() -> String {
    NODE_NAME
        .with(|n| n.try_borrow().map(|n| n.clone()))
        .unwrap_or_else(|_| DEFAULT_NODE_NAME.to_string())
}

/// A record in the JSON shape of `gannet list --json`, every field optional.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RecordJson {
    id: Option<String>,
    name: Option<String>,
    state: Option<String>,
    pid: Option<u32>,
    created: Option<String>,
    started: Option<String>,
    finished: Option<String>,
    exit_code: Option<i32>,
    reason: Option<String>,
    restart_count: Option<u32>,
    sandbox_id: Option<String>,
    runtime_name: Option<String>,
    snapshotter: Option<String>,
    image: Option<String>,
    image_digest: Option<String>,
    log_path: Option<String>,
    log_format: Option<String>,
    cgroup_path: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    mounts: Vec<MountJson>,
    hosts_path: Option<String>,
    hostname_path: Option<String>,
    hostname: Option<String>,
    upper_dir: Option<String>,
    rootfs_dir: Option<String>,
    k8s: Option<K8sJson>,
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct K8sJson {
    namespace: Option<String>,
    pod_name: Option<String>,
    pod_uid: Option<String>,
    container_name: Option<String>,
    pod_labels: BTreeMap<String, String>,
    pod_annotations: BTreeMap<String, String>,
    is_sandbox: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct MountJson {
    source: String,
    destination: String,
    #[serde(rename = "type")]
    kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Container;

    #[test]
    fn select_reads_numbers_maps_and_missing_values_like_the_host() {
        let mut mock = MockContainer::new()
            .pod_label("app", "web")
            .label("tier", "api");
        mock.pid = 42;
        mock.exit_code = Some(-1);
        let mut record = Container::from(mock);
        record.set_tag("team", "a");
        let fields = [
            wit::Field::Pid,
            wit::Field::ExitCode,
            wit::Field::RestartCount,
            wit::Field::State,
            wit::Field::PodLabel("app".into()),
            wit::Field::Label("tier".into()),
            wit::Field::Annotation("none".into()),
            wit::Field::Tag("team".into()),
            wit::Field::Reason,
        ];
        let values = record.select(&fields);
        assert_eq!(
            values.iter().collect::<Vec<_>>(),
            [
                Some("42"),
                Some("-1"),
                Some("0"),
                Some("running"),
                Some("web"),
                Some("api"),
                None,
                Some("a"),
                None
            ]
        );
    }

    #[test]
    fn glob_matches_like_the_host() {
        assert!(glob_match("*PASSWORD*", "DB_PASSWORD_FILE"));
        assert!(glob_match("*_KEY", "API_KEY"));
        assert!(!glob_match("*_KEY", "API_KEYS"));
        assert!(glob_match("A*B*C", "AxxBxxC"));
        assert!(!glob_match("A*B*C", "AxxBxx"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("*token*", "GITHUB_TOKEN"));
    }

    #[test]
    fn masks_and_removals_change_what_reads_see() {
        let mut r = Container::from(
            MockContainer::new()
                .env("DB_PASSWORD", "p")
                .env("API_KEY", "k")
                .env("HOME", "/root"),
        );
        let pats = vec!["*PASSWORD*".to_string()];
        assert_eq!(r.mask_env_matching(&pats, "***"), 1);
        assert_eq!(r.env("DB_PASSWORD").as_deref(), Some("***"));
        assert!(r.remove_env("API_KEY"));
        assert!(!r.remove_env("API_KEY"));
        assert_eq!(r.env_names(), vec!["DB_PASSWORD", "HOME"]);
        assert!(!r.mask_env("NOPE", "x"));
    }

    #[test]
    fn to_json_round_trips_through_from_json() -> crate::Result<()> {
        let m = MockContainer::new()
            .namespace("shop")
            .pod_label("team", "a")
            .mount("/a", "/b", "bind")
            .tag("t", "1");
        let back = MockContainer::from_json(&Container::from(m.clone()).to_json())?;
        assert_eq!(back, m);
        Ok(())
    }

    #[test]
    fn from_json_names_a_wrong_field_type() {
        let err = MockContainer::from_json(r#"{"pid":"x"}"#).err();
        assert!(err.is_some_and(|e| e.message().contains("invalid type")));
    }
}
