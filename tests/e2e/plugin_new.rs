//! `gannet plugin new NAME --lang rust|python|js` as an author uses it: scaffold, run the
//! scaffold's own `./build.sh` (which installs its pinned toolchain: the wasm32-wasip2
//! target, a venv with componentize-py, or `npm ci` for componentize-js), then
//! `gannet plugin run NAME.wasm --input sample.jsonl` in the new directory. And an existing
//! directory is refused and left as it was.
//!
//! Needs no containerd; needs cargo, python3 (with venv) and npm, which `scripts/test.sh`
//! installs. The Python and JavaScript builds download their pinned tool through pip and
//! npm (from their caches after the first run).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use gannet_test_kit::{repo_root, Gannet};

/// `plugin run` compiles the component: 25-30 s for a Python one in the debug build, more
/// while other tests compile.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// Runs `./build.sh` in `dir` with these extra env vars; its output on failure.
fn build(dir: &Path, envs: &[(&str, PathBuf)]) -> Result<()> {
    let mut command = Command::new("bash");
    command.arg("./build.sh").current_dir(dir);
    for (key, value) in envs {
        command.env(key, value);
    }
    let out = command
        .output()
        .with_context(|| format!("running {}/build.sh", dir.display()))?;
    ensure!(
        out.status.success(),
        "{}/build.sh failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Scaffolds `name` in `lang` inside `parent`, builds it with its `build.sh`, runs its
/// sample through it, and checks the guide plugin's three answers.
fn scaffold_build_run(lang: &str, extra: &[&str], envs: &[(&str, PathBuf)]) -> Result<()> {
    let parent = tempfile::tempdir()?;
    let name = format!("my-{lang}-plugin");
    let created = Gannet::cmd(["plugin", "new", &name, "--lang", lang])
        .args(extra)
        .current_dir(parent.path())
        .run()?
        .success()?;
    ensure!(
        created.stdout.contains(&format!("created {name}/")),
        "{created}"
    );
    let dir = parent.path().join(&name);
    if lang == "rust" {
        // The crates the examples' build resolved, so the scaffold builds against the
        // same versions in the shared target dir (see below) instead of resolving anew.
        std::fs::copy(
            repo_root().join("plugins/Cargo.lock"),
            dir.join("Cargo.lock"),
        )?;
    }
    build(&dir, envs)?;
    let wasm = dir.join(format!("{name}.wasm"));
    ensure!(wasm.is_file(), "build.sh wrote no {}", wasm.display());

    let out = Gannet::cmd(["plugin", "run"])
        .arg(format!("{name}.wasm"))
        .args(["--input", "sample.jsonl"])
        .current_dir(&dir)
        .timeout(RUN_TIMEOUT)
        .run()?
        .success()?;
    let lines = out.json_lines()?;
    let got: Vec<(&str, &str)> = lines
        .iter()
        .map(|l: &Value| {
            (
                l["verdict"].as_str().unwrap_or("?"),
                l["record"]["tags"]["team"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    ensure!(
        got == [("pass", "storefront"), ("pass", "unowned"), ("drop", "-")],
        "{lang}: {got:?}\n{out}"
    );
    Ok(())
}

#[test]
fn plugin_new_rust_builds_and_runs_out_of_the_box() -> Result<()> {
    let sdk = repo_root().join("guest-sdk");
    // The examples' target dir: its dependencies (the SDK, serde, wit-bindgen) are built
    // there already with the same release profile, so only the new crate compiles.
    let target = repo_root().join("plugins/target");
    scaffold_build_run(
        "rust",
        &["--sdk", &sdk.to_string_lossy()],
        &[("CARGO_TARGET_DIR", target)],
    )
}

#[test]
fn plugin_new_python_builds_and_runs_out_of_the_box() -> Result<()> {
    scaffold_build_run("python", &[], &[])
}

#[test]
fn plugin_new_js_builds_and_runs_out_of_the_box() -> Result<()> {
    scaffold_build_run("js", &[], &[])
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path)?);
            }
        }
    }
    Ok(files)
}

#[test]
fn plugin_new_refuses_an_existing_directory_and_changes_nothing() -> Result<()> {
    let parent = tempfile::tempdir()?;
    let taken = parent.path().join("taken");
    std::fs::create_dir_all(taken.join("src"))?;
    std::fs::write(taken.join("src/lib.rs"), "// mine\n")?;
    std::fs::write(taken.join("taken.toml"), "mine = true\n")?;
    let before = snapshot(parent.path())?;
    for lang in ["python", "js"] {
        let out = Gannet::cmd(["plugin", "new", "taken", "--lang", lang])
            .current_dir(parent.path())
            .run()?
            .failure()?;
        ensure!(
            out.stderr.contains(
                "\"taken\" exists already; nothing was changed: pick another name or remove it"
            ),
            "{out}"
        );
    }
    // A plain file of that name is refused the same way.
    std::fs::write(parent.path().join("file"), "x")?;
    Gannet::cmd(["plugin", "new", "file", "--lang", "python"])
        .current_dir(parent.path())
        .run()?
        .failure()?;
    std::fs::remove_file(parent.path().join("file"))?;
    ensure!(
        snapshot(parent.path())? == before,
        "a refused scaffold changed the directory"
    );
    Ok(())
}
