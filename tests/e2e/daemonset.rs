//! The DaemonSet of `deploy/daemonset.yaml`, run for real: the agent image built by
//! `scripts/image.sh` and a plugin image built by `scripts/plugin-image.sh`, imported into a
//! lab containerd, and the manifest's pod template created through CRI as a kubelet would
//! (`gannet_test_kit::daemonset`: strict, a template field it cannot carry out fails).
//!
//! The lab stands in for the node: a shared bind of the host's `/` (with `/proc`) is the
//! host root (the lab's containers are processes of this host), the lab directory is
//! `/run/containerd` (its socket is `containerd.sock`), and scratch directories stand in for
//! the plugin cache and the API socket directory. The ConfigMap's config gets one line more, the lab's containerd state
//! directory (`runtime.containerd_state_dir`), since the lab's is not `/run/containerd`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use gannet_test_kit::daemonset::{DaemonSet, Node, PodPlan, RunningPod};
use gannet_test_kit::{
    get_unix, random_uuid, repo_root, wait_until, ContainerSpec, Containerd, CriDriver, Gannet,
    PluginWorkspace, PodSpec,
};
use serde_json::Value;

/// How long the agent pod may take to become ready (debug build, four plugins to compile).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long anything else may take to show.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The downward-API node name the test supplies.
const NODE_NAME: &str = "lab-node";
/// The example plugins the plugin image carries: file stem → crate.
const PLUGINS: &[(&str, &str)] = &[
    ("10-lc-filter", "lc_filter"),
    ("20-team-labels", "team_labels"),
    ("30-redact-env", "redact_env"),
    ("40-route-by-namespace", "route_by_namespace"),
];
/// A plugin file that is not a component: the agent must run on the others and name it.
const BROKEN_PLUGIN: &str = "50-broken.wasm";

/// The lab, its images and the stand-in host directories.
struct Site {
    lab: Containerd,
    host_root: PathBuf,
    cri: CriDriver,
    work: tempfile::TempDir,
}

impl Site {
    /// A private lab (the test restarts its containerd) with both images imported.
    async fn new(name: &str) -> Result<Self> {
        let lab = Containerd::private(name)?;
        let cri = lab.cri().await?;
        let work = tempfile::Builder::new()
            .prefix("gannet-e2e-daemonset-")
            .tempdir()?;
        let images = work.path().join("images");
        let agent_image = script(
            "scripts/image.sh",
            &[
                "--binary".as_ref(),
                Gannet::bin()?.as_os_str(),
                "--out".as_ref(),
                images.as_os_str(),
            ],
        )?;
        let plugins = work.path().join("plugin-src");
        std::fs::create_dir_all(&plugins)?;
        for (stem, krate) in PLUGINS {
            std::fs::copy(
                PluginWorkspace::Examples.wasm(krate)?,
                plugins.join(format!("{stem}.wasm")),
            )?;
            std::fs::copy(
                repo_root().join(format!("examples/plugins/{stem}.toml")),
                plugins.join(format!("{stem}.toml")),
            )?;
        }
        std::fs::write(plugins.join(BROKEN_PLUGIN), b"not a component")?;
        let plugin_image = script(
            "scripts/plugin-image.sh",
            &[plugins.as_os_str(), "--out".as_ref(), images.as_os_str()],
        )?;
        lab.import_images(&[&agent_image, &plugin_image])?;
        let host_root = lab.host_root_stand_in()?;
        for dir in ["cache", "api", "pods"] {
            std::fs::create_dir_all(work.path().join(dir))?;
        }
        Ok(Self {
            lab,
            host_root,
            cri,
            work,
        })
    }

    fn cache_dir(&self) -> PathBuf {
        self.work.path().join("cache")
    }

    fn api_socket(&self) -> PathBuf {
        self.work.path().join("api/api.sock")
    }

