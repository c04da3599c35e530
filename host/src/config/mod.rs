//! The agent's configuration: one TOML file, parsed, overridden by flags and validated
//! before anything starts.
//!
//! This module owns the file format (every field's doc comment is its reference text,
//! mirrored in `docs/configuration.md`), the defaults (one `impl Default` per section), the
//! precedence of flags over the file, and the node-name lookup. It hands a validated
//! [`Config`] to `gannet run`; it never opens sockets or starts tasks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::discovery::SyncMode;

mod error;
mod node;

pub use error::ConfigError;
pub use node::resolve_node_name;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the container runtime is and how often to resync with it.
    pub runtime: RuntimeConfig,
    /// Where the WebAssembly plugins are.
    pub plugins: PluginsConfig,
    /// How records are serialized.
    pub record: RecordConfig,
    /// Named outputs; the one named `default` receives every record no plugin routed.
    pub outputs: BTreeMap<String, OutputConfig>,
    /// The local data API and the health listener.
    pub api: ApiConfig,
    /// Log format and level (logs always go to stderr).
    pub logging: LoggingConfig,
}

impl Default for Config {
    fn default() -> Self {
        let mut outputs = BTreeMap::new();
        outputs.insert(
            DEFAULT_OUTPUT.to_string(),
            OutputConfig::Stdout(StdoutConfig {}),
        );
        Self {
            runtime: RuntimeConfig::default(),
            plugins: PluginsConfig::default(),
            record: RecordConfig::default(),
            outputs,
            api: ApiConfig::default(),
            logging: LoggingConfig::default(),
        }
    }
}

/// The output that receives records with no destination.
pub const DEFAULT_OUTPUT: &str = "default";

/// `[runtime]`: the container runtime and the run loop's timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The containerd / CRI unix socket.
    pub socket: PathBuf,
    /// Where the node's root filesystem is mounted (`/` unless Gannet runs in a container).
    pub host_root: PathBuf,
    /// Seconds between full resyncs with the runtime (a safety net for missed events).
    pub resync_period_secs: u64,
    /// Seconds SIGTERM may spend draining in-flight records and flushing outputs.
    pub shutdown_grace_period_secs: u64,
    /// How discovery learns about changes: `events` (containerd's event stream plus the
    /// periodic list) or `poll` (the periodic list only, the reference behaviour).
    pub sync_mode: SyncMode,
    /// Most containers fetched per second because of runtime events (`events` mode); a
    /// burst beyond it is coalesced and caught up. 1 to [`MAX_EVENT_FETCH_RATE_PER_SEC`].
    pub event_fetch_rate_per_sec: u32,
    /// Most verbose-status fetches in flight at once in `events` mode (`poll` fetches one
    /// at a time). 1 to [`MAX_CONCURRENT_FETCHES`].
    pub max_concurrent_fetches: usize,
}

/// Highest `runtime.event_fetch_rate_per_sec`: well above any real churn (the reference
/// caps at 200), low enough that the dispatcher's tick stays a real interval.
pub const MAX_EVENT_FETCH_RATE_PER_SEC: u32 = 10_000;

/// Highest `runtime.max_concurrent_fetches`: more fetches in flight only queue inside the
/// runtime, which serves them from one process.
pub const MAX_CONCURRENT_FETCHES: usize = 256;

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/containerd/containerd.sock"),
            host_root: PathBuf::from("/"),
            resync_period_secs: 300,
            shutdown_grace_period_secs: 10,
            sync_mode: SyncMode::Events,
            event_fetch_rate_per_sec: crate::discovery::Config::default().event_fetch_rate_per_sec,
            max_concurrent_fetches: crate::discovery::Config::default().max_concurrent_fetches,
        }
    }
}

impl RuntimeConfig {
    /// `resync_period_secs` as a duration.
    pub fn resync_period(&self) -> Duration {
        Duration::from_secs(self.resync_period_secs)
    }

