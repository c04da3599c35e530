//! Transactional edits of the lent record: each edit is applied in place at once and
//! logged with what it replaced, so a failed call can be rolled back.
//!
//! Owns [`UndoLog`]. A call that returns `ok` keeps its edits ([`UndoLog::commit`] only
//! forgets the log); a call that traps, times out or returns `err` gets them undone, newest
//! first ([`UndoLog::rollback`]). Editing in place keeps the common path cheap: reads
//! look at the record alone, and a successful call costs nothing to apply.

use std::collections::BTreeMap;

use crate::record::ContainerRecord;

/// The editable maps of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditableMap {
    /// `tags`: what plugins add.
    Tags,
    /// Container labels.
    Labels,
    /// Env vars.
    Env,
}

impl EditableMap {
    fn of(self, record: &mut ContainerRecord) -> &mut BTreeMap<String, String> {
        match self {
            Self::Tags => &mut record.tags,
            Self::Labels => &mut record.labels,
            Self::Env => &mut record.env,
        }
    }
}

/// One edit, with what it replaced.
#[derive(Debug)]
enum Edit {
    /// `key` was set or removed; `old` is what it held (`None`: it was absent).
    Keyed {
        map: EditableMap,
        key: String,
        old: Option<String>,
    },
    /// The value of the `index`th key (in key order) was replaced; `old` is what it held.
    /// Kept by position so a bulk edit copies no keys: when it is undone, every later
    /// edit has been undone already, so the map has the same keys as when it was made.
    At {
        map: EditableMap,
        index: usize,
        old: String,
    },
}

/// The edits of the current call, oldest first.
#[derive(Debug, Default)]
pub struct UndoLog {
    entries: Vec<Edit>,
}

impl UndoLog {
    /// True when the call has edited nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets `key` to `value`.
    pub fn set(
        &mut self,
        record: &mut ContainerRecord,
        map: EditableMap,
        key: String,
        value: String,
    ) {
        use std::collections::btree_map::Entry;
        // One lookup per edit: bulk edits (`set-tags` of thousands of pairs) pay for it.
        let (key, old) = match map.of(record).entry(key) {
            Entry::Occupied(mut slot) => {
                let old = slot.insert(value);
                (slot.key().clone(), Some(old))
            }
            Entry::Vacant(slot) => {
                let key = slot.key().clone();
                slot.insert(value);
                (key, None)
            }
        };
        self.entries.push(Edit::Keyed { map, key, old });
    }

    /// Removes `key`; false when it was not there.
    pub fn remove(&mut self, record: &mut ContainerRecord, map: EditableMap, key: &str) -> bool {
        match map.of(record).remove_entry(key) {
            Some((key, old)) => {
                self.entries.push(Edit::Keyed {
                    map,
                    key,
                    old: Some(old),
                });
                true
            }
            None => false,
        }
    }

    /// Replaces the value of `key` with `value` if it is there; false when it is not.
    pub fn replace(
        &mut self,
        record: &mut ContainerRecord,
        map: EditableMap,
        key: &str,
        value: &str,
    ) -> bool {
        match map.of(record).get_mut(key) {
            Some(slot) => {
                let old = std::mem::replace(slot, value.to_string());
                self.entries.push(Edit::Keyed {
                    map,
                    key: key.to_string(),
                    old: Some(old),
                });
                true
            }
            None => false,
        }
    }

    /// Replaces the value of every key for which `matches` holds; returns how many.
    pub fn replace_matching(
        &mut self,
        record: &mut ContainerRecord,
        map: EditableMap,
        matches: impl Fn(&str) -> bool,
        value: &str,
    ) -> u32 {
        let mut count = 0u32;
        for (index, (key, slot)) in map.of(record).iter_mut().enumerate() {
            if matches(key) {
                let old = std::mem::replace(slot, value.to_string());
                self.entries.push(Edit::At { map, index, old });
                count = count.saturating_add(1);
            }
        }
        count
    }

