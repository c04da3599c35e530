//! Integration tests of the plugin engine against real components built from
//! `tests/plugins/` (good and deliberately bad plugins). Deadlines are >= 200 ms.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gannet::pipeline::Outcome;
use gannet::plugins::{
    ChainRunner, EngineOptions, LoadError, LoadedPlugin, PluginEngine, PluginMetrics, PluginSet,
    PluginStage, PluginState, StageConfig,
};
use gannet::{ContainerRecord, Lifecycle};

use gannet_test_kit::PluginWorkspace;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The component of test plugin `name`, from `tests/plugins` (built once per process).
fn wasm(name: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
    Ok(PluginWorkspace::Test.wasm(name)?)
}

fn engine() -> Result<PluginEngine, Box<dyn std::error::Error>> {
    Ok(PluginEngine::new(EngineOptions::default())?)
}

/// Copies test plugin `name` into `dir` as `file` (e.g. `10-x.wasm`), with a sidecar.
fn install(
    dir: &Path,
    name: &str,
    file: &str,
    sidecar: Option<&str>,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let dest = dir.join(file);
    std::fs::copy(wasm(name)?, &dest)?;
    if let Some(text) = sidecar {
        std::fs::write(dest.with_extension("toml"), text)?;
    }
    Ok(dest)
}

fn load(
    dir: &Path,
    name: &str,
    sidecar: Option<&str>,
) -> Result<Arc<LoadedPlugin>, Box<dyn std::error::Error>> {
    let file = install(dir, name, &format!("{name}.wasm"), sidecar)?;
    Ok(Arc::new(LoadedPlugin::load(
        &engine()?,
        &file,
        "node-1",
        &PluginMetrics::unregistered(),
    )?))
}

fn load_err(
    dir: &Path,
    name: &str,
    sidecar: Option<&str>,
) -> Result<String, Box<dyn std::error::Error>> {
    let file = install(dir, name, &format!("{name}.wasm"), sidecar)?;
    match LoadedPlugin::load(&engine()?, &file, "node-1", &PluginMetrics::unregistered()) {
        Ok(_) => Err(format!("{name} loaded but should have been refused").into()),
        Err(e) => Ok(e.to_string()),
    }
}

fn record() -> ContainerRecord {
    let mut r = ContainerRecord {
        id: "c0ffee".into(),
        ..Default::default()
    };
    r.labels.insert("app".into(), "web".into());
    r.annotations.insert("owner".into(), "team-a".into());
    r.env.insert("DB_SECRET".into(), "hunter2".into());
    r.env.insert("HOME".into(), "/root".into());
    r.k8s.namespace = "prod".into();
    r
}

fn chain(plugins: Vec<Arc<LoadedPlugin>>) -> gannet::plugins::PluginChain {
    gannet::plugins::PluginChain::new(plugins)
}

#[test]
fn tagger_reads_and_edits_through_the_resource() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tagger = load(tmp.path(), "tagger", Some("[config]\nteam = \"a\"\n"))?;
    let chain = chain(vec![tagger]);
    let mut runner = ChainRunner::new();
    let mut input = record();
    input.labels.insert("route".into(), "audit".into());
    input.k8s.pod_ips = vec!["10.1.0.4".into(), "fd00::4".into()];
    input.k8s.owner.deployment = Some("web".into());
    input.resources.cpu_limit_millis = Some(250);
    let outcome = runner.run(&chain, Lifecycle::Updated, input);
    let Outcome::Passed {
        record,
        destinations,
    } = outcome
    else {
        return Err(format!("expected pass, got {outcome:?}").into());
    };
    assert_eq!(destinations, Some(vec!["audit".to_string()]));
    assert_eq!(
        record.tags.get("config").map(String::as_str),
        Some(r#"{"team":"a"}"#)
    );
    assert_eq!(record.tags.get("node").map(String::as_str), Some("node-1"));
    assert_eq!(
        record.tags.get("event").map(String::as_str),
        Some("updated")
    );
    assert_eq!(
        record.tags.get("namespace").map(String::as_str),
        Some("prod")
    );
    assert_eq!(record.env.get("DB_SECRET").map(String::as_str), Some("***"));
    assert_eq!(record.env.get("HOME").map(String::as_str), Some("/root"));
    assert_eq!(
        record.tags.get("annotations").map(String::as_str),
        Some("team-a,-")
    );
    assert_eq!(record.tags.get("envs").map(String::as_str), Some("/root,-"));
    assert_eq!(
        record.tags.get("twice").map(String::as_str),
        Some("second"),
        "a later pair with the same key wins"
    );
    assert_eq!(
        record.tags.get("selected").map(String::as_str),
        Some("prod,***,second,-,c0ffee,false,web"),
        "select reads fields and map keys in order, with this call's own edits"
    );
    assert_eq!(
        record.tags.get("since-0.2").map(String::as_str),
        Some("10.1.0.4 fd00::4|web|250"),
        "the accessors gannet:plugin@0.2.0 added"
    );
    Ok(())
}

