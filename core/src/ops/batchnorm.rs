//! `batchnorm`: 1d over `[B, F]` or 2d over `[B, C, H, W]`. Training normalizes with the batch
//! statistics and updates the running ones with momentum; evaluation uses the running ones.

use super::{expect_inputs, expect_shape, optional, Backward, Forward, OpKind, Saved};
use crate::plan::Mode;
use crate::{Error, Graph, Init, NodeId, Result, Shape};
use mote_kernels::{batchnorm_backward_f32, batchnorm_eval_f32, batchnorm_train_f32, BatchNormGrads, BatchNormParams, RunningStats};
use serde::{Deserialize, Serialize};

/// Batch normalization. Inputs: `x`, `running_mean [C]`, `running_var [C]` (state), and
/// optionally `gamma [C]`, `beta [C]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    pub eps: f32,
    /// Weight of the new batch statistic in the running average (PyTorch default 0.1).
    pub momentum: f32,
}

const NAME: &str = "batchnorm";

impl BatchNorm {
    fn params(&self, x: Shape) -> BatchNormParams {
        BatchNormParams { batch: x.dim(0), channels: x.dim(1), inner: x.dim(2) * x.dim(3), eps: self.eps, momentum: self.momentum }
    }
}

impl OpKind for BatchNorm {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        if inputs.len() == 4 {
            return Err(Error::InputCount { op: NAME, expected: "x, running mean and var, then gamma and beta or neither", got: 4 });
        }
        expect_inputs(NAME, inputs, 3, 5, "x, running mean and var, then gamma and beta or neither")?;
        let x = inputs[0];
        if x.rank() != 2 && x.rank() != 4 {
            return Err(Error::InvalidShape { op: NAME, shape: x, expected: "[B, F] (1d) or [B, C, H, W] (2d)" });
        }
        if self.eps.is_nan() || self.eps < 0.0 || !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::InvalidArgument { op: NAME, expected: "eps ≥ 0 and momentum in [0, 1]" });
        }
        for &p in &inputs[1..] {
            expect_shape(NAME, p, &[x.dim(1)], "statistics, gamma and beta [C], C = dim 1 of x")?;
        }
        Ok(x)
    }
    fn saved(&self) -> Saved {
        Saved::inputs(&[0, 1, 2, 3])
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let p = self.params(f.shapes[0]);
        let (gamma, beta) = (optional(&f.inputs, f.n_inputs, 3), optional(&f.inputs, f.n_inputs, 4));
        match (f.mode, f.state) {
            (Mode::Train, [_, Some(mean), Some(var), ..]) => {
                batchnorm_train_f32(&p, f.inputs[0], gamma, beta, RunningStats { mean, var }, f.out);
            }
            _ => batchnorm_eval_f32(&p, f.inputs[0], gamma, beta, f.inputs[1], f.inputs[2], f.out),
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let p = self.params(b.shapes[0]);
        let gamma = optional(&b.inputs, b.n_inputs, 3);
        let running = match b.mode {
            Mode::Train => None,
            Mode::Eval => Some((b.inputs[1], b.inputs[2])),
        };
        let [dx, _, _, dgamma, dbeta] = b.grads;
        batchnorm_backward_f32(&p, b.inputs[0], gamma, running, b.dout, BatchNormGrads { dx, dgamma, dbeta });
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// Batch norm over dim 1 (channels or features): creates running statistics (mean 0,
    /// var 1) and, with `affine`, a scale (ones) and shift (zeros).
    pub fn batchnorm(&mut self, x: NodeId, eps: f32, momentum: f32, affine: bool) -> Result<NodeId> {
        let c = self.shape(x)?.dim(1);
        let op = super::Op::BatchNorm(BatchNorm { eps, momentum });
        self.atomically(|g| {
            let mean = g.state(&[c], Init::Zeros)?;
            let var = g.state(&[c], Init::Constant(1.0))?;
            if affine {
                let gamma = g.param(&[c], Init::Constant(1.0))?;
                let beta = g.param(&[c], Init::Zeros)?;
                g.push_op(op, &[x, mean, var, gamma, beta])
            } else {
                g.push_op(op, &[x, mean, var])
            }
        })
    }
}
