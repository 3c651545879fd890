//! int8 layers computed in their input's bytes, so the planner can give the output the input's
//! buffer: a pointwise (1×1, stride 1) convolution, pixel by pixel (each pixel's inputs copied
//! to scratch before its outputs overwrite them), and a depthwise convolution at stride 1 whose
//! output has its input's shape, row by row (the input rows an output row still needs are kept
//! in scratch). Each computes exactly what the out-of-place kernel computes: the same kernels
//! run on the copied values.

use super::conv::{depthwise_conv2d_s8, fully_connected_s8, Int8Io};
use super::fixed::Requant;
use crate::reference::Conv2dParams;

/// Whether [`pointwise_conv2d_s8_in_place`] computes `p`.
pub fn pointwise_in_place(p: &Conv2dParams) -> bool {
    p.kernel_h == 1
        && p.kernel_w == 1
        && p.stride_h == 1
        && p.stride_w == 1
        && p.groups == 1
        && p.pad_top + p.pad_left + p.pad_bottom + p.pad_right == 0
        && p.out_c <= p.in_c
}

/// Scratch bytes [`pointwise_conv2d_s8_in_place`] needs: one pixel's inputs.
pub fn pointwise_in_place_scratch(p: &Conv2dParams) -> usize {
    p.in_c
}

/// CONV_2D with a 1×1 kernel in place: `xy` holds `[batch, h, w, in_c]` and receives
/// `[batch, h, w, out_c]` (`out_c ≤ in_c`: pixel `i`'s outputs never reach pixel `i + 1`'s inputs).
#[allow(clippy::too_many_arguments)]
pub fn pointwise_conv2d_s8_in_place(
    p: &Conv2dParams,
    io: &Int8Io,
    requant: &[Requant],
    xy: &mut [i8],
    w: &[i8],
    bias: Option<&[i32]>,
    scratch: &mut [i8],
) {
    let pixels = p.batch * p.in_h * p.in_w;
    let pixel = &mut scratch[..p.in_c];
    for i in 0..pixels {
        pixel.copy_from_slice(&xy[i * p.in_c..(i + 1) * p.in_c]);
        fully_connected_s8(1, p.in_c, p.out_c, io, requant, pixel, w, bias, &mut xy[i * p.out_c..(i + 1) * p.out_c]);
    }
}

/// Whether [`depthwise_conv2d_s8_in_place`] computes `p`: stride 1, no dilation, one output
/// channel per input channel, the output as tall and wide as the input.
pub fn depthwise_in_place(p: &Conv2dParams) -> bool {
    p.stride_h == 1
        && p.stride_w == 1
        && p.dilation_h == 1
        && p.dilation_w == 1
        && p.out_c == p.in_c
        && p.kernel_h >= 1
        && p.pad_top < p.kernel_h
        && p.in_h + p.pad_top + p.pad_bottom + 1 == p.kernel_h + p.in_h
        && p.in_w + p.pad_left + p.pad_right + 1 == p.kernel_w + p.in_w
}

/// Scratch bytes [`depthwise_conv2d_s8_in_place`] needs: `pad_top` kept input rows, the
/// `kernel_h` rows an output row reads, and the output row.
pub fn depthwise_in_place_scratch(p: &Conv2dParams) -> usize {
    (p.pad_top + p.kernel_h + 1) * p.in_w * p.in_c
}

/// DEPTHWISE_CONV_2D in place (see [`depthwise_in_place`] for the shapes it takes): output row
/// `y` is computed from a copy of the input rows it reads (rows above `y` from the kept ones,
/// overwritten already), the original row `y` is kept, then the output row replaces it.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_s8_in_place(
    p: &Conv2dParams,
    io: &Int8Io,
    requant: &[Requant],
    xy: &mut [i8],
    w: &[i8],
    bias: Option<&[i32]>,
    scratch: &mut [i8],
) {
    let rows = |sub: &Conv2dParams, x: &[i8], y: &mut [i8]| depthwise_conv2d_s8(sub, io, requant, x, w, bias, y);
    depthwise_in_place_with(rows, p, xy, scratch)
}

