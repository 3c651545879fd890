//! The conversion of each TFLite builtin operator (float32) into mote layers.

use super::read::{Options, TflModel, TflOp};
use super::{nchw, nhwc, tensor, Converter, Value};
use crate::import::builder::{dims_setting, LayerValue};
use crate::import::tensor::{operand_dims, reshape_target, Tensor};
use crate::import::Skip;
use mote_core::model::LayerOp;

type OpResult<T> = Result<T, Skip>;

// Builtin operator numbers (TFLite's `BuiltinOperator`).
const ADD: i32 = 0;
const AVERAGE_POOL_2D: i32 = 1;
const CONV_2D: i32 = 3;
const DEPTHWISE_CONV_2D: i32 = 4;
const FULLY_CONNECTED: i32 = 9;
const LOGISTIC: i32 = 14;
const MAX_POOL_2D: i32 = 17;
const MUL: i32 = 18;
const RELU: i32 = 19;
const RELU_N1_TO_1: i32 = 20;
const RELU6: i32 = 21;
const RESHAPE: i32 = 22;
const SOFTMAX: i32 = 25;
const TANH: i32 = 28;
const PAD: i32 = 34;
const MEAN: i32 = 40;
const SUB: i32 = 41;
const DIV: i32 = 42;
const EXP: i32 = 47;
const LOG_SOFTMAX: i32 = 50;
const NEG: i32 = 59;
const PADV2: i32 = 60;

/// Converts `op`, giving the value of its (one) output.
pub(super) fn convert(c: &mut Converter, m: &TflModel, op: &TflOp) -> OpResult<LayerValue> {
    let at = At { m, op };
    match (op.code, op.options) {
        (CONV_2D, Options::Conv { same, stride, dilation, activation }) => {
            let y = conv(c, at, same, stride, dilation, None)?;
            fused(c, at, y, activation)
        }
        (DEPTHWISE_CONV_2D, Options::Depthwise { same, stride, dilation, multiplier, activation }) => {
            let y = conv(c, at, same, stride, dilation, Some(multiplier))?;
            fused(c, at, y, activation)
        }
        (AVERAGE_POOL_2D | MAX_POOL_2D, Options::Pool { same, stride, filter, activation }) => {
            let y = pool(c, at, op.code == MAX_POOL_2D, same, stride, filter)?;
            fused(c, at, y, activation)
        }
        (FULLY_CONNECTED, Options::FullyConnected { activation, keep_num_dims, shuffled }) => {
            if shuffled {
                return Err("shuffled weights".to_string().into());
            }
            let y = fully_connected(c, at, keep_num_dims)?;
            fused(c, at, y, activation)
        }
        (ADD | SUB | MUL | DIV, options) => {
            let activation = if let Options::Activation(a) = options { a } else { 0 };
            let op_kind = match op.code {
                ADD => LayerOp::Add {},
                SUB => LayerOp::Sub {},
                MUL => LayerOp::Mul {},
                _ => LayerOp::Div {},
            };
            let y = binary(c, at, op_kind)?;
            fused(c, at, y, activation)
        }
        (RESHAPE, options) => reshape(c, at, options),
        (SOFTMAX | LOG_SOFTMAX, options) => {
            let beta = if let Options::Softmax { beta } = options { beta } else { 1.0 };
            softmax(c, at, op.code == LOG_SOFTMAX, beta)
        }
        (MEAN, options) => mean(c, at, matches!(options, Options::Reducer { keep_dims: true })),
        (PAD | PADV2, _) => pad(c, at),
        (RELU, _) => unary(c, at, LayerOp::Relu {}),
        (RELU6, _) => unary(c, at, LayerOp::Clip { min: 0.0, max: 6.0 }),
        (RELU_N1_TO_1, _) => unary(c, at, LayerOp::Clip { min: -1.0, max: 1.0 }),
        (LOGISTIC, _) => unary(c, at, LayerOp::Sigmoid {}),
        (TANH, _) => unary(c, at, LayerOp::Tanh {}),
        (EXP, _) => unary(c, at, LayerOp::Exp {}),
        (NEG, _) => unary(c, at, LayerOp::Neg {}),
        _ => Err(format!("operator {} is not supported", op.name).into()),
    }
}

