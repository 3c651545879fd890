//! `mse`: mean squared error over all elements (PyTorch's F.mse_loss, reduction mean).

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::{mse_backward_f32, mse_f32};
use serde::{Deserialize, Serialize};

/// Mean squared error of two tensors of one shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mse;

const NAME: &str = "mse";

impl OpKind for Mse {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 2, 2, "prediction and target")?;
        if inputs[0] != inputs[1] {
            return Err(Error::ShapeMismatch { op: NAME, left: inputs[0], right: inputs[1], expected: "equal shapes" });
        }
        Shape::new(&[1])
    }
    fn saved(&self) -> Saved {
        Saved::inputs(&[0, 1])
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        f.out[0] = mse_f32(f.inputs[0], f.inputs[1]);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let [da, db, ..] = b.grads;
        mse_backward_f32(b.inputs[0], b.inputs[1], b.dout[0], da, db);
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// `mean((prediction − target)²)`.
    pub fn mse(&mut self, prediction: NodeId, target: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::Mse(Mse), &[prediction, target])
    }
}
