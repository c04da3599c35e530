//! API tests over real sockets: the data API on a unix socket, the gRPC API with a tonic
//! client, the health listener, and binding errors.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use super::ApiConfig;
use super::*;
use crate::record::{ContainerRecord, ContainerState, Lifecycle};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

struct Running {
    _dir: tempfile::TempDir,
    config: ApiConfig,
    view: ContainerView,
    health: Arc<Health>,
    health_addr: std::net::SocketAddr,
    stop: CancellationToken,
}

async fn start(
    watch_buffer: usize,
    env: EnvValues,
) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let config = ApiConfig {
        socket: dir.path().join("run/api.sock"),
        grpc_socket: dir.path().join("run/grpc.sock"),
        health_listen: "127.0.0.1:0".parse()?,
        watch_buffer_events: watch_buffer,
        ..ApiConfig::default()
    };
    let listeners = ApiListeners::bind(&config).await?;
    let health_addr = listeners.health_addr().ok_or("no health addr")?;
    let view = ContainerView::new(Duration::from_secs(120), watch_buffer);
    let stop = CancellationToken::new();
    let ctx = ApiContext::new(
        view.clone(),
        Arc::new(EventIds::new()),
        "node-t",
        env,
        stop.clone(),
    );
    let health = Arc::new(Health::new());
    health.beat();
    let mut registry = Registry::default();
    let metrics = crate::outputs::OutputMetrics::register(&mut registry);
    metrics.sent("default", 3);
    listeners.serve(ctx, health.clone(), Arc::new(registry));
    Ok(Running {
        _dir: dir,
        config,
        view,
        health,
        health_addr,
        stop,
    })
}

fn rec(id: &str, ns: &str) -> ContainerRecord {
    let mut r = ContainerRecord {
        id: id.into(),
        state: ContainerState::Running,
        ..Default::default()
    };
    r.k8s.namespace = ns.into();
    r.k8s.pod_name = format!("pod-{id}");
    r.env.insert("TOKEN".into(), "s3cret".into());
    r
}

/// GET over a unix socket; returns status and the whole body.
async fn get_unix(
    socket: &Path,
    uri: &str,
) -> Result<(u16, String), Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::UnixStream::connect(socket).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = axum::http::Request::get(uri)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await??
        .to_bytes();
    Ok((status, String::from_utf8(body.to_vec())?))
}

async fn get_tcp(
    addr: std::net::SocketAddr,
    path: &str,
) -> Result<(u16, String), Box<dyn std::error::Error + Send + Sync>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = axum::http::Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(body.to_vec())?))
}

#[tokio::test]
async fn data_api_lists_filters_redacts_and_404s() -> TestResult {
    let api = start(64, EnvValues::Redact).await?;
    let mode = std::fs::metadata(&api.config.socket)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    api.view.apply(Lifecycle::Added, rec("a", "ns1"));
    api.view.apply(Lifecycle::Added, rec("b", "ns2"));
    api.view.apply(Lifecycle::Removed, rec("b", "ns2"));

    let (status, body) = get_unix(&api.config.socket, "/v1/containers").await?;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["id"], "a");
    assert_eq!(v[0]["env"]["TOKEN"], crate::record::REDACTED);
    assert!(!body.contains("s3cret"));

    let (_, body) = get_unix(&api.config.socket, "/v1/containers?state=removed").await?;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(v[0]["id"], "b");
    let (_, body) = get_unix(&api.config.socket, "/v1/containers?namespace=ns2").await?;
    assert_eq!(body, "[]");
    let (status, _) = get_unix(&api.config.socket, "/v1/containers?state=bogus").await?;
    assert_eq!(status, 400);
    let (status, _) = get_unix(&api.config.socket, "/v1/containers?colour=red").await?;
    assert_eq!(status, 400);

    let (status, body) = get_unix(&api.config.socket, "/v1/containers/a").await?;
    assert_eq!(status, 200);
    assert!(body.contains("\"pod_name\":\"pod-a\""), "{body}");
    let (status, _) = get_unix(&api.config.socket, "/v1/containers/nope").await?;
    assert_eq!(status, 404);

    api.view.set_plugins(vec![PluginInfo {
        file: "10-x.wasm".into(),
        sha256: "ab".into(),
        wit_version: "0.1.0".into(),
        state: "active".into(),
        last_error: None,
    }]);
    let (status, body) = get_unix(&api.config.socket, "/v1/plugins").await?;
    assert_eq!(status, 200);
    assert!(body.contains("\"file\":\"10-x.wasm\""), "{body}");
    api.stop.cancel();
    Ok(())
}