/// The operator being converted, in its model.
#[derive(Clone, Copy)]
struct At<'a> {
    m: &'a TflModel,
    op: &'a TflOp,
}

impl At<'_> {
    fn source(&self) -> String {
        let out = self.op.outputs.first().and_then(|&o| tensor(self.m, o)).map_or("", |t| t.name.as_str());
        format!("{} ({})", out, self.op.name)
    }
}

impl Converter {
    fn value(&self, at: At, i: usize) -> OpResult<Value> {
        let index = *at.op.inputs.get(i).ok_or_else(|| Skip::Unsupported(format!("input {i} is missing")))?;
        match self.values.get(&index) {
            Some(Value::Unknown) => Err(Skip::Upstream),
            Some(v) => Ok(v.clone()),
            None => Err(format!("input {i} (tensor {index}) is neither computed nor constant").into()),
        }
    }
    fn layer(&self, at: At, i: usize) -> OpResult<LayerValue> {
        match self.value(at, i)? {
            Value::Layer(v) => Ok(v),
            _ => Err(format!("input {i} is a constant where mote needs a computed tensor").into()),
        }
    }
    fn constant(&self, at: At, i: usize) -> OpResult<Tensor> {
        match self.value(at, i)? {
            Value::Const(t) => Ok(t),
            _ => Err(format!("input {i} must be a constant").into()),
        }
    }
    /// Optional constant input `i` (absent or -1: `None`).
    fn optional(&self, at: At, i: usize) -> OpResult<Option<Tensor>> {
        match at.op.inputs.get(i) {
            None | Some(-1) => Ok(None),
            Some(_) => self.constant(at, i).map(Some),
        }
    }
    fn add(&mut self, at: At, op: LayerOp, inputs: &[&LayerValue], tensors: &[&[f32]]) -> OpResult<LayerValue> {
        self.builder.add(&at.source(), op.name(), op, inputs, tensors).map_err(Skip::Unsupported)
    }
    /// `x` in TFLite's element order: a 4-D value (held NCHW) transposed to NHWC, unless its
    /// plane is 1×1 or it has one channel (then both orders agree).
    fn tflite_order(&mut self, at: At, x: &LayerValue) -> OpResult<LayerValue> {
        match x.shape[..] {
            [_, ch, h, w] if !(h == 1 && w == 1) && ch != 1 => self.add(at, nhwc(), &[x], &[]),
            _ => Ok(x.clone()),
        }
    }
}

/// A fused activation (TFLite's `ActivationFunctionType`) after `y`.
fn fused(c: &mut Converter, at: At, y: LayerValue, activation: i32) -> OpResult<LayerValue> {
    let op = match activation {
        0 => return Ok(y),
        1 => LayerOp::Relu {},
        2 => LayerOp::Clip { min: -1.0, max: 1.0 },
        3 => LayerOp::Clip { min: 0.0, max: 6.0 },
        4 => LayerOp::Tanh {},
        other => return Err(format!("fused activation {other}").into()),
    };
    c.add(at, op, &[&y], &[])
}

fn unary(c: &mut Converter, at: At, op: LayerOp) -> OpResult<LayerValue> {
    let x = c.layer(at, 0)?;
    c.add(at, op, &[&x], &[])
}

/// TFLite's SAME padding of one dimension: `[begin, end]`, the larger half at the end.
pub(super) fn same_padding(len: usize, kernel: usize, stride: usize, dilation: usize) -> [u32; 2] {
    let span = (kernel - 1) * dilation + 1;
    let out = len.div_ceil(stride);
    let total = ((out - 1) * stride + span).saturating_sub(len);
    [(total / 2) as u32, (total - total / 2) as u32]
}

fn positive(v: [i32; 2], what: &str) -> OpResult<[usize; 2]> {
    if v.iter().any(|&x| x < 1) {
        return Err(format!("{what} {v:?}").into());
    }
    Ok([v[0] as usize, v[1] as usize])
}

