//! `gannet plugin new NAME --lang rust|python|js`: scaffolds a plugin project in `./NAME`.
//!
//! The project is the author guide's `hello-team` plugin (`plugins/<lang>/hello-team/`,
//! included here as text, so the scaffold is always the plugin the guide and the tests
//! show) under the new name, with a `build.sh` that writes `NAME.wasm` next to it
//! (installing its pinned toolchain when missing), the sidecar `NAME.toml`, a
//! `sample.jsonl`, and the WIT world it targets (`wit/plugin.wit`, the agent's own). It
//! only writes files: it never builds, runs or downloads anything. It refuses a `NAME`
//! that exists already, and changes nothing then.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

/// The WIT world every plugin targets, as the agent serves it.
const WIT: &str = include_str!("../../../wit/plugin.wit");
/// The guide plugin's sidecar and sample input (one copy per language, all equal).
const SIDECAR: &str = include_str!("../../../plugins/rust/hello-team/hello-team.toml");
const SAMPLE: &str = include_str!("../../../plugins/rust/hello-team/sample.jsonl");
/// The name the guide plugin's sources use for themselves.
const GUIDE_NAME: &str = "hello-team";

/// Rust: the guide plugin, a manifest that depends on the SDK, the build script.
const RUST_LIB: &str = include_str!("../../../plugins/rust/hello-team/src/lib.rs");
const RUST_MANIFEST: &str = include_str!("plugin_new/Cargo.toml.tmpl");
const RUST_BUILD: &str = include_str!("plugin_new/rust-build.sh");
const RUST_GITIGNORE: &str = include_str!("plugin_new/rust.gitignore");

/// Python: the guide plugin, componentize-py pinned with hashes, the build script.
const PYTHON_APP: &str = include_str!("../../../plugins/python/hello-team/app.py");
const PYTHON_REQUIREMENTS: &str = include_str!("../../../plugins/python/requirements.txt");
const PYTHON_BUILD: &str = include_str!("plugin_new/python-build.sh");
const PYTHON_GITIGNORE: &str = include_str!("plugin_new/python.gitignore");
/// The componentize-py version `requirements.txt` pins (checked by a test).
const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// JavaScript: the guide plugin, componentize-js pinned by the lock, the build scripts.
const JS_APP: &str = include_str!("../../../plugins/js/hello-team/app.js");
const JS_PACKAGE: &str = include_str!("../../../plugins/js/package.json");
const JS_LOCK: &str = include_str!("../../../plugins/js/package-lock.json");
const JS_BUILD_MJS: &str = include_str!("../../../plugins/js/build.mjs");
const JS_BUILD: &str = include_str!("plugin_new/js-build.sh");
const JS_GITIGNORE: &str = include_str!("plugin_new/js.gitignore");
/// The package name `package.json` and its lock carry in `plugins/js/`.
const JS_PACKAGE_NAME: &str = "\"name\": \"gannet-js-plugins\"";

/// Longest plugin name accepted.
const MAX_NAME_LEN: usize = 64;

/// Arguments of `gannet plugin new`.
#[derive(Debug, Args)]
#[command(after_help = "\
Creates ./NAME with the guide's hello-team plugin (docs/plugins.md) under that name:
  rust:   Cargo.toml, src/lib.rs (with unit tests: `cargo test`)
  python: app.py, requirements.txt (componentize-py, pinned with hashes)
  js:     app.js, package.json, package-lock.json (componentize-js), build.mjs
and in every language build.sh (writes NAME.wasm, installing its pinned tool when
missing), NAME.toml (the sidecar), sample.jsonl and wit/plugin.wit (the world it targets).

Then:
  cd NAME && ./build.sh
  gannet plugin run NAME.wasm --input sample.jsonl

The Rust guest SDK is not published: --sdk names the guest-sdk directory of a Gannet
checkout, and Cargo.toml depends on it by path (or edit it to a git dependency).")]
pub struct NewArgs {
    /// The plugin's name: the directory `./NAME`, the component `NAME.wasm` and its
    /// sidecar `NAME.toml`. Lower-case letters, digits, `-` and `_`, starting with a letter.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The language to write the plugin in.
    #[arg(long, value_enum, value_name = "LANG")]
    pub lang: Lang,
    /// With `--lang rust`: the guest SDK, the `guest-sdk` directory of a Gannet checkout,
    /// which the plugin depends on by path. Required for Rust, refused for the others.
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

/// A plugin language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// Rust with the gannet-guest SDK (cargo, wasm32-wasip2).
    Rust,
    /// Python with componentize-py.
    Python,
    /// JavaScript with componentize-js.
    Js,
}

