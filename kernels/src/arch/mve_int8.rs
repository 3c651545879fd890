//! Helium (Armv8.1-M MVE: Cortex-M55, M85) dot products for the int8 column kernels
//! (`int8_columns`): tail-predicated low-overhead loops (DLSTP/LETP) — per 16 values one VLDRB
//! of the column, and per output channel one VLDRB of weights and one VMLADAVA (16
//! multiply-accumulates into a scalar): 9 instructions and a loop end per 64 MACs for four
//! channels; the weight sums by VADDVA, the gathered runs copied by VLDRB/VSTRB. Lanes past the
//! end are neither loaded nor accumulated. Also the depthwise sums of 16 channels per tap
//! (`depthwise16`, for `depthwise_s8`) and the requantization of 4 channels per vector
//! (`requant_down`). On a real M55 each vector instruction takes two
//! beats, overlapping a load with a multiply when they alternate, as here.

use super::depthwise_s8::Tap;
use super::int8_columns::Dot;
use crate::reference::int8::{Int8Io, Requant};

/// Helium's [`Dot`].
pub struct Helium;

impl Dot for Helium {
    /// Not inlined: its callers stay small enough to keep their state in registers.
    #[inline(never)]
    fn dot4(col: &[i8], quad: &[i8], acc: &[i32]) -> [i32; 4] {
        let n = col.len();
        let [mut a0, mut a1, mut a2, mut a3]: [i32; 4] = core::array::from_fn(|j| acc.get(j).copied().unwrap_or(0));
        if n == 0 || quad.len() < 4 * n {
            return [a0, a1, a2, a3];
        }
        let w: [&[i8]; 4] = core::array::from_fn(|j| &quad[j * n..]);
        // SAFETY: tail-predicated loads of `n` bytes from `col` and from each row (each at least
        // `n` long, checked); q0 and q1 (d0–d3) and lr are declared clobbered.
        unsafe {
            core::arch::asm!(
                "dlstp.8 lr, {n}",
                "2:",
                "vldrb.8 q0, [{col}], #16",
                "vldrb.8 q1, [{w0}], #16",
                "vmladava.s8 r0, q0, q1",
                "vldrb.8 q1, [{w1}], #16",
                "vmladava.s8 r2, q0, q1",
                "vldrb.8 q1, [{w2}], #16",
                "vmladava.s8 r4, q0, q1",
                "vldrb.8 q1, [{w3}], #16",
                "vmladava.s8 r8, q0, q1",
                "letp lr, 2b",
                n = in(reg) n,
                col = inout(reg) col.as_ptr() => _,
                w0 = inout(reg) w[0].as_ptr() => _,
                w1 = inout(reg) w[1].as_ptr() => _,
                w2 = inout(reg) w[2].as_ptr() => _,
                w3 = inout(reg) w[3].as_ptr() => _,
                // VMLADAVA accumulates into even-numbered registers only.
                inout("r0") a0,
                inout("r2") a1,
                inout("r4") a2,
                inout("r8") a3,
                out("lr") _,
                out("d0") _,
                out("d1") _,
                out("d2") _,
                out("d3") _,
                options(nostack, readonly),
            );
        }
        [a0, a1, a2, a3]
    }

    fn dot1(col: &[i8], w: &[i8], acc: i32) -> i32 {
        let n = col.len();
        let mut a = acc;
        if n == 0 || w.len() < n {
            return a;
        }
        // SAFETY: as `dot4`, one weight row.
        unsafe {
            core::arch::asm!(
                "dlstp.8 lr, {n}",
                "2:",
                "vldrb.8 q0, [{col}], #16",
                "vldrb.8 q1, [{w}], #16",
                "vmladava.s8 r0, q0, q1",
                "letp lr, 2b",
                n = in(reg) n,
                col = inout(reg) col.as_ptr() => _,
                w = inout(reg) w.as_ptr() => _,
                inout("r0") a,
                out("lr") _,
                out("d0") _,
                out("d1") _,
                out("d2") _,
                out("d3") _,
                options(nostack, readonly),
            );
        }
        a
    }

