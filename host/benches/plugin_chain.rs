//! Per-record cost of the plugin chain, with a realistic record (30 labels, 40 env vars,
//! 10 mounts, 10 annotations): no plugins, a no-op plugin, probes that read one field and
//! four fields (+ two tag writes; the four read with one `select`, and again with one
//! accessor call each), each example plugin, the chain lc-filter -> team-labels
//! -> redact-env, and the same three written natively in Rust (the ratio baseline).
//!
//! The wasm plugins are built from source (`plugins/`, wasm32-wasip2, release, by the test
//! kit's builder) before measuring. Run: `cargo bench -p gannet --bench plugin_chain`.
//! Results: docs/BENCHMARKS.md. `cargo test --benches` (what scripts/test.sh runs) runs
//! each case once, in criterion's test mode, to prove the benchmark still works.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use gannet::pipeline::Outcome;
use gannet::plugins::{
    ChainRunner, EngineOptions, LoadedPlugin, PluginChain, PluginEngine, PluginMetrics, Sidecar,
};
use gannet::record::{ContainerRecord, Lifecycle};
use gannet_test_kit::PluginWorkspace;
use regex::Regex;

mod common;
use common::realistic_record;

/// The sidecars of the benchmarked example plugins (the shapes of `examples/plugins/`,
/// set so the realistic record passes every filter and gets every tag).
const LC_FILTER_SIDECAR: &str = r#"
[config]
K8sNamespaceRegex = "^(shop|payments)$"
[config.IncludeK8sLabel]
app = ""
tier = "^(web|api)$"
[config.ExcludeEnv]
LOG_COLLECTION = "off"
[config.ExcludeContainerLabel]
"io.example/debug" = ""
"#;
const TEAM_LABELS_SIDECAR: &str = r#"
[config]
default_value = "unknown"
[config.pod_labels]
"app.kubernetes.io/team" = "team"
"cost-center" = "cost_center"
[config.pod_annotations]
"owner.example.com/email" = "owner"
"#;
const REDACT_ENV_SIDECAR: &str = "[config]\n";
const ROUTE_SIDECAR: &str = r#"
[config]
fallback = ["default"]
[config.routes]
shop = ["audit", "archive"]
kube-system = ["ops"]
"#;

struct Loader {
    dir: PathBuf,
    tmp: tempfile::TempDir,
}

