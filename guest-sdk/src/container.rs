//! The container record as a plugin sees it: typed accessors and mutators over the
//! host-owned handle.
//!
//! Owns [`Container`]. On `wasm32` it wraps the borrowed WIT resource, so every method is
//! one call into the host and the record itself never crosses the boundary. On the host
//! target it wraps a [`MockContainer`](crate::testing::MockContainer) with the same
//! behaviour, for unit tests.

use crate::keys::KeyList;
use crate::selection::{FieldList, Selection};
use crate::types::{pairs, ContainerState, Mount, Owner, Port, Resources};

#[cfg(target_arch = "wasm32")]
type Inner<'a> = &'a crate::wit::gannet::plugin::container::Container;
#[cfg(not(target_arch = "wasm32"))]
type Inner<'a> = (crate::testing::MockHandle, std::marker::PhantomData<&'a ()>);

/// One container's record, lent to the plugin for one `process` call.
///
/// Reads see the record as it is now, including changes this plugin made earlier in the
/// same call. Changes are transactional: they take effect only if `process` returns `Ok`;
/// on an error, a trap or a deadline hit the host discards them all. Identity fields
/// (id, pid, state, ...) are read-only.
///
/// Each method is one call into the host (a few hundred ns): read only what you need,
/// read several values with one [`select`](Self::select), prefer `label`/`label_values`
/// over `labels`, and match env names in the host with
/// [`env_matching`](Self::env_matching) / [`mask_env_matching`](Self::mask_env_matching).
///
/// The multi-key reads take any [`KeyList`]: a [`Keys`](crate::Keys) or a list of
/// `String`s goes to the host as it is, a list of `&str` (`&["team", "app"]`) is copied
/// into `String`s on each call. Build the lists a plugin reads on every record once, in
/// its `init` function, as with [`FieldSet`](crate::FieldSet).
///
/// ```
/// # use gannet_guest::testing::MockContainer;
/// # let mut record = gannet_guest::Container::from(
/// #     MockContainer::new().namespace("shop").pod_label("team", "payments").env("DB_PASSWORD", "x"),
/// # );
/// assert_eq!(record.namespace(), "shop");
/// if let Some(team) = record.pod_label("team") {
///     record.set_tag("team", &team);
/// }
/// record.mask_env_matching(&["*PASSWORD*"], "***");
/// assert_eq!(record.tag("team").as_deref(), Some("payments"));
/// assert_eq!(record.env("DB_PASSWORD").as_deref(), Some("***"));
/// ```
pub struct Container<'a> {
    inner: Inner<'a>,
}

/// Defines read-only accessors that forward to the handle unchanged.
macro_rules! accessors {
    ($( $(#[$doc:meta])* $name:ident -> $ty:ty; )*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> $ty {
                self.handle().$name()
            }
        )*
    };
}

impl<'a> Container<'a> {
    #[cfg(target_arch = "wasm32")]
    #[doc(hidden)]
    pub fn __from_wit(handle: &'a crate::wit::gannet::plugin::container::Container) -> Self {
        Self { inner: handle }
    }

    #[cfg(target_arch = "wasm32")]
    fn handle(&self) -> &crate::wit::gannet::plugin::container::Container {
        self.inner
    }

