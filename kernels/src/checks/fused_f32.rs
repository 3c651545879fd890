//! Checks of the fused f32 conv → relu → max pool forward against the reference, bit for bit,
//! for inference and for training (the recorded maxima too): shapes whose conv rows split into
//! every mix of the kernels' column blocks, one and several input channels, a ragged last
//! pooling row, and shapes the fast paths refuse (padding, one pooled column).

use super::{ensure, fill_values, Mismatch};
use crate::reference::{conv2d_relu_maxpool2d_f32, ChannelGrads, Conv2dParams, Pool2dParams};

/// Values one input buffer holds.
const MAX_X: usize = 1600;
/// Values one output buffer holds.
const MAX_Y: usize = 700;

/// The fused forward with the dispatch's signature; `false`: it refused.
pub type FusedKernel<'k> =
    &'k dyn Fn(&Conv2dParams, &Pool2dParams, &[f32], &[f32], Option<&[f32]>, &mut [f32], Option<&mut [u8]>, &mut [f32]) -> bool;

/// `(in_c, in_h, in_w, out_c, conv padding)`, 3×3 kernels under a 2×2 pool at stride 2.
const CASES: [(usize, usize, usize, usize, usize); 9] = [
    // mnist-cnn's first layer: 26 pooled columns' worth, three blocks of 8 and one of 4
    // overlapping the last by 2.
    (1, 28, 28, 2, 0),
    // Its second: 10 columns, a block of 8 and one of 4 overlapping it.
    (3, 13, 13, 4, 0),
    // 12 columns (8 + 4), 14 (8 + 4 + an overlapping 4), 18 (8 + 8 + an overlapping 4).
    (2, 10, 14, 2, 0),
    (2, 9, 16, 2, 0),
    (3, 8, 21, 2, 0),
    // 4 columns: one block of 4; an odd conv height leaves its last row unpooled.
    (1, 7, 6, 3, 0),
    // One pooled column, and padding: refused by Helium's kernel.
    (2, 7, 5, 3, 0),
    (2, 9, 19, 2, 1),
    (5, 6, 10, 3, 0),
];

/// `kernel` (scratch of `scratch_len(conv, pool)`) against the reference over a batch of two,
/// with and without a bias, recording the maxima and not. Returns the outputs compared.
pub fn fused_conv(kernel: FusedKernel, scratch_len: &dyn Fn(&Conv2dParams, &Pool2dParams) -> usize) -> Result<usize, Mismatch> {
    let (mut x, mut w, mut bias) = ([0f32; MAX_X], [0f32; 256], [0f32; 8]);
    let (mut want, mut got) = ([0f32; MAX_Y], [0f32; MAX_Y]);
    let (mut want_at, mut got_at) = ([0u8; MAX_Y], [0u8; MAX_Y]);
    let mut scratch = [0f32; 256];
    let (mut compared, mut zeros) = (0, 0);
    for (n, &(in_c, in_h, in_w, out_c, pad)) in CASES.iter().enumerate() {
        let conv = Conv2dParams::plain(2, [in_c, in_h, in_w], out_c, [3, 3], [1, 1], [pad, pad]);
        let pool = Pool2dParams::plain(2, [out_c, conv.out_h(), conv.out_w()], [2, 2], [2, 2], [0, 0]);
        let (x, w, bias) = (&mut x[..2 * in_c * in_h * in_w], &mut w[..out_c * in_c * 9], &mut bias[..out_c]);
        fill_values(x, n as u32 + 1);
        fill_values(w, n as u32 + 40);
        fill_values(bias, n as u32 + 80);
        let len = 2 * out_c * pool.out_h() * pool.out_w();
        let scratch = &mut scratch[..scratch_len(&conv, &pool)];
        for (with_bias, record) in [(true, false), (false, false), (true, true)] {
            let bias = with_bias.then_some(&bias[..]);
            let (want, got) = (&mut want[..len], &mut got[..len]);
            let taken = conv2d_relu_maxpool2d_f32(&conv, &pool, x, w, bias, want, record.then_some(&mut want_at[..len]), scratch);
            ensure(taken, "fused f32 reference", n)?;
            ensure(kernel(&conv, &pool, x, w, bias, got, record.then_some(&mut got_at[..len]), scratch), "fused f32 taken", n)?;
            ensure(got.iter().zip(want.iter()).all(|(g, w)| g.to_bits() == w.to_bits()), "fused f32", n)?;
            ensure(want.iter().any(|&v| v > 0.0), "fused f32 output has maxima", n)?;
            zeros += want.iter().filter(|&&v| v == 0.0).count();
            ensure(!record || got_at[..len] == want_at[..len], "fused f32 recorded maxima", n)?;
            compared += len;
        }
    }
    // Some windows were all off after relu (pooled to zero).
    ensure(zeros > 0, "fused f32 outputs have zeros", CASES.len())?;
    Ok(compared)
}

/// The fused backward of every output channel with the dispatch's signature (`dx`, `dw`,
/// `dbias` accumulated); `false`: it refused.
pub type BackwardKernel<'k> = &'k dyn Fn(
    &Conv2dParams,
    &Pool2dParams,
    &[f32],
    &[f32],
    &[u8],
    &[f32],
    Option<&mut [f32]>,
    &mut [f32],
    Option<&mut [f32]>,
    &mut [f32],
) -> bool;

/// `(in_c, in_h, in_w, out_c, [kh, kw], conv stride, conv padding, pool kernel = stride, pool
/// padding)`.
type BackwardCase = (usize, usize, usize, usize, [usize; 2], usize, usize, usize, usize);

