//! The health listener's state and routes: `/healthz`, `/readyz` and `/metrics` only.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

/// A beat older than this means the agent is wedged.
const WEDGED_AFTER: Duration = Duration::from_secs(30);
/// How often the ticker beats: three beats fit in [`WEDGED_AFTER`]. It is the idle
/// agent's one timer; at 1 s it was most of its wakeups (docs/BENCHMARKS.md, "Steady RSS
/// with a cold plugin cache, by mapping, and what wakes the agent").
const BEAT_EVERY: Duration = Duration::from_secs(10);

/// Liveness and readiness, shared by the run loop and the health listener.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds since `started` at the last beat.
    last_beat_ms: AtomicU64,
    ready: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Alive now, not ready.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            last_beat_ms: AtomicU64::new(0),
            ready: AtomicBool::new(false),
        }
    }

    /// Records that the agent's runtime is making progress.
    pub fn beat(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_beat_ms.store(ms, Ordering::Relaxed);
    }

    /// True while the last beat is recent. Independent of the container runtime.
    pub fn is_alive(&self) -> bool {
        let now = self.started.elapsed();
        let last = Duration::from_millis(self.last_beat_ms.load(Ordering::Relaxed));
        now.saturating_sub(last) < WEDGED_AFTER
    }

    /// Sets readiness: after the first full sync, and while the runtime answers.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Beats every [`BEAT_EVERY`] until `stop` fires: the proof that the async runtime
    /// still schedules tasks.
    pub async fn run_ticker(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(BEAT_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => self.beat(),
                () = stop.cancelled() => return,
            }
        }
    }
}

#[derive(Clone)]
struct HealthState {
    health: Arc<Health>,
    registry: Arc<Registry>,
}

/// The health listener's routes.
pub fn router(health: Arc<Health>, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(HealthState { health, registry })
}

async fn healthz(State(s): State<HealthState>) -> impl IntoResponse {
    if s.health.is_alive() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "wedged\n")
    }
}

async fn readyz(State(s): State<HealthState>) -> impl IntoResponse {
    if s.health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(s): State<HealthState>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            String::from("metrics encoding failed\n"),
        ),
    }
}
