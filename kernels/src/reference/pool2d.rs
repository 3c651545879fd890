//! 2-D max and average pooling, NCHW, with stride and padding on each side. Max pooling
//! pads with −∞; average pooling either counts padded zeros in the divisor (PyTorch's
//! default) or divides by the values inside the input (ONNX's default, TFLite's `SAME`).

use core::cmp::Ordering;

/// Dimensions of one pooling call: input `[batch, channels, in_h, in_w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Pool2dParams {
    pub batch: usize,
    pub channels: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub kernel_h: usize,
    pub kernel_w: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub pad_bottom: usize,
    pub pad_right: usize,
    /// Average pooling: divide by the whole window, padding included (else by the values
    /// of the input the window covers).
    pub count_padding: bool,
}

impl Pool2dParams {
    /// Pooling over `[channels, in_h, in_w]` planes with padding `pad` on every side,
    /// padding counted in an average.
    pub const fn plain(batch: usize, planes: [usize; 3], kernel: [usize; 2], stride: [usize; 2], pad: [usize; 2]) -> Self {
        Pool2dParams {
            batch,
            channels: planes[0],
            in_h: planes[1],
            in_w: planes[2],
            kernel_h: kernel[0],
            kernel_w: kernel[1],
            stride_h: stride[0],
            stride_w: stride[1],
            pad_top: pad[0],
            pad_left: pad[1],
            pad_bottom: pad[0],
            pad_right: pad[1],
            count_padding: true,
        }
    }
    /// `(in_h + pad_top + pad_bottom − kernel_h) / stride_h + 1`.
    pub fn out_h(&self) -> usize {
        (self.in_h + self.pad_top + self.pad_bottom - self.kernel_h) / self.stride_h + 1
    }
    /// `(in_w + pad_left + pad_right − kernel_w) / stride_w + 1`.
    pub fn out_w(&self) -> usize {
        (self.in_w + self.pad_left + self.pad_right - self.kernel_w) / self.stride_w + 1
    }
    /// The factor of average pooling for a window covering `inside` input values: one over
    /// the whole window, or over the values inside (an empty window averages to 0).
    fn scale(&self, inside: usize) -> f32 {
        let count = if self.count_padding { self.kernel_h * self.kernel_w } else { inside.max(1) };
        1.0 / count as f32
    }
    /// Calls `f(plane, out_index, window)` for every output pixel; `window` lists the input
    /// indices (within the plane) the pooling window covers, padding excluded.
    fn for_each_window(&self, mut f: impl FnMut(usize, usize, &mut dyn ExactSizeIterator<Item = usize>)) {
        let (oh, ow) = (self.out_h(), self.out_w());
        for plane in 0..self.batch * self.channels {
            for oy in 0..oh {
                let y0 = (oy * self.stride_h) as isize - self.pad_top as isize;
                let ys = y0.max(0) as usize..((y0 + self.kernel_h as isize).min(self.in_h as isize)).max(0) as usize;
                for ox in 0..ow {
                    let x0 = (ox * self.stride_w) as isize - self.pad_left as isize;
                    let xs = x0.max(0) as usize..((x0 + self.kernel_w as isize).min(self.in_w as isize)).max(0) as usize;
                    let w = self.in_w;
                    let mut window = Window { rows: ys.clone(), cols: xs.clone(), width: w, at: 0 };
                    f(plane, oy * ow + ox, &mut window);
                }
            }
        }
    }
    fn planes(&self) -> (usize, usize) {
        (self.in_h * self.in_w, self.out_h() * self.out_w())
    }
}

/// The input indices (within a plane) of a pooling window, row by row.
struct Window {
    rows: core::ops::Range<usize>,
    cols: core::ops::Range<usize>,
    width: usize,
    /// How many indices were given so far.
    at: usize,
}

