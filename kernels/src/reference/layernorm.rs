//! Layer normalization over the last dimension, with optional affine scale and shift.

use crate::math;

/// Mean and 1/sqrt(biased variance + eps) of one row.
fn row_stats(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / math::sqrt(var + eps))
}

/// `y = (x − mean) / sqrt(var + eps) · gamma + beta`, per row of `cols` values.
pub fn layernorm_f32(rows: usize, cols: usize, eps: f32, x: &[f32], gamma: Option<&[f32]>, beta: Option<&[f32]>, y: &mut [f32]) {
    for (xr, yr) in x[..rows * cols].chunks_exact(cols).zip(y.chunks_exact_mut(cols)) {
        let (mean, rstd) = row_stats(xr, eps);
        for (j, (o, &v)) in yr.iter_mut().zip(xr).enumerate() {
            let g = gamma.map_or(1.0, |g| g[j]);
            let b = beta.map_or(0.0, |b| b[j]);
            *o = (v - mean) * rstd * g + b;
        }
    }
}

/// Gradient outputs of [`layernorm_backward_f32`]; each is accumulated into when present.
pub struct LayerNormGrads<'a> {
    pub dx: Option<&'a mut [f32]>,
    pub dgamma: Option<&'a mut [f32]>,
    pub dbeta: Option<&'a mut [f32]>,
}

/// Layer-norm backward, recomputing the row statistics from `x`:
/// `dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))` with `ĝ = dy ⊙ gamma`.
pub fn layernorm_backward_f32(
    rows: usize,
    cols: usize,
    eps: f32,
    x: &[f32],
    gamma: Option<&[f32]>,
    dy: &[f32],
    mut grads: LayerNormGrads<'_>,
) {
    let n = cols as f32;
    for r in 0..rows {
        let xr = &x[r * cols..][..cols];
        let gr = &dy[r * cols..][..cols];
        let (mean, rstd) = row_stats(xr, eps);
        let xhat = |j: usize| (xr[j] - mean) * rstd;
        let ghat = |j: usize| gr[j] * gamma.map_or(1.0, |g| g[j]);
        let (mut mean_g, mut mean_gx) = (0.0, 0.0);
        for j in 0..cols {
            mean_g += ghat(j);
            mean_gx += ghat(j) * xhat(j);
            if let Some(dg) = grads.dgamma.as_deref_mut() {
                dg[j] += gr[j] * xhat(j);
            }
            if let Some(db) = grads.dbeta.as_deref_mut() {
                db[j] += gr[j];
            }
        }
        (mean_g, mean_gx) = (mean_g / n, mean_gx / n);
        if let Some(dx) = grads.dx.as_deref_mut() {
            for (j, d) in dx[r * cols..][..cols].iter_mut().enumerate() {
                *d += rstd * (ghat(j) - mean_g - xhat(j) * mean_gx);
            }
        }
    }
}
