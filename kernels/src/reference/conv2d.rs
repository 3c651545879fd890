//! 2-D convolution (cross-correlation, as PyTorch and ONNX), NCHW, with stride, dilation,
//! groups and zero padding on each side.

/// Dimensions of one conv2d call. Input `[batch, in_c, in_h, in_w]`, weight
/// `[out_c, in_c / groups, kernel_h, kernel_w]`, output `[batch, out_c, out_h, out_w]`; input
/// channels `g·in_c/groups ..` feed output channels `g·out_c/groups ..` of group `g`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// Zero rows above the input.
    pub pad_top: usize,
    /// Zero columns left of the input.
    pub pad_left: usize,
    /// Zero rows below the input.
    pub pad_bottom: usize,
    /// Zero columns right of the input.
    pub pad_right: usize,
    /// Spacing of the kernel taps (1: adjacent).
    pub dilation_h: usize,
    pub dilation_w: usize,
    /// Channel groups; both channel counts are multiples of it.
    pub groups: usize,
}

impl Conv2dParams {
    /// A plain convolution: padding `pad` on every side, no dilation, one group.
    pub const fn plain(batch: usize, in_c: [usize; 3], out_c: usize, kernel: [usize; 2], stride: [usize; 2], pad: [usize; 2]) -> Self {
        Conv2dParams {
            batch,
            in_c: in_c[0],
            in_h: in_c[1],
            in_w: in_c[2],
            out_c,
            kernel_h: kernel[0],
            kernel_w: kernel[1],
            stride_h: stride[0],
            stride_w: stride[1],
            pad_top: pad[0],
            pad_left: pad[1],
            pad_bottom: pad[0],
            pad_right: pad[1],
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
        }
    }
    /// `(in_h + pad_top + pad_bottom − dilation_h·(kernel_h − 1) − 1) / stride_h + 1`;
    /// callers check the kernel fits first.
    pub fn out_h(&self) -> usize {
        (self.in_h + self.pad_top + self.pad_bottom - self.dilation_h * (self.kernel_h - 1) - 1) / self.stride_h + 1
    }
    /// The same along the width.
    pub fn out_w(&self) -> usize {
        (self.in_w + self.pad_left + self.pad_right - self.dilation_w * (self.kernel_w - 1) - 1) / self.stride_w + 1
    }
    /// Input channels each output channel reads.
    pub fn group_in_c(&self) -> usize {
        self.in_c / self.groups
    }
    /// Calls `f(row)` for every output row `oy` and kernel tap `(ky, kx)` whose input row
    /// lies inside the (unpadded) input, with the run of output columns whose input column
    /// does too: output columns `ox0..ox1` read input columns `ix0, ix0 + stride_w, …`.
    #[inline]
    fn for_each_tap_row(&self, mut f: impl FnMut(TapRow)) {
        for oy in 0..self.out_h() {
            self.for_each_tap_of_row(oy, &mut f);
        }
    }

    /// [`Self::for_each_tap_row`] for the one output row `oy`.
    #[inline]
    pub(crate) fn for_each_tap_of_row(&self, oy: usize, mut f: impl FnMut(TapRow)) {
        let ow = self.out_w();
        let (s, p) = (self.stride_w, self.pad_left);
        for ky in 0..self.kernel_h {
            let row = oy * self.stride_h + ky * self.dilation_h;
            let Some(iy) = row.checked_sub(self.pad_top).filter(|&iy| iy < self.in_h) else { continue };
            for kx in 0..self.kernel_w {
                // ix = ox·s + kx·d − p must satisfy 0 ≤ ix < in_w.
                let tap = kx * self.dilation_w;
                let ox0 = p.saturating_sub(tap).div_ceil(s);
                let ox1 = ((self.in_w + p).saturating_sub(tap)).div_ceil(s).min(ow);
                if ox0 < ox1 {
                    f(TapRow { oy, ky, kx, iy, ox0, ox1, ix0: ox0 * s + tap - p });
                }
            }
        }
    }
}

