//! int8 convolution (with a fused max pool) and fully connected layers over gathered columns,
//! for instruction sets that multiply 16 int8 pairs at once ([`Dot`]: Helium's VMLADAVA, Neon's
//! SDOT or SMULL). Per output position the receptive field is gathered once as raw input bytes
//! (the padding as the input's zero point), then each output channel's weights meet that column
//! four channels at a time. The input offset is folded into the bias (`Σ w·(x + offset) = Σ w·x
//! + offset·Σ w`, wrapping i32 arithmetic: the reference's sums bit for bit), the channels'
//! weight sums computed once per call. A pooled window keeps each channel's largest raw sum and
//! requantizes once (monotone requantization, as in `m4_int8`).

use super::requant_down::{monotone, output, RequantDown};
use crate::reference::int8::{channel_requant, pool_window, Int8Io, Requant};
use crate::reference::{Conv2dParams, Pool2dParams};

/// The dot products an instruction set computes for [`conv2d_s8`] and [`fully_connected_s8`].
pub trait Dot {
    /// `acc[j] + Σ col·w_j` for the four weight rows `w_j` of `quad` (`4 · col.len()` values);
    /// `acc` when an operand is short.
    fn dot4(col: &[i8], quad: &[i8], acc: &[i32]) -> [i32; 4];
    /// `acc + Σ col·w` over `col.len()` values; `acc` when `w` is short.
    fn dot1(col: &[i8], w: &[i8], acc: i32) -> i32;
    /// The sum of `w`'s values.
    fn sum(w: &[i8]) -> i32 {
        w.iter().fold(0i32, |a, &v| a.wrapping_add(v as i32))
    }
    /// `dst.copy_from_slice(src)` for a column's short runs.
    fn copy(src: &[i8], dst: &mut [i8]) {
        dst.copy_from_slice(src);
    }
    /// `out[c] = ` the int8 output of `sums[c]` by channel `c`'s requantization (`requant`: one
    /// per channel, or one for all).
    fn requant(io: &Int8Io, sums: &[i32], requant: &[Requant], out: &mut [i8]) {
        requant_each(io, sums, requant, out);
    }
}

/// [`Dot::requant`] through `vector` (a whole number of 4-channel groups at once, `false` where it
/// does not take them): per channel, or one requantization for all repeated 16 times; the rest
/// (a tail, what `vector` refuses) channel by channel.
pub fn requant_vectors(
    io: &Int8Io,
    sums: &[i32],
    requant: &[Requant],
    out: &mut [i8],
    vector: impl Fn(&Int8Io, &[i32], &[Requant], &mut [i8]) -> bool,
) {
    let whole = sums.len() / 4 * 4;
    let done = whole > 0
        && match requant {
            [one] => {
                let all = [*one; 16];
                sums[..whole].chunks(16).zip(out[..whole].chunks_mut(16)).all(|(s, o)| vector(io, s, &all[..s.len()], o))
            }
            _ => requant.len() >= whole && vector(io, &sums[..whole], &requant[..whole], &mut out[..whole]),
        };
    let from = if done { whole } else { 0 };
    let rest = if requant.len() > 1 { &requant[from.min(requant.len())..] } else { requant };
    requant_each(io, &sums[from..], rest, &mut out[from..]);
}

/// [`Dot::requant`] channel by channel.
pub fn requant_each(io: &Int8Io, sums: &[i32], requant: &[Requant], out: &mut [i8]) {
    for (c, (o, &s)) in out.iter_mut().zip(sums).enumerate() {
        *o = output(io, s, channel_requant(requant, c));
    }
}

/// Plain Rust: the driver's oracle in tests.
pub struct Plain;

impl Dot for Plain {
    fn dot4(col: &[i8], quad: &[i8], acc: &[i32]) -> [i32; 4] {
        let n = col.len();
        core::array::from_fn(|j| {
            let a = acc.get(j).copied().unwrap_or(0);
            match quad.get(j * n..(j + 1) * n) {
                Some(w) => Self::dot1(col, w, a),
                None => a,
            }
        })
    }
    fn dot1(col: &[i8], w: &[i8], acc: i32) -> i32 {
        if w.len() < col.len() {
            return acc;
        }
        col.iter().zip(w).fold(acc, |a, (&x, &v)| a.wrapping_add(x as i32 * v as i32))
    }
}

/// The raw sums `Σ w·x` of every output channel (`folded.len()` of them) for the column
/// `col`, each plus `folded[c]`, given to `keep(c, sum)`.
#[inline(always)]
fn channel_sums<D: Dot>(col: &[i8], w: &[i8], folded: &[i32], mut keep: impl FnMut(usize, i32)) {
    let k = col.len();
    let quads = folded.len() / 4;
    for q in 0..quads {
        let sums = D::dot4(col, &w[4 * q * k..4 * (q + 1) * k], &folded[4 * q..4 * q + 4]);
        for (j, s) in sums.into_iter().enumerate() {
            keep(4 * q + j, s);
        }
    }
    for c in 4 * quads..folded.len() {
        keep(c, D::dot1(col, &w[c * k..(c + 1) * k], folded[c]));
    }
}

