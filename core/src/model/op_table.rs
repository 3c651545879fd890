//! The op table: one row per layer op of the spec format. A row gives the op's stable
//! model-file tag, its spec name, its arity, its settings (key, kind and range, default) and
//! how it is added to a graph. `LayerOp`, the spec parser, `inspect`, model-file encoding and
//! the coverage tests are all generated from or driven by these rows.
//!
//! Adding an op: its kernels (kernels/), its op file (core/src/ops/), then one row here with
//! the next free tag. Tags are append-only: a tag, once in a released model file, keeps its
//! meaning forever (`tests/tests/model_file_compat.rs` reads a file written before).

use super::layer_macro::layer_ops;
use super::settings::{count, flag, non_negative, pair, pair_like, pair_or, real};

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
}

fn u(v: u32) -> usize {
    v as usize
}

fn pair2(v: [u32; 2]) -> [usize; 2] {
    [u(v[0]), u(v[1])]
}
