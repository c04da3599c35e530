//! The optional sidecar `NAME.toml` next to `NAME.wasm`: the plugin's config, limits,
//! failure policy and grants.
//!
//! Owns parsing and validation. Hands a [`Sidecar`] to the loader; the config table is
//! handed to `init` as JSON and never logged or put into errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::engine::EPOCH_TICK;

/// Default memory limit per instance: enough for a regex- and serde-using plugin.
const DEFAULT_MEMORY_LIMIT_BYTES: u64 = 64 << 20;
/// Default per-call deadline.
const DEFAULT_CALL_DEADLINE_MS: u64 = 100;
/// Default consecutive failures before quarantine.
const DEFAULT_QUARANTINE_AFTER: u32 = 5;
/// Smallest memory limit accepted: a std Rust guest needs about 1 MiB to start.
const MIN_MEMORY_LIMIT_BYTES: u64 = 1 << 20;

/// What happens to a record when the plugin fails on it (trap, deadline or `err`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// The record goes on as it was before this plugin.
    #[default]
    Pass,
    /// The record is dropped (counted with `intentional="false"`).
    Drop,
}

/// A read-only directory the plugin may open.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// Absolute path on the host.
    pub host: PathBuf,
    /// Absolute path the plugin sees (defaults to `host`).
    #[serde(default)]
    pub guest: Option<String>,
}

/// Capabilities the plugin gets. Everything is denied by default: no env vars, no
/// directories, no network, no stdin; stdout is discarded and stderr goes to the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Names of the agent's env vars the plugin may read (values copied at load).
    #[serde(default)]
    pub env: Vec<String>,
    /// Directories the plugin may read (never write).
    #[serde(default)]
    pub read_only_dirs: Vec<DirGrant>,
}

/// The raw sidecar file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SidecarFile {
    /// The plugin's config, handed to `init` as JSON.
    #[serde(default)]
    config: Option<toml::Table>,
    /// Most bytes the plugin's linear memory may grow to.
    #[serde(default)]
    memory_limit_bytes: Option<u64>,
    /// Per-call deadline in milliseconds (at least two epoch ticks).
    #[serde(default)]
    call_deadline_ms: Option<u64>,
    /// `pass` or `drop`.
    #[serde(default)]
    failure_policy: Option<FailurePolicy>,
    /// Consecutive failures before the plugin is quarantined.
    #[serde(default)]
    quarantine_after_failures: Option<u32>,
    /// Capabilities.
    #[serde(default)]
    grants: Grants,
}

/// A plugin's settings: from its sidecar, or the defaults when it has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidecar {
    /// The sidecar file, if there was one.
    pub path: Option<PathBuf>,
    /// The config as JSON (`{}` without one). Secret: never log it.
    pub config_json: String,
    /// Memory limit per instance.
    pub memory_limit_bytes: u64,
    /// Per-call deadline.
    pub call_deadline: Duration,
    /// Failure policy.
    pub failure_policy: FailurePolicy,
    /// Consecutive failures before quarantine.
    pub quarantine_after_failures: u32,
    /// Capabilities.
    pub grants: Grants,
}

impl FailurePolicy {
    /// The lowercase name used in sidecars.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Drop => "drop",
        }
    }
}

impl Default for Sidecar {
    fn default() -> Self {
        Self {
            path: None,
            config_json: "{}".to_string(),
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            call_deadline: Duration::from_millis(DEFAULT_CALL_DEADLINE_MS),
            failure_policy: FailurePolicy::Pass,
            quarantine_after_failures: DEFAULT_QUARANTINE_AFTER,
            grants: Grants::default(),
        }
    }
}

/// A sidecar that could not be used. Each names the file, the field and the fix.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// The file could not be read.
    #[error("sidecar {path:?}: cannot read it: {error}")]
    Read {
        /// The sidecar.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type.
    #[error(
        "sidecar {path:?}: {message} (line {line}); fix the key or its type (see docs/plugins.md)"
    )]
    Parse {
        /// The sidecar.
        path: PathBuf,
        /// The parser's message (names the field).
        message: String,
        /// 1-based line.
        line: usize,
    },
    /// A value out of range.
    #[error("sidecar {path:?}: field `{field}` {problem}")]
    Invalid {
        /// The sidecar.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// What is wrong and the fix.
        problem: String,
    },
}

impl Sidecar {
    /// The sidecar path for a plugin file: `NAME.wasm` -> `NAME.toml`.
    pub fn path_for(wasm: &Path) -> PathBuf {
        wasm.with_extension("toml")
    }

