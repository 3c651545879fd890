//! `global_avgpool`: `[B, C, H, W] → [B, C]`, the mean of each channel plane.

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::{global_avgpool_backward_f32, global_avgpool_f32};
use serde::{Deserialize, Serialize};

/// Global average pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalAvgPool;

const NAME: &str = "global_avgpool";

impl OpKind for GlobalAvgPool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 1, 1, "one input")?;
        let x = inputs[0];
        if x.rank() != 4 {
            return Err(Error::InvalidShape { op: NAME, shape: x, expected: "input [B, C, H, W]" });
        }
        Shape::new(&[x.dim(0), x.dim(1)])
    }
    fn saved(&self) -> Saved {
        Saved::NOTHING
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let x = f.shapes[0];
        global_avgpool_f32(x.dim(0) * x.dim(1), x.dim(2) * x.dim(3), f.inputs[0], f.out);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let x = b.shapes[0];
        if let [Some(dx), ..] = b.grads {
            global_avgpool_backward_f32(x.dim(0) * x.dim(1), x.dim(2) * x.dim(3), b.dout, dx);
        }
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// Mean over H and W.
    pub fn global_avgpool(&mut self, x: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::GlobalAvgPool(GlobalAvgPool), &[x])
    }
}
