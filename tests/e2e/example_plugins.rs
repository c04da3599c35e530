//! The example plugins of `plugins/` (written with the guest SDK) run through the real
//! plugin engine: built from source for wasm32-wasip2, loaded with their example sidecars
//! from `examples/plugins/`, and asserted on verdicts, tags, masks and routes.
//!
//! Needs no containerd. Building the plugins workspace takes a few minutes the first time.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use gannet::pipeline::Outcome;
use gannet::plugins::{
    ChainRunner, EngineOptions, LoadedPlugin, PluginChain, PluginEngine, PluginMetrics, Sidecar,
};
use gannet::record::{ContainerRecord, Lifecycle};
use gannet_test_kit::PluginWorkspace;

/// The repository root.
fn repo_root() -> PathBuf {
    gannet_test_kit::repo_root()
}

/// Loads `name.wasm` (e.g. `lc_filter`) with the sidecar text `sidecar` (or none).
fn load(engine: &PluginEngine, name: &str, sidecar: Option<&str>) -> Result<Arc<LoadedPlugin>> {
    let wasm = PluginWorkspace::Examples.wasm(name)?;
    let sidecar = match sidecar {
        Some(text) => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, text)?;
            Sidecar::load(&path)?
        }
        None => Sidecar::default(),
    };
    let plugin = LoadedPlugin::load_with_sidecar(
        engine,
        &wasm,
        sidecar,
        "node-a",
        &PluginMetrics::unregistered(),
    )?;
    Ok(Arc::new(plugin))
}

/// The example sidecar `examples/plugins/<file>`.
fn example_sidecar(file: &str) -> Result<String> {
    let path = repo_root().join("examples/plugins").join(file);
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

fn engine() -> Result<PluginEngine> {
    Ok(PluginEngine::new(EngineOptions::default())?)
}

fn record(json: serde_json::Value) -> Result<ContainerRecord> {
    Ok(serde_json::from_value(json)?)
}

/// A record in `namespace`, pod `pod`, container `container`, with these pod labels and env.
fn pod(
    namespace: &str,
    container: &str,
    pod_labels: serde_json::Value,
    env: serde_json::Value,
) -> Result<ContainerRecord> {
    record(serde_json::json!({
        "id": format!("{namespace}-{container}"),
        "name": container,
        "env": env,
        "k8s": {
            "namespace": namespace,
            "pod_name": format!("{container}-0"),
            "container_name": container,
            "pod_labels": pod_labels,
        },
    }))
}

/// Short form of an outcome: "pass", "drop" or "route:a,b".
fn verdict(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Dropped { .. } => "drop".to_string(),
        Outcome::Passed {
            destinations: None, ..
        } => "pass".to_string(),
        Outcome::Passed {
            destinations: Some(outputs),
            ..
        } => format!("route:{}", outputs.join(",")),
        Outcome::Lost => "lost".to_string(),
    }
}

#[test]
fn lc_filter_example_config_keeps_only_matching_containers() -> Result<()> {
    let engine = engine()?;
    let chain = PluginChain::new(vec![load(
        &engine,
        "lc_filter",
        Some(&example_sidecar("10-lc-filter.toml")?),
    )?]);
    let mut runner = ChainRunner::new();
    let none = serde_json::json!({});
    let cases = [
        // Namespace matches and the `app` label exists: included.
        (
            pod("shop", "web", serde_json::json!({"app": "x"}), none.clone())?,
            "pass",
        ),
        // The tier regex is the other include.
        (
            pod(
                "payments",
                "api",
                serde_json::json!({"tier": "api"}),
                none.clone(),
            )?,
            "pass",
        ),
        // No include matches.
        (
            pod(
                "shop",
                "web",
                serde_json::json!({"tier": "batch"}),
                none.clone(),
            )?,
            "drop",
        ),
        // Namespace regex is anchored in the example.
        (
            pod(
                "shop-dev",
                "web",
                serde_json::json!({"app": "x"}),
                none.clone(),
            )?,
            "drop",
        ),
        // The exclude on env wins over the include.
        (
            pod(
                "shop",
                "web",
                serde_json::json!({"app": "x"}),
                serde_json::json!({"LOG_COLLECTION": "off"}),
            )?,
            "drop",
        ),
        (
            pod(
                "shop",
                "web",
                serde_json::json!({"app": "x"}),
                serde_json::json!({"LOG_COLLECTION": "on"}),
            )?,
            "pass",
        ),
        // Pause containers never match.
        (
            pod("shop", "POD", serde_json::json!({"app": "x"}), none.clone())?,
            "drop",
        ),
    ];
    for (i, (rec, want)) in cases.into_iter().enumerate() {
        let out = runner.run(&chain, Lifecycle::Added, rec);
        assert_eq!(verdict(&out), want, "case {i}");
    }
    // An excluded container label drops the record too.
    let mut rec = pod("shop", "web", serde_json::json!({"app": "x"}), none)?;
    rec.labels.insert("io.example/debug".into(), "1".into());
    assert_eq!(
        verdict(&runner.run(&chain, Lifecycle::Updated, rec)),
        "drop"
    );
    Ok(())
}

