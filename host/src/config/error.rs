//! The configuration's error type: every message names the field, the value and the fix.

use std::path::{Path, PathBuf};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {}: cannot be read: {source}; check the path given to --config", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML did not parse or did not fit the schema.
    #[error("config file {}, line {line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// The parser's message, on one line (names the key and what was expected).
        message: String,
    },
    /// No `[outputs.default]`.
    #[error("config: no output named \"default\"; add an [outputs.default] section (for example type = \"stdout\")")]
    NoDefaultOutput,
    /// A field has a value the agent cannot use, or names a file it cannot use.
    #[error(transparent)]
    Field(#[from] crate::validate::FieldError),
    /// SIGHUP brought a change that needs a restart.
    #[error("config field {field} changed: restart required (SIGHUP changes only {reloadable})")]
    RestartRequired {
        /// Dotted field path.
        field: String,
        /// What SIGHUP may change, for the message.
        reloadable: String,
    },
    /// The node name could not be found.
    #[error("node name: {reason}; pass --node-name or set NODE_NAME")]
    NodeName {
        /// What was tried.
        reason: String,
    },
}

impl ConfigError {
    pub(super) fn from_toml(e: crate::toml_doc::TomlError, path: &Path) -> Self {
        let crate::toml_doc::TomlError { line, message } = e;
        Self::Parse {
            path: path.to_path_buf(),
            line,
            message,
        }
    }
}
