//! Fuzz target: see `mote_fuzz::idx`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mote_fuzz::idx(data));
