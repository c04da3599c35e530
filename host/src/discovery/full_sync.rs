//! A full sync on its own: every container listed and fetched once, as the loop's full
//! resync does it. Behind `gannet list` ([`discover_once`]) and the benchmarks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::warn;

use super::config::Config;
use super::dirs::DirCache;
use super::error::DiscoveryError;
use super::fetch::{connect, FetchContext};
use crate::record::{ContainerRecord, ContainerState};
use crate::runtime::cri::{CriState, SandboxSummary, FULL_FETCH_TIMEOUT};

/// One-shot discovery for `gannet list`: every running container (with `include_all`,
/// also the created and exited ones the runtime still holds), sorted by namespace, pod
/// and container name.
///
/// # Errors
/// [`DiscoveryError::Cri`] when the runtime cannot be reached or a list call fails;
/// [`DiscoveryError::FullFetchTimedOut`] after 60 s. A single container's failed fetch
/// is logged and that container skipped.
pub async fn discover_once(
    config: &Config,
    include_all: bool,
) -> Result<Vec<ContainerRecord>, DiscoveryError> {
    FullSync::connect(config).await?.run(include_all).await
}

/// A full sync on a connected runtime, as the loop's full resync does it: one
/// ListContainers, one ListPodSandbox, then a verbose fetch per container, at most
/// `max_concurrent_fetches` in flight. The upperdir and rootfs caches persist across
/// [`FullSync::run`] calls (for a container's life, as in the loop), so the first run
/// also asks the snapshot service for each upperdir and later runs do not. Behind
/// [`discover_once`]; public so benchmarks can time a sync without the connect.
pub struct FullSync {
    ctx: FetchContext,
    max_concurrent_fetches: usize,
    dirs: Mutex<DirCache>,
}

impl FullSync {
    /// Connects to the runtime `config` names (CRI version negotiation included).
    ///
    /// # Errors
    /// [`DiscoveryError::InvalidConfig`] or [`DiscoveryError::Cri`] when the runtime
    /// cannot be reached.
    pub async fn connect(config: &Config) -> Result<Self, DiscoveryError> {
        config.validate()?;
        let mut warned = false;
        let ctx = connect(config, &mut warned).await?;
        Ok(Self {
            ctx,
            max_concurrent_fetches: config.max_concurrent_fetches,
            dirs: Mutex::default(),
        })
    }

    /// Every running container (with `include_all`, also created and exited ones), sorted
    /// by namespace, pod and container name.
    ///
    /// # Errors
    /// [`DiscoveryError::Cri`] when a list call fails; [`DiscoveryError::FullFetchTimedOut`]
    /// after 60 s. A single container's failed fetch is logged and that container skipped.
    pub async fn run(&self, include_all: bool) -> Result<Vec<ContainerRecord>, DiscoveryError> {
        let ctx = &self.ctx;
        let socket = ctx.cri.socket().to_path_buf();
        let work = async {
            let containers = ctx.cri.list_containers().await?;
            let sandboxes: HashMap<String, SandboxSummary> = ctx
                .cri
                .list_sandboxes()
                .await?
                .into_iter()
                .map(|s| (s.id.clone(), s))
                .collect();
            let sandboxes = Arc::new(sandboxes);
            let limit = Arc::new(Semaphore::new(self.max_concurrent_fetches));
            let cached = match self.dirs.lock() {
                Ok(c) => c.clone(),
                Err(poisoned) => poisoned.into_inner().clone(),
            };
            let mut tasks = JoinSet::new();
            for c in containers {
                if !include_all && c.state() != CriState::Running {
                    continue;
                }
                let known = cached.get(&c.id);
                let (ctx, sandboxes, limit) =
                    (ctx.clone(), Arc::clone(&sandboxes), Arc::clone(&limit));
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    let result = ctx.fetch(&c.sandbox_id, &c.id, &sandboxes, known).await;
                    (c.id, result)
                });
            }
            let mut records = Vec::new();
            let mut found = DirCache::default();
            while let Some(joined) = tasks.join_next().await {
                let Ok((id, result)) = joined else { continue };
                match result {
                    Ok(f) => {
                        let keep = include_all || f.record.state == ContainerState::Running;
                        if f.record.state == ContainerState::Running {
                            found.remember(&id, &f.dirs);
                        }
                        if keep {
                            records.push(f.record);
                        }
                    }
                    Err(e) if e.is_not_found() => {}
                    Err(error) => {
                        warn!(message = "Container status fetch failed; skipping it.", container_id = %id, %error)
                    }
                }
            }
            // Only live containers stay cached, as in the loop.
            match self.dirs.lock() {
                Ok(mut c) => *c = found,
                Err(poisoned) => *poisoned.into_inner() = found,
            }
            records.sort_by(|a, b| {
                (&a.k8s.namespace, &a.k8s.pod_name, &a.name, &a.id).cmp(&(
                    &b.k8s.namespace,
                    &b.k8s.pod_name,
                    &b.name,
                    &b.id,
                ))
            });
            Ok::<_, DiscoveryError>(records)
        };
        tokio::time::timeout(FULL_FETCH_TIMEOUT, work)
            .await
            .map_err(|_| DiscoveryError::FullFetchTimedOut { socket })?
    }
}
