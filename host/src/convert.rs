//! CRI status + verbose info -> [`ContainerRecord`].
//!
//! Owns the translation: a tolerant parser for the runtime's verbose info (containerd
//! 1.6+/2.x, the older flat layout, CRI-O), the service-link env filter, path cleaning,
//! the Kubernetes identity, and the hostname read through the host root. It hands on a
//! record without `upper_dir`/`rootfs_dir` (discovery fills those from its caches). It
//! makes no RPC and never fails: what cannot be read is left empty and reported as a
//! problem (field names only, never values).

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::liveness::{HostRoot, Liveness};
use crate::record::{ContainerRecord, ContainerState, K8sInfo, Mount, Timestamp};
use crate::runtime::cri::{ContainerStatus, CriState, SandboxSummary};

/// The log format of every CRI runtime's container logs.
pub const CRI_LOG_FORMAT: &str = "cri";
/// The kubelet's restart-count annotation.
pub const RESTART_COUNT_ANNOTATION: &str = "io.kubernetes.container.restartCount";
const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";
/// Sandbox labels with these prefixes are the kubelet's own, not pod labels.
const K8S_INNER_LABEL_PREFIXES: [&str; 2] = ["io.kubernetes.", "annotation.io.kubernetes."];

/// What the verbose info says, whatever its shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerboseInfo {
    /// Host pid of the container's process (0 once exited).
    pub pid: Option<u32>,
    /// Sandbox id.
    pub sandbox_id: Option<String>,
    /// Snapshotter holding the rootfs.
    pub snapshotter: Option<String>,
    /// Snapshot key (the container id under CRI).
    pub snapshot_key: Option<String>,
    /// `KEY=VALUE` env from `runtimeSpec.process.env`, else from `config.envs`.
    pub env: Option<Vec<String>>,
    /// Mounts from `runtimeSpec.mounts`, raw paths.
    pub mounts: Vec<Mount>,
    /// `runtimeSpec.linux.cgroupsPath`.
    pub cgroup_path: Option<String>,
    /// True when the runtime spec marks this as a sandbox (pause) container.
    pub is_sandbox: bool,
    /// CRI-O's `privileged` flag, when present.
    pub privileged: Option<bool>,
    /// What could not be read, by field name (no values: they may hold secrets).
    pub problems: Vec<String>,
}

/// Parses the verbose info map of `ContainerStatus(verbose)`.
///
/// containerd (1.6+, 2.x) and CRI-O put one JSON object under the `info` key; older
/// containerd put each field under its own key (`pid`, `runtimeSpec`, ...) with a
/// JSON-encoded value. Each field is read on its own, so one bad field spoils only itself.
pub fn parse_verbose_info(info: &HashMap<String, String>) -> VerboseInfo {
    let mut out = VerboseInfo::default();
    let object: serde_json::Map<String, Value> = match info.get("info") {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                out.problems.push("info: not a JSON object".into());
                serde_json::Map::new()
            }
            Err(e) => {
                out.problems.push(format!(
                    "info: invalid JSON at line {} column {}",
                    e.line(),
                    e.column()
                ));
                serde_json::Map::new()
            }
        },
        None => info
            .iter()
            .map(|(k, v)| {
                let value =
                    serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.clone()));
                (k.clone(), value)
            })
            .collect(),
    };
    if info.is_empty() {
        out.problems
            .push("info: empty (runtime gave no verbose info)".into());
        return out;
    }
    out.pid = match object.get("pid") {
        None => None,
        Some(v) => match as_u32(v) {
            Some(pid) => Some(pid),
            None => {
                out.problems.push("pid: not a number".into());
                None
            }
        },
    };
    out.sandbox_id = string_field(&object, &["sandboxID", "sandboxId", "sandbox_id"]);
    out.snapshotter = string_field(&object, &["snapshotter"]);
    out.snapshot_key = string_field(&object, &["snapshotKey", "snapshot_key"]);
    out.privileged = object.get("privileged").and_then(Value::as_bool);

    let spec = match object.get("runtimeSpec") {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(v) => Some(v),
            Err(_) => {
                out.problems.push("runtimeSpec: invalid JSON".into());
                None
            }
        },
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(Value::Null) | None => None,
        Some(_) => {
            out.problems.push("runtimeSpec: not an object".into());
            None
        }
    };
    if let Some(spec) = &spec {
        read_spec(spec, &mut out);
    }
    if out.env.is_none() {
        out.env = read_config_envs(object.get("config"), &mut out.problems);
    }
    out
}

