//! A kubelet-like CRI v1 driver for tests: pods, containers, exec, kill.
//!
//! Request shapes follow the containerd lab's `crilab.py` (what a kubelet sends): host
//! network, kubelet labels and annotations, a log directory per pod, a pod cgroup under the
//! lab's own cgroup root, a host-path mount, service-link env vars. Every call has a timeout;
//! a failed call reports the request and the tail of the containerd log.
//!
//! A pod asked for with [`PodSpec::pod_network`] gets a network namespace of its own
//! instead, on the lab's CNI bridge (`tests/harness/containerd.sh`), with a real IP
//! ([`CriDriver::pod_ips`]) and its name as hostname, as the kubelet does.
//!
//! The driver remembers the pods it created. Dropping it stops and removes those still
//! there (and their pod cgroups), so a test removes exactly its own pods.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerFilter, ContainerMetadata, ContainerState, ContainerStatus,
    ContainerStatusRequest, CreateContainerRequest, ExecSyncRequest, ImageSpec, KeyValue,
    LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, ListContainersRequest,
    ListPodSandboxRequest, Mount, NamespaceMode, NamespaceOption, PodSandboxConfig,
    PodSandboxMetadata, PodSandboxStatus, PodSandboxStatusRequest, RemoveContainerRequest,
    RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest,
};
use tonic::transport::Channel;

use crate::containerd::Containerd;
use crate::{random_hex, random_uuid, tail, wait_until};

/// The sandbox image every lab imports.
pub const PAUSE_IMAGE: &str = "localhost/gannet-test/pause:1.0";
/// The workload image every lab imports (busybox-static with its applets).
pub const BUSYBOX_IMAGE: &str = "localhost/gannet-test/busybox:1.0";

/// The default workload: prints one line, then sleeps until SIGTERM, which ends it with 0
/// at once (a PID 1 without a TERM handler would make StopContainer wait its full timeout).
pub const SLEEPER_SCRIPT: &str =
    "echo \"gannet-e2e: started\"; trap 'exit 0' TERM; while :; do sleep 1 & wait; done";

/// Env vars the kubelet injects for Kubernetes services (service links), in their exact
/// shapes: discovery must drop every one of these.
pub const SERVICE_LINK_ENVS: &[(&str, &str)] = &[
    ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
    ("KUBERNETES_SERVICE_PORT", "443"),
    ("KUBERNETES_SERVICE_PORT_HTTPS", "443"),
    ("KUBERNETES_PORT", "tcp://10.96.0.1:443"),
    ("KUBERNETES_PORT_443_TCP", "tcp://10.96.0.1:443"),
    ("KUBERNETES_PORT_443_TCP_PROTO", "tcp"),
    ("KUBERNETES_PORT_443_TCP_PORT", "443"),
    ("KUBERNETES_PORT_443_TCP_ADDR", "10.96.0.1"),
    ("REDIS_MASTER_SERVICE_HOST", "10.96.12.7"),
    ("REDIS_MASTER_SERVICE_PORT", "6379"),
    ("REDIS_MASTER_SERVICE_PORT_CLIENT", "6379"),
    ("REDIS_MASTER_PORT", "tcp://10.96.12.7:6379"),
    ("REDIS_MASTER_PORT_6379_TCP", "tcp://10.96.12.7:6379"),
    ("REDIS_MASTER_PORT_6379_TCP_PROTO", "tcp"),
    ("REDIS_MASTER_PORT_6379_TCP_PORT", "6379"),
    ("REDIS_MASTER_PORT_6379_TCP_ADDR", "10.96.12.7"),
    ("DNS_PORT", "udp://10.96.0.10:53"),
    ("DNS_PORT_53_UDP", "udp://10.96.0.10:53"),
    ("DNS_PORT_53_UDP_PROTO", "udp"),
    ("SIGNAL_PORT", "sctp://10.96.3.3:9999"),
];

/// Env vars that look like service links but are the app's own: discovery must keep them.
pub const LOOK_ALIKE_ENVS: &[(&str, &str)] = &[
    ("APP_PORT", "8080"),
    ("DB_PORT", "5432"),
    ("CACHE_PORT", "http://cache:80"),
    ("METRICS_SERVICE_HOSTNAME", "metrics.local"),
    ("MY_SERVICE_PORTAL", "on"),
    ("LOG_LEVEL", "debug"),
    ("KUBERNETESX_MODE", "on"),
];

