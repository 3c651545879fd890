//! Fuzz target: see `mote_fuzz::graph_bytes`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mote_fuzz::graph_bytes(data));
