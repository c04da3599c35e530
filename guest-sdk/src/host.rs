//! What the host offers every plugin: logging and the node's name.
//!
//! On `wasm32` these call the WIT `host` imports. On the host target (unit tests) they
//! use [`testing`](crate::testing): log lines are kept for [`take_logs`](crate::testing::take_logs)
//! and the node name is whatever [`set_node_name`](crate::testing::set_node_name) set.

use crate::types::Level;

/// Writes a line to the agent's log, tagged with the plugin's name.
///
/// The host rate-limits each plugin: lines past the limit are counted and dropped, never
/// queued, so do not log once per record in normal operation. Never log env values or
/// config contents.
///
/// ```
/// use gannet_guest::{log, Level};
/// log(Level::Warn, format!("label `{}` is missing; using the default", "team"));
/// ```
pub fn log(level: Level, message: impl AsRef<str>) {
    #[cfg(target_arch = "wasm32")]
    crate::wit::gannet::plugin::host::log(level.into(), message.as_ref());
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::push_log(level, message.as_ref());
}

/// The name of the node the agent runs on.
///
/// ```
/// let node = gannet_guest::node_name();
/// assert!(!node.is_empty());
/// ```
pub fn node_name() -> String {
    #[cfg(target_arch = "wasm32")]
    return crate::wit::gannet::plugin::host::node_name();
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::node_name();
}
