//! x86-64 kernels with AVX2 and FMA, and AVX-512F where it pays: the gemm of the linear
//! layers (both widths), the fused conv → relu → maxpool forward and whole-layer backward for
//! host batches (their products at either width), and Adam (AVX2).

pub mod conv;
mod gemm;
mod im2col;
mod optim;
pub mod plain_conv;
mod simd;

pub use gemm::{gemm_f32, gemm_f32_avx512};
pub use optim::adam_f32;
