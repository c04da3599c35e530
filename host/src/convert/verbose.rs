//! The runtime's verbose info, read whatever its shape: containerd 1.6+/2.x, the older
//! flat layout, CRI-O. What cannot be read is left empty and named as a problem (field
//! names only, never values).

use std::collections::HashMap;

use serde_json::Value;

use crate::record::Mount;
use crate::runtime::cri::LinuxResources;

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
    /// `runtimeSpec.linux.resources` (CPU and memory only).
    pub resources: Option<LinuxResources>,
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
    let mut object: serde_json::Map<String, Value> = match info.get("info") {
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

    // Taken out, not copied: the spec is most of the info.
    let spec = match object.remove("runtimeSpec") {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(v) => Some(v),
            Err(_) => {
                out.problems.push("runtimeSpec: invalid JSON".into());
                None
            }
        },
        Some(v @ Value::Object(_)) => Some(v),
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
    out.resources = spec.pointer("/linux/resources").map(|r| {
        let int = |pointer: &str| r.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
        LinuxResources {
            cpu_period: int("/cpu/period"),
            cpu_quota: int("/cpu/quota"),
            cpu_shares: int("/cpu/shares"),
            memory_limit_bytes: int("/memory/limit"),
            unified: r
                .get("unified")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
        }
    });
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
