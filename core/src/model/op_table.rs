//! The op table: one row per layer op of the spec format. A row gives the op's stable
//! model-file tag, its spec name, its arity, its settings (key, kind and range, default) and
//! how it is added to a graph. `LayerOp`, the spec parser, `inspect`, model-file encoding and
//! the coverage tests are all generated from or driven by these rows.
//!
//! Adding an op: its kernels (kernels/), its op file (core/src/ops/), then one row here with
//! the next free tag. Tags are append-only: a tag, once in a released model file, keeps its
//! meaning forever (`tests/tests/model_file_compat.rs` reads a file written before).

use super::layer_macro::layer_ops;
use super::settings::{count, dims, dims_of, flag, int_or, non_negative, pair, pair_like, pair_or, real};
use crate::ops::{Conv2d, Pool2d, PoolKind};
use crate::{Graph, Init, NodeId, Result};

layer_ops! {
    /// Fully connected over the last dimension: `x·Wᵀ + b` (PyTorch's nn.Linear).
    0 Linear "linear" arity 1 {
        out: u32 = count("the number of output features"),
        bias: bool = flag(true, "add a bias"),
    } build |g, x, _| g.linear(x, u(out), bias);

    /// NCHW cross-correlation with stride and zero padding (nn.Conv2d, groups = 1).
    1 Conv2d "conv2d" arity 1 {
        out_channels: u32 = count("the number of filters"),
        kernel: [u32; 2] = pair(1, "the kernel size [kh, kw]"),
        stride: [u32; 2] = pair_or(1, [1, 1], "the stride [sh, sw]"),
        padding: [u32; 2] = pair_or(0, [0, 0], "zeros added on both sides [ph, pw]"),
        bias: bool = flag(true, "add a bias"),
    } build |g, x, _| g.conv2d(x, u(out_channels), pair2(kernel), pair2(stride), pair2(padding), bias);

    /// Max pooling (pads with −∞; padding at most half the kernel).
    2 MaxPool2d "maxpool2d" arity 1 {
        kernel: [u32; 2] = pair(1, "the window [kh, kw]"),
        stride: [u32; 2] = pair_like(1, "kernel", "the stride [sh, sw]"),
        padding: [u32; 2] = pair_or(0, [0, 0], "padding on both sides [ph, pw]"),
    } build |g, x, _| g.maxpool2d(x, pair2(kernel), pair2(stride), pair2(padding));

    /// Average pooling (padding counted in the divisor, as PyTorch's default).
    3 AvgPool2d "avgpool2d" arity 1 {
        kernel: [u32; 2] = pair(1, "the window [kh, kw]"),
        stride: [u32; 2] = pair_like(1, "kernel", "the stride [sh, sw]"),
        padding: [u32; 2] = pair_or(0, [0, 0], "padding on both sides [ph, pw]"),
    } build |g, x, _| g.avgpool2d(x, pair2(kernel), pair2(stride), pair2(padding));

    /// Mean over each channel's plane: `[B, C, H, W]` → `[B, C, 1, 1]`.
    4 GlobalAvgPool "global_avgpool" arity 1 {} build |g, x, _| g.global_avgpool(x);

    /// Every dimension after the batch folded into one.
    5 Flatten "flatten" arity 1 {} build |g, x, _| g.flatten(x);

    /// `max(x, 0)`.
    6 Relu "relu" arity 1 {} build |g, x, _| g.relu(x);

    /// `x` where positive, `slope·x` elsewhere.
    7 LeakyRelu "leaky_relu" arity 1 {
        slope: f32 = real(0.0, 1.0, true, 0.01, "the slope for negative inputs"),
    } build |g, x, _| g.leaky_relu(x, slope);

    /// `1 / (1 + e^−x)`.
    8 Sigmoid "sigmoid" arity 1 {} build |g, x, _| g.sigmoid(x);

    /// `tanh(x)`.
    9 Tanh "tanh" arity 1 {} build |g, x, _| g.tanh(x);

    /// `e^x`.
    10 Exp "exp" arity 1 {} build |g, x, _| g.exp(x);

    /// `x²`.
    11 Square "square" arity 1 {} build |g, x, _| g.square(x);

    /// Softmax over the last dimension.
    12 Softmax "softmax" arity 1 {} build |g, x, _| g.softmax(x);

    /// Log-softmax over the last dimension.
    13 LogSoftmax "log_softmax" arity 1 {} build |g, x, _| g.log_softmax(x);

    /// Normalization over the last dimension, with a learned scale and shift if `affine`.
    14 LayerNorm "layernorm" arity 1 {
        eps: f32 = non_negative(1e-5, "added to the variance"),
        affine: bool = flag(true, "learn a scale and a shift"),
    } build |g, x, _| g.layernorm(x, eps, affine);

    /// Batch normalization over channels (dimension 1), running statistics for eval.
    15 BatchNorm "batchnorm" arity 1 {
        eps: f32 = non_negative(1e-5, "added to the variance"),
        momentum: f32 = real(0.0, 1.0, false, 0.1, "weight of a batch in the running statistics"),
        affine: bool = flag(true, "learn a scale and a shift"),
    } build |g, x, _| g.batchnorm(x, eps, momentum, affine);

    /// Zeroes each value with probability `p` in training, scales the rest by `1/(1−p)`.
    16 Dropout "dropout" arity 1 {
        p: f32 = real(0.0, 1.0, true, 0.5, "the probability of dropping a value"),
    } build |g, x, _| g.dropout(x, p);

    /// `a + b` with PyTorch broadcasting.
    17 Add "add" arity 2 {} build |g, a, b| g.add(a, b);

    /// `a − b` with PyTorch broadcasting.
    18 Sub "sub" arity 2 {} build |g, a, b| g.sub(a, b);

    /// `a · b` elementwise with PyTorch broadcasting.
    19 Mul "mul" arity 2 {} build |g, a, b| g.mul(a, b);

    /// Matrix product `[M, K] · [K, N]` of two layers' outputs.
    20 MatMul "matmul" arity 2 {} build |g, a, b| g.matmul(a, b);

    /// Convolution with groups (depthwise: groups = input channels), dilation and padding on
    /// each side (ONNX Conv, TFLite CONV_2D and DEPTHWISE_CONV_2D).
    21 Conv2dGeneral "conv2d_general" arity 1 {
        out_channels: u32 = count("the number of filters"),
        kernel: [u32; 2] = pair(1, "the kernel size [kh, kw]"),
        stride: [u32; 2] = pair_or(1, [1, 1], "the stride [sh, sw]"),
        pad_begin: [u32; 2] = pair_or(0, [0, 0], "zeros added [top, left]"),
        pad_end: [u32; 2] = pair_or(0, [0, 0], "zeros added [bottom, right]"),
        dilation: [u32; 2] = pair_or(1, [1, 1], "the spacing of the kernel taps [dh, dw]"),
        groups: u32 = int_or(1, 1, "channel groups, dividing the input and output channels"),
        bias: bool = flag(true, "add a bias"),
    } build |g, x, _| {
        let conv = Conv2d { stride: pair2(stride), padding: quad(pad_begin, pad_end), dilation: pair2(dilation), groups: u(groups) };
        g.conv2d_with(x, u(out_channels), pair2(kernel), conv, bias)
    };

    /// Max pooling with padding on each side (smaller than the kernel; pads with −∞).
    22 MaxPool2dGeneral "maxpool2d_general" arity 1 {
        kernel: [u32; 2] = pair(1, "the window [kh, kw]"),
        stride: [u32; 2] = pair_like(1, "kernel", "the stride [sh, sw]"),
        pad_begin: [u32; 2] = pair_or(0, [0, 0], "padding [top, left]"),
        pad_end: [u32; 2] = pair_or(0, [0, 0], "padding [bottom, right]"),
    } build |g, x, _| g.pool2d(x, pool(PoolKind::Max, kernel, stride, quad(pad_begin, pad_end), false));

    /// Average pooling with padding on each side, divided by the whole window
    /// (`count_padding`) or by the input values it covers (ONNX's default, TFLite's SAME).
    23 AvgPool2dGeneral "avgpool2d_general" arity 1 {
        kernel: [u32; 2] = pair(1, "the window [kh, kw]"),
        stride: [u32; 2] = pair_like(1, "kernel", "the stride [sh, sw]"),
        pad_begin: [u32; 2] = pair_or(0, [0, 0], "padding [top, left]"),
        pad_end: [u32; 2] = pair_or(0, [0, 0], "padding [bottom, right]"),
        count_padding: bool = flag(false, "count padded cells in the divisor"),
    } build |g, x, _| g.pool2d(x, pool(PoolKind::Avg, kernel, stride, quad(pad_begin, pad_end), count_padding));

    /// Constant padding of the height and width of `[B, C, H, W]`.
    24 Pad "pad" arity 1 {
        pad_begin: [u32; 2] = pair_or(0, [0, 0], "cells added [top, left]"),
        pad_end: [u32; 2] = pair_or(0, [0, 0], "cells added [bottom, right]"),
        value: f32 = real(-f32::MAX, f32::MAX, false, 0.0, "the value of the added cells"),
    } build |g, x, _| g.pad(x, quad(pad_begin, pad_end), value);

    /// `min(max(x, min), max)` (ReLU6: min 0, max 6).
    25 Clip "clip" arity 1 {
        min: f32 = real(-f32::MAX, f32::MAX, false, -f32::MAX, "the lower bound"),
        max: f32 = real(-f32::MAX, f32::MAX, false, f32::MAX, "the upper bound"),
    } build |g, x, _| g.clip(x, min, max);

    /// `−x`.
    26 Neg "neg" arity 1 {} build |g, x, _| g.neg(x);

    /// `a / b` elementwise with broadcasting.
    27 Div "div" arity 2 {} build |g, a, b| g.div(a, b);

    /// The same values as `shape` per sample (the batch stays).
    28 Reshape "reshape" arity 1 {
        shape: [u32; 4] = dims("one sample's shape after the reshape"),
    } build |g, x, _| reshape_per_sample(g, x, shape);

    /// Permutes the dimensions after the batch: `perm` lists, for each output dimension,
    /// the input dimension it takes (numbered from 1, the batch being 0).
    29 Transpose "transpose" arity 1 {
        perm: [u32; 4] = dims("the input dimension of each output dimension after the batch"),
    } build |g, x, _| transpose_per_sample(g, x, perm);

    /// A further model input of exactly `shape` (its first dimension is not the batch's: an
    /// operand such as a matrix of matmul), fed like the first, `input`.
    30 Input "input" arity 0 {
        shape: [u32; 4] = dims("the input's whole shape"),
    } build |g, _, _| extra_input(g, shape);

    /// A tensor of `shape` (no batch dimension) stored with the weights and trained with
    /// them: a constant operand of add, sub, mul, div or matmul.
    31 Constant "constant" arity 0 {
        shape: [u32; 4] = dims("the tensor's shape"),
    } build |g, _, _| constant(g, shape);
}

