//! Paths the record names, cleaned lexically and read through the host root: the hostname
//! file and the bundle's rootfs.

use std::path::{Component, Path, PathBuf};

use crate::liveness::HostRoot;

/// Lexical path cleaning, as Go's `filepath.Clean`: no `.`, resolved `..`, no double or
/// trailing slashes. An empty path stays empty.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::ParentDir => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Reads a hostname file through the host root, trimmed; `None` when unreadable or empty.
pub fn read_hostname(root: &HostRoot, path: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.resolve(path)).ok()?;
    let name = text
        .trim_matches(|c| c == '\t' || c == ' ' || c == '\n')
        .to_owned();
    (!name.is_empty()).then_some(name)
}

/// Finds the container's rootfs: the first existing directory of
/// `{state_dirs} / {io.containerd.runtime.v2.task, io.containerd.runtime.v1.linux, runc} /
/// {k8s.io, ""} / <id> / {rootfs, root}`, checked through the host root. Returns the host
/// path (without the host-root prefix).
pub fn find_rootfs(root: &HostRoot, state_dirs: &[PathBuf], id: &str) -> Option<String> {
    const RUNTIMES: [&str; 3] = [
        "io.containerd.runtime.v2.task",
        "io.containerd.runtime.v1.linux",
        "runc",
    ];
    const NAMESPACES: [&str; 2] = ["k8s.io", ""];
    const LEAVES: [&str; 2] = ["rootfs", "root"];
    if id.is_empty() || id.contains('/') || id.contains("..") {
        return None;
    }
    for state in state_dirs {
        for runtime in RUNTIMES {
            for ns in NAMESPACES {
                for leaf in LEAVES {
                    let mut dir = state.join(runtime);
                    if !ns.is_empty() {
                        dir.push(ns);
                    }
                    dir.push(id);
                    dir.push(leaf);
                    if root.resolve(&dir).is_dir() {
                        return Some(dir.to_string_lossy().into_owned());
                    }
                }
            }
        }
    }
    None
}
