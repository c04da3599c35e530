//! The periodic re-report: every present container's last record, sent again as
//! `entity.state` once per `report_interval_secs`, so a receiver can expire entities whose
//! delete was lost. Each container has a one-second slot in the interval (by a hash of its
//! id), so the re-report is spread over the interval, not sent in one burst. It holds the
//! post-chain records as they were sent: plugins are not re-run, and a container the chain
//! dropped was never sent, so it is never re-reported.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use crate::record::{EventRecord, Lifecycle, Timestamp};

/// The length of one slot.
pub const SLOT: Duration = Duration::from_secs(1);

/// The containers present, by the events this output sent, in their slots.
pub struct Reports {
    slots: Vec<BTreeSet<String>>,
    records: HashMap<String, (usize, Arc<EventRecord>)>,
    next_slot: usize,
}

impl Reports {
    /// A schedule of `interval_secs` one-second slots (at least one).
    pub fn new(interval_secs: u64) -> Self {
        let n = usize::try_from(interval_secs.max(1)).unwrap_or(1);
        Self {
            slots: vec![BTreeSet::new(); n],
            records: HashMap::new(),
            next_slot: 0,
        }
    }

    /// Containers present.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no container is present.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Notes one sent event: `added` and `updated` keep the record, `removed` forgets it.
    pub fn note(&mut self, ev: &Arc<EventRecord>) {
        let id = &ev.record.id;
        match ev.event {
            Lifecycle::Removed => {
                if let Some((slot, _)) = self.records.remove(id) {
                    self.slots[slot].remove(id);
                }
            }
            Lifecycle::Added | Lifecycle::Updated => {
                let slot = match self.records.get(id) {
                    Some((slot, _)) => *slot,
                    None => {
                        let mut h = DefaultHasher::new();
                        id.hash(&mut h);
                        let slot =
                            usize::try_from(h.finish() % self.slots.len() as u64).unwrap_or(0);
                        self.slots[slot].insert(id.clone());
                        slot
                    }
                };
                self.records.insert(id.clone(), (slot, Arc::clone(ev)));
            }
        }
    }

    /// The next slot's re-reports: each of its containers' last record as an `updated`
    /// event stamped now.
    pub fn next_due(&mut self) -> Vec<Arc<EventRecord>> {
        let slot = self.next_slot;
        self.next_slot = (self.next_slot + 1) % self.slots.len();
        let now = Timestamp::now();
        self.slots[slot]
            .iter()
            .filter_map(|id| self.records.get(id))
            .map(|(_, ev)| {
                Arc::new(EventRecord {
                    event: Lifecycle::Updated,
                    time: now,
                    record: ev.record.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ContainerRecord;

    fn ev(id: &str, event: Lifecycle) -> Arc<EventRecord> {
        Arc::new(EventRecord {
            event,
            time: Timestamp::now(),
            record: ContainerRecord {
                id: id.into(),
                ..Default::default()
            },
        })
    }

    #[test]
    fn every_present_container_is_due_once_per_interval() {
        let mut r = Reports::new(10);
        for i in 0..100 {
            r.note(&ev(&format!("c{i}"), Lifecycle::Added));
        }
        r.note(&ev("c7", Lifecycle::Removed));
        r.note(&ev("c8", Lifecycle::Updated));
        assert_eq!(r.len(), 99);
        let mut seen = Vec::new();
        let mut largest = 0;
        for _ in 0..10 {
            let due = r.next_due();
            largest = largest.max(due.len());
            seen.extend(due.into_iter().map(|e| e.record.id.clone()));
        }
        seen.sort();
        assert_eq!(seen.len(), 99, "each once per interval");
        seen.dedup();
        assert_eq!(seen.len(), 99);
        assert!(!seen.contains(&"c7".to_string()));
        assert!(
            largest < 40,
            "spread over the slots, not one burst: {largest}"
        );
        // The next interval reports them again.
        let again: usize = (0..10).map(|_| r.next_due().len()).sum();
        assert_eq!(again, 99);
    }

    #[test]
    fn re_reports_are_state_events_of_the_last_record() {
        let mut r = Reports::new(1);
        r.note(&ev("c1", Lifecycle::Added));
        let due = r.next_due();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].event, Lifecycle::Updated);
        assert_eq!(due[0].record.id, "c1");
    }
}
