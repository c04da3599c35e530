//! Reports what the sandbox lets it see, as tags: its env vars (`env`), what it can do
//! under `/probe` (the guest path the tests grant read-only) and elsewhere, and whether it
//! can connect to `127.0.0.1` on the port its record's `probe-port` label names
//! (`connect`). Writes one line to stderr per call and one to stdout (which the host
//! discards).

use std::fmt::Display;
use std::io::Write;

use gannet_guest::{plugin, Container, Lifecycle, Result, Verdict};
use serde::de::IgnoredAny;

/// `ok` or `ok:VALUE`, else `error:` and the reason.
fn outcome<T: Display, E: Display>(result: std::result::Result<T, E>) -> String {
    match result {
        Ok(value) => format!("ok:{value}"),
        Err(e) => format!("error:{e}"),
    }
}

/// Says it started (one line on stderr, which the host logs); takes any config.
fn start(_config: IgnoredAny) -> Result<()> {
    eprintln!("sandbox-probe init");
    Ok(())
}

#[plugin(init = start)]
fn process(_event: Lifecycle, record: &mut Container, _state: &()) -> Result<Verdict> {
    eprintln!("sandbox-probe saw {}", record.id());
    println!("sandbox-probe stdout must be discarded");
    let mut env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    env.sort();
    record.set_tag("env", &env.join(";"));
    record.set_tag(
        "read",
        &outcome(std::fs::read_to_string("/probe/input.txt").map(|s| s.trim().to_string())),
    );
    record.set_tag(
        "list",
        &outcome(std::fs::read_dir("/probe").map(|d| d.count())),
    );
    record.set_tag(
        "create",
        &outcome(std::fs::write("/probe/created.txt", "x").map(|()| "")),
    );
    record.set_tag(
        "append",
        &outcome(
            std::fs::OpenOptions::new()
                .append(true)
                .open("/probe/input.txt")
                .and_then(|mut f| f.write_all(b"more\n"))
                .map(|()| ""),
        ),
    );
    record.set_tag(
        "mkdir",
        &outcome(std::fs::create_dir("/probe/sub").map(|()| "")),
    );
    record.set_tag(
        "escape",
        &outcome(std::fs::read_to_string("/probe/../outside.txt")),
    );
    record.set_tag("etc", &outcome(std::fs::read_to_string("/etc/hostname")));
    let port = record
        .label("probe-port")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(9);
    record.set_tag(
        "connect",
        &outcome(std::net::TcpStream::connect(("127.0.0.1", port)).map(|_| "connected")),
    );
    Ok(Verdict::Pass)
}