#[tokio::test]
async fn include_shows_env_values() -> TestResult {
    let api = start(64, EnvValues::Include).await?;
    api.view.apply(Lifecycle::Added, rec("a", "ns1"));
    let (_, body) = get_unix(&api.config.socket, "/v1/containers/a").await?;
    assert!(body.contains("s3cret"));
    api.stop.cancel();
    Ok(())
}

#[tokio::test]
async fn watch_sends_snapshot_then_live_events_and_cuts_a_slow_reader() -> TestResult {
    let api = start(4, EnvValues::Redact).await?;
    api.view.apply(Lifecycle::Added, rec("a", "ns1"));

    let stream = tokio::net::UnixStream::connect(&api.config.socket).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = axum::http::Request::get("/v1/watch")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())?;
    let mut body = sender.send_request(req).await?.into_body();
    let mut text = String::new();
    let mut next_chunk = async |text: &mut String| -> TestResult {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await?
            .ok_or("stream ended")??;
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data)?);
        }
        Ok(())
    };
    while !text.contains('\n') {
        next_chunk(&mut text).await?;
    }
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or(""))?;
    assert_eq!(first["event"], "added");
    assert_eq!(first["record"]["id"], "a");
    assert_eq!(first["node"], "node-t");

    api.view.apply(Lifecycle::Updated, rec("a", "ns1"));
    while text.lines().count() < 2 {
        next_chunk(&mut text).await?;
    }
    let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap_or(""))?;
    assert_eq!(second["event"], "updated");

    // 50 events with no await in between: this watcher (buffer 4) falls behind.
    for i in 0..50 {
        api.view
            .apply(Lifecycle::Added, rec(&format!("x{i}"), "ns1"));
    }
    let mut ended = false;
    for _ in 0..100 {
        match tokio::time::timeout(Duration::from_secs(10), body.frame()).await? {
            None => {
                ended = true;
                break;
            }
            Some(frame) => {
                if let Ok(data) = frame?.into_data() {
                    text.push_str(std::str::from_utf8(&data)?);
                }
            }
        }
    }
    assert!(ended, "the slow watcher is disconnected");
    assert!(text.contains("watcher fell behind"), "{text}");
    api.stop.cancel();
    Ok(())
}

async fn grpc_client(
    socket: &Path,
) -> Result<
    grpc::pb::agent_client::AgentClient<tonic::transport::Channel>,
    Box<dyn std::error::Error + Send + Sync>,
> {
    let path = socket.to_path_buf();
    let channel = tonic::transport::Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: axum::http::Uri| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await?;
    Ok(grpc::pb::agent_client::AgentClient::new(channel))
}