impl Lang {
    fn as_str(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
        }
    }
}

/// Why a scaffold was refused or could not be written.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// The name cannot be a directory, crate and component name.
    #[error("plugin name {name:?} is not valid: use 1 to {MAX_NAME_LEN} lower-case letters, digits, `-` or `_`, starting with a letter (e.g. `team-tagger`)")]
    BadName {
        /// The name given.
        name: String,
    },
    /// `./NAME` exists.
    #[error("{path:?} exists already; nothing was changed: pick another name or remove it")]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// Rust without `--sdk`.
    #[error("--lang rust needs --sdk PATH: the guest SDK is not published, so name the `guest-sdk` directory of a Gannet checkout")]
    SdkMissing,
    /// `--sdk` with another language.
    #[error("--sdk is only for --lang rust; {lang} plugins use the WIT file in the scaffold")]
    SdkUnused {
        /// The language given.
        lang: &'static str,
    },
    /// `--sdk` does not name the SDK.
    #[error("--sdk {path:?} is not the Gannet guest SDK (no Cargo.toml naming `gannet-guest` there); pass the `guest-sdk` directory of a Gannet checkout")]
    NotTheSdk {
        /// The path given.
        path: PathBuf,
    },
    /// Writing the project failed; what was written is removed again.
    #[error("writing {path:?} failed: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One file of a scaffold: its path under the project directory, its text, and whether
/// it is executable.
#[derive(Debug, PartialEq, Eq)]
struct ScaffoldFile {
    path: PathBuf,
    text: String,
    executable: bool,
}

impl ScaffoldFile {
    fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
            executable: false,
        }
    }

    fn script(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Self {
            executable: true,
            ..Self::new(path, text)
        }
    }
}

