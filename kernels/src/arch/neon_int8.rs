//! Neon (aarch64) dot products for the int8 column kernels (`int8_columns`): `Smull`, on every
//! aarch64 core, multiplies 16 int8 pairs into i16 products (SMULL, SMULL2) and adds them
//! pairwise into four i32 lanes (SADALP): 4 instructions per 16 MACs and channel; `Sdot`, on
//! cores with the dot-product extension (Armv8.2-A `dotprod`, checked at run time), does the
//! same in one SDOT. Both are exact integer sums, so any order gives the reference's bits.

use super::int8_columns::Dot;
use core::arch::aarch64::{int32x4_t, vaddvq_s32, vdupq_n_s32, vget_low_s8, vld1q_s8, vmull_high_s8, vmull_s8, vpadalq_s16};

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

impl Dot for Smull {
    fn dot4(col: &[i8], quad: &[i8], acc: &[i32]) -> [i32; 4] {
        dot4_with(col, quad, acc, Self::dot1)
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
}
