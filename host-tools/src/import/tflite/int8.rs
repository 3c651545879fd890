//! Runs an int8 TFLite model with mote's int8 reference kernels, operator by operator in NHWC.
//! [`Int8Model::new`] prepares every operator as TFLM prepares it (multipliers from the
//! tensors' float scales in double, activation clamps from the output's quantization) and
//! checks every shape, type and size a kernel relies on, so a malformed model is an error,
//! never a panic; [`Int8Model::run`] then only executes. The host's int8 oracle, checked bit for
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

/// Largest tensor (values) a model may declare: larger ones are refused before allocation.
const MAX_VALUES: usize = 1 << 26;

/// A prepared operator: its kernel and parameters, its operand and its output tensor.
struct Step {
    kernel: Kernel,
    input: usize,
    output: usize,
    output_len: usize,
}

/// What a step computes, with everything its kernel needs.
enum Kernel {
    Conv { p: Conv2dParams, io: Int8Io, requant: Vec<Requant>, w: Vec<i8>, bias: Option<Vec<i32>>, depthwise: bool },
    FullyConnected { batch: usize, depth: usize, out: usize, io: Int8Io, requant: Vec<Requant>, w: Vec<i8>, bias: Option<Vec<i32>> },
    AvgPool { p: Pool2dParams, act: (i32, i32) },
    Add { p: AddParams, other: Operand },
    Softmax { p: SoftmaxParams, depth: usize },
    Reshape,
}

/// A second operand: a computed tensor or a constant.
enum Operand {
    Tensor(usize),
    Const(Vec<i8>),
}

/// An int8 TFLite model ready to run.
pub struct Int8Model {
    steps: Vec<Step>,
    input: usize,
    input_shape: Vec<usize>,
    output: usize,
    tensors: usize,
}

impl Int8Model {
    /// Reads and prepares `bytes`; names every operator it lacks at once, or the first
    /// malformed tensor or option.
    pub fn new(bytes: &[u8]) -> Result<Int8Model, String> {
        let model = read::read(bytes)?;
        let supported = [ADD, AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, RESHAPE, SOFTMAX];
        let missing: Vec<String> = model.ops.iter().filter(|op| !supported.contains(&op.code)).map(|op| op.name.clone()).collect();
        if !missing.is_empty() {
            return Err(format!("int8 operators not supported: {}", missing.join(", ")));
        }
        let at = |list: &[i32], what: &str| -> Result<usize, String> {
            let i = *list.first().ok_or_else(|| format!("the model has no {what}"))?;
            index(&model, i).map(|_| i as usize)
        };
        let (input, output) = (at(&model.inputs, "input")?, at(&model.outputs, "output")?);
        let input_tensor = &model.tensors[input];
        int8(input_tensor)?;
        let input_shape = dims(input_tensor)?;
        let mut known = vec![false; model.tensors.len()];
        known[input] = true;
        let mut steps = Vec::new();
        for op in &model.ops {
            let step = prepare(&model, op, &known).map_err(|e| format!("{}: {e}", op.name))?;
            known[step.output] = true;
            steps.push(step);
        }
        if !known[output] {
            return Err("the model's output is never computed".into());
        }
        Ok(Int8Model { steps, input, input_shape, output, tensors: model.tensors.len() })
    }

