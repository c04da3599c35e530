//! `gannet plugin check|run|compile|new`: validate a plugin, run a chain offline,
//! compile ahead of time (`plugin_compile.rs`), or scaffold a project (`plugin_new.rs`).
//!
//! `check` loads one component the way the agent does (compile, match the world, `init`)
//! and prints what it is. `run` streams JSON lines through a chain: each input line is a
//! record (as `gannet list --json` prints it) or an output envelope
//! `{"event","time","node","record"}`; each output line is
//! `{"verdict","outputs","record"}`. A bad line is reported with its number and skipped.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use crate::pipeline::Outcome;
use crate::plugins::{
    ChainRunner, EngineOptions, LoadedPlugin, PluginEngine, PluginMetrics, PluginSet, Sidecar,
    WIT_PACKAGE,
};
use crate::record::{ContainerRecord, Lifecycle, Timestamp};

/// The `gannet plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Validate a plugin against the `gannet:plugin` world and show its WIT version,
    /// exports, WASI imports and grants. Exits non-zero with the reason if it is refused.
    Check(CheckArgs),
    /// Run plugins offline over records from a JSON-lines file, printing one result line
    /// per record. A bad input line or a refused plugin is reported on stderr and the run
    /// goes on; the exit status is then non-zero.
    Run(RunArgs),
    /// Compile plugins ahead of time into a plugin cache directory, as the agent would at
    /// load, so the agent only loads them: do this where plugins are packaged (a Python
    /// component takes seconds and hundreds of MB to compile). The agent runs it as a child
    /// process for every cache miss.
    Compile(super::plugin_compile::CompileArgs),
    /// Create a plugin project in ./NAME (Rust, Python or JavaScript) that builds and runs
    /// out of the box.
    New(super::plugin_new::NewArgs),
}

/// Arguments of `gannet plugin check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plugin component.
    #[arg(value_name = "FILE.wasm")]
    pub file: PathBuf,
    /// Its sidecar (default: `FILE.toml` next to it, if present).
    #[arg(long, value_name = "SIDECAR")]
    pub config: Option<PathBuf>,
    /// A plugin cache directory to load from and compile into (as the agent's
    /// `plugins.cache_dir`), so a large plugin compiles once across runs.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Arguments of `gannet plugin run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run every `*.wasm` of this directory, in file-name order, with their sidecars.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "files",
        required_unless_present = "files"
    )]
    pub plugin_dir: Option<PathBuf>,
    /// Run these plugins, in this order (each with its `NAME.toml` sidecar, if present).
    #[arg(value_name = "FILE.wasm")]
    pub files: Vec<PathBuf>,
    /// JSON-lines input: records or output envelopes; `-` reads stdin.
    #[arg(long, value_name = "FILE.jsonl")]
    pub input: PathBuf,
    /// The node name plugins see through `node-name()`.
    #[arg(long, value_name = "NAME", default_value = "local")]
    pub node_name: String,
    /// A plugin cache directory to load from and compile into (as the agent's
    /// `plugins.cache_dir`), so a large plugin compiles once across runs.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// Runs a `gannet plugin` subcommand.
pub fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::Check(args) => check(args),
        PluginCommand::Run(args) => run_chain(args),
        PluginCommand::Compile(args) => super::plugin_compile::run(args),
        PluginCommand::New(args) => super::plugin_new::run(args),
    }
}

