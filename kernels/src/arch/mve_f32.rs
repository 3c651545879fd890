//! Helium (Armv8.1-M MVE with its float extension: Cortex-M55, M85) f32 kernel for the fused
//! conv 3×3 → relu → 2×2 max pool forward (inference, and training with where each maximum
//! came from recorded): per pooled row, the two conv rows it
//! pools are summed together, 4 or 8 columns per block in vector registers, so each input
//! vector is loaded once for both rows; relu, the vertical max and then the horizontal max of
//! each column pair (VLD20/VLD21 split even and odd columns) stay in vector registers.
//!
//! Each output is summed in the reference's order (bias, input channel, kernel row, kernel
//! column), each term a VMUL then a VADD (the reference's unfused `y += w·x`; MVE's only
//! vector-by-scalar multiply-accumulate, VFMA, rounds once). relu is VCMP ≥ 0 + VPSEL (−0
//! stays −0, NaN gives 0) and each max keeps the first of equal values (VCMP > + VPSEL), so the
//! results are the reference's bit for bit — with one difference the architecture imposes:
//! MVE floating point always runs with the standard FPSCR value (flush to zero, default NaN),
//! so a product, sum or comparison whose operand or result is subnormal (|v| < 2⁻¹²⁶) sees
//! zero where the scalar FPU and the host keep the subnormal.
//!
//! Taken by convolutions whose taps all read inside the input (3×3, stride 1, no dilation,
//! no padding, one group) under 2×2 pooling at stride 2 without padding, at least two pooled
//! columns wide; others take the DSP extension's path.

use crate::reference::{Conv2dParams, Pool2dParams};

/// Scratch values [`conv3x3_relu_maxpool2`] needs: the row of vertical maxima and the row of
/// where they came from, each rounded up to the 8 values one VLD20/VLD21 pair reads.
pub fn scratch_len(pool: &Pool2dParams) -> usize {
    2 * row_len(pool)
}

/// One scratch row's values.
fn row_len(pool: &Pool2dParams) -> usize {
    (2 * pool.out_w()).next_multiple_of(8)
}

/// Whether [`conv3x3_relu_maxpool2`] takes this conv and pool.
pub fn takes(conv: &Conv2dParams, pool: &Pool2dParams) -> bool {
    let conv_plain = (conv.kernel_h, conv.kernel_w, conv.stride_h, conv.stride_w, conv.dilation_h, conv.dilation_w, conv.groups)
        == (3, 3, 1, 1, 1, 1, 1)
        && conv.pad_top + conv.pad_left + conv.pad_bottom + conv.pad_right == 0;
    let pool_plain = (pool.kernel_h, pool.kernel_w, pool.stride_h, pool.stride_w) == (2, 2, 2, 2)
        && pool.pad_top + pool.pad_left + pool.pad_bottom + pool.pad_right == 0
        && (pool.in_h, pool.in_w) == (conv.out_h(), conv.out_w());
    conv_plain && pool_plain && conv.in_c > 0 && pool.out_h() > 0 && pool.out_w() >= 2
}

