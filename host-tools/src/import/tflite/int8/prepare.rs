//! Prepares each operator of an int8 TFLite model as TFLM's Prepare does (multipliers from the
//! float32 scales in double, activation clamps from the output's quantization), after checking
//! every shape, type, constant, scale and zero point its kernel relies on.

use super::super::ops::same_padding;
use super::super::read::{Options, Quantization, TflModel, TflOp, TflTensor};
use super::super::schema::tflite::TensorType;
use super::MAX_VALUES;
use crate::quant::DataBuilder;
use mote_core::quant::{Operand, QLayer, QStep, QTensor, Quant};
use mote_kernels::reference::int8::{activation_range, Activation, AddParams, Int8Io, Requant, SoftmaxParams};
use mote_kernels::{Conv2dParams, Pool2dParams};

const ADD: i32 = 0;
const AVERAGE_POOL_2D: i32 = 1;
const CONV_2D: i32 = 3;
const DEPTHWISE_CONV_2D: i32 = 4;
const FULLY_CONNECTED: i32 = 9;
const RESHAPE: i32 = 22;
const SOFTMAX: i32 = 25;

/// The operators this runner has.
pub(super) const SUPPORTED: [i32; 7] = [ADD, AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, RESHAPE, SOFTMAX];

/// What every operator's preparation reads: the model, the operator, its first input and its
/// output with their quantizations and dimensions; where its constants go.
struct Operands<'a> {
    model: &'a TflModel,
    data: &'a mut DataBuilder,
    op: &'a TflOp,
    x: &'a TflTensor,
    xq: Quantization,
    xd: Vec<usize>,
    yq: Quantization,
    yd: Vec<usize>,
    output_len: usize,
}

/// Prepares `op` whose operand is already computed (`known`: each TFLite tensor's number in the
/// mote model); returns the step and the TFLite tensor it makes.
pub(super) fn prepare(model: &TflModel, op: &TflOp, known: &[Option<u16>], data: &mut DataBuilder) -> Result<(QStep, usize), String> {
    let input = *op.inputs.first().ok_or("no input")?;
    let output = *op.outputs.first().ok_or("no output")?;
    let (x, y) = (index(model, input)?, index(model, output)?);
    let Some(step_input) = known[input as usize] else { return Err(format!("input `{}` is not computed before it is used", x.name)) };
    ensure(known[output as usize].is_none(), || format!("output `{}` is computed twice", y.name))?;
    let mut o = Operands { model, data, op, x, xq: int8(x)?, xd: dims(x)?, yq: int8(y)?, yd: dims(y)?, output_len: numel(y)? };
    let o = &mut o;
    let layer = match (op.code, op.options) {
        (CONV_2D, Options::Conv { same, stride, dilation, activation }) => conv(o, false, same, stride, dilation, activation)?,
        (DEPTHWISE_CONV_2D, Options::Depthwise { same, stride, dilation, activation, .. }) => {
            conv(o, true, same, stride, dilation, activation)?
        }
        (FULLY_CONNECTED, Options::FullyConnected { activation, shuffled: false, .. }) => fully_connected(o, activation)?,
        (AVERAGE_POOL_2D, Options::Pool { same, stride, filter, activation }) => average_pool(o, same, stride, filter, activation)?,
        (ADD, Options::Activation(activation)) => add(o, known, activation)?,
        (SOFTMAX, Options::Softmax { beta }) => softmax(o, beta)?,
        (RESHAPE, _) => {
            ensure(o.output_len == numel(x)?, || "a reshape keeps the number of values".into())?;
            QLayer::Reshape
        }
        _ => return Err("options not understood".into()),
    };
    Ok((QStep { layer, input: step_input, output: tensor(y)? }, output as usize))
}

/// A mote int8 tensor of the TFLite tensor `t` (its first scale and zero point).
pub(super) fn tensor(t: &TflTensor) -> Result<QTensor, String> {
    let (q, d) = (int8(t)?, dims(t)?);
    ensure((1..=4).contains(&d.len()) && d[0] == 1, || format!("`{}` has shape {d:?}: batch 1, rank 1 to 4", t.name))?;
    let mut dims = [1u32; 4];
    for (o, &v) in dims.iter_mut().zip(&d) {
        *o = v as u32;
    }
    Ok(QTensor { dims, rank: d.len() as u8, quant: Quant { scale: q.scale[0], zero_point: zero(&q) } })
}

