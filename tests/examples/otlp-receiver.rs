//! A small OTLP receiver for the demo: `otlp-receiver PORT [grpc|http]` listens on
//! 127.0.0.1:PORT (OTLP/gRPC by default) and prints every log record it receives as one
//! JSON line on stdout: `{"event_name", "time_unix_nano", "attributes", "resource"}`.
//! Built on the test kit's receiver, which uses the upstream OTLP protos.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use gannet_test_kit::otlp::{OtlpReceiver, OtlpTransport};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args
        .next()
        .context("usage: otlp-receiver PORT [grpc|http]")?
        .parse()
        .context("PORT must be a port number")?;
    let transport = match args.next().as_deref() {
        None | Some("grpc") => OtlpTransport::Grpc,
        Some("http") => OtlpTransport::Http,
        Some(other) => bail!("unknown transport {other:?}: use grpc or http"),
    };
    let receiver = OtlpReceiver::bind(transport, ([127, 0, 0, 1], port).into()).await?;
    eprintln!("otlp-receiver: listening on {}", receiver.endpoint());
    let mut printed = 0;
    loop {
        let records = receiver.records();
        for r in &records[printed..] {
            println!("{r}");
        }
        printed = records.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
