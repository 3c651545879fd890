//! Losses: cross-entropy from logits with integer labels, and mean squared error.

use super::softmax::max_and_ln_sum_exp;
use crate::math;

/// Mean over the batch of `−log softmax(logits)[label]`. Labels are class indices stored as
/// f32; callers validate that each is an integer in `0..classes`.
pub fn cross_entropy_f32(batch: usize, classes: usize, logits: &[f32], labels: &[f32]) -> f32 {
    let mut total = 0.0;
    for (row, &label) in logits[..batch * classes].chunks_exact(classes).zip(labels) {
        let (max, ln_sum) = max_and_ln_sum_exp(row);
        total += ln_sum - (row[label as usize] - max);
    }
    total / batch as f32
}

/// `dlogits += dloss · (softmax(logits) − onehot(label)) / batch`.
pub fn cross_entropy_backward_f32(batch: usize, classes: usize, logits: &[f32], labels: &[f32], dloss: f32, dlogits: &mut [f32]) {
    let scale = dloss / batch as f32;
    for ((row, d), &label) in logits[..batch * classes].chunks_exact(classes).zip(dlogits.chunks_exact_mut(classes)).zip(labels) {
        let (max, _) = max_and_ln_sum_exp(row);
        let sum: f32 = row.iter().map(|&v| math::exp(v - max)).sum();
        for (j, (dj, &v)) in d.iter_mut().zip(row).enumerate() {
            let p = math::exp(v - max) / sum;
            *dj += scale * (p - (j == label as usize) as u8 as f32);
        }
    }
}

/// `mean((a − b)²)`.
pub fn mse_f32(a: &[f32], b: &[f32]) -> f32 {
    let sum: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    sum / a.len() as f32
}

/// `da += dloss · 2(a − b)/n`, `db −= the same`.
pub fn mse_backward_f32(a: &[f32], b: &[f32], dloss: f32, da: Option<&mut [f32]>, db: Option<&mut [f32]>) {
    let scale = 2.0 * dloss / a.len() as f32;
    if let Some(da) = da {
        for ((d, x), y) in da.iter_mut().zip(a).zip(b) {
            *d += scale * (x - y);
        }
    }
    if let Some(db) = db {
        for ((d, x), y) in db.iter_mut().zip(a).zip(b) {
            *d -= scale * (x - y);
        }
    }
}
