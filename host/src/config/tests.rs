//! Config tests: parsing, validation messages, flag precedence, the docs and the example.

use std::path::{Path, PathBuf};

use super::reload::RELOADABLE;
use super::*;
use crate::outputs::{FileConfig, HttpConfig, TlsConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("test.toml"))
}

fn err_text(text: &str) -> String {
    match parse(text).and_then(|c| c.validate().map(|()| c)) {
        Ok(_) => String::from("<no error>"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_file_gives_defaults_with_a_stdout_default_output() -> TestResult {
    let config = parse("")?;
    assert_eq!(config, Config::default());
    assert_eq!(
        config.outputs.get("default"),
        Some(&OutputConfig::Stdout(StdoutConfig {}))
    );
    config.validate()?;
    Ok(())
}

#[test]
fn unknown_key_is_an_error_naming_it_and_its_line() {
    let e = err_text("[runtime]\nsockt = \"/x\"\n");
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("unknown field `sockt`"), "{e}");
    assert!(e.contains("`socket`"), "{e}");
}

#[test]
fn unknown_key_inside_an_output_is_an_error() {
    let e = err_text("[outputs.default]\ntype = \"file\"\npath = \"/tmp/x\"\nmax_size = 3\n");
    assert!(e.contains("unknown field `max_size`"), "{e}");
}

#[test]
fn unknown_output_type_names_the_choices() {
    let e = err_text("[outputs.default]\ntype = \"kafka\"\n");
    assert!(e.contains("kafka"), "{e}");
    assert!(e.contains("`stdout`, `file`, `http`"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
}

#[test]
fn config_without_default_output_is_refused() {
    let e = err_text("[outputs.audit]\ntype = \"stdout\"\n");
    assert_eq!(
        e,
        "config: no output named \"default\"; add an [outputs.default] section (for example type = \"stdout\")"
    );
}

#[test]
fn missing_plugin_dir_is_refused_naming_it() {
    let e = err_text("[plugins]\ndir = \"/nonexistent/gannet-plugins\"\n");
    assert_eq!(
        e,
        "config field plugins.dir = \"/nonexistent/gannet-plugins\": directory does not exist; create it or fix the path (--plugin-dir)"
    );
}

#[test]
fn unwritable_file_output_is_refused() {
    let e = err_text("[outputs.default]\ntype = \"file\"\npath = \"/nonexistent/dir/x.jsonl\"\n");
    assert!(
        e.starts_with("config field outputs.default.path = /nonexistent/dir/x.jsonl: cannot be opened for writing"),
        "{e}"
    );
}

fn file_output_config(path: &Path) -> Result<Config, ConfigError> {
    parse(&format!(
        "[outputs.default]\ntype = \"file\"\npath = {:?}\n",
        path.display().to_string()
    ))
}

#[test]
fn check_without_side_effects_creates_no_file_output() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    let config = file_output_config(&path)?;
    config.validate_without_side_effects()?;
    assert!(!path.exists(), "config check must not create {path:?}");
    assert_eq!(std::fs::read_dir(dir.path())?.count(), 0, "nothing created");
    // `gannet run`'s check still opens (and so creates) it.
    config.validate()?;
    assert!(path.is_file());
    Ok(())
}

#[test]
fn check_without_side_effects_leaves_an_existing_file_as_it_was() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, "{\"old\":1}\n")?;
    let before = std::fs::metadata(&path)?.modified()?;
    file_output_config(&path)?.validate_without_side_effects()?;
    assert_eq!(std::fs::read_to_string(&path)?, "{\"old\":1}\n");
    assert_eq!(std::fs::metadata(&path)?.modified()?, before);
    Ok(())
}

#[test]
fn check_without_side_effects_refuses_unusable_paths_on_one_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let not_a_dir = dir.path().join("plain-file");
    std::fs::write(&not_a_dir, "")?;
    let cases = [
        (
            PathBuf::from("/nonexistent/dir/x.jsonl"),
            "directory /nonexistent/dir: No such file or directory",
        ),
        (not_a_dir.join("x.jsonl"), "is not a directory"),
        (dir.path().to_path_buf(), "it is a directory"),
    ];
    for (path, reason) in cases {
        let e = match file_output_config(&path)?.validate_without_side_effects() {
            Ok(()) => return Err(format!("{path:?} accepted").into()),
            Err(e) => e.to_string(),
        };
        let prefix = format!(
            "config field outputs.default.path = {}: cannot be opened for writing (",
            path.display()
        );
        assert!(e.starts_with(&prefix), "{e}");
        assert!(e.contains(reason), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    assert!(!Path::new("/nonexistent").exists());
    Ok(())
}

#[test]
fn unreadable_tls_file_is_refused() {
    let e = err_text(
        "[outputs.default]\ntype = \"http\"\nurl = \"https://h:1/\"\n[outputs.default.tls]\nca_file = \"/nonexistent/ca.pem\"\n",
    );
    assert!(
        e.starts_with(
            "config field outputs.default.tls.ca_file = /nonexistent/ca.pem: cannot be read"
        ),
        "{e}"
    );
}

#[test]
fn http_output_rules() {
    let base = "[outputs.default]\ntype = \"http\"\n";
    let e = err_text(&format!("{base}url = \"ftp://x/\"\n"));
    assert!(e.contains("outputs.default.url = \"ftp://x/\""), "{e}");
    let e = err_text(&format!("{base}url = \"http://x/\"\nbatch_size = 0\n"));
    assert!(e.contains("outputs.default.batch_size"), "{e}");
    let e = err_text(&format!(
        "{base}url = \"http://x/\"\nbatch_size = 10\nqueue_capacity = 5\n"
    ));
    assert!(e.contains("outputs.default.queue_capacity = \"5\""), "{e}");
    let e = err_text(&format!(
        "{base}url = \"http://x/\"\noverflow = \"spill\"\n"
    ));
    assert!(e.contains("spill"), "{e}");
    assert!(e.contains("expected `block` or `drop_oldest`"), "{e}");
    let e = err_text(&format!(
        "{base}url = \"http://x/\"\n[outputs.default.tls]\n"
    ));
    assert!(e.contains("TLS settings need an https:// URL"), "{e}");
    let e = err_text(&format!(
        "{base}url = \"http://x/\"\nheader_name = \"X-Key\"\n"
    ));
    assert!(e.contains("set both or neither"), "{e}");
}

#[test]
fn api_listen_must_be_loopback() {
    let e = err_text("[api]\nlisten = \"0.0.0.0:7070\"\n");
    assert!(
        e.starts_with("config field api.listen = \"0.0.0.0:7070\""),
        "{e}"
    );
    assert!(parse("[api]\nlisten = \"127.0.0.1:7070\"\n")
        .map(|c| c.validate().is_ok())
        .unwrap_or(false));
}

#[test]
fn api_listen_beyond_loopback_needs_a_token_and_tls() -> TestResult {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tls");
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken")?;
    let (token, cert, key) = (
        token.display().to_string(),
        fixtures.join("server.pem").display().to_string(),
        fixtures.join("server.key").display().to_string(),
    );
    let tls = format!("[api.tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n");
    let token_line = format!("token_file = \"{token}\"\n");
    let wide = "[api]\nlisten = \"0.0.0.0:7070\"\n";
    for text in [format!("{wide}{token_line}"), format!("{wide}{tls}")] {
        let e = err_text(&text);
        assert!(
            e.contains("beyond loopback it needs token_file and tls"),
            "{e}"
        );
    }
    parse(&format!("{wide}{token_line}{tls}"))?.validate()?;
    // A token alone guards a loopback listener.
    parse(&format!("[api]\nlisten = \"127.0.0.1:7070\"\n{token_line}"))?.validate()?;
    Ok(())
}

#[test]
fn api_token_and_tls_without_listen_are_refused() {
    let e = err_text("[api]\ntoken_file = \"/etc/hostname\"\n");
    assert!(
        e.starts_with("config field api.token_file = \"set\": applies to the TCP listener only"),
        "{e}"
    );
    let e = err_text("[api.tls]\ncert_file = \"/c.pem\"\nkey_file = \"/k.pem\"\n");
    assert!(e.starts_with("config field api.tls = \"set\""), "{e}");
}

#[test]
fn api_bad_token_or_certificate_is_refused_by_config_check() -> TestResult {
    let dir = tempfile::tempdir()?;
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n")?;
    let e = err_text(&format!(
        "[api]\nlisten = \"127.0.0.1:7070\"\ntoken_file = \"{}\"\n",
        empty.display()
    ));
    assert_eq!(
        e,
        format!(
            "config field api.token_file = {}: is empty; write the secret into it; fix the path or its permissions",
            empty.display()
        )
    );
    let e = err_text(&format!(
        "[api]\nlisten = \"127.0.0.1:7070\"\n[api.tls]\ncert_file = \"{0}\"\nkey_file = \"{0}\"\n",
        empty.display()
    ));
    assert!(
        e.starts_with(&format!(
            "config field api.tls.cert_file = {}: no PEM certificate",
            empty.display()
        )),
        "{e}"
    );
    Ok(())
}

#[test]
fn bad_log_level_is_refused() {
    let e = err_text("[logging]\nlevel = \"loud=[\"\n");
    assert!(e.contains("logging.level"), "{e}");
    let e = err_text("[logging]\nformat = \"xml\"\n");
    assert!(e.contains("xml"), "{e}");
}

#[test]
fn socket_mode_accepts_octal() -> TestResult {
    let c = parse("[api]\nsocket_mode = 0o640\n")?;
    assert_eq!(c.api.socket_mode, 0o640);
    Ok(())
}

// Precedence, case by case: default < file < flag.

fn file_config() -> Result<Config, ConfigError> {
    parse(
        r#"
[runtime]
socket = "/file/containerd.sock"
host_root = "/file-root"
[plugins]
dir = "/file/plugins"
[api]
socket = "/file/api.sock"
listen = "127.0.0.1:1111"
health_listen = "127.0.0.1:2222"
[logging]
format = "json"
level = "debug"
"#,
    )
}

#[test]
fn without_file_or_flag_the_default_applies() {
    let mut c = Config::default();
    c.apply(&Overrides::default());
    assert_eq!(c.runtime.socket, None);
    assert_eq!(c.runtime.socket_flag, None);
    assert_eq!(c.runtime.host_root, PathBuf::from("/"));
    assert_eq!(c.plugins.dir, None);
    assert_eq!(c.api.socket, PathBuf::from("/run/gannet/api.sock"));
    assert_eq!(c.api.listen, None);
    assert_eq!(c.api.health_listen.to_string(), "0.0.0.0:9464");
    assert_eq!(c.logging.format, LogFormat::Text);
    assert_eq!(c.logging.level, "info");
}

#[test]
fn file_beats_default_when_no_flag() -> TestResult {
    let mut c = file_config()?;
    c.apply(&Overrides::default());
    assert_eq!(
        c.runtime.socket,
        Some(PathBuf::from("/file/containerd.sock"))
    );
    assert_eq!(c.runtime.host_root, PathBuf::from("/file-root"));
    assert_eq!(c.plugins.dir, Some(PathBuf::from("/file/plugins")));
    assert_eq!(c.api.socket, PathBuf::from("/file/api.sock"));
    assert_eq!(
        c.api.listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:1111")
    );
    assert_eq!(c.api.health_listen.to_string(), "127.0.0.1:2222");
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.logging.level, "debug");
    Ok(())
}

#[test]
fn sync_mode_parses_from_the_file_and_a_bad_one_names_the_choices() -> TestResult {
    let origin = Path::new("gannet.toml");
    let poll = Config::from_toml("[runtime]\nsync_mode = \"poll\"\n", origin)?;
    assert_eq!(poll.runtime.sync_mode, SyncMode::Poll);
    assert_eq!(Config::default().runtime.sync_mode, SyncMode::Events);
    let e = Config::from_toml("[runtime]\nsync_mode = \"push\"\n", origin)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("line 2") && e.contains("`events` or `poll`"),
        "{e}"
    );
    Ok(())
}

