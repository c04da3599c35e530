//! The HTTP/1.1 server loop the test receivers share: accepts on a listener until `stop`
//! fires, then drops every open connection, so the port refuses and resets like a
//! receiver that went down.

use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Serves `handler` on `listener` until `stop`.
pub(crate) async fn serve_http1<H, F>(listener: TcpListener, stop: CancellationToken, handler: H)
where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = hyper::Response<Full<Bytes>>> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => break,
        };
        let Ok((stream, _)) = accepted else { break };
        let handler = handler.clone();
        conns.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let answer = handler(req);
                async move { Ok::<_, std::convert::Infallible>(answer.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
    conns.abort_all();
}
