//! The fused conv → relu → maxpool forward and backward for host batches at any width:
//! one sample at a time, the input is unrolled into an im2col matrix `[in_c·kh·kw, out_h·out_w]`
//! and the convolution becomes gemm products — forward `W · cols`, weight
//! gradient `G · colsᵀ`, input gradient `Wᵀ · G` folded back (col2im) — over long contiguous
//! rows instead of the device kernels' short conv rows. The backward rebuilds the conv output
//! gradient `G` densely from the recorded maxima (non-overlapping windows: at most one value
//! per conv output). Sums are the reference's in another order with fused multiply-adds, within
//! the tolerance the tests state; the maxima picked can differ from the reference's only
//! between values that close.

use super::im2col::{col2im_add, im2col, im2col_dims};
use super::{gemm_f32, gemm_rows, Width};
use crate::reference::fused::{recorded, replaces, window};
use crate::reference::{fused_backward_supported, Conv2dParams, Pointwise, Pool2dParams, Transpose, MAX_RECORDED_WINDOW, NO_ARGMAX};

/// Scratch values [`conv2d_relu_maxpool2d_f32`] needs: one sample's im2col matrix and its
/// conv output (rows `in_w` wide when the taps are read in place).
pub fn forward_scratch_len(conv: &Conv2dParams, pool: &Pool2dParams) -> usize {
    let _ = pool;
    let (k, p) = im2col_dims(conv);
    k * p + conv.out_c * p.max(conv.out_h() * conv.in_w)
}

/// Scratch values [`conv2d_relu_maxpool2d_backward_f32`] needs: one sample's im2col matrix,
/// its conv output gradient and the im2col matrix's gradient.
pub fn backward_scratch_len(conv: &Conv2dParams) -> usize {
    let (k, p) = im2col_dims(conv);
    2 * k * p + conv.out_c * p
}

/// Whether these kernels take the layer: one group, and the scratch planned for them.
pub fn takes(conv: &Conv2dParams, scratch: usize, needed: usize) -> bool {
    conv.groups == 1 && scratch >= needed
}

/// `y = maxpool(relu(conv(x, w) + bias))` with the argmax record, as
/// [`reference::conv2d_relu_maxpool2d_f32`]; `scratch` holds [`forward_scratch_len`] values.
/// Its products run at `width`.
///
/// # Safety
/// The CPU must run `width` ([`Width::runs_here`]).
#[allow(clippy::too_many_arguments)]
pub unsafe fn conv2d_relu_maxpool2d_f32(
    width: Width,
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    mut argmax: Option<&mut [u8]>,
    scratch: &mut [f32],
) -> bool {
    let (k, p) = im2col_dims(conv);
    if !takes(conv, scratch.len(), forward_scratch_len(conv, pool)) {
        return false;
    }
    let unrecordable = argmax.is_some() && pool.kernel_h.checked_mul(pool.kernel_w).is_none_or(|window| window > MAX_RECORDED_WINDOW);
    if unrecordable {
        return false;
    }
    let (cols, out) = scratch.split_at_mut(k * p);
    let pooled = pool.out_h() * pool.out_w();
    // Taps read in place (stride 1, no dilation or padding, at most MAX_TAPS taps): conv rows
    // `in_w` wide, the last `in_w − out_w` columns of each left unread.
    let mut taps = [0usize; MAX_TAPS];
    let in_place = conv.stride_h == 1 && conv.stride_w == 1 && conv.dilation_h == 1 && conv.dilation_w == 1;
    let in_place = in_place && conv.pad_top + conv.pad_left + conv.pad_bottom + conv.pad_right == 0 && k <= MAX_TAPS;
    let (row_len, plane) = match in_place {
        true => (conv.in_w, (conv.out_h() - 1) * conv.in_w + conv.out_w()),
        false => (conv.out_w(), p),
    };
    let out = &mut out[..conv.out_c * plane];
    for b in 0..conv.batch {
        for (oc, plane) in out.chunks_exact_mut(plane).enumerate() {
            plane.fill(bias.map_or(0.0, |bias| bias[oc]));
        }
        if in_place {
            for (t, tap) in taps[..k].iter_mut().enumerate() {
                let (ic, ky, kx) = (t / (conv.kernel_h * conv.kernel_w), t / conv.kernel_w % conv.kernel_h, t % conv.kernel_w);
                *tap = (b * conv.in_c + ic) * conv.in_h * conv.in_w + ky * conv.in_w + kx;
            }
            // SAFETY: the caller's CPU runs `width`.
            if !unsafe { gemm_rows(width, conv.out_c, plane, k, w, x, &taps[..k], out) } {
                return false;
            }
        } else {
            im2col(conv, x, b, cols);
            // SAFETY: the caller's CPU runs `width`.
            unsafe { gemm_f32(width, Transpose { a: false, b: false }, conv.out_c, p, k, w, cols, out, true) };
        }
        let at = b * conv.out_c * pooled;
        let argmax = argmax.as_deref_mut().map(|a| &mut a[at..at + conv.out_c * pooled]);
        max_pool_relu(pool, out, plane, row_len, &mut y[at..at + conv.out_c * pooled], argmax);
    }
    true
}