impl Loader {
    fn load(&self, engine: &PluginEngine, name: &str, sidecar: &str) -> Arc<LoadedPlugin> {
        let path = self.tmp.path().join(format!("{name}.toml"));
        let loaded = std::fs::write(&path, sidecar)
            .map_err(|e| e.to_string())
            .and_then(|()| Sidecar::load(&path).map_err(|e| e.to_string()))
            .and_then(|s| {
                LoadedPlugin::load_with_sidecar(
                    engine,
                    &self.dir.join(format!("{name}.wasm")),
                    s,
                    "bench-node",
                    &PluginMetrics::unregistered(),
                )
                .map_err(|e| e.to_string())
            });
        match loaded {
            Ok(p) => Arc::new(p),
            Err(e) => {
                eprintln!("cannot load plugin {name}: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// One benchmarked thing: its name and one step (one record through it).
struct Case {
    name: String,
    step: Box<dyn FnMut()>,
}

/// Runs `chain` over one record, again and again: each call gets what the last one left.
fn chain_case(name: &str, chain: PluginChain, record: &ContainerRecord) -> Case {
    let mut runner = ChainRunner::new();
    // Warm the instances and check the chain works on this record.
    let first = runner.run(&chain, Lifecycle::Updated, record.clone());
    if let Outcome::Dropped { plugin, .. } = &first {
        eprintln!("benchmark {name}: the record was dropped by {plugin}; fix the bench config");
        std::process::exit(1);
    }
    // The record is recycled: each call gets the record the previous call left, so the
    // measurement holds no clone, no drop and no cold memory, only the chain.
    let mut slot = first.into_record();
    let record = record.clone();
    Case {
        name: name.to_string(),
        step: Box::new(move || {
            let r = slot.take().unwrap_or_else(|| record.clone());
            let outcome = black_box(runner.run(&chain, Lifecycle::Updated, r));
            slot = outcome.into_record();
        }),
    }
}

/// Calls the instances directly in turn, without the chain runner: the bare cost of a call
/// (one plugin: an engine with the epoch deadline and memory limiter against one without),
/// or of calls into different instances, each with its own store (for `wasm/noop_x4`).
fn instances_case(name: &str, plugins: &[Arc<LoadedPlugin>], record: &ContainerRecord) -> Case {
    let mut instances = Vec::new();
    for plugin in plugins {
        match plugin.new_instance() {
            Ok(i) => instances.push(i),
            Err(e) => {
                eprintln!("benchmark {name}: cannot start an instance: {e}");
                std::process::exit(1);
            }
        }
    }
    let mut record = Box::new(record.clone());
    Case {
        name: name.to_string(),
        step: Box::new(move || {
            for instance in &mut instances {
                black_box(instance.process(Lifecycle::Updated, &mut record));
            }
        }),
    }
}

/// Runs a native function over one record, again and again (as `chain_case` does).
fn native_case<F>(name: &str, record: &ContainerRecord, mut f: F) -> Case
where
    F: FnMut(ContainerRecord) -> Option<ContainerRecord> + 'static,
{
    let mut slot = Some(record.clone());
    let record = record.clone();
    Case {
        name: name.to_string(),
        step: Box::new(move || {
            let r = slot.take().unwrap_or_else(|| record.clone());
            slot = black_box(f(r));
        }),
    }
}

/// Rounds of the interleaved mode, and the time each case runs per round.
const ROUNDS: usize = 31;
const SLICE: Duration = Duration::from_millis(100);

/// The interleaved mode: every case runs a short slice in turn, round after round, and
/// each gets the median (and quartiles) of its per-round means. A shared, drifting VM
/// slows all cases of a round alike, so the ratios between cases hold even when the
/// absolute times move between runs.
fn interleaved(mut cases: Vec<Case>) {
    // Iterations per slice, from a short calibration of each case.
    let iterations: Vec<u32> = cases
        .iter_mut()
        .map(|case| {
            let start = Instant::now();
            let mut n = 0u32;
            while start.elapsed() < SLICE {
                (case.step)();
                n += 1;
            }
            n.max(1)
        })
        .collect();
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); cases.len()];
    for round in 0..ROUNDS {
        // Rotate the starting case so no case always runs first (or last) in a round.
        for k in 0..cases.len() {
            let i = (k + round) % cases.len();
            let start = Instant::now();
            for _ in 0..iterations[i] {
                (cases[i].step)();
            }
            let ns = start.elapsed().as_nanos() as f64 / f64::from(iterations[i]);
            samples[i].push(ns);
        }
    }
    println!(
        "{:<44} {:>10} {:>10} {:>10}",
        "case", "median", "p25", "p75"
    );
    for (case, mut ns) in cases.iter().zip(samples) {
        ns.sort_by(f64::total_cmp);
        let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize];
        println!(
            "{:<44} {:>10} {:>10} {:>10}",
            case.name,
            human(at(0.5)),
            human(at(0.25)),
            human(at(0.75))
        );
    }
}

/// `812 ns` or `3.41 µs`.
fn human(ns: f64) -> String {
    if ns < 1000.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{:.2} µs", ns / 1000.0)
    }
}

// ---- Native equivalents (same semantics as the example plugins) ----

/// One include/exclude group of lc-filter, natively.
struct NativeGroup {
    include: Vec<(String, NativeMatch)>,
    exclude: Vec<(String, NativeMatch)>,
}

enum NativeMatch {
    Exists,
    Regex(Regex),
    Equals(String),
}

impl NativeMatch {
    fn new(value: &str) -> Self {
        if value.is_empty() {
            Self::Exists
        } else if value.starts_with('^') {
            match Regex::new(value) {
                Ok(re) => Self::Regex(re),
                Err(_) => Self::Equals(value.to_string()),
            }
        } else {
            Self::Equals(value.to_string())
        }
    }
    fn matches(&self, v: &str) -> bool {
        match self {
            Self::Exists => true,
            Self::Regex(re) => re.is_match(v),
            Self::Equals(want) => want == v,
        }
    }
}

impl NativeGroup {
    fn new(include: &[(&str, &str)], exclude: &[(&str, &str)]) -> Self {
        let build = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), NativeMatch::new(v)))
                .collect()
        };
        Self {
            include: build(include),
            exclude: build(exclude),
        }
    }
    fn accepts(&self, map: &BTreeMap<String, String>) -> bool {
        let hit = |list: &Vec<(String, NativeMatch)>| {
            list.iter()
                .any(|(k, m)| map.get(k).is_some_and(|v| m.matches(v)))
        };
        (self.include.is_empty() || hit(&self.include)) && !hit(&self.exclude)
    }
}

