//! Register-blocked kernels for the Cortex-M4 (FPv4-SP: 32 single-precision registers, no f32
//! SIMD), also run on x86-64 hosts with AVX2, where their plain Rust compiles to vector code.
//! The fused conv → relu → maxpool forward computes each conv row in blocks of 8 and 4 columns
//! whose sums stay in registers across every input channel (the 3×3 blocks in assembly on the
//! M4); its backward sums over the recorded maxima only; the linear forward sums 4 outputs at a
//! time. Each output is summed in the reference's order (bias, input channel, kernel row,
//! kernel column; `y += w·x`, not fused), so the results are the reference's bit for bit (the
//! backward: up to the sign of zero sums); rows and columns that reach into the padding, and
//! shapes this file does not specialize, take the reference's path.

use crate::reference::{
    self, conv2d_relu_maxpool2d_backward_scratch_len, conv_relu_row, fused_backward_supported, ChannelGrads, Conv2dParams, Pool2dParams,
    Transpose, NO_ARGMAX,
};

/// Conv output row `oy` of channel `oc` for sample `b`, relu applied, into `row`: the values of
/// the reference's `conv_relu_row`, bit for bit.
#[allow(clippy::too_many_arguments)]
pub fn conv_relu_row_blocked(
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    b: usize,
    oc: usize,
    oy: usize,
    row: &mut [f32],
) {
    let plain = p.stride_w == 1 && p.dilation_w == 1 && p.groups == 1;
    match (p.kernel_h, p.kernel_w) {
        (3, 3) if plain => blocked_row::<3, 3>(p, x, w, bias, b, oc, oy, row),
        _ => conv_relu_row(p, x, w, bias, b, oc, oy, row),
    }
}

/// [`conv_relu_row_blocked`] for a `KH × KW` kernel at stride 1 along the row, no dilation
/// along it, one group.
#[allow(clippy::too_many_arguments)]
fn blocked_row<const KH: usize, const KW: usize>(
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    b: usize,
    oc: usize,
    oy: usize,
    row: &mut [f32],
) {
    // Columns every tap of a kernel row reads inside the input: ox + kx − pad_left in [0, in_w).
    let lo = p.pad_left.min(row.len());
    let hi = (p.in_w + p.pad_left + 1).saturating_sub(KW).min(row.len()).max(lo);
    // Every kernel row must read inside the input (iy = oy·sh + ky·dh − pad_top, ky < KH).
    let top = oy * p.stride_h;
    let bottom = top + (KH - 1) * p.dilation_h;
    let rows_inside = top >= p.pad_top && bottom - p.pad_top < p.in_h;
    // Rows and edge columns that reach into the padding: the reference's path, which skips the
    // taps that fall outside.
    if !rows_inside || lo > 0 || hi < row.len() || hi - lo < 4 {
        conv_relu_row(p, x, w, bias, b, oc, oy, row);
    }
    if !rows_inside || hi - lo < 4 {
        return;
    }
    let iy0 = top - p.pad_top;
    let mut c = lo;
    while c + 8 <= hi {
        block::<8, KH, KW>(p, x, w, bias, b, oc, iy0, c, &mut row[c..c + 8]);
        c += 8;
    }
    // The last columns as blocks ending at `hi`: they may recompute columns already done, to
    // the same bits (`hi − lo ≥ 4` here).
    if hi - c > 4 && hi - lo >= 8 {
        block::<8, KH, KW>(p, x, w, bias, b, oc, iy0, hi - 8, &mut row[hi - 8..hi]);
    } else if c < hi {
        if hi - c > 4 {
            block::<4, KH, KW>(p, x, w, bias, b, oc, iy0, c, &mut row[c..c + 4]);
        }
        block::<4, KH, KW>(p, x, w, bias, b, oc, iy0, hi - 4, &mut row[hi - 4..hi]);
    }
}

