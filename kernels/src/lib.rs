//! Pure numeric kernels for mote: functions over slices and explicit dimensions, no graph types.
//!
//! Every kernel here is the scalar reference implementation, the oracle that SIMD versions
//! (one file per ISA, later) are tested against. Kernels named `<op>_<dtype>`; backward
//! kernels *accumulate* (`+=`) into their gradient outputs so a tensor feeding two consumers
//! receives the sum of both adjoints.
#![cfg_attr(not(test), no_std)]

pub mod math;
pub mod reference;

pub use reference::*;
