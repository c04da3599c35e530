//! Tests of the harness itself, against a real containerd: pods and containers run and log,
//! stop and `kill -9` give the right exit codes, a private containerd survives restarts with
//! its containers, the pod guard removes exactly its own pods, pods on the lab's CNI network
//! get real IPs beside host-network pods, and teardown leaves nothing (pod network included).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use k8s_cri::v1::ContainerState;

use gannet_test_kit::{
    wait_until, wait_until_blocking, ContainerSpec, Containerd, CriDriver, Gannet, Pod, PodSpec,
};

/// Generous: two cores may be busy building or running other tests.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_pod_with_a_container_runs_logs_execs_and_stops_cleanly() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(&PodSpec::new("selftest-run").namespace("e2e-harness"))
        .await?;
    let web = cri
        .run_container(&pod, &ContainerSpec::sleeper("web"))
        .await?;
    let status = cri
        .wait_state(&web, ContainerState::ContainerRunning, START_TIMEOUT)
        .await?;
    ensure!(
        status.labels.get("io.kubernetes.pod.name") == Some(&pod.name),
        "pod name label missing: {:?}",
        status.labels
    );
    ensure!(
        status
            .annotations
            .get("io.kubernetes.container.restartCount")
            == Some(&"0".to_string()),
        "restartCount annotation missing: {:?}",
        status.annotations
    );
    ensure!(
        Path::new(&status.log_path) == web.log_path,
        "CRI log path {} != {}",
        status.log_path,
        web.log_path.display()
    );
    ensure!(web.log_path.starts_with(&pod.log_dir));

    // The log file appears, with the line the workload printed (CRI log format).
    let line = wait_until(START_TIMEOUT, "the workload's first log line", || async {
        let text = std::fs::read_to_string(&web.log_path).unwrap_or_default();
        Ok(text
            .lines()
            .find(|l| l.contains("gannet-e2e: started"))
            .map(str::to_string))
    })
    .await
    .map_err(|e| lab.explain(e))?;
    ensure!(line.contains(" stdout F "), "not a CRI log line: {line}");

    // Envs (service links and look-alikes) and the host-path mount reach the container.
    let out = cri
        .exec_sync(
            &web,
            &[
                "sh",
                "-c",
                "echo $APP_PORT $KUBERNETES_SERVICE_HOST; echo hi > /data/from-ctr",
            ],
        )
        .await?;
    ensure!(out.exit_code == 0, "exec failed: {out:?}");
    ensure!(out.stdout.trim() == "8080 10.96.0.1", "envs: {out:?}");
    ensure!(std::fs::read_to_string(pod.host_data.join("from-ctr"))? == "hi\n");

    // The container runs in the pod cgroup under the lab's own cgroup root.
    let pid = cri.container_pid(&web).await?;
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    ensure!(
        cgroup.contains(&format!("{}/", pod.cgroup_parent)),
        "pid {pid} not under {}: {cgroup}",
        pod.cgroup_parent
    );

    // SIGTERM is trapped: a graceful stop ends with 0 (an untrapped PID 1 would get 137).
    cri.stop(&web, 30).await?;
    let stopped = cri
        .wait_state(&web, ContainerState::ContainerExited, START_TIMEOUT)
        .await?;
    ensure!(
        stopped.exit_code == 0 && stopped.reason == "Completed",
        "stop gave exit {} ({})",
        stopped.exit_code,
        stopped.reason
    );

    cri.remove_pod(&pod).await?;
    ensure!(
        !cri.list_pod_ids().await?.contains(&pod.id),
        "pod {} still listed after remove_pod",
        pod.id
    );
    Ok(())
}

#[tokio::test]
async fn kill_9_gives_exit_code_137() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let pod = cri.create_pod(&PodSpec::new("selftest-kill")).await?;
    let victim = cri
        .run_container(&pod, &ContainerSpec::sleeper("victim"))
        .await?;
    cri.wait_state(&victim, ContainerState::ContainerRunning, START_TIMEOUT)
        .await?;
    let pid = cri.kill_9(&victim).await?;
    let status = cri
        .wait_state(&victim, ContainerState::ContainerExited, START_TIMEOUT)
        .await?;
    ensure!(
        status.exit_code == 137,
        "kill -9 of pid {pid} gave exit {} ({})",
        status.exit_code,
        status.reason
    );
    let (_, info) = cri.status_verbose(&victim).await?;
    ensure!(
        info["pid"] == 0,
        "an exited container keeps pid {}",
        info["pid"]
    );
    cri.remove_pod(&pod).await?;
    Ok(())
}