    fn sum(w: &[i8]) -> i32 {
        let mut a = 0i32;
        if w.is_empty() {
            return a;
        }
        // SAFETY: tail-predicated loads of `w.len()` bytes of `w`; q0 (d0, d1) and lr clobbered.
        unsafe {
            core::arch::asm!(
                "dlstp.8 lr, {n}",
                "2:",
                "vldrb.s8 q0, [{w}], #16",
                "vaddva.s8 r0, q0",
                "letp lr, 2b",
                n = in(reg) w.len(),
                w = inout(reg) w.as_ptr() => _,
                inout("r0") a,
                out("lr") _,
                out("d0") _,
                out("d1") _,
                options(nostack, readonly),
            );
        }
        a
    }

    /// 4 channels per vector ([`requant_down`]) where every requantization shifts right.
    fn requant(io: &Int8Io, sums: &[i32], requant: &[Requant], out: &mut [i8]) {
        super::int8_columns::requant_vectors(io, sums, requant, out, requant_down);
    }

    /// The library's `memcpy` copies such short unaligned runs a byte at a time.
    #[inline(always)]
    fn copy(src: &[i8], dst: &mut [i8]) {
        if src.len() != dst.len() || src.is_empty() {
            dst.copy_from_slice(src);
            return;
        }
        // SAFETY: tail-predicated loads and stores of `src.len()` bytes, the length of both
        // slices (checked); q0 (d0, d1) and lr clobbered.
        unsafe {
            core::arch::asm!(
                "dlstp.8 lr, {n}",
                "2:",
                "vldrb.8 q0, [{src}], #16",
                "vstrb.8 q0, [{dst}], #16",
                "letp lr, 2b",
                n = in(reg) src.len(),
                src = inout(reg) src.as_ptr() => _,
                dst = inout(reg) dst.as_mut_ptr() => _,
                out("lr") _,
                out("d0") _,
                out("d1") _,
                options(nostack),
            );
        }
    }
}

/// Depthwise sums of 16 neighbouring channels: `acc[j] + Σ_taps w[tap.w + j]·(x[tap.x + j] +
/// offset)`, wrapping (the reference's i32 sums). Per tap one LDRD of its offsets, four VLDRB.S32
/// of input and of weights (4 channels each, widened to i32), then per 4 channels VADD of the
/// offset, VMUL and VADD: 23 instructions per 16 multiply-accumulates. Returns `acc` unchanged
/// if a tap's 16 bytes would leave `x` or `w`.
pub fn depthwise16(x: &[i8], w: &[i8], taps: &[Tap], offset: i32, acc: [i32; 16]) -> [i32; 16] {
    let inside = taps.iter().all(|t| t.x + 16 <= x.len() && t.w + 16 <= w.len());
    if taps.is_empty() || !inside {
        return acc;
    }
    let mut sums = acc;
    // SAFETY: reads x[tap.x..][..16] and w[tap.w..][..16] for each tap (checked above), the
    // taps (two words each, `Tap` is repr(C)) and sums[..16], and writes sums[..16]; q0–q5
    // (d0–d11) and lr are declared clobbered.
    unsafe {
        core::arch::asm!(
            "vldrw.u32 q0, [{sums}]",
            "vldrw.u32 q1, [{sums}, #16]",
            "vldrw.u32 q2, [{sums}, #32]",
            "vldrw.u32 q3, [{sums}, #48]",
            "dls lr, {n}",
            "2:",
            "ldrd r2, r3, [{taps}], #8",
            "add r2, r2, {x}",
            "add r3, r3, {w}",
            "vldrb.s32 q4, [r2]",
            "vldrb.s32 q5, [r3]",
            "vadd.i32 q4, q4, {offset}",
            "vmul.i32 q4, q4, q5",
            "vadd.i32 q0, q0, q4",
            "vldrb.s32 q4, [r2, #4]",
            "vldrb.s32 q5, [r3, #4]",
            "vadd.i32 q4, q4, {offset}",
            "vmul.i32 q4, q4, q5",
            "vadd.i32 q1, q1, q4",
            "vldrb.s32 q4, [r2, #8]",
            "vldrb.s32 q5, [r3, #8]",
            "vadd.i32 q4, q4, {offset}",
            "vmul.i32 q4, q4, q5",
            "vadd.i32 q2, q2, q4",
            "vldrb.s32 q4, [r2, #12]",
            "vldrb.s32 q5, [r3, #12]",
            "vadd.i32 q4, q4, {offset}",
            "vmul.i32 q4, q4, q5",
            "vadd.i32 q3, q3, q4",
            "le lr, 2b",
            "vstrw.32 q0, [{sums}]",
            "vstrw.32 q1, [{sums}, #16]",
            "vstrw.32 q2, [{sums}, #32]",
            "vstrw.32 q3, [{sums}, #48]",
            n = in(reg) taps.len(),
            taps = inout(reg) taps.as_ptr() => _,
            x = in(reg) x.as_ptr(),
            w = in(reg) w.as_ptr(),
            offset = in(reg) offset,
            sums = in(reg) sums.as_mut_ptr(),
            // The widening loads take a base in r0–r7.
            out("r2") _,
            out("r3") _,
            out("lr") _,
            out("d0") _,
            out("d1") _,
            out("d2") _,
            out("d3") _,
            out("d4") _,
            out("d5") _,
            out("d6") _,
            out("d7") _,
            out("d8") _,
            out("d9") _,
            out("d10") _,
            out("d11") _,
            options(nostack),
        );
    }
    sums
}

