//! Fused conv2d → relu → maxpool2d: writes only the pooled output, computing each conv value
//! where the pooling window needs it (once per value for non-overlapping windows). Bit for bit
//! the unfused result: each conv sum is accumulated in the same order (bias, then input
//! channel, kernel row, kernel column) and the max picks the same element.
//!
//! For training, the forward also records which conv value each pooled output came from (or
//! that its relu was off), and the backward rebuilds the conv output gradient one row at a
//! time from those indices: neither the conv output, the relu output nor their gradients are
//! ever stored. The backward accumulates in the unfused kernels' order, so it equals them
//! (up to the sign of zero sums).

use super::conv2d::Conv2dParams;
use super::pointwise::Pointwise;
use super::pool2d::Pool2dParams;
use core::cmp::Ordering;

/// Scratch values [`conv2d_relu_maxpool2d_f32`] needs: one conv output row, and the best
/// value and its window offset for each pooled column.
pub fn conv2d_relu_maxpool2d_scratch_len(conv: &Conv2dParams, pool: &Pool2dParams) -> usize {
    conv.out_w() + 2 * pool.out_w()
}

/// Scratch values the fused backward needs: one conv output gradient row.
pub fn conv2d_relu_maxpool2d_backward_scratch_len(conv: &Conv2dParams) -> usize {
    conv.out_w()
}

/// Recorded for a pooled output whose relu was off (or whose window was empty): no gradient
/// flows back through it.
pub const NO_ARGMAX: u8 = u8::MAX;

/// Largest pooling window (`kernel_h · kernel_w`) whose argmax fits the one byte recorded per
/// pooled output.
pub const MAX_RECORDED_WINDOW: usize = NO_ARGMAX as usize;

/// The byte recorded for a pooled value `best` found at offset `at` in its window.
pub(crate) fn recorded(best: f32, at: u8) -> u8 {
    if best > 0.0 {
        at
    } else {
        NO_ARGMAX
    }
}

/// The best-so-far rule of maxpool: a larger value, or a NaN, replaces the best. Starting
/// from −∞ gives maxpool's result too (an empty window stays −∞, and −∞ replacing −∞
/// changes nothing).
pub(crate) fn replaces(v: f32, best: f32) -> bool {
    matches!(v.partial_cmp(&best), Some(Ordering::Greater) | None)
}

/// Conv output row `oy` of channel `oc` for sample `b`, relu applied, into `row`: the sums
/// [`crate::conv2d_f32`] makes, in its order.
#[allow(clippy::too_many_arguments)]
pub fn conv_relu_row(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, b: usize, oc: usize, oy: usize, row: &mut [f32]) {
    row.fill(bias.map_or(0.0, |bias| bias[oc]));
    for ic in 0..p.in_c {
        let (x_plane, w_kernel) = ((b * p.in_c + ic) * p.in_h * p.in_w, (oc * p.in_c + ic) * p.kernel_h * p.kernel_w);
        p.for_each_tap_of_row(oy, |t| {
            let wv = w[w_kernel + t.ky * p.kernel_w + t.kx];
            let input = x[x_plane + t.iy * p.in_w + t.ix0..].iter().step_by(p.stride_w);
            row[t.ox0..t.ox1].iter_mut().zip(input).for_each(|(o, &x)| *o += wv * x);
        });
    }
    row.iter_mut().for_each(|v| *v = Pointwise::Relu.apply(*v));
}

/// The window of pooling output `o` over an input of `len`: indices in range, padding dropped.
pub(crate) fn window(o: usize, stride: usize, pad: usize, kernel: usize, len: usize) -> core::ops::Range<usize> {
    let start = (o * stride) as isize - pad as isize;
    start.max(0) as usize..((start + kernel as isize).min(len as isize)).max(0) as usize
}

