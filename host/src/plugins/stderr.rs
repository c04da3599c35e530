//! Guest stderr routed to the agent's log, one log event per non-blank line, rate-limited
//! with the plugin's `log` import so a panicking plugin's message is kept and a chatty one
//! is not.
//!
//! Owns the WASI output stream given to every plugin's `WasiCtx` as stderr.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::host_state::PluginContext;

/// Longest line kept; the rest of a longer line is cut.
const MAX_LINE_BYTES: usize = 4096;
/// Bytes the guest may write per `check-write` permit.
const WRITE_PERMIT_BYTES: usize = 64 * 1024;

/// A stderr that turns lines into log events for one plugin.
#[derive(Clone)]
pub struct LogStderr {
    context: Arc<PluginContext>,
    pending: Arc<Mutex<Vec<u8>>>,
}

impl LogStderr {
    /// A stderr for the plugin described by `context`.
    pub fn new(context: Arc<PluginContext>) -> Self {
        Self {
            context,
            pending: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        for &b in bytes {
            if b == b'\n' {
                let line = String::from_utf8_lossy(&pending).into_owned();
                pending.clear();
                // A blank line (Rust's panic hook starts with one) says nothing and would
                // spend the plugin's log budget.
                if !line.trim().is_empty() {
                    self.context.log_line(tracing::Level::WARN, &line);
                }
            } else if pending.len() < MAX_LINE_BYTES {
                pending.push(b);
            }
        }
    }
}

impl IsTerminal for LogStderr {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStderr {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStderr {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStderr {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT_BYTES)
    }
}

impl tokio::io::AsyncWrite for LogStderr {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
