//! The one place where each kernel the core calls is chosen: an ISA-specific version where one
//! exists for the active instruction set, else the scalar reference (the oracle).
//!
//! On x86-64 the choice is made at run time: the reference is active until [`select`] is
//! called (the CLI calls `select(Isa::detect())`; tests that compare bits keep the reference).
//! On Cortex-M it is made at build time by the cargo features `dsp` and `mve`, because stable
//! Rust does not expose `cfg(target_feature = "dsp" | "mve")` on thumb targets and an explicit
//! feature cannot be switched on by accident for a core that lacks the extension.
//!
//! Kernels that need scratch memory give its size as a function of their shapes and of the
//! ISA the plan is made for ([`conv2d_relu_maxpool2d_scratch_len`]), so the host can plan for
//! a device.

#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
use crate::arch::simd::{self, Width};
use crate::reference;
use core::sync::atomic::{AtomicU8, Ordering};

// Kernels with no ISA-specific version: the reference is the only one.
pub use reference::{
    add_assign_f32, add_row_bias_f32, argmax_f32, avgpool2d_backward_f32, avgpool2d_f32, batchnorm_backward_f32, batchnorm_eval_f32,
    batchnorm_train_f32, binary_backward_f32, binary_f32, cross_entropy_backward_f32, cross_entropy_f32, fused_backward_supported,
    global_avgpool_backward_f32, global_avgpool_f32, layernorm_backward_f32, layernorm_f32, log_softmax_backward_f32, log_softmax_f32,
    maxpool2d_backward_f32, maxpool2d_f32, mse_backward_f32, mse_f32, pad2d_backward_f32, pad2d_f32, pointwise_backward_f32,
    pointwise_backward_in_place_f32, pointwise_f32, pointwise_in_place_f32, sgd_f32, softmax_backward_f32, softmax_f32, sum_channels_f32,
    sum_rows_f32, transpose_backward_f32, transpose_f32,
};
// The kernels' parameter types.
pub use reference::{
    AdamParams, BatchNormGrads, BatchNormParams, BinaryOp, Broadcast, ChannelGrads, Conv2dParams, LayerNormGrads, Pad2dParams, Pointwise,
    Pool2dParams, RunningStats, SgdParams, Transpose, TransposeParams, MAX_RECORDED_WINDOW, NO_ARGMAX,
};

/// An instruction set with kernels of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Isa {
    /// The scalar reference kernels, on any target.
    Reference = 0,
    /// x86-64 with AVX2 and FMA.
    Avx2Fma = 1,
    /// Armv7E-M / Armv8-M with the DSP extension (Cortex-M4, M7, M33).
    Dsp = 2,
    /// Armv8.1-M with Helium (Cortex-M55, M85): its int8 kernels and fused f32 conv, and the DSP extension's
    /// (which Helium cores have) where Helium has none.
    Mve = 3,
    /// x86-64 with AVX-512F besides AVX2 and FMA: the host kernels 16 lanes wide.
    Avx512 = 4,
    /// aarch64 with Neon (Advanced SIMD): the host kernels 4 lanes wide.
    Neon = 5,
}

impl Isa {
    /// The ISA a plan byte names, if any.
    pub fn from_u8(v: u8) -> Option<Isa> {
        [Isa::Reference, Isa::Avx2Fma, Isa::Dsp, Isa::Mve, Isa::Avx512, Isa::Neon].into_iter().find(|isa| *isa as u8 == v)
    }

    /// The ISA this build for a Cortex-M uses (its cargo features), or the reference.
    pub const fn built_in() -> Isa {
        if cfg!(feature = "mve") {
            Isa::Mve
        } else if cfg!(feature = "dsp") {
            Isa::Dsp
        } else {
            Isa::Reference
        }
    }

    /// The fastest ISA this CPU runs (x86-64: AVX-512F with AVX2 and FMA, else AVX2 and FMA;
    /// aarch64: Neon).
    #[cfg(feature = "std")]
    pub fn detect() -> Isa {
        if let Some(isa) = [Isa::Avx512, Isa::Avx2Fma, Isa::Neon].into_iter().find(|isa| isa.available()) {
            return isa;
        }
        Isa::built_in()
    }