#[test]
fn team_labels_example_copies_labels_and_defaults_missing_ones() -> Result<()> {
    let engine = engine()?;
    let chain = PluginChain::new(vec![load(
        &engine,
        "team_labels",
        Some(&example_sidecar("20-team-labels.toml")?),
    )?]);
    let mut rec = pod(
        "shop",
        "web",
        serde_json::json!({"app.kubernetes.io/team": "storefront"}),
        serde_json::json!({}),
    )?;
    rec.k8s
        .pod_annotations
        .insert("owner.example.com/email".into(), "sf@example.com".into());
    let out = ChainRunner::new().run(&chain, Lifecycle::Added, rec);
    assert_eq!(verdict(&out), "pass");
    let tags: Vec<(&str, &str)> = out
        .record()
        .context("the record was lost")?
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        tags,
        [
            ("cost_center", "unknown"),
            ("owner", "sf@example.com"),
            ("team", "storefront")
        ]
    );
    Ok(())
}

#[test]
fn redact_env_masks_by_default_and_removes_when_configured() -> Result<()> {
    let engine = engine()?;
    let env = serde_json::json!({
        "DB_PASSWORD": "hunter2", "GITHUB_TOKEN": "t", "API_KEY": "k",
        "AWS_CREDENTIALS": "c", "HOME": "/root",
    });
    let rec = pod("shop", "web", serde_json::json!({}), env)?;

    // No sidecar: the default patterns and mask.
    let chain = PluginChain::new(vec![load(&engine, "redact_env", None)?]);
    let out = ChainRunner::new().run(&chain, Lifecycle::Added, rec.clone());
    let env = &out.record().context("the record was lost")?.env;
    assert_eq!(env.get("DB_PASSWORD").map(String::as_str), Some("******"));
    assert_eq!(env.get("GITHUB_TOKEN").map(String::as_str), Some("******"));
    assert_eq!(env.get("API_KEY").map(String::as_str), Some("******"));
    assert_eq!(env.get("AWS_CREDENTIALS").map(String::as_str), Some("c"));
    assert_eq!(env.get("HOME").map(String::as_str), Some("/root"));

    // The example sidecar adds *CREDENTIALS* and uses its own mask.
    let chain = PluginChain::new(vec![load(
        &engine,
        "redact_env",
        Some(&example_sidecar("30-redact-env.toml")?),
    )?]);
    let out = ChainRunner::new().run(&chain, Lifecycle::Added, rec.clone());
    assert_eq!(
        out.record()
            .context("the record was lost")?
            .env
            .get("AWS_CREDENTIALS")
            .map(String::as_str),
        Some("<redacted>")
    );

    // action = "remove".
    let chain = PluginChain::new(vec![load(
        &engine,
        "redact_env",
        Some("[config]\npatterns = [\"*TOKEN*\", \"*PASSWORD*\"]\naction = \"remove\"\n"),
    )?]);
    let out = ChainRunner::new().run(&chain, Lifecycle::Added, rec);
    let names: Vec<&str> = out
        .record()
        .context("the record was lost")?
        .env
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["API_KEY", "AWS_CREDENTIALS", "HOME"]);
    Ok(())
}

#[test]
fn route_by_namespace_example_routes_and_falls_back() -> Result<()> {
    let engine = engine()?;
    let chain = PluginChain::new(vec![load(
        &engine,
        "route_by_namespace",
        Some(&example_sidecar("40-route-by-namespace.toml")?),
    )?]);
    let mut runner = ChainRunner::new();
    for (namespace, want) in [
        ("payments", "route:audit,archive"),
        ("kube-system", "route:ops"),
        ("shop", "route:default"),
    ] {
        let rec = pod(namespace, "c", serde_json::json!({}), serde_json::json!({}))?;
        assert_eq!(
            verdict(&runner.run(&chain, Lifecycle::Removed, rec)),
            want,
            "{namespace}"
        );
    }
    // Without a fallback, an unmapped namespace passes with no destinations.
    let chain = PluginChain::new(vec![load(
        &engine,
        "route_by_namespace",
        Some("[config.routes]\npayments = [\"audit\"]\n"),
    )?]);
    let rec = pod("shop", "c", serde_json::json!({}), serde_json::json!({}))?;
    assert_eq!(verdict(&runner.run(&chain, Lifecycle::Added, rec)), "pass");
    Ok(())
}

