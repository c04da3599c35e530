//! The DaemonSet of `deploy/daemonset.yaml`, run on one lab node the way a kubelet runs it.
//!
//! [`DaemonSet::read`] reads the manifest strictly: the pod template is deserialized into
//! types that know every field this translation carries out, with unknown fields refused,
//! so a field added to the manifest and not translated here fails the test instead of being
//! dropped. A few fields concern the API server or the scheduler, not a node's runtime
//! (`tolerations`, `priorityClassName`, `serviceAccountName`): they are read into their
//! own fields of [`K8sPodSpec`], so the schema stays strict, and not translated.
//!
//! [`DaemonSet::plan`] turns the template into CRI requests for a [`Node`]: host paths
//! mapped to the lab's stand-in directories, downward-API env values supplied by the test,
//! emptyDir and ConfigMap volumes materialized in a scratch directory (a ConfigMap `subPath`
//! is a file mount, as the kubelet does it), the security context as CRI's (capabilities,
//! read-only root, user, no_new_privs, the kubelet's masked and read-only /proc paths),
//! resources as cgroup settings. [`CriDriver::run_plan`](crate::CriDriver) runs the init
//! containers to completion, then starts the containers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use k8s_cri::v1::{
    Capability, ContainerConfig, ContainerMetadata, ContainerState, ImageSpec, Int64Value,
    KeyValue, LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, MountPropagation, NamespaceMode,
    NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
};
use serde::Deserialize;

use crate::cri::{CriContainer, CriDriver, Pod};

/// The paths the kubelet masks in a container's own /proc and /sys (`procMount: Default`).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
/// The paths the kubelet makes read-only in a container's own /proc.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `deploy/daemonset.yaml`: the DaemonSet's pod template and the ConfigMaps beside it.
#[derive(Debug, Clone)]
pub struct DaemonSet {
    /// The DaemonSet's namespace.
    pub namespace: String,
    /// `spec.template`.
    pub template: PodTemplate,
    /// Every ConfigMap of the file: name → key → text.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
}

/// `spec.template` of the DaemonSet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodTemplate {
    /// Its metadata (labels only).
    pub metadata: TemplateMetadata,
    /// The pod spec.
    pub spec: K8sPodSpec,
}

/// `spec.template.metadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateMetadata {
    /// Pod labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Pod annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The pod spec fields the manifest may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct K8sPodSpec {
    /// Scheduler-only: not translated.
    pub service_account_name: Option<String>,
    /// Must be false: a token volume is not translated.
    pub automount_service_account_token: Option<bool>,
    /// Scheduler-only.
    pub priority_class_name: Option<String>,
    /// How long a stop waits before SIGKILL (the containers' grace-period annotation).
    pub termination_grace_period_seconds: Option<i64>,
    /// Scheduler-only.
    #[serde(default)]
    pub tolerations: Vec<serde_json::Value>,
    /// The host's network namespace instead of the pod's own.
    #[serde(default)]
    pub host_network: bool,
    /// The host's pid namespace.
    #[serde(rename = "hostPID", default)]
    pub host_pid: bool,
    /// Run to completion, in order, before the containers start.
    #[serde(default)]
    pub init_containers: Vec<K8sContainer>,
    /// The containers.
    pub containers: Vec<K8sContainer>,
    /// The volumes.
    #[serde(default)]
    pub volumes: Vec<Volume>,
}

/// A container of the pod spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct K8sContainer {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Replaces the image's entrypoint.
    #[serde(default)]
    pub command: Vec<String>,
    /// Replaces the image's cmd.
    #[serde(default)]
    pub args: Vec<String>,
    /// Env vars.
    #[serde(default)]
    pub env: Vec<EnvVar>,
    /// Declared ports (informational for a pod network; probes name them).
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
    /// `httpGet` liveness probe.
    pub liveness_probe: Option<Probe>,
    /// `httpGet` readiness probe.
    pub readiness_probe: Option<Probe>,
    /// Requests and limits.
    pub resources: Option<Resources>,
    /// The security context.
    pub security_context: Option<SecurityContext>,
    /// Mounts.
    #[serde(default)]
    pub volume_mounts: Vec<VolumeMount>,
}

/// An env var: a value, or a downward-API field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Literal value.
    pub value: Option<String>,
    /// Where the value comes from.
    pub value_from: Option<EnvVarSource>,
}

