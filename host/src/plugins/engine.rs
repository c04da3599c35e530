//! The one wasmtime engine of the agent: its `Config`, the component `Linker` (WASI 0.2
//! plus the Gannet host imports), the epoch ticker and compilation through the artifact
//! cache.
//!
//! This is the only module that touches `wasmtime::Config`. It hands compiled
//! `Component`s and the linker to the loader; it never runs plugin code.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::cache::{ArtifactCache, CacheError};
use super::compiler::{compile_in_child, ChildCompileError};
use super::epoch::{Busy, EpochTicker};
use super::host_state::HostState;
use super::served;

pub use super::epoch::EPOCH_TICK;

/// Engine-wide choices.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Where precompiled artifacts are cached; `None` compiles in memory every time.
    pub cache_dir: Option<PathBuf>,
    /// Per-call deadlines by epoch interruption and the per-store memory limiter. Only
    /// benchmarks turn this off, to measure what it costs.
    pub enforce_limits: bool,
    /// A `gannet` executable that compiles cache misses in a child process
    /// (`gannet plugin compile`), so Cranelift's memory never stays in this process; only
    /// used with `cache_dir`, where the child writes the artifact. `None` compiles here.
    pub compiler: Option<PathBuf>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            enforce_limits: true,
            compiler: None,
        }
    }
}

/// Why a plugin file could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the engine configuration or the linker setup.
    #[error("plugin engine: {message}")]
    Setup {
        /// wasmtime's message.
        message: String,
    },
    /// The cache directory cannot be used.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The cache directory lies inside the plugin directory.
    #[error("plugin cache {cache:?} is inside the plugin directory {plugins:?}; put it elsewhere (default /var/cache/gannet/plugins)")]
    CacheInsidePluginDir {
        /// The cache directory.
        cache: PathBuf,
        /// The plugin directory.
        plugins: PathBuf,
    },
    /// The file is not WebAssembly at all.
    #[error("plugin {path:?}: not a WebAssembly file (bad magic bytes); build it with `cargo build --target wasm32-wasip2 --release`")]
    NotWasm {
        /// The file.
        path: PathBuf,
    },
    /// The file is a core module, not a component.
    #[error("plugin {path:?}: a core WebAssembly module, not a component; build it with `cargo build --target wasm32-wasip2 --release`")]
    NotComponent {
        /// The file.
        path: PathBuf,
    },
    /// Cranelift refused the component.
    #[error(
        "plugin {path:?}: does not compile: {message}; rebuild it against gannet:plugin@0.2.0 (wit/plugin.wit)"
    )]
    Compile {
        /// The file.
        path: PathBuf,
        /// wasmtime's message, on one line.
        message: String,
    },
}

/// Formats a wasmtime error chain on one line.
pub(crate) fn one_line(error: &wasmtime::Error) -> String {
    format!("{error:#}").replace('\n', " ")
}

struct EngineInner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ArtifactCache>,
    options: EngineOptions,
    /// Advances the epoch while plugin code may run; `None` when limits are off.
    ticker: Option<Arc<EpochTicker>>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        if let Some(ticker) = &self.ticker {
            ticker.stop();
        }
    }
}

/// The shared engine, linker and cache. Cheap to clone.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("options", &self.inner.options)
            .finish()
    }
}

