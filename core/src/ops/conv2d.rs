//! `conv2d`: NCHW cross-correlation with stride, dilation, groups (depthwise included) and
//! zero padding on each side, bias optional (PyTorch's nn.Conv2d, ONNX's Conv).

use super::{expect_inputs, expect_shape, optional, window_positions, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, Init, NodeId, Result, Shape};
use mote_kernels::{conv2d_backward_input_f32, conv2d_backward_weight_f32, conv2d_f32, sum_channels_f32, Conv2dParams};
use serde::{Deserialize, Serialize};

/// Convolution hyper-parameters; the kernel size comes from the weight
/// `[out_c, in_c / groups, kh, kw]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2d {
    /// `[stride_h, stride_w]`, each ≥ 1.
    pub stride: [usize; 2],
    /// Zeros added `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// `[dilation_h, dilation_w]`, each ≥ 1.
    pub dilation: [usize; 2],
    /// Channel groups (≥ 1, dividing both channel counts); `groups = in_c` is depthwise.
    pub groups: usize,
}

impl Conv2d {
    /// Stride `stride` and padding `padding = [ph, pw]` on both sides, one group, no dilation.
    pub const fn plain(stride: [usize; 2], padding: [usize; 2]) -> Self {
        Conv2d { stride, padding: [padding[0], padding[1], padding[0], padding[1]], dilation: [1, 1], groups: 1 }
    }
}

const NAME: &str = "conv2d";

impl Conv2d {
    /// The kernel's dimensions for input `x` `[B, C, H, W]` and weight `w`.
    pub fn params(&self, x: Shape, w: Shape) -> Conv2dParams {
        Conv2dParams {
            batch: x.dim(0),
            in_c: x.dim(1),
            in_h: x.dim(2),
            in_w: x.dim(3),
            out_c: w.dim(0),
            kernel_h: w.dim(2),
            kernel_w: w.dim(3),
            stride_h: self.stride[0],
            stride_w: self.stride[1],
            pad_top: self.padding[0],
            pad_left: self.padding[1],
            pad_bottom: self.padding[2],
            pad_right: self.padding[3],
            dilation_h: self.dilation[0],
            dilation_w: self.dilation[1],
            groups: self.groups,
        }
    }
}

impl OpKind for Conv2d {
    fn name(&self) -> &'static str {
        NAME
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        expect_inputs(NAME, inputs, 2, 3, "x, weight and an optional bias")?;
        let (x, w) = (inputs[0], inputs[1]);
        if x.rank() != 4 {
            return Err(Error::InvalidShape { op: NAME, shape: x, expected: "input [B, C, H, W]" });
        }
        if self.stride.contains(&0) || self.dilation.contains(&0) || self.groups == 0 {
            return Err(Error::InvalidArgument { op: NAME, expected: "stride, dilation and groups ≥ 1" });
        }
        if x.dim(1) % self.groups != 0 || w.dim(0) % self.groups != 0 {
            return Err(Error::ShapeMismatch { op: NAME, left: x, right: w, expected: "groups dividing the input and output channels" });
        }
        if w.rank() != 4 || w.dim(1) != x.dim(1) / self.groups {
            return Err(Error::ShapeMismatch {
                op: NAME,
                left: x,
                right: w,
                expected: "weight [out_c, in_c / groups, kh, kw] with in_c = the channels of x",
            });
        }
        let [top, left, bottom, right] = self.padding;
        let out_h = window_positions(NAME, x.dim(2), [top, bottom], w.dim(2), self.dilation[0], self.stride[0])?;
        let out_w = window_positions(NAME, x.dim(3), [left, right], w.dim(3), self.dilation[1], self.stride[1])?;
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(Error::ShapeMismatch { op: NAME, left: x, right: w, expected: "a kernel no larger than the padded input" });
        };
        if let Some(&b) = inputs.get(2) {
            expect_shape(NAME, b, &[w.dim(0)], "bias [out_c]")?;
        }
        Shape::new(&[x.dim(0), w.dim(0), out_h, out_w])
    }
    fn saved(&self) -> Saved {
        Saved::inputs(&[0, 1])
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let p = self.params(f.shapes[0], f.shapes[1]);
        conv2d_f32(&p, f.inputs[0], f.inputs[1], optional(&f.inputs, f.n_inputs, 2), f.out);
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let p = self.params(b.shapes[0], b.shapes[1]);
        let [dx, dw, db, ..] = b.grads;
        if let Some(dx) = dx {
            conv2d_backward_input_f32(&p, b.dout, b.inputs[1], dx);
        }
        if let Some(dw) = dw {
            conv2d_backward_weight_f32(&p, b.inputs[0], b.dout, dw);
        }
        if let Some(db) = db {
            sum_channels_f32(p.batch, p.out_c, p.out_h() * p.out_w(), b.dout, db);
        }
        Ok(())
    }
    fn macs(&self, inputs: &[Shape], out: Shape) -> usize {
        let w = inputs[1];
        out.numel().saturating_mul(w.numel() / w.dim(0))
    }
}

impl<const N: usize> Graph<N> {
    /// `conv2d` with `out_c` filters of `kernel = [kh, kw]`, padding on both sides, one group:
    /// see [`Graph::conv2d_with`].
    pub fn conv2d(
        &mut self,
        x: NodeId,
        out_c: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        bias: bool,
    ) -> Result<NodeId> {
        self.conv2d_with(x, out_c, kernel, Conv2d::plain(stride, padding), bias)
    }

    /// `conv2d` with `out_c` filters of `kernel = [kh, kw]`: creates a Kaiming-uniform weight
    /// `[out_c, in_c / groups, kh, kw]` and, with `bias`, a zero bias `[out_c]`.
    pub fn conv2d_with(&mut self, x: NodeId, out_c: usize, kernel: [usize; 2], conv: Conv2d, bias: bool) -> Result<NodeId> {
        let in_c = self.shape(x)?.dim(1) / conv.groups.max(1);
        let op = super::Op::Conv2d(conv);
        self.atomically(|g| {
            let w = g.param(&[out_c, in_c, kernel[0], kernel[1]], Init::KaimingUniform)?;
            if bias {
                let b = g.param(&[out_c], Init::Zeros)?;
                g.push_op(op, &[x, w, b])
            } else {
                g.push_op(op, &[x, w])
            }
        })
    }
}
