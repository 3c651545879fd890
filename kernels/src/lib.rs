//! Pure numeric kernels for mote: functions over slices and explicit dimensions, no graph types.
//!
//! `reference` holds the scalar implementation of every kernel, the oracle; `arch` holds the
//! versions for one instruction set each; `dispatch` picks, for each kernel, the version that
//! runs, and is what this crate exports at its root. Kernels are named `<op>_<dtype>`;
//! backward kernels *accumulate* (`+=`) into their gradient outputs so a tensor feeding two
//! consumers receives the sum of both adjoints.
#![cfg_attr(not(any(test, feature = "std")), no_std)]

pub mod arch;
#[cfg(any(test, feature = "checks"))]
pub mod checks;
pub mod dispatch;
pub mod math;
pub mod reference;

pub use dispatch::*;

/// Deterministic values in [-1, 1] (xorshift32 from `seed`), for kernel tests and benchmarks.
#[doc(hidden)]
pub fn test_values(seed: u32, n: usize) -> impl Iterator<Item = f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n).map(move |_| {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        (s % 2001) as f32 / 1000.0 - 1.0
    })
}
