//! int8 convolution (with a fused max pool) and fully connected kernels for the DSP extension
//! (Cortex-M4/M7/M33/M55: SXTB16, SADD16 and SMLAD through `asm!`; plain Rust that computes the
//! same elsewhere, so the host tests check the logic). The receptive fields of four outputs
//! (four positions of a row, or the four conv outputs of a 2×2 pool window) are gathered once
//! into four interleaved columns of i16 values with the input offset added (padding: 0), in
//! the order SXTB16 unpacks a weight word (`x0, x2 | x1, x3` per group of four values); then
//! for each output channel one loop (assembly on Arm) loads a weight word, unpacks it, and
//! feeds eight SMLADs from four LDRDs: 17 instructions per 16 multiply-accumulates. (On a
//! real M4 an LDRD takes three cycles and SMLAD one.) A max pool is taken over the raw sums and
//! requantized once per pooled value: requantization with a multiplier ≥ 0 and a right shift
//! is monotone, so this is the conv-then-pool result bit for bit (other requantizations take
//! the reference). Integer sums are exact: every result is the reference's.

use super::dsp::{sadd16, smlad, sxtb16, sxtb16_ror8, word};
use super::requant_down::{monotone, output};
use crate::reference::int8::{channel_requant, Int8Io, Requant};
use crate::reference::{Conv2dParams, Pool2dParams};

/// Outputs computed together: the columns gathered side by side.
const LANES: usize = 4;

/// i32 words of one column of `k` values: two per group of four, the last group padded with 0.
pub const fn column_words(k: usize) -> usize {
    k.div_ceil(4) * 2
}

/// Scratch bytes the convolution needs: four interleaved columns.
pub const fn conv_scratch_bytes(k: usize) -> usize {
    LANES * 4 * column_words(k)
}

/// The i16 index of value `k` of lane `lane` in the interleaved columns: per group of four
/// values, eight words (`even, odd` for each lane); the even word holds values 0 and 2, the odd
/// word 1 and 3.
#[inline(always)]
fn slot(k: usize, lane: usize) -> usize {
    2 * (8 * (k / 4) + 2 * lane + (k & 1)) + ((k >> 1) & 1)
}

/// Whether these kernels compute `p` with `requant` (one group, sums and requantization as
/// they need), given `scratch` bytes.
fn takes(p: &Conv2dParams, requant: &[Requant], scratch: usize, pooled: bool) -> bool {
    let k = p.kernel_h * p.kernel_w * p.in_c;
    let monotone = monotone(requant);
    p.groups == 1 && scratch >= conv_scratch_bytes(k) && (monotone || !pooled)
}