/// `N` interior output columns from `c` of the output row whose first kernel row reads input
/// row `iy0`: sums in registers, relu, stored in `out`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn block<const N: usize, const KH: usize, const KW: usize>(
    p: &Conv2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    b: usize,
    oc: usize,
    iy0: usize,
    c: usize,
    out: &mut [f32],
) {
    let mut acc = [bias.map_or(0.0, |bias| bias[oc]); N];
    let plane = p.in_h * p.in_w;
    let row_step = p.dilation_h * p.in_w;
    let first = iy0 * p.in_w + c - p.pad_left;
    // The input rows one output block reads, from its first to its last value.
    let span = (KH - 1) * row_step + N + KW - 1;
    #[cfg(target_arch = "arm")]
    if (KH, KW) == (3, 3) && p.in_c > 0 {
        let xs = &x[b * p.in_c * plane + first..][..(p.in_c - 1) * plane + span];
        let ws = &w[oc * p.in_c * 9..][..p.in_c * 9];
        asm::conv3x3_block::<N>(out, acc[0], xs, ws, [row_step, plane, p.in_c]);
        return;
    }
    for ic in 0..p.in_c {
        let xs = &x[(b * p.in_c + ic) * plane + first..][..span];
        let ws: &[f32] = &w[(oc * p.in_c + ic) * KH * KW..][..KH * KW];
        for ky in 0..KH {
            let xr = &xs[ky * row_step..][..N + KW - 1];
            for kx in 0..KW {
                let wv = ws[ky * KW + kx];
                for j in 0..N {
                    acc[j] += wv * xr[j + kx];
                }
            }
        }
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = relu(a);
    }
}