    /// `shutdown_grace_period_secs` as a duration.
    pub fn shutdown_grace_period(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_period_secs)
    }
}

/// `[plugins]`: the plugin directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory of `*.wasm` plugins, run in file-name order; unset means no plugins.
    pub dir: Option<PathBuf>,
    /// Where compiled plugins are cached across restarts (outside `dir`); unset compiles
    /// in memory at every start.
    pub cache_dir: Option<PathBuf>,
}

/// `[record]`: how records are serialized in outputs and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// `redact` (default) keeps env names and replaces their values; `include` keeps values.
    pub env_values: EnvValues,
}

/// Whether env values leave the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvValues {
    /// Names kept, values replaced by [`REDACTED`].
    #[default]
    Redact,
    /// Values serialized as they are.
    Include,
}

/// What a redacted env value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// One `[outputs.NAME]` section, chosen by its `type` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputConfig {
    /// JSON lines on stdout.
    Stdout(StdoutConfig),
    /// JSON lines in a file, rotated by size.
    File(FileConfig),
    /// JSON arrays POSTed to a URL.
    Http(HttpConfig),
}

impl OutputConfig {
    /// The `type` key of this section.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdout(_) => "stdout",
            Self::File(_) => "file",
            Self::Http(_) => "http",
        }
    }
}

/// `type = "stdout"`: no options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {}

/// `type = "file"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file to append JSON lines to; its directory must exist and be writable.
    pub path: PathBuf,
    /// Rotate once the file reaches this many bytes.
    #[serde(default = "FileConfig::default_max_file_size_bytes")]
    pub max_file_size_bytes: u64,
    /// Rotated files kept beside the live one (`path.1` ... `path.N`).
    #[serde(default = "FileConfig::default_max_files")]
    pub max_files: u32,
}

impl FileConfig {
    fn default_max_file_size_bytes() -> u64 {
        100 * 1024 * 1024
    }
    fn default_max_files() -> u32 {
        5
    }
}

/// What an output does when its queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// Wait for room: the chain slows down (discovery coalesces meanwhile).
    #[default]
    Block,
    /// Drop the oldest queued event and count it.
    DropOldest,
}

/// `type = "http"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `http://` or `https://` URL to POST JSON arrays of events to.
    pub url: String,
    /// Most events in one POST.
    #[serde(default = "HttpConfig::default_batch_size")]
    pub batch_size: usize,
    /// Milliseconds to wait for a batch to fill before sending what there is.
    #[serde(default = "HttpConfig::default_linger_ms")]
    pub linger_ms: u64,
    /// Seconds one POST may take before it counts as failed and is retried.
    #[serde(default = "HttpConfig::default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Events the queue holds before the overflow policy applies.
    #[serde(default = "HttpConfig::default_queue_capacity")]
    pub queue_capacity: usize,
    /// `block` (default) or `drop_oldest`.
    #[serde(default)]
    pub overflow: OverflowPolicy,
    /// First retry delay in milliseconds; doubled per attempt, with jitter.
    #[serde(default = "HttpConfig::default_retry_initial_backoff_ms")]
    pub retry_initial_backoff_ms: u64,
    /// Longest retry delay in milliseconds (`Retry-After` is honoured up to 300 s).
    #[serde(default = "HttpConfig::default_retry_max_backoff_ms")]
    pub retry_max_backoff_ms: u64,
    /// Optional TLS settings (for `https://` URLs).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// File holding a bearer token sent as `Authorization: Bearer ...`.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Name of a header whose value is read from `header_value_file`.
    #[serde(default)]
    pub header_name: Option<String>,
    /// File holding the value of `header_name`.
    #[serde(default)]
    pub header_value_file: Option<PathBuf>,
}

