//! Batch normalization over `[batch, channels, inner]` (1d: inner = 1; 2d: inner = H·W).
//!
//! Training normalizes with the batch mean and biased variance and updates the running
//! statistics with momentum (the running variance takes the unbiased batch variance, as
//! PyTorch does); evaluation normalizes with the running statistics.

use crate::math;

/// Dimensions and hyper-parameters of one batch-norm call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormParams {
    pub batch: usize,
    pub channels: usize,
    pub inner: usize,
    pub eps: f32,
    pub momentum: f32,
}

impl BatchNormParams {
    fn count(&self) -> usize {
        self.batch * self.inner
    }
    /// The values of channel `c`, one slice per sample.
    fn channel<'a>(&self, x: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (ch, inner) = (self.channels, self.inner);
        (0..self.batch).map(move |b| &x[(b * ch + c) * inner..][..inner])
    }
    /// Batch mean and biased variance of channel `c`.
    fn batch_stats(&self, x: &[f32], c: usize) -> (f32, f32) {
        let n = self.count() as f32;
        let mean = self.channel(x, c).flatten().sum::<f32>() / n;
        let var = self.channel(x, c).flatten().map(|&v| (v - mean) * (v - mean)).sum::<f32>() / n;
        (mean, var)
    }
}

/// Running statistics of batch norm.
pub struct RunningStats<'a> {
    pub mean: &'a mut [f32],
    pub var: &'a mut [f32],
}

/// Normalizes each channel with `(mean, var)` and applies the affine transform.
fn normalize(p: &BatchNormParams, x: &[f32], c: usize, mean: f32, var: f32, g: f32, b: f32, y: &mut [f32]) {
    let rstd = 1.0 / math::sqrt(var + p.eps);
    for s in 0..p.batch {
        let off = (s * p.channels + c) * p.inner;
        for (o, &v) in y[off..][..p.inner].iter_mut().zip(&x[off..][..p.inner]) {
            *o = (v - mean) * rstd * g + b;
        }
    }
}

/// Training forward: normalize with batch statistics and update `running`.
pub fn batchnorm_train_f32(
    p: &BatchNormParams,
    x: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    running: RunningStats<'_>,
    y: &mut [f32],
) {
    let n = p.count() as f32;
    let unbias = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
    for c in 0..p.channels {
        let (mean, var) = p.batch_stats(x, c);
        let (g, b) = (gamma.map_or(1.0, |g| g[c]), beta.map_or(0.0, |b| b[c]));
        normalize(p, x, c, mean, var, g, b, y);
        running.mean[c] = (1.0 - p.momentum) * running.mean[c] + p.momentum * mean;
        running.var[c] = (1.0 - p.momentum) * running.var[c] + p.momentum * var * unbias;
    }
}

/// Evaluation forward: normalize with the running statistics.
pub fn batchnorm_eval_f32(
    p: &BatchNormParams,
    x: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    running_mean: &[f32],
    running_var: &[f32],
    y: &mut [f32],
) {
    for c in 0..p.channels {
        let (g, b) = (gamma.map_or(1.0, |g| g[c]), beta.map_or(0.0, |b| b[c]));
        normalize(p, x, c, running_mean[c], running_var[c], g, b, y);
    }
}

/// Gradient outputs of batch-norm backward; each is accumulated into when present.
pub struct BatchNormGrads<'a> {
    pub dx: Option<&'a mut [f32]>,
    pub dgamma: Option<&'a mut [f32]>,
    pub dbeta: Option<&'a mut [f32]>,
}

/// Backward. With `running = None` (training) the statistics are the batch's, recomputed
/// from `x`, and `dx = rstd/N · (N·ĝ − Σĝ − x̂·Σ ĝx̂)`; with running statistics (evaluation)
/// they are constants and `dx = ĝ · rstd`. Here `ĝ = dy · gamma`.
pub fn batchnorm_backward_f32(
    p: &BatchNormParams,
    x: &[f32],
    gamma: Option<&[f32]>,
    running: Option<(&[f32], &[f32])>,
    dy: &[f32],
    mut grads: BatchNormGrads<'_>,
) {
    let n = p.count() as f32;
    for c in 0..p.channels {
        let (mean, var) = match running {
            Some((m, v)) => (m[c], v[c]),
            None => p.batch_stats(x, c),
        };
        let rstd = 1.0 / math::sqrt(var + p.eps);
        let g = gamma.map_or(1.0, |g| g[c]);
        let (mut sum_dy, mut sum_dy_xhat) = (0.0, 0.0);
        for (xs, gs) in p.channel(x, c).zip(p.channel(dy, c)) {
            for (&v, &d) in xs.iter().zip(gs) {
                sum_dy += d;
                sum_dy_xhat += d * (v - mean) * rstd;
            }
        }
        if let Some(dg) = grads.dgamma.as_deref_mut() {
            dg[c] += sum_dy_xhat;
        }
        if let Some(db) = grads.dbeta.as_deref_mut() {
            db[c] += sum_dy;
        }
        let Some(dx) = grads.dx.as_deref_mut() else { continue };
        for s in 0..p.batch {
            let off = (s * p.channels + c) * p.inner;
            for i in off..off + p.inner {
                let ghat = dy[i] * g;
                dx[i] += if running.is_some() {
                    ghat * rstd
                } else {
                    let xhat = (x[i] - mean) * rstd;
                    rstd / n * (n * ghat - g * sum_dy - xhat * g * sum_dy_xhat)
                };
            }
        }
    }
}
