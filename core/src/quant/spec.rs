//! An int8 model as its file stores it: the input tensor, then one step per operator, each
//! reading earlier tensors and making the next one (TFLite's quantization scheme, NHWC, batch 1).
//! Constants (weights, biases, requantization tables) are [`Blob`]s of the file's data section,
//! read in place. Decoding a step never trusts it: [`QStep::check`] validates every size a
//! kernel relies on before it runs.

use super::residual::{QConv, Residual};
use super::QuantError;
use mote_kernels::reference::int8::{AddParams, Int8Io, SoftmaxParams};
use mote_kernels::{Conv2dParams, Pool2dParams};
use serde::{Deserialize, Serialize};

/// The most steps an int8 model has (ResNet-8: 16, DS-CNN: 13).
pub const MAX_QUANT_STEPS: usize = 64;
/// The most values one tensor holds.
pub const MAX_TENSOR_VALUES: usize = 1 << 24;
/// The largest kernel size, stride, dilation or padding a step may have (keeps every index
/// computation far inside 32-bit arithmetic).
const MAX_GEOMETRY: usize = 4096;

/// Bytes of the model file's data section: `offset` from its start, `len` long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub offset: u32,
    pub len: u32,
}

/// A tensor's real value is `scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quant {
    pub scale: f32,
    pub zero_point: i32,
}

impl Quant {
    /// The int8 value nearest `real` (ties away from zero), saturated.
    pub fn quantize(&self, real: f32) -> i8 {
        (self.zero_point as f32 + libm::roundf(real / self.scale)).clamp(-128.0, 127.0) as i8
    }
    /// The real value of `q`.
    pub fn dequantize(&self, q: i8) -> f32 {
        self.scale * (q as i32 - self.zero_point) as f32
    }
}

/// An int8 tensor: its dimensions (the first is the batch, 1) and quantization.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QTensor {
    pub dims: [u32; 4],
    pub rank: u8,
    pub quant: Quant,
}

impl QTensor {
    /// The dimensions in use.
    pub fn dims(&self) -> &[u32] {
        &self.dims[..(self.rank as usize).min(4)]
    }
    /// Number of values (checked by [`QTensor::check`]).
    pub fn numel(&self) -> usize {
        self.dims().iter().map(|&d| d as usize).product()
    }
    /// A rank of 1 to 4, a batch of 1, every dimension ≥ 1, at most [`MAX_TENSOR_VALUES`]
    /// values, a positive finite scale, an int8 zero point.
    pub fn check(&self) -> Result<(), &'static str> {
        if !(1..=4).contains(&self.rank) || self.dims[0] != 1 {
            return Err("tensor rank (1 to 4, batch first and 1)");
        }
        let n = self.dims().iter().try_fold(1usize, |n, &d| if d == 0 { None } else { n.checked_mul(d as usize) });
        if n.is_none_or(|n| n > MAX_TENSOR_VALUES) {
            return Err("tensor dimensions (each ≥ 1, at most 2^24 values)");
        }
        if !(self.quant.scale.is_finite() && self.quant.scale > 0.0 && (-128..=127).contains(&self.quant.zero_point)) {
            return Err("tensor quantization (scale > 0, zero point in −128..=127)");
        }
        Ok(())
    }
    /// NHWC dimensions `[h, w, c]` of a rank-4 tensor.
    fn hwc(&self) -> Option<[usize; 3]> {
        (self.rank == 4).then(|| [self.dims[1] as usize, self.dims[2] as usize, self.dims[3] as usize])
    }
}

/// The second operand of an addition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operand {
    /// An earlier tensor (0: the input; `k + 1`: step `k`'s output).
    Tensor(u16),
    /// Constant int8 values.
    Const(Blob),
}

