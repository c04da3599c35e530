//! `gannet run` on the real containerd with a Python and a JavaScript plugin in the chain
//! next to a Rust one: records carry every plugin's tags; a Python plugin that raises gets
//! its failure policy and its edits are rolled back; one that loops forever is stopped by
//! the call deadline; one that allocates without bound is stopped by the memory limit;
//! replacing a Python plugin's `.wasm` shows its new behaviour without a restart.
//!
//! The chain: `10-rust` (the example `team-labels`: pod label `team` -> tag `rust_team`),
//! `20-js` (the JavaScript `hello-team`: tag `team`), `30-py` (the test plugin
//! `tests/plugins/python/probe`, whose sidecar picks its behaviour; it acts only on the
//! test's own namespace, so the shared containerd's other pods pass it untouched).
//!
//! Compiling an 18 MB Python component takes 25-30 s in the debug gannet, so the tests
//! with the same chain share one plugin cache directory and run one at a time: the first
//! compiles each component, the others load it from the cache. (A cache is pruned to the
//! chain that loaded it, so the hot-reload test, whose chain changes, has its own.)
//! The Python and JavaScript components come from `plugins/build.sh`; without them the
//! tests skip, except with `CI` set, where they fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::Value;
use tokio::sync::Mutex;

use gannet_test_kit::{
    free_port, http_get, random_hex, wait_until, ComponentLang, ContainerSpec, Containerd,
    CriContainer, PluginWorkspace, PodSpec,
};

use crate::pipeline::{ready, start_agent, Agent};

/// Startup compiles whatever the cache lacks: up to three components in a debug build.
const START_TIMEOUT: Duration = Duration::from_secs(240);
/// A record's way from containerd to the output file.
const RECORD_TIMEOUT: Duration = Duration::from_secs(60);

/// The shared-cache tests run one at a time (see the module doc).
static SHARED_CACHE: Mutex<()> = Mutex::const_new(());

/// The components of the chain, or `None` when a Python or JS one is not built (outside
/// CI).
struct Components {
    rust: PathBuf,
    js: PathBuf,
    probe: PathBuf,
    python_hello: PathBuf,
}

fn components() -> Result<Option<Components>> {
    let rust = PluginWorkspace::Examples.wasm("team-labels")?;
    let Some(js) = PluginWorkspace::Examples.built_component(ComponentLang::Js, "hello-team")?
    else {
        return Ok(None);
    };
    let Some(probe) = PluginWorkspace::Test.built_component(ComponentLang::Python, "probe")? else {
        return Ok(None);
    };
    let Some(python_hello) =
        PluginWorkspace::Examples.built_component(ComponentLang::Python, "hello-team")?
    else {
        return Ok(None);
    };
    Ok(Some(Components {
        rust,
        js,
        probe,
        python_hello,
    }))
}

/// The cache the shared-cache tests use: kept across runs in the test plugins' target
/// dir, keyed by content hash, so a rerun compiles nothing.
fn shared_cache() -> PathBuf {
    PluginWorkspace::Test.target_dir().join("e2e-plugin-cache")
}

/// Writes `wasm` and its sidecar as `dir/name.{wasm,toml}`, sidecar first and each by
/// write-then-rename, as the guide says to deploy.
fn deploy(dir: &Path, name: &str, wasm: &Path, sidecar: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let toml = dir.join(format!(".{name}.toml.tmp"));
    std::fs::write(&toml, sidecar)?;
    std::fs::rename(&toml, dir.join(format!("{name}.toml")))?;
    let tmp = dir.join(format!(".{name}.wasm.tmp"));
    std::fs::copy(wasm, &tmp)?;
    std::fs::rename(&tmp, dir.join(format!("{name}.wasm")))?;
    Ok(())
}

/// The probe's sidecar for namespace `ns`, with `mode` and `extra` top-level keys.
fn probe_sidecar(ns: &str, mode: &str, extra: &str) -> String {
    format!(
        "quarantine_after_failures = 1000\n{extra}\n[config]\nmode = \"{mode}\"\ntag = \"py-{mode}\"\nnamespace = \"{ns}\"\n"
    )
}

/// Deploys the chain `10-rust`, `20-js`, `30-py` (the probe with `probe_sidecar`).
fn deploy_chain(plugins: &Path, c: &Components, probe_sidecar: &str) -> Result<()> {
    deploy(
        plugins,
        "10-rust",
        &c.rust,
        "[config.pod_labels]\nteam = \"rust_team\"\n",
    )?;
    deploy(
        plugins,
        "20-js",
        &c.js,
        "[config]\nskip_namespaces = [\"kube-system\"]\ndefault_team = \"js-unowned\"\n",
    )?;
    deploy(plugins, "30-py", &c.probe, probe_sidecar)
}