#[tokio::test]
async fn grpc_lists_and_watches() -> TestResult {
    let api = start(64, EnvValues::Redact).await?;
    api.view.apply(Lifecycle::Added, rec("a", "ns1"));
    api.view.apply(Lifecycle::Added, rec("b", "ns2"));
    let mut client = grpc_client(&api.config.grpc_socket).await?;
    let list = client
        .list_containers(grpc::pb::ListContainersRequest {
            namespace: "ns2".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(list.containers.len(), 1);
    assert_eq!(list.containers[0].id, "b");
    assert_eq!(list.containers[0].pod_name, "pod-b");
    assert!(!list.containers[0].record_json.contains("s3cret"));

    let mut watch = client.watch(grpc::pb::WatchRequest {}).await?.into_inner();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await??
            .ok_or("ended")?;
        seen.push((ev.event, ev.container.map(|c| c.id).unwrap_or_default()));
    }
    assert_eq!(
        seen,
        [
            ("added".to_string(), "a".to_string()),
            ("added".to_string(), "b".to_string())
        ]
    );
    api.view.apply(Lifecycle::Removed, rec("a", "ns1"));
    let ev = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await??
        .ok_or("ended")?;
    assert_eq!(ev.event, "removed");
    assert_eq!(ev.node, "node-t");
    api.stop.cancel();
    Ok(())
}

#[tokio::test]
async fn health_listener_serves_only_health_readiness_and_metrics() -> TestResult {
    let api = start(64, EnvValues::Redact).await?;
    assert_eq!(get_tcp(api.health_addr, "/healthz").await?.0, 200);
    assert_eq!(get_tcp(api.health_addr, "/readyz").await?.0, 503);
    api.health.set_ready(true);
    assert_eq!(get_tcp(api.health_addr, "/readyz").await?.0, 200);
    let (status, body) = get_tcp(api.health_addr, "/metrics").await?;
    assert_eq!(status, 200);
    assert!(
        body.contains("gannet_output_sent_events_total{output=\"default\"} 3"),
        "{body}"
    );
    assert_eq!(get_tcp(api.health_addr, "/v1/containers").await?.0, 404);
    api.stop.cancel();
    Ok(())
}

#[tokio::test]
async fn address_in_use_is_refused_naming_the_field() -> TestResult {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let dir = tempfile::tempdir()?;
    let config = ApiConfig {
        socket: dir.path().join("api.sock"),
        grpc_socket: dir.path().join("grpc.sock"),
        health_listen: taken.local_addr()?,
        ..ApiConfig::default()
    };
    let e = ApiListeners::bind(&config)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        e,
        format!("api.health_listen {}: address already in use; stop the other process or choose another address", taken.local_addr()?)
    );
    // A live unix socket is in use too; a stale one is replaced.
    let api = start(4, EnvValues::Redact).await?;
    let config2 = ApiConfig {
        health_listen: "127.0.0.1:0".parse()?,
        ..api.config.clone()
    };
    let e = ApiListeners::bind(&config2)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.starts_with("api.socket "), "{e}");
    assert!(e.contains("address already in use"), "{e}");
    Ok(())
}

/// The test-only TLS files (`tests/fixtures/tls`).
fn tls_fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/tls")
        .join(name)
}

/// Binds `config` (its data TCP listener on port 0) and serves an empty view.
async fn serve_tcp(
    config: ApiConfig,
) -> Result<(std::net::SocketAddr, CancellationToken), Box<dyn std::error::Error + Send + Sync>> {
    let listeners = ApiListeners::bind(&config).await?;
    let addr = listeners.data_tcp_addr().ok_or("no data TCP listener")?;
    let stop = CancellationToken::new();
    let ctx = ApiContext::new(
        ContainerView::new(Duration::from_secs(120), 8),
        Arc::new(EventIds::new()),
        "node-t",
        EnvValues::Redact,
        stop.clone(),
    );
    listeners.serve(ctx, Arc::new(Health::new()), Arc::new(Registry::default()));
    Ok((addr, stop))
}

/// GET `/v1/containers` over `stream` with an optional `Authorization` value; the status.
async fn get_with<S>(
    stream: S,
    authorization: Option<&str>,
) -> Result<u16, Box<dyn std::error::Error + Send + Sync>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = axum::http::Request::get("/v1/containers").header("host", "localhost");
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    let resp = sender
        .send_request(req.body(Empty::<Bytes>::new())?)
        .await?;
    Ok(resp.status().as_u16())
}

#[tokio::test]
async fn tcp_listener_with_a_token_answers_401_without_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken-value\n")?;
    let config = ApiConfig {
        socket: dir.path().join("api.sock"),
        grpc_socket: dir.path().join("grpc.sock"),
        health_listen: "127.0.0.1:0".parse()?,
        listen: Some("127.0.0.1:0".parse()?),
        token_file: Some(token),
        ..ApiConfig::default()
    };
    let (addr, stop) = serve_tcp(config).await?;
    let connect = || tokio::net::TcpStream::connect(addr);
    assert_eq!(get_with(connect().await?, None).await?, 401);
    assert_eq!(get_with(connect().await?, Some("Bearer wrong")).await?, 401);
    assert_eq!(get_with(connect().await?, Some("t0ken-value")).await?, 401);
    assert_eq!(
        get_with(connect().await?, Some("Bearer t0ken-value")).await?,
        200
    );
    stop.cancel();
    Ok(())
}

