//! The agent's configuration file: one TOML document whose sections deserialize straight
//! into the config type of the component that owns them, overridden by flags and
//! validated before anything starts.
//!
//! | section | type | owner |
//! |---|---|---|
//! | `[runtime]` | [`discovery::Config`] | discovery |
//! | `[plugins]` | [`PluginsConfig`] | the plugin runtime |
//! | `[record]` | [`RecordConfig`] | outputs (serialization) |
//! | `[outputs.NAME]` | [`OutputConfig`] | outputs |
//! | `[api]` | [`ApiConfig`] | the local API |
//! | `[logging]` | [`LoggingConfig`] | logging |
//!
//! Each component validates its own section; this module composes the checks (prefixing
//! the section to every field it names), applies the flags, says what SIGHUP may change
//! ([`check_reloadable`]) and finds the node name. It never opens sockets or starts tasks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::ApiConfig;
use crate::discovery::{self, SyncMode};
use crate::logging::{LogFormat, LoggingConfig};
use crate::outputs::{OutputConfig, StdoutConfig, DEFAULT_OUTPUT};
use crate::plugins::PluginsConfig;
use crate::record::RecordConfig;
use crate::validate::WriteCheck;

mod error;
mod node;
mod reload;

pub use error::ConfigError;
pub use node::resolve_node_name;
pub use reload::check_reloadable;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The container runtime and how discovery follows it.
    pub runtime: discovery::Config,
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
            runtime: discovery::Config::default(),
            plugins: PluginsConfig::default(),
            record: RecordConfig::default(),
            outputs,
            api: ApiConfig::default(),
            logging: LoggingConfig::default(),
        }
    }
}

/// Values given on the command line; each one, when set, replaces the file's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--socket`: beats `runtime.socket` and `$CONTAINERD_SOCK_PATH`.
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
            self.runtime.socket_flag = Some(v.clone());
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
        self.runtime.validate().map_err(|e| e.within("runtime"))?;
        self.plugins.validate().map_err(|e| e.within("plugins"))?;
        self.api.validate().map_err(|e| e.within("api"))?;
        self.logging.validate().map_err(|e| e.within("logging"))?;
        for (name, output) in &self.outputs {
            output.validate(name, write_check)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