/// Timeout of a quick CRI call (status, list, remove).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout of a call that starts or stops processes (RunPodSandbox, Create/Start/Stop).
const SLOW_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of connecting to the socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Log lines a failed call reports.
const LOG_TAIL_LINES: usize = 30;

/// What a test asks for in a pod. The pod name is `prefix-<random>`: unique per test.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Start of the pod name.
    pub name_prefix: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// The pod's own labels (the kubelet adds `io.kubernetes.pod.*`).
    pub labels: BTreeMap<String, String>,
    /// The pod's annotations (the kubelet adds `kubernetes.io/config.*`).
    pub annotations: BTreeMap<String, String>,
    /// Sandbox attempt.
    pub attempt: u32,
    /// A network namespace of the pod's own on the lab's CNI network (a pod IP, hostname =
    /// pod name) instead of the host network. Off by default.
    pub pod_network: bool,
}

impl PodSpec {
    /// A pod in namespace `default` with labels `app=<prefix>`, `tier=e2e` and annotation
    /// `example.com/owner=gannet-e2e`.
    pub fn new(name_prefix: &str) -> Self {
        Self {
            name_prefix: name_prefix.to_string(),
            namespace: "default".to_string(),
            labels: BTreeMap::from([
                ("app".to_string(), name_prefix.to_string()),
                ("tier".to_string(), "e2e".to_string()),
            ]),
            annotations: BTreeMap::from([(
                "example.com/owner".to_string(),
                "gannet-e2e".to_string(),
            )]),
            attempt: 0,
            pod_network: false,
        }
    }

    /// Runs the pod in a network namespace of its own (CRI `NamespaceMode::POD`) on the lab's
    /// CNI bridge, with the pod name as hostname, like a kubelet does for a pod without
    /// `hostNetwork`. The default is the host network.
    pub fn pod_network(mut self) -> Self {
        self.pod_network = true;
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_string();
        self
    }

    /// Adds or replaces a pod label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// Adds or replaces a pod annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }
}

/// A running pod sandbox created by a [`CriDriver`].
#[derive(Debug, Clone)]
pub struct Pod {
    /// Sandbox id.
    pub id: String,
    /// Pod name (`prefix-<random>`).
    pub name: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// The sandbox log directory (container logs go below it).
    pub log_dir: PathBuf,
    /// The host directory mounted at `/data` in its containers.
    pub host_data: PathBuf,
    /// `linux.cgroup_parent` (`/<lab cgroup root>/pod<uid>`).
    pub cgroup_parent: String,
    /// The full sandbox config (CreateContainer sends it along, like a kubelet).
    pub config: PodSandboxConfig,
    /// Whether the pod has a network namespace of its own ([`PodSpec::pod_network`]); its
    /// containers join it.
    pub pod_network: bool,
}

/// What a test asks for in a container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Shell script run as `/bin/sh -c SCRIPT`.
    pub script: String,
    /// Env vars, in order. Defaults include [`SERVICE_LINK_ENVS`] and [`LOOK_ALIKE_ENVS`].
    pub envs: Vec<(String, String)>,
    /// Container attempt (the kubelet's restart count).
    pub attempt: u32,
    /// Mount the pod's host data directory at `/data`.
    pub host_mount: bool,
    /// Extra container labels (the kubelet's are always set).
    pub labels: BTreeMap<String, String>,
    /// Extra container annotations (the kubelet's are always set).
    pub annotations: BTreeMap<String, String>,
    /// Memory limit in bytes (`linux.resources.memory_limit_in_bytes`); none when unset.
    pub memory_limit_bytes: Option<i64>,
}

