//! 2-D convolution (cross-correlation, as PyTorch), NCHW, with stride and zero padding.

/// Dimensions of one conv2d call. Input `[batch, in_c, in_h, in_w]`, weight
/// `[out_c, in_c, kernel_h, kernel_w]`, output `[batch, out_c, out_h, out_w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub batch: usize,
    pub in_c: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_c: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_h: usize,
    pub pad_w: usize,
}

impl Conv2dParams {
    /// `(in_h + 2·pad_h − kernel_h) / stride_h + 1`; callers check the kernel fits first.
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.pad_h - self.kernel_h) / self.stride_h + 1
    }
    /// `(in_w + 2·pad_w − kernel_w) / stride_w + 1`.
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.pad_w - self.kernel_w) / self.stride_w + 1
    }
    /// Calls `f(oy, ox, ky, kx, iy, ix)` for every output pixel and kernel tap that lands
    /// inside the (unpadded) input.
    #[inline]
    fn for_each_tap(&self, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
        let (oh, ow) = (self.out_h(), self.out_w());
        for oy in 0..oh {
            for ky in 0..self.kernel_h {
                let iy = (oy * self.stride_h + ky) as isize - self.pad_h as isize;
                if iy < 0 || iy >= self.in_h as isize {
                    continue;
                }
                for ox in 0..ow {
                    for kx in 0..self.kernel_w {
                        let ix = (ox * self.stride_w + kx) as isize - self.pad_w as isize;
                        if ix < 0 || ix >= self.in_w as isize {
                            continue;
                        }
                        f(oy, ox, ky, kx, iy as usize, ix as usize);
                    }
                }
            }
        }
    }
}

/// Offsets of one (input plane, output plane, 2-D kernel) triple of a conv2d call.
#[derive(Clone, Copy)]
struct Planes {
    x: usize,
    y: usize,
    w: usize,
}

impl Conv2dParams {
    /// Calls `f` for every (sample, output channel, input channel) with the offsets of the
    /// input plane, the output plane and the kernel that connects them.
    fn for_each_plane(&self, mut f: impl FnMut(Planes)) {
        let (in_plane, out_plane, k) = (self.in_h * self.in_w, self.out_h() * self.out_w(), self.kernel_h * self.kernel_w);
        for b in 0..self.batch {
            for oc in 0..self.out_c {
                for ic in 0..self.in_c {
                    f(Planes { x: (b * self.in_c + ic) * in_plane, y: (b * self.out_c + oc) * out_plane, w: (oc * self.in_c + ic) * k });
                }
            }
        }
    }
}

/// Forward: `y = conv(x, w) + bias`.
pub fn conv2d_f32(p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let out_plane = p.out_h() * p.out_w();
    for (i, plane) in y[..p.batch * p.out_c * out_plane].chunks_exact_mut(out_plane).enumerate() {
        plane.fill(bias.map_or(0.0, |bias| bias[i % p.out_c]));
    }
    let (ow, kw, iw) = (p.out_w(), p.kernel_w, p.in_w);
    p.for_each_plane(|o| {
        p.for_each_tap(|oy, ox, ky, kx, iy, ix| y[o.y + oy * ow + ox] += w[o.w + ky * kw + kx] * x[o.x + iy * iw + ix]);
    });
}

/// Backward to the input: `dx += convᵀ(dy, w)`.
pub fn conv2d_backward_input_f32(p: &Conv2dParams, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let (ow, kw, iw) = (p.out_w(), p.kernel_w, p.in_w);
    p.for_each_plane(|o| {
        p.for_each_tap(|oy, ox, ky, kx, iy, ix| dx[o.x + iy * iw + ix] += w[o.w + ky * kw + kx] * dy[o.y + oy * ow + ox]);
    });
}

/// Backward to the weight: `dw += Σ_b dy ⋆ x`.
pub fn conv2d_backward_weight_f32(p: &Conv2dParams, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (ow, kw, iw) = (p.out_w(), p.kernel_w, p.in_w);
    p.for_each_plane(|o| {
        p.for_each_tap(|oy, ox, ky, kx, iy, ix| dw[o.w + ky * kw + kx] += dy[o.y + oy * ow + ox] * x[o.x + iy * iw + ix]);
    });
}

/// `out[c] += Σ_{b, i} x[b, c, i]` for `x` laid out `[batch, channels, inner]`: the bias
/// gradient of conv2d (and of a per-channel broadcast).
pub fn sum_channels_f32(batch: usize, channels: usize, inner: usize, x: &[f32], out: &mut [f32]) {
    for b in 0..batch {
        for (c, o) in out[..channels].iter_mut().enumerate() {
            *o += x[(b * channels + c) * inner..][..inner].iter().sum::<f32>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of issue 2, checked by hand: padding 1, stride 1.
    #[test]
    fn worked_example_padding_one() {
        let x = [2.0, 4.0, 5.0, 2.0, 1.0, 3.0, 3.0, 1.0, 5.0];
        let w = [1.0, 0.0, 2.0, -1.0];
        let p = Conv2dParams {
            batch: 1,
            in_c: 1,
            in_h: 3,
            in_w: 3,
            out_c: 1,
            kernel_h: 2,
            kernel_w: 2,
            stride_h: 1,
            stride_w: 1,
            pad_h: 1,
            pad_w: 1,
        };
        let mut y = [0.0; 16];
        conv2d_f32(&p, &x, &w, None, &mut y);
        let want = [-2.0, 0.0, 3.0, 10.0, -2.0, 5.0, 3.0, 11.0, -3.0, 7.0, -2.0, 13.0, 0.0, 3.0, 1.0, 5.0];
        assert_eq!(y, want);
    }
}
