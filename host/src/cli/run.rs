//! `gannet run`: the agent. Loads and validates the config, binds every listener and
//! opens every output before discovery starts (so bad input stops the start with one
//! line), then runs discovery -> plugin chain -> outputs + API until SIGTERM/SIGINT, and
//! reloads on SIGHUP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use prometheus_client::registry::Registry;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, RwLock};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::logging::{self, LogReload};

use crate::api::{ApiContext, ApiListeners, ContainerView, Health};
use crate::config::{check_reloadable, resolve_node_name, Config, Overrides};
use crate::discovery::SyncMode;
use crate::logging::LogFormat;
use crate::outputs::{OutputMetrics, Outputs};
use crate::pipeline::{self, Chain, PassThrough, Sink};
use crate::plugins::{PluginEngine, PluginMetrics, PluginSet, PluginStage, StageConfig};
use crate::record::EventIds;
use crate::table::ContainerEvent;

/// Events waiting between discovery and the chain. Discovery coalesces while this is
/// full, so it bounds memory without ever stalling the runtime's event reader.
const DISCOVERY_QUEUE_CAPACITY: usize = 1024;

/// How long the API gets to close its connections after the drain.
const API_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Arguments of `gannet run`. Every flag overrides the config file's value.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The TOML config file (see docs/configuration.md); defaults apply without one.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Runtime socket (`runtime.socket`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Where the node's root filesystem is mounted (`runtime.host_root`).
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,
    /// How discovery learns about changes: events (containerd's event stream plus the
    /// periodic list) or poll (the periodic list only) (`runtime.sync_mode`).
    #[arg(long, value_name = "MODE")]
    pub sync_mode: Option<SyncMode>,
    /// Plugin directory (`plugins.dir`).
    #[arg(long, value_name = "DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Unix socket of the data API (`api.socket`).
    #[arg(long, value_name = "PATH")]
    pub api_socket: Option<PathBuf>,
    /// Loopback TCP address of the data API (`api.listen`).
    #[arg(long, value_name = "ADDR")]
    pub api_listen: Option<SocketAddr>,
    /// Address of the health listener (`api.health_listen`).
    #[arg(long, value_name = "ADDR")]
    pub health_listen: Option<SocketAddr>,
    /// Node name (default: $NODE_NAME, then the host's hostname under the host root).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Log format: text or json (`logging.format`).
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log level or tracing directives (`logging.level`).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

impl RunArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            socket: self.socket.clone(),
            host_root: self.host_root.clone(),
            sync_mode: self.sync_mode,
            plugin_dir: self.plugin_dir.clone(),
            api_socket: self.api_socket.clone(),
            api_listen: self.api_listen,
            health_listen: self.health_listen,
            log_format: self.log_format,
            log_level: self.log_level.clone(),
        }
    }
}

/// Reads the file (if any), applies the flags and validates.
fn load(path: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
    let mut config = match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    config.apply(overrides);
    config.validate()?;
    Ok(config)
}

/// Runs `gannet run`.
///
/// # Errors
/// Bad config, an address in use, an output that cannot open: one line, before
/// discovery starts.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    limit_malloc_arenas();
    let overrides = args.overrides();
    let config = load(args.config.as_deref(), &overrides)?;
    let env_node = std::env::var("NODE_NAME").ok();
    let node = resolve_node_name(
        args.node_name.as_deref(),
        env_node.as_deref(),
        &config.runtime.host_root,
    )?;
    let log_reload = logging::init_agent(&config.logging)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(agent(args.config, overrides, config, node, log_reload))
}

/// One glibc malloc arena for the whole agent, unless `MALLOC_ARENA_MAX` says otherwise.
///
/// glibc gives each thread that allocates its own arena and keeps their free pages: with
/// the four example plugins and 200 containers that was 4 MiB of the agent's RSS (40.4 ->
/// 36.1 MiB, docs/BENCHMARKS.md). The agent allocates little per second, so one arena's
/// lock costs nothing measurable. Called before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        #[allow(unsafe_code)]
        // SAFETY: mallopt takes two integers and only changes glibc's allocator settings;
        // called before the agent starts any thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// What SIGHUP may replace.
struct Reloadable {
    path: Option<PathBuf>,
    overrides: Overrides,
    config: Config,
    node: String,
    ids: Arc<EventIds>,
    metrics: Arc<OutputMetrics>,
    sink: Arc<Sink>,
    ctx: ApiContext,
    log_reload: LogReload,
    plugins: Option<Arc<PluginSet>>,
}