/// `valueFrom`: only `fieldRef` is translated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvVarSource {
    /// A pod field.
    pub field_ref: FieldRef,
}

/// `fieldRef`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldRef {
    /// e.g. `spec.nodeName`.
    pub field_path: String,
}

/// A declared container port.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerPort {
    /// Port name (probes refer to it).
    pub name: Option<String>,
    /// Port number.
    pub container_port: u16,
    /// `TCP`.
    pub protocol: Option<String>,
}

/// An `httpGet` probe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Probe {
    /// The request.
    pub http_get: HttpGet,
    /// Seconds between probes.
    pub period_seconds: Option<u32>,
    /// Seconds before a probe fails.
    pub timeout_seconds: Option<u32>,
    /// Failures before the kubelet acts.
    pub failure_threshold: Option<u32>,
    /// Seconds before the first probe.
    pub initial_delay_seconds: Option<u32>,
}

/// `httpGet`: a path and a port (number or name).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpGet {
    /// Request path.
    pub path: String,
    /// Port number or the name of a declared port.
    pub port: serde_json::Value,
}

/// Requests and limits (`cpu`, `memory`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Requests.
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    /// Limits.
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

/// The container security context.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityContext {
    /// Privileged container.
    pub privileged: Option<bool>,
    /// `false` sets no_new_privs.
    pub allow_privilege_escalation: Option<bool>,
    /// Read-only root filesystem.
    pub read_only_root_filesystem: Option<bool>,
    /// The uid.
    pub run_as_user: Option<i64>,
    /// The gid.
    pub run_as_group: Option<i64>,
    /// Added and dropped capabilities.
    pub capabilities: Option<Capabilities>,
}

/// `capabilities`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Added.
    #[serde(default)]
    pub add: Vec<String>,
    /// Dropped (`ALL` drops every default one).
    #[serde(default)]
    pub drop: Vec<String>,
}

/// A volume mount.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VolumeMount {
    /// The volume.
    pub name: String,
    /// Where in the container.
    pub mount_path: String,
    /// Read-only.
    #[serde(default)]
    pub read_only: bool,
    /// `None` (default), `HostToContainer` or `Bidirectional`.
    pub mount_propagation: Option<String>,
    /// One file or directory of the volume.
    pub sub_path: Option<String>,
}

/// A volume: exactly one of the sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    /// Name.
    pub name: String,
    /// A host directory.
    pub host_path: Option<HostPathSource>,
    /// A fresh directory per pod.
    pub empty_dir: Option<serde_json::Value>,
    /// A ConfigMap's keys as files.
    pub config_map: Option<ConfigMapSource>,
}

/// `hostPath`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPathSource {
    /// The host path.
    pub path: String,
    /// `Directory` (must exist), `DirectoryOrCreate`, ...
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `configMap`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMapSource {
    /// The ConfigMap's name.
    pub name: String,
}

/// The node the pod runs on, as the test stands it in.
#[derive(Debug, Clone)]
pub struct Node {
    /// Host paths of the manifest → the lab directories standing in for them; the longest
    /// matching prefix wins. A host path with no mapping is refused.
    pub host_paths: Vec<(PathBuf, PathBuf)>,
    /// Downward-API values by field path (`spec.nodeName` → `lab-node`).
    pub fields: BTreeMap<String, String>,
    /// Where emptyDir volumes and ConfigMap files of this pod are made (the kubelet's
    /// `/var/lib/kubelet/pods/<uid>/volumes`).
    pub scratch: PathBuf,
    /// The pod's name, uid and attempt.
    pub pod_name: String,
    /// The pod uid.
    pub pod_uid: String,
    /// The sandbox attempt.
    pub attempt: u32,
}

impl Node {
    /// Stands `dir` in for the host path `host_path` (which must be one of
    /// [`host_paths`](Self::host_paths)' keys), e.g. an empty directory for a node that
    /// lacks it.
    ///
    /// # Errors
    /// When `host_path` has no stand-in to replace.
    pub fn stand_in(&mut self, host_path: &str, dir: &Path) -> Result<()> {
        let (_, to) = self
            .host_paths
            .iter_mut()
            .find(|(from, _)| from == Path::new(host_path))
            .ok_or_else(|| anyhow!("no stand-in for host path {host_path} to replace"))?;
        *to = dir.to_path_buf();
        Ok(())
    }

