//! Log set-up for the commands: `tracing` to stderr, so stdout stays clean for data.

use tracing_subscriber::EnvFilter;

/// Installs a text logger on stderr at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_stderr(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // A second init (tests calling twice) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