#[test]
fn instances_are_reused_across_records() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let tagger = load(tmp.path(), "tagger", None)?;
    let chain = chain(vec![tagger.clone()]);
    let mut runner = ChainRunner::new();
    for _ in 0..200 {
        let outcome = runner.run(&chain, Lifecycle::Added, record());
        assert!(matches!(outcome, Outcome::Passed { .. }));
    }
    // 200 calls, and the handle table never filled up: the borrow is lent, not owned.
    assert_eq!(tagger.context().counters.calls.get(), 200);
    assert_eq!(tagger.context().counters.errors_init.get(), 0);
    Ok(())
}

#[test]
fn trap_is_survived_and_the_instance_replaced() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let trap = load(
        tmp.path(),
        "trap",
        Some("quarantine_after_failures = 100\n"),
    )?;
    let tagger = load(tmp.path(), "tagger", None)?;
    let chain = chain(vec![trap.clone(), tagger]);
    let mut runner = ChainRunner::new();
    for _ in 0..3 {
        let outcome = runner.run(&chain, Lifecycle::Added, record());
        // Policy pass: the record goes on to the next plugin as it was.
        let Outcome::Passed { record, .. } = outcome else {
            return Err(format!("expected pass, got {outcome:?}").into());
        };
        assert_eq!(
            record.tags.get("namespace").map(String::as_str),
            Some("prod")
        );
    }
    assert_eq!(trap.context().counters.errors_trap.get(), 3);
    assert!(trap
        .info()
        .last_error
        .is_some_and(|e| e.starts_with("trapped:")));
    Ok(())
}

#[test]
fn deadline_stops_an_endless_loop_within_twice_its_value() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let spin = load(tmp.path(), "spin", Some("call_deadline_ms = 200\n"))?;
    let chain = chain(vec![spin.clone()]);
    let mut runner = ChainRunner::new();
    // The first call right after load (ticker awake), the second after a pause long
    // enough for the idle epoch ticker to have parked: the call must wake it.
    for pause in [Duration::ZERO, Duration::from_millis(500)] {
        std::thread::sleep(pause);
        let started = Instant::now();
        let outcome = runner.run(&chain, Lifecycle::Added, record());
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(200),
            "stopped early after a {pause:?} pause: {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_millis(400),
            "stopped late after a {pause:?} pause: {elapsed:?}"
        );
        assert_eq!(
            outcome,
            Outcome::Passed {
                record: record(),
                destinations: None
            }
        );
    }
    assert_eq!(spin.context().counters.timeouts.get(), 2);
    Ok(())
}

#[test]
fn memory_limit_holds() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let hog = load(
        tmp.path(),
        "memory-hog",
        Some("memory_limit_bytes = 16777216\ncall_deadline_ms = 5000\n"),
    )?;
    let chain = chain(vec![hog.clone()]);
    let mut runner = ChainRunner::new();
    let outcome = runner.run(&chain, Lifecycle::Added, record());
    assert_eq!(
        outcome,
        Outcome::Passed {
            record: record(),
            destinations: None
        }
    );
    assert_eq!(hog.context().counters.errors_memory.get(), 1);
    assert_eq!(hog.context().counters.timeouts.get(), 0);
    // And again, on a fresh instance.
    let _ = runner.run(&chain, Lifecycle::Added, record());
    assert_eq!(hog.context().counters.errors_memory.get(), 2);
    Ok(())
}

