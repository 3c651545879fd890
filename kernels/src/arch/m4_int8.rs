//! int8 convolution (with a fused max pool) and fully connected kernels for the DSP extension
//! (Cortex-M4/M7/M33/M55: SXTB16 and SMLAD, through `asm!`; plain Rust that computes the same
//! elsewhere, so the host tests check the logic). For each output pixel the receptive field is
//! gathered once into a column of i16 values with the input offset added (padding: 0), in the
//! order SXTB16 unpacks a weight word (`x0, x2, x1, x3` per group of four); each weight word
//! then feeds two SMLADs per pixel, two channels × two pixels at a time (four accumulators).
//! A max pool is taken over the raw sums and requantized once per pooled value: requantization
//! with a multiplier ≥ 0 and a right shift is monotone, so this is the conv-then-pool result
//! bit for bit (other requantizations take the reference). Integer sums are exact: every
//! result is the reference's.

use crate::reference::int8::{Int8Io, Requant};
use crate::reference::{Conv2dParams, Pool2dParams};

/// The most output channels these kernels take (their sums live on the stack).
const MAX_CHANNELS: usize = 64;

/// SXTB16: bytes 0 and 2 of `x`, sign-extended into the low and high halves.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let r: u32;
        // SAFETY: a register-only DSP instruction (the `dsp` feature is built only for cores with it).
        unsafe { core::arch::asm!("sxtb16 {0}, {1}", out(reg) r, in(reg) x, options(pure, nomem, nostack, preserves_flags)) };
        r
    }
    #[cfg(not(target_arch = "arm"))]
    {
        (x as u8 as i8 as i16 as u16 as u32) | ((((x >> 16) as u8 as i8 as i16) as u16 as u32) << 16)
    }
}

/// SXTB16 of `x` rotated right by 8: bytes 1 and 3.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let r: u32;
        // SAFETY: as `sxtb16`.
        unsafe { core::arch::asm!("sxtb16 {0}, {1}, ror #8", out(reg) r, in(reg) x, options(pure, nomem, nostack, preserves_flags)) };
        r
    }
    #[cfg(not(target_arch = "arm"))]
    {
        sxtb16(x.rotate_right(8))
    }
}

/// SADD16: the i16 halves of `a` and `b` added (wrapping, as the instruction).
#[inline(always)]
fn sadd16(a: u32, b: u32) -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let r: u32;
        // SAFETY: a register-only DSP instruction; it sets the GE flags, which nothing reads.
        unsafe { core::arch::asm!("sadd16 {0}, {1}, {2}", out(reg) r, in(reg) a, in(reg) b, options(pure, nomem, nostack)) };
        r
    }
    #[cfg(not(target_arch = "arm"))]
    {
        let lo = (a as u16).wrapping_add(b as u16) as u32;
        let hi = ((a >> 16) as u16).wrapping_add((b >> 16) as u16) as u32;
        lo | hi << 16
    }
}

/// SMLAD: `acc + lo(a)·lo(b) + hi(a)·hi(b)` on i16 halves (wrapping, as the instruction).
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    #[cfg(target_arch = "arm")]
    {
        let r: i32;
        // SAFETY: a register-only DSP instruction; it may set the Q flag, which nothing reads.
        unsafe {
            core::arch::asm!("smlad {0}, {1}, {2}, {3}", out(reg) r, in(reg) a, in(reg) b, in(reg) acc, options(pure, nomem, nostack))
        };
        r
    }
    #[cfg(not(target_arch = "arm"))]
    {
        let lo = |v: u32| v as u16 as i16 as i32;
        let hi = |v: u32| (v >> 16) as u16 as i16 as i32;
        acc.wrapping_add(lo(a) * lo(b)).wrapping_add(hi(a) * hi(b))
    }
}

/// i32 words of one column of `k` values: two per group of four, the last group padded with 0.
pub const fn column_words(k: usize) -> usize {
    k.div_ceil(4) * 2
}

/// Scratch bytes the convolution needs: two columns.
pub const fn conv_scratch_bytes(k: usize) -> usize {
    2 * 4 * column_words(k)
}