/// CONV_2D (`multiplier: None`) or DEPTHWISE_CONV_2D: weights reordered to mote's
/// `[out, in / groups, kh, kw]`.
fn conv(c: &mut Converter, at: At, same: bool, stride: [i32; 2], dilation: [i32; 2], multiplier: Option<i32>) -> OpResult<LayerValue> {
    let (stride, dilation) = (positive(stride, "stride")?, positive(dilation, "dilation")?);
    let x = c.layer(at, 0)?;
    let w = c.constant(at, 1)?;
    let bias = c.optional(at, 2)?.map(|b| b.floats());
    let ([_, in_c, h, wd], [o, kh, kw, i]) = (dims4(&x.shape)?, dims4(&w.dims)?);
    let values = w.floats();
    let (out_c, groups, weights) = match multiplier {
        // [O, kh, kw, I] → [O, I, kh, kw].
        None => (
            o,
            1,
            (0..o * i * kh * kw)
                .map(|n| {
                    let (oc, rest) = (n / (i * kh * kw), n % (i * kh * kw));
                    let (ic, y, xk) = (rest / (kh * kw), rest % (kh * kw) / kw, rest % kw);
                    values[((oc * kh + y) * kw + xk) * i + ic]
                })
                .collect::<Vec<f32>>(),
        ),
        // [1, kh, kw, C·M] → [C·M, 1, kh, kw], one group per input channel.
        Some(_) => (
            i,
            in_c,
            (0..i * kh * kw)
                .map(|n| {
                    let (ch, y, xk) = (n / (kh * kw), n % (kh * kw) / kw, n % kw);
                    values[(y * kw + xk) * i + ch]
                })
                .collect(),
        ),
    };
    if multiplier.is_some() && (o != 1 || out_c % in_c != 0) {
        return Err(format!("depthwise weights {:?} for {in_c} input channels", w.dims).into());
    }
    let (ph, pw) =
        if same { (same_padding(h, kh, stride[0], dilation[0]), same_padding(wd, kw, stride[1], dilation[1])) } else { ([0, 0], [0, 0]) };
    let u = |v: [usize; 2]| v.map(|x| x as u32);
    let symmetric = ph[0] == ph[1] && pw[0] == pw[1];
    let op = if groups == 1 && dilation == [1, 1] && symmetric {
        LayerOp::Conv2d {
            out_channels: out_c as u32,
            kernel: u([kh, kw]),
            stride: u(stride),
            padding: [ph[0], pw[0]],
            bias: bias.is_some(),
        }
    } else {
        LayerOp::Conv2dGeneral {
            out_channels: out_c as u32,
            kernel: u([kh, kw]),
            stride: u(stride),
            pad_begin: [ph[0], pw[0]],
            pad_end: [ph[1], pw[1]],
            dilation: u(dilation),
            groups: groups as u32,
            bias: bias.is_some(),
        }
    };
    let mut tensors: Vec<&[f32]> = vec![&weights];
    if let Some(b) = &bias {
        tensors.push(b);
    }
    c.add(at, op, &[&x], &tensors)
}

/// The four dimensions of a 4-D shape.
fn dims4(d: &[usize]) -> OpResult<[usize; 4]> {
    d.try_into().map_err(|_| Skip::Unsupported(format!("a tensor of {d:?} where a 4-D one is needed")))
}

fn pool(c: &mut Converter, at: At, max: bool, same: bool, stride: [i32; 2], filter: [i32; 2]) -> OpResult<LayerValue> {
    let (stride, filter) = (positive(stride, "stride")?, positive(filter, "filter")?);
    let x = c.layer(at, 0)?;
    let [_, _, h, w] = dims4(&x.shape)?;
    let (ph, pw) =
        if same { (same_padding(h, filter[0], stride[0], 1), same_padding(w, filter[1], stride[1], 1)) } else { ([0, 0], [0, 0]) };
    let (kernel, stride) = (filter.map(|v| v as u32), stride.map(|v| v as u32));
    let (pad_begin, pad_end) = ([ph[0], pw[0]], [ph[1], pw[1]]);
    let op = match (max, pad_begin == [0, 0] && pad_end == [0, 0]) {
        (true, true) => LayerOp::MaxPool2d { kernel, stride, padding: [0, 0] },
        (true, false) => LayerOp::MaxPool2dGeneral { kernel, stride, pad_begin, pad_end },
        (false, true) => LayerOp::AvgPool2d { kernel, stride, padding: [0, 0] },
        // TFLite's average leaves the padding out of the count.
        (false, false) => LayerOp::AvgPool2dGeneral { kernel, stride, pad_begin, pad_end, count_padding: false },
    };
    c.add(at, op, &[&x], &[])
}

