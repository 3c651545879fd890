//! int8 inference: models in TFLite's quantization scheme (NHWC, per-channel symmetric int8
//! weights, per-tensor int8 activations with zero points, i32 biases), run step by step with
//! the int8 kernels in one planned byte arena. Built by `mote import` (int8 TFLite) and
//! `mote quantize`; stored in `MOTQ` model files whose constants are read in place.

mod model;
mod plan;
mod residual;
mod spec;

pub use model::{quant_spec_len, write_quant_spec, QuantModel};
pub use plan::{ArenaPlan, Life, MAX_TENSORS};
pub use residual::{row_conv, BlockTensors, ConvData, QConv, Residual};
pub use spec::{Blob, Operand, QLayer, QStep, QTensor, Quant, MAX_QUANT_STEPS, MAX_TENSOR_VALUES};

use core::fmt;

/// Why an int8 model cannot be loaded or run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QuantError {
    /// The spec bytes do not decode (the field named).
    Spec { what: &'static str },
    /// Step `step` does not fit its operands: what was wrong.
    Step { step: usize, what: &'static str },
    /// The data section is not 4-byte aligned in memory (copy the file into aligned memory).
    Misaligned,
    /// The arena is smaller than the plan needs.
    ArenaTooSmall { needed: usize, got: usize },
    /// The input has the wrong number of values.
    InputLength { needed: usize, got: usize },
}

impl fmt::Display for QuantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QuantError::Spec { what } => write!(f, "int8 model: bad or missing {what}"),
            QuantError::Step { step, what } => write!(f, "int8 model: step {step}: bad {what}"),
            QuantError::Misaligned => write!(f, "int8 model: the data section is not 4-byte aligned in memory"),
            QuantError::ArenaTooSmall { needed, got } => write!(f, "int8 model: the arena needs {needed} bytes, got {got}"),
            QuantError::InputLength { needed, got } => write!(f, "int8 model: the input needs {needed} values, got {got}"),
        }
    }
}

impl core::error::Error for QuantError {}