/// The 3×3 blocks of 8 and 4 columns in Cortex-M4 assembly (`global_asm!`: stable Rust cannot
/// name single-precision registers in `asm!` operands on a single-precision FPU). Each sums
/// `acc[j] += Σ_ic Σ_ky Σ_kx w[ic·9 + ky·3 + kx] · x[ic·plane + ky·row_step + j + kx]` in that
/// order (the reference's), each term a `VMLA` (multiply, round, add, round: the reference's
/// `y += w·x`); each channel's 9 weights and each input row's N + 2 values are read with one
/// `VLDM`. (On a real M4 a `VLDM` of n registers takes n + 1 cycles; QEMU counts one
/// instruction.) The sums start from the bias and end through relu as `relu` below computes it
/// (`VCMP` with 0: below or unordered gives 0, so −0 stays −0), stored with one `VSTM`.
/// Arguments: r0 the N outputs, r1 x at the block's first value, r2 the first input channel's
/// weights, r3 `[row step, plane, channels, bias bits]` (counts of f32, channels ≥ 1).
#[cfg(target_arch = "arm")]
mod asm {
    core::arch::global_asm!(
        ".syntax unified",
        ".thumb",
        ".fpu fpv4-sp-d16",
        ".section .text.mote_m4_conv3x3_block8,\"ax\",%progbits",
        ".global mote_m4_conv3x3_block8",
        ".type mote_m4_conv3x3_block8,%function",
        ".thumb_func",
        ".p2align 2",
        "mote_m4_conv3x3_block8:",
        "push {{r4-r7, lr}}",
        "vpush {{s16-s27}}",
        "ldm r3, {{r4, r5, r6, r7}}",
        "lsl r4, r4, #2",
        "lsl r5, r5, #2",
        "vmov s0, r7",
        "vmov.f32 s1, s0",
        "vmov.f32 s2, s0",
        "vmov.f32 s3, s0",
        "vmov.f32 s4, s0",
        "vmov.f32 s5, s0",
        "vmov.f32 s6, s0",
        "vmov.f32 s7, s0",
        "80:",
        "vldm r2!, {{s18-s26}}",
        "vldm r1, {{s8-s17}}",
        "vmla.f32 s0, s18, s8",
        "vmla.f32 s1, s18, s9",
        "vmla.f32 s2, s18, s10",
        "vmla.f32 s3, s18, s11",
        "vmla.f32 s4, s18, s12",
        "vmla.f32 s5, s18, s13",
        "vmla.f32 s6, s18, s14",
        "vmla.f32 s7, s18, s15",
        "vmla.f32 s0, s19, s9",
        "vmla.f32 s1, s19, s10",
        "vmla.f32 s2, s19, s11",
        "vmla.f32 s3, s19, s12",
        "vmla.f32 s4, s19, s13",
        "vmla.f32 s5, s19, s14",
        "vmla.f32 s6, s19, s15",
        "vmla.f32 s7, s19, s16",
        "vmla.f32 s0, s20, s10",
        "vmla.f32 s1, s20, s11",
        "vmla.f32 s2, s20, s12",
        "vmla.f32 s3, s20, s13",
        "vmla.f32 s4, s20, s14",
        "vmla.f32 s5, s20, s15",
        "vmla.f32 s6, s20, s16",
        "vmla.f32 s7, s20, s17",
        "add r7, r1, r4",
        "vldm r7, {{s8-s17}}",
        "vmla.f32 s0, s21, s8",
        "vmla.f32 s1, s21, s9",
        "vmla.f32 s2, s21, s10",
        "vmla.f32 s3, s21, s11",
        "vmla.f32 s4, s21, s12",
        "vmla.f32 s5, s21, s13",
        "vmla.f32 s6, s21, s14",
        "vmla.f32 s7, s21, s15",
        "vmla.f32 s0, s22, s9",
        "vmla.f32 s1, s22, s10",
        "vmla.f32 s2, s22, s11",
        "vmla.f32 s3, s22, s12",
        "vmla.f32 s4, s22, s13",
        "vmla.f32 s5, s22, s14",
        "vmla.f32 s6, s22, s15",
        "vmla.f32 s7, s22, s16",
        "vmla.f32 s0, s23, s10",
        "vmla.f32 s1, s23, s11",
        "vmla.f32 s2, s23, s12",
        "vmla.f32 s3, s23, s13",
        "vmla.f32 s4, s23, s14",
        "vmla.f32 s5, s23, s15",
        "vmla.f32 s6, s23, s16",
        "vmla.f32 s7, s23, s17",
        "add r7, r7, r4",
        "vldm r7, {{s8-s17}}",
        "vmla.f32 s0, s24, s8",
        "vmla.f32 s1, s24, s9",
        "vmla.f32 s2, s24, s10",
        "vmla.f32 s3, s24, s11",
        "vmla.f32 s4, s24, s12",
        "vmla.f32 s5, s24, s13",
        "vmla.f32 s6, s24, s14",
        "vmla.f32 s7, s24, s15",
        "vmla.f32 s0, s25, s9",
        "vmla.f32 s1, s25, s10",
        "vmla.f32 s2, s25, s11",
        "vmla.f32 s3, s25, s12",
        "vmla.f32 s4, s25, s13",
        "vmla.f32 s5, s25, s14",
        "vmla.f32 s6, s25, s15",
        "vmla.f32 s7, s25, s16",
        "vmla.f32 s0, s26, s10",
        "vmla.f32 s1, s26, s11",
        "vmla.f32 s2, s26, s12",
        "vmla.f32 s3, s26, s13",
        "vmla.f32 s4, s26, s14",
        "vmla.f32 s5, s26, s15",
        "vmla.f32 s6, s26, s16",
        "vmla.f32 s7, s26, s17",
        "add r1, r1, r5",
        "subs r6, r6, #1",
        "bne 80b",
        "movs r7, #0",
        "vmov s27, r7",
        "vcmp.f32 s0, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s0, s27",
        "vcmp.f32 s1, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s1, s27",
        "vcmp.f32 s2, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s2, s27",
        "vcmp.f32 s3, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s3, s27",
        "vcmp.f32 s4, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s4, s27",
        "vcmp.f32 s5, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s5, s27",
        "vcmp.f32 s6, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s6, s27",
        "vcmp.f32 s7, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s7, s27",
        "vstm r0, {{s0-s7}}",
        "vpop {{s16-s27}}",
        "pop {{r4-r7, pc}}",
        ".size mote_m4_conv3x3_block8, . - mote_m4_conv3x3_block8",
    );
    core::arch::global_asm!(
        ".syntax unified",
        ".thumb",
        ".fpu fpv4-sp-d16",
        ".section .text.mote_m4_conv3x3_block4,\"ax\",%progbits",
        ".global mote_m4_conv3x3_block4",
        ".type mote_m4_conv3x3_block4,%function",
        ".thumb_func",
        ".p2align 2",
        "mote_m4_conv3x3_block4:",
        "push {{r4-r7, lr}}",
        "vpush {{s16-s27}}",
        "ldm r3, {{r4, r5, r6, r7}}",
        "lsl r4, r4, #2",
        "lsl r5, r5, #2",
        "vmov s0, r7",
        "vmov.f32 s1, s0",
        "vmov.f32 s2, s0",
        "vmov.f32 s3, s0",
        "40:",
        "vldm r2!, {{s18-s26}}",
        "vldm r1, {{s8-s13}}",
        "vmla.f32 s0, s18, s8",
        "vmla.f32 s1, s18, s9",
        "vmla.f32 s2, s18, s10",
        "vmla.f32 s3, s18, s11",
        "vmla.f32 s0, s19, s9",
        "vmla.f32 s1, s19, s10",
        "vmla.f32 s2, s19, s11",
        "vmla.f32 s3, s19, s12",
        "vmla.f32 s0, s20, s10",
        "vmla.f32 s1, s20, s11",
        "vmla.f32 s2, s20, s12",
        "vmla.f32 s3, s20, s13",
        "add r7, r1, r4",
        "vldm r7, {{s8-s13}}",
        "vmla.f32 s0, s21, s8",
        "vmla.f32 s1, s21, s9",
        "vmla.f32 s2, s21, s10",
        "vmla.f32 s3, s21, s11",
        "vmla.f32 s0, s22, s9",
        "vmla.f32 s1, s22, s10",
        "vmla.f32 s2, s22, s11",
        "vmla.f32 s3, s22, s12",
        "vmla.f32 s0, s23, s10",
        "vmla.f32 s1, s23, s11",
        "vmla.f32 s2, s23, s12",
        "vmla.f32 s3, s23, s13",
        "add r7, r7, r4",
        "vldm r7, {{s8-s13}}",
        "vmla.f32 s0, s24, s8",
        "vmla.f32 s1, s24, s9",
        "vmla.f32 s2, s24, s10",
        "vmla.f32 s3, s24, s11",
        "vmla.f32 s0, s25, s9",
        "vmla.f32 s1, s25, s10",
        "vmla.f32 s2, s25, s11",
        "vmla.f32 s3, s25, s12",
        "vmla.f32 s0, s26, s10",
        "vmla.f32 s1, s26, s11",
        "vmla.f32 s2, s26, s12",
        "vmla.f32 s3, s26, s13",
        "add r1, r1, r5",
        "subs r6, r6, #1",
        "bne 40b",
        "movs r7, #0",
        "vmov s27, r7",
        "vcmp.f32 s0, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s0, s27",
        "vcmp.f32 s1, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s1, s27",
        "vcmp.f32 s2, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s2, s27",
        "vcmp.f32 s3, #0.0",
        "vmrs APSR_nzcv, fpscr",
        "it lt",
        "vmovlt.f32 s3, s27",
        "vstm r0, {{s0-s3}}",
        "vpop {{s16-s27}}",
        "pop {{r4-r7, pc}}",
        ".size mote_m4_conv3x3_block4, . - mote_m4_conv3x3_block4",
    );

