//! Pointwise ops `relu`, `leaky_relu`, `sigmoid`, `tanh`, `exp`, `square`, `clip`, `neg`: one shape rule
//! (identity), derivatives from the input or the output.

use super::{expect_inputs, Backward, Forward, Op, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::{pointwise_backward_f32, pointwise_backward_in_place_f32, pointwise_f32, pointwise_in_place_f32, Pointwise};

impl OpKind for Pointwise {
    fn name(&self) -> &'static str {
        match self {
            Pointwise::Relu => "relu",
            Pointwise::LeakyRelu(_) => "leaky_relu",
            Pointwise::Sigmoid => "sigmoid",
            Pointwise::Tanh => "tanh",
            Pointwise::Exp => "exp",
            Pointwise::Square => "square",
            Pointwise::Clip(..) => "clip",
            Pointwise::Neg => "neg",
        }
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(self.name(), inputs, 1, 1, "one input")?;
        if let Pointwise::LeakyRelu(k) = *self {
            if !(0.0..1.0).contains(&k) {
                return Err(Error::InvalidArgument { op: "leaky_relu", expected: "slope in [0, 1)" });
            }
        }
        if let Pointwise::Clip(lo, hi) = *self {
            if lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(Error::InvalidArgument { op: "clip", expected: "min ≤ max" });
            }
        }
        Ok(inputs[0])
    }
    fn saved(&self) -> Saved {
        if self.derivative_needs_input() {
            Saved::inputs(&[0])
        } else {
            Saved::OUTPUT
        }
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        if f.in_place {
            pointwise_in_place_f32(*self, f.out);
        } else {
            pointwise_f32(*self, f.inputs[0], f.out);
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        match b.grads {
            [Some(d), ..] if b.in_place => pointwise_backward_in_place_f32(*self, b.inputs[0], b.out, d),
            [Some(dx), ..] => pointwise_backward_f32(*self, b.inputs[0], b.out, b.dout, dx),
            _ => {}
        }
        Ok(())
    }
    fn in_place(&self) -> bool {
        true
    }
}

impl<const N: usize> Graph<N> {
    fn pointwise(&mut self, f: Pointwise, x: NodeId) -> Result<NodeId> {
        self.push_op(Op::Pointwise(f), &[x])
    }
    /// `max(x, 0)`.
    pub fn relu(&mut self, x: NodeId) -> Result<NodeId> {
        self.pointwise(Pointwise::Relu, x)
    }
    /// `max(slope·x, x)`, slope in [0, 1).
    pub fn leaky_relu(&mut self, x: NodeId, slope: f32) -> Result<NodeId> {
        self.pointwise(Pointwise::LeakyRelu(slope), x)
    }
    /// `1 / (1 + e^−x)`.
    pub fn sigmoid(&mut self, x: NodeId) -> Result<NodeId> {
        self.pointwise(Pointwise::Sigmoid, x)
    }
    /// `tanh(x)`.
    pub fn tanh(&mut self, x: NodeId) -> Result<NodeId> {
        self.pointwise(Pointwise::Tanh, x)
    }
    /// `e^x`.
    pub fn exp(&mut self, x: NodeId) -> Result<NodeId> {
        self.pointwise(Pointwise::Exp, x)
    }
    /// `x²`.
    pub fn square(&mut self, x: NodeId) -> Result<NodeId> {
        self.pointwise(Pointwise::Square, x)
    }
    /// `min(max(x, lo), hi)`.
    pub fn clip(&mut self, x: NodeId, lo: f32, hi: f32) -> Result<NodeId> {
        self.pointwise(Pointwise::Clip(lo, hi), x)
    }
    /// `−x`.
    pub fn neg(&mut self, x: NodeId) -> Result<NodeId> {
        self.pointwise(Pointwise::Neg, x)
    }
}
