//! The one cache of containers' upper dirs and rootfs dirs. A container's dirs never change
//! while it lives, so a fetch asks the snapshot service and searches the state dirs once
//! per container; the loop and a standalone full sync keep the same cache.

use std::collections::HashMap;

/// A container's upper dir and rootfs dir, each known or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dirs {
    /// The writable snapshot layer (`upperdir`), as a host path.
    pub upper: Option<String>,
    /// The bundle's rootfs, as a host path.
    pub rootfs: Option<String>,
}

impl Dirs {
    /// These dirs, with each unknown one taken from `found`.
    pub fn or(self, found: &Dirs) -> Dirs {
        Dirs {
            upper: self.upper.or_else(|| found.upper.clone()),
            rootfs: self.rootfs.or_else(|| found.rootfs.clone()),
        }
    }
}

/// Dirs by container id.
#[derive(Debug, Clone, Default)]
pub struct DirCache(HashMap<String, Dirs>);

impl DirCache {
    /// What is known of `id`'s dirs (nothing for an unknown id).
    pub fn get(&self, id: &str) -> Dirs {
        self.0.get(id).cloned().unwrap_or_default()
    }

    /// Keeps what a fetch of `id` found, adding to what was known.
    pub fn remember(&mut self, id: &str, found: &Dirs) {
        if found.upper.is_none() && found.rootfs.is_none() {
            return;
        }
        let known = self.0.remove(id).unwrap_or_default();
        self.0.insert(id.to_string(), known.or(found));
    }

    /// Forgets `id` (it ended).
    pub fn forget(&mut self, id: &str) {
        self.0.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_adds_and_forgets() {
        let mut cache = DirCache::default();
        assert_eq!(cache.get("c1"), Dirs::default());
        cache.remember(
            "c1",
            &Dirs {
                upper: Some("/u".into()),
                rootfs: None,
            },
        );
        cache.remember(
            "c1",
            &Dirs {
                upper: Some("/other".into()),
                rootfs: Some("/r".into()),
            },
        );
        assert_eq!(
            cache.get("c1"),
            Dirs {
                upper: Some("/u".into()),
                rootfs: Some("/r".into())
            },
            "a known dir is kept; an unknown one is added"
        );
        cache.forget("c1");
        assert_eq!(cache.get("c1"), Dirs::default());
    }
}
