//! Python and JavaScript as plugin languages next to Rust: the guide plugin `hello-team`
//! written in each (`plugins/{rust,python,js}/hello-team/`) gives the same output lines for
//! the same input through `gannet plugin run`.
//!
//! Needs no containerd. The Python and JavaScript components are built by
//! `plugins/build.sh` (which `scripts/test.sh` runs first); without them the test skips,
//! except with `CI` set, where a missing component fails it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::Value;

use gannet_test_kit::{repo_root, ComponentLang, Gannet, PluginWorkspace};

/// `gannet plugin run` compiles each component afresh: an 18 MB Python one takes 25-30 s
/// in the debug build, more while other tests compile at the same time.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// Records and envelopes that reach every branch of hello-team: a team label, none, an
/// empty one, a non-ASCII one, tags already there, a skipped namespace, every lifecycle.
const INPUT: &str = r#"{"id": "c1", "k8s": {"namespace": "shop", "pod_name": "web-0", "pod_labels": {"team": "storefront"}}}
{"event": "updated", "time": "2026-01-01T00:00:00Z", "node": "node-1", "record": {"id": "c2", "k8s": {"namespace": "shop", "pod_name": "cart-0"}}}
{"id": "c3", "k8s": {"namespace": "kube-system", "pod_name": "coredns-0"}}
{"id": "c4", "k8s": {"namespace": "shop", "pod_name": "a-0", "pod_labels": {"team": ""}}}
{"id": "c5", "k8s": {"namespace": "shop", "pod_name": "b-0", "pod_labels": {"team": "équipe-ü ✓"}}}
{"id": "c6", "tags": {"team": "old", "keep": "me"}, "k8s": {"namespace": "batch", "pod_name": "job-0", "pod_labels": {"app": "x"}}}
{"event": "removed", "record": {"id": "c7", "state": "exited", "k8s": {"namespace": "kube-system", "pod_name": "proxy-0", "pod_labels": {"team": "infra"}}}}
{"event": "removed", "record": {"id": "c8", "state": "exited", "k8s": {"namespace": "shop", "pod_name": "web-1", "pod_labels": {"team": "storefront"}}}}
"#;

/// The guide plugin in `lang`, from `plugins/<lang>/hello-team/`.
struct Guide {
    lang: &'static str,
    wasm: PathBuf,
    sidecar: PathBuf,
}

/// The three hello-teams, or `None` when a Python or JS one is not built (outside CI).
fn guides() -> Result<Option<Vec<Guide>>> {
    let plugins = repo_root().join("plugins");
    let rust = PluginWorkspace::Examples.wasm("hello-team")?;
    let Some(python) =
        PluginWorkspace::Examples.built_component(ComponentLang::Python, "hello-team")?
    else {
        return Ok(None);
    };
    let Some(js) = PluginWorkspace::Examples.built_component(ComponentLang::Js, "hello-team")?
    else {
        return Ok(None);
    };
    Ok(Some(
        [("rust", rust), ("python", python), ("js", js)]
            .into_iter()
            .map(|(lang, wasm)| Guide {
                lang,
                wasm,
                sidecar: plugins.join(lang).join("hello-team/hello-team.toml"),
            })
            .collect(),
    ))
}

/// Runs `guide` over `input` in `dir/<lang>/` (its component and sidecar side by side);
/// the output lines.
fn run(guide: &Guide, dir: &Path, input: &Path) -> Result<Vec<String>> {
    let home = dir.join(guide.lang);
    std::fs::create_dir_all(&home)?;
    let wasm = home.join("hello_team.wasm");
    std::fs::copy(&guide.wasm, &wasm)
        .with_context(|| format!("copying {}", guide.wasm.display()))?;
    std::fs::copy(&guide.sidecar, home.join("hello_team.toml"))?;
    let out = Gannet::cmd(["plugin", "run"])
        .arg(&wasm)
        .arg("--input")
        .arg(input)
        .timeout(RUN_TIMEOUT)
        .run()?
        .success()?;
    Ok(out.stdout.lines().map(str::to_string).collect())
}

