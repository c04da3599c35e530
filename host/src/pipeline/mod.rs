//! The pipeline between discovery and the outputs: every lifecycle event goes through
//! the plugin chain, then into the API's view and to its outputs.
//!
//! Order: one container's events reach the chain and the outputs in the order discovery
//! emitted them; different containers run in parallel. Events are submitted to the chain
//! in arrival order, and each container's outcomes are awaited, in that order, by one of
//! [`DELIVERY_SHARDS`] delivery tasks chosen by its id. The pipeline owns no state beyond
//! its channels: the view and the outputs are handed in, and outputs can be swapped on
//! reload.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, RwLock};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::api::ContainerView;
use crate::outputs::Outputs;
use crate::record::{ContainerRecord, Lifecycle};
use crate::table::ContainerEvent;

/// Delivery tasks. Two cores: four shards keep a slow output on one container from
/// holding up the others without many idle tasks.
pub const DELIVERY_SHARDS: usize = 4;

/// Outcomes waiting per delivery shard: enough to keep the chain busy while an output
/// catches up; beyond it the pipeline (and so discovery's sender) waits.
const DELIVERY_QUEUE_CAPACITY: usize = 256;

/// What the chain made of one event: the one type the plugin chain, the plugin stage and
/// the pipeline share.
// One per event, moved once: boxing the record would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It went through every plugin, possibly edited, to be delivered.
    Passed {
        /// The record after the chain.
        record: ContainerRecord,
        /// The outputs the last `route` named; `None` means the default outputs.
        destinations: Option<Vec<String>>,
    },
    /// A plugin dropped it (its `drop` verdict or its failure policy): it goes nowhere.
    Dropped {
        /// The record as the chain left it.
        record: ContainerRecord,
        /// The plugin that dropped it.
        plugin: String,
        /// True for the plugin's own `drop` verdict; false for the failure policy.
        intentional: bool,
    },
    /// The chain could not run it: the plugin stage stopped before answering. The record
    /// is gone and the loss was logged; it goes nowhere.
    Lost,
}

impl Outcome {
    /// The record, unless it was lost.
    pub fn record(&self) -> Option<&ContainerRecord> {
        match self {
            Self::Passed { record, .. } | Self::Dropped { record, .. } => Some(record),
            Self::Lost => None,
        }
    }

    /// The record by value, unless it was lost.
    pub fn into_record(self) -> Option<ContainerRecord> {
        match self {
            Self::Passed { record, .. } | Self::Dropped { record, .. } => Some(record),
            Self::Lost => None,
        }
    }
}

/// A chain of plugins, as the pipeline sees it.
pub trait Chain: Send + Sync {
    /// Queues one event; the returned future resolves to its outcome. Events started in
    /// order for one container resolve in that order.
    fn start(
        &self,
        event: Lifecycle,
        record: ContainerRecord,
    ) -> BoxFuture<'_, BoxFuture<'static, Outcome>>;
}

/// The chain without plugins: every record passes unchanged to `default`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough;

// `start` yields the outcome's future on purpose: queueing and finishing are two steps.
#[allow(clippy::async_yields_async)]
impl Chain for PassThrough {
    fn start(
        &self,
        _event: Lifecycle,
        record: ContainerRecord,
    ) -> BoxFuture<'_, BoxFuture<'static, Outcome>> {
        Box::pin(async move {
            let done: BoxFuture<'static, Outcome> = Box::pin(async move {
                Outcome::Passed {
                    record,
                    destinations: None,
                }
            });
            done
        })
    }
}

/// Where outcomes go: the API view and the (swappable) outputs.
pub struct Sink {
    /// The API's table.
    pub view: ContainerView,
    /// The current outputs; replaced on reload.
    pub outputs: RwLock<Arc<Outputs>>,
}

fn shard_of(id: &str) -> usize {
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    (h.finish() % DELIVERY_SHARDS as u64) as usize
}