    /// Removes every key for which `matches` holds; returns how many.
    pub fn remove_matching(
        &mut self,
        record: &mut ContainerRecord,
        map: EditableMap,
        matches: impl Fn(&str) -> bool,
    ) -> u32 {
        let mut count = 0u32;
        for (key, old) in map.of(record).extract_if(.., |key, _| matches(key)) {
            self.entries.push(Edit::Keyed {
                map,
                key,
                old: Some(old),
            });
            count = count.saturating_add(1);
        }
        count
    }

    /// Keeps every edit (the call returned `ok`).
    pub fn commit(&mut self) {
        self.entries.clear();
    }

    /// Undoes every edit, newest first, leaving `record` as it was before the call.
    pub fn rollback(&mut self, record: &mut ContainerRecord) {
        while let Some(edit) = self.entries.pop() {
            match edit {
                Edit::Keyed {
                    map,
                    key,
                    old: Some(old),
                } => {
                    map.of(record).insert(key, old);
                }
                Edit::Keyed {
                    map,
                    key,
                    old: None,
                } => {
                    map.of(record).remove(&key);
                }
                Edit::At { map, index, old } => {
                    if let Some((_, value)) = map.of(record).iter_mut().nth(index) {
                        *value = old;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ContainerRecord {
        let mut r = ContainerRecord::default();
        r.env.insert("DB_PASSWORD".into(), "hunter2".into());
        r.env.insert("HOME".into(), "/root".into());
        r.labels.insert("app".into(), "web".into());
        r.tags.insert("team".into(), "a".into());
        r
    }

    /// Every kind of edit, several on one key, in an order where undoing out of order
    /// would leave a wrong value behind.
    fn edit_everything(log: &mut UndoLog, r: &mut ContainerRecord) {
        log.set(r, EditableMap::Tags, "team".into(), "b".into());
        log.set(r, EditableMap::Tags, "team".into(), "c".into());
        log.set(r, EditableMap::Tags, "new".into(), "x".into());
        assert!(log.remove(r, EditableMap::Labels, "app"));
        assert!(!log.remove(r, EditableMap::Labels, "app"));
        log.set(r, EditableMap::Labels, "app".into(), "api".into());
        assert!(log.replace(r, EditableMap::Env, "HOME", "/home"));
        assert!(!log.replace(r, EditableMap::Env, "MISSING", "x"));
        assert_eq!(
            log.replace_matching(r, EditableMap::Env, |k| k.contains("PASS"), "***"),
            1
        );
        // A key inserted before the replaced ones, then a second bulk replace: undoing
        // must find each replaced value by the position it had when it was replaced.
        log.set(r, EditableMap::Env, "AAA".into(), "first".into());
        assert_eq!(
            log.replace_matching(r, EditableMap::Env, |k| k != "AAA", "###"),
            2
        );
        assert_eq!(
            log.remove_matching(r, EditableMap::Env, |k| k.starts_with("DB_")),
            1
        );
    }

    #[test]
    fn edits_apply_at_once_and_commit_keeps_them() {
        let mut r = record();
        let mut log = UndoLog::default();
        edit_everything(&mut log, &mut r);
        assert!(!log.is_empty());
        assert_eq!(r.tags.get("team").map(String::as_str), Some("c"));
        assert_eq!(r.tags.get("new").map(String::as_str), Some("x"));
        assert_eq!(r.labels.get("app").map(String::as_str), Some("api"));
        assert_eq!(r.env.get("HOME").map(String::as_str), Some("###"));
        assert_eq!(r.env.get("AAA").map(String::as_str), Some("first"));
        assert_eq!(r.env.get("DB_PASSWORD"), None);
        assert!(!r.env.contains_key("MISSING"));
        let edited = r.clone();
        log.commit();
        assert!(log.is_empty());
        assert_eq!(r, edited);
    }

    #[test]
    fn rollback_restores_the_record_exactly() {
        let before = record();
        let mut r = before.clone();
        let mut log = UndoLog::default();
        edit_everything(&mut log, &mut r);
        assert_ne!(r, before);
        log.rollback(&mut r);
        assert!(log.is_empty());
        assert_eq!(r, before);
    }
}
