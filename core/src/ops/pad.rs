//! `pad`: constant padding of the height and width of `[B, C, H, W]` (ONNX Pad on the last two
//! axes, TFLite PAD on H and W, PyTorch's ZeroPad2d).

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::{pad2d_backward_f32, pad2d_f32, Pad2dParams};
use serde::{Deserialize, Serialize};

/// Padding `[top, left, bottom, right]` with `value`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pad {
    pub pad: [usize; 4],
    pub value: f32,
}

const NAME: &str = "pad";

impl Pad {
    fn params(&self, x: Shape) -> Pad2dParams {
        Pad2dParams { planes: x.dim(0) * x.dim(1), in_h: x.dim(2), in_w: x.dim(3), pad: self.pad, value: self.value }
    }
}

impl OpKind for Pad {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 1, 1, "one input")?;
        let x = inputs[0];
        if x.rank() != 4 {
            return Err(Error::InvalidShape { op: NAME, shape: x, expected: "input [B, C, H, W]" });
        }
        if !self.value.is_finite() {
            return Err(Error::InvalidArgument { op: NAME, expected: "a finite padding value" });
        }
        let [top, left, bottom, right] = self.pad;
        let too_large = Error::TooLarge { op: NAME, what: "the padded input" };
        let h = x.dim(2).checked_add(top).and_then(|h| h.checked_add(bottom)).ok_or(too_large)?;
        let w = x.dim(3).checked_add(left).and_then(|w| w.checked_add(right)).ok_or(too_large)?;
        Shape::new(&[x.dim(0), x.dim(1), h, w])
    }
    fn saved(&self) -> Saved {
        Saved::NOTHING
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        pad2d_f32(&self.params(f.shapes[0]), f.inputs[0], f.out);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        if let [Some(dx), ..] = b.grads {
            pad2d_backward_f32(&self.params(b.shapes[0]), b.dout, dx);
        }
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// Pads the height and width of `x` by `pad = [top, left, bottom, right]` cells of `value`.
    pub fn pad(&mut self, x: NodeId, pad: [usize; 4], value: f32) -> Result<NodeId> {
        self.push_op(super::Op::Pad(Pad { pad, value }), &[x])
    }
}
