//! Building the wasm plugins that tests and benchmarks load, and finding the Python and
//! JavaScript ones `plugins/build.sh` built.
//!
//! Owns the one way the suite builds a plugin workspace: `cargo build --release --target
//! wasm32-wasip2 --locked` into the workspace's own `target/` (the same command
//! `scripts/test.sh`, `scripts/demo.sh` and `scripts/bench.sh` run, so whichever runs
//! second finds everything fresh). It builds once per process, and a file lock in the
//! target dir keeps test binaries that run at the same time from building at once. It
//! hands on paths of `.wasm` files; it never loads one (that is the engine's job, and the
//! kit does not depend on the `gannet` crate).

use std::ffi::OsString;
use std::fs::File;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};

use crate::repo_root;

/// The wasm target every Gannet plugin is built for.
pub const WASM_TARGET: &str = "wasm32-wasip2";

/// A cargo workspace of Gannet plugins, built for [`WASM_TARGET`] in release.
///
/// ```no_run
/// use gannet_test_kit::PluginWorkspace;
///
/// # fn main() -> anyhow::Result<()> {
/// // Builds tests/plugins (once per process) and names one of its components.
/// let tagger = PluginWorkspace::Test.wasm("tagger")?;
/// assert!(tagger.ends_with("wasm32-wasip2/release/tagger.wasm"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginWorkspace {
    /// `plugins/`: the example plugins and the benchmark's probes (guest SDK).
    Examples,
    /// `tests/plugins/`: good and deliberately bad plugins for the engine's tests.
    Test,
}

/// What one build of a workspace in this process came to (an error as its report).
type Built = OnceLock<std::result::Result<PathBuf, String>>;

static EXAMPLES: Built = OnceLock::new();
static TEST: Built = OnceLock::new();

impl PluginWorkspace {
    /// The workspace directory (`<repo>/plugins` or `<repo>/tests/plugins`).
    pub fn dir(self) -> PathBuf {
        match self {
            Self::Examples => repo_root().join("plugins"),
            Self::Test => repo_root().join("tests/plugins"),
        }
    }

    /// The workspace's own target dir (`<dir>/target`), whatever `CARGO_TARGET_DIR` says.
    pub fn target_dir(self) -> PathBuf {
        self.dir().join("target")
    }

    /// Where the built components land: `<dir>/target/wasm32-wasip2/release`.
    pub fn out_dir(self) -> PathBuf {
        self.target_dir().join(WASM_TARGET).join("release")
    }

    /// Builds the workspace, once per process (later calls return the first outcome), and
    /// returns [`out_dir`](Self::out_dir). A no-op build when it is up to date.
    ///
    /// # Errors
    /// When cargo cannot run or the build fails: the command and cargo's stderr.
    pub fn build(self) -> Result<PathBuf> {
        let built = match self {
            Self::Examples => &EXAMPLES,
            Self::Test => &TEST,
        };
        built
            .get_or_init(|| self.build_now().map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(|e| anyhow!("{e}"))
    }

    /// The built component of crate `name` (`sandbox-probe` -> `.../sandbox_probe.wasm`),
    /// building the workspace first (see [`build`](Self::build)).
    ///
    /// # Errors
    /// When the build fails, or it made no such component.
    pub fn wasm(self, name: &str) -> Result<PathBuf> {
        let wasm = self
            .build()?
            .join(format!("{}.wasm", name.replace('-', "_")));
        if !wasm.is_file() {
            bail!(
                "{} is missing after building {}: is `{name}` a member of that workspace?",
                wasm.display(),
                self.dir().display()
            );
        }
        Ok(wasm)
    }

    fn build_now(self) -> Result<PathBuf> {
        let manifest = self.dir().join("Cargo.toml");
        let target = self.target_dir();
        std::fs::create_dir_all(&target)
            .with_context(|| format!("creating {}", target.display()))?;
        let lock_path = target.join(".build-lock");
        let lock = File::create(&lock_path)
            .with_context(|| format!("creating the build lock {}", lock_path.display()))?;
        lock.lock()
            .with_context(|| format!("locking {}", lock_path.display()))?;
        // `CARGO` is the cargo running these tests; outside cargo, the one on PATH.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let mut command = Command::new(&cargo);
        command
            .args(["build", "--release", "--locked", "--target", WASM_TARGET])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            // Set by the outer cargo for the host build; the plugins have their own.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS");
        let output = command.output().with_context(|| {
            format!(
                "running {} to build {}",
                cargo.to_string_lossy(),
                manifest.display()
            )
        })?;
        if !output.status.success() {
            bail!(
                "`{command:?}` failed ({})\n--- stderr ---\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        Ok(self.out_dir())
    }
}

/// A plugin language whose components `plugins/build.sh` builds (cargo builds Rust).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentLang {
    /// componentize-py: `<workspace>/python/<name>/app.py`.
    Python,
    /// componentize-js: `<workspace>/js/<name>/app.js`.
    Js,
}

impl ComponentLang {
    /// The directory name of the language, under a workspace and under its `target/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Js => "js",
        }
    }
}

impl PluginWorkspace {
    /// The component `plugins/build.sh` writes for the `lang` plugin `name` of this
    /// workspace (`hello-team` -> `<dir>/target/python/hello_team.wasm`), or `None` when it
    /// is not built and this is not CI (the caller then skips, saying so).
    ///
    /// The suite never builds these itself: the toolchains (a venv, `npm ci`) and the
    /// builds (10-30 s each) belong to `plugins/build.sh`, which `scripts/test.sh` runs
    /// before the tests.
    ///
    /// # Errors
    /// With `CI` set, when the component is missing: CI never skips.
    pub fn built_component(self, lang: ComponentLang, name: &str) -> Result<Option<PathBuf>> {
        let wasm = self
            .target_dir()
            .join(lang.dir_name())
            .join(format!("{}.wasm", name.replace('-', "_")));
        if wasm.is_file() {
            return Ok(Some(wasm));
        }
        let ci = std::env::var("CI").ok();
        if crate::containerd::is_ci(ci.as_deref()) {
            bail!(
                "{} is missing and CI is true: run plugins/build.sh before the tests \
                 (scripts/test.sh does)",
                wasm.display()
            );
        }
        eprintln!(
            "skipped: {} is missing; run plugins/build.sh to build it",
            wasm.display()
        );
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_workspace_has_its_own_target_dir() {
        let examples = PluginWorkspace::Examples.out_dir();
        let test = PluginWorkspace::Test.out_dir();
        assert!(
            examples.ends_with("plugins/target/wasm32-wasip2/release"),
            "{}",
            examples.display()
        );
        assert!(
            test.ends_with("tests/plugins/target/wasm32-wasip2/release"),
            "{}",
            test.display()
        );
        assert!(PluginWorkspace::Examples.dir().join("Cargo.toml").is_file());
        assert!(PluginWorkspace::Test.dir().join("Cargo.toml").is_file());
    }
}