    #[cfg(target_arch = "wasm32")]
    fn handle_mut(&mut self) -> &crate::wit::gannet::plugin::container::Container {
        self.inner
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn handle(&self) -> &crate::testing::MockHandle {
        &self.inner.0
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn handle_mut(&mut self) -> &mut crate::testing::MockHandle {
        &mut self.inner.0
    }

    accessors! {
        /// Full container id.
        id -> String;
        /// Container name from the runtime (`web`).
        name -> String;
        /// Host pid of the container's process; 0 when it has none.
        pid -> u32;
        /// Creation time, RFC 3339.
        created -> Option<String>;
        /// Start time, RFC 3339.
        started -> Option<String>;
        /// Finish time, RFC 3339.
        finished -> Option<String>;
        /// Exit code, once exited.
        exit_code -> Option<i32>;
        /// The runtime's reason for the exit (`Completed`, `Error`, `OOMKilled`).
        reason -> Option<String>;
        /// The kubelet's restart count.
        restart_count -> u32;
        /// The pod sandbox id.
        sandbox_id -> String;
        /// Runtime name (`containerd`).
        runtime_name -> String;
        /// Snapshotter (`overlayfs`).
        snapshotter -> Option<String>;
        /// Image name.
        image -> String;
        /// Image reference or digest.
        image_digest -> Option<String>;
        /// Host path of the container's log file.
        log_path -> String;
        /// Log file format (`cri`).
        log_format -> String;
        /// Cgroup path.
        cgroup_path -> Option<String>;
        /// Host path of the container's `/etc/hosts`.
        hosts_path -> Option<String>;
        /// Host path of the container's `/etc/hostname`.
        hostname_path -> Option<String>;
        /// The container's hostname.
        hostname -> Option<String>;
        /// Overlay upper directory: where the container's writes land on the host.
        upper_dir -> Option<String>;
        /// The container's root filesystem on the host.
        rootfs_dir -> Option<String>;
        /// Kubernetes namespace (empty outside Kubernetes).
        namespace -> String;
        /// Pod name.
        pod_name -> String;
        /// Pod uid.
        pod_uid -> String;
        /// Container name within the pod.
        container_name -> String;
        /// True for the pod's sandbox (pause) container.
        is_sandbox -> bool;
        /// When the pod started on this node, RFC 3339. Since `gannet:plugin@0.2.0`.
        pod_start_time -> Option<String>;
        /// The pod's IPs, the primary first; empty when the runtime reports none. Since
        /// `gannet:plugin@0.2.0`.
        pod_ips -> Vec<String>;
        /// Names of all env vars (no values).
        env_names -> Vec<String>;
        /// The whole record as JSON, in the same shape as `gannet list --json`, env values
        /// included. Costs about as much as the record is large: prefer the accessors.
        to_json -> String;
    }

    /// Current state.
    ///
    /// ```
    /// # let record = gannet_guest::Container::from(gannet_guest::testing::MockContainer::new());
    /// use gannet_guest::ContainerState;
    /// assert_eq!(record.state(), ContainerState::Running);
    /// ```
    pub fn state(&self) -> ContainerState {
        self.handle().state().into()
    }

    /// The workload that owns the pod (inferred by the agent). Since `gannet:plugin@0.2.0`.
    ///
    /// ```
    /// # use gannet_guest::testing::MockContainer;
    /// let mut mock = MockContainer::new();
    /// mock.owner.deployment = Some("web".into());
    /// let record = gannet_guest::Container::from(mock);
    /// assert_eq!(record.owner().deployment.as_deref(), Some("web"));
    /// ```
    pub fn owner(&self) -> Owner {
        self.handle().owner().into()
    }

    /// The container's CPU and memory requests and limits. Since `gannet:plugin@0.2.0`.
    pub fn resources(&self) -> Resources {
        self.handle().resources().into()
    }

    /// The ports the container declares. Since `gannet:plugin@0.2.0`.
    pub fn ports(&self) -> Vec<Port> {
        self.handle().ports().into_iter().map(Port::from).collect()
    }

    /// Any number of values in one call into the host: the cheapest way to read several
    /// fields, whatever mix of record fields and map keys they are. Build `fields` once
    /// (in your `init` function) as a [`FieldSet`](crate::FieldSet), whose slots say
    /// where each value is, and pass it on every call: it goes to the host as it is. A
    /// plain list of [`Field`](crate::Field)s (`&[..]`, `&vec![..]`) works too, but is
    /// converted to the WIT type on every call (see [`FieldList`]). See [`Selection`].
    ///
    /// ```
    /// # use gannet_guest::testing::MockContainer;
    /// use gannet_guest::{Field, FieldSet};
    /// let record = gannet_guest::Container::from(
    ///     MockContainer::new().namespace("shop").env("LOG_LEVEL", "debug").sandbox(false),
    /// );
    /// let mut fields = FieldSet::new(); // once, in your init function
    /// let namespace = fields.add(Field::Namespace);
    /// let level = fields.add(Field::env("LOG_LEVEL"));
    /// let sandbox = fields.add(Field::IsSandbox);
    /// let values = record.select(&fields);
    /// assert_eq!(values.at(namespace), Some("shop"));
    /// assert_eq!(values.at(level), Some("debug"));
    /// assert_eq!(values.at(sandbox), Some("false"));
    /// // The same read from a plain list (converted for this call), by position:
    /// let values = record.select(&[Field::Namespace, Field::env("LOG_LEVEL")]);
    /// assert_eq!(values.get(1), Some("debug"));
    /// ```
    pub fn select(&self, fields: &(impl FieldList + ?Sized)) -> Selection {
        Selection::from_wit(self.handle().select(&fields.wit_fields()))
    }

    /// One container label.
    pub fn label(&self, key: &str) -> Option<String> {
        self.handle().label(key)
    }

    /// Several container labels in one call, in the order of `keys`: a
    /// [`Keys`](crate::Keys) built once, or any [`KeyList`] (a list of `&str` is copied
    /// per call).
    ///
    /// ```
    /// # use gannet_guest::testing::MockContainer;
    /// # let record = gannet_guest::Container::from(MockContainer::new().label("a", "1"));
    /// use gannet_guest::Keys;
    /// let keys = Keys::new(["a", "b"]); // once, in your init function
    /// assert_eq!(record.label_values(&keys), vec![Some("1".to_string()), None]);
    /// assert_eq!(record.label_values(&["a", "b"]), record.label_values(&keys));
    /// ```
    pub fn label_values(&self, keys: &(impl KeyList + ?Sized)) -> Vec<Option<String>> {
        self.handle().label_values(&keys.key_list())
    }

    /// All container labels, sorted by key. Costs about as much per string as the strings
    /// are long: prefer [`label`](Self::label) or [`label_values`](Self::label_values).
    pub fn labels(&self) -> Vec<(String, String)> {
        pairs(self.handle().labels())
    }

    /// One pod label.
    pub fn pod_label(&self, key: &str) -> Option<String> {
        self.handle().pod_label(key)
    }

    /// Several pod labels in one call, in the order of `keys` (see
    /// [`label_values`](Self::label_values)).
    pub fn pod_label_values(&self, keys: &(impl KeyList + ?Sized)) -> Vec<Option<String>> {
        self.handle().pod_label_values(&keys.key_list())
    }

    /// All pod labels, sorted by key.
    pub fn pod_labels(&self) -> Vec<(String, String)> {
        pairs(self.handle().pod_labels())
    }

    /// One container annotation.
    pub fn annotation(&self, key: &str) -> Option<String> {
        self.handle().annotation(key)
    }

    /// Several container annotations in one call, in the order of `keys` (see
    /// [`label_values`](Self::label_values)).
    ///
    /// ```
    /// # use gannet_guest::testing::MockContainer;
    /// # let record = gannet_guest::Container::from(MockContainer::new().annotation("a", "1"));
    /// let keys = vec!["a".to_string(), "b".to_string()]; // Strings: not copied
    /// assert_eq!(record.annotation_values(&keys), vec![Some("1".to_string()), None]);
    /// ```
    pub fn annotation_values(&self, keys: &(impl KeyList + ?Sized)) -> Vec<Option<String>> {
        self.handle().annotation_values(&keys.key_list())
    }

    /// All container annotations, sorted by key.
    pub fn annotations(&self) -> Vec<(String, String)> {
        pairs(self.handle().annotations())
    }

    /// One pod annotation.
    pub fn pod_annotation(&self, key: &str) -> Option<String> {
        self.handle().pod_annotation(key)
    }

    /// Several pod annotations in one call, in the order of `keys` (see
    /// [`label_values`](Self::label_values)).
    pub fn pod_annotation_values(&self, keys: &(impl KeyList + ?Sized)) -> Vec<Option<String>> {
        self.handle().pod_annotation_values(&keys.key_list())
    }

    /// All pod annotations, sorted by key.
    pub fn pod_annotations(&self) -> Vec<(String, String)> {
        pairs(self.handle().pod_annotations())
    }

    /// One env var's value.
    pub fn env(&self, name: &str) -> Option<String> {
        self.handle().env(name)
    }

    /// Several env vars' values in one call, in the order of `names` (see
    /// [`label_values`](Self::label_values)).
    ///
    /// ```
    /// # use gannet_guest::testing::MockContainer;
    /// # let record = gannet_guest::Container::from(MockContainer::new().env("HOME", "/root"));
    /// let names = gannet_guest::Keys::new(["HOME", "LANG"]);
    /// assert_eq!(record.env_values(&names), vec![Some("/root".to_string()), None]);
    /// ```
    pub fn env_values(&self, names: &(impl KeyList + ?Sized)) -> Vec<Option<String>> {
        self.handle().env_values(&names.key_list())
    }

    /// Env vars whose names match any of these glob patterns, matched in the host
    /// (`*` matches any run of characters; case-sensitive), sorted by name. `patterns` is
    /// any [`KeyList`], as for [`label_values`](Self::label_values).
    ///
    /// ```
    /// # use gannet_guest::testing::MockContainer;
    /// # let record = gannet_guest::Container::from(
    /// #     MockContainer::new().env("API_KEY", "k").env("HOME", "/root"),
    /// # );
    /// let found = record.env_matching(&["*_KEY"]);
    /// assert_eq!(found, vec![("API_KEY".to_string(), "k".to_string())]);
    /// ```
    pub fn env_matching(&self, patterns: &(impl KeyList + ?Sized)) -> Vec<(String, String)> {
        pairs(self.handle().env_matching(&patterns.key_list()))
    }

    /// All env vars with their values, sorted by name.
    pub fn envs(&self) -> Vec<(String, String)> {
        pairs(self.handle().envs())
    }

    /// All mounts.
    pub fn mounts(&self) -> Vec<Mount> {
        self.handle()
            .mounts()
            .into_iter()
            .map(Mount::from)
            .collect()
    }

    /// One tag.
    pub fn tag(&self, key: &str) -> Option<String> {
        self.handle().tag(key)
    }

    /// All tags, sorted by key.
    pub fn tags(&self) -> Vec<(String, String)> {
        pairs(self.handle().tags())
    }

    /// Sets a tag (a free-form key/value that outputs carry).
    ///
    /// ```
    /// # let mut record = gannet_guest::Container::from(gannet_guest::testing::MockContainer::new());
    /// record.set_tag("team", "payments");
    /// assert_eq!(record.tag("team").as_deref(), Some("payments"));
    /// ```
    pub fn set_tag(&mut self, key: &str, value: &str) {
        self.handle_mut().set_tag(key, value);
    }

    /// Sets several tags in one call into the host (cheaper than one
    /// [`set_tag`](Self::set_tag) per tag). A later pair with the same key wins.
    ///
    /// ```
    /// # let mut record = gannet_guest::Container::from(gannet_guest::testing::MockContainer::new());
    /// record.set_tags([("team", "payments"), ("tier", "api")]);
    /// assert_eq!(record.tag("tier").as_deref(), Some("api"));
    /// ```
    pub fn set_tags<K, V>(&mut self, tags: impl IntoIterator<Item = (K, V)>)
    where
        K: Into<String>,
        V: Into<String>,
    {
        let tags: Vec<crate::wit::gannet::plugin::types::KeyValue> = tags
            .into_iter()
            .map(|(key, value)| crate::wit::gannet::plugin::types::KeyValue {
                key: key.into(),
                value: value.into(),
            })
            .collect();
        if !tags.is_empty() {
            self.handle_mut().set_tags(&tags);
        }
    }

    /// Removes a tag; false if it was not there.
    pub fn remove_tag(&mut self, key: &str) -> bool {
        self.handle_mut().remove_tag(key)
    }

    /// Sets a container label.
    pub fn set_label(&mut self, key: &str, value: &str) {
        self.handle_mut().set_label(key, value);
    }

    /// Removes a container label; false if it was not there.
    pub fn remove_label(&mut self, key: &str) -> bool {
        self.handle_mut().remove_label(key)
    }

    /// Removes an env var; false if it was not there.
    pub fn remove_env(&mut self, name: &str) -> bool {
        self.handle_mut().remove_env(name)
    }

    /// Replaces an env var's value with `mask`; false if it was not there.
    pub fn mask_env(&mut self, name: &str, mask: &str) -> bool {
        self.handle_mut().mask_env(name, mask)
    }

    /// Removes every env var whose name matches any pattern; returns how many. `patterns`
    /// is any [`KeyList`], as for [`label_values`](Self::label_values).
    ///
    /// ```
    /// # use gannet_guest::testing::MockContainer;
    /// # let mut record = gannet_guest::Container::from(
    /// #     MockContainer::new().env("GITHUB_TOKEN", "t").env("HOME", "/root"),
    /// # );
    /// let secrets = gannet_guest::Keys::new(["*TOKEN*"]); // once, in your init function
    /// assert_eq!(record.remove_env_matching(&secrets), 1);
    /// assert_eq!(record.env_names(), vec!["HOME".to_string()]);
    /// ```
    pub fn remove_env_matching(&mut self, patterns: &(impl KeyList + ?Sized)) -> u32 {
        self.handle_mut().remove_env_matching(&patterns.key_list())
    }

    /// Masks every env var whose name matches any pattern; returns how many. `patterns` is
    /// any [`KeyList`], as for [`label_values`](Self::label_values).
    pub fn mask_env_matching(&mut self, patterns: &(impl KeyList + ?Sized), mask: &str) -> u32 {
        self.handle_mut()
            .mask_env_matching(&patterns.key_list(), mask)
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Container<'static> {
    /// The mock record behind this container (host target only), to inspect after a call.
    ///
    /// ```
    /// # use gannet_guest::testing::MockContainer;
    /// let mut record = gannet_guest::Container::from(MockContainer::new());
    /// record.set_tag("k", "v");
    /// assert_eq!(record.mock().tags.get("k").map(String::as_str), Some("v"));
    /// ```
    pub fn mock(&self) -> &crate::testing::MockContainer {
        self.inner.0.mock()
    }

    /// The mock record behind this container, by value (host target only).
    pub fn into_mock(self) -> crate::testing::MockContainer {
        self.inner.0.into_mock()
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl From<crate::testing::MockContainer> for Container<'static> {
    fn from(mock: crate::testing::MockContainer) -> Self {
        Self {
            inner: (
                crate::testing::MockHandle::new(mock),
                std::marker::PhantomData,
            ),
        }
    }
}