#[cfg(all(target_arch = "arm", feature = "mve"))]
/// `y = maxpool2×2(relu(conv3×3(x, w) + bias))`, NCHW, every sample and output channel; with
/// `argmax`, where each maximum came from, as the reference records it (its offset in the
/// window, row-major, or `NO_ARGMAX` where the relu was off). Returns `false`, touching
/// nothing, if [`takes`] refuses the shapes or a slice is too short.
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_relu_maxpool2(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    mut argmax: Option<&mut [u8]>,
    scratch: &mut [f32],
) -> bool {
    let (ph, pw) = (pool.out_h(), pool.out_w());
    let (plane, taps, pooled_len) = (conv.in_h * conv.in_w, conv.in_c * 9, conv.batch * conv.out_c * ph * pw);
    let fits = x.len() >= conv.batch * conv.in_c * plane
        && w.len() >= conv.out_c * taps
        && bias.is_none_or(|b| b.len() >= conv.out_c)
        && y.len() >= pooled_len
        && argmax.as_deref().is_none_or(|a| a.len() >= pooled_len)
        && scratch.len() >= scratch_len(pool);
    if !takes(conv, pool) || !fits {
        return false;
    }
    let used = 2 * pw;
    let (maxima, codes) = scratch[..scratch_len(pool)].split_at_mut(row_len(pool));
    for b in 0..conv.batch {
        let sample = &x[b * conv.in_c * plane..][..conv.in_c * plane];
        for oc in 0..conv.out_c {
            let weights = &w[oc * taps..][..taps];
            let start = bias.map_or(0.0, |b| b[oc]);
            let plane_at = (b * conv.out_c + oc) * ph * pw;
            for py in 0..ph {
                let top = &sample[2 * py * conv.in_w..];
                let rows = Rows { x: top, w: weights, row_step: conv.in_w, plane, channels: conv.in_c, bias: start };
                let mut codes = argmax.is_some().then_some(&mut *codes);
                // Blocks of 8 columns, then of 4; a last block of 4 may overlap the one before
                // (`used` is even and at least 4), recomputing the same bits.
                let eights = used / 8;
                rows.block::<8>(0, eights, maxima, codes.as_deref_mut());
                let mut c = 8 * eights;
                if used - c >= 4 {
                    rows.block::<4>(c, 1, maxima, codes.as_deref_mut());
                    c += 4;
                }
                if c < used {
                    rows.block::<4>(used - 4, 1, maxima, codes.as_deref_mut());
                }
                let pooled = &mut y[plane_at + py * pw..][..pw];
                match (argmax.as_deref_mut(), codes) {
                    (Some(argmax), Some(codes)) => asm::pool_pairs_recorded(maxima, codes, pooled, &mut argmax[plane_at + py * pw..][..pw]),
                    _ => asm::pool_pairs(maxima, pooled),
                }
            }
        }
    }
    true
}

#[cfg(all(target_arch = "arm", feature = "mve"))]
/// The inputs of one pooled row's two conv rows: `x` from the first input row they read, in
/// channel 0.
struct Rows<'a> {
    x: &'a [f32],
    w: &'a [f32],
    row_step: usize,
    plane: usize,
    channels: usize,
    bias: f32,
}

#[cfg(all(target_arch = "arm", feature = "mve"))]
impl Rows<'_> {
    /// `blocks` blocks of `N` columns from column `c`: each column's relu'd conv values of both
    /// rows, the larger (the first row's if equal), into `maxima[c..c + N·blocks]`; with
    /// `codes`, into `codes[c..]` the window offset of each (0: the first row, 2: the second,
    /// as u32 bits).
    #[inline(always)]
    fn block<const N: usize>(&self, c: usize, blocks: usize, maxima: &mut [f32], codes: Option<&mut [f32]>) {
        // The last value one channel's block reads: 3 rows below the first, N·blocks + 2 on.
        let reads = (self.channels - 1) * self.plane + 3 * self.row_step + c + N * blocks + 2;
        let written = c + N * blocks;
        if blocks == 0
            || self.x.len() < reads
            || self.w.len() < 9 * self.channels
            || maxima.len() < written
            || codes.as_deref().is_some_and(|codes| codes.len() < written)
        {
            return;
        }
        let codes = codes.map_or(0, |codes| codes[c..].as_mut_ptr() as usize);
        let args = [4 * self.row_step, 4 * self.plane, self.channels, self.bias.to_bits() as usize, blocks, codes];
        let f = match N {
            8 => asm::mote_mve_conv3x3_rows8,
            4 => asm::mote_mve_conv3x3_rows4,
            _ => return,
        };
        // SAFETY: the function reads x[c + ic·plane + r·row_step ..][..N·blocks + 2] for
        // ic < channels, r < 4 (below `reads` ≤ x.len()), w[..9·channels] and args[..6], writes
        // maxima[c..c + N·blocks] and, unless its pointer is 0, codes[c..c + N·blocks]
        // (checked), and follows the AAPCS (saves r4–r11 and q4–q7).
        unsafe { f(maxima[c..].as_mut_ptr(), self.x[c..].as_ptr(), self.w.as_ptr(), args.as_ptr()) }
    }
}