/// One kernel tap applied along an output row (see `Conv2dParams::for_each_tap_row`).
#[derive(Clone, Copy)]
pub(crate) struct TapRow {
    pub oy: usize,
    pub ky: usize,
    pub kx: usize,
    pub iy: usize,
    pub ox0: usize,
    pub ox1: usize,
    pub ix0: usize,
}

/// Offsets of one (input plane, output plane, 2-D kernel) triple of a conv2d call.
#[derive(Clone, Copy)]
struct Planes {
    x: usize,
    y: usize,
    w: usize,
}

impl Conv2dParams {
    /// Calls `f` for every (sample, output channel, input channel of its group) with the
    /// offsets of the input plane, the output plane and the kernel that connects them.
    fn for_each_plane(&self, mut f: impl FnMut(Planes)) {
        let (in_plane, out_plane, k) = (self.in_h * self.in_w, self.out_h() * self.out_w(), self.kernel_h * self.kernel_w);
        let (gin, gout) = (self.group_in_c(), self.out_c / self.groups);
        for b in 0..self.batch {
            for oc in 0..self.out_c {
                let first_ic = oc / gout * gin;
                for ic in 0..gin {
                    let x = (b * self.in_c + first_ic + ic) * in_plane;
                    f(Planes { x, y: (b * self.out_c + oc) * out_plane, w: (oc * gin + ic) * k });
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
    let (ow, iw, s) = (p.out_w(), p.in_w, p.stride_w);
    p.for_each_plane(|o| {
        p.for_each_tap_row(|t| {
            let wv = w[o.w + t.ky * p.kernel_w + t.kx];
            let out = &mut y[o.y + t.oy * ow + t.ox0..o.y + t.oy * ow + t.ox1];
            let input = x[o.x + t.iy * iw + t.ix0..].iter().step_by(s);
            out.iter_mut().zip(input).for_each(|(y, &x)| *y += wv * x);
        });
    });
}

/// Backward to the input: `dx += convᵀ(dy, w)`.
pub fn conv2d_backward_input_f32(p: &Conv2dParams, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let (ow, iw, s) = (p.out_w(), p.in_w, p.stride_w);
    p.for_each_plane(|o| {
        p.for_each_tap_row(|t| {
            let wv = w[o.w + t.ky * p.kernel_w + t.kx];
            let grad = &dy[o.y + t.oy * ow + t.ox0..o.y + t.oy * ow + t.ox1];
            let input = dx[o.x + t.iy * iw + t.ix0..].iter_mut().step_by(s);
            input.zip(grad).for_each(|(d, &g)| *d += wv * g);
        });
    });
}

/// Backward to the weight: `dw += Σ_b dy ⋆ x`.
pub fn conv2d_backward_weight_f32(p: &Conv2dParams, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    let (ow, iw, s) = (p.out_w(), p.in_w, p.stride_w);
    p.for_each_plane(|o| {
        p.for_each_tap_row(|t| {
            let grad = &dy[o.y + t.oy * ow + t.ox0..o.y + t.oy * ow + t.ox1];
            let input = x[o.x + t.iy * iw + t.ix0..].iter().step_by(s);
            dw[o.w + t.ky * p.kernel_w + t.kx] += grad.iter().zip(input).map(|(&g, &x)| g * x).sum::<f32>();
        });
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
        let p = Conv2dParams::plain(1, [1, 3, 3], 1, [2, 2], [1, 1], [1, 1]);
        let mut y = [0.0; 16];
        conv2d_f32(&p, &x, &w, None, &mut y);
        let want = [-2.0, 0.0, 3.0, 10.0, -2.0, 5.0, 3.0, 11.0, -3.0, 7.0, -2.0, 13.0, 0.0, 3.0, 1.0, 5.0];
        assert_eq!(y, want);
    }
}