    extern "C" {
        fn mote_m4_conv3x3_block8(out: *mut f32, x: *const f32, w: *const f32, args: *const usize);
        fn mote_m4_conv3x3_block4(out: *mut f32, x: *const f32, w: *const f32, args: *const usize);
    }

    /// `out = relu(bias + the sums of an N-column block over every input channel)` (N = 8 or
    /// 4; others are left alone), `steps = [row_step, plane, channels]`.
    pub(super) fn conv3x3_block<const N: usize>(out: &mut [f32], bias: f32, x: &[f32], w: &[f32], steps: [usize; 3]) {
        let [row_step, plane, channels] = steps;
        if out.len() < N {
            return;
        }
        let reads = channels.checked_sub(1).map(|c| c * plane + 2 * row_step + N + 2);
        if channels == 0 || reads.is_none_or(|n| x.len() < n) || w.len() < 9 * channels {
            return;
        }
        let f = match N {
            8 => mote_m4_conv3x3_block8,
            4 => mote_m4_conv3x3_block4,
            _ => return,
        };
        let args = [row_step, plane, channels, bias.to_bits() as usize];
        // SAFETY: the function reads x[ic·plane + r·row_step ..][..N + 2] for ic < channels,
        // r < 3 (all below `reads` ≤ x.len()), w[..9·channels] (≤ w.len()) and args[..4],
        // writes out[..N] (N ≤ out.len()), and follows the AAPCS (saves the r4–r7 and s16–s27
        // it uses).
        unsafe { f(out.as_mut_ptr(), x.as_ptr(), w.as_ptr(), args.as_ptr()) }
    }
}

/// `x.max(0.0)` as the Cortex-M4 computes it, inline instead of a call to `fmaxf` (which
/// returns `x` unless `x < 0` or `x` is NaN, so `relu(−0.0)` is −0.0).
#[inline(always)]
fn relu(x: f32) -> f32 {
    if x < 0.0 || x.is_nan() {
        0.0
    } else {
        x
    }
}