/// Most taps (`in_c·kh·kw`) a convolution read in place may have (their offsets live on the
/// stack); larger ones go through im2col.
const MAX_TAPS: usize = 1024;

/// Max pooling of one sample's conv output planes after relu, with the reference's choices:
/// the first largest value in window order (a NaN wins), its offset in the clipped window
/// recorded, or [`NO_ARGMAX`] where the relu was off.
fn max_pool_relu(pool: &Pool2dParams, out: &[f32], plane_len: usize, row_len: usize, y: &mut [f32], mut argmax: Option<&mut [u8]>) {
    let (ph, pw) = (pool.out_h(), pool.out_w());
    let pairs = pool.kernel_h == 2 && pool.kernel_w == 2 && pool.stride_h == 2 && pool.stride_w == 2;
    let pairs = pairs && pool.pad_top == 0 && pool.pad_left == 0;
    for (oc, plane) in out.chunks_exact(plane_len).enumerate() {
        for py in 0..ph {
            let ys = &mut y[(oc * ph + py) * pw..][..pw];
            let mut codes = argmax.as_deref_mut().map(|a| &mut a[(oc * ph + py) * pw..][..pw]);
            if pairs {
                // 2 × 2 windows side by side: the four values in window order.
                let (top, bottom) = (&plane[2 * py * row_len..], &plane[(2 * py + 1) * row_len..]);
                for px in 0..pw {
                    let four = [top[2 * px], top[2 * px + 1], bottom[2 * px], bottom[2 * px + 1]];
                    let (mut best, mut best_at) = (f32::NEG_INFINITY, 0);
                    for (at, v) in four.into_iter().enumerate() {
                        let v = Pointwise::Relu.apply(v);
                        if replaces(v, best) {
                            (best, best_at) = (v, at);
                        }
                    }
                    ys[px] = best;
                    if let Some(codes) = codes.as_deref_mut() {
                        codes[px] = recorded(best, best_at as u8);
                    }
                }
                continue;
            }
            let rows = window(py, pool.stride_h, pool.pad_top, pool.kernel_h, pool.in_h);
            for px in 0..pw {
                let cols = window(px, pool.stride_w, pool.pad_left, pool.kernel_w, pool.in_w);
                let (mut best, mut best_at) = (f32::NEG_INFINITY, 0);
                for cy in rows.clone() {
                    for cx in cols.clone() {
                        let v = Pointwise::Relu.apply(plane[cy * row_len + cx]);
                        if replaces(v, best) {
                            (best, best_at) = (v, (cy - rows.start) * pool.kernel_w + cx - cols.start);
                        }
                    }
                }
                ys[px] = best;
                if let Some(codes) = codes.as_deref_mut() {
                    codes[px] = recorded(best, best_at as u8);
                }
            }
        }
    }
}