#[tokio::test]
async fn tcp_listener_beyond_loopback_serves_tls_and_checks_the_token() -> TestResult {
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ken-value")?;
    let config = ApiConfig {
        socket: dir.path().join("api.sock"),
        grpc_socket: dir.path().join("grpc.sock"),
        health_listen: "127.0.0.1:0".parse()?,
        listen: Some("0.0.0.0:0".parse()?),
        token_file: Some(token),
        tls: Some(ApiTlsConfig {
            cert_file: tls_fixture("server.pem"),
            key_file: tls_fixture("server.key"),
        }),
        ..ApiConfig::default()
    };
    config.validate()?;
    let (addr, stop) = serve_tcp(config).await?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()));

    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::tls::load_certs("ca", &tls_fixture("ca.pem"))? {
        roots.add(cert)?;
    }
    let client = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let tls = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        connector.connect(name.clone(), tcp).await
    };
    assert_eq!(get_with(tls().await?, None).await?, 401);
    assert_eq!(
        get_with(tls().await?, Some("Bearer t0ken-value")).await?,
        200
    );

    // Plain HTTP to the TLS port gets no answer.
    let plain = get_with(
        tokio::net::TcpStream::connect(addr).await?,
        Some("Bearer t0ken-value"),
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(15), plain)
            .await
            .map_or(true, |r| r.is_err()),
        "plain HTTP was answered"
    );
    stop.cancel();
    Ok(())
}

#[tokio::test]
async fn unix_sockets_are_0600_and_given_the_configured_group() -> TestResult {
    let dir = tempfile::tempdir()?;
    // The test's own ids, as the directory it just made carries them.
    let (own_uid, own_gid) = {
        let meta = std::fs::metadata(dir.path())?;
        (meta.uid(), meta.gid())
    };
    // Root may give any group; anyone else only one of their own.
    let gid = if own_uid == 0 { 4242 } else { own_gid };
    let config = ApiConfig {
        socket: dir.path().join("api.sock"),
        grpc_socket: dir.path().join("grpc.sock"),
        health_listen: "127.0.0.1:0".parse()?,
        socket_gid: Some(gid),
        ..ApiConfig::default()
    };
    let listeners = ApiListeners::bind(&config).await?;
    for socket in [&config.socket, &config.grpc_socket] {
        let meta = std::fs::metadata(socket)?;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{socket:?}");
        assert_eq!(meta.gid(), gid, "{socket:?}");
        assert_eq!(meta.uid(), own_uid, "{socket:?}");
    }
    drop(listeners);
    Ok(())
}

#[tokio::test]
async fn a_bad_token_or_tls_file_stops_the_start_naming_the_field() -> TestResult {
    let dir = tempfile::tempdir()?;
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "")?;
    let base = ApiConfig {
        socket: dir.path().join("api.sock"),
        grpc_socket: dir.path().join("grpc.sock"),
        health_listen: "127.0.0.1:0".parse()?,
        listen: Some("127.0.0.1:0".parse()?),
        ..ApiConfig::default()
    };
    let with_token = ApiConfig {
        token_file: Some(empty.clone()),
        ..base.clone()
    };
    let e = ApiListeners::bind(&with_token)
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e,
        Some(format!(
            "api.token_file {}: is empty; write the secret into it; fix the file or the setting",
            empty.display()
        ))
    );
    let with_tls = ApiConfig {
        tls: Some(ApiTlsConfig {
            cert_file: empty.clone(),
            key_file: tls_fixture("server.key"),
        }),
        ..base
    };
    let e = ApiListeners::bind(&with_tls)
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        e,
        Some(format!(
            "api.tls.cert_file {}: no PEM certificate in it; fix the file or the setting",
            empty.display()
        ))
    );
    Ok(())
}

#[test]
fn a_bad_query_string_names_what_is_wrong() {
    let unknown = parse_filter("colour=red").err().unwrap_or_default();
    assert!(unknown.contains("unknown field `colour`"), "{unknown}");
    assert!(
        unknown.ends_with("use namespace=, pod= and state="),
        "{unknown}"
    );
    let state = parse_filter("state=bogus").err().unwrap_or_default();
    assert_eq!(
        state,
        "state must be one of running, exited, created, unknown, removed"
    );
    let filter = parse_filter("namespace=shop&pod=web%2D1&state=removed");
    assert!(filter.is_ok_and(|f| f.namespace.as_deref() == Some("shop")
        && f.pod.as_deref() == Some("web-1")
        && f.state.as_deref() == Some("removed")));
    // A key given twice is an error, not the last one silently winning.
    assert!(parse_filter("state=running&state=exited").is_err());
}
