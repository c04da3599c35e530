//! The data of one plugin Store: the record lent to the current call, its undo log, the
//! WASI context, the memory limiter, and the host-import implementations.
//!
//! Owns what the host imports work with (their implementations, one per served WIT
//! version, are in `imports`): the handle check, bounded reads, the env globs. Edits go
//! straight into the lent record and are logged in an [`UndoLog`]; the instance commits
//! them when `process` returns `ok` and rolls them back otherwise. Never logs env values.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use gannet_record::{AnswerTooLarge, GlobSet};

use super::metrics::PluginCounters;
use super::undo::UndoLog;
use super::wit::ContainerHandle;
use crate::record::ContainerRecord;

/// The values of `keys` in `map`, in the order of `keys`; refused when they come to more
/// than `max_bytes` (see [`AnswerTooLarge`]).
fn values(
    map: &BTreeMap<String, String>,
    keys: &[String],
    accessor: &'static str,
    max_bytes: usize,
) -> Result<Vec<Option<String>>, AnswerTooLarge> {
    let mut total = 0usize;
    keys.iter()
        .map(|k| {
            let value = map.get(k);
            total = total.saturating_add(value.map_or(0, String::len));
            if total > max_bytes {
                return Err(AnswerTooLarge {
                    accessor,
                    limit: max_bytes,
                });
            }
            Ok(value.cloned())
        })
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
    /// Most bytes one linear memory may grow to; `None` means no limit.
    pub fn limit_bytes(&self) -> Option<usize> {
        self.limit_bytes
    }

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
    pub fn log_line(&self, level: tracing::Level, message: &str) {
        if !self.log_limiter.allow() {
            self.counters.log_lines_dropped.inc();
            return;
        }
        let plugin = &*self.name;
        match level {
            tracing::Level::TRACE => {
                tracing::trace!(message = "Plugin log.", plugin, line = message)
            }
            tracing::Level::DEBUG => {
                tracing::debug!(message = "Plugin log.", plugin, line = message)
            }
            tracing::Level::INFO => tracing::info!(message = "Plugin log.", plugin, line = message),
            tracing::Level::WARN => tracing::warn!(message = "Plugin log.", plugin, line = message),
            _ => tracing::error!(message = "Plugin log.", plugin, line = message),
        }
    }
}

/// The data of one plugin Store.
pub struct HostState {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    /// The memory limiter installed with `Store::limiter`.
    pub limiter: MemoryLimiter,
    /// The record lent to the current call. Boxed so that lending it is a pointer swap,
    /// not a copy of the whole struct; never cloned.
    pub record: Box<ContainerRecord>,
    /// This call's edits, already applied to `record`, with what they replaced.
    pub undo: UndoLog,
    /// The env-name patterns last passed by the plugin, compiled (plugins pass the same
    /// list on every call, so it is compiled once).
    pub(super) globs: GlobSet,
    pub(super) context: Arc<PluginContext>,
}

