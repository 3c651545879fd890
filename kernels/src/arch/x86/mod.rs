//! x86-64 kernels with AVX2 and FMA: the gemm of the linear layers, the fused conv → relu →
//! maxpool forward and whole-layer backward for host batches, and Adam.

pub mod conv;
mod gemm;
mod optim;

pub use gemm::gemm_f32;
pub use optim::adam_f32;
