//! Compiling a plugin in a child `gannet plugin compile` process, so that Cranelift's
//! working memory (tens of MB for a Rust plugin, hundreds for an 18 MB Python component)
//! is returned to the system when the child exits instead of staying in the agent's heap.
//!
//! Owns spawning the child, feeding it the component on stdin, bounding its run time and
//! reading its verdict. The child writes the artifact into the agent's cache directory,
//! keyed as the agent keys it; the engine then only deserializes it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a child may compile one component before it is killed. A Python component
/// takes about 7 s in release; this leaves room for a loaded node.
pub const CHILD_COMPILE_TIMEOUT: Duration = Duration::from_secs(300);

/// How often the parent checks whether the child has finished.
const POLL: Duration = Duration::from_millis(10);

/// Why a child compile gave no artifact.
#[derive(Debug, thiserror::Error)]
pub enum ChildCompileError {
    /// The child could not be started or fed (the engine then compiles in-process).
    #[error("cannot run the compiler process {exe:?}: {error}")]
    Spawn {
        /// The executable.
        exe: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The child ran past [`CHILD_COMPILE_TIMEOUT`] and was killed.
    #[error("the compiler process ran past {0:?} and was killed")]
    Timeout(Duration),
    /// The child refused the component: its one-line reason.
    #[error("{0}")]
    Refused(String),
}

/// Runs `exe plugin compile - --cache-dir cache_dir` with `bytes` on stdin and waits for it.
///
/// # Errors
/// [`ChildCompileError`]: not started, timed out, or the component refused.
pub fn compile_in_child(
    exe: &Path,
    cache_dir: &Path,
    bytes: &[u8],
) -> Result<(), ChildCompileError> {
    let spawn = |error| ChildCompileError::Spawn {
        exe: exe.to_path_buf(),
        error,
    };
    let mut child = Command::new(exe)
        .args(["plugin", "compile", "-", "--quiet", "--cache-dir"])
        .arg(cache_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    // Drain stderr on a thread, so a chatty child can never block on a full pipe.
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            // Best effort: the exit status says whether it failed.
            let _ = pipe.read_to_string(&mut text);
            text
        })
    });
    // Feed it from this thread, then close stdin so it sees the end of the component.
    let fed = child
        .stdin
        .take()
        .map_or(Ok(()), |mut stdin| stdin.write_all(bytes));
    let deadline = Instant::now() + CHILD_COMPILE_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(spawn)? {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                // Already exiting or gone is fine: either way it is stopped.
                let _ = child.kill();
                let _ = child.wait();
                return Err(ChildCompileError::Timeout(CHILD_COMPILE_TIMEOUT));
            }
            None => std::thread::sleep(POLL),
        }
    };
    fed.map_err(spawn)?;
    if status.success() {
        return Ok(());
    }
    let stderr = stderr
        .and_then(|reader| reader.join().ok())
        .unwrap_or_default();
    let reason = stderr
        .lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .map(|line| line.trim_start_matches("gannet: error: ").to_string())
        .unwrap_or_else(|| format!("the compiler process exited with {status}"));
    Err(ChildCompileError::Refused(reason))
}