/// The engine of `check` and `run`: the agent's, with the cache asked for, if any.
fn offline_engine(cache_dir: Option<PathBuf>) -> anyhow::Result<PluginEngine> {
    Ok(PluginEngine::new(EngineOptions {
        cache_dir,
        ..EngineOptions::default()
    })?)
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init_stderr("warn");
    let engine = offline_engine(args.cache_dir.clone())?;
    let sidecar = match &args.config {
        Some(path) => Sidecar::load(path)?,
        None => Sidecar::load_optional(&Sidecar::path_for(&args.file))?,
    };
    let plugin = LoadedPlugin::load_with_sidecar(
        &engine,
        &args.file,
        sidecar,
        "local",
        &PluginMetrics::unregistered(),
    )?;
    let summary = plugin.summary();
    let s = plugin.sidecar();
    let mut out = std::io::stdout().lock();
    writeln!(out, "plugin: {}", args.file.display())?;
    writeln!(out, "name: {}", plugin.name())?;
    writeln!(out, "sha256: {}", plugin.content_hash())?;
    let compiled = if plugin.from_cache() {
        "loaded from the cache"
    } else {
        "compiled now"
    };
    writeln!(out, "artifact: {compiled}")?;
    writeln!(
        out,
        "wit: {WIT_PACKAGE}@{}",
        summary.wit_version.as_deref().unwrap_or("?")
    )?;
    match &summary.sdk {
        Some(sdk) => writeln!(out, "sdk: {sdk}")?,
        None => writeln!(out, "sdk: none stamped (not built with the Rust guest SDK)")?,
    }
    writeln!(out, "exports:")?;
    for export in &summary.exports {
        writeln!(out, "  {export}")?;
    }
    writeln!(out, "wasi imports:")?;
    for import in &summary.wasi_imports {
        writeln!(out, "  {import}")?;
    }
    match &s.path {
        Some(path) => writeln!(out, "sidecar: {}", path.display())?,
        None => writeln!(out, "sidecar: none (defaults)")?,
    }
    writeln!(
        out,
        "limits: memory_limit_bytes={} call_deadline_ms={} failure_policy={} quarantine_after_failures={}",
        s.memory_limit_bytes,
        s.call_deadline.as_millis(),
        s.failure_policy.as_str(),
        s.quarantine_after_failures
    )?;
    if s.grants.env.is_empty() && s.grants.read_only_dirs.is_empty() {
        writeln!(out, "grants: none")?;
    } else {
        writeln!(out, "grants:")?;
        for name in &s.grants.env {
            writeln!(out, "  env {name}")?;
        }
        for dir in &s.grants.read_only_dirs {
            let guest = dir
                .guest
                .clone()
                .unwrap_or_else(|| dir.host.display().to_string());
            writeln!(out, "  read-only dir {} as {guest}", dir.host.display())?;
        }
    }
    writeln!(out, "ok: init accepted the config")?;
    Ok(ExitCode::SUCCESS)
}

/// An output envelope, as `gannet run` writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    /// The lifecycle event (default `added`).
    #[serde(default)]
    event: Lifecycle,
    /// When the event happened (not used by plugins).
    #[serde(default)]
    #[allow(dead_code)]
    time: Option<Timestamp>,
    /// The node (not used: `--node-name` sets it).
    #[serde(default)]
    #[allow(dead_code)]
    node: Option<String>,
    /// The record.
    record: ContainerRecord,
}

/// Parses one input line: an envelope if it has a `record` key, else a bare record.
pub(crate) fn parse_line(line: &str) -> Result<(Lifecycle, ContainerRecord), serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(line)?;
    if value.get("record").is_some() {
        let envelope: Envelope = serde_json::from_value(value)?;
        Ok((envelope.event, envelope.record))
    } else {
        Ok((Lifecycle::Added, serde_json::from_value(value)?))
    }
}

/// One output line: `{"verdict","outputs","record"}`, in that order.
#[derive(Debug, Serialize)]
struct OutputLine<'a> {
    verdict: &'static str,
    outputs: &'a [String],
    record: &'a ContainerRecord,
}

/// The output line for an outcome; none for a lost record (which a chain run on this
/// thread never gives).
fn output_line(outcome: &Outcome) -> Option<OutputLine<'_>> {
    match outcome {
        Outcome::Dropped { record, .. } => Some(OutputLine {
            verdict: "drop",
            outputs: &[],
            record,
        }),
        Outcome::Passed {
            record,
            destinations: Some(outputs),
        } => Some(OutputLine {
            verdict: "route",
            outputs,
            record,
        }),
        Outcome::Passed {
            record,
            destinations: None,
        } => Some(OutputLine {
            verdict: "pass",
            outputs: &[],
            record,
        }),
        Outcome::Lost => None,
    }
}