    /// Whether `self` runs the host's batch kernels (`arch::simd`), whose scratch differs.
    pub fn has_host_kernels(self) -> bool {
        matches!(self, Isa::Avx2Fma | Isa::Avx512 | Isa::Neon)
    }

    /// Whether this CPU and build can run `self`'s kernels.
    fn available(self) -> bool {
        match self {
            Isa::Reference => true,
            #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
            Isa::Avx2Fma => Width::Avx2.runs_here(),
            #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
            Isa::Avx512 => Width::Avx512.runs_here(),
            #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
            Isa::Neon => Width::Neon.runs_here(),
            Isa::Dsp | Isa::Mve => self == Isa::built_in(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
}

static ACTIVE: AtomicU8 = AtomicU8::new(Isa::built_in() as u8);

/// The ISA whose kernels run now.
pub fn active() -> Isa {
    Isa::from_u8(ACTIVE.load(Ordering::Relaxed)).unwrap_or(Isa::Reference)
}

/// The CPU or this build cannot run the ISA asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaUnavailable(pub Isa);

impl core::fmt::Display for IsaUnavailable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "this CPU or build cannot run {:?} kernels", self.0)
    }
}

impl core::error::Error for IsaUnavailable {}

/// Makes `isa`'s kernels the ones that run, if this CPU and build have it. Plans made
/// afterwards are sized for it.
pub fn select(isa: Isa) -> Result<(), IsaUnavailable> {
    if !isa.available() {
        return Err(IsaUnavailable(isa));
    }
    ACTIVE.store(isa as u8, Ordering::Relaxed);
    Ok(())
}

/// The vector width of the host kernels that run, if any: AVX-512F, AVX2 or Neon. Only
/// `select` makes one active, after checking the CPU has its features.
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
fn host_width() -> Option<Width> {
    match active() {
        Isa::Avx512 => Some(Width::Avx512),
        Isa::Avx2Fma => Some(Width::Avx2),
        Isa::Neon => Some(Width::Neon),
        _ => None,
    }
}

/// No host kernels in this build.
#[cfg(not(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64"))))]
fn host_width() -> Option<()> {
    None
}

/// `c[m, n] = op(a) · op(b)` (or `+=`): see [`reference::gemm_f32`]. AVX2 + FMA (AVX-512F): the
/// same sums in another order (8 or 16 lanes, fused multiply-adds), within the tolerance its
/// tests state.
/// Cortex-M4 (DSP builds): the linear forward 4 outputs at a time, bit for bit the reference.
/// Helium: `a` not transposed, 8 outputs per pair of gathers, or a scaled row added per step
/// (`arch::mve_f32_gemm`), bit for bit unless a value is subnormal.
pub fn gemm_f32(t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(width) = host_width() {
        // SAFETY: `host_width` is only `Some` after `select` found the width's features.
        return unsafe { simd::gemm_f32(width, t, m, n, k, a, b, c, accumulate) };
    }
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if mve_kernels() && crate::arch::mve_f32_gemm::gemm_f32(t, m, n, k, a, b, c, accumulate) {
        return;
    }
    if dsp_kernels() {
        return crate::arch::m4::gemm_f32(t, m, n, k, a, b, c, accumulate);
    }
    reference::gemm_f32(t, m, n, k, a, b, c, accumulate)
}

/// Row `o` of a linear layer's weight gradient: see [`reference::linear_weight_grad_row_f32`].
/// Helium: a tail-predicated loop per scaled row (`arch::mve_f32_gemm`), bit for bit unless a
/// value is subnormal.
pub fn linear_weight_grad_row_f32(rows: usize, out: usize, o: usize, dy: &[f32], x: &[f32], row: &mut [f32]) {
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if mve_kernels() && crate::arch::mve_f32_gemm::linear_weight_grad_row_f32(rows, out, o, dy, x, row) {
        return;
    }
    reference::linear_weight_grad_row_f32(rows, out, o, dy, x, row)
}

/// The convolution: see [`reference::conv2d_f32`]. x86 SIMD: one sample at a time as an
/// im2col product (one group), within its tests' tolerance. Helium (row stride 1, any groups):
/// 16 output columns at a time over a row's taps (`arch::mve_f32_conv`), bit for bit unless a
/// value is subnormal.
pub fn conv2d_f32(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(width) = host_width() {
        // SAFETY: `host_width` is only `Some` after `select` found the width's features.
        if unsafe { simd::plain_conv::conv2d_f32(width, p, x, w, bias, y) } {
            return;
        }
    }
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if mve_kernels() && crate::arch::mve_f32_conv::conv2d_f32(p, x, w, bias, y) {
        return;
    }
    reference::conv2d_f32(p, x, w, bias, y)
}

