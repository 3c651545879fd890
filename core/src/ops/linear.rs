//! `linear`: `y = x · Wᵀ + b`, weight `[out, in]`, bias `[out]` optional (PyTorch's nn.Linear).

use super::{expect_inputs, expect_shape, optional, Backward, Forward, OpKind, Saved};
use crate::{Graph, Init, NodeId, Result, Shape};
use mote_kernels::{add_row_bias_f32, gemm_f32, sum_rows_f32, Transpose};
use serde::{Deserialize, Serialize};

/// Fully connected layer over the last dimension. Inputs: `x [.., in]`, `W [out, in]`, `b [out]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linear;

const NAME: &str = "linear";

/// `(rows, in, out)` of a call.
fn dims(shapes: &[Shape], out: Shape) -> (usize, usize, usize) {
    let inf = shapes[0].last();
    (shapes[0].numel() / inf, inf, out.last())
}

impl OpKind for Linear {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 2, 3, "x, weight and an optional bias")?;
        let (x, w) = (inputs[0], inputs[1]);
        if w.rank() != 2 || w.dim(1) != x.last() {
            return Err(crate::Error::ShapeMismatch {
                op: NAME,
                left: x,
                right: w,
                expected: "weight [out, in] with in = the last dim of x",
            });
        }
        if let Some(&b) = inputs.get(2) {
            expect_shape(NAME, b, &[w.dim(0)], "bias [out]")?;
        }
        let mut dims = [0; 4];
        dims[..x.rank()].copy_from_slice(x.dims());
        dims[x.rank() - 1] = w.dim(0);
        Shape::new(&dims[..x.rank()])
    }
    fn saved(&self) -> Saved {
        Saved::inputs(&[0, 1])
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let (rows, inf, outf) = dims(&f.shapes, f.out_shape);
        let nt = Transpose { a: false, b: true };
        gemm_f32(nt, rows, outf, inf, f.inputs[0], f.inputs[1], f.out, false);
        if let Some(b) = optional(&f.inputs, f.n_inputs, 2) {
            add_row_bias_f32(rows, outf, b, f.out);
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let (rows, inf, outf) = dims(&b.shapes, b.out_shape);
        let [dx, dw, db, ..] = b.grads;
        if let Some(dx) = dx {
            gemm_f32(Transpose { a: false, b: false }, rows, inf, outf, b.dout, b.inputs[1], dx, true);
        }
        if let Some(dw) = dw {
            gemm_f32(Transpose { a: true, b: false }, outf, inf, rows, b.dout, b.inputs[0], dw, true);
        }
        if let Some(db) = db {
            sum_rows_f32(rows, outf, b.dout, db);
        }
        Ok(())
    }
    fn macs(&self, inputs: &[Shape], out: Shape) -> usize {
        out.numel().saturating_mul(inputs[0].last())
    }
}

impl<const N: usize> Graph<N> {
    /// `linear` with `out` features: creates a Kaiming-uniform weight `[out, in]` and, with
    /// `bias`, a zero bias `[out]`.
    pub fn linear(&mut self, x: NodeId, out: usize, bias: bool) -> Result<NodeId> {
        let inf = self.shape(x)?.last();
        self.atomically(|g| {
            let w = g.param(&[out, inf], Init::KaimingUniform)?;
            if bias {
                let b = g.param(&[out], Init::Zeros)?;
                g.push_op(super::Op::Linear(Linear), &[x, w, b])
            } else {
                g.push_op(super::Op::Linear(Linear), &[x, w])
            }
        })
    }
}
