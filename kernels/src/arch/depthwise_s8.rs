//! int8 DEPTHWISE_CONV_2D with one output channel per input channel, for every instruction set:
//! NHWC's channels are contiguous, so four channels' input and weight bytes are one word each;
//! their sums stay in registers across the pixel's taps (a table of the taps inside the input,
//! made once per pixel: the reference checks every tap of every channel). On the DSP extension
//! each word splits into i16 halves by SXTB16 (plus the input offset by SADD16) and each
//! product is one SMLABB/SMLATT: 12 instructions per 4 multiply-accumulates. Integer sums: the
//! reference's bytes.

use super::dsp::{sadd16, sxtb16, sxtb16_ror8};
use super::requant_down::output;
use crate::reference::int8::{channel_requant, Int8Io, Requant};
use crate::reference::Conv2dParams;

/// The taps along one axis whose input index `o·stride + k·dilation − pad` lies in `0..len`.
fn valid_taps(o: usize, stride: usize, dilation: usize, pad: usize, kernel: usize, len: usize) -> core::ops::Range<usize> {
    let first = (o * stride) as isize - pad as isize;
    let d = dilation.max(1) as isize;
    // The smallest k with first + k·d ≥ 0, and the first k with first + k·d ≥ len.
    let lo = if first >= 0 { 0 } else { ((-first + d - 1) / d) as usize };
    let hi = if first >= len as isize { 0 } else { ((len as isize - first + d - 1) / d) as usize };
    lo.min(kernel)..hi.min(kernel).max(lo.min(kernel))
}

/// `acc[j] + w[j]·(x[j] + offset)` for four channels from the words `x` and `w` of their four
/// bytes (`offsets`: the offset in both i16 halves): SXTB16 and SADD16 split the words into i16
/// halves (channels 0, 2 and 1, 3), and each product is one halfword multiply-accumulate
/// (SMLABB, SMLATT on the DSP extension).
#[inline(always)]
fn mac4(acc: [i32; 4], x: u32, w: u32, offsets: u32) -> [i32; 4] {
    let (xe, xo) = (sadd16(sxtb16(x), offsets), sadd16(sxtb16_ror8(x), offsets));
    let (we, wo) = (sxtb16(w), sxtb16_ror8(w));
    let lo = |v: u32| v as u16 as i16 as i32;
    let hi = |v: u32| (v >> 16) as u16 as i16 as i32;
    [
        acc[0].wrapping_add(lo(xe) * lo(we)),
        acc[1].wrapping_add(lo(xo) * lo(wo)),
        acc[2].wrapping_add(hi(xe) * hi(we)),
        acc[3].wrapping_add(hi(xo) * hi(wo)),
    ]
}

/// The most taps a pixel's table holds (larger kernels take the reference).
const MAX_TAPS: usize = 64;

/// A tap inside the input: the offsets of its pixel's first channel in the input and of its
/// first weight (two words, as Helium's loop reads them).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Tap {
    pub x: usize,
    pub w: usize,
}