impl ContainerSpec {
    /// A container running `script` in the busybox image, with the default envs and mount.
    pub fn new(name: &str, script: &str) -> Self {
        let mut envs: Vec<(String, String)> = vec![("GANNET_E2E".into(), "1".into())];
        envs.extend(
            SERVICE_LINK_ENVS
                .iter()
                .chain(LOOK_ALIKE_ENVS)
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Self {
            name: name.to_string(),
            image: BUSYBOX_IMAGE.to_string(),
            script: script.to_string(),
            envs,
            attempt: 0,
            host_mount: true,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            memory_limit_bytes: None,
        }
    }

    /// A container running [`SLEEPER_SCRIPT`].
    pub fn sleeper(name: &str) -> Self {
        Self::new(name, SLEEPER_SCRIPT)
    }

    /// A container that prints one line, sleeps `after_ms` milliseconds and exits with
    /// `code` (CRI then reports it EXITED with that exit code).
    pub fn exits(name: &str, code: i32, after_ms: u64) -> Self {
        let seconds = format!("{}.{:03}", after_ms / 1000, after_ms % 1000);
        Self::new(
            name,
            &format!("echo \"gannet-e2e: exiting with {code}\"; sleep {seconds}; exit {code}"),
        )
    }

    /// Adds an env var.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets the attempt (and so the `restartCount` annotation and the log file name).
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// Adds a container label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// Adds a container annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// Sets a memory limit (the kernel OOM-kills the container's biggest process past it).
    pub fn memory_limit(mut self, bytes: i64) -> Self {
        self.memory_limit_bytes = Some(bytes);
        self
    }
}

/// A container created by a [`CriDriver`].
#[derive(Debug, Clone)]
pub struct CriContainer {
    /// Container id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Attempt.
    pub attempt: u32,
    /// Sandbox id.
    pub pod_id: String,
    /// Absolute log path (`<pod log dir>/<name>/<attempt>.log`).
    pub log_path: PathBuf,
}

/// The result of ExecSync.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Exit code of the command.
    pub exit_code: i32,
    /// Its stdout, lossily decoded.
    pub stdout: String,
    /// Its stderr, lossily decoded.
    pub stderr: String,
}

/// Pod ids and uids the driver created and has not removed yet.
type OwnedPods = Arc<Mutex<Vec<(String, String)>>>;

/// A kubelet-like CRI v1 client for one lab (see the module docs).
#[derive(Debug)]
pub struct CriDriver {
    client: RuntimeServiceClient<Channel>,
    socket: PathBuf,
    lab: PathBuf,
    cgroup_root: String,
    pods: OwnedPods,
    keep_pods: bool,
}

impl CriDriver {
    /// Connects to the lab's socket.
    ///
    /// # Errors
    /// When the socket does not answer within the connect timeout.
    pub async fn connect(lab: &Containerd) -> Result<Self> {
        let socket = lab.socket();
        let channel = connect_channel(&socket).await?;
        Ok(Self {
            client: RuntimeServiceClient::new(channel),
            socket,
            lab: lab.lab().to_path_buf(),
            cgroup_root: lab.cgroup_root().to_string(),
            pods: Arc::default(),
            keep_pods: false,
        })
    }

    /// A clone of the raw CRI v1 client, for requests the driver does not wrap.
    pub fn client(&self) -> RuntimeServiceClient<Channel> {
        self.client.clone()
    }

    /// Leaves the pods running when the driver is dropped (the demo uses this).
    pub fn keep_pods(&mut self) {
        self.keep_pods = true;
    }

