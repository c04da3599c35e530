//! `gannet run` with an `otlp` output against a real containerd and OTLP receivers run by
//! the test (a tonic `LogsService` server and an HTTP/protobuf one, both on the upstream
//! protos): entity events with their semantic-convention attributes (pod IP on the lab's
//! pod network, the derived deployment), plugin tags as attributes, env values redacted,
//! re-reports, `entity.delete` after `kill -9`, `RESOURCE_EXHAUSTED` with `RetryInfo`
//! honoured, a partial success counted, and a receiver outage that loses nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{bail, ensure, Result};
use serde_json::Value;

use gannet_test_kit::otlp::{Answer, OtlpReceiver, OtlpTransport, Received};
use gannet_test_kit::{
    free_port, http_get, random_hex, wait_until, ContainerSpec, Containerd, PodSpec,
};

use crate::pipeline::{ready, start_agent};

const TIMEOUT: Duration = Duration::from_secs(60);

fn of<'a>(records: &'a [Received], id: &str) -> Vec<&'a Received> {
    records
        .iter()
        .filter(|r| r["attributes"]["entity.id"]["container.id"] == id)
        .collect()
}

fn named<'a>(records: &[&'a Received], event_name: &str) -> Vec<&'a Received> {
    records
        .iter()
        .copied()
        .filter(|r| r["event_name"] == event_name)
        .collect()
}