/// CONV_2D or DEPTHWISE_CONV_2D (NHWC input, OHWI or 1HWO filter, i32 bias).
fn conv(o: &mut Operands, depthwise: bool, same: bool, stride: [i32; 2], dilation: [i32; 2], activation: i32) -> Result<QLayer, String> {
    let (xd, yd) = (&o.xd, &o.yd);
    let filter = index(o.model, *o.op.inputs.get(1).ok_or("no filter")?)?;
    let (fq, fd) = (int8(filter)?, dims(filter)?);
    ensure(xd.len() == 4 && yd.len() == 4 && fd.len() == 4, || "input, filter and output must be 4-D".into())?;
    let (stride, dilation) = (
        [positive(stride[0], "stride")?, positive(stride[1], "stride")?],
        [positive(dilation[0], "dilation")?, positive(dilation[1], "dilation")?],
    );
    let (kh, kw, out_c) = (fd[1], fd[2], yd[3]);
    let groups = if depthwise { 1 } else { xd[3] / fd[3] };
    let valid = if depthwise {
        fd[0] == 1 && fd[3] == out_c && out_c % xd[3] == 0
    } else {
        fd[0] == out_c && xd[3] % fd[3] == 0 && out_c % groups == 0
    };
    ensure(valid && xd[0] == yd[0], || format!("filter {fd:?} does not fit input {xd:?} and output {yd:?}"))?;
    let [pad_h, pad_w] = [(xd[1], kh, stride[0], dilation[0]), (xd[2], kw, stride[1], dilation[1])].map(|(len, k, s, d)| {
        if same {
            same_padding(len, k, s, d)
        } else {
            [0, 0]
        }
    });
    let p = Conv2dParams {
        batch: xd[0],
        in_c: xd[3],
        in_h: xd[1],
        in_w: xd[2],
        out_c,
        kernel_h: kh,
        kernel_w: kw,
        stride_h: stride[0],
        stride_w: stride[1],
        pad_top: pad_h[0] as usize,
        pad_left: pad_w[0] as usize,
        pad_bottom: pad_h[1] as usize,
        pad_right: pad_w[1] as usize,
        dilation_h: dilation[0],
        dilation_w: dilation[1],
        groups,
    };
    let span = |k: usize, d: usize| (k - 1) * d + 1;
    let fits = xd[1] + p.pad_top + p.pad_bottom >= span(kh, p.dilation_h) && xd[2] + p.pad_left + p.pad_right >= span(kw, p.dilation_w);
    ensure(fits, || "the filter is larger than the padded input".into())?;
    ensure((p.out_h(), p.out_w()) == (yd[1], yd[2]), || format!("output {yd:?} does not follow from input {xd:?} and filter {fd:?}"))?;
    let weights = o.data.i8(&int8_const(filter, numel(filter)?)?);
    let bias = bias(o.model, o.op, 2, out_c)?.map(|b| o.data.i32(&b));
    let requant = o.data.requant(&requant(&o.xq, &fq, &o.yq, out_c)?);
    Ok(QLayer::Conv { p, io: io(&o.xq, &o.yq, activation)?, depthwise, weights, bias, requant, pool: None })
}

/// FULLY_CONNECTED over the input's last `depth` values (`[out, depth]` filter).
fn fully_connected(o: &mut Operands, activation: i32) -> Result<QLayer, String> {
    let filter = index(o.model, *o.op.inputs.get(1).ok_or("no filter")?)?;
    let (fq, fd) = (int8(filter)?, dims(filter)?);
    ensure(fd.len() == 2, || format!("filter {fd:?} is not 2-D"))?;
    let (out, depth) = (fd[0], fd[1]);
    let x_len = numel(o.x)?;
    ensure(x_len % depth == 0 && o.output_len == x_len / depth * out, || {
        format!("input {:?} and output {:?} do not fit filter {fd:?}", o.xd, o.yd)
    })?;
    let weights = o.data.i8(&int8_const(filter, out * depth)?);
    let bias = bias(o.model, o.op, 2, out)?.map(|b| o.data.i32(&b));
    let (io, requant) = (io(&o.xq, &o.yq, activation)?, o.data.requant(&requant(&o.xq, &fq, &o.yq, out)?));
    Ok(QLayer::FullyConnected { depth: depth as u32, out: out as u32, io, weights, bias, requant })
}

