//! mote on a Cortex-M4F: the board support (counters, stack painting, exit), the host link
//! (samples in, results out), and the model embedded in flash, shared by the binaries.
#![no_std]

pub mod board;
pub mod error;
pub mod heap;
pub mod link;
pub mod model;

/// Arena and buffer sizes computed by `build.rs` from the exported model's plans.
pub mod sizes {
    include!(concat!(env!("OUT_DIR"), "/sizes.rs"));
}

use defmt_semihosting as _;