#[test]
fn failure_policy_drop_discards_mutations_of_a_trapping_call() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let bad = load(
        tmp.path(),
        "mutate-then-trap",
        Some("failure_policy = \"drop\"\n"),
    )?;
    let chain = chain(vec![bad.clone()]);
    let mut runner = ChainRunner::new();
    let outcome = runner.run(&chain, Lifecycle::Added, record());
    assert_eq!(
        outcome,
        Outcome::Dropped {
            record: record(),
            plugin: "mutate-then-trap".into(),
            intentional: false
        }
    );
    assert_eq!(bad.context().counters.drops_failure.get(), 1);
    assert_eq!(bad.context().counters.drops_intentional.get(), 0);
    Ok(())
}

#[test]
fn err_verdict_discards_mutations_and_passes_by_default() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let bad = load(tmp.path(), "process-err", None)?;
    let chain = chain(vec![bad.clone()]);
    let mut runner = ChainRunner::new();
    let outcome = runner.run(&chain, Lifecycle::Added, record());
    assert_eq!(
        outcome,
        Outcome::Passed {
            record: record(),
            destinations: None
        }
    );
    assert_eq!(bad.context().counters.errors_err.get(), 1);
    assert_eq!(
        bad.info().last_error.as_deref(),
        Some("process returned err: cannot handle this record")
    );
    Ok(())
}

#[test]
fn consecutive_failures_quarantine_the_plugin() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let trap = load(tmp.path(), "trap", Some("quarantine_after_failures = 3\n"))?;
    let chain = chain(vec![trap.clone()]);
    let mut runner = ChainRunner::new();
    for _ in 0..5 {
        let _ = runner.run(&chain, Lifecycle::Added, record());
    }
    assert!(trap.is_quarantined());
    assert_eq!(trap.info().state, PluginState::Quarantined);
    // Skipped after quarantine: only the three failing calls were made.
    assert_eq!(trap.context().counters.calls.get(), 3);
    assert_eq!(trap.context().counters.quarantines.get(), 1);
    Ok(())
}

#[test]
fn reload_lifts_quarantine() -> TestResult {
    let tmp = tempfile::tempdir()?;
    install(
        tmp.path(),
        "trap",
        "10-trap.wasm",
        Some("quarantine_after_failures = 2\n"),
    )?;
    let (set, _) = PluginSet::load_dir(engine()?, tmp.path(), "n", PluginMetrics::unregistered())?;
    let mut runner = ChainRunner::new();
    for _ in 0..2 {
        let _ = runner.run(&set.current(), Lifecycle::Added, record());
    }
    assert_eq!(set.plugins()[0].state, PluginState::Quarantined);
    let summary = set.reload().map_err(|e| format!("{e:?}"))?;
    assert_eq!(summary.loaded, vec!["10-trap".to_string()]);
    assert_eq!(set.plugins()[0].state, PluginState::Active);
    Ok(())
}

#[test]
fn wrong_world_is_refused_at_load() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let err = load_err(tmp.path(), "wrong-world", None)?;
    assert!(
        err.contains("wrong-world.wasm\": does not match world gannet:plugin/plugin@0.2.0"),
        "{err}"
    );
    assert!(
        err.contains("exports no `gannet:plugin/handler` interface"),
        "{err}"
    );
    assert!(
        err.contains("rebuild it against gannet:plugin@0.2.0"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    Ok(())
}

#[test]
fn a_plugin_built_against_wit_0_1_0_keeps_working_beside_a_0_2_0_one() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let old = load(tmp.path(), "wit-0-1-plugin", None)?;
    assert_eq!(old.info().wit_version, "0.1.0");
    let new = load(tmp.path(), "tagger", None)?;
    assert_eq!(new.info().wit_version, gannet::plugins::WIT_VERSION);
    let chain = chain(vec![old, new]);
    let mut runner = ChainRunner::new();
    let mut input = record();
    input.k8s.namespace = "shop".into();
    input
        .k8s
        .pod_labels
        .insert("team".into(), "storefront".into());
    let Outcome::Passed {
        record,
        destinations,
    } = runner.run(&chain, Lifecycle::Added, input)
    else {
        return Err("the chain of a 0.1.0 and a 0.2.0 plugin did not pass the record".into());
    };
    assert_eq!(record.tags.get("wit").map(String::as_str), Some("0.1.0"));
    assert_eq!(record.tags.get("ns").map(String::as_str), Some("shop"));
    assert_eq!(
        record.tags.get("team").map(String::as_str),
        Some("storefront")
    );
    assert_eq!(destinations, Some(vec!["v01".to_string()]));
    Ok(())
}

