//! The container table as the API shows it: records after the plugin chain, without the
//! ones the chain dropped, with a short tail of removed containers, and a broadcast of
//! every change for watchers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::record::{ContainerRecord, Lifecycle, Timestamp};

/// One change, as watchers receive it.
#[derive(Debug, Clone)]
pub struct ViewEvent {
    /// What happened.
    pub event: Lifecycle,
    /// When the agent saw it.
    pub time: Timestamp,
    /// The record after the chain (not yet redacted).
    pub record: Arc<ContainerRecord>,
}

/// A filter on the table (`?namespace=&pod=&state=`); `None` matches everything.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerFilter {
    /// Pod namespace.
    pub namespace: Option<String>,
    /// Pod name.
    pub pod: Option<String>,
    /// A container state, or `removed` for the recently removed tail.
    pub state: Option<String>,
}

impl ContainerFilter {
    fn matches(&self, r: &ContainerRecord) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| r.k8s.namespace == ns)
            && self.pod.as_deref().is_none_or(|p| r.k8s.pod_name == p)
            && self
                .state
                .as_deref()
                .is_none_or(|s| s == "removed" || r.state.as_str() == s)
    }

    fn wants_removed(&self) -> bool {
        self.state.as_deref() == Some("removed")
    }
}

/// A plugin as `/v1/plugins` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    /// File name in the plugin directory.
    pub file: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// The WIT package version it was built against.
    pub wit_version: String,
    /// `active` or `quarantined`.
    pub state: String,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// A record as the view keeps it.
///
/// Plugins may edit only a record's labels, env and tags (`plugins/undo.rs`), so the
/// view keeps the record discovery made, shared with the discovery table, and beside it
/// only the maps the chain changed. The second full copy it replaces was a third of the
/// agent's heap per container, 29 KB then 19 KB (docs/BENCHMARKS.md, "Per-container
/// heap").
#[derive(Debug)]
enum Kept {
    /// The record before the chain, and the maps the chain changed (`None`: unchanged).
    Shared {
        before: Arc<ContainerRecord>,
        labels: Option<BTreeMap<String, String>>,
        env: Option<BTreeMap<String, String>>,
        tags: Option<BTreeMap<String, String>>,
    },
    /// A record with no original to share, or one that differs in more than those maps.
    Whole(Arc<ContainerRecord>),
}

impl Kept {
    /// Keeps `after`, the chain's result for `before`, as cheaply as it can.
    fn new(before: &Arc<ContainerRecord>, mut after: ContainerRecord) -> Self {
        // Put the original maps in, compare the rest, and take the chain's maps out.
        let labels = std::mem::replace(&mut after.labels, before.labels.clone());
        let env = std::mem::replace(&mut after.env, before.env.clone());
        let tags = std::mem::replace(&mut after.tags, before.tags.clone());
        if after != **before {
            after.labels = labels;
            after.env = env;
            after.tags = tags;
            return Self::Whole(Arc::new(after));
        }
        Self::Shared {
            labels: (labels != before.labels).then_some(labels),
            env: (env != before.env).then_some(env),
            tags: (tags != before.tags).then_some(tags),
            before: Arc::clone(before),
        }
    }

    /// The fields the filter reads, which the chain never changes.
    fn unedited(&self) -> &ContainerRecord {
        match self {
            Self::Shared { before, .. } => before,
            Self::Whole(record) => record,
        }
    }

    /// The record after the chain: a fresh copy when the chain changed a map.
    fn record(&self) -> Arc<ContainerRecord> {
        match self {
            Self::Shared {
                before,
                labels: None,
                env: None,
                tags: None,
            } => Arc::clone(before),
            Self::Shared {
                before,
                labels,
                env,
                tags,
            } => {
                let mut record = ContainerRecord::clone(before);
                for (edited, map) in [
                    (labels, &mut record.labels),
                    (env, &mut record.env),
                    (tags, &mut record.tags),
                ] {
                    if let Some(edited) = edited {
                        map.clone_from(edited);
                    }
                }
                Arc::new(record)
            }
            Self::Whole(record) => Arc::clone(record),
        }
    }
}

struct Inner {
    live: BTreeMap<String, Kept>,
    removed: VecDeque<(Instant, Kept)>,
}

/// The shared table; cheap to clone.
#[derive(Clone)]
pub struct ContainerView {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<ViewEvent>,
    removed_retention: Duration,
    plugins: Arc<Mutex<PluginSource>>,
}

/// Where `/v1/plugins` reads the plugin list from (the plugin stage, live).
pub type PluginSource = Arc<dyn Fn() -> Vec<PluginInfo> + Send + Sync>;