impl HttpConfig {
    fn default_batch_size() -> usize {
        100
    }
    fn default_linger_ms() -> u64 {
        500
    }
    fn default_request_timeout_secs() -> u64 {
        10
    }
    fn default_queue_capacity() -> usize {
        10_000
    }
    fn default_retry_initial_backoff_ms() -> u64 {
        200
    }
    fn default_retry_max_backoff_ms() -> u64 {
        30_000
    }

    /// A config with every default and the given URL.
    pub fn with_url(url: &str) -> Self {
        Self {
            url: url.to_string(),
            batch_size: Self::default_batch_size(),
            linger_ms: Self::default_linger_ms(),
            request_timeout_secs: Self::default_request_timeout_secs(),
            queue_capacity: Self::default_queue_capacity(),
            overflow: OverflowPolicy::default(),
            retry_initial_backoff_ms: Self::default_retry_initial_backoff_ms(),
            retry_max_backoff_ms: Self::default_retry_max_backoff_ms(),
            tls: None,
            bearer_token_file: None,
            header_name: None,
            header_value_file: None,
        }
    }
}

/// `[outputs.NAME.tls]`: PEM files for an `https://` receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// CA bundle that signs the receiver's certificate (PEM).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain for mutual TLS (PEM); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM); needs `cert_file`.
    pub key_file: Option<PathBuf>,
}

/// `[api]`: the local data API and the health listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Unix socket of the HTTP data API (`/v1/containers`, `/v1/watch`, `/v1/plugins`).
    pub socket: PathBuf,
    /// Permission bits of the data and gRPC sockets.
    pub socket_mode: u32,
    /// Optional loopback TCP address that also serves the data API.
    pub listen: Option<SocketAddr>,
    /// Unix socket of the gRPC API (`gannet.v1.Agent`).
    pub grpc_socket: PathBuf,
    /// Address of the health listener (`/healthz`, `/readyz`, `/metrics`).
    pub health_listen: SocketAddr,
    /// Seconds a removed container stays visible under `?state=removed`.
    pub removed_retention_secs: u64,
    /// Events a watcher may lag behind before it is disconnected.
    pub watch_buffer_events: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("/run/gannet/api.sock"),
            socket_mode: 0o600,
            listen: None,
            grpc_socket: PathBuf::from("/run/gannet/grpc.sock"),
            health_listen: SocketAddr::from(([0, 0, 0, 0], 9464)),
            removed_retention_secs: 120,
            watch_buffer_events: 1024,
        }
    }
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A level (`info`) or `tracing` directives (`info,gannet::outputs=debug`).
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?}; use text or json")),
        }
    }
}

/// Values given on the command line; each one, when set, replaces the file's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--socket`: `runtime.socket`.
    pub socket: Option<PathBuf>,
    /// `--host-root`: `runtime.host_root`.
    pub host_root: Option<PathBuf>,
    /// `--sync-mode`: `runtime.sync_mode`.
    pub sync_mode: Option<SyncMode>,
    /// `--plugin-dir`: `plugins.dir`.
    pub plugin_dir: Option<PathBuf>,
    /// `--api-socket`: `api.socket`.
    pub api_socket: Option<PathBuf>,
    /// `--api-listen`: `api.listen`.
    pub api_listen: Option<SocketAddr>,
    /// `--health-listen`: `api.health_listen`.
    pub health_listen: Option<SocketAddr>,
    /// `--log-format`: `logging.format`.
    pub log_format: Option<LogFormat>,
    /// `--log-level`: `logging.level`.
    pub log_level: Option<String>,
}

