//! Helium f32 kernels for the sparse fused conv backward of a 3×3 kernel (`arch::m4`'s
//! `interior_row_backward`): a conv row's gradient has at most one value per pooling window,
//! so per nonzero column the three kernel columns of each kernel row are one vector (3 lanes
//! of 4). Weight gradients: per column, three VLDRW of input (one per kernel row), VMUL by the
//! gradient and VADD into three sums; input gradients: per column (descending) and kernel row,
//! VLDRW of the input gradient, VMUL of the weights by the gradient, VADD, and a VSTRW
//! predicated (VCTP) to the 3 lanes. Each sum and each input gradient gets the reference's
//! terms in its order (VMUL then VADD: the reference's unfused `y += w·x`), so the results are
//! `arch::m4`'s bit for bit but for subnormal values, which Helium flushes to zero (see
//! `mve_f32`).

use super::m4::{GradColumn, Rows3};

/// The furthest value a column's 4-lane load reaches past `rows.first`: the last row, the
/// largest column, and one value beyond the 3 used (so the caller's slice must be longer).
fn reach(rows: Rows3, cols: &[GradColumn]) -> Option<usize> {
    let last = cols.iter().map(|c| c.cx).max()?;
    (last + 3 <= rows.width).then_some(rows.first + 2 * rows.row_step + last + 3)
}

/// `dw[3·ky + kx] += Σ_j g_j · x[row ky][cx_j + kx]` (the columns ascending, each sum from
/// −0). Returns `false`, touching nothing, if a load would leave `x`, a column does not fit the
/// row, or `dw` is short.
pub fn add_tap_grads_3x3(x: &[f32], rows: Rows3, cols: &[GradColumn], dw: &mut [f32]) -> bool {
    if reach(rows, cols).is_none_or(|r| r >= x.len()) || dw.len() < 9 {
        return false;
    }
    let base = x[rows.first..].as_ptr();
    // SAFETY: reads x[first + ky·row_step + cx ..][..4] for ky < 3 and each column (below
    // `reach` < x.len()), the columns (two words each, `GradColumn` is repr(C)), and
    // dw[..9]; writes dw[..9] only (the last row's stores predicated to 3 lanes); q0–q3 (d0–d7)
    // and lr are declared clobbered.
    unsafe {
        core::arch::asm!(
            "movs {t}, #3",
            "vctp.32 {t}",
            "mov.w {t}, #0x80000000",
            "vdup.32 q0, {t}",
            "vmov q1, q0",
            "vmov q2, q0",
            "dls lr, {n}",
            "2:",
            "ldrd {t}, {g}, [{cols}], #8",
            "add.w {a}, {base}, {t}, lsl #2",
            "vldrw.u32 q3, [{a}]",
            "vmul.f32 q3, q3, {g}",
            "vadd.f32 q0, q0, q3",
            "add {a}, {a}, {step}",
            "vldrw.u32 q3, [{a}]",
            "vmul.f32 q3, q3, {g}",
            "vadd.f32 q1, q1, q3",
            "add {a}, {a}, {step}",
            "vldrw.u32 q3, [{a}]",
            "vmul.f32 q3, q3, {g}",
            "vadd.f32 q2, q2, q3",
            "le lr, 2b",
            "vpst",
            "vldrwt.u32 q3, [{dw}]",
            "vadd.f32 q0, q3, q0",
            "vpst",
            "vstrwt.32 q0, [{dw}]",
            "vpst",
            "vldrwt.u32 q3, [{dw}, #12]",
            "vadd.f32 q1, q3, q1",
            "vpst",
            "vstrwt.32 q1, [{dw}, #12]",
            "vpst",
            "vldrwt.u32 q3, [{dw}, #24]",
            "vadd.f32 q2, q3, q2",
            "vpst",
            "vstrwt.32 q2, [{dw}, #24]",
            n = in(reg) cols.len(),
            cols = inout(reg) cols.as_ptr() => _,
            base = in(reg) base,
            step = in(reg) 4 * rows.row_step,
            dw = in(reg) dw.as_mut_ptr(),
            t = out(reg) _,
            g = out(reg) _,
            a = out(reg) _,
            out("lr") _,
            out("d0") _,
            out("d1") _,
            out("d2") _,
            out("d3") _,
            out("d4") _,
            out("d5") _,
            out("d6") _,
            out("d7") _,
            options(nostack),
        );
    }
    true
}

/// `dx[row ky][cx_j + kx] += w[3·ky + kx] · g_j`, the columns descending and `kx` ascending
/// (the reference's order for each value). Returns `false`, touching nothing, if a load would
/// leave `dx`, a column does not fit the row, or `w` is short.
pub fn add_input_grads_3x3(dx: &mut [f32], rows: Rows3, w: &[f32], cols: &[GradColumn]) -> bool {
    if reach(rows, cols).is_none_or(|r| r >= dx.len()) || w.len() < 9 {
        return false;
    }
    let base = dx[rows.first..].as_mut_ptr();
    // SAFETY: reads w[..9] (predicated loads of 3 lanes), the columns from the last (two words
    // each, repr(C)), and dx[first + ky·row_step + cx ..][..4] (below `reach` < dx.len());
    // writes the first 3 of those 4 (predicated stores); q0–q4 (d0–d9) and lr are declared
    // clobbered.
    unsafe {
        core::arch::asm!(
            "movs {t}, #3",
            "vctp.32 {t}",
            "vpst",
            "vldrwt.u32 q0, [{w}]",
            "vpst",
            "vldrwt.u32 q1, [{w}, #12]",
            "vpst",
            "vldrwt.u32 q2, [{w}, #24]",
            "dls lr, {n}",
            "2:",
            "ldrd {t}, {g}, [{end}, #-8]!",
            "add.w {a}, {base}, {t}, lsl #2",
            "vldrw.u32 q3, [{a}]",
            "vmul.f32 q4, q0, {g}",
            "vadd.f32 q3, q3, q4",
            "vpst",
            "vstrwt.32 q3, [{a}]",
            "add {a}, {a}, {step}",
            "vldrw.u32 q3, [{a}]",
            "vmul.f32 q4, q1, {g}",
            "vadd.f32 q3, q3, q4",
            "vpst",
            "vstrwt.32 q3, [{a}]",
            "add {a}, {a}, {step}",
            "vldrw.u32 q3, [{a}]",
            "vmul.f32 q4, q2, {g}",
            "vadd.f32 q3, q3, q4",
            "vpst",
            "vstrwt.32 q3, [{a}]",
            "le lr, 2b",
            n = in(reg) cols.len(),
            end = inout(reg) cols.as_ptr_range().end => _,
            base = in(reg) base,
            step = in(reg) 4 * rows.row_step,
            w = in(reg) w.as_ptr(),
            t = out(reg) _,
            g = out(reg) _,
            a = out(reg) _,
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
            options(nostack),
        );
    }
    true
}
