//! `maxpool2d` and `avgpool2d`: NCHW pooling with kernel, stride and padding on each side
//! (each side's padding smaller than the kernel); average pooling counts the padding in its
//! divisor (PyTorch's default) or not (ONNX's default, TFLite's `SAME`).

use super::{expect_inputs, window_positions, Backward, Forward, OpKind, Saved};
use crate::{Error, Graph, NodeId, Result, Shape};
use mote_kernels::{avgpool2d_backward_f32, avgpool2d_f32, maxpool2d_backward_f32, maxpool2d_f32, Pool2dParams};
use serde::{Deserialize, Serialize};

/// Max or average.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PoolKind {
    Max,
    Avg,
}

/// Pooling hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool2d {
    pub kind: PoolKind,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub padding: [usize; 4],
    /// Average pooling divides by the whole window (else by the input values it covers).
    pub count_padding: bool,
}

impl Pool2d {
    /// PyTorch's pooling: `padding = [ph, pw]` on both sides, counted in an average.
    pub const fn plain(kind: PoolKind, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Self {
        Pool2d { kind, kernel, stride, padding: [padding[0], padding[1], padding[0], padding[1]], count_padding: true }
    }
}

impl Pool2d {
    pub(crate) fn params(&self, x: Shape) -> Pool2dParams {
        Pool2dParams {
            batch: x.dim(0),
            channels: x.dim(1),
            in_h: x.dim(2),
            in_w: x.dim(3),
            kernel_h: self.kernel[0],
            kernel_w: self.kernel[1],
            stride_h: self.stride[0],
            stride_w: self.stride[1],
            pad_top: self.padding[0],
            pad_left: self.padding[1],
            pad_bottom: self.padding[2],
            pad_right: self.padding[3],
            count_padding: self.count_padding,
        }
    }
}

impl OpKind for Pool2d {
    fn name(&self) -> &'static str {
        match self.kind {
            PoolKind::Max => "maxpool2d",
            PoolKind::Avg => "avgpool2d",
        }
    }
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape> {
        let op = self.name();
        expect_inputs(op, inputs, 1, 1, "one input")?;
        let x = inputs[0];
        if x.rank() != 4 {
            return Err(Error::InvalidShape { op, shape: x, expected: "input [B, C, H, W]" });
        }
        if self.kernel.contains(&0) || self.stride.contains(&0) {
            return Err(Error::InvalidArgument { op, expected: "kernel and stride ≥ 1" });
        }
        let [top, left, bottom, right] = self.padding;
        if top.max(bottom) >= self.kernel[0] || left.max(right) >= self.kernel[1] {
            return Err(Error::InvalidArgument { op, expected: "padding on each side smaller than the kernel" });
        }
        let out_h = window_positions(op, x.dim(2), [top, bottom], self.kernel[0], 1, self.stride[0])?;
        let out_w = window_positions(op, x.dim(3), [left, right], self.kernel[1], 1, self.stride[1])?;
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(Error::InvalidShape { op, shape: x, expected: "an input at least as large as the kernel" });
        };
        Shape::new(&[x.dim(0), x.dim(1), out_h, out_w])
    }
    fn saved(&self) -> Saved {
        match self.kind {
            PoolKind::Max => Saved::inputs(&[0]),
            PoolKind::Avg => Saved::NOTHING,
        }
    }
    fn forward(&self, f: Forward<'_>) -> Result<()> {
        let p = self.params(f.shapes[0]);
        match self.kind {
            PoolKind::Max => maxpool2d_f32(&p, f.inputs[0], f.out),
            PoolKind::Avg => avgpool2d_f32(&p, f.inputs[0], f.out),
        }
        Ok(())
    }
    fn backward(&self, b: Backward<'_>) -> Result<()> {
        let p = self.params(b.shapes[0]);
        if let [Some(dx), ..] = b.grads {
            match self.kind {
                PoolKind::Max => maxpool2d_backward_f32(&p, b.inputs[0], b.dout, dx),
                PoolKind::Avg => avgpool2d_backward_f32(&p, b.dout, dx),
            }
        }
        Ok(())
    }
}

impl<const N: usize> Graph<N> {
    /// `maxpool2d` (pads with −∞) with `padding` on both sides.
    pub fn maxpool2d(&mut self, x: NodeId, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Result<NodeId> {
        self.pool2d(x, Pool2d::plain(PoolKind::Max, kernel, stride, padding))
    }
    /// `avgpool2d` with `padding` on both sides, counted in the divisor (PyTorch's default).
    pub fn avgpool2d(&mut self, x: NodeId, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Result<NodeId> {
        self.pool2d(x, Pool2d::plain(PoolKind::Avg, kernel, stride, padding))
    }
    /// Any pooling.
    pub fn pool2d(&mut self, x: NodeId, pool: Pool2d) -> Result<NodeId> {
        self.push_op(super::Op::Pool2d(pool), &[x])
    }
}