    /// Multiply-accumulates (convolutions, fully connected) and other value operations (pooled,
    /// added, softmaxed) of one run.
    pub fn work(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match &s.kernel {
                Kernel::Conv { p, depthwise, .. } => {
                    let taps = p.kernel_h * p.kernel_w * if *depthwise { 1 } else { p.in_c / p.groups.max(1) };
                    (s.output_len as u64).saturating_mul(taps as u64)
                }
                Kernel::FullyConnected { batch, depth, out, .. } => (*batch as u64) * (*depth as u64) * (*out as u64),
                Kernel::AvgPool { p, .. } => (s.output_len as u64).saturating_mul((p.kernel_h * p.kernel_w) as u64),
                _ => s.output_len as u64,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// The input's shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// The model's output for `input` (int8, C order, of the input's shape).
    pub fn run(&self, input: &[i8]) -> Result<Vec<i8>, String> {
        self.run_layers(input, |_, _| {})
    }

    /// [`Int8Model::run`], calling `each(k, output)` with operator `k`'s output as it is made.
    pub fn run_layers(&self, input: &[i8], mut each: impl FnMut(usize, &[i8])) -> Result<Vec<i8>, String> {
        let want: usize = self.input_shape.iter().product();
        if input.len() != want {
            return Err(format!("the input holds {} values, the model takes {want}", input.len()));
        }
        let mut values: Vec<Option<Vec<i8>>> = vec![None; self.tensors];
        values[self.input] = Some(input.to_vec());
        for (k, step) in self.steps.iter().enumerate() {
            let x = values[step.input].as_deref().ok_or("an operand was never computed")?;
            let mut y = vec![0i8; step.output_len];
            match &step.kernel {
                Kernel::Conv { p, io, requant, w, bias, depthwise: true } => {
                    depthwise_conv2d_s8(p, io, requant, x, w, bias.as_deref(), &mut y)
                }
                Kernel::Conv { p, io, requant, w, bias, depthwise: false } => conv2d_s8(p, io, requant, x, w, bias.as_deref(), &mut y),
                Kernel::FullyConnected { batch, depth, out, io, requant, w, bias } => {
                    fully_connected_s8(*batch, *depth, *out, io, requant, x, w, bias.as_deref(), &mut y)
                }
                Kernel::AvgPool { p, act } => avgpool2d_s8(p, act.0, act.1, x, &mut y),
                Kernel::Add { p, other } => {
                    let b = match other {
                        Operand::Tensor(i) => values[*i].as_deref().ok_or("an operand was never computed")?,
                        Operand::Const(c) => c,
                    };
                    add_s8(p, x, b, &mut y)
                }
                Kernel::Softmax { p, depth } => softmax_s8(p, *depth, x, &mut y),
                Kernel::Reshape => y.copy_from_slice(x),
            }
            each(k, &y);
            values[step.output] = Some(y);
        }
        values[self.output].take().ok_or_else(|| "the output was never computed".to_string())
    }
}

/// Checks `i` names a tensor.
fn index(model: &TflModel, i: i32) -> Result<&TflTensor, String> {
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
fn dims(t: &TflTensor) -> Result<Vec<usize>, String> {
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
fn int8(t: &TflTensor) -> Result<Quantization, String> {
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

/// Prepares `op` whose operand is already computed (`known`).
fn prepare(model: &TflModel, op: &TflOp, known: &[bool]) -> Result<Step, String> {
    let input = *op.inputs.first().ok_or("no input")?;
    let output = *op.outputs.first().ok_or("no output")?;
    let (x, y) = (index(model, input)?, index(model, output)?);
    ensure(known[input as usize], || format!("input `{}` is not computed before it is used", x.name))?;
    let (xq, yq) = (int8(x)?, int8(y)?);
    let (xd, yd) = (dims(x)?, dims(y)?);
    let output_len = numel(y)?;
    let kernel = match (op.code, op.options) {
        (CONV_2D, Options::Conv { same, stride, dilation, activation })
        | (DEPTHWISE_CONV_2D, Options::Depthwise { same, stride, dilation, activation, .. }) => {
            let depthwise = op.code == DEPTHWISE_CONV_2D;
            let filter = index(model, *op.inputs.get(1).ok_or("no filter")?)?;
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
            ensure(
                xd[1] + p.pad_top + p.pad_bottom >= span(kh, p.dilation_h) && xd[2] + p.pad_left + p.pad_right >= span(kw, p.dilation_w),
                || "the filter is larger than the padded input".into(),
            )?;
            ensure((p.out_h(), p.out_w()) == (yd[1], yd[2]), || {
                format!("output {yd:?} does not follow from input {xd:?} and filter {fd:?}")
            })?;
            let w = int8_const(filter, numel(filter)?)?;
            let bias = bias(model, op, 2, out_c)?;
            Kernel::Conv { p, io: io(&xq, &yq, activation)?, requant: requant(&xq, &fq, &yq, out_c)?, w, bias, depthwise }
        }
        (FULLY_CONNECTED, Options::FullyConnected { activation, shuffled: false, .. }) => {
            let filter = index(model, *op.inputs.get(1).ok_or("no filter")?)?;
            let (fq, fd) = (int8(filter)?, dims(filter)?);
            ensure(fd.len() == 2, || format!("filter {fd:?} is not 2-D"))?;
            let (out, depth) = (fd[0], fd[1]);
            let x_len = numel(x)?;
            ensure(x_len % depth == 0 && output_len == x_len / depth * out, || {
                format!("input {xd:?} and output {yd:?} do not fit filter {fd:?}")
            })?;
            let w = int8_const(filter, out * depth)?;
            let bias = bias(model, op, 2, out)?;
            Kernel::FullyConnected {
                batch: x_len / depth,
                depth,
                out,
                io: io(&xq, &yq, activation)?,
                requant: requant(&xq, &fq, &yq, out)?,
                w,
                bias,
            }
        }
        (AVERAGE_POOL_2D, Options::Pool { same, stride, filter, activation }) => {
            ensure(xd.len() == 4 && yd.len() == 4 && xd[0] == yd[0] && xd[3] == yd[3], || format!("input {xd:?} and output {yd:?}"))?;
            let (k, s) = (
                [positive(filter[0], "filter")?, positive(filter[1], "filter")?],
                [positive(stride[0], "stride")?, positive(stride[1], "stride")?],
            );
            let [pad_h, pad_w] =
                [(xd[1], k[0], s[0]), (xd[2], k[1], s[1])].map(|(len, k, s)| if same { same_padding(len, k, s, 1) } else { [0, 0] });
            let mut p = Pool2dParams::plain(xd[0], [xd[3], xd[1], xd[2]], k, s, [pad_h[0] as usize, pad_w[0] as usize]);
            (p.pad_bottom, p.pad_right) = (pad_h[1] as usize, pad_w[1] as usize);
            ensure(xd[1] + p.pad_top + p.pad_bottom >= k[0] && xd[2] + p.pad_left + p.pad_right >= k[1], || {
                "the window is larger than the padded input".into()
            })?;
            ensure((p.out_h(), p.out_w()) == (yd[1], yd[2]), || format!("output {yd:?} does not follow from input {xd:?}"))?;
            Kernel::AvgPool { p, act: activation_range(activation_of(activation)?, yq.scale[0], zero(&yq)) }
        }
        (ADD, Options::Activation(activation)) => {
            let b = *op.inputs.get(1).ok_or("no second input")?;
            let bt = index(model, b)?;
            let bq = int8(bt)?;
            ensure(numel(bt)? == numel(x)? && output_len == numel(x)?, || "broadcasting is not supported".into())?;
            let other = if known[b as usize] { Operand::Tensor(b as usize) } else { Operand::Const(int8_const(bt, numel(bt)?)?) };
            let act = activation_range(activation_of(activation)?, yq.scale[0], zero(&yq));
            Kernel::Add { p: AddParams::new((xq.scale[0], zero(&xq)), (bq.scale[0], zero(&bq)), (yq.scale[0], zero(&yq)), act), other }
        }
        (SOFTMAX, Options::Softmax { beta }) => {
            ensure(beta.is_finite() && beta > 0.0, || format!("beta {beta}"))?;
            ensure(zero(&yq) == -128 && yq.scale[0] == 1.0 / 256.0, || {
                "an int8 softmax's output has scale 1/256 and zero point −128".into()
            })?;
            ensure(output_len == numel(x)?, || "output and input sizes differ".into())?;
            Kernel::Softmax { p: SoftmaxParams::new(beta, xq.scale[0]), depth: *xd.last().unwrap_or(&1) }
        }
        (RESHAPE, _) => {
            ensure(output_len == numel(x)?, || "a reshape keeps the number of values".into())?;
            Kernel::Reshape
        }
        _ => return Err("options not understood".into()),
    };
    Ok(Step { kernel, input: input as usize, output: output as usize, output_len })
}