fn read_spec(spec: &Value, out: &mut VerboseInfo) {
    match spec.pointer("/process/env") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            out.env = Some(
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            );
        }
        Some(_) => out
            .problems
            .push("runtimeSpec.process.env: not a list".into()),
    }
    match spec.get("mounts") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for m in items {
                let field = |k: &str| {
                    m.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                out.mounts.push(Mount {
                    source: field("source"),
                    destination: field("destination"),
                    kind: field("type"),
                });
            }
        }
        Some(_) => out.problems.push("runtimeSpec.mounts: not a list".into()),
    }
    out.cgroup_path = spec
        .pointer("/linux/cgroupsPath")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let annotations = spec.get("annotations");
    let kind = |key: &str| {
        annotations
            .and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    out.is_sandbox = kind("io.kubernetes.cri.container-type") == "sandbox"
        || kind("io.kubernetes.cri-o.ContainerType") == "sandbox";
}

/// `config.envs` (`[{key, value}]`), the fallback when the spec has no env.
fn read_config_envs(config: Option<&Value>, problems: &mut Vec<String>) -> Option<Vec<String>> {
    match config?.get("envs")? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|kv| {
                    let key = kv.get("key")?.as_str()?;
                    let value = kv.get("value").and_then(Value::as_str).unwrap_or_default();
                    Some(format!("{key}={value}"))
                })
                .collect(),
        ),
        Value::Null => None,
        _ => {
            problems.push("config.envs: not a list".into());
            None
        }
    }
}

fn as_u32(v: &Value) -> Option<u32> {
    match v {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn string_field(object: &serde_json::Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| object.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// True for a variable that Kubernetes service links inject, by its exact shape:
/// `KUBERNETES_*`; `X_SERVICE_HOST`, `X_SERVICE_PORT`, `X_SERVICE_PORT_*`; `X_PORT` whose
/// value is a `tcp://`, `udp://` or `sctp://` URL; `X_PORT_<n>_<PROTO>` and its `_PROTO`,
/// `_PORT` and `_ADDR` forms. Look-alikes such as `APP_PORT=8080` are kept.
pub fn is_service_link_env(name: &str, value: &str) -> bool {
    if name.starts_with("KUBERNETES_") {
        return true;
    }
    for suffix in ["_SERVICE_HOST", "_SERVICE_PORT"] {
        if let Some(prefix) = name.strip_suffix(suffix) {
            if is_env_service_name(prefix) {
                return true;
            }
        }
    }
    for (at, _) in name.match_indices("_SERVICE_PORT_") {
        let (prefix, port_name) = (&name[..at], &name[at + "_SERVICE_PORT_".len()..]);
        if is_env_service_name(prefix) && is_env_service_name(port_name) {
            return true;
        }
    }
    if let Some(prefix) = name.strip_suffix("_PORT") {
        if is_env_service_name(prefix)
            && ["tcp://", "udp://", "sctp://"]
                .iter()
                .any(|s| value.starts_with(s))
        {
            return true;
        }
    }
    for (at, _) in name.match_indices("_PORT_") {
        let (prefix, rest) = (&name[..at], &name[at + "_PORT_".len()..]);
        if is_env_service_name(prefix) && is_port_proto_tail(rest) {
            return true;
        }
    }
    false
}

/// `<n>_<PROTO>` optionally followed by `_PROTO`, `_PORT` or `_ADDR`.
fn is_port_proto_tail(rest: &str) -> bool {
    let Some((number, tail)) = rest.split_once('_') else {
        return false;
    };
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let (proto, form) = match tail.split_once('_') {
        Some((p, f)) => (p, Some(f)),
        None => (tail, None),
    };
    matches!(proto, "TCP" | "UDP" | "SCTP")
        && matches!(form, None | Some("PROTO" | "PORT" | "ADDR"))
}

/// A service name as the kubelet writes it into env names: upper case, digits, `_`.
fn is_env_service_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `KEY=VALUE` strings -> map, minus service-link variables. A later duplicate wins.
pub fn env_map<'a>(entries: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    entries
        .into_iter()
        .filter_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (!k.is_empty() && !is_service_link_env(k, v)).then(|| (k.to_owned(), v.to_owned()))
        })
        .collect()
}

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

