//! Adam with AVX2: eight parameters per instruction, bit for bit the reference (the same
//! correctly rounded multiplies, adds, divides and square roots in the same order, no FMA).

use crate::reference::{self, AdamParams};
use core::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_div_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_sqrt_ps, _mm256_storeu_ps, _mm256_sub_ps,
};

/// Lanes of one AVX register of f32.
const LANES: usize = 8;

/// One Adam step, as [`reference::adam_f32`].
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn adam_f32(h: &AdamParams, t: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    let n = params.len();
    if grads.len() < n || m.len() < n || v.len() < n {
        return reference::adam_f32(h, t, params, grads, m, v);
    }
    let body = n - n % LANES;
    let bc1 = 1.0 - libm::powf(h.beta1, t as f32);
    let bc2 = 1.0 - libm::powf(h.beta2, t as f32);
    let splat = |x: f32| _mm256_set1_ps(x);
    let (beta1, one_minus_beta1, beta2, one_minus_beta2) = (splat(h.beta1), splat(1.0 - h.beta1), splat(h.beta2), splat(1.0 - h.beta2));
    let (bc1, bc2, lr, eps, wd, decay) =
        (splat(bc1), splat(bc2), splat(h.lr), splat(h.eps), splat(h.weight_decay), splat(1.0 - h.lr * h.weight_decay));
    let mut i = 0;
    while i < body {
        // SAFETY: i + LANES ≤ body ≤ n, and every slice holds at least n values.
        unsafe {
            let at = |s: &[f32]| -> __m256 { _mm256_loadu_ps(s.as_ptr().add(i)) };
            let (mut p, mut g) = (at(params), at(grads));
            if h.decoupled {
                p = _mm256_mul_ps(p, decay);
            } else {
                g = _mm256_add_ps(g, _mm256_mul_ps(wd, p));
            }
            let mi = _mm256_add_ps(_mm256_mul_ps(beta1, at(m)), _mm256_mul_ps(one_minus_beta1, g));
            let vi = _mm256_add_ps(_mm256_mul_ps(beta2, at(v)), _mm256_mul_ps(_mm256_mul_ps(one_minus_beta2, g), g));
            let step = _mm256_div_ps(_mm256_mul_ps(lr, _mm256_div_ps(mi, bc1)), _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vi, bc2)), eps));
            _mm256_storeu_ps(m.as_mut_ptr().add(i), mi);
            _mm256_storeu_ps(v.as_mut_ptr().add(i), vi);
            _mm256_storeu_ps(params.as_mut_ptr().add(i), _mm256_sub_ps(p, step));
        }
        i += LANES;
    }
    reference::adam_f32(h, t, &mut params[body..n], &grads[body..n], &mut m[body..n], &mut v[body..n]);
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    /// Bit for bit the reference over several steps, both weight-decay kinds, a length with a
    /// tail (8k + 5), values of both signs and magnitudes from 1e-4 to 10.
    #[test]
    fn equals_the_reference_bit_for_bit() {
        if !std::is_x86_feature_detected!("avx2") {
            std::println!("no AVX2 on this CPU: nothing to compare");
            return;
        }
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
                // SAFETY: AVX2 was detected above.
                unsafe { adam_f32(&h, t, &mut got, &grads, &mut gm, &mut gv) };
                let bits = |s: &[f32]| s.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&want), bits(&got), "decoupled {decoupled}, wd {weight_decay}, step {t}");
                assert_eq!((bits(&wm), bits(&wv)), (bits(&gm), bits(&gv)));
            }
        }
    }
}
