//! Runs an int8 TFLite model with mote's int8 reference kernels, operator by operator in NHWC,
//! each prepared as TFLM prepares it (multipliers from the tensors' float scales in double,
//! activation clamps from the output's quantization). The host's int8 oracle, checked bit for
//! bit against the TFLM interpreter on the MLPerf Tiny models; the core does not plan int8
//! graphs yet.

use super::ops::same_padding;
use super::read::{self, Options, Quantization, TflModel, TflOp, TflTensor};
use super::schema::tflite::TensorType;
use mote_kernels::reference::int8::{
    activation_range, add_s8, avgpool2d_s8, conv2d_s8, depthwise_conv2d_s8, fully_connected_s8, softmax_s8, Activation, AddParams, Int8Io,
    Requant, SoftmaxParams,
};
use mote_kernels::{Conv2dParams, Pool2dParams};

const ADD: i32 = 0;
const AVERAGE_POOL_2D: i32 = 1;
const CONV_2D: i32 = 3;
const DEPTHWISE_CONV_2D: i32 = 4;
const FULLY_CONNECTED: i32 = 9;
const RESHAPE: i32 = 22;
const SOFTMAX: i32 = 25;

/// An int8 TFLite model ready to run.
pub struct Int8Model {
    model: TflModel,
}

impl Int8Model {
    /// Reads `bytes` and checks every operator is one this runner has, naming those it lacks.
    pub fn new(bytes: &[u8]) -> Result<Int8Model, String> {
        let model = read::read(bytes)?;
        let missing: Vec<String> = model
            .ops
            .iter()
            .filter(|op| ![ADD, AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, RESHAPE, SOFTMAX].contains(&op.code))
            .map(|op| op.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(format!("int8 operators not supported: {}", missing.join(", ")));
        }
        Ok(Int8Model { model })
    }

    /// The first input's shape.
    pub fn input_shape(&self) -> Vec<usize> {
        self.model.inputs.first().and_then(|&i| self.tensor(i).ok()).map_or_else(Vec::new, dims)
    }

    fn tensor(&self, i: i32) -> Result<&TflTensor, String> {
        usize::try_from(i).ok().and_then(|i| self.model.tensors.get(i)).ok_or_else(|| format!("tensor {i} does not exist"))
    }

    /// The model's output for `input` (its first input, int8 in C order).
    pub fn run(&self, input: &[i8]) -> Result<Vec<i8>, String> {
        let mut values: Vec<Option<Vec<i8>>> = vec![None; self.model.tensors.len()];
        let first = *self.model.inputs.first().ok_or("the model has no input")?;
        values[first as usize] = Some(input.to_vec());
        for op in &self.model.ops {
            let out = self.step(op, &values)?;
            let o = *op.outputs.first().ok_or_else(|| format!("{} has no output", op.name))?;
            *values.get_mut(o as usize).ok_or("an output tensor does not exist")? = Some(out);
        }
        let last = *self.model.outputs.first().ok_or("the model has no output")?;
        values[last as usize].take().ok_or_else(|| "the output was never computed".to_string())
    }

    /// Operand `k` of `op`: computed, or the tensor's int8 constant.
    fn operand(&self, op: &TflOp, k: usize, values: &[Option<Vec<i8>>]) -> Result<Vec<i8>, String> {
        let i = *op.inputs.get(k).ok_or_else(|| format!("{} lacks input {k}", op.name))?;
        if let Some(v) = values.get(i as usize).and_then(Option::as_ref) {
            return Ok(v.clone());
        }
        let t = self.tensor(i)?;
        match (&t.data, t.ty) {
            (Some(d), TensorType::Int8) => Ok(d.iter().map(|&b| b as i8).collect()),
            _ => Err(format!("{}: input `{}` is neither computed nor an int8 constant", op.name, t.name)),
        }
    }

    /// Operand `k` of `op` as an int32 constant (a bias), if present.
    fn bias(&self, op: &TflOp, k: usize) -> Result<Option<Vec<i32>>, String> {
        let Some(&i) = op.inputs.get(k).filter(|&&i| i >= 0) else { return Ok(None) };
        let t = self.tensor(i)?;
        match (&t.data, t.ty) {
            (Some(d), TensorType::Int32) => Ok(Some(d.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())),
            _ => Err(format!("{}: bias `{}` is not an int32 constant", op.name, t.name)),
        }
    }

