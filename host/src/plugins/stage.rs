//! The async-facing plugin stage: records go to dedicated worker threads (never tokio
//! reactor threads), sharded by container id so one container's events keep their order.
//!
//! Owns the workers and their bounded queues. Each job carries the chain that was
//! current when it was submitted, so records in flight finish on the chain they started
//! on and a swap never reorders one container's events (same shard, FIFO queue).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use super::chain::{ChainRunner, PluginChain};
use super::directory::PluginSet;
use super::plugin::PluginInfo;
use crate::pipeline::{Chain, Outcome};
use crate::record::{ContainerRecord, Lifecycle};

/// Records waiting per worker. Bounds memory and pushes back on the pipeline when plugins
/// are slower than discovery; 256 records is about 0.6 MB at 2.3 KB each.
const SHARD_QUEUE_CAPACITY: usize = 256;

/// The stage's settings.
#[derive(Debug, Clone)]
pub struct StageConfig {
    /// Worker threads (each with its own plugin instances).
    pub workers: usize,
}

impl Default for StageConfig {
    fn default() -> Self {
        Self { workers: 2 }
    }
}

/// The stage is gone (its workers stopped).
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A worker thread could not be started.
    #[error("plugin stage: cannot start worker thread: {0}")]
    Spawn(std::io::Error),
    /// The workers have stopped; no more records can be processed.
    #[error("plugin stage: workers have stopped")]
    Closed,
}

struct Job {
    chain: Arc<PluginChain>,
    event: Lifecycle,
    record: ContainerRecord,
    reply: oneshot::Sender<Outcome>,
}

/// A record submitted to the stage; await it for the outcome.
pub struct PendingOutcome(oneshot::Receiver<Outcome>);

impl PendingOutcome {
    /// Waits for the outcome.
    ///
    /// # Errors
    /// [`StageError::Closed`] when the worker stopped before answering.
    pub async fn outcome(self) -> Result<Outcome, StageError> {
        self.0.await.map_err(|_| StageError::Closed)
    }
}

/// The plugin stage the pipeline uses.
pub struct PluginStage {
    set: Arc<PluginSet>,
    shards: Vec<mpsc::Sender<Job>>,
}

impl std::fmt::Debug for PluginStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginStage")
            .field("workers", &self.shards.len())
            .finish()
    }
}

fn shard_of(id: &str, shards: usize) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    id.hash(&mut hasher);
    usize::try_from(hasher.finish() % shards.max(1) as u64).unwrap_or(0)
}

impl PluginStage {
    /// Starts the worker threads for `set`. Workers exit when the stage is dropped.
    ///
    /// # Errors
    /// [`StageError::Spawn`].
    pub fn start(set: Arc<PluginSet>, config: StageConfig) -> Result<Self, StageError> {
        let mut shards = Vec::new();
        for i in 0..config.workers.max(1) {
            let (tx, mut rx) = mpsc::channel::<Job>(SHARD_QUEUE_CAPACITY);
            std::thread::Builder::new()
                .name(format!("gannet-plugin-{i}"))
                .spawn(move || {
                    let mut runner = ChainRunner::new();
                    while let Some(job) = rx.blocking_recv() {
                        let _span = tracing::debug_span!("stage", stage = "plugins").entered();
                        let outcome = runner.run(&job.chain, job.event, job.record);
                        let _ = job.reply.send(outcome);
                    }
                })
                .map_err(StageError::Spawn)?;
            shards.push(tx);
        }
        Ok(Self { set, shards })
    }

    /// Queues a record on its container's worker and returns a handle to its outcome.
    /// Submitting in order keeps one container's events in order.
    ///
    /// # Errors
    /// [`StageError::Closed`] when the workers have stopped.
    pub async fn submit(
        &self,
        event: Lifecycle,
        record: ContainerRecord,
    ) -> Result<PendingOutcome, StageError> {
        let chain = self.set.current();
        let shard = &self.shards[shard_of(&record.id, self.shards.len())];
        let (reply, rx) = oneshot::channel();
        shard
            .send(Job {
                chain,
                event,
                record,
                reply,
            })
            .await
            .map_err(|_| StageError::Closed)?;
        Ok(PendingOutcome(rx))
    }

    /// Runs one record through the current chain on a worker thread.
    ///
    /// # Errors
    /// [`StageError::Closed`] when the workers have stopped.
    pub async fn process(
        &self,
        event: Lifecycle,
        record: ContainerRecord,
    ) -> Result<Outcome, StageError> {
        self.submit(event, record).await?.outcome().await
    }

    /// Per-plugin info for the API.
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.set.plugins()
    }

    /// The plugin set (for reloads).
    pub fn set(&self) -> &Arc<PluginSet> {
        &self.set
    }
}

// `start` yields the outcome's future on purpose: queueing and finishing are two steps.
#[allow(clippy::async_yields_async)]
impl Chain for PluginStage {
    fn start(
        &self,
        event: Lifecycle,
        record: ContainerRecord,
    ) -> BoxFuture<'_, BoxFuture<'static, Outcome>> {
        Box::pin(async move {
            let done: BoxFuture<'static, Outcome> = match self.submit(event, record).await {
                Ok(pending) => Box::pin(async move {
                    pending.outcome().await.unwrap_or_else(|e| {
                        error!(message = "Plugin stage lost a record.", error = %e);
                        Outcome::Lost
                    })
                }),
                Err(e) => {
                    error!(message = "Plugin stage refused a record.", error = %e);
                    Box::pin(async { Outcome::Lost })
                }
            };
            done
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_id_same_shard() {
        assert_eq!(shard_of("abc", 4), shard_of("abc", 4));
        assert!(shard_of("abc", 4) < 4);
        assert_eq!(shard_of("abc", 1), 0);
    }
}
