//! Scalar reference kernels: the oracle every optimized kernel is tested against.

mod batchnorm;
mod broadcast;
mod conv2d;
pub(crate) mod fused;
mod gemm;
pub mod int8;
mod layernorm;
mod layout;
mod loss;
mod optim;
mod pointwise;
mod pool2d;
mod softmax;

pub use batchnorm::*;
pub use broadcast::*;
pub use conv2d::*;
pub use fused::*;
pub use gemm::*;
pub use layernorm::*;
pub use layout::*;
pub use loss::*;
pub use optim::*;
pub use pointwise::*;
pub use pool2d::*;
pub use softmax::*;