/// The convolution's input gradient: see [`reference::conv2d_backward_input_f32`]. x86 SIMD:
/// `Wᵀ · dY` per sample, added back through col2im.
pub fn conv2d_backward_input_f32(p: &Conv2dParams, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(width) = host_width() {
        // SAFETY: as for `conv2d_f32`.
        if unsafe { simd::plain_conv::conv2d_backward_input_f32(width, p, dy, w, dx) } {
            return;
        }
    }
    reference::conv2d_backward_input_f32(p, dy, w, dx)
}

/// The convolution's weight gradient: see [`reference::conv2d_backward_weight_f32`]. x86
/// SIMD: `dY · colsᵀ` per sample.
pub fn conv2d_backward_weight_f32(p: &Conv2dParams, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(width) = host_width() {
        // SAFETY: as for `conv2d_f32`.
        if unsafe { simd::plain_conv::conv2d_backward_weight_f32(width, p, x, dy, dw) } {
            return;
        }
    }
    reference::conv2d_backward_weight_f32(p, x, dy, dw)
}

/// One Adam step: see [`reference::adam_f32`]. AVX2: eight parameters at a time, bit for bit
/// the reference.
pub fn adam_f32(h: &AdamParams, t: u32, params: &mut [f32], grads: &[f32], m: &mut [f32], v: &mut [f32]) {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(width) = host_width() {
        // SAFETY: `host_width` is only `Some` after `select` found the width's features.
        return unsafe { simd::adam_f32(width, h, t, params, grads, m, v) };
    }
    reference::adam_f32(h, t, params, grads, m, v)
}

/// The fused conv → relu → maxpool forward: see [`reference::conv2d_relu_maxpool2d_f32`].
/// Cortex-M4 (DSP builds): conv rows computed in register blocks (`arch::m4`), the same values
/// bit for bit. Helium builds, a 3×3 conv under a 2×2 pool: two conv rows at a time in vector registers (`arch::mve_f32`), the same values bit for bit unless a
/// value is subnormal (Helium flushes those to zero).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool2d_f32(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    argmax: Option<&mut [u8]>,
    scratch: &mut [f32],
) -> bool {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(width) = host_width() {
        if simd::conv::takes(conv, scratch.len(), simd::conv::forward_scratch_len(conv, pool)) {
            // SAFETY: `host_width` is only `Some` after `select` found the width's features.
            return unsafe { simd::conv::conv2d_relu_maxpool2d_f32(width, conv, pool, x, w, bias, y, argmax, scratch) };
        }
    }
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    let mut argmax = argmax;
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if mve_kernels() && crate::arch::mve_f32::conv3x3_relu_maxpool2(conv, pool, x, w, bias, y, argmax.as_deref_mut(), scratch) {
        return true;
    }
    if blocked_convolution() {
        let row = |b, oc, cy, row: &mut [f32]| crate::arch::m4::conv_relu_row_blocked(conv, x, w, bias, b, oc, cy, row);
        return reference::conv2d_relu_maxpool2d_with(row, conv, pool, y, argmax, scratch);
    }
    reference::conv2d_relu_maxpool2d_f32(conv, pool, x, w, bias, y, argmax, scratch)
}

/// The fused backward of one output channel: see
/// [`reference::conv2d_relu_maxpool2d_backward_channel_f32`]. Cortex-M4 (DSP builds): summed
/// over the recorded maxima only (`arch::m4`), the same values up to the sign of zero sums.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool2d_backward_channel_f32(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    oc: usize,
    x: &[f32],
    w: &[f32],
    argmax: &[u8],
    dy: &[f32],
    grads: ChannelGrads,
    scratch: &mut [f32],
) -> bool {
    if blocked_convolution() {
        return crate::arch::m4::conv2d_relu_maxpool2d_backward_channel_f32(conv, pool, oc, x, w, argmax, dy, grads, scratch);
    }
    reference::conv2d_relu_maxpool2d_backward_channel_f32(conv, pool, oc, x, w, argmax, dy, grads, scratch)
}

