//! `gannet plugin compile`: compile plugins ahead of time into a plugin cache directory,
//! exactly as the agent would at load, so the agent only deserializes them.
//!
//! Two users: a team packaging plugins (the plugin image carries the artifacts, so a
//! DaemonSet pod never runs Cranelift on an 18 MB Python component inside its memory
//! limit), and the agent itself, which runs `gannet plugin compile - --quiet` as a child
//! for every cache miss so the compiler's memory leaves with the child.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use crate::plugins::{content_hash, EngineOptions, PluginEngine};

/// Arguments of `gannet plugin compile`.
#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The plugin components; `-` reads one from stdin.
    #[arg(value_name = "FILE.wasm", required = true)]
    pub files: Vec<PathBuf>,
    /// The cache directory to write into: the agent's `[plugins] cache_dir`
    /// (`--plugin-cache-dir`). Created with mode 0700 if missing; it must be owned by the
    /// user that runs the agent.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: PathBuf,
    /// Print nothing on success (errors still go to stderr).
    #[arg(long)]
    pub quiet: bool,
}

/// Compiles every file into the cache; a file that does not compile is reported and the
/// others go on. Exits non-zero if any failed.
pub fn run(args: CompileArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init_stderr("warn");
    // The agent's own engine options, so the artifacts carry the agent's engine key.
    let engine = PluginEngine::new(EngineOptions {
        cache_dir: Some(args.cache_dir.clone()),
        ..EngineOptions::default()
    })?;
    let cache = engine.cache().context("plugin cache: not opened")?.clone();
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        let (name, bytes) = if file.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("plugin on stdin: read failed")?;
            (PathBuf::from("<stdin>"), bytes)
        } else {
            let bytes =
                std::fs::read(file).with_context(|| format!("plugin {file:?}: cannot read it"))?;
            (file.clone(), bytes)
        };
        let hash = content_hash(&bytes);
        let started = Instant::now();
        match engine.compile(&name, &bytes, &hash) {
            Ok((_, from_cache)) => {
                if !args.quiet {
                    let what = if from_cache {
                        "already cached"
                    } else {
                        "compiled"
                    };
                    writeln!(
                        out,
                        "{what} {}: {} ({} ms)",
                        name.display(),
                        cache.path_for(&hash).display(),
                        started.elapsed().as_millis()
                    )?;
                }
            }
            Err(error) => {
                eprintln!("gannet: error: {error}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