    fn host_path(&self, path: &str) -> Result<PathBuf> {
        let path = Path::new(path);
        let (from, to) = self
            .host_paths
            .iter()
            .filter(|(from, _)| path.starts_with(from))
            .max_by_key(|(from, _)| from.as_os_str().len())
            .ok_or_else(|| {
                anyhow!(
                    "hostPath {} has no stand-in on this lab node (add it to Node::host_paths)",
                    path.display()
                )
            })?;
        let rest = path.strip_prefix(from)?;
        Ok(if rest.as_os_str().is_empty() {
            to.clone()
        } else {
            to.join(rest)
        })
    }
}

/// An HTTP probe of a translated container, with its port resolved to a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    /// The container.
    pub container: String,
    /// `readiness` or `liveness`.
    pub kind: &'static str,
    /// Request path.
    pub path: String,
    /// Port number.
    pub port: u16,
}

/// The CRI requests of one pod of the DaemonSet.
#[derive(Debug, Clone)]
pub struct PodPlan {
    /// RunPodSandbox's config.
    pub sandbox: PodSandboxConfig,
    /// The init containers, in order.
    pub init_containers: Vec<ContainerConfig>,
    /// The containers.
    pub containers: Vec<ContainerConfig>,
    /// The HTTP probes the kubelet would run.
    pub probes: Vec<HttpProbe>,
}