    /// The manifest, with the lab's containerd state directory added to its config.
    fn manifest(&self) -> Result<DaemonSet> {
        let mut manifest = DaemonSet::read(&repo_root().join("deploy/daemonset.yaml"))?;
        let config = manifest.config_map_entry("gannet-config", "gannet.toml")?;
        ensure!(
            config.contains("[runtime]\n"),
            "the config has no [runtime] table"
        );
        *config = config.replace(
            "[runtime]\n",
            &format!(
                "[runtime]\ncontainerd_state_dir = \"{}\"\n",
                self.lab.lab().join("state").display()
            ),
        );
        Ok(manifest)
    }

    /// The node for one pod: host paths mapped to the lab's stand-ins.
    fn node(&self, pod_name: &str) -> Result<Node> {
        let uid = random_uuid()?;
        Ok(Node {
            host_paths: vec![
                ("/".into(), self.host_root.clone()),
                ("/run/containerd".into(), self.lab.lab().to_path_buf()),
                ("/var/cache/gannet/plugins".into(), self.cache_dir()),
                ("/run/gannet".into(), self.work.path().join("api")),
            ],
            fields: [("spec.nodeName".to_string(), NODE_NAME.to_string())].into(),
            scratch: self.work.path().join("pods").join(&uid),
            pod_name: pod_name.to_string(),
            pod_uid: uid,
            attempt: 0,
        })
    }

    /// Runs one agent pod of `manifest`.
    async fn run(&self, manifest: &DaemonSet, pod_name: &str) -> Result<Agent> {
        self.run_on(manifest, &self.node(pod_name)?).await
    }

    /// Runs one agent pod of `manifest` on `node`.
    async fn run_on(&self, manifest: &DaemonSet, node: &Node) -> Result<Agent> {
        let plan = manifest.plan(node)?;
        let running = plan.run(&self.cri, TIMEOUT).await?;
        let ip = self
            .cri
            .pod_ips(&running.pod)
            .await?
            .into_iter()
            .next()
            .context("the agent pod has no IP on the lab's pod network")?;
        Ok(Agent { plan, running, ip })
    }
}

/// One agent pod.
struct Agent {
    plan: PodPlan,
    running: RunningPod,
    ip: String,
}

impl Agent {
    /// The port and path of the agent's `kind` probe (`readiness`, `liveness`).
    fn probe(&self, kind: &str) -> Result<(u16, String)> {
        let probe = self
            .plan
            .probes
            .iter()
            .find(|p| p.container == "gannet" && p.kind == kind)
            .with_context(|| format!("the manifest has no {kind} probe"))?;
        Ok((probe.port, probe.path.clone()))
    }

    /// The status code of the `kind` probe now.
    fn probe_status(&self, kind: &str) -> Result<u16> {
        let (port, path) = self.probe(kind)?;
        http_status(&self.ip, port, &path)
    }

    async fn wait_ready(&self, cri: &CriDriver) -> Result<()> {
        wait_until(READY_TIMEOUT, "the agent pod to be ready", || async {
            Ok((self.probe_status("readiness")? == 200).then_some(()))
        })
        .await
        .with_context(|| format!("agent log:\n{}", self.log_tail(40)))?;
        // Ready is not a crash-looping container either.
        let status = cri.status(self.container()?).await?;
        ensure!(status.state == 1, "agent container state {}", status.state);
        Ok(())
    }

    fn container(&self) -> Result<&gannet_test_kit::CriContainer> {
        self.running
            .containers
            .iter()
            .find(|c| c.name == "gannet")
            .context("no gannet container")
    }