#[test]
fn each_flag_beats_the_file() -> TestResult {
    type Check = fn(&Config) -> bool;
    let cases: Vec<(Overrides, Check)> = vec![
        (
            Overrides {
                socket: Some("/flag.sock".into()),
                ..Default::default()
            },
            |c| {
                c.runtime.socket_flag.as_deref() == Some(Path::new("/flag.sock"))
                    && c.runtime.socket.as_deref() == Some(Path::new("/file/containerd.sock"))
                    && c.runtime.host_root == Path::new("/file-root")
            },
        ),
        (
            Overrides {
                host_root: Some("/flag-root".into()),
                ..Default::default()
            },
            |c| {
                c.runtime.host_root == Path::new("/flag-root")
                    && c.runtime.socket.as_deref() == Some(Path::new("/file/containerd.sock"))
            },
        ),
        (
            Overrides {
                sync_mode: Some(SyncMode::Poll),
                ..Default::default()
            },
            |c| {
                c.runtime.sync_mode == SyncMode::Poll
                    && c.runtime.socket.as_deref() == Some(Path::new("/file/containerd.sock"))
            },
        ),
        (
            Overrides {
                plugin_dir: Some("/flag/plugins".into()),
                ..Default::default()
            },
            |c| c.plugins.dir.as_deref() == Some(Path::new("/flag/plugins")),
        ),
        (
            Overrides {
                api_socket: Some("/flag/api.sock".into()),
                ..Default::default()
            },
            |c| c.api.socket == Path::new("/flag/api.sock") && c.api.listen.is_some(),
        ),
        (
            Overrides {
                api_listen: "127.0.0.1:3333".parse().ok(),
                ..Default::default()
            },
            |c| c.api.listen.map(|a| a.port()) == Some(3333) && c.api.health_listen.port() == 2222,
        ),
        (
            Overrides {
                health_listen: "127.0.0.1:4444".parse().ok(),
                ..Default::default()
            },
            |c| c.api.health_listen.port() == 4444 && c.api.listen.map(|a| a.port()) == Some(1111),
        ),
        (
            Overrides {
                log_format: Some(LogFormat::Text),
                ..Default::default()
            },
            |c| c.logging.format == LogFormat::Text && c.logging.level == "debug",
        ),
        (
            Overrides {
                log_level: Some("warn".into()),
                ..Default::default()
            },
            |c| c.logging.level == "warn" && c.logging.format == LogFormat::Json,
        ),
    ];
    for (i, (overrides, check)) in cases.into_iter().enumerate() {
        let mut c = file_config()?;
        c.apply(&overrides);
        assert!(check(&c), "case {i}: {overrides:?} gave {c:?}");
    }
    Ok(())
}

