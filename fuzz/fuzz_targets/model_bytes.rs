//! Fuzz target: see `mote_fuzz::model_bytes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mote_fuzz::model_bytes(data));