/// The value of a counter line of `/metrics` that contains every one of `parts`.
fn metric(health: u16, name: &str, parts: &[&str]) -> f64 {
    let Ok((_, text)) = http_get(health, "/metrics", None) else {
        return 0.0;
    };
    text.lines()
        .filter(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_sends_entity_events_with_semconv_attributes() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let receiver = OtlpReceiver::new(OtlpTransport::Grpc).await?;
    // The first export is refused with RESOURCE_EXHAUSTED and a RetryInfo of 1.5 s.
    receiver.script([Answer::GrpcStatus(
        tonic::Code::ResourceExhausted,
        Some(Duration::from_millis(1500)),
    )]);
    let health = free_port()?;
    let suffix = random_hex(3)?;
    let ns = format!("e2e-otlp-{suffix}");
    // Pods of other tests pass through too; only this namespace is asserted on.
    deploy_example_plugins_team_only(&d.join("plugins"))?;
    let mut agent = start_agent(
        d,
        lab,
        &format!(
            r#"
[plugins]
dir = "{d}/plugins"
cache_dir = "{d}/cache"
[outputs.default]
type = "otlp"
endpoint = "{endpoint}"
compression = "gzip"
report_interval_secs = 2
linger_ms = 100
retry_initial_backoff_ms = 100
retry_max_backoff_ms = 500
[api]
socket = "{d}/api.sock"
grpc_socket = "{d}/grpc.sock"
health_listen = "127.0.0.1:{health}"
"#,
            d = d.display(),
            endpoint = receiver.endpoint(),
        ),
    )?;
    let result = async {
        wait_until(TIMEOUT, "/readyz", || async {
            Ok(ready(health).then_some(()))
        })
        .await?;
        // A Deployment's pod: `<deployment>-<pod-template-hash>-<suffix>`, on the pod network.
        let pod = cri
            .create_pod(
                &PodSpec::new("web-7d4b9c8f6d")
                    .namespace(&ns)
                    .label("pod-template-hash", "7d4b9c8f6d")
                    .label("team", "payments")
                    .pod_network(),
            )
            .await?;
        let pod_ips = cri.pod_ips(&pod).await?;
        ensure!(!pod_ips.is_empty(), "the lab gave the pod no IP");
        let c = cri
            .run_container(
                &pod,
                &ContainerSpec::sleeper("app")
                    .env("SECRET_TOKEN", "hunter2")
                    .annotation(
                        "io.kubernetes.container.ports",
                        r#"[{"name":"http","containerPort":8080,"protocol":"TCP"}]"#,
                    )
                    .memory_limit(64 << 20),
            )
            .await?;

        wait_until(TIMEOUT, "entity.state at the receiver", || async {
            Ok((!named(&of(&receiver.records(), &c.id), "entity.state").is_empty()).then_some(()))
        })
        .await?;
        let records = receiver.records();
        let state = named(&of(&records, &c.id), "entity.state")[0].clone();
        let a = &state["attributes"];
        let desc = &a["entity.description"];
        let expect = |key: &str, want: &Value| -> Result<()> {
            ensure!(
                &desc[key] == want,
                "{key}: {} (want {want})\n{desc:#}",
                desc[key]
            );
            Ok(())
        };
        ensure!(a["entity.type"] == "container", "{a:#}");
        ensure!(a["entity.report.interval"] == 2, "{a:#}");
        ensure!(a["gannet.event.id"].as_str().is_some_and(|s| !s.is_empty()));
        let rel = &a["entity.relationships"][0];
        ensure!(rel["relationship.type"] == "part_of" && rel["entity.type"] == "k8s.pod");
        ensure!(rel["entity.id"]["k8s.pod.uid"] == pod.uid.as_str(), "{rel}");
        expect("k8s.namespace.name", &Value::from(ns.as_str()))?;
        expect("k8s.pod.name", &Value::from(pod.name.as_str()))?;
        expect("k8s.pod.uid", &Value::from(pod.uid.as_str()))?;
        expect("k8s.pod.ip", &Value::from(pod_ips[0].as_str()))?;
        expect("k8s.container.name", &Value::from("app"))?;
        expect("k8s.container.restart_count", &Value::from(0))?;
        expect("k8s.node.name", &Value::from("e2e-node"))?;
        expect("k8s.replicaset.name", &Value::from("web-7d4b9c8f6d"))?;
        expect("k8s.deployment.name", &Value::from("web"))?;
        expect("k8s.pod.label.tier", &Value::from("e2e"))?;
        expect(
            "k8s.pod.annotation.example.com/owner",
            &Value::from("gannet-e2e"),
        )?;
        expect("container.name", &Value::from("app"))?;
        expect("container.runtime.name", &Value::from("containerd"))?;
        expect(
            "container.image.name",
            &Value::from("localhost/gannet-test/busybox"),
        )?;
        expect("container.image.tags", &serde_json::json!(["1.0"]))?;
        expect("gannet.state", &Value::from("running"))?;
        expect("gannet.env.SECRET_TOKEN", &Value::from("<redacted>"))?;
        expect(
            "gannet.resources.memory_limit_bytes",
            &Value::from(64 << 20),
        )?;
        ensure!(
            desc["gannet.ports"][0]["container_port"] == 8080,
            "{desc:#}"
        );
        ensure!(desc["k8s.pod.start_time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
        ensure!(desc["gannet.pid"].as_i64().is_some_and(|p| p > 0));
        // The team-labels plugin's tag, under the key the plugin set.
        expect("service.namespace", &Value::from("payments"))?;
        ensure!(state["resource"]["service.name"] == "gannet", "{state:#}");
        ensure!(state["resource"]["k8s.node.name"] == "e2e-node");
        ensure!(
            !serde_json::to_string(&records)?.contains("hunter2"),
            "an env value leaked"
        );
        // RESOURCE_EXHAUSTED with RetryInfo: the retry waited the 1.5 s asked for.
        let times = receiver.export_times();
        ensure!(times.len() >= 2, "exports: {}", times.len());
        let gap = times[1].duration_since(times[0]);
        ensure!(
            gap >= Duration::from_millis(1400),
            "retried after {gap:?}, not the 1.5 s RetryInfo asked"
        );
        ensure!(
            metric(
                health,
                "gannet_output_failed_attempts_total",
                &["reason=\"rate_limited\""]
            ) >= 1.0
        );
        ensure!(
            receiver.content_encodings().iter().any(|e| e == "gzip"),
            "gzip was configured"
        );

        // Re-report: within the 2 s interval (plus a slot), another entity.state.
        wait_until(Duration::from_secs(10), "a re-report", || async {
            let states = named(&of(&receiver.records(), &c.id), "entity.state").len();
            Ok((states >= 2).then_some(()))
        })
        .await?;

        // kill -9: entity.delete, and no state for it afterwards.
        cri.kill_9(&c).await?;
        wait_until(TIMEOUT, "entity.delete", || async {
            Ok((!named(&of(&receiver.records(), &c.id), "entity.delete").is_empty()).then_some(()))
        })
        .await?;
        let records = receiver.records();
        let delete = named(&of(&records, &c.id), "entity.delete")[0].clone();
        ensure!(
            delete["attributes"].get("entity.description").is_none(),
            "{delete:#}"
        );
        let states_then = named(&of(&records, &c.id), "entity.state").len();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let states_now = named(&of(&receiver.records(), &c.id), "entity.state").len();
        ensure!(
            states_now == states_then,
            "a removed container is not re-reported"
        );
        let ids: Vec<String> = receiver
            .records()
            .iter()
            .filter_map(|r| {
                r["attributes"]["gannet.event.id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        ensure!(unique.len() == ids.len(), "event ids are unique");
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let stopped = agent.terminate().await;
    if let Err(e) = result.and(stopped) {
        bail!(
            "{e:#}\n--- gannet log ---\n{}\n--- containerd ---\n{}",
            agent.log(),
            lab.log_tail(30)
        );
    }
    Ok(())
}

/// team-labels alone: pod label `team` -> tag `service.namespace` (a convention a plugin
/// emits directly).
fn deploy_example_plugins_team_only(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("20-team-labels.toml"),
        "[config]\n[config.pod_labels]\nteam = \"service.namespace\"\n",
    )?;
    std::fs::copy(
        gannet_test_kit::PluginWorkspace::Examples.wasm("team_labels")?,
        dir.join("20-team-labels.wasm"),
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_counts_partial_success_and_loses_nothing_to_an_outage() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let mut receiver = OtlpReceiver::new(OtlpTransport::Http).await?;
    let health = free_port()?;
    let ns = format!("e2e-otlph-{}", random_hex(3)?);
    let mut agent = start_agent(
        d,
        lab,
        &format!(
            r#"
[outputs.default]
type = "otlp"
protocol = "http/protobuf"
endpoint = "{endpoint}"
report_interval_secs = 0
linger_ms = 100
retry_initial_backoff_ms = 100
retry_max_backoff_ms = 400
[outputs.default.headers]
x-tenant = "team-a"
[api]
socket = "{d}/api.sock"
grpc_socket = "{d}/grpc.sock"
health_listen = "127.0.0.1:{health}"
"#,
            d = d.display(),
            endpoint = receiver.endpoint(),
        ),
    )?;
    let result = async {
        wait_until(TIMEOUT, "/readyz", || async {
            Ok(ready(health).then_some(()))
        })
        .await?;
        // Everything before now is in; the next export answers "1 rejected".
        wait_until(TIMEOUT, "the first exports", || async {
            Ok((receiver.exports() > 0).then_some(()))
        })
        .await?;
        receiver.script([Answer::Partial(1)]);
        let pod = cri
            .create_pod(&PodSpec::new("otlp-h").namespace(&ns))
            .await?;
        let first = cri
            .run_container(&pod, &ContainerSpec::sleeper("first"))
            .await?;
        wait_until(TIMEOUT, "first's entity.state", || async {
            Ok((!of(&receiver.records(), &first.id).is_empty()).then_some(()))
        })
        .await?;
        wait_until(TIMEOUT, "the partial success counted", || async {
            let rejected = metric(
                health,
                "gannet_output_dropped_events_total",
                &["reason=\"rejected\""],
            );
            Ok((rejected >= 1.0).then_some(()))
        })
        .await?;
        ensure!(
            agent.log().contains("partial success"),
            "the partial success is logged"
        );

        // Receiver down: three containers start and one stops meanwhile.
        receiver.stop().await;
        let mut started = Vec::new();
        for i in 0..3 {
            started.push(
                cri.run_container(&pod, &ContainerSpec::sleeper(&format!("down-{i}")))
                    .await?,
            );
        }
        cri.stop(&first, 0).await?;
        wait_until(TIMEOUT, "failed attempts while down", || async {
            Ok((metric(
                health,
                "gannet_output_failed_attempts_total",
                &["reason=\"connect\""],
            ) >= 1.0)
                .then_some(()))
        })
        .await?;
        receiver.start().await?;
        for c in &started {
            wait_until(TIMEOUT, "state after the outage", || async {
                Ok(
                    (!named(&of(&receiver.records(), &c.id), "entity.state").is_empty())
                        .then_some(()),
                )
            })
            .await?;
        }
        wait_until(
            TIMEOUT,
            "first's entity.delete after the outage",
            || async {
                Ok(
                    (!named(&of(&receiver.records(), &first.id), "entity.delete").is_empty())
                        .then_some(()),
                )
            },
        )
        .await?;
        let dropped_other = metric(
            health,
            "gannet_output_dropped_events_total",
            &["output=\"default\""],
        ) - metric(
            health,
            "gannet_output_dropped_events_total",
            &["reason=\"rejected\""],
        );
        ensure!(
            dropped_other == 0.0,
            "nothing dropped but the rejected record: {dropped_other}"
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    let stopped = agent.terminate().await;
    if let Err(e) = result.and(stopped) {
        bail!(
            "{e:#}\n--- gannet log ---\n{}\n--- containerd ---\n{}",
            agent.log(),
            lab.log_tail(30)
        );
    }
    Ok(())
}