    /// The agent container's log: (stream, line) pairs of its CRI log file.
    fn log(&self) -> Vec<(String, String)> {
        let Ok(container) = self.container() else {
            return Vec::new();
        };
        std::fs::read_to_string(&container.log_path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(4, ' ');
                let (_ts, stream, _tag) = (parts.next()?, parts.next()?, parts.next()?);
                Some((stream.to_string(), parts.next()?.to_string()))
            })
            .collect()
    }

    fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        log[log.len().saturating_sub(n)..]
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The agent's log lines (stderr) with `message`.
    fn logged(&self, message: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|(stream, _)| stream == "stderr")
            .filter_map(|(_, line)| serde_json::from_str::<Value>(&line).ok())
            .filter(|v| v["message"] == message || v["fields"]["message"] == message)
            .collect()
    }

    /// The records the stdout output wrote.
    fn records(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|(stream, _)| stream == "stdout")
            .filter_map(|(_, line)| serde_json::from_str::<Value>(&line).ok())
            .collect()
    }
}

/// Runs a repository script; its last stdout line (the path it printed).
fn script(path: &str, args: &[&std::ffi::OsStr]) -> Result<PathBuf> {
    let out = Command::new("bash")
        .arg(repo_root().join(path))
        .args(args)
        .output()
        .with_context(|| format!("running {path}"))?;
    ensure!(
        out.status.success(),
        "{path} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .context("the script printed nothing")?;
    Ok(PathBuf::from(last))
}

/// The status code of GET `path` on `ip:port` (HTTP/1.0), within 5 s.
fn http_status(ip: &str, port: u16, path: &str) -> Result<u16> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("GET {path} on {addr}: not an HTTP answer: {text:?}"))
}

/// The API's record of container `id`, once `check` accepts it.
async fn api_record(
    socket: &Path,
    id: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    wait_until(TIMEOUT, what, || async {
        let body = get_unix(socket, &format!("/v1/containers/{id}")).await?;
        let record: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        Ok(check(&record).then_some(record))
    })
    .await
}