/// The agent's config: plugins from `d/plugins` with `cache` (or none), a file output.
fn config(d: &Path, cache: Option<&Path>, health: u16) -> String {
    let cache = cache
        .map(|c| format!("cache_dir = \"{}\"\n", c.display()))
        .unwrap_or_default();
    format!(
        r#"
[plugins]
dir = "{d}/plugins"
{cache}
[outputs.default]
type = "file"
path = "{d}/default.jsonl"
[api]
socket = "{d}/api.sock"
grpc_socket = "{d}/grpc.sock"
health_listen = "127.0.0.1:{health}"
"#,
        d = d.display()
    )
}

/// Starts the agent and waits until it is ready (its plugins loaded).
async fn start(d: &Path, lab: &Containerd, config: &str, health: u16) -> Result<Agent> {
    Ok(start_noting_liveness(d, lab, config, health).await?.0)
}

/// [`start`], also telling whether `/healthz` answered 200 while `/readyz` did not yet:
/// the agent is live while its plugins compile.
async fn start_noting_liveness(
    d: &Path,
    lab: &Containerd,
    config: &str,
    health: u16,
) -> Result<(Agent, bool)> {
    let agent = start_agent(d, lab, config)?;
    let started = std::time::Instant::now();
    let live_before_ready = std::sync::atomic::AtomicBool::new(false);
    wait_until(START_TIMEOUT, "gannet ready with its plugins", || async {
        if ready(health) {
            return Ok(Some(()));
        }
        if http_get(health, "/healthz", None).is_ok_and(|(status, _)| status == 200) {
            live_before_ready.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(None)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- gannet log ---\n{}", agent.log()))?;
    eprintln!("gannet ready after {:?}", started.elapsed());
    Ok((agent, live_before_ready.into_inner()))
}

/// The `added` record of container `id` in the output file.
async fn added_record(d: &Path, id: &str, agent: &Agent) -> Result<Value> {
    let path = d.join("default.jsonl");
    wait_until(RECORD_TIMEOUT, &format!("the added record of {id}"), || {
        let path = path.clone();
        async move {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|e| e["event"] == "added" && e["record"]["id"] == id)
                .map(|e| e["record"].clone()))
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- gannet log ---\n{}", agent.log()))
}

/// A pod in `ns` with the pod label `team=payments` and one running container.
async fn container_in(
    cri: &gannet_test_kit::CriDriver,
    ns: &str,
    name: &str,
) -> Result<CriContainer> {
    let pod = cri
        .create_pod(&PodSpec::new(name).namespace(ns).label("team", "payments"))
        .await?;
    cri.run_container(&pod, &ContainerSpec::sleeper("app"))
        .await
}

/// Runs the chain with the probe in `mode` (extra sidecar keys `extra`) over one new
/// container of a fresh namespace; its added record and the agent, for the caller's checks.
async fn run_probe(mode: &str, extra: &str) -> Result<Option<(Value, String)>> {
    let Some(c) = components()? else {
        return Ok(None);
    };
    let _one_at_a_time = SHARED_CACHE.lock().await;
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let ns = format!("e2e-lang-{mode}-{}", random_hex(3)?);
    deploy_chain(&d.join("plugins"), &c, &probe_sidecar(&ns, mode, extra))?;
    let health = free_port()?;
    let mut agent = start(d, lab, &config(d, Some(&shared_cache()), health), health).await?;
    let web = container_in(&cri, &ns, "web").await?;
    let record = added_record(d, &web.id, &agent).await?;
    let log = agent.log();
    let metrics = http_get(health, "/metrics", None)?.1;
    agent.terminate().await?;
    Ok(Some((record, format!("{log}\n--- metrics ---\n{metrics}"))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_records_carry_the_rust_js_and_python_plugins_tags() -> Result<()> {
    let Some((record, log)) = run_probe("tag", "").await? else {
        return Ok(());
    };
    let tags = &record["tags"];
    ensure!(
        tags["rust_team"] == "payments"
            && tags["team"] == "payments"
            && tags["py_probe"] == "py-tag",
        "tags {tags}\n{log}"
    );
    Ok(())
}

/// True when the log has the Python probe's (`30-py`) failed call, for `reason`.
fn python_call_failed(log: &str, reason: &str) -> bool {
    log.lines().any(|l| {
        l.contains("Plugin call failed; its changes were discarded.")
            && l.contains("30-py")
            && l.contains(reason)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_python_plugin_that_raises_gets_the_failure_policy_and_its_tag_is_rolled_back(
) -> Result<()> {
    let Some((record, log)) = run_probe("raise", "failure_policy = \"pass\"").await? else {
        return Ok(());
    };
    let tags = &record["tags"];
    // Policy pass: the record goes on, with the other plugins' tags and without the one
    // the probe set before it raised.
    ensure!(
        tags["rust_team"] == "payments"
            && tags["team"] == "payments"
            && tags.get("py_probe").is_none(),
        "tags {tags}\n{log}"
    );
    ensure!(
        python_call_failed(&log, "probe raised on purpose"),
        "no failure logged\n{log}"
    );
    ensure!(
        log.contains("gannet_plugin_errors_total{plugin=\"30-py\",kind=\"err\"}"),
        "{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_python_plugin_that_loops_forever_is_stopped_by_the_deadline() -> Result<()> {
    let Some((record, log)) = run_probe("spin", "call_deadline_ms = 100").await? else {
        return Ok(());
    };
    let tags = &record["tags"];
    ensure!(
        tags["team"] == "payments" && tags.get("py_probe").is_none(),
        "tags {tags}\n{log}"
    );
    ensure!(
        python_call_failed(&log, "ran past its deadline"),
        "no timeout logged\n{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_python_plugin_that_allocates_without_bound_is_stopped_by_the_memory_limit(
) -> Result<()> {
    let Some((record, log)) = run_probe("hog", "").await? else {
        return Ok(());
    };
    let tags = &record["tags"];
    ensure!(
        tags["team"] == "payments" && tags.get("py_probe").is_none(),
        "tags {tags}\n{log}"
    );
    ensure!(
        python_call_failed(&log, "hit its memory limit"),
        "no memory failure logged\n{log}"
    );
    ensure!(
        log.contains("gannet_plugin_errors_total{plugin=\"30-py\",kind=\"memory\"}"),
        "{log}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_python_plugin_replaced_on_disk_shows_its_new_behaviour() -> Result<()> {
    let Some(c) = components()? else {
        return Ok(());
    };
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let plugins = d.join("plugins");
    let ns = format!("e2e-lang-reload-{}", random_hex(3)?);
    deploy_chain(&plugins, &c, &probe_sidecar(&ns, "tag", ""))?;
    let health = free_port()?;
    // Its own cache: the swap changes the chain, and a cache keeps only its chain's entries.
    let cache = d.join("cache");
    let (mut agent, live_while_compiling) =
        start_noting_liveness(d, lab, &config(d, Some(&cache), health), health).await?;
    // A cold cache: seconds of compiling, during which the agent is live, not ready.
    ensure!(
        live_while_compiling,
        "/healthz did not answer while the plugins compiled:\n{}",
        agent.log()
    );

    let before = container_in(&cri, &ns, "before").await?;
    let record = added_record(d, &before.id, &agent).await?;
    ensure!(
        record["tags"]["py_probe"] == "py-tag",
        "before: {}",
        record["tags"]
    );

    // Replace 30-py: the Python hello-team, which skips nothing and tags `team` with the
    // pod's label (after the JS one, so its value wins: the same here) - and a record of a
    // pod without the label gets its own default.
    let swapped_before = agent.log().matches("Plugin chain swapped.").count();
    deploy(
        &plugins,
        "30-py",
        &c.python_hello,
        "[config]\nskip_namespaces = []\ndefault_team = \"py-v2\"\n",
    )?;
    wait_until(START_TIMEOUT, "the chain with the new 30-py", || async {
        let log = agent.log();
        Ok(
            (log.matches("Plugin chain swapped.").count() > swapped_before
                && log
                    .lines()
                    .rev()
                    .find(|l| l.contains("Plugin chain swapped."))
                    .is_some_and(|l| l.contains("30-py")))
            .then_some(()),
        )
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n--- gannet log ---\n{}", agent.log()))?;

    let pod = cri
        .create_pod(&PodSpec::new("after").namespace(&ns))
        .await?;
    let after = cri
        .run_container(&pod, &ContainerSpec::sleeper("app"))
        .await?;
    let record = added_record(d, &after.id, &agent).await?;
    let tags = &record["tags"];
    ensure!(
        tags["team"] == "py-v2" && tags.get("py_probe").is_none(),
        "after the swap: {tags}\n{}",
        agent.log()
    );
    agent.terminate().await
}