/// `y = maxpool(relu(conv(x, w) + bias))` for a conv of one group (`conv.groups == 1`); `pool` describes pooling over the conv output
/// (`pool.in_h = conv.out_h()`, …). Computes one conv row at a time into `scratch`
/// ([`conv2d_relu_maxpool2d_scratch_len`] values). With `argmax` (one byte per pooled output),
/// records for the backward where each pooled value came from: its offset in the (clipped)
/// window, `(cy − first row) · kernel_w + (cx − first column)`, or [`NO_ARGMAX`] where the
/// relu was off. Returns `false`, touching nothing, if `scratch` is too short or recording
/// is asked for a window of more than [`MAX_RECORDED_WINDOW`] values.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool2d_f32(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    argmax: Option<&mut [u8]>,
    scratch: &mut [f32],
) -> bool {
    conv2d_relu_maxpool2d_with(|b, oc, cy, row| conv_relu_row(conv, x, w, bias, b, oc, cy, row), conv, pool, y, argmax, scratch)
}

/// [`conv2d_relu_maxpool2d_f32`] getting its conv rows from `conv_row(b, oc, cy, row)`, which
/// must write `conv_relu_row`'s values, or the ISA's version of them, into `row`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn conv2d_relu_maxpool2d_with(
    mut conv_row: impl FnMut(usize, usize, usize, &mut [f32]),
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    y: &mut [f32],
    mut argmax: Option<&mut [u8]>,
    scratch: &mut [f32],
) -> bool {
    let unrecordable = argmax.is_some() && pool.kernel_h.checked_mul(pool.kernel_w).is_none_or(|window| window > MAX_RECORDED_WINDOW);
    if unrecordable || scratch.len() < conv2d_relu_maxpool2d_scratch_len(conv, pool) {
        return false;
    }
    let (ph, pw, cw) = (pool.out_h(), pool.out_w(), conv.out_w());
    let (row, rest) = scratch.split_at_mut(cw);
    let (best, rest) = rest.split_at_mut(pw);
    // Window offsets of the best values, kept as the bit patterns of f32 slots.
    let best_at = &mut rest[..pw];
    for b in 0..conv.batch {
        for oc in 0..conv.out_c {
            let plane = (b * conv.out_c + oc) * ph * pw;
            for py in 0..ph {
                let rows = window(py, pool.stride_h, pool.pad_top, pool.kernel_h, pool.in_h);
                best.fill(f32::NEG_INFINITY);
                for cy in rows.clone() {
                    conv_row(b, oc, cy, row);
                    let side_by_side = pool.pad_left == 0 && pool.stride_w == pool.kernel_w;
                    if side_by_side && argmax.is_some() {
                        // Training over windows side by side: the window's columns are the
                        // row's chunks, so the recorded offset is the row's plus the column's.
                        let base = (cy - rows.start) * pool.kernel_w;
                        let windows = best.iter_mut().zip(best_at.iter_mut()).zip(row.chunks_exact(pool.kernel_w));
                        for ((slot, at), cols) in windows {
                            for (j, &v) in cols.iter().enumerate() {
                                if replaces(v, *slot) {
                                    *slot = v;
                                    *at = f32::from_bits((base + j) as u32);
                                }
                            }
                        }
                        continue;
                    }
                    if side_by_side {
                        // Inference over windows side by side: the same maximum of each, no
                        // position to record.
                        let larger = |best: f32, v: f32| if replaces(v, best) { v } else { best };
                        if pool.kernel_w == 2 {
                            for (slot, pair) in best.iter_mut().zip(row.chunks_exact(2)) {
                                *slot = larger(larger(*slot, pair[0]), pair[1]);
                            }
                        } else {
                            for (slot, cols) in best.iter_mut().zip(row.chunks_exact(pool.kernel_w)) {
                                *slot = cols.iter().fold(*slot, |best, &v| larger(best, v));
                            }
                        }
                        continue;
                    }
                    for (px, (slot, at)) in best.iter_mut().zip(best_at.iter_mut()).enumerate() {
                        let cols = window(px, pool.stride_w, pool.pad_left, pool.kernel_w, pool.in_w);
                        for cx in cols.clone() {
                            if replaces(row[cx], *slot) {
                                *slot = row[cx];
                                *at = f32::from_bits(((cy - rows.start) * pool.kernel_w + cx - cols.start) as u32);
                            }
                        }
                    }
                }
                y[plane + py * pw..][..pw].copy_from_slice(best);
                if let Some(argmax) = argmax.as_deref_mut() {
                    let slots = &mut argmax[plane + py * pw..][..pw];
                    slots.iter_mut().zip(best.iter().zip(best_at.iter())).for_each(|(s, (&v, &at))| *s = recorded(v, at.to_bits() as u8));
                }
            }
        }
    }
    true
}

