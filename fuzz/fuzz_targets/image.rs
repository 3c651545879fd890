//! Fuzz target: see `mote_fuzz::image`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mote_fuzz::image(data));
