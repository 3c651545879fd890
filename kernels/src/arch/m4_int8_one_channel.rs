//! int8 3×3 convolution of a one-channel input (a grayscale image's first layer), stride 1, no
//! padding, optionally with a fused 2×2 max pool, for the DSP extension. The general kernel
//! (`m4_int8`) spends most of its time on such a layer gathering nine-value columns and
//! switching channels; this one reads the input bytes in place. Per output channel and output
//! row, one assembly loop computes two neighbouring outputs at a time: per kernel row one LDR of
//! four input bytes (unaligned: an extra cycle on a real M4 when it straddles a word), two
//! SXTB16 (`v0, v2 | v1, v3`), then `w0·v0 + w2·v2` (SMUAD/SMLAD with the taps `w0, w2` in one
//! register) and the middle tap by a halfword multiply (SMLABB/SMLABT/SMLATB/SMLATT): 21
//! instructions for 18 multiply-accumulates, the weights in registers for the whole row. The
//! input offset is not added per value: `Σ w·(x + offset) = Σ w·x + offset·Σ w`, folded into the
//! bias once per channel (wrapping i32 arithmetic: the reference's sum, bit for bit). A pooled
//! row keeps the larger of each pair's two sums, the larger of two rows is requantized once
//! (monotone requantization, as in `m4_int8`).

#[cfg(not(target_arch = "arm"))]
use super::dsp::{smlad, sxtb16, sxtb16_ror8, word};
use super::requant_down::{monotone, output, RequantDown};
use crate::reference::int8::{channel_requant, Int8Io, Requant};
use crate::reference::{Conv2dParams, Pool2dParams};

/// The longest output row the loop counts (pairs in a halfword).
const MAX_WIDTH: usize = 1 << 15;

/// Whether `p` is a convolution these kernels compute: one input channel, 3×3, stride 1, no
/// dilation, no padding, one group.
fn geometry_fits(p: &Conv2dParams) -> bool {
    p.in_c == 1
        && p.groups == 1
        && (p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w) == (3, 3, 1, 1, 1, 1)
        && (p.pad_top, p.pad_left, p.pad_bottom, p.pad_right) == (0, 0, 0, 0)
        && p.in_h >= 3
        && (3..MAX_WIDTH).contains(&p.in_w)
}

/// Whether `pool` is the 2×2, stride 2, unpadded max pool of `p`'s output.
fn pool_fits(p: &Conv2dParams, pool: &Pool2dParams) -> bool {
    (pool.batch, pool.channels, pool.in_h, pool.in_w) == (p.batch, p.out_c, p.out_h(), p.out_w())
        && (pool.kernel_h, pool.kernel_w, pool.stride_h, pool.stride_w) == (2, 2, 2, 2)
        && (pool.pad_top, pool.pad_left, pool.pad_bottom, pool.pad_right) == (0, 0, 0, 0)
}

/// Scratch bytes [`conv2d_s8`] needs for `p` (one row of i32 sums), or 0 if it never takes `p`.
pub fn scratch_bytes(p: &Conv2dParams) -> usize {
    if geometry_fits(p) {
        4 * (p.out_w() + 1)
    } else {
        0
    }
}

/// One output channel's taps packed for the loop: per kernel row `w0, w2` as i16 halves
/// (`outer`), and the middle taps as halves: row 0's and row 1's in `middle01`, row 2's in the
/// low half of `middle2`.
#[derive(Clone, Copy)]
struct Taps {
    outer: [u32; 3],
    middle01: u32,
    middle2: u32,
}

impl Taps {
    fn new(w: &[i8]) -> Taps {
        let half = |v: i8| v as i16 as u16 as u32;
        Taps {
            outer: core::array::from_fn(|r| half(w[3 * r]) | half(w[3 * r + 2]) << 16),
            middle01: half(w[1]) | half(w[4]) << 16,
            middle2: half(w[7]),
        }
    }

    /// The middle tap of kernel row `r`.
    #[cfg(not(target_arch = "arm"))]
    fn middle(&self, r: usize) -> i32 {
        [self.middle01 as i16, (self.middle01 >> 16) as i16, self.middle2 as i16][r] as i32
    }
}

/// What a row pass keeps of each pair of neighbouring outputs.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    /// Both sums, side by side.
    Both,
    /// The larger (a 2×2 pool's row).
    Larger,
}