/// The assembly. Registers of the conv functions: r1 the channel's first input row, r0 the
/// row being read, r12 the row step (bytes), r3–r11 the channel's 9 weights, lr the channel
/// count (DLS/LE); q0 (and q1) the first conv row's sums, q2 (and q3) the second's, q4 the
/// input vector, q5 and q6 products. The stack holds
/// `[maxima, plane bytes, channels, bias bits, blocks left, x of the block, w]`.
#[cfg(all(target_arch = "arm", feature = "mve"))]
mod asm {
    /// A Thumb function `$name` of Helium instructions, in a section of its own (linked only
    /// where called).
    macro_rules! global_fn {
        ($name:expr, $($line:expr),* $(,)?) => {
            core::arch::global_asm!(
                ".syntax unified",
                ".thumb",
                ".arch armv8.1-m.main",
                ".arch_extension mve.fp",
                concat!(".section .text.", $name, ",\"ax\",%progbits"),
                concat!(".global ", $name),
                concat!(".type ", $name, ",%function"),
                ".thumb_func",
                ".p2align 2",
                concat!($name, ":"),
                $($line,)*
                concat!(".size ", $name, ", . - ", $name),
            );
        };
    }

    /// One input vector at byte offset `$off` of row `$row` into one conv row's sum.
    macro_rules! tap {
        ($row:literal, $off:literal, $w:literal, $acc:literal) => {
            concat!("vldrw.u32 q4, [", $row, ", #", $off, "]\n", "vmul.f32 q5, q4, ", $w, "\n", "vadd.f32 ", $acc, ", ", $acc, ", q5\n",)
        };
    }

    /// One input vector into both conv rows' sums (the first row's kernel row `$wa`, the
    /// second's `$wb`).
    macro_rules! tap2 {
        ($row:literal, $off:literal, $wa:literal, $a:literal, $wb:literal, $b:literal) => {
            concat!(
                "vldrw.u32 q4, [",
                $row,
                ", #",
                $off,
                "]\n",
                "vmul.f32 q5, q4, ",
                $wa,
                "\n",
                "vadd.f32 ",
                $a,
                ", ",
                $a,
                ", q5\n",
                "vmul.f32 q6, q4, ",
                $wb,
                "\n",
                "vadd.f32 ",
                $b,
                ", ",
                $b,
                ", q6\n",
            )
        };
    }

    /// A function summing blocks of `$n` columns (`$vectors` the per-row vector count); the
    /// rest are its per-width pieces.
    macro_rules! conv_rows {
        (
            $name:literal,
            $n_bytes:literal,
            $dup:expr,
            $row0:expr,
            $row1:expr,
            $row2:expr,
            $row3:expr,
            $relu:expr,
            $codes:expr,
            $max_store:expr
        ) => {
            global_fn!(
                $name,
                "push {{r4-r11, lr}}",
                "vpush {{d8-d15}}",
                "sub sp, sp, #32",
                "ldm r3, {{r4-r9}}",
                "str r0, [sp, #0]",
                "str r5, [sp, #4]",
                "str r6, [sp, #8]",
                "str r7, [sp, #12]",
                "str r8, [sp, #16]",
                "str r1, [sp, #20]",
                "str r2, [sp, #24]",
                "str r9, [sp, #28]",
                "mov r12, r4",
                "1:",
                "ldr r0, [sp, #12]",
                $dup,
                "ldr r1, [sp, #20]",
                "ldr r2, [sp, #24]",
                "ldr r0, [sp, #8]",
                "dls lr, r0",
                "2:",
                "ldm r2!, {{r3-r11}}",
                $row0,
                "add r0, r1, r12",
                $row1,
                "add r0, r0, r12",
                $row2,
                "add r0, r0, r12",
                $row3,
                "ldr r0, [sp, #4]",
                "add r1, r1, r0",
                "le lr, 2b",
                "movs r3, #0",
                "vmov.i32 q7, #0",
                $relu,
                "ldr r1, [sp, #28]",
                "cbz r1, 3f",
                "movs r4, #2",
                "vdup.32 q6, r4",
                $codes,
                "str r1, [sp, #28]",
                "3:",
                $max_store,
                "str r0, [sp, #0]",
                "ldr r1, [sp, #20]",
                concat!("add r1, r1, #", $n_bytes),
                "str r1, [sp, #20]",
                "ldr r0, [sp, #16]",
                "subs r0, r0, #1",
                "str r0, [sp, #16]",
                "bne 1b",
                "add sp, sp, #32",
                "vpop {{d8-d15}}",
                "pop {{r4-r11, pc}}",
            );
        };
    }

