//! Checks of the int8 kernels (and, in `fused_f32`, the fused f32 convolution) against the reference, byte for byte, on odd shapes: shared by
//! the host tests (each instruction set's kernels, through plain Rust where the ISA is not the
//! host's) and the device (`firmware/src/bin/kcheck.rs` runs them through the dispatch on the
//! emulated cores, so the DSP and Helium kernels meet the reference on their own ISA). No heap:
//! operands live in fixed buffers on the stack (about 20 KB).

pub mod conv_f32;
pub mod fused_f32;
pub mod gemm_f32;

use crate::reference::int8::{conv2d_maxpool_s8, conv2d_s8, depthwise_conv2d_s8, fully_connected_s8, Int8Io, Requant};
use crate::reference::{Conv2dParams, Pool2dParams};

/// Values one operand buffer holds.
const MAX: usize = 4096;

/// The first check that found a kernel's bytes differing from the reference's, or a kernel
/// refusing what it should take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub check: &'static str,
    pub case: usize,
}

fn ensure(ok: bool, check: &'static str, case: usize) -> Result<(), Mismatch> {
    if ok {
        Ok(())
    } else {
        Err(Mismatch { check, case })
    }
}

/// Deterministic int8 values into `out`.
pub fn fill_bytes(out: &mut [i8], seed: usize) {
    for (i, v) in out.iter_mut().enumerate() {
        *v = ((i * 7919 + seed * 104_729) % 251) as u8 as i8;
    }
}