    /// Runs a pod sandbox like a kubelet would: on the host network, or in a network
    /// namespace of its own with [`PodSpec::pod_network`].
    ///
    /// # Errors
    /// When RunPodSandbox fails.
    pub async fn create_pod(&self, spec: &PodSpec) -> Result<Pod> {
        let name = format!("{}-{}", spec.name_prefix, random_hex(3)?);
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.clone(),
                uid: random_uuid()?,
                namespace: spec.namespace.clone(),
                attempt: spec.attempt,
            }),
            // Host network: the node's hostname; a pod network: the pod name (the kubelet's
            // default when the pod sets no hostname).
            hostname: if spec.pod_network {
                name.clone()
            } else {
                String::new()
            },
            labels: spec.labels.clone().into_iter().collect(),
            annotations: spec.annotations.clone().into_iter().collect(),
            linux: Some(LinuxPodSandboxConfig {
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(namespaces(spec.pod_network)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.run_sandbox(config).await
    }

    /// Runs a pod sandbox from a config the caller built (a translated manifest, say),
    /// adding what a kubelet adds: the pod log directory, the pod cgroup under the lab's
    /// cgroup root, the `io.kubernetes.pod.*` labels and the `kubernetes.io/config.*`
    /// annotations. The config's metadata names the pod. The driver removes it when dropped.
    ///
    /// # Errors
    /// When the config has no metadata, or RunPodSandbox fails.
    pub async fn run_sandbox(&self, mut config: PodSandboxConfig) -> Result<Pod> {
        let meta = config
            .metadata
            .clone()
            .ok_or_else(|| anyhow!("a pod sandbox config needs metadata (name, uid, namespace)"))?;
        let log_dir = self
            .lab
            .join("logs")
            .join(format!("{}_{}_{}", meta.namespace, meta.name, meta.uid));
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let host_data = self.lab.join("hostdata").join(&meta.name);
        std::fs::create_dir_all(&host_data)
            .with_context(|| format!("creating {}", host_data.display()))?;
        let cgroup_parent = format!("/{}/pod{}", self.cgroup_root, meta.uid);
        config
            .labels
            .insert("io.kubernetes.pod.name".into(), meta.name.clone());
        config
            .labels
            .insert("io.kubernetes.pod.namespace".into(), meta.namespace.clone());
        config
            .labels
            .insert("io.kubernetes.pod.uid".into(), meta.uid.clone());
        config.annotations.insert(
            "kubernetes.io/config.seen".into(),
            "2026-01-01T00:00:00.000000000Z".into(),
        );
        config
            .annotations
            .insert("kubernetes.io/config.source".into(), "api".into());
        config.log_directory = log_dir.to_string_lossy().into_owned();
        let linux = config.linux.get_or_insert_with(Default::default);
        linux.cgroup_parent = cgroup_parent.clone();
        let pod_network = linux
            .security_context
            .as_ref()
            .and_then(|s| s.namespace_options.as_ref())
            .is_some_and(|n| n.network == NamespaceMode::Pod as i32);
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        };
        let mut client = self.client();
        let id = self
            .call(
                "RunPodSandbox",
                SLOW_CALL_TIMEOUT,
                client.run_pod_sandbox(request),
            )
            .await?
            .pod_sandbox_id;
        lock(&self.pods).push((id.clone(), meta.uid.clone()));
        Ok(Pod {
            id,
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            log_dir,
            host_data,
            cgroup_parent,
            config,
            pod_network,
        })
    }

    /// Creates a container in `pod` like a kubelet would (not started).
    ///
    /// # Errors
    /// When CreateContainer fails.
    pub async fn create_container(&self, pod: &Pod, spec: &ContainerSpec) -> Result<CriContainer> {
        let mounts = if spec.host_mount {
            vec![Mount {
                container_path: "/data".into(),
                host_path: pod.host_data.to_string_lossy().into_owned(),
                readonly: false,
                ..Default::default()
            }]
        } else {
            Vec::new()
        };
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: spec.name.clone(),
                attempt: spec.attempt,
            }),
            image: Some(ImageSpec {
                image: spec.image.clone(),
                ..Default::default()
            }),
            command: vec!["/bin/sh".into(), "-c".into()],
            args: vec![spec.script.clone()],
            working_dir: "/".into(),
            envs: spec
                .envs
                .iter()
                .map(|(key, value)| KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            mounts,
            labels: spec.labels.clone().into_iter().collect(),
            annotations: spec.annotations.clone().into_iter().collect(),
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(namespaces(pod.pod_network)),
                    ..Default::default()
                }),
                resources: spec
                    .memory_limit_bytes
                    .map(|bytes| LinuxContainerResources {
                        memory_limit_in_bytes: bytes,
                        ..Default::default()
                    }),
            }),
            ..Default::default()
        };
        self.create_container_from(pod, config).await
    }

    /// Creates a container in `pod` from a config the caller built (not started), adding
    /// what a kubelet adds: the log path `<name>/<attempt>.log`, the `io.kubernetes.*`
    /// labels and the container annotations (hash, restart count, termination message).
    ///
    /// # Errors
    /// When the config has no metadata, or CreateContainer fails.
    pub async fn create_container_from(
        &self,
        pod: &Pod,
        mut config: ContainerConfig,
    ) -> Result<CriContainer> {
        let meta = config
            .metadata
            .clone()
            .ok_or_else(|| anyhow!("a container config needs metadata (name, attempt)"))?;
        let log_rel = format!("{}/{}.log", meta.name, meta.attempt);
        for (k, v) in [
            ("io.kubernetes.container.name", meta.name.clone()),
            ("io.kubernetes.pod.name", pod.name.clone()),
            ("io.kubernetes.pod.namespace", pod.namespace.clone()),
            ("io.kubernetes.pod.uid", pod.uid.clone()),
        ] {
            config.labels.insert(k.to_string(), v);
        }
        for (k, v) in [
            ("io.kubernetes.container.hash", "1a2b3c4d".to_string()),
            (
                "io.kubernetes.container.restartCount",
                meta.attempt.to_string(),
            ),
            (
                "io.kubernetes.container.terminationMessagePath",
                "/dev/termination-log".to_string(),
            ),
            (
                "io.kubernetes.container.terminationMessagePolicy",
                "File".to_string(),
            ),
            ("io.kubernetes.pod.terminationGracePeriod", "30".to_string()),
        ] {
            config.annotations.entry(k.to_string()).or_insert(v);
        }
        config.log_path = log_rel.clone();
        let request = CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(config),
            sandbox_config: Some(pod.config.clone()),
        };
        let mut client = self.client();
        let id = self
            .call(
                "CreateContainer",
                SLOW_CALL_TIMEOUT,
                client.create_container(request),
            )
            .await?
            .container_id;
        Ok(CriContainer {
            id,
            name: meta.name,
            attempt: meta.attempt,
            pod_id: pod.id.clone(),
            log_path: pod.log_dir.join(log_rel),
        })
    }

    /// Starts a created container.
    ///
    /// # Errors
    /// When StartContainer fails.
    pub async fn start(&self, container: &CriContainer) -> Result<()> {
        let mut client = self.client();
        let request = StartContainerRequest {
            container_id: container.id.clone(),
        };
        self.call(
            "StartContainer",
            SLOW_CALL_TIMEOUT,
            client.start_container(request),
        )
        .await?;
        Ok(())
    }

    /// Creates and starts a container.
    ///
    /// # Errors
    /// When CreateContainer or StartContainer fails.
    pub async fn run_container(&self, pod: &Pod, spec: &ContainerSpec) -> Result<CriContainer> {
        let container = self.create_container(pod, spec).await?;
        self.start(&container).await?;
        Ok(container)
    }

    /// Stops a container: SIGTERM, then SIGKILL after `timeout_s` seconds.
    ///
    /// # Errors
    /// When StopContainer fails.
    pub async fn stop(&self, container: &CriContainer, timeout_s: i64) -> Result<()> {
        let mut client = self.client();
        let request = StopContainerRequest {
            container_id: container.id.clone(),
            timeout: timeout_s,
        };
        self.call(
            "StopContainer",
            SLOW_CALL_TIMEOUT + Duration::from_secs(timeout_s.unsigned_abs()),
            client.stop_container(request),
        )
        .await?;
        Ok(())
    }

    /// Removes a container (stopping it first if it runs).
    ///
    /// # Errors
    /// When RemoveContainer fails.
    pub async fn remove(&self, container: &CriContainer) -> Result<()> {
        let mut client = self.client();
        let request = RemoveContainerRequest {
            container_id: container.id.clone(),
        };
        self.call(
            "RemoveContainer",
            SLOW_CALL_TIMEOUT,
            client.remove_container(request),
        )
        .await?;
        Ok(())
    }

    /// ContainerStatus (not verbose).
    ///
    /// # Errors
    /// When the call fails or returns no status.
    pub async fn status(&self, container: &CriContainer) -> Result<ContainerStatus> {
        Ok(self.status_verbose_opt(container, false).await?.0)
    }

    /// ContainerStatus(verbose) and its decoded `info["info"]` JSON (containerd's
    /// ContainerInfo: `pid`, `sandboxID`, `snapshotKey`, `runtimeSpec`, ...).
    ///
    /// # Errors
    /// When the call fails or the info is not JSON.
    pub async fn status_verbose(
        &self,
        container: &CriContainer,
    ) -> Result<(ContainerStatus, serde_json::Value)> {
        self.status_verbose_opt(container, true).await
    }

    async fn status_verbose_opt(
        &self,
        container: &CriContainer,
        verbose: bool,
    ) -> Result<(ContainerStatus, serde_json::Value)> {
        let mut client = self.client();
        let request = ContainerStatusRequest {
            container_id: container.id.clone(),
            verbose,
        };
        let response = self
            .call(
                "ContainerStatus",
                CALL_TIMEOUT,
                client.container_status(request),
            )
            .await?;
        let status = response
            .status
            .ok_or_else(|| anyhow!("ContainerStatus of {} has no status", container.id))?;
        let info = verbose_info("ContainerStatus", &container.id, &response.info)?;
        Ok((status, info))
    }

    /// The container's host pid (verbose info `pid`).
    ///
    /// # Errors
    /// When the container has no live process (pid 0 once it exited).
    pub async fn container_pid(&self, container: &CriContainer) -> Result<u32> {
        let (_, info) = self.status_verbose(container).await?;
        match info_pid(&info) {
            Some(pid) => Ok(pid),
            None => bail!(
                "container {} ({}) has no pid in its verbose info: {info}",
                container.name,
                container.id
            ),
        }
    }

    /// PodSandboxStatus(verbose) and its decoded `info["info"]` JSON (`pid` of the pause,
    /// `config`, `runtimeSpec`, ...).
    ///
    /// # Errors
    /// When the call fails or the info is not JSON.
    pub async fn pod_status_verbose(
        &self,
        pod: &Pod,
    ) -> Result<(PodSandboxStatus, serde_json::Value)> {
        self.pod_status_opt(pod, true).await
    }

    /// PodSandboxStatus (not verbose).
    ///
    /// # Errors
    /// When the call fails or returns no status.
    pub async fn pod_status(&self, pod: &Pod) -> Result<PodSandboxStatus> {
        Ok(self.pod_status_opt(pod, false).await?.0)
    }

    /// The pod's IPs as CRI reports them (PodSandboxStatus `network.ip`, then
    /// `network.additional_ips`): one IPv4 on the lab's pod network for a
    /// [`PodSpec::pod_network`] pod, none for a host-network pod.
    ///
    /// # Errors
    /// When PodSandboxStatus fails.
    pub async fn pod_ips(&self, pod: &Pod) -> Result<Vec<String>> {
        let status = self
            .pod_status(pod)
            .await
            .with_context(|| format!("reading the IPs of pod {} ({})", pod.name, pod.id))?;
        let Some(network) = status.network else {
            return Ok(Vec::new());
        };
        Ok(std::iter::once(network.ip)
            .chain(network.additional_ips.into_iter().map(|ip| ip.ip))
            .filter(|ip| !ip.is_empty())
            .collect())
    }

    async fn pod_status_opt(
        &self,
        pod: &Pod,
        verbose: bool,
    ) -> Result<(PodSandboxStatus, serde_json::Value)> {
        let mut client = self.client();
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: pod.id.clone(),
            verbose,
        };
        let response = self
            .call(
                "PodSandboxStatus",
                CALL_TIMEOUT,
                client.pod_sandbox_status(request),
            )
            .await?;
        let status = response
            .status
            .ok_or_else(|| anyhow!("PodSandboxStatus of {} has no status", pod.id))?;
        let info = verbose_info("PodSandboxStatus", &pod.id, &response.info)?;
        Ok((status, info))
    }

    /// The host pid of the pod's pause process.
    ///
    /// # Errors
    /// When the sandbox has no live pause process.
    pub async fn pause_pid(&self, pod: &Pod) -> Result<u32> {
        let (_, info) = self.pod_status_verbose(pod).await?;
        match info_pid(&info) {
            Some(pid) => Ok(pid),
            None => bail!("pod {} ({}) has no pause pid: {info}", pod.name, pod.id),
        }
    }

    /// Kills the container's process with SIGKILL from outside, as an OOM kill or crash
    /// would; returns the pid it killed.
    ///
    /// # Errors
    /// When there is no pid, or `kill` fails.
    pub async fn kill_9(&self, container: &CriContainer) -> Result<u32> {
        let pid = self.container_pid(container).await?;
        let status = std::process::Command::new("sh")
            .args(["-c", "kill -KILL \"$0\"", &pid.to_string()])
            .status()
            .context("running sh -c kill")?;
        if !status.success() {
            bail!(
                "kill -KILL {pid} (container {}) failed: {status}",
                container.id
            );
        }
        Ok(pid)
    }

    /// Runs `cmd` in the container (ExecSync) and returns its exit code and output.
    ///
    /// # Errors
    /// When the call fails (a non-zero exit code is not an error).
    pub async fn exec_sync(&self, container: &CriContainer, cmd: &[&str]) -> Result<ExecOutput> {
        let mut client = self.client();
        let request = ExecSyncRequest {
            container_id: container.id.clone(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: CALL_TIMEOUT.as_secs() as i64,
        };
        let response = self
            .call(
                "ExecSync",
                CALL_TIMEOUT + Duration::from_secs(5),
                client.exec_sync(request),
            )
            .await?;
        Ok(ExecOutput {
            exit_code: response.exit_code,
            stdout: String::from_utf8_lossy(&response.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&response.stderr).into_owned(),
        })
    }

    /// Waits until the container reaches `state` and returns its status then.
    ///
    /// # Errors
    /// When `timeout` passes first.
    pub async fn wait_state(
        &self,
        container: &CriContainer,
        state: ContainerState,
        timeout: Duration,
    ) -> Result<ContainerStatus> {
        let what = format!(
            "container {} ({}) to be {}",
            container.name,
            container.id,
            state.as_str_name()
        );
        wait_until(timeout, &what, || async {
            let status = self.status(container).await?;
            Ok((status.state == state as i32).then_some(status))
        })
        .await
        .map_err(|e| self.explain(e))
    }

    /// ListContainers, optionally only those of one pod.
    ///
    /// # Errors
    /// When the call fails.
    pub async fn list_containers(&self, pod: Option<&Pod>) -> Result<Vec<k8s_cri::v1::Container>> {
        let mut client = self.client();
        let request = ListContainersRequest {
            filter: pod.map(|pod| ContainerFilter {
                pod_sandbox_id: pod.id.clone(),
                ..Default::default()
            }),
        };
        Ok(self
            .call(
                "ListContainers",
                CALL_TIMEOUT,
                client.list_containers(request),
            )
            .await?
            .containers)
    }

    /// The ids of every pod sandbox the runtime holds (all tests' pods).
    ///
    /// # Errors
    /// When the call fails.
    pub async fn list_pod_ids(&self) -> Result<Vec<String>> {
        let mut client = self.client();
        Ok(self
            .call(
                "ListPodSandbox",
                CALL_TIMEOUT,
                client.list_pod_sandbox(ListPodSandboxRequest::default()),
            )
            .await?
            .items
            .into_iter()
            .map(|s| s.id)
            .collect())
    }

    /// Stops and removes a pod (and its containers) and its pod-level cgroups.
    ///
    /// # Errors
    /// When StopPodSandbox or RemovePodSandbox fails.
    pub async fn remove_pod(&self, pod: &Pod) -> Result<()> {
        remove_pod_by_id(&self.client(), &pod.id)
            .await
            .map_err(|e| self.explain(e))?;
        remove_pod_cgroups(&self.cgroup_root, &pod.uid);
        lock(&self.pods).retain(|(id, _)| id != &pod.id);
        Ok(())
    }

    async fn call<T>(
        &self,
        what: &str,
        timeout: Duration,
        call: impl Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.explain(anyhow!(
                "CRI {what} on {} failed: {:?}: {}",
                self.socket.display(),
                status.code(),
                status.message()
            ))),
            Err(_) => Err(self.explain(anyhow!(
                "CRI {what} on {} timed out after {timeout:?}",
                self.socket.display()
            ))),
        }
    }

    /// Adds the containerd log tail to an error.
    fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        let log = std::fs::read_to_string(self.lab.join("containerd.log")).unwrap_or_default();
        error.context(format!(
            "containerd log ({}), last {LOG_TAIL_LINES} lines:\n{}",
            self.lab.join("containerd.log").display(),
            tail(&log, LOG_TAIL_LINES)
        ))
    }
}