/// What a step computes.
// A residual block holds three convolutions (about 400 bytes on a 32-bit core); steps are
// decoded one at a time, never stored in bulk, so the size is paid once on the stack.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum QLayer {
    /// CONV_2D (groups allowed; `w` `[out_c, kh, kw, in_c / groups]`) or DEPTHWISE_CONV_2D
    /// (`w` `[1, kh, kw, out_c]`), i32 `bias`, one [`Requant`](mote_kernels::reference::int8::Requant)
    /// per output channel or one for all; with `pool`, a MAX_POOL_2D over its output fused in
    /// (the convolution's output is never stored).
    Conv {
        p: Conv2dParams,
        io: Int8Io,
        depthwise: bool,
        weights: Blob,
        bias: Option<Blob>,
        requant: Blob,
        pool: Option<(Pool2dParams, [i32; 2])>,
    },
    /// FULLY_CONNECTED over rows of `depth` values: `w` `[out, depth]`.
    FullyConnected { depth: u32, out: u32, io: Int8Io, weights: Blob, bias: Option<Blob>, requant: Blob },
    /// AVERAGE_POOL_2D, clamped to `act`.
    AvgPool { p: Pool2dParams, act: [i32; 2] },
    /// MAX_POOL_2D, clamped to `act`.
    MaxPool { p: Pool2dParams, act: [i32; 2] },
    /// ADD of two tensors of the same size.
    Add { p: AddParams, other: Operand },
    /// SOFTMAX over rows of `depth` values (output scale 1/256, zero point −128).
    Softmax { p: SoftmaxParams, depth: u32 },
    /// The same values, other dimensions (the output shares the input's bytes).
    Reshape,
    /// A residual block (two convolutions, a shortcut, an ADD) computed row by row.
    Residual(Residual),
}

/// One operator: its kernel and settings, the tensor it reads, the tensor it makes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QStep {
    pub layer: QLayer,
    /// The tensor it reads (0: the input; `k + 1`: step `k`'s output).
    pub input: u16,
    pub output: QTensor,
}

/// Bytes of `n` values of `size` bytes: the length a blob must have.
fn bytes(n: usize, size: usize) -> u32 {
    (n * size).min(u32::MAX as usize) as u32
}

fn ensure(ok: bool, what: &'static str) -> Result<(), &'static str> {
    if ok {
        Ok(())
    } else {
        Err(what)
    }
}

/// A blob of exactly `len` bytes inside `data_len`, at a multiple of `align`.
fn blob(b: &Blob, len: u32, align: u32, data_len: usize, what: &'static str) -> Result<(), &'static str> {
    let end = b.offset.checked_add(b.len).map(|e| e as usize);
    ensure(b.len == len && b.offset.is_multiple_of(align) && end.is_some_and(|e| e <= data_len), what)
}

/// An input zero point's negation and an output zero point, and a clamp within int8.
fn io_ok(io: &Int8Io) -> Result<(), &'static str> {
    ensure((-127..=128).contains(&io.input_offset) && (-128..=127).contains(&io.output_offset), "zero points")?;
    act_ok([io.act_min, io.act_max])
}

fn act_ok(act: [i32; 2]) -> Result<(), &'static str> {
    ensure(-128 <= act[0] && act[0] <= act[1] && act[1] <= 127, "activation clamp (within −128..=127, min ≤ max)")
}

fn geometry_ok(values: &[usize], what: &'static str) -> Result<(), &'static str> {
    ensure(values.iter().all(|&v| v <= MAX_GEOMETRY), what)
}

/// Output `(h, w)` of a window `k` (spread by `d`) moved by `s` over `len` cells padded by
/// `pad`, or `None` when the window is larger than the padded input or a value is out of range.
fn out_len(len: usize, pad: [usize; 2], k: usize, s: usize, d: usize) -> Option<usize> {
    let span = (k.checked_sub(1)?).checked_mul(d)? + 1;
    let padded = len + pad[0] + pad[1];
    (s >= 1 && d >= 1 && padded >= span).then(|| (padded - span) / s + 1)
}

fn pool_ok(p: &Pool2dParams, input: [usize; 3], act: [i32; 2]) -> Result<[usize; 2], &'static str> {
    geometry_ok(&[p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right], "pool geometry")?;
    ensure(p.batch == 1 && [p.in_h, p.in_w, p.channels] == input, "pool input dimensions")?;
    act_ok(act)?;
    let oh = out_len(p.in_h, [p.pad_top, p.pad_bottom], p.kernel_h, p.stride_h, 1);
    let ow = out_len(p.in_w, [p.pad_left, p.pad_right], p.kernel_w, p.stride_w, 1);
    match (oh, ow, p.kernel_h >= 1 && p.kernel_w >= 1) {
        (Some(h), Some(w), true) => Ok([h, w]),
        _ => Err("pool window (≥ 1, within the padded input)"),
    }
}