    // 8 columns: q0, q1 the first conv row's sums (columns 0–3, 4–7), q2, q3 the second's.
    conv_rows!(
        "mote_mve_conv3x3_rows8",
        "32",
        "vdup.32 q0, r0\nvdup.32 q1, r0\nvdup.32 q2, r0\nvdup.32 q3, r0",
        concat!(
            tap!("r1", "0", "r3", "q0"),
            tap!("r1", "16", "r3", "q1"),
            tap!("r1", "4", "r4", "q0"),
            tap!("r1", "20", "r4", "q1"),
            tap!("r1", "8", "r5", "q0"),
            tap!("r1", "24", "r5", "q1"),
        ),
        concat!(
            tap2!("r0", "0", "r6", "q0", "r3", "q2"),
            tap2!("r0", "16", "r6", "q1", "r3", "q3"),
            tap2!("r0", "4", "r7", "q0", "r4", "q2"),
            tap2!("r0", "20", "r7", "q1", "r4", "q3"),
            tap2!("r0", "8", "r8", "q0", "r5", "q2"),
            tap2!("r0", "24", "r8", "q1", "r5", "q3"),
        ),
        concat!(
            tap2!("r0", "0", "r9", "q0", "r6", "q2"),
            tap2!("r0", "16", "r9", "q1", "r6", "q3"),
            tap2!("r0", "4", "r10", "q0", "r7", "q2"),
            tap2!("r0", "20", "r10", "q1", "r7", "q3"),
            tap2!("r0", "8", "r11", "q0", "r8", "q2"),
            tap2!("r0", "24", "r11", "q1", "r8", "q3"),
        ),
        concat!(
            tap!("r0", "0", "r9", "q2"),
            tap!("r0", "16", "r9", "q3"),
            tap!("r0", "4", "r10", "q2"),
            tap!("r0", "20", "r10", "q3"),
            tap!("r0", "8", "r11", "q2"),
            tap!("r0", "24", "r11", "q3"),
        ),
        concat!(
            "vcmp.f32 ge, q0, r3\nvpsel q0, q0, q7\n",
            "vcmp.f32 ge, q1, r3\nvpsel q1, q1, q7\n",
            "vcmp.f32 ge, q2, r3\nvpsel q2, q2, q7\n",
            "vcmp.f32 ge, q3, r3\nvpsel q3, q3, q7\n",
        ),
        concat!(
            "vcmp.f32 gt, q2, q0\nvpsel q4, q6, q7\nvstrw.32 q4, [r1], #16\n",
            "vcmp.f32 gt, q3, q1\nvpsel q4, q6, q7\nvstrw.32 q4, [r1], #16\n",
        ),
        concat!(
            "vcmp.f32 gt, q2, q0\nvpsel q0, q2, q0\n",
            "vcmp.f32 gt, q3, q1\nvpsel q1, q3, q1\n",
            "ldr r0, [sp, #0]\n",
            "vstrw.32 q0, [r0], #16\n",
            "vstrw.32 q1, [r0], #16\n",
        )
    );

    // 4 columns: q0 the first conv row's sums, q2 the second's.
    conv_rows!(
        "mote_mve_conv3x3_rows4",
        "16",
        "vdup.32 q0, r0\nvdup.32 q2, r0",
        concat!(tap!("r1", "0", "r3", "q0"), tap!("r1", "4", "r4", "q0"), tap!("r1", "8", "r5", "q0"),),
        concat!(
            tap2!("r0", "0", "r6", "q0", "r3", "q2"),
            tap2!("r0", "4", "r7", "q0", "r4", "q2"),
            tap2!("r0", "8", "r8", "q0", "r5", "q2"),
        ),
        concat!(
            tap2!("r0", "0", "r9", "q0", "r6", "q2"),
            tap2!("r0", "4", "r10", "q0", "r7", "q2"),
            tap2!("r0", "8", "r11", "q0", "r8", "q2"),
        ),
        concat!(tap!("r0", "0", "r9", "q2"), tap!("r0", "4", "r10", "q2"), tap!("r0", "8", "r11", "q2"),),
        concat!("vcmp.f32 ge, q0, r3\nvpsel q0, q0, q7\n", "vcmp.f32 ge, q2, r3\nvpsel q2, q2, q7\n",),
        "vcmp.f32 gt, q2, q0\nvpsel q4, q6, q7\nvstrw.32 q4, [r1], #16\n",
        concat!("vcmp.f32 gt, q2, q0\nvpsel q0, q2, q0\n", "ldr r0, [sp, #0]\n", "vstrw.32 q0, [r0], #16\n",)
    );