/// The SHA-256 of `bytes` in hex: a plugin's content hash.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl PluginEngine {
    /// Builds the engine, the linker and (if configured) opens the artifact cache; starts
    /// the epoch ticker when limits are enforced.
    ///
    /// # Errors
    /// [`EngineError::Setup`] or [`EngineError::Cache`].
    pub fn new(options: EngineOptions) -> Result<Self, EngineError> {
        let setup = |e: wasmtime::Error| EngineError::Setup {
            message: one_line(&e),
        };
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(options.enforce_limits);
        // No component-model async: the store keeps no concurrent-task state. This is
        // wasmtime 48's default without its `component-model-async` feature, said here
        // so a feature change cannot turn it on unnoticed (docs/BENCHMARKS.md).
        config.concurrency_support(false);
        let engine = Engine::new(&config).map_err(setup)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(setup)?;
        served::add_to_linker(&mut linker).map_err(setup)?;
        let engine_key = engine_key(&engine);
        let cache = match &options.cache_dir {
            Some(dir) => Some(ArtifactCache::open(dir, engine_key)?),
            None => None,
        };
        let ticker = if options.enforce_limits {
            EpochTicker::spawn(&engine)
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                cache,
                options,
                ticker,
            }),
        })
    }

    /// Marks plugin code as possibly running until the guard drops, so the epoch ticks
    /// and deadlines fire. Hold it around every call into a plugin (instantiation, `init`,
    /// `process`); the ticker sleeps when no guard is held.
    pub fn busy(&self) -> Option<Busy<'_>> {
        self.inner.ticker.as_deref().map(EpochTicker::busy)
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The linker with WASI and the host imports.
    pub fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// True when deadlines and memory limits are enforced.
    pub fn enforces_limits(&self) -> bool {
        self.inner.options.enforce_limits
    }

    /// The artifact cache, if any.
    pub fn cache(&self) -> Option<&ArtifactCache> {
        self.inner.cache.as_ref()
    }

    /// Refuses a cache directory inside the plugin directory.
    ///
    /// # Errors
    /// [`EngineError::CacheInsidePluginDir`].
    pub fn check_cache_outside(&self, plugin_dir: &Path) -> Result<(), EngineError> {
        let Some(cache) = &self.inner.cache else {
            return Ok(());
        };
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let (c, p) = (canon(cache.dir()), canon(plugin_dir));
        if c.starts_with(&p) {
            return Err(EngineError::CacheInsidePluginDir {
                cache: c,
                plugins: p,
            });
        }
        Ok(())
    }

    /// Compiles `bytes` (the content of `path`), through the cache when there is one.
    /// Returns the component and whether it came from the cache.
    ///
    /// # Errors
    /// [`EngineError::NotWasm`], [`EngineError::NotComponent`] or [`EngineError::Compile`].
    pub fn compile(
        &self,
        path: &Path,
        bytes: &[u8],
        hash: &str,
    ) -> Result<(Component, bool), EngineError> {
        check_header(path, bytes)?;
        if let Some(cache) = &self.inner.cache {
            if let Some(component) = self.load_cached(cache, path, hash) {
                return Ok((component, true));
            }
            if let Some(exe) = &self.inner.options.compiler {
                let started = std::time::Instant::now();
                match compile_in_child(exe, cache.dir(), bytes) {
                    Ok(()) => {
                        if let Some(component) = self.load_cached(cache, path, hash) {
                            tracing::info!(
                                message = "Plugin compiled in a child process.",
                                plugin = %path.display(),
                                elapsed_ms = started.elapsed().as_millis() as u64,
                            );
                            return Ok((component, false));
                        }
                        tracing::warn!(
                            message = "The compiler process left no usable artifact; compiling in-process.",
                            plugin = %path.display(),
                        );
                    }
                    Err(ChildCompileError::Refused(message)) => {
                        return Err(EngineError::Compile {
                            path: path.to_path_buf(),
                            message,
                        })
                    }
                    Err(error) => tracing::warn!(
                        message = "Plugin not compiled in a child process; compiling in-process.",
                        plugin = %path.display(),
                        %error,
                    ),
                }
            }
        }
        let component =
            Component::new(&self.inner.engine, bytes).map_err(|e| EngineError::Compile {
                path: path.to_path_buf(),
                message: one_line(&e),
            })?;
        if let Some(cache) = &self.inner.cache {
            match component.serialize() {
                Ok(artifact) => {
                    if let Err(error) = cache.put(hash, &artifact) {
                        tracing::warn!(message = "Plugin cache write failed.", plugin = %path.display(), %error);
                    }
                }
                Err(error) => tracing::warn!(
                    message = "Plugin serialization failed.",
                    plugin = %path.display(),
                    error = %one_line(&error)
                ),
            }
        }
        Ok((component, false))
    }

    /// The cached artifact for `hash` as a component; `None` when there is none or it is
    /// unusable (logged), so the caller compiles.
    fn load_cached(&self, cache: &ArtifactCache, path: &Path, hash: &str) -> Option<Component> {
        let artifact = cache.get(hash)?;
        #[allow(unsafe_code)]
        // SAFETY: the artifact was written by this agent (or its `gannet plugin compile`
        // child, with the same engine key) into a directory that `ArtifactCache::open`
        // checked is owned by our user with no group or other access, so nobody else could
        // have planted it; wasmtime also checks the header and the engine compatibility
        // before using it.
        let loaded = unsafe { Component::deserialize(&self.inner.engine, &artifact) };
        match loaded {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(
                    message = "Plugin cache entry unusable; recompiling.",
                    plugin = %path.display(),
                    error = %one_line(&error)
                );
                None
            }
        }
    }
}

/// Refuses anything but a component by its header: magic `\0asm`, then version 0x0d with
/// layer 1 for a component (a core module has version 1, layer 0).
fn check_header(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(EngineError::NotWasm {
            path: path.to_path_buf(),
        });
    }
    if bytes[6..8] != [1, 0] {
        return Err(EngineError::NotComponent {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// The engine key: wasmtime version plus the engine's precompile compatibility hash.
fn engine_key(engine: &Engine) -> String {
    let mut hasher = std::hash::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{}_{:016x}", wasmtime_version(), hasher.finish())
}

/// The wasmtime version the host was built with.
pub fn wasmtime_version() -> &'static str {
    // Pinned with `=` in the workspace; keep in step with root Cargo.toml.
    "48.0.8"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_module_header_is_refused() {
        let core = b"\0asm\x01\0\0\0";
        let err = check_header(Path::new("x.wasm"), core)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            "plugin \"x.wasm\": a core WebAssembly module, not a component; build it with `cargo build --target wasm32-wasip2 --release`"
        );
        let component = b"\0asm\x0d\0\x01\0";
        assert!(check_header(Path::new("x.wasm"), component).is_ok());
        assert!(matches!(
            check_header(Path::new("x.wasm"), b"hello"),
            Err(EngineError::NotWasm { .. })
        ));
    }

    #[test]
    fn the_engine_has_no_concurrency_support() -> Result<(), EngineError> {
        let engine = PluginEngine::new(EngineOptions::default())?;
        assert!(!engine.engine().get_concurrency_support());
        Ok(())
    }

    #[test]
    fn engine_key_depends_on_configuration() -> Result<(), EngineError> {
        let with = PluginEngine::new(EngineOptions::default())?;
        let without = PluginEngine::new(EngineOptions {
            enforce_limits: false,
            ..EngineOptions::default()
        })?;
        let (with, without) = (engine_key(with.engine()), engine_key(without.engine()));
        assert_ne!(with, without);
        assert!(with.starts_with("48.0.8_"), "{with}");
        Ok(())
    }
}
