//! A receiver for Gannet's `http` output: keeps every event of the JSON arrays POSTed to
//! it and answers 200. [`JsonReceiver::stop`] and [`JsonReceiver::start`] take it down and
//! bring it back on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running (or stopped) JSON receiver.
pub struct JsonReceiver {
    addr: SocketAddr,
    events: Arc<Mutex<Vec<Value>>>,
    stop: Option<CancellationToken>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl JsonReceiver {
    /// Starts a receiver on a free loopback port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn new() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let mut me = Self {
            addr: listener.local_addr()?,
            events: Arc::default(),
            stop: None,
            task: None,
        };
        me.serve(listener);
        Ok(me)
    }

    /// The URL Gannet's `http` output should POST to.
    pub fn url(&self) -> String {
        format!("http://{}/events", self.addr)
    }

    /// Every event received so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// How many events were received (without copying them).
    pub fn count(&self) -> usize {
        self.events.lock().map(|e| e.len()).unwrap_or_default()
    }

    /// Takes the receiver down: the port refuses connections until [`Self::start`].
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.cancel();
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    /// Brings the receiver back on the same port.
    ///
    /// # Errors
    /// When the port cannot be bound again.
    pub async fn start(&mut self) -> Result<()> {
        let listener = TcpListener::bind(self.addr)
            .await
            .with_context(|| format!("rebinding {}", self.addr))?;
        self.serve(listener);
        Ok(())
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = CancellationToken::new();
        self.stop = Some(stop.clone());
        let events = Arc::clone(&self.events);
        self.task = Some(tokio::spawn(crate::http_server::serve_http1(
            listener,
            stop,
            None,
            move |req: hyper::Request<hyper::body::Incoming>| {
                let events = Arc::clone(&events);
                async move {
                    let status = match req.into_body().collect().await {
                        Ok(body) => match serde_json::from_slice::<Vec<Value>>(&body.to_bytes()) {
                            Ok(batch) => {
                                events
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .extend(batch);
                                200
                            }
                            Err(_) => 400,
                        },
                        Err(_) => 400,
                    };
                    hyper::Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::new()))
                        .unwrap_or_default()
                }
            },
        )));
    }
}

impl Drop for JsonReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.cancel();
        }
    }
}