    fn step(&self, op: &TflOp, values: &[Option<Vec<i8>>]) -> Result<Vec<i8>, String> {
        let input = self.tensor(op.inputs[0])?;
        let output = self.tensor(op.outputs[0])?;
        let (in_q, out_q) = (quant(input)?, quant(output)?);
        let x = self.operand(op, 0, values)?;
        let mut y = vec![0i8; dims(output).iter().product()];
        match (op.code, op.options) {
            (CONV_2D, Options::Conv { same, stride, dilation, activation })
            | (DEPTHWISE_CONV_2D, Options::Depthwise { same, stride, dilation, activation, .. }) => {
                let filter = self.tensor(op.inputs[1])?;
                let (w, bias) = (self.operand(op, 1, values)?, self.bias(op, 2)?);
                let (xd, wd, yd) = (dims(input), dims(filter), dims(output));
                let depthwise = op.code == DEPTHWISE_CONV_2D;
                let (kh, kw) = (wd[1], wd[2]);
                let [pad_h, pad_w] = [(xd[1], kh, stride[0], dilation[0]), (xd[2], kw, stride[1], dilation[1])].map(|(len, k, s, d)| {
                    if same {
                        same_padding(len, k, s as usize, d as usize)
                    } else {
                        [0, 0]
                    }
                });
                let groups = if depthwise { 1 } else { xd[3] / wd[3].max(1) };
                let p = Conv2dParams {
                    batch: xd[0],
                    in_c: xd[3],
                    in_h: xd[1],
                    in_w: xd[2],
                    out_c: yd[3],
                    kernel_h: kh,
                    kernel_w: kw,
                    stride_h: stride[0] as usize,
                    stride_w: stride[1] as usize,
                    pad_top: pad_h[0] as usize,
                    pad_left: pad_w[0] as usize,
                    pad_bottom: pad_h[1] as usize,
                    pad_right: pad_w[1] as usize,
                    dilation_h: dilation[0] as usize,
                    dilation_w: dilation[1] as usize,
                    groups,
                };
                if (p.out_h(), p.out_w()) != (yd[1], yd[2]) {
                    return Err(format!("{}: output {:?} does not follow from the input and filter", op.name, yd));
                }
                let w_q = quant(filter)?;
                let requant: Vec<Requant> =
                    w_q.scale.iter().map(|&s| Requant::from_real(in_q.scale[0] as f64 * s as f64 / out_q.scale[0] as f64)).collect();
                let io = io(&in_q, &out_q, activation)?;
                if depthwise {
                    depthwise_conv2d_s8(&p, &io, &requant, &x, &w, bias.as_deref(), &mut y);
                } else {
                    conv2d_s8(&p, &io, &requant, &x, &w, bias.as_deref(), &mut y);
                }
            }
            (FULLY_CONNECTED, Options::FullyConnected { activation, .. }) => {
                let filter = self.tensor(op.inputs[1])?;
                let (w, bias) = (self.operand(op, 1, values)?, self.bias(op, 2)?);
                let wd = dims(filter);
                let (out, depth) = (wd[0], wd[1]);
                let batch = x.len() / depth.max(1);
                let w_q = quant(filter)?;
                let requant: Vec<Requant> =
                    w_q.scale.iter().map(|&s| Requant::from_real(in_q.scale[0] as f64 * s as f64 / out_q.scale[0] as f64)).collect();
                fully_connected_s8(batch, depth, out, &io(&in_q, &out_q, activation)?, &requant, &x, &w, bias.as_deref(), &mut y);
            }
            (AVERAGE_POOL_2D, Options::Pool { same, stride, filter, activation }) => {
                let xd = dims(input);
                let [pad_h, pad_w] = [(xd[1], filter[0], stride[0]), (xd[2], filter[1], stride[1])].map(|(len, k, s)| {
                    if same {
                        same_padding(len, k as usize, s as usize, 1)
                    } else {
                        [0, 0]
                    }
                });
                let mut p = Pool2dParams::plain(
                    xd[0],
                    [xd[3], xd[1], xd[2]],
                    [filter[0] as usize, filter[1] as usize],
                    [stride[0] as usize, stride[1] as usize],
                    [pad_h[0] as usize, pad_w[0] as usize],
                );
                (p.pad_bottom, p.pad_right) = (pad_h[1] as usize, pad_w[1] as usize);
                let (lo, hi) = activation_range(activation_of(activation)?, out_q.scale[0], zero(&out_q));
                avgpool2d_s8(&p, lo, hi, &x, &mut y);
            }
            (ADD, Options::Activation(activation)) => {
                let other = self.tensor(op.inputs[1])?;
                let b = self.operand(op, 1, values)?;
                if b.len() != x.len() {
                    return Err(format!("{}: broadcasting is not supported", op.name));
                }
                let b_q = quant(other)?;
                let act = activation_range(activation_of(activation)?, out_q.scale[0], zero(&out_q));
                let p = AddParams::new((in_q.scale[0], zero(&in_q)), (b_q.scale[0], zero(&b_q)), (out_q.scale[0], zero(&out_q)), act);
                add_s8(&p, &x, &b, &mut y);
            }
            (SOFTMAX, Options::Softmax { beta }) => {
                let depth = *dims(input).last().unwrap_or(&1);
                softmax_s8(&SoftmaxParams::new(beta, in_q.scale[0]), depth, &x, &mut y);
            }
            (RESHAPE, _) => y.copy_from_slice(&x),
            _ => return Err(format!("{}: options not understood", op.name)),
        }
        Ok(y)
    }
}

/// A tensor's dimensions (negative ones read as 1).
fn dims(t: &TflTensor) -> Vec<usize> {
    t.shape.iter().map(|&d| d.max(1) as usize).collect()
}

/// A tensor's quantization; int8 tensors without one are refused.
fn quant(t: &TflTensor) -> Result<Quantization, String> {
    t.quant.clone().ok_or_else(|| format!("tensor `{}` has no quantization", t.name))
}

/// The (first) zero point.
fn zero(q: &Quantization) -> i32 {
    q.zero_point.first().copied().unwrap_or(0) as i32
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

fn io(input: &Quantization, output: &Quantization, activation: i32) -> Result<Int8Io, String> {
    let (act_min, act_max) = activation_range(activation_of(activation)?, output.scale[0], zero(output));
    Ok(Int8Io { input_offset: -zero(input), output_offset: zero(output), act_min, act_max })
}
