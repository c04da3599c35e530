//! The `[plugins]` section: where the plugin directory and the compile cache are. Owns
//! the section's check; loading is [`super::PluginSet::load_dir`]'s.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::validate::{invalid, FieldError};

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

impl PluginsConfig {
    /// Checks that the plugin directory exists. Fields are named relative to the section.
    ///
    /// # Errors
    /// `FieldError::Invalid` for a missing directory.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(dir) = &self.dir {
            if !dir.is_dir() {
                return Err(invalid(
                    "dir",
                    dir.display(),
                    "directory does not exist; create it or fix the path (--plugin-dir)",
                ));
            }
        }
        Ok(())
    }
}