impl DaemonSet {
    /// Reads `path` (a multi-document YAML file with one DaemonSet).
    ///
    /// # Errors
    /// When the file cannot be read, has no DaemonSet, or its pod template has a field
    /// this translation does not know.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_yaml(&text).with_context(|| format!("reading {}", path.display()))
    }

    /// Parses the manifest text (see [`read`](Self::read)).
    ///
    /// # Errors
    /// As [`read`](Self::read).
    pub fn from_yaml(text: &str) -> Result<Self> {
        let mut template = None;
        let mut namespace = String::new();
        let mut config_maps = BTreeMap::new();
        for document in serde_yaml_ng::Deserializer::from_str(text) {
            let doc = serde_json::Value::deserialize(document).context("not YAML")?;
            let kind = doc.get("kind").and_then(|k| k.as_str()).unwrap_or_default();
            let name = doc
                .pointer("/metadata/name")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_string();
            match kind {
                "ConfigMap" => {
                    let data: BTreeMap<String, String> =
                        serde_json::from_value(doc.get("data").cloned().unwrap_or_default())
                            .with_context(|| format!("ConfigMap {name}: data"))?;
                    config_maps.insert(name, data);
                }
                "DaemonSet" => {
                    ensure!(template.is_none(), "more than one DaemonSet");
                    namespace = doc
                        .pointer("/metadata/namespace")
                        .and_then(|n| n.as_str())
                        .unwrap_or("default")
                        .to_string();
                    let raw = doc
                        .pointer("/spec/template")
                        .cloned()
                        .ok_or_else(|| anyhow!("DaemonSet {name} has no spec.template"))?;
                    let parsed: PodTemplate =
                        serde_path_to_error::deserialize(raw).map_err(|e| {
                            anyhow!(
                                "DaemonSet {name}: spec.template.{}: {} (a field this \
                                 translation does not carry out must be added to \
                                 tests/kit/src/daemonset.rs, not dropped)",
                                e.path(),
                                e.inner()
                            )
                        })?;
                    template = Some(parsed);
                }
                _ => {}
            }
        }
        Ok(Self {
            namespace,
            template: template.ok_or_else(|| anyhow!("no DaemonSet in the manifest"))?,
            config_maps,
        })
    }

    /// The text of `key` in ConfigMap `name`, to edit before [`plan`](Self::plan).
    ///
    /// # Errors
    /// When there is no such ConfigMap or key.
    pub fn config_map_entry(&mut self, name: &str, key: &str) -> Result<&mut String> {
        self.config_maps
            .get_mut(name)
            .and_then(|data| data.get_mut(key))
            .ok_or_else(|| anyhow!("no key {key} in ConfigMap {name}"))
    }

    /// The container named `name` (init or not), to edit before [`plan`](Self::plan).
    ///
    /// # Errors
    /// When there is none.
    pub fn container_mut(&mut self, name: &str) -> Result<&mut K8sContainer> {
        let spec = &mut self.template.spec;
        spec.init_containers
            .iter_mut()
            .chain(spec.containers.iter_mut())
            .find(|c| c.name == name)
            .ok_or_else(|| anyhow!("no container {name} in the pod template"))
    }

    /// The volume named `name`, to edit before [`plan`](Self::plan).
    ///
    /// # Errors
    /// When there is none.
    pub fn volume_mut(&mut self, name: &str) -> Result<&mut Volume> {
        self.template
            .spec
            .volumes
            .iter_mut()
            .find(|v| v.name == name)
            .ok_or_else(|| anyhow!("no volume {name} in the pod template"))
    }

    /// The CRI requests for one pod on `node` (see the module docs). Creates the emptyDir
    /// and ConfigMap directories under `node.scratch`, and `DirectoryOrCreate` host paths.
    ///
    /// # Errors
    /// When the template asks for something this translation cannot do: a host path with no
    /// stand-in, a `Directory` host path that does not exist, a downward-API field the test
    /// did not supply, an unknown volume, a named probe port that is not declared.
    pub fn plan(&self, node: &Node) -> Result<PodPlan> {
        let spec = &self.template.spec;
        ensure!(
            spec.automount_service_account_token == Some(false),
            "automountServiceAccountToken must be false: a service-account token volume is \
             not translated"
        );
        let namespaces = NamespaceOption {
            network: if spec.host_network {
                NamespaceMode::Node
            } else {
                NamespaceMode::Pod
            } as i32,
            pid: if spec.host_pid {
                NamespaceMode::Node
            } else {
                NamespaceMode::Container
            } as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        };
        let sandbox = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: node.pod_name.clone(),
                uid: node.pod_uid.clone(),
                namespace: self.namespace.clone(),
                attempt: node.attempt,
            }),
            hostname: if spec.host_network {
                String::new()
            } else {
                node.pod_name.clone()
            },
            labels: self.template.metadata.labels.clone().into_iter().collect(),
            annotations: self
                .template
                .metadata
                .annotations
                .clone()
                .into_iter()
                .collect(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let volumes = self.materialize_volumes(node)?;
        let grace = spec.termination_grace_period_seconds.unwrap_or(30);
        let mut probes = Vec::new();
        let mut translate = |c: &K8sContainer| -> Result<ContainerConfig> {
            for (kind, probe) in [
                ("readiness", &c.readiness_probe),
                ("liveness", &c.liveness_probe),
            ] {
                if let Some(probe) = probe {
                    probes.push(HttpProbe {
                        container: c.name.clone(),
                        kind,
                        path: probe.http_get.path.clone(),
                        port: probe_port(c, &probe.http_get.port)?,
                    });
                }
            }
            container_config(c, node, &volumes, namespaces.clone(), grace)
                .with_context(|| format!("container {}", c.name))
        };
        let init_containers = spec
            .init_containers
            .iter()
            .map(&mut translate)
            .collect::<Result<Vec<_>>>()?;
        let containers = spec
            .containers
            .iter()
            .map(&mut translate)
            .collect::<Result<Vec<_>>>()?;
        Ok(PodPlan {
            sandbox,
            init_containers,
            containers,
            probes,
        })
    }

    /// Each volume's host directory (or, for a ConfigMap, the directory of its files).
    fn materialize_volumes(&self, node: &Node) -> Result<HashMap<String, PathBuf>> {
        let mut dirs = HashMap::new();
        for volume in &self.template.spec.volumes {
            let sources = [
                volume.host_path.is_some(),
                volume.empty_dir.is_some(),
                volume.config_map.is_some(),
            ];
            ensure!(
                sources.iter().filter(|s| **s).count() == 1,
                "volume {} must have exactly one of hostPath, emptyDir, configMap",
                volume.name
            );
            let dir = if let Some(host) = &volume.host_path {
                let dir = node.host_path(&host.path)?;
                match host.kind.as_deref() {
                    Some("Directory") => ensure!(
                        dir.is_dir(),
                        "hostPath {} (stand-in {}) is type Directory and does not exist",
                        host.path,
                        dir.display()
                    ),
                    Some("DirectoryOrCreate") => std::fs::create_dir_all(&dir)
                        .with_context(|| format!("creating {}", dir.display()))?,
                    other => bail!(
                        "hostPath {} has type {other:?}; translated: Directory, DirectoryOrCreate",
                        host.path
                    ),
                }
                dir
            } else if let Some(map) = &volume.config_map {
                let data = self
                    .config_maps
                    .get(&map.name)
                    .ok_or_else(|| anyhow!("volume {}: no ConfigMap {}", volume.name, map.name))?;
                let dir = node.scratch.join("configmap").join(&volume.name);
                std::fs::create_dir_all(&dir)?;
                for (key, text) in data {
                    std::fs::write(dir.join(key), text)?;
                }
                dir
            } else {
                let dir = node.scratch.join("empty-dir").join(&volume.name);
                std::fs::create_dir_all(&dir)?;
                dir
            };
            dirs.insert(volume.name.clone(), dir);
        }
        Ok(dirs)
    }
}