fn fully_connected(c: &mut Converter, at: At, keep_num_dims: bool) -> OpResult<LayerValue> {
    let x = c.layer(at, 0)?;
    let w = c.constant(at, 1)?;
    let bias = c.optional(at, 2)?.map(|b| b.floats());
    let [out, k] = w.dims[..] else { return Err(format!("weights of {:?}", w.dims).into()) };
    if keep_num_dims && x.shape.len() != 2 {
        return Err("keep_num_dims over a tensor of more than 2 dimensions".to_string().into());
    }
    // TFLite flattens everything after the batch, in its own (NHWC) order.
    let x = if x.shape.len() > 2 {
        let ordered = c.tflite_order(at, &x)?;
        let per_sample: usize = ordered.shape[1..].iter().product();
        if per_sample != k {
            return Err(format!("an input of {:?} for weights of {:?}", x.shape, w.dims).into());
        }
        c.add(at, LayerOp::Reshape { shape: dims_setting(&[k])? }, &[&ordered], &[])?
    } else {
        x
    };
    let weights = w.floats();
    let mut tensors: Vec<&[f32]> = vec![&weights];
    if let Some(b) = &bias {
        tensors.push(b);
    }
    c.add(at, LayerOp::Linear { out: out as u32, bias: bias.is_some() }, &[&x], &tensors)
}

/// A constant operand of an elementwise op beside a value of `rank`: an NHWC-shaped constant
/// next to a 4-D value is reordered to NCHW.
fn constant_operand(c: &mut Converter, at: At, t: &Tensor, rank: usize) -> OpResult<LayerValue> {
    let mut dims = operand_dims(&t.dims, rank);
    let mut values = t.floats();
    if rank == 4 && dims.len() > 1 || (rank == 4 && dims.len() == 1 && dims[0] > 1) {
        // Right-align to [N, H, W, C], then reorder to [N, C, H, W].
        while dims.len() < 4 {
            dims.insert(0, 1);
        }
        let [n, h, w, ch] = dims4(&dims)?;
        values = (0..n * ch * h * w)
            .map(|i| {
                let (b, rest) = (i / (ch * h * w), i % (ch * h * w));
                let (cc, y, x) = (rest / (h * w), rest % (h * w) / w, rest % w);
                values[((b * h + y) * w + x) * ch + cc]
            })
            .collect();
        dims = operand_dims(&[n, ch, h, w], 1);
    }
    c.add(at, LayerOp::Constant { shape: dims_setting(&dims)? }, &[], &[&values])
}

fn binary(c: &mut Converter, at: At, op: LayerOp) -> OpResult<LayerValue> {
    match (c.value(at, 0)?, c.value(at, 1)?) {
        (Value::Layer(a), Value::Layer(b)) => {
            if a.shape.len() != b.shape.len() && (a.shape.len() == 4 || b.shape.len() == 4) {
                return Err(format!("broadcasting {:?} with {:?} across layouts", a.shape, b.shape).into());
            }
            c.add(at, op, &[&a, &b], &[])
        }
        (Value::Layer(a), Value::Const(t)) => {
            let k = constant_operand(c, at, &t, a.shape.len())?;
            c.add(at, op, &[&a, &k], &[])
        }
        (Value::Const(t), Value::Layer(b)) => {
            let k = constant_operand(c, at, &t, b.shape.len())?;
            c.add(at, op, &[&k, &b], &[])
        }
        _ => Err("an operation on two constants".to_string().into()),
    }
}