fn open_input(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let file =
        std::fs::File::open(path).with_context(|| format!("input {path:?}: cannot open it"))?;
    Ok(Box::new(BufReader::new(file)))
}

/// The text of one input line, without its `\r\n` or `\n`.
pub(crate) fn line_text(mut bytes: Vec<u8>) -> Result<String, String> {
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    String::from_utf8(bytes).map_err(|error| {
        format!(
            "not valid UTF-8 (invalid byte at column {}); save the input as UTF-8",
            error.utf8_error().valid_up_to() + 1
        )
    })
}

fn run_chain(args: RunArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init_stderr("info");
    let engine = offline_engine(args.cache_dir.clone())?;
    let metrics = PluginMetrics::unregistered();
    let mut failed = false;
    let set = match &args.plugin_dir {
        Some(dir) => {
            let (set, errors) = PluginSet::load_dir(engine, dir, &args.node_name, metrics)?;
            for error in &errors {
                eprintln!("gannet: error: {error}");
            }
            failed |= !errors.is_empty();
            set
        }
        None => PluginSet::load_files(engine, &args.files, &args.node_name, metrics)?,
    };
    let chain = set.current();
    let mut runner = ChainRunner::new();
    let input = open_input(&args.input)?;
    let mut out = std::io::stdout().lock();
    // Split on bytes, not `lines()`: a line that is not UTF-8 is one bad line, reported
    // with its number like a line that is not JSON, and the run goes on.
    for (index, bytes) in input.split(b'\n').enumerate() {
        let number = index + 1;
        let bytes = bytes
            .with_context(|| format!("input {:?}: read failed at line {number}", args.input))?;
        let line = match line_text(bytes) {
            Ok(line) => line,
            Err(error) => {
                eprintln!(
                    "gannet: error: input {:?} line {number}: {error}; the line is skipped",
                    args.input
                );
                failed = true;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Ok((event, record)) => {
                let outcome = runner.run(&chain, event, record);
                let Some(line) = output_line(&outcome) else {
                    eprintln!(
                        "gannet: error: input {:?} line {number}: the record was lost",
                        args.input
                    );
                    failed = true;
                    continue;
                };
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
            Err(error) => {
                eprintln!("gannet: error: input {:?} line {number}: {error}; expected a record or {{\"event\",\"time\",\"node\",\"record\"}}", args.input);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_record_defaults_to_added() -> Result<(), serde_json::Error> {
        let (event, record) = parse_line(r#"{"id":"c1"}"#)?;
        assert_eq!(event, Lifecycle::Added);
        assert_eq!(record.id, "c1");
        Ok(())
    }

    #[test]
    fn envelope_carries_its_event() -> Result<(), serde_json::Error> {
        let (event, record) = parse_line(
            r#"{"event":"removed","time":"2024-01-01T00:00:00Z","node":"n1","record":{"id":"c2"}}"#,
        )?;
        assert_eq!(event, Lifecycle::Removed);
        assert_eq!(record.id, "c2");
        Ok(())
    }

    #[test]
    fn line_text_strips_crlf_and_names_the_bad_byte() {
        assert_eq!(
            line_text(b"{\"id\":\"c1\"}\r".to_vec()).as_deref(),
            Ok("{\"id\":\"c1\"}")
        );
        let error = line_text(b"{\"id\":\"\xff\"}".to_vec())
            .err()
            .unwrap_or_default();
        assert!(
            error.contains("not valid UTF-8 (invalid byte at column 8)"),
            "{error}"
        );
    }

    #[test]
    fn unknown_record_field_is_an_error() {
        let err = parse_line(r#"{"idd":"c1"}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown field `idd`"), "{err}");
    }

    #[test]
    fn route_output_lists_destinations() {
        let outcome = Outcome::Passed {
            record: ContainerRecord::default(),
            destinations: Some(vec!["audit".into()]),
        };
        let line = serde_json::to_string(&output_line(&outcome)).unwrap_or_default();
        assert!(
            line.starts_with(r#"{"verdict":"route","outputs":["audit"],"record":{"#),
            "{line}"
        );
    }
}