#[tokio::test]
async fn an_exiting_container_reports_its_code_beside_a_live_pause() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let pod = cri.create_pod(&PodSpec::new("selftest-exit")).await?;
    let short = cri
        .run_container(&pod, &ContainerSpec::exits("short", 3, 200))
        .await?;
    let status = cri
        .wait_state(&short, ContainerState::ContainerExited, START_TIMEOUT)
        .await?;
    ensure!(
        status.exit_code == 3 && status.reason == "Error",
        "exit {} ({})",
        status.exit_code,
        status.reason
    );
    ensure!(status.finished_at > status.started_at, "{status:?}");
    let pause = cri.pause_pid(&pod).await?;
    let cmdline = std::fs::read(format!("/proc/{pause}/cmdline"))?;
    ensure!(
        cmdline.starts_with(b"/pause"),
        "pid {pause} is not the pause: {}",
        String::from_utf8_lossy(&cmdline)
    );
    cri.remove_pod(&pod).await?;
    Ok(())
}

#[tokio::test]
async fn dropping_the_driver_removes_only_its_own_pods() -> Result<()> {
    let lab = Containerd::shared()?;
    let keeper = lab.cri().await?;
    let kept = keeper.create_pod(&PodSpec::new("selftest-kept")).await?;
    let (dropped_id, dropped_uid) = {
        let cri = lab.cri().await?;
        let pod = cri.create_pod(&PodSpec::new("selftest-dropped")).await?;
        cri.run_container(&pod, &ContainerSpec::sleeper("c"))
            .await?;
        (pod.id.clone(), pod.uid.clone())
    };
    let ids = keeper.list_pod_ids().await?;
    ensure!(
        !ids.contains(&dropped_id),
        "the dropped driver's pod survived"
    );
    ensure!(ids.contains(&kept.id), "another driver's pod was removed");
    let leftover = cgroup_dirs(lab.cgroup_root())
        .into_iter()
        .filter(|d| d.ends_with(format!("pod{dropped_uid}")))
        .collect::<Vec<_>>();
    ensure!(leftover.is_empty(), "pod cgroups left: {leftover:?}");
    keeper.remove_pod(&kept).await?;
    Ok(())
}

#[tokio::test]
async fn a_private_containerd_restarts_and_its_containers_keep_running() -> Result<()> {
    let lab = Containerd::private("restart")?;
    let cri = lab.cri().await?;
    let pod = cri.create_pod(&PodSpec::new("selftest-restart")).await?;
    let c = cri
        .run_container(&pod, &ContainerSpec::sleeper("c"))
        .await?;
    cri.wait_state(&c, ContainerState::ContainerRunning, START_TIMEOUT)
        .await?;
    let pid = cri.container_pid(&c).await?;
    let daemon = lab.pid().context("containerd is not running")?;

    lab.restart()?;
    let restarted = lab.pid().context("containerd did not come back")?;
    ensure!(
        restarted != daemon,
        "containerd pid {daemon} did not change"
    );
    let after_restart = lab.cri().await?;
    after_restart
        .wait_state(&c, ContainerState::ContainerRunning, START_TIMEOUT)
        .await?;
    ensure!(
        after_restart.container_pid(&c).await? == pid,
        "container pid changed"
    );

    lab.stop_daemon()?;
    ensure!(
        lab.pid().is_none(),
        "containerd still runs after stop_daemon"
    );
    ensure!(
        lab.cri().await.is_err(),
        "the socket answers with containerd stopped"
    );
    ensure!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the container died with containerd"
    );
    lab.start_daemon()?;
    let after_start = lab.cri().await?;
    after_start
        .wait_state(&c, ContainerState::ContainerRunning, START_TIMEOUT)
        .await?;
    ensure!(
        after_start.container_pid(&c).await? == pid,
        "container pid changed"
    );
    ensure!(
        lab.log_tail(200).contains("containerd successfully booted"),
        "log_tail misses the boot line:\n{}",
        lab.log_tail(20)
    );
    Ok(())
}

