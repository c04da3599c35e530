//! The data of one plugin Store: the record lent to the current call, its change log,
//! the WASI context, the memory limiter, and the host-import implementations.
//!
//! Owns the `container` resource methods and the `host` imports. Reads see the record
//! plus this call's changes; changes live in an [`Overlay`] that the instance applies
//! only when `process` returns `ok` and discards otherwise. Never logs env values.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::glob::GlobSet;
use super::metrics::PluginCounters;
use super::wit::gannet::plugin::{container, host, types};
use crate::record::{ContainerRecord, ContainerState};

/// The host-side value behind a `container` handle. The record itself lives in
/// [`HostState`]; the handle only proves the guest holds a valid borrow.
pub struct ContainerHandle;

/// Changes made to one map during the current call: `Some` sets, `None` removes.
type MapChanges = BTreeMap<String, Option<String>>;

/// The per-call change log: edits to tags, labels and env, applied only on `ok`.
#[derive(Debug, Default)]
pub struct Overlay {
    tags: MapChanges,
    labels: MapChanges,
    env: MapChanges,
}

impl Overlay {
    /// True when the call changed nothing.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.labels.is_empty() && self.env.is_empty()
    }

    /// Forgets every change (the call failed).
    pub fn clear(&mut self) {
        self.tags.clear();
        self.labels.clear();
        self.env.clear();
    }

    /// Applies every change to `record` and empties the log (the call returned `ok`).
    pub fn apply(&mut self, record: &mut ContainerRecord) {
        apply_map(&mut record.tags, &mut self.tags);
        apply_map(&mut record.labels, &mut self.labels);
        apply_map(&mut record.env, &mut self.env);
    }
}

fn apply_map(base: &mut BTreeMap<String, String>, changes: &mut MapChanges) {
    if changes.is_empty() {
        // The common case (a filter): nothing to move, nothing to drop.
        return;
    }
    for (key, change) in std::mem::take(changes) {
        match change {
            Some(value) => {
                base.insert(key, value);
            }
            None => {
                base.remove(&key);
            }
        }
    }
}

/// One value as the call sees it: the change log first, then the record.
fn lookup<'a>(
    base: &'a BTreeMap<String, String>,
    changes: &'a MapChanges,
    key: &str,
) -> Option<&'a String> {
    match changes.get(key) {
        Some(change) => change.as_ref(),
        None => base.get(key),
    }
}

/// Every key/value as the call sees it, in key order.
fn merged(base: &BTreeMap<String, String>, changes: &MapChanges) -> Vec<(String, String)> {
    if changes.is_empty() {
        return base.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    let mut all: BTreeMap<&String, &String> = base.iter().collect();
    for (key, change) in changes {
        match change {
            Some(value) => {
                all.insert(key, value);
            }
            None => {
                all.remove(key);
            }
        }
    }
    all.into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The key/values whose keys match any of `globs`, as the call sees them, in key
/// order. Only the matches are copied, never the whole map.
fn matching<'a>(
    base: &'a BTreeMap<String, String>,
    changes: &'a MapChanges,
    globs: &GlobSet,
) -> Vec<(&'a String, &'a String)> {
    let hits = base.iter().filter(|(k, _)| globs.is_match(k));
    if changes.is_empty() {
        return hits.collect();
    }
    let mut all: BTreeMap<&String, &String> = hits.collect();
    for (key, change) in changes {
        if !globs.is_match(key) {
            continue;
        }
        match change {
            Some(value) => {
                all.insert(key, value);
            }
            None => {
                all.remove(key);
            }
        }
    }
    all.into_iter().collect()
}

fn key_values(pairs: Vec<(String, String)>) -> Vec<types::KeyValue> {
    pairs
        .into_iter()
        .map(|(key, value)| types::KeyValue { key, value })
        .collect()
}

/// A memory limiter that remembers whether it refused a growth, so a failed call can be
/// classified as "memory limit" rather than a plain trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    /// Most bytes one linear memory may grow to; `None` means no limit.
    limit_bytes: Option<usize>,
    /// Set when a growth was refused; reset before each call.
    pub hit: bool,
}

