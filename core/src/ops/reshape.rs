//! `reshape` and `flatten`: the same values under another shape (row-major order kept).

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::add_assign_f32;
use serde::{Deserialize, Serialize};

/// Reshape to `target` (same number of elements).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reshape {
    pub target: Shape,
}

const NAME: &str = "reshape";

impl OpKind for Reshape {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 1, 1, "one input")?;
        if inputs[0].numel() != self.target.numel() {
            return Err(Error::ShapeMismatch { op: NAME, left: inputs[0], right: self.target, expected: "the same number of elements" });
        }
        Ok(self.target)
    }
    fn saved(&self) -> Saved {
        Saved::NOTHING
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        f.out.copy_from_slice(f.inputs[0]);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        if let [Some(dx), ..] = b.grads {
            add_assign_f32(dx, b.dout);
        }
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// Reshape `x` to `dims`.
    pub fn reshape(&mut self, x: NodeId, dims: &[usize]) -> Result<NodeId> {
        let target = Shape::new(dims)?;
        self.push_op(super::Op::Reshape(Reshape { target }), &[x])
    }
    /// `[B, …] → [B, prod(…)]`.
    pub fn flatten(&mut self, x: NodeId) -> Result<NodeId> {
        let s = self.shape(x)?;
        self.reshape(x, &[s.dim(0), s.per_sample()])
    }
}