/// `c (+)= a · bᵀ` (`b` stored `[n, k]`: a linear layer's forward) with 4 outputs at a time,
/// each `a` value loaded once for 4 weights; every output is summed in the reference's order
/// (`acc += a·b` over k, then `c += acc`), so the results are the reference's bit for bit.
/// Other transpositions take the reference's path.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    if t.a || !t.b {
        return reference::gemm_f32(t, m, n, k, a, b, c, accumulate);
    }
    let c = &mut c[..m * n];
    if !accumulate {
        c.fill(0.0);
    }
    for (x, out) in a[..m * k].chunks_exact(k).zip(c.chunks_exact_mut(n)) {
        let mut rows = b[..n * k].chunks_exact(k);
        let mut outs = out.chunks_exact_mut(4);
        for out4 in &mut outs {
            let (r0, r1, r2, r3) = match (rows.next(), rows.next(), rows.next(), rows.next()) {
                (Some(r0), Some(r1), Some(r2), Some(r3)) => (r0, r1, r2, r3),
                _ => return,
            };
            let mut acc = [0.0f32; 4];
            for ((((&xv, &w0), &w1), &w2), &w3) in x.iter().zip(r0).zip(r1).zip(r2).zip(r3) {
                acc[0] += xv * w0;
                acc[1] += xv * w1;
                acc[2] += xv * w2;
                acc[3] += xv * w3;
            }
            out4.iter_mut().zip(acc).for_each(|(o, v)| *o += v);
        }
        for (o, row) in outs.into_remainder().iter_mut().zip(rows) {
            let mut acc = 0.0f32;
            for (&xv, &wv) in x.iter().zip(row) {
                acc += xv * wv;
            }
            *o += acc;
        }
    }
}

