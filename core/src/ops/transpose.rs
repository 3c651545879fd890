//! `transpose`: permutes the dimensions after the batch (NHWC ↔ NCHW at a model's edges, ONNX
//! Transpose); the batch stays first.

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::{transpose_backward_f32, transpose_f32, TransposeParams};
use serde::{Deserialize, Serialize};

/// Output dimension `i` is input dimension `perm[i]`, for the first `rank` entries (rank ≤ 4,
/// `perm[0] = 0`: the batch stays).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transpose {
    pub perm: [usize; 4],
    pub rank: usize,
}

const NAME: &str = "transpose";

impl Transpose {
    /// The kernel's rank-4 view: leading dimensions of 1 and identity entries prepended.
    fn params(&self, x: Shape) -> TransposeParams {
        let lead = 4 - self.rank;
        let mut dims = [1; 4];
        let mut perm = [0, 1, 2, 3];
        for i in 0..self.rank {
            dims[lead + i] = x.dim(i);
            perm[lead + i] = lead + self.perm[i];
        }
        TransposeParams { dims, perm }
    }
}

impl OpKind for Transpose {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 1, 1, "one input")?;
        let x = inputs[0];
        let perm = &self.perm[..self.rank.min(4)];
        let is_permutation = (0..perm.len()).all(|d| perm.contains(&d));
        if x.rank() != self.rank || !is_permutation || perm.first() != Some(&0) {
            return Err(Error::InvalidShape { op: NAME, shape: x, expected: "an input whose rank is the permutation's, batch kept first" });
        }
        let mut dims = [0; 4];
        for (d, &p) in dims.iter_mut().zip(perm) {
            *d = x.dim(p);
        }
        Shape::new(&dims[..self.rank])
    }
    fn saved(&self) -> Saved {
        Saved::NOTHING
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        transpose_f32(&self.params(f.shapes[0]), f.inputs[0], f.out);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        if let [Some(dx), ..] = b.grads {
            transpose_backward_f32(&self.params(b.shapes[0]), b.dout, dx);
        }
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// Permutes the dimensions of `x`: output dimension `i` is input dimension `perm[i]`;
    /// `perm` has one entry per dimension of `x` and starts with 0 (the batch).
    pub fn transpose(&mut self, x: NodeId, perm: &[usize]) -> Result<NodeId> {
        if perm.len() > 4 {
            return Err(Error::InvalidArgument { op: NAME, expected: "a permutation of at most 4 dimensions" });
        }
        let mut full = [0; 4];
        full[..perm.len()].copy_from_slice(perm);
        self.push_op(super::Op::Transpose(Transpose { perm: full, rank: perm.len() }), &[x])
    }
}
