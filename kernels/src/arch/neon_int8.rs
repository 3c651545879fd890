//! Neon (aarch64) dot products for the int8 column kernels (`int8_columns`): `Smull`, on every
//! aarch64 core, multiplies 16 int8 pairs into i16 products (SMULL, SMULL2) and adds them
//! pairwise into four i32 lanes (SADALP): 4 instructions per 16 MACs and channel; `Sdot`, on
//! cores with the dot-product extension (Armv8.2-A `dotprod`, checked at run time), does the
//! same in one SDOT. Both are exact integer sums, so any order gives the reference's bits.
//! Both requantize 4 channels per vector (`requant_down`: SQRDMULH, SRSHL, TFLite's rounding).

use super::int8_columns::{requant_vectors, Dot};
use crate::reference::int8::{Int8Io, Requant};
use core::arch::aarch64::{
    int32x4_t, vaddvq_s32, vandq_s32, vcombine_s16, vdupq_n_s32, vget_lane_u32, vget_low_s8, vld1q_s32, vld1q_s8, vld2q_s32, vmaxq_s32,
    vminq_s32, vmovn_s16, vmovn_s32, vmull_high_s8, vmull_s8, vpadalq_s16, vqaddq_s32, vqrdmulhq_s32, vreinterpret_u32_s8, vrshlq_s32,
    vshrq_n_s32,
};

/// Neon without the dot-product extension.
pub struct Smull;

/// Neon with SDOT (`dotprod`): use only where [`sdot_runs_here`] says so.
pub struct Sdot;

/// Whether this CPU has SDOT.
pub fn sdot_runs_here() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}

/// `acc + Σ col·w` with `Σ` over the values after the whole 16-byte chunks.
fn tail(col: &[i8], w: &[i8], from: usize, acc: i32) -> i32 {
    col[from..].iter().zip(&w[from..]).fold(acc, |a, (&x, &v)| a.wrapping_add(x as i32 * v as i32))
}

/// The four lanes of `s` added to `acc` (wrapping, as the instructions).
fn finish(s: int32x4_t, acc: i32) -> i32 {
    // SAFETY: Neon is part of every aarch64 core.
    acc.wrapping_add(unsafe { vaddvq_s32(s) })
}

/// `Σ col·w` over the first `chunks` 16-byte chunks into four i32 lanes, by SMULL and SADALP.
/// The caller checks both slices hold `16 · chunks` values.
#[inline(always)]
unsafe fn smull_chunks(col: &[i8], w: &[i8], chunks: usize) -> int32x4_t {
    let mut s = vdupq_n_s32(0);
    for i in 0..chunks {
        // SAFETY: chunk `i` lies within both slices (the caller's check).
        let (c, v) = unsafe { (vld1q_s8(col.as_ptr().add(16 * i)), vld1q_s8(w.as_ptr().add(16 * i))) };
        s = vpadalq_s16(vpadalq_s16(s, vmull_s8(vget_low_s8(c), vget_low_s8(v))), vmull_high_s8(c, v));
    }
    s
}

/// As [`smull_chunks`], by SDOT.
#[target_feature(enable = "dotprod")]
unsafe fn sdot_chunks(col: &[i8], w: &[i8], chunks: usize) -> int32x4_t {
    let mut s = vdupq_n_s32(0);
    for i in 0..chunks {
        // SAFETY: chunk `i` lies within both slices (the caller's check).
        let (c, v) = unsafe { (vld1q_s8(col.as_ptr().add(16 * i)), vld1q_s8(w.as_ptr().add(16 * i))) };
        // SAFETY: registers only; `dotprod` is enabled for this function (its callers check
        // the CPU has it).
        unsafe {
            core::arch::asm!("sdot {s:v}.4s, {c:v}.16b, {v:v}.16b", s = inout(vreg) s, c = in(vreg) c, v = in(vreg) v, options(pure, nomem, nostack))
        };
    }
    s
}

/// [`Dot::dot1`] through `chunks`, the 16-byte chunk sums of one of the two instructions.
#[inline(always)]
fn dot1_with(col: &[i8], w: &[i8], acc: i32, chunks: impl Fn(&[i8], &[i8], usize) -> int32x4_t) -> i32 {
    let n = col.len();
    if w.len() < n {
        return acc;
    }
    tail(col, w, n / 16 * 16, finish(chunks(col, w, n / 16), acc))
}

/// [`Dot::dot4`] from [`Dot::dot1`] on each row of `quad`.
#[inline(always)]
fn dot4_with(col: &[i8], quad: &[i8], acc: &[i32], dot1: impl Fn(&[i8], &[i8], i32) -> i32) -> [i32; 4] {
    let n = col.len();
    core::array::from_fn(|j| {
        let a = acc.get(j).copied().unwrap_or(0);
        quad.get(j * n..(j + 1) * n).map_or(a, |w| dot1(col, w, a))
    })
}

