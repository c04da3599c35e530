//! `gannet run` against a real containerd: pods in two namespaces reach an
//! HTTP receiver run by the test and the data API; env values are redacted; event ids are
//! unique; a 429 with Retry-After is retried; the receiver going down and coming back
//! loses nothing; SIGTERM flushes and exits 0.
//!
//! With the example plugins of `plugins/` (built from source): routing by namespace to a
//! file output and the HTTP receiver, a namespace `lc-filter` drops never arrives,
//! `team-labels` tags, `redact-env` masks when `record.env_values = "include"`, and
//! `/v1/containers`, `/v1/watch` and the gRPC watch agree with the runtime.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, ensure, Result};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use gannet_test_kit::{
    free_port, get_unix, http_get, random_hex, wait_until, ContainerSpec, Containerd, Gannet,
    PluginWorkspace, PodSpec,
};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A minimal HTTP/1.1 receiver: answers from a script (then 200), keeps every JSON event.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<&'static str>>>,
    events: Arc<Mutex<Vec<Value>>>,
    attempts: Arc<Mutex<usize>>,
}

impl Receiver {
    fn events(&self) -> Vec<Value> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    fn serve(&self, listener: TcpListener) -> JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                let me = me.clone();
                conns.push(tokio::spawn(async move {
                    let _ = me.connection(stream).await;
                }));
            }
            for c in conns {
                c.abort();
            }
        })
    }

    async fn connection(&self, stream: tokio::net::TcpStream) -> Result<()> {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        loop {
            let mut length = 0usize;
            let mut line = String::new();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            loop {
                line.clear();
                reader.read_line(&mut line).await?;
                let l = line.trim();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse()?;
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).await?;
            if let Ok(mut a) = self.attempts.lock() {
                *a += 1;
            }
            let answer = self.script.lock().ok().and_then(|mut s| s.pop_front());
            let response = match answer {
                Some(r) => r.to_string(),
                None => {
                    let batch: Vec<Value> = serde_json::from_slice(&body)?;
                    self.events.lock().map(|mut e| e.extend(batch)).ok();
                    "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_string()
                }
            };
            write.write_all(response.as_bytes()).await?;
        }
    }
}

/// Whether `/readyz` answers 200.
pub(crate) fn ready(health: u16) -> bool {
    http_get(health, "/readyz", None).is_ok_and(|(status, _)| status == 200)
}

pub(crate) struct Agent {
    child: Child,
    stderr: PathBuf,
}

