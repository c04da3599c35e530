//! The loop's bookkeeping between syncs: which containers it tracks and what it last saw
//! of each (a cheap fingerprint of the list fields and liveness), the history of ids it
//! finished with, the dirty set, generations, and the list calls of one sync.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::config::Config;
use super::dirs::DirCache;
use super::error::DiscoveryError;
use super::fetch::{connect, FetchContext};
use crate::liveness::{HostRoot, Liveness};
use crate::runtime::cri::{ContainerSummary, SandboxSummary};
use crate::runtime::events::Expect;
use crate::table::Generation;

/// Per-container sync bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Tracked {
    /// Fingerprint of the list fields (+ liveness) at the last sync; 0 forces a fetch.
    pub(super) fingerprint: u64,
    /// Generation of the newest wish to fetch.
    pub(super) wanted: Generation,
    /// Generation of the fetch in flight, if any.
    pub(super) in_flight: Option<Generation>,
    /// The last fetch saw CRI RUNNING with a dead pid; a second such fetch confirms it.
    pub(super) suspect_dead: bool,
    /// Sandbox id from the list.
    pub(super) sandbox_id: String,
    /// What the next fetch should wait for CRI to show (from a runtime event).
    pub(super) expect: Expect,
    /// A `/tasks/oom` was seen for it: its exit reads `OOMKilled`.
    pub(super) oom_killed: bool,
}

/// The loop's state: tracked containers, history, caches, generations.
pub struct SyncState {
    pub(super) tracked: HashMap<String, Tracked>,
    /// Ids already fetched or deliberately ignored (exited before Gannet started).
    pub(super) history: HashSet<String>,
    /// Ids whose fetch is wanted and not yet started (the dirty set).
    pub(super) dirty: HashSet<String>,
    pub(super) next_generation: Generation,
    pub(super) sandboxes: Arc<HashMap<String, SandboxSummary>>,
    pub(super) dirs: DirCache,
    pub(super) started_at_nanos: i64,
}

impl SyncState {
    pub(super) fn new() -> Self {
        Self {
            tracked: HashMap::new(),
            history: HashSet::new(),
            dirty: HashSet::new(),
            next_generation: 1,
            sandboxes: Arc::new(HashMap::new()),
            dirs: DirCache::default(),
            started_at_nanos: crate::record::Timestamp::now().unix_nanos,
        }
    }

    pub(super) fn generation(&mut self) -> Generation {
        self.next_generation += 1;
        self.next_generation
    }

    /// Marks a container for a fresh fetch (the hook for runtime events): its wanted
    /// generation grows, and a fetch starts as soon as none is in flight for it.
    pub fn mark_dirty(&mut self, id: &str, sandbox_id: &str) {
        self.mark_dirty_expecting(id, sandbox_id, Expect::Any);
    }

    /// [`Self::mark_dirty`] for a runtime event: the fetch waits (briefly) until CRI shows
    /// what `expect` says. A pending exit is not weakened by vaguer news.
    pub fn mark_dirty_expecting(&mut self, id: &str, sandbox_id: &str, expect: Expect) {
        let generation = self.generation();
        let t = self.tracked.entry(id.to_owned()).or_default();
        t.wanted = generation;
        if !sandbox_id.is_empty() {
            t.sandbox_id = sandbox_id.to_owned();
        }
        // An exit event (code and time) outranks a pidfd's exit, which outranks vaguer news.
        let keep = match t.expect {
            Expect::Exited { .. } => matches!(expect, Expect::Any | Expect::Gone),
            Expect::Gone => matches!(expect, Expect::Any | Expect::Running),
            Expect::Any | Expect::Running => false,
        };
        if !keep {
            t.expect = expect;
        }
        self.dirty.insert(id.to_owned());
    }

    pub(super) fn forget(&mut self, id: &str) {
        self.tracked.remove(id);
        self.dirty.remove(id);
        self.dirs.forget(id);
    }
}

/// Fingerprint of what the list calls say about a container, plus its liveness.
pub(super) fn fingerprint(
    c: &ContainerSummary,
    sandbox: Option<&SandboxSummary>,
    liveness: Option<Liveness>,
) -> u64 {
    let mut h = DefaultHasher::new();
    c.state().hash(&mut h);
    c.attempt.hash(&mut h);
    c.name.hash(&mut h);
    c.image_ref.hash(&mut h);
    c.labels.iter().collect::<BTreeMap<_, _>>().hash(&mut h);
    c.annotations
        .iter()
        .collect::<BTreeMap<_, _>>()
        .hash(&mut h);
    if let Some(sb) = sandbox {
        sb.ready.hash(&mut h);
        sb.attempt.hash(&mut h);
        sb.name.hash(&mut h);
        sb.namespace.hash(&mut h);
        sb.uid.hash(&mut h);
        sb.labels.iter().collect::<BTreeMap<_, _>>().hash(&mut h);
        sb.annotations
            .iter()
            .collect::<BTreeMap<_, _>>()
            .hash(&mut h);
    }
    // Alive and "not checked yet" (first sight) hash alike, so a new container's first
    // fetch is not followed by a second one only because liveness became known.
    liveness.filter(|l| *l != Liveness::Alive).hash(&mut h);
    // 0 is reserved for "force a fetch".
    h.finish().max(1)
}

/// Result of one list task.
pub(super) struct Listed {
    pub(super) full: bool,
    pub(super) started: tokio::time::Instant,
    pub(super) warned_not_containerd: bool,
    pub(super) result:
        Result<(FetchContext, Vec<ContainerSummary>, Vec<SandboxSummary>), DiscoveryError>,
}

/// The list calls of one sync (connecting first when there is no context), as a task.
pub(super) async fn list_runtime(
    config: Config,
    ctx: Option<FetchContext>,
    mut warned_not_containerd: bool,
    full: bool,
    started: tokio::time::Instant,
) -> Listed {
    let result = async {
        // Before the runtime: without the node's /proc every pid looks dead.
        let proc_stat = HostRoot::new(&config.host_root).resolve("/proc/stat");
        if !proc_stat.is_file() {
            return Err(DiscoveryError::HostRootWithoutProc {
                host_root: config.host_root.clone(),
                proc_stat,
            });
        }
        let ctx = match ctx {
            Some(ctx) => ctx,
            None => connect(&config, &mut warned_not_containerd).await?,
        };
        let containers = ctx.cri.list_containers().await?;
        let sandboxes = ctx.cri.list_sandboxes().await?;
        Ok((ctx, containers, sandboxes))
    }
    .await;
    Listed {
        full,
        started,
        warned_not_containerd,
        result,
    }
}
