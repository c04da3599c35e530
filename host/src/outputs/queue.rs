//! A bounded FIFO of encoded events between the router and one output's sender task,
//! with the output's overflow policy: wait for room, or drop the oldest and say so.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::record::Encoded;

/// What an output does when its queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// Wait for room: the chain slows down (discovery coalesces meanwhile).
    #[default]
    Block,
    /// Drop the oldest queued event and count it.
    DropOldest,
}

/// What happened to a pushed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued without loss.
    Queued,
    /// Queued, and the oldest queued event was dropped to make room.
    DroppedOldest,
    /// The queue is closed (output shutting down); the event was not queued.
    Closed,
}

struct State {
    items: VecDeque<Arc<Encoded>>,
    closed: bool,
}

/// The queue; cheap to share through an `Arc`.
pub struct EventQueue {
    state: Mutex<State>,
    capacity: usize,
    policy: OverflowPolicy,
    /// Woken when an item arrives or the queue closes.
    items_ready: Notify,
    /// Woken when room frees up or the queue closes.
    room_ready: Notify,
}

impl EventQueue {
    /// A queue holding at most `capacity` (at least 1) events.
    pub fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(1024)),
                closed: false,
            }),
            capacity: capacity.max(1),
            policy,
            items_ready: Notify::new(),
            room_ready: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-push; the deque is intact.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Adds an event, applying the overflow policy when full.
    pub async fn push(&self, item: Arc<Encoded>) -> Pushed {
        loop {
            let room = self.room_ready.notified();
            {
                let mut state = self.lock();
                if state.closed {
                    return Pushed::Closed;
                }
                if state.items.len() < self.capacity {
                    state.items.push_back(item);
                    drop(state);
                    self.items_ready.notify_one();
                    return Pushed::Queued;
                }
                if self.policy == OverflowPolicy::DropOldest {
                    state.items.pop_front();
                    state.items.push_back(item);
                    drop(state);
                    self.items_ready.notify_one();
                    return Pushed::DroppedOldest;
                }
            }
            room.await;
        }
    }

    /// Closes the queue: pushes fail from now on; what is queued can still be taken.
    pub fn close(&self) {
        self.lock().closed = true;
        self.items_ready.notify_waiters();
        self.room_ready.notify_waiters();
    }

    /// Takes up to `max` events. Waits for the first one; then waits up to `linger` for
    /// the batch to fill. Returns an empty batch only once the queue is closed and empty.
    pub async fn pop_batch(&self, max: usize, linger: Duration) -> Vec<Arc<Encoded>> {
        // Wait for at least one event (or close).
        loop {
            let ready = self.items_ready.notified();
            {
                let state = self.lock();
                if !state.items.is_empty() || state.closed {
                    break;
                }
            }
            ready.await;
        }
        if !linger.is_zero() {
            let deadline = tokio::time::Instant::now() + linger;
            loop {
                let ready = self.items_ready.notified();
                {
                    let state = self.lock();
                    if state.items.len() >= max || state.closed {
                        break;
                    }
                }
                if tokio::time::timeout_at(deadline, ready).await.is_err() {
                    break;
                }
            }
        }
        let batch: Vec<_> = {
            let mut state = self.lock();
            let n = state.items.len().min(max.max(1));
            state.items.drain(..n).collect()
        };
        if !batch.is_empty() {
            self.room_ready.notify_waiters();
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u32) -> Arc<Encoded> {
        Arc::new(Encoded {
            id: n.to_string(),
            json: n.to_string().into(),
            event: None,
        })
    }

    fn ids(batch: &[Arc<Encoded>]) -> Vec<String> {
        batch.iter().map(|e| e.id.clone()).collect()
    }

    #[tokio::test]
    async fn drop_oldest_keeps_the_newest_and_reports_each_drop() {
        let q = EventQueue::new(2, OverflowPolicy::DropOldest);
        assert_eq!(q.push(ev(1)).await, Pushed::Queued);
        assert_eq!(q.push(ev(2)).await, Pushed::Queued);
        assert_eq!(q.push(ev(3)).await, Pushed::DroppedOldest);
        assert_eq!(ids(&q.pop_batch(10, Duration::ZERO).await), ["2", "3"]);
    }

    #[tokio::test]
    async fn block_waits_for_room() {
        let q = Arc::new(EventQueue::new(1, OverflowPolicy::Block));
        assert_eq!(q.push(ev(1)).await, Pushed::Queued);
        let q2 = q.clone();
        let pusher = tokio::spawn(async move { q2.push(ev(2)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!pusher.is_finished(), "push must wait while full");
        assert_eq!(ids(&q.pop_batch(10, Duration::ZERO).await), ["1"]);
        assert_eq!(pusher.await.ok(), Some(Pushed::Queued));
        assert_eq!(ids(&q.pop_batch(10, Duration::ZERO).await), ["2"]);
    }

    #[tokio::test]
    async fn linger_collects_a_batch_and_close_releases_waiters() {
        let q = Arc::new(EventQueue::new(10, OverflowPolicy::Block));
        q.push(ev(1)).await;
        let q2 = q.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            q2.push(ev(2)).await;
        });
        let batch = q.pop_batch(2, Duration::from_secs(5)).await;
        assert_eq!(ids(&batch), ["1", "2"]);
        q.close();
        assert!(q.pop_batch(10, Duration::from_secs(5)).await.is_empty());
        assert_eq!(q.push(ev(3)).await, Pushed::Closed);
    }
}
