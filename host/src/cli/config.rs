//! `gannet config check FILE`: parse and validate a config without running the agent and
//! without creating or changing any file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;

/// The `gannet config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file (the checks `gannet run` makes before it starts, except
    /// binding the listeners), changing nothing on disk. Prints `ok` or one line naming
    /// the problem.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// Runs a `gannet config` subcommand.
///
/// # Errors
/// The first problem in the file, on one line.
pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    crate::logging::init_stderr("warn");
    match cmd {
        ConfigCommand::Check { file } => {
            let config = Config::load(&file)?;
            config
                .validate_without_side_effects()
                .with_context(|| format!("config file {}", file.display()))?;
            println!("config file {}: ok", file.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
