//! What the benchmarks share: a container record of realistic size.

use gannet::record::{ContainerRecord, ContainerState, Mount};

/// A record of realistic size: 30 labels, 40 env vars (6 secret-looking), 10 mounts,
/// 10 container annotations, 8 pod labels and 6 pod annotations.
pub fn realistic_record() -> ContainerRecord {
    let mut r = ContainerRecord {
        id: "3f5e9c0a7b1d2e4f6a8b0c2d4e6f8a0b1c3d5e7f9a1b3c5d7e9f0a2b4c6d8e0f".into(),
        name: "checkout".into(),
        state: ContainerState::Running,
        pid: 48_213,
        restart_count: 1,
        sandbox_id: "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b".into(),
        runtime_name: "containerd".into(),
        snapshotter: Some("overlayfs".into()),
        image: "registry.example.com/shop/checkout:2.14.3".into(),
        image_digest: Some(
            "sha256:0d5f0c6c8f7e5e9b1a2d3c4b5a69788776655443322110ffeeddccbbaa998877".into(),
        ),
        log_path: "/var/log/pods/shop_checkout-7d9f8c6b5-x2k4q_0b1c2d3e/checkout/1.log".into(),
        log_format: "cri".into(),
        cgroup_path: Some("kubepods-burstable-pod0b1c2d3e.slice:cri-containerd:3f5e9c".into()),
        hostname: Some("checkout-7d9f8c6b5-x2k4q".into()),
        ..Default::default()
    };
    for i in 0..30 {
        r.labels.insert(
            format!("example.com/label-{i:02}"),
            format!("value-{i:02}-abcdefgh"),
        );
    }
    for i in 0..10 {
        r.annotations.insert(
            format!("example.com/annotation-{i}"),
            format!("annotation value {i} with some text"),
        );
    }
    for name in [
        "DB_PASSWORD",
        "API_TOKEN",
        "STRIPE_SECRET",
        "SIGNING_KEY",
        "SESSION_SECRET_B64",
        "GITHUB_TOKEN",
    ] {
        r.env.insert(name.into(), "s3cr3t-value-0123456789".into());
    }
    for i in 0..34 {
        r.env
            .insert(format!("APP_SETTING_{i:02}"), format!("setting-{i}"));
    }
    for i in 0..10 {
        r.mounts.push(Mount {
            source: format!("/var/lib/kubelet/pods/0b1c2d3e/volumes/kubernetes.io~secret/vol-{i}"),
            destination: format!("/etc/app/vol-{i}"),
            kind: "bind".into(),
        });
    }
    r.k8s.namespace = "shop".into();
    r.k8s.pod_name = "checkout-7d9f8c6b5-x2k4q".into();
    r.k8s.pod_uid = "0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e".into();
    r.k8s.container_name = "checkout".into();
    for (k, v) in [
        ("app", "checkout"),
        ("app.kubernetes.io/team", "payments"),
        ("app.kubernetes.io/version", "2.14.3"),
        ("tier", "api"),
        ("cost-center", "cc-4711"),
        ("pod-template-hash", "7d9f8c6b5"),
        ("release", "stable"),
        ("track", "main"),
    ] {
        r.k8s.pod_labels.insert(k.into(), v.into());
    }
    for i in 0..5 {
        r.k8s.pod_annotations.insert(
            format!("example.com/pod-annotation-{i}"),
            format!("value {i}"),
        );
    }
    r.k8s.pod_annotations.insert(
        "owner.example.com/email".into(),
        "payments@example.com".into(),
    );
    r
}
