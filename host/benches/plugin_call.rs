//! The cost of one plugin call through the host, with and without the epoch deadline and
//! the memory limiter, on a realistic record (30 labels, 40 env vars, 10 mounts, 10
//! annotations). Uses the no-op and tagger test plugins from `tests/plugins/`.
//!
//! `cargo bench -p gannet --bench plugin_call`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use gannet::plugins::{
    ChainRunner, EngineOptions, LoadedPlugin, PluginChain, PluginEngine, PluginMetrics,
};
use gannet::{ContainerRecord, Lifecycle, Mount};

fn build_test_plugins() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins");
    let target = workspace.join("target");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .env_remove("CARGO_TARGET_DIR")
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "building tests/plugins failed"
    );
    target.join("wasm32-wasip2/release")
}

fn realistic_record() -> ContainerRecord {
    let mut r = ContainerRecord {
        id: "4f1c0ffee0000000000000000000000000000000000000000000000000000000".into(),
        name: "web".into(),
        image: "registry.example.com/team/web:1.2.3".into(),
        log_path: "/var/log/pods/prod_web-7d9f_123/web/0.log".into(),
        ..Default::default()
    };
    for i in 0..30 {
        r.labels
            .insert(format!("label.example.com/key-{i}"), format!("value-{i}"));
    }
    for i in 0..40 {
        r.env
            .insert(format!("ENV_VAR_{i}"), format!("some-value-{i}"));
    }
    for i in 0..10 {
        r.annotations.insert(
            format!("annotation.example.com/a-{i}"),
            format!("annotation-value-{i}"),
        );
        r.mounts.push(Mount {
            source: format!("/var/lib/kubelet/pods/123/volumes/v{i}"),
            destination: format!("/mnt/v{i}"),
            kind: "bind".into(),
        });
    }
    r.k8s.namespace = "prod".into();
    r.k8s.pod_name = "web-7d9f".into();
    r
}

fn bench(c: &mut Criterion) {
    let dir = build_test_plugins();
    let metrics = PluginMetrics::unregistered();
    for plugin in ["noop", "tagger"] {
        for enforce_limits in [true, false] {
            let engine = match PluginEngine::new(EngineOptions {
                cache_dir: None,
                enforce_limits,
            }) {
                Ok(engine) => engine,
                Err(error) => panic!("engine: {error}"),
            };
            let loaded = match LoadedPlugin::load(
                &engine,
                &dir.join(format!("{plugin}.wasm")),
                "node",
                &metrics,
            ) {
                Ok(p) => Arc::new(p),
                Err(error) => panic!("load: {error}"),
            };
            let limits = if enforce_limits {
                "deadline+limiter"
            } else {
                "no-limits"
            };
            let mut instance = match loaded.new_instance() {
                Ok(i) => i,
                Err(error) => panic!("instance: {error}"),
            };
            let mut record = realistic_record();
            c.bench_function(&format!("plugin_call/{plugin}/instance/{limits}"), |b| {
                b.iter(|| instance.process(Lifecycle::Updated, &mut record))
            });
            let chain = PluginChain::new(vec![loaded.clone()]);
            let mut runner = ChainRunner::new();
            let mut record = Some(realistic_record());
            c.bench_function(&format!("plugin_call/{plugin}/chain/{limits}"), |b| {
                b.iter(|| {
                    let input = record.take().unwrap_or_default();
                    let outcome = runner.run(&chain, Lifecycle::Updated, input);
                    record = Some(match outcome {
                        gannet::plugins::ChainOutcome::Passed { record, .. }
                        | gannet::plugins::ChainOutcome::Dropped { record, .. } => record,
                    });
                })
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
