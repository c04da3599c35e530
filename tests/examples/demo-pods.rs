//! Drives the demo's sample pods in a running lab (used by `scripts/demo.sh`):
//!
//! - `demo-pods LAB` creates the sample pods and leaves them running: `shop` (a
//!   two-container web pod and a cart pod whose api holds a secret env var), `batch` (a
//!   worker and a migration that has already exited) and `kube-system` (a coredns pod the
//!   demo's `lc-filter` drops). Pods carry a `team` label for `team-labels`.
//! - `demo-pods LAB churn` creates a short-lived `shop/checkout` pod (on the pod network), lets its container
//!   run a few seconds, then kills it and removes the pod, so `added`, `updated` and
//!   `removed` events flow while the demo watches.
//!
//! Everything goes through the test kit's CRI driver, like a kubelet.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use gannet_test_kit::{ContainerSpec, Containerd, CriDriver, PodSpec};
use k8s_cri::v1::ContainerState;

/// How long a sample container may take to reach its state.
const STATE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the churn container runs before it is killed.
const CHURN_LIFETIME: Duration = Duration::from_secs(4);

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let lab = args.next().map(PathBuf::from).context(
        "usage: demo-pods LAB [churn] (a lab started with tests/harness/containerd.sh up LAB)",
    )?;
    let lab = Containerd::attach(&lab)?;
    let mut cri = lab.cri().await?;
    match args.next().and_then(|a| a.into_string().ok()).as_deref() {
        None => {
            // The demo tears the whole lab down itself; the pods must outlive this process.
            cri.keep_pods();
            create_sample_pods(&cri).await
        }
        Some("churn") => churn(&cri).await,
        Some(other) => bail!("unknown mode {other:?}: use no mode (create) or `churn`"),
    }
}

/// Creates the sample pods and waits until each container reached its state.
async fn create_sample_pods(cri: &CriDriver) -> Result<()> {
    let web = cri
        .create_pod(
            &PodSpec::new("web")
                .namespace("shop")
                .label("team", "storefront")
                .label("version", "1.4.2")
                .annotation("example.com/team", "storefront"),
        )
        .await?;
    let server = ContainerSpec::new(
        "server",
        "trap 'exit 0' TERM; while :; do echo \"GET / 200\"; sleep 2 & wait; done",
    );
    let shipper = ContainerSpec::sleeper("log-shipper").env("SHIP_TO", "collector:4317");
    let api = ContainerSpec::sleeper("api")
        .env("APP_PORT", "9090")
        .env("DB_PASSWORD", "s3cret-demo");
    let worker = ContainerSpec::new(
        "worker",
        "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo \"job $i done\"; sleep 3 & wait; done",
    )
    .env("API_TOKEN", "t0ken-demo");
    let migrate = ContainerSpec::new("migrate", "echo 'migrated 3 tables'; exit 0");
    let dns = ContainerSpec::sleeper("coredns");

    let mut started = Vec::new();
    for spec in [&server, &shipper] {
        started.push((web.clone(), cri.run_container(&web, spec).await?));
    }
    let cart = cri
        .create_pod(
            &PodSpec::new("cart")
                .namespace("shop")
                .label("team", "checkout"),
        )
        .await?;
    started.push((cart.clone(), cri.run_container(&cart, &api).await?));
    let report = cri
        .create_pod(
            &PodSpec::new("report")
                .namespace("batch")
                .label("team", "data")
                .label("schedule", "nightly"),
        )
        .await?;
    started.push((report.clone(), cri.run_container(&report, &worker).await?));
    let migration = cri.run_container(&report, &migrate).await?;
    let coredns = cri
        .create_pod(&PodSpec::new("coredns").namespace("kube-system"))
        .await?;
    started.push((coredns.clone(), cri.run_container(&coredns, &dns).await?));

    for (_, container) in &started {
        cri.wait_state(container, ContainerState::ContainerRunning, STATE_TIMEOUT)
            .await?;
    }
    cri.wait_state(&migration, ContainerState::ContainerExited, STATE_TIMEOUT)
        .await?;
    for (pod, container) in &started {
        println!(
            "running  {}/{}/{}  {}",
            pod.namespace,
            pod.name,
            container.name,
            &container.id[..12]
        );
    }
    println!(
        "exited   {}/{}/{}  {}",
        report.namespace,
        report.name,
        migration.name,
        &migration.id[..12]
    );
    Ok(())
}

/// Creates a pod and container, lets it run, kills it and removes the pod.
async fn churn(cri: &CriDriver) -> Result<()> {
    let pod = cri
        .create_pod(
            // On the lab's pod network, so its entity event shows a pod IP.
            &PodSpec::new("checkout")
                .namespace("shop")
                .label("team", "checkout")
                .pod_network(),
        )
        .await?;
    let job = cri
        .run_container(&pod, &ContainerSpec::sleeper("job").env("ORDER", "1042"))
        .await?;
    cri.wait_state(&job, ContainerState::ContainerRunning, STATE_TIMEOUT)
        .await?;
    println!(
        "started  {}/{}/{}  {}",
        pod.namespace,
        pod.name,
        job.name,
        &job.id[..12]
    );
    tokio::time::sleep(CHURN_LIFETIME).await;
    cri.stop(&job, 0).await?;
    println!("killed   {}/{}/{}", pod.namespace, pod.name, job.name);
    cri.remove_pod(&pod).await?;
    println!("removed  {}/{}", pod.namespace, pod.name);
    Ok(())
}