#[test]
fn a_plugin_of_an_unserved_wit_version_is_refused_naming_both() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let err = load_err(tmp.path(), "future-version", None)?;
    assert!(
        err.contains("built against gannet:plugin@9.0.0, which this agent does not serve"),
        "{err}"
    );
    assert!(err.contains("it serves 0.1.0, 0.2.0"), "{err}");
    Ok(())
}

#[test]
fn a_memory_limit_below_what_the_plugin_starts_with_names_the_limit() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let err = load_err(tmp.path(), "tagger", Some("memory_limit_bytes = 1048576\n"))?;
    assert!(
        err.contains("it needs more memory to start than memory_limit_bytes = 1048576 allows"),
        "{err}"
    );
    assert!(
        err.contains("raise `memory_limit_bytes` in its sidecar"),
        "{err}"
    );
    Ok(())
}

#[test]
fn init_rejecting_its_config_is_refused_at_load() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let err = load_err(tmp.path(), "init-fails", None)?;
    assert!(err.ends_with(
        "init-fails.wasm\": init rejected the config: missing key `namespaces`; add it under [config]; fix `config` in its sidecar"
    ), "{err}");
    Ok(())
}

#[test]
fn core_module_is_refused_with_one_line_naming_the_file() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let file = tmp.path().join("core.wasm");
    std::fs::write(&file, b"\0asm\x01\0\0\0")?;
    let err = LoadedPlugin::load(&engine()?, &file, "n", &PluginMetrics::unregistered())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        format!(
            "plugin {:?}: a core WebAssembly module, not a component; build it with `cargo build --target wasm32-wasip2 --release`",
            file
        )
    );
    Ok(())
}

#[test]
fn bad_sidecar_is_refused_naming_file_and_field() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let err = load_err(
        tmp.path(),
        "noop",
        Some("call_deadline_ms = 300\nmemory_limit = 5\n"),
    )?;
    assert!(
        err.contains("noop.toml\": unknown field `memory_limit`"),
        "{err}"
    );
    assert!(err.contains("(line 2)"), "{err}");
    Ok(())
}

#[test]
fn directory_loads_in_file_name_order_and_skips_broken_plugins() -> TestResult {
    let tmp = tempfile::tempdir()?;
    install(tmp.path(), "tagger", "20-tagger.wasm", None)?;
    install(tmp.path(), "noop", "10-noop.wasm", None)?;
    install(tmp.path(), "wrong-world", "15-wrong.wasm", None)?;
    std::fs::write(tmp.path().join("README.txt"), "not a plugin")?;
    let (set, errors) =
        PluginSet::load_dir(engine()?, tmp.path(), "n", PluginMetrics::unregistered())?;
    let names: Vec<String> = set.plugins().into_iter().map(|p| p.name).collect();
    assert_eq!(names, vec!["10-noop".to_string(), "20-tagger".to_string()]);
    assert_eq!(errors.len(), 1);
    assert!(
        matches!(&errors[0], LoadError::WrongWorld { path, .. } if path.ends_with("15-wrong.wasm"))
    );
    Ok(())
}

