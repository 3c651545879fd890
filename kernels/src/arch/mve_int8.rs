//! Helium (Armv8.1-M MVE: Cortex-M55, M85) dot products for the int8 column kernels
//! (`int8_columns`): tail-predicated low-overhead loops (DLSTP/LETP) — per 16 values one VLDRB
//! of the column, and per output channel one VLDRB of weights and one VMLADAVA (16
//! multiply-accumulates into a scalar): 9 instructions and a loop end per 64 MACs for four
//! channels; the weight sums by VADDVA, the gathered runs copied by VLDRB/VSTRB. Lanes past the
//! end are neither loaded nor accumulated. On a real M55 each vector instruction takes two
//! beats, overlapping a load with a multiply when they alternate, as here.

use super::int8_columns::Dot;

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
