//! Pure numeric kernels for mote: functions over slices and explicit dimensions, no graph types.
//!
//! `reference` holds the scalar implementation of every kernel, the oracle; `arch` holds the
//! versions for one instruction set each; `dispatch` picks, for each kernel, the version that
//! runs, and is what this crate exports at its root. Kernels are named `<op>_<dtype>`;
//! backward kernels *accumulate* (`+=`) into their gradient outputs so a tensor feeding two
//! consumers receives the sum of both adjoints.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

pub mod arch;
pub mod dispatch;
pub mod math;
pub mod reference;

pub use dispatch::*;
