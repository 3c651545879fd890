//! `cross_entropy`: from logits `[B, C]` and integer labels `[B]` (stored as f32), mean over
//! the batch (PyTorch's F.cross_entropy).

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::{cross_entropy_backward_f32, cross_entropy_f32};
use serde::{Deserialize, Serialize};

/// Softmax cross-entropy loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossEntropy;

const NAME: &str = "cross_entropy";

/// Every label must be an integer in `0..classes`.
fn check_labels(labels: &[f32], classes: usize) -> Result<()> {
    for (index, &value) in labels.iter().enumerate() {
        if !(value >= 0.0 && value < classes as f32 && value == libm::truncf(value)) {
            return Err(Error::InvalidLabel { index, value, classes });
        }
    }
    Ok(())
}

impl OpKind for CrossEntropy {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 2, 2, "logits and labels")?;
        let (logits, labels) = (inputs[0], inputs[1]);
        if logits.rank() != 2 || labels.dims() != [logits.dim(0)] {
            return Err(Error::ShapeMismatch { op: NAME, left: logits, right: labels, expected: "logits [B, C] and labels [B]" });
        }
        Shape::new(&[1])
    }
    fn saved(&self) -> Saved {
        Saved::inputs(&[0, 1])
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let (batch, classes) = (f.shapes[0].dim(0), f.shapes[0].dim(1));
        check_labels(f.inputs[1], classes)?;
        f.out[0] = cross_entropy_f32(batch, classes, f.inputs[0], f.inputs[1]);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let (batch, classes) = (b.shapes[0].dim(0), b.shapes[0].dim(1));
        check_labels(b.inputs[1], classes)?;
        // Labels are piecewise constant: their gradient (if one was asked for) stays zero.
        if let [Some(dlogits), ..] = b.grads {
            cross_entropy_backward_f32(batch, classes, b.inputs[0], b.inputs[1], b.dout[0], dlogits);
        }
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// Mean cross-entropy of `logits [B, C]` against `labels [B]`.
    pub fn cross_entropy(&mut self, logits: NodeId, labels: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::CrossEntropy(CrossEntropy), &[logits, labels])
    }
}