#[test]
fn reload_swaps_removes_and_refuses_a_broken_replacement() -> TestResult {
    let tmp = tempfile::tempdir()?;
    install(tmp.path(), "noop", "10-a.wasm", None)?;
    install(tmp.path(), "tagger", "20-b.wasm", Some("[config]\nv = 1\n"))?;
    let (set, errors) =
        PluginSet::load_dir(engine()?, tmp.path(), "n", PluginMetrics::unregistered())?;
    assert!(errors.is_empty());
    let first = set.current();

    // Swap: a changed sidecar reloads that plugin only.
    std::fs::write(tmp.path().join("20-b.toml"), "[config]\nv = 2\n")?;
    let summary = set.reload().map_err(|e| format!("{e:?}"))?;
    assert_eq!(summary.loaded, vec!["20-b".to_string()]);
    assert_eq!(summary.kept, vec!["10-a".to_string()]);
    let mut runner = ChainRunner::new();
    let outcome = runner.run(&set.current(), Lifecycle::Added, record());
    assert_eq!(
        outcome
            .record()
            .and_then(|r| r.tags.get("config"))
            .map(String::as_str),
        Some(r#"{"v":2}"#)
    );
    // The old chain still works for records that started on it.
    let old = runner.run(&first, Lifecycle::Added, record());
    assert_eq!(
        old.record()
            .and_then(|r| r.tags.get("config"))
            .map(String::as_str),
        Some(r#"{"v":1}"#)
    );

    // Removal.
    std::fs::remove_file(tmp.path().join("10-a.wasm"))?;
    let summary = set.reload().map_err(|e| format!("{e:?}"))?;
    assert_eq!(summary.removed, vec!["10-a".to_string()]);
    assert_eq!(set.plugins().len(), 1);

    // A broken replacement is refused; the previous chain keeps running.
    let before = set.current();
    std::fs::write(tmp.path().join("20-b.wasm"), b"\0asm\x01\0\0\0")?;
    let errors = set.reload().err().unwrap_or_default();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .to_string()
            .contains("20-b.wasm\": a core WebAssembly module"),
        "{}",
        errors[0]
    );
    assert!(Arc::ptr_eq(&before, &set.current()));
    let outcome = runner.run(&set.current(), Lifecycle::Added, record());
    assert_eq!(
        outcome
            .record()
            .and_then(|r| r.tags.get("config"))
            .map(String::as_str),
        Some(r#"{"v":2}"#)
    );
    Ok(())
}

#[test]
fn watcher_reloads_after_a_write_then_rename() -> TestResult {
    let tmp = tempfile::tempdir()?;
    install(tmp.path(), "noop", "10-a.wasm", None)?;
    let (set, _) = PluginSet::load_dir(engine()?, tmp.path(), "n", PluginMetrics::unregistered())?;
    let set = Arc::new(set);
    let _watcher = gannet::plugins::watch(set.clone(), Duration::from_millis(200))?;
    std::fs::copy(wasm("tagger")?, tmp.path().join(".20-b.wasm.tmp"))?;
    std::fs::rename(
        tmp.path().join(".20-b.wasm.tmp"),
        tmp.path().join("20-b.wasm"),
    )?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while set.plugins().len() < 2 {
        if Instant::now() > deadline {
            return Err("watcher did not reload within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(set.plugins()[1].name, "20-b");
    Ok(())
}

#[test]
fn cache_is_used_and_keyed_on_engine_configuration() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let plugins = tmp.path().join("plugins");
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&plugins)?;
    let file = install(&plugins, "noop", "10-noop.wasm", None)?;
    let metrics = PluginMetrics::unregistered();
    let options = |enforce_limits| EngineOptions {
        cache_dir: Some(cache.clone()),
        enforce_limits,
        ..EngineOptions::default()
    };
    let first = LoadedPlugin::load(&PluginEngine::new(options(true))?, &file, "n", &metrics)?;
    assert!(!first.from_cache());
    let second = LoadedPlugin::load(&PluginEngine::new(options(true))?, &file, "n", &metrics)?;
    assert!(second.from_cache());
    // Another engine configuration must not load the artifact built for the first.
    let other = LoadedPlugin::load(&PluginEngine::new(options(false))?, &file, "n", &metrics)?;
    assert!(!other.from_cache());
    assert_eq!(std::fs::read_dir(&cache)?.count(), 2);
    // Loading the directory cleans entries of other engines.
    let (_set, errors) =
        PluginSet::load_dir(PluginEngine::new(options(true))?, &plugins, "n", metrics)?;
    assert!(errors.is_empty());
    assert_eq!(std::fs::read_dir(&cache)?.count(), 1);
    Ok(())
}

#[test]
fn cli_compile_writes_the_artifact_the_agent_loads_without_compiling() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let plugins = tmp.path().join("plugins");
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&plugins)?;
    let file = install(&plugins, "tagger", "10-tagger.wasm", None)?;
    let out = gannet()
        .args(["plugin", "compile"])
        .arg(&file)
        .arg("--cache-dir")
        .arg(&cache)
        .output()?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("compiled "), "{stdout}");
    assert!(stdout.contains(".cwasm ("), "{stdout}");
    let again = gannet()
        .args(["plugin", "compile"])
        .arg(&file)
        .arg("--cache-dir")
        .arg(&cache)
        .output()?;
    let stdout = String::from_utf8(again.stdout)?;
    assert!(stdout.starts_with("already cached "), "{stdout}");
    let options = EngineOptions {
        cache_dir: Some(cache.clone()),
        ..EngineOptions::default()
    };
    let loaded = LoadedPlugin::load(
        &PluginEngine::new(options)?,
        &file,
        "n",
        &PluginMetrics::unregistered(),
    )?;
    assert!(
        loaded.from_cache(),
        "the agent compiled what plugin compile had"
    );
    // A file that is no component is refused naming it; the others are still compiled.
    let bad = plugins.join("20-bad.wasm");
    std::fs::write(&bad, "not wasm")?;
    let noop = install(&plugins, "noop", "30-noop.wasm", None)?;
    let out = gannet()
        .args(["plugin", "compile"])
        .arg(&bad)
        .arg(&noop)
        .arg("--cache-dir")
        .arg(&cache)
        .output()?;
    let stderr = String::from_utf8(out.stderr)?;
    assert!(!out.status.success());
    assert!(
        stderr.contains("20-bad.wasm\": not a WebAssembly file"),
        "{stderr}"
    );
    assert!(String::from_utf8(out.stdout)?.contains("compiled "));
    Ok(())
}

