//! The aarch64 width of the host kernels: Neon (Advanced SIMD, 4 f32 lanes, part of every
//! aarch64 CPU), and its entry points. Neon has no masked loads: a partial vector goes through
//! a 4-value buffer.

use super::gemm::{gemm, gemm_blocked, Operands};
use super::optim::adam;
use super::Simd;
use crate::reference::{AdamParams, Transpose};
use core::arch::aarch64::{
    float32x4_t, vaddq_f32, vaddvq_f32, vdivq_f32, vdupq_n_f32, vfmaq_f32, vld1q_f32, vmulq_f32, vsqrtq_f32, vst1q_f32, vsubq_f32,
};

/// Neon: 4 lanes.
pub struct Neon;

// Every method relies on the trait's contract: the pointers are valid for the lanes touched
// (Neon itself is in every aarch64 CPU).
impl Simd for Neon {
    type V = float32x4_t;
    /// How many leading lanes.
    type Mask = usize;
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn splat(x: f32) -> float32x4_t {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> float32x4_t {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: float32x4_t) {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vst1q_f32(p, v) }
    }
    #[inline(always)]
    unsafe fn first(lanes: usize) -> usize {
        lanes
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, lanes: usize) -> float32x4_t {
        let mut buf = [0.0f32; 4];
        // SAFETY: the trait's contract: `lanes` values are readable at `p`.
        unsafe {
            core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), lanes.min(4));
            vld1q_f32(buf.as_ptr())
        }
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut f32, lanes: usize, v: float32x4_t) {
        let mut buf = [0.0f32; 4];
        // SAFETY: the trait's contract: `lanes` values are writable at `p`.
        unsafe {
            vst1q_f32(buf.as_mut_ptr(), v);
            core::ptr::copy_nonoverlapping(buf.as_ptr(), p, lanes.min(4));
        }
    }
    #[inline(always)]
    unsafe fn fmadd(a: float32x4_t, b: float32x4_t, c: float32x4_t) -> float32x4_t {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vfmaq_f32(c, a, b) }
    }
    #[inline(always)]
    unsafe fn add(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vaddq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn sub(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vsubq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vmulq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn div(a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vdivq_f32(a, b) }
    }
    #[inline(always)]
    unsafe fn sqrt(v: float32x4_t) -> float32x4_t {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vsqrtq_f32(v) }
    }
    #[inline(always)]
    unsafe fn sum(v: float32x4_t) -> f32 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { vaddvq_f32(v) }
    }
}

/// The gemm with Neon.
///
/// # Safety
/// Neon (every aarch64 CPU).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_neon(t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    // SAFETY: this function's contract.
    unsafe { gemm::<Neon>(t, m, n, k, a, b, c, accumulate) }
}

/// The in-place-rows product with Neon.
///
/// # Safety
/// `ops` sized for `m` rows.
pub(super) unsafe fn gemm_rows_neon(m: usize, ops: &mut Operands) {
    // SAFETY: the caller's.
    unsafe { gemm_blocked::<Neon>(m, ops) }
}

/// Adam with Neon.
///
/// # Safety
/// Neon (every aarch64 CPU).
pub(super) unsafe fn adam_neon(h: &AdamParams, t: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    // SAFETY: this function's contract.
    unsafe { adam::<Neon>(h, t, params, grads, m, v) }
}
