//! One loaded plugin: its file, content hash, sidecar, pre-instantiated component, shared
//! context (log limiter, metrics) and health (consecutive failures, quarantine).
//!
//! Owns loading a single file (compile, check against the world, test `init`) and making
//! new instances from the `InstancePre`. Hands `PluginInstance`s to the chain runner.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;
use wasmtime::Store;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::engine::{content_hash, one_line, EngineError, PluginEngine};
use super::host_state::{HostState, LogLimiter, PluginContext};
use super::instance::{
    init_deadline_ticks, CallFailure, InitFailure, InstanceLimits, PluginInstance,
};
use super::metrics::PluginMetrics;
use super::served::{BindingsPre, WitVersion};
use super::sidecar::{Sidecar, SidecarError};
use super::stderr::LogStderr;
use super::wit::{SERVED_VERSIONS, WIT_PACKAGE, WIT_VERSION};

/// Why a plugin file was refused. Each message names the file, the reason and the fix.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("plugin {path:?}: cannot read it: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Its sidecar is bad.
    #[error(transparent)]
    Sidecar(#[from] SidecarError),
    /// Not a component, or it does not compile.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// It imports something the host does not offer, or lacks the `handler` exports.
    #[error("plugin {path:?}: does not match world gannet:plugin/plugin@{version}: {message}; rebuild it against gannet:plugin@{WIT_VERSION} (wit/plugin.wit)")]
    WrongWorld {
        /// The file.
        path: PathBuf,
        /// The version its `handler` export names (the current one if it has none).
        version: &'static str,
        /// wasmtime's reason, on one line.
        message: String,
    },
    /// It was built against a `gannet:plugin` version this agent does not serve.
    #[error("plugin {path:?}: built against gannet:plugin@{wanted}, which this agent does not serve (it serves {served}); rebuild it against one of those, or run a Gannet that serves {wanted}")]
    UnknownVersion {
        /// The file.
        path: PathBuf,
        /// The version its `handler` export names.
        wanted: String,
        /// The versions served, comma-separated.
        served: String,
    },
    /// A sidecar grant cannot be given (a directory that does not exist).
    #[error(
        "plugin {path:?}: grant {grant:?} cannot be given: {message}; fix grants in its sidecar"
    )]
    Grant {
        /// The file.
        path: PathBuf,
        /// The grant.
        grant: String,
        /// Why.
        message: String,
    },
    /// `init` refused the config, trapped, timed out or ran out of memory.
    #[error("plugin {path:?}: {failure}; {}", failure.fix())]
    Init {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        failure: InitFailure,
    },
}

/// A plugin's state for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginState {
    /// Records go through it.
    Active,
    /// It failed too often in a row and is skipped until reloaded.
    Quarantined,
}

/// What the API shows about one plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginInfo {
    /// Name (file stem).
    pub name: String,
    /// The `.wasm` file.
    pub file: PathBuf,
    /// SHA-256 of the file.
    pub content_hash: String,
    /// The `gannet:plugin` version it was built against.
    pub wit_version: String,
    /// Active or quarantined.
    pub state: PluginState,
    /// The last failure, if any (no record contents).
    pub last_error: Option<String>,
}

/// What `plugin check` reports about a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentSummary {
    /// The `gannet:plugin` version of its exports, if it has any.
    pub wit_version: Option<String>,
    /// Exported functions, as `interface.function`.
    pub exports: Vec<String>,
    /// Imported WASI interfaces.
    pub wasi_imports: Vec<String>,
    /// Other imports.
    pub other_imports: Vec<String>,
    /// The guest SDK that built it (`gannet-guest 0.2.0`), from its `gannet-sdk` custom
    /// section; `None` for plugins built without the Rust SDK.
    pub sdk: Option<String>,
}

/// The name of the custom section the guest SDK stamps its version into.
const SDK_SECTION: &str = "gannet-sdk";

