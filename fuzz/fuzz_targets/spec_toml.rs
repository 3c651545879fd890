//! Fuzz target: see `mote_fuzz::spec_toml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mote_fuzz::spec_toml(data));