/// Where value `k` of a column goes among its i16 halves (`x0, x2, x1, x3` per group).
#[inline(always)]
fn slot(k: usize) -> usize {
    (k & !3) | [0, 2, 1, 3][k & 3]
}

/// Whether these kernels compute `p` with `requant` (one group, sums and requantization as
/// they need), given `scratch` bytes.
fn takes(p: &Conv2dParams, requant: &[Requant], scratch: usize, pooled: bool) -> bool {
    let k = p.kernel_h * p.kernel_w * p.in_c;
    let monotone = requant.iter().all(|r| r.multiplier >= 0 && r.shift <= 0);
    p.groups == 1 && (p.out_c <= MAX_CHANNELS || !pooled) && scratch >= conv_scratch_bytes(k) && (monotone || !pooled)
}

/// The receptive field of output `(b, oy, ox)` with the input offset added, into `col` (its
/// padding halves are left as they are: 0).
#[inline(always)]
fn gather(p: &Conv2dParams, offset: i32, x: &[i8], b: usize, oy: usize, ox: usize, col: &mut [u32]) {
    let run = p.kernel_w * p.in_c;
    let offsets = (offset as u16 as u32) * 0x1_0001;
    for ky in 0..p.kernel_h {
        let iy = (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
        let x0 = (ox * p.stride_w) as isize - p.pad_left as isize;
        let row_inside = (0..p.in_h as isize).contains(&iy);
        let k0 = ky * run;
        if row_inside && p.dilation_w == 1 && x0 >= 0 && x0 as usize + p.kernel_w <= p.in_w {
            // The kernel row lies inside the input: one contiguous run.
            let start = ((b * p.in_h + iy as usize) * p.in_w + x0 as usize) * p.in_c;
            let values = &x[start..start + run];
            if run.is_multiple_of(4) && k0.is_multiple_of(4) {
                // Whole groups: a word of four values becomes two column words.
                let out = &mut col[k0 / 2..k0 / 2 + run / 2];
                for (four, pair) in values.chunks_exact(4).zip(out.chunks_exact_mut(2)) {
                    let word = u32::from_le_bytes([four[0] as u8, four[1] as u8, four[2] as u8, four[3] as u8]);
                    pair[0] = sadd16(sxtb16(word), offsets);
                    pair[1] = sadd16(sxtb16_ror8(word), offsets);
                }
            } else {
                let col = halves(col);
                for (j, &v) in values.iter().enumerate() {
                    col[slot(k0 + j)] = (v as i32 + offset) as i16;
                }
            }
            continue;
        }
        let col = halves(col);
        for kx in 0..p.kernel_w {
            let ix = x0 + (kx * p.dilation_w) as isize;
            let inside = row_inside && (0..p.in_w as isize).contains(&ix);
            for ic in 0..p.in_c {
                let v = if inside { x[((b * p.in_h + iy as usize) * p.in_w + ix as usize) * p.in_c + ic] as i32 + offset } else { 0 };
                col[slot(k0 + kx * p.in_c + ic)] = v as i16;
            }
        }
    }
}

/// The raw sums (bias included) of every channel of `w` (`sums.len()` rows of `k`) for two
/// columns, into `sums`.
#[inline(always)]
fn accumulate(k: usize, cols: [&[u32]; 2], w: &[i8], bias: Option<&[i32]>, sums: &mut [[i32; 2]]) {
    let (groups, tail) = (k / 4, k % 4);
    let bias_of = |c: usize| bias.map_or(0, |b| b[c]);
    let word = |b: &[i8]| u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]);
    // The last, partial group of channel `c`'s weights, zero-filled (its column halves are 0).
    let tail_word = |c: usize| (0..tail).fold(0u32, |v, j| v | (w[c * k + 4 * groups + j] as u8 as u32) << (8 * j));
    let (col0, col1) = (&cols[0][..2 * k.div_ceil(4)], &cols[1][..2 * k.div_ceil(4)]);
    let channels = sums.len();
    let mut c = 0;
    while c + 2 <= channels {
        let (mut a00, mut a01, mut a10, mut a11) = (bias_of(c), bias_of(c), bias_of(c + 1), bias_of(c + 1));
        let (wa, wb) = (&w[c * k..c * k + 4 * groups], &w[(c + 1) * k..(c + 1) * k + 4 * groups]);
        let mut step = |w0: u32, w1: u32, x0: &[u32], x1: &[u32]| {
            let (w0e, w0o, w1e, w1o) = (sxtb16(w0), sxtb16_ror8(w0), sxtb16(w1), sxtb16_ror8(w1));
            a00 = smlad(w0o, x0[1], smlad(w0e, x0[0], a00));
            a01 = smlad(w0o, x1[1], smlad(w0e, x1[0], a01));
            a10 = smlad(w1o, x0[1], smlad(w1e, x0[0], a10));
            a11 = smlad(w1o, x1[1], smlad(w1e, x1[0], a11));
        };
        for (((wa, wb), x0), x1) in wa.chunks_exact(4).zip(wb.chunks_exact(4)).zip(col0.chunks_exact(2)).zip(col1.chunks_exact(2)) {
            step(word(wa), word(wb), x0, x1);
        }
        if tail > 0 {
            step(tail_word(c), tail_word(c + 1), &col0[2 * groups..], &col1[2 * groups..]);
        }
        sums[c] = [a00, a01];
        sums[c + 1] = [a10, a11];
        c += 2;
    }
    if c < channels {
        let (mut a0, mut a1) = (bias_of(c), bias_of(c));
        let mut step = |w0: u32, x0: &[u32], x1: &[u32]| {
            let (we, wo) = (sxtb16(w0), sxtb16_ror8(w0));
            a0 = smlad(wo, x0[1], smlad(we, x0[0], a0));
            a1 = smlad(wo, x1[1], smlad(we, x1[0], a1));
        };
        for ((wa, x0), x1) in w[c * k..c * k + 4 * groups].chunks_exact(4).zip(col0.chunks_exact(2)).zip(col1.chunks_exact(2)) {
            step(word(wa), x0, x1);
        }
        if tail > 0 {
            step(tail_word(c), &col0[2 * groups..], &col1[2 * groups..]);
        }
        sums[c] = [a0, a1];
    }
}