/// The whole fused backward over the batch: accumulates `dx` (when given), `dw` and `dbias`
/// from the pooled gradient `dy` and the forward's `argmax`, as the reference's per-channel
/// backward does for every channel. Returns `false`, touching nothing, for overlapping windows,
/// groups, or a `scratch` shorter than [`backward_scratch_len`].
///
/// Its products run at `width`.
///
/// # Safety
/// The CPU must run `width` ([`Width::runs_here`]).
#[allow(clippy::too_many_arguments)]
pub unsafe fn conv2d_relu_maxpool2d_backward_f32(
    width: Width,
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    x: &[f32],
    w: &[f32],
    argmax: &[u8],
    dy: &[f32],
    mut dx: Option<&mut [f32]>,
    dw: &mut [f32],
    mut dbias: Option<&mut [f32]>,
    scratch: &mut [f32],
) -> bool {
    let (k, p) = im2col_dims(conv);
    if !fused_backward_supported(pool) || !takes(conv, scratch.len(), backward_scratch_len(conv)) {
        return false;
    }
    let (cols, rest) = scratch.split_at_mut(k * p);
    let (grads, rest) = rest.split_at_mut(conv.out_c * p);
    let col_grads = &mut rest[..k * p];
    let (ph, pw, ow) = (pool.out_h(), pool.out_w(), conv.out_w());
    for b in 0..conv.batch {
        // The conv output gradient: each pooled gradient goes back to its recorded maximum.
        grads.fill(0.0);
        for (oc, plane) in grads.chunks_exact_mut(p).enumerate() {
            let pooled = (b * conv.out_c + oc) * ph * pw;
            for py in 0..ph {
                let top = (py * pool.stride_h).saturating_sub(pool.pad_top);
                for px in 0..pw {
                    let (code, g) = (argmax[pooled + py * pw + px], dy[pooled + py * pw + px]);
                    if code == NO_ARGMAX {
                        continue;
                    }
                    let cy = top + code as usize / pool.kernel_w;
                    let cx = (px * pool.stride_w).saturating_sub(pool.pad_left) + code as usize % pool.kernel_w;
                    plane[cy * ow + cx] = g;
                    if let Some(db) = dbias.as_deref_mut() {
                        db[oc] += g;
                    }
                }
            }
        }
        im2col(conv, x, b, cols);
        // SAFETY: the caller's CPU runs `width`.
        unsafe { gemm_f32(width, Transpose { a: false, b: true }, conv.out_c, k, p, grads, cols, dw, true) };
        if let Some(dx) = dx.as_deref_mut() {
            // SAFETY: as above.
            unsafe { gemm_f32(width, Transpose { a: true, b: false }, k, p, conv.out_c, w, grads, col_grads, false) };
            col2im_add(conv, col_grads, b, dx);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{self, ChannelGrads};
    use std::vec::Vec;

    fn values(seed: u32, n: usize) -> Vec<f32> {
        crate::test_values(seed, n).collect()
    }

    /// Every case at every width this CPU runs.
    fn cases_and_widths() -> impl Iterator<Item = ((Conv2dParams, usize, usize, usize), Width)> {
        cases().into_iter().flat_map(|c| Width::available().map(move |w| (c, w)))
    }

    /// Shapes with odd sizes, strides, dilation, padding on each side and pools with padding
    /// and remainders: (conv, pool kernel, pool stride, pool padding).
    fn cases() -> Vec<(Conv2dParams, usize, usize, usize)> {
        let mut dilated = Conv2dParams::plain(2, [3, 11, 9], 5, [3, 2], [1, 2], [1, 0]);
        dilated.dilation_h = 2;
        dilated.pad_right = 2;
        std::vec![
            (Conv2dParams::plain(3, [1, 28, 28], 8, [3, 3], [1, 1], [0, 0]), 2, 2, 0),
            (Conv2dParams::plain(2, [8, 13, 13], 16, [3, 3], [1, 1], [0, 0]), 2, 2, 0),
            (Conv2dParams::plain(2, [2, 9, 7], 3, [5, 3], [2, 1], [2, 1]), 3, 3, 1),
            (dilated, 2, 3, 0),
        ]
    }

    fn pool_over(conv: &Conv2dParams, kernel: usize, stride: usize, pad: usize) -> Pool2dParams {
        Pool2dParams::plain(conv.batch, [conv.out_c, conv.out_h(), conv.out_w()], [kernel, kernel], [stride, stride], [pad, pad])
    }

    /// Bound on the difference of two orders of the same sum of `terms` values whose absolute
    /// values sum to at most `abs` (recursive summation, fused or not): (terms + 1)·ε·abs.
    fn bound(terms: usize, abs: f32) -> f32 {
        (terms + 1) as f32 * f32::EPSILON * abs
    }

    /// The forward's pooled values are the reference's within the summation bound, and each
    /// recorded position holds a conv value within that bound of the pooled one.
    #[test]
    fn forward_matches_the_reference() {
        for ((conv, kernel, stride, pad), width) in cases_and_widths() {
            let pool = pool_over(&conv, kernel, stride, pad);
            let (k, _) = im2col_dims(&conv);
            let x = values(1, conv.batch * conv.in_c * conv.in_h * conv.in_w);
            let w = values(2, conv.out_c * k);
            let bias = values(3, conv.out_c);
            let n = conv.batch * conv.out_c * pool.out_h() * pool.out_w();
            let (mut want, mut got) = (std::vec![0.0; n], std::vec![0.0; n]);
            let (mut want_at, mut got_at) = (std::vec![0u8; n], std::vec![0u8; n]);
            let mut scratch = std::vec![0.0; forward_scratch_len(&conv, &pool)];
            assert!(reference::conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &w, Some(&bias), &mut want, Some(&mut want_at), &mut scratch));
            // SAFETY: the width runs on this CPU.
            assert!(unsafe {
                conv2d_relu_maxpool2d_f32(width, &conv, &pool, &x, &w, Some(&bias), &mut got, Some(&mut got_at), &mut scratch)
            });
            // Each pooled value's bound comes from the largest sum of absolute terms in its
            // window: the same fused kernel over |x|, |w|, |bias| (all terms positive).
            let mut abs_sums = std::vec![0.0; n];
            let (ax, aw, ab) = (absolute(&x), absolute(&w), absolute(&bias));
            assert!(reference::conv2d_relu_maxpool2d_f32(&conv, &pool, &ax, &aw, Some(&ab), &mut abs_sums, None, &mut scratch));
            for i in 0..n {
                let tol = bound(k + 1, abs_sums[i]);
                assert!((want[i] - got[i]).abs() <= tol, "{conv:?} [{i}]: {} vs {}", want[i], got[i]);
                assert_eq!(want_at[i] == NO_ARGMAX, got_at[i] == NO_ARGMAX || want[i] <= tol, "{conv:?} [{i}]");
            }
            // Inference (nothing recorded) pools the same values.
            let mut inferred = std::vec![0.0; n];
            // SAFETY: the width runs on this CPU.
            assert!(unsafe { conv2d_relu_maxpool2d_f32(width, &conv, &pool, &x, &w, Some(&bias), &mut inferred, None, &mut scratch) });
            assert_eq!(inferred, got);
            let differing = want_at.iter().zip(&got_at).filter(|(a, b)| a != b).count();
            assert!(differing * 100 <= n, "{differing} of {n} maxima moved");
        }
    }

    /// The whole-layer backward equals the reference's per-channel backward over every
    /// channel within the summation bound (from the same recorded maxima).
    #[test]
    fn backward_matches_the_reference() {
        for ((conv, kernel, stride, pad), width) in cases_and_widths() {
            let pool = pool_over(&conv, kernel, stride, pad);
            let (k, p) = im2col_dims(&conv);
            let x = values(4, conv.batch * conv.in_c * conv.in_h * conv.in_w);
            let w = values(5, conv.out_c * k);
            let n = conv.batch * conv.out_c * pool.out_h() * pool.out_w();
            let (mut y, mut at) = (std::vec![0.0; n], std::vec![0u8; n]);
            let mut scratch = std::vec![0.0; forward_scratch_len(&conv, &pool).max(backward_scratch_len(&conv))];
            assert!(reference::conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &w, None, &mut y, Some(&mut at), &mut scratch));
            let dy = values(6, n);
            let (start_dx, start_dw, start_db) = (values(7, x.len()), values(8, w.len()), values(9, conv.out_c));
            let (mut want_dx, mut want_dw, mut want_db) = (start_dx.clone(), start_dw.clone(), start_db.clone());
            for oc in 0..conv.out_c {
                let grads = ChannelGrads { dx: Some(&mut want_dx), dw: &mut want_dw[oc * k..(oc + 1) * k], dbias: Some(&mut want_db[oc]) };
                assert!(reference::conv2d_relu_maxpool2d_backward_channel_f32(&conv, &pool, oc, &x, &w, &at, &dy, grads, &mut scratch));
            }
            let (mut dx, mut dw, mut db) = (start_dx.clone(), start_dw.clone(), start_db.clone());
            // SAFETY: the width runs on this CPU.
            let done = unsafe {
                conv2d_relu_maxpool2d_backward_f32(
                    width,
                    &conv,
                    &pool,
                    &x,
                    &w,
                    &at,
                    &dy,
                    Some(&mut dx),
                    &mut dw,
                    Some(&mut db),
                    &mut scratch,
                )
            };
            assert!(done);
            // Each gradient value's bound: the same per-channel backward over |x|, |w|, |dy|
            // and the starting values' magnitudes gives its sum of absolute terms.
            let (mut abs_dx, mut abs_dw, mut abs_db) = (absolute(&start_dx), absolute(&start_dw), absolute(&start_db));
            let (ax, aw, ady) = (absolute(&x), absolute(&w), absolute(&dy));
            for oc in 0..conv.out_c {
                let grads = ChannelGrads { dx: Some(&mut abs_dx), dw: &mut abs_dw[oc * k..(oc + 1) * k], dbias: Some(&mut abs_db[oc]) };
                assert!(reference::conv2d_relu_maxpool2d_backward_channel_f32(&conv, &pool, oc, &ax, &aw, &at, &ady, grads, &mut scratch));
            }
            let terms = conv.batch * p.max(conv.out_c * k) + 1;
            for (name, want, got, abs) in [("dx", &want_dx, &dx, &abs_dx), ("dw", &want_dw, &dw, &abs_dw), ("db", &want_db, &db, &abs_db)] {
                for (i, (a, b)) in want.iter().zip(got.iter()).enumerate() {
                    assert!((a - b).abs() <= bound(terms, abs[i]), "{conv:?} {name}[{i}]: {a} vs {b}");
                }
            }
        }
    }

    fn absolute(v: &[f32]) -> Vec<f32> {
        v.iter().map(|x| x.abs()).collect()
    }

    /// Layers it does not take are refused untouched: groups, overlapping windows, short
    /// scratch.
    #[test]
    fn refuses_what_it_does_not_take() {
        let Some(width) = Width::available().next() else { return };
        let conv = Conv2dParams::plain(1, [2, 6, 6], 2, [3, 3], [1, 1], [0, 0]);
        let grouped = Conv2dParams { groups: 2, ..conv };
        let pool = pool_over(&conv, 2, 2, 0);
        let overlapping = pool_over(&conv, 3, 2, 0);
        let (x, w) = (values(1, 72), values(2, 36));
        let mut y = std::vec![7.0; 8];
        let mut short = std::vec![0.0; forward_scratch_len(&conv, &pool) - 1];
        let mut scratch = std::vec![0.0; forward_scratch_len(&conv, &pool) + backward_scratch_len(&conv)];
        // SAFETY: the width runs on this CPU.
        unsafe {
            assert!(!conv2d_relu_maxpool2d_f32(width, &conv, &pool, &x, &w, None, &mut y, None, &mut short));
            assert!(!conv2d_relu_maxpool2d_f32(width, &grouped, &pool, &x, &w, None, &mut y, None, &mut scratch));
            let (at, dy, mut dw) = (std::vec![0u8; 8], std::vec![1.0; 8], std::vec![0.0; 36]);
            assert!(!conv2d_relu_maxpool2d_backward_f32(width, &conv, &overlapping, &x, &w, &at, &dy, None, &mut dw, None, &mut scratch));
            assert!(dw.iter().all(|&v| v == 0.0));
        }
        assert!(y.iter().all(|&v| v == 7.0));
    }
}
