//! The op list. Each op lives in one file with its shape rule, forward, backward, the
//! tensors its backward needs, and its graph-builder method (which creates its parameters).

mod batchnorm;
mod binary;
mod conv2d;
mod cross_entropy;
mod dropout;
mod global_avgpool;
mod layernorm;
mod linear;
mod matmul;
mod mse;
mod pointwise;
mod pool2d;
mod reshape;
mod softmax;

pub use batchnorm::BatchNorm;
pub use binary::Binary;
pub use conv2d::Conv2d;
pub use cross_entropy::CrossEntropy;
pub use dropout::Dropout;
pub use global_avgpool::GlobalAvgPool;
pub use layernorm::LayerNorm;
pub use linear::Linear;
pub use matmul::MatMul;
pub use mote_kernels::{BinaryOp, Pointwise};
pub use mse::Mse;
pub use pool2d::{Pool2d, PoolKind};
pub use reshape::Reshape;
pub use softmax::Softmax;

use crate::graph::MAX_INPUTS;
use crate::plan::Mode;
use crate::rng::NoiseKey;
use crate::{Error, Result, Shape};
use serde::{Deserialize, Serialize};

/// Which forward tensors an op's backward reads: a bit per input, and the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saved {
    pub inputs: u8,
    pub output: bool,
}

impl Saved {
    pub(crate) const NOTHING: Saved = Saved { inputs: 0, output: false };
    pub(crate) const OUTPUT: Saved = Saved { inputs: 0, output: true };
    /// The inputs at `positions`.
    pub(crate) const fn inputs(positions: &[usize]) -> Saved {
        let mut bits = 0u8;
        let mut i = 0;
        while i < positions.len() {
            bits |= 1 << positions[i];
            i += 1;
        }
        Saved { inputs: bits, output: false }
    }
    /// Whether the input at `position` is read by the backward.
    pub fn input(&self, position: usize) -> bool {
        self.inputs & (1 << position) != 0
    }
}

/// What a forward kernel call sees: its inputs, its output, and the run's mode and noise.
pub struct Forward<'a> {
    /// Input values; empty for inputs handed out as `state` instead.
    pub inputs: [&'a [f32]; MAX_INPUTS],
    /// Mutable state inputs (batchnorm running statistics in training mode).
    pub state: [Option<&'a mut [f32]>; MAX_INPUTS],
    pub shapes: [Shape; MAX_INPUTS],
    pub n_inputs: usize,
    pub out: &'a mut [f32],
    pub out_shape: Shape,
    pub mode: Mode,
    /// The plan placed the output over input 0: `out` holds the input values on entry and
    /// `inputs[0]` is empty (only for ops whose [`OpKind::in_place`] is true).
    pub in_place: bool,
    pub(crate) noise: NoiseKey,
}

/// What a backward kernel call sees: the saved forward tensors, the output's gradient, and
/// the gradients of the inputs that need one (accumulated into).
pub struct Backward<'a> {
    /// Values of the inputs the op saved (see [`OpKind::saved`]); empty otherwise.
    pub inputs: [&'a [f32]; MAX_INPUTS],
    pub shapes: [Shape; MAX_INPUTS],
    pub n_inputs: usize,
    /// The output value if the op saved it; empty otherwise.
    pub out: &'a [f32],
    pub out_shape: Shape,
    /// Gradient of the loss with respect to the output.
    pub dout: &'a [f32],
    /// Gradients of the inputs that need one; add into them.
    pub grads: [Option<&'a mut [f32]>; MAX_INPUTS],
    pub mode: Mode,
    /// The plan placed input 0's gradient over the output's: `grads[0]` holds the output
    /// gradient on entry and must be overwritten with input 0's; `dout` is empty.
    pub in_place: bool,
    pub(crate) noise: NoiseKey,
}

/// The optional input at `position`, if the op was given one.
pub(crate) fn optional<'a>(inputs: &[&'a [f32]; MAX_INPUTS], n: usize, position: usize) -> Option<&'a [f32]> {
    (position < n).then(|| inputs[position])
}

