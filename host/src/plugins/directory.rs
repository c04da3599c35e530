//! The plugin directory: loading every `*.wasm` in file-name order into a chain, and
//! swapping in a new chain atomically on reload.
//!
//! Owns the current chain (`RwLock<Arc<PluginChain>>`). A reload reuses unchanged,
//! healthy plugins, loads changed ones, and swaps only when every file loaded; otherwise
//! it logs each refusal (file and reason) and the previous chain keeps running.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::chain::PluginChain;
use super::engine::{content_hash, EngineError, PluginEngine};
use super::metrics::PluginMetrics;
use super::plugin::{sidecar_hash, LoadError, LoadedPlugin, PluginInfo};

/// Why the directory itself could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Listing the directory failed.
    #[error("plugin directory {path:?}: {error}; create it or pass another --plugin-dir")]
    List {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The engine refused the setup (a cache inside the plugin directory).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What a successful reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Plugins loaded (new or changed).
    pub loaded: Vec<String>,
    /// Plugins kept as they were.
    pub kept: Vec<String>,
    /// Plugins no longer in the directory.
    pub removed: Vec<String>,
}

/// Lists `dir`'s `*.wasm` files in file-name order.
///
/// # Errors
/// [`DirectoryError::List`].
pub fn list_plugins(dir: &Path) -> Result<Vec<PathBuf>, DirectoryError> {
    let list = |error| DirectoryError::List {
        path: dir.to_path_buf(),
        error,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(list)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// The loaded plugins of one directory (or a list of files) and the current chain.
pub struct PluginSet {
    engine: PluginEngine,
    dir: Option<PathBuf>,
    node_name: String,
    metrics: PluginMetrics,
    current: RwLock<Arc<PluginChain>>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSet").field("dir", &self.dir).finish()
    }
}

impl PluginSet {
    /// Loads every `*.wasm` of `dir`. Plugins that fail are logged, returned and left
    /// out; the set runs with the plugins it could load.
    ///
    /// # Errors
    /// [`DirectoryError`] when the directory cannot be listed or the cache lies inside it.
    pub fn load_dir(
        engine: PluginEngine,
        dir: &Path,
        node_name: &str,
        metrics: PluginMetrics,
    ) -> Result<(Self, Vec<LoadError>), DirectoryError> {
        engine.check_cache_outside(dir)?;
        let set = Self {
            engine,
            dir: Some(dir.to_path_buf()),
            node_name: node_name.to_string(),
            metrics,
            current: RwLock::new(Arc::new(PluginChain::empty())),
        };
        let (chain, errors) = set.build_chain(&PluginChain::empty())?;
        for error in &errors {
            tracing::error!(message = "Plugin refused.", %error);
        }
        set.swap(chain);
        Ok((set, errors))
    }

    /// Loads the given files in the given order (for `gannet plugin run FILE...`).
    ///
    /// # Errors
    /// The first [`LoadError`].
    pub fn load_files(
        engine: PluginEngine,
        files: &[PathBuf],
        node_name: &str,
        metrics: PluginMetrics,
    ) -> Result<Self, LoadError> {
        let mut plugins = Vec::new();
        for file in files {
            plugins.push(Arc::new(LoadedPlugin::load(
                &engine, file, node_name, &metrics,
            )?));
        }
        Ok(Self {
            engine,
            dir: None,
            node_name: node_name.to_string(),
            metrics,
            current: RwLock::new(Arc::new(PluginChain::new(plugins))),
        })
    }

    /// The chain records should start on now.
    pub fn current(&self) -> Arc<PluginChain> {
        match self.current.read() {
            Ok(chain) => chain.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Per-plugin info for the API (file, hash, WIT version, state, last error).
    pub fn plugins(&self) -> Vec<PluginInfo> {
        self.current().infos()
    }

    /// The watched directory, if the set was loaded from one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn swap(&self, chain: PluginChain) {
        let chain = Arc::new(chain);
        match self.current.write() {
            Ok(mut current) => *current = chain,
            Err(poisoned) => *poisoned.into_inner() = chain,
        }
    }

    /// Builds a chain from the directory, reusing `previous`'s unchanged healthy plugins.
    fn build_chain(
        &self,
        previous: &PluginChain,
    ) -> Result<(PluginChain, Vec<LoadError>), DirectoryError> {
        let Some(dir) = &self.dir else {
            return Ok((PluginChain::new(previous.plugins().to_vec()), Vec::new()));
        };
        let mut plugins = Vec::new();
        let mut errors = Vec::new();
        let mut compiled = false;
        // Cache entries to keep: every file in the directory now (loaded or refused: a
        // refused file may be fixed by its sidecar and load again) and the chain that
        // keeps running if this one is refused.
        let mut keep: HashSet<String> = previous
            .plugins()
            .iter()
            .map(|p| p.content_hash().to_string())
            .collect();
        for file in list_plugins(dir)? {
            let hash = std::fs::read(&file).ok().map(|b| content_hash(&b));
            keep.extend(hash.clone());
            let unchanged = previous.plugins().iter().find(|p| {
                p.file() == file
                    && !p.is_quarantined()
                    && hash.as_deref() == Some(p.content_hash())
                    && sidecar_hash(&file).as_deref() == p.sidecar_text_hash()
            });
            if let Some(plugin) = unchanged {
                plugins.push(plugin.clone());
                continue;
            }
            compiled = true;
            match LoadedPlugin::load(&self.engine, &file, &self.node_name, &self.metrics) {
                Ok(plugin) => {
                    tracing::info!(
                        message = "Plugin loaded.",
                        plugin = plugin.name(),
                        file = %file.display(),
                        from_cache = plugin.from_cache()
                    );
                    plugins.push(Arc::new(plugin));
                }
                Err(error) => errors.push(error),
            }
        }
        if let Some(cache) = self.engine.cache() {
            let removed = cache.retain(&keep);
            if removed > 0 {
                tracing::debug!(
                    message = "Stale plugin cache entries removed.",
                    count = removed
                );
            }
        }
        if compiled {
            release_compile_memory();
        }
        Ok((PluginChain::new(plugins), errors))
    }

    /// Rebuilds the chain from the directory and swaps it in if every plugin loaded.
    /// Records already submitted finish on the chain they started on.
    ///
    /// # Errors
    /// The refusals (each naming the file and reason); the previous chain keeps running.
    pub fn reload(&self) -> Result<ReloadSummary, Vec<LoadError>> {
        let previous = self.current();
        let (chain, errors) = match self.build_chain(&previous) {
            Ok(built) => built,
            Err(DirectoryError::List { path, error }) => {
                return Err(vec![LoadError::Read { path, error }]);
            }
            Err(DirectoryError::Engine(e)) => return Err(vec![LoadError::Engine(e)]),
        };
        if !errors.is_empty() {
            for error in &errors {
                tracing::error!(message = "Plugin reload refused; the previous chain keeps running.", %error);
            }
            return Err(errors);
        }
        let mut summary = ReloadSummary::default();
        for plugin in chain.plugins() {
            if previous.plugins().iter().any(|p| Arc::ptr_eq(p, plugin)) {
                summary.kept.push(plugin.name().to_string());
            } else {
                summary.loaded.push(plugin.name().to_string());
            }
        }
        for plugin in previous.plugins() {
            if !chain.plugins().iter().any(|p| p.file() == plugin.file()) {
                summary.removed.push(plugin.name().to_string());
            }
        }
        tracing::info!(
            message = "Plugin chain swapped.",
            loaded = ?summary.loaded,
            kept = ?summary.kept,
            removed = ?summary.removed
        );
        self.swap(chain);
        Ok(summary)
    }
}

/// Hands the heap memory that plugin compilation freed back to the kernel.
///
/// Compiling plugins in-process (no `plugins.cache_dir`, or a cold cache) allocates tens
/// of MB on Cranelift's worker threads and frees it on return, but glibc keeps those
/// pages in the threads' arenas: measured with the four example plugins, VmRSS stayed at
/// 42 MB after the compile against 20 MB when the same plugins were loaded from a warm
/// cache (docs/BENCHMARKS.md, "Steady state"). `malloc_trim` returns the free pages of
/// every arena; later allocations are unaffected. Runs after every directory load and
/// reload (start, SIGHUP and the directory watcher) that compiled something.
fn release_compile_memory() {
    crate::memory::trim_heap();
}