#[test]
fn node_name_precedence_flag_env_hostname() -> TestResult {
    let root = tempfile::tempdir()?;
    std::fs::create_dir_all(root.path().join("etc"))?;
    std::fs::write(root.path().join("etc/hostname"), "host-a\n")?;
    assert_eq!(
        resolve_node_name(Some("flag"), Some("env"), root.path())?,
        "flag"
    );
    assert_eq!(resolve_node_name(None, Some("env"), root.path())?, "env");
    assert_eq!(
        resolve_node_name(Some(" "), Some(""), root.path())?,
        "host-a"
    );
    assert_eq!(resolve_node_name(None, None, root.path())?, "host-a");
    let empty = tempfile::tempdir()?;
    let e = resolve_node_name(None, None, empty.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("pass --node-name or set NODE_NAME"), "{e}");
    Ok(())
}

#[test]
fn discovery_rate_and_concurrency_parse_and_are_bounded() -> TestResult {
    let c = parse("[runtime]\nevent_fetch_rate_per_sec = 50\nmax_concurrent_fetches = 4\n")?;
    c.validate()?;
    assert_eq!(c.runtime.event_fetch_rate_per_sec, 50);
    assert_eq!(c.runtime.max_concurrent_fetches, 4);
    assert_eq!(Config::default().runtime.event_fetch_rate_per_sec, 200);
    assert_eq!(Config::default().runtime.max_concurrent_fetches, 16);
    for (text, field, value) in [
        (
            "event_fetch_rate_per_sec = 0",
            "runtime.event_fetch_rate_per_sec",
            "0",
        ),
        (
            "event_fetch_rate_per_sec = 10001",
            "runtime.event_fetch_rate_per_sec",
            "10001",
        ),
        (
            "max_concurrent_fetches = 0",
            "runtime.max_concurrent_fetches",
            "0",
        ),
        (
            "max_concurrent_fetches = 257",
            "runtime.max_concurrent_fetches",
            "257",
        ),
    ] {
        let e = err_text(&format!("[runtime]\n{text}\n"));
        assert!(
            e.starts_with(&format!(
                "config field {field} = \"{value}\": must be from 1 to "
            )),
            "{e}"
        );
    }
    // The type is checked by the parser, naming the line and the value.
    let e = err_text("[runtime]\nmax_concurrent_fetches = -1\n");
    assert!(e.contains("line 2") && e.contains("`-1`"), "{e}");
    Ok(())
}