/// The SDK stamp of a component: the first `gannet-sdk` custom section in it or in any
/// module it nests, if it is short printable text.
pub fn sdk_stamp(bytes: &[u8]) -> Option<String> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::CustomSection(section)) = payload else {
            continue;
        };
        if section.name() != SDK_SECTION {
            continue;
        }
        let text = std::str::from_utf8(section.data()).ok()?;
        let printable = text.len() <= 64 && text.chars().all(|c| c.is_ascii_graphic() || c == ' ');
        return printable.then(|| text.to_string());
    }
    None
}

/// Reads the import and export names of a compiled component.
pub fn summarize(engine: &PluginEngine, component: &Component) -> ComponentSummary {
    let ty = component.component_type();
    let e = engine.engine();
    let mut summary = ComponentSummary {
        wit_version: None,
        exports: Vec::new(),
        wasi_imports: Vec::new(),
        other_imports: Vec::new(),
        sdk: None,
    };
    for (name, ext) in ty.exports(e) {
        if let Some(version) = name.strip_prefix(&format!("{WIT_PACKAGE}/handler@")) {
            summary.wit_version = Some(version.to_string());
        }
        match &ext.ty {
            ComponentItem::ComponentInstance(instance) => {
                for (func, item) in instance.exports(e) {
                    if matches!(item.ty, ComponentItem::ComponentFunc(_)) {
                        summary.exports.push(format!("{name}.{func}"));
                    }
                }
            }
            ComponentItem::ComponentFunc(_) => summary.exports.push(name.to_string()),
            _ => {}
        }
    }
    for (name, _) in ty.imports(e) {
        if name.starts_with("wasi:") {
            summary.wasi_imports.push(name.to_string());
        } else {
            summary.other_imports.push(name.to_string());
        }
    }
    summary
}

/// Consecutive-failure tracking and quarantine, shared by every instance of a plugin.
#[derive(Debug, Default)]
struct Health {
    consecutive_failures: AtomicU32,
    quarantined: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// A compiled, checked, `init`-tested plugin.
pub struct LoadedPlugin {
    name: Arc<str>,
    file: PathBuf,
    hash: String,
    sidecar_text_hash: Option<String>,
    wit_version: String,
    summary: ComponentSummary,
    sidecar: Sidecar,
    env_grants: Vec<(String, String)>,
    pre: BindingsPre,
    engine: PluginEngine,
    context: Arc<PluginContext>,
    health: Health,
    from_cache: bool,
    /// The instance that proved the plugin starts at load; handed to the first runner.
    spare: Mutex<Option<PluginInstance>>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("file", &self.file)
            .finish()
    }
}

/// The name of a plugin: its file stem (`10-filter` for `10-filter.wasm`).
pub fn plugin_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The hash of a plugin's sidecar text, if it has one (used to spot sidecar changes).
pub fn sidecar_hash(wasm: &Path) -> Option<String> {
    std::fs::read(Sidecar::path_for(wasm))
        .ok()
        .map(|b| content_hash(&b))
}

impl LoadedPlugin {
    /// Loads `path` with its optional sidecar `NAME.toml`.
    ///
    /// # Errors
    /// [`LoadError`] naming the file and the reason.
    pub fn load(
        engine: &PluginEngine,
        path: &Path,
        node_name: &str,
        metrics: &PluginMetrics,
    ) -> Result<Self, LoadError> {
        let sidecar = Sidecar::load_optional(&Sidecar::path_for(path))?;
        Self::load_with_sidecar(engine, path, sidecar, node_name, metrics)
    }

