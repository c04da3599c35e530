//! Entry points for the fuzz targets (`fuzz/`, run with `cargo +nightly fuzz`): each takes
//! the fuzzer's bytes and feeds them to one parser of outside input the way the agent
//! does. Whatever the bytes, each must return; a panic is a bug. Not part of the API.

use std::collections::HashMap;
use std::path::Path;

/// The runtime's verbose info (`ContainerStatus(verbose).info["info"]`), as
/// `convert` reads it.
pub fn verbose_info(data: &[u8]) {
    let info = HashMap::from([(
        "info".to_string(),
        String::from_utf8_lossy(data).into_owned(),
    )]);
    let _ = crate::convert::parse_verbose_info(&info);
}

/// One envelope of containerd's event stream: the first byte picks the topic, the rest is
/// the event's message.
pub fn native_event(data: &[u8]) {
    use crate::runtime::events::{RuntimeEvent, TOPICS};
    let Some((pick, message)) = data.split_first() else {
        return;
    };
    let topic = TOPICS[usize::from(*pick) % TOPICS.len()];
    if let Ok(Some(event)) = RuntimeEvent::decode(topic, message) {
        let _ = event.signal();
    }
}

/// `gannet.toml`, parsed and checked as `gannet config check` does (which changes nothing
/// on disk).
pub fn config_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = crate::config::Config::from_toml(text, Path::new("fuzz/gannet.toml")) {
        let _ = config.validate_without_side_effects();
    }
}

/// A plugin's sidecar file.
pub fn sidecar(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::plugins::Sidecar::parse(Path::new("fuzz/plugin.toml"), text);
    }
}

/// One input line of `gannet plugin run`.
pub fn plugin_run_line(data: &[u8]) {
    if let Ok(line) = crate::cli::plugin::line_text(data.to_vec()) {
        let _ = crate::cli::plugin::parse_line(&line);
    }
}

/// The query string of the data API's `/v1/containers`.
pub fn api_query(data: &[u8]) {
    let _ = crate::api::parse_filter(&String::from_utf8_lossy(data));
}