#[test]
fn reload_refuses_a_changed_discovery_setting_like_sync_mode() -> TestResult {
    let old = Config::default();
    for (field, change) in [
        ("runtime.sync_mode", "sync_mode = \"poll\""),
        (
            "runtime.event_fetch_rate_per_sec",
            "event_fetch_rate_per_sec = 50",
        ),
        (
            "runtime.max_concurrent_fetches",
            "max_concurrent_fetches = 4",
        ),
    ] {
        let new = parse(&format!("[runtime]\n{change}\n"))?;
        let e = check_reloadable(&old, &new)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains(&format!("{field} changed: restart required")),
            "{e}"
        );
    }
    Ok(())
}

#[test]
fn reload_refuses_changed_addresses() -> TestResult {
    let old = Config::default();
    let mut new = old.clone();
    new.logging.level = "debug".into();
    check_reloadable(&old, &new)?;
    new.api.health_listen = "127.0.0.1:1".parse()?;
    let e = check_reloadable(&old, &new)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("api.health_listen changed: restart required"),
        "{e}"
    );
    let mut new = old.clone();
    new.runtime.socket = Some("/other.sock".into());
    assert!(check_reloadable(&old, &new).is_err());
    Ok(())
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

#[test]
fn example_config_parses_and_validates() -> TestResult {
    let c = Config::load(&repo_file("examples/gannet.toml"))?;
    c.validate()?;
    assert!(c.outputs.contains_key("default"));
    assert_eq!(c.outputs.len(), 4);
    assert!(matches!(c.outputs.get("otel"), Some(OutputConfig::Otlp(_))));
    Ok(())
}