    // Pooled value j = the larger of maxima[2j] and maxima[2j + 1] (the first if equal), for
    // j < n: r0 maxima (read in whole groups of 8), r1 the pooled row, r2 n ≥ 1. The stores of
    // the last group are predicated (VCTP) to the n values.
    global_fn!(
        "mote_mve_pool_pairs",
        "push {{r7, lr}}",
        "adds r3, r2, #3",
        "lsrs r3, r3, #2",
        "dls lr, r3",
        "1:",
        "vld20.32 {{q0, q1}}, [r0]",
        "vld21.32 {{q0, q1}}, [r0]!",
        "vcmp.f32 gt, q1, q0",
        "vpsel q0, q1, q0",
        "vctp.32 r2",
        "vpst",
        "vstrwt.32 q0, [r1], #16",
        "subs r2, r2, #4",
        "le lr, 1b",
        "pop {{r7, pc}}",
    );

    // As `mote_mve_pool_pairs`, also recording where each pooled value came from: r1 the
    // codes row (0 or 2 per column, u32), r3 the recorded bytes, the 5th argument (stack) n.
    // The code of the odd column is its own + 1; a value not above 0 records 255 (NO_ARGMAX).
    global_fn!(
        "mote_mve_pool_pairs_recorded",
        "push {{r4-r7, lr}}",
        "ldr r4, [sp, #20]",
        "adds r5, r4, #3",
        "lsrs r5, r5, #2",
        "dls lr, r5",
        "movs r5, #255",
        "vdup.32 q5, r5",
        "movs r6, #1",
        "movs r7, #0",
        "1:",
        "vld20.32 {{q0, q1}}, [r0]",
        "vld21.32 {{q0, q1}}, [r0]!",
        "vld20.32 {{q2, q3}}, [r1]",
        "vld21.32 {{q2, q3}}, [r1]!",
        "vadd.i32 q3, q3, r6",
        "vcmp.f32 gt, q1, q0",
        "vpsel q0, q1, q0",
        "vpsel q2, q3, q2",
        "vcmp.f32 gt, q0, r7",
        "vpsel q2, q2, q5",
        "vctp.32 r4",
        "vpstt",
        "vstrwt.32 q0, [r2], #16",
        "vstrbt.32 q2, [r3], #4",
        "subs r4, r4, #4",
        "le lr, 1b",
        "pop {{r4-r7, pc}}",
    );

    extern "C" {
        pub(super) fn mote_mve_conv3x3_rows8(maxima: *mut f32, x: *const f32, w: *const f32, args: *const usize);
        pub(super) fn mote_mve_conv3x3_rows4(maxima: *mut f32, x: *const f32, w: *const f32, args: *const usize);
        fn mote_mve_pool_pairs(maxima: *const f32, pooled: *mut f32, n: usize);
        fn mote_mve_pool_pairs_recorded(maxima: *const f32, codes: *const f32, pooled: *mut f32, recorded: *mut u8, n: usize);
    }

    /// `pooled[j] = ` the larger of `maxima[2j]`, `maxima[2j + 1]` (the first if equal).
    pub(super) fn pool_pairs(maxima: &[f32], pooled: &mut [f32]) {
        let n = pooled.len();
        if n == 0 || maxima.len() < (2 * n).next_multiple_of(8) {
            return;
        }
        // SAFETY: reads maxima[..round_up(2n, 8)] (checked), writes pooled[..n] (its length:
        // the last group's stores are predicated to the values left).
        unsafe { mote_mve_pool_pairs(maxima.as_ptr(), pooled.as_mut_ptr(), n) }
    }

    /// [`pool_pairs`], also recording in `recorded[j]` where `pooled[j]` came from (`codes`:
    /// each column's row offset, 0 or 2): `codes[2j] or codes[2j + 1] + 1`, or `NO_ARGMAX` if
    /// the value is not above 0.
    pub(super) fn pool_pairs_recorded(maxima: &[f32], codes: &[f32], pooled: &mut [f32], recorded: &mut [u8]) {
        let n = pooled.len();
        let read = (2 * n).next_multiple_of(8);
        if n == 0 || maxima.len() < read || codes.len() < read || recorded.len() != n {
            return;
        }
        // SAFETY: reads maxima[..read] and codes[..read] (checked), writes pooled[..n] and
        // recorded[..n] (their lengths: the last group's stores are predicated to the values
        // left), and saves the r4–r7 it uses.
        unsafe { mote_mve_pool_pairs_recorded(maxima.as_ptr(), codes.as_ptr(), pooled.as_mut_ptr(), recorded.as_mut_ptr(), n) }
    }
}
