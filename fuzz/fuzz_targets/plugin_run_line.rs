//! Fuzz target: `gannet::fuzzing::plugin_run_line` must return, never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gannet::fuzzing::plugin_run_line(data));
