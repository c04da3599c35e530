//! Fuzz target: `gannet::fuzzing::native_event` must return, never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gannet::fuzzing::native_event(data));