/// `out[j] = ` the int8 requantization of `sums[j]` by `requant[j]` (one per channel, each
/// multiplying by a number ≥ 0 and shifting right: `requant_down`'s case), 4 channels per
/// vector: VLD20/VLD21 split the channels' multipliers and shifts, VQRDMULH is the rounding
/// doubling high multiply, a VQADD of −1 on negative values before VRSHL makes its rounding
/// ties go away from zero (TFLite's), then VQADD of the zero point, VMAX/VMIN of the clamp and
/// VSTRB of the low bytes: 13 instructions per 4 outputs. Returns `false`, writing nothing,
/// unless `sums`, `requant` and `out` have the same length, a multiple of 4, and every
/// requantization is down.
pub fn requant_down(io: &Int8Io, sums: &[i32], requant: &[Requant], out: &mut [i8]) -> bool {
    let n = sums.len();
    if n == 0 || !n.is_multiple_of(4) || requant.len() != n || out.len() != n || !super::requant_down::monotone(requant) {
        return false;
    }
    let limits = [io.act_min.max(-128), io.act_max.min(127), -31, 0];
    // SAFETY: reads sums[..n] and requant[..n] (two words each, `Requant` is repr(C)) and
    // limits[..3], writes out[..n] (all n checked equal, a multiple of 4); q0–q7 (d0–d15, the
    // callee-saved ones included) and lr are declared clobbered.
    unsafe {
        core::arch::asm!(
            "ldr {t}, [{limits}]",
            "vdup.32 q5, {t}",
            "ldr {t}, [{limits}, #4]",
            "vdup.32 q6, {t}",
            "ldr {t}, [{limits}, #8]",
            "vdup.32 q7, {t}",
            "dls lr, {groups}",
            "2:",
            "vld20.32 {{q0, q1}}, [{rq}]",
            "vld21.32 {{q0, q1}}, [{rq}]!",
            "vldrw.u32 q2, [{sums}], #16",
            "vqrdmulh.s32 q2, q2, q0",
            "vmax.s32 q1, q1, q7",
            "vshr.s32 q3, q1, #31",
            "vand q3, q3, q2",
            "vshr.s32 q3, q3, #31",
            "vqadd.s32 q2, q2, q3",
            "vrshl.s32 q2, q2, q1",
            "vqadd.s32 q2, q2, {offset}",
            "vmax.s32 q2, q2, q5",
            "vmin.s32 q2, q2, q6",
            "vstrb.32 q2, [r2], #4",
            "le lr, 2b",
            groups = in(reg) n / 4,
            rq = inout(reg) requant.as_ptr() => _,
            sums = inout(reg) sums.as_ptr() => _,
            // The narrowing store takes a base in r0–r7.
            inout("r2") out.as_mut_ptr() => _,
            offset = in(reg) io.output_offset,
            limits = in(reg) limits.as_ptr(),
            t = out(reg) _,
            out("lr") _,
            out("d0") _,
            out("d1") _,
            out("d2") _,
            out("d3") _,
            out("d4") _,
            out("d5") _,
            out("d6") _,
            out("d7") _,
            out("d10") _,
            out("d11") _,
            out("d12") _,
            out("d13") _,
            out("d14") _,
            out("d15") _,
            options(nostack),
        );
    }
    true
}
