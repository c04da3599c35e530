//! `gannet version`.

use std::process::ExitCode;

/// Prints the Gannet version.
pub fn run() -> anyhow::Result<ExitCode> {
    println!("gannet {}", env!("CARGO_PKG_VERSION"));
    Ok(ExitCode::SUCCESS)
}
