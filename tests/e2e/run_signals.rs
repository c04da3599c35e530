//! `gannet run` without a container runtime: it stays up and unready, answers health,
//! refuses a broken or address-changing config on SIGHUP, switches its log format on
//! SIGHUP, and exits 0 on SIGTERM; `gannet config check` changes nothing on disk.
//! Needs the `gannet` binary built (`cargo build --workspace --bins`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gannet_test_kit::{free_port, http_get};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The `gannet` binary the suite runs (see [`gannet_test_kit::Gannet::bin`]).
pub fn gannet_bin() -> Result<PathBuf, Box<dyn std::error::Error>> {
    Ok(gannet_test_kit::Gannet::bin()?)
}

/// GET over plain TCP; returns the status code.
pub fn http_status(port: u16, path: &str) -> Result<u16, Box<dyn std::error::Error>> {
    Ok(http_get(port, path, None)?.0)
}

fn signal(child: &Child, sig: &str) -> TestResult {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()?;
    if !status.success() {
        return Err(format!("kill -{sig} failed").into());
    }
    Ok(())
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn config_text(dir: &Path, health: u16) -> String {
    format!(
        r#"
[runtime]
socket = "{dir}/no-such-containerd.sock"
shutdown_grace_period_secs = 5
[outputs.default]
type = "file"
path = "{dir}/events.jsonl"
[api]
socket = "{dir}/api.sock"
grpc_socket = "{dir}/grpc.sock"
health_listen = "127.0.0.1:{health}"
"#,
        dir = dir.display()
    )
}

#[test]
fn run_without_runtime_stays_unready_reloads_safely_and_exits_zero_on_sigterm() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let config = dir.path().join("gannet.toml");
    std::fs::write(&config, config_text(dir.path(), port))?;
    let stderr_path = dir.path().join("stderr.log");
    let mut child = Command::new(gannet_bin()?)
        .args(["run", "--node-name", "test-node", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()?;
    let result = (|| -> TestResult {
        wait_until("/healthz", || {
            http_status(port, "/healthz").ok() == Some(200)
        })?;
        assert_eq!(http_status(port, "/readyz")?, 503, "no runtime: not ready");
        assert_eq!(http_status(port, "/metrics")?, 200);
        assert!(dir.path().join("api.sock").exists());

        // A broken config is refused and the old one keeps running.
        std::fs::write(&config, "[outputs.default]\ntype = \"kafka\"\n")?;
        signal(&child, "HUP")?;
        let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
        wait_until("the refusal", || log().contains("Reload refused"))?;
        assert!(log().contains("kafka"), "{}", log());
        assert!(child.try_wait()?.is_none(), "still running");
        assert_eq!(http_status(port, "/healthz")?, 200);

        // A changed listen address is refused with "restart required".
        let other = free_port()?;
        std::fs::write(&config, config_text(dir.path(), other))?;
        signal(&child, "HUP")?;
        wait_until("restart required", || log().contains("restart required"))?;
        assert_eq!(http_status(port, "/healthz")?, 200);

        // A valid change is taken.
        std::fs::write(
            &config,
            config_text(dir.path(), port) + "[logging]\nlevel = \"debug\"\n",
        )?;
        signal(&child, "HUP")?;
        wait_until("the reload", || log().contains("Config reloaded"))?;

        signal(&child, "TERM")?;
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                return Err("gannet did not exit after SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "exit status {status:?}; log:\n{}", log());
        assert!(
            !dir.path().join("api.sock").exists(),
            "socket removed on exit"
        );
        Ok(())
    })();
    if result.is_err() {
        let _ = child.kill();
        eprintln!(
            "gannet stderr:\n{}",
            std::fs::read_to_string(&stderr_path).unwrap_or_default()
        );
    }
    result
}

#[test]
fn bad_input_exits_nonzero_with_one_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let cases: Vec<(&str, String, &str)> = vec![
        ("unknown output type", "[outputs.default]\ntype = \"kafka\"\n".into(), "unknown variant `kafka`"),
        ("no default output", "[outputs.x]\ntype = \"stdout\"\n".into(), "no output named \"default\""),
        ("missing plugin dir", "[plugins]\ndir = \"/nonexistent/p\"\n".into(), "plugins.dir"),
        (
            "unwritable file output",
            "[outputs.default]\ntype = \"file\"\npath = \"/nonexistent/d/x\"\n".into(),
            "outputs.default.path",
        ),
        (
            "unreadable TLS file",
            "[outputs.default]\ntype = \"http\"\nurl = \"https://h/\"\n[outputs.default.tls]\nca_file = \"/nonexistent/ca\"\n".into(),
            "outputs.default.tls.ca_file",
        ),
    ];
    for (name, text, expect) in cases {
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text)?;
        let out = Command::new(gannet_bin()?)
            .args(["run", "--node-name", "n", "--config"])
            .arg(&path)
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: must fail");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{name}: one line: {stderr}"
        );
        assert!(stderr.contains(expect), "{name}: {stderr}");
    }
    // An address in use.
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config_text(dir.path(), port))?;
    let out = Command::new(gannet_bin()?)
        .args(["run", "--node-name", "n", "--config"])
        .arg(&path)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("api.health_listen") && stderr.contains("address already in use"),
        "{stderr}"
    );
    Ok(())
}

