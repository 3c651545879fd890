//! Host kernels written once over a vector width ([`Simd`]) and instantiated per ISA: x86-64
//! with AVX2+FMA or AVX-512F (`x86.rs`), aarch64 with Neon (`neon.rs`). Each width's entry
//! points carry its `#[target_feature]`; the generic code and the width's `#[inline(always)]`
//! operations are inlined into them. [`Width`] names the instantiation a call runs.

pub mod conv;
mod gemm;
mod im2col;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod optim;
pub mod plain_conv;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::reference::{self, AdamParams, Transpose};

/// One vector width's operations on f32 lanes.
///
/// # Safety
/// Every method needs the CPU features of its width, and pointers valid for the lanes read or
/// written (for the masked forms: the lanes of the mask only).
pub trait Simd {
    /// A vector of [`Simd::LANES`] f32.
    type V: Copy;
    /// Which lanes a masked load or store touches.
    type Mask: Copy;
    const LANES: usize;
    /// # Safety
    /// See the trait.
    unsafe fn splat(x: f32) -> Self::V;
    /// # Safety
    /// See the trait.
    unsafe fn load(p: *const f32) -> Self::V;
    /// # Safety
    /// See the trait.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// The first `lanes` lanes (< [`Simd::LANES`]).
    ///
    /// # Safety
    /// See the trait.
    unsafe fn first(lanes: usize) -> Self::Mask;
    /// # Safety
    /// See the trait.
    unsafe fn load_masked(p: *const f32, m: Self::Mask) -> Self::V;
    /// # Safety
    /// See the trait.
    unsafe fn store_masked(p: *mut f32, m: Self::Mask, v: Self::V);
    /// `a·b + c`, rounded once.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// # Safety
    /// See the trait.
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
    /// # Safety
    /// See the trait.
    unsafe fn sub(a: Self::V, b: Self::V) -> Self::V;
    /// # Safety
    /// See the trait.
    unsafe fn mul(a: Self::V, b: Self::V) -> Self::V;
    /// # Safety
    /// See the trait.
    unsafe fn div(a: Self::V, b: Self::V) -> Self::V;
    /// Correctly rounded square roots.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn sqrt(v: Self::V) -> Self::V;
    /// The sum of the lanes.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn sum(v: Self::V) -> f32;
}

/// Which instantiation of the host kernels runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// x86-64 AVX2 with FMA: 8 lanes.
    Avx2,
    /// x86-64 AVX-512F: 16 lanes.
    Avx512,
    /// aarch64 Neon: 4 lanes.
    Neon,
}

impl Width {
    /// The widths this CPU runs.
    pub fn available() -> impl Iterator<Item = Width> {
        [Width::Avx2, Width::Avx512, Width::Neon].into_iter().filter(|w| w.runs_here())
    }

    /// Whether this CPU has the width's features.
    pub fn runs_here(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Width::Avx2 => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Width::Avx512 => Width::Avx2.runs_here() && std::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "aarch64")]
            Width::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

/// `c[m, n] = op(a) · op(b)` (or `+=`) at `width`, as [`reference::gemm_f32`].
///
/// # Safety
/// The CPU must run `width` ([`Width::runs_here`]).
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_f32(width: Width, t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    // SAFETY: the caller's.
    unsafe {
        match width {
            #[cfg(target_arch = "x86_64")]
            Width::Avx2 => x86::gemm_avx2(t, m, n, k, a, b, c, accumulate),
            #[cfg(target_arch = "x86_64")]
            Width::Avx512 => x86::gemm_avx512(t, m, n, k, a, b, c, accumulate),
            #[cfg(target_arch = "aarch64")]
            Width::Neon => neon::gemm_neon(t, m, n, k, a, b, c, accumulate),
            #[allow(unreachable_patterns)]
            _ => reference::gemm_f32(t, m, n, k, a, b, c, accumulate),
        }
    }
}

/// `c[m, n] += a · B` with row `p` of `B` the `n` values of `b` from `b_rows[p]` on, at
/// `width`; `false`, touching nothing, if a slice is too short.
///
/// # Safety
/// The CPU must run `width`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_rows(width: Width, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], b_rows: &[usize], c: &mut [f32]) -> bool {
    let fits = a.len() >= m * k && c.len() >= m * n && b_rows.len() >= k && b_rows[..k].iter().all(|&r| r + n <= b.len());
    if !fits {
        return false;
    }
    let mut ops = gemm::Operands { n, k, a, row_step: k, col_step: 1, b, b_rows: Some(b_rows), c };
    // SAFETY: the sizes were checked above; the width is the caller's.
    unsafe {
        match width {
            #[cfg(target_arch = "x86_64")]
            Width::Avx2 => x86::gemm_rows_avx2(m, &mut ops),
            #[cfg(target_arch = "x86_64")]
            Width::Avx512 => x86::gemm_rows_avx512(m, &mut ops),
            #[cfg(target_arch = "aarch64")]
            Width::Neon => neon::gemm_rows_neon(m, &mut ops),
            #[allow(unreachable_patterns)]
            _ => return false,
        }
    }
    true
}

/// One Adam step at `width`, bit for bit [`reference::adam_f32`].
///
/// # Safety
/// The CPU must run `width`.
pub unsafe fn adam_f32(width: Width, h: &AdamParams, t: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    // SAFETY: the caller's.
    unsafe {
        match width {
            #[cfg(target_arch = "x86_64")]
            Width::Avx2 | Width::Avx512 => x86::adam_avx2(h, t, params, grads, m, v),
            #[cfg(target_arch = "aarch64")]
            Width::Neon => neon::adam_neon(h, t, params, grads, m, v),
            #[allow(unreachable_patterns)]
            _ => reference::adam_f32(h, t, params, grads, m, v),
        }
    }
}
