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
mod pad;
mod pointwise;
mod pool2d;
mod reshape;
mod softmax;
mod transpose;

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
pub use pad::Pad;
pub use pool2d::{Pool2d, PoolKind};
pub use reshape::Reshape;
pub use softmax::Softmax;
pub use transpose::Transpose;

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

/// Ops a build links, one bit per [`Op`] variant ([`Op::bit`]): a firmware computes its
/// model's set at build time and runs [`crate::Executor::run_inference_in`] with it, so the
/// code of every other op is left out of its flash.
pub type OpSet = u32;

/// Generates [`Op`] (one variant per op type, of the same name), its bits, and its dispatch to
/// the op inside: an op is one line of the list below.
macro_rules! op_enum {
    ($($variant:ident = $bit:literal),* $(,)?) => {
        /// Every op of mote.
        #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
        pub enum Op {
            $($variant($variant),)*
        }

        impl Op {
            /// The op's bit in an [`OpSet`].
            pub const fn bit(&self) -> OpSet {
                match self {
                    $(Op::$variant(_) => 1 << $bit,)*
                }
            }

            /// [`OpKind::output_shape`] in a build that links only the shape rules of `OPS`
            /// (the other arms compile away); other ops are refused.
            pub fn output_shape_in<const OPS: OpSet>(&self, inputs: &[Shape]) -> Result<Shape> {
                match self {
                    $(Op::$variant(op) if OPS & (1 << $bit) != 0 => op.output_shape(inputs),)*
                    _ => Err(Error::OpNotInBuild { op: self.name() }),
                }
            }

            /// [`OpKind::forward`] in a build that links only the forward code of `OPS`.
            pub fn forward_in<const OPS: OpSet>(&self, f: Forward<'_>) -> Result<()> {
                match self {
                    $(Op::$variant(op) if OPS & (1 << $bit) != 0 => op.forward(f),)*
                    _ => Err(Error::OpNotInBuild { op: self.name() }),
                }
            }
        }

        // Every op has its own bit of an OpSet.
        const _: () = {
            let bits: &[u32] = &[$($bit),*];
            let mut i = 0;
            while i < bits.len() {
                assert!(bits[i] < OpSet::BITS);
                let mut j = i + 1;
                while j < bits.len() {
                    assert!(bits[i] != bits[j]);
                    j += 1;
                }
                i += 1;
            }
        };

        impl OpKind for Op {
            fn name(&self) -> &'static str {
                match self {
                    $(Op::$variant(op) => op.name(),)*
                }
            }
            fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
                self.output_shape_in::<{ OpSet::MAX }>(inputs)
            }
            fn saved(&self) -> Saved {
                match self {
                    $(Op::$variant(op) => op.saved(),)*
                }
            }
            fn forward(&self, f: Forward<'_>) -> Result<()> {
                self.forward_in::<{ OpSet::MAX }>(f)
            }
            fn backward(&self, b: Backward<'_>) -> Result<()> {
                match self {
                    $(Op::$variant(op) => op.backward(b),)*
                }
            }
            fn macs(&self, inputs: &[Shape], out: Shape) -> usize {
                match self {
                    $(Op::$variant(op) => op.macs(inputs, out),)*
                }
            }
            fn in_place(&self) -> bool {
                match self {
                    $(Op::$variant(op) => op.in_place(),)*
                }
            }
        }
    };
}

op_enum! {
    Linear = 0,
    MatMul = 1,
    Binary = 2,
    Pointwise = 3,
    Conv2d = 4,
    Pool2d = 5,
    GlobalAvgPool = 6,
    Reshape = 7,
    Softmax = 8,
    LayerNorm = 9,
    BatchNorm = 10,
    Dropout = 11,
    CrossEntropy = 12,
    Mse = 13,
    Pad = 14,
    Transpose = 15,
}

/// Checks an op got between `min` and `max` inputs.
pub(crate) fn expect_inputs(op: &'static str, inputs: &[Shape], min: usize, max: usize, expected: &'static str) -> Result<()> {
    if inputs.len() < min || inputs.len() > max {
        return Err(Error::InputCount { op, expected, got: inputs.len() });
    }
    Ok(())
}

/// How many positions a window of `kernel` taps `dilation` apart takes, sliding by `stride` ≥ 1
/// over `len` values padded with `pad = [begin, end]`:
/// `(len + begin + end − dilation·(kernel − 1) − 1) / stride + 1`. `Ok(None)` when the window
/// is larger than the padded input; an error when a length overflows `usize`.
pub(crate) fn window_positions(
    op: &'static str,
    len: usize,
    pad: [usize; 2],
    kernel: usize,
    dilation: usize,
    stride: usize,
) -> Result<Option<usize>> {
    let padded = pad[0].checked_add(pad[1]).and_then(|p| p.checked_add(len)).ok_or(Error::TooLarge { op, what: "the padded input" })?;
    let span = kernel.checked_sub(1).and_then(|k| k.checked_mul(dilation)).and_then(|k| k.checked_add(1));
    let span = span.ok_or(Error::TooLarge { op, what: "the dilated kernel" })?;
    Ok(padded.checked_sub(span).map(|room| room / stride.max(1) + 1))
}

/// Checks a parameter shape equals the one the op needs.
pub(crate) fn expect_shape(op: &'static str, got: Shape, want: &[usize], expected: &'static str) -> Result<()> {
    if got.dims() != want {
        let want = Shape::new(want)?;
        return Err(Error::ShapeMismatch { op, left: got, right: want, expected });
    }
    Ok(())
}