/// Whether the fused convolution runs the register-blocked kernels of `arch::m4`: on the
/// Cortex-M4 (DSP builds), and on x86-64 hosts with AVX2, where the same plain Rust (its
/// assembly is Cortex-M only) compiles to vector code over the blocks' columns. Bit for bit the
/// reference's either way.
fn blocked_convolution() -> bool {
    dsp_kernels() || host_width().is_some()
}

/// Scratch values [`conv2d_relu_maxpool2d_f32`] needs when planned for `isa` (x86 SIMD: one
/// sample's conv as a product; Helium: the reference's rows, or the row of vertical maxima
/// `arch::mve_f32` pools, whichever is longer; others: the reference's rows).
pub fn conv2d_relu_maxpool2d_scratch_len(conv: &Conv2dParams, pool: &Pool2dParams, isa: Isa) -> usize {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if isa.has_host_kernels() && conv.groups == 1 {
        return simd::conv::forward_scratch_len(conv, pool);
    }
    let reference = reference::conv2d_relu_maxpool2d_scratch_len(conv, pool);
    match isa == Isa::Mve && crate::arch::mve_f32::takes(conv, pool) {
        true => reference.max(crate::arch::mve_f32::scratch_len(pool)),
        false => reference,
    }
}

/// Scratch values the fused backward ([`conv2d_relu_maxpool2d_backward_f32`] or per channel)
/// needs when planned for `isa`.
pub fn conv2d_relu_maxpool2d_backward_scratch_len(conv: &Conv2dParams, isa: Isa) -> usize {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if isa.has_host_kernels() && conv.groups == 1 {
        return simd::conv::backward_scratch_len(conv).max(reference::conv2d_relu_maxpool2d_backward_scratch_len(conv));
    }
    let _ = isa;
    reference::conv2d_relu_maxpool2d_backward_scratch_len(conv)
}

/// The fused backward of every output channel at once, accumulating into `dx` (when given),
/// `dw` (`[out_c, in_c·kh·kw]`) and `dbias`: AVX2 hosts run it as im2col products
/// (`arch::x86::conv`, within its tests' tolerance); elsewhere it is
/// [`conv2d_relu_maxpool2d_backward_channel_f32`] channel after channel. Returns `false` where
/// the per-channel kernel would.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_maxpool2d_backward_f32(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    x: &[f32],
    w: &[f32],
    argmax: &[u8],
    dy: &[f32],
    mut dx: Option<&mut [f32]>,
    dw: &mut [f32],
    mut dbias: Option<&mut [f32]>,
    scratch: &mut [f32],
) -> bool {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let Some(width) = host_width() {
        // SAFETY: `host_width` is only `Some` after `select` found the width's features.
        let done = unsafe {
            simd::conv::conv2d_relu_maxpool2d_backward_f32(
                width,
                conv,
                pool,
                x,
                w,
                argmax,
                dy,
                dx.as_deref_mut(),
                dw,
                dbias.as_deref_mut(),
                scratch,
            )
        };
        if done {
            return true;
        }
    }
    let per_channel = conv.in_c * conv.kernel_h * conv.kernel_w;
    for (oc, dw) in dw.chunks_exact_mut(per_channel.max(1)).enumerate().take(conv.out_c) {
        let grads = ChannelGrads { dx: dx.as_deref_mut(), dw, dbias: dbias.as_deref_mut().and_then(|d| d.get_mut(oc)) };
        if !conv2d_relu_maxpool2d_backward_channel_f32(conv, pool, oc, x, w, argmax, dy, grads, scratch) {
            return false;
        }
    }
    true
}

/// `out[j] = io.output(sums[j], requant[j])` (one requantization per channel, or one for all),
/// as the int8 kernels requantize: Helium 4 channels per vector (`arch::mve_int8::requant_down`)
/// where every requantization shifts right; elsewhere channel by channel, with the constants of
/// a right shift computed once (`arch::requant_down`).
pub fn requant_s8(io: &reference::int8::Int8Io, sums: &[i32], requant: &[reference::int8::Requant], out: &mut [i8]) {
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if mve_kernels() {
        return crate::arch::int8_columns::requant_vectors(io, sums, requant, out, crate::arch::mve_int8::requant_down);
    }
    crate::arch::int8_columns::requant_each(io, sums, requant, out)
}