    /// Loads `path` with an explicit sidecar (for `plugin check --config` and `plugin run`).
    ///
    /// # Errors
    /// [`LoadError`] naming the file and the reason.
    pub fn load_with_sidecar(
        engine: &PluginEngine,
        path: &Path,
        sidecar: Sidecar,
        node_name: &str,
        metrics: &PluginMetrics,
    ) -> Result<Self, LoadError> {
        let bytes = std::fs::read(path).map_err(|error| LoadError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let hash = content_hash(&bytes);
        let (component, from_cache) = engine.compile(path, &bytes, &hash)?;
        let mut summary = summarize(engine, &component);
        summary.sdk = sdk_stamp(&bytes);
        let version = match summary.wit_version.as_deref() {
            Some(wanted) => {
                WitVersion::served(wanted).ok_or_else(|| LoadError::UnknownVersion {
                    path: path.to_path_buf(),
                    wanted: wanted.to_string(),
                    served: SERVED_VERSIONS.join(", "),
                })?
            }
            None => {
                return Err(LoadError::WrongWorld {
                    path: path.to_path_buf(),
                    version: WIT_VERSION,
                    message: format!("it exports no `{WIT_PACKAGE}/handler` interface"),
                })
            }
        };
        let wrong_world = |e: wasmtime::Error| LoadError::WrongWorld {
            path: path.to_path_buf(),
            version: version.as_str(),
            message: one_line(&e),
        };
        let instance_pre = engine
            .linker()
            .instantiate_pre(&component)
            .map_err(wrong_world)?;
        let pre = BindingsPre::new(version, instance_pre).map_err(wrong_world)?;
        let wit_version = version.as_str().to_string();
        let mut env_grants = Vec::new();
        for name in &sidecar.grants.env {
            // Absent vars are simply not passed; values are never logged.
            if let Ok(value) = std::env::var(name) {
                env_grants.push((name.clone(), value));
            }
        }
        let name: Arc<str> = plugin_name(path).into();
        let context = Arc::new(PluginContext {
            name: name.clone(),
            node_name: node_name.into(),
            log_limiter: LogLimiter::default(),
            counters: metrics.counters(&name),
        });
        let plugin = Self {
            name,
            file: path.to_path_buf(),
            hash,
            sidecar_text_hash: sidecar
                .path
                .as_deref()
                .and_then(|p| std::fs::read(p).ok())
                .map(|b| content_hash(&b)),
            wit_version,
            summary,
            sidecar,
            env_grants,
            pre,
            engine: engine.clone(),
            context,
            health: Health::default(),
            from_cache,
            spare: Mutex::new(None),
        };
        for dir in &plugin.sidecar.grants.read_only_dirs {
            if !dir.host.is_dir() {
                return Err(LoadError::Grant {
                    path: path.to_path_buf(),
                    grant: dir.host.display().to_string(),
                    message: "not an existing directory".to_string(),
                });
            }
        }
        // Prove the plugin starts: instantiate and run `init` once; keep that instance.
        let first = plugin.start_instance().map_err(|failure| LoadError::Init {
            path: path.to_path_buf(),
            failure,
        })?;
        if let Ok(mut spare) = plugin.spare.lock() {
            *spare = Some(first);
        }
        plugin.context.counters.quarantined.set(0);
        Ok(plugin)
    }

    /// An instance ready for calls: the one made at load if still unused, else a fresh one.
    ///
    /// # Errors
    /// [`InitFailure`] when instantiation or `init` fails.
    pub fn new_instance(&self) -> Result<PluginInstance, InitFailure> {
        if let Some(instance) = self.spare.lock().ok().and_then(|mut s| s.take()) {
            return Ok(instance);
        }
        self.start_instance()
    }

    /// Creates and `init`s a fresh instance from the pre-instantiated component.
    fn start_instance(&self) -> Result<PluginInstance, InitFailure> {
        // Instantiation and `init` run plugin code under a deadline: keep the epoch ticking.
        let _busy = self.engine.busy();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(LogStderr::new(self.context.clone()));
        for (name, value) in &self.env_grants {
            wasi.env(name, value);
        }
        for dir in &self.sidecar.grants.read_only_dirs {
            let guest = dir
                .guest
                .clone()
                .unwrap_or_else(|| dir.host.display().to_string());
            wasi.preopened_dir(&dir.host, guest, FsPerms::ReadOnly)
                .map_err(|e| {
                    InitFailure::Trap(format!("read-only dir {:?}: {}", dir.host, one_line(&e)))
                })?;
        }
        let enforce = self.engine.enforces_limits();
        let limit =
            enforce.then(|| usize::try_from(self.sidecar.memory_limit_bytes).unwrap_or(usize::MAX));
        let mut store = Store::new(
            self.engine.engine(),
            HostState::new(wasi.build(), limit, self.context.clone()),
        );
        let limits = InstanceLimits {
            call_deadline: enforce.then_some(self.sidecar.call_deadline),
        };
        if enforce {
            store.limiter(|s| &mut s.limiter);
            // Instantiation runs start functions: bound it like `init`.
            store.set_epoch_deadline(init_deadline_ticks(self.sidecar.call_deadline));
        }
        let bindings = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| InitFailure::of(&store, &e))?;
        PluginInstance::start(store, bindings, limits, &self.sidecar.config_json)
    }