#[test]
fn example_chain_filters_tags_redacts_and_routes_in_file_order() -> Result<()> {
    let engine = engine()?;
    let mut plugins = Vec::new();
    for (name, sidecar) in [
        ("lc_filter", "10-lc-filter.toml"),
        ("team_labels", "20-team-labels.toml"),
        ("redact_env", "30-redact-env.toml"),
        ("route_by_namespace", "40-route-by-namespace.toml"),
    ] {
        plugins.push(load(&engine, name, Some(&example_sidecar(sidecar)?))?);
    }
    let chain = PluginChain::new(plugins);
    let mut runner = ChainRunner::new();

    let rec = pod(
        "payments",
        "api",
        serde_json::json!({"tier": "api", "app.kubernetes.io/team": "billing"}),
        serde_json::json!({"DB_PASSWORD": "hunter2", "HOME": "/root"}),
    )?;
    let out = runner.run(&chain, Lifecycle::Added, rec);
    assert_eq!(verdict(&out), "route:audit,archive");
    let r = out.record().context("the record was lost")?;
    assert_eq!(r.tags.get("team").map(String::as_str), Some("billing"));
    assert_eq!(
        r.env.get("DB_PASSWORD").map(String::as_str),
        Some("<redacted>")
    );
    assert_eq!(r.env.get("HOME").map(String::as_str), Some("/root"));

    // Dropped by the filter: later plugins never see it (no tags, no masks).
    let rec = pod(
        "kube-system",
        "dns",
        serde_json::json!({"app": "dns"}),
        serde_json::json!({"DB_PASSWORD": "x"}),
    )?;
    let out = runner.run(&chain, Lifecycle::Added, rec);
    match &out {
        Outcome::Dropped {
            plugin,
            intentional,
            record,
        } => {
            assert!(plugin.contains("lc_filter"), "{plugin}");
            assert!(*intentional);
            assert!(record.tags.is_empty());
            assert_eq!(record.env.get("DB_PASSWORD").map(String::as_str), Some("x"));
        }
        other => bail!("expected a drop, got {other:?}"),
    }
    Ok(())
}

#[test]
fn sdk_glue_refuses_bad_config_at_load_naming_the_field() -> Result<()> {
    let engine = engine()?;
    // A misspelt key: serde's message names it and the expected ones.
    let err = load(
        &engine,
        "redact_env",
        Some("[config]\npaterns = [\"*X*\"]\n"),
    )
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(
        err.contains("invalid plugin config: unknown field `paterns`"),
        "{err}"
    );
    assert!(err.contains("fix `config` in its sidecar"), "{err}");
    // A plugin without a config parameter refuses any config.
    let err = load(&engine, "bench_noop", Some("[config]\nx = 1\n"))
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(
        err.contains("this plugin takes no config, but got key(s) x"),
        "{err}"
    );
    // A regex that does not compile names its key.
    let err = load(
        &engine,
        "lc_filter",
        Some("[config]\nK8sPodRegex = \"web(\"\n"),
    )
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(err.contains("config `K8sPodRegex`: invalid regex"), "{err}");
    Ok(())
}

#[test]
fn guide_plugin_hello_team_does_what_the_guide_says() -> Result<()> {
    let engine = engine()?;
    let dir = repo_root().join("plugins/rust/hello-team");
    let sidecar = std::fs::read_to_string(dir.join("hello-team.toml"))?;
    let chain = PluginChain::new(vec![load(&engine, "hello_team", Some(&sidecar))?]);
    let mut runner = ChainRunner::new();
    let mut results = Vec::new();
    for line in std::fs::read_to_string(dir.join("sample.jsonl"))?.lines() {
        let value: serde_json::Value = serde_json::from_str(line)?;
        // A line is a record or an output envelope {"event","time","node","record"}.
        let (event, rec) = match value.get("record") {
            Some(rec) => {
                let event = match value.get("event").and_then(|e| e.as_str()) {
                    Some("updated") => Lifecycle::Updated,
                    Some("removed") => Lifecycle::Removed,
                    _ => Lifecycle::Added,
                };
                (event, rec.clone())
            }
            None => (Lifecycle::Added, value),
        };
        let out = runner.run(&chain, event, record(rec)?);
        results.push((
            verdict(&out),
            out.record().and_then(|r| r.tags.get("team")).cloned(),
        ));
    }
    assert_eq!(
        results,
        [
            ("pass".to_string(), Some("storefront".to_string())),
            ("pass".to_string(), Some("unowned".to_string())),
            ("drop".to_string(), None),
        ]
    );
    Ok(())
}
