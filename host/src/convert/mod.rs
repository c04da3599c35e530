//! CRI status + verbose info -> [`ContainerRecord`].
//!
//! Owns the translation: a tolerant parser for the runtime's verbose info (`verbose`), the
//! service-link env filter (`env`), path cleaning and the reads through the host root
//! (`paths`), and the Kubernetes identity (here). It hands on a record without
//! `upper_dir`/`rootfs_dir` (discovery fills those from its dir cache). It makes no RPC and
//! never fails: what cannot be read is left empty and reported as a problem (field names
//! only, never values).

use std::collections::BTreeMap;

mod env;
mod owner;
mod paths;
mod resources;
mod verbose;

pub use env::env_map;
pub use owner::derive_owner;
pub use paths::{clean_path, find_rootfs, read_hostname};
pub use resources::{ports_from, resources_from, PORTS_ANNOTATION};
pub use verbose::{parse_verbose_info, VerboseInfo};

use crate::liveness::{HostRoot, Liveness};
use crate::record::{ContainerRecord, ContainerState, K8sInfo, Mount, Timestamp};
use crate::runtime::cri::{ContainerStatus, CriState, LinuxResources, SandboxSummary};

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
    /// The pod's IPs (`PodSandboxStatus`), when known.
    pub pod_ips: &'a [String],
    /// The node's name.
    pub node_name: &'a str,
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
    let pod_labels: BTreeMap<String, String> = sandbox
        .map(|sb| {
            sb.labels
                .iter()
                .filter(|(k, _)| !K8S_INNER_LABEL_PREFIXES.iter().any(|p| k.starts_with(p)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let pod_name = or_sandbox(label(POD_NAME_LABEL), |sb| &sb.name);
    let k8s = K8sInfo {
        owner: derive_owner(&pod_name, &pod_labels),
        namespace: or_sandbox(label(POD_NAMESPACE_LABEL), |sb| &sb.namespace),
        pod_name,
        pod_uid: or_sandbox(label(POD_UID_LABEL), |sb| &sb.uid),
        container_name: {
            let n = label(CONTAINER_NAME_LABEL);
            if n.is_empty() {
                s.name.clone()
            } else {
                n
            }
        },
        pod_labels,
        pod_annotations: sandbox
            .map(|sb| {
                sb.annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        is_sandbox: info.is_sandbox,
        pod_ips: src.pod_ips.to_vec(),
        pod_start_time: sandbox.and_then(|sb| Timestamp::from_unix_nanos(sb.created_at)),
        node_name: src.node_name.to_owned(),
    };
    let ports = match ports_from(s.annotations.get(PORTS_ANNOTATION).map(String::as_str)) {
        Ok(ports) => ports,
        Err(problem) => {
            tracing::warn!(
                message = "Container ports annotation unreadable; reporting no ports.",
                container_id = %s.id,
                %problem,
            );
            Vec::new()
        }
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
        resources: resources_from(
            s.resources
                .as_ref()
                .filter(|r| **r != LinuxResources::default())
                .or(info.resources.as_ref()),
        ),
        ports,
        k8s,
        tags: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests;
