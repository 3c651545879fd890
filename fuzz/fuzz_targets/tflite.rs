//! Fuzz target: see `mote_fuzz::tflite`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mote_fuzz::tflite(data));