/// [`depthwise_conv2d_s8_in_place`] computing each output row by `row_conv(sub, x, y)`, the
/// out-of-place kernel (or an instruction set's version of it) on a one-row problem.
pub fn depthwise_in_place_with(row_conv: impl Fn(&Conv2dParams, &[i8], &mut [i8]), p: &Conv2dParams, xy: &mut [i8], scratch: &mut [i8]) {
    let row = p.in_w * p.in_c;
    let kept_rows = p.pad_top;
    let (kept, rest) = scratch.split_at_mut(kept_rows * row);
    let (window, rest) = rest.split_at_mut(p.kernel_h * row);
    let out_row = &mut rest[..row];
    for b in 0..p.batch {
        let image = &mut xy[b * p.in_h * row..(b + 1) * p.in_h * row];
        for y in 0..p.in_h {
            // Input rows y − pad_top … y − pad_top + kernel_h − 1 that exist.
            let first = y as isize - p.pad_top as isize;
            let (r0, r1) = (first.max(0) as usize, ((first + p.kernel_h as isize) as usize).min(p.in_h));
            for (i, r) in (r0..r1).enumerate() {
                let source = if r < y { &kept[(r % kept_rows.max(1)) * row..][..row] } else { &image[r * row..(r + 1) * row] };
                window[i * row..(i + 1) * row].copy_from_slice(source);
            }
            let sub = Conv2dParams {
                batch: 1,
                in_h: r1 - r0,
                pad_top: (r0 as isize - first) as usize,
                pad_bottom: (first + p.kernel_h as isize - r1 as isize) as usize,
                ..*p
            };
            row_conv(&sub, &window[..(r1 - r0) * row], out_row);
            if kept_rows > 0 {
                kept[(y % kept_rows) * row..][..row].copy_from_slice(&image[y * row..(y + 1) * row]);
            }
            image[y * row..(y + 1) * row].copy_from_slice(out_row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::int8::conv2d_s8;

    fn bytes(n: usize, seed: usize) -> Vec<i8> {
        (0..n).map(|i| ((i * 7919 + seed * 104_729) % 251) as u8 as i8).collect()
    }

    /// In place equals out of place: pointwise with fewer and as many outputs as inputs;
    /// depthwise 3×3 and 5×3 "same" (padding 1 and 2 on top) over two images.
    #[test]
    fn in_place_equals_out_of_place() {
        let io = Int8Io { input_offset: 11, output_offset: -4, act_min: -128, act_max: 127 };
        for (in_c, out_c) in [(8, 8), (7, 5)] {
            let p = Conv2dParams::plain(2, [in_c, 4, 3], out_c, [1, 1], [1, 1], [0, 0]);
            assert!(pointwise_in_place(&p));
            let (x, w) = (bytes(2 * 12 * in_c, 1), bytes(out_c * in_c, 2));
            let bias: Vec<i32> = (0..out_c as i32).map(|c| c * 300 - 900).collect();
            let rq: Vec<Requant> = (0..out_c).map(|c| Requant::from_real(0.01 + 0.002 * c as f64)).collect();
            let mut want = vec![0i8; 2 * 12 * out_c];
            conv2d_s8(&p, &io, &rq, &x, &w, Some(&bias), &mut want);
            let mut xy = x.clone();
            let mut scratch = vec![0i8; pointwise_in_place_scratch(&p)];
            pointwise_conv2d_s8_in_place(&p, &io, &rq, &mut xy, &w, Some(&bias), &mut scratch);
            assert_eq!(&xy[..want.len()], &want[..]);
        }
        for (kh, kw, pad) in [(3, 3, [1, 1, 1, 1]), (5, 3, [2, 1, 2, 1])] {
            let p = Conv2dParams {
                pad_top: pad[0],
                pad_left: pad[1],
                pad_bottom: pad[2],
                pad_right: pad[3],
                ..Conv2dParams::plain(2, [6, 7, 5], 6, [kh, kw], [1, 1], [0, 0])
            };
            assert!(depthwise_in_place(&p));
            let (x, w) = (bytes(2 * 7 * 5 * 6, 3), bytes(kh * kw * 6, 4));
            let rq = [Requant::from_real(0.03)];
            let mut want = vec![0i8; x.len()];
            depthwise_conv2d_s8(&p, &io, &rq, &x, &w, None, &mut want);
            let mut xy = x.clone();
            let mut scratch = vec![0i8; depthwise_in_place_scratch(&p)];
            depthwise_conv2d_s8_in_place(&p, &io, &rq, &mut xy, &w, None, &mut scratch);
            assert_eq!(xy, want, "{kh}×{kw}");
        }
    }
}
