//! End-to-end suite.

// `gannet run` without a runtime: health, bad input, SIGHUP and SIGTERM.
mod run_signals;
