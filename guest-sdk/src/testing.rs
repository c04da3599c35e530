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

use gannet_record::{
    ContainerPort, ContainerRecord, ContainerState as RecordState, Field, GlobSet, K8sInfo,
    Timestamp,
};
use serde::de::IntoDeserializer;
use serde::Deserialize;

use crate::types::{ContainerState, Level, Mount, Owner, Port, Resources};
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
    /// Creation time, RFC 3339. Read back as the host writes it (UTC, nanosecond digits);
    /// text that is not RFC 3339 reads as absent, as the host could not hold it.
    pub created: Option<String>,
    /// Start time, RFC 3339. Read back as the host writes it (UTC, nanosecond digits);
    /// text that is not RFC 3339 reads as absent, as the host could not hold it.
    pub started: Option<String>,
    /// Finish time, RFC 3339. Read back as the host writes it (UTC, nanosecond digits);
    /// text that is not RFC 3339 reads as absent, as the host could not hold it.
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
    /// The pod's IPs, the primary first.
    pub pod_ips: Vec<String>,
    /// When the pod started, RFC 3339 (read back as the host writes it).
    pub pod_start_time: Option<String>,
    /// The workload that owns the pod.
    pub owner: Owner,
    /// CPU and memory requests and limits.
    pub resources: Resources,
    /// Declared ports.
    pub ports: Vec<Port>,
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
            created: Some("2026-01-01T00:00:00.000000000Z".into()),
            started: Some("2026-01-01T00:00:01.000000000Z".into()),
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
            pod_ips: Vec::new(),
            pod_start_time: None,
            owner: Owner::default(),
            resources: Resources::default(),
            ports: Vec::new(),
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
            pod_ips: k8s.pod_ips,
            pod_start_time: k8s.pod_start_time,
            owner: Owner {
                replicaset: k8s.owner.replicaset,
                deployment: k8s.owner.deployment,
                statefulset: k8s.owner.statefulset,
                daemonset: k8s.owner.daemonset,
                job: k8s.owner.job,
                cronjob: k8s.owner.cronjob,
            },
            resources: Resources {
                cpu_request_millis: r.resources.cpu_request_millis,
                cpu_limit_millis: r.resources.cpu_limit_millis,
                memory_request_bytes: r.resources.memory_request_bytes,
                memory_limit_bytes: r.resources.memory_limit_bytes,
            },
            ports: r
                .ports
                .into_iter()
                .map(|p| Port {
                    name: p.name,
                    container_port: p.container_port,
                    protocol: p.protocol,
                })
                .collect(),
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

    /// The record the agent would hold for this mock: what every read of a
    /// [`Container`](crate::Container) made from it answers from.
    fn to_record(&self) -> ContainerRecord {
        let state = match self.state {
            ContainerState::Created => RecordState::Created,
            ContainerState::Running => RecordState::Running,
            ContainerState::Exited => RecordState::Exited,
            ContainerState::Unknown => RecordState::Unknown,
        };
        ContainerRecord {
            id: self.id.clone(),
            name: self.name.clone(),
            state,
            pid: self.pid,
            created: timestamp(&self.created),
            started: timestamp(&self.started),
            finished: timestamp(&self.finished),
            exit_code: self.exit_code,
            reason: self.reason.clone(),
            restart_count: self.restart_count,
            sandbox_id: self.sandbox_id.clone(),
            runtime_name: self.runtime_name.clone(),
            snapshotter: self.snapshotter.clone(),
            image: self.image.clone(),
            image_digest: self.image_digest.clone(),
            log_path: self.log_path.clone(),
            log_format: self.log_format.clone(),
            cgroup_path: self.cgroup_path.clone(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            env: self.env.clone(),
            mounts: self
                .mounts
                .iter()
                .map(|m| gannet_record::Mount {
                    source: m.source.clone(),
                    destination: m.destination.clone(),
                    kind: m.kind.clone(),
                })
                .collect(),
            hosts_path: self.hosts_path.clone(),
            hostname_path: self.hostname_path.clone(),
            hostname: self.hostname.clone(),
            upper_dir: self.upper_dir.clone(),
            rootfs_dir: self.rootfs_dir.clone(),
            k8s: K8sInfo {
                namespace: self.namespace.clone(),
                pod_name: self.pod_name.clone(),
                pod_uid: self.pod_uid.clone(),
                container_name: self.container_name.clone(),
                pod_labels: self.pod_labels.clone(),
                pod_annotations: self.pod_annotations.clone(),
                is_sandbox: self.is_sandbox,
                pod_ips: self.pod_ips.clone(),
                pod_start_time: timestamp(&self.pod_start_time),
                owner: gannet_record::Owner {
                    replicaset: self.owner.replicaset.clone(),
                    deployment: self.owner.deployment.clone(),
                    statefulset: self.owner.statefulset.clone(),
                    daemonset: self.owner.daemonset.clone(),
                    job: self.owner.job.clone(),
                    cronjob: self.owner.cronjob.clone(),
                },
                // Not in the WIT: a plugin reads it with `node_name()`.
                ..K8sInfo::default()
            },
            resources: gannet_record::Resources {
                cpu_request_millis: self.resources.cpu_request_millis,
                cpu_limit_millis: self.resources.cpu_limit_millis,
                memory_request_bytes: self.resources.memory_request_bytes,
                memory_limit_bytes: self.resources.memory_limit_bytes,
            },
            ports: self
                .ports
                .iter()
                .map(|p| ContainerPort {
                    name: p.name.clone(),
                    container_port: p.container_port,
                    protocol: p.protocol.clone(),
                })
                .collect(),
            tags: self.tags.clone(),
        }
    }
}