#[tokio::test]
async fn teardown_leaves_no_process_mount_shim_socket_or_cgroup() -> Result<()> {
    let lab = Containerd::private("teardown")?;
    let lab_dir = lab.lab().to_path_buf();
    let cgroup_root = lab.cgroup_root().to_string();
    let cri = lab.cri().await?;
    let mut pids = Vec::new();
    for name in ["selftest-down-a", "selftest-down-b"] {
        let pod = cri.create_pod(&PodSpec::new(name)).await?;
        for c in ["one", "two"] {
            let c = cri.run_container(&pod, &ContainerSpec::sleeper(c)).await?;
            cri.wait_state(&c, ContainerState::ContainerRunning, START_TIMEOUT)
                .await?;
            pids.push(cri.container_pid(&c).await?);
            // A process exec'd into the container, outside its init's process tree.
            cri.exec_sync(&c, &["sh", "-c", "sleep 1000 >/dev/null 2>&1 &"])
                .await?;
        }
    }
    // Something to clean up: shims, their sockets, rootfs mounts, pod cgroups.
    let shim_sockets = shim_sockets(&lab_dir);
    ensure!(
        !shim_sockets.is_empty(),
        "no shim sockets found under {}",
        lab_dir.display()
    );
    ensure!(
        !lab_processes(&lab_dir).is_empty(),
        "no shim processes found"
    );
    ensure!(!mounts_under(&lab_dir).is_empty(), "no rootfs mounts found");
    ensure!(
        !cgroup_dirs(&cgroup_root).is_empty(),
        "no pod cgroups found"
    );

    // A `gannet` left pointing at the lab (as a killed test would leave it): a copy of
    // /bin/sh named gannet, blocked reading stdin, with the lab socket in its command line.
    let fake_dir = std::env::temp_dir().join(format!(
        "gannet-e2e-fake-{}",
        gannet_test_kit::random_hex(3)?
    ));
    std::fs::create_dir_all(&fake_dir)?;
    let fake_gannet = fake_dir.join("gannet");
    std::fs::copy("/bin/sh", &fake_gannet)?;
    let mut leftover = Command::new(&fake_gannet)
        .arg("-c")
        .arg("read line")
        .arg(lab.socket())
        .stdin(Stdio::piped())
        .spawn()?;

    // Tear down with every pod still running: the purge path, not CRI removal.
    lab.down()?;
    drop(cri);
    let ended = wait_until_blocking(START_TIMEOUT, "the leftover gannet to end", || {
        Ok(leftover.try_wait()?)
    });
    let _ = leftover.kill();
    let _ = leftover.wait();
    std::fs::remove_dir_all(&fake_dir)?;
    ensure!(
        ended.is_ok(),
        "down left a gannet running that pointed at the lab"
    );

    let processes = lab_processes(&lab_dir);
    ensure!(processes.is_empty(), "processes left: {processes:?}");
    for pid in pids {
        ensure!(!alive(pid), "container pid {pid} survived");
    }
    let mounts = mounts_under(&lab_dir);
    ensure!(mounts.is_empty(), "mounts left: {mounts:?}");
    let cgroups = cgroup_dirs(&cgroup_root);
    ensure!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    let sockets: Vec<_> = shim_sockets.iter().filter(|s| s.exists()).collect();
    ensure!(sockets.is_empty(), "shim sockets left: {sockets:?}");
    ensure!(!lab_dir.exists(), "{} still exists", lab_dir.display());
    Ok(())
}

/// Serves `pod-net-ok` over HTTP on port 8080 (busybox httpd; SIGTERM ends it with 0).
const HTTPD_SCRIPT: &str = "mkdir -p /tmp/www && echo pod-net-ok > /tmp/www/index.html && \
     trap 'exit 0' TERM; httpd -f -p 8080 -h /tmp/www & wait";

