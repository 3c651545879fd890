//! `matmul`: `[M, K] · [K, N] → [M, N]`.

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::{gemm_f32, Transpose};
use serde::{Deserialize, Serialize};

/// Matrix product of two rank-2 tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatMul;

const NAME: &str = "matmul";

impl OpKind for MatMul {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 2, 2, "two matrices")?;
        let (a, b) = (inputs[0], inputs[1]);
        if a.rank() != 2 || b.rank() != 2 || a.dim(1) != b.dim(0) {
            return Err(Error::ShapeMismatch { op: NAME, left: a, right: b, expected: "[M, K] and [K, N]" });
        }
        Shape::new(&[a.dim(0), b.dim(1)])
    }
    fn saved(&self) -> Saved {
        Saved::inputs(&[0, 1])
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let (m, k, n) = (f.shapes[0].dim(0), f.shapes[0].dim(1), f.shapes[1].dim(1));
        gemm_f32(Transpose { a: false, b: false }, m, n, k, f.inputs[0], f.inputs[1], f.out, false);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let (m, k, n) = (b.shapes[0].dim(0), b.shapes[0].dim(1), b.shapes[1].dim(1));
        let [da, db, ..] = b.grads;
        if let Some(da) = da {
            gemm_f32(Transpose { a: false, b: true }, m, k, n, b.dout, b.inputs[1], da, true);
        }
        if let Some(db) = db {
            gemm_f32(Transpose { a: true, b: false }, k, n, m, b.inputs[0], b.dout, db, true);
        }
        Ok(())
    }
    fn macs(&self, inputs: &[Shape], out: Shape) -> usize {
        out.numel().saturating_mul(inputs[0].dim(1))
    }
}

impl<const N: usize> Graph<N> {
    /// `a · b`.
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::MatMul(MatMul), &[a, b])
    }
}