/// A [`MockContainer`] seen through the WIT resource's method names and types, so
/// [`Container`](crate::Container) forwards to either the handle or the mock with the same
/// code.
///
/// Like the host's handle, it reads from a [`gannet_record::ContainerRecord`] (made from
/// the mock once) with the agent's own `select` and env globs; each edit goes to that
/// record and to the mock, which [`Container::mock`](crate::Container::mock) shows.
pub(crate) struct MockHandle {
    mock: MockContainer,
    record: ContainerRecord,
    /// The env-name patterns last passed, compiled (as the host keeps them).
    globs: GlobSet,
}

impl MockHandle {
    pub(crate) fn new(mock: MockContainer) -> Self {
        Self {
            record: mock.to_record(),
            mock,
            globs: GlobSet::default(),
        }
    }
    pub(crate) fn mock(&self) -> &MockContainer {
        &self.mock
    }
    pub(crate) fn into_mock(self) -> MockContainer {
        self.mock
    }
    /// Makes `globs` the compiled form of `patterns`.
    fn prepare_globs(&mut self, patterns: &[String]) {
        if !self.globs.is_for(patterns) {
            self.globs = GlobSet::new(patterns);
        }
    }
    pub(crate) fn select(&self, fields: &[wit::Field]) -> wit::Selection {
        let fields: Vec<Field> = fields.iter().cloned().map(Field::from).collect();
        // No memory limit in tests; past 4 GiB (the reach of a span) every value is absent.
        let gannet_record::Selection { text, spans } =
            gannet_record::select(&self.record, &fields, usize::MAX).unwrap_or_else(|_| {
                gannet_record::Selection {
                    text: String::new(),
                    spans: vec![gannet_record::ABSENT; fields.len()],
                }
            });
        wit::Selection { text, spans }
    }
    /// One value as `select` reads it.
    fn text(&self, field: &Field) -> Option<String> {
        gannet_record::value(&self.record, field).map(|v| v.into_owned())
    }
    pub(crate) fn id(&self) -> String {
        self.record.id.clone()
    }
    pub(crate) fn name(&self) -> String {
        self.record.name.clone()
    }
    pub(crate) fn state(&self) -> wit::ContainerState {
        match self.record.state {
            RecordState::Created => wit::ContainerState::Created,
            RecordState::Running => wit::ContainerState::Running,
            RecordState::Exited => wit::ContainerState::Exited,
            RecordState::Unknown => wit::ContainerState::Unknown,
        }
    }
    pub(crate) fn pid(&self) -> u32 {
        self.record.pid
    }
    pub(crate) fn created(&self) -> Option<String> {
        self.text(&Field::Created)
    }
    pub(crate) fn started(&self) -> Option<String> {
        self.text(&Field::Started)
    }
    pub(crate) fn finished(&self) -> Option<String> {
        self.text(&Field::Finished)
    }
    pub(crate) fn exit_code(&self) -> Option<i32> {
        self.record.exit_code
    }
    pub(crate) fn restart_count(&self) -> u32 {
        self.record.restart_count
    }
    pub(crate) fn is_sandbox(&self) -> bool {
        self.record.k8s.is_sandbox
    }
    pub(crate) fn label(&self, key: &str) -> Option<String> {
        self.record.labels.get(key).cloned()
    }
    pub(crate) fn label_values(&self, keys: &[String]) -> Vec<Option<String>> {
        values(&self.record.labels, keys)
    }
    pub(crate) fn labels(&self) -> Vec<wit::KeyValue> {
        key_values(&self.record.labels)
    }
    pub(crate) fn pod_label(&self, key: &str) -> Option<String> {
        self.record.k8s.pod_labels.get(key).cloned()
    }
    pub(crate) fn pod_label_values(&self, keys: &[String]) -> Vec<Option<String>> {
        values(&self.record.k8s.pod_labels, keys)
    }
    pub(crate) fn pod_labels(&self) -> Vec<wit::KeyValue> {
        key_values(&self.record.k8s.pod_labels)
    }
    pub(crate) fn annotation(&self, key: &str) -> Option<String> {
        self.record.annotations.get(key).cloned()
    }
    pub(crate) fn annotation_values(&self, keys: &[String]) -> Vec<Option<String>> {
        values(&self.record.annotations, keys)
    }
    pub(crate) fn annotations(&self) -> Vec<wit::KeyValue> {
        key_values(&self.record.annotations)
    }
    pub(crate) fn pod_annotation(&self, key: &str) -> Option<String> {
        self.record.k8s.pod_annotations.get(key).cloned()
    }
    pub(crate) fn pod_annotation_values(&self, keys: &[String]) -> Vec<Option<String>> {
        values(&self.record.k8s.pod_annotations, keys)
    }
    pub(crate) fn pod_annotations(&self) -> Vec<wit::KeyValue> {
        key_values(&self.record.k8s.pod_annotations)
    }
    pub(crate) fn env(&self, name: &str) -> Option<String> {
        self.record.env.get(name).cloned()
    }
    pub(crate) fn env_values(&self, names: &[String]) -> Vec<Option<String>> {
        values(&self.record.env, names)
    }
    pub(crate) fn env_names(&self) -> Vec<String> {
        self.record.env.keys().cloned().collect()
    }
    pub(crate) fn env_matching(&self, patterns: &[String]) -> Vec<wit::KeyValue> {
        // A read, so the set is compiled per call rather than kept (the host keeps it).
        let globs = GlobSet::new(patterns);
        self.record
            .env
            .iter()
            .filter(|(k, _)| globs.is_match(k))
            .map(|(k, v)| wit::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }
    pub(crate) fn envs(&self) -> Vec<wit::KeyValue> {
        key_values(&self.record.env)
    }
    pub(crate) fn mounts(&self) -> Vec<wit::Mount> {
        self.record
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
        self.record.tags.get(key).cloned()
    }
    pub(crate) fn tags(&self) -> Vec<wit::KeyValue> {
        key_values(&self.record.tags)
    }
    /// The record as JSON, serialized as the host serializes it.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(&self.record).unwrap_or_default()
    }
    pub(crate) fn set_tag(&mut self, key: &str, value: &str) {
        self.record.tags.insert(key.into(), value.into());
        self.mock.tags.clone_from(&self.record.tags);
    }
    pub(crate) fn set_tags(&mut self, tags: &[wit::KeyValue]) {
        for kv in tags {
            self.record.tags.insert(kv.key.clone(), kv.value.clone());
        }
        self.mock.tags.clone_from(&self.record.tags);
    }
    pub(crate) fn remove_tag(&mut self, key: &str) -> bool {
        self.mock.tags.remove(key);
        self.record.tags.remove(key).is_some()
    }
    pub(crate) fn set_label(&mut self, key: &str, value: &str) {
        self.record.labels.insert(key.into(), value.into());
        self.mock.labels.clone_from(&self.record.labels);
    }
    pub(crate) fn remove_label(&mut self, key: &str) -> bool {
        self.mock.labels.remove(key);
        self.record.labels.remove(key).is_some()
    }
    pub(crate) fn remove_env(&mut self, name: &str) -> bool {
        self.mock.env.remove(name);
        self.record.env.remove(name).is_some()
    }
    pub(crate) fn mask_env(&mut self, name: &str, mask: &str) -> bool {
        match self.record.env.get_mut(name) {
            Some(value) => {
                *value = mask.to_string();
                self.mock.env.clone_from(&self.record.env);
                true
            }
            None => false,
        }
    }
    pub(crate) fn remove_env_matching(&mut self, patterns: &[String]) -> u32 {
        self.prepare_globs(patterns);
        let before = self.record.env.len();
        let globs = &self.globs;
        self.record.env.retain(|k, _| !globs.is_match(k));
        self.mock.env.clone_from(&self.record.env);
        u32::try_from(before - self.record.env.len()).unwrap_or(u32::MAX)
    }
    pub(crate) fn mask_env_matching(&mut self, patterns: &[String], mask: &str) -> u32 {
        self.prepare_globs(patterns);
        let mut n = 0u32;
        for (k, v) in self.record.env.iter_mut() {
            if self.globs.is_match(k) {
                *v = mask.to_string();
                n = n.saturating_add(1);
            }
        }
        self.mock.env.clone_from(&self.record.env);
        n
    }
}

