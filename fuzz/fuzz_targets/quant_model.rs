//! Fuzz target: see `mote_fuzz::quant_model`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mote_fuzz::quant_model(data));
