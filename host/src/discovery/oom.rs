//! The kernel's count of OOM kills in a container's memory cgroup, read when a container
//! exits before CRI has caught up, so that its `removed` record reads `OOMKilled` even when
//! containerd's `/tasks/oom` event reaches Gannet after the `/tasks/exit` (the shim
//! publishes the two from different goroutines).
//!
//! The kernel counts the kill (`oom_kill` in `memory.events` on cgroup v2, in
//! `memory.oom_control` on v1) before it sends the victim its SIGKILL, so the count is
//! there by the time the exit is. The cgroup itself lives until CRI deletes the task,
//! 25–100 ms after the exit; a cgroup already gone reads as unknown.

use std::path::PathBuf;

use crate::liveness::HostRoot;

/// How many processes of the container with runtime-spec `cgroupsPath` `cgroup_path` the
/// kernel OOM-killed, or `None` when the cgroup cannot be read (gone, not mounted under the
/// host root, or a path this does not understand).
pub(super) fn oom_kill_count(root: &HostRoot, cgroup_path: &str) -> Option<u64> {
    let relative = cgroup_dir(cgroup_path)?;
    let base = root.resolve("/sys/fs/cgroup");
    let file = if base.join("cgroup.controllers").exists() {
        base.join(&relative).join("memory.events")
    } else {
        base.join("memory")
            .join(&relative)
            .join("memory.oom_control")
    };
    let text = std::fs::read_to_string(file).ok()?;
    parse_oom_kill(&text)
}

/// The `oom_kill N` line of `memory.events` or `memory.oom_control`.
fn parse_oom_kill(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

/// The cgroup directory, relative to the hierarchy's root, of a runtime-spec
/// `cgroupsPath`: a path (`/kubepods/burstable/pod<uid>/<id>`, the cgroupfs driver) or
/// systemd's `slice:prefix:name` (`kubepods-burstable-pod<uid>.slice:cri-containerd:<id>`,
/// which runc places at `kubepods.slice/kubepods-burstable.slice/…/cri-containerd-<id>.scope`).
fn cgroup_dir(cgroup_path: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = cgroup_path.split(':').collect();
    let dir = match parts.as_slice() {
        [path] => PathBuf::from(path.trim_start_matches('/')),
        [slice, prefix, name] => {
            let mut dir = expand_slice(slice)?;
            dir.push(format!("{prefix}-{name}.scope"));
            dir
        }
        _ => return None,
    };
    let safe = dir
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    (safe && !dir.as_os_str().is_empty()).then_some(dir)
}

/// systemd's nesting of a slice name: `a-b-c.slice` is `a.slice/a-b.slice/a-b-c.slice`
/// (runc's `ExpandSlice`); the root slice `-.slice` and an empty one are the root.
fn expand_slice(slice: &str) -> Option<PathBuf> {
    if slice.is_empty() || slice == "-.slice" {
        return Some(PathBuf::new());
    }
    let stem = slice.strip_suffix(".slice")?;
    if stem.contains('/') || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return None;
    }
    let mut dir = PathBuf::new();
    let mut prefix = String::new();
    for (i, part) in stem.split('-').enumerate() {
        if i > 0 {
            prefix.push('-');
        }
        prefix.push_str(part);
        dir.push(format!("{prefix}.slice"));
    }
    Some(dir)
}

/// Test set-up: a cgroup v1 memory cgroup `cgroup` (a cgroupfs path) under the host root
/// `host`, whose `memory.oom_control` holds `oom_control`.
#[cfg(test)]
pub(super) fn write_v1_memory_cgroup(
    host: &std::path::Path,
    cgroup: &str,
    oom_control: &str,
) -> std::io::Result<()> {
    let dir = host
        .join("sys/fs/cgroup/memory")
        .join(cgroup.trim_start_matches('/'));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("memory.oom_control"), oom_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroupfs_path_is_the_directory() {
        assert_eq!(
            cgroup_dir("/kubepods/burstable/pod1/abc"),
            Some(PathBuf::from("kubepods/burstable/pod1/abc"))
        );
    }

    #[test]
    fn a_systemd_path_expands_its_slice_as_runc_does() {
        assert_eq!(
            cgroup_dir("kubepods-burstable-pod1.slice:cri-containerd:abc"),
            Some(PathBuf::from(
                "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope"
            ))
        );
        assert_eq!(
            cgroup_dir(":cri-containerd:abc"),
            Some(PathBuf::from("cri-containerd-abc.scope"))
        );
    }

    #[test]
    fn a_path_that_could_leave_the_hierarchy_or_is_malformed_is_refused() {
        assert_eq!(cgroup_dir("/kubepods/../../etc"), None);
        assert_eq!(cgroup_dir(""), None);
        assert_eq!(cgroup_dir("/"), None);
        assert_eq!(cgroup_dir("a:b"), None);
        assert_eq!(cgroup_dir("bad--name.slice:p:n"), None);
        assert_eq!(cgroup_dir("noslice:p:n"), None);
    }

    #[test]
    fn the_oom_kill_line_is_read_from_either_file() {
        let v2 = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(parse_oom_kill(v2), Some(1));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n";
        assert_eq!(parse_oom_kill(v1), Some(0));
        assert_eq!(parse_oom_kill("oom_kill_disable 0\n"), None);
        assert_eq!(parse_oom_kill("oom_kill x\n"), None);
    }

    #[test]
    fn a_cgroup_under_the_host_root_is_read_and_a_missing_one_is_unknown() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        write_v1_memory_cgroup(dir.path(), "/pods/c1", "under_oom 0\noom_kill 2\n")?;
        let root = HostRoot::new(dir.path());
        assert_eq!(oom_kill_count(&root, "/pods/c1"), Some(2));
        assert_eq!(oom_kill_count(&root, "/pods/gone"), None);
        // cgroup v2: the unified hierarchy has cgroup.controllers at its root.
        let v2 = tempfile::tempdir()?;
        let cg = v2.path().join("sys/fs/cgroup/pods/c1");
        std::fs::create_dir_all(&cg)?;
        std::fs::write(
            v2.path().join("sys/fs/cgroup/cgroup.controllers"),
            "memory\n",
        )?;
        std::fs::write(cg.join("memory.events"), "oom 1\noom_kill 1\n")?;
        assert_eq!(
            oom_kill_count(&HostRoot::new(v2.path()), "/pods/c1"),
            Some(1)
        );
        Ok(())
    }
}
