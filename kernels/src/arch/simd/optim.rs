//! Adam at any vector width, bit for bit the reference (the same correctly rounded multiplies,
//! adds, divides and square roots in the same order, no FMA).

use super::Simd;
use crate::reference::{self, AdamParams};

/// One Adam step, as [`reference::adam_f32`].
///
/// # Safety
/// `S`'s features.
#[inline(always)]
pub(super) unsafe fn adam<S: Simd>(h: &AdamParams, t: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    let n = params.len();
    if grads.len() < n || m.len() < n || v.len() < n {
        return reference::adam_f32(h, t, params, grads, m, v);
    }
    let body = n - n % S::LANES;
    let bc1 = 1.0 - libm::powf(h.beta1, t as f32);
    let bc2 = 1.0 - libm::powf(h.beta2, t as f32);
    // SAFETY: i + LANES ≤ body ≤ n, and every slice holds at least n values; S's features are
    // the caller's.
    unsafe {
        let splat = |x: f32| S::splat(x);
        let (beta1, one_minus_beta1, beta2, one_minus_beta2) = (splat(h.beta1), splat(1.0 - h.beta1), splat(h.beta2), splat(1.0 - h.beta2));
        let (bc1, bc2, lr, eps, wd, decay) =
            (splat(bc1), splat(bc2), splat(h.lr), splat(h.eps), splat(h.weight_decay), splat(1.0 - h.lr * h.weight_decay));
        let mut i = 0;
        while i < body {
            let at = |s: &[f32]| S::load(s.as_ptr().add(i));
            let (mut p, mut g) = (at(params), at(grads));
            if h.decoupled {
                p = S::mul(p, decay);
            } else {
                g = S::add(g, S::mul(wd, p));
            }
            let mi = S::add(S::mul(beta1, at(m)), S::mul(one_minus_beta1, g));
            let vi = S::add(S::mul(beta2, at(v)), S::mul(S::mul(one_minus_beta2, g), g));
            let step = S::div(S::mul(lr, S::div(mi, bc1)), S::add(S::sqrt(S::div(vi, bc2)), eps));
            S::store(m.as_mut_ptr().add(i), mi);
            S::store(v.as_mut_ptr().add(i), vi);
            S::store(params.as_mut_ptr().add(i), S::sub(p, step));
            i += S::LANES;
        }
    }
    reference::adam_f32(h, t, &mut params[body..n], &grads[body..n], &mut m[body..n], &mut v[body..n]);
}

#[cfg(test)]
mod tests {
    use super::super::{adam_f32, Width};
    use super::*;
    use std::vec::Vec;

    /// Bit for bit the reference over several steps, both weight-decay kinds, a length with a
    /// tail (8k + 5), values of both signs and magnitudes from 1e-4 to 10.
    #[test]
    fn equals_the_reference_bit_for_bit() {
        for width in Width::available() {
            check(width);
        }
    }

    fn check(width: Width) {
        let n = 8 * 9 + 5;
        let scaled =
            |seed: u32| -> Vec<f32> { crate::test_values(seed, n).enumerate().map(|(i, x)| x * [1e-4, 1.0, 10.0][i % 3]).collect() };
        for (decoupled, weight_decay) in [(false, 0.0), (false, 0.01), (true, 0.1)] {
            let h = AdamParams { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled };
            let (mut want, mut got) = (scaled(1), scaled(1));
            let (mut wm, mut wv, mut gm, mut gv) = (std::vec![0.0; n], std::vec![0.0; n], std::vec![0.0; n], std::vec![0.0; n]);
            for t in 1..=5 {
                let grads = scaled(10 + t);
                reference::adam_f32(&h, t, &mut want, &grads, &mut wm, &mut wv);
                // SAFETY: the width runs on this CPU.
                unsafe { adam_f32(width, &h, t, &mut got, &grads, &mut gm, &mut gv) };
                let bits = |s: &[f32]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&want), bits(&got), "{width:?}, decoupled {decoupled}, wd {weight_decay}, step {t}");
                assert_eq!((bits(&wm), bits(&wv)), (bits(&gm), bits(&gv)));
            }
        }
    }
}