impl Config {
    /// Parses a TOML document; `origin` names it in errors.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] with the line, the key and what the parser expected.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        crate::toml_doc::parse(text).map_err(|e| ConfigError::from_toml(e, origin))
    }

    /// Reads and parses a file (not yet validated).
    ///
    /// # Errors
    /// [`ConfigError::Read`] when the file cannot be read, else as [`Config::from_toml`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Applies the command-line values over the file's.
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = &o.socket {
            self.runtime.socket = v.clone();
        }
        if let Some(v) = &o.host_root {
            self.runtime.host_root = v.clone();
        }
        if let Some(v) = o.sync_mode {
            self.runtime.sync_mode = v;
        }
        if let Some(v) = &o.plugin_dir {
            self.plugins.dir = Some(v.clone());
        }
        if let Some(v) = &o.api_socket {
            self.api.socket = v.clone();
        }
        if let Some(v) = o.api_listen {
            self.api.listen = Some(v);
        }
        if let Some(v) = o.health_listen {
            self.api.health_listen = v;
        }
        if let Some(v) = o.log_format {
            self.logging.format = v;
        }
        if let Some(v) = &o.log_level {
            self.logging.level = v.clone();
        }
    }

    /// Checks every rule the types cannot express, and what must exist on disk: the plugin
    /// directory, each file output's file (opened for append, created if missing: the
    /// agent writes it next) and each TLS or token file (readable). Opens no socket.
    ///
    /// # Errors
    /// The first problem found, naming the field, the value and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_with(WriteCheck::OpenOrCreate)
    }

    /// The same checks as [`Config::validate`], changing nothing on disk: a file output's
    /// existing file is opened for append without creating it, and a missing one needs
    /// an existing, writable parent directory (`gannet config check`).
    ///
    /// # Errors
    /// As [`Config::validate`].
    pub fn validate_without_side_effects(&self) -> Result<(), ConfigError> {
        self.validate_with(WriteCheck::NoSideEffects)
    }

    fn validate_with(&self, write_check: WriteCheck) -> Result<(), ConfigError> {
        if !self.outputs.contains_key(DEFAULT_OUTPUT) {
            return Err(ConfigError::NoDefaultOutput);
        }
        if self.runtime.resync_period_secs == 0 {
            return Err(invalid(
                "runtime.resync_period_secs",
                "0",
                "must be at least 1",
            ));
        }
        if !(1..=MAX_EVENT_FETCH_RATE_PER_SEC).contains(&self.runtime.event_fetch_rate_per_sec) {
            return Err(invalid(
                "runtime.event_fetch_rate_per_sec",
                &self.runtime.event_fetch_rate_per_sec.to_string(),
                &format!("must be from 1 to {MAX_EVENT_FETCH_RATE_PER_SEC} (containers per second; the default is 200)"),
            ));
        }
        if !(1..=MAX_CONCURRENT_FETCHES).contains(&self.runtime.max_concurrent_fetches) {
            return Err(invalid(
                "runtime.max_concurrent_fetches",
                &self.runtime.max_concurrent_fetches.to_string(),
                &format!("must be from 1 to {MAX_CONCURRENT_FETCHES} (the default is 16)"),
            ));
        }
        if let Some(dir) = &self.plugins.dir {
            if !dir.is_dir() {
                return Err(invalid(
                    "plugins.dir",
                    &dir.display().to_string(),
                    "directory does not exist; create it or fix the path (--plugin-dir)",
                ));
            }
        }
        if self.api.socket_mode > 0o777 {
            return Err(invalid(
                "api.socket_mode",
                &format!("{:o}", self.api.socket_mode),
                "is not a permission mode; use an octal number like 0o600",
            ));
        }
        if let Some(addr) = self.api.listen {
            if !addr.ip().is_loopback() {
                return Err(invalid(
                    "api.listen",
                    &addr.to_string(),
                    "the data API shows env names and container details, so it only listens on loopback; use 127.0.0.1 or ::1",
                ));
            }
        }
        if self.api.watch_buffer_events == 0 {
            return Err(invalid(
                "api.watch_buffer_events",
                "0",
                "must be at least 1",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.logging.level).is_err() {
            return Err(invalid(
                "logging.level",
                &self.logging.level,
                "is not a level or tracing directive; use error, warn, info, debug or trace",
            ));
        }
        for (name, output) in &self.outputs {
            validate_output(name, output, write_check)?;
        }
        Ok(())
    }
}

/// How [`Config::validate_with`] proves a file output's path is writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteCheck {
    /// Open the file for append, creating it if missing (`gannet run`, which writes it).
    OpenOrCreate,
    /// Leave the disk as it is (`gannet config check`).
    NoSideEffects,
}