/// The receptive field of output `(b, oy, ox)` with the input offset added, into lane `lane` of
/// `cols` (the padding halves of the last group are left as they are: 0). `cols` holds at least
/// [`column_words`]`(k)` words per lane (checked by the caller).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gather(
    p: &Conv2dParams,
    offset: i32,
    x: &[i8],
    (b, oy, ox): (usize, usize, usize),
    lane: usize,
    cols: &mut [u32],
    table: &[(u32, u16)],
) {
    let run = p.kernel_w * p.in_c;
    let offsets = (offset as u16 as u32) * 0x1_0001;
    let k = p.kernel_h * run;
    if cols.len() < LANES * column_words(k) || lane >= LANES {
        return;
    }
    let halves = cols.as_mut_ptr().cast::<i16>();
    let (iy0, x0) = ((oy * p.stride_h) as isize - p.pad_top as isize, (ox * p.stride_w) as isize - p.pad_left as isize);
    let interior = iy0 >= 0
        && iy0 as usize + (p.kernel_h - 1) * p.dilation_h < p.in_h
        && x0 >= 0
        && x0 as usize + p.kernel_w <= p.in_w
        && p.dilation_w == 1;
    if interior && table.len() == k {
        // Every kernel row inside the input: each value's input offset and slot from the table
        // (lane 0's slot; a lane is 4 halves on).
        let start = ((b * p.in_h + iy0 as usize) * p.in_w + x0 as usize) * p.in_c;
        let span = (p.kernel_h - 1) * p.dilation_h * p.in_w * p.in_c + run;
        if let Some(field) = x.get(start..start + span) {
            for &(at, slot) in table {
                let v = field.get(at as usize).map_or(0, |&v| v as i32 + offset);
                // SAFETY: table slots are those of values < k, inside the columns (checked above).
                unsafe { halves.add(slot as usize + 4 * lane).write(v as i16) };
            }
            return;
        }
    }
    // Writes value `k` of the lane: slot(k, lane) < 2 · 8 · ceil(k / 4) ≤ 2 · cols.len().
    let put = |k: usize, v: i32| {
        // SAFETY: every caller passes `k` below the column's length, checked above.
        unsafe { halves.add(slot(k, lane)).write(v as i16) }
    };
    for ky in 0..p.kernel_h {
        let iy = (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
        let x0 = (ox * p.stride_w) as isize - p.pad_left as isize;
        let row_inside = (0..p.in_h as isize).contains(&iy);
        let k0 = ky * run;
        if row_inside && p.dilation_w == 1 && x0 >= 0 && x0 as usize + p.kernel_w <= p.in_w {
            // The kernel row lies inside the input: one contiguous run.
            let start = ((b * p.in_h + iy as usize) * p.in_w + x0 as usize) * p.in_c;
            let values = &x[start..start + run];
            if run.is_multiple_of(4) && k0.is_multiple_of(4) {
                // Whole groups: a word of four values becomes the lane's two words of the group.
                for (g, four) in (k0 / 4..).zip(values.chunks_exact(4)) {
                    let word = word(four);
                    cols[8 * g + 2 * lane] = sadd16(sxtb16(word), offsets);
                    cols[8 * g + 2 * lane + 1] = sadd16(sxtb16_ror8(word), offsets);
                }
            } else {
                for (j, &v) in values.iter().enumerate() {
                    put(k0 + j, v as i32 + offset);
                }
            }
            continue;
        }
        for kx in 0..p.kernel_w {
            let ix = x0 + (kx * p.dilation_w) as isize;
            let inside = row_inside && (0..p.in_w as isize).contains(&ix);
            for ic in 0..p.in_c {
                let v = if inside { x[((b * p.in_h + iy as usize) * p.in_w + ix as usize) * p.in_c + ic] as i32 + offset } else { 0 };
                put(k0 + kx * p.in_c + ic, v);
            }
        }
    }
}

/// Longest column whose slots [`conv2d_s8`] tabulates (kernel rows gathered value by value).
const TABLE: usize = 64;

/// For values `0..k` of an interior output, the input offset from its first value and lane 0's
/// slot, if `k` ≤ [`TABLE`] and rows are not whole groups.
fn slot_table(p: &Conv2dParams, table: &mut [(u32, u16); TABLE]) -> usize {
    let (run, k) = (p.kernel_w * p.in_c, p.kernel_h * p.kernel_w * p.in_c);
    let row_step = p.dilation_h * p.in_w * p.in_c;
    if k > TABLE || run.is_multiple_of(4) || (p.kernel_h * row_step) > u32::MAX as usize {
        return 0;
    }
    for (j, t) in table[..k].iter_mut().enumerate() {
        *t = (((j / run) * row_step + j % run) as u32, slot(j, 0) as u16);
    }
    k
}

/// The sums of one channel's `4 · groups` weights `w` with the four lanes of `cols`, added to
/// `acc`: per group one weight word, unpacked by SXTB16, eight SMLADs.
#[inline(always)]
fn dot4(w: &[i8], cols: &[u32], acc: [i32; LANES]) -> [i32; LANES] {
    let groups = (w.len() / 4).min(cols.len() / 8);
    if groups == 0 {
        return acc;
    }
    #[cfg(target_arch = "arm")]
    {
        let [mut a0, mut a1, mut a2, mut a3] = acc;
        // SAFETY: reads `4 · groups` bytes of `w` (LDR, any alignment on v7E-M) and `8 · groups`
        // words of `cols` (LDRD, word aligned: `cols` is a u32 slice), both within their slices;
        // registers only otherwise.
        unsafe {
            core::arch::asm!(
                "2:",
                "ldr {w}, [{pw}], #4",
                "sxtb16 {we}, {w}",
                "sxtb16 {w}, {w}, ror #8",
                "ldrd {x0}, {x1}, [{pc}], #8",
                "smlad {a0}, {we}, {x0}, {a0}",
                "smlad {a0}, {w}, {x1}, {a0}",
                "ldrd {x0}, {x1}, [{pc}], #8",
                "smlad {a1}, {we}, {x0}, {a1}",
                "smlad {a1}, {w}, {x1}, {a1}",
                "ldrd {x0}, {x1}, [{pc}], #8",
                "smlad {a2}, {we}, {x0}, {a2}",
                "smlad {a2}, {w}, {x1}, {a2}",
                "ldrd {x0}, {x1}, [{pc}], #8",
                "smlad {a3}, {we}, {x0}, {a3}",
                "smlad {a3}, {w}, {x1}, {a3}",
                "cmp {pw}, {end}",
                "bne 2b",
                pw = inout(reg) w.as_ptr() => _,
                pc = inout(reg) cols.as_ptr() => _,
                end = in(reg) w.as_ptr().add(4 * groups),
                w = out(reg) _,
                we = out(reg) _,
                x0 = out(reg) _,
                x1 = out(reg) _,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                options(nostack, readonly),
            );
        }
        [a0, a1, a2, a3]
    }
    #[cfg(not(target_arch = "arm"))]
    {
        let mut acc = acc;
        for (four, words) in w.chunks_exact(4).zip(cols.chunks_exact(8)).take(groups) {
            let word = word(four);
            let (we, wo) = (sxtb16(word), sxtb16_ror8(word));
            for (a, lane) in acc.iter_mut().zip(words.chunks_exact(2)) {
                *a = smlad(wo, lane[1], smlad(we, lane[0], *a));
            }
        }
        acc
    }
}

/// The raw sums (`bias` included) of one output channel (its weights `row`) for the four lanes
/// of `cols`.
#[inline(always)]
fn channel_sums(row: &[i8], cols: &[u32], bias: i32) -> [i32; LANES] {
    let k = row.len();
    let (groups, tail) = (k / 4, k % 4);
    let mut acc = dot4(&row[..4 * groups], cols, [bias; LANES]);
    if tail > 0 {
        // The last, partial group, zero-filled (its column halves are 0).
        let word = row[4 * groups..].iter().enumerate().fold(0u32, |v, (j, &x)| v | (x as u8 as u32) << (8 * j));
        let (we, wo) = (sxtb16(word), sxtb16_ror8(word));
        let last = &cols[8 * groups..8 * groups + 8];
        for (a, lane) in acc.iter_mut().zip(last.chunks_exact(2)) {
            *a = smlad(wo, lane[1], smlad(we, lane[0], *a));
        }
    }
    acc
}

/// The four interleaved columns in `scratch`, zeroed, or `None` if it is misaligned or short.
fn columns(scratch: &mut [u8], k: usize) -> Option<&mut [u32]> {
    // SAFETY: any bits are a valid u32; `align_to_mut` returns only the aligned middle.
    let (head, words, _) = unsafe { scratch.align_to_mut::<u32>() };
    let n = LANES * column_words(k);
    if !head.is_empty() || words.len() < n {
        return None;
    }
    // The last group's padding halves stay 0 (gathering writes only the k values).
    words[..n].fill(0);
    Some(&mut words[..n])
}

/// CONV_2D on int8, optionally followed by a max pool (`pool`, its clamp): see the reference's
/// `conv2d_s8` and `conv2d_maxpool_s8`. Returns `false`, computing nothing, for what it does
/// not take (groups, a pool over a non-monotone requantization, too little scratch).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_s8(
    p: &Conv2dParams,
    pool: Option<(&Pool2dParams, (i32, i32))>,
    io: &Int8Io,
    requant: &[Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
    scratch: &mut [u8],
) -> bool {
    let k = p.kernel_h * p.kernel_w * p.in_c;
    if !takes(p, requant, scratch.len(), pool.is_some()) {
        return false;
    }
    let Some(cols) = columns(scratch, k) else { return false };
    let mut slots = [(0u32, 0u16); TABLE];
    let n = slot_table(p, &mut slots);
    let table = &slots[..n];
    let requant_of = |c: usize| channel_requant(requant, c);
    let (oh, ow) = (p.out_h(), p.out_w());
    match pool {
        None => {
            let total = p.batch * oh * ow;
            let position = |i: usize| (i / (oh * ow), i / ow % oh, i % ow);
            for first in (0..total).step_by(LANES) {
                // The last outputs repeat the last position in the unused lanes.
                let lane_at = |lane: usize| (first + lane).min(total - 1);
                for lane in 0..LANES {
                    gather(p, io.input_offset, x, position(lane_at(lane)), lane, cols, table);
                }
                let used = LANES.min(total - first);
                for (c, row) in w.chunks_exact(k).take(p.out_c).enumerate() {
                    let sums = channel_sums(row, cols, bias.map_or(0, |b| b[c]));
                    let r = requant_of(c);
                    for (lane, &s) in sums[..used].iter().enumerate() {
                        y[(first + lane) * p.out_c + c] = output(io, s, r);
                    }
                }
            }
        }
        Some((pool, act)) => {
            let (ph, pw) = (pool.out_h(), pool.out_w());
            for b in 0..p.batch {
                for py in 0..ph {
                    for px in 0..pw {
                        let (rows, cols_range) = crate::reference::int8::pool_window(pool, py, px);
                        let width = cols_range.len();
                        let count = rows.len() * width;
                        let at = ((b * ph + py) * pw + px) * p.out_c;
                        if count == 0 {
                            // An all-padding window pools nothing: the clamp's minimum, as the reference.
                            y[at..at + p.out_c].fill(act.0 as i8);
                            continue;
                        }
                        let position = |i: usize| (b, rows.start + i / width, cols_range.start + i % width);
                        // Windows of more than four outputs: quads in turn, the maxima kept in `y`
                        // as the requantized maxima (requantization is monotone: the same bytes).
                        for first in (0..count).step_by(LANES) {
                            for lane in 0..LANES {
                                gather(p, io.input_offset, x, position((first + lane).min(count - 1)), lane, cols, table);
                            }
                            let outs = &mut y[at..at + p.out_c];
                            for (c, (row, o)) in w.chunks_exact(k).zip(outs.iter_mut()).enumerate() {
                                let m = channel_sums(row, cols, bias.map_or(0, |b| b[c])).into_iter().max().unwrap_or(i32::MIN);
                                let v = (output(io, m, requant_of(c)) as i32).clamp(act.0, act.1) as i8;
                                *o = if first == 0 { v } else { (*o).max(v) };
                            }
                        }
                    }
                }
            }
        }
    }
    true
}

/// A 1×1 CONV_2D in place (see the reference's `pointwise_conv2d_s8_in_place`): four pixels
/// gathered into the columns, then their outputs written over their inputs (`out_c ≤ in_c`:
/// never over a pixel not yet gathered). Returns `false` for what it does not take.
#[allow(clippy::too_many_arguments)]
pub fn pointwise_s8_in_place(
    p: &Conv2dParams,
    io: &Int8Io,
    requant: &[Requant],
    xy: &mut [i8],
    w: &[i8],
    bias: Option<&[i32]>,
    scratch: &mut [u8],
) -> bool {
    let k = p.in_c;
    if !crate::reference::int8::pointwise_in_place(p) || !takes(p, requant, scratch.len(), false) {
        return false;
    }
    let Some(cols) = columns(scratch, k) else { return false };
    let requant_of = |c: usize| channel_requant(requant, c);
    let total = p.batch * p.in_h * p.in_w;
    let position = |i: usize| (i / (p.in_h * p.in_w), i / p.in_w % p.in_h, i % p.in_w);
    for first in (0..total).step_by(LANES) {
        for lane in 0..LANES {
            gather(p, io.input_offset, xy, position((first + lane).min(total - 1)), lane, cols, &[]);
        }
        let used = LANES.min(total - first);
        for (c, row) in w.chunks_exact(k).take(p.out_c).enumerate() {
            let sums = channel_sums(row, cols, bias.map_or(0, |b| b[c]));
            let r = requant_of(c);
            for (lane, &s) in sums[..used].iter().enumerate() {
                xy[(first + lane) * p.out_c + c] = output(io, s, r);
            }
        }
    }
    true
}

/// FULLY_CONNECTED on int8: see the reference's `fully_connected_s8`. No scratch: each input
/// word is unpacked once (SXTB16, SADD16 of the offset) and feeds four output channels (two
/// SMLADs each). Returns `false` for what it does not take (a multiplier < 0 or a left shift).
#[allow(clippy::too_many_arguments)]
pub fn fully_connected_s8(
    batch: usize,
    depth: usize,
    out: usize,
    io: &Int8Io,
    requant: &[Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
    _scratch: &mut [u8],
) -> bool {
    let requant_of = |c: usize| channel_requant(requant, c);
    if x.len() < batch * depth || w.len() < out * depth || y.len() < batch * out || depth == 0 {
        return false;
    }
    let offsets = (io.input_offset as u16 as u32) * 0x1_0001;
    let groups = depth / 4;
    let bias_of = |c: usize| bias.map_or(0, |b| b[c]);
    let full = 4 * groups;
    // Channel `c`'s sum over the values after the whole groups.
    let tail = |c: usize, row: &[i8], acc: i32| {
        w[c * depth + full..(c + 1) * depth]
            .iter()
            .zip(&row[full..])
            .fold(acc, |a, (&wv, &xv)| a.wrapping_add(wv as i32 * (xv as i32 + io.input_offset)))
    };
    for (row, ys) in x.chunks_exact(depth).zip(y.chunks_exact_mut(out)).take(batch) {
        let xs = &row[..full];
        let mut c = 0;
        while c + 4 <= out {
            let rows: [&[i8]; 4] = core::array::from_fn(|j| &w[(c + j) * depth..(c + j) * depth + full]);
            let mut acc: [i32; 4] = core::array::from_fn(|j| bias_of(c + j));
            for ((((xw, w0), w1), w2), w3) in xs
                .chunks_exact(4)
                .zip(rows[0].chunks_exact(4))
                .zip(rows[1].chunks_exact(4))
                .zip(rows[2].chunks_exact(4))
                .zip(rows[3].chunks_exact(4))
            {
                let xw = word(xw);
                let (xe, xo) = (sadd16(sxtb16(xw), offsets), sadd16(sxtb16_ror8(xw), offsets));
                for (a, ww) in acc.iter_mut().zip([w0, w1, w2, w3]) {
                    let ww = word(ww);
                    *a = smlad(sxtb16_ror8(ww), xo, smlad(sxtb16(ww), xe, *a));
                }
            }
            for (j, &a) in acc.iter().enumerate() {
                ys[c + j] = output(io, tail(c + j, row, a), requant_of(c + j));
            }
            c += 4;
        }
        for c in c..out {
            let mut a = bias_of(c);
            for (xw, ww) in xs.chunks_exact(4).zip(w[c * depth..c * depth + full].chunks_exact(4)) {
                let (xw, ww) = (word(xw), word(ww));
                let (xe, xo) = (sadd16(sxtb16(xw), offsets), sadd16(sxtb16_ror8(xw), offsets));
                a = smlad(sxtb16_ror8(ww), xo, smlad(sxtb16(ww), xe, a));
            }
            ys[c] = output(io, tail(c, row, a), requant_of(c));
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{self, Scratch};

    #[test]
    fn conv_and_pool_equal_the_reference() {
        let scratch = |p: &Conv2dParams| conv_scratch_bytes(p.kernel_h * p.kernel_w * p.in_c);
        assert!(checks::conv(&conv2d_s8, &scratch, true).unwrap() > 0);
    }

    #[test]
    fn pointwise_in_place_equals_the_reference() {
        assert!(checks::pointwise_in_place(&pointwise_s8_in_place, &|p| conv_scratch_bytes(p.in_c)).unwrap() > 0);
    }

    #[test]
    fn fully_connected_equals_the_reference() {
        #[allow(clippy::too_many_arguments)]
        fn kernel(
            batch: usize,
            depth: usize,
            out: usize,
            io: &Int8Io,
            rq: &[Requant],
            x: &[i8],
            w: &[i8],
            bias: Option<&[i32]>,
            y: &mut [i8],
        ) -> bool {
            fully_connected_s8(batch, depth, out, io, rq, x, w, bias, y, Scratch::new().bytes(0))
        }
        assert!(checks::fully_connected(&kernel).unwrap() > 0);
    }
}
