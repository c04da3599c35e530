//! The container table: id -> current record, and the lifecycle events its changes make.
//!
//! Owns what Gannet currently believes about each container, the generation of the fetch
//! that produced it (so a stale fetch never undoes a newer fact), and removed entries kept
//! for late readers. It hands on [`ContainerEvent`]s (`added` / `updated` / `removed`). It
//! does no I/O; the discovery loop decides what to apply.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::record::{ContainerRecord, ContainerState, Lifecycle};

/// One lifecycle event: what happened, and the record it happened to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// Added, updated or removed.
    pub lifecycle: Lifecycle,
    /// The record after the change (for `removed`, the final record).
    pub record: Arc<ContainerRecord>,
}

/// Per-container fetch generation: grows each time discovery decides to (re)fetch or
/// removes a container. A result carrying an older generation than the table's is stale.
pub type Generation = u64;

#[derive(Debug, Clone)]
struct Live {
    record: Arc<ContainerRecord>,
    generation: Generation,
}

#[derive(Debug, Clone)]
struct Removed {
    record: Arc<ContainerRecord>,
    generation: Generation,
    at: Instant,
}

/// id -> record, with removed entries kept for `retention`.
#[derive(Debug)]
pub struct ContainerTable {
    live: HashMap<String, Live>,
    removed: HashMap<String, Removed>,
    retention: Duration,
}

impl ContainerTable {
    /// An empty table keeping removed entries for `retention`.
    pub fn new(retention: Duration) -> Self {
        Self {
            live: HashMap::new(),
            removed: HashMap::new(),
            retention,
        }
    }

    /// Applies a fetched record with its generation and returns the event it makes.
    ///
    /// A record older than what the table holds (live or removed) is discarded. Any
    /// record that is not exited is added or updated (no event when unchanged). An exited record
    /// removes a live entry with one `removed` carrying it; an exited container the table
    /// never held gives `added` then `removed`, so short-lived containers are seen.
    pub fn apply(
        &mut self,
        record: ContainerRecord,
        generation: Generation,
    ) -> Vec<ContainerEvent> {
        let id = record.id.clone();
        if self.generation(&id).is_some_and(|g| generation < g) {
            return Vec::new();
        }
        if record.state == ContainerState::Exited {
            let record = Arc::new(record);
            let mut events = Vec::new();
            match self.live.remove(&id) {
                Some(_) => {}
                None if self.removed.contains_key(&id) => {
                    // Already removed: keep the newer final record, no second event.
                    self.removed.insert(
                        id,
                        Removed {
                            record,
                            generation,
                            at: Instant::now(),
                        },
                    );
                    return Vec::new();
                }
                None => events.push(ContainerEvent {
                    lifecycle: Lifecycle::Added,
                    record: Arc::clone(&record),
                }),
            }
            events.push(ContainerEvent {
                lifecycle: Lifecycle::Removed,
                record: Arc::clone(&record),
            });
            self.removed.insert(
                id,
                Removed {
                    record,
                    generation,
                    at: Instant::now(),
                },
            );
            return events;
        }
        self.removed.remove(&id);
        let record = Arc::new(record);
        let lifecycle = match self.live.get(&id) {
            Some(old) if *old.record == *record => {
                self.live.insert(
                    id,
                    Live {
                        record: Arc::clone(&old.record),
                        generation,
                    },
                );
                return Vec::new();
            }
            Some(_) => Lifecycle::Updated,
            None => Lifecycle::Added,
        };
        self.live.insert(
            id,
            Live {
                record: Arc::clone(&record),
                generation,
            },
        );
        vec![ContainerEvent { lifecycle, record }]
    }

    /// Removes a live container that vanished or exited without a final fetch; its last
    /// record (state set to exited, pid 0) travels in the `removed` event.
    pub fn remove(&mut self, id: &str, generation: Generation) -> Option<ContainerEvent> {
        let live = self.live.remove(id)?;
        let mut last = (*live.record).clone();
        last.state = ContainerState::Exited;
        last.pid = 0;
        let record = Arc::new(last);
        self.removed.insert(
            id.to_owned(),
            Removed {
                record: Arc::clone(&record),
                generation,
                at: Instant::now(),
            },
        );
        Some(ContainerEvent {
            lifecycle: Lifecycle::Removed,
            record,
        })
    }

    /// The generation of the newest fact about `id`, live or removed.
    pub fn generation(&self, id: &str) -> Option<Generation> {
        self.live
            .get(id)
            .map(|l| l.generation)
            .or_else(|| self.removed.get(id).map(|r| r.generation))
    }

    /// The live record of `id`.
    pub fn get(&self, id: &str) -> Option<Arc<ContainerRecord>> {
        self.live.get(id).map(|l| Arc::clone(&l.record))
    }