/// The two columns in `scratch` (i16 views of the same words), or `None` if it is misaligned.
fn columns(scratch: &mut [u8], k: usize) -> Option<(&mut [u32], &mut [u32])> {
    // SAFETY: any bits are a valid u32; `align_to_mut` returns only the aligned middle.
    let (head, words, _) = unsafe { scratch.align_to_mut::<u32>() };
    let n = column_words(k);
    if !head.is_empty() || words.len() < 2 * n {
        return None;
    }
    let (a, b) = words[..2 * n].split_at_mut(n);
    // The last group's padding halves stay 0 (gathering writes only the k values).
    a.fill(0);
    b.fill(0);
    Some((a, b))
}

/// `col` as i16 halves.
fn halves(col: &mut [u32]) -> &mut [i16] {
    // SAFETY: two i16 per u32, any bits valid, i16 alignment ≤ u32's.
    unsafe { core::slice::from_raw_parts_mut(col.as_mut_ptr().cast::<i16>(), col.len() * 2) }
}

/// CONV_2D on int8, optionally followed by a max pool (`pool`, its clamp): see the reference's
/// `conv2d_s8` and `conv2d_maxpool_s8`. Returns `false`, computing nothing, for what it does
/// not take (groups, a pool over more than 64 channels or a non-monotone requantization, too
/// little scratch).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8(
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
    if !takes(p, requant, scratch.len(), pool.is_some()) {
        return false;
    }
    let Some((col0, col1)) = columns(scratch, k) else { return false };
    let requant_of = |c: usize| requant.get(c).or(requant.first()).copied().unwrap_or_default();
    let mut sums = [[0i32; 2]; MAX_CHANNELS];
    // Gathers the columns of two outputs (the same one twice for an odd last one).
    let gather_pair = |at: [(usize, usize, usize); 2], col0: &mut [u32], col1: &mut [u32]| {
        gather(p, io.input_offset, x, at[0].0, at[0].1, at[0].2, col0);
        gather(p, io.input_offset, x, at[1].0, at[1].1, at[1].2, col1);
    };
    let (oh, ow) = (p.out_h(), p.out_w());
    match pool {
        None => {
            let total = p.batch * oh * ow;
            let position = |i: usize| (i / (oh * ow), i / ow % oh, i % ow);
            let mut i = 0;
            while i < total {
                let second = (i + 1).min(total - 1);
                gather_pair([position(i), position(second)], col0, col1);
                let cols = [&*col0, &*col1];
                // Channels in chunks of the sums' size.
                for first in (0..p.out_c).step_by(MAX_CHANNELS) {
                    let n = MAX_CHANNELS.min(p.out_c - first);
                    accumulate(k, cols, &w[first * k..], bias.map(|b| &b[first..]), &mut sums[..n]);
                    for (c, s) in (first..).zip(&sums[..n]) {
                        y[i * p.out_c + c] = io.output(s[0], requant_of(c));
                        if second != i {
                            y[second * p.out_c + c] = io.output(s[1], requant_of(c));
                        }
                    }
                }
                i += 2;
            }
        }
        Some((pool, act)) => {
            let (ph, pw) = (pool.out_h(), pool.out_w());
            let mut max = [i32::MIN; MAX_CHANNELS];
            for b in 0..p.batch {
                for py in 0..ph {
                    for px in 0..pw {
                        let (rows, cols) = crate::reference::int8::pool_window(pool, py, px);
                        let (width, count) = (cols.len(), rows.len() * cols.len());
                        let position = |i: usize| (b, rows.start + i / width, cols.start + i % width);
                        max[..p.out_c].fill(i32::MIN);
                        let mut i = 0;
                        while i < count {
                            let second = (i + 1).min(count - 1);
                            gather_pair([position(i), position(second)], col0, col1);
                            let cols = [&*col0, &*col1];
                            accumulate(k, cols, w, bias, &mut sums[..p.out_c]);
                            for (m, s) in max.iter_mut().zip(&sums[..p.out_c]) {
                                *m = (*m).max(s[0]).max(s[1]);
                            }
                            i += 2;
                        }
                        let at = ((b * ph + py) * pw + px) * p.out_c;
                        for (c, &m) in max[..p.out_c].iter().enumerate() {
                            // An all-padding window pools nothing: the clamp's minimum, as the reference.
                            let v = if count == 0 { act.0 } else { io.output(m, requant_of(c)) as i32 };
                            y[at + c] = v.clamp(act.0, act.1) as i8;
                        }
                    }
                }
            }
        }
    }
    true
}

