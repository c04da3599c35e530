//! Conversion tests over recorded runtime answers (`tests/fixtures`) and built ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::env::is_service_link_env;
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
        resources: None,
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
        created_at: 1_700_000_000_000_000_000,
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
            pod_ips: &["10.88.0.7".to_owned()],
            node_name: "node-a",
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
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/record.md"))?;
    let mut record = ContainerRecord::default();
    record.mounts.push(Mount::default());
    record.ports.push(crate::record::ContainerPort::default());
    let json = serde_json::to_value(&record)?;
    // Every key, nested ones too (`k8s.owner.deployment`, `ports[].protocol`), except the
    // free-form maps' keys.
    fn collect(value: &Value, keys: &mut Vec<String>) {
        let Value::Object(map) = value else { return };
        for (key, value) in map {
            keys.push(key.clone());
            let nested = match value {
                Value::Array(items) => items.first(),
                v @ Value::Object(_) => Some(v),
                _ => None,
            };
            if let Some(v) = nested {
                collect(v, keys);
            }
        }
    }
    let mut keys: Vec<String> = Vec::new();
    collect(&json, &mut keys);
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

#[test]
fn pod_network_node_and_start_time_come_from_the_sandbox() -> TestResult {
    let status = fixture("containerd-1.6-running.json")?;
    let (_, rec) = record(&status, Liveness::Alive, &HostRoot::default());
    assert_eq!(rec.k8s.pod_ips, ["10.88.0.7"]);
    assert_eq!(rec.k8s.node_name, "node-a");
    assert_eq!(
        rec.k8s.pod_start_time.map(|t| t.unix_nanos),
        Some(1_700_000_000_000_000_000)
    );
    // The fixture's pod is bare: no owner.
    assert_eq!(rec.k8s.owner, crate::record::Owner::default());
    Ok(())
}

#[test]
fn resources_come_from_cri_else_from_the_runtime_spec() -> TestResult {
    let mut status = fixture("containerd-1.6-running.json")?;
    let mut info: Value = serde_json::from_str(&status.info["info"])?;
    info["runtimeSpec"]["linux"]["resources"] = serde_json::json!({
        "cpu": {"shares": 512, "quota": 100000, "period": 100000},
        "memory": {"limit": 268435456}
    });
    status.info.insert("info".into(), info.to_string());
    let (_, from_spec) = record(&status, Liveness::Alive, &HostRoot::default());
    assert_eq!(from_spec.resources.cpu_request_millis, Some(500));
    assert_eq!(from_spec.resources.cpu_limit_millis, Some(1000));
    assert_eq!(from_spec.resources.memory_limit_bytes, Some(268_435_456));
    status.resources = Some(crate::runtime::cri::LinuxResources {
        cpu_shares: 102,
        memory_limit_bytes: 1 << 20,
        ..Default::default()
    });
    let (_, from_cri) = record(&status, Liveness::Alive, &HostRoot::default());
    assert_eq!(from_cri.resources.cpu_request_millis, Some(100));
    assert_eq!(from_cri.resources.cpu_limit_millis, None);
    assert_eq!(from_cri.resources.memory_limit_bytes, Some(1 << 20));
    Ok(())
}

#[test]
fn ports_come_from_the_kubelet_annotation() -> TestResult {
    let mut status = fixture("containerd-1.6-running.json")?;
    status.annotations.insert(
        "io.kubernetes.container.ports".into(),
        r#"[{"name":"http","containerPort":8080,"protocol":"TCP"}]"#.into(),
    );
    let (_, rec) = record(&status, Liveness::Alive, &HostRoot::default());
    assert_eq!(rec.ports.len(), 1);
    assert_eq!(rec.ports[0].container_port, 8080);
    status
        .annotations
        .insert("io.kubernetes.container.ports".into(), "not json".into());
    let (_, bad) = record(&status, Liveness::Alive, &HostRoot::default());
    assert!(bad.ports.is_empty());
    Ok(())
}