struct Pending {
    event: Lifecycle,
    /// The record as discovery's table holds it, before the chain.
    before: Arc<ContainerRecord>,
    outcome: BoxFuture<'static, Outcome>,
}

/// What a delivery shard works through, in order.
enum Delivery {
    /// One event's outcome to deliver.
    Event(Pending),
    /// Everything queued before this is delivered: say so.
    Flushed(oneshot::Sender<()>),
}

/// A request to learn when every event the pipeline has received so far has reached the
/// API's view and the outputs' queues: answered on the sender.
pub type Flush = oneshot::Sender<()>;

/// Runs until `input` closes (discovery stopped), then finishes every event already
/// received: the drain. Cancel from outside by dropping discovery's sender.
///
/// A [`Flush`] on `flushes` is answered once every event received before it has been
/// delivered. Events are always taken first, so an event sent before a flush is
/// received before it: readiness uses this to mean that the first full sync's records
/// are all in the API's view and the outputs' queues.
pub async fn run(
    mut input: mpsc::Receiver<ContainerEvent>,
    mut flushes: mpsc::Receiver<Flush>,
    chain: Arc<dyn Chain>,
    sink: Arc<Sink>,
) {
    let mut shards = Vec::with_capacity(DELIVERY_SHARDS);
    let mut tasks = JoinSet::new();
    for i in 0..DELIVERY_SHARDS {
        let (tx, rx) = mpsc::channel::<Delivery>(DELIVERY_QUEUE_CAPACITY);
        shards.push(tx);
        tasks.spawn(deliver(rx, sink.clone()).instrument(tracing::debug_span!(
            "stage",
            stage = "deliver",
            shard = i
        )));
    }
    loop {
        let ContainerEvent {
            lifecycle: event,
            record,
        } = tokio::select! {
            biased;
            received = input.recv() => match received {
                Some(received) => received,
                None => break,
            },
            Some(done) = flushes.recv() => {
                if flush(&shards, done).await.is_err() {
                    break;
                }
                continue;
            }
        };
        // The chain edits a copy; the view keeps what the chain left beside the record
        // the table holds, sharing it.
        let outcome = chain.start(event, ContainerRecord::clone(&record)).await;
        if shards[shard_of(&record.id)]
            .send(Delivery::Event(Pending {
                event,
                before: record,
                outcome,
            }))
            .await
            .is_err()
        {
            break;
        }
    }
    drop(shards);
    while tasks.join_next().await.is_some() {}
}

/// Queues a flush mark behind every shard's events; `done` is answered once each shard
/// has reached its mark.
async fn flush(shards: &[mpsc::Sender<Delivery>], done: Flush) -> Result<(), ()> {
    let mut marks = Vec::with_capacity(shards.len());
    for shard in shards {
        let (tx, rx) = oneshot::channel();
        shard.send(Delivery::Flushed(tx)).await.map_err(drop)?;
        marks.push(rx);
    }
    tokio::spawn(async move {
        for mark in marks {
            if mark.await.is_err() {
                return;
            }
        }
        let _ = done.send(());
    });
    Ok(())
}

async fn deliver(mut rx: mpsc::Receiver<Delivery>, sink: Arc<Sink>) {
    while let Some(delivery) = rx.recv().await {
        let p = match delivery {
            Delivery::Event(p) => p,
            Delivery::Flushed(done) => {
                let _ = done.send(());
                continue;
            }
        };
        match p.outcome.await {
            Outcome::Dropped { .. } | Outcome::Lost => sink.view.forget(&p.before.id),
            Outcome::Passed {
                record,
                destinations,
            } => {
                let outputs = sink.outputs.read().await.clone();
                let destinations = destinations.as_deref().unwrap_or_default();
                outputs.send(p.event, &record, destinations).await;
                sink.view.apply_after_chain(p.event, &p.before, record);
            }
        }
    }
}

#[cfg(test)]
mod tests;
