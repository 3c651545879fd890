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

/// The kernel taps `k` in `0..kernel` whose input index `o·stride + k − pad` is in
/// `0..input`, and the input index of the first one.
fn valid_taps(o: usize, stride: usize, pad: usize, kernel: usize, input: usize) -> (core::ops::Range<usize>, usize) {
    let start = o * stride;
    let k0 = pad.saturating_sub(start);
    let k1 = (input + pad).saturating_sub(start).min(kernel);
    (k0..k1.max(k0), (start + k0).saturating_sub(pad))
}

/// One conv output value at `(b, oc, oy, ox)`.
fn conv_at(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, b: usize, oc: usize, oy: usize, ox: usize) -> f32 {
    let mut acc = bias.map_or(0.0, |bias| bias[oc]);
    let (rows, iy0) = valid_taps(oy, p.stride_h, p.pad_h, p.kernel_h, p.in_h);
    let (cols, ix0) = valid_taps(ox, p.stride_w, p.pad_w, p.kernel_w, p.in_w);
    for ic in 0..p.in_c {
        let xin = &x[(b * p.in_c + ic) * p.in_h * p.in_w..];
        let wk = &w[(oc * p.in_c + ic) * p.kernel_h * p.kernel_w..];
        for (n, ky) in rows.clone().enumerate() {
            let wrow = &wk[ky * p.kernel_w + cols.start..ky * p.kernel_w + cols.end];
            let xrow = &xin[(iy0 + n) * p.in_w + ix0..];
            wrow.iter().zip(xrow).for_each(|(&w, &x)| acc += w * x);
        }
    }
    acc
}

/// Widest conv output row the fused kernel buffers on the stack; wider rows take the
/// per-pixel path in the forward, and the backward refuses them (plans fuse training steps
/// only up to this width).
pub const FUSED_MAX_ROW: usize = 128;
const MAX_ROW: usize = FUSED_MAX_ROW;

/// Recorded for a pooled output whose relu was off (or whose window was empty): no gradient
/// flows back through it.
pub const NO_ARGMAX: u8 = u8::MAX;

/// Largest pooling window (`kernel_h · kernel_w`) whose argmax fits the one byte recorded per
/// pooled output.
pub const MAX_RECORDED_WINDOW: usize = NO_ARGMAX as usize;

/// The byte recorded for a pooled value `best` found at offset `at` in its window.
fn recorded(best: f32, at: u8) -> u8 {
    if best > 0.0 {
        at
    } else {
        NO_ARGMAX
    }
}

/// The best-so-far rule of maxpool: a larger value, or a NaN, replaces the best. Starting
/// from −∞ gives maxpool's result too (an empty window stays −∞, and −∞ replacing −∞
/// changes nothing).
fn replaces(v: f32, best: f32) -> bool {
    matches!(v.partial_cmp(&best), Some(Ordering::Greater) | None)
}

/// Conv output row `oy` of channel `oc` for sample `b`, relu applied, into `row`.
fn conv_relu_row(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, b: usize, oc: usize, oy: usize, row: &mut [f32]) {
    row.fill(bias.map_or(0.0, |bias| bias[oc]));
    let (rows, iy0) = valid_taps(oy, p.stride_h, p.pad_h, p.kernel_h, p.in_h);
    for ic in 0..p.in_c {
        let xin = &x[(b * p.in_c + ic) * p.in_h * p.in_w..];
        let wk = &w[(oc * p.in_c + ic) * p.kernel_h * p.kernel_w..];
        for (n, ky) in rows.clone().enumerate() {
            for kx in 0..p.kernel_w {
                // Output columns whose input column kx·… lands inside the input.
                let ox0 = p.pad_w.saturating_sub(kx).div_ceil(p.stride_w);
                let ox1 = (p.in_w + p.pad_w).saturating_sub(kx).div_ceil(p.stride_w).min(row.len());
                if ox0 >= ox1 {
                    continue;
                }
                let wv = wk[ky * p.kernel_w + kx];
                let input = xin[(iy0 + n) * p.in_w + ox0 * p.stride_w + kx - p.pad_w..].iter().step_by(p.stride_w);
                row[ox0..ox1].iter_mut().zip(input).for_each(|(o, &x)| *o += wv * x);
            }
        }
    }
    row.iter_mut().for_each(|v| *v = Pointwise::Relu.apply(*v));
}

/// The window of pooling output `o` over an input of `len`: indices in range, padding dropped.
fn window(o: usize, stride: usize, pad: usize, kernel: usize, len: usize) -> core::ops::Range<usize> {
    let start = (o * stride) as isize - pad as isize;
    start.max(0) as usize..((start + kernel as isize).min(len as isize)).max(0) as usize
}