/// `out[j] = ` the int8 requantization of `sums[j]` by `requant[j]` (per channel, every one
/// shifting right), 4 channels per vector: LD2 splits the multipliers and shifts, SQRDMULH is
/// the rounding doubling high multiply, a saturating −1 on negative values before SRSHL makes
/// its rounding ties go away from zero (TFLite's), then the zero point (SQADD), the clamp
/// (SMAX, SMIN) and two narrowing moves. Returns `false`, writing nothing, unless the three
/// lengths are equal, a multiple of 4, and every requantization is down.
pub fn requant_down(io: &Int8Io, sums: &[i32], requant: &[Requant], out: &mut [i8]) -> bool {
    let n = sums.len();
    if n == 0 || !n.is_multiple_of(4) || requant.len() != n || out.len() != n || !super::requant_down::monotone(requant) {
        return false;
    }
    // SAFETY: Neon is part of every aarch64 core; every load reads 4 sums or 4 requantizations
    // (8 words, `Requant` is repr(C)) at `i < n` with `n` a multiple of 4 (checked).
    unsafe {
        let (offset, lo, hi, floor) =
            (vdupq_n_s32(io.output_offset), vdupq_n_s32(io.act_min.max(-128)), vdupq_n_s32(io.act_max.min(127)), vdupq_n_s32(-31));
        for i in (0..n).step_by(4) {
            let rq = vld2q_s32(requant.as_ptr().add(i).cast::<i32>());
            let high = vqrdmulhq_s32(vld1q_s32(sums.as_ptr().add(i)), rq.0);
            let shift = vmaxq_s32(rq.1, floor);
            let fix = vshrq_n_s32::<31>(vandq_s32(vshrq_n_s32::<31>(shift), high));
            let v = vrshlq_s32(vqaddq_s32(high, fix), shift);
            let v = vminq_s32(vmaxq_s32(vqaddq_s32(v, offset), lo), hi);
            let h = vmovn_s32(v);
            let bytes = vget_lane_u32::<0>(vreinterpret_u32_s8(vmovn_s16(vcombine_s16(h, h))));
            out[i..i + 4].copy_from_slice(&bytes.to_le_bytes().map(|b| b as i8));
        }
    }
    true
}

impl Dot for Smull {
    fn dot4(col: &[i8], quad: &[i8], acc: &[i32]) -> [i32; 4] {
        dot4_with(col, quad, acc, Self::dot1)
    }
    fn requant(io: &Int8Io, sums: &[i32], requant: &[Requant], out: &mut [i8]) {
        requant_vectors(io, sums, requant, out, requant_down);
    }
    fn dot1(col: &[i8], w: &[i8], acc: i32) -> i32 {
        // SAFETY: `dot1_with` passes `n / 16` chunks of slices at least `n` long.
        dot1_with(col, w, acc, |c, v, k| unsafe { smull_chunks(c, v, k) })
    }
}

impl Dot for Sdot {
    fn dot4(col: &[i8], quad: &[i8], acc: &[i32]) -> [i32; 4] {
        dot4_with(col, quad, acc, Self::dot1)
    }
    fn requant(io: &Int8Io, sums: &[i32], requant: &[Requant], out: &mut [i8]) {
        requant_vectors(io, sums, requant, out, requant_down);
    }
    fn dot1(col: &[i8], w: &[i8], acc: i32) -> i32 {
        // SAFETY: as `Smull::dot1`; `Sdot` is used only where `sdot_runs_here` (the dispatch).
        dot1_with(col, w, acc, |c, v, k| unsafe { sdot_chunks(c, v, k) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::int8_columns::Plain;

    /// Both instructions against plain Rust on lengths around the 16-byte chunks, with the
    /// extreme values (−128 · −128 products, wrapping sums).
    #[test]
    fn dot_products_equal_plain_rust() {
        for n in [1, 15, 16, 17, 31, 32, 33, 72, 400] {
            let col: Vec<i8> = (0..n).map(|i| ((i * 37 + 11) % 256) as u8 as i8).collect();
            let mut quad: Vec<i8> = (0..4 * n).map(|i| ((i * 91 + 5) % 256) as u8 as i8).collect();
            quad[..n].fill(-128);
            let col_min = vec![-128i8; n];
            let acc = [7, -9, i32::MAX, i32::MIN];
            for c in [&col, &col_min] {
                let want = Plain::dot4(c, &quad, &acc);
                assert_eq!(Smull::dot4(c, &quad, &acc), want, "SMULL, n = {n}");
                if sdot_runs_here() {
                    assert_eq!(Sdot::dot4(c, &quad, &acc), want, "SDOT, n = {n}");
                }
            }
        }
        println!("SDOT on this CPU: {}", sdot_runs_here());
    }

    /// The vector requantization passes the shared checks (ties, the ends of the i32 range,
    /// shifts 0 to 33) against TFLite's arithmetic.
    #[test]
    fn requantization_is_tflites() {
        let kernel = |io: &Int8Io, sums: &[i32], rq: &[Requant], out: &mut [i8]| assert!(requant_down(io, sums, rq, out));
        assert_eq!(crate::checks::requantization(&kernel), Ok(4096));
    }
}
