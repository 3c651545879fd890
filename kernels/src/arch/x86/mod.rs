//! x86-64 kernels with AVX2 and FMA, each with the reference's signature: the gemm of the
//! linear layers and the optimizer updates.

mod gemm;
mod optim;

pub use gemm::gemm_f32;
pub use optim::adam_f32;