    /// Reads `path` if it exists; the defaults otherwise.
    ///
    /// # Errors
    /// [`SidecarError`] naming the file and field when it cannot be read, parsed or validated.
    pub fn load_optional(path: &Path) -> Result<Self, SidecarError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(SidecarError::Read {
                path: path.to_path_buf(),
                error,
            }),
        }
    }

    /// Reads `path`, which must exist.
    ///
    /// # Errors
    /// As [`Sidecar::load_optional`], plus a missing file.
    pub fn load(path: &Path) -> Result<Self, SidecarError> {
        let text = std::fs::read_to_string(path).map_err(|error| SidecarError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates sidecar text; `path` is used in errors.
    ///
    /// # Errors
    /// [`SidecarError::Parse`] or [`SidecarError::Invalid`].
    pub fn parse(path: &Path, text: &str) -> Result<Self, SidecarError> {
        let file: SidecarFile = crate::toml_doc::parse(text).map_err(|e| SidecarError::Parse {
            path: path.to_path_buf(),
            message: e.message,
            line: e.line,
        })?;
        let invalid = |field, problem: String| SidecarError::Invalid {
            path: path.to_path_buf(),
            field,
            problem,
        };
        let defaults = Self::default();
        let memory_limit_bytes = file
            .memory_limit_bytes
            .unwrap_or(defaults.memory_limit_bytes);
        if memory_limit_bytes < MIN_MEMORY_LIMIT_BYTES {
            return Err(invalid(
                "memory_limit_bytes",
                format!("is {memory_limit_bytes}; set at least {MIN_MEMORY_LIMIT_BYTES} (1 MiB)"),
            ));
        }
        let call_deadline = file
            .call_deadline_ms
            .map(Duration::from_millis)
            .unwrap_or(defaults.call_deadline);
        let min_deadline = EPOCH_TICK * 2;
        if call_deadline < min_deadline {
            return Err(invalid(
                "call_deadline_ms",
                format!(
                    "is {} ms, shorter than two epoch ticks; set at least {} ms",
                    call_deadline.as_millis(),
                    min_deadline.as_millis()
                ),
            ));
        }
        let quarantine_after_failures = file
            .quarantine_after_failures
            .unwrap_or(defaults.quarantine_after_failures);
        if quarantine_after_failures == 0 {
            return Err(invalid(
                "quarantine_after_failures",
                "is 0; set at least 1".to_string(),
            ));
        }
        for (i, dir) in file.grants.read_only_dirs.iter().enumerate() {
            if !dir.host.is_absolute() {
                return Err(invalid(
                    "grants.read_only_dirs",
                    format!(
                        "entry {i}: host path {:?} is relative; use an absolute path",
                        dir.host
                    ),
                ));
            }
            if let Some(guest) = &dir.guest {
                if !guest.starts_with('/') {
                    return Err(invalid(
                        "grants.read_only_dirs",
                        format!(
                            "entry {i}: guest path {guest:?} is relative; use an absolute path"
                        ),
                    ));
                }
            }
        }
        for name in &file.grants.env {
            if name.is_empty() || name.contains('=') {
                return Err(invalid(
                    "grants.env",
                    format!("{name:?} is not an env var name; list names like \"HOME\""),
                ));
            }
        }
        let config_json = match &file.config {
            Some(table) => serde_json::to_string(table)
                .map_err(|e| invalid("config", format!("cannot be turned into JSON: {e}")))?,
            None => "{}".to_string(),
        };
        Ok(Self {
            path: Some(path.to_path_buf()),
            config_json,
            memory_limit_bytes,
            call_deadline,
            failure_policy: file.failure_policy.unwrap_or_default(),
            quarantine_after_failures,
            grants: file.grants,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
failure_policy = "drop"
memory_limit_bytes = 16777216
call_deadline_ms = 250
quarantine_after_failures = 3

[config]
namespaces = ["prod"]
default_team = "none"

[grants]
env = ["CLUSTER_NAME"]
read_only_dirs = [{ host = "/etc/ssl", guest = "/ssl" }]
"#;

    #[test]
    fn documented_example_parses() -> Result<(), SidecarError> {
        let s = Sidecar::parse(Path::new("20-x.toml"), EXAMPLE)?;
        assert_eq!(s.failure_policy, FailurePolicy::Drop);
        assert_eq!(s.memory_limit_bytes, 16 << 20);
        assert_eq!(s.call_deadline, Duration::from_millis(250));
        assert_eq!(s.quarantine_after_failures, 3);
        assert_eq!(s.grants.env, vec!["CLUSTER_NAME".to_string()]);
        assert_eq!(
            s.config_json,
            r#"{"default_team":"none","namespaces":["prod"]}"#
        );
        Ok(())
    }

    #[test]
    fn no_file_means_defaults() -> Result<(), SidecarError> {
        let s = Sidecar::load_optional(Path::new("/nonexistent/x.toml"))?;
        assert_eq!(s, Sidecar::default());
        assert_eq!(s.config_json, "{}");
        Ok(())
    }

    #[test]
    fn unknown_key_names_file_field_and_line() {
        let err = Sidecar::parse(
            Path::new("/p/10-a.toml"),
            "failure_policy = \"pass\"\nmemroy = 5\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.starts_with("sidecar \"/p/10-a.toml\": unknown field `memroy`"),
            "{err}"
        );
        assert!(err.contains("(line 2)"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let err = Sidecar::parse(Path::new("a.toml"), "call_deadline_ms = \"fast\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("invalid type"), "{err}");
    }

    #[test]
    fn bad_policy_is_refused() {
        let err = Sidecar::parse(Path::new("a.toml"), "failure_policy = \"retry\"\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown variant `retry`"), "{err}");
    }

    #[test]
    fn deadline_shorter_than_two_ticks_is_refused() {
        let err = Sidecar::parse(Path::new("a.toml"), "call_deadline_ms = 5\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("field `call_deadline_ms` is 5 ms, shorter than two epoch ticks"),
            "{err}"
        );
    }

    #[test]
    fn relative_dir_grant_is_refused() {
        let err = Sidecar::parse(
            Path::new("a.toml"),
            "[grants]\nread_only_dirs = [{ host = \"etc\" }]\n",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("grants.read_only_dirs"), "{err}");
    }
}