/// `y = maxpool(relu(conv(x, w) + bias))`; `pool` describes pooling over the conv output
/// (`pool.in_h = conv.out_h()`, …). Computes one conv row at a time in a stack buffer; rows
/// wider than 128 take a slower per-value path. With `argmax` (one byte per pooled output),
/// records for the backward where each pooled value came from: its offset in the (clipped)
/// window, `(cy − first row) · kernel_w + (cx − first column)`, or [`NO_ARGMAX`] where the
/// relu was off; recording needs a window of at most [`MAX_RECORDED_WINDOW`] values and
/// returns `false`, touching nothing, otherwise.
pub fn conv2d_relu_maxpool2d_f32(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    mut argmax: Option<&mut [u8]>,
) -> bool {
    if argmax.is_some() && pool.kernel_h * pool.kernel_w > MAX_RECORDED_WINDOW {
        return false;
    }
    let (ph, pw, cw) = (pool.out_h(), pool.out_w(), conv.out_w());
    let mut row = [0.0f32; MAX_ROW];
    let mut best = [f32::NEG_INFINITY; MAX_ROW];
    let mut best_at = [0u8; MAX_ROW];
    let buffered = cw <= MAX_ROW && pw <= MAX_ROW;
    for b in 0..conv.batch {
        for oc in 0..conv.out_c {
            let plane = (b * conv.out_c + oc) * ph * pw;
            let out = &mut y[plane..][..ph * pw];
            for py in 0..ph {
                let rows = window(py, pool.stride_h, pool.pad_h, pool.kernel_h, pool.in_h);
                let best = &mut best[..pw];
                let best_at = &mut best_at[..pw];
                best.fill(f32::NEG_INFINITY);
                // Offset of (cy, cx) in the window starting at (rows.start, cols.start).
                let offset =
                    |cy: usize, cx: usize, cols: &core::ops::Range<usize>| ((cy - rows.start) * pool.kernel_w + cx - cols.start) as u8;
                if buffered {
                    for cy in rows.clone() {
                        conv_relu_row(conv, x, w, bias, b, oc, cy, &mut row[..cw]);
                        for (px, (slot, at)) in best.iter_mut().zip(best_at.iter_mut()).enumerate() {
                            let cols = window(px, pool.stride_w, pool.pad_w, pool.kernel_w, pool.in_w);
                            for cx in cols.clone() {
                                if replaces(row[cx], *slot) {
                                    (*slot, *at) = (row[cx], offset(cy, cx, &cols));
                                }
                            }
                        }
                    }
                } else {
                    for (px, (slot, at)) in best.iter_mut().zip(best_at.iter_mut()).enumerate() {
                        let cols = window(px, pool.stride_w, pool.pad_w, pool.kernel_w, pool.in_w);
                        for cy in rows.clone() {
                            for cx in cols.clone() {
                                let v = Pointwise::Relu.apply(conv_at(conv, x, w, bias, b, oc, cy, cx));
                                if replaces(v, *slot) {
                                    (*slot, *at) = (v, offset(cy, cx, &cols));
                                }
                            }
                        }
                    }
                }
                out[py * pw..(py + 1) * pw].copy_from_slice(best);
                if let Some(argmax) = argmax.as_deref_mut() {
                    let slots = &mut argmax[plane + py * pw..][..pw];
                    slots.iter_mut().zip(best.iter().zip(best_at.iter())).for_each(|(s, (&v, &at))| *s = recorded(v, at));
                }
            }
        }
    }
    true
}

/// Whether the fused backward can run: pooling windows that do not overlap (stride ≥ kernel)
/// and hold at most [`MAX_RECORDED_WINDOW`] values, conv rows at most [`FUSED_MAX_ROW`] wide.
pub fn fused_backward_supported(conv: &Conv2dParams, pool: &Pool2dParams) -> bool {
    conv.out_w() <= MAX_ROW
        && pool.stride_h >= pool.kernel_h
        && pool.stride_w >= pool.kernel_w
        && pool.kernel_h * pool.kernel_w <= MAX_RECORDED_WINDOW
}