/// `arch::int8_columns::$kernel(args)` with Neon's dot product for this CPU: SDOT where it has
/// the extension, else SMULL (`arch::neon_int8`); whether it computed.
#[cfg(all(feature = "std", target_arch = "aarch64"))]
macro_rules! neon_columns {
    ($kernel:ident($($arg:expr),*)) => {
        match crate::arch::neon_int8::sdot_runs_here() {
            true => crate::arch::int8_columns::$kernel::<crate::arch::neon_int8::Sdot>($($arg),*),
            false => crate::arch::int8_columns::$kernel::<crate::arch::neon_int8::Smull>($($arg),*),
        }
    };
}

/// Whether the DSP extension's kernels run (`arch::m4`, `arch::m4_int8`): on DSP builds, and on
/// Helium builds where Helium has no kernel of its own (every Helium core has the extension).
fn dsp_kernels() -> bool {
    cfg!(feature = "dsp") && matches!(active(), Isa::Dsp | Isa::Mve)
}

/// Whether Helium's kernels run (`arch::int8_columns` with `arch::mve_int8`, `arch::mve_f32`).
#[cfg(all(target_arch = "arm", feature = "mve"))]
fn mve_kernels() -> bool {
    cfg!(feature = "mve") && active() == Isa::Mve
}

/// Scratch bytes an int8 convolution or fully connected layer of `p` (groups 1) is planned with:
/// the DSP kernels' four columns, a row of sums for a one-channel input, or Helium's and Neon's
/// column and per-channel sums, whichever is largest. Planned on every target, so the host
/// reports the device's arena.
pub fn conv2d_s8_scratch_bytes(p: &Conv2dParams) -> usize {
    if p.groups == 1 {
        let columns = crate::arch::m4_int8::conv_scratch_bytes(p.kernel_h * p.kernel_w * p.in_c);
        columns.max(crate::arch::m4_int8_one_channel::scratch_bytes(p)).max(crate::arch::int8_columns::conv_scratch_bytes(p))
    } else {
        0
    }
}

/// int8 CONV_2D, with a fused max pool when `pool` is given (see `reference::int8::conv2d_s8`
/// and `conv2d_maxpool_s8`). DSP builds: a one-channel 3×3 input read in place
/// (`arch::m4_int8_one_channel`), else SMLAD over gathered columns (`arch::m4_int8`); Helium
/// builds: the one-channel kernel, else VMLADAVA over gathered columns (`arch::int8_columns`
/// with `arch::mve_int8`); aarch64 with Neon: the columns with SDOT where the CPU has it, else
/// SMULL (`arch::neon_int8`); the same bytes.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8(
    p: &Conv2dParams,
    pool: Option<(&Pool2dParams, (i32, i32))>,
    io: &reference::int8::Int8Io,
    requant: &[reference::int8::Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    if dsp_kernels() && crate::arch::m4_int8_one_channel::conv2d_s8(p, pool, io, requant, x, w, bias, y, scratch) {
        return;
    }
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if mve_kernels() && crate::arch::int8_columns::conv2d_s8::<crate::arch::mve_int8::Helium>(p, pool, io, requant, x, w, bias, y, scratch)
    {
        return;
    }
    if dsp_kernels() && crate::arch::m4_int8::conv2d_s8(p, pool, io, requant, x, w, bias, y, scratch) {
        return;
    }
    #[cfg(all(feature = "std", target_arch = "aarch64"))]
    if active() == Isa::Neon && neon_columns!(conv2d_s8(p, pool, io, requant, x, w, bias, y, scratch)) {
        return;
    }
    match pool {
        None => reference::int8::conv2d_s8(p, io, requant, x, w, bias, y),
        Some((pool, act)) => reference::int8::conv2d_maxpool_s8(p, pool, act, io, requant, x, w, bias, y),
    }
}

