//! Fused conv2d → relu → maxpool2d: writes only the pooled output, computing each conv value
//! where the pooling window needs it (once per value for non-overlapping windows). Bit for bit
//! the unfused result: each conv sum is accumulated in the same order (bias, then input
//! channel, kernel row, kernel column) and the max picks the same element.

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
/// per-pixel path.
const MAX_ROW: usize = 128;

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
/// wider than 128 take a slower per-value path.
pub fn conv2d_relu_maxpool2d_f32(conv: &Conv2dParams, pool: &Pool2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (ph, pw, cw) = (pool.out_h(), pool.out_w(), conv.out_w());
    let mut row = [0.0f32; MAX_ROW];
    let mut best = [f32::NEG_INFINITY; MAX_ROW];
    let buffered = cw <= MAX_ROW && pw <= MAX_ROW;
    for b in 0..conv.batch {
        for oc in 0..conv.out_c {
            let out = &mut y[(b * conv.out_c + oc) * ph * pw..][..ph * pw];
            for py in 0..ph {
                let rows = window(py, pool.stride_h, pool.pad_h, pool.kernel_h, pool.in_h);
                if !buffered {
                    for (px, o) in out[py * pw..(py + 1) * pw].iter_mut().enumerate() {
                        *o = f32::NEG_INFINITY;
                        for cy in rows.clone() {
                            for cx in window(px, pool.stride_w, pool.pad_w, pool.kernel_w, pool.in_w) {
                                let v = Pointwise::Relu.apply(conv_at(conv, x, w, bias, b, oc, cy, cx));
                                if replaces(v, *o) {
                                    *o = v;
                                }
                            }
                        }
                    }
                    continue;
                }
                let best = &mut best[..pw];
                best.fill(f32::NEG_INFINITY);
                for cy in rows {
                    conv_relu_row(conv, x, w, bias, b, oc, cy, &mut row[..cw]);
                    for (px, slot) in best.iter_mut().enumerate() {
                        for cx in window(px, pool.stride_w, pool.pad_w, pool.kernel_w, pool.in_w) {
                            if replaces(row[cx], *slot) {
                                *slot = row[cx];
                            }
                        }
                    }
                }
                out[py * pw..(py + 1) * pw].copy_from_slice(best);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{conv2d_f32, maxpool2d_f32, pointwise_f32};

    /// Deterministic pseudo-random values in [-1, 1).
    fn values(n: usize, seed: u32) -> std::vec::Vec<f32> {
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

    #[test]
    fn matches_the_unfused_kernels_bit_for_bit() {
        // (conv stride, conv pad, pool kernel, pool stride, pool pad, input width), odd sizes.
        // The last case is wider than the row buffer: the per-value path.
        let cases = [(1, 0, 2, 2, 0, 7), (2, 1, 3, 2, 1, 7), (1, 1, 3, 1, 1, 7), (1, 0, 2, 1, 0, 7), (1, 1, 3, 2, 1, 141)];
        for (k, &(cs, cp, pk, ps, pp, width)) in cases.iter().enumerate() {
            let conv = Conv2dParams {
                batch: 2,
                in_c: 3,
                in_h: 9,
                in_w: width,
                out_c: 4,
                kernel_h: 3,
                kernel_w: 2,
                stride_h: cs,
                stride_w: cs,
                pad_h: cp,
                pad_w: cp,
            };
            let pool = Pool2dParams {
                batch: 2,
                channels: 4,
                in_h: conv.out_h(),
                in_w: conv.out_w(),
                kernel_h: pk,
                kernel_w: pk,
                stride_h: ps,
                stride_w: ps,
                pad_h: pp,
                pad_w: pp,
            };
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
            conv2d_relu_maxpool2d_f32(&conv, &pool, &x, &w, Some(&bias), &mut got);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<std::vec::Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "case {k}");
        }
    }
}
