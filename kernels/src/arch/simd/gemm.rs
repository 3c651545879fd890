//! The gemm at any vector width, with the reference's signature (the linear layers' forward
//! and both backward products, the host convolution's products). Cases it does not speed up
//! (both operands transposed, short slices) go to the reference.
//!
//! `x · Wᵀ` (`b` transposed): four dot products at once, each loaded `x` vector feeding four
//! FMAs. `c += a · b` and `c += aᵀ · b`: register blocks of 4 rows × 2 vectors of the output
//! (16 or 32 columns; 8 accumulators) summed over the whole `k` before one store, each loaded
//! `b` vector feeding 4 FMAs; the last columns as masked blocks. The operands of these shapes
//! (the conv and linear layers of small models) fit in L1/L2, so no packing is done.

use super::Simd;
use crate::reference::{self, Transpose};

/// Outputs (dot products) handled together, and rows of an output register block.
const BLOCK: usize = 4;

/// The product at width `S`.
///
/// # Safety
/// The CPU must support `S`'s features.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn gemm<S: Simd>(t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    let fits = |len: usize, r: usize, s: usize| r.checked_mul(s).is_some_and(|need| len >= need);
    if (t.a && t.b) || !fits(a.len(), m, k) || !fits(b.len(), k, n) || !fits(c.len(), m, n) {
        return reference::gemm_f32(t, m, n, k, a, b, c, accumulate);
    }
    let c = &mut c[..m * n];
    if !accumulate {
        c.fill(0.0);
    }
    if t.b {
        // a [m, k] and b [n, k]: each output is the dot product of two contiguous rows.
        for (a_row, c_row) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)).take(m) {
            let mut j = 0;
            while j + BLOCK <= n {
                let rows = [0, 1, 2, 3].map(|q| &b[(j + q) * k..(j + q + 1) * k]);
                // SAFETY: S's features (the caller's).
                for (o, d) in c_row[j..j + BLOCK].iter_mut().zip(unsafe { dot4::<S>(a_row, rows) }) {
                    *o += d;
                }
                j += BLOCK;
            }
            for (jj, o) in c_row.iter_mut().enumerate().skip(j) {
                *o += dot_tail(a_row, &b[jj * k..(jj + 1) * k], 0);
            }
        }
    } else {
        // b [k, n]: register blocks of the output, each b vector feeding several rows.
        let (row_step, col_step) = if t.a { (1, m) } else { (k, 1) };
        let mut ops = Operands { n, k, a, row_step, col_step, b, b_rows: None, c };
        // SAFETY: a holds m·k values, b k·n and c m·n (checked above); S's features.
        unsafe { gemm_blocked::<S>(m, &mut ops) };
    }
}

/// The operands of [`gemm_blocked`]: `A[i, p] = a[i·row_step + p·col_step]`, `b`'s row `p`
/// from `b_rows[p]` (else `p·n`), `c` `[m, n]`.
pub(super) struct Operands<'a> {
    pub n: usize,
    pub k: usize,
    pub a: &'a [f32],
    pub row_step: usize,
    pub col_step: usize,
    pub b: &'a [f32],
    pub b_rows: Option<&'a [usize]>,
    pub c: &'a mut [f32],
}

/// `c[m, n] += A · B` in register blocks: 4 rows × 2 vectors, then 4 rows × 1 vector, then a
/// masked vector for the last columns; leftover rows one at a time.
///
/// # Safety
/// `S`'s features; `ops` holds every value of `m` rows.
#[inline(always)]
pub(super) unsafe fn gemm_blocked<S: Simd>(m: usize, ops: &mut Operands) {
    let (n, lanes) = (ops.n, S::LANES);
    let mut i = 0;
    while i < m {
        let rows = if i + BLOCK <= m { BLOCK } else { 1 };
        let mut j = 0;
        // SAFETY: each block's rows i..i + rows ≤ m and columns (its masked lanes) j.. ≤ n lie
        // inside the operands; S's features are the caller's.
        unsafe {
            // Unmasked blocks ignore the mask.
            let unused = S::first(0);
            while j + 2 * lanes <= n {
                block_rows::<S, 2, false>(rows, i, j, ops, unused);
                j += 2 * lanes;
            }
            if j + lanes <= n {
                block_rows::<S, 1, false>(rows, i, j, ops, unused);
                j += lanes;
            }
            if j < n {
                block_rows::<S, 1, true>(rows, i, j, ops, S::first(n - j));
            }
        }
        i += rows;
    }
}

/// Where row `p` of `b` starts.
#[inline(always)]
fn b_row(b_rows: Option<&[usize]>, n: usize, p: usize) -> usize {
    b_rows.map_or(p * n, |rows| rows[p])
}

/// [`block`] with `rows` (4 or 1) rows.
///
/// # Safety
/// As [`block`].
#[inline(always)]
unsafe fn block_rows<S: Simd, const V: usize, const MASKED: bool>(rows: usize, i: usize, j: usize, ops: &mut Operands, mask: S::Mask) {
    // SAFETY: the caller's.
    unsafe {
        match rows {
            BLOCK => block::<S, BLOCK, V, MASKED>(i, j, ops, mask),
            _ => block::<S, 1, V, MASKED>(i, j, ops, mask),
        }
    }
}