/// int8 FULLY_CONNECTED (see `reference::int8::fully_connected_s8`). DSP, Helium and Neon: as
/// the convolution, the same bytes.
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_s8(
    batch: usize,
    depth: usize,
    out: usize,
    io: &reference::int8::Int8Io,
    requant: &[reference::int8::Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if mve_kernels()
        && crate::arch::int8_columns::fully_connected_s8::<crate::arch::mve_int8::Helium>(batch, depth, out, io, requant, x, w, bias, y)
    {
        return;
    }
    if dsp_kernels() && crate::arch::m4_int8::fully_connected_s8(batch, depth, out, io, requant, x, w, bias, y, scratch) {
        return;
    }
    #[cfg(all(feature = "std", target_arch = "aarch64"))]
    if active() == Isa::Neon && neon_columns!(fully_connected_s8(batch, depth, out, io, requant, x, w, bias, y)) {
        return;
    }
    reference::int8::fully_connected_s8(batch, depth, out, io, requant, x, w, bias, y)
}

/// int8 DEPTHWISE_CONV_2D (see `reference::int8::depthwise_conv2d_s8`). Every instruction set
/// but the reference: four channels at a time over the taps each pixel has
/// (`arch::depthwise_s8`); the same bytes.
#[allow(clippy::too_many_arguments)]
pub fn depthwise_conv2d_s8(
    p: &Conv2dParams,
    io: &reference::int8::Int8Io,
    requant: &[reference::int8::Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
) {
    if active() != Isa::Reference && crate::arch::depthwise_s8::depthwise_conv2d_s8(p, io, requant, x, w, bias, y) {
        return;
    }
    reference::int8::depthwise_conv2d_s8(p, io, requant, x, w, bias, y)
}

/// Scratch bytes a layer computed in place needs (see [`conv2d_s8_in_place`]).
pub fn conv2d_s8_in_place_scratch_bytes(p: &Conv2dParams, depthwise: bool) -> usize {
    if depthwise {
        reference::int8::depthwise_in_place_scratch(p)
    } else {
        reference::int8::pointwise_in_place_scratch(p).max(conv2d_s8_scratch_bytes(p))
    }
}

/// Whether [`conv2d_s8_in_place`] computes `p` (pointwise, or depthwise at stride 1 with its
/// input's shape).
pub fn conv2d_s8_in_place_takes(p: &Conv2dParams, depthwise: bool) -> bool {
    if depthwise {
        reference::int8::depthwise_in_place(p)
    } else {
        reference::int8::pointwise_in_place(p)
    }
}

/// A pointwise or depthwise int8 convolution computed in its input's bytes `xy` (see
/// `reference::int8::pointwise_conv2d_s8_in_place` and `depthwise_conv2d_s8_in_place`). The
/// pointwise one through the columns: Helium's and Neon's (`arch::int8_columns`) or the DSP
/// extension's (`arch::m4_int8`); the depthwise one's rows by [`depthwise_conv2d_s8`]; the same
/// bytes.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8_in_place(
    p: &Conv2dParams,
    depthwise: bool,
    io: &reference::int8::Int8Io,
    requant: &[reference::int8::Requant],
    xy: &mut [i8],
    w: &[i8],
    bias: Option<&[i32]>,
    scratch: &mut [u8],
) {
    if depthwise {
        let rows = |sub: &Conv2dParams, x: &[i8], y: &mut [i8]| depthwise_conv2d_s8(sub, io, requant, x, w, bias, y);
        return reference::int8::depthwise_in_place_with(rows, p, xy, signed(scratch));
    }
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if mve_kernels()
        && crate::arch::int8_columns::pointwise_s8_in_place::<crate::arch::mve_int8::Helium>(p, io, requant, xy, w, bias, scratch)
    {
        return;
    }
    #[cfg(all(feature = "std", target_arch = "aarch64"))]
    if active() == Isa::Neon && neon_columns!(pointwise_s8_in_place(p, io, requant, xy, w, bias, scratch)) {
        return;
    }
    if dsp_kernels() && crate::arch::m4_int8::pointwise_s8_in_place(p, io, requant, xy, w, bias, scratch) {
        return;
    }
    reference::int8::pointwise_conv2d_s8_in_place(p, io, requant, xy, w, bias, signed(scratch))
}

/// Bytes as i8.
fn signed(bytes: &mut [u8]) -> &mut [i8] {
    // SAFETY: u8 and i8 have the same size, alignment and validity.
    unsafe { core::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<i8>(), bytes.len()) }
}