/// Every leaf key of a config with every optional field set, as a dotted path
/// (`outputs.NAME.tls.ca_file`).
fn all_field_paths() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut c = Config::default();
    c.runtime.socket = Some("/s".into());
    c.runtime.containerd_state_dir = Some("/d".into());
    c.plugins.dir = Some("/p".into());
    c.plugins.cache_dir = Some("/c".into());
    c.api.listen = Some("127.0.0.1:1".parse()?);
    c.api.socket_gid = Some(1);
    c.api.token_file = Some("/t".into());
    c.api.tls = Some(crate::api::ApiTlsConfig {
        cert_file: "/c".into(),
        key_file: "/k".into(),
    });
    let mut http = HttpConfig::with_url("https://x/");
    http.tls = Some(TlsConfig {
        ca_file: Some("/a".into()),
        cert_file: Some("/b".into()),
        key_file: Some("/c".into()),
    });
    http.bearer_token_file = Some("/t".into());
    http.header_name = Some("X".into());
    http.header_value_file = Some("/v".into());
    c.outputs.insert("h".into(), OutputConfig::Http(http));
    let mut otlp = crate::outputs::OtlpConfig::with_endpoint(
        "https://x:4317",
        crate::outputs::otlp::OtlpProtocol::Grpc,
    );
    otlp.tls = Some(TlsConfig::default());
    otlp.headers.insert(
        "NAME".into(),
        crate::outputs::otlp::HeaderSource::Value("v".into()),
    );
    c.outputs.insert("o".into(), OutputConfig::Otlp(otlp));
    c.outputs.insert(
        "f".into(),
        OutputConfig::File(FileConfig {
            path: "/f".into(),
            max_file_size_bytes: 1,
            max_files: 1,
        }),
    );
    let value = toml::Value::try_from(&c)?;
    let mut out = Vec::new();
    walk(&value, String::new(), &mut out);
    Ok(out)
}

fn walk(value: &toml::Value, prefix: String, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix == "outputs" {
                    "NAME".to_string()
                } else {
                    k.clone()
                };
                let path = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                walk(v, path, out);
            }
        }
        _ => out.push(prefix),
    }
}

#[test]
fn docs_name_every_field() -> TestResult {
    let docs = std::fs::read_to_string(repo_file("docs/configuration.md"))?;
    let fields = all_field_paths()?;
    assert!(fields.len() > 30, "walk found too few fields: {fields:?}");
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| !docs.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/configuration.md misses {missing:?}"
    );
    Ok(())
}