impl Reloadable {
    async fn reload(&mut self) -> anyhow::Result<()> {
        let Some(path) = self.path.clone() else {
            anyhow::bail!("no --config file to reload");
        };
        let new = load(Some(&path), &self.overrides)?;
        check_reloadable(&self.config, &new)?;
        let outputs = Outputs::build(
            &new.outputs,
            &new.record,
            &self.node,
            self.ids.clone(),
            self.metrics.clone(),
        )?;
        let old = std::mem::replace(&mut *self.sink.outputs.write().await, Arc::new(outputs));
        let grace = self.config.runtime.shutdown_grace_period_secs;
        tokio::spawn(async move { old.shutdown(grace).await });
        self.ctx.set_env_values(new.record.env_values);
        // Level and format change for the next line; `--log-*` flags still win.
        if let Err(e) = self.log_reload.apply(&new.logging) {
            warn!(message = "Logging not reloaded.", error = %format!("{e:#}"));
        }
        if let Some(set) = self.plugins.clone() {
            let reloading = tokio::task::spawn_blocking(move || set.reload());
            match reloading.await {
                Ok(Ok(summary)) => info!(
                    message = "Plugins reloaded.",
                    loaded = summary.loaded.len(),
                    kept = summary.kept.len(),
                    removed = summary.removed.len()
                ),
                Ok(Err(errors)) => {
                    for error in errors {
                        error!(message = "Plugin refused on reload; the old one keeps running.", %error);
                    }
                }
                Err(e) => error!(message = "Plugin reload failed.", error = %e),
            }
        }
        self.config = new;
        Ok(())
    }
}

