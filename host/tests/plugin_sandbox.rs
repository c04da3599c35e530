//! What a running plugin can see and where its output goes, observed from inside the
//! plugin: `tests/plugins/sandbox-probe` reports its env vars and what it could do with
//! the filesystem as tags, and writes to stderr and stdout. Each test runs the real
//! `gannet plugin run` with a controlled environment and reads its stdout (the records)
//! and stderr (the agent's log).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gannet_test_kit::PluginWorkspace;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The component of test plugin `name`, from `tests/plugins` (built once per process).
fn wasm(name: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
    Ok(PluginWorkspace::Test.wasm(name)?)
}

/// Copies test plugin `name` into `dir` as `name.wasm`, with its sidecar if given.
fn install(
    dir: &Path,
    name: &str,
    sidecar: Option<&str>,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let file = format!("{name}.wasm");
    let dest = dir.join(&file);
    std::fs::copy(wasm(name)?, &dest)?;
    if let Some(text) = sidecar {
        std::fs::write(dest.with_extension("toml"), text)?;
    }
    Ok(dest)
}

/// `gannet plugin run PLUGIN` over one record, with `env` added to a fixed environment
/// (no `RUST_LOG`, no colours, so the log is plain text at the default level). The record's
/// `probe-port` label names a port on 127.0.0.1 where the test listens while the plugin
/// runs; the run fails if the plugin reached it.
fn run_plugin(plugin: &Path, env: &[(&str, &str)]) -> Result<Output, Box<dyn std::error::Error>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let input = plugin.with_file_name("input.jsonl");
    std::fs::write(
        &input,
        format!("{{\"id\":\"c0ffee\",\"labels\":{{\"probe-port\":\"{port}\"}}}}\n"),
    )?;
    let mut command = Command::new(env!("CARGO_BIN_EXE_gannet"));
    command
        .args(["plugin", "run"])
        .arg(plugin)
        .arg("--input")
        .arg(&input)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output()?;
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(output),
        Err(e) => Err(e.into()),
        Ok((_, peer)) => {
            Err(format!("the plugin connected to the test's listener from {peer}").into())
        }
    }
}

/// The tags the chain left on the single output record; every stdout line must be one.
fn tags(
    out: &Output,
) -> Result<serde_json::Map<String, serde_json::Value>, Box<dyn std::error::Error>> {
    let stdout = String::from_utf8(out.stdout.clone())?;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one record and nothing else on stdout: {stdout}"
    );
    let line: serde_json::Value = serde_json::from_str(lines[0])?;
    line["record"]["tags"]
        .as_object()
        .cloned()
        .ok_or_else(|| format!("no tags in {stdout}").into())
}

fn tag<'a>(tags: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> &'a str {
    tags.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or("<missing>")
}

/// The `line` fields of the agent's `Plugin log.` events for `plugin`.
fn plugin_log_lines(stderr: &str, plugin: &str) -> Vec<String> {
    let tag = format!("plugin=\"{plugin}\"");
    stderr
        .lines()
        .filter(|l| l.contains("Plugin log.") && l.contains(&tag))
        .filter_map(|l| l.split_once(" line=").map(|(_, line)| line.to_string()))
        .collect()
}