/// The sums `Σ w·x` (raw input bytes, no bias) of outputs `2j, 2j + 1` for `j < pairs`, of the
/// output row whose first kernel row starts `rows` (row stride `width`), into `sums` as `keep`
/// says. Reads `rows[..2·width + 2·pairs + 2]`, checked.
fn row_pass(t: &Taps, rows: &[i8], width: usize, pairs: usize, keep: Keep, sums: &mut [i32]) {
    let per_pair = if keep == Keep::Both { 2 } else { 1 };
    if pairs == 0 || pairs > MAX_WIDTH || rows.len() < 2 * width + 2 * pairs + 2 || sums.len() < per_pair * pairs {
        return;
    }
    #[cfg(target_arch = "arm")]
    {
        // The loop count rides in the high half of the register holding row 2's middle tap
        // (SMLABB/SMLABT read its low half): SUBS of 1 << 16 until it turns negative.
        let counted = t.middle2 | ((pairs as u32 - 1) << 16);
        macro_rules! pass {
            ($($keep:literal),*) => {
                // SAFETY: per pair, three LDRs of four bytes at `rows + 2j`, `+ width`, `+ 2·width`
                // (any alignment on v7E-M), all below 2·width + 2·pairs + 2 ≤ rows.len(); stores of
                // `per_pair` words per pair into `sums` (a u32-aligned i32 slice of at least
                // per_pair · pairs); registers otherwise.
                unsafe {
                    core::arch::asm!(
                        "2:",
                        "ldr {e}, [{p}, {width}]",
                        "sxtb16 {o}, {e}, ror #8",
                        "sxtb16 {e}, {e}",
                        "smuad {a0}, {w1}, {e}",
                        "smuad {a1}, {w1}, {o}",
                        "smlatb {a0}, {m01}, {o}, {a0}",
                        "smlatt {a1}, {m01}, {e}, {a1}",
                        "ldr {e}, [{p}, {width}, lsl #1]",
                        "sxtb16 {o}, {e}, ror #8",
                        "sxtb16 {e}, {e}",
                        "smlad {a0}, {w2}, {e}, {a0}",
                        "smlad {a1}, {w2}, {o}, {a1}",
                        "smlabb {a0}, {m2}, {o}, {a0}",
                        "smlabt {a1}, {m2}, {e}, {a1}",
                        "ldr {e}, [{p}], #2",
                        "sxtb16 {o}, {e}, ror #8",
                        "sxtb16 {e}, {e}",
                        "smlad {a0}, {w0}, {e}, {a0}",
                        "smlad {a1}, {w0}, {o}, {a1}",
                        "smlabb {a0}, {m01}, {o}, {a0}",
                        "smlabt {a1}, {m01}, {e}, {a1}",
                        $($keep,)*
                        "subs {m2}, {m2}, #0x10000",
                        "bpl 2b",
                        p = inout(reg) rows.as_ptr() => _,
                        width = in(reg) width,
                        s = inout(reg) sums.as_mut_ptr() => _,
                        w0 = in(reg) t.outer[0],
                        w1 = in(reg) t.outer[1],
                        w2 = in(reg) t.outer[2],
                        m01 = in(reg) t.middle01,
                        m2 = inout(reg) counted => _,
                        e = out(reg) _,
                        o = out(reg) _,
                        a0 = out(reg) _,
                        a1 = out(reg) _,
                        options(nostack),
                    )
                }
            };
        }
        match keep {
            Keep::Both => pass!("strd {a0}, {a1}, [{s}], #8"),
            Keep::Larger => pass!("cmp {a0}, {a1}", "it lt", "movlt {a0}, {a1}", "str {a0}, [{s}], #4"),
        }
    }
    #[cfg(not(target_arch = "arm"))]
    {
        for j in 0..pairs {
            let (mut a0, mut a1) = (0i32, 0i32);
            for r in 0..3 {
                let v = word(&rows[r * width + 2 * j..]);
                let (even, odd) = (sxtb16(v), sxtb16_ror8(v));
                a0 = smlad(t.outer[r], even, a0).wrapping_add(t.middle(r) * (odd as i16 as i32));
                a1 = smlad(t.outer[r], odd, a1).wrapping_add(t.middle(r) * ((even >> 16) as i16 as i32));
            }
            match keep {
                Keep::Both => (sums[2 * j], sums[2 * j + 1]) = (a0, a1),
                Keep::Larger => sums[j] = a0.max(a1),
            }
        }
    }
}

