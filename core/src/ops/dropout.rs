//! `dropout`: inverted dropout in training (kept values scaled by 1/(1−p)), identity in
//! evaluation. The mask comes from a counter-based hash of (seed, run, node, element), so the
//! backward regenerates it instead of storing it.

use super::{expect_inputs, Backward, Forward, OpKind, Saved};
use crate::plan::Mode;
use crate::rng::NoiseKey;
use crate::{Error, Graph, NodeId, Result, Shape};
use serde::{Deserialize, Serialize};

/// Dropout with drop probability `p` in [0, 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dropout {
    pub p: f32,
}

const NAME: &str = "dropout";

impl Dropout {
    /// The factor of element `i`: 0 when dropped, 1/(1−p) when kept (1 in evaluation).
    fn factor(&self, mode: Mode, noise: NoiseKey, i: usize) -> f32 {
        match mode {
            Mode::Eval => 1.0,
            Mode::Train if noise.uniform(i) < self.p => 0.0,
            Mode::Train => 1.0 / (1.0 - self.p),
        }
    }
}

impl OpKind for Dropout {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 1, 1, "one input")?;
        if !(0.0..1.0).contains(&self.p) {
            return Err(Error::InvalidArgument { op: NAME, expected: "p in [0, 1)" });
        }
        Ok(inputs[0])
    }
    fn saved(&self) -> Saved {
        Saved::NOTHING
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        if f.in_place {
            for (i, o) in f.out.iter_mut().enumerate() {
                *o *= self.factor(f.mode, f.noise, i);
            }
        } else {
            for (i, (o, &x)) in f.out.iter_mut().zip(f.inputs[0]).enumerate() {
                *o = x * self.factor(f.mode, f.noise, i);
            }
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        match b.grads {
            [Some(d), ..] if b.in_place => {
                for (i, g) in d.iter_mut().enumerate() {
                    *g *= self.factor(b.mode, b.noise, i);
                }
            }
            [Some(dx), ..] => {
                for (i, (d, &g)) in dx.iter_mut().zip(b.dout).enumerate() {
                    *d += g * self.factor(b.mode, b.noise, i);
                }
            }
            _ => {}
        }
        Ok(())
    }
    fn in_place(&self) -> bool {
        true
    }
}

impl<const N: usize> Graph<N> {
    /// Dropout with drop probability `p`.
    pub fn dropout(&mut self, x: NodeId, p: f32) -> Result<NodeId> {
        self.push_op(super::Op::Dropout(Dropout { p }), &[x])
    }
}
