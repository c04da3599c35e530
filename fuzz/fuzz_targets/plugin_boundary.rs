//! Fuzz target: `gannet::fuzzing::plugin_boundary` runs the bytes as a program of host
//! calls in a real plugin; the host must never panic, and a failed call must leave the
//! record exactly as it was.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gannet::fuzzing::plugin_boundary(data));