impl MockHandle {
    pub(crate) fn pod_start_time(&self) -> Option<String> {
        self.record.k8s.pod_start_time.map(|t| t.to_string())
    }
    pub(crate) fn pod_ips(&self) -> Vec<String> {
        self.record.k8s.pod_ips.clone()
    }
    pub(crate) fn owner(&self) -> wit::Owner {
        let o = &self.record.k8s.owner;
        wit::Owner {
            replicaset: o.replicaset.clone(),
            deployment: o.deployment.clone(),
            statefulset: o.statefulset.clone(),
            daemonset: o.daemonset.clone(),
            job: o.job.clone(),
            cronjob: o.cronjob.clone(),
        }
    }
    pub(crate) fn resources(&self) -> wit::Resources {
        let r = &self.record.resources;
        wit::Resources {
            cpu_request_millis: r.cpu_request_millis,
            cpu_limit_millis: r.cpu_limit_millis,
            memory_request_bytes: r.memory_request_bytes,
            memory_limit_bytes: r.memory_limit_bytes,
        }
    }
    pub(crate) fn ports(&self) -> Vec<wit::Port> {
        self.record
            .ports
            .iter()
            .map(|p| wit::Port {
                name: p.name.clone(),
                container_port: p.container_port,
                protocol: p.protocol.clone(),
            })
            .collect()
    }
}