/// The behaviour every op has.
pub trait OpKind {
    /// Name used in errors and reports.
    fn name(&self) -> &'static str;
    /// Output shape from the input shapes, or a typed error naming the op and the shapes.
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape>;
    /// The forward tensors the backward reads (they stay alive in the arena until then).
    fn saved(&self) -> Saved;
    /// Computes the output.
    fn forward(&self, f: Forward<'_>) -> Result<()>;
    /// Accumulates the input gradients.
    fn backward(&self, b: Backward<'_>) -> Result<()>;
    /// Whether the op can run in place (elementwise over input 0): forward overwriting input 0
    /// with the output, backward turning the output gradient into input 0's. The planner
    /// uses it only where input 0 is dead afterwards (see `Forward::in_place`).
    fn in_place(&self) -> bool {
        false
    }
    /// Multiply-accumulates of one forward pass (for reports); 0 for ops that do none.
    fn macs(&self, inputs: &[Shape], out: Shape) -> usize {
        let _ = (inputs, out);
        0
    }
}

/// Every op of mote.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    Linear(Linear),
    MatMul(MatMul),
    Binary(Binary),
    Pointwise(Pointwise),
    Conv2d(Conv2d),
    Pool2d(Pool2d),
    GlobalAvgPool(GlobalAvgPool),
    Reshape(Reshape),
    Softmax(Softmax),
    LayerNorm(LayerNorm),
    BatchNorm(BatchNorm),
    Dropout(Dropout),
    CrossEntropy(CrossEntropy),
    Mse(Mse),
}

/// Calls `$call` with the op inside `$self` for the ops whose bit is in `$set` (a constant: the
/// other arms compile away), and gives `$other` for the rest. Without `only`, every op's bit
/// is in the set and `$other` is never reached.
macro_rules! dispatch {
    ($self:ident, $op:ident => $call:expr, else $other:expr) => {
        dispatch!($self, $op => $call, only OpSet::MAX, else $other)
    };
    ($self:ident, $op:ident => $call:expr, only $set:expr, else $other:expr) => {
        match $self {
            Op::Linear($op) if $set & $self.bit() != 0 => $call,
            Op::MatMul($op) if $set & $self.bit() != 0 => $call,
            Op::Binary($op) if $set & $self.bit() != 0 => $call,
            Op::Pointwise($op) if $set & $self.bit() != 0 => $call,
            Op::Conv2d($op) if $set & $self.bit() != 0 => $call,
            Op::Pool2d($op) if $set & $self.bit() != 0 => $call,
            Op::GlobalAvgPool($op) if $set & $self.bit() != 0 => $call,
            Op::Reshape($op) if $set & $self.bit() != 0 => $call,
            Op::Softmax($op) if $set & $self.bit() != 0 => $call,
            Op::LayerNorm($op) if $set & $self.bit() != 0 => $call,
            Op::BatchNorm($op) if $set & $self.bit() != 0 => $call,
            Op::Dropout($op) if $set & $self.bit() != 0 => $call,
            Op::CrossEntropy($op) if $set & $self.bit() != 0 => $call,
            Op::Mse($op) if $set & $self.bit() != 0 => $call,
            _ => $other,
        }
    };
}

/// Ops a build links, one bit per [`Op`] variant ([`Op::bit`]): a firmware computes its
/// model's set at build time and runs [`crate::Executor::run_inference_in`] with it, so the
/// forward code of every other op is left out of its flash.
pub type OpSet = u32;

impl Op {
    /// The op's bit in an [`OpSet`].
    pub const fn bit(&self) -> OpSet {
        1 << match self {
            Op::Linear(_) => 0,
            Op::MatMul(_) => 1,
            Op::Binary(_) => 2,
            Op::Pointwise(_) => 3,
            Op::Conv2d(_) => 4,
            Op::Pool2d(_) => 5,
            Op::GlobalAvgPool(_) => 6,
            Op::Reshape(_) => 7,
            Op::Softmax(_) => 8,
            Op::LayerNorm(_) => 9,
            Op::BatchNorm(_) => 10,
            Op::Dropout(_) => 11,
            Op::CrossEntropy(_) => 12,
            Op::Mse(_) => 13,
        }
    }

    /// [`OpKind::output_shape`] in a build that links only the shape rules of `OPS`.
    pub fn output_shape_in<const OPS: OpSet>(&self, inputs: &[Shape]) -> Result<Shape> {
        dispatch!(self, op => op.output_shape(inputs), only OPS, else Err(Error::OpNotInBuild { op: self.name() }))
    }

    /// [`OpKind::forward`] in a build that links only the ops of `OPS`; other ops are refused.
    pub fn forward_in<const OPS: OpSet>(&self, f: Forward<'_>) -> Result<()> {
        dispatch!(self, op => op.forward(f), only OPS, else Err(Error::OpNotInBuild { op: self.name() }))
    }
}

impl OpKind for Op {
    fn name(&self) -> &'static str {
        dispatch!(self, op => op.name(), else "op")
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        self.output_shape_in::<{ OpSet::MAX }>(inputs)
    }
    fn saved(&self) -> Saved {
        dispatch!(self, op => op.saved(), else Saved::NOTHING)
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        self.forward_in::<{ OpSet::MAX }>(f)
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        dispatch!(self, op => op.backward(b), else Err(Error::OpNotInBuild { op: self.name() }))
    }
    fn macs(&self, inputs: &[Shape], out: Shape) -> usize {
        dispatch!(self, op => op.macs(inputs, out), else 0)
    }
    fn in_place(&self) -> bool {
        dispatch!(self, op => op.in_place(), else false)
    }
}

/// Checks an op got between `min` and `max` inputs.
pub(crate) fn expect_inputs(op: &'static str, inputs: &[Shape], min: usize, max: usize, expected: &'static str) -> Result<()> {
    if inputs.len() < min || inputs.len() > max {
        return Err(Error::InputCount { op, expected, got: inputs.len() });
    }
    Ok(())
}

/// How many positions a window of `kernel` takes, sliding by `stride` ≥ 1 over `len` values
/// padded with `pad` on both sides: `(len + 2·pad − kernel) / stride + 1`. `Ok(None)` when the
/// window is larger than the padded input; an error when the padded length overflows `usize`.
pub(crate) fn window_positions(op: &'static str, len: usize, pad: usize, kernel: usize, stride: usize) -> Result<Option<usize>> {
    let padded = pad.checked_mul(2).and_then(|p| p.checked_add(len)).ok_or(Error::TooLarge { op, what: "the padded input" })?;
    Ok(padded.checked_sub(kernel).map(|room| room / stride.max(1) + 1))
}

/// Checks a parameter shape equals the one the op needs.
pub(crate) fn expect_shape(op: &'static str, got: Shape, want: &[usize], expected: &'static str) -> Result<()> {
    if got.dims() != want {
        let want = Shape::new(want)?;
        return Err(Error::ShapeMismatch { op, left: got, right: want, expected });
    }
    Ok(())
}
