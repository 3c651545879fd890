//! Checks of the unfused f32 convolution against the reference, bit for bit: padding on each
//! side, row strides, dilation, groups (depthwise included), kernels 1×1 to 5×5, rows whose
//! interior splits into blocks of 16 and 4 columns with tails, and a column stride the fast
//! path refuses.

use super::{ensure, fill_values, Mismatch};
use crate::reference::{conv2d_f32, Conv2dParams};

/// The convolution with the dispatch's signature.
pub type ConvKernel<'k> = &'k dyn Fn(&Conv2dParams, &[f32], &[f32], Option<&[f32]>, &mut [f32]);

/// `(in_c, in_h, in_w, out_c, [kh, kw], [stride_h, stride_w], pad [t, l, b, r], dilation, groups)`.
type Case = (usize, usize, usize, usize, [usize; 2], [usize; 2], [usize; 4], usize, usize);

const CASES: [Case; 8] = [
    (3, 9, 21, 4, [3, 3], [1, 1], [0, 0, 0, 0], 1, 1),
    (2, 8, 40, 3, [3, 3], [1, 1], [1, 1, 1, 1], 1, 1),
    // Padding on the left only: edge columns on one side.
    (2, 6, 19, 2, [3, 3], [1, 1], [1, 1, 0, 0], 1, 1),
    (4, 7, 13, 4, [3, 3], [2, 1], [1, 2, 0, 1], 1, 4),
    (6, 6, 17, 6, [3, 3], [1, 1], [0, 0, 0, 0], 2, 3),
    (2, 5, 9, 3, [1, 1], [1, 1], [0, 0, 0, 0], 1, 1),
    (1, 9, 23, 2, [5, 5], [1, 1], [2, 2, 2, 2], 1, 1),
    (2, 7, 11, 2, [3, 2], [1, 2], [1, 0, 1, 1], 1, 1),
];

/// `kernel` against the reference's `conv2d_f32` over a batch of two, with and without a
/// bias. Returns the outputs compared.
pub fn conv(kernel: ConvKernel) -> Result<usize, Mismatch> {
    let (mut x, mut w, mut bias) = ([0f32; 1600], [0f32; 128], [0f32; 8]);
    let (mut want, mut got) = ([0f32; 2048], [0f32; 2048]);
    let mut compared = 0;
    for (n, &(in_c, in_h, in_w, out_c, k, stride, pad, dilation, groups)) in CASES.iter().enumerate() {
        let p = Conv2dParams {
            pad_top: pad[0],
            pad_left: pad[1],
            pad_bottom: pad[2],
            pad_right: pad[3],
            dilation_h: dilation,
            dilation_w: dilation,
            groups,
            ..Conv2dParams::plain(2, [in_c, in_h, in_w], out_c, k, stride, [0, 0])
        };
        let (x, w, bias) = (&mut x[..2 * in_c * in_h * in_w], &mut w[..out_c * (in_c / groups) * k[0] * k[1]], &mut bias[..out_c]);
        fill_values(x, n as u32 + 11);
        fill_values(w, n as u32 + 60);
        fill_values(bias, n as u32 + 90);
        let len = 2 * out_c * p.out_h() * p.out_w();
        for with_bias in [true, false] {
            let bias = with_bias.then_some(&bias[..]);
            let (want, got) = (&mut want[..len], &mut got[..len]);
            conv2d_f32(&p, x, w, bias, want);
            kernel(&p, x, w, bias, got);
            ensure(got.iter().zip(want.iter()).all(|(g, w)| g.to_bits() == w.to_bits()), "f32 conv", n)?;
            compared += len;
        }
    }
    Ok(compared)
}
