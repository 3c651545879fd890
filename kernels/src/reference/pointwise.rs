//! Elementwise unary functions and their derivatives.

use crate::math;

/// A pointwise function `y = f(x)`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Pointwise {
    Relu,
    /// `max(slope·x, x)` for a slope in [0, 1).
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
    Exp,
    Square,
    /// `min(max(x, lo), hi)` for `lo ≤ hi` (ReLU6 is `Clip(0, 6)`).
    Clip(f32, f32),
    /// `−x`.
    Neg,
}

impl Pointwise {
    /// `f(x)`.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Pointwise::Relu => x.max(0.0),
            Pointwise::LeakyRelu(k) => (k * x).max(x),
            Pointwise::Sigmoid => math::sigmoid(x),
            Pointwise::Tanh => math::tanh(x),
            Pointwise::Exp => math::exp(x),
            Pointwise::Square => x * x,
            Pointwise::Clip(lo, hi) => x.max(lo).min(hi),
            Pointwise::Neg => -x,
        }
    }
    /// `f'(x)` given both `x` and `y = f(x)`; at the kink of relu the derivative is 0, as in PyTorch.
    /// Relu and leaky relu read `y` only: with a slope in [0, 1), `y > 0` exactly when `x > 0`,
    /// so their input can be freed after the forward pass.
    #[inline]
    pub fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            Pointwise::Relu => (y > 0.0) as u8 as f32,
            Pointwise::LeakyRelu(k) => {
                if y > 0.0 {
                    1.0
                } else {
                    k
                }
            }
            Pointwise::Sigmoid => y * (1.0 - y),
            Pointwise::Tanh => 1.0 - y * y,
            Pointwise::Exp => y,
            Pointwise::Square => 2.0 * x,
            // 1 strictly inside the bounds, as PyTorch's hardtanh; `y` is inside exactly
            // when `x` is.
            Pointwise::Clip(lo, hi) => (y > lo && y < hi) as u8 as f32,
            Pointwise::Neg => -1.0,
        }
    }
    /// Whether the derivative needs the input `x` (otherwise the output `y` suffices).
    pub fn derivative_needs_input(self) -> bool {
        matches!(self, Pointwise::Square)
    }
}

/// `y[i] = f(x[i])`.
pub fn pointwise_f32(f: Pointwise, x: &[f32], y: &mut [f32]) {
    for (o, &v) in y.iter_mut().zip(x) {
        *o = f.apply(v);
    }
}

/// `dx[i] += dy[i] · f'(x[i])`. `x` or `y` may be empty when
/// [`Pointwise::derivative_needs_input`] says the derivative does not read it.
pub fn pointwise_backward_f32(f: Pointwise, x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for (i, (d, &g)) in dx.iter_mut().zip(dy).enumerate() {
        let xv = x.get(i).copied().unwrap_or(0.0);
        let yv = y.get(i).copied().unwrap_or(0.0);
        *d += g * f.derivative(xv, yv);
    }
}

/// `y[i] = f(y[i])`, in place.
pub fn pointwise_in_place_f32(f: Pointwise, y: &mut [f32]) {
    for v in y.iter_mut() {
        *v = f.apply(*v);
    }
}

/// `d[i] = d[i] · f'(x[i])`, turning the output gradient into the input gradient in place
/// (`x` may be empty as in [`pointwise_backward_f32`]).
pub fn pointwise_backward_in_place_f32(f: Pointwise, x: &[f32], y: &[f32], d: &mut [f32]) {
    for (i, g) in d.iter_mut().enumerate() {
        let xv = x.get(i).copied().unwrap_or(0.0);
        let yv = y.get(i).copied().unwrap_or(0.0);
        *g *= f.derivative(xv, yv);
    }
}

/// `dst[i] += src[i]`.
pub fn add_assign_f32(dst: &mut [f32], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}