/// Everything [`build_record`] reads.
#[derive(Debug, Clone, Copy)]
pub struct RecordSource<'a> {
    /// The container's CRI status (with its verbose info map).
    pub status: &'a ContainerStatus,
    /// The parsed verbose info.
    pub info: &'a VerboseInfo,
    /// The container's sandbox from `ListPodSandbox`, when found.
    pub sandbox: Option<&'a SandboxSummary>,
    /// The sandbox id from `ListContainers` (used when the info has none).
    pub sandbox_id: &'a str,
    /// Runtime name from CRI `Version`.
    pub runtime_name: &'a str,
    /// Liveness of the info's pid.
    pub liveness: Liveness,
}

/// Builds the record. `upper_dir` and `rootfs_dir` are left `None` for the caller.
pub fn build_record(src: RecordSource<'_>, root: &HostRoot) -> ContainerRecord {
    let s = src.status;
    let info = src.info;
    let cri_state = s.state();
    let state = match cri_state {
        CriState::Running if src.liveness.is_alive() => ContainerState::Running,
        CriState::Running | CriState::Exited => ContainerState::Exited,
        CriState::Created => ContainerState::Created,
        CriState::Unknown => ContainerState::Unknown,
    };
    let image = if s.image.is_empty() {
        s.image_ref.clone()
    } else {
        s.image.clone()
    };
    let mounts: Vec<Mount> = info
        .mounts
        .iter()
        .map(|m| Mount {
            source: clean_path(&m.source),
            destination: clean_path(&m.destination),
            kind: m.kind.clone(),
        })
        .collect();
    let source_of = |dest: &str| {
        mounts
            .iter()
            .find(|m| m.destination == dest)
            .map(|m| m.source.clone())
            .filter(|s| !s.is_empty())
    };
    let hosts_path = source_of("/etc/hosts");
    let hostname_path = source_of("/etc/hostname");
    let hostname = hostname_path
        .as_deref()
        .and_then(|p| read_hostname(root, p));
    let label = |key: &str| s.labels.get(key).cloned().unwrap_or_default();
    let sandbox = src.sandbox;
    let or_sandbox = |value: String, f: fn(&SandboxSummary) -> &String| {
        if value.is_empty() {
            sandbox.map(|sb| f(sb).clone()).unwrap_or_default()
        } else {
            value
        }
    };
    let k8s = K8sInfo {
        namespace: or_sandbox(label(POD_NAMESPACE_LABEL), |sb| &sb.namespace),
        pod_name: or_sandbox(label(POD_NAME_LABEL), |sb| &sb.name),
        pod_uid: or_sandbox(label(POD_UID_LABEL), |sb| &sb.uid),
        container_name: {
            let n = label(CONTAINER_NAME_LABEL);
            if n.is_empty() {
                s.name.clone()
            } else {
                n
            }
        },
        pod_labels: sandbox
            .map(|sb| {
                sb.labels
                    .iter()
                    .filter(|(k, _)| !K8S_INNER_LABEL_PREFIXES.iter().any(|p| k.starts_with(p)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        pod_annotations: sandbox
            .map(|sb| {
                sb.annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        is_sandbox: info.is_sandbox,
    };
    let exited = cri_state == CriState::Exited;
    ContainerRecord {
        id: s.id.clone(),
        name: s.name.clone(),
        state,
        pid: if state == ContainerState::Running {
            info.pid.unwrap_or(0)
        } else {
            0
        },
        created: Timestamp::from_unix_nanos(s.created_at),
        started: Timestamp::from_unix_nanos(s.started_at),
        finished: Timestamp::from_unix_nanos(s.finished_at),
        exit_code: exited.then_some(s.exit_code),
        reason: Some(s.reason.clone()).filter(|r| !r.is_empty()),
        restart_count: s
            .annotations
            .get(RESTART_COUNT_ANNOTATION)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(s.attempt),
        sandbox_id: info
            .sandbox_id
            .clone()
            .unwrap_or_else(|| src.sandbox_id.to_owned()),
        runtime_name: src.runtime_name.to_owned(),
        snapshotter: info.snapshotter.clone(),
        image,
        image_digest: Some(s.image_ref.clone()).filter(|r| !r.is_empty()),
        log_path: s.log_path.clone(),
        log_format: CRI_LOG_FORMAT.to_owned(),
        cgroup_path: info.cgroup_path.clone(),
        labels: s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        annotations: s
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        env: info
            .env
            .as_ref()
            .map(|e| env_map(e.iter().map(String::as_str)))
            .unwrap_or_default(),
        mounts,
        hosts_path,
        hostname_path,
        hostname,
        upper_dir: None,
        rootfs_dir: None,
        k8s,
        tags: BTreeMap::new(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Loads a recorded `ContainerStatusResponse` (crilab JSON form) from tests/fixtures.
    fn fixture(name: &str) -> Result<ContainerStatus, Box<dyn std::error::Error>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures")
            .join(name);
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let st = &v["status"];
        let text = |p: &str| {
            st.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let nanos = |p: &str| text(p).parse::<i64>().unwrap_or(0);
        let map = |p: &str| -> HashMap<String, String> {
            st.pointer(p)
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default()
        };
        let state = match text("/state").as_str() {
            "CONTAINER_RUNNING" => CriState::Running,
            "CONTAINER_EXITED" => CriState::Exited,
            "CONTAINER_UNKNOWN" => CriState::Unknown,
            _ => CriState::Created,
        };
        let info: HashMap<String, String> = serde_json::from_value(v["info"].clone())?;
        Ok(ContainerStatus {
            id: text("/id"),
            name: text("/metadata/name"),
            attempt: st
                .pointer("/metadata/attempt")
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32,
            state: Some(state),
            created_at: nanos("/created_at"),
            started_at: nanos("/started_at"),
            finished_at: nanos("/finished_at"),
            exit_code: st
                .pointer("/exit_code")
                .and_then(Value::as_i64)
                .unwrap_or(0) as i32,
            image: text("/image/image"),
            image_ref: text("/image_ref"),
            reason: text("/reason"),
            labels: map("/labels"),
            annotations: map("/annotations"),
            log_path: text("/log_path"),
            info,
        })
    }

    fn sandbox() -> SandboxSummary {
        SandboxSummary {
            id: "sb".into(),
            name: "demo-pod".into(),
            namespace: "demo-ns".into(),
            uid: "uid-1".into(),
            labels: [
                ("app", "demo"),
                ("io.kubernetes.pod.name", "demo-pod"),
                ("annotation.io.kubernetes.x", "y"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            annotations: [("example.com/owner".to_owned(), "crilab".to_owned())].into(),
            ..Default::default()
        }
    }

    fn record(
        status: &ContainerStatus,
        liveness: Liveness,
        root: &HostRoot,
    ) -> (VerboseInfo, ContainerRecord) {
        let info = parse_verbose_info(&status.info);
        let sb = sandbox();
        let rec = build_record(
            RecordSource {
                status,
                info: &info,
                sandbox: Some(&sb),
                sandbox_id: "from-list",
                runtime_name: "containerd",
                liveness,
            },
            root,
        );
        (info, rec)
    }

    #[test]
    fn containerd_16_running_fixture_gives_every_field() -> TestResult {
        let status = fixture("containerd-1.6-running.json")?;
        let (info, rec) = record(&status, Liveness::Alive, &HostRoot::default());
        assert!(info.problems.is_empty(), "{:?}", info.problems);
        assert_eq!(rec.state, ContainerState::Running);
        assert_eq!(rec.pid, 1406);
        assert_eq!(rec.name, "web");
        assert_eq!(
            rec.sandbox_id,
            "f82ba77ed0428e8735fe9771a08a69d25d71fedbdf400b9c4bf34547d5b202e9"
        );
        assert_eq!(rec.snapshotter.as_deref(), Some("overlayfs"));
        assert_eq!(rec.image, "localhost/crilab/busybox:1.0");
        assert_eq!(
            rec.image_digest.as_deref(),
            Some("sha256:d20a5b613b00980ebdd580451c6167869dde2308304ad07d2a23e538e10010ea")
        );
        assert_eq!(rec.log_format, "cri");
        assert_eq!(rec.restart_count, 0);
        assert_eq!(rec.exit_code, None);
        assert!(rec
            .cgroup_path
            .as_deref()
            .is_some_and(|p| p.starts_with("/crilab/podf11bc46f")));
        assert_eq!(rec.env.get("DEMO_MODE").map(String::as_str), Some("1"));
        assert_eq!(rec.env.get("HOSTNAME").map(String::as_str), Some("vm"));
        assert!(rec
            .mounts
            .iter()
            .any(|m| m.destination == "/data" && m.source == "/tmp/ctrd-lab/hostdata"));
        assert!(rec
            .hosts_path
            .as_deref()
            .is_some_and(|p| p.ends_with("/hosts")));
        assert!(rec
            .hostname_path
            .as_deref()
            .is_some_and(|p| p.ends_with("/hostname")));
        assert_eq!(rec.k8s.namespace, "demo-ns");
        assert_eq!(rec.k8s.pod_name, "demo-pod");
        assert_eq!(rec.k8s.pod_uid, "f11bc46f-f4a3-4d78-99b8-1bb4572b0576");
        assert_eq!(rec.k8s.container_name, "web");
        assert_eq!(
            rec.k8s.pod_labels,
            BTreeMap::from([("app".to_owned(), "demo".to_owned())])
        );
        assert_eq!(
            rec.k8s
                .pod_annotations
                .get("example.com/owner")
                .map(String::as_str),
            Some("crilab")
        );
        assert!(!rec.k8s.is_sandbox);
        assert!(rec.started.is_some() && rec.created.is_some() && rec.finished.is_none());
        Ok(())
    }

    #[test]
    fn running_by_cri_but_dead_pid_is_exited_without_pid() -> TestResult {
        let status = fixture("containerd-1.6-running.json")?;
        let (_, rec) = record(&status, Liveness::Reused, &HostRoot::default());
        assert_eq!(rec.state, ContainerState::Exited);
        assert_eq!(rec.pid, 0);
        Ok(())
    }

    #[test]
    fn self_exited_and_killed_fixtures_carry_exit_code_and_reason() -> TestResult {
        let (_, exited) = record(
            &fixture("containerd-1.6-self-exited.json")?,
            Liveness::Gone,
            &HostRoot::default(),
        );
        assert_eq!(exited.state, ContainerState::Exited);
        assert_eq!(exited.exit_code, Some(3));
        assert_eq!(exited.reason.as_deref(), Some("Error"));
        assert!(exited.finished.is_some());
        let (_, killed) = record(
            &fixture("containerd-1.6-killed.json")?,
            Liveness::Gone,
            &HostRoot::default(),
        );
        assert_eq!(killed.exit_code, Some(137));
        Ok(())
    }

    #[test]
    fn flat_layout_is_read_key_by_key() -> TestResult {
        let status = fixture("containerd-flat-running.json")?;
        let (info, rec) = record(&status, Liveness::Alive, &HostRoot::default());
        assert!(info.problems.is_empty(), "{:?}", info.problems);
        assert_eq!(rec.pid, 4321);
        assert_eq!(rec.sandbox_id, "s1");
        assert_eq!(
            rec.image, "docker.io/library/app@sha256:abc",
            "image falls back to imageRef"
        );
        assert_eq!(rec.restart_count, 2);
        assert_eq!(
            rec.hosts_path.as_deref(),
            Some("/var/lib/kubelet/pods/u1/etc-hosts")
        );
        assert_eq!(
            rec.hostname_path.as_deref(),
            Some("/var/lib/containerd/sandboxes/s1/hostname")
        );
        let keys: Vec<&str> = rec.env.keys().map(String::as_str).collect();
        assert_eq!(keys, ["APP_PORT", "MODE", "PATH"]);
        assert_eq!(
            rec.cgroup_path.as_deref(),
            Some("kubepods-besteffort-podu1.slice:cri-containerd:flat1")
        );
        Ok(())
    }

    #[test]
    fn crio_shape_is_read() -> TestResult {
        let status = fixture("crio-running.json")?;
        let (info, rec) = record(&status, Liveness::Alive, &HostRoot::default());
        assert!(info.problems.is_empty(), "{:?}", info.problems);
        assert_eq!(info.privileged, Some(false));
        assert_eq!(rec.pid, 999);
        assert_eq!(rec.sandbox_id, "s2");
        assert_eq!(rec.snapshotter, None);
        assert!(!rec.env.contains_key("WEB_SERVICE_PORT_HTTP"));
        assert_eq!(
            rec.env.get("HOSTNAME").map(String::as_str),
            Some("crio-host")
        );
        assert_eq!(rec.k8s.namespace, "ns2");
        Ok(())
    }

    #[test]
    fn malformed_info_keeps_status_fields_and_reports_a_problem() -> TestResult {
        let status = fixture("malformed-info.json")?;
        let (info, rec) = record(&status, Liveness::Gone, &HostRoot::default());
        assert_eq!(info.problems.len(), 1, "{:?}", info.problems);
        assert!(info.problems[0].starts_with("info: invalid JSON"));
        assert_eq!(rec.id, "bad1");
        assert_eq!(rec.name, "broken");
        assert_eq!(rec.image, "busybox");
        assert_eq!(rec.k8s.namespace, "ns3");
        assert_eq!(rec.sandbox_id, "from-list");
        assert!(rec.env.is_empty());
        Ok(())
    }

    #[test]
    fn wrongly_typed_fields_spoil_only_themselves() {
        let info = HashMap::from([(
            "info".to_owned(),
            r#"{"pid":"x","sandboxID":"s","runtimeSpec":{"process":{"env":5},"mounts":"no"},"config":{"envs":[{"key":"A","value":"1"}]}}"#
                .to_owned(),
        )]);
        let parsed = parse_verbose_info(&info);
        assert_eq!(parsed.sandbox_id.as_deref(), Some("s"));
        assert_eq!(parsed.pid, None);
        assert_eq!(
            parsed.env,
            Some(vec!["A=1".to_owned()]),
            "config.envs is the fallback"
        );
        assert_eq!(
            parsed.problems,
            [
                "pid: not a number",
                "runtimeSpec.process.env: not a list",
                "runtimeSpec.mounts: not a list"
            ]
        );
    }

    #[test]
    fn service_link_env_is_dropped_by_exact_shape() {
        let dropped = [
            ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
            ("KUBERNETES_PORT_443_TCP", "tcp://10.0.0.1:443"),
            ("REDIS_SERVICE_HOST", "10.0.0.7"),
            ("REDIS_SERVICE_PORT", "6379"),
            ("REDIS_SERVICE_PORT_CLIENT", "6379"),
            ("REDIS_PORT", "tcp://10.0.0.7:6379"),
            ("DNS_PORT", "udp://10.0.0.10:53"),
            ("SIG_PORT", "sctp://10.0.0.9:9"),
            ("REDIS_PORT_6379_TCP", "tcp://10.0.0.7:6379"),
            ("REDIS_PORT_6379_TCP_PROTO", "tcp"),
            ("REDIS_PORT_6379_TCP_PORT", "6379"),
            ("REDIS_PORT_6379_TCP_ADDR", "10.0.0.7"),
            ("MY_APP_PORT_53_UDP", "udp://10.0.0.3:53"),
        ];
        for (k, v) in dropped {
            assert!(is_service_link_env(k, v), "{k} should be dropped");
        }
        let kept = [
            ("APP_PORT", "8080"),
            ("HTTP_PORT", "http://x"),
            ("REDIS_PORT_FOO", "1"),
            ("REDIS_PORT_6379_HTTP", "x"),
            ("REDIS_PORT_6379_TCP_HOST", "x"),
            ("_SERVICE_HOST", "x"),
            ("redis_SERVICE_HOST", "x"),
            ("SERVICE_HOST", "x"),
            ("KUBERNETESX", "1"),
            ("PATH", "/bin"),
        ];
        for (k, v) in kept {
            assert!(!is_service_link_env(k, v), "{k} should be kept");
        }
    }

    #[test]
    fn paths_are_cleaned_like_go() {
        assert_eq!(clean_path("/a//b/./c/"), "/a/b/c");
        assert_eq!(clean_path("/a/../../b"), "/b");
        assert_eq!(clean_path("a/../.."), "..");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path(""), "");
    }

    #[test]
    fn hostname_is_read_through_the_host_root_and_trimmed() -> TestResult {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("var/h"))?;
        std::fs::write(dir.path().join("var/h/hostname"), "node-7\n")?;
        let root = HostRoot::new(dir.path());
        assert_eq!(
            read_hostname(&root, "/var/h/hostname").as_deref(),
            Some("node-7")
        );
        assert_eq!(read_hostname(&root, "/var/h/missing"), None);
        Ok(())
    }

    #[test]
    fn rootfs_is_the_first_existing_candidate_as_a_host_path() -> TestResult {
        let dir = tempfile::tempdir()?;
        let root = HostRoot::new(dir.path());
        std::fs::create_dir_all(
            dir.path()
                .join("run/containerd/io.containerd.runtime.v2.task/k8s.io/c1/rootfs"),
        )?;
        std::fs::create_dir_all(dir.path().join("custom/runc/c2/root"))?;
        let dirs = [PathBuf::from("/custom"), PathBuf::from("/run/containerd")];
        assert_eq!(
            find_rootfs(&root, &dirs, "c1").as_deref(),
            Some("/run/containerd/io.containerd.runtime.v2.task/k8s.io/c1/rootfs")
        );
        assert_eq!(
            find_rootfs(&root, &dirs, "c2").as_deref(),
            Some("/custom/runc/c2/root")
        );
        assert_eq!(find_rootfs(&root, &dirs, "c3"), None);
        assert_eq!(find_rootfs(&root, &dirs, "../c1"), None);
        Ok(())
    }

    #[test]
    fn docs_record_md_names_every_json_field() -> TestResult {
        let doc = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/record.md"),
        )?;
        let mut record = ContainerRecord::default();
        record.mounts.push(Mount::default());
        let json = serde_json::to_value(&record)?;
        let mut keys: Vec<String> = Vec::new();
        for (key, value) in json.as_object().into_iter().flatten() {
            keys.push(key.clone());
            let nested = match value {
                Value::Array(items) => items.first(),
                v @ Value::Object(_) if key != "labels" => Some(v),
                _ => None,
            };
            if let Some(Value::Object(inner)) = nested {
                keys.extend(inner.keys().cloned());
            }
        }
        let missing: Vec<&String> = keys
            .iter()
            .filter(|k| !doc.contains(&format!("| `{k}` |")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/record.md does not document {missing:?}"
        );
        Ok(())
    }
}
