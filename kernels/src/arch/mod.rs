//! Kernels for one instruction set each, with the reference's signatures, exporting only what
//! they speed up; `dispatch` decides when they run. `m4`: the Cortex-M4's register-blocked
//! kernels; `m4_int8` and `m4_int8_one_channel`: int8 on the DSP extension (`dsp`: its
//! instructions); `int8_columns`: int8 over gathered columns for
//! instruction sets with 16-wide int8 dot products (`mve_int8`: Helium's; `neon_int8`: Neon's); `mve_f32`: Helium's fused f32 conv → relu → max pool, `mve_f32_backward` its sparse backward, `mve_f32_gemm` the linear layers' products, `mve_f32_conv` the unfused convolution (depthwise included). `depthwise_s8`: int8 depthwise for every instruction set. `simd`: the host's batch kernels, written once
//! over a vector width and built for x86-64 (AVX2, AVX-512F) and aarch64 (Neon).

pub mod depthwise_s8;
mod dsp;
pub mod int8_columns;
pub mod m4;
pub mod m4_int8;
pub mod m4_int8_one_channel;
pub mod mve_f32;
#[cfg(all(target_arch = "arm", feature = "mve"))]
pub mod mve_f32_backward;
#[cfg(all(target_arch = "arm", feature = "mve"))]
pub mod mve_f32_conv;
#[cfg(all(target_arch = "arm", feature = "mve"))]
pub mod mve_f32_gemm;
#[cfg(all(target_arch = "arm", feature = "mve"))]
pub mod mve_int8;
#[cfg(all(feature = "std", target_arch = "aarch64"))]
pub mod neon_int8;
mod requant_down;
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub mod simd;