async fn agent(
    path: Option<PathBuf>,
    overrides: Overrides,
    config: Config,
    node: String,
    log_reload: LogReload,
) -> anyhow::Result<ExitCode> {
    let mut registry = Registry::default();
    crate::runtime::metrics::RuntimeMetrics::install(&mut registry);
    let metrics = Arc::new(OutputMetrics::register(&mut registry));
    // Bind and open everything that can fail on bad input before discovery starts.
    let listeners = ApiListeners::bind(&config.api).await?;
    let ids = Arc::new(EventIds::new());
    let outputs = Outputs::build(
        &config.outputs,
        &config.record,
        &node,
        ids.clone(),
        metrics.clone(),
    )?;
    let plugin_metrics = PluginMetrics::register(&mut registry);

    let api_stop = CancellationToken::new();
    let health = Arc::new(Health::new());
    health.beat();
    tokio::spawn(health.clone().run_ticker(api_stop.clone()));
    let view = ContainerView::new(
        Duration::from_secs(config.api.removed_retention_secs),
        config.api.watch_buffer_events,
    );
    let ctx = ApiContext::new(
        view.clone(),
        ids.clone(),
        &node,
        config.record.env_values,
        api_stop.clone(),
    );
    // Serve first: `/healthz` answers (and `/readyz` says not ready) while the plugins
    // load, which can take seconds per plugin with a cold cache.
    let api_tasks = listeners.serve(ctx.clone(), health.clone(), Arc::new(registry));
    let plugins = start_plugins(&config, &node, plugin_metrics).await?;
    let chain: Arc<dyn Chain> = match &plugins {
        Some(p) => p.stage.clone(),
        None => Arc::new(PassThrough),
    };
    if let Some(p) = &plugins {
        let stage = p.stage.clone();
        view.set_plugin_source(Arc::new(move || {
            stage
                .plugins()
                .into_iter()
                .map(|i| crate::api::PluginInfo {
                    file: i
                        .file
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    sha256: i.content_hash,
                    wit_version: i.wit_version,
                    state: match i.state {
                        crate::plugins::PluginState::Active => "active".to_string(),
                        crate::plugins::PluginState::Quarantined => "quarantined".to_string(),
                    },
                    last_error: i.last_error,
                })
                .collect()
        }));
    }
    let sink = Arc::new(Sink {
        view,
        outputs: RwLock::new(Arc::new(outputs)),
    });

    let (events_tx, events_rx) = mpsc::channel(DISCOVERY_QUEUE_CAPACITY);
    // Readiness asks the pipeline to flush once discovery is ready; one at a time.
    let (flush_tx, flush_rx) = mpsc::channel(1);
    let pipeline_task = tokio::spawn(pipeline::run(events_rx, flush_rx, chain, sink.clone()));
    let discovery_stop = CancellationToken::new();
    let discovery_task = tokio::spawn(discovery(
        crate::discovery::Config {
            node_name: node.clone(),
            ..config.runtime.clone()
        },
        events_tx,
        flush_tx,
        health.clone(),
        discovery_stop.clone(),
    ));
    info!(message = "Gannet running.", node = %node, api_socket = %config.api.socket.display(), health_listen = %config.api.health_listen);

    let mut reloadable = Reloadable {
        path,
        overrides,
        config,
        node,
        ids,
        metrics,
        sink: sink.clone(),
        ctx,
        log_reload,
        plugins: plugins.as_ref().map(|p| p.stage.set().clone()),
    };
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    loop {
        tokio::select! {
            _ = term.recv() => { info!(message = "SIGTERM: draining."); break; }
            _ = int.recv() => { info!(message = "SIGINT: draining."); break; }
            _ = hup.recv() => {
                match reloadable.reload().await {
                    Ok(()) => info!(message = "Config reloaded."),
                    Err(e) => error!(message = "Reload refused; the running config stays.", error = %format!("{e:#}")),
                }
            }
        }
    }

    // Drain: stop discovery, finish what it sent, flush outputs, all within the grace.
    let grace = reloadable.config.runtime.shutdown_grace_period_secs;
    let deadline = tokio::time::Instant::now() + grace;
    discovery_stop.cancel();
    if tokio::time::timeout_at(deadline, discovery_task)
        .await
        .is_err()
    {
        warn!(message = "Discovery did not stop within the grace period.");
    }
    if tokio::time::timeout_at(deadline, pipeline_task)
        .await
        .is_err()
    {
        warn!(message = "In-flight events not drained within the grace period.");
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let outputs = sink.outputs.read().await.clone();
    outputs.shutdown(left).await;
    api_stop.cancel();
    for task in api_tasks {
        let _ = tokio::time::timeout(API_CLOSE_TIMEOUT, task).await;
    }
    info!(message = "Gannet stopped.");
    Ok(ExitCode::SUCCESS)
}

/// The discovery stage: sends lifecycle events until `stop`; mirrors its readiness into
/// `/readyz`. Discovery is ready once its first full sync is complete and while the runtime
/// answers; `/readyz` follows only once the pipeline has delivered every event sent before
/// that (a [`pipeline::Flush`]), so ready means the API's view and the outputs' queues hold
/// the whole table. Runtime errors are retried with backoff inside discovery and never end
/// it.
async fn discovery(
    config: crate::discovery::Config,
    events: mpsc::Sender<ContainerEvent>,
    flushes: mpsc::Sender<pipeline::Flush>,
    health: Arc<Health>,
    stop: CancellationToken,
) {
    let discovery = crate::discovery::Discovery::new(config);
    let mut ready = discovery.readiness();
    let readiness_stop = stop.clone();
    let mirror = tokio::spawn(async move {
        let mut released = false;
        loop {
            let discovery_ready = *ready.borrow_and_update();
            if !discovery_ready {
                health.set_ready(false);
            } else if !health.is_ready() {
                let (done, flushed) = tokio::sync::oneshot::channel();
                if flushes.send(done).await.is_err() {
                    break;
                }
                tokio::select! {
                    result = flushed => if result.is_err() { break },
                    () = readiness_stop.cancelled() => break,
                }
                // Still ready after the flush (a runtime error may have come meanwhile).
                if *ready.borrow() {
                    health.set_ready(true);
                    if !released {
                        // Start-up is over: plugins loaded, first full sync delivered.
                        released = true;
                        tokio::task::spawn_blocking(crate::memory::release_startup_memory);
                    }
                }
            }
            tokio::select! {
                changed = ready.changed() => if changed.is_err() { break },
                () = readiness_stop.cancelled() => break,
            }
        }
        health.set_ready(false);
    });
    if let Err(e) = discovery.run(events, stop).await {
        error!(message = "Discovery stopped.", error = %e);
    }
    let _ = mirror.await;
}

/// The plugin stage and what keeps its directory watched.
struct Plugins {
    stage: Arc<PluginStage>,
    _watcher: Option<crate::plugins::DirWatcher>,
}

/// Loads the plugin directory (if configured) and starts the stage's worker threads.
async fn start_plugins(
    config: &Config,
    node: &str,
    metrics: PluginMetrics,
) -> anyhow::Result<Option<Plugins>> {
    let Some(dir) = config.plugins.dir.clone() else {
        return Ok(None);
    };
    let options = crate::plugins::EngineOptions {
        cache_dir: config.plugins.cache_dir.clone(),
        // With a cache, cache misses compile in a `gannet plugin compile` child, so the
        // compiler's memory leaves with it (docs/plugin-host.md).
        compiler: std::env::current_exe().ok(),
        ..Default::default()
    };
    let node = node.to_string();
    let set = tokio::task::spawn_blocking(move || -> anyhow::Result<PluginSet> {
        let engine = PluginEngine::new(options)?;
        let (set, _errors) = PluginSet::load_dir(engine, &dir, &node, metrics)?;
        Ok(set)
    })
    .await
    .context("plugin loading stopped")??;
    let set = Arc::new(set);
    let watcher = match crate::plugins::watch(set.clone(), crate::plugins::DEFAULT_DEBOUNCE) {
        Ok(w) => Some(w),
        Err(e) => {
            warn!(message = "Plugin directory not watched; use SIGHUP to reload.", error = %e);
            None
        }
    };
    let stage = PluginStage::start(set, StageConfig::default())?;
    Ok(Some(Plugins {
        stage: Arc::new(stage),
        _watcher: watcher,
    }))
}