/// Plain-field accessors of the WIT resource that hand a string field on as it is.
macro_rules! field_accessors {
    ($($name:ident -> $ty:ty = $($path:ident).+;)*) => {
        impl MockHandle {
            $(
                pub(crate) fn $name(&self) -> $ty {
                    self.record.$($path).+.clone()
                }
            )*
        }
    };
}

field_accessors! {
    reason -> Option<String> = reason; sandbox_id -> String = sandbox_id;
    runtime_name -> String = runtime_name; snapshotter -> Option<String> = snapshotter;
    image -> String = image; image_digest -> Option<String> = image_digest;
    log_path -> String = log_path; log_format -> String = log_format;
    cgroup_path -> Option<String> = cgroup_path; hosts_path -> Option<String> = hosts_path;
    hostname_path -> Option<String> = hostname_path; hostname -> Option<String> = hostname;
    upper_dir -> Option<String> = upper_dir; rootfs_dir -> Option<String> = rootfs_dir;
    namespace -> String = k8s.namespace; pod_name -> String = k8s.pod_name;
    pod_uid -> String = k8s.pod_uid; container_name -> String = k8s.container_name;
}

gannet_record::from_wit_field!(wit::Field);

/// The time an RFC 3339 mock field names; `None` for text that is not one.
fn timestamp(text: &Option<String>) -> Option<Timestamp> {
    let text = text.as_deref()?;
    Timestamp::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(text))
        .ok()
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
    resources: gannet_record::Resources,
    ports: Vec<ContainerPort>,
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
    pod_ips: Vec<String>,
    pod_start_time: Option<String>,
    owner: gannet_record::Owner,
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
        use crate::Field as F;
        let fields = [
            F::Pid,
            F::ExitCode,
            F::RestartCount,
            F::State,
            F::pod_label("app"),
            F::label("tier"),
            F::annotation("none"),
            F::tag("team"),
            F::Reason,
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
        // The mock matches with the host's own `GlobSet`.
        let glob_match = |p: &str, n: &str| GlobSet::new(&[p.to_string()]).is_match(n);
        assert!(glob_match("*PASSWORD*", "DB_PASSWORD_FILE"));
        assert!(glob_match("*_KEY", "API_KEY"));
        assert!(!glob_match("*_KEY", "API_KEYS"));
        assert!(glob_match("A*B*C", "AxxBxxC"));
        assert!(!glob_match("A*B*C", "AxxBxx"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("*token*", "GITHUB_TOKEN"));
        let r = Container::from(MockContainer::new().env("A1B2C", "x").env("AB", "y"));
        assert_eq!(r.env_matching(&["A*B*C"]).len(), 1);
    }

    /// The WIT case name of a generated `Field`, from its `Debug` form.
    fn case_name(field: &wit::Field) -> String {
        crate::selection::case_name(&format!("{field:?}"))
    }

    #[test]
    fn every_sdk_field_is_the_record_field_of_its_wit_name() {
        let keyed = |k: &str| k.to_string();
        let all = [
            wit::Field::Id,
            wit::Field::Name,
            wit::Field::State,
            wit::Field::Pid,
            wit::Field::Created,
            wit::Field::Started,
            wit::Field::Finished,
            wit::Field::ExitCode,
            wit::Field::Reason,
            wit::Field::RestartCount,
            wit::Field::SandboxId,
            wit::Field::RuntimeName,
            wit::Field::Snapshotter,
            wit::Field::Image,
            wit::Field::ImageDigest,
            wit::Field::LogPath,
            wit::Field::LogFormat,
            wit::Field::CgroupPath,
            wit::Field::HostsPath,
            wit::Field::HostnamePath,
            wit::Field::Hostname,
            wit::Field::UpperDir,
            wit::Field::RootfsDir,
            wit::Field::Namespace,
            wit::Field::PodName,
            wit::Field::PodUid,
            wit::Field::ContainerName,
            wit::Field::IsSandbox,
            wit::Field::Label(keyed("k")),
            wit::Field::PodLabel(keyed("k")),
            wit::Field::Annotation(keyed("k")),
            wit::Field::PodAnnotation(keyed("k")),
            wit::Field::Env(keyed("k")),
            wit::Field::Tag(keyed("k")),
            wit::Field::PodIp,
            wit::Field::PodStartTime,
            wit::Field::ReplicasetName,
            wit::Field::DeploymentName,
            wit::Field::StatefulsetName,
            wit::Field::DaemonsetName,
            wit::Field::JobName,
            wit::Field::CronjobName,
            wit::Field::CpuRequestMillis,
            wit::Field::CpuLimitMillis,
            wit::Field::MemoryRequestBytes,
            wit::Field::MemoryLimitBytes,
        ];
        let names: Vec<String> = all.iter().map(case_name).collect();
        assert_eq!(
            names,
            Field::NAMES,
            "the SDK's fields vs gannet_record::Field"
        );
        for field in all {
            let name = case_name(&field);
            assert_eq!(
                Some(Field::from(field)),
                Field::from_name(&name, "k"),
                "{name}"
            );
        }
    }

    #[test]
    fn every_one_value_accessor_of_the_mock_answers_what_select_reads() {
        let mut mock = MockContainer::new()
            .label("k", "l")
            .pod_label("k", "pl")
            .annotation("k", "a")
            .pod_annotation("k", "pa")
            .env("k", "e")
            .tag("k", "t")
            .sandbox(true);
        mock.exit_code = Some(-1);
        mock.reason = Some("OOMKilled".into());
        mock.finished = Some("2026-01-01T00:00:02Z".into());
        mock.cgroup_path = Some("/cg".into());
        mock.pod_ips = vec!["10.0.0.9".into(), "fd00::9".into()];
        mock.pod_start_time = Some("2026-01-01T00:00:00Z".into());
        mock.owner.replicaset = Some("web-5d8f".into());
        mock.owner.deployment = Some("web".into());
        mock.owner.statefulset = Some("db".into());
        mock.owner.daemonset = Some("agent".into());
        mock.owner.job = Some("report-29".into());
        mock.owner.cronjob = Some("report".into());
        mock.resources = Resources {
            cpu_request_millis: Some(250),
            cpu_limit_millis: Some(500),
            memory_request_bytes: Some(1 << 20),
            memory_limit_bytes: Some(1 << 21),
        };
        for mock in [mock, MockContainer::new()] {
            let r = Container::from(mock);
            let text = |s: String| Some(s);
            let one_value: Vec<(&str, Option<String>)> = vec![
                ("id", text(r.id())),
                ("name", text(r.name())),
                ("state", text(r.state().as_str().to_string())),
                ("pid", text(r.pid().to_string())),
                ("created", r.created()),
                ("started", r.started()),
                ("finished", r.finished()),
                ("exit-code", r.exit_code().map(|c| c.to_string())),
                ("reason", r.reason()),
                ("restart-count", text(r.restart_count().to_string())),
                ("sandbox-id", text(r.sandbox_id())),
                ("runtime-name", text(r.runtime_name())),
                ("snapshotter", r.snapshotter()),
                ("image", text(r.image())),
                ("image-digest", r.image_digest()),
                ("log-path", text(r.log_path())),
                ("log-format", text(r.log_format())),
                ("cgroup-path", r.cgroup_path()),
                ("hosts-path", r.hosts_path()),
                ("hostname-path", r.hostname_path()),
                ("hostname", r.hostname()),
                ("upper-dir", r.upper_dir()),
                ("rootfs-dir", r.rootfs_dir()),
                ("namespace", text(r.namespace())),
                ("pod-name", text(r.pod_name())),
                ("pod-uid", text(r.pod_uid())),
                ("container-name", text(r.container_name())),
                ("is-sandbox", text(r.is_sandbox().to_string())),
                ("label", r.label("k")),
                ("pod-label", r.pod_label("k")),
                ("annotation", r.annotation("k")),
                ("pod-annotation", r.pod_annotation("k")),
                ("env", r.env("k")),
                ("tag", r.tag("k")),
                ("pod-ip", r.pod_ips().first().cloned()),
                ("pod-start-time", r.pod_start_time()),
                ("replicaset-name", r.owner().replicaset),
                ("deployment-name", r.owner().deployment),
                ("statefulset-name", r.owner().statefulset),
                ("daemonset-name", r.owner().daemonset),
                ("job-name", r.owner().job),
                ("cronjob-name", r.owner().cronjob),
                (
                    "cpu-request-millis",
                    r.resources().cpu_request_millis.map(|n| n.to_string()),
                ),
                (
                    "cpu-limit-millis",
                    r.resources().cpu_limit_millis.map(|n| n.to_string()),
                ),
                (
                    "memory-request-bytes",
                    r.resources().memory_request_bytes.map(|n| n.to_string()),
                ),
                (
                    "memory-limit-bytes",
                    r.resources().memory_limit_bytes.map(|n| n.to_string()),
                ),
            ];
            let names: Vec<&str> = one_value.iter().map(|(n, _)| *n).collect();
            assert_eq!(names, Field::NAMES, "one accessor per field");
            let record = r.mock().to_record();
            for (name, got) in one_value {
                let field = Field::from_name(name, "k");
                let want =
                    field.and_then(|f| gannet_record::value(&record, &f).map(|v| v.into_owned()));
                assert_eq!(got, want, "{name}");
            }
        }
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