/// `Σ w·x` of output `ox` of the row starting at `rows` (stride `width`), in plain Rust: the
/// odd last output of an unpooled row.
fn sum_at(w: &[i8], rows: &[i8], width: usize, ox: usize) -> i32 {
    (0..9).fold(0i32, |a, k| a.wrapping_add(w[k] as i32 * rows[(k / 3) * width + ox + k % 3] as i32))
}

/// Pooled values `max(upper, lower) + folded` requantized by `q` into every `stride`-th byte of
/// `out` (one channel of a pooled row).
#[inline(never)]
fn store_pooled(upper: &[i32], lower: &[i32], folded: i32, q: &RequantDown, out: &mut [i8], stride: usize) {
    let q = *q;
    let n = upper.len().min(lower.len()).min(out.len().div_ceil(stride.max(1)));
    for i in 0..n {
        out[i * stride] = q.apply(upper[i].max(lower[i]).wrapping_add(folded));
    }
}

/// CONV_2D on int8 (see the reference's `conv2d_s8`, and `conv2d_maxpool_s8` with `pool`) for a
/// one-channel input, 3×3, stride 1, unpadded. Returns `false`, computing nothing, for what it
/// does not take (other geometries, a pool other than 2×2 stride 2, a pool over a non-monotone
/// requantization, short or misaligned scratch, short operands).
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
    let (oh, ow) = (p.out_h(), p.out_w());
    let monotone = monotone(requant);
    let pool_ok = pool.is_none_or(|(pool, _)| pool_fits(p, pool) && monotone);
    let out_len = match pool {
        Some(_) => p.batch * (oh / 2) * (ow / 2) * p.out_c,
        None => p.batch * oh * ow * p.out_c,
    };
    if !geometry_fits(p)
        || !pool_ok
        || x.len() < p.batch * p.in_h * p.in_w
        || w.len() < 9 * p.out_c
        || y.len() < out_len
        || bias.is_some_and(|b| b.len() < p.out_c)
    {
        return false;
    }
    // SAFETY: any bits are a valid i32; `align_to_mut` returns only the aligned middle.
    let (head, sums, _) = unsafe { scratch.align_to_mut::<i32>() };
    if !head.is_empty() || sums.len() < ow + 1 {
        return false;
    }
    let width = p.in_w;
    let plane = p.in_h * width;
    for (c, taps) in w.chunks_exact(9).take(p.out_c).enumerate() {
        let t = Taps::new(taps);
        let tap_sum = taps.iter().fold(0i32, |a, &v| a.wrapping_add(v as i32));
        let folded = bias.map_or(0, |b| b[c]).wrapping_add(io.input_offset.wrapping_mul(tap_sum));
        let r = channel_requant(requant, c);
        for b in 0..p.batch {
            let image = &x[b * plane..(b + 1) * plane];
            match pool {
                Some((_, act)) => {
                    let Some(q) = RequantDown::new(io, r, act) else { return false };
                    let (ph, pw) = (oh / 2, ow / 2);
                    let (upper, lower) = sums.split_at_mut(pw);
                    for py in 0..ph {
                        row_pass(&t, &image[2 * py * width..], width, pw, Keep::Larger, upper);
                        row_pass(&t, &image[(2 * py + 1) * width..], width, pw, Keep::Larger, lower);
                        let out = &mut y[(b * ph + py) * pw * p.out_c + c..];
                        store_pooled(&upper[..pw], &lower[..pw], folded, &q, out, p.out_c);
                    }
                }
                None => {
                    for oy in 0..oh {
                        let rows = &image[oy * width..];
                        row_pass(&t, rows, width, ow / 2, Keep::Both, sums);
                        if ow % 2 == 1 {
                            sums[ow - 1] = sum_at(taps, rows, width, ow - 1);
                        }
                        let out = &mut y[(b * oh + oy) * ow * p.out_c..];
                        for (ox, &s) in sums.iter().take(ow).enumerate() {
                            out[ox * p.out_c + c] = output(io, s.wrapping_add(folded), r);
                        }
                    }
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{fill_bytes, Scratch};
    use crate::reference::int8::{conv2d_maxpool_s8, conv2d_s8 as reference_conv};

    /// Odd and even widths and heights, a batch of two, extreme weights and inputs (−128 and
    /// 127: the sums' range), with and without the pool, against the reference byte for byte.
    fn bytes(n: usize, seed: usize) -> Vec<i8> {
        let mut v = vec![0; n];
        fill_bytes(&mut v, seed);
        v
    }

    #[test]
    fn equals_the_reference() {
        let io = Int8Io { input_offset: 128, output_offset: -5, act_min: -128, act_max: 127 };
        for (n, &(in_h, in_w, out_c)) in [(7, 9, 8), (6, 6, 3), (28, 28, 8), (5, 12, 5), (3, 3, 2), (4, 3, 1)].iter().enumerate() {
            let p = Conv2dParams::plain(2, [1, in_h, in_w], out_c, [3, 3], [1, 1], [0, 0]);
            let mut x = bytes(2 * in_h * in_w, n);
            let mut w = bytes(9 * out_c, n + 9);
            (x[0], x[1], w[0], w[4]) = (-128, 127, -128, 127);
            let bias: Vec<i32> = (0..out_c).map(|c| c as i32 * 977 - 3000).collect();
            let requant: Vec<Requant> = (0..out_c).map(|c| Requant::from_real(0.0004 + 0.00013 * c as f64)).collect();
            let mut scratch = Scratch::new();
            let scratch = scratch.bytes(scratch_bytes(&p));
            let mut want = vec![0i8; 2 * p.out_h() * p.out_w() * out_c];
            reference_conv(&p, &io, &requant, &x, &w, Some(&bias), &mut want);
            let mut got = vec![0i8; want.len()];
            assert!(conv2d_s8(&p, None, &io, &requant, &x, &w, Some(&bias), &mut got, scratch));
            assert_eq!(got, want, "case {n}");
            assert!(want.len() < 4 || want.iter().any(|&v| v != want[0]), "case {n}: a constant output proves nothing");
            if p.out_h() < 2 || p.out_w() < 2 {
                continue;
            }
            let pool = Pool2dParams::plain(2, [out_c, p.out_h(), p.out_w()], [2, 2], [2, 2], [0, 0]);
            let mut want = vec![0i8; 2 * pool.out_h() * pool.out_w() * out_c];
            conv2d_maxpool_s8(&p, &pool, (-100, 120), &io, &requant, &x, &w, None, &mut want);
            let mut got = vec![0i8; want.len()];
            assert!(conv2d_s8(&p, Some((&pool, (-100, 120))), &io, &requant, &x, &w, None, &mut got, scratch));
            assert_eq!(got, want, "case {n}, pooled");
        }
    }

    /// What it does not take it leaves to the general kernel, writing nothing.
    #[test]
    fn refuses_other_geometries() {
        let io = Int8Io { input_offset: 0, output_offset: 0, act_min: -128, act_max: 127 };
        let requant = [Requant::from_real(0.01)];
        let mut scratch = Scratch::new();
        let scratch = scratch.bytes(60);
        let (x, w) = (bytes(2 * 64, 1), bytes(9 * 2, 2));
        let mut y = [7i8; 128];
        let plain = Conv2dParams::plain(1, [1, 8, 8], 1, [3, 3], [1, 1], [0, 0]);
        let padded = Conv2dParams::plain(1, [1, 8, 8], 1, [3, 3], [1, 1], [1, 1]);
        let strided = Conv2dParams::plain(1, [1, 8, 8], 1, [3, 3], [2, 2], [0, 0]);
        let two_channels = Conv2dParams::plain(1, [2, 8, 8], 1, [3, 3], [1, 1], [0, 0]);
        for p in [padded, strided, two_channels] {
            assert!(!conv2d_s8(&p, None, &io, &requant, &x, &w, None, &mut y, scratch));
        }
        let wide_pool = Pool2dParams::plain(1, [1, 6, 6], [3, 3], [3, 3], [0, 0]);
        assert!(!conv2d_s8(&plain, Some((&wide_pool, (-128, 127))), &io, &requant, &x, &w, None, &mut y, scratch));
        let negative = [Requant { multiplier: -(1 << 30), shift: -1 }];
        let pool = Pool2dParams::plain(1, [1, 6, 6], [2, 2], [2, 2], [0, 0]);
        assert!(!conv2d_s8(&plain, Some((&pool, (-128, 127))), &io, &negative, &x, &w, None, &mut y, scratch));
        assert!(!conv2d_s8(&plain, None, &io, &requant, &x, &w, None, &mut y, &mut scratch[..8]));
        assert!(y.iter().all(|&v| v == 7));
    }
}