/// FULLY_CONNECTED on int8: see the reference's `fully_connected_s8`; rows taken two at a
/// time as the convolution's pixels. Returns `false` for what it does not take.
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
    scratch: &mut [u8],
) -> bool {
    let p = Conv2dParams::plain(batch, [depth, 1, 1], out, [1, 1], [1, 1], [0, 0]);
    conv2d_s8(&p, None, io, requant, x, w, bias, y, scratch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::int8::{conv2d_maxpool_s8, conv2d_s8 as reference_conv, fully_connected_s8 as reference_fc};

    fn bytes(n: usize, seed: usize) -> Vec<i8> {
        (0..n).map(|i| ((i * 7919 + seed * 104_729) % 251) as u8 as i8).collect()
    }

    fn requants(n: usize) -> Vec<Requant> {
        (0..n).map(|c| Requant::from_real(0.004 + 0.0013 * c as f64)).collect()
    }

    /// Odd shapes against the reference, byte for byte: K with a tail of 0 to 3 values, odd
    /// channel and pixel counts, stride, padding on each side, dilation, pooled with padding.
    #[test]
    fn conv_and_pool_equal_the_reference() {
        let io = Int8Io { input_offset: 17, output_offset: -5, act_min: -128, act_max: 127 };
        let cases = [
            // (in_c, in_h, in_w, out_c, kh, kw, stride, pad [t, l, b, r], dilation)
            (1, 7, 9, 8, 3, 3, 1, [0, 0, 0, 0], 1),
            (8, 6, 5, 16, 3, 3, 1, [0, 0, 0, 0], 1),
            (3, 8, 7, 5, 3, 2, 2, [1, 0, 1, 1], 1),
            (2, 9, 9, 3, 2, 3, 1, [2, 1, 0, 1], 2),
            (5, 4, 6, 7, 1, 1, 1, [0, 0, 0, 0], 1),
            (7, 3, 4, 9, 1, 1, 1, [0, 0, 0, 0], 1),
        ];
        for (n, &(in_c, in_h, in_w, out_c, kh, kw, stride, pad, dil)) in cases.iter().enumerate() {
            let p = Conv2dParams {
                pad_top: pad[0],
                pad_left: pad[1],
                pad_bottom: pad[2],
                pad_right: pad[3],
                dilation_h: dil,
                dilation_w: dil,
                ..Conv2dParams::plain(2, [in_c, in_h, in_w], out_c, [kh, kw], [stride, stride], [0, 0])
            };
            let (x, w) = (bytes(2 * in_h * in_w * in_c, n), bytes(out_c * kh * kw * in_c, n + 9));
            let bias: Vec<i32> = (0..out_c).map(|c| c as i32 * 977 - 3000).collect();
            let rq = requants(out_c);
            let mut scratch = vec![0u8; conv_scratch_bytes(kh * kw * in_c) + 4];
            let (oh, ow) = (p.out_h(), p.out_w());
            let mut want = vec![0i8; 2 * oh * ow * out_c];
            reference_conv(&p, &io, &rq, &x, &w, Some(&bias), &mut want);
            let mut got = vec![0i8; want.len()];
            assert!(conv2d_s8(&p, None, &io, &rq, &x, &w, Some(&bias), &mut got, &mut scratch[..]));
            assert_eq!(got, want, "case {n}");
            assert!(want.iter().any(|&v| v != want[0]), "case {n}: a constant output would prove nothing");
            // Pooled 2×2, stride 2, one padded column and row at the end.
            let mut pool = Pool2dParams::plain(2, [out_c, oh, ow], [2, 2], [2, 2], [0, 0]);
            (pool.pad_bottom, pool.pad_right) = (1, 1);
            let mut want = vec![0i8; 2 * pool.out_h() * pool.out_w() * out_c];
            conv2d_maxpool_s8(&p, &pool, (-100, 120), &io, &rq, &x, &w, Some(&bias), &mut want);
            let mut got = vec![0i8; want.len()];
            assert!(conv2d_s8(&p, Some((&pool, (-100, 120))), &io, &rq, &x, &w, Some(&bias), &mut got, &mut scratch[..]));
            assert_eq!(got, want, "case {n}, pooled");
            // Misaligned or short scratch: refused, nothing computed.
            assert!(!conv2d_s8(&p, None, &io, &rq, &x, &w, Some(&bias), &mut got, &mut scratch[1..]));
        }
    }

    /// Fully connected with more than 64 outputs and an odd depth, no bias.
    #[test]
    fn fully_connected_equals_the_reference() {
        let io = Int8Io { input_offset: -3, output_offset: 9, act_min: -128, act_max: 127 };
        let (batch, depth, out) = (3, 37, 70);
        let (x, w) = (bytes(batch * depth, 1), bytes(out * depth, 2));
        let rq = requants(1);
        let mut want = vec![0i8; batch * out];
        reference_fc(batch, depth, out, &io, &rq, &x, &w, None, &mut want);
        let mut got = vec![0i8; batch * out];
        let mut scratch = vec![0u32; column_words(depth) * 2];
        // SAFETY: u32 memory viewed as bytes.
        let scratch = unsafe { core::slice::from_raw_parts_mut(scratch.as_mut_ptr().cast::<u8>(), scratch.len() * 4) };
        assert!(fully_connected_s8(batch, depth, out, &io, &rq, &x, &w, None, &mut got, scratch));
        assert_eq!(got, want);
    }
}
