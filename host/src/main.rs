//! The `gannet` binary: parses the command line, runs the chosen command and maps its
//! outcome to an exit code. All logic lives in the library (`gannet::cli` and below).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = gannet::cli::Cli::parse();
    match gannet::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line, naming what failed and why: `{:#}` joins the context chain.
            eprintln!("gannet: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