#[test]
fn cache_misses_compile_in_a_child_process_into_the_cache() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let cache = tmp.path().join("cache");
    let file = install(tmp.path(), "tagger", "tagger.wasm", None)?;
    let child = EngineOptions {
        cache_dir: Some(cache.clone()),
        compiler: Some(PathBuf::from(env!("CARGO_BIN_EXE_gannet"))),
        ..EngineOptions::default()
    };
    let metrics = PluginMetrics::unregistered();
    let first = LoadedPlugin::load(&PluginEngine::new(child.clone())?, &file, "n", &metrics)?;
    assert!(!first.from_cache());
    assert_eq!(
        std::fs::read_dir(&cache)?.count(),
        1,
        "the child wrote the artifact"
    );
    // It runs like one compiled here.
    let mut runner = ChainRunner::new();
    let outcome = runner.run(&chain(vec![Arc::new(first)]), Lifecycle::Added, record());
    assert!(matches!(outcome, Outcome::Passed { .. }), "{outcome:?}");
    // A compiler that cannot run: the engine compiles in-process instead.
    let broken = EngineOptions {
        cache_dir: Some(tmp.path().join("cache2")),
        compiler: Some(tmp.path().join("no-such-gannet")),
        ..EngineOptions::default()
    };
    let fallback = LoadedPlugin::load(&PluginEngine::new(broken)?, &file, "n", &metrics)?;
    assert!(!fallback.from_cache());
    Ok(())
}

