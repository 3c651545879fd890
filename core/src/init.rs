//! Parameter initializers (Kaiming, Xavier, constants), drawn from the seeded [`Rng`].

use crate::{Rng, Shape};
use serde::{Deserialize, Serialize};

/// How a parameter is initialized.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Init {
    Zeros,
    Constant(f32),
    /// N(0, std²).
    Normal {
        std: f32,
    },
    /// Kaiming (He) normal, fan_in mode, relu gain √2: std = √(2 / fan_in).
    KaimingNormal,
    /// Kaiming (He) uniform, fan_in mode, relu gain √2: bound = √(6 / fan_in).
    KaimingUniform,
    /// Xavier (Glorot) normal: std = √(2 / (fan_in + fan_out)).
    XavierNormal,
    /// Xavier (Glorot) uniform: bound = √(6 / (fan_in + fan_out)).
    XavierUniform,
}

/// `(fan_in, fan_out)` of a weight shape `[out, in, k…]`, as PyTorch computes them.
pub fn fans(shape: Shape) -> (usize, usize) {
    if shape.rank() < 2 {
        return (shape.numel(), shape.numel());
    }
    let receptive: usize = shape.dims()[2..].iter().product();
    (shape.dim(1) * receptive, shape.dim(0) * receptive)
}

impl Init {
    /// Fills `out` (a tensor of `shape`) from `rng`.
    pub fn fill(self, shape: Shape, rng: &mut Rng, out: &mut [f32]) {
        let (fan_in, fan_out) = fans(shape);
        let (fan_in, fan_sum) = (fan_in as f32, (fan_in + fan_out) as f32);
        match self {
            Init::Zeros => out.fill(0.0),
            Init::Constant(c) => out.fill(c),
            Init::Normal { std } => out.iter_mut().for_each(|v| *v = std * rng.normal()),
            Init::KaimingNormal => Init::Normal { std: libm::sqrtf(2.0 / fan_in) }.fill(shape, rng, out),
            Init::XavierNormal => Init::Normal { std: libm::sqrtf(2.0 / fan_sum) }.fill(shape, rng, out),
            Init::KaimingUniform => {
                let bound = libm::sqrtf(6.0 / fan_in);
                out.iter_mut().for_each(|v| *v = rng.symmetric(bound));
            }
            Init::XavierUniform => {
                let bound = libm::sqrtf(6.0 / fan_sum);
                out.iter_mut().for_each(|v| *v = rng.symmetric(bound));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_follow_pytorch() {
        assert_eq!(fans(Shape::new(&[16, 8, 3, 3]).unwrap()), (72, 144));
        assert_eq!(fans(Shape::new(&[10, 784]).unwrap()), (784, 10));
    }

    #[test]
    fn kaiming_uniform_bound_and_variance() {
        let shape = Shape::new(&[64, 100]).unwrap();
        let mut w = [0.0; 6400];
        Init::KaimingUniform.fill(shape, &mut Rng::new(1), &mut w);
        let bound = (6.0f32 / 100.0).sqrt();
        assert!(w.iter().all(|v| v.abs() <= bound));
        let var = w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32;
        // Var of U(-b, b) is b²/3 = 2/fan_in = 0.02.
        assert!((var - 0.02).abs() < 0.002, "{var}");
    }
}
