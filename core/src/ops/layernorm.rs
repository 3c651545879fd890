//! `layernorm` over the last dimension with eps and optional affine scale and shift.

use super::{expect_inputs, expect_shape, optional, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, Init, NodeId, Result, Shape};
use mote_kernels::{layernorm_backward_f32, layernorm_f32, LayerNormGrads};
use serde::{Deserialize, Serialize};

/// Layer normalization. Inputs: `x [.., F]` and optionally `gamma [F]`, `beta [F]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerNorm {
    pub eps: f32,
}

const NAME: &str = "layernorm";

impl OpKind for LayerNorm {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        if inputs.len() == 2 {
            return Err(Error::InputCount { op: NAME, expected: "x, or x with gamma and beta", got: 2 });
        }
        expect_inputs(NAME, inputs, 1, 3, "x, or x with gamma and beta")?;
        if self.eps.is_nan() || self.eps < 0.0 {
            return Err(Error::InvalidArgument { op: NAME, expected: "eps ≥ 0" });
        }
        for &p in &inputs[1..] {
            expect_shape(NAME, p, &[inputs[0].last()], "gamma and beta [F], F = the last dim of x")?;
        }
        Ok(inputs[0])
    }
    fn saved(&self) -> Saved {
        Saved::inputs(&[0, 1])
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let cols = f.out_shape.last();
        let (gamma, beta) = (optional(&f.inputs, f.n_inputs, 1), optional(&f.inputs, f.n_inputs, 2));
        layernorm_f32(f.out_shape.numel() / cols, cols, self.eps, f.inputs[0], gamma, beta, f.out);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let cols = b.out_shape.last();
        let gamma = optional(&b.inputs, b.n_inputs, 1);
        let [dx, dgamma, dbeta, ..] = b.grads;
        let grads = LayerNormGrads { dx, dgamma, dbeta };
        layernorm_backward_f32(b.out_shape.numel() / cols, cols, self.eps, b.inputs[0], gamma, b.dout, grads);
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// Layer norm over the last dimension; with `affine`, a scale (ones) and shift (zeros).
    pub fn layernorm(&mut self, x: NodeId, eps: f32, affine: bool) -> Result<NodeId> {
        let f = self.shape(x)?.last();
        let op = super::Op::LayerNorm(LayerNorm { eps });
        self.atomically(|g| {
            if affine {
                let gamma = g.param(&[f], Init::Constant(1.0))?;
                let beta = g.param(&[f], Init::Zeros)?;
                g.push_op(op, &[x, gamma, beta])
            } else {
                g.push_op(op, &[x])
            }
        })
    }
}