// Regression: `resync_period_secs = 2` passed `gannet config check` (the file accepted 1
// and up) while discovery refused anything below the sync period at run time, so
// `gannet run` logged "Discovery stopped.", stayed up and never became ready. Both now
// run discovery's one check.
#[test]
fn regression_resync_period_below_sync_period_is_refused_by_config_check() -> TestResult {
    let c = parse("[runtime]\nresync_period_secs = 2\n")?;
    let check = c
        .validate_without_side_effects()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        check,
        "config field runtime.resync_period_secs = \"2\": must be at least sync_period_secs (3): a full resync is also a sync (the default is 300)"
    );
    assert!(
        c.runtime.validate().is_err(),
        "discovery refuses what config check refuses"
    );
    // Equal periods are fine for both.
    let c = parse("[runtime]\nresync_period_secs = 3\n")?;
    c.validate_without_side_effects()?;
    c.runtime.validate()?;
    Ok(())
}

#[test]
fn every_runtime_setting_of_the_file_reaches_discovery() -> TestResult {
    let c = parse(
        "[runtime]\nsync_period_secs = 5\nresync_period_secs = 60\npid_start_tolerance_ms = 500\ncontainerd_state_dir = \"/state\"\ndetect_upper_dir = false\nshutdown_grace_period_secs = 7\n",
    )?;
    c.validate()?;
    let d = &c.runtime;
    assert_eq!(d.sync_period_secs, std::time::Duration::from_secs(5));
    assert_eq!(d.resync_period_secs, std::time::Duration::from_secs(60));
    assert_eq!(
        d.pid_start_tolerance_ms,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(d.containerd_state_dir.as_deref(), Some(Path::new("/state")));
    assert!(!d.detect_upper_dir);
    assert_eq!(
        d.shutdown_grace_period_secs,
        std::time::Duration::from_secs(7)
    );
    Ok(())
}

#[test]
fn reload_refuses_api_settings_that_used_to_be_ignored() -> TestResult {
    let old = Config::default();
    for (field, change) in [
        ("api.removed_retention_secs", "removed_retention_secs = 5"),
        ("api.watch_buffer_events", "watch_buffer_events = 8"),
        ("api.socket_mode", "socket_mode = 0o660"),
        ("runtime.sync_period_secs", "sync_period_secs = 5"),
    ] {
        let section = field.split('.').next().unwrap_or_default();
        let new = parse(&format!("[{section}]\n{change}\n"))?;
        let e = check_reloadable(&old, &new)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.starts_with(&format!("config field {field} changed: restart required")),
            "{e}"
        );
    }
    Ok(())
}

#[test]
fn reload_applies_exactly_the_declared_fields_and_the_outputs() -> TestResult {
    let old = Config::default();
    let new = parse(
        "[runtime]\nshutdown_grace_period_secs = 30\n[record]\nenv_values = \"include\"\n[logging]\nformat = \"json\"\nlevel = \"debug\"\n[outputs.default]\ntype = \"file\"\npath = \"/tmp/x.jsonl\"\n",
    )?;
    check_reloadable(&old, &new)?;
    // Every declared name is a field of its section.
    let value = serde_json::to_value(&old)?;
    for (section, fields) in RELOADABLE {
        for field in *fields {
            assert!(
                value[section].get(field).is_some(),
                "RELOADABLE names {section}.{field}, which is not a field"
            );
        }
    }
    Ok(())
}

#[test]
fn docs_list_exactly_what_sighup_may_change() -> TestResult {
    let docs = std::fs::read_to_string(repo_file("docs/configuration.md"))?;
    let start = docs
        .find("SIGHUP may change")
        .ok_or("docs/configuration.md has no \"SIGHUP may change\" sentence")?;
    let sentence = &docs[start..];
    let sentence = &sentence[..sentence.find('\n').unwrap_or(sentence.len())];
    let listed: std::collections::BTreeSet<&str> = sentence.split('`').skip(1).step_by(2).collect();
    let mut declared: std::collections::BTreeSet<String> = RELOADABLE
        .iter()
        .flat_map(|(s, fields)| fields.iter().map(move |f| format!("{s}.{f}")))
        .collect();
    declared.insert("outputs".to_string());
    let declared: std::collections::BTreeSet<&str> = declared.iter().map(String::as_str).collect();
    assert_eq!(listed, declared, "docs: {sentence}");
    Ok(())
}
