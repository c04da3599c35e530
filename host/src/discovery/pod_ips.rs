//! The pods' IPs, asked once per sandbox: `ListPodSandbox` carries no network status, so
//! the first fetch of a container in a new pod calls `PodSandboxStatus` and every later
//! one reads the cache. A pod keeps its IPs for its sandbox's life.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tracing::debug;

use crate::runtime::cri::{CriClient, SandboxSummary};

/// Sandbox id -> the pod's IPs. Shared by every fetch of one connection.
#[derive(Debug, Clone, Default)]
pub(super) struct PodIpCache {
    ips: Arc<Mutex<HashMap<String, Arc<[String]>>>>,
}

impl PodIpCache {
    /// The IPs of pod `sandbox_id`: from the cache, else one `PodSandboxStatus`. A failed
    /// call gives no IPs and is not cached, so the next fetch asks again. Entries of
    /// sandboxes no longer in `live` are dropped when a new one is added.
    pub(super) async fn get(
        &self,
        cri: &CriClient,
        sandbox_id: &str,
        live: &HashMap<String, SandboxSummary>,
    ) -> Arc<[String]> {
        if sandbox_id.is_empty() {
            return Arc::from([]);
        }
        if let Some(ips) = self.lock().get(sandbox_id) {
            return Arc::clone(ips);
        }
        match cri.pod_ips(sandbox_id).await {
            Ok(ips) => {
                let ips: Arc<[String]> = ips.into();
                let mut cache = self.lock();
                cache.retain(|id, _| live.contains_key(id));
                cache.insert(sandbox_id.to_owned(), Arc::clone(&ips));
                ips
            }
            Err(error) => {
                debug!(message = "Pod IPs not read; the next fetch asks again.", sandbox_id, %error);
                Arc::from([])
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<[String]>>> {
        match self.ips.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}