#[tokio::test]
async fn a_pod_network_pod_gets_a_real_ip_beside_a_host_network_pod() -> Result<()> {
    let lab = Containerd::shared()?;
    let net = lab.pod_network()?;
    let cri = lab.cri().await?;
    let pod = cri
        .create_pod(
            &PodSpec::new("selftest-podnet")
                .namespace("e2e-harness")
                .pod_network(),
        )
        .await?;
    let sleeper = cri
        .run_container(&pod, &ContainerSpec::sleeper("sleeper"))
        .await?;
    let web = cri
        .run_container(&pod, &ContainerSpec::new("web", HTTPD_SCRIPT))
        .await?;
    for c in [&sleeper, &web] {
        cri.wait_state(c, ContainerState::ContainerRunning, START_TIMEOUT)
            .await?;
    }

    // CRI reports one IPv4, in the lab's own subnet.
    let ips = cri.pod_ips(&pod).await?;
    let ip = match ips.as_slice() {
        [ip] => ip.clone(),
        other => anyhow::bail!("pod {} has IPs {other:?}, not one", pod.name),
    };
    let ip4: Ipv4Addr = ip.parse().with_context(|| format!("pod IP {ip:?}"))?;
    ensure!(
        net.contains(&ip) && ip != net.gateway,
        "pod IP {ip} is not a pod address of the lab's subnet {}",
        net.subnet
    );

    // Inside: that address on eth0, the pod name as hostname, a namespace of its own.
    let addr = cri
        .exec_sync(&sleeper, &["ip", "-4", "-o", "addr", "show"])
        .await?;
    ensure!(addr.exit_code == 0, "ip addr failed: {addr:?}");
    ensure!(
        addr.stdout.contains(&format!("inet {ip}/24")),
        "ip addr in the pod does not show {ip}/24:\n{}",
        addr.stdout
    );
    let hostname = cri.exec_sync(&sleeper, &["hostname"]).await?;
    ensure!(
        hostname.stdout.trim() == pod.name,
        "hostname {:?} != pod name {}",
        hostname.stdout,
        pod.name
    );
    let pid = cri.container_pid(&sleeper).await?;
    ensure!(
        net_ns(pid)? != net_ns(std::process::id())?,
        "the pod-network container shares the host's network namespace"
    );
    let web_pid = cri.container_pid(&web).await?;
    ensure!(
        net_ns(web_pid)? == net_ns(pid)?,
        "the pod's two containers are in different network namespaces"
    );
    // The namespace is the lab's (mounted under its state directory), not /run/netns.
    let netns_path = pod_netns_path(&cri, &pod).await?;
    ensure!(
        netns_path.starts_with(lab.lab()),
        "pod netns {} is outside the lab {}",
        netns_path.display(),
        lab.lab().display()
    );

    // Real networking: the host reaches the pod's server at the pod IP, through the bridge.
    let body = wait_until(START_TIMEOUT, "the pod's httpd to answer", || async {
        Ok(http_get_at(SocketAddr::from((ip4, 8080)), "/").ok())
    })
    .await
    .map_err(|e| lab.explain(e))?;
    ensure!(
        body.contains("pod-net-ok"),
        "GET / on {ip}:8080 gave {body:?}"
    );

    // A host-network pod beside it: no pod IP, the host's namespace and hostname.
    let host_pod = cri.create_pod(&PodSpec::new("selftest-hostnet")).await?;
    let host_c = cri
        .run_container(&host_pod, &ContainerSpec::sleeper("c"))
        .await?;
    cri.wait_state(&host_c, ContainerState::ContainerRunning, START_TIMEOUT)
        .await?;
    let host_ips = cri.pod_ips(&host_pod).await?;
    ensure!(
        host_ips.is_empty(),
        "a host-network pod has IPs {host_ips:?}"
    );
    ensure!(
        net_ns(cri.container_pid(&host_c).await?)? == net_ns(std::process::id())?,
        "the host-network container is not in the host's network namespace"
    );
    let host_name = cri.exec_sync(&host_c, &["hostname"]).await?;
    let node_name = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    ensure!(
        host_name.stdout.trim() == node_name.trim(),
        "host-network hostname {:?} != the node's {node_name:?}",
        host_name.stdout
    );

    // Removing the pod through CRI releases its address and its namespace.
    let lease = lab.lab().join("cni/ipam").join(&net.network).join(&ip);
    ensure!(lease.exists(), "no host-local lease {}", lease.display());
    cri.remove_pod(&pod).await?;
    ensure!(
        !lease.exists(),
        "lease {} survived the pod",
        lease.display()
    );
    ensure!(
        !netns_path.exists(),
        "netns {} survived the pod",
        netns_path.display()
    );
    cri.remove_pod(&host_pod).await?;
    Ok(())
}