    /// The record of a container removed within the retention period.
    pub fn get_removed(&self, id: &str) -> Option<Arc<ContainerRecord>> {
        self.removed.get(id).map(|r| Arc::clone(&r.record))
    }

    /// True when `id` is live.
    pub fn contains(&self, id: &str) -> bool {
        self.live.contains_key(id)
    }

    /// Ids of the live containers.
    pub fn live_ids(&self) -> Vec<String> {
        self.live.keys().cloned().collect()
    }

    /// Every live record, sorted by id.
    pub fn records(&self) -> Vec<Arc<ContainerRecord>> {
        let mut all: Vec<_> = self.live.values().map(|l| Arc::clone(&l.record)).collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Number of live containers.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no container is live.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Drops removed entries older than the retention period; returns their ids.
    pub fn sweep(&mut self, now: Instant) -> Vec<String> {
        let retention = self.retention;
        let expired: Vec<String> = self
            .removed
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.at) >= retention)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.removed.remove(id);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, state: ContainerState, image: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            state,
            image: image.into(),
            ..Default::default()
        }
    }

    fn kinds(events: &[ContainerEvent]) -> Vec<Lifecycle> {
        events.iter().map(|e| e.lifecycle).collect()
    }

    #[test]
    fn add_update_and_unchanged() {
        let mut t = ContainerTable::new(Duration::from_secs(120));
        assert_eq!(
            kinds(&t.apply(rec("a", ContainerState::Running, "x"), 1)),
            [Lifecycle::Added]
        );
        assert!(t
            .apply(rec("a", ContainerState::Running, "x"), 2)
            .is_empty());
        let ev = t.apply(rec("a", ContainerState::Running, "y"), 3);
        assert_eq!(kinds(&ev), [Lifecycle::Updated]);
        assert_eq!(ev[0].record.image, "y");
    }

    #[test]
    fn exit_gives_one_removed_with_the_final_record() {
        let mut t = ContainerTable::new(Duration::from_secs(120));
        t.apply(rec("a", ContainerState::Running, "x"), 1);
        let mut exited = rec("a", ContainerState::Exited, "x");
        exited.exit_code = Some(137);
        let ev = t.apply(exited.clone(), 2);
        assert_eq!(kinds(&ev), [Lifecycle::Removed]);
        assert_eq!(ev[0].record.exit_code, Some(137));
        assert!(
            t.apply(exited, 3).is_empty(),
            "a second exit makes no second event"
        );
        assert!(!t.contains("a"));
        assert!(t.get_removed("a").is_some());
    }

    #[test]
    fn stale_generation_is_discarded() {
        let mut t = ContainerTable::new(Duration::from_secs(120));
        t.apply(rec("a", ContainerState::Running, "x"), 5);
        assert!(t
            .apply(rec("a", ContainerState::Running, "old"), 4)
            .is_empty());
        assert_eq!(t.get("a").map(|r| r.image.clone()).as_deref(), Some("x"));
        // Removed at generation 6: a fetch started at 5 must not bring it back.
        assert!(t.remove("a", 6).is_some());
        assert!(t
            .apply(rec("a", ContainerState::Running, "x"), 5)
            .is_empty());
        assert!(!t.contains("a"));
    }

    #[test]
    fn short_lived_container_is_added_then_removed() {
        let mut t = ContainerTable::new(Duration::from_secs(120));
        let ev = t.apply(rec("a", ContainerState::Exited, "x"), 1);
        assert_eq!(kinds(&ev), [Lifecycle::Added, Lifecycle::Removed]);
    }

    #[test]
    fn vanished_container_is_removed_as_exited() {
        let mut t = ContainerTable::new(Duration::from_secs(120));
        let mut r = rec("a", ContainerState::Running, "x");
        r.pid = 10;
        t.apply(r, 1);
        let ev = t
            .remove("a", 2)
            .map(|e| (e.lifecycle, e.record.state, e.record.pid));
        assert_eq!(ev, Some((Lifecycle::Removed, ContainerState::Exited, 0)));
        assert!(t.remove("a", 3).is_none());
    }

    #[test]
    fn removed_entries_are_swept_after_retention() {
        let mut t = ContainerTable::new(Duration::from_secs(120));
        t.apply(rec("a", ContainerState::Running, "x"), 1);
        t.remove("a", 2);
        let now = Instant::now();
        assert!(t.sweep(now).is_empty());
        assert_eq!(t.sweep(now + Duration::from_secs(121)), ["a".to_owned()]);
        assert!(t.get_removed("a").is_none());
        assert_eq!(t.generation("a"), None);
    }
}
