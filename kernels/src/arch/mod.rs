//! Kernels for one instruction set each, with the reference's signatures, exporting only what
//! they speed up; `dispatch` decides when they run. `m4`: the Cortex-M4's register-blocked
//! kernels; `m4_int8` and `m4_int8_one_channel`: int8 on the DSP extension (`dsp`: its
//! instructions); `mve_int8`: int8 on Helium. `simd`: the host's batch kernels, written once
//! over a vector width and built for x86-64 (AVX2, AVX-512F) and aarch64 (Neon).

mod dsp;
pub mod m4;
pub mod m4_int8;
pub mod m4_int8_one_channel;
pub mod mve_int8;
mod requant_down;
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub mod simd;