impl Agent {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
    fn signal(&self, sig: &str) -> Result<()> {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()?
            .success();
        ensure!(ok, "kill -{sig} failed");
        Ok(())
    }
    /// Sends SIGTERM and waits (up to `TIMEOUT`) for a successful exit.
    pub(crate) async fn terminate(&mut self) -> Result<()> {
        self.signal("TERM")?;
        let deadline = std::time::Instant::now() + TIMEOUT;
        let exit = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "gannet did not exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        ensure!(exit.success(), "exit status after SIGTERM: {exit:?}");
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn container_events<'a>(events: &'a [Value], id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["record"]["id"] == id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_delivers_two_namespaces_with_retries_and_flushes_on_sigterm() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let dir = tempfile::tempdir()?;
    let receiver = Receiver::default();
    receiver
        .script
        .lock()
        .map(|mut s| {
            s.push_back(
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\n\r\n",
            )
        })
        .ok();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let rx_addr = listener.local_addr()?;
    let mut server = receiver.serve(listener);
    let health = free_port()?;
    let mut agent = start_agent(
        dir.path(),
        lab,
        &format!(
            r#"
[runtime]
shutdown_grace_period_secs = 10
[outputs.default]
type = "http"
url = "http://{rx_addr}/events"
batch_size = 20
linger_ms = 3000
retry_initial_backoff_ms = 100
retry_max_backoff_ms = 500
[api]
socket = "{d}/api.sock"
grpc_socket = "{d}/grpc.sock"
health_listen = "127.0.0.1:{health}"
"#,
            d = dir.path().display()
        ),
    )?;
    let result = async {
        wait_until(TIMEOUT, "/readyz", || async {
            Ok((ready(health)).then_some(()))
        })
        .await?;

        let suffix = random_hex(3)?;
        let (ns_a, ns_b) = (format!("e2e-a-{suffix}"), format!("e2e-b-{suffix}"));
        let pod_a = cri
            .create_pod(&PodSpec::new("pipe-a").namespace(&ns_a))
            .await?;
        let pod_b = cri
            .create_pod(&PodSpec::new("pipe-b").namespace(&ns_b))
            .await?;
        let c_a = cri
            .run_container(
                &pod_a,
                &ContainerSpec::sleeper("app").env("SECRET_TOKEN", "hunter2"),
            )
            .await?;
        let c_b = cri
            .run_container(&pod_b, &ContainerSpec::sleeper("app"))
            .await?;

        for c in [&c_a, &c_b] {
            wait_until(TIMEOUT, "added at the receiver", || async {
                Ok(container_events(&receiver.events(), &c.id)
                    .iter()
                    .any(|e| e["event"] == "added")
                    .then_some(()))
            })
            .await?;
        }
        let events = receiver.events();
        let a = container_events(&events, &c_a.id);
        ensure!(
            a[0]["record"]["k8s"]["namespace"] == ns_a.as_str(),
            "namespace: {}",
            a[0]
        );
        ensure!(a[0]["node"] == "e2e-node");
        ensure!(
            a[0]["record"]["env"]["SECRET_TOKEN"] == "<redacted>",
            "env: {}",
            a[0]["record"]["env"]
        );
        ensure!(
            !serde_json::to_string(&events)?.contains("hunter2"),
            "an env value leaked"
        );
        let b = container_events(&events, &c_b.id);
        ensure!(b[0]["record"]["k8s"]["namespace"] == ns_b.as_str());
        ensure!(
            *receiver
                .attempts
                .lock()
                .map_err(|_| anyhow::anyhow!("lock"))?
                >= 2,
            "the 429 was answered and the batch retried"
        );

        // The data API agrees.
        let api = dir.path().join("api.sock");
        let listed: Vec<Value> = serde_json::from_str(
            &get_unix(&api, &format!("/v1/containers?namespace={ns_a}")).await?,
        )?;
        let ids: Vec<&str> = listed.iter().filter_map(|r| r["id"].as_str()).collect();
        ensure!(ids.contains(&c_a.id.as_str()), "API lists {ids:?}");
        ensure!(!ids.contains(&c_b.id.as_str()), "namespace filter");

        // Receiver down: stop a container meanwhile; back up: the event arrives.
        server.abort();
        let _ = (&mut server).await;
        cri.stop(&c_a, 0).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let listener = TcpListener::bind(rx_addr).await?;
        server = receiver.serve(listener);
        wait_until(TIMEOUT, "the exit after the receiver came back", || async {
            Ok(container_events(&receiver.events(), &c_a.id)
                .iter()
                .any(|e| e["record"]["state"] == "exited" || e["event"] == "removed")
                .then_some(()))
        })
        .await?;

        // SIGTERM flushes: stop the other container; as soon as the API shows its exit
        // (the event went through the chain and sits in the output's 3 s linger), stop.
        cri.stop(&c_b, 0).await?;
        let one = format!("/v1/containers/{}", c_b.id);
        wait_until(TIMEOUT, "the API to show the exit", || async {
            let live = get_unix(&api, &one).await?;
            let removed = get_unix(&api, "/v1/containers?state=removed").await?;
            Ok((live.contains("\"state\":\"exited\"") || removed.contains(&c_b.id)).then_some(()))
        })
        .await?;
        ensure!(
            !container_events(&receiver.events(), &c_b.id)
                .iter()
                .any(|e| e["record"]["state"] == "exited" || e["event"] == "removed"),
            "the exit is still lingering in the output queue before SIGTERM"
        );
        agent.terminate().await?;
        let events = receiver.events();
        ensure!(
            container_events(&events, &c_b.id)
                .iter()
                .any(|e| e["record"]["state"] == "exited" || e["event"] == "removed"),
            "the last event was flushed before exit"
        );
        let ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        ensure!(unique.len() == ids.len(), "event ids are unique");
        Ok::<(), anyhow::Error>(())
    }
    .await;
    server.abort();
    if let Err(e) = result {
        bail!(
            "{e:#}\n--- gannet log ---\n{}\n--- containerd ---\n{}",
            agent.log(),
            lab.log_tail(30)
        );
    }
    Ok(())
}

/// The lines of a JSON-lines file output (missing file: none yet).
fn file_events(path: &Path) -> Result<Vec<Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

/// Appends every JSON object streamed by `GET /v1/watch` on `socket` to `into`.
fn watch_http(socket: PathBuf, into: Arc<Mutex<Vec<Value>>>) -> JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut s = tokio::net::UnixStream::connect(&socket).await?;
        s.write_all(b"GET /v1/watch HTTP/1.0\r\nHost: x\r\n\r\n")
            .await?;
        let mut lines = BufReader::new(s).lines();
        while let Some(line) = lines.next_line().await? {
            // Headers and any chunk-size lines are not JSON objects: skip them.
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(line.trim()) {
                into.lock().map(|mut e| e.push(v)).ok();
            }
        }
        Ok(())
    })
}