/// AVERAGE_POOL_2D (NHWC).
fn average_pool(o: &Operands, same: bool, stride: [i32; 2], filter: [i32; 2], activation: i32) -> Result<QLayer, String> {
    let (xd, yd) = (&o.xd, &o.yd);
    ensure(xd.len() == 4 && yd.len() == 4 && xd[0] == yd[0] && xd[3] == yd[3], || format!("input {xd:?} and output {yd:?}"))?;
    let (k, s) = (
        [positive(filter[0], "filter")?, positive(filter[1], "filter")?],
        [positive(stride[0], "stride")?, positive(stride[1], "stride")?],
    );
    let [pad_h, pad_w] =
        [(xd[1], k[0], s[0]), (xd[2], k[1], s[1])].map(|(len, k, s)| if same { same_padding(len, k, s, 1) } else { [0, 0] });
    let mut p = Pool2dParams::plain(xd[0], [xd[3], xd[1], xd[2]], k, s, [pad_h[0] as usize, pad_w[0] as usize]);
    (p.pad_bottom, p.pad_right) = (pad_h[1] as usize, pad_w[1] as usize);
    let fits = xd[1] + p.pad_top + p.pad_bottom >= k[0] && xd[2] + p.pad_left + p.pad_right >= k[1];
    ensure(fits, || "the window is larger than the padded input".into())?;
    ensure((p.out_h(), p.out_w()) == (yd[1], yd[2]), || format!("output {yd:?} does not follow from input {xd:?}"))?;
    let (lo, hi) = activation_range(activation_of(activation)?, o.yq.scale[0], zero(&o.yq));
    Ok(QLayer::AvgPool { p, act: [lo, hi] })
}

/// ADD of two tensors of the same size (a computed one, or a constant).
fn add(o: &mut Operands, known: &[Option<u16>], activation: i32) -> Result<QLayer, String> {
    let b = *o.op.inputs.get(1).ok_or("no second input")?;
    let bt = index(o.model, b)?;
    let bq = int8(bt)?;
    let n = numel(o.x)?;
    ensure(numel(bt)? == n && o.output_len == n, || "broadcasting is not supported".into())?;
    let other = match known[b as usize] {
        Some(t) => Operand::Tensor(t),
        None => Operand::Const(o.data.i8(&int8_const(bt, n)?)),
    };
    let act = activation_range(activation_of(activation)?, o.yq.scale[0], zero(&o.yq));
    let p = AddParams::new((o.xq.scale[0], zero(&o.xq)), (bq.scale[0], zero(&bq)), (o.yq.scale[0], zero(&o.yq)), act);
    Ok(QLayer::Add { p, other })
}

/// SOFTMAX over the last dimension (output scale 1/256, zero point −128, as TFLM requires).
fn softmax(o: &Operands, beta: f32) -> Result<QLayer, String> {
    ensure(beta.is_finite() && beta > 0.0, || format!("beta {beta}"))?;
    ensure(zero(&o.yq) == -128 && o.yq.scale[0] == 1.0 / 256.0, || "an int8 softmax's output has scale 1/256 and zero point −128".into())?;
    ensure(o.output_len == numel(o.x)?, || "output and input sizes differ".into())?;
    Ok(QLayer::Softmax { p: SoftmaxParams::new(beta, o.xq.scale[0]), depth: *o.xd.last().unwrap_or(&1) as u32 })
}

/// Checks `i` names a tensor.
pub(super) fn index(model: &TflModel, i: i32) -> Result<&TflTensor, String> {
    usize::try_from(i).ok().and_then(|i| model.tensors.get(i)).ok_or_else(|| format!("tensor {i} does not exist"))
}

fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(message())
    }
}

/// A tensor's dimensions, each ≥ 1, their product bounded.
pub(super) fn dims(t: &TflTensor) -> Result<Vec<usize>, String> {
    let d: Vec<usize> = t
        .shape
        .iter()
        .map(|&v| usize::try_from(v).ok().filter(|&v| v >= 1))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("`{}` has shape {:?}", t.name, t.shape))?;
    let n = d.iter().try_fold(1usize, |n, &v| n.checked_mul(v)).filter(|&n| n <= MAX_VALUES);
    n.map(|_| d).ok_or_else(|| format!("`{}` {:?} is too large", t.name, t.shape))
}

fn numel(t: &TflTensor) -> Result<usize, String> {
    Ok(dims(t)?.iter().product())
}

/// An int8 tensor's quantization, with a scale that makes sense.
pub(super) fn int8(t: &TflTensor) -> Result<Quantization, String> {
    ensure(t.ty == TensorType::Int8, || format!("`{}` is {:?}, not int8", t.name, t.ty))?;
    let q = t.quant.clone().ok_or_else(|| format!("`{}` has no quantization", t.name))?;
    ensure(q.scale.iter().all(|s| s.is_finite() && *s > 0.0), || format!("`{}` has scales {:?}", t.name, q.scale))?;
    ensure(q.zero_point.iter().all(|z| (-128..=127).contains(z)), || format!("`{}` has zero points {:?}", t.name, q.zero_point))?;
    Ok(q)
}

/// The (first) zero point.
fn zero(q: &Quantization) -> i32 {
    q.zero_point.first().copied().unwrap_or(0) as i32
}

/// An int8 constant of `len` values.
fn int8_const(t: &TflTensor, len: usize) -> Result<Vec<i8>, String> {
    match &t.data {
        Some(d) if d.len() == len => Ok(d.iter().map(|&b| b as i8).collect()),
        _ => Err(format!("`{}` is not an int8 constant of {len} values", t.name)),
    }
}

/// Operand `k` of `op` as an int32 constant of `len` values (a bias), if present.
fn bias(model: &TflModel, op: &TflOp, k: usize, len: usize) -> Result<Option<Vec<i32>>, String> {
    let Some(&i) = op.inputs.get(k).filter(|&&i| i >= 0) else { return Ok(None) };
    let t = index(model, i)?;
    match (&t.data, t.ty) {
        (Some(d), TensorType::Int32) if d.len() == 4 * len => {
            Ok(Some(d.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()))
        }
        _ => Err(format!("bias `{}` is not an int32 constant of {len} values", t.name)),
    }
}

fn activation_of(code: i32) -> Result<Activation, String> {
    Ok(match code {
        0 => Activation::None,
        1 => Activation::Relu,
        2 => Activation::ReluN1To1,
        3 => Activation::Relu6,
        other => return Err(format!("fused activation {other} is not supported")),
    })
}

/// The requantizations `input_scale · filter_scale[c] / output_scale` (TFLM's
/// `PopulateConvolutionQuantizationParams`), one per scale; `channels` or one scale.
fn requant(input: &Quantization, filter: &Quantization, output: &Quantization, channels: usize) -> Result<Vec<Requant>, String> {
    ensure(filter.scale.len() == 1 || filter.scale.len() == channels, || {
        format!("{} filter scales for {channels} channels", filter.scale.len())
    })?;
    Ok(filter.scale.iter().map(|&s| Requant::from_real(input.scale[0] as f64 * s as f64 / output.scale[0] as f64)).collect())
}

fn io(input: &Quantization, output: &Quantization, activation: i32) -> Result<Int8Io, String> {
    let (act_min, act_max) = activation_range(activation_of(activation)?, output.scale[0], zero(output));
    Ok(Int8Io { input_offset: -zero(input), output_offset: zero(output), act_min, act_max })
}

/// A stride, dilation or window size: ≥ 1.
fn positive(v: i32, what: &str) -> Result<usize, String> {
    usize::try_from(v).ok().filter(|&v| v >= 1).ok_or_else(|| format!("{what} {v}"))
}