impl HostState {
    /// A Store's data with the given WASI context (empty plus sidecar grants).
    pub fn new(wasi: WasiCtx, limit_bytes: Option<usize>, context: Arc<PluginContext>) -> Self {
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(limit_bytes),
            record: Box::default(),
            undo: UndoLog::default(),
            globs: GlobSet::default(),
            context,
        }
    }

    /// Pushes the one owning `container` handle this Store lends (as a borrow) to every call.
    pub fn push_handle(&mut self) -> wasmtime::Result<Resource<ContainerHandle>> {
        Ok(self.table.push(ContainerHandle)?)
    }

    pub(super) fn check(
        &self,
        handle: &Resource<ContainerHandle>,
    ) -> wasmtime::Result<&ContainerRecord> {
        self.table.get(handle)?;
        Ok(&*self.record)
    }

    /// Checks the handle; gives the record to edit and the log to note each edit in.
    pub(super) fn edit(
        &mut self,
        handle: &Resource<ContainerHandle>,
    ) -> wasmtime::Result<(&mut ContainerRecord, &mut UndoLog)> {
        self.table.get(handle)?;
        Ok((&mut *self.record, &mut self.undo))
    }

    /// The most bytes of values one read may return: the plugin's memory limit, since
    /// more could not be copied into its memory anyway.
    pub(super) fn answer_limit(&self) -> usize {
        self.limiter.limit_bytes().unwrap_or(usize::MAX)
    }

    /// Checks the handle; the values of `keys` in the map `pick` chooses, bounded by
    /// [`answer_limit`](Self::answer_limit).
    pub(super) fn bounded_values(
        &self,
        handle: &Resource<ContainerHandle>,
        keys: &[String],
        accessor: &'static str,
        pick: impl Fn(&ContainerRecord) -> &BTreeMap<String, String>,
    ) -> wasmtime::Result<Vec<Option<String>>> {
        let map = pick(self.check(handle)?);
        Ok(values(map, keys, accessor, self.answer_limit())?)
    }

    /// Checks the handle and makes `globs` the compiled form of `patterns`.
    pub(super) fn prepare_globs(
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
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::imports::{Handle, R};
    use crate::plugins::wit::v0_2::gannet::plugin::container::HostContainer;
    use crate::plugins::wit::v0_2::gannet::plugin::types;
    use crate::record::ContainerState;
    use gannet_record::Field;

    /// A host call that reads one value, as the text `select` would give for it.
    type Read = fn(&mut HostState, Handle, &str) -> R<Option<String>>;

    /// Every `container` method that reads one value, by its WIT name, as text. The
    /// methods that read many values or edit are named in [`NOT_ONE_VALUE`].
    const ONE_VALUE: &[(&str, Read)] = &[
        ("id", |s, h, _| Ok(Some(s.id(h)?))),
        ("name", |s, h, _| Ok(Some(s.name(h)?))),
        ("state", |s, h, _| {
            let state = match s.state(h)? {
                types::ContainerState::Created => "created",
                types::ContainerState::Running => "running",
                types::ContainerState::Exited => "exited",
                types::ContainerState::Unknown => "unknown",
            };
            Ok(Some(state.to_string()))
        }),
        ("pid", |s, h, _| Ok(Some(s.pid(h)?.to_string()))),
        ("created", |s, h, _| s.created(h)),
        ("started", |s, h, _| s.started(h)),
        ("finished", |s, h, _| s.finished(h)),
        ("exit-code", |s, h, _| {
            Ok(s.exit_code(h)?.map(|c| c.to_string()))
        }),
        ("reason", |s, h, _| s.reason(h)),
        ("restart-count", |s, h, _| {
            Ok(Some(s.restart_count(h)?.to_string()))
        }),
        ("sandbox-id", |s, h, _| Ok(Some(s.sandbox_id(h)?))),
        ("runtime-name", |s, h, _| Ok(Some(s.runtime_name(h)?))),
        ("snapshotter", |s, h, _| s.snapshotter(h)),
        ("image", |s, h, _| Ok(Some(s.image(h)?))),
        ("image-digest", |s, h, _| s.image_digest(h)),
        ("log-path", |s, h, _| Ok(Some(s.log_path(h)?))),
        ("log-format", |s, h, _| Ok(Some(s.log_format(h)?))),
        ("cgroup-path", |s, h, _| s.cgroup_path(h)),
        ("hosts-path", |s, h, _| s.hosts_path(h)),
        ("hostname-path", |s, h, _| s.hostname_path(h)),
        ("hostname", |s, h, _| s.hostname(h)),
        ("upper-dir", |s, h, _| s.upper_dir(h)),
        ("rootfs-dir", |s, h, _| s.rootfs_dir(h)),
        ("namespace", |s, h, _| Ok(Some(s.namespace(h)?))),
        ("pod-name", |s, h, _| Ok(Some(s.pod_name(h)?))),
        ("pod-uid", |s, h, _| Ok(Some(s.pod_uid(h)?))),
        ("container-name", |s, h, _| Ok(Some(s.container_name(h)?))),
        ("is-sandbox", |s, h, _| {
            Ok(Some(s.is_sandbox(h)?.to_string()))
        }),
        ("label", |s, h, k| s.label(h, k.into())),
        ("pod-label", |s, h, k| s.pod_label(h, k.into())),
        ("annotation", |s, h, k| s.annotation(h, k.into())),
        ("pod-annotation", |s, h, k| s.pod_annotation(h, k.into())),
        ("env", |s, h, k| s.env(h, k.into())),
        ("tag", |s, h, k| s.tag(h, k.into())),
        ("pod-start-time", |s, h, _| s.pod_start_time(h)),
    ];

    /// The `container` methods that read many values or edit the record.
    const NOT_ONE_VALUE: &[&str] = &[
        "pod-ips",
        "owner",
        "resources",
        "ports",
        "select",
        "label-values",
        "labels",
        "pod-label-values",
        "pod-labels",
        "annotation-values",
        "annotations",
        "pod-annotation-values",
        "pod-annotations",
        "env-values",
        "env-names",
        "env-matching",
        "envs",
        "mounts",
        "tags",
        "to-json",
        "set-tag",
        "set-tags",
        "remove-tag",
        "set-label",
        "remove-label",
        "remove-env",
        "mask-env",
        "remove-env-matching",
        "mask-env-matching",
    ];

    /// A record with a distinct value in every field and a `k` key in every map.
    fn full_record() -> ContainerRecord {
        let mut r = ContainerRecord {
            id: "id-1".into(),
            name: "web".into(),
            state: ContainerState::Exited,
            pid: 42,
            created: crate::record::Timestamp::from_unix_nanos(1_700_000_000_123_456_789),
            started: crate::record::Timestamp::from_unix_nanos(1_700_000_001_000_000_000),
            finished: crate::record::Timestamp::from_unix_nanos(1_700_000_002_000_000_000),
            exit_code: Some(-1),
            reason: Some("OOMKilled".into()),
            restart_count: 3,
            sandbox_id: "sb".into(),
            runtime_name: "containerd".into(),
            snapshotter: Some("overlayfs".into()),
            image: "img".into(),
            image_digest: Some("sha256:1".into()),
            log_path: "/log".into(),
            log_format: "cri".into(),
            cgroup_path: Some("/cg".into()),
            hosts_path: Some("/hosts".into()),
            hostname_path: Some("/hostname".into()),
            hostname: Some("h".into()),
            upper_dir: Some("/upper".into()),
            rootfs_dir: Some("/rootfs".into()),
            ..Default::default()
        };
        r.k8s.namespace = "ns".into();
        r.k8s.pod_name = "pod".into();
        r.k8s.pod_uid = "uid".into();
        r.k8s.container_name = "c".into();
        r.k8s.is_sandbox = true;
        r.k8s.pod_start_time = crate::record::Timestamp::from_unix_nanos(1_699_999_999_000_000_000);
        for (i, map) in [
            &mut r.labels,
            &mut r.k8s.pod_labels,
            &mut r.annotations,
            &mut r.k8s.pod_annotations,
            &mut r.env,
            &mut r.tags,
        ]
        .into_iter()
        .enumerate()
        {
            map.insert("k".into(), format!("v{i}"));
        }
        r
    }

    #[test]
    fn every_one_value_accessor_answers_what_select_reads() -> wasmtime::Result<()> {
        let wit = include_str!("../../../wit/plugin.wit");
        for method in gannet_record::wit_names::cases(wit, "resource container") {
            let listed = ONE_VALUE.iter().any(|(name, _)| *name == method)
                || NOT_ONE_VALUE.contains(&method.as_str());
            assert!(
                listed,
                "WIT method `{method}` is in neither list of this test"
            );
        }
        let context = Arc::new(PluginContext {
            name: "t".into(),
            node_name: "node".into(),
            log_limiter: LogLimiter::default(),
            counters: crate::plugins::PluginMetrics::unregistered().counters("t"),
        });
        let mut state = HostState::new(WasiCtx::builder().build(), None, context);
        let handle = state.push_handle()?;
        for record in [full_record(), ContainerRecord::default()] {
            *state.record = record;
            for (name, read) in ONE_VALUE {
                let field = Field::from_name(name, "k");
                assert!(field.is_some(), "`{name}` is no select field");
                let Some(field) = field else { continue };
                let selected = gannet_record::value(&state.record, &field).map(|v| v.into_owned());
                let borrow = Resource::new_borrow(handle.rep());
                assert_eq!(read(&mut state, borrow, "k")?, selected, "`{name}`");
            }
        }
        Ok(())
    }

    #[test]
    fn several_key_reads_are_bounded_by_the_memory_limit() {
        let mut map = BTreeMap::new();
        map.insert("k".to_string(), "v".repeat(10));
        let keys = vec!["k".to_string(); 100];
        assert!(values(&map, &keys, "label-values", 1000).is_ok_and(|v| v.len() == 100));
        let refused = values(&map, &keys, "label-values", 999).err();
        assert!(
            refused.is_some_and(|e| e.accessor == "label-values" && e.limit == 999),
            "a read of more than the limit is refused"
        );
        let missing = vec!["absent".to_string(); 100];
        assert!(values(&map, &missing, "label-values", 0).is_ok());
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
