//! `gannet version`: the Gannet version, the plugin WIT version and the wasmtime version.

use std::process::ExitCode;

use crate::plugins::{wasmtime_version, WIT_PACKAGE, WIT_VERSION};

/// Prints the Gannet, WIT and wasmtime versions, one per line.
pub fn run() -> anyhow::Result<ExitCode> {
    println!("gannet {}", env!("CARGO_PKG_VERSION"));
    println!("wit {WIT_PACKAGE}@{WIT_VERSION}");
    println!("wasmtime {}", wasmtime_version());
    Ok(ExitCode::SUCCESS)
}
