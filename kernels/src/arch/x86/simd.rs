//! The two x86 vector widths the host kernels are written for, behind one trait: AVX2 (8
//! f32 lanes, FMA) and AVX-512F (16 lanes). Kernels generic over [`Simd`] are instantiated in
//! a function with that width's `#[target_feature]`, into which these `#[inline(always)]`
//! methods (and the intrinsics they call) are inlined.

use core::arch::x86_64::{
    __m256, __m256i, __m512, __mmask16, _mm256_castps256_ps128, _mm256_cmpgt_epi32, _mm256_extractf128_ps, _mm256_fmadd_ps,
    _mm256_loadu_ps, _mm256_maskload_ps, _mm256_maskstore_ps, _mm256_set1_epi32, _mm256_set1_ps, _mm256_setr_epi32, _mm256_setzero_ps,
    _mm256_storeu_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_reduce_add_ps, _mm512_set1_ps,
    _mm512_setzero_ps, _mm512_storeu_ps, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps,
};

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
    unsafe fn zero() -> Self::V;
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
    /// The sum of the lanes.
    ///
    /// # Safety
    /// See the trait.
    unsafe fn sum(v: Self::V) -> f32;
}

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
    unsafe fn zero() -> __m256 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm256_setzero_ps() }
    }
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
    unsafe fn zero() -> __m512 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_setzero_ps() }
    }
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
    unsafe fn sum(v: __m512) -> f32 {
        // SAFETY: the trait's contract (the caller's).
        unsafe { _mm512_reduce_add_ps(v) }
    }
}