/// A gRPC client of `gannet.v1.Agent` on a unix socket.
async fn grpc_client(
    socket: &Path,
) -> Result<gannet::api::grpc::pb::agent_client::AgentClient<tonic::transport::Channel>> {
    let path = socket.to_path_buf();
    let channel = tonic::transport::Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        }))
        .await?;
    Ok(gannet::api::grpc::pb::agent_client::AgentClient::new(
        channel,
    ))
}

/// Appends every gRPC watch event as `{"id", "event", "container_id", "state", "namespace"}`.
async fn watch_grpc(socket: &Path, into: Arc<Mutex<Vec<Value>>>) -> Result<JoinHandle<Result<()>>> {
    let mut client = grpc_client(socket).await?;
    let mut stream = client
        .watch(gannet::api::grpc::pb::WatchRequest {})
        .await?
        .into_inner();
    Ok(tokio::spawn(async move {
        while let Some(ev) = stream.message().await? {
            let c = ev.container.unwrap_or_default();
            let v = serde_json::json!({
                "id": ev.id, "event": ev.event, "container_id": c.id,
                "state": c.state, "namespace": c.namespace,
            });
            into.lock().map(|mut e| e.push(v)).ok();
        }
        Ok(())
    }))
}

fn snapshot(events: &Arc<Mutex<Vec<Value>>>) -> Vec<Value> {
    events.lock().map(|e| e.clone()).unwrap_or_default()
}

