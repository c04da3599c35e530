//! Fuzz target: `gannet::fuzzing::api_query` must return, never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gannet::fuzzing::api_query(data));
