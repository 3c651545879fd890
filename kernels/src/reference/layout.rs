//! Layout kernels: constant padding of the two last dimensions, and transposition of up to
//! four dimensions, with their backward passes.

/// Padding of `[planes, in_h, in_w]` to `[planes, top + in_h + bottom, left + in_w + right]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pad2dParams {
    pub planes: usize,
    pub in_h: usize,
    pub in_w: usize,
    /// `[top, left, bottom, right]`.
    pub pad: [usize; 4],
    /// The value of the added cells.
    pub value: f32,
}

impl Pad2dParams {
    pub fn out_h(&self) -> usize {
        self.pad[0] + self.in_h + self.pad[2]
    }
    pub fn out_w(&self) -> usize {
        self.pad[1] + self.in_w + self.pad[3]
    }
    /// Calls `f(input row offset, output row offset)` for every input row.
    fn for_each_row(&self, mut f: impl FnMut(usize, usize)) {
        let (oh, ow) = (self.out_h(), self.out_w());
        for plane in 0..self.planes {
            for y in 0..self.in_h {
                f((plane * self.in_h + y) * self.in_w, (plane * oh + self.pad[0] + y) * ow + self.pad[1]);
            }
        }
    }
}

/// `y = pad(x)`.
pub fn pad2d_f32(p: &Pad2dParams, x: &[f32], y: &mut [f32]) {
    y[..p.planes * p.out_h() * p.out_w()].fill(p.value);
    p.for_each_row(|i, o| y[o..o + p.in_w].copy_from_slice(&x[i..i + p.in_w]));
}

/// `dx += dy` cropped to the input (the added cells are constants).
pub fn pad2d_backward_f32(p: &Pad2dParams, dy: &[f32], dx: &mut [f32]) {
    p.for_each_row(|i, o| dx[i..i + p.in_w].iter_mut().zip(&dy[o..o + p.in_w]).for_each(|(d, &g)| *d += g));
}

/// A transposition: output dimension `i` is input dimension `perm[i]` (rank 4; pad smaller
/// ranks with leading dimensions of 1 and identity entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransposeParams {
    /// The input's dimensions.
    pub dims: [usize; 4],
    pub perm: [usize; 4],
}

impl TransposeParams {
    /// Calls `f(input index, output index)` for every element, in output order.
    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        let d = self.dims;
        let in_strides = [d[1] * d[2] * d[3], d[2] * d[3], d[3], 1];
        let out_dims = self.perm.map(|p| d[p]);
        let s = self.perm.map(|p| in_strides[p]);
        let mut o = 0;
        for a in 0..out_dims[0] {
            for b in 0..out_dims[1] {
                for c in 0..out_dims[2] {
                    let base = a * s[0] + b * s[1] + c * s[2];
                    for e in 0..out_dims[3] {
                        f(base + e * s[3], o);
                        o += 1;
                    }
                }
            }
        }
    }
}

/// `y = transpose(x)`.
pub fn transpose_f32(p: &TransposeParams, x: &[f32], y: &mut [f32]) {
    p.for_each(|i, o| y[o] = x[i]);
}

/// `dx += transposeᵀ(dy)`.
pub fn transpose_backward_f32(p: &TransposeParams, dy: &[f32], dx: &mut [f32]) {
    p.for_each(|i, o| dx[i] += dy[o]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand: a 2×2 plane padded by [1, 0, 0, 2] with 9.
    #[test]
    fn pad_worked_example() {
        let p = Pad2dParams { planes: 1, in_h: 2, in_w: 2, pad: [1, 0, 0, 2], value: 9.0 };
        let mut y = [0.0; 12];
        pad2d_f32(&p, &[1.0, 2.0, 3.0, 4.0], &mut y);
        assert_eq!(y, [9.0, 9.0, 9.0, 9.0, 1.0, 2.0, 9.0, 9.0, 3.0, 4.0, 9.0, 9.0]);
        let mut dx = [0.0; 4];
        pad2d_backward_f32(&p, &[0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 3.0, 4.0, 0.0, 0.0], &mut dx);
        assert_eq!(dx, [1.0, 2.0, 3.0, 4.0]);
    }

    /// Worked by hand: NHWC [1, 2, 2, 3] → NCHW [1, 3, 2, 2] with perm [0, 3, 1, 2].
    #[test]
    fn transpose_worked_example() {
        let x: [f32; 12] = core::array::from_fn(|i| i as f32);
        let p = TransposeParams { dims: [1, 2, 2, 3], perm: [0, 3, 1, 2] };
        let mut y = [0.0; 12];
        transpose_f32(&p, &x, &mut y);
        assert_eq!(y, [0.0, 3.0, 6.0, 9.0, 1.0, 4.0, 7.0, 10.0, 2.0, 5.0, 8.0, 11.0]);
        let mut dx = [0.0; 12];
        transpose_backward_f32(&p, &y, &mut dx);
        assert_eq!(dx, x);
    }
}