#[test]
fn hello_team_gives_the_same_lines_in_rust_python_and_javascript() -> Result<()> {
    let Some(guides) = guides()? else {
        return Ok(());
    };
    // The same plugin: the same sidecar and the same sample in every language.
    let plugins = repo_root().join("plugins");
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    for lang in ["python", "js"] {
        for file in ["hello-team.toml", "sample.jsonl"] {
            ensure!(
                read(plugins.join(lang).join("hello-team").join(file))?
                    == read(plugins.join("rust/hello-team").join(file))?,
                "plugins/{lang}/hello-team/{file} differs from the Rust one"
            );
        }
    }

    let dir = tempfile::tempdir()?;
    let input = dir.path().join("input.jsonl");
    std::fs::write(&input, INPUT)?;
    // One thread per language: the two slow compiles overlap.
    let outputs = std::thread::scope(|scope| {
        let runs: Vec<_> = guides
            .iter()
            .map(|g| scope.spawn(|| run(g, dir.path(), &input)))
            .collect();
        runs.into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
            })
            .collect::<Result<Vec<_>>>()
    })?;

    let rust = &outputs[0];
    ensure!(
        rust.len() == INPUT.lines().count(),
        "rust: {} output lines for {} input lines:\n{}",
        rust.len(),
        INPUT.lines().count(),
        rust.join("\n")
    );
    for (guide, lines) in guides.iter().zip(&outputs).skip(1) {
        for (n, (want, got)) in rust.iter().zip(lines).enumerate() {
            ensure!(
                want == got,
                "line {}: {} differs from rust\n  rust: {want}\n  {}: {got}",
                n + 1,
                guide.lang,
                guide.lang
            );
        }
        ensure!(
            lines.len() == rust.len(),
            "{}: {} lines, rust {}",
            guide.lang,
            lines.len(),
            rust.len()
        );
    }

    // And the lines are right, not only equal.
    let parsed: Vec<Value> = rust
        .iter()
        .map(|l| serde_json::from_str(l))
        .collect::<Result<_, _>>()?;
    let summary: Vec<(String, String)> = parsed
        .iter()
        .map(|v| {
            (
                v["verdict"].as_str().unwrap_or("?").to_string(),
                v["record"]["tags"]["team"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("pass", "storefront"),
        ("pass", "unowned"),
        ("drop", "-"),
        ("pass", ""),
        ("pass", "équipe-ü ✓"),
        ("pass", "unowned"),
        // Dropped before any tag is set: a drop keeps the record as it came.
        ("drop", "-"),
        ("pass", "storefront"),
    ]
    .iter()
    .map(|(v, t)| (v.to_string(), t.to_string()))
    .collect();
    ensure!(summary == want, "verdicts and team tags: {summary:?}");
    ensure!(
        parsed[5]["record"]["tags"]["keep"] == "me",
        "a tag that was there is kept: {}",
        rust[5]
    );
    Ok(())
}

/// The fenced blocks of `markdown` whose info string is `lang`.
fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line == format!("```{lang}") => current = Some(String::new()),
            None => {}
            Some(_) if line == "```" => out.extend(current.take()),
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    out
}

/// The Python and JavaScript guides of `docs/plugins.md` show the real plugins (the Rust
/// one is checked by the guest SDK's `guide_blocks_are_the_real_files`).
#[test]
fn guide_python_and_js_blocks_are_the_real_files() -> Result<()> {
    let root = repo_root();
    let guide = std::fs::read_to_string(root.join("docs/plugins.md"))?;
    for (lang, file) in [
        ("python", "plugins/python/hello-team/app.py"),
        ("js", "plugins/js/hello-team/app.js"),
    ] {
        let real = std::fs::read_to_string(root.join(file))?;
        ensure!(
            blocks(&guide, lang) == vec![real],
            "docs/plugins.md: its one ```{lang} block must be {file} verbatim"
        );
    }
    Ok(())
}
