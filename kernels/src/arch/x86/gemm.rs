//! `gemm_f32` with AVX2 and FMA, with the reference's signature
//! (the linear layers' forward and both backward products). Cases it does not speed up
//! (both operands transposed, short slices) go to the reference.
//!
//! Register blocking: `x · Wᵀ` computes four outputs at once (each loaded `x` vector feeds
//! four FMAs), and `c += a · b` updates an 8-wide slice of an output row with four rows of
//! `b` before storing it (a quarter of the loads and stores of one row at a time).

use crate::reference::{self, Transpose};
use core::arch::x86_64::{
    __m256, __m256i, _mm256_castps256_ps128, _mm256_cmpgt_epi32, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps,
    _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32, _mm256_setzero_ps, _mm256_storeu_ps,
    _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
};

/// Lanes of one AVX register of f32.
const LANES: usize = 8;
/// Outputs (dot products) or `b` rows (updates) handled together.
const BLOCK: usize = 4;

/// `c[m, n] = op(a) · op(b)` (or `+=`), as [`reference::gemm_f32`].
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm_f32(t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
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
                for (o, d) in c_row[j..j + BLOCK].iter_mut().zip(dot4(a_row, rows)) {
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
        // SAFETY: a holds m·k values, b k·n and c m·n (checked above), and AVX2 and FMA are
        // available (this function's contract).
        unsafe { gemm_blocked(m, n, k, a, row_step, col_step, b, None, c) };
    }
}

/// The operands of [`gemm_blocked`]: `A[i, p] = a[i·row_step + p·col_step]`, `b`'s row `p`
/// from `b_rows[p]` (else `p·n`), `c` `[m, n]`.
struct Operands<'a> {
    n: usize,
    k: usize,
    a: &'a [f32],
    row_step: usize,
    col_step: usize,
    b: &'a [f32],
    b_rows: Option<&'a [usize]>,
    c: &'a mut [f32],
}

/// Rows of the output in one register block of [`gemm_blocked`].
const ROWS: usize = 4;

/// `c[m, n] += A · b` where `A[i, p] = a[i·row_step + p·col_step]` and `b` is `[k, n]`: blocks
/// of 4 rows × 16 columns (8 accumulators) stay in registers over the whole `k`, each loaded
/// `b` vector feeding 4 FMAs, then 4 × 8 blocks, then scalar columns; leftover rows in blocks
/// of one row.
///
/// # Safety
/// AVX2 and FMA; `a` holds every `A[i, p]`, `b` `k·n` values, `c` `m·n`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_blocked(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    row_step: usize,
    col_step: usize,
    b: &[f32],
    b_rows: Option<&[usize]>,
    c: &mut [f32],
) {
    let mut ops = Operands { n, k, a, row_step, col_step, b, b_rows, c };
    let mut i = 0;
    while i < m {
        let rows = if i + ROWS <= m { ROWS } else { 1 };
        let mut j = 0;
        let all = _mm256_set1_epi32(-1);
        while j + 2 * LANES <= n {
            // SAFETY: rows i..i + rows ≤ m and columns j..j + 16 ≤ n lie inside the caller's
            // slices.
            unsafe { block_dispatch::<2, false>(rows, i, j, &mut ops, all) };
            j += 2 * LANES;
        }
        if j + LANES <= n {
            // SAFETY: as above, columns j..j + 8 ≤ n.
            unsafe { block_dispatch::<1, false>(rows, i, j, &mut ops, all) };
            j += LANES;
        }
        if j < n {
            // The last n − j < 8 columns: masked loads and stores touch only them.
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((n - j) as i32), lanes);
            // SAFETY: as above, the masked columns j..n only.
            unsafe { block_dispatch::<1, true>(rows, i, j, &mut ops, mask) };
        }
        i += rows;
    }
}

/// Where row `p` of `b` starts: at `b_rows[p]` when given (rows read in place from a larger
/// tensor), else at `p·n`.
#[inline(always)]
fn b_row(b_rows: Option<&[usize]>, n: usize, p: usize) -> usize {
    b_rows.map_or(p * n, |rows| rows[p])
}

/// `c[m, n] += a · B` with `a` `[m, k]` and row `p` of `B` the `n` values of `b` from
/// `b_rows[p]` on: a convolution's taps read straight from its input, without im2col.
///
/// # Safety
/// AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm_rows(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], b_rows: &[usize], c: &mut [f32]) -> bool {
    let fits = a.len() >= m * k && c.len() >= m * n && b_rows.len() >= k && b_rows[..k].iter().all(|&r| r + n <= b.len());
    if fits {
        // SAFETY: the sizes were checked above; AVX2 and FMA are this function's contract.
        unsafe { gemm_blocked(m, n, k, a, k, 1, b, Some(b_rows), c) };
    }
    fits
}

/// [`block`] with `rows` (4 or 1) rows.
///
/// # Safety
/// As [`block`].
#[inline(always)]
unsafe fn block_dispatch<const V: usize, const MASKED: bool>(rows: usize, i: usize, j: usize, ops: &mut Operands, mask: __m256i) {
    // SAFETY: the caller's.
    unsafe {
        match rows {
            ROWS => block::<ROWS, V, MASKED>(i, j, ops, mask),
            _ => block::<1, V, MASKED>(i, j, ops, mask),
        }
    }
}