/// The receptive field of output `(oy, ox)` of image `x` as raw bytes, padding as `zero`.
fn gather<D: Dot>(p: &Conv2dParams, x: &[i8], (oy, ox): (usize, usize), zero: i8, col: &mut [i8]) {
    let run = p.kernel_w * p.in_c;
    for ky in 0..p.kernel_h {
        let row = &mut col[ky * run..(ky + 1) * run];
        let iy = (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
        if !(0..p.in_h as isize).contains(&iy) {
            row.fill(zero);
            continue;
        }
        let line = &x[iy as usize * p.in_w * p.in_c..(iy as usize + 1) * p.in_w * p.in_c];
        let x0 = (ox * p.stride_w) as isize - p.pad_left as isize;
        if p.dilation_w == 1 && x0 >= 0 && x0 as usize + p.kernel_w <= p.in_w {
            D::copy(&line[x0 as usize * p.in_c..x0 as usize * p.in_c + run], row);
            continue;
        }
        for (kx, values) in row.chunks_exact_mut(p.in_c).enumerate() {
            let ix = x0 + (kx * p.dilation_w) as isize;
            match (0..p.in_w as isize).contains(&ix) {
                true => values.copy_from_slice(&line[ix as usize * p.in_c..(ix as usize + 1) * p.in_c]),
                false => values.fill(zero),
            }
        }
    }
}

/// Scratch bytes [`conv2d_s8`] needs: the column (rounded to 16 bytes), the folded biases and a
/// pooled window's maxima.
pub fn conv_scratch_bytes(p: &Conv2dParams) -> usize {
    if p.groups == 1 {
        (p.kernel_h * p.kernel_w * p.in_c).next_multiple_of(16) + 8 * p.out_c
    } else {
        0
    }
}

/// Splits `scratch` into the column (`k` bytes), the folded biases and the window maxima
/// (`channels` each), or `None` if it is short or misaligned.
#[allow(clippy::type_complexity)]
fn split(scratch: &mut [u8], k: usize, channels: usize) -> Option<(&mut [i8], &mut [i32], &mut [i32])> {
    let (col, rest) = scratch.split_at_mut_checked(k.next_multiple_of(16))?;
    // SAFETY: any bits are a valid i32; `align_to_mut` returns only the aligned middle.
    let (head, words, _) = unsafe { rest.align_to_mut::<i32>() };
    if !head.is_empty() || words.len() < 2 * channels {
        return None;
    }
    let (folded, maxima) = words.split_at_mut(channels);
    // SAFETY: i8 and u8 have the same size, alignment and validity (any bits).
    let col = unsafe { core::slice::from_raw_parts_mut(col.as_mut_ptr().cast::<i8>(), k) };
    Some((col, folded, &mut maxima[..channels]))
}

/// Each channel's bias plus `offset · Σ w`, into `folded`.
fn fold_biases<D: Dot>(w: &[i8], k: usize, bias: Option<&[i32]>, offset: i32, folded: &mut [i32]) {
    for (c, f) in folded.iter_mut().enumerate() {
        *f = bias.map_or(0, |b| b[c]).wrapping_add(offset.wrapping_mul(D::sum(&w[c * k..(c + 1) * k])));
    }
}

/// CONV_2D on int8, optionally followed by a max pool (`pool`, its clamp): see the reference's
/// `conv2d_s8` and `conv2d_maxpool_s8`. Returns `false`, computing nothing, for what it does
/// not take (groups, a pool over a non-monotone requantization, short or misaligned scratch,
/// short operands).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8<D: Dot>(
    p: &Conv2dParams,
    pool: Option<(&Pool2dParams, (i32, i32))>,
    io: &Int8Io,
    requant: &[Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
    scratch: &mut [u8],
) -> bool {
    let k = p.kernel_h * p.kernel_w * p.in_c;
    let monotone = monotone(requant);
    let (oh, ow) = (p.out_h(), p.out_w());
    let out_len = pool.map_or(oh * ow, |(pool, _)| pool.out_h() * pool.out_w()) * p.batch * p.out_c;
    if p.groups != 1
        || k == 0
        || (pool.is_some() && !monotone)
        || x.len() < p.batch * p.in_h * p.in_w * p.in_c
        || w.len() < k * p.out_c
        || y.len() < out_len
        || bias.is_some_and(|b| b.len() < p.out_c)
    {
        return false;
    }
    let Some((col, folded, maxima)) = split(scratch, k, p.out_c) else { return false };
    fold_biases::<D>(w, k, bias, io.input_offset, folded);
    let zero = (-io.input_offset) as i8;
    let image_len = p.in_h * p.in_w * p.in_c;
    for (b, image) in x.chunks_exact(image_len).take(p.batch).enumerate() {
        match pool {
            None => {
                for (i, out) in y[b * oh * ow * p.out_c..].chunks_exact_mut(p.out_c).take(oh * ow).enumerate() {
                    gather::<D>(p, image, (i / ow, i % ow), zero, col);
                    channel_sums::<D>(col, w, folded, |c, s| maxima[c] = s);
                    D::requant(io, maxima, requant, out);
                }
            }
            Some((pool, act)) => {
                let (ph, pw) = (pool.out_h(), pool.out_w());
                for (i, out) in y[b * ph * pw * p.out_c..].chunks_exact_mut(p.out_c).take(ph * pw).enumerate() {
                    let (rows, cols) = pool_window(pool, i / pw, i % pw);
                    if rows.is_empty() || cols.is_empty() {
                        // An all-padding window pools nothing: the clamp's minimum, as the reference.
                        out.fill(act.0 as i8);
                        continue;
                    }
                    maxima.fill(i32::MIN);
                    for cy in rows {
                        for cx in cols.clone() {
                            gather::<D>(p, image, (cy, cx), zero, col);
                            channel_sums::<D>(col, w, folded, |c, s| maxima[c] = maxima[c].max(s));
                        }
                    }
                    for (c, (o, &m)) in out.iter_mut().zip(maxima.iter()).enumerate() {
                        let r = channel_requant(requant, c);
                        *o = match RequantDown::new(io, r, act) {
                            Some(q) => q.apply(m),
                            None => (output(io, m, r) as i32).clamp(act.0, act.1) as i8,
                        };
                    }
                }
            }
        }
    }
    true
}

/// A 1×1 CONV_2D in place (see the reference's `pointwise_conv2d_s8_in_place`): each pixel's
/// inputs copied into the column, then its outputs written over them (`out_c ≤ in_c`: never
/// over a pixel not yet read). Returns `false` for what it does not take.
#[allow(clippy::too_many_arguments)]
pub fn pointwise_s8_in_place<D: Dot>(
    p: &Conv2dParams,
    io: &Int8Io,
    requant: &[Requant],
    xy: &mut [i8],
    w: &[i8],
    bias: Option<&[i32]>,
    scratch: &mut [u8],
) -> bool {
    let (k, pixels) = (p.in_c, p.batch * p.in_h * p.in_w);
    if !crate::reference::int8::pointwise_in_place(p)
        || xy.len() < pixels * k
        || w.len() < k * p.out_c
        || bias.is_some_and(|b| b.len() < p.out_c)
    {
        return false;
    }
    let Some((col, folded, sums)) = split(scratch, k, p.out_c) else { return false };
    fold_biases::<D>(w, k, bias, io.input_offset, folded);
    for i in 0..pixels {
        D::copy(&xy[i * k..(i + 1) * k], col);
        channel_sums::<D>(col, w, folded, |c, s| sums[c] = s);
        D::requant(io, sums, requant, &mut xy[i * p.out_c..(i + 1) * p.out_c]);
    }
    true
}

/// FULLY_CONNECTED on int8: see the reference's `fully_connected_s8`. No scratch: each input row
/// is the column; the weight sums are taken per row of outputs. Returns `false` for short
/// operands.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_s8<D: Dot>(
    batch: usize,
    depth: usize,
    out: usize,
    io: &Int8Io,
    requant: &[Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
) -> bool {
    if depth == 0 || x.len() < batch * depth || w.len() < out * depth || y.len() < batch * out || bias.is_some_and(|b| b.len() < out) {
        return false;
    }
    for (row, ys) in x.chunks_exact(depth).zip(y.chunks_exact_mut(out)).take(batch) {
        let folded = |c: usize| bias.map_or(0, |b| b[c]).wrapping_add(io.input_offset.wrapping_mul(D::sum(&w[c * depth..(c + 1) * depth])));
        let mut c = 0;
        while c + 4 <= out {
            let acc: [i32; 4] = core::array::from_fn(|j| folded(c + j));
            let sums = D::dot4(row, &w[c * depth..(c + 4) * depth], &acc);
            let requant = if requant.len() > 1 { &requant[c.min(requant.len())..] } else { requant };
            D::requant(io, &sums, requant, &mut ys[c..c + 4]);
            c += 4;
        }
        for c in c..out {
            ys[c] = output(io, D::dot1(row, &w[c * depth..(c + 1) * depth], folded(c)), channel_requant(requant, c));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks;

    // Through `Plain`: each instruction set's `Dot` is checked against `Plain` on its own ISA,
    // and the whole kernel on the device (`kcheck`).
    #[test]
    fn conv_and_pool_equal_the_reference() {
        assert!(checks::conv(&conv2d_s8::<Plain>, &conv_scratch_bytes, true).unwrap() > 0);
    }

    #[test]
    fn pointwise_in_place_equals_the_reference() {
        assert!(checks::pointwise_in_place(&pointwise_s8_in_place::<Plain>, &conv_scratch_bytes).unwrap() > 0);
    }

    #[test]
    fn fully_connected_equals_the_reference() {
        assert!(checks::fully_connected(&fully_connected_s8::<Plain>).unwrap() > 0);
    }
}
