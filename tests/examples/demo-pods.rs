//! Creates the demo's sample pods in a running lab and leaves them running:
//! `cargo run -p gannet-e2e --example demo-pods -- LAB` (used by `scripts/demo.sh`).
//!
//! Two namespaces: `shop` (a two-container web pod and an api pod) and `batch` (a worker
//! and a migration that has already exited), all created through the harness's CRI driver.

// The e2e harness, shared with the test binary.
#[path = "../e2e/harness/mod.rs"]
mod harness;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use harness::{ContainerSpec, Containerd, PodSpec};
use k8s_cri::v1::ContainerState;

/// How long a sample container may take to reach its state.
const STATE_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() -> Result<()> {
    let lab = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: demo-pods LAB (a lab started with tests/harness/containerd.sh up LAB)")?;
    let lab = Containerd::attach(&lab)?;
    let mut cri = lab.cri().await?;
    // The demo tears the whole lab down itself; the pods must outlive this process.
    cri.keep_pods();

    let web = cri
        .create_pod(
            &PodSpec::new("web")
                .namespace("shop")
                .label("version", "1.4.2")
                .annotation("example.com/team", "storefront"),
        )
        .await?;
    let server = ContainerSpec::new(
        "server",
        "trap 'exit 0' TERM; while :; do echo \"GET / 200\"; sleep 2 & wait; done",
    );
    let shipper = ContainerSpec::sleeper("log-shipper").env("SHIP_TO", "collector:4317");
    let api = ContainerSpec::sleeper("api").env("APP_PORT", "9090");
    let worker = ContainerSpec::new(
        "worker",
        "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo \"job $i done\"; sleep 3 & wait; done",
    );
    let migrate = ContainerSpec::new("migrate", "echo 'migrated 3 tables'; exit 0");

    let mut started = Vec::new();
    for spec in [&server, &shipper] {
        started.push((web.clone(), cri.run_container(&web, spec).await?));
    }
    let cart = cri
        .create_pod(&PodSpec::new("cart").namespace("shop"))
        .await?;
    started.push((cart.clone(), cri.run_container(&cart, &api).await?));
    let report = cri
        .create_pod(
            &PodSpec::new("report")
                .namespace("batch")
                .label("schedule", "nightly"),
        )
        .await?;
    started.push((report.clone(), cri.run_container(&report, &worker).await?));
    let migration = cri.run_container(&report, &migrate).await?;

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