fn invalid(field: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn validate_output(
    name: &str,
    output: &OutputConfig,
    write_check: WriteCheck,
) -> Result<(), ConfigError> {
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(invalid(
            "outputs",
            name,
            "output names are 1-64 of a-z, A-Z, 0-9, '_' and '-'",
        ));
    }
    let field = |key: &str| format!("outputs.{name}.{key}");
    match output {
        OutputConfig::Stdout(_) => Ok(()),
        OutputConfig::File(file) => {
            if file.max_file_size_bytes == 0 {
                return Err(invalid(
                    &field("max_file_size_bytes"),
                    "0",
                    "must be at least 1",
                ));
            }
            if file.max_files == 0 {
                return Err(invalid(&field("max_files"), "0", "must be at least 1"));
            }
            match write_check {
                WriteCheck::OpenOrCreate => check_writable(&field("path"), &file.path),
                WriteCheck::NoSideEffects => {
                    check_writable_in_place(&file.path).map_err(|problem| ConfigError::File {
                        field: field("path"),
                        path: file.path.clone(),
                        problem: format!("cannot be opened for writing ({problem})"),
                    })
                }
            }
        }
        OutputConfig::Http(http) => {
            let uri: Result<axum::http::Uri, _> = http.url.parse();
            let scheme_ok = matches!(
                uri.as_ref().ok().and_then(|u| u.scheme_str()),
                Some("http" | "https")
            );
            if !scheme_ok || uri.as_ref().ok().and_then(|u| u.host()).is_none() {
                return Err(invalid(
                    &field("url"),
                    &http.url,
                    "is not an http:// or https:// URL with a host",
                ));
            }
            if http.batch_size == 0 {
                return Err(invalid(&field("batch_size"), "0", "must be at least 1"));
            }
            if http.queue_capacity < http.batch_size {
                return Err(invalid(
                    &field("queue_capacity"),
                    &http.queue_capacity.to_string(),
                    "must be at least batch_size",
                ));
            }
            if http.request_timeout_secs == 0 {
                return Err(invalid(
                    &field("request_timeout_secs"),
                    "0",
                    "must be at least 1",
                ));
            }
            if http.retry_initial_backoff_ms == 0
                || http.retry_max_backoff_ms < http.retry_initial_backoff_ms
            {
                return Err(invalid(
                    &field("retry_max_backoff_ms"),
                    &http.retry_max_backoff_ms.to_string(),
                    "must be at least retry_initial_backoff_ms, which must be at least 1",
                ));
            }
            if http.header_name.is_some() != http.header_value_file.is_some() {
                return Err(invalid(
                    &field("header_name"),
                    http.header_name.as_deref().unwrap_or(""),
                    "header_name and header_value_file go together; set both or neither",
                ));
            }
            if let Some(header) = &http.header_name {
                if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    return Err(invalid(
                        &field("header_name"),
                        header,
                        "is not a valid HTTP header name",
                    ));
                }
            }
            for (key, path) in [
                ("bearer_token_file", &http.bearer_token_file),
                ("header_value_file", &http.header_value_file),
            ] {
                if let Some(path) = path {
                    check_readable(&field(key), path)?;
                }
            }
            if let Some(tls) = &http.tls {
                if !http.url.starts_with("https://") {
                    return Err(invalid(
                        &field("tls"),
                        &http.url,
                        "TLS settings need an https:// URL",
                    ));
                }
                if tls.cert_file.is_some() != tls.key_file.is_some() {
                    return Err(invalid(
                        &field("tls.cert_file"),
                        &tls.cert_file
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default(),
                        "cert_file and key_file go together; set both or neither",
                    ));
                }
                for (key, path) in [
                    ("tls.ca_file", &tls.ca_file),
                    ("tls.cert_file", &tls.cert_file),
                    ("tls.key_file", &tls.key_file),
                ] {
                    if let Some(path) = path {
                        check_readable(&field(key), path)?;
                    }
                }
            }
            Ok(())
        }
    }
}