impl MemoryLimiter {
    /// A limiter allowing at most `limit_bytes` per memory.
    pub fn new(limit_bytes: Option<usize>) -> Self {
        Self {
            limit_bytes,
            hit: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let within_max = maximum.is_none_or(|max| desired <= max);
        let within_limit = self.limit_bytes.is_none_or(|limit| desired <= limit);
        if !within_limit {
            self.hit = true;
        }
        Ok(within_max && within_limit)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; 100k entries is far beyond any real plugin.
        const MAX_TABLE_ELEMENTS: usize = 100_000;
        Ok(desired <= MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}

/// Lines per second a plugin may log before lines are dropped (and counted).
const LOG_LINES_PER_SEC: f64 = 20.0;
/// Lines a plugin may log in one burst.
const LOG_BURST_LINES: f64 = 50.0;

/// A token bucket shared by every instance of one plugin.
#[derive(Debug)]
pub struct LogLimiter {
    bucket: Mutex<(f64, Instant)>,
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self {
            bucket: Mutex::new((LOG_BURST_LINES, Instant::now())),
        }
    }
}

impl LogLimiter {
    /// Takes one token; false when the plugin is over its rate.
    pub fn allow(&self) -> bool {
        let Ok(mut guard) = self.bucket.lock() else {
            return false;
        };
        let (tokens, last) = &mut *guard;
        let now = Instant::now();
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * LOG_LINES_PER_SEC)
            .min(LOG_BURST_LINES);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What every instance of one plugin shares with the host imports.
#[derive(Debug)]
pub struct PluginContext {
    /// The plugin's name (its file stem), used in logs and metrics.
    pub name: Arc<str>,
    /// The node name returned by `node-name`.
    pub node_name: Arc<str>,
    /// The plugin's log rate limit.
    pub log_limiter: LogLimiter,
    /// The plugin's metric handles.
    pub counters: PluginCounters,
}

impl PluginContext {
    /// Logs one line from the plugin at `level`, if the rate limit allows; counts drops.
    pub fn log_line(&self, level: types::Level, message: &str) {
        if !self.log_limiter.allow() {
            self.counters.log_lines_dropped.inc();
            return;
        }
        let plugin = &*self.name;
        match level {
            types::Level::Trace => tracing::trace!(message = "Plugin log.", plugin, line = message),
            types::Level::Debug => tracing::debug!(message = "Plugin log.", plugin, line = message),
            types::Level::Info => tracing::info!(message = "Plugin log.", plugin, line = message),
            types::Level::Warn => tracing::warn!(message = "Plugin log.", plugin, line = message),
            types::Level::Error => tracing::error!(message = "Plugin log.", plugin, line = message),
        }
    }
}

/// The data of one plugin Store.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory limiter installed with `Store::limiter`.
    pub limiter: MemoryLimiter,
    /// The record lent to the current call. Boxed so that lending it is a pointer swap,
    /// not a copy of the whole struct; never cloned.
    pub record: Box<ContainerRecord>,
    /// This call's changes.
    pub overlay: Overlay,
    /// The env-name patterns last passed by the plugin, compiled (plugins pass the same
    /// list on every call, so it is compiled once).
    globs: GlobSet,
    context: Arc<PluginContext>,
}

impl HostState {
    /// A Store's data with the given WASI context (empty plus sidecar grants).
    pub fn new(wasi: WasiCtx, limit_bytes: Option<usize>, context: Arc<PluginContext>) -> Self {
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limit_bytes),
            record: Box::default(),
            overlay: Overlay::default(),
            globs: GlobSet::default(),
            context,
        }
    }

    /// Pushes the one owning `container` handle this Store lends (as a borrow) to every call.
    pub fn push_handle(&mut self) -> wasmtime::Result<Resource<ContainerHandle>> {
        Ok(self.table.push(ContainerHandle)?)
    }

    fn check(&self, handle: &Resource<ContainerHandle>) -> wasmtime::Result<&ContainerRecord> {
        self.table.get(handle)?;
        Ok(&*self.record)
    }

    /// Checks the handle and makes `globs` the compiled form of `patterns`.
    fn prepare_globs(
        &mut self,
        handle: &Resource<ContainerHandle>,
        patterns: &[String],
    ) -> wasmtime::Result<()> {
        self.check(handle)?;
        if !self.globs.is_for(patterns) {
            self.globs = GlobSet::new(patterns);
        }
        Ok(())
    }