struct NativeLcFilter {
    namespace: Regex,
    pod_labels: NativeGroup,
    env: NativeGroup,
    labels: NativeGroup,
}

impl NativeLcFilter {
    fn new() -> Option<Self> {
        Some(Self {
            namespace: Regex::new("^(shop|payments)$").ok()?,
            pod_labels: NativeGroup::new(&[("app", ""), ("tier", "^(web|api)$")], &[]),
            env: NativeGroup::new(&[], &[("LOG_COLLECTION", "off")]),
            labels: NativeGroup::new(&[], &[("io.example/debug", "")]),
        })
    }
    fn run(&self, r: ContainerRecord) -> Option<ContainerRecord> {
        let keep = !r.k8s.is_sandbox
            && r.k8s.container_name != "POD"
            && self.namespace.is_match(&r.k8s.namespace)
            && self.pod_labels.accepts(&r.k8s.pod_labels)
            && self.labels.accepts(&r.labels)
            && self.env.accepts(&r.env);
        keep.then_some(r)
    }
}

fn native_team_labels(mut r: ContainerRecord) -> Option<ContainerRecord> {
    for (key, tag) in [
        ("app.kubernetes.io/team", "team"),
        ("cost-center", "cost_center"),
    ] {
        let value = r
            .k8s
            .pod_labels
            .get(key)
            .cloned()
            .unwrap_or_else(|| "unknown".into());
        r.tags.insert(tag.into(), value);
    }
    let owner = r
        .k8s
        .pod_annotations
        .get("owner.example.com/email")
        .cloned()
        .unwrap_or_else(|| "unknown".into());
    r.tags.insert("owner".into(), owner);
    Some(r)
}

/// The default secret patterns as a native plugin would write them: `*LIT*` is
/// `contains`, `*LIT` is `ends_with`.
fn is_secret(name: &str) -> bool {
    ["PASSWORD", "SECRET", "TOKEN"]
        .iter()
        .any(|lit| name.contains(lit))
        || name.ends_with("_KEY")
}

fn native_redact_env(mut r: ContainerRecord) -> Option<ContainerRecord> {
    for (name, value) in r.env.iter_mut() {
        if is_secret(name) {
            *value = "******".into();
        }
    }
    Some(r)
}

fn native_four_reads(mut r: ContainerRecord) -> Option<ContainerRecord> {
    let owner = format!("{}/{}", r.k8s.namespace, r.k8s.pod_name);
    let app = r
        .k8s
        .pod_labels
        .get("app")
        .cloned()
        .unwrap_or_else(|| r.image.clone());
    r.tags.insert("owner".into(), owner);
    r.tags.insert("app".into(), app);
    Some(r)
}

