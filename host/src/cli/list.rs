//! `gannet list`: one-shot discovery printed as a table or JSON lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::discovery::{discover_once, Config};
use crate::record::{ContainerRecord, Timestamp};

/// Arguments of `gannet list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print one JSON record per line, with every field, instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also show exited and created containers the runtime still holds.
    #[arg(long)]
    pub all: bool,
    /// Runtime socket (default: $CONTAINERD_SOCK_PATH, then /run/containerd/containerd.sock).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Where the node's root filesystem is mounted (when Gannet runs in a container).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,
}

/// Runs `gannet list`.
pub fn run(args: ListArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init_stderr("warn");
    let env_node = std::env::var("NODE_NAME").ok();
    let config = Config {
        socket_flag: args.socket.clone(),
        // Records name the node as `gannet run` would; without a name they carry none.
        node_name: crate::config::resolve_node_name(None, env_node.as_deref(), &args.host_root)
            .unwrap_or_default(),
        host_root: args.host_root.clone(),
        ..Config::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let records = runtime.block_on(discover_once(&config, args.all))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.json {
        for record in &records {
            serde_json::to_writer(&mut out, record).context("cannot write JSON to stdout")?;
            writeln!(out)?;
        }
    } else {
        write_table(&mut out, &records, Timestamp::now())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Prints the readable table: short id, namespace/pod/container, image, state, pid, age.
fn write_table(
    out: &mut impl Write,
    records: &[ContainerRecord],
    now: Timestamp,
) -> std::io::Result<()> {
    let rows: Vec<[String; 6]> = records
        .iter()
        .map(|r| {
            let name = if r.k8s.pod_name.is_empty() {
                r.name.clone()
            } else {
                format!(
                    "{}/{}/{}",
                    r.k8s.namespace, r.k8s.pod_name, r.k8s.container_name
                )
            };
            let since = r.started.or(r.created);
            [
                r.id.chars().take(13).collect(),
                name,
                r.image.clone(),
                r.state.to_string(),
                r.pid.to_string(),
                since.map(|t| age(t, now)).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["CONTAINER", "NAME", "IMAGE", "STATE", "PID", "AGE"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

/// `45s`, `12m`, `3h`, `2d`.
fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = (now.unix_nanos - since.unix_nanos).max(0) / 1_000_000_000;
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ContainerState;

    #[test]
    fn table_shows_short_id_identity_image_state_pid_and_age() -> std::io::Result<()> {
        let now = Timestamp {
            unix_nanos: 10_000_000_000_000,
        };
        let mut r = ContainerRecord {
            id: "0123456789abcdef0123".into(),
            image: "busybox:1".into(),
            state: ContainerState::Running,
            pid: 42,
            started: Some(Timestamp {
                unix_nanos: now.unix_nanos - 300_000_000_000,
            }),
            ..Default::default()
        };
        r.k8s.namespace = "ns".into();
        r.k8s.pod_name = "pod".into();
        r.k8s.container_name = "web".into();
        let mut out = Vec::new();
        write_table(&mut out, &[r], now)?;
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("CONTAINER"));
        let cells: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "0123456789abc",
                "ns/pod/web",
                "busybox:1",
                "running",
                "42",
                "5m"
            ]
        );
        Ok(())
    }
}