/// Interior 3×3 convolutions (one and several input channels; neighbouring maxima one and two
/// columns apart, whose input gradients overlap), padding, a 3×2 kernel, stride 2, a ragged
/// last pooling window.
const BACKWARD_CASES: [BackwardCase; 5] = [
    (1, 28, 28, 2, [3, 3], 1, 0, 2, 0),
    (4, 11, 11, 6, [3, 3], 1, 0, 2, 0),
    (2, 10, 17, 3, [3, 3], 1, 0, 2, 0),
    (3, 9, 11, 4, [3, 2], 1, 1, 2, 1),
    (2, 12, 9, 3, [3, 3], 2, 1, 3, 0),
];

/// `kernel` against the reference's fused backward (the maxima recorded by the reference's
/// forward) over a batch of two, accumulating onto nonzero gradients: input, weight and bias
/// gradients equal as numbers (the sparse kernels skip the ±0 terms of empty columns, so a
/// zero sum's sign may differ). Returns the gradient values compared.
pub fn fused_backward(kernel: BackwardKernel) -> Result<usize, Mismatch> {
    use crate::reference::conv2d_relu_maxpool2d_backward_scratch_len;
    let (mut x, mut w, mut bias, mut y, mut dy) = ([0f32; MAX_X], [0f32; 256], [0f32; 8], [0f32; MAX_Y], [0f32; MAX_Y]);
    let mut argmax = [0u8; MAX_Y];
    let (mut want_dx, mut got_dx, mut want_dw, mut got_dw) = ([0f32; MAX_X], [0f32; MAX_X], [0f32; 256], [0f32; 256]);
    let (mut want_db, mut got_db, mut scratch) = ([0f32; 8], [0f32; 8], [0f32; 256]);
    let mut compared = 0;
    for (n, &(in_c, in_h, in_w, out_c, k, stride, pad, pk, ppad)) in BACKWARD_CASES.iter().enumerate() {
        let conv = Conv2dParams::plain(2, [in_c, in_h, in_w], out_c, k, [stride; 2], [pad; 2]);
        let pool = Pool2dParams::plain(2, [out_c, conv.out_h(), conv.out_w()], [pk; 2], [pk; 2], [ppad; 2]);
        let (x_len, w_len, y_len) = (2 * in_c * in_h * in_w, out_c * in_c * k[0] * k[1], 2 * out_c * pool.out_h() * pool.out_w());
        let (x, w, bias) = (&mut x[..x_len], &mut w[..w_len], &mut bias[..out_c]);
        fill_values(x, n as u32 + 1);
        fill_values(w, n as u32 + 50);
        fill_values(bias, 7);
        let (y, dy, argmax) = (&mut y[..y_len], &mut dy[..y_len], &mut argmax[..y_len]);
        let scratch = &mut scratch[..crate::reference::conv2d_relu_maxpool2d_scratch_len(&conv, &pool)];
        ensure(conv2d_relu_maxpool2d_f32(&conv, &pool, x, w, Some(bias), y, Some(argmax), scratch), "fused f32 forward", n)?;
        fill_values(dy, n as u32 + 90);
        let scratch = &mut scratch[..conv2d_relu_maxpool2d_backward_scratch_len(&conv)];
        let grads = [(&mut want_dx, &mut want_dw, &mut want_db), (&mut got_dx, &mut got_dw, &mut got_db)];
        for (i, (dx, dw, db)) in grads.into_iter().enumerate() {
            let (dx, dw, db) = (&mut dx[..x_len], &mut dw[..w_len], &mut db[..out_c]);
            fill_values(dx, 300);
            fill_values(dw, 301);
            fill_values(db, 302);
            let done = match i {
                0 => every_channel(crate::reference::conv2d_relu_maxpool2d_backward_channel_f32)(
                    &conv,
                    &pool,
                    x,
                    w,
                    argmax,
                    dy,
                    Some(dx),
                    dw,
                    Some(db),
                    scratch,
                ),
                _ => kernel(&conv, &pool, x, w, argmax, dy, Some(dx), dw, Some(db), scratch),
            };
            ensure(done, "fused f32 backward taken", n)?;
        }
        ensure(want_dx[..x_len] == got_dx[..x_len], "fused f32 input gradient", n)?;
        ensure(want_dw[..w_len] == got_dw[..w_len], "fused f32 weight gradient", n)?;
        ensure(want_db[..out_c] == got_db[..out_c], "fused f32 bias gradient", n)?;
        compared += x_len + w_len + out_c;
    }
    Ok(compared)
}

/// A fused backward of one output channel (the reference's signature).
pub type ChannelBackward = fn(&Conv2dParams, &Pool2dParams, usize, &[f32], &[f32], &[u8], &[f32], ChannelGrads, &mut [f32]) -> bool;

/// The backward of every channel from a per-channel one, channel after channel (as the
/// dispatch runs it).
#[allow(clippy::type_complexity)]
pub fn every_channel(
    channel: ChannelBackward,
) -> impl Fn(&Conv2dParams, &Pool2dParams, &[f32], &[f32], &[u8], &[f32], Option<&mut [f32]>, &mut [f32], Option<&mut [f32]>, &mut [f32]) -> bool
{
    move |conv, pool, x, w, argmax, dy, mut dx, dw, mut dbias, scratch| {
        let per_channel = conv.in_c * conv.kernel_h * conv.kernel_w;
        dw.chunks_exact_mut(per_channel).take(conv.out_c).enumerate().all(|(oc, dw)| {
            let grads = ChannelGrads { dx: dx.as_deref_mut(), dw, dbias: dbias.as_deref_mut().and_then(|d| d.get_mut(oc)) };
            channel(conv, pool, oc, x, w, argmax, dy, grads, scratch)
        })
    }
}
