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

/// The environment variable naming the boundary fuzzer's plugin
/// (`tests/plugins/boundary-driver`, built for wasm32-wasip2; `scripts/fuzz.sh` sets it).
pub const BOUNDARY_WASM_ENV: &str = "GANNET_FUZZ_BOUNDARY_WASM";

/// The boundary fuzzer's chain: the driver plugin, failure policy `pass`, never
/// quarantined, with an 8 MiB memory limit.
fn boundary_chain(
) -> &'static std::sync::Mutex<(crate::plugins::PluginChain, crate::plugins::ChainRunner)> {
    use crate::plugins::{
        ChainRunner, EngineOptions, LoadedPlugin, PluginChain, PluginEngine, PluginMetrics, Sidecar,
    };
    static CHAIN: std::sync::OnceLock<std::sync::Mutex<(PluginChain, ChainRunner)>> =
        std::sync::OnceLock::new();
    CHAIN.get_or_init(|| {
        let fail = |what: String| -> ! {
            eprintln!("plugin_boundary: {what}");
            std::process::exit(2)
        };
        let Some(wasm) = std::env::var_os(BOUNDARY_WASM_ENV) else {
            fail(format!("set {BOUNDARY_WASM_ENV} to the boundary-driver plugin (scripts/fuzz.sh does)"))
        };
        let engine = PluginEngine::new(EngineOptions::default())
            .unwrap_or_else(|e| fail(format!("engine: {e}")));
        let sidecar = Sidecar::parse(
            Path::new("boundary-driver.toml"),
            "failure_policy = \"pass\"\nquarantine_after_failures = 4294967295\nmemory_limit_bytes = 8388608\n",
        )
        .unwrap_or_else(|e| fail(format!("sidecar: {e}")));
        let plugin = LoadedPlugin::load_with_sidecar(
            &engine,
            Path::new(&wasm),
            sidecar,
            "fuzz-node",
            &PluginMetrics::unregistered(),
        )
        .unwrap_or_else(|e| fail(format!("loading {}: {e}", Path::new(&wasm).display())));
        // The engine's epoch ticker runs while the engine lives: keep it for the process.
        std::mem::forget(engine);
        std::sync::Mutex::new((PluginChain::new(vec![std::sync::Arc::new(plugin)]), ChainRunner::new()))
    })
}

/// One program for the boundary-driver plugin: random host calls with random arguments,
/// ending in a verdict, `err`, a trap or an allocation beyond the memory limit. The host
/// must not panic, and unless the plugin ended with a verdict (it then tags
/// `boundary.ended = ok`), the record must come back exactly as it went in.
pub fn plugin_boundary(data: &[u8]) {
    let (before, after) = run_boundary(data);
    let ended_ok = after.tags.get("boundary.ended").is_some_and(|v| v == "ok");
    if !ended_ok {
        assert!(
            after == before,
            "the plugin failed, yet its edits stayed: tags {:?} labels {:?} env {:?}",
            after.tags,
            after.labels,
            after.env.keys().collect::<Vec<_>>()
        );
    }
}

/// The record before and after the boundary-driver ran `data`.
fn run_boundary(
    data: &[u8],
) -> (
    crate::record::ContainerRecord,
    crate::record::ContainerRecord,
) {
    use crate::pipeline::Outcome;
    use crate::record::{ContainerRecord, Lifecycle};
    let mut record = ContainerRecord {
        id: "c0ffee".into(),
        name: "app".into(),
        ..Default::default()
    };
    for (k, v) in [("app", "web"), ("tier", "front")] {
        record.labels.insert(k.into(), v.into());
        record.k8s.pod_labels.insert(k.into(), v.into());
    }
    for (k, v) in [
        ("PASSWORD", "hunter2"),
        ("PATH", "/bin"),
        ("API_TOKEN", "t"),
    ] {
        record.env.insert(k.into(), v.into());
    }
    record.tags.insert("team".into(), "a".into());
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    record.annotations.insert("gannet.fuzz/program".into(), hex);
    let before = record.clone();
    let mut guard = match boundary_chain().lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let (chain, runner) = &mut *guard;
    let after = match runner.run(chain, Lifecycle::Updated, record) {
        Outcome::Passed { record, .. } | Outcome::Dropped { record, .. } => record,
        Outcome::Lost => panic!("the chain lost the record"),
    };
    (before, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `set-tag("k", "v")`, then `end`.
    fn tag_then(end: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 1, 0, b'k', 1, 0, b'v'];
        p.extend_from_slice(end);
        p
    }

    #[test]
    fn boundary_driver_keeps_edits_only_when_it_ends_with_a_verdict(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let wasm = gannet_test_kit::PluginWorkspace::Test.wasm("boundary_driver")?;
        std::env::set_var(BOUNDARY_WASM_ENV, &wasm);
        let (_, passed) = run_boundary(&tag_then(&[15, 1]));
        assert_eq!(passed.tags.get("k").map(String::as_str), Some("v"));
        assert_eq!(
            passed.tags.get("boundary.ended").map(String::as_str),
            Some("ok")
        );
        for (what, end) in [
            ("err", &[12, 1, 0, b'x'][..]),
            ("trap", &[13][..]),
            ("allocation beyond the 8 MiB limit", &[14, 64][..]),
            (
                "an answer of 65,025 huge keys",
                &[7, 255, 255, 255, b'a'][..],
            ),
        ] {
            let (before, after) = run_boundary(&tag_then(end));
            assert_eq!(
                after, before,
                "{what}: the record must come back as it went in"
            );
            plugin_boundary(&tag_then(end));
        }
        Ok(())
    }
}
