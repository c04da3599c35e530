//! End-to-end suite. The harness every area stands on (containerd labs, the CRI driver,
//! the gannet runner, the plugin builder) is the `gannet-test-kit` crate (`tests/kit/`).

// Tests of the harness itself: pods run, kill -9 and restart behave, teardown is clean.
mod harness_selftest;
// Discovery against a real containerd: gannet list values, exits, removal, pid reuse, reconnect.
mod discovery;
// `gannet run` without a runtime: health, bad input, SIGHUP and SIGTERM.
mod run_signals;
// `gannet run` against a real containerd: HTTP output, retries, the data API, SIGTERM flush.
mod pipeline;
// The otlp output against real OTLP receivers (gRPC and HTTP) on the upstream protos.
mod otlp;
// The example plugins (guest SDK) through the real plugin engine; needs no containerd.
mod example_plugins;
// Python and JavaScript plugins: the guide plugin in three languages, same output lines.
mod plugin_languages;
// `gannet run` with Rust, Python and JS plugins in one chain: tags, failures, hot reload.
mod lang_chain;
// `gannet plugin new`: scaffold, build and run a plugin in each language.
mod plugin_new;
// Event-driven discovery: the event path, exec filtering, containerd restart mid-churn.
mod events;
// Faults added by the test kit's fault proxy in front of the real containerd.
mod faults;
// deploy/daemonset.yaml run for real: both images built here, the pod created through CRI.
mod daemonset;
