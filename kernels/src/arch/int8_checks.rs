//! Shared checks of the int8 kernels against the reference (tests only): deterministic
//! operands, odd convolution shapes, and the comparisons every instruction set's version of a
//! kernel must pass byte for byte.

use crate::reference::int8::{conv2d_maxpool_s8, conv2d_s8, fully_connected_s8, Int8Io, Requant};
use crate::reference::{Conv2dParams, Pool2dParams};

/// `n` deterministic int8 values.
pub fn bytes(n: usize, seed: usize) -> Vec<i8> {
    (0..n).map(|i| ((i * 7919 + seed * 104_729) % 251) as u8 as i8).collect()
}

/// One requantization per channel, multipliers spread out.
pub fn requants(n: usize) -> Vec<Requant> {
    (0..n).map(|c| Requant::from_real(0.004 + 0.0013 * c as f64)).collect()
}

/// Word-aligned scratch of at least `len` bytes.
pub struct Scratch(Vec<u32>);

impl Scratch {
    pub fn new(len: usize) -> Scratch {
        Scratch(vec![0; len.div_ceil(4) + 1])
    }
    pub fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: u32 memory viewed as bytes (any bits are valid for both).
        unsafe { core::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<u8>(), self.0.len() * 4) }
    }
}

/// A convolution kernel with the dispatch's signature.
pub type ConvKernel =
    fn(&Conv2dParams, Option<(&Pool2dParams, (i32, i32))>, &Int8Io, &[Requant], &[i8], &[i8], Option<&[i32]>, &mut [i8], &mut [u8]) -> bool;

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

/// `kernel` (scratch of `scratch_bytes(p)`) against the reference on [`CASES`] over a batch of
/// two, plain and with a 2×2 pool padded at the end; misaligned scratch must be refused.
pub fn conv_equals_the_reference(kernel: ConvKernel, scratch_bytes: fn(&Conv2dParams) -> usize) {
    let io = Int8Io { input_offset: 17, output_offset: -5, act_min: -128, act_max: 127 };
    for (n, &(in_c, in_h, in_w, out_c, kh, kw, stride, pad, dil)) in CASES.iter().enumerate() {
        let p = Conv2dParams {
            pad_top: pad[0],
            pad_left: pad[1],
            pad_bottom: pad[2],
            pad_right: pad[3],
            dilation_h: dil,
            dilation_w: dil,
            ..Conv2dParams::plain(2, [in_c, in_h, in_w], out_c, [kh, kw], [stride, stride], [0, 0])
        };
        let (x, w) = (bytes(2 * in_h * in_w * in_c, n), bytes(out_c * kh * kw * in_c, n + 9));
        let bias: Vec<i32> = (0..out_c).map(|c| c as i32 * 977 - 3000).collect();
        let rq = requants(out_c);
        let mut scratch = Scratch::new(scratch_bytes(&p));
        let scratch = scratch.bytes();
        let (oh, ow) = (p.out_h(), p.out_w());
        let mut want = vec![0i8; 2 * oh * ow * out_c];
        conv2d_s8(&p, &io, &rq, &x, &w, Some(&bias), &mut want);
        let mut got = vec![0i8; want.len()];
        assert!(kernel(&p, None, &io, &rq, &x, &w, Some(&bias), &mut got, scratch), "case {n}: refused");
        assert_eq!(got, want, "case {n}");
        assert!(want.iter().any(|&v| v != want[0]), "case {n}: a constant output would prove nothing");
        let mut pool = Pool2dParams::plain(2, [out_c, oh, ow], [2, 2], [2, 2], [0, 0]);
        (pool.pad_bottom, pool.pad_right) = (1, 1);
        let mut want = vec![0i8; 2 * pool.out_h() * pool.out_w() * out_c];
        conv2d_maxpool_s8(&p, &pool, (-100, 120), &io, &rq, &x, &w, Some(&bias), &mut want);
        let mut got = vec![0i8; want.len()];
        assert!(kernel(&p, Some((&pool, (-100, 120))), &io, &rq, &x, &w, Some(&bias), &mut got, scratch), "case {n}, pooled: refused");
        assert_eq!(got, want, "case {n}, pooled");
        assert!(!kernel(&p, None, &io, &rq, &x, &w, Some(&bias), &mut got, &mut scratch[1..]), "case {n}: misaligned scratch taken");
    }
}

/// A pointwise convolution in place with the dispatch's signature.
pub type PointwiseKernel = fn(&Conv2dParams, &Int8Io, &[Requant], &mut [i8], &[i8], Option<&[i32]>, &mut [u8]) -> bool;

/// `kernel` in place against the out-of-place reference, as many outputs as inputs and fewer.
pub fn pointwise_in_place_equals_the_reference(kernel: PointwiseKernel, scratch_bytes: fn(&Conv2dParams) -> usize) {
    let io = Int8Io { input_offset: 9, output_offset: 3, act_min: -128, act_max: 127 };
    for (in_c, out_c) in [(64, 64), (21, 9), (12, 9)] {
        let p = Conv2dParams::plain(1, [in_c, 5, 3], out_c, [1, 1], [1, 1], [0, 0]);
        let (x, w) = (bytes(15 * in_c, 5), bytes(out_c * in_c, 6));
        let rq = requants(out_c);
        let mut want = vec![0i8; 15 * out_c];
        conv2d_s8(&p, &io, &rq, &x, &w, None, &mut want);
        let mut xy = x.clone();
        let mut scratch = Scratch::new(scratch_bytes(&p));
        assert!(kernel(&p, &io, &rq, &mut xy, &w, None, scratch.bytes()));
        assert_eq!(&xy[..want.len()], &want[..], "{in_c} → {out_c}");
    }
}

/// A fully connected kernel with the dispatch's signature (its scratch, if any, from `p`).
pub type FullyConnectedKernel = fn(usize, usize, usize, &Int8Io, &[Requant], &[i8], &[i8], Option<&[i32]>, &mut [i8]) -> bool;

/// `kernel` against the reference: more than 64 outputs, not a multiple of four, an odd depth
/// past a 16-byte tail, with and without a bias.
pub fn fully_connected_equals_the_reference(kernel: FullyConnectedKernel) {
    let io = Int8Io { input_offset: -3, output_offset: 9, act_min: -128, act_max: 127 };
    let (batch, depth, out) = (3, 37, 70);
    let (x, w) = (bytes(batch * depth, 1), bytes(out * depth, 2));
    let rq = requants(1);
    let bias: Vec<i32> = (0..out as i32).map(|c| c * 31 - 900).collect();
    for bias in [None, Some(&bias[..])] {
        let mut want = vec![0i8; batch * out];
        fully_connected_s8(batch, depth, out, &io, &rq, &x, &w, bias, &mut want);
        let mut got = vec![0i8; batch * out];
        assert!(kernel(batch, depth, out, &io, &rq, &x, &w, bias, &mut got));
        assert_eq!(got, want);
    }
}