/// Whether the fused backward can run: pooling windows that do not overlap (stride ≥ kernel)
/// and hold at most [`MAX_RECORDED_WINDOW`] values.
pub fn fused_backward_supported(pool: &Pool2dParams) -> bool {
    pool.stride_h >= pool.kernel_h && pool.stride_w >= pool.kernel_w && pool.kernel_h * pool.kernel_w <= MAX_RECORDED_WINDOW
}

/// The gradients one output channel of the fused backward accumulates into.
pub struct ChannelGrads<'a> {
    /// The whole input gradient, when the input needs one.
    pub dx: Option<&'a mut [f32]>,
    /// This channel's weight gradient, `[in_c, kernel_h, kernel_w]`.
    pub dw: &'a mut [f32],
    /// This channel's bias gradient, with a bias.
    pub dbias: Option<&'a mut f32>,
}

/// Backward of [`conv2d_relu_maxpool2d_f32`] for output channel `oc`, over the whole batch,
/// from the pooled output gradient `dy` and the `argmax` the forward recorded: accumulates
/// the channel's share of `dx` and the gradients of its own weights and bias, rebuilding the
/// conv output gradient one row at a time in `scratch`
/// ([`conv2d_relu_maxpool2d_backward_scratch_len`] values). Once it returns, the channel's
/// weight and bias gradients are complete, so a caller can update them before the next
/// channel (the input gradient has already used the old weights). The sums run in the
/// unfused kernels' order, so calling it for each channel in turn equals maxpool, relu and
/// conv backward (up to the sign of zero sums). Returns `false`, touching nothing, where
/// [`fused_backward_supported`] says no or `scratch` is too short.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool2d_backward_channel_f32(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    oc: usize,
    x: &[f32],
    w: &[f32],
    argmax: &[u8],
    dy: &[f32],
    grads: ChannelGrads,
    scratch: &mut [f32],
) -> bool {
    if !fused_backward_supported(pool) || scratch.len() < conv2d_relu_maxpool2d_backward_scratch_len(conv) {
        return false;
    }
    let ChannelGrads { mut dx, dw, mut dbias } = grads;
    let (ph, pw, cw) = (pool.out_h(), pool.out_w(), conv.out_w());
    let (iw, s, taps) = (conv.in_w, conv.stride_w, conv.kernel_h * conv.kernel_w);
    let row = &mut scratch[..cw];
    for b in 0..conv.batch {
        let plane = (b * conv.out_c + oc) * ph * pw;
        let mut bias_sum = -0.0f32;
        for oy in 0..conv.out_h() {
            // The conv output gradient of row `oy`: the pooled gradients whose recorded
            // argmax lies in this row (one window at most holds a position).
            row.fill(0.0);
            let mut any = false;
            for py in 0..ph {
                let rows = window(py, pool.stride_h, pool.pad_top, pool.kernel_h, pool.in_h);
                if !rows.contains(&oy) {
                    continue;
                }
                let codes = argmax[plane + py * pw..][..pw].iter().zip(&dy[plane + py * pw..][..pw]);
                for (px, (&at, &g)) in codes.enumerate().filter(|(_, (&at, _))| at != NO_ARGMAX) {
                    let (cy, dx) = (rows.start + at as usize / pool.kernel_w, at as usize % pool.kernel_w);
                    if cy == oy {
                        row[window(px, pool.stride_w, pool.pad_left, pool.kernel_w, pool.in_w).start + dx] = g;
                        any = true;
                    }
                }
            }
            if !any {
                continue;
            }
            bias_sum = row.iter().fold(bias_sum, |acc, &g| acc + g);
            for ic in 0..conv.in_c {
                let (x_plane, w_kernel) = ((b * conv.in_c + ic) * conv.in_h * iw, (oc * conv.in_c + ic) * taps);
                conv.for_each_tap_of_row(oy, |t| {
                    let tap = t.ky * conv.kernel_w + t.kx;
                    let grad = &row[t.ox0..t.ox1];
                    let input = x[x_plane + t.iy * iw + t.ix0..].iter().step_by(s);
                    dw[ic * taps + tap] += grad.iter().zip(input).map(|(&g, &x)| g * x).sum::<f32>();
                    if let Some(dx) = dx.as_deref_mut() {
                        let input = dx[x_plane + t.iy * iw + t.ix0..].iter_mut().step_by(s);
                        input.zip(grad).for_each(|(d, &g)| *d += w[w_kernel + tap] * g);
                    }
                });
            }
        }
        if let Some(db) = dbias.as_deref_mut() {
            *db += bias_sum;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        conv2d_backward_input_f32, conv2d_backward_weight_f32, conv2d_f32, maxpool2d_backward_f32, maxpool2d_f32,
        pointwise_backward_in_place_f32, pointwise_f32, sum_channels_f32,
    };
    use std::vec::Vec;

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|f| f.to_bits()).collect()
    }

    /// A conv (kernel 3×2, 3 → 4 channels, batch 2, 9 rows) and the pool over its output.
    fn layers(
        conv_stride: usize,
        conv_pad: usize,
        pool_kernel: usize,
        pool_stride: usize,
        pool_pad: usize,
        width: usize,
    ) -> (Conv2dParams, Pool2dParams) {
        let conv = Conv2dParams::plain(2, [3, 9, width], 4, [3, 2], [conv_stride; 2], [conv_pad; 2]);
        let pool = Pool2dParams::plain(2, [4, conv.out_h(), conv.out_w()], [pool_kernel; 2], [pool_stride; 2], [pool_pad; 2]);
        (conv, pool)
    }

    /// Case `seed`'s inputs (batch 2, 3 → 4 channels, kernel 3×2) and the unfused kernels'
    /// conv → relu → maxpool forward.
    struct Unfused {
        x: Vec<f32>,
        w: Vec<f32>,
        bias: Vec<f32>,
        relu: Vec<f32>,
        pooled: Vec<f32>,
    }

    impl Unfused {
        fn run(conv: &Conv2dParams, pool: &Pool2dParams, seed: u32) -> Unfused {
            let x = values(2 * 3 * conv.in_h * conv.in_w, seed);
            let w = values(4 * 3 * 3 * 2, 100 + seed);
            let bias = values(4, 200 + seed);
            let conv_len = 2 * 4 * conv.out_h() * conv.out_w();
            let (mut c, mut relu) = (std::vec![0.0; conv_len], std::vec![0.0; conv_len]);
            conv2d_f32(conv, &x, &w, Some(&bias), &mut c);
            pointwise_f32(Pointwise::Relu, &c, &mut relu);
            let mut pooled = std::vec![0.0; 2 * 4 * pool.out_h() * pool.out_w()];
            maxpool2d_f32(pool, &relu, &mut pooled);
            Unfused { x, w, bias, relu, pooled }
        }
    }

    /// The forward's scratch, exactly as long as it asks for.
    fn scratch(conv: &Conv2dParams, pool: &Pool2dParams) -> Vec<f32> {
        std::vec![f32::NAN; conv2d_relu_maxpool2d_scratch_len(conv, pool)]
    }

    /// The fused backward over every output channel, accumulating like the unfused kernels.
    #[allow(clippy::too_many_arguments)]
    fn backward_all_channels(
        conv: &Conv2dParams,
        pool: &Pool2dParams,
        x: &[f32],
        w: &[f32],
        argmax: &[u8],
        dy: &[f32],
        dx: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
    ) -> bool {
        let per_channel = conv.in_c * conv.kernel_h * conv.kernel_w;
        let mut scratch = std::vec![f32::NAN; conv2d_relu_maxpool2d_backward_scratch_len(conv)];
        (0..conv.out_c).all(|oc| {
            let grads = ChannelGrads { dx: Some(&mut *dx), dw: &mut dw[oc * per_channel..][..per_channel], dbias: Some(&mut db[oc]) };
            conv2d_relu_maxpool2d_backward_channel_f32(conv, pool, oc, x, w, argmax, dy, grads, &mut scratch)
        })
    }

    #[test]
    fn matches_the_unfused_kernels_bit_for_bit() {
        // (conv stride, conv pad, pool kernel, pool stride, pool pad, input width), odd sizes,
        // one wide row.
        let cases = [(1, 0, 2, 2, 0, 7), (2, 1, 3, 2, 1, 7), (1, 1, 3, 1, 1, 7), (1, 0, 2, 1, 0, 7), (1, 1, 3, 2, 1, 141)];
        for (k, &(cs, cp, pk, ps, pp, width)) in cases.iter().enumerate() {
            let (conv, pool) = layers(cs, cp, pk, ps, pp, width);
            let u = Unfused::run(&conv, &pool, k as u32);
            let (x, w, bias, want) = (&u.x, &u.w, &u.bias, &u.pooled);
            let mut got = std::vec![1.0f32; want.len()];
            let pooled = want.len();
            assert!(conv2d_relu_maxpool2d_f32(&conv, &pool, x, w, Some(bias), &mut got, None, &mut scratch(&conv, &pool)));
            assert_eq!(bits(&got), bits(want), "case {k}");
            let mut argmax = std::vec![0u8; pooled];
            assert!(conv2d_relu_maxpool2d_f32(&conv, &pool, x, w, Some(bias), &mut got, Some(&mut argmax), &mut scratch(&conv, &pool)));
            assert_eq!(bits(&got), bits(want), "case {k} recording argmax");
        }
    }

    /// The fused backward against maxpool backward → relu backward → conv backward (weight,
    /// input, bias) of the unfused kernels, for non-overlapping pools (with and without
    /// padding, conv stride 1 and 2).
    #[test]
    fn backward_matches_the_unfused_kernels() {
        let cases = [(1, 0, 2, 2, 0, 7), (2, 1, 2, 2, 1, 9), (1, 1, 3, 3, 0, 8), (1, 0, 2, 3, 0, 11)];
        let (mut off, mut on) = (0, 0);
        for (k, &(cs, cp, pk, ps, pp, width)) in cases.iter().enumerate() {
            let (conv, pool) = layers(cs, cp, pk, ps, pp, width);
            let u = Unfused::run(&conv, &pool, k as u32);
            let (x, w, bias, r) = (&u.x, &u.w, &u.bias, &u.relu);
            let (conv_len, pooled) = (r.len(), u.pooled.len());
            let dy = values(pooled, 300 + k as u32);
            // Unfused backward: maxpool, relu (in place), conv.
            let mut y = std::vec![0.0; pooled];
            let mut dc = std::vec![0.0; conv_len];
            maxpool2d_backward_f32(&pool, r, &dy, &mut dc);
            pointwise_backward_in_place_f32(Pointwise::Relu, &[], r, &mut dc);
            let (mut want_dx, mut want_dw, mut want_db) = (std::vec![0.0; x.len()], std::vec![0.0; w.len()], std::vec![0.0; 4]);
            conv2d_backward_weight_f32(&conv, x, &dc, &mut want_dw);
            conv2d_backward_input_f32(&conv, &dc, w, &mut want_dx);
            sum_channels_f32(2, 4, conv.out_h() * conv.out_w(), &dc, &mut want_db);
            let mut argmax = std::vec![0u8; pooled];
            assert!(conv2d_relu_maxpool2d_f32(&conv, &pool, x, w, Some(bias), &mut y, Some(&mut argmax), &mut scratch(&conv, &pool)));
            off += argmax.iter().filter(|&&a| a == NO_ARGMAX).count();
            on += argmax.iter().filter(|&&a| a != NO_ARGMAX).count();
            let (mut dx, mut dw, mut db) = (std::vec![0.0; x.len()], std::vec![0.0; w.len()], std::vec![0.0; 4]);
            assert!(backward_all_channels(&conv, &pool, x, w, &argmax, &dy, &mut dx, &mut dw, &mut db));
            // Equal as numbers: a sum of only zeros may differ in its sign.
            assert_eq!(dw, want_dw, "case {k} weight");
            assert_eq!(dx, want_dx, "case {k} input");
            assert_eq!(db, want_db, "case {k} bias");
            assert!(dw.iter().all(|v| *v != 0.0), "case {k}: every weight gets a gradient");
        }
        // Some relus were off at the argmax and many on, or the test proves little.
        assert!(off > 10 && on > 5 * off, "{off} off, {on} on");
    }

    #[test]
    fn overlapping_windows_short_scratch_and_large_windows_are_refused() {
        let (conv, pool) = layers(1, 0, 3, 2, 0, 7);
        let pooled = 2 * 4 * pool.out_h() * pool.out_w();
        let (x, w) = (values(2 * 3 * 9 * 7, 1), [0.5; 72]);
        let (argmax, dy) = (std::vec![0u8; pooled], std::vec![1.0; pooled]);
        // Overlapping windows (3×3, stride 2): no fused backward.
        let mut dw = [0.0; 6];
        let grads = ChannelGrads { dx: None, dw: &mut dw, dbias: None };
        assert!(!conv2d_relu_maxpool2d_backward_channel_f32(&conv, &pool, 0, &x, &w, &argmax, &dy, grads, &mut [0.0; 64]));
        assert!(dw.iter().all(|&v| v == 0.0));
        // A scratch one value short.
        let (conv, pool) = layers(1, 0, 2, 2, 0, 7);
        let grads = ChannelGrads { dx: None, dw: &mut dw, dbias: None };
        let short = conv2d_relu_maxpool2d_backward_scratch_len(&conv) - 1;
        assert!(!conv2d_relu_maxpool2d_backward_channel_f32(&conv, &pool, 0, &x, &w, &argmax, &dy, grads, &mut std::vec![0.0; short]));
        let mut y = std::vec![7.0; pooled];
        let short = conv2d_relu_maxpool2d_scratch_len(&conv, &pool) - 1;
        assert!(!conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &w, None, &mut y, None, &mut std::vec![0.0; short]));
        assert!(dw.iter().all(|&v| v == 0.0) && y.iter().all(|&v| v == 7.0));
    }

    #[test]
    fn windows_too_large_to_record_are_refused() {
        // A 1×256 pooling window: its argmax offset does not fit in a byte.
        let (conv, mut pool) = layers(1, 0, 1, 1, 0, 300);
        (pool.kernel_w, pool.stride_w) = (256, 256);
        let pooled = 2 * 4 * pool.out_h() * pool.out_w();
        let x = values(2 * 3 * 9 * 300, 1);
        let (mut y, mut argmax) = (std::vec![7.0; pooled], std::vec![7u8; pooled]);
        assert!(!conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &[0.5; 72], None, &mut y, Some(&mut argmax), &mut scratch(&conv, &pool)));
        assert!(y.iter().all(|&v| v == 7.0) && argmax.iter().all(|&a| a == 7));
        // Without recording, the same call computes.
        assert!(conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &[0.5; 72], None, &mut y, None, &mut scratch(&conv, &pool)));
        assert!(y.iter().all(|&v| v != 7.0));
    }
}
