//! The x86-64 widths of the host kernels: AVX2 with FMA (8 f32 lanes) and AVX-512F (16), and
//! their entry points, each with its `#[target_feature]`.

use super::gemm::{gemm, gemm_blocked, Operands};
use super::optim::adam;
use super::Simd;
use crate::reference::{AdamParams, Transpose};
use core::arch::x86_64::{
    __m256, __m256i, __m512, __mmask16, _mm256_add_ps, _mm256_castps256_ps128, _mm256_cmpgt_epi32, _mm256_div_ps, _mm256_extractf128_ps,
    _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_mul_ps, _mm256_set1_epi32, _mm256_set1_ps,
    _mm256_setr_epi32, _mm256_sqrt_ps, _mm256_storeu_ps, _mm256_sub_ps, _mm512_add_ps, _mm512_div_ps, _mm512_fmadd_ps, _mm512_loadu_ps,
    _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_mul_ps, _mm512_reduce_add_ps, _mm512_set1_ps, _mm512_sqrt_ps, _mm512_storeu_ps,
    _mm512_sub_ps, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
};

/// AVX2 with FMA: 8 lanes.
pub struct Avx2;

/// AVX-512F: 16 lanes.
pub struct Avx512;

// Every method of both impls relies on the trait's contract: the CPU has the width's features
// and the pointers are valid for the lanes touched.
impl Simd for Avx2 {
    type V = __m256;
    type Mask = __m256i;
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m256) {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn first(lanes: usize) -> __m256i {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)) }
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, m: __m256i) -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_maskload_ps(p, m) }
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut f32, m: __m256i, v: __m256) {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_maskstore_ps(p, m, v) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn sub(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn div(a: __m256, b: __m256) -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn sqrt(v: __m256) -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_sqrt_ps(v) }
    }
    #[inline(always)]
    unsafe fn sum(v: __m256) -> f32 {
        // SAFETY: the trait's contract (the caller's).
        unsafe {
            let quad = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
            let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
            _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1)))
        }
    }
}

impl Simd for Avx512 {
    type V = __m512;
    type Mask = __mmask16;
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: __m512) {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn first(lanes: usize) -> __mmask16 {
        ((1u32 << lanes) - 1) as __mmask16
    }
    #[inline(always)]
    unsafe fn load_masked(p: *const f32, m: __mmask16) -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    }
    #[inline(always)]
    unsafe fn store_masked(p: *mut f32, m: __mmask16, v: __m512) {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_mask_storeu_ps(p, m, v) }
    }
    #[inline(always)]
    unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn sub(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn mul(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn div(a: __m512, b: __m512) -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn sqrt(v: __m512) -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_sqrt_ps(v) }
    }
    #[inline(always)]
    unsafe fn sum(v: __m512) -> f32 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_reduce_add_ps(v) }
    }
}

/// The gemm with AVX2.
///
/// # Safety
/// AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gemm_avx2(t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    // SAFETY: this function's contract.
    unsafe { gemm::<Avx2>(t, m, n, k, a, b, c, accumulate) }
}

/// The gemm with AVX-512F.
///
/// # Safety
/// AVX-512F, AVX2 and FMA.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn gemm_avx512(t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    // SAFETY: this function's contract.
    unsafe { gemm::<Avx512>(t, m, n, k, a, b, c, accumulate) }
}

/// The in-place-rows product with AVX2.
///
/// # Safety
/// AVX2 and FMA; `ops` sized for `m` rows.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn gemm_rows_avx2(m: usize, ops: &mut Operands) {
    // SAFETY: the caller's.
    unsafe { gemm_blocked::<Avx2>(m, ops) }
}

/// The in-place-rows product with AVX-512F.
///
/// # Safety
/// AVX-512F, AVX2 and FMA; `ops` sized for `m` rows.
#[target_feature(enable = "avx512f,avx2,fma")]
pub(super) unsafe fn gemm_rows_avx512(m: usize, ops: &mut Operands) {
    // SAFETY: the caller's.
    unsafe { gemm_blocked::<Avx512>(m, ops) }
}

/// Adam with AVX2 (memory bound: AVX-512 gains nothing here).
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn adam_avx2(h: &AdamParams, t: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    // SAFETY: this function's contract.
    unsafe { adam::<Avx2>(h, t, params, grads, m, v) }
}
