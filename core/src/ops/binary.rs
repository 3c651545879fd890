//! `add`, `sub`, `mul`, `div`: elementwise with PyTorch broadcasting (e.g. a `[C, 1, 1]` per-channel
//! or `[F]` per-feature operand over a batch).

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::{binary_backward_f32, binary_f32, BinaryOp, Broadcast};
use serde::{Deserialize, Serialize};

/// An elementwise binary op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binary(pub BinaryOp);

/// Row-major strides of right-aligned `dims`, zero where a dimension of 1 is broadcast.
fn strides(dims: [usize; 4], out: [usize; 4]) -> [usize; 4] {
    let mut s = [0; 4];
    let mut step = 1;
    for i in (0..4).rev() {
        s[i] = if dims[i] == 1 && out[i] != 1 { 0 } else { step };
        step *= dims[i];
    }
    s
}

fn broadcast(a: Shape, b: Shape, out: Shape) -> Broadcast {
    let dims = out.right_aligned();
    Broadcast { dims, a_strides: strides(a.right_aligned(), dims), b_strides: strides(b.right_aligned(), dims) }
}

impl OpKind for Binary {
    fn name(&self) -> &'static str {
        match self.0 {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
        }
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(self.name(), inputs, 2, 2, "two operands")?;
        let (a, b) = (inputs[0], inputs[1]);
        let (da, db) = (a.right_aligned(), b.right_aligned());
        let mut out = [1; 4];
        for i in 0..4 {
            out[i] = match (da[i], db[i]) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                _ => {
                    return Err(Error::ShapeMismatch {
                        op: self.name(),
                        left: a,
                        right: b,
                        expected: "equal shapes, or dims of 1 to broadcast (e.g. [C, 1, 1] over [B, C, H, W])",
                    })
                }
            };
        }
        let rank = a.rank().max(b.rank());
        Shape::new(&out[4 - rank..])
    }
    fn saved(&self) -> Saved {
        match self.0 {
            BinaryOp::Mul | BinaryOp::Div => Saved::inputs(&[0, 1]),
            _ => Saved::NOTHING,
        }
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let bc = broadcast(f.shapes[0], f.shapes[1], f.out_shape);
        binary_f32(self.0, &bc, f.inputs[0], f.inputs[1], f.out);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let bc = broadcast(b.shapes[0], b.shapes[1], b.out_shape);
        let [da, db, ..] = b.grads;
        binary_backward_f32(self.0, &bc, b.inputs[0], b.inputs[1], b.dout, da, db);
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// `a + b` (broadcasting).
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::Binary(Binary(BinaryOp::Add)), &[a, b])
    }
    /// `a − b` (broadcasting).
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::Binary(Binary(BinaryOp::Sub)), &[a, b])
    }
    /// `a ⊙ b` (broadcasting).
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::Binary(Binary(BinaryOp::Mul)), &[a, b])
    }
    /// `a / b` elementwise (broadcasting).
    pub fn div(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::Binary(Binary(BinaryOp::Div)), &[a, b])
    }
}
