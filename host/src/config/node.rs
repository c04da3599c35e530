//! The node name: `--node-name`, then `NODE_NAME` (the downward API), then the host's
//! hostname read through the host root.

use std::path::Path;

use super::ConfigError;

/// Picks the node name from the flag, the `NODE_NAME` value, or the host's hostname files
/// under `host_root` (`etc/hostname`, then `proc/sys/kernel/hostname`).
///
/// # Errors
/// [`ConfigError::NodeName`] when none of them gives a non-empty name.
pub fn resolve_node_name(
    flag: Option<&str>,
    env: Option<&str>,
    host_root: &Path,
) -> Result<String, ConfigError> {
    for candidate in [flag, env].into_iter().flatten() {
        let name = candidate.trim();
        if !name.is_empty() {
            return Ok(name.to_string());
        }
    }
    for file in ["etc/hostname", "proc/sys/kernel/hostname"] {
        if let Ok(text) = std::fs::read_to_string(host_root.join(file)) {
            let name = text.trim();
            if !name.is_empty() {
                return Ok(name.to_string());
            }
        }
    }
    Err(ConfigError::NodeName {
        reason: format!(
            "no hostname under {} (etc/hostname, proc/sys/kernel/hostname)",
            host_root.display()
        ),
    })
}