impl Drop for CriDriver {
    fn drop(&mut self) {
        let pods = std::mem::take(&mut *lock(&self.pods));
        if self.keep_pods || pods.is_empty() {
            return;
        }
        let socket = self.socket.clone();
        let cgroup_root = self.cgroup_root.clone();
        // Drop may run inside a runtime (block_on would panic there): use a thread with its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => return eprintln!("harness: no runtime to remove pods: {error}"),
            };
            runtime.block_on(async {
                // A lab already torn down (or stopped) has nothing left to remove.
                let Ok(channel) = connect_channel(&socket).await else {
                    return;
                };
                let client = RuntimeServiceClient::new(channel);
                for (id, uid) in pods {
                    if let Err(error) = remove_pod_by_id(&client, &id).await {
                        eprintln!("harness: removing pod {id}: {error:#}");
                    }
                    remove_pod_cgroups(&cgroup_root, &uid);
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn lock(pods: &OwnedPods) -> std::sync::MutexGuard<'_, Vec<(String, String)>> {
    // A test that panicked while holding the lock left a valid list behind.
    pods.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The host network, or with `pod_network` the pod's own (CNI); a pid namespace per
/// container, IPC shared in the pod.
fn namespaces(pod_network: bool) -> NamespaceOption {
    NamespaceOption {
        network: if pod_network {
            NamespaceMode::Pod
        } else {
            NamespaceMode::Node
        } as i32,
        pid: NamespaceMode::Container as i32,
        ipc: NamespaceMode::Pod as i32,
        ..Default::default()
    }
}

async fn connect_channel(socket: &Path) -> Result<Channel> {
    match tokio::time::timeout(CONNECT_TIMEOUT, containerd_client::connect(socket)).await {
        Ok(Ok(channel)) => Ok(channel),
        Ok(Err(error)) => Err(anyhow!(error))
            .with_context(|| format!("connecting to containerd at {}", socket.display())),
        Err(_) => bail!(
            "connecting to containerd at {} timed out after {CONNECT_TIMEOUT:?}",
            socket.display()
        ),
    }
}

async fn remove_pod_by_id(client: &RuntimeServiceClient<Channel>, id: &str) -> Result<()> {
    let mut client = client.clone();
    let stop = StopPodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    };
    tokio::time::timeout(SLOW_CALL_TIMEOUT, client.stop_pod_sandbox(stop))
        .await
        .map_err(|_| anyhow!("StopPodSandbox {id} timed out"))?
        .with_context(|| format!("StopPodSandbox {id}"))?;
    let remove = RemovePodSandboxRequest {
        pod_sandbox_id: id.to_string(),
    };
    tokio::time::timeout(SLOW_CALL_TIMEOUT, client.remove_pod_sandbox(remove))
        .await
        .map_err(|_| anyhow!("RemovePodSandbox {id} timed out"))?
        .with_context(|| format!("RemovePodSandbox {id}"))?;
    Ok(())
}

/// Removes `/sys/fs/cgroup[/<ctrl>]/<root>/pod<uid>`: runc removes each container's cgroup,
/// the pod level is the kubelet's job. Best effort: `down` sweeps whatever is left.
fn remove_pod_cgroups(cgroup_root: &str, uid: &str) {
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![base.join(cgroup_root).join(format!("pod{uid}"))];
    if let Ok(controllers) = std::fs::read_dir(base) {
        for controller in controllers.flatten() {
            dirs.push(
                controller
                    .path()
                    .join(cgroup_root)
                    .join(format!("pod{uid}")),
            );
        }
    }
    for dir in dirs {
        let _ = std::fs::remove_dir(dir);
    }
}

/// The decoded `info["info"]` JSON of a verbose status answer of `call` for `id` (null when
/// the runtime gave none).
fn verbose_info(
    call: &str,
    id: &str,
    info: &std::collections::HashMap<String, String>,
) -> Result<serde_json::Value> {
    match info.get("info") {
        Some(raw) => {
            serde_json::from_str(raw).with_context(|| format!("{call} info of {id} is not JSON"))
        }
        None => Ok(serde_json::Value::Null),
    }
}

/// The live pid in a verbose info (`pid`, 0 once the process is gone).
fn info_pid(info: &serde_json::Value) -> Option<u32> {
    let pid = info.get("pid").and_then(serde_json::Value::as_u64)?;
    u32::try_from(pid).ok().filter(|pid| *pid > 0)
}