#[tokio::test]
async fn a_pod_network_lab_tears_down_its_bridge_and_namespaces() -> Result<()> {
    let lab = Containerd::private("podnet-down")?;
    let net = lab.pod_network()?;
    // Labs side by side have their own bridge and subnet.
    let shared = Containerd::shared()?.pod_network()?;
    ensure!(
        shared.bridge != net.bridge && shared.subnet != net.subnet,
        "two labs share a pod network: {shared:?} and {net:?}"
    );
    ensure!(
        link_exists(&net.bridge)?,
        "no bridge {} after up",
        net.bridge
    );

    let cri = lab.cri().await?;
    let mut ips = BTreeSet::new();
    let mut namespaces = Vec::new();
    for name in ["selftest-netdown-a", "selftest-netdown-b"] {
        let pod = cri.create_pod(&PodSpec::new(name).pod_network()).await?;
        let c = cri
            .run_container(&pod, &ContainerSpec::sleeper("c"))
            .await?;
        cri.wait_state(&c, ContainerState::ContainerRunning, START_TIMEOUT)
            .await?;
        for ip in cri.pod_ips(&pod).await? {
            ensure!(net.contains(&ip), "pod IP {ip} not in {}", net.subnet);
            ips.insert(ip);
        }
        namespaces.push(pod_netns_path(&cri, &pod).await?);
    }
    ensure!(ips.len() == 2, "two pods, IPs {ips:?}");
    ensure!(
        !bridge_ports(&net.bridge)?.is_empty(),
        "no veth on bridge {}",
        net.bridge
    );

    // Tear down with both pods running: no CRI removal, the purge path.
    lab.down()?;
    drop(cri);
    ensure!(
        !link_exists(&net.bridge)?,
        "bridge {} survived down",
        net.bridge
    );
    for ns in &namespaces {
        ensure!(!ns.exists(), "netns {} survived down", ns.display());
    }
    let routes = ip(&["-4", "route", "show", "table", "all"])?;
    ensure!(
        !routes.contains(&net.bridge) && !routes.contains(net.subnet.trim_end_matches("/24")),
        "routes of {} or {} left:\n{routes}",
        net.bridge,
        net.subnet
    );
    let cached: Vec<_> = std::fs::read_dir("/var/lib/cni/results")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{}-", net.network)))
        .collect();
    ensure!(cached.is_empty(), "CNI result cache left: {cached:?}");
    Ok(())
}

#[test]
fn the_watchdog_tears_a_lab_down_when_its_process_exits() -> Result<()> {
    let lab = PathBuf::from(format!(
        "/tmp/gannet-e2e-watchdog-{}",
        gannet_test_kit::random_hex(3)?
    ));
    let script = gannet_test_kit::script_path();
    // A stand-in for a test process that dies without running any Drop.
    let mut owner = Command::new("sleep").arg("600").spawn()?;
    let up = Command::new("bash")
        .arg(&script)
        .arg("up")
        .arg(&lab)
        .stdout(Stdio::null())
        .output()?;
    if !up.status.success() {
        let _ = owner.kill();
        anyhow::bail!("up failed: {}", String::from_utf8_lossy(&up.stderr));
    }
    let mut watchdog = Command::new("bash")
        .arg(&script)
        .arg("reap-after")
        .arg(owner.id().to_string())
        .arg(&lab)
        .stdout(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(700));
    ensure!(
        lab.exists(),
        "the watchdog tore the lab down while its process lived"
    );
    owner.kill()?;
    owner.wait()?;
    let status = wait_until_blocking(START_TIMEOUT, "the watchdog to finish", || {
        Ok(watchdog.try_wait()?)
    })?;
    ensure!(status.success(), "reap-after failed: {status}");
    ensure!(!lab.exists(), "{} survived its process", lab.display());
    Ok(())
}