fn check_readable(field: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| ConfigError::File {
            field: field.to_string(),
            path: path.to_path_buf(),
            problem: format!("cannot be read ({e})"),
        })
}

fn check_writable(field: &str, path: &Path) -> Result<(), ConfigError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|e| ConfigError::File {
            field: field.to_string(),
            path: path.to_path_buf(),
            problem: format!("cannot be opened for writing ({e})"),
        })
}

/// Whether `path` could be opened for append, without creating or changing anything: an
/// existing file is opened for append (no create); for a missing one, its parent must be
/// an existing directory the agent may write to and search (`access(2)`). The error is the
/// reason, for [`ConfigError::File`].
fn check_writable_in_place(path: &Path) -> Result<(), String> {
    use rustix::fs::{access, Access};
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err("it is a directory".to_string()),
        // A FIFO opened for writing blocks until a reader comes: ask access(2) instead.
        Ok(meta) if !meta.is_file() => {
            access(path, Access::WRITE_OK).map_err(|e| std::io::Error::from(e).to_string())
        }
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| e.to_string()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            let parent = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            match std::fs::metadata(parent) {
                Ok(meta) if meta.is_dir() => access(parent, Access::WRITE_OK | Access::EXEC_OK)
                    .map_err(|e| {
                        format!(
                            "directory {} is not writable: {}",
                            parent.display(),
                            std::io::Error::from(e)
                        )
                    }),
                Ok(_) => Err(format!("{} is not a directory", parent.display())),
                Err(e) => Err(format!("directory {}: {e}", parent.display())),
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// What SIGHUP may change without a restart: everything except sockets, addresses, the
/// plugin and cache directories, and the discovery settings of `[runtime]`.
///
/// # Errors
/// [`ConfigError::RestartRequired`] naming the first field that differs.
pub fn check_reloadable(old: &Config, new: &Config) -> Result<(), ConfigError> {
    let fixed: [(&str, bool); 12] = [
        ("plugins.dir", old.plugins.dir != new.plugins.dir),
        (
            "plugins.cache_dir",
            old.plugins.cache_dir != new.plugins.cache_dir,
        ),
        ("runtime.socket", old.runtime.socket != new.runtime.socket),
        (
            "runtime.host_root",
            old.runtime.host_root != new.runtime.host_root,
        ),
        (
            "runtime.sync_mode",
            old.runtime.sync_mode != new.runtime.sync_mode,
        ),
        (
            "runtime.resync_period_secs",
            old.runtime.resync_period_secs != new.runtime.resync_period_secs,
        ),
        (
            "runtime.event_fetch_rate_per_sec",
            old.runtime.event_fetch_rate_per_sec != new.runtime.event_fetch_rate_per_sec,
        ),
        (
            "runtime.max_concurrent_fetches",
            old.runtime.max_concurrent_fetches != new.runtime.max_concurrent_fetches,
        ),
        ("api.socket", old.api.socket != new.api.socket),
        ("api.listen", old.api.listen != new.api.listen),
        (
            "api.grpc_socket",
            old.api.grpc_socket != new.api.grpc_socket,
        ),
        (
            "api.health_listen",
            old.api.health_listen != new.api.health_listen,
        ),
    ];
    match fixed.iter().find(|(_, changed)| *changed) {
        Some((field, _)) => Err(ConfigError::RestartRequired {
            field: (*field).to_string(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