#[test]
fn a_refused_reload_keeps_the_cache_entries_of_both_chains() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let plugins = tmp.path().join("plugins");
    let cache = tmp.path().join("cache");
    std::fs::create_dir(&plugins)?;
    install(&plugins, "noop", "10-a.wasm", None)?;
    let options = EngineOptions {
        cache_dir: Some(cache.clone()),
        ..EngineOptions::default()
    };
    let (set, errors) = PluginSet::load_dir(
        PluginEngine::new(options)?,
        &plugins,
        "n",
        PluginMetrics::unregistered(),
    )?;
    assert!(errors.is_empty());
    assert_eq!(std::fs::read_dir(&cache)?.count(), 1);
    // A replacement whose init refuses its config: the reload is refused, the noop chain
    // keeps running, and neither compiled artifact is thrown away.
    install(&plugins, "init-fails", "10-a.wasm", None)?;
    assert!(set.reload().is_err());
    assert_eq!(
        std::fs::read_dir(&cache)?.count(),
        2,
        "the running chain's and the refused file's artifacts"
    );
    // Once the file is gone from the directory and the chain, its entry goes.
    std::fs::remove_file(plugins.join("10-a.wasm"))?;
    set.reload().map_err(|e| format!("{e:?}"))?;
    set.reload().map_err(|e| format!("{e:?}"))?;
    assert_eq!(std::fs::read_dir(&cache)?.count(), 0);
    Ok(())
}

#[test]
fn cache_inside_the_plugin_directory_is_refused() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let engine = PluginEngine::new(EngineOptions {
        cache_dir: Some(tmp.path().join("cache")),
        ..EngineOptions::default()
    })?;
    let err = PluginSet::load_dir(engine, tmp.path(), "n", PluginMetrics::unregistered())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("is inside the plugin directory"), "{err}");
    Ok(())
}

