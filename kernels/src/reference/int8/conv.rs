//! int8 convolution, depthwise convolution and fully connected layers (NHWC, TFLite's layouts
//! and arithmetic): `Σ w·(x − x_zero)` in i32, plus the i32 bias, requantized per output
//! channel, plus the output zero point, clamped to the fused activation's range. Integer sums
//! are exact, so any order gives TFLM's bits (sums wrap rather than trap where a hostile model
//! would overflow i32, which TFLM leaves undefined).

use super::fixed::Requant;
use crate::reference::{Conv2dParams, Pool2dParams};

/// The quantization of an int8 layer's input and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Int8Io {
    /// −(the input's zero point).
    pub input_offset: i32,
    /// The output's zero point.
    pub output_offset: i32,
    /// The fused activation's clamp, in output units.
    pub act_min: i32,
    pub act_max: i32,
}

impl Int8Io {
    /// `acc` requantized by `r` into an int8 output.
    pub(crate) fn output(&self, acc: i32, r: Requant) -> i8 {
        r.apply(acc).saturating_add(self.output_offset).clamp(self.act_min, self.act_max) as i8
    }
}

/// The requantization of output channel `c`: per channel, or one for all.
pub(crate) fn channel(requant: &[Requant], c: usize) -> Requant {
    requant.get(c).or(requant.first()).copied().unwrap_or_default()
}

/// The input value at `(b, iy, ix, ic)` offset by `io.input_offset`, or `None` in the padding.
fn tap(p: &Conv2dParams, x: &[i8], b: usize, y: isize, x_pos: isize, c: usize) -> Option<i32> {
    let inside = (0..p.in_h as isize).contains(&y) && (0..p.in_w as isize).contains(&x_pos);
    inside.then(|| x[((b * p.in_h + y as usize) * p.in_w + x_pos as usize) * p.in_c + c] as i32)
}

/// The input position output `(oy, ox)` reads through tap `(ky, kx)` (may lie in the padding).
fn source(p: &Conv2dParams, oy: usize, ox: usize, ky: usize, kx: usize) -> (isize, isize) {
    let y = (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
    let x = (ox * p.stride_w + kx * p.dilation_w) as isize - p.pad_left as isize;
    (y, x)
}

/// TFLite's CONV_2D on int8: `x` `[batch, in_h, in_w, in_c]`, `w` `[out_c, kh, kw, in_c /
/// groups]`, `bias` `[out_c]`, `y` `[batch, out_h, out_w, out_c]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8(p: &Conv2dParams, io: &Int8Io, requant: &[Requant], x: &[i8], w: &[i8], bias: Option<&[i32]>, y: &mut [i8]) {
    let (oh, ow) = (p.out_h(), p.out_w());
    let conv = Int8Conv { p, io, requant, w, bias };
    for b in 0..p.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for oc in 0..p.out_c {
                    y[((b * oh + oy) * ow + ox) * p.out_c + oc] = conv.at(x, b, oy, ox, oc);
                }
            }
        }
    }
}

/// CONV_2D followed by MAX_POOL_2D (`pool` over the convolution's `[out_c, out_h, out_w]`
/// output, padding left out of each maximum as TFLite does, then clamped to `pool_act`),
/// without storing the convolution's output: each pooled value is the maximum of the
/// convolution outputs its window covers, computed as [`conv2d_s8`] computes them, so the
/// result is the two layers' bit for bit. `y` `[batch, pool_out_h, pool_out_w, out_c]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_maxpool_s8(
    p: &Conv2dParams,
    pool: &Pool2dParams,
    pool_act: (i32, i32),
    io: &Int8Io,
    requant: &[Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
) {
    let (oh, ow) = (pool.out_h(), pool.out_w());
    let conv = Int8Conv { p, io, requant, w, bias };
    for b in 0..p.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let (rows, cols) = window(pool, oy, ox);
                for oc in 0..p.out_c {
                    let mut max = i32::MIN;
                    for cy in rows.clone() {
                        for cx in cols.clone() {
                            max = max.max(conv.at(x, b, cy, cx, oc) as i32);
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * p.out_c + oc] = max.clamp(pool_act.0, pool_act.1) as i8;
                }
            }
        }
    }
}

/// The rows and columns of the input a pooling window covers, padding left out.
pub(crate) fn window(p: &Pool2dParams, oy: usize, ox: usize) -> (core::ops::Range<usize>, core::ops::Range<usize>) {
    let y0 = (oy * p.stride_h) as isize - p.pad_top as isize;
    let x0 = (ox * p.stride_w) as isize - p.pad_left as isize;
    let rows = y0.max(0) as usize..(y0 + p.kernel_h as isize).clamp(0, p.in_h as isize) as usize;
    let cols = x0.max(0) as usize..(x0 + p.kernel_w as isize).clamp(0, p.in_w as isize) as usize;
    (rows, cols)
}

/// One int8 convolution's operands.
struct Int8Conv<'a> {
    p: &'a Conv2dParams,
    io: &'a Int8Io,
    requant: &'a [Requant],
    w: &'a [i8],
    bias: Option<&'a [i32]>,
}