/// The output block rows `i..i + R`, columns `j..j + 8·V`: loaded once, summed over all `k` in
/// registers, stored once. `MASKED` (with `V` = 1): only the lanes of `mask` are read and
/// written.
///
/// # Safety
/// AVX2 and FMA; the block (its masked lanes) lies inside `c` (`[m, n]`), and `a`, `b` hold
/// what it reads.
#[inline(always)]
unsafe fn block<const R: usize, const V: usize, const MASKED: bool>(i: usize, j: usize, ops: &mut Operands, mask: __m256i) {
    let Operands { n, k, row_step, col_step, b_rows, .. } = *ops;
    // SAFETY: the caller guarantees every offset below (every masked lane) is inside its slice.
    unsafe {
        let (a, b, c) = (ops.a.as_ptr(), ops.b.as_ptr(), ops.c.as_mut_ptr());
        let load = |at: *const f32| if MASKED { _mm256_maskload_ps(at, mask) } else { _mm256_loadu_ps(at) };
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        for (r, row) in acc.iter_mut().enumerate() {
            for (v, lane) in row.iter_mut().enumerate() {
                *lane = load(c.add((i + r) * n + j + v * LANES));
            }
        }
        for p in 0..k {
            let mut bv = [_mm256_setzero_ps(); V];
            for (v, lane) in bv.iter_mut().enumerate() {
                *lane = load(b.add(b_row(b_rows, n, p) + j + v * LANES));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm256_set1_ps(*a.add((i + r) * row_step + p * col_step));
                for (lane, &bl) in row.iter_mut().zip(&bv) {
                    *lane = _mm256_fmadd_ps(av, bl, *lane);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, lane) in row.iter().enumerate() {
                let at = c.add((i + r) * n + j + v * LANES);
                if MASKED {
                    _mm256_maskstore_ps(at, mask, *lane);
                } else {
                    _mm256_storeu_ps(at, *lane);
                }
            }
        }
    }
}

/// The dot products of `a` with four rows of its length.
#[target_feature(enable = "avx2,fma")]
fn dot4(a: &[f32], rows: [&[f32]; BLOCK]) -> [f32; BLOCK] {
    let k = a.len();
    let rows = rows.map(|r| &r[..k]);
    let body = k - k % LANES;
    let mut acc = [_mm256_setzero_ps(); BLOCK];
    let mut p = 0;
    while p < body {
        // SAFETY: p + LANES ≤ body ≤ k, the length of `a` and of every row.
        let av = unsafe { _mm256_loadu_ps(a.as_ptr().add(p)) };
        for (s, r) in acc.iter_mut().zip(rows) {
            // SAFETY: as above.
            *s = _mm256_fmadd_ps(av, unsafe { _mm256_loadu_ps(r.as_ptr().add(p)) }, *s);
        }
        p += LANES;
    }
    let mut out = [0.0; BLOCK];
    for ((o, s), r) in out.iter_mut().zip(acc).zip(rows) {
        *o = horizontal_sum(s) + dot_tail(a, r, body);
    }
    out
}

/// `Σ a[p]·b[p]` for `p` from `from` to the end, scalar.
fn dot_tail(a: &[f32], b: &[f32], from: usize) -> f32 {
    a[from..].iter().zip(&b[from..]).fold(0.0, |s, (&x, &y)| s + x * y)
}

/// The sum of the eight lanes.
#[target_feature(enable = "avx2,fma")]
fn horizontal_sum(v: __m256) -> f32 {
    let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
    _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
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
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            std::println!("no AVX2+FMA on this CPU: nothing to compare");
            return;
        }
        let mut checked = 0;
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (2, 9, 8), (5, 17, 33), (4, 4, 4), (7, 130, 65), (64, 10, 128)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (values(m as u32 * 7 + k as u32, m * k), values(n as u32 * 13 + k as u32, k * n));
                for accumulate in [false, true] {
                    let start = values(99, m * n);
                    let (mut want, mut got) = (start.clone(), start.clone());
                    let t = Transpose { a: ta, b: tb };
                    reference::gemm_f32(t, m, n, k, &a, &b, &mut want, accumulate);
                    // SAFETY: AVX2 and FMA were detected above.
                    unsafe { gemm_f32(t, m, n, k, &a, &b, &mut got, accumulate) };
                    for i in 0..m {
                        for j in 0..n {
                            let a_at = |p: usize| if ta { a[p * m + i] } else { a[i * k + p] };
                            let b_at = |p: usize| if tb { b[j * k + p] } else { b[p * n + j] };
                            let abs: f32 = (0..k).map(|p| (a_at(p) * b_at(p)).abs()).sum();
                            let c0 = if accumulate { start[i * n + j].abs() } else { 0.0 };
                            let bound = (k + 1) as f32 * f32::EPSILON * (abs + c0);
                            let (w, g) = (want[i * n + j], got[i * n + j]);
                            assert!((w - g).abs() <= bound, "m{m} n{n} k{k} ta{ta} tb{tb} acc{accumulate} [{i},{j}]: {w} vs {g}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 5000, "{checked}");
    }
}
