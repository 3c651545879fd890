//! Softmax and log-softmax over the last dimension, numerically stable (max subtracted).

use crate::math;

/// `y[r] = softmax(x[r])` for each of `rows` rows of `cols` values.
pub fn softmax_f32(rows: usize, cols: usize, x: &[f32], y: &mut [f32]) {
    for (xr, yr) in x[..rows * cols].chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let max = xr.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0;
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = math::exp(v - max);
            sum += *o;
        }
        yr.iter_mut().for_each(|o| *o /= sum);
    }
}

/// `y[r] = log_softmax(x[r]) = x − max − ln Σ exp(x − max)`.
pub fn log_softmax_f32(rows: usize, cols: usize, x: &[f32], y: &mut [f32]) {
    for (xr, yr) in x[..rows * cols].chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let (max, ln_sum) = max_and_ln_sum_exp(xr);
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = (v - max) - ln_sum;
        }
    }
}

/// `(max, ln Σ exp(x − max))`: `ln Σ exp(x)` split so callers subtract `max` first and keep
/// full precision for logits of ±1e4.
pub fn max_and_ln_sum_exp(x: &[f32]) -> (f32, f32) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum: f32 = x.iter().map(|&v| math::exp(v - max)).sum();
    (max, math::ln(sum))
}

/// Index of the largest value (the first one on ties): the predicted class of a logit row.
pub fn argmax_f32(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, j| if row[j] > row[best] { j } else { best })
}

/// Softmax backward from its output: `dx += y ⊙ (dy − Σ dy ⊙ y)`.
pub fn softmax_backward_f32(rows: usize, cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((yr, gr), dr) in y[..rows * cols].chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
        let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
        for ((d, &yv), &g) in dr.iter_mut().zip(yr).zip(gr) {
            *d += yv * (g - dot);
        }
    }
}

/// Log-softmax backward from its output: `dx += dy − exp(y) · Σ dy`.
pub fn log_softmax_backward_f32(rows: usize, cols: usize, y: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((yr, gr), dr) in y[..rows * cols].chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(dx.chunks_exact_mut(cols)) {
        let sum: f32 = gr.iter().sum();
        for ((d, &yv), &g) in dr.iter_mut().zip(yr).zip(gr) {
            *d += g - math::exp(yv) * sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_logits_stay_finite() {
        let x = [1e4, -1e4, 0.0, 1e4];
        let mut y = [0.0; 4];
        softmax_f32(1, 4, &x, &mut y);
        // Hand computation: two equal maxima share the mass.
        assert_eq!(y, [0.5, 0.0, 0.0, 0.5]);
        log_softmax_f32(1, 4, &x, &mut y);
        assert!(y.iter().all(|v| v.is_finite()), "{y:?}");
        assert!((y[0] + core::f32::consts::LN_2).abs() < 1e-6);
    }
}
