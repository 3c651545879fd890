//! Cortex-M firmware shell around `mote-core`; the binaries arrive with the firmware issue.
#![no_std]

pub use mote_core as core_runtime;