/// Backward of [`conv2d_relu_maxpool2d_f32`] from the pooled output gradient `dy` and the
/// `argmax` its forward recorded: accumulates `dx` (when the input needs a gradient), `dw`
/// and `dbias`, one output channel at a time (see
/// [`conv2d_relu_maxpool2d_backward_channel_f32`]). Returns `false`, touching nothing, where
/// [`fused_backward_supported`] says no.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool2d_backward_f32(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    x: &[f32],
    w: &[f32],
    argmax: &[u8],
    dy: &[f32],
    mut dx: Option<&mut [f32]>,
    dw: &mut [f32],
    mut dbias: Option<&mut [f32]>,
) -> bool {
    let per_channel = conv.in_c * conv.kernel_h * conv.kernel_w;
    (0..conv.out_c).all(|oc| {
        let db = dbias.as_deref_mut().map(|d| &mut d[oc]);
        conv2d_relu_maxpool2d_backward_channel_f32(
            conv,
            pool,
            oc,
            x,
            w,
            argmax,
            dy,
            dx.as_deref_mut(),
            &mut dw[oc * per_channel..][..per_channel],
            db,
        )
    })
}

/// Output channel `oc` of the fused backward, over the whole batch: accumulates its share of
/// `dx`, the gradient `dw` of its own weights (`[in_c, kernel_h, kernel_w]`) and of its bias.
/// Once it returns, that channel's weight and bias gradients are complete, so a caller can
/// update them before the next channel (its input gradient already used the old weights).
/// The sums run in the unfused kernels' order, so calling it for each channel in turn equals
/// maxpool, relu and conv backward (up to the sign of zero sums).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool2d_backward_channel_f32(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    oc: usize,
    x: &[f32],
    w: &[f32],
    argmax: &[u8],
    dy: &[f32],
    mut dx: Option<&mut [f32]>,
    dw: &mut [f32],
    mut dbias: Option<&mut f32>,
) -> bool {
    if !fused_backward_supported(conv, pool) {
        return false;
    }
    let (ph, pw, cw) = (pool.out_h(), pool.out_w(), conv.out_w());
    let (iw, s, taps) = (conv.in_w, conv.stride_w, conv.kernel_h * conv.kernel_w);
    let mut row = [0.0f32; MAX_ROW];
    for b in 0..conv.batch {
        let plane = (b * conv.out_c + oc) * ph * pw;
        let mut bias_sum = -0.0f32;
        for oy in 0..conv.out_h() {
            // The conv output gradient of row `oy`: the pooled gradients whose recorded
            // argmax lies in this row (one window at most holds a position).
            let row = &mut row[..cw];
            row.fill(0.0);
            let mut any = false;
            for py in 0..ph {
                let rows = window(py, pool.stride_h, pool.pad_h, pool.kernel_h, pool.in_h);
                if !rows.contains(&oy) {
                    continue;
                }
                let codes = argmax[plane + py * pw..][..pw].iter().zip(&dy[plane + py * pw..][..pw]);
                for (px, (&at, &g)) in codes.enumerate().filter(|(_, (&at, _))| at != NO_ARGMAX) {
                    let (cy, dx) = (rows.start + at as usize / pool.kernel_w, at as usize % pool.kernel_w);
                    if cy == oy {
                        row[window(px, pool.stride_w, pool.pad_w, pool.kernel_w, pool.in_w).start + dx] = g;
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
        let conv = Conv2dParams {
            batch: 2,
            in_c: 3,
            in_h: 9,
            in_w: width,
            out_c: 4,
            kernel_h: 3,
            kernel_w: 2,
            stride_h: conv_stride,
            stride_w: conv_stride,
            pad_h: conv_pad,
            pad_w: conv_pad,
        };
        let pool = Pool2dParams {
            batch: 2,
            channels: 4,
            in_h: conv.out_h(),
            in_w: conv.out_w(),
            kernel_h: pool_kernel,
            kernel_w: pool_kernel,
            stride_h: pool_stride,
            stride_w: pool_stride,
            pad_h: pool_pad,
            pad_w: pool_pad,
        };
        (conv, pool)
    }

    #[test]
    fn matches_the_unfused_kernels_bit_for_bit() {
        // (conv stride, conv pad, pool kernel, pool stride, pool pad, input width), odd sizes.
        // The last case is wider than the row buffer: the per-value path.
        let cases = [(1, 0, 2, 2, 0, 7), (2, 1, 3, 2, 1, 7), (1, 1, 3, 1, 1, 7), (1, 0, 2, 1, 0, 7), (1, 1, 3, 2, 1, 141)];
        for (k, &(cs, cp, pk, ps, pp, width)) in cases.iter().enumerate() {
            let (conv, pool) = layers(cs, cp, pk, ps, pp, width);
            let x = values(2 * 3 * 9 * width, k as u32);
            let w = values(4 * 3 * 3 * 2, 100 + k as u32);
            let bias = values(4, 200 + k as u32);
            let conv_len = 2 * 4 * conv.out_h() * conv.out_w();
            let (mut c, mut r) = (std::vec![0.0; conv_len], std::vec![0.0; conv_len]);
            conv2d_f32(&conv, &x, &w, Some(&bias), &mut c);
            pointwise_f32(Pointwise::Relu, &c, &mut r);
            let pooled = 2 * 4 * pool.out_h() * pool.out_w();
            let (mut want, mut got) = (std::vec![0.0f32; pooled], std::vec![1.0f32; pooled]);
            maxpool2d_f32(&pool, &r, &mut want);
            conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &w, Some(&bias), &mut got, None);
            assert_eq!(bits(&got), bits(&want), "case {k}");
            let mut argmax = std::vec![0u8; pooled];
            assert!(conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &w, Some(&bias), &mut got, Some(&mut argmax)));
            assert_eq!(bits(&got), bits(&want), "case {k} recording argmax");
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
            let x = values(2 * 3 * 9 * width, k as u32);
            let w = values(4 * 3 * 3 * 2, 100 + k as u32);
            let bias = values(4, 200 + k as u32);
            let conv_len = 2 * 4 * conv.out_h() * conv.out_w();
            let pooled = 2 * 4 * pool.out_h() * pool.out_w();
            let dy = values(pooled, 300 + k as u32);
            // Unfused: conv, relu, maxpool forward; maxpool, relu (in place), conv backward.
            let (mut c, mut r, mut y) = (std::vec![0.0; conv_len], std::vec![0.0; conv_len], std::vec![0.0; pooled]);
            conv2d_f32(&conv, &x, &w, Some(&bias), &mut c);
            pointwise_f32(Pointwise::Relu, &c, &mut r);
            maxpool2d_f32(&pool, &r, &mut y);
            let mut dc = std::vec![0.0; conv_len];
            maxpool2d_backward_f32(&pool, &r, &dy, &mut dc);
            pointwise_backward_in_place_f32(Pointwise::Relu, &[], &r, &mut dc);
            let (mut want_dx, mut want_dw, mut want_db) = (std::vec![0.0; x.len()], std::vec![0.0; w.len()], std::vec![0.0; 4]);
            conv2d_backward_weight_f32(&conv, &x, &dc, &mut want_dw);
            conv2d_backward_input_f32(&conv, &dc, &w, &mut want_dx);
            sum_channels_f32(2, 4, conv.out_h() * conv.out_w(), &dc, &mut want_db);
            let mut argmax = std::vec![0u8; pooled];
            assert!(conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &w, Some(&bias), &mut y, Some(&mut argmax)));
            off += argmax.iter().filter(|&&a| a == NO_ARGMAX).count();
            on += argmax.iter().filter(|&&a| a != NO_ARGMAX).count();
            let (mut dx, mut dw, mut db) = (std::vec![0.0; x.len()], std::vec![0.0; w.len()], std::vec![0.0; 4]);
            assert!(conv2d_relu_maxpool2d_backward_f32(&conv, &pool, &x, &w, &argmax, &dy, Some(&mut dx), &mut dw, Some(&mut db)));
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
    fn backward_refuses_overlapping_windows_and_wide_rows() {
        for (pk, ps, width) in [(3, 2, 7), (2, 2, 200)] {
            let (conv, pool) = layers(1, 0, pk, ps, 0, width);
            let pooled = 2 * 4 * pool.out_h() * pool.out_w();
            let x = values(2 * 3 * 9 * width, 1);
            let mut dw = std::vec![0.0; 72];
            let done = conv2d_relu_maxpool2d_backward_f32(
                &conv,
                &pool,
                &x,
                &[0.0; 72],
                &std::vec![0; pooled],
                &std::vec![1.0; pooled],
                None,
                &mut dw,
                None,
            );
            assert!(!done && dw.iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn windows_too_large_to_record_are_refused() {
        // A 1×256 pooling window: its argmax offset does not fit in a byte.
        let (conv, mut pool) = layers(1, 0, 1, 1, 0, 300);
        (pool.kernel_w, pool.stride_w) = (256, 256);
        let pooled = 2 * 4 * pool.out_h() * pool.out_w();
        let x = values(2 * 3 * 9 * 300, 1);
        let (mut y, mut argmax) = (std::vec![7.0; pooled], std::vec![7u8; pooled]);
        assert!(!conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &[0.5; 72], None, &mut y, Some(&mut argmax)));
        assert!(y.iter().all(|&v| v == 7.0) && argmax.iter().all(|&a| a == 7));
        // Without recording, the same call computes.
        assert!(conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &[0.5; 72], None, &mut y, None));
        assert!(y.iter().all(|&v| v != 7.0));
    }
}
