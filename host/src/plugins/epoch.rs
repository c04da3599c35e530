//! The epoch ticker: the thread that advances the engine's epoch, so per-call deadlines
//! fire, but only while plugin code may be running.
//!
//! Owns the ticker thread and the in-flight count. Code that enters a plugin (the chain
//! runner, instance start) holds a [`Busy`] guard; the ticker ticks every
//! [`EPOCH_TICK`] while any guard is held, and parks after a short idle spell, so an agent
//! with nothing to run wakes up zero times a second instead of a hundred.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch advances. Deadlines are counted in ticks, so a deadline must be at
/// least two ticks long to mean anything.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Idle ticks (no guard held) before the ticker parks: short, since waking it costs one
/// futex call per burst of records.
const IDLE_TICKS_BEFORE_PARK: u32 = 10;

/// The ticker's shared state.
#[derive(Debug, Default)]
pub struct EpochTicker {
    /// Guards held: code that may be running plugin code right now.
    in_flight: AtomicUsize,
    /// Set while the ticker thread is parked (or about to park).
    parked: AtomicBool,
    /// Set when the engine is gone: the thread exits.
    stopped: AtomicBool,
    thread: OnceLock<Thread>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`. `None` when the thread cannot start (logged):
    /// deadlines then never fire.
    pub fn spawn(engine: &Engine) -> Option<Arc<Self>> {
        let ticker = Arc::new(Self::default());
        let weak = engine.weak();
        let state = ticker.clone();
        let spawned = std::thread::Builder::new()
            .name("gannet-epoch".into())
            .spawn(move || state.run(|| weak.upgrade().map(|e| e.increment_epoch())));
        match spawned {
            Ok(handle) => {
                let _ = ticker.thread.set(handle.thread().clone());
                Some(ticker)
            }
            Err(error) => {
                tracing::error!(message = "Epoch ticker thread failed to start; deadlines will not fire.", %error);
                None
            }
        }
    }

    /// Marks plugin code as possibly running until the guard drops; wakes the ticker.
    pub fn busy(&self) -> Busy<'_> {
        // SeqCst pairs with the ticker's store of `parked` then load of `in_flight`: at
        // least one side sees the other, so the ticker never sleeps through a call.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.wake();
        }
        Busy(self)
    }

    /// Tells the thread to exit (the engine is being dropped).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn wake(&self) {
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }

    /// The thread's loop: tick while busy or recently busy, park when idle. `tick`
    /// returns `None` when the engine is gone.
    fn run(&self, tick: impl Fn() -> Option<()>) {
        let mut idle_ticks = 0;
        while !self.stopped.load(Ordering::SeqCst) {
            std::thread::sleep(EPOCH_TICK);
            if tick().is_none() {
                break;
            }
            if self.in_flight.load(Ordering::SeqCst) > 0 {
                idle_ticks = 0;
                continue;
            }
            idle_ticks += 1;
            if idle_ticks < IDLE_TICKS_BEFORE_PARK {
                continue;
            }
            self.parked.store(true, Ordering::SeqCst);
            if self.in_flight.load(Ordering::SeqCst) == 0 && !self.stopped.load(Ordering::SeqCst) {
                // Returns at once if `busy` or `stop` unparked us after the store above.
                std::thread::park();
            }
            self.parked.store(false, Ordering::SeqCst);
            idle_ticks = 0;
        }
    }
}

/// Held while plugin code may run; see [`EpochTicker::busy`].
#[derive(Debug)]
pub struct Busy<'a>(&'a EpochTicker);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    /// Runs a ticker over a counter instead of an engine.
    fn counting_ticker() -> (
        Arc<EpochTicker>,
        Arc<AtomicU64>,
        std::thread::JoinHandle<()>,
    ) {
        let ticker = Arc::new(EpochTicker::default());
        let ticks = Arc::new(AtomicU64::new(0));
        let (state, count) = (ticker.clone(), ticks.clone());
        let handle = std::thread::spawn(move || {
            state.run(|| {
                count.fetch_add(1, Ordering::SeqCst);
                Some(())
            })
        });
        let _ = ticker.thread.set(handle.thread().clone());
        (ticker, ticks, handle)
    }

    fn wait_until(what: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if what() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn parks_when_idle_and_ticks_while_busy() {
        let (ticker, ticks, handle) = counting_ticker();
        assert!(
            wait_until(|| ticker.parked.load(Ordering::SeqCst)),
            "never parked"
        );
        let parked_at = ticks.load(Ordering::SeqCst);
        std::thread::sleep(EPOCH_TICK * 5);
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            parked_at,
            "ticked while parked"
        );

        let busy = ticker.busy();
        assert!(
            wait_until(|| ticks.load(Ordering::SeqCst) >= parked_at + 5),
            "a busy guard did not wake the ticker"
        );
        std::thread::sleep(EPOCH_TICK * (IDLE_TICKS_BEFORE_PARK + 5));
        assert!(
            !ticker.parked.load(Ordering::SeqCst),
            "parked while a guard was held"
        );
        drop(busy);
        assert!(
            wait_until(|| ticker.parked.load(Ordering::SeqCst)),
            "never parked again"
        );

        ticker.stop();
        assert!(handle.join().is_ok());
    }
}