/// DEPTHWISE_CONV_2D on int8 (see the reference's `depthwise_conv2d_s8`) when `out_c == in_c`
/// and the kernel has at most 64 taps; returns `false`, computing nothing, otherwise or for
/// short operands.
pub fn depthwise_conv2d_s8(
    p: &Conv2dParams,
    io: &Int8Io,
    requant: &[Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
) -> bool {
    let c = p.in_c;
    let (oh, ow) = (p.out_h(), p.out_w());
    if p.out_c != c
        || c == 0
        || p.kernel_h * p.kernel_w > MAX_TAPS
        || x.len() < p.batch * p.in_h * p.in_w * c
        || w.len() < p.kernel_h * p.kernel_w * c
        || y.len() < p.batch * oh * ow * c
        || bias.is_some_and(|b| b.len() < c)
    {
        return false;
    }
    let offsets = (io.input_offset as u16 as u32) * 0x1_0001;
    // Per pixel: the input and weight offsets of each tap inside the input.
    let mut taps = [Tap::default(); MAX_TAPS];
    for b in 0..p.batch {
        for oy in 0..oh {
            let rows = valid_taps(oy, p.stride_h, p.dilation_h, p.pad_top, p.kernel_h, p.in_h);
            for ox in 0..ow {
                let cols = valid_taps(ox, p.stride_w, p.dilation_w, p.pad_left, p.kernel_w, p.in_w);
                let mut n = 0;
                for ky in rows.clone() {
                    let iy = oy * p.stride_h + ky * p.dilation_h - p.pad_top;
                    for kx in cols.clone() {
                        let ix = ox * p.stride_w + kx * p.dilation_w - p.pad_left;
                        taps[n] = Tap { x: ((b * p.in_h + iy) * p.in_w + ix) * c, w: (ky * p.kernel_w + kx) * c };
                        n += 1;
                    }
                }
                let taps = &taps[..n];
                let out = &mut y[((b * oh + oy) * ow + ox) * c..][..c];
                let whole = c / 4 * 4;
                // Helium: 16 channels at a time.
                #[allow(unused_mut)]
                let mut first = 0;
                #[cfg(all(target_arch = "arm", feature = "mve"))]
                while crate::dispatch::active() == crate::dispatch::Isa::Mve && first + 16 <= c {
                    let acc = core::array::from_fn(|j| bias.map_or(0, |bias| bias[first + j]));
                    let sums = super::mve_int8::depthwise16(&x[first..], &w[first..], taps, io.input_offset, acc);
                    let outs = &mut out[first..first + 16];
                    if requant.len() < c || !super::mve_int8::requant_down(io, &sums, &requant[first..first + 16], outs) {
                        for (j, (o, &a)) in outs.iter_mut().zip(sums.iter()).enumerate() {
                            *o = output(io, a, channel_requant(requant, first + j));
                        }
                    }
                    first += 16;
                }
                for c0 in (first..whole).step_by(4) {
                    let mut acc: [i32; 4] = core::array::from_fn(|j| bias.map_or(0, |bias| bias[c0 + j]));
                    let (xp, wp) = (x.as_ptr().wrapping_add(c0), w.as_ptr().wrapping_add(c0));
                    for &Tap { x: xi, w: wi } in taps {
                        // SAFETY: a tap's pixel lies inside the input (`valid_taps`) and its
                        // weights inside the kernel, so with `c0 + 4 ≤ c` both words lie within
                        // `x` and `w`, whose lengths were checked above; any alignment.
                        let (xw, ww) = unsafe { (xp.add(xi).cast::<u32>().read_unaligned(), wp.add(wi).cast::<u32>().read_unaligned()) };
                        acc = mac4(acc, u32::from_le(xw), u32::from_le(ww), offsets);
                    }
                    for (j, (o, &a)) in out[c0..c0 + 4].iter_mut().zip(acc.iter()).enumerate() {
                        *o = output(io, a, channel_requant(requant, c0 + j));
                    }
                }
                for ch in whole..c {
                    let acc = taps.iter().fold(bias.map_or(0, |bias| bias[ch]), |a, &Tap { x: xi, w: wi }| {
                        a.wrapping_add((w[wi + ch] as i32).wrapping_mul(x[xi + ch] as i32 + io.input_offset))
                    });
                    out[ch] = output(io, acc, channel_requant(requant, ch));
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks;

    /// The shared depthwise checks (odd channel counts, padding on each side, stride,
    /// dilation, a batch of two), and a channel multiplier of 2 left to the reference.
    #[test]
    fn equals_the_reference() {
        assert!(checks::depthwise(&depthwise_conv2d_s8).unwrap() > 0);
        let io = Int8Io { input_offset: 7, output_offset: -3, act_min: -128, act_max: 127 };
        let p = Conv2dParams::plain(1, [4, 3, 3], 8, [3, 3], [1, 1], [1, 1]);
        assert!(!depthwise_conv2d_s8(&p, &io, &[], &[0; 36], &[0; 72], None, &mut [0; 72]), "a channel multiplier of 2");
    }
}