#[test]
fn gannet_runs_and_failure_reports_carry_the_containerd_log() -> Result<()> {
    let version = Gannet::cmd(["version"]).run()?.success()?;
    ensure!(version.stdout.starts_with("gannet "), "{version}");

    let lab = Containerd::shared()?;
    let failed = lab.gannet(["no-such-command"]).run()?.failure()?;
    ensure!(failed
        .command
        .ends_with(&format!("--socket {}", lab.socket().display())));
    let report = failed.to_string();
    for part in [
        "command: ",
        "no-such-command",
        "--- stderr ---",
        "--- containerd log",
    ] {
        ensure!(report.contains(part), "report lacks {part:?}:\n{report}");
    }
    ensure!(
        failed.clone().success().is_err(),
        "success() accepted a failed run"
    );
    Ok(())
}

// ---- pod networking ----

/// The network namespace of process `pid` (`net:[<inode>]`).
fn net_ns(pid: u32) -> Result<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .with_context(|| format!("reading /proc/{pid}/ns/net"))
}

/// The network namespace path in the pod's runtime spec (verbose PodSandboxStatus).
async fn pod_netns_path(cri: &CriDriver, pod: &Pod) -> Result<PathBuf> {
    let (_, info) = cri.pod_status_verbose(pod).await?;
    info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|ns| ns["type"] == "network")
        .and_then(|ns| ns["path"].as_str())
        .map(PathBuf::from)
        .with_context(|| format!("no network namespace path for pod {}: {info}", pod.name))
}

/// `ip ARGS`: its stdout.
fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    ensure!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether a network interface named `name` exists on the host.
fn link_exists(name: &str) -> Result<bool> {
    Ok(Command::new("ip")
        .args(["link", "show", "dev", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running ip link show")?
        .success())
}

/// The interfaces attached to `bridge`.
fn bridge_ports(bridge: &str) -> Result<Vec<String>> {
    Ok(ip(&["-o", "link", "show", "master", bridge])?
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect())
}

/// An HTTP/1.0 GET of `path` at `addr`: the body of a 200 answer.
fn http_get_at(addr: SocketAddr, path: &str) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    ensure!(
        text.starts_with("HTTP/1.") && text.split_whitespace().nth(1) == Some("200"),
        "GET {path} on {addr}: {text:?}"
    );
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("")
        .to_string())
}

// ---- what teardown must leave behind: nothing ----

/// Live (non-zombie) processes whose cwd or command line is under `lab`.
fn lab_processes(lab: &Path) -> Vec<(u32, String)> {
    let me = std::process::id();
    let lab_str = lab.to_string_lossy().into_owned();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || !alive(pid) {
            continue;
        }
        let cwd = std::fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        if cwd.starts_with(lab) || cmdline.contains(&lab_str) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .unwrap_or(false)
}

/// Mount points under `lab`, from this process's mountinfo.
fn mounts_under(lab: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| Path::new(m).starts_with(lab))
        .map(str::to_string)
        .collect()
}

/// Every directory under the lab's cgroup root, in every hierarchy (v1 and v2).
fn cgroup_dirs(cgroup_root: &str) -> BTreeSet<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.join(cgroup_root)];
    if let Ok(controllers) = std::fs::read_dir(base) {
        roots.extend(controllers.flatten().map(|c| c.path().join(cgroup_root)));
    }
    let mut found = BTreeSet::new();
    let mut stack: Vec<PathBuf> = roots.into_iter().filter(|r| r.is_dir()).collect();
    while let Some(dir) = stack.pop() {
        if let Ok(children) = std::fs::read_dir(&dir) {
            stack.extend(children.flatten().map(|c| c.path()).filter(|p| p.is_dir()));
        }
        found.insert(dir);
    }
    found
}

/// The shim sockets the lab's task bundles name (`/run/containerd/s/<hash>`).
fn shim_sockets(lab: &Path) -> BTreeSet<PathBuf> {
    let tasks = lab.join("state/io.containerd.runtime.v2.task");
    let mut found = BTreeSet::new();
    for ns in std::fs::read_dir(tasks).into_iter().flatten().flatten() {
        for bundle in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            if let Ok(address) = std::fs::read_to_string(bundle.path().join("address")) {
                found.insert(PathBuf::from(address.trim().trim_start_matches("unix://")));
            }
        }
    }
    found
}
