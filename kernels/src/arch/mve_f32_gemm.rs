//! Helium f32 matrix products for linear layers, bit for bit the reference's sums (VMUL then
//! VADD, each output's terms in the reference's order; subnormals flushed, see `mve_f32`):
//! - `c (+)= a · bᵀ` (`b` stored `[n, k]`: the forward), 8 outputs at a time: per step of `k`
//!   one LDR of `a` and two gather loads (VLDRW with a vector of 4 row addresses, written back
//!   one value on), each feeding a VMUL and a VADD: 8 instructions per 8 MACs. On a real M55 a
//!   gather takes a beat per element, twice a contiguous load's time.
//! - `c += a[p] · b[p, ..]` row after row (`c (+)= a · b`, the input gradient, and a weight
//!   gradient's row): a tail-predicated loop (DLSTP/LETP) over the row, per 4 columns VLDRW of
//!   `c` and `b`, VMUL, VADD, VSTRW: 6 instructions per 4 MACs with the loop end.

use crate::reference::Transpose;

/// `c (+)= op(a) · op(b)` for `a` not transposed (see the reference's `gemm_f32`); returns
/// `false`, touching nothing, for a transposed `a` or short operands.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32(t: Transpose, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) -> bool {
    if t.a || a.len() < m * k || b.len() < n * k || c.len() < m * n || k == 0 {
        return false;
    }
    let c = &mut c[..m * n];
    if !accumulate {
        c.fill(0.0);
    }
    for (row, out) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)).take(m) {
        match t.b {
            true => dot_rows(row, b, k, out),
            false => add_scaled_rows(out, row, 1, b, n, k),
        }
    }
    true
}

/// Row `o` of a linear layer's weight gradient (see the reference's
/// `linear_weight_grad_row_f32`): `row = Σ_p dy[p, o] · x[p, ..]` from 0, the rows in order.
/// Returns `false`, touching nothing, for short operands.
pub fn linear_weight_grad_row_f32(rows: usize, out: usize, o: usize, dy: &[f32], x: &[f32], row: &mut [f32]) -> bool {
    let inf = row.len();
    if rows == 0 || o >= out || dy.len() < rows * out || x.len() < rows * inf {
        return false;
    }
    row.fill(0.0);
    add_scaled_rows(row, &dy[o..], out, x, inf, rows);
    true
}

/// `out[j] += Σ_p row[p] · b[j, p]` (each sum from 0 over `p` ascending, then added), `b`
/// stored `[out.len(), k]`.
fn dot_rows(row: &[f32], b: &[f32], k: usize, out: &mut [f32]) {
    let mut j = 0;
    while j + 8 <= out.len() {
        let sums = asm::dot8(row, &b[j * k..(j + 8) * k], k);
        out[j..j + 8].iter_mut().zip(sums).for_each(|(o, s)| *o += s);
        j += 8;
    }
    for (o, w) in out[j..].iter_mut().zip(b[j * k..].chunks_exact(k)) {
        *o += row.iter().zip(w).fold(0.0f32, |acc, (&x, &v)| acc + x * v);
    }
}

/// `c[j] += Σ_p a[p·a_step] · b[p·n + j]` for p < rows, in order (`n = c.len()`).
fn add_scaled_rows(c: &mut [f32], a: &[f32], a_step: usize, b: &[f32], n: usize, rows: usize) {
    for p in 0..rows {
        asm::add_scaled(c, a[p * a_step], &b[p * n..][..n]);
    }
}

mod asm {
    /// `Σ_p row[p] · rows[l·k + p]` for l < 8, each from +0 over `p` ascending.
    pub(super) fn dot8(row: &[f32], rows: &[f32], k: usize) -> [f32; 8] {
        let mut sums = [0.0f32; 8];
        if k == 0 || row.len() < k || rows.len() < 8 * k {
            return sums;
        }
        // The rows' addresses one value before their first (the gathers write back before
        // loading).
        let base = rows.as_ptr() as usize;
        let addresses: [u32; 8] = core::array::from_fn(|l| (base + 4 * l * k) as u32 - 4);
        // SAFETY: lane l of the gathers reads rows[l·k + p] and the LDR row[p] for p < k (both
        // checked), writes sums[..8]; q0–q7 (d0–d15) and lr are declared clobbered.
        unsafe {
            core::arch::asm!(
                "vldrw.u32 q6, [{addr}]",
                "vldrw.u32 q7, [{addr}, #16]",
                "vmov.i32 q0, #0",
                "vmov.i32 q1, #0",
                "dls lr, {k}",
                "2:",
                "ldr {t}, [{row}], #4",
                "vldrw.u32 q4, [q6, #4]!",
                "vmul.f32 q4, q4, {t}",
                "vadd.f32 q0, q0, q4",
                "vldrw.u32 q5, [q7, #4]!",
                "vmul.f32 q5, q5, {t}",
                "vadd.f32 q1, q1, q5",
                "le lr, 2b",
                "vstrw.32 q0, [{sums}]",
                "vstrw.32 q1, [{sums}, #16]",
                k = in(reg) k,
                row = inout(reg) row.as_ptr() => _,
                addr = in(reg) addresses.as_ptr(),
                sums = in(reg) sums.as_mut_ptr(),
                t = out(reg) _,
                out("lr") _,
                out("d0") _,
                out("d1") _,
                out("d2") _,
                out("d3") _,
                out("d8") _,
                out("d9") _,
                out("d10") _,
                out("d11") _,
                out("d12") _,
                out("d13") _,
                out("d14") _,
                out("d15") _,
                options(nostack),
            );
        }
        sums
    }

    /// `c[j] += alpha · row[j]` for every j (`row` as long as `c`).
    pub(super) fn add_scaled(c: &mut [f32], alpha: f32, row: &[f32]) {
        let n = c.len();
        if n == 0 || row.len() != n {
            return;
        }
        // SAFETY: tail-predicated loads of c[..n] and row[..n] and stores of c[..n] (equal
        // lengths, checked); q0, q1 (d0–d3) and lr are declared clobbered.
        unsafe {
            core::arch::asm!(
                "dlstp.32 lr, {n}",
                "2:",
                "vldrw.u32 q0, [{c}]",
                "vldrw.u32 q1, [{row}], #16",
                "vmul.f32 q1, q1, {alpha}",
                "vadd.f32 q0, q0, q1",
                "vstrw.32 q0, [{c}], #16",
                "letp lr, 2b",
                n = in(reg) n,
                c = inout(reg) c.as_mut_ptr() => _,
                row = inout(reg) row.as_ptr() => _,
                alpha = in(reg) alpha.to_bits(),
                out("lr") _,
                out("d0") _,
                out("d1") _,
                out("d2") _,
                out("d3") _,
                options(nostack),
            );
        }
    }
}