/// The output block rows `i..i + R`, columns `j..j + V·LANES`: loaded once, summed over all
/// `k` in registers, stored once. `MASKED` (with `V` = 1): only the lanes of `mask`.
///
/// # Safety
/// `S`'s features; the block (its masked lanes) lies inside `c`, and `a`, `b` hold what it
/// reads.
#[inline(always)]
unsafe fn block<S: Simd, const R: usize, const V: usize, const MASKED: bool>(i: usize, j: usize, ops: &mut Operands, mask: S::Mask) {
    let Operands { n, k, row_step, col_step, b_rows, .. } = *ops;
    // SAFETY: the caller guarantees every offset below (every masked lane) is inside its slice.
    unsafe {
        let (a, b, c) = (ops.a.as_ptr(), ops.b.as_ptr(), ops.c.as_mut_ptr());
        let load = |at: *const f32| if MASKED { S::load_masked(at, mask) } else { S::load(at) };
        let mut acc = [[S::splat(0.0); V]; R];
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, lane) in row.iter_mut().enumerate() {
                *lane = load(c.add((i + r) * n + j + v * S::LANES));
            }
        }
        for p in 0..k {
            let mut bv = [S::splat(0.0); V];
            for (v, lane) in bv.iter_mut().enumerate() {
                *lane = load(b.add(b_row(b_rows, n, p) + j + v * S::LANES));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = S::splat(*a.add((i + r) * row_step + p * col_step));
                for (lane, &bl) in row.iter_mut().zip(&bv) {
                    *lane = S::fmadd(av, bl, *lane);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, lane) in row.iter().enumerate() {
                let at = c.add((i + r) * n + j + v * S::LANES);
                if MASKED {
                    S::store_masked(at, mask, *lane);
                } else {
                    S::store(at, *lane);
                }
            }
        }
    }
}

/// The dot products of `a` with four rows of its length.
///
/// # Safety
/// `S`'s features.
#[inline(always)]
unsafe fn dot4<S: Simd>(a: &[f32], rows: [&[f32]; BLOCK]) -> [f32; BLOCK] {
    let k = a.len();
    let rows = rows.map(|r| &r[..k]);
    let body = k - k % S::LANES;
    // SAFETY: p + LANES ≤ body ≤ k, the length of `a` and of every row; S's features.
    unsafe {
        let mut acc = [S::splat(0.0); BLOCK];
        let mut p = 0;
        while p < body {
            let av = S::load(a.as_ptr().add(p));
            for (s, r) in acc.iter_mut().zip(rows) {
                *s = S::fmadd(av, S::load(r.as_ptr().add(p)), *s);
            }
            p += S::LANES;
        }
        let mut out = [0.0; BLOCK];
        for ((o, s), r) in out.iter_mut().zip(acc).zip(rows) {
            *o = S::sum(s) + dot_tail(a, r, body);
        }
        out
    }
}

/// `Σ a[p]·b[p]` for `p` from `from` to the end, scalar.
fn dot_tail(a: &[f32], b: &[f32], from: usize) -> f32 {
    a[from..].iter().zip(&b[from..]).fold(0.0, |s, (&x, &y)| s + x * y)
}

#[cfg(test)]
mod tests {
    use super::super::{gemm_f32, Width};
    use super::*;
    use std::vec::Vec;

    fn values(seed: u32, n: usize) -> Vec<f32> {
        crate::test_values(seed, n).collect()
    }

    /// Against the reference, every transposition case, odd sizes and tails (k and n not
    /// multiples of 8 or 4), with and without accumulation. Tolerance: both add the same k
    /// products (and the value accumulated into) in different orders, FMA rounding once per
    /// product, so each is within (k+1)·u·(Σ|a·b| + |c₀|) of the exact result (u = 2⁻²⁴, the
    /// standard bound of recursive summation); they are within twice that, (k+1)·ε·(…) with
    /// ε = 2⁻²³, of each other.
    #[test]
    fn matches_the_reference_within_the_summation_bound() {
        let widths: Vec<Width> = Width::available().collect();
        std::println!("widths on this CPU: {widths:?}");
        let mut checked = 0;
        let shapes = [(1, 1, 1), (3, 5, 7), (2, 9, 8), (5, 17, 33), (4, 4, 4), (7, 130, 65), (64, 10, 128), (6, 75, 20)];
        for ((m, n, k), width) in shapes.into_iter().flat_map(|s| widths.iter().map(move |&w| (s, w))) {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (values(m as u32 * 7 + k as u32, m * k), values(n as u32 * 13 + k as u32, k * n));
                for accumulate in [false, true] {
                    let start = values(99, m * n);
                    let (mut want, mut got) = (start.clone(), start.clone());
                    let t = Transpose { a: ta, b: tb };
                    reference::gemm_f32(t, m, n, k, &a, &b, &mut want, accumulate);
                    // SAFETY: the width runs on this CPU.
                    unsafe { gemm_f32(width, t, m, n, k, &a, &b, &mut got, accumulate) };
                    for i in 0..m {
                        for j in 0..n {
                            let a_at = |p: usize| if ta { a[p * m + i] } else { a[i * k + p] };
                            let b_at = |p: usize| if tb { b[j * k + p] } else { b[p * n + j] };
                            let abs: f32 = (0..k).map(|p| (a_at(p) * b_at(p)).abs()).sum();
                            let c0 = if accumulate { start[i * n + j].abs() } else { 0.0 };
                            let bound = (k + 1) as f32 * f32::EPSILON * (abs + c0);
                            let (w, g) = (want[i * n + j], got[i * n + j]);
                            assert!((w - g).abs() <= bound, "m{m} n{n} k{k} ta{ta} tb{tb} acc{accumulate} {width:?} [{i},{j}]: {w} vs {g}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 6000 * widths.len(), "{checked}");
    }
}