    /// The names of the env vars matching the compiled `globs`, as the call sees them.
    fn matching_env_names(&self) -> Vec<String> {
        matching(&self.record.env, &self.overlay.env, &self.globs)
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Several values of an editable map (labels, env), as this call sees them.
    fn overlaid_values(
        &self,
        handle: &Resource<ContainerHandle>,
        keys: &[String],
        base: impl Fn(&ContainerRecord) -> &BTreeMap<String, String>,
        changes: impl Fn(&Overlay) -> &MapChanges,
    ) -> wasmtime::Result<Vec<Option<String>>> {
        let (base, changes) = (base(self.check(handle)?), changes(&self.overlay));
        Ok(keys
            .iter()
            .map(|k| lookup(base, changes, k).cloned())
            .collect())
    }

    fn values(
        &self,
        handle: &Resource<ContainerHandle>,
        keys: Vec<String>,
        pick: impl Fn(&ContainerRecord) -> &BTreeMap<String, String>,
    ) -> wasmtime::Result<Vec<Option<String>>> {
        let map = pick(self.check(handle)?);
        Ok(keys.iter().map(|k| map.get(k).cloned()).collect())
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn to_wit_state(state: ContainerState) -> types::ContainerState {
    match state {
        ContainerState::Created => types::ContainerState::Created,
        ContainerState::Running => types::ContainerState::Running,
        ContainerState::Exited => types::ContainerState::Exited,
        ContainerState::Unknown => types::ContainerState::Unknown,
    }
}

type Handle = Resource<ContainerHandle>;
type R<T> = wasmtime::Result<T>;

impl types::Host for HostState {}
impl container::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::Level, message: String) -> R<()> {
        self.context.log_line(level, &message);
        Ok(())
    }

    fn node_name(&mut self) -> R<String> {
        Ok(self.context.node_name.to_string())
    }
}

impl container::HostContainer for HostState {
    fn id(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.id.clone())
    }
    fn name(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.name.clone())
    }
    fn state(&mut self, h: Handle) -> R<types::ContainerState> {
        Ok(to_wit_state(self.check(&h)?.state))
    }
    fn pid(&mut self, h: Handle) -> R<u32> {
        Ok(self.check(&h)?.pid)
    }
    fn created(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.created.map(|t| t.to_string()))
    }
    fn started(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.started.map(|t| t.to_string()))
    }
    fn finished(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.finished.map(|t| t.to_string()))
    }
    fn exit_code(&mut self, h: Handle) -> R<Option<i32>> {
        Ok(self.check(&h)?.exit_code)
    }
    fn reason(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.reason.clone())
    }
    fn restart_count(&mut self, h: Handle) -> R<u32> {
        Ok(self.check(&h)?.restart_count)
    }
    fn sandbox_id(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.sandbox_id.clone())
    }
    fn runtime_name(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.runtime_name.clone())
    }
    fn snapshotter(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.snapshotter.clone())
    }
    fn image(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.image.clone())
    }
    fn image_digest(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.image_digest.clone())
    }
    fn log_path(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.log_path.clone())
    }
    fn log_format(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.log_format.clone())
    }
    fn cgroup_path(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.cgroup_path.clone())
    }
    fn hosts_path(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.hosts_path.clone())
    }
    fn hostname_path(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.hostname_path.clone())
    }
    fn hostname(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.hostname.clone())
    }
    fn upper_dir(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.upper_dir.clone())
    }
    fn rootfs_dir(&mut self, h: Handle) -> R<Option<String>> {
        Ok(self.check(&h)?.rootfs_dir.clone())
    }
    fn namespace(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.k8s.namespace.clone())
    }
    fn pod_name(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.k8s.pod_name.clone())
    }
    fn pod_uid(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.k8s.pod_uid.clone())
    }
    fn container_name(&mut self, h: Handle) -> R<String> {
        Ok(self.check(&h)?.k8s.container_name.clone())
    }
    fn is_sandbox(&mut self, h: Handle) -> R<bool> {
        Ok(self.check(&h)?.k8s.is_sandbox)
    }

    fn label(&mut self, h: Handle, key: String) -> R<Option<String>> {
        let record = self.check(&h)?;
        Ok(lookup(&record.labels, &self.overlay.labels, &key).cloned())
    }
    fn label_values(&mut self, h: Handle, keys: Vec<String>) -> R<Vec<Option<String>>> {
        self.overlaid_values(&h, &keys, |r| &r.labels, |o| &o.labels)
    }
    fn labels(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
        let record = self.check(&h)?;
        Ok(key_values(merged(&record.labels, &self.overlay.labels)))
    }
    fn pod_label(&mut self, h: Handle, key: String) -> R<Option<String>> {
        Ok(self.check(&h)?.k8s.pod_labels.get(&key).cloned())
    }
    fn pod_label_values(&mut self, h: Handle, keys: Vec<String>) -> R<Vec<Option<String>>> {
        self.values(&h, keys, |r| &r.k8s.pod_labels)
    }
    fn pod_labels(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
        Ok(key_values(merged(
            &self.check(&h)?.k8s.pod_labels,
            &MapChanges::new(),
        )))
    }
    fn annotation(&mut self, h: Handle, key: String) -> R<Option<String>> {
        Ok(self.check(&h)?.annotations.get(&key).cloned())
    }
    fn annotation_values(&mut self, h: Handle, keys: Vec<String>) -> R<Vec<Option<String>>> {
        self.values(&h, keys, |r| &r.annotations)
    }
    fn annotations(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
        Ok(key_values(merged(
            &self.check(&h)?.annotations,
            &MapChanges::new(),
        )))
    }
    fn pod_annotation(&mut self, h: Handle, key: String) -> R<Option<String>> {
        Ok(self.check(&h)?.k8s.pod_annotations.get(&key).cloned())
    }
    fn pod_annotation_values(&mut self, h: Handle, keys: Vec<String>) -> R<Vec<Option<String>>> {
        self.values(&h, keys, |r| &r.k8s.pod_annotations)
    }
    fn pod_annotations(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
        Ok(key_values(merged(
            &self.check(&h)?.k8s.pod_annotations,
            &MapChanges::new(),
        )))
    }
    fn env(&mut self, h: Handle, name: String) -> R<Option<String>> {
        let record = self.check(&h)?;
        Ok(lookup(&record.env, &self.overlay.env, &name).cloned())
    }
    fn env_values(&mut self, h: Handle, names: Vec<String>) -> R<Vec<Option<String>>> {
        self.overlaid_values(&h, &names, |r| &r.env, |o| &o.env)
    }
    fn env_names(&mut self, h: Handle) -> R<Vec<String>> {
        let record = self.check(&h)?;
        Ok(merged(&record.env, &self.overlay.env)
            .into_iter()
            .map(|(k, _)| k)
            .collect())
    }
    fn env_matching(&mut self, h: Handle, patterns: Vec<String>) -> R<Vec<types::KeyValue>> {
        self.prepare_globs(&h, &patterns)?;
        Ok(matching(&self.record.env, &self.overlay.env, &self.globs)
            .into_iter()
            .map(|(k, v)| types::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect())
    }
    fn envs(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
        let record = self.check(&h)?;
        Ok(key_values(merged(&record.env, &self.overlay.env)))
    }
    fn mounts(&mut self, h: Handle) -> R<Vec<types::Mount>> {
        Ok(self
            .check(&h)?
            .mounts
            .iter()
            .map(|m| types::Mount {
                source: m.source.clone(),
                destination: m.destination.clone(),
                kind: m.kind.clone(),
            })
            .collect())
    }
    fn tag(&mut self, h: Handle, key: String) -> R<Option<String>> {
        let record = self.check(&h)?;
        Ok(lookup(&record.tags, &self.overlay.tags, &key).cloned())
    }
    fn tags(&mut self, h: Handle) -> R<Vec<types::KeyValue>> {
        let record = self.check(&h)?;
        Ok(key_values(merged(&record.tags, &self.overlay.tags)))
    }
    fn to_json(&mut self, h: Handle) -> R<String> {
        let record = self.check(&h)?;
        let json = if self.overlay.is_empty() {
            serde_json::to_string(record)
        } else {
            let mut view = record.clone();
            let mut overlay = Overlay {
                tags: self.overlay.tags.clone(),
                labels: self.overlay.labels.clone(),
                env: self.overlay.env.clone(),
            };
            overlay.apply(&mut view);
            serde_json::to_string(&view)
        };
        Ok(json?)
    }

    fn set_tag(&mut self, h: Handle, key: String, value: String) -> R<()> {
        self.check(&h)?;
        self.overlay.tags.insert(key, Some(value));
        Ok(())
    }
    fn set_tags(&mut self, h: Handle, tags: Vec<types::KeyValue>) -> R<()> {
        self.check(&h)?;
        for types::KeyValue { key, value } in tags {
            self.overlay.tags.insert(key, Some(value));
        }
        Ok(())
    }
    fn remove_tag(&mut self, h: Handle, key: String) -> R<bool> {
        let record = self.check(&h)?;
        let existed = lookup(&record.tags, &self.overlay.tags, &key).is_some();
        if existed {
            self.overlay.tags.insert(key, None);
        }
        Ok(existed)
    }
    fn set_label(&mut self, h: Handle, key: String, value: String) -> R<()> {
        self.check(&h)?;
        self.overlay.labels.insert(key, Some(value));
        Ok(())
    }
    fn remove_label(&mut self, h: Handle, key: String) -> R<bool> {
        let record = self.check(&h)?;
        let existed = lookup(&record.labels, &self.overlay.labels, &key).is_some();
        if existed {
            self.overlay.labels.insert(key, None);
        }
        Ok(existed)
    }
    fn remove_env(&mut self, h: Handle, name: String) -> R<bool> {
        let record = self.check(&h)?;
        let existed = lookup(&record.env, &self.overlay.env, &name).is_some();
        if existed {
            self.overlay.env.insert(name, None);
        }
        Ok(existed)
    }
    fn mask_env(&mut self, h: Handle, name: String, mask: String) -> R<bool> {
        let record = self.check(&h)?;
        let existed = lookup(&record.env, &self.overlay.env, &name).is_some();
        if existed {
            self.overlay.env.insert(name, Some(mask));
        }
        Ok(existed)
    }
    fn remove_env_matching(&mut self, h: Handle, patterns: Vec<String>) -> R<u32> {
        self.prepare_globs(&h, &patterns)?;
        let names = self.matching_env_names();
        let count = u32::try_from(names.len()).unwrap_or(u32::MAX);
        for name in names {
            self.overlay.env.insert(name, None);
        }
        Ok(count)
    }
    fn mask_env_matching(&mut self, h: Handle, patterns: Vec<String>, mask: String) -> R<u32> {
        self.prepare_globs(&h, &patterns)?;
        let names = self.matching_env_names();
        let count = u32::try_from(names.len()).unwrap_or(u32::MAX);
        for name in names {
            self.overlay.env.insert(name, Some(mask.clone()));
        }
        Ok(count)
    }

    fn drop(&mut self, h: Handle) -> R<()> {
        // The host owns the record; dropping a handle only frees its table slot.
        self.table.delete(h)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_applies_sets_and_removes() {
        let mut record = ContainerRecord::default();
        record.env.insert("A".into(), "1".into());
        record.env.insert("B".into(), "2".into());
        let mut overlay = Overlay::default();
        overlay.env.insert("A".into(), None);
        overlay.env.insert("B".into(), Some("***".into()));
        overlay.tags.insert("team".into(), Some("x".into()));
        assert_eq!(lookup(&record.env, &overlay.env, "A"), None);
        assert_eq!(
            merged(&record.env, &overlay.env),
            vec![("B".to_string(), "***".to_string())]
        );
        overlay.apply(&mut record);
        assert!(overlay.is_empty());
        assert_eq!(record.env.get("A"), None);
        assert_eq!(record.env.get("B").map(String::as_str), Some("***"));
        assert_eq!(record.tags.get("team").map(String::as_str), Some("x"));
    }

    #[test]
    fn matching_sees_this_calls_changes_and_copies_only_matches() {
        let mut base = BTreeMap::new();
        base.insert("DB_PASSWORD".to_string(), "x".to_string());
        base.insert("API_TOKEN".to_string(), "t".to_string());
        base.insert("HOME".to_string(), "/root".to_string());
        let mut changes = MapChanges::new();
        changes.insert("API_TOKEN".into(), None);
        changes.insert("NEW_PASSWORD".into(), Some("n".into()));
        changes.insert("OTHER".into(), Some("o".into()));
        let globs = GlobSet::new(&["*PASSWORD*".to_string(), "*TOKEN*".to_string()]);
        let found: Vec<(&str, &str)> = matching(&base, &changes, &globs)
            .into_iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(found, vec![("DB_PASSWORD", "x"), ("NEW_PASSWORD", "n")]);
        assert!(matching(&base, &MapChanges::new(), &GlobSet::default()).is_empty());
    }

    #[test]
    fn cleared_overlay_leaves_record_untouched() {
        let mut record = ContainerRecord::default();
        record.labels.insert("k".into(), "v".into());
        let before = record.clone();
        let mut overlay = Overlay::default();
        overlay.labels.insert("k".into(), None);
        overlay.clear();
        overlay.apply(&mut record);
        assert_eq!(record, before);
    }

    #[test]
    fn log_limiter_allows_a_burst_then_refuses() {
        let limiter = LogLimiter::default();
        let allowed = (0..100).filter(|_| limiter.allow()).count();
        // The burst, plus at most a token or two refilled while the loop ran.
        assert!((50..=52).contains(&allowed), "{allowed}");
    }

    #[test]
    fn limiter_refuses_growth_past_limit_and_remembers() -> wasmtime::Result<()> {
        let mut limiter = MemoryLimiter::new(Some(1 << 20));
        assert!(limiter.memory_growing(0, 1 << 19, None)?);
        assert!(!limiter.hit);
        assert!(!limiter.memory_growing(0, 2 << 20, None)?);
        assert!(limiter.hit);
        Ok(())
    }
}
