//! Fuzz target: `gannet::fuzzing::verbose_info` must return, never panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gannet::fuzzing::verbose_info(data));
