//! `softmax` and `log_softmax` over the last dimension, stable for logits of ±1e4.

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::{Graph, NodeId, Result, Shape};
use mote_kernels::{log_softmax_backward_f32, log_softmax_f32, softmax_backward_f32, softmax_f32};
use serde::{Deserialize, Serialize};

/// Softmax, or its logarithm when `log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Softmax {
    pub log: bool,
}

fn rows_cols(s: Shape) -> (usize, usize) {
    (s.numel() / s.last(), s.last())
}

impl OpKind for Softmax {
    fn name(&self) -> &'static str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(self.name(), inputs, 1, 1, "one input")?;
        Ok(inputs[0])
    }
    fn saved(&self) -> Saved {
        Saved::OUTPUT
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let (rows, cols) = rows_cols(f.out_shape);
        if self.log {
            log_softmax_f32(rows, cols, f.inputs[0], f.out);
        } else {
            softmax_f32(rows, cols, f.inputs[0], f.out);
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let (rows, cols) = rows_cols(b.out_shape);
        if let [Some(dx), ..] = b.grads {
            if self.log {
                log_softmax_backward_f32(rows, cols, b.out, b.dout, dx);
            } else {
                softmax_backward_f32(rows, cols, b.out, b.dout, dx);
            }
        }
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// Softmax over the last dimension.
    pub fn softmax(&mut self, x: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::Softmax(Softmax { log: false }), &[x])
    }
    /// Log-softmax over the last dimension.
    pub fn log_softmax(&mut self, x: NodeId) -> Result<NodeId> {
        self.push_op(super::Op::Softmax(Softmax { log: true }), &[x])
    }
}