/// Every case: the plugin engines, chains and native baselines, ready to step.
fn all_cases() -> Vec<Case> {
    // A no-op when scripts/test.sh (or an earlier run) built them.
    let dir = match PluginWorkspace::Examples.build() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
    };
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot make a temp dir: {e}");
            std::process::exit(1);
        }
    };
    let loader = Loader { dir, tmp };
    let engine = match PluginEngine::new(EngineOptions::default()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let unlimited = match PluginEngine::new(EngineOptions {
        enforce_limits: false,
        ..EngineOptions::default()
    }) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let record = realistic_record();
    let mut cases = Vec::new();
    let one = |engine: &PluginEngine, name: &str, sidecar: &str| {
        PluginChain::new(vec![loader.load(engine, name, sidecar)])
    };

    for probe in ["noop", "one_field"] {
        for (limits, engine) in [("limits_on", &engine), ("limits_off", &unlimited)] {
            let plugin = loader.load(engine, &format!("bench_{probe}"), "");
            cases.push(instances_case(
                &format!("call/{probe}/{limits}"),
                std::slice::from_ref(&plugin),
                &record,
            ));
        }
    }
    cases.push(chain_case("wasm/no_plugins", PluginChain::empty(), &record));
    for (name, engine, plugin, sidecar) in [
        ("wasm/noop", &engine, "bench_noop", ""),
        ("wasm/one_field", &engine, "bench_one_field", ""),
        ("wasm/four_reads_two_tags", &engine, "bench_four_reads", ""),
        (
            "wasm/four_single_reads_two_tags",
            &engine,
            "bench_four_single_reads",
            "",
        ),
        ("wasm_unlimited/noop", &unlimited, "bench_noop", ""),
        (
            "wasm_unlimited/one_field",
            &unlimited,
            "bench_one_field",
            "",
        ),
        (
            "wasm_unlimited/four_reads_two_tags",
            &unlimited,
            "bench_four_reads",
            "",
        ),
        ("wasm/lc_filter", &engine, "lc_filter", LC_FILTER_SIDECAR),
        (
            "wasm/team_labels",
            &engine,
            "team_labels",
            TEAM_LABELS_SIDECAR,
        ),
        ("wasm/redact_env", &engine, "redact_env", REDACT_ENV_SIDECAR),
        (
            "wasm/route_by_namespace",
            &engine,
            "route_by_namespace",
            ROUTE_SIDECAR,
        ),
    ] {
        cases.push(chain_case(name, one(engine, plugin, sidecar), &record));
    }
    // Four no-op plugins: the slope from `wasm/noop` is what the runner adds per plugin
    // (minus `call/noop`, the bare call), apart from its per-record costs.
    let noops: Vec<_> = (0..4)
        .map(|_| loader.load(&engine, "bench_noop", ""))
        .collect();
    cases.push(instances_case("call/noop_x4", &noops, &record));
    cases.push(chain_case("wasm/noop_x4", PluginChain::new(noops), &record));
    let chain = PluginChain::new(vec![
        loader.load(&engine, "lc_filter", LC_FILTER_SIDECAR),
        loader.load(&engine, "team_labels", TEAM_LABELS_SIDECAR),
        loader.load(&engine, "redact_env", REDACT_ENV_SIDECAR),
    ]);
    cases.push(chain_case(
        "wasm/chain_filter_labels_redact",
        chain,
        &record,
    ));

    let Some(filter) = NativeLcFilter::new().map(Arc::new) else {
        eprintln!("native filter regexes do not compile");
        std::process::exit(1);
    };
    cases.push(native_case("native/noop", &record, Some));
    cases.push(native_case("native/one_field", &record, |r| {
        (r.k8s.namespace != "kube-system").then_some(r)
    }));
    cases.push(native_case(
        "native/four_reads_two_tags",
        &record,
        native_four_reads,
    ));
    let f = filter.clone();
    cases.push(native_case("native/lc_filter", &record, move |r| f.run(r)));
    cases.push(native_case(
        "native/team_labels",
        &record,
        native_team_labels,
    ));
    cases.push(native_case("native/redact_env", &record, native_redact_env));
    cases.push(native_case(
        "native/chain_filter_labels_redact",
        &record,
        move |r| {
            filter
                .run(r)
                .and_then(native_team_labels)
                .and_then(native_redact_env)
        },
    ));
    cases
}

/// Criterion by default; `-- --interleaved [FILTER...]` for the interleaved mode (cases
/// whose names contain any FILTER, or all).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases = all_cases();
    if args.iter().any(|a| a == "--interleaved") {
        let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
        let chosen = cases
            .into_iter()
            .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str())))
            .collect();
        interleaved(chosen);
        return;
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    for mut case in cases {
        criterion.bench_function(&case.name, |b| b.iter(|| (case.step)()));
    }
    criterion.final_summary();
}
