//! One sample of a convolution as a matrix (im2col) and back (col2im): what the host
//! convolution kernels are built from.

use crate::reference::Conv2dParams;

/// Rows (`in_c·kh·kw`) and columns (`out_h·out_w`) of one sample's im2col matrix.
pub(super) fn im2col_dims(conv: &Conv2dParams) -> (usize, usize) {
    (conv.in_c * conv.kernel_h * conv.kernel_w, conv.out_h() * conv.out_w())
}

/// The input row and column conv output `(oy, ox)` reads through tap `(ky, kx)`, if inside.
fn tap_source(conv: &Conv2dParams, oy: usize, ky: usize) -> Option<usize> {
    (oy * conv.stride_h + ky * conv.dilation_h).checked_sub(conv.pad_top).filter(|&iy| iy < conv.in_h)
}

/// The output columns `ox` whose tap `kx` reads inside the input, and the first one's input
/// column: `ix = ox·stride + kx·dilation − pad_left`.
fn tap_columns(conv: &Conv2dParams, kx: usize) -> (core::ops::Range<usize>, usize) {
    let (s, offset) = (conv.stride_w, kx * conv.dilation_w);
    // First ox with ox·s + offset ≥ pad_left, last with ox·s + offset − pad_left < in_w.
    let first = conv.pad_left.saturating_sub(offset).div_ceil(s);
    let end = (conv.in_w + conv.pad_left).saturating_sub(offset).div_ceil(s).min(conv.out_w());
    let first = first.min(end);
    (first..end, (first * s + offset).saturating_sub(conv.pad_left))
}

/// Sample `b` of `x` unrolled: row `(ic·kh + ky)·kw + kx` holds, for every conv output, the
/// input value that tap reads (0 in the padding).
pub(super) fn im2col(conv: &Conv2dParams, x: &[f32], b: usize, cols: &mut [f32]) {
    let (oh, ow) = (conv.out_h(), conv.out_w());
    let mut rows = cols.chunks_exact_mut(oh * ow);
    for ic in 0..conv.in_c {
        let plane = &x[(b * conv.in_c + ic) * conv.in_h * conv.in_w..][..conv.in_h * conv.in_w];
        for ky in 0..conv.kernel_h {
            for kx in 0..conv.kernel_w {
                let Some(row) = rows.next() else { return };
                let (inside, ix0) = tap_columns(conv, kx);
                for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
                    let Some(iy) = tap_source(conv, oy, ky) else {
                        out.fill(0.0);
                        continue;
                    };
                    out[..inside.start].fill(0.0);
                    out[inside.end..].fill(0.0);
                    if inside.is_empty() {
                        continue;
                    }
                    let line = &plane[iy * conv.in_w..][..conv.in_w];
                    let dst = &mut out[inside.clone()];
                    if conv.stride_w == 1 {
                        dst.copy_from_slice(&line[ix0..ix0 + dst.len()]);
                    } else {
                        dst.iter_mut().zip(line[ix0..].iter().step_by(conv.stride_w)).for_each(|(d, &v)| *d = v);
                    }
                }
            }
        }
    }
}

/// Adds an im2col matrix's gradient back into sample `b` of the input gradient `dx`.
pub(super) fn col2im_add(conv: &Conv2dParams, cols: &[f32], b: usize, dx: &mut [f32]) {
    let (oh, ow) = (conv.out_h(), conv.out_w());
    let mut rows = cols.chunks_exact(oh * ow);
    for ic in 0..conv.in_c {
        let plane = &mut dx[(b * conv.in_c + ic) * conv.in_h * conv.in_w..][..conv.in_h * conv.in_w];
        for ky in 0..conv.kernel_h {
            for kx in 0..conv.kernel_w {
                let Some(row) = rows.next() else { return };
                let (inside, ix0) = tap_columns(conv, kx);
                for (oy, grads) in row.chunks_exact(ow).enumerate() {
                    let Some(iy) = tap_source(conv, oy, ky).filter(|_| !inside.is_empty()) else { continue };
                    let line = &mut plane[iy * conv.in_w..][..conv.in_w];
                    let src = &grads[inside.clone()];
                    if conv.stride_w == 1 {
                        line[ix0..ix0 + src.len()].iter_mut().zip(src).for_each(|(d, &g)| *d += g);
                    } else {
                        line[ix0..].iter_mut().step_by(conv.stride_w).zip(src).for_each(|(d, &g)| *d += g);
                    }
                }
            }
        }
    }
}