fn u(v: u32) -> usize {
    v as usize
}

fn pair2(v: [u32; 2]) -> [usize; 2] {
    [u(v[0]), u(v[1])]
}

/// `[top, left, bottom, right]` from the begin and end pairs.
fn quad(begin: [u32; 2], end: [u32; 2]) -> [usize; 4] {
    [u(begin[0]), u(begin[1]), u(end[0]), u(end[1])]
}

fn pool(kind: PoolKind, kernel: [u32; 2], stride: [u32; 2], padding: [usize; 4], count_padding: bool) -> Pool2d {
    Pool2d { kind, kernel: pair2(kernel), stride: pair2(stride), padding, count_padding }
}

/// The numbers of a dims setting, and how many there are.
fn usizes(d: [u32; 4]) -> ([usize; 4], usize) {
    (d.map(u), dims_of(&d).len())
}

fn extra_input<const N: usize>(g: &mut Graph<N>, shape: [u32; 4]) -> Result<NodeId> {
    let (d, n) = usizes(shape);
    g.input(&d[..n])
}

fn constant<const N: usize>(g: &mut Graph<N>, shape: [u32; 4]) -> Result<NodeId> {
    let (d, n) = usizes(shape);
    g.param(&d[..n], Init::Zeros)
}

fn reshape_per_sample<const N: usize>(g: &mut Graph<N>, x: NodeId, shape: [u32; 4]) -> Result<NodeId> {
    let b = g.shape(x)?.dim(0);
    let (d, n) = usizes(shape);
    g.reshape(x, &[b, d[0], d[1], d[2], d[3]][..n + 1])
}

fn transpose_per_sample<const N: usize>(g: &mut Graph<N>, x: NodeId, perm: [u32; 4]) -> Result<NodeId> {
    let (p, n) = usizes(perm);
    g.transpose(x, &[0, p[0], p[1], p[2], p[3]][..n + 1])
}
