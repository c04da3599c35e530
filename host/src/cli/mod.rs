//! The command line: argument definitions and one module per subcommand.
//!
//! This is the binary's edge: commands return `anyhow::Result` and the library stages
//! below them return their own typed errors.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod list;
pub(crate) mod plugin;
mod plugin_compile;
mod plugin_new;
mod version;

// `gannet run` and `gannet config`.
mod config;
mod run;

pub use list::ListArgs;
pub use plugin::PluginCommand;

pub use config::ConfigCommand;
pub use run::RunArgs;

/// Gannet: a node agent that discovers every container from the container runtime
/// (CRI and containerd), turns it into a complete record with its Kubernetes metadata,
/// and runs each record through WebAssembly plugins that filter, enrich or route it.
#[derive(Debug, Parser)]
#[command(name = "gannet", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Discover containers once and print them (a root-only diagnostic, like `crictl ps`).
    List(ListArgs),
    /// Work with WebAssembly plugins: validate one, run a chain offline over sample records,
    /// or compile ahead of time into the plugin cache.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Print the Gannet version, the plugin WIT version and the wasmtime version.
    Version,
    /// Run the agent: discovery -> plugins -> outputs, with the local API.
    Run(RunArgs),
    /// Work with config files: `gannet config check FILE`.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// Runs one parsed command line.
///
/// # Errors
/// Whatever the command reports; the binary prints it as one line and exits non-zero.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::List(args) => list::run(args),
        Command::Plugin(cmd) => plugin::run(cmd),
        Command::Version => version::run(),
        Command::Run(args) => run::run(args),
        Command::Config(cmd) => config::run(cmd),
    }
}