/// A running sibling workload in namespace `shop` (which the example lc-filter keeps).
async fn sibling(cri: &CriDriver, prefix: &str) -> Result<gannet_test_kit::CriContainer> {
    let pod = cri
        .create_pod(&PodSpec::new(prefix).namespace("shop"))
        .await?;
    cri.run_container(&pod, &ContainerSpec::sleeper("app"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifests_pod_runs_on_the_lab_and_discovers_the_node() -> Result<()> {
    let site = Site::new("daemonset").await?;
    let cri = &site.cri;
    let before = sibling(cri, "before").await?;
    let manifest = site.manifest()?;
    let agent = site.run(&manifest, "gannet-a").await?;
    agent.wait_ready(cri).await?;
    ensure!(agent.probe_status("liveness")? == 200, "liveness probe");

    // The image is reproducible: the same binary gives the same archive, byte for byte.
    let images = site.work.path().join("images");
    let again = script(
        "scripts/image.sh",
        &[
            "--binary".as_ref(),
            Gannet::bin()?.as_os_str(),
            "--out".as_ref(),
            site.work.path().join("images-again").as_os_str(),
        ],
    )?;
    ensure!(
        std::fs::read(images.join("gannet-image.tar"))? == std::fs::read(&again)?,
        "two builds of the image differ"
    );

    // The broken plugin is refused by name; the agent runs on the four others.
    let refused = agent.logged("Plugin refused.");
    ensure!(
        refused.len() == 1 && refused[0].to_string().contains(BROKEN_PLUGIN),
        "refusals: {refused:?}\n{}",
        agent.log_tail(30)
    );
    let compiled = agent.logged("Plugin compiled in a child process.");
    ensure!(
        compiled.len() == PLUGINS.len(),
        "a cold cache compiles every plugin once: {compiled:?}"
    );

    // The API socket appeared on the host path and answers with a full record: pid
    // liveness through the host's /proc under the host root, hostname, upper dir, rootfs.
    let pid = cri.container_pid(&before).await?;
    let socket = site.api_socket();
    let r = api_record(&socket, &before.id, "the sibling in the API", |r| {
        r["state"] == "running"
    })
    .await
    .with_context(|| agent.log_tail(30))?;
    ensure!(r["pid"] == pid, "pid: {r}");
    ensure!(
        r["k8s"]["node_name"] == NODE_NAME,
        "node name from the downward API: {r}"
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    ensure!(r["hostname"] == hostname.trim(), "hostname: {r}");
    let upper = r["upper_dir"].as_str().context("upper_dir")?;
    ensure!(
        Path::new(upper).is_dir() && upper.contains("overlayfs/snapshots/"),
        "{r}"
    );
    let rootfs = r["rootfs_dir"].as_str().context("rootfs_dir")?;
    ensure!(rootfs.ends_with(&format!("{}/rootfs", before.id)), "{r}");
    ensure!(Path::new(rootfs).is_dir(), "{rootfs}");
    ensure!(
        r["tags"].as_object().is_some_and(|t| !t.is_empty()),
        "the plugins tagged it: {r}"
    );

    // The check deploy/README.md gives (`kubectl exec … gannet list`), as CRI exec.
    let listed = cri
        .exec_sync(
            agent.container()?,
            &["gannet", "list", "--json", "--host-root", "/host"],
        )
        .await?;
    ensure!(
        listed.exit_code == 0 && listed.stdout.contains(&before.id),
        "gannet list in the pod: {listed:?}"
    );

    // kill -9 → `removed` at the output, with the exit code.
    cri.kill_9(&before).await?;
    wait_until(
        TIMEOUT,
        "the kill -9 as removed at the stdout output",
        || async {
            Ok(agent
                .records()
                .iter()
                .any(|e| {
                    e["event"] == "removed"
                        && e["record"]["id"] == before.id.as_str()
                        && e["record"]["exit_code"] == 137
                })
                .then_some(()))
        },
    )
    .await
    .with_context(|| agent.log_tail(30))?;

    // containerd restarts (its socket file is replaced inside the mounted directory):
    // the agent reconnects and sees a pod started afterwards.
    site.lab.restart()?;
    let after = sibling(cri, "after").await?;
    api_record(&socket, &after.id, "a pod started after the restart", |r| {
        r["state"] == "running"
    })
    .await
    .with_context(|| agent.log_tail(30))?;
    agent.wait_ready(cri).await?;

    // A pod restart with the cache on a hostPath compiles nothing the second time.
    cri.remove_pod(&agent.running.pod).await?;
    let again = site.run(&manifest, "gannet-b").await?;
    again.wait_ready(cri).await?;
    ensure!(
        again
            .logged("Plugin compiled in a child process.")
            .is_empty()
            && !again
                .log()
                .iter()
                .any(|(_, l)| l.contains("compiling in-process")),
        "the second pod compiled:\n{}",
        again.log_tail(30)
    );
    let loaded = again.logged("Plugin loaded.");
    ensure!(
        loaded.len() == PLUGINS.len() && loaded.iter().all(|l| l["fields"]["from_cache"] == true),
        "the second pod loads every plugin from the cache: {loaded:?}"
    );
    api_record(&socket, &after.id, "the sibling through the new pod", |r| {
        r["state"] == "running"
    })
    .await?;

    // A plugin image built `--compile-with` this agent fills an empty cache: a pod on a
    // new node (a fresh cache directory) compiles nothing either.
    cri.remove_pod(&again.running.pod).await?;
    // Packing refuses a plugin that does not compile, naming it.
    let src = site.work.path().join("plugin-src");
    let out = site.work.path().join("images-precompiled");
    let compile_args = |dir: &Path| -> Result<Vec<std::ffi::OsString>> {
        Ok(vec![
            dir.into(),
            "--compile-with".into(),
            Gannet::bin()?.into(),
            "--name".into(),
            "docker.io/library/gannet-plugins:precompiled".into(),
            "--out".into(),
            out.clone().into(),
        ])
    };
    let refused = Command::new("bash")
        .arg(repo_root().join("scripts/plugin-image.sh"))
        .args(compile_args(&src)?)
        .output()?;
    ensure!(
        !refused.status.success()
            && String::from_utf8_lossy(&refused.stderr).contains(BROKEN_PLUGIN),
        "plugin-image.sh --compile-with packed a broken plugin: {refused:?}"
    );
    std::fs::remove_file(src.join(BROKEN_PLUGIN))?;
    let args = compile_args(&src)?;
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let precompiled = script("scripts/plugin-image.sh", &args)?;
    site.lab.import_images(&[&precompiled])?;
    let mut manifest = site.manifest()?;
    manifest.container_mut("plugins")?.image = "gannet-plugins:precompiled".into();
    let mut node = site.node("gannet-c")?;
    let fresh_cache = site.work.path().join("cache-fresh");
    node.stand_in("/var/cache/gannet/plugins", &fresh_cache)?;
    let third = site.run_on(&manifest, &node).await?;
    third.wait_ready(cri).await?;
    let loaded = third.logged("Plugin loaded.");
    ensure!(
        third
            .logged("Plugin compiled in a child process.")
            .is_empty()
            && loaded.len() == PLUGINS.len()
            && loaded.iter().all(|l| l["fields"]["from_cache"] == true),
        "a precompiled plugin image still compiled: {loaded:?}\n{}",
        third.log_tail(30)
    );
    Ok(())
}

impl Agent {
    /// Waits until a log line of the agent contains every one of `needles`; that line.
    async fn wait_log(&self, needles: &[&str]) -> Result<String> {
        wait_until(TIMEOUT, &format!("a log line with {needles:?}"), || async {
            Ok(self
                .log()
                .into_iter()
                .map(|(_, line)| line)
                .find(|line| needles.iter().all(|n| line.contains(n))))
        })
        .await
        .with_context(|| format!("agent log:\n{}", self.log_tail(30)))
    }

    /// The agent is alive but not ready, and its container has not exited: not a crash
    /// loop in the making.
    async fn assert_up_but_not_ready(&self, cri: &CriDriver) -> Result<()> {
        wait_until(TIMEOUT, "the health listener", || async {
            Ok((self.probe_status("liveness").ok() == Some(200)).then_some(()))
        })
        .await
        .with_context(|| format!("agent log:\n{}", self.log_tail(30)))?;
        for _ in 0..3 {
            ensure!(self.probe_status("readiness")? == 503, "ready");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let status = cri.status(self.container()?).await?;
        ensure!(
            status.state == 1,
            "the agent container left running (state {}, exit {}):\n{}",
            status.state,
            status.exit_code,
            self.log_tail(30)
        );
        Ok(())
    }
}

/// Makes the gannet container's mount of `volume` read-only.
fn read_only(manifest: &mut DaemonSet, volume: &str) -> Result<()> {
    for mount in &mut manifest.container_mut("gannet")?.volume_mounts {
        if mount.name == volume {
            mount.read_only = true;
        }
    }
    Ok(())
}

/// The manifest with one change, run as pod `name`.
async fn run_variant(
    site: &Site,
    name: &str,
    edit: impl FnOnce(&mut DaemonSet) -> Result<()>,
) -> Result<Agent> {
    let mut manifest = site.manifest()?;
    edit(&mut manifest)?;
    site.run(&manifest, name).await
}

/// Least privilege: the manifest adds no capability, and mounts everything read-only but
/// the plugin cache and the API socket directory. Each of those grants, and uid 0, is
/// shown needed by what breaks without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_grant_the_manifest_keeps_is_needed() -> Result<()> {
    let site = Site::new("daemonset-privilege").await?;
    let cri = &site.cri;
    let manifest = site.manifest()?;
    let gannet = manifest
        .template
        .spec
        .containers
        .iter()
        .find(|c| c.name == "gannet")
        .context("no gannet container")?;
    let security = gannet.security_context.clone().unwrap_or_default();
    let caps = security.capabilities.clone().unwrap_or_default();
    ensure!(
        caps.add.is_empty() && caps.drop == ["ALL"],
        "capabilities {caps:?}"
    );
    ensure!(security.read_only_root_filesystem == Some(true));
    let writable: Vec<&str> = gannet
        .volume_mounts
        .iter()
        .filter(|m| !m.read_only)
        .map(|m| m.name.as_str())
        .collect();
    ensure!(
        writable == ["plugin-cache", "api"],
        "writable mounts {writable:?}"
    );

    // Not root: it cannot create its API sockets in the node's root-owned /run/gannet,
    // and exits naming the socket.
    let as_nobody = |m: &mut DaemonSet| {
        m.container_mut("gannet")?
            .security_context
            .get_or_insert_with(Default::default)
            .run_as_user = Some(65534);
        Ok(())
    };
    let agent = run_variant(&site, "gannet-nobody", as_nobody).await?;
    agent
        .wait_log(&["/run/gannet/api.sock", "Permission denied"])
        .await?;
    cri.remove_pod(&agent.running.pod).await?;
    // Even with its own API and cache directories, the root-owned containerd socket
    // (0660) refuses it: not ready, and the log says why.
    let mut node = site.node("gannet-nobody-own-dirs")?;
    let own = |name: &str| -> Result<PathBuf> {
        let dir = site.work.path().join(name);
        std::fs::create_dir_all(&dir)?;
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534))?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        Ok(dir)
    };
    let (own_api, own_cache) = (own("api-nobody")?, own("cache-nobody")?);
    node.stand_in("/run/gannet", &own_api)?;
    node.stand_in("/var/cache/gannet/plugins", &own_cache)?;
    let mut manifest_nobody = site.manifest()?;
    as_nobody(&mut manifest_nobody)?;
    let agent = site.run_on(&manifest_nobody, &node).await?;
    agent
        .wait_log(&["permission denied on runtime socket /run/containerd/containerd.sock"])
        .await?;
    agent.assert_up_but_not_ready(cri).await?;
    cri.remove_pod(&agent.running.pod).await?;

    // The API socket directory read-only: the API cannot listen, and says where.
    let agent = run_variant(&site, "gannet-api-ro", |m| read_only(m, "api")).await?;
    let line = agent.wait_log(&["/run/gannet/api.sock"]).await?;
    ensure!(line.contains("ead-only"), "{line}");
    cri.remove_pod(&agent.running.pod).await?;

    // The plugin cache read-only: the agent refuses to start, naming the cache (a restart
    // must not compile every plugin again, nor run without the cache it was given).
    let agent = run_variant(&site, "gannet-cache-ro", |m| read_only(m, "plugin-cache")).await?;
    agent
        .wait_log(&[
            "plugin cache \"/var/cache/gannet/plugins\"",
            "Read-only file system",
        ])
        .await?;
    cri.remove_pod(&agent.running.pod).await?;
    Ok(())
}

/// A node without the host root or the containerd socket directory the manifest names: a
/// clear log line, `/readyz` false, and the agent keeps running (no crash loop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_host_root_or_socket_directory_is_not_ready_and_not_a_crash_loop() -> Result<()> {
    let site = Site::new("daemonset-missing").await?;
    let cri = &site.cri;
    let manifest = site.manifest()?;
    let empty = site.lab.empty_host_root()?;
    for (host_path, needles) in [
        ("/run/containerd", vec!["/run/containerd/containerd.sock"]),
        ("/", vec!["/host"]),
    ] {
        let mut node = site.node(&format!("gannet-missing-{}", host_path.len()))?;
        node.stand_in(host_path, &empty)?;
        let agent = site.run_on(&manifest, &node).await?;
        agent.wait_log(&needles).await?;
        agent.assert_up_but_not_ready(cri).await?;
        cri.remove_pod(&agent.running.pod).await?;
    }
    Ok(())
}