/// Writes the four example plugins with the given sidecar texts into `dir`.
fn deploy_example_plugins(dir: &Path, sidecars: [(&str, &str, String); 4]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (crate_name, name, sidecar) in sidecars {
        std::fs::write(dir.join(format!("{name}.toml")), sidecar)?;
        std::fs::copy(
            PluginWorkspace::Examples.wasm(crate_name)?,
            dir.join(format!("{name}.wasm")),
        )?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_example_plugins_routes_tags_masks_and_agrees_with_the_runtime() -> Result<()> {
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let suffix = random_hex(3)?;
    let (ns_a, ns_b, ns_c) = (
        format!("e2e-pa-{suffix}"),
        format!("e2e-pb-{suffix}"),
        format!("e2e-pc-{suffix}"),
    );

    // lc-filter keeps a and b (and drops c and every other test's pods); team-labels tags
    // the `team` label; redact-env masks; route-by-namespace: a -> audit (file),
    // b -> collector (HTTP).
    deploy_example_plugins(
        &d.join("plugins"),
        [
            (
                "lc_filter",
                "10-lc-filter",
                format!(
                    "failure_policy = \"drop\"\n[config]\nK8sNamespaceRegex = \"^({ns_a}|{ns_b})$\"\n"
                ),
            ),
            (
                "team_labels",
                "20-team-labels",
                "[config]\ndefault_value = \"unowned\"\n[config.pod_labels]\nteam = \"team\"\n"
                    .to_string(),
            ),
            (
                "redact_env",
                "30-redact-env",
                "failure_policy = \"drop\"\n[config]\naction = \"mask\"\n".to_string(),
            ),
            (
                "route_by_namespace",
                "40-route-by-namespace",
                format!(
                    "[config.routes]\n\"{ns_a}\" = [\"audit\"]\n\"{ns_b}\" = [\"collector\"]\n"
                ),
            ),
        ],
    )?;

    let receiver = Receiver::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let rx_addr = listener.local_addr()?;
    let server = receiver.serve(listener);
    let health = free_port()?;
    let mut agent = start_agent(
        d,
        lab,
        &format!(
            r#"
[runtime]
shutdown_grace_period_secs = 10
[plugins]
dir = "{d}/plugins"
[record]
env_values = "include"
[outputs.default]
type = "file"
path = "{d}/default.jsonl"
[outputs.audit]
type = "file"
path = "{d}/audit.jsonl"
[outputs.collector]
type = "http"
url = "http://{rx_addr}/events"
batch_size = 20
linger_ms = 200
[api]
socket = "{d}/api.sock"
grpc_socket = "{d}/grpc.sock"
health_listen = "127.0.0.1:{health}"
"#,
            d = d.display()
        ),
    )?;
    let (audit, default) = (d.join("audit.jsonl"), d.join("default.jsonl"));
    let api = d.join("api.sock");
    let result = async {
        wait_until(Duration::from_secs(120), "/readyz", || async {
            Ok((ready(health)).then_some(()))
        })
        .await?;

        let pod_a = cri
            .create_pod(
                &PodSpec::new("plug-a")
                    .namespace(&ns_a)
                    .label("team", "alpha"),
            )
            .await?;
        let pod_b = cri
            .create_pod(&PodSpec::new("plug-b").namespace(&ns_b))
            .await?;
        let pod_c = cri
            .create_pod(
                &PodSpec::new("plug-c")
                    .namespace(&ns_c)
                    .label("team", "gamma"),
            )
            .await?;
        let c_a = cri
            .run_container(
                &pod_a,
                &ContainerSpec::sleeper("app")
                    .env("SECRET_TOKEN", "hunter2")
                    .env("APP_PORT", "8080"),
            )
            .await?;
        let c_b = cri
            .run_container(&pod_b, &ContainerSpec::sleeper("app"))
            .await?;
        let c_c = cri
            .run_container(&pod_c, &ContainerSpec::sleeper("app"))
            .await?;

        wait_until(TIMEOUT, "a's added in the audit file", || async {
            Ok(container_events(&file_events(&audit)?, &c_a.id)
                .iter()
                .any(|e| e["event"] == "added" && e["record"]["state"] == "running")
                .then_some(()))
        })
        .await?;
        wait_until(TIMEOUT, "b's added at the receiver", || async {
            Ok(container_events(&receiver.events(), &c_b.id)
                .iter()
                .any(|e| e["event"] == "added" && e["record"]["state"] == "running")
                .then_some(()))
        })
        .await?;

        // The health listener's metrics cover discovery, the runtime and the plugins.
        let metrics = http_get(health, "/metrics", None)?.1;
        for expected in [
            "gannet_discovery_containers{state=\"running\"}",
            "gannet_discovery_lifecycle_events_total{event=\"added\"}",
            "gannet_runtime_rpc_duration_seconds_count{call=\"ListContainers\"}",
            "gannet_runtime_event_stream_reconnects_total",
            "gannet_plugin_calls_total{plugin=",
            "gannet_output_sent_events_total{output=",
        ] {
            ensure!(
                metrics.contains(expected),
                "/metrics lacks {expected}:\n{metrics}"
            );
        }

        // The API's table agrees with the runtime: a and b running, c (dropped) absent.
        for (c, ns) in [(&c_a, &ns_a), (&c_b, &ns_b), (&c_c, &ns_c)] {
            let listed: Vec<Value> = serde_json::from_str(
                &get_unix(&api, &format!("/v1/containers?namespace={ns}")).await?,
            )?;
            let ids: Vec<&str> = listed.iter().filter_map(|r| r["id"].as_str()).collect();
            let runtime: Vec<String> = cri
                .list_containers(None)
                .await?
                .into_iter()
                .filter(|x| x.pod_sandbox_id == c.pod_id)
                .map(|x| x.id)
                .collect();
            ensure!(runtime == [c.id.clone()], "runtime lists {runtime:?}");
            if c.id == c_c.id {
                ensure!(
                    ids.is_empty(),
                    "the dropped namespace is in the API: {ids:?}"
                );
            } else {
                ensure!(ids == [c.id.as_str()], "API lists {ids:?} for {ns}");
                ensure!(listed[0]["state"] == "running", "{}", listed[0]);
            }
        }

        // Both watches start with the current state as `added`, then go live.
        let http_watch = Arc::new(Mutex::new(Vec::new()));
        let grpc_watch = Arc::new(Mutex::new(Vec::new()));
        let http_task = watch_http(api.clone(), http_watch.clone());
        let grpc_task = watch_grpc(&d.join("grpc.sock"), grpc_watch.clone()).await?;
        for c in [&c_a, &c_b] {
            wait_until(TIMEOUT, "the watches' initial added", || async {
                let h = snapshot(&http_watch)
                    .iter()
                    .any(|e| e["record"]["id"] == c.id.as_str() && e["event"] == "added");
                let g = snapshot(&grpc_watch)
                    .iter()
                    .any(|e| e["container_id"] == c.id.as_str() && e["event"] == "added");
                Ok((h && g).then_some(()))
            })
            .await?;
        }

        // Kill a: the exit reaches the file output and both watches.
        cri.stop(&c_a, 0).await?;
        wait_until(TIMEOUT, "a's exit in the file and both watches", || async {
            let f = container_events(&file_events(&audit)?, &c_a.id)
                .iter()
                .any(|e| e["record"]["state"] == "exited");
            let h = snapshot(&http_watch)
                .iter()
                .any(|e| e["record"]["id"] == c_a.id.as_str() && e["record"]["state"] == "exited");
            let g = snapshot(&grpc_watch)
                .iter()
                .any(|e| e["container_id"] == c_a.id.as_str() && e["state"] == "exited");
            Ok((f && h && g).then_some(()))
        })
        .await?;
        // The API agrees: a is exited in the table, or (gone from the runtime's running
        // set) in the removed tail.
        let one = get_unix(&api, &format!("/v1/containers/{}", c_a.id)).await?;
        let removed = get_unix(&api, "/v1/containers?state=removed").await?;
        ensure!(
            one.contains("\"state\":\"exited\"") || removed.contains(&c_a.id),
            "API after the kill: {one} / removed: {removed}"
        );
        let status = cri.status(&c_a).await?;
        ensure!(
            status.state() == k8s_cri::v1::ContainerState::ContainerExited,
            "runtime state after the kill: {:?}",
            status.state()
        );

        // Remove b's pod: `removed` reaches the receiver and both watches.
        cri.remove_pod(&pod_b).await?;
        wait_until(
            TIMEOUT,
            "b's removal at the receiver and both watches",
            || async {
                let r = container_events(&receiver.events(), &c_b.id)
                    .iter()
                    .any(|e| e["event"] == "removed");
                let h = snapshot(&http_watch)
                    .iter()
                    .any(|e| e["record"]["id"] == c_b.id.as_str() && e["event"] == "removed");
                let g = snapshot(&grpc_watch)
                    .iter()
                    .any(|e| e["container_id"] == c_b.id.as_str() && e["event"] == "removed");
                Ok((r && h && g).then_some(()))
            },
        )
        .await?;
        let removed = get_unix(&api, "/v1/containers?state=removed").await?;
        ensure!(removed.contains(&c_b.id), "removed tail: {removed}");
        let live = get_unix(&api, &format!("/v1/containers?namespace={ns_b}")).await?;
        ensure!(!live.contains(&c_b.id), "b still live in the API: {live}");

        agent.terminate().await?;
        http_task.abort();
        grpc_task.abort();

        let audit_events = file_events(&audit)?;
        let default_events = file_events(&default)?;
        let http_events = receiver.events();
        let mine = |e: &&Value| {
            [&ns_a, &ns_b, &ns_c]
                .iter()
                .any(|ns| e["record"]["k8s"]["namespace"] == ns.as_str())
        };
        // Routing by namespace: a only in the audit file, b only at the receiver.
        let audit_ns: BTreeSet<&str> = audit_events
            .iter()
            .filter(mine)
            .filter_map(|e| e["record"]["k8s"]["namespace"].as_str())
            .collect();
        ensure!(
            audit_ns == BTreeSet::from([ns_a.as_str()]),
            "audit holds {audit_ns:?}"
        );
        let http_ns: BTreeSet<&str> = http_events
            .iter()
            .filter(mine)
            .filter_map(|e| e["record"]["k8s"]["namespace"].as_str())
            .collect();
        ensure!(
            http_ns == BTreeSet::from([ns_b.as_str()]),
            "receiver holds {http_ns:?}"
        );
        ensure!(
            !default_events.iter().any(|e| mine(&e)),
            "a routed record reached the default output"
        );
        // The dropped namespace never arrives, in any output or either watch.
        let everything = serde_json::to_string(&(
            &audit_events,
            &default_events,
            &http_events,
            snapshot(&http_watch),
            snapshot(&grpc_watch),
        ))?;
        ensure!(!everything.contains(&ns_c), "the dropped namespace arrived");
        ensure!(
            !everything.contains(&c_c.id),
            "the dropped container arrived"
        );
        // team-labels: the label, or the default for a pod without one.
        let a = container_events(&audit_events, &c_a.id);
        let b = container_events(&http_events, &c_b.id);
        ensure!(!a.is_empty() && !b.is_empty(), "a and b arrived");
        ensure!(
            a.iter().all(|e| e["record"]["tags"]["team"] == "alpha"),
            "a's tags: {}",
            a[0]["record"]["tags"]
        );
        ensure!(
            b.iter().all(|e| e["record"]["tags"]["team"] == "unowned"),
            "b's tags: {}",
            b[0]["record"]["tags"]
        );
        // Env values included, secret ones masked by redact-env.
        ensure!(
            a.iter()
                .all(|e| e["record"]["env"]["SECRET_TOKEN"] == "******"
                    && e["record"]["env"]["APP_PORT"] == "8080"),
            "a's env: {}",
            a[0]["record"]["env"]
        );
        ensure!(!everything.contains("hunter2"), "a secret env value leaked");
        // Unique event ids across both outputs.
        let ids: Vec<&str> = audit_events
            .iter()
            .chain(&http_events)
            .chain(&default_events)
            .filter_map(|e| e["id"].as_str())
            .collect();
        let unique: BTreeSet<&str> = ids.iter().copied().collect();
        ensure!(unique.len() == ids.len(), "event ids are unique");
        ensure!(
            audit_events
                .iter()
                .chain(&http_events)
                .all(|e| e["node"] == "e2e-node"),
            "node name"
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    server.abort();
    if let Err(e) = result {
        bail!(
            "{e:#}\n--- gannet log ---\n{}\n--- containerd ---\n{}",
            agent.log(),
            lab.log_tail(30)
        );
    }
    Ok(())
}

/// The four example plugins set up for one namespace: only its records pass, tagged with
/// their `team` label (`unowned` without one), env masked, routed to `default`.
fn example_chain_for(ns: &str) -> [(&'static str, &'static str, String); 4] {
    [
        (
            "lc_filter",
            "10-lc-filter",
            format!("[config]\nK8sNamespaceRegex = \"^{ns}$\"\n"),
        ),
        (
            "team_labels",
            "20-team-labels",
            "[config]\ndefault_value = \"unowned\"\n[config.pod_labels]\nteam = \"team\"\n"
                .to_string(),
        ),
        (
            "redact_env",
            "30-redact-env",
            "[config]\naction = \"mask\"\n".to_string(),
        ),
        (
            "route_by_namespace",
            "40-route-by-namespace",
            format!("[config.routes]\n\"{ns}\" = [\"default\"]\n"),
        ),
    ]
}

/// A config for the plugins of `d/plugins`, a file output `d/default.jsonl`, the API's
/// sockets in `d` and the health listener on `health`; its `[api]` section comes last, so
/// a caller may add `[api]` keys after it.
fn chain_config(d: &Path, health: u16) -> String {
    format!(
        r#"
[plugins]
dir = "{d}/plugins"
[outputs.default]
type = "file"
path = "{d}/default.jsonl"
[api]
socket = "{d}/api.sock"
grpc_socket = "{d}/grpc.sock"
health_listen = "127.0.0.1:{health}"
"#,
        d = d.display()
    )
}

/// Starts `gannet run` with `config` (written to `d/gannet.toml`) on the lab's socket,
/// its log in `d/gannet.log`.
pub(crate) fn start_agent(d: &Path, lab: &Containerd, config: &str) -> Result<Agent> {
    let path = d.join("gannet.toml");
    std::fs::write(&path, config)?;
    let stderr = d.join("gannet.log");
    Ok(Agent {
        child: Command::new(Gannet::bin()?)
            .args(["run", "--node-name", "e2e-node", "--config"])
            .arg(&path)
            .arg("--socket")
            .arg(lab.socket())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?,
        stderr,
    })
}

/// Trace for Gannet and every crate that handles the runtime's answers, the API's requests
/// or plugin calls; info for the compiler, whose trace (register allocation of each
/// plugin function) holds no data and makes a debug build take minutes to start.
const TRACE_EVERYTHING_THAT_SEES_DATA: &str = "trace,cranelift_codegen=info,cranelift_frontend=info,regalloc2=info,wasmtime_internal_cranelift=info,wasmtime_cranelift=info";

/// The whole agent at trace level, the example plugins included, never logs an env value;
/// the health listener shows no pod, container or env; the sockets are 0600; the TCP data
/// API wants its bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_at_trace_level_logs_no_env_value_and_guards_the_api() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;

    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let suffix = random_hex(3)?;
    let ns = format!("e2e-sec-{suffix}");
    // Values no log line may hold: an env value, and the API token.
    let secret = format!("s3cret-value-{suffix}");
    let token = format!("api-token-{suffix}");
    std::fs::write(d.join("token"), &token)?;
    deploy_example_plugins(&d.join("plugins"), example_chain_for(&ns))?;
    let (health, data) = (free_port()?, free_port()?);
    let mut agent = start_agent(
        d,
        lab,
        &format!(
            "{}listen = \"127.0.0.1:{data}\"\ntoken_file = \"{}/token\"\n[logging]\nlevel = \"{TRACE_EVERYTHING_THAT_SEES_DATA}\"\n",
            chain_config(d, health),
            d.display()
        ),
    )?;
    let default = d.join("default.jsonl");
    let result = async {
        wait_until(Duration::from_secs(120), "/readyz", || async {
            Ok((ready(health)).then_some(()))
        })
        .await?;
        let pod = cri
            .create_pod(&PodSpec::new("secpod").namespace(&ns).label("team", "alpha"))
            .await?;
        let c = cri
            .run_container(
                &pod,
                &ContainerSpec::sleeper("app").env("DB_PASSWORD", &secret),
            )
            .await?;
        wait_until(TIMEOUT, "the added record in the file", || async {
            Ok(container_events(&file_events(&default)?, &c.id)
                .iter()
                .any(|e| e["event"] == "added" && e["record"]["state"] == "running")
                .then_some(()))
        })
        .await?;

        // The TCP data API wants the token; the unix sockets are the owner's alone.
        ensure!(
            http_get(data, "/v1/containers", None)?.0 == 401,
            "no token: not 401"
        );
        ensure!(
            http_get(data, "/v1/containers", Some("Bearer wrong"))?.0 == 401,
            "a wrong token: not 401"
        );
        let bearer = format!("Bearer {token}");
        ensure!(
            http_get(data, "/v1/containers", Some(&bearer))?.0 == 200,
            "the token: not 200"
        );
        for socket in ["api.sock", "grpc.sock"] {
            let mode = std::fs::metadata(d.join(socket))?.permissions().mode() & 0o777;
            ensure!(mode == 0o600, "{socket} has mode {mode:o}");
        }
        ensure!(
            get_unix(&d.join("api.sock"), "/v1/containers")
                .await?
                .contains(&c.id),
            "the data API does not list the container"
        );

        // The health listener names no pod, container, namespace or env.
        for path in ["/metrics", "/healthz", "/readyz"] {
            let body = http_get(health, path, None)?.1;
            for private in [
                c.id.as_str(),
                &pod.id,
                &pod.name,
                &pod.uid,
                &ns,
                &secret,
                "DB_PASSWORD",
            ] {
                ensure!(!body.contains(private), "{path} shows {private:?}:\n{body}");
            }
        }

        cri.stop(&c, 0).await?;
        cri.remove_pod(&pod).await?;
        wait_until(TIMEOUT, "the removed record in the file", || async {
            Ok(container_events(&file_events(&default)?, &c.id)
                .iter()
                .any(|e| e["event"] == "removed")
                .then_some(()))
        })
        .await?;
        agent.terminate().await?;

        let log = agent.log();
        ensure!(
            log.contains("TRACE") && log.contains(&c.id),
            "the log is not at trace level, or never names the container"
        );
        for private in [&secret, &token] {
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| l.contains(private.as_str()))
                .collect();
            ensure!(lines.is_empty(), "the log holds a secret: {lines:?}");
        }
        let records = std::fs::read_to_string(&default)?;
        ensure!(
            !records.contains(&secret),
            "an env value reached the output"
        );
        Ok(())
    }
    .await;
    if result.is_err() {
        eprintln!("gannet log:\n{}", tail(&agent.log(), 60));
    }
    result
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Ready means complete: at the first moment `/readyz` answers 200, the data API already
/// lists every container that was running before the agent started, each through the
/// plugin chain. (Readiness used to come with the first list, while the fetches were still
/// in flight, so the API listed only some of them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_means_every_running_container_is_in_the_api() -> Result<()> {
    const CONTAINERS: usize = 24;
    let lab = Containerd::shared()?;
    let cri = lab.cri().await?;
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let ns = format!("e2e-ready-{}", random_hex(3)?);
    let mut pods = Vec::new();
    let mut ids = BTreeSet::new();
    for n in 0..CONTAINERS {
        let pod = cri
            .create_pod(&PodSpec::new(&format!("ready{n}")).namespace(&ns))
            .await?;
        let c = cri
            .run_container(&pod, &ContainerSpec::sleeper("app"))
            .await?;
        ids.insert(c.id);
        pods.push(pod);
    }
    deploy_example_plugins(&d.join("plugins"), example_chain_for(&ns))?;
    let health = free_port()?;
    let mut agent = start_agent(d, lab, &chain_config(d, health))?;
    let api = d.join("api.sock");
    let result = async {
        // Poll readiness tightly and read the API at the first 200.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !ready(health) {
            ensure!(
                std::time::Instant::now() < deadline,
                "never ready:\n{}",
                tail(&agent.log(), 30)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let listed: Vec<Value> = serde_json::from_str(
            &get_unix(&api, &format!("/v1/containers?namespace={ns}")).await?,
        )?;
        let seen: BTreeSet<String> = listed
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_string))
            .collect();
        ensure!(
            seen == ids,
            "at the first ready the API lists {} of the {CONTAINERS} running containers",
            seen.len()
        );
        ensure!(
            listed.iter().all(|r| r["tags"]["team"] == "unowned"),
            "a listed record has not been through the chain"
        );
        agent.terminate().await
    }
    .await;
    for pod in &pods {
        let _ = cri.remove_pod(pod).await;
    }
    if result.is_err() {
        eprintln!("gannet log:\n{}", tail(&agent.log(), 60));
    }
    result
}