/// One container's CreateContainer config.
fn container_config(
    c: &K8sContainer,
    node: &Node,
    volumes: &HashMap<String, PathBuf>,
    namespaces: NamespaceOption,
    grace: i64,
) -> Result<ContainerConfig> {
    let envs = c
        .env
        .iter()
        .map(|e| {
            let value = match (&e.value, &e.value_from) {
                (Some(v), None) => v.clone(),
                (None, Some(from)) => node
                    .fields
                    .get(&from.field_ref.field_path)
                    .cloned()
                    .ok_or_else(|| {
                        anyhow!(
                            "env {}: the test supplies no value for fieldRef {}",
                            e.name,
                            from.field_ref.field_path
                        )
                    })?,
                _ => bail!("env {} needs exactly one of value, valueFrom", e.name),
            };
            Ok(KeyValue {
                key: e.name.clone(),
                value,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mounts = c
        .volume_mounts
        .iter()
        .map(|m| {
            let dir = volumes
                .get(&m.name)
                .ok_or_else(|| anyhow!("volumeMount {}: no such volume", m.name))?;
            let host_path = match &m.sub_path {
                Some(sub) => {
                    ensure!(
                        !sub.contains(".."),
                        "volumeMount {}: subPath {sub} escapes",
                        m.name
                    );
                    dir.join(sub)
                }
                None => dir.clone(),
            };
            let propagation = match m.mount_propagation.as_deref() {
                None | Some("None") => MountPropagation::PropagationPrivate,
                Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
                Some("Bidirectional") => MountPropagation::PropagationBidirectional,
                Some(other) => bail!("volumeMount {}: mountPropagation {other}", m.name),
            };
            Ok(Mount {
                container_path: m.mount_path.clone(),
                host_path: host_path.to_string_lossy().into_owned(),
                readonly: m.read_only,
                propagation: propagation as i32,
                ..Default::default()
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let security = c.security_context.clone().unwrap_or_default();
    let capabilities = security.capabilities.clone().unwrap_or_default();
    let resources = c
        .resources
        .as_ref()
        .map(linux_resources)
        .transpose()?
        .unwrap_or_default();
    Ok(ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: c.name.clone(),
            attempt: node.attempt,
        }),
        image: Some(ImageSpec {
            image: c.image.clone(),
            ..Default::default()
        }),
        command: c.command.clone(),
        args: c.args.clone(),
        envs,
        mounts,
        annotations: HashMap::from([(
            "io.kubernetes.pod.terminationGracePeriod".to_string(),
            grace.to_string(),
        )]),
        linux: Some(LinuxContainerConfig {
            resources: Some(resources),
            security_context: Some(LinuxContainerSecurityContext {
                capabilities: Some(Capability {
                    add_capabilities: capabilities.add,
                    drop_capabilities: capabilities.drop,
                    ..Default::default()
                }),
                privileged: security.privileged.unwrap_or(false),
                namespace_options: Some(namespaces),
                run_as_user: security.run_as_user.map(|value| Int64Value { value }),
                run_as_group: security.run_as_group.map(|value| Int64Value { value }),
                readonly_rootfs: security.read_only_root_filesystem.unwrap_or(false),
                no_new_privs: security.allow_privilege_escalation == Some(false),
                masked_paths: MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
                readonly_paths: READONLY_PATHS.iter().map(|p| p.to_string()).collect(),
                ..Default::default()
            }),
        }),
        ..Default::default()
    })
}

/// The cgroup settings of `resources`, as the kubelet computes them.
fn linux_resources(r: &Resources) -> Result<LinuxContainerResources> {
    const PERIOD: i64 = 100_000;
    let mut out = LinuxContainerResources {
        cpu_period: PERIOD,
        ..Default::default()
    };
    for (key, _) in r.requests.iter().chain(&r.limits) {
        ensure!(
            key == "cpu" || key == "memory",
            "resource {key}: translated are cpu and memory"
        );
    }
    if let Some(cpu) = r.requests.get("cpu") {
        out.cpu_shares = (millicpu(cpu)? * 1024 / 1000).max(2);
    }
    if let Some(cpu) = r.limits.get("cpu") {
        out.cpu_quota = millicpu(cpu)? * PERIOD / 1000;
    }
    if let Some(memory) = r.limits.get("memory") {
        out.memory_limit_in_bytes = bytes(memory)?;
    }
    Ok(out)
}

/// `500m` or `2` as millicores.
fn millicpu(text: &str) -> Result<i64> {
    match text.strip_suffix('m') {
        Some(milli) => Ok(milli.parse()?),
        None => Ok(text.parse::<i64>()? * 1000),
    }
}

/// `256Mi`, `1Gi`, `64M` or a plain number as bytes.
fn bytes(text: &str) -> Result<i64> {
    let units: [(&str, i64); 6] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("K", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = text.strip_suffix(suffix) {
            return Ok(n.parse::<i64>()? * factor);
        }
    }
    Ok(text.parse()?)
}

/// A probe's port: a number, or the name of a declared port.
fn probe_port(c: &K8sContainer, port: &serde_json::Value) -> Result<u16> {
    if let Some(n) = port.as_u64() {
        return Ok(u16::try_from(n)?);
    }
    let name = port
        .as_str()
        .ok_or_else(|| anyhow!("probe port {port} is neither a number nor a name"))?;
    c.ports
        .iter()
        .find(|p| p.name.as_deref() == Some(name))
        .map(|p| p.container_port)
        .ok_or_else(|| anyhow!("probe port {name} is not a declared port of {}", c.name))
}

/// A pod of the DaemonSet running on the lab.
#[derive(Debug, Clone)]
pub struct RunningPod {
    /// The sandbox.
    pub pod: Pod,
    /// The init containers, exited with 0.
    pub init_containers: Vec<CriContainer>,
    /// The started containers.
    pub containers: Vec<CriContainer>,
}

impl PodPlan {
    /// Runs the plan as a kubelet does: the sandbox, each init container to a zero exit
    /// (within `init_timeout`), then every container.
    ///
    /// # Errors
    /// When a CRI call fails, or an init container exits non-zero or does not finish (the
    /// error carries its log).
    pub async fn run(&self, cri: &CriDriver, init_timeout: Duration) -> Result<RunningPod> {
        let pod = cri.run_sandbox(self.sandbox.clone()).await?;
        let mut init_containers = Vec::new();
        for config in &self.init_containers {
            let container = cri.create_container_from(&pod, config.clone()).await?;
            cri.start(&container).await?;
            let status = cri
                .wait_state(&container, ContainerState::ContainerExited, init_timeout)
                .await?;
            if status.exit_code != 0 {
                let log = std::fs::read_to_string(&container.log_path).unwrap_or_default();
                bail!(
                    "init container {} exited with {} ({}): {log}",
                    container.name,
                    status.exit_code,
                    status.reason
                );
            }
            init_containers.push(container);
        }
        let mut containers = Vec::new();
        for config in &self.containers {
            let container = cri.create_container_from(&pod, config.clone()).await?;
            cri.start(&container).await?;
            containers.push(container);
        }
        Ok(RunningPod {
            pod,
            init_containers,
            containers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal manifest with one extra field in the pod spec.
    const WITH_UNKNOWN: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x, \
        namespace: ns}\nspec:\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      \
        automountServiceAccountToken: false\n      dnsPolicy: ClusterFirst\n      containers:\n        \
        - {name: c, image: i}\n";

    #[test]
    fn a_field_the_translation_does_not_know_is_refused_by_its_path() {
        let error = DaemonSet::from_yaml(WITH_UNKNOWN)
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(error.contains("dnsPolicy"), "{error}");
        let fine = WITH_UNKNOWN.replace("      dnsPolicy: ClusterFirst\n", "");
        assert!(DaemonSet::from_yaml(&fine).is_ok());
    }

    #[test]
    fn quantities_are_translated_as_the_kubelet_does() -> Result<()> {
        let r = Resources {
            requests: BTreeMap::from([("cpu".into(), "50m".into())]),
            limits: BTreeMap::from([
                ("cpu".into(), "500m".into()),
                ("memory".into(), "256Mi".into()),
            ]),
        };
        let out = linux_resources(&r)?;
        assert_eq!(out.cpu_shares, 51);
        assert_eq!(out.cpu_quota, 50_000);
        assert_eq!(out.memory_limit_in_bytes, 256 << 20);
        Ok(())
    }
}