impl QStep {
    /// The tensors the step reads: its input, and an addition's other tensor.
    pub fn reads(&self) -> impl Iterator<Item = u16> {
        let other = match self.layer {
            QLayer::Add { other: Operand::Tensor(t), .. } => Some(t),
            _ => None,
        };
        core::iter::once(self.input).chain(other)
    }

    /// Checks the step against its input `x`, the earlier tensors' sizes (`numel`: tensor
    /// `t` holds `numel[t]` values; this step makes tensor `numel.len()`), and a data section of
    /// `data_len` bytes: every dimension, blob and parameter its kernel relies on.
    pub fn check(&self, x: &QTensor, numel: &[usize], data_len: usize) -> Result<(), QuantError> {
        let step = numel.len() - 1;
        self.check_layer(x, numel, data_len).map_err(|what| QuantError::Step { step, what })
    }

    /// Multiply-accumulates of a convolution or fully connected layer (a fused pool's
    /// convolution counted whole) or of a residual block's convolutions, else one per output value (per window value for pooling);
    /// `x_len` and `y_len` are the input's and output's sizes.
    pub fn work(&self, x_len: usize, y_len: usize) -> u64 {
        let n = match &self.layer {
            QLayer::Conv { p, depthwise, pool, .. } => {
                let taps = p.kernel_h * p.kernel_w * if *depthwise { 1 } else { p.in_c / p.groups.max(1) };
                let conv_out = pool.map_or(y_len, |(pool, _)| pool.in_h * pool.in_w * pool.channels);
                conv_out * taps
            }
            QLayer::FullyConnected { depth, out, .. } => x_len / (*depth as usize).max(1) * *depth as usize * *out as usize,
            QLayer::Residual(block) => {
                let convs = [Some(&block.a), Some(&block.b), block.shortcut.as_ref()].into_iter().flatten();
                convs
                    .map(|c| c.p.out_h() * c.p.out_w() * c.p.out_c * c.p.kernel_h * c.p.kernel_w * c.p.in_c / c.p.groups.max(1))
                    .sum::<usize>()
            }
            QLayer::AvgPool { p, .. } | QLayer::MaxPool { p, .. } => y_len * p.kernel_h * p.kernel_w,
            _ => y_len,
        };
        n as u64
    }

    fn check_layer(&self, x: &QTensor, numel: &[usize], data_len: usize) -> Result<(), &'static str> {
        let y = &self.output;
        y.check()?;
        let (x_len, y_len) = (x.numel(), y.numel());
        match &self.layer {
            QLayer::Conv { p, io, depthwise, weights, bias, requant, pool } => {
                let (Some(xd), Some(yd)) = (x.hwc(), y.hwc()) else { return Err("conv tensors are 4-D") };
                let conv = QConv { p: *p, io: *io, weights: *weights, bias: *bias, requant: *requant };
                ensure(conv_check(&conv, *depthwise, pool.as_ref(), xd, data_len)? == yd, "conv output dimensions")
            }
            QLayer::Residual(block) => {
                let (Some(xd), Some(yd)) = (x.hwc(), y.hwc()) else { return Err("residual block tensors are 4-D") };
                let a = conv_check(&block.a, false, None, xd, data_len)?;
                ensure(
                    a.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_some_and(|n| n <= MAX_TENSOR_VALUES),
                    "residual block's first convolution output too large",
                )?;
                ensure(conv_check(&block.b, false, None, a, data_len)? == yd, "residual block output dimensions")?;
                let shortcut = match &block.shortcut {
                    Some(s) => conv_check(s, false, None, xd, data_len)?,
                    None => xd,
                };
                ensure(shortcut == yd, "residual block shortcut dimensions")?;
                ensure(block.rows_ok(), "residual block padding (a window wholly in the padding)")?;
                add_ok(&block.add)
            }
            QLayer::FullyConnected { depth, out, io, weights, bias, requant } => {
                let (depth, out) = (*depth as usize, *out as usize);
                ensure(depth >= 1 && out >= 1 && x_len % depth == 0 && y_len == x_len / depth * out, "fully connected sizes")?;
                ensure(depth * out <= MAX_TENSOR_VALUES, "fully connected weights too large")?;
                blob(weights, bytes(depth * out, 1), 1, data_len, "fully connected weights")?;
                constants(bias.as_ref(), requant, out, data_len)?;
                io_ok(io)
            }
            QLayer::AvgPool { p, act } | QLayer::MaxPool { p, act } => {
                let (Some(xd), Some(yd)) = (x.hwc(), y.hwc()) else { return Err("pool tensors are 4-D") };
                let out = pool_ok(p, xd, *act)?;
                ensure([out[0], out[1], xd[2]] == yd, "pool output dimensions")
            }
            QLayer::Add { p, other } => {
                ensure(y_len == x_len, "add output size")?;
                match other {
                    Operand::Tensor(t) => {
                        ensure(numel.get(*t as usize) == Some(&x_len), "add operand (an earlier tensor of the same size)")?
                    }
                    Operand::Const(b) => blob(b, bytes(x_len, 1), 1, data_len, "add constant")?,
                }
                add_ok(p)
            }
            QLayer::Softmax { p, depth } => {
                ensure(*depth >= 1 && x_len % *depth as usize == 0 && y_len == x_len, "softmax sizes")?;
                ensure((0..=31).contains(&p.input.shift), "softmax input multiplier")?;
                ensure(y.quant.zero_point == -128 && y.quant.scale == 1.0 / 256.0, "softmax output quantization (1/256, −128)")
            }
            QLayer::Reshape => ensure(y_len == x_len, "reshape keeps the number of values"),
        }
    }
}