/// Lines of `text` that mention `needle`.
fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

fn is_json_object(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object())
}

#[test]
fn sighup_switches_the_log_format_live() -> TestResult {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let config = dir.path().join("gannet.toml");
    let with_format = |format: &str| {
        config_text(dir.path(), port) + &format!("[logging]\nformat = \"{format}\"\n")
    };
    std::fs::write(&config, with_format("text"))?;
    let stderr_path = dir.path().join("stderr.log");
    let mut child = Command::new(gannet_bin()?)
        .args(["run", "--node-name", "test-node", "--config"])
        .arg(&config)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()?;
    let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let result = (|| -> TestResult {
        wait_until("start", || log().contains("Gannet running."))?;
        let started = log();
        let running = lines_with(&started, "Gannet running.");
        assert!(
            running.len() == 1 && !is_json_object(running[0]),
            "text at start: {started}"
        );
        assert!(
            !started.contains('\u{1b}'),
            "no colour codes in a log that goes to a file, NO_COLOR unset: {started:?}"
        );

        // text -> json: the reload's own line is already json.
        std::fs::write(&config, with_format("json"))?;
        signal(&child, "HUP")?;
        wait_until("the reload", || log().contains("Config reloaded."))?;
        let text = log();
        let reloaded = lines_with(&text, "Config reloaded.");
        assert_eq!(reloaded.len(), 1, "{text}");
        let line: serde_json::Value = serde_json::from_str(reloaded[0])?;
        assert_eq!(line["fields"]["message"], "Config reloaded.", "{text}");
        assert_eq!(line["level"], "INFO");
        assert!(
            !text.contains("restart"),
            "no restart asked for a format change: {text}"
        );

        // json -> text.
        std::fs::write(&config, with_format("text"))?;
        signal(&child, "HUP")?;
        wait_until("the second reload", || {
            lines_with(&log(), "Config reloaded.").len() == 2
        })?;
        let text = log();
        let reloaded = lines_with(&text, "Config reloaded.");
        assert!(!is_json_object(reloaded[1]), "text again: {text}");

        signal(&child, "TERM")?;
        wait_until("exit", || matches!(child.try_wait(), Ok(Some(_))))?;
        let stopped = log();
        let last = lines_with(&stopped, "Gannet stopped.");
        assert!(
            last.len() == 1 && !is_json_object(last[0]),
            "text to the end: {stopped}"
        );
        Ok(())
    })();
    if result.is_err() {
        let _ = child.kill();
        eprintln!("gannet stderr:\n{}", log());
    }
    result
}

#[test]
fn config_check_creates_nothing_and_refuses_an_unwritable_path_on_one_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir)?;
    let events = out_dir.join("events.jsonl");
    let config = dir.path().join("gannet.toml");
    std::fs::write(
        &config,
        format!(
            "[outputs.default]\ntype = \"file\"\npath = \"{}\"\n[outputs.audit]\ntype = \"file\"\npath = \"{}/audit.jsonl\"\n",
            events.display(),
            out_dir.display()
        ),
    )?;
    let out = Command::new(gannet_bin()?)
        .args(["config", "check"])
        .arg(&config)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": ok"), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(&out_dir)?.collect();
    assert!(left.is_empty(), "config check created {left:?}");

    // An unwritable path still fails, with one line naming the field.
    std::fs::write(
        &config,
        "[outputs.default]\ntype = \"file\"\npath = \"/nonexistent/d/x.jsonl\"\n",
    )?;
    let out = Command::new(gannet_bin()?)
        .args(["config", "check"])
        .arg(&config)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(
            "outputs.default.path = /nonexistent/d/x.jsonl: cannot be opened for writing"
        ),
        "{stderr}"
    );
    assert!(!Path::new("/nonexistent").exists());
    Ok(())
}