    /// The plugin's name (file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The engine it was compiled with (shared by every plugin of a chain).
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// The `.wasm` file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// SHA-256 of the file.
    pub fn content_hash(&self) -> &str {
        &self.hash
    }

    /// SHA-256 of its sidecar text, if it has one.
    pub fn sidecar_text_hash(&self) -> Option<&str> {
        self.sidecar_text_hash.as_deref()
    }

    /// Its imports and exports.
    pub fn summary(&self) -> &ComponentSummary {
        &self.summary
    }

    /// Its settings.
    pub fn sidecar(&self) -> &Sidecar {
        &self.sidecar
    }

    /// True when the compiled artifact came from the cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// Its shared context (name, limiter, metrics).
    pub fn context(&self) -> &PluginContext {
        &self.context
    }

    /// True when quarantined.
    pub fn is_quarantined(&self) -> bool {
        self.health.quarantined.load(Ordering::Relaxed)
    }

    /// Notes a successful call: the failure streak ends.
    pub fn record_success(&self) {
        if self.health.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.health.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// Notes a failed call (or a failed instance start); quarantines the plugin when the
    /// streak reaches its limit. Returns true when this failure quarantined it.
    pub fn record_failure(&self, failure: &str) -> bool {
        if let Ok(mut last) = self.health.last_error.lock() {
            *last = Some(failure.to_string());
        }
        let streak = self
            .health
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if streak >= self.sidecar.quarantine_after_failures
            && !self.health.quarantined.swap(true, Ordering::Relaxed)
        {
            self.context.counters.quarantines.inc();
            self.context.counters.quarantined.set(1);
            tracing::error!(
                message = "Plugin quarantined after consecutive failures; it is skipped until reloaded.",
                plugin = %self.name,
                failures = streak,
                error = failure,
            );
            return true;
        }
        false
    }

    /// Counts a call failure in the metrics.
    pub fn count_failure(&self, failure: &CallFailure) {
        let c = &self.context.counters;
        match failure {
            CallFailure::Err(_) => c.errors_err.inc(),
            CallFailure::Trap(_) => c.errors_trap.inc(),
            CallFailure::Memory => c.errors_memory.inc(),
            CallFailure::Timeout => c.timeouts.inc(),
        };
    }

    /// What the API shows about it.
    pub fn info(&self) -> PluginInfo {
        PluginInfo {
            name: self.name.to_string(),
            file: self.file.clone(),
            content_hash: self.hash.clone(),
            wit_version: self.wit_version.clone(),
            state: if self.is_quarantined() {
                PluginState::Quarantined
            } else {
                PluginState::Active
            },
            last_error: self.health.last_error.lock().ok().and_then(|g| g.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module holding one custom section `name` with `data`.
    fn module_with_section(name: &str, data: &[u8]) -> Vec<u8> {
        let mut body = vec![u8::try_from(name.len()).unwrap_or(0)];
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(data);
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        bytes.push(0);
        bytes.push(u8::try_from(body.len()).unwrap_or(0));
        bytes.extend(body);
        bytes
    }

    #[test]
    fn the_sdk_stamp_is_read_only_when_it_is_short_text() {
        let stamped = module_with_section(SDK_SECTION, b"gannet-guest 0.2.0");
        assert_eq!(sdk_stamp(&stamped).as_deref(), Some("gannet-guest 0.2.0"));
        assert_eq!(sdk_stamp(&module_with_section("other", b"x")), None);
        assert_eq!(
            sdk_stamp(&module_with_section(SDK_SECTION, b"\x07bell")),
            None
        );
        assert_eq!(sdk_stamp(b"not wasm"), None);
    }
}
