//! Fuzz target: `gannet::fuzzing::sidecar` must return, never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gannet::fuzzing::sidecar(data));
