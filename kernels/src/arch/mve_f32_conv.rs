//! Helium f32 convolution (unfused: any kernel size, padding, dilation, row stride and groups,
//! depthwise included; stride 1 along the row), one output row at a time: a table of the row's
//! taps inside the input (input channel, kernel row, kernel column, in the reference's order)
//! is made once per row, then per block of 16 output columns the sums stay in four vector
//! registers across every tap: per tap one LDRD of its offsets, one LDR of its weight, and 4
//! VLDRW, 4 VMUL, 4 VADD (the reference's unfused `y += w·x`): 15 instructions and a loop end
//! per 16 MACs. Columns left over go 4 at a time, the last group's loads and stores predicated
//! (VCTP); columns whose taps reach into the padding take the reference's sums. Bit for bit the
//! reference but for subnormal values, which Helium flushes to zero (see `mve_f32`).

use crate::reference::Conv2dParams;

/// The most taps a row's table holds (larger kernels take the reference).
const MAX_TAPS: usize = 128;

/// One tap of an output row: the input offset of its value for the row's first interior
/// column, and its weight's offset (two words, as the assembly reads them).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RowTap {
    x: usize,
    w: usize,
}

/// `y = conv(x, w) + bias` (see the reference's `conv2d_f32`) where the row stride is 1 and a
/// row's taps fit the table; returns `false`, touching nothing, otherwise or for short
/// operands. Not inlined: its tap table (1 KB) stays off the stack of callers that never get here.
#[inline(never)]
pub fn conv2d_f32(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> bool {
    let (oh, ow, gc) = (p.out_h(), p.out_w(), p.group_in_c());
    let taps_per_oc = gc * p.kernel_h * p.kernel_w;
    let fits = x.len() >= p.batch * p.in_c * p.in_h * p.in_w
        && w.len() >= p.out_c * taps_per_oc
        && y.len() >= p.batch * p.out_c * oh * ow
        && bias.is_none_or(|b| b.len() >= p.out_c);
    if p.stride_w != 1 || p.groups == 0 || !p.out_c.is_multiple_of(p.groups) || taps_per_oc > MAX_TAPS || !fits {
        return false;
    }
    // Output columns every kernel column reads inside the input: ox + kx·d − pad_left in
    // [0, in_w) for every kx.
    let reach = (p.kernel_w - 1) * p.dilation_w;
    let lo = p.pad_left.min(ow);
    let hi = (p.in_w + p.pad_left).saturating_sub(reach).min(ow).max(lo);
    let mut taps = [RowTap::default(); MAX_TAPS];
    let out_per_group = p.out_c / p.groups;
    for b in 0..p.batch {
        for oc in 0..p.out_c {
            let first_ic = oc / out_per_group * gc;
            let start = bias.map_or(0.0, |b| b[oc]);
            for oy in 0..oh {
                let row = &mut y[((b * p.out_c + oc) * oh + oy) * ow..][..ow];
                let mut n = 0;
                for ic in 0..gc {
                    let plane = (b * p.in_c + first_ic + ic) * p.in_h * p.in_w;
                    for ky in 0..p.kernel_h {
                        let Some(iy) = (oy * p.stride_h + ky * p.dilation_h).checked_sub(p.pad_top).filter(|&iy| iy < p.in_h) else {
                            continue;
                        };
                        for kx in 0..p.kernel_w {
                            let x_at = plane + iy * p.in_w + lo + kx * p.dilation_w - p.pad_left;
                            taps[n] = RowTap { x: x_at, w: (oc * gc + ic) * p.kernel_h * p.kernel_w + ky * p.kernel_w + kx };
                            n += 1;
                        }
                    }
                }
                if lo > 0 || hi < ow {
                    reference_row(p, x, w, start, b, oc, oy, row);
                }
                asm::interior(&mut row[lo..hi], start, &x[..], &w[..], &taps[..n]);
            }
        }
    }
    true
}

/// Row `oy` of output channel `oc` the reference's way (every tap inside the input, columns
/// clipped), for the columns that reach into the padding.
#[allow(clippy::too_many_arguments)]
fn reference_row(p: &Conv2dParams, x: &[f32], w: &[f32], start: f32, b: usize, oc: usize, oy: usize, row: &mut [f32]) {
    row.fill(start);
    let gc = p.group_in_c();
    let first_ic = oc / (p.out_c / p.groups) * gc;
    for ic in 0..gc {
        let plane = (b * p.in_c + first_ic + ic) * p.in_h * p.in_w;
        let kernel = (oc * gc + ic) * p.kernel_h * p.kernel_w;
        p.for_each_tap_of_row(oy, |t| {
            let wv = w[kernel + t.ky * p.kernel_w + t.kx];
            let input = &x[plane + t.iy * p.in_w + t.ix0..][..t.ox1 - t.ox0];
            row[t.ox0..t.ox1].iter_mut().zip(input).for_each(|(y, &x)| *y += wv * x);
        });
    }
}

mod asm {
    use super::RowTap;

    /// `out[j] = start + Σ_taps w[tap.w] · x[tap.x + j]` in the taps' order, 16 columns at a
    /// time, then 4 with the last group predicated.
    pub(super) fn interior(out: &mut [f32], start: f32, x: &[f32], w: &[f32], taps: &[RowTap]) {
        let width = out.len();
        let inside = taps.iter().all(|t| t.x + width <= x.len() && t.w < w.len());
        if width == 0 || !inside {
            return;
        }
        if taps.is_empty() {
            out.fill(start);
            return;
        }
        let mut c = 0;
        while c + 16 <= width {
            // SAFETY: reads x[tap.x + c ..][..16] and w[tap.w] for each tap (within `inside`),
            // the taps (two words each, repr(C)), writes out[c..c + 16]; q0–q4 (d0–d9) and lr
            // are declared clobbered.
            unsafe {
                core::arch::asm!(
                    "vdup.32 q0, {start}",
                    "vmov q1, q0",
                    "vmov q2, q0",
                    "vmov q3, q0",
                    "dls lr, {n}",
                    "2:",
                    "ldrd {xo}, {wo}, [{taps}], #8",
                    "ldr {wv}, [{w}, {wo}, lsl #2]",
                    "add {xo}, {x}, {xo}, lsl #2",
                    "vldrw.u32 q4, [{xo}]",
                    "vmul.f32 q4, q4, {wv}",
                    "vadd.f32 q0, q0, q4",
                    "vldrw.u32 q4, [{xo}, #16]",
                    "vmul.f32 q4, q4, {wv}",
                    "vadd.f32 q1, q1, q4",
                    "vldrw.u32 q4, [{xo}, #32]",
                    "vmul.f32 q4, q4, {wv}",
                    "vadd.f32 q2, q2, q4",
                    "vldrw.u32 q4, [{xo}, #48]",
                    "vmul.f32 q4, q4, {wv}",
                    "vadd.f32 q3, q3, q4",
                    "le lr, 2b",
                    "vstrw.32 q0, [{out}]",
                    "vstrw.32 q1, [{out}, #16]",
                    "vstrw.32 q2, [{out}, #32]",
                    "vstrw.32 q3, [{out}, #48]",
                    start = in(reg) start.to_bits(),
                    n = in(reg) taps.len(),
                    taps = inout(reg) taps.as_ptr() => _,
                    w = in(reg) w.as_ptr(),
                    x = in(reg) x[c..].as_ptr(),
                    out = in(reg) out[c..].as_mut_ptr(),
                    xo = out(reg) _,
                    wo = out(reg) _,
                    wv = out(reg) _,
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
            c += 16;
        }
        while c < width {
            let lanes = (width - c).min(4);
            // SAFETY: predicated to `lanes` values: reads x[tap.x + c ..][..lanes] and
            // w[tap.w] for each tap (within `inside`: c + lanes ≤ width), writes
            // out[c..c + lanes]; q0, q1 (d0–d3) and lr are declared clobbered.
            unsafe {
                core::arch::asm!(
                    "vctp.32 {lanes}",
                    "vdup.32 q0, {start}",
                    "dls lr, {n}",
                    "2:",
                    "ldrd {xo}, {wo}, [{taps}], #8",
                    "ldr {wv}, [{w}, {wo}, lsl #2]",
                    "add {xo}, {x}, {xo}, lsl #2",
                    "vpst",
                    "vldrwt.u32 q1, [{xo}]",
                    "vmul.f32 q1, q1, {wv}",
                    "vadd.f32 q0, q0, q1",
                    "le lr, 2b",
                    "vpst",
                    "vstrwt.32 q0, [{out}]",
                    lanes = in(reg) lanes,
                    start = in(reg) start.to_bits(),
                    n = in(reg) taps.len(),
                    taps = inout(reg) taps.as_ptr() => _,
                    w = in(reg) w.as_ptr(),
                    x = in(reg) x[c..].as_ptr(),
                    out = in(reg) out[c..].as_mut_ptr(),
                    xo = out(reg) _,
                    wo = out(reg) _,
                    wv = out(reg) _,
                    out("lr") _,
                    out("d0") _,
                    out("d1") _,
                    out("d2") _,
                    out("d3") _,
                    options(nostack),
                );
            }
            c += lanes;
        }
    }
}