/// Checks convolution `c` (depthwise, with a fused `pool`) on an input of dimensions `xd`
/// against a data section of `data_len` bytes; returns its output's dimensions.
fn conv_check(
    c: &QConv,
    depthwise: bool,
    pool: Option<&(Pool2dParams, [i32; 2])>,
    xd: [usize; 3],
    data_len: usize,
) -> Result<[usize; 3], &'static str> {
    let QConv { p, io, weights, bias, requant } = c;
    geometry_ok(
        &[p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right],
        "conv geometry",
    )?;
    ensure(p.batch == 1 && [p.in_h, p.in_w, p.in_c] == xd, "conv input dimensions")?;
    ensure(p.kernel_h >= 1 && p.kernel_w >= 1 && p.groups >= 1 && p.out_c >= 1, "conv kernel and groups (≥ 1)")?;
    ensure(!(depthwise && pool.is_some()), "conv pool (not fused into a depthwise conv)")?;
    let per_tap = if depthwise {
        ensure(p.groups == 1 && p.out_c % p.in_c == 0, "depthwise channels (out a multiple of in)")?;
        1
    } else {
        ensure(p.in_c % p.groups == 0 && p.out_c % p.groups == 0, "conv groups (dividing both channel counts)")?;
        p.in_c / p.groups
    };
    let oh = out_len(p.in_h, [p.pad_top, p.pad_bottom], p.kernel_h, p.stride_h, p.dilation_h);
    let ow = out_len(p.in_w, [p.pad_left, p.pad_right], p.kernel_w, p.stride_w, p.dilation_w);
    let (Some(oh), Some(ow)) = (oh, ow) else { return Err("conv window (within the padded input)") };
    let out = match pool {
        None => [oh, ow],
        Some((pool, act)) => pool_ok(pool, [oh, ow, p.out_c], *act)?,
    };
    let taps = p.kernel_h * p.kernel_w;
    let w_len = if depthwise { taps * p.out_c } else { p.out_c * taps * per_tap };
    ensure(w_len <= MAX_TENSOR_VALUES, "conv weights too large")?;
    blob(weights, bytes(w_len, 1), 1, data_len, "conv weights")?;
    constants(bias.as_ref(), requant, p.out_c, data_len)?;
    io_ok(io)?;
    Ok([out[0], out[1], p.out_c])
}

/// An ADD's zero points and clamp.
fn add_ok(p: &AddParams) -> Result<(), &'static str> {
    ensure(
        [p.input1_offset, p.input2_offset].iter().all(|o| (-127..=128).contains(o)) && (-128..=127).contains(&p.output_offset),
        "add zero points",
    )?;
    act_ok([p.act_min, p.act_max])
}

/// A bias of `channels` i32s (if any) and a requantization table of one or `channels` pairs.
fn constants(bias: Option<&Blob>, requant: &Blob, channels: usize, data_len: usize) -> Result<(), &'static str> {
    if let Some(b) = bias {
        blob(b, bytes(channels, 4), 4, data_len, "bias (i32 per output channel, 4-byte aligned)")?;
    }
    let len = if requant.len == 8 { 8 } else { bytes(channels, 8) };
    blob(requant, len, 4, data_len, "requantization table (one or one per channel, 4-byte aligned)")
}