/// Runs `gannet plugin new`.
///
/// # Errors
/// A bad name or `--sdk`, an existing `./NAME`, or a failed write (see [`NewError`]).
pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let dir = PathBuf::from(&args.name);
    let files = scaffold(&args.name, args.lang, args.sdk.as_deref())?;
    write_project(&dir, &files)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created {}/: a {} plugin ({} files)",
        args.name,
        args.lang.as_str(),
        files.len()
    )?;
    writeln!(out, "next:")?;
    writeln!(out, "  cd {} && ./build.sh", args.name)?;
    writeln!(
        out,
        "  gannet plugin run {}.wasm --input sample.jsonl",
        args.name
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Whether `name` can be a directory, a cargo package and a component file name.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_NAME_LEN
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// The guide plugin's source, renamed: its first line names the plugin.
fn renamed(source: &str, name: &str) -> String {
    source.replacen(GUIDE_NAME, name, 1)
}

/// The files of a `lang` project named `name`.
fn scaffold(name: &str, lang: Lang, sdk: Option<&Path>) -> Result<Vec<ScaffoldFile>, NewError> {
    if !valid_name(name) {
        return Err(NewError::BadName {
            name: name.to_string(),
        });
    }
    let fill = |template: &str| template.replace("{{name}}", name);
    let mut files = vec![
        ScaffoldFile::new(format!("{name}.toml"), SIDECAR),
        ScaffoldFile::new("sample.jsonl", SAMPLE),
        ScaffoldFile::new("wit/plugin.wit", WIT),
    ];
    match (lang, sdk) {
        (Lang::Rust, None) => return Err(NewError::SdkMissing),
        (Lang::Rust, Some(sdk)) => {
            let sdk = sdk_dir(sdk)?;
            // Cargo.toml is TOML: the path as a basic string, `\` and `"` escaped.
            let sdk = sdk
                .to_string_lossy()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            files.extend([
                ScaffoldFile::new("Cargo.toml", fill(RUST_MANIFEST).replace("{{sdk}}", &sdk)),
                ScaffoldFile::new("src/lib.rs", renamed(RUST_LIB, name)),
                ScaffoldFile::script(
                    "build.sh",
                    fill(RUST_BUILD).replace("{{crate_name}}", &name.replace('-', "_")),
                ),
                ScaffoldFile::new(".gitignore", RUST_GITIGNORE),
            ]);
        }
        (lang @ (Lang::Python | Lang::Js), Some(_)) => {
            return Err(NewError::SdkUnused {
                lang: lang.as_str(),
            })
        }
        (Lang::Python, None) => files.extend([
            ScaffoldFile::new("app.py", renamed(PYTHON_APP, name)),
            ScaffoldFile::new("requirements.txt", PYTHON_REQUIREMENTS),
            ScaffoldFile::script(
                "build.sh",
                fill(PYTHON_BUILD).replace("{{componentize_py_version}}", COMPONENTIZE_PY_VERSION),
            ),
            ScaffoldFile::new(".gitignore", PYTHON_GITIGNORE),
        ]),
        (Lang::Js, None) => {
            let package_name = format!("\"name\": \"{name}\"");
            files.extend([
                ScaffoldFile::new("app.js", renamed(JS_APP, name)),
                ScaffoldFile::new(
                    "package.json",
                    JS_PACKAGE.replace(JS_PACKAGE_NAME, &package_name),
                ),
                ScaffoldFile::new(
                    "package-lock.json",
                    JS_LOCK.replace(JS_PACKAGE_NAME, &package_name),
                ),
                ScaffoldFile::new("build.mjs", JS_BUILD_MJS),
                ScaffoldFile::script("build.sh", fill(JS_BUILD)),
                ScaffoldFile::new(".gitignore", JS_GITIGNORE),
            ]);
        }
    }
    Ok(files)
}

/// The absolute path of the SDK directory `sdk`, once its manifest names `gannet-guest`.
fn sdk_dir(sdk: &Path) -> Result<PathBuf, NewError> {
    let not_the_sdk = || NewError::NotTheSdk {
        path: sdk.to_path_buf(),
    };
    let manifest = fs::read_to_string(sdk.join("Cargo.toml")).map_err(|_| not_the_sdk())?;
    let names_the_sdk = manifest
        .lines()
        .any(|l| l.replace(' ', "") == "name=\"gannet-guest\"");
    if !names_the_sdk {
        return Err(not_the_sdk());
    }
    fs::canonicalize(sdk).map_err(|_| not_the_sdk())
}

/// Creates `dir` (which must not exist) and writes `files` into it. On a failure it
/// removes `dir` again, so a refused or failed scaffold leaves nothing behind.
fn write_project(dir: &Path, files: &[ScaffoldFile]) -> Result<(), NewError> {
    // `create_dir` (not `_all`) claims the name: it fails if anything is there, a
    // dangling symlink included.
    if let Err(source) = fs::create_dir(dir) {
        return Err(if source.kind() == std::io::ErrorKind::AlreadyExists {
            NewError::Exists {
                path: dir.to_path_buf(),
            }
        } else {
            NewError::Write {
                path: dir.to_path_buf(),
                source,
            }
        });
    }
    let written = files.iter().try_for_each(|file| write_file(dir, file));
    if written.is_err() {
        // Best effort: the directory is ours, created above.
        let _ = fs::remove_dir_all(dir);
    }
    written
}

fn write_file(dir: &Path, file: &ScaffoldFile) -> Result<(), NewError> {
    let path = dir.join(&file.path);
    let failed = |source| NewError::Write {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(failed)?;
    }
    let mode = if file.executable { 0o755 } else { 0o644 };
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .map_err(failed)?;
    out.write_all(file.text.as_bytes()).map_err(failed)?;
    // The umask may have narrowed the mode: a build script must be executable.
    if file.executable {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk")
    }

    fn file<'a>(files: &'a [ScaffoldFile], path: &str) -> Option<&'a ScaffoldFile> {
        files.iter().find(|f| f.path == Path::new(path))
    }

    #[test]
    fn names_are_directory_crate_and_file_names() {
        for good in ["a", "team-tagger", "t2_x", &"a".repeat(MAX_NAME_LEN)] {
            assert!(valid_name(good), "{good}");
        }
        for bad in [
            "",
            "Team",
            "2x",
            "-x",
            "a/b",
            "a.b",
            "..",
            "a b",
            &"a".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_language_carries_the_sidecar_sample_wit_and_an_executable_build_script(
    ) -> Result<(), NewError> {
        for (lang, sdk) in [
            (Lang::Rust, Some(sdk())),
            (Lang::Python, None),
            (Lang::Js, None),
        ] {
            let files = scaffold("my-tagger", lang, sdk.as_deref())?;
            assert_eq!(
                file(&files, "my-tagger.toml").map(|f| f.text.as_str()),
                Some(SIDECAR)
            );
            assert_eq!(
                file(&files, "wit/plugin.wit").map(|f| f.text.as_str()),
                Some(WIT)
            );
            assert!(file(&files, "sample.jsonl").is_some());
            let build = file(&files, "build.sh");
            assert!(build.is_some_and(|b| b.executable && b.text.contains("my-tagger.wasm")));
            assert!(files.iter().all(|f| !f.text.contains("{{")), "{lang:?}");
        }
        Ok(())
    }

    #[test]
    fn rust_depends_on_the_sdk_by_absolute_path_and_copies_the_crate_output() -> Result<(), NewError>
    {
        let files = scaffold("my-tagger", Lang::Rust, Some(&sdk()))?;
        let manifest = file(&files, "Cargo.toml")
            .map(|f| f.text.clone())
            .unwrap_or_default();
        let sdk = fs::canonicalize(sdk()).map_err(|source| NewError::Write {
            path: PathBuf::new(),
            source,
        })?;
        assert!(
            manifest.contains(&format!(
                "gannet-guest = {{ path = \"{}\" }}",
                sdk.display()
            )),
            "{manifest}"
        );
        assert!(manifest.contains("name = \"my-tagger\""), "{manifest}");
        let build = file(&files, "build.sh")
            .map(|f| f.text.clone())
            .unwrap_or_default();
        assert!(build.contains("release/my_tagger.wasm"), "{build}");
        let lib = file(&files, "src/lib.rs")
            .map(|f| f.text.clone())
            .unwrap_or_default();
        assert!(lib.starts_with("//! my-tagger: "), "{lib}");
        Ok(())
    }

    #[test]
    fn rust_needs_the_sdk_and_the_others_refuse_it() {
        let message = |r: Result<Vec<ScaffoldFile>, NewError>| {
            r.err().map(|e| e.to_string()).unwrap_or_default()
        };
        assert_eq!(
            message(scaffold("x", Lang::Rust, None)),
            "--lang rust needs --sdk PATH: the guest SDK is not published, so name the `guest-sdk` directory of a Gannet checkout"
        );
        assert_eq!(
            message(scaffold("x", Lang::Python, Some(&sdk()))),
            "--sdk is only for --lang rust; python plugins use the WIT file in the scaffold"
        );
        let not_sdk = message(scaffold("x", Lang::Rust, Some(Path::new("/nonexistent"))));
        assert!(not_sdk.contains("is not the Gannet guest SDK"), "{not_sdk}");
    }

    #[test]
    fn python_pins_the_componentize_py_version_the_build_script_checks() {
        assert!(
            PYTHON_REQUIREMENTS.contains(&format!("componentize-py=={COMPONENTIZE_PY_VERSION} \\"))
        );
        assert!(PYTHON_REQUIREMENTS.contains("--hash=sha256:"));
    }

    #[test]
    fn js_renames_the_package_and_its_lock() -> Result<(), NewError> {
        assert_eq!(JS_PACKAGE.matches(JS_PACKAGE_NAME).count(), 1);
        assert_eq!(JS_LOCK.matches(JS_PACKAGE_NAME).count(), 2);
        let files = scaffold("my-tagger", Lang::Js, None)?;
        for path in ["package.json", "package-lock.json"] {
            let text = file(&files, path)
                .map(|f| f.text.clone())
                .unwrap_or_default();
            assert!(text.contains("\"name\": \"my-tagger\""), "{path}");
            assert!(!text.contains("gannet-js-plugins"), "{path}");
        }
        Ok(())
    }

    #[test]
    fn an_existing_directory_is_refused_and_left_alone() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("taken");
        fs::create_dir(&dir)?;
        fs::write(dir.join("keep.txt"), "mine")?;
        let files = scaffold("taken", Lang::Python, None)?;
        let error = write_project(&dir, &files).err().map(|e| e.to_string());
        assert_eq!(
            error,
            Some(format!(
                "{dir:?} exists already; nothing was changed: pick another name or remove it"
            ))
        );
        let left: Vec<_> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("keep.txt")]);
        Ok(())
    }

    #[test]
    fn writes_every_file_with_its_mode() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("fresh");
        let files = scaffold("fresh", Lang::Js, None)?;
        write_project(&dir, &files)?;
        for f in &files {
            let meta = fs::metadata(dir.join(&f.path))?;
            assert_eq!(fs::read_to_string(dir.join(&f.path))?, f.text);
            assert_eq!(
                meta.permissions().mode() & 0o111 != 0,
                f.executable,
                "{:?}",
                f.path
            );
        }
        Ok(())
    }
}