#[test]
fn stage_keeps_order_and_in_flight_records_finish_on_their_chain() -> TestResult {
    let tmp = tempfile::tempdir()?;
    install(tmp.path(), "tagger", "20-b.wasm", Some("[config]\nv = 1\n"))?;
    let (set, _) = PluginSet::load_dir(engine()?, tmp.path(), "n", PluginMetrics::unregistered())?;
    let set = Arc::new(set);
    let stage = PluginStage::start(set.clone(), StageConfig { workers: 2 })?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(async {
        let mut pending = Vec::new();
        for i in 0..20 {
            let mut r = record();
            r.restart_count = i;
            pending.push(stage.submit(Lifecycle::Updated, r).await?);
        }
        std::fs::write(tmp.path().join("20-b.toml"), "[config]\nv = 2\n")?;
        set.reload().map_err(|e| format!("{e:?}"))?;
        for i in 20..40 {
            let mut r = record();
            r.restart_count = i;
            pending.push(stage.submit(Lifecycle::Updated, r).await?);
        }
        for (i, p) in pending.into_iter().enumerate() {
            let outcome = p.outcome().await?;
            let expected = if i < 20 { r#"{"v":1}"# } else { r#"{"v":2}"# };
            assert_eq!(outcome.record().map(|r| r.restart_count as usize), Some(i));
            assert_eq!(
                outcome
                    .record()
                    .and_then(|r| r.tags.get("config"))
                    .map(String::as_str),
                Some(expected)
            );
        }
        let direct = stage.process(Lifecycle::Added, record()).await?;
        assert!(matches!(direct, Outcome::Passed { .. }));
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

fn gannet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gannet"))
}

#[test]
fn cli_check_prints_contract_and_refuses_bad_plugins() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let good = install(
        tmp.path(),
        "tagger",
        "tagger.wasm",
        Some("[grants]\nenv = [\"HOME\"]\n"),
    )?;
    let out = gannet().args(["plugin", "check"]).arg(&good).output()?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("wit: gannet:plugin@0.2.0"), "{stdout}");
    assert!(
        stdout.contains("  gannet:plugin/handler@0.2.0.process"),
        "{stdout}"
    );
    assert!(stdout.contains("  wasi:cli/stderr@0.2"), "{stdout}");
    assert!(stdout.contains("  env HOME"), "{stdout}");
    assert!(
        stdout.contains("sdk: gannet-guest 0."),
        "the SDK stamps its version: {stdout}"
    );
    // With --cache-dir, a second check loads what the first compiled.
    let cache = tmp.path().join("cache");
    for want in ["artifact: compiled now", "artifact: loaded from the cache"] {
        let out = gannet()
            .args(["plugin", "check"])
            .arg(&good)
            .arg("--cache-dir")
            .arg(&cache)
            .output()?;
        let stdout = String::from_utf8(out.stdout)?;
        assert!(stdout.contains(want), "{stdout}");
    }
    // A plugin built with wit-bindgen alone carries no stamp, and check says so.
    let old = install(tmp.path(), "wit-0-1-plugin", "old.wasm", None)?;
    let out = gannet().args(["plugin", "check"]).arg(&old).output()?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(stdout.contains("wit: gannet:plugin@0.1.0"), "{stdout}");
    assert!(stdout.contains("sdk: none stamped"), "{stdout}");

    let bad = install(tmp.path(), "wrong-world", "wrong.wasm", None)?;
    let out = gannet().args(["plugin", "check"]).arg(&bad).output()?;
    let stderr = String::from_utf8(out.stderr)?;
    assert!(!out.status.success());
    assert!(stderr.contains("does not match world"), "{stderr}");
    Ok(())
}

/// `gannet plugin run` of the tagger over `input`: the output, its stdout and stderr.
fn plugin_run_tagger(
    input: &Path,
) -> Result<(std::process::Output, String, String), Box<dyn std::error::Error>> {
    let out = gannet()
        .args(["plugin", "run"])
        .arg(wasm("tagger")?)
        .arg("--input")
        .arg(input)
        .output()?;
    let stdout = String::from_utf8(out.stdout.clone())?;
    let stderr = String::from_utf8(out.stderr.clone())?;
    Ok((out, stdout, stderr))
}

#[test]
fn cli_run_streams_verdicts_and_reports_bad_lines() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let input = tmp.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"id":"a","labels":{"route":"audit"}}"#,
            "\n",
            "{oops\n",
            r#"{"event":"removed","time":"2024-01-01T00:00:00Z","node":"n1","record":{"id":"b","labels":{"drop":"x"}}}"#,
            "\n",
            r#"{"id":"c"}"#,
            "\n"
        ),
    )?;
    let (out, stdout, stderr) = plugin_run_tagger(&input)?;
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["verdict"], "route");
    assert_eq!(lines[0]["outputs"][0], "audit");
    assert_eq!(lines[1]["verdict"], "drop");
    assert_eq!(lines[1]["record"]["tags"]["event"], "removed");
    assert_eq!(lines[2]["verdict"], "pass");
    assert!(stderr.contains("line 2:"), "{stderr}");
    assert!(!out.status.success());
    Ok(())
}

/// Regression: an input line that is not UTF-8 stopped the whole run ("stream did not
/// contain valid UTF-8"), with one output line for 300 input lines.
#[test]
fn regression_invalid_utf8_line_is_reported_and_the_run_goes_on() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let input = tmp.path().join("in.jsonl");
    let mut bytes = Vec::new();
    for n in 0..300 {
        if n == 1 {
            bytes.extend_from_slice(b"{\"id\":\"\xff\xfe\"}\n");
        } else {
            bytes.extend_from_slice(format!("{{\"id\":\"c{n}\"}}\r\n").as_bytes());
        }
    }
    std::fs::write(&input, bytes)?;
    let (out, stdout, stderr) = plugin_run_tagger(&input)?;
    assert_eq!(stdout.lines().count(), 299, "{stderr}");
    assert!(
        stderr.contains("line 2: not valid UTF-8 (invalid byte at column 8)"),
        "{stderr}"
    );
    assert!(!out.status.success());
    Ok(())
}

#[test]
fn cli_version_names_wit_and_wasmtime() -> TestResult {
    let out = gannet().arg("version").output()?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        stdout.contains("wit gannet:plugin@0.2.0 (serves 0.1.0, 0.2.0)\n"),
        "{stdout}"
    );
    assert!(stdout.contains("wasmtime 48.0.8\n"), "{stdout}");
    Ok(())
}
