//! Event ids: the unique id each envelope carries, so receivers can deduplicate
//! (delivery is at-least-once).

use std::sync::atomic::{AtomicU64, Ordering};

/// Makes event ids unique across restarts and nodes: a random 64-bit prefix chosen at
/// start, then a counter.
#[derive(Debug)]
pub struct EventIds {
    prefix: u64,
    next: AtomicU64,
}

impl Default for EventIds {
    fn default() -> Self {
        Self::new()
    }
}

impl EventIds {
    /// A generator with a fresh random prefix.
    pub fn new() -> Self {
        Self {
            prefix: fastrand::u64(..),
            next: AtomicU64::new(0),
        }
    }

    /// The next id: 32 hex digits.
    pub fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{:016x}", self.prefix, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_within_and_across_generators() {
        let a = EventIds::new();
        let b = EventIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            assert!(seen.insert(a.next_id()));
            assert!(seen.insert(b.next_id()));
        }
    }
}
