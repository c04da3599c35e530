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

struct Inner {
    live: BTreeMap<String, Arc<ContainerRecord>>,
    removed: VecDeque<(Instant, Arc<ContainerRecord>)>,
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

    /// Records an event that came out of the chain (not dropped) and tells watchers.
    pub fn apply(&self, event: Lifecycle, record: ContainerRecord) {
        let record = Arc::new(record);
        let now = Instant::now();
        let mut inner = self.lock();
        match event {
            Lifecycle::Added | Lifecycle::Updated => {
                inner.live.insert(record.id.clone(), record.clone());
            }
            Lifecycle::Removed => {
                inner.live.remove(&record.id);
                inner.removed.push_back((now, record.clone()));
            }
        }
        self.prune(&mut inner, now);
        // Sent under the lock so a new watcher's snapshot and its stream never overlap
        // or leave a gap. No receiver is not an error.
        let _ = self.events.send(ViewEvent {
            event,
            time: Timestamp::now(),
            record,
        });
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
                .map(|(_, r)| r.clone())
                .filter(|r| filter.matches(r))
                .collect();
        }
        inner
            .live
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect()
    }

    /// One live container.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerRecord>> {
        self.lock().live.get(id).cloned()
    }

    /// The live table and a receiver of every later change, taken atomically.
    pub fn subscribe(&self) -> (Vec<Arc<ContainerRecord>>, broadcast::Receiver<ViewEvent>) {
        let inner = self.lock();
        let rx = self.events.subscribe();
        (inner.live.values().cloned().collect(), rx)
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
