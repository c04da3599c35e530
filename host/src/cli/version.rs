//! `gannet version`: the Gannet version, the plugin WIT version (and every version served)
//! and the wasmtime version.

use std::process::ExitCode;

use crate::plugins::{wasmtime_version, SERVED_VERSIONS, WIT_PACKAGE, WIT_VERSION};

/// Prints the Gannet, WIT (current, and every version served) and wasmtime versions, one
/// per line.
pub fn run() -> anyhow::Result<ExitCode> {
    println!("gannet {}", env!("CARGO_PKG_VERSION"));
    println!(
        "wit {WIT_PACKAGE}@{WIT_VERSION} (serves {})",
        SERVED_VERSIONS.join(", ")
    );
    println!("wasmtime {}", wasmtime_version());
    Ok(ExitCode::SUCCESS)
}