fn reshape(c: &mut Converter, at: At, options: Options) -> OpResult<LayerValue> {
    let x = c.layer(at, 0)?;
    let target: Vec<i64> = match (c.optional(at, 1)?, options) {
        (Some(t), _) => t.ints(),
        (None, Options::Reshape { new_shape: Some(s), rank }) => s[..rank].iter().map(|&d| d as i64).collect(),
        _ => {
            let out = at.op.outputs.first().and_then(|&o| tensor(at.m, o)).ok_or_else(|| Skip::Unsupported("no output".into()))?;
            out.shape.iter().map(|&d| d as i64).collect()
        }
    };
    // TFLite's shapes have no 0 ("copy") entries: refused here, the rest resolved as ONNX's.
    let dims = if target.contains(&0) { Err(format!("shape {target:?}")) } else { reshape_target(&x.shape, &target) }?;
    if dims.first() != x.shape.first() || dims.len() < 2 {
        return Err(format!("a reshape of {:?} to {target:?}: mote keeps the batch first and alone", x.shape).into());
    }
    let ordered = c.tflite_order(at, &x)?;
    let y = c.add(at, LayerOp::Reshape { shape: dims_setting(&dims[1..])? }, &[&ordered], &[])?;
    // A 4-D result is NHWC: held NCHW inside.
    match dims[..] {
        [_, h, w, ch] if !(h == 1 && w == 1) && ch != 1 => c.add(at, nchw(), &[&y], &[]),
        // A 1×1 plane or one channel: NHWC and NCHW hold the values in the same order.
        [_, h, w, ch] => c.add(at, LayerOp::Reshape { shape: dims_setting(&[ch, h, w])? }, &[&y], &[]),
        _ => Ok(y),
    }
}

fn softmax(c: &mut Converter, at: At, log: bool, beta: f32) -> OpResult<LayerValue> {
    let op = if log { LayerOp::LogSoftmax {} } else { LayerOp::Softmax {} };
    let mut x = c.layer(at, 0)?;
    if beta != 1.0 {
        let k = constant_operand(c, at, &Tensor::f32(vec![1], vec![beta]), x.shape.len())?;
        x = c.add(at, LayerOp::Mul {}, &[&x, &k], &[])?;
    }
    if x.shape.len() != 4 {
        return c.add(at, op, &[&x], &[]);
    }
    // Over the channels: TFLite's last axis.
    let t = c.add(at, nhwc(), &[&x], &[])?;
    let y = c.add(at, op, &[&t], &[])?;
    c.add(at, nchw(), &[&y], &[])
}

fn mean(c: &mut Converter, at: At, keep: bool) -> OpResult<LayerValue> {
    let x = c.layer(at, 0)?;
    let mut axes: Vec<i64> = c.constant(at, 1)?.ints().iter().map(|&a| if a < 0 { a + x.shape.len() as i64 } else { a }).collect();
    axes.sort_unstable();
    if x.shape.len() != 4 || axes != [1, 2] {
        return Err(format!("a mean over axes {axes:?} of {:?}: mote averages over H and W", x.shape).into());
    }
    let y = c.add(at, LayerOp::GlobalAvgPool {}, &[&x], &[])?;
    if keep {
        return c.add(at, LayerOp::Reshape { shape: dims_setting(&[x.shape[1], 1, 1])? }, &[&y], &[]);
    }
    Ok(y)
}

fn pad(c: &mut Converter, at: At) -> OpResult<LayerValue> {
    let x = c.layer(at, 0)?;
    let pads = c.constant(at, 1)?.ints();
    let value = c.optional(at, 2)?.and_then(|t| t.floats().first().copied()).unwrap_or(0.0);
    if x.shape.len() != 4 || pads.len() != 8 || pads.iter().any(|&p| !(0..=u32::MAX as i64).contains(&p)) {
        return Err(format!("paddings {pads:?} of {:?}", x.shape).into());
    }
    // NHWC pairs: [[n0, n1], [top, bottom], [left, right], [c0, c1]].
    if pads[0] != 0 || pads[1] != 0 || pads[6] != 0 || pads[7] != 0 {
        return Err(format!("paddings {pads:?}: mote pads height and width").into());
    }
    let op = LayerOp::Pad { pad_begin: [pads[2] as u32, pads[4] as u32], pad_end: [pads[3] as u32, pads[5] as u32], value };
    c.add(at, op, &[&x], &[])
}