#[test]
fn granted_env_var_and_read_only_dir_are_visible_and_nothing_else() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let granted = tmp.path().join("granted");
    std::fs::create_dir(&granted)?;
    std::fs::write(granted.join("input.txt"), "hello from the host\n")?;
    // Beside the granted dir: reachable only by escaping it.
    std::fs::write(tmp.path().join("outside.txt"), "not for plugins\n")?;
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir(&plugins)?;
    let plugin = install(
        &plugins,
        "sandbox-probe",
        Some(&format!(
            "[grants]\nenv = [\"PROBE_GRANTED\", \"PROBE_UNSET\"]\nread_only_dirs = [{{ host = {:?}, guest = \"/probe\" }}]\n",
            granted.display().to_string()
        )),
    )?;
    let out = run_plugin(
        &plugin,
        &[("PROBE_GRANTED", "visible"), ("PROBE_HIDDEN", "hidden")],
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let tags = tags(&out)?;

    // Exactly the granted var that is set: not PROBE_HIDDEN, PATH or HOME, and no
    // PROBE_UNSET (granted but absent from the agent's env).
    assert_eq!(tag(&tags, "env"), "PROBE_GRANTED=visible", "{tags:?}");
    // The granted dir reads, at its guest path...
    assert_eq!(tag(&tags, "read"), "ok:hello from the host", "{tags:?}");
    assert_eq!(tag(&tags, "list"), "ok:1", "{tags:?}");
    // ...and refuses every write.
    for key in ["create", "append", "mkdir"] {
        assert!(tag(&tags, key).starts_with("error:"), "{key}: {tags:?}");
    }
    assert_eq!(
        std::fs::read_to_string(granted.join("input.txt"))?,
        "hello from the host\n",
        "unchanged"
    );
    let entries: Vec<_> = std::fs::read_dir(&granted)?.collect::<Result<_, _>>()?;
    assert_eq!(entries.len(), 1, "nothing created: {entries:?}");
    // Nothing outside it: not by `..`, not by an absolute host path.
    assert!(tag(&tags, "escape").starts_with("error:"), "{tags:?}");
    assert!(tag(&tags, "etc").starts_with("error:"), "{tags:?}");
    // No network: a socket on the host's loopback is out of reach.
    assert!(tag(&tags, "connect").starts_with("error:"), "{tags:?}");
    // Env values are the plugin's business, never the log's.
    assert!(!stderr.contains("visible"), "{stderr}");
    Ok(())
}

#[test]
fn without_grants_the_plugin_sees_no_env_and_no_files() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let plugin = install(tmp.path(), "sandbox-probe", None)?;
    let out = run_plugin(&plugin, &[("PROBE_GRANTED", "visible")])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let tags = tags(&out)?;
    assert_eq!(tag(&tags, "env"), "", "no env at all: {tags:?}");
    for key in [
        "read", "list", "create", "append", "mkdir", "escape", "etc", "connect",
    ] {
        assert!(tag(&tags, key).starts_with("error:"), "{key}: {tags:?}");
    }
    Ok(())
}

#[test]
fn guest_stderr_goes_to_the_log_tagged_with_the_plugin_and_stdout_is_discarded() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let plugin = install(tmp.path(), "sandbox-probe", None)?;
    let out = run_plugin(&plugin, &[])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // One log event per line written, in order: `init`, then the call.
    assert_eq!(
        plugin_log_lines(&stderr, "sandbox-probe"),
        vec![
            "\"sandbox-probe init\"".to_string(),
            "\"sandbox-probe saw c0ffee\"".to_string()
        ],
        "{stderr}"
    );
    for line in stderr.lines().filter(|l| l.contains("sandbox-probe saw")) {
        assert!(line.contains(" WARN "), "logged at warn: {line}");
    }
    // What it printed on stdout went nowhere: not the agent's stdout (checked by
    // `tags`), not the log.
    tags(&out)?;
    assert!(!stderr.contains("must be discarded"), "{stderr}");
    Ok(())
}

#[test]
fn a_panic_message_reaches_the_log_tagged_with_the_plugin() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let plugin = install(tmp.path(), "trap", None)?;
    let out = run_plugin(&plugin, &[])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = plugin_log_lines(&stderr, "trap");
    assert!(
        lines.iter().any(|l| l.contains("panicked at")),
        "the panic's location: {stderr}"
    );
    assert!(
        lines.contains(&"\"trap plugin refuses c0ffee\"".to_string()),
        "the panic's message: {stderr}"
    );
    assert!(
        !lines.iter().any(|l| l == "\"\""),
        "no empty log lines: {stderr}"
    );
    // The failure itself is logged by the agent, and the record still passes (policy).
    assert!(stderr.contains("Plugin call failed"), "{stderr}");
    assert_eq!(tags(&out)?.len(), 0);
    Ok(())
}