/// Deterministic values in [−1, 1), every 11th an exact zero.
pub fn fill_values(out: &mut [f32], seed: u32) {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for (i, v) in out.iter_mut().enumerate() {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        *v = if i % 11 == 0 { 0.0 } else { (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0 };
    }
}

/// One requantization per channel, multipliers spread out, into `out`.
pub fn fill_requants(out: &mut [Requant]) {
    for (c, r) in out.iter_mut().enumerate() {
        *r = Requant::from_real(0.004 + 0.0013 * c as f64);
    }
}

/// Word-aligned scratch.
pub struct Scratch([u32; MAX / 4]);

impl Scratch {
    pub fn new() -> Scratch {
        Scratch([0; MAX / 4])
    }
    /// The first `len` bytes (at most the whole buffer) and one more word, so that a kernel
    /// given a slice one byte in still has `len` bytes.
    pub fn bytes(&mut self, len: usize) -> &mut [u8] {
        let words = (len.div_ceil(4) + 1).min(self.0.len());
        // SAFETY: u32 memory viewed as bytes (any bits are valid for both).
        unsafe { core::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), words * 4) }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// A convolution kernel with the dispatch's signature; `false`: it refused.
pub type ConvKernel<'k> = &'k dyn Fn(
    &Conv2dParams,
    Option<(&Pool2dParams, (i32, i32))>,
    &Int8Io,
    &[Requant],
    &[i8],
    &[i8],
    Option<&[i32]>,
    &mut [i8],
    &mut [u8],
) -> bool;

/// `(in_c, in_h, in_w, out_c, kh, kw, stride, pad [t, l, b, r], dilation)`.
type Case = (usize, usize, usize, usize, usize, usize, usize, [usize; 4], usize);

/// Odd shapes: one input channel, K with every tail modulo 4 and 16, stride, padding on each
/// side, dilation.
const CASES: [Case; 8] = [
    (1, 7, 9, 8, 3, 3, 1, [0, 0, 0, 0], 1),
    (8, 6, 5, 16, 3, 3, 1, [0, 0, 0, 0], 1),
    (3, 8, 7, 5, 3, 2, 2, [1, 0, 1, 1], 1),
    (2, 9, 9, 3, 2, 3, 1, [2, 1, 0, 1], 2),
    (5, 4, 6, 7, 1, 1, 1, [0, 0, 0, 0], 1),
    (7, 3, 4, 9, 1, 1, 1, [0, 0, 0, 0], 1),
    (17, 4, 6, 7, 1, 1, 1, [0, 0, 0, 0], 1),
    (33, 3, 4, 9, 1, 1, 1, [0, 0, 0, 0], 1),
];

fn case_params(&(in_c, in_h, in_w, out_c, kh, kw, stride, pad, dil): &Case, batch: usize) -> Conv2dParams {
    Conv2dParams {
        pad_top: pad[0],
        pad_left: pad[1],
        pad_bottom: pad[2],
        pad_right: pad[3],
        dilation_h: dil,
        dilation_w: dil,
        ..Conv2dParams::plain(batch, [in_c, in_h, in_w], out_c, [kh, kw], [stride, stride], [0, 0])
    }
}

/// `kernel` (scratch of `scratch_bytes(p)`) against the reference on the odd shapes over a
/// batch of two, plain and with a 2×2 pool padded at the end; with `refuses_misaligned`, it
/// must refuse scratch one byte off a word. Returns the outputs compared.
pub fn conv(kernel: ConvKernel, scratch_bytes: &dyn Fn(&Conv2dParams) -> usize, refuses_misaligned: bool) -> Result<usize, Mismatch> {
    let io = Int8Io { input_offset: 17, output_offset: -5, act_min: -128, act_max: 127 };
    let (mut x, mut w, mut want, mut got) = ([0i8; MAX], [0i8; MAX], [0i8; MAX], [0i8; MAX]);
    let (mut bias, mut rq) = ([0i32; 64], [Requant::default(); 64]);
    let mut scratch = Scratch::new();
    let mut compared = 0;
    for (n, case) in CASES.iter().enumerate() {
        let p = case_params(case, 2);
        let (oh, ow) = (p.out_h(), p.out_w());
        let (x_len, w_len, y_len) = (2 * p.in_h * p.in_w * p.in_c, p.out_c * p.kernel_h * p.kernel_w * p.in_c, 2 * oh * ow * p.out_c);
        let (x, w) = (&mut x[..x_len], &mut w[..w_len]);
        fill_bytes(x, n);
        fill_bytes(w, n + 9);
        let (bias, rq) = (&mut bias[..p.out_c], &mut rq[..p.out_c]);
        for (c, b) in bias.iter_mut().enumerate() {
            *b = c as i32 * 977 - 3000;
        }
        fill_requants(rq);
        let scratch = scratch.bytes(scratch_bytes(&p));
        let (want, got) = (&mut want[..y_len], &mut got[..y_len]);
        conv2d_s8(&p, &io, rq, x, w, Some(bias), want);
        ensure(kernel(&p, None, &io, rq, x, w, Some(bias), got, scratch), "conv taken", n)?;
        ensure(got == want, "conv", n)?;
        ensure(want.iter().any(|&v| v != want[0]), "conv output not constant", n)?;
        compared += y_len;
        let mut pool = Pool2dParams::plain(2, [p.out_c, oh, ow], [2, 2], [2, 2], [0, 0]);
        (pool.pad_bottom, pool.pad_right) = (1, 1);
        let pooled = 2 * pool.out_h() * pool.out_w() * p.out_c;
        let (want, got) = (&mut want[..pooled], &mut got[..pooled]);
        conv2d_maxpool_s8(&p, &pool, (-100, 120), &io, rq, x, w, Some(bias), want);
        ensure(kernel(&p, Some((&pool, (-100, 120))), &io, rq, x, w, Some(bias), got, scratch), "pooled conv taken", n)?;
        ensure(got == want, "pooled conv", n)?;
        compared += pooled;
        if refuses_misaligned {
            ensure(!kernel(&p, None, &io, rq, x, w, Some(bias), got, &mut scratch[1..]), "misaligned scratch refused", n)?;
        }
    }
    Ok(compared)
}

/// A pointwise convolution in place with the dispatch's signature; `false`: it refused.
pub type PointwiseKernel<'k> = &'k dyn Fn(&Conv2dParams, &Int8Io, &[Requant], &mut [i8], &[i8], Option<&[i32]>, &mut [u8]) -> bool;

/// `kernel` in place against the out-of-place reference, as many outputs as inputs and fewer.
/// Returns the outputs compared.
pub fn pointwise_in_place(kernel: PointwiseKernel, scratch_bytes: &dyn Fn(&Conv2dParams) -> usize) -> Result<usize, Mismatch> {
    let io = Int8Io { input_offset: 9, output_offset: 3, act_min: -128, act_max: 127 };
    let (mut x, mut w, mut want) = ([0i8; MAX], [0i8; MAX], [0i8; MAX]);
    let mut rq = [Requant::default(); 64];
    let mut scratch = Scratch::new();
    let mut compared = 0;
    for (n, &(in_c, out_c)) in [(48, 48), (21, 9), (12, 9)].iter().enumerate() {
        let p = Conv2dParams::plain(1, [in_c, 5, 3], out_c, [1, 1], [1, 1], [0, 0]);
        let (x, w, want, rq) = (&mut x[..15 * in_c], &mut w[..out_c * in_c], &mut want[..15 * out_c], &mut rq[..out_c]);
        fill_bytes(x, 5);
        fill_bytes(w, 6);
        fill_requants(rq);
        conv2d_s8(&p, &io, rq, x, w, None, want);
        ensure(kernel(&p, &io, rq, x, w, None, scratch.bytes(scratch_bytes(&p))), "pointwise taken", n)?;
        ensure(&x[..want.len()] == want, "pointwise in place", n)?;
        compared += want.len();
    }
    Ok(compared)
}

/// A fully connected kernel with the dispatch's signature; `false`: it refused.
pub type FullyConnectedKernel<'k> = &'k dyn Fn(usize, usize, usize, &Int8Io, &[Requant], &[i8], &[i8], Option<&[i32]>, &mut [i8]) -> bool;

/// `kernel` against the reference: outputs not a multiple of four, an odd depth past a
/// 16-byte tail, with and without a bias. Returns the outputs compared.
pub fn fully_connected(kernel: FullyConnectedKernel) -> Result<usize, Mismatch> {
    let io = Int8Io { input_offset: -3, output_offset: 9, act_min: -128, act_max: 127 };
    let (batch, depth, out) = (3, 37, 70);
    let (mut x, mut w, mut want, mut got) = ([0i8; 3 * 37], [0i8; 70 * 37], [0i8; 3 * 70], [0i8; 3 * 70]);
    fill_bytes(&mut x, 1);
    fill_bytes(&mut w, 2);
    let mut rq = [Requant::default(); 1];
    fill_requants(&mut rq);
    let mut bias = [0i32; 70];
    for (c, b) in bias.iter_mut().enumerate() {
        *b = c as i32 * 31 - 900;
    }
    for (n, bias) in [None, Some(&bias[..])].into_iter().enumerate() {
        fully_connected_s8(batch, depth, out, &io, &rq, &x, &w, bias, &mut want);
        ensure(kernel(batch, depth, out, &io, &rq, &x, &w, bias, &mut got), "fully connected taken", n)?;
        ensure(got == want, "fully connected", n)?;
    }
    Ok(2 * want.len())
}

/// A depthwise convolution with the dispatch's signature; `false`: it refused.
pub type DepthwiseKernel<'k> = &'k dyn Fn(&Conv2dParams, &Int8Io, &[Requant], &[i8], &[i8], Option<&[i32]>, &mut [i8]) -> bool;

/// `kernel` against the reference on odd channel counts (tails of 1 to 3), padding on each
/// side, stride, dilation, a batch of two. Returns the outputs compared.
pub fn depthwise(kernel: DepthwiseKernel) -> Result<usize, Mismatch> {
    let io = Int8Io { input_offset: 7, output_offset: -3, act_min: -128, act_max: 127 };
    let (mut x, mut w, mut want, mut got) = ([0i8; MAX], [0i8; MAX], [0i8; MAX], [0i8; MAX]);
    let (mut bias, mut rq) = ([0i32; 64], [Requant::default(); 64]);
    let cases = [
        (48, 5, 4, 3, 1, [1, 1, 1, 1], 1),
        // 16 channels (Helium's width), then 4, then 3 one at a time.
        (23, 5, 5, 3, 1, [1, 0, 0, 1], 1),
        (5, 7, 6, 3, 2, [0, 1, 1, 0], 1),
        (7, 9, 8, 3, 1, [2, 2, 2, 2], 2),
        (6, 4, 9, 5, 1, [2, 0, 2, 4], 1),
    ];
    let mut compared = 0;
    for (n, &(c, h, wd, k, stride, pad, dil)) in cases.iter().enumerate() {
        let p = case_params(&(c, h, wd, c, k, k, stride, pad, dil), 2);
        let y_len = 2 * p.out_h() * p.out_w() * c;
        let (x, w, want, got) = (&mut x[..2 * h * wd * c], &mut w[..k * k * c], &mut want[..y_len], &mut got[..y_len]);
        fill_bytes(x, n);
        fill_bytes(w, n + 3);
        let (bias, rq) = (&mut bias[..c], &mut rq[..c]);
        for (i, b) in bias.iter_mut().enumerate() {
            *b = i as i32 * 131 - 2000;
        }
        fill_requants(rq);
        depthwise_conv2d_s8(&p, &io, rq, x, w, Some(bias), want);
        ensure(kernel(&p, &io, rq, x, w, Some(bias), got), "depthwise taken", n)?;
        ensure(got == want, "depthwise", n)?;
        ensure(want.iter().any(|&v| v != want[0]), "depthwise output not constant", n)?;
        compared += y_len;
    }
    Ok(compared)
}

/// A requantization of sums with the dispatch's signature.
pub type RequantKernel<'k> = &'k dyn Fn(&Int8Io, &[i32], &[Requant], &mut [i8]);

/// `kernel` against TFLite's arithmetic (`Int8Io::output`) on 4,096 sums in groups of 16: sums
/// across the i32 range (its ends, exact rounding ties of every shift, ±1), multipliers across
/// theirs (0 included), right shifts 0 to 33, zero points and a narrowed clamp. Returns the
/// outputs compared.
pub fn requantization(kernel: RequantKernel) -> Result<usize, Mismatch> {
    let mut s = 0x9e37_79b9u32;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s
    };
    let (mut sums, mut rq, mut want, mut got) = ([0i32; 16], [Requant::default(); 16], [0i8; 16], [0i8; 16]);
    for group in 0..256 {
        let io =
            Int8Io { input_offset: 0, output_offset: (group % 7) as i32 * 9 - 30, act_min: -128 + (group % 3) as i32 * 20, act_max: 127 };
        for (j, (acc, r)) in sums.iter_mut().zip(rq.iter_mut()).enumerate() {
            let v = next();
            let shift = -((v % 34) as i32);
            *r = Requant { multiplier: if v % 29 == 0 { 0 } else { (next() >> 1) as i32 | (1 << 30) }, shift };
            *acc = match (v >> 8) % 5 {
                0 => next() as i32,
                1 => (next() as i32) >> 14,
                // An exact tie of the rounding shift after the high multiply, either sign.
                2 => ((next() as i32 >> 16) | 1).wrapping_shl(30u32.saturating_sub((-shift) as u32)),
                3 => [i32::MIN, i32::MAX, 0, -1, 1][j % 5],
                _ => -((next() >> 18) as i32),
            };
        }
        for (o, (&acc, &r)) in want.iter_mut().zip(sums.iter().zip(rq.iter())) {
            *o = io.output(acc, r);
        }
        kernel(&io, &sums, &rq, &mut got);
        ensure(got == want, "requantization", group)?;
    }
    Ok(256 * 16)
}