impl Iterator for Window {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let (h, w) = (self.rows.len(), self.cols.len());
        if self.at >= h * w {
            return None;
        }
        let (y, x) = (self.rows.start + self.at / w, self.cols.start + self.at % w);
        self.at += 1;
        Some(y * self.width + x)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.rows.len() * self.cols.len() - self.at;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Window {}

/// Index (within the plane) of the first maximum of a window, as PyTorch picks it.
fn argmax(plane: &[f32], window: &mut dyn ExactSizeIterator<Item = usize>) -> Option<usize> {
    let mut best: Option<usize> = None;
    for i in window {
        // A larger value wins, and so does any NaN (incomparable), so NaNs propagate as in PyTorch.
        let wins = |b: usize| matches!(plane[i].partial_cmp(&plane[b]), Some(Ordering::Greater) | None);
        if best.is_none_or(wins) {
            best = Some(i);
        }
    }
    best
}

/// Max pooling forward.
pub fn maxpool2d_f32(p: &Pool2dParams, x: &[f32], y: &mut [f32]) {
    let (ip, op) = p.planes();
    p.for_each_window(|plane, o, window| {
        let xin = &x[plane * ip..][..ip];
        y[plane * op + o] = argmax(xin, window).map_or(f32::NEG_INFINITY, |i| xin[i]);
    });
}

/// Max pooling backward: each output's gradient goes to the first maximum of its window.
pub fn maxpool2d_backward_f32(p: &Pool2dParams, x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (ip, op) = p.planes();
    p.for_each_window(|plane, o, window| {
        if let Some(i) = argmax(&x[plane * ip..][..ip], window) {
            dx[plane * ip + i] += dy[plane * op + o];
        }
    });
}

/// Average pooling forward (see [`Pool2dParams::count_padding`] for the divisor).
pub fn avgpool2d_f32(p: &Pool2dParams, x: &[f32], y: &mut [f32]) {
    let (ip, op) = p.planes();
    p.for_each_window(|plane, o, window| {
        let xin = &x[plane * ip..][..ip];
        let scale = p.scale(window.len());
        y[plane * op + o] = window.map(|i| xin[i]).sum::<f32>() * scale;
    });
}

/// Average pooling backward.
pub fn avgpool2d_backward_f32(p: &Pool2dParams, dy: &[f32], dx: &mut [f32]) {
    let (ip, op) = p.planes();
    p.for_each_window(|plane, o, window| {
        let g = dy[plane * op + o] * p.scale(window.len());
        for i in window {
            dx[plane * ip + i] += g;
        }
    });
}

/// Global average pooling: `[planes, inner] → [planes]`.
pub fn global_avgpool_f32(planes: usize, inner: usize, x: &[f32], y: &mut [f32]) {
    for (o, plane) in y[..planes].iter_mut().zip(x.chunks_exact(inner)) {
        *o = plane.iter().sum::<f32>() / inner as f32;
    }
}

/// Global average pooling backward.
pub fn global_avgpool_backward_f32(planes: usize, inner: usize, dy: &[f32], dx: &mut [f32]) {
    for (&g, plane) in dy[..planes].iter().zip(dx.chunks_exact_mut(inner)) {
        let g = g / inner as f32;
        plane.iter_mut().for_each(|d| *d += g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(h: usize, w: usize, k: usize, s: usize, pad: usize) -> Pool2dParams {
        Pool2dParams::plain(1, [1, h, w], [k, k], [s, s], [pad, pad])
    }

    /// The worked example of issue 2, checked by hand.
    #[test]
    fn maxpool_worked_example() {
        let x = [2.0, 4.0, 5.0, 0.0, 2.0, 1.0, 3.0, 1.0, 3.0, 1.0, 5.0, 0.0, 0.0, 1.0, 0.0, 1.0];
        let mut y = [0.0; 4];
        maxpool2d_f32(&params(4, 4, 2, 2, 0), &x, &mut y);
        assert_eq!(y, [4.0, 5.0, 3.0, 5.0]);
    }

    /// Hand computation: 3x3 ones, kernel 2, stride 1, padding 1 → corners see 1 of 4 taps.
    #[test]
    fn avgpool_counts_padding_in_the_divisor() {
        let x = [1.0; 9];
        let p = params(3, 3, 2, 1, 1);
        let mut y = [0.0; 16];
        avgpool2d_f32(&p, &x, &mut y);
        assert_eq!(y[0], 0.25);
        assert_eq!(y[1], 0.5);
        assert_eq!(y[5], 1.0);
    }
}
