//! `gannet list`: one-shot discovery printed as a table or JSON lines.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

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
pub fn run(_args: ListArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("gannet list is not built yet")
}