/// The fused conv → relu → maxpool backward for output channel `oc` (see the reference's
/// `conv2d_relu_maxpool2d_backward_channel_f32`), working from the recorded maxima only: each
/// conv output row's gradient has at most one value per pooling window, so the weight and
/// input gradients are summed over those values, not over the whole row. Each weight
/// gradient is still a row sum added in the reference's order, and each input gradient gets
/// the same terms in the same order; only the ±0 terms of the empty columns are left out, so
/// the results are the reference's up to the sign of zero sums (as the reference's own fused
/// backward is the unfused one's).
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
    let supported = fused_backward_supported(pool) && conv.groups == 1 && pool.out_w() <= MAX_POOLED_COLUMNS;
    if !supported || scratch.len() < conv2d_relu_maxpool2d_backward_scratch_len(conv) {
        return reference::conv2d_relu_maxpool2d_backward_channel_f32(conv, pool, oc, x, w, argmax, dy, grads, scratch);
    }
    let ChannelGrads { mut dx, dw, mut dbias } = grads;
    let (ph, pw) = (pool.out_h(), pool.out_w());
    let (taps, in_plane) = (conv.kernel_h * conv.kernel_w, conv.in_h * conv.in_w);
    // Stride 1 and no padding along rows and columns: every tap of every output reads inside
    // the input, and the loops need no bounds but the slices'.
    let interior = conv.stride_w == 1 && conv.dilation_w == 1 && conv.pad_left == 0 && conv.pad_right == 0 && conv.pad_top == 0;
    // The gradient's columns in the row being done, at most one per pooling window.
    let mut cols = [GradColumn { cx: 0, g: 0.0 }; MAX_POOLED_COLUMNS];
    for b in 0..conv.batch {
        let plane = (b * conv.out_c + oc) * ph * pw;
        let mut bias_sum = -0.0f32;
        for py in 0..ph {
            let rows = pooled_rows(pool, py);
            let (codes, grads) = (&argmax[plane + py * pw..][..pw], &dy[plane + py * pw..][..pw]);
            // The window rows in order, as the reference goes through conv rows.
            for oy in rows.clone() {
                let mut n = 0;
                for (px, (&at, &g)) in codes.iter().zip(grads).enumerate() {
                    let (cy, dcx) = (rows.start + at as usize / pool.kernel_w, at as usize % pool.kernel_w);
                    if at == NO_ARGMAX || cy != oy {
                        continue;
                    }
                    let cx = (px * pool.stride_w).saturating_sub(pool.pad_left) + dcx;
                    cols[n] = GradColumn { cx, g };
                    n += 1;
                }
                if n == 0 {
                    continue;
                }
                let cols = &cols[..n];
                // The row's sum without its zeros (the columns ascending, as along the row).
                bias_sum = cols.iter().fold(bias_sum, |acc, col| acc + col.g);
                if interior {
                    interior_row_backward(conv, oc, b, oy, x, w, cols, dx.as_deref_mut(), dw);
                    continue;
                }
                for ic in 0..conv.in_c {
                    let (x_plane, w_kernel) = ((b * conv.in_c + ic) * in_plane, (oc * conv.in_c + ic) * taps);
                    for ky in 0..conv.kernel_h {
                        let Some(iy) = (oy * conv.stride_h + ky * conv.dilation_h).checked_sub(conv.pad_top).filter(|&iy| iy < conv.in_h)
                        else {
                            continue;
                        };
                        let line = x_plane + iy * conv.in_w;
                        for kx in 0..conv.kernel_w {
                            let tap = ky * conv.kernel_w + kx;
                            // Input columns ox·s + kx·d − pad_left inside the input.
                            let column = |cx: usize| {
                                (cx * conv.stride_w + kx * conv.dilation_w).checked_sub(conv.pad_left).filter(|&ix| ix < conv.in_w)
                            };
                            let mut sum = -0.0f32;
                            for &GradColumn { cx, g } in cols {
                                if let Some(ix) = column(cx) {
                                    sum += g * x[line + ix];
                                }
                            }
                            dw[ic * taps + tap] += sum;
                            if let Some(dx) = dx.as_deref_mut() {
                                let wv = w[w_kernel + tap];
                                for &GradColumn { cx, g } in cols {
                                    if let Some(ix) = column(cx) {
                                        dx[line + ix] += wv * g;
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(db) = dbias.as_deref_mut() {
            *db += bias_sum;
        }
    }
    true
}

/// The weight and input gradients of conv output row `oy` of channel `oc`, sample `b`, from
/// its gradient's nonzero columns `cols` (ascending), for a convolution whose taps all read
/// inside the input along the row (stride 1, no padding). Loops over the columns outermost, so
/// a 3×3 kernel's 9 weight-gradient sums and its weights stay in registers, with each sum and
/// each input gradient getting the reference's terms in the reference's order: a tap's sum adds
/// the columns ascending; an input gradient value gets its terms by kernel column ascending,
/// which is the columns descending (the value at `c` hears from column `c − kx` at tap `kx`).
#[allow(clippy::too_many_arguments)]
fn interior_row_backward(
    conv: &Conv2dParams,
    oc: usize,
    b: usize,
    oy: usize,
    x: &[f32],
    w: &[f32],
    cols: &[GradColumn],
    mut dx: Option<&mut [f32]>,
    dw: &mut [f32],
) {
    let (kh, kw, iw) = (conv.kernel_h, conv.kernel_w, conv.in_w);
    let (taps, in_plane) = (kh * kw, conv.in_h * iw);
    // Input rows of the kernel rows inside the input (the rows below it take no term).
    let lines = (0..kh).map(|ky| oy * conv.stride_h + ky * conv.dilation_h).take_while(|&iy| iy < conv.in_h);
    if (kh, kw) == (3, 3) && lines.count() == 3 {
        return interior_row_backward_3x3(conv, oc, b, oy, x, w, cols, dx, dw);
    }
    for ic in 0..conv.in_c {
        let x_plane = (b * conv.in_c + ic) * in_plane;
        let weights = &w[(oc * conv.in_c + ic) * taps..][..taps];
        let grads = &mut dw[ic * taps..][..taps];
        for ky in 0..kh {
            let iy = oy * conv.stride_h + ky * conv.dilation_h;
            if iy >= conv.in_h {
                continue;
            }
            let line = x_plane + iy * iw;
            let xs = &x[line..line + iw];
            for (kx, (g_tap, &wv)) in grads[ky * kw..][..kw].iter_mut().zip(&weights[ky * kw..][..kw]).enumerate() {
                let mut sum = -0.0f32;
                for &GradColumn { cx, g } in cols {
                    sum += g * xs[cx + kx];
                }
                *g_tap += sum;
                if let Some(dx) = dx.as_deref_mut() {
                    let ds = &mut dx[line..line + iw];
                    for &GradColumn { cx, g } in cols {
                        ds[cx + kx] += wv * g;
                    }
                }
            }
        }
    }
}

/// [`interior_row_backward`] for a 3×3 kernel whose three rows read inside the input.
#[allow(clippy::too_many_arguments)]
fn interior_row_backward_3x3(
    conv: &Conv2dParams,
    oc: usize,
    b: usize,
    oy: usize,
    x: &[f32],
    w: &[f32],
    cols: &[GradColumn],
    mut dx: Option<&mut [f32]>,
    dw: &mut [f32],
) {
    let iw = conv.in_w;
    let in_plane = conv.in_h * iw;
    // The kernel rows' input rows, `row_step` apart.
    let (line, row_step) = (oy * conv.stride_h * iw, conv.dilation_h * iw);
    for ic in 0..conv.in_c {
        let first = (b * conv.in_c + ic) * in_plane + line;
        let rows = Rows3 { first, row_step, width: iw };
        add_tap_grads_3x3(x, rows, cols, &mut dw[ic * 9..][..9]);
        if let Some(dx) = dx.as_deref_mut() {
            add_input_grads_3x3(dx, rows, &w[(oc * conv.in_c + ic) * 9..][..9], cols);
        }
    }
}

/// Three input rows `row_step` apart from `first`, `width` values each.
#[derive(Clone, Copy)]
pub struct Rows3 {
    pub first: usize,
    pub row_step: usize,
    pub width: usize,
}

/// `dw[3·ky + kx] += Σ_j g_j · x[row ky][cx_j + kx]`, each sum from −0 over the columns
/// ascending (Helium's kernel where it runs).
#[inline(always)]
fn add_tap_grads_3x3(x: &[f32], rows: Rows3, cols: &[GradColumn], dw: &mut [f32]) {
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if crate::dispatch::active() == crate::dispatch::Isa::Mve && crate::arch::mve_f32_backward::add_tap_grads_3x3(x, rows, cols, dw) {
        return;
    }
    let row = |ky: usize| &x[rows.first + ky * rows.row_step..][..rows.width];
    let xrows = [row(0), row(1), row(2)];
    let mut sums = [-0.0f32; 9];
    for &GradColumn { cx, g } in cols {
        for (ky, row) in xrows.iter().enumerate() {
            let xs = &row[cx..cx + 3];
            sums[3 * ky] += g * xs[0];
            sums[3 * ky + 1] += g * xs[1];
            sums[3 * ky + 2] += g * xs[2];
        }
    }
    for (g_tap, sum) in dw[..9].iter_mut().zip(sums) {
        *g_tap += sum;
    }
}

/// `dx[row ky][cx_j + kx] += w[3·ky + kx] · g_j`, the columns descending and `kx` ascending:
/// each value gets its terms in the reference's order (Helium's kernel where it runs).
#[inline(always)]
fn add_input_grads_3x3(dx: &mut [f32], rows: Rows3, w: &[f32], cols: &[GradColumn]) {
    #[cfg(all(target_arch = "arm", feature = "mve"))]
    if crate::dispatch::active() == crate::dispatch::Isa::Mve && crate::arch::mve_f32_backward::add_input_grads_3x3(dx, rows, w, cols) {
        return;
    }
    for ky in 0..3 {
        let ds = &mut dx[rows.first + ky * rows.row_step..][..rows.width];
        let [w0, w1, w2] = [w[3 * ky], w[3 * ky + 1], w[3 * ky + 2]];
        for &GradColumn { cx, g } in cols.iter().rev() {
            let d = &mut ds[cx..cx + 3];
            d[0] += w0 * g;
            d[1] += w1 * g;
            d[2] += w2 * g;
        }
    }
}

/// A nonzero value `g` of a conv row's gradient at column `cx` (laid out as two words, as
/// Helium's backward reads it).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GradColumn {
    pub cx: usize,
    pub g: f32,
}

/// Most pooled columns one conv row's gradient can hold in [`conv2d_relu_maxpool2d_backward_channel_f32`]
/// (wider rows take the reference's path).
const MAX_POOLED_COLUMNS: usize = 64;

/// The conv rows pooled row `py` reads (padding dropped).
fn pooled_rows(pool: &Pool2dParams, py: usize) -> core::ops::Range<usize> {
    let start = (py * pool.stride_h).saturating_sub(pool.pad_top);
    start..(py * pool.stride_h + pool.kernel_h).saturating_sub(pool.pad_top).min(pool.in_h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Pointwise;

    /// The fused forward through the blocked rows (plain Rust here; the M4's assembly runs the
    /// same checks on the device, `kcheck`).
    #[allow(clippy::too_many_arguments)]
    fn blocked_forward(
        conv: &Conv2dParams,
        pool: &Pool2dParams,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        argmax: Option<&mut [u8]>,
        scratch: &mut [f32],
    ) -> bool {
        let row = |b, oc, cy, row: &mut [f32]| conv_relu_row_blocked(conv, x, w, bias, b, oc, cy, row);
        reference::conv2d_relu_maxpool2d_with(row, conv, pool, y, argmax, scratch)
    }

    #[test]
    fn fused_forward_passes_the_shared_checks() {
        let scratch_len = |c: &Conv2dParams, p: &Pool2dParams| reference::conv2d_relu_maxpool2d_scratch_len(c, p);
        assert!(crate::checks::fused_f32::fused_conv(&blocked_forward, &scratch_len).unwrap() > 0);
    }

    /// The linear forward equals the reference's bit for bit on the shared gemm checks (odd
    /// sizes and tails, accumulating or not; other transpositions go to the reference).
    #[test]
    fn gemm_passes_the_shared_checks() {
        assert!(crate::checks::gemm_f32::gemm(&gemm_f32).unwrap() > 0);
    }

    /// The sparse fused backward equals the reference's (weight, input and bias gradients,
    /// equal as numbers: up to the sign of zero sums) on the shared checks (Helium's kernels
    /// run the same checks on the device, `kcheck`).
    #[test]
    fn fused_backward_passes_the_shared_checks() {
        let kernel = crate::checks::fused_f32::every_channel(conv2d_relu_maxpool2d_backward_channel_f32);
        assert!(crate::checks::fused_f32::fused_backward(&kernel).unwrap() > 0);
    }

    /// The inline relu is `Pointwise::Relu`'s (`max(x, 0)`) on every kind of value but −0.0,
    /// where `max` may give either zero (on the M4 it calls `fmaxf`, which gives −0.0, as the
    /// inline one does; the device golden test checks the fused step bit for bit).
    #[test]
    fn inline_relu_is_max_with_zero() {
        for x in [1.5, -1.5, 0.0, f32::MIN_POSITIVE, -f32::MIN_POSITIVE, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 3e38, -3e38] {
            assert_eq!(relu(x).to_bits(), Pointwise::Relu.apply(x).to_bits(), "{x}");
        }
        assert_eq!(relu(-0.0).to_bits(), (-0.0f32).to_bits());
    }
    use std::vec::Vec;

    /// The shared checks' deterministic values.
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut v = std::vec![0.0; n];
        crate::checks::fill_values(&mut v, seed);
        v
    }

    /// Every row of every channel equals the reference's bit for bit: widths that leave tails of
    /// 4 and 1, padding (edge columns on the reference's path), kernels 3 and 5 wide, a kernel
    /// the blocked path does not take (2 wide), stride 2 and dilation (the reference's path).
    #[test]
    fn rows_equal_the_reference_bit_for_bit() {
        let cases = [
            // (in_c, in_h, in_w, out_c, [kh, kw], stride, pad, dilation, bias)
            (1, 28, 28, 8, [3, 3], 1, 0, 1, true),
            (8, 13, 13, 16, [3, 3], 1, 0, 1, true),
            (3, 9, 19, 4, [3, 3], 1, 1, 1, false),
            (2, 7, 23, 3, [5, 5], 1, 2, 1, true),
            (1, 5, 12, 2, [3, 3], 1, 0, 1, true),
            // Rows 4 to 9 wide: one block of 4, two overlapping ones, one of 8 and one more.
            (2, 5, 6, 2, [3, 3], 1, 0, 1, true),
            (2, 5, 7, 2, [3, 3], 1, 0, 1, true),
            (2, 5, 8, 2, [3, 3], 1, 0, 1, true),
            (2, 5, 9, 2, [3, 3], 1, 0, 1, true),
            (2, 5, 10, 2, [3, 3], 1, 0, 1, true),
            (2, 5, 11, 2, [3, 3], 1, 0, 1, true),
            (2, 6, 9, 3, [2, 2], 1, 0, 1, true),
            (2, 9, 17, 3, [3, 3], 2, 1, 1, true),
            (2, 9, 17, 3, [3, 3], 1, 0, 2, true),
        ];
        for (n, &(in_c, in_h, in_w, out_c, k, stride, pad, dilation, with_bias)) in cases.iter().enumerate() {
            let mut p = Conv2dParams::plain(2, [in_c, in_h, in_w], out_c, k, [stride; 2], [pad; 2]);
            (p.dilation_h, p.dilation_w) = (dilation, dilation);
            let x = values(2 * in_c * in_h * in_w, n as u32 + 1);
            let w = values(out_c * in_c * k[0] * k[1], n as u32 + 100);
            let bias = values(out_c, n as u32 + 200);
            let bias = with_bias.then_some(&bias[..]);
            let (mut got, mut want) = (std::vec![0.0f32; p.out_w()], std::vec![0.0f32; p.out_w()]);
            for b in 0..2 {
                for oc in 0..out_c {
                    for oy in 0..p.out_h() {
                        conv_relu_row_blocked(&p, &x, &w, bias, b, oc, oy, &mut got);
                        conv_relu_row(&p, &x, &w, bias, b, oc, oy, &mut want);
                        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                        assert_eq!(bits(&got), bits(&want), "case {n}, sample {b}, channel {oc}, row {oy}");
                    }
                }
            }
        }
    }
}