impl Int8Conv<'_> {
    /// The output at `(b, oy, ox, oc)`.
    fn at(&self, x: &[i8], b: usize, oy: usize, ox: usize, oc: usize) -> i8 {
        let p = self.p;
        let groups = p.groups.max(1);
        let (group_in, group_out) = (p.in_c / groups, p.out_c / groups);
        let first_in = oc / group_out.max(1) * group_in;
        let mut acc = self.bias.map_or(0, |bias| bias[oc]);
        for ky in 0..p.kernel_h {
            for kx in 0..p.kernel_w {
                let (iy, ix) = source(p, oy, ox, ky, kx);
                for ic in 0..group_in {
                    if let Some(v) = tap(p, x, b, iy, ix, first_in + ic) {
                        let wv = self.w[((oc * p.kernel_h + ky) * p.kernel_w + kx) * group_in + ic] as i32;
                        acc = acc.wrapping_add(wv.wrapping_mul(v + self.io.input_offset));
                    }
                }
            }
        }
        self.io.output(acc, channel(self.requant, oc))
    }
}

/// TFLite's DEPTHWISE_CONV_2D on int8: output channel `ic · multiplier + m` filters input
/// channel `ic`; `w` `[1, kh, kw, out_c]`, `multiplier = out_c / in_c`.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_s8(p: &Conv2dParams, io: &Int8Io, requant: &[Requant], x: &[i8], w: &[i8], bias: Option<&[i32]>, y: &mut [i8]) {
    let multiplier = p.out_c / p.in_c.max(1);
    let (oh, ow) = (p.out_h(), p.out_w());
    for b in 0..p.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                for oc in 0..p.out_c {
                    let ic = oc / multiplier.max(1);
                    let mut acc = bias.map_or(0, |bias| bias[oc]);
                    for ky in 0..p.kernel_h {
                        for kx in 0..p.kernel_w {
                            let (iy, ix) = source(p, oy, ox, ky, kx);
                            if let Some(v) = tap(p, x, b, iy, ix, ic) {
                                acc = acc.wrapping_add((w[(ky * p.kernel_w + kx) * p.out_c + oc] as i32).wrapping_mul(v + io.input_offset));
                            }
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * p.out_c + oc] = io.output(acc, channel(requant, oc));
                }
            }
        }
    }
}

/// TFLite's FULLY_CONNECTED on int8: `x` `[batch, depth]`, `w` `[out, depth]` (symmetric),
/// `bias` `[out]`, one requantization for all outputs or one per output.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_s8(
    batch: usize,
    depth: usize,
    out: usize,
    io: &Int8Io,
    requant: &[Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
) {
    for b in 0..batch {
        let row = &x[b * depth..(b + 1) * depth];
        for o in 0..out {
            let weights = &w[o * depth..(o + 1) * depth];
            let acc = row.iter().zip(weights).fold(bias.map_or(0, |bias| bias[o]), |acc, (&v, &wv)| {
                acc.wrapping_add((wv as i32).wrapping_mul(v as i32 + io.input_offset))
            });
            y[b * out + o] = io.output(acc, channel(requant, o));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::int8::maxpool2d_s8;

    /// The fused convolution and max pool give the two layers' bytes: a 2-channel 7×6 input, 3
    /// filters of 3×2 with stride 1 and padding, pooled 2×2 with stride 2 and a padded edge.
    #[test]
    fn fused_maxpool_is_conv_then_pool() {
        let p = Conv2dParams { pad_bottom: 0, pad_right: 1, ..Conv2dParams::plain(1, [2, 7, 6], 3, [3, 2], [1, 1], [1, 0]) };
        let io = Int8Io { input_offset: 5, output_offset: -3, act_min: -100, act_max: 120 };
        let requant = [Requant::from_real(0.02), Requant::from_real(0.013), Requant::from_real(0.031)];
        let x: Vec<i8> = (0..2 * 7 * 6).map(|i| ((i * 37 + 11) % 251) as u8 as i8).collect();
        let w: Vec<i8> = (0..3 * 3 * 2 * 2).map(|i| ((i * 53 + 7) % 255) as u8 as i8).collect();
        let bias = [300, -2000, 45];
        let (oh, ow) = (p.out_h(), p.out_w());
        let mut conv = vec![0i8; oh * ow * 3];
        conv2d_s8(&p, &io, &requant, &x, &w, Some(&bias), &mut conv);
        let mut pool = Pool2dParams::plain(1, [3, oh, ow], [2, 2], [2, 2], [0, 0]);
        (pool.pad_bottom, pool.pad_right) = (1, 1);
        let (ph, pw) = (pool.out_h(), pool.out_w());
        let mut want = vec![0i8; ph * pw * 3];
        maxpool2d_s8(&pool, -90, 127, &conv, &mut want);
        let mut got = vec![0i8; ph * pw * 3];
        conv2d_maxpool_s8(&p, &pool, (-90, 127), &io, &requant, &x, &w, Some(&bias), &mut got);
        assert_eq!(got, want);
        assert!(want.iter().any(|&v| v != want[0]), "a constant output would prove nothing");
        // By hand: a 2×2 max with the padding left out; the clamp at −90.
        let mut p1 = Pool2dParams::plain(1, [1, 2, 3], [2, 2], [2, 2], [0, 0]);
        p1.pad_right = 1;
        let mut y = [0i8; 2];
        maxpool2d_s8(&p1, -90, 127, &[-100, -120, 4, -128, -99, -128], &mut y);
        assert_eq!(y, [-90, 4]);
    }
}
