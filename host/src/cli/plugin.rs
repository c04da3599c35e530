//! `gannet plugin check|run`: validate a plugin, or run a chain offline.

use std::process::ExitCode;

use clap::Subcommand;

/// The `gannet plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {}

/// Runs a `gannet plugin` subcommand.
pub fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {}
}
