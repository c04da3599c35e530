//! The author guide `docs/plugins.md` shows real files: its Rust, sidecar and JSON-lines
//! blocks must be `plugins/rust/hello-team/{src/lib.rs, hello-team.toml, sample.jsonl}`
//! verbatim (the plugin itself is built and run through the engine by the e2e suite).

use std::path::{Path, PathBuf};

fn repo_file(relative: &str) -> std::io::Result<String> {
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::fs::read_to_string(root.join(relative))
}

/// The fenced blocks of `markdown` whose info string is `lang`.
fn blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line == format!("```{lang}") => current = Some(String::new()),
            None => {}
            Some(_) if line == "```" => {
                out.extend(current.take());
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    out
}

#[test]
fn guide_blocks_are_the_real_files() -> std::io::Result<()> {
    let guide = repo_file("docs/plugins.md")?;
    let rust = blocks(&guide, "rust");
    assert_eq!(rust.len(), 1, "the guide has one Rust block");
    assert_eq!(rust[0], repo_file("plugins/rust/hello-team/src/lib.rs")?);
    let toml = blocks(&guide, "toml");
    let sidecar = repo_file("plugins/rust/hello-team/hello-team.toml")?;
    assert!(
        toml.contains(&sidecar),
        "the guide shows hello-team.toml verbatim"
    );
    let json = blocks(&guide, "json");
    assert_eq!(
        json,
        vec![repo_file("plugins/rust/hello-team/sample.jsonl")?]
    );
    Ok(())
}