impl ContainerView {
    /// An empty view. `watch_buffer` events may queue per watcher before it is cut off.
    pub fn new(removed_retention: Duration, watch_buffer: usize) -> Self {
        let (events, _) = broadcast::channel(watch_buffer.max(1));
        Self {
            inner: Arc::new(Mutex::new(Inner {
                live: BTreeMap::new(),
                removed: VecDeque::new(),
            })),
            events,
            removed_retention,
            plugins: Arc::new(Mutex::new(Arc::new(Vec::new))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn prune(&self, inner: &mut Inner, now: Instant) {
        while inner
            .removed
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.removed_retention)
        {
            inner.removed.pop_front();
        }
    }

    /// Records an event that came out of the chain (not dropped) and tells watchers:
    /// `after` is the chain's result for `before`, the record discovery's table holds.
    pub fn apply_after_chain(
        &self,
        event: Lifecycle,
        before: &Arc<ContainerRecord>,
        after: ContainerRecord,
    ) {
        self.keep(event, Kept::new(before, after));
    }

    /// Records an event with no original record to share (the whole record is kept).
    #[cfg(test)]
    pub fn apply(&self, event: Lifecycle, record: ContainerRecord) {
        self.keep(event, Kept::Whole(Arc::new(record)));
    }

    fn keep(&self, event: Lifecycle, kept: Kept) {
        let now = Instant::now();
        let id = kept.unedited().id.clone();
        let mut inner = self.lock();
        // Under the lock, as `subscribe` is: no watcher can subscribe between this check
        // and the send. With no watcher, no copy of the edited record is made.
        let watched = (self.events.receiver_count() > 0).then(|| kept.record());
        match event {
            Lifecycle::Added | Lifecycle::Updated => {
                inner.live.insert(id, kept);
            }
            Lifecycle::Removed => {
                inner.live.remove(&id);
                inner.removed.push_back((now, kept));
            }
        }
        self.prune(&mut inner, now);
        // Sent under the lock so a new watcher's snapshot and its stream never overlap
        // or leave a gap. A watcher gone since the check is not an error.
        if let Some(record) = watched {
            let _ = self.events.send(ViewEvent {
                event,
                time: Timestamp::now(),
                record,
            });
        }
    }

    /// The chain dropped this container's latest event: it leaves the view quietly.
    pub fn forget(&self, id: &str) {
        self.lock().live.remove(id);
    }

    /// The records matching `filter`, by id (the removed tail, newest last, for
    /// `state=removed`).
    pub fn list(&self, filter: &ContainerFilter) -> Vec<Arc<ContainerRecord>> {
        let mut inner = self.lock();
        if filter.wants_removed() {
            self.prune(&mut inner, Instant::now());
            return inner
                .removed
                .iter()
                .map(|(_, k)| k)
                .filter(|k| filter.matches(k.unedited()))
                .map(Kept::record)
                .collect();
        }
        inner
            .live
            .values()
            .filter(|k| filter.matches(k.unedited()))
            .map(Kept::record)
            .collect()
    }

    /// One live container.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerRecord>> {
        self.lock().live.get(id).map(Kept::record)
    }

    /// The live table and a receiver of every later change, taken atomically.
    pub fn subscribe(&self) -> (Vec<Arc<ContainerRecord>>, broadcast::Receiver<ViewEvent>) {
        let inner = self.lock();
        let rx = self.events.subscribe();
        (inner.live.values().map(Kept::record).collect(), rx)
    }

    /// Sets where `/v1/plugins` reads the plugin list from.
    pub fn set_plugin_source(&self, source: PluginSource) {
        *self.plugins.lock().unwrap_or_else(|p| p.into_inner()) = source;
    }

    /// Replaces the plugin list `/v1/plugins` shows with a fixed one.
    #[cfg(test)]
    pub fn set_plugins(&self, plugins: Vec<PluginInfo>) {
        self.set_plugin_source(Arc::new(move || plugins.clone()));
    }

    /// The plugin list.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        let source = self
            .plugins
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ContainerState;

    fn rec(id: &str, ns: &str, state: ContainerState) -> ContainerRecord {
        let mut r = ContainerRecord {
            id: id.into(),
            state,
            ..Default::default()
        };
        r.k8s.namespace = ns.into();
        r.k8s.pod_name = format!("pod-{id}");
        r
    }

    fn ids(v: &[Arc<ContainerRecord>]) -> Vec<&str> {
        v.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn filters_and_removed_tail() {
        let view = ContainerView::new(Duration::from_secs(120), 8);
        view.apply(Lifecycle::Added, rec("a", "ns1", ContainerState::Running));
        view.apply(Lifecycle::Added, rec("b", "ns2", ContainerState::Running));
        view.apply(Lifecycle::Updated, rec("b", "ns2", ContainerState::Exited));
        view.apply(Lifecycle::Added, rec("c", "ns2", ContainerState::Running));
        view.apply(Lifecycle::Removed, rec("c", "ns2", ContainerState::Exited));
        let all = ContainerFilter::default();
        assert_eq!(ids(&view.list(&all)), ["a", "b"]);
        let ns2 = ContainerFilter {
            namespace: Some("ns2".into()),
            ..Default::default()
        };
        assert_eq!(ids(&view.list(&ns2)), ["b"]);
        let exited = ContainerFilter {
            state: Some("exited".into()),
            ..Default::default()
        };
        assert_eq!(ids(&view.list(&exited)), ["b"]);
        let pod = ContainerFilter {
            pod: Some("pod-a".into()),
            ..Default::default()
        };
        assert_eq!(ids(&view.list(&pod)), ["a"]);
        let removed = ContainerFilter {
            state: Some("removed".into()),
            ..Default::default()
        };
        assert_eq!(ids(&view.list(&removed)), ["c"]);
        assert!(view.get("c").is_none());
        assert!(view.get("a").is_some());
    }

    #[test]
    fn removed_tail_expires() {
        let view = ContainerView::new(Duration::ZERO, 8);
        view.apply(Lifecycle::Removed, rec("c", "ns", ContainerState::Exited));
        std::thread::sleep(Duration::from_millis(5));
        let removed = ContainerFilter {
            state: Some("removed".into()),
            ..Default::default()
        };
        assert!(view.list(&removed).is_empty());
    }

    #[test]
    fn forget_hides_a_dropped_container() {
        let view = ContainerView::new(Duration::from_secs(1), 8);
        view.apply(Lifecycle::Added, rec("a", "ns", ContainerState::Running));
        view.forget("a");
        assert!(view.list(&ContainerFilter::default()).is_empty());
    }

    #[test]
    fn the_chains_result_shares_the_tables_record_and_keeps_only_edited_maps() {
        let view = ContainerView::new(Duration::from_secs(1), 8);
        let mut before = rec("a", "ns", ContainerState::Running);
        before.labels.insert("app".into(), "web".into());
        before.env.insert("TOKEN".into(), "s3cret".into());
        let before = Arc::new(before);

        // Unchanged by the chain: the view hands out the table's own record.
        view.apply_after_chain(Lifecycle::Added, &before, ContainerRecord::clone(&before));
        assert!(view.get("a").is_some_and(|r| Arc::ptr_eq(&r, &before)));

        // Tags and env edited: those are kept, the rest is still the shared original.
        let mut after = ContainerRecord::clone(&before);
        after.tags.insert("team".into(), "shop".into());
        after.env.insert("TOKEN".into(), "<redacted>".into());
        view.apply_after_chain(Lifecycle::Updated, &before, after.clone());
        assert_eq!(Arc::strong_count(&before), 2, "the view shares the record");
        let shown = view.get("a");
        assert_eq!(shown.as_deref(), Some(&after));
        assert!(shown.is_some_and(|r| !Arc::ptr_eq(&r, &before)));
        assert_eq!(
            view.list(&ContainerFilter::default())
                .first()
                .map(|r| r.tags.clone()),
            Some(after.tags.clone())
        );

        // A change outside the editable maps keeps the whole result.
        let mut other = after.clone();
        other.image = "changed".into();
        view.apply_after_chain(Lifecycle::Updated, &before, other.clone());
        assert_eq!(view.get("a").as_deref(), Some(&other));
        assert_eq!(Arc::strong_count(&before), 1);
    }

    #[test]
    fn watchers_and_the_removed_tail_get_the_edited_record() {
        let view = ContainerView::new(Duration::from_secs(60), 8);
        let before = Arc::new(rec("a", "ns", ContainerState::Exited));
        let mut after = ContainerRecord::clone(&before);
        after.tags.insert("team".into(), "shop".into());
        let (_, mut rx) = view.subscribe();
        view.apply_after_chain(Lifecycle::Removed, &before, after.clone());
        let sent = rx.try_recv().ok().map(|e| e.record);
        assert_eq!(sent.as_deref(), Some(&after));
        let removed = ContainerFilter {
            state: Some("removed".into()),
            ..Default::default()
        };
        assert_eq!(
            view.list(&removed).first().map(|r| r.tags.clone()),
            Some(after.tags)
        );
    }

    #[test]
    fn subscribe_gives_snapshot_then_changes() {
        let view = ContainerView::new(Duration::from_secs(1), 8);
        view.apply(Lifecycle::Added, rec("a", "ns", ContainerState::Running));
        let (snapshot, mut rx) = view.subscribe();
        assert_eq!(ids(&snapshot), ["a"]);
        view.apply(Lifecycle::Added, rec("b", "ns", ContainerState::Running));
        let ev = rx.try_recv().ok();
        assert_eq!(
            ev.map(|e| (e.event, e.record.id.clone())),
            Some((Lifecycle::Added, "b".to_string()))
        );
    }
}
