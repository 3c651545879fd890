//! Optimizer updates (PyTorch semantics): SGD with momentum / Nesterov, Adam and AdamW.

use crate::math;

/// SGD hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdParams {
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: f32,
}

/// One SGD step. `velocity` (one value per parameter) is used when `momentum != 0`.
pub fn sgd_f32(h: &SgdParams, params: &mut [f32], grads: &[f32], velocity: &mut [f32]) {
    for (i, (p, &g)) in params.iter_mut().zip(grads).enumerate() {
        let mut g = g + h.weight_decay * *p;
        if h.momentum != 0.0 {
            let v = &mut velocity[i];
            *v = h.momentum * *v + g;
            g = if h.nesterov { g + h.momentum * *v } else { *v };
        }
        *p -= h.lr * g;
    }
}

/// Adam / AdamW hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamParams {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// AdamW: decay the weights directly instead of adding `weight_decay · p` to the gradient.
    pub decoupled: bool,
}

/// One Adam step number `t` (1-based), with first and second moments `m`, `v`.
pub fn adam_f32(h: &AdamParams, t: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    let bc1 = 1.0 - libm::powf(h.beta1, t as f32);
    let bc2 = 1.0 - libm::powf(h.beta2, t as f32);
    for (i, (p, &g)) in params.iter_mut().zip(grads).enumerate() {
        let mut g = g;
        if h.decoupled {
            *p *= 1.0 - h.lr * h.weight_decay;
        } else {
            g += h.weight_decay * *p;
        }
        m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * g;
        v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * g * g;
        let mhat = m[i] / bc1;
        let vhat = v[i] / bc2;
        *p -= h.lr * mhat / (math::sqrt(vhat) + h.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand computation of PyTorch's update rules for one parameter p=1, grad g=0.5.
    #[test]
    fn first_steps_match_hand_computation() {
        let h = SgdParams { lr: 0.1, momentum: 0.9, nesterov: false, weight_decay: 0.0 };
        let (mut p, mut v) = ([1.0], [0.0]);
        sgd_f32(&h, &mut p, &[0.5], &mut v);
        assert_eq!(p, [0.95]); // v = 0.5
        sgd_f32(&h, &mut p, &[0.5], &mut v);
        assert!((p[0] - (0.95 - 0.1 * 0.95)).abs() < 1e-7); // v = 0.9·0.5 + 0.5
        let h = SgdParams { nesterov: true, ..h };
        let (mut p, mut v) = ([1.0], [0.0]);
        sgd_f32(&h, &mut p, &[0.5], &mut v);
        assert!((p[0] - (1.0 - 0.1 * (0.5 + 0.9 * 0.5))).abs() < 1e-7);

        // Adam's first step moves by lr·sign(g) (bias-corrected m/√v = g/|g|).
        let a = AdamParams { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 0.0, weight_decay: 0.0, decoupled: false };
        let (mut p, mut m, mut v) = ([1.0], [0.0], [0.0]);
        adam_f32(&a, 1, &mut p, &[0.5], &mut m, &mut v);
        assert!((p[0] - 0.99).abs() < 1e-6, "{p:?}");
        // AdamW with zero gradient only decays: p·(1 − lr·wd).
        let a = AdamParams { weight_decay: 0.1, decoupled: true, eps: 1e-8, ..a };
        let (mut p, mut m, mut v) = ([1.0], [0.0], [0.0]);
        adam_f32(&a, 1, &mut p, &[0.0], &mut m, &mut v);
        assert!((p[0] - 0.999).abs() < 1e-7);
    }
}
