//! The conversion of each ONNX op into mote layers. Attributes are read before inputs, so a
//! node whose attributes are unsupported is reported even when its inputs are unknown.

use super::attrs;
use super::proto::NodeProto;
use super::{Converter, NodeResult, Skip, Value};
use crate::import::builder::{dims_setting, LayerValue};
use crate::import::tensor::{bias_values, operand_dims, reshape_target, Data, Tensor};
use mote_core::model::LayerOp;

/// Converts `node`, giving the values of its outputs in order.
pub(super) fn convert(c: &mut Converter, n: &NodeProto) -> NodeResult<Vec<Value>> {
    let op = n.op_type.as_deref().unwrap_or("");
    let one = |v: LayerValue| Ok(vec![Value::Layer(v)]);
    match op {
        "Conv" => one(conv(c, n)?),
        "MaxPool" | "AveragePool" => one(pool(c, n, op == "MaxPool")?),
        "GlobalAveragePool" => one(global_avgpool(c, n)?),
        "ReduceMean" | "ReduceSum" => one(reduce(c, n, op == "ReduceSum")?),
        "BatchNormalization" => one(batchnorm(c, n)?),
        "Gemm" => one(gemm(c, n)?),
        "MatMul" => one(matmul(c, n)?),
        "Add" => binary(c, n, LayerOp::Add {}),
        "Sub" => binary(c, n, LayerOp::Sub {}),
        "Mul" => binary(c, n, LayerOp::Mul {}),
        "Div" => binary(c, n, LayerOp::Div {}),
        "Sum" => one(sum(c, n)?),
        "Relu" => one(unary(c, n, LayerOp::Relu {})?),
        "Sigmoid" => one(unary(c, n, LayerOp::Sigmoid {})?),
        "Tanh" => one(unary(c, n, LayerOp::Tanh {})?),
        "Exp" => one(unary(c, n, LayerOp::Exp {})?),
        "Neg" => one(unary(c, n, LayerOp::Neg {})?),
        "LeakyRelu" => {
            let slope = attrs::float(n, "alpha", 0.01);
            if !(0.0..1.0).contains(&slope) {
                return Err(format!("alpha {slope}: mote's leaky_relu takes a slope in [0, 1)").into());
            }
            one(unary(c, n, LayerOp::LeakyRelu { slope })?)
        }
        "Clip" => one(clip(c, n)?),
        "Softmax" | "LogSoftmax" => one(softmax(c, n, op == "LogSoftmax")?),
        "Flatten" => flatten(c, n),
        "Reshape" => reshape(c, n),
        "Squeeze" | "Unsqueeze" => squeeze(c, n, op == "Unsqueeze"),
        "Transpose" => transpose(c, n),
        "Pad" => one(pad(c, n)?),
        "Constant" => Ok(vec![Value::Const(constant(n)?)]),
        "Identity" => Ok(vec![c.value(n, 0)?]),
        "Dropout" => {
            if n.output.get(1).is_some_and(|m| !m.is_empty()) {
                return Err(Skip::Unsupported("the mask output (training-mode Dropout)".into()));
            }
            Ok(vec![c.value(n, 0)?])
        }
        "Shape" => {
            let dims = match c.value(n, 0)? {
                Value::Layer(v) => v.shape,
                Value::Const(t) => t.dims,
                Value::Unknown => return Err(Skip::Upstream),
            };
            Ok(vec![Value::Const(Tensor::i64(vec![dims.len()], dims.iter().map(|&d| d as i64).collect()))])
        }
        "Gather" => Ok(vec![Value::Const(gather(c, n)?)]),
        "Concat" => Ok(vec![Value::Const(concat(c, n)?)]),
        "Cast" => {
            let t = c.constant(n, 0)?;
            let to = attrs::int(n, "to", 1);
            let cast = match to {
                1 | 11 => Tensor::f32(t.dims.clone(), t.floats()),
                6 | 7 => Tensor::i64(t.dims.clone(), t.ints()),
                other => return Err(format!("cast to element type {other}").into()),
            };
            Ok(vec![Value::Const(cast)])
        }
        other => Err(format!("op `{other}` is not supported").into()),
    }
}

impl Converter {
    /// The value of input `i` (an unknown one stops the node quietly).
    fn value(&self, n: &NodeProto, i: usize) -> NodeResult<Value> {
        let name = n.input.get(i).filter(|s| !s.is_empty()).ok_or_else(|| Skip::Unsupported(format!("input {i} is missing")))?;
        match self.values.get(name) {
            Some(Value::Unknown) => Err(Skip::Upstream),
            Some(v) => Ok(v.clone()),
            None => Err(format!("input `{name}` is not produced by an earlier node").into()),
        }
    }
    /// Input `i`, which must be computed from the model's inputs.
    fn layer(&self, n: &NodeProto, i: usize) -> NodeResult<LayerValue> {
        match self.value(n, i)? {
            Value::Layer(v) => Ok(v),
            _ => Err(format!("input {i} is a constant where mote needs a computed tensor").into()),
        }
    }
    /// Input `i`, which must be a constant (an initializer or a folded value).
    fn constant(&self, n: &NodeProto, i: usize) -> NodeResult<Tensor> {
        match self.value(n, i)? {
            Value::Const(t) => Ok(t),
            _ => Err(format!("input {i} must be a constant (an initializer)").into()),
        }
    }
    /// Optional constant input `i` (absent or named "": `None`).
    fn optional_constant(&self, n: &NodeProto, i: usize) -> NodeResult<Option<Tensor>> {
        if n.input.get(i).is_none_or(|s| s.is_empty()) {
            return Ok(None);
        }
        self.constant(n, i).map(Some)
    }
    /// Adds a layer for `n`.
    fn add(&mut self, n: &NodeProto, op: LayerOp, inputs: &[&LayerValue], tensors: &[&[f32]]) -> NodeResult<LayerValue> {
        let kind = n.op_type.as_deref().unwrap_or("");
        let source = match n.name.as_deref().filter(|s| !s.is_empty()) {
            Some(name) => format!("{name} ({kind})"),
            None => kind.to_string(),
        };
        self.builder.add(&source, op.name(), op, inputs, tensors).map_err(Skip::Unsupported)
    }
    /// A constant layer holding `t`, its leading 1s dropped to fit beside a tensor of `rank`.
    fn constant_layer(&mut self, n: &NodeProto, t: &Tensor, rank: usize) -> NodeResult<LayerValue> {
        let shape = dims_setting(&operand_dims(&t.dims, rank))?;
        self.add(n, LayerOp::Constant { shape }, &[], &[&t.floats()])
    }
    /// A reshape of `x` to `dims` per sample (nothing when it has them already).
    fn reshape_to(&mut self, n: &NodeProto, x: &LayerValue, dims: &[usize]) -> NodeResult<LayerValue> {
        if x.shape[1..] == *dims {
            return Ok(x.clone());
        }
        let shape = dims_setting(dims)?;
        self.add(n, LayerOp::Reshape { shape }, &[x], &[])
    }
}

/// Kernel, stride, dilation and padding of a 2-D window (1-D windows have height 1).
struct Window {
    kernel: [u32; 2],
    stride: [u32; 2],
    dilation: [u32; 2],
    /// `[top, left, bottom, right]`.
    pads: [u32; 4],
}

impl Window {
    /// Reads `strides`, `dilations`, `pads` and `auto_pad` for a window of `kernel` over the
    /// spatial dimensions `spatial` (one or two of them).
    fn read(n: &NodeProto, kernel: &[usize], spatial: &[usize]) -> NodeResult<Window> {
        let k = spatial.len();
        let list = |name: &str, default: i64, len: usize| -> NodeResult<Vec<usize>> {
            let v = attrs::ints(n, name).unwrap_or_else(|| vec![default; len]);
            if v.len() != len || v.iter().any(|&x| x < 0 || x > u32::MAX as i64) {
                return Err(format!("`{name}` {v:?}: expected {len} non-negative values").into());
            }
            Ok(v.iter().map(|&x| x as usize).collect())
        };
        let stride = list("strides", 1, k)?;
        let dilation = list("dilations", 1, k)?;
        if stride.contains(&0) || dilation.contains(&0) || kernel.len() != k || kernel.contains(&0) {
            return Err("a stride, dilation or kernel size of 0".to_string().into());
        }
        let explicit = list("pads", 0, 2 * k)?;
        let auto = attrs::string(n, "auto_pad").unwrap_or_else(|| "NOTSET".into());
        let mut begin: Vec<usize> = explicit[..k].to_vec();
        let mut end: Vec<usize> = explicit[k..].to_vec();
        match auto.as_str() {
            "NOTSET" => {}
            "VALID" => {
                begin.fill(0);
                end.fill(0);
            }
            "SAME_UPPER" | "SAME_LOWER" => {
                for i in 0..k {
                    let span = (kernel[i] - 1) * dilation[i] + 1;
                    let out = spatial[i].div_ceil(stride[i]);
                    let total = ((out - 1) * stride[i] + span).saturating_sub(spatial[i]);
                    let small = total / 2;
                    (begin[i], end[i]) = if auto == "SAME_UPPER" { (small, total - small) } else { (total - small, small) };
                }
            }
            other => return Err(format!("auto_pad `{other}`").into()),
        }
        let two = |v: &[usize], one_d: usize| -> [u32; 2] {
            if k == 1 {
                [one_d as u32, v[0] as u32]
            } else {
                [v[0] as u32, v[1] as u32]
            }
        };
        let (b, e) = (two(&begin, 0), two(&end, 0));
        Ok(Window { kernel: two(kernel, 1), stride: two(&stride, 1), dilation: two(&dilation, 1), pads: [b[0], b[1], e[0], e[1]] })
    }
    fn symmetric(&self) -> bool {
        self.pads[0] == self.pads[2] && self.pads[1] == self.pads[3]
    }
    fn begin(&self) -> [u32; 2] {
        [self.pads[0], self.pads[1]]
    }
    fn end(&self) -> [u32; 2] {
        [self.pads[2], self.pads[3]]
    }
}

/// The spatial dimensions of `x` ([N, C, L] or [N, C, H, W]), or why it has none mote handles.
fn spatial(x: &LayerValue) -> NodeResult<&[usize]> {
    match x.shape.len() {
        3 | 4 => Ok(&x.shape[2..]),
        r => Err(format!("a {r}-D input: mote has 1-D and 2-D convolution and pooling ([N, C, L] or [N, C, H, W])").into()),
    }
}

/// `x` as `[N, C, 1, L]` for a 1-D op (unchanged if 2-D).
fn as_2d(c: &mut Converter, n: &NodeProto, x: &LayerValue) -> NodeResult<LayerValue> {
    match x.shape[..] {
        [_, ch, l] => c.reshape_to(n, x, &[ch, 1, l]),
        _ => Ok(x.clone()),
    }
}

/// `y` back as `[N, C, L]` when the source was 1-D.
fn back_to_1d(c: &mut Converter, n: &NodeProto, source: &LayerValue, y: LayerValue) -> NodeResult<LayerValue> {
    match (source.shape.len(), &y.shape[..]) {
        (3, &[_, ch, 1, l]) => c.reshape_to(n, &y, &[ch, l]),
        _ => Ok(y),
    }
}

fn conv(c: &mut Converter, n: &NodeProto) -> NodeResult<LayerValue> {
    let groups = attrs::int(n, "group", 1);
    let x = c.layer(n, 0)?;
    let w = c.constant(n, 1)?;
    let bias = c.optional_constant(n, 2)?;
    let sp = spatial(&x)?;
    if w.dims.len() != x.shape.len() || groups < 1 || groups > u32::MAX as i64 {
        return Err(format!("weight {:?} and group {groups} do not fit the input {:?}", w.dims, x.shape).into());
    }
    let win = Window::read(n, &w.dims[2..], sp)?;
    let out_channels = w.dims[0] as u32;
    let bias_values = bias.as_ref().map(|b| b.floats());
    let op = if groups == 1 && win.dilation == [1, 1] && win.symmetric() {
        LayerOp::Conv2d { out_channels, kernel: win.kernel, stride: win.stride, padding: win.begin(), bias: bias.is_some() }
    } else {
        LayerOp::Conv2dGeneral {
            out_channels,
            kernel: win.kernel,
            stride: win.stride,
            pad_begin: win.begin(),
            pad_end: win.end(),
            dilation: win.dilation,
            groups: groups as u32,
            bias: bias.is_some(),
        }
    };
    let x2 = as_2d(c, n, &x)?;
    let weights = w.floats();
    let mut tensors: Vec<&[f32]> = vec![&weights];
    if let Some(b) = &bias_values {
        tensors.push(b);
    }
    let y = c.add(n, op, &[&x2], &tensors)?;
    back_to_1d(c, n, &x, y)
}

fn pool(c: &mut Converter, n: &NodeProto, max: bool) -> NodeResult<LayerValue> {
    let kernel: Vec<usize> = attrs::ints(n, "kernel_shape")
        .ok_or_else(|| Skip::Unsupported("no kernel_shape".into()))?
        .iter()
        .map(|&k| usize::try_from(k).unwrap_or(0))
        .collect();
    if attrs::int(n, "storage_order", 0) != 0 || n.output.get(1).is_some_and(|o| !o.is_empty()) {
        return Err("the indices output or column-major storage order".to_string().into());
    }
    let count_padding = attrs::int(n, "count_include_pad", 0) == 1;
    let ceil = attrs::int(n, "ceil_mode", 0) == 1;
    let x = c.layer(n, 0)?;
    let sp = spatial(&x)?.to_vec();
    let win = Window::read(n, &kernel, &sp)?;
    if win.dilation != [1, 1] {
        return Err("dilated pooling".to_string().into());
    }
    if win.kernel.iter().zip(win.begin().iter().zip(win.end())).any(|(&k, (&b, e))| b >= k || e >= k) {
        return Err(format!("padding {:?} as large as the kernel {:?}", win.pads, win.kernel).into());
    }
    if ceil {
        // Ceil and floor agree when the window's last position fits exactly.
        let padded = |i: usize, s: usize| s + win.pads[i] as usize + win.pads[i + 2] as usize;
        let grid: Vec<usize> = if sp.len() == 1 { vec![1, sp[0]] } else { sp.clone() };
        let exact = (0..2).all(|i| padded(i, grid[i]).saturating_sub(win.kernel[i] as usize).is_multiple_of(win.stride[i] as usize));
        if !exact {
            return Err("ceil_mode = 1 where it changes the output size".to_string().into());
        }
    }
    let half = |i: usize| win.pads[i] <= win.kernel[i] / 2;
    let plain = win.symmetric() && half(0) && half(1);
    let no_pad = win.pads == [0; 4];
    let op = match (max, plain, no_pad || count_padding) {
        (true, true, _) => LayerOp::MaxPool2d { kernel: win.kernel, stride: win.stride, padding: win.begin() },
        (true, false, _) => {
            LayerOp::MaxPool2dGeneral { kernel: win.kernel, stride: win.stride, pad_begin: win.begin(), pad_end: win.end() }
        }
        (false, true, true) => LayerOp::AvgPool2d { kernel: win.kernel, stride: win.stride, padding: win.begin() },
        (false, _, _) => {
            LayerOp::AvgPool2dGeneral { kernel: win.kernel, stride: win.stride, pad_begin: win.begin(), pad_end: win.end(), count_padding }
        }
    };
    let x2 = as_2d(c, n, &x)?;
    let y = c.add(n, op, &[&x2], &[])?;
    back_to_1d(c, n, &x, y)
}

fn global_avgpool(c: &mut Converter, n: &NodeProto) -> NodeResult<LayerValue> {
    let x = c.layer(n, 0)?;
    spatial(&x)?;
    let x2 = as_2d(c, n, &x)?;
    let y = c.add(n, LayerOp::GlobalAvgPool {}, &[&x2], &[])?;
    let ones = vec![1; x.shape.len() - 2];
    let dims: Vec<usize> = [x.shape[1]].into_iter().chain(ones).collect();
    c.reshape_to(n, &y, &dims)
}

/// ReduceMean / ReduceSum over spatial axes: an average pool over those axes (times the count
/// for a sum).
fn reduce(c: &mut Converter, n: &NodeProto, sum: bool) -> NodeResult<LayerValue> {
    let keep = attrs::int(n, "keepdims", 1) == 1;
    let axes_from_input = (sum && c.opset >= 13) || (!sum && c.opset >= 18);
    let x = c.layer(n, 0)?;
    let axes = if axes_from_input { c.optional_constant(n, 1)?.map(|t| t.ints()) } else { attrs::ints(n, "axes") };
    let rank = x.shape.len() as i64;
    let Some(axes) = axes.filter(|a| !a.is_empty()) else {
        return Err("a reduction over every axis (the batch included)".to_string().into());
    };
    let mut axes: Vec<usize> = axes.iter().map(|&a| if a < 0 { a + rank } else { a }).map(|a| a as usize).collect();
    axes.sort_unstable();
    axes.dedup();
    let spatial_only = axes.iter().all(|&a| a >= 2 && a < x.shape.len()) && (3..=4).contains(&x.shape.len());
    if !spatial_only {
        return Err(format!("a reduction over axes {axes:?} of {:?}: mote reduces over H and W", x.shape).into());
    }
    // Over [N, C, L] the one spatial axis is the height of [N, C, L, 1].
    let x4 = if x.shape.len() == 3 { c.reshape_to(n, &x, &[x.shape[1], x.shape[2], 1])? } else { x.clone() };
    let (h, w) = (x4.shape[2], x4.shape[3]);
    let kernel = [if axes.contains(&2) { h } else { 1 }, if axes.contains(&3) { w } else { 1 }].map(|k| k as u32);
    let op = LayerOp::AvgPool2d { kernel, stride: kernel, padding: [0, 0] };
    let mut y = c.add(n, op, &[&x4], &[])?;
    if sum {
        let count = Tensor::f32(vec![1], vec![(kernel[0] * kernel[1]) as f32]);
        let k = c.constant_layer(n, &count, 1)?;
        y = c.add(n, LayerOp::Mul {}, &[&y, &k], &[])?;
    }
    let dims: Vec<usize> =
        x.shape.iter().enumerate().skip(1).filter_map(|(i, &d)| if axes.contains(&i) { keep.then_some(1) } else { Some(d) }).collect();
    if dims.is_empty() {
        return Err("a reduction to the batch alone".to_string().into());
    }
    c.reshape_to(n, &y, &dims)
}

fn batchnorm(c: &mut Converter, n: &NodeProto) -> NodeResult<LayerValue> {
    let eps = attrs::float(n, "epsilon", 1e-5);
    let momentum = attrs::float(n, "momentum", 0.9);
    if attrs::int(n, "training_mode", 0) != 0 || attrs::int(n, "spatial", 1) != 1 || n.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Err("training mode (mote imports BatchNormalization in inference mode)".to_string().into());
    }
    let x = c.layer(n, 0)?;
    let [scale, shift, mean, var] = [1, 2, 3, 4].map(|i| c.constant(n, i).map(|t| t.floats()));
    let (scale, shift, mean, var) = (scale?, shift?, mean?, var?);
    // ONNX's momentum weighs the running value, PyTorch's and mote's the batch.
    let op = LayerOp::BatchNorm { eps, momentum: (1.0 - momentum).clamp(0.0, 1.0), affine: true };
    let x4 = match x.shape[..] {
        [_, ch, l] => c.reshape_to(n, &x, &[ch, l, 1])?,
        _ => x.clone(),
    };
    let y = c.add(n, op, &[&x4], &[&mean, &var, &scale, &shift])?;
    c.reshape_to(n, &y, &x.shape[1..])
}

/// A constant scalar layer of `value`.
fn scalar(c: &mut Converter, n: &NodeProto, value: f32) -> NodeResult<LayerValue> {
    c.constant_layer(n, &Tensor::f32(vec![1], vec![value]), 1)
}

fn gemm(c: &mut Converter, n: &NodeProto) -> NodeResult<LayerValue> {
    let (alpha, beta) = (attrs::float(n, "alpha", 1.0), attrs::float(n, "beta", 1.0));
    let (trans_a, trans_b) = (attrs::int(n, "transA", 0) == 1, attrs::int(n, "transB", 0) == 1);
    let a = c.layer(n, 0)?;
    if trans_a || a.shape.len() != 2 {
        return Err(format!("transA = 1 or an input A of {:?}: mote's A is [batch, K]", a.shape).into());
    }
    let y = match c.value(n, 1)? {
        Value::Const(b) => {
            if b.dims.len() != 2 {
                return Err(format!("a constant B of {:?}: Gemm's B is a matrix", b.dims).into());
            }
            // Linear's weight is [out, in]: B itself when transposed, else Bᵀ.
            let w = if trans_b { b.clone() } else { b.transposed_2d().ok_or_else(|| Skip::Unsupported(format!("B of {:?}", b.dims)))? };
            let out = w.dims[0];
            let weights: Vec<f32> = w.floats().iter().map(|v| v * alpha).collect();
            let bias = match c.optional_constant(n, 2) {
                Ok(Some(t)) if beta != 0.0 => {
                    let v =
                        bias_values(&t, out).ok_or_else(|| Skip::Unsupported(format!("C of {:?}: mote adds a bias per output", t.dims)))?;
                    Some(v.iter().map(|x| x * beta).collect::<Vec<f32>>())
                }
                Ok(_) => None,
                // C computed from the inputs: added after.
                Err(_) => None,
            };
            let op = LayerOp::Linear { out: out as u32, bias: bias.is_some() };
            let tensors: Vec<&[f32]> = match &bias {
                Some(b) => vec![&weights, b],
                None => vec![&weights],
            };
            c.add(n, op, &[&a], &tensors)?
        }
        Value::Layer(b) => {
            if trans_b {
                return Err("transB = 1 with a computed B".to_string().into());
            }
            let mut y = c.add(n, LayerOp::MatMul {}, &[&a, &b], &[])?;
            if alpha != 1.0 {
                let k = scalar(c, n, alpha)?;
                y = c.add(n, LayerOp::Mul {}, &[&y, &k], &[])?;
            }
            if let Some(t) = c.optional_constant(n, 2).ok().flatten().filter(|_| beta != 0.0) {
                let scaled = Tensor::f32(t.dims.clone(), t.floats().iter().map(|v| v * beta).collect());
                let k = c.constant_layer(n, &scaled, 2)?;
                y = c.add(n, LayerOp::Add {}, &[&y, &k], &[])?;
            }
            y
        }
        Value::Unknown => return Err(Skip::Upstream),
    };
    // A C computed from the inputs.
    if n.input.get(2).is_some_and(|s| !s.is_empty()) && beta != 0.0 {
        if let Value::Layer(cv) = c.value(n, 2)? {
            if beta != 1.0 {
                return Err("beta ≠ 1 with a computed C".to_string().into());
            }
            return c.add(n, LayerOp::Add {}, &[&y, &cv], &[]);
        }
    }
    Ok(y)
}

fn matmul(c: &mut Converter, n: &NodeProto) -> NodeResult<LayerValue> {
    let a = c.layer(n, 0)?;
    match c.value(n, 1)? {
        Value::Const(b) if b.dims.len() == 2 => {
            let w = b.transposed_2d().unwrap_or_else(|| b.clone());
            c.add(n, LayerOp::Linear { out: b.dims[1] as u32, bias: false }, &[&a], &[&w.floats()])
        }
        Value::Layer(b) if a.shape.len() == 2 && b.shape.len() == 2 => c.add(n, LayerOp::MatMul {}, &[&a, &b], &[]),
        Value::Unknown => Err(Skip::Upstream),
        _ => Err("a matrix product other than [M, K] · [K, N] or [.., K] · a constant [K, N]".to_string().into()),
    }
}

/// Opset < 7 broadcasting: with `broadcast = 1`, B's dimensions align with A's from `axis`.
fn legacy_broadcast(c: &Converter, n: &NodeProto, a_rank: usize, mut b: Tensor) -> Tensor {
    if c.opset < 7 && attrs::int(n, "broadcast", 0) == 1 && attrs::has(n, "axis") {
        let axis = attrs::int(n, "axis", 0);
        let axis = if axis < 0 { axis + a_rank as i64 } else { axis } as usize;
        while axis + b.dims.len() < a_rank {
            b.dims.push(1);
        }
    }
    b
}

fn binary(c: &mut Converter, n: &NodeProto, op: LayerOp) -> NodeResult<Vec<Value>> {
    let (a, b) = (c.value(n, 0)?, c.value(n, 1)?);
    let y = match (a, b) {
        (Value::Layer(a), Value::Layer(b)) => c.add(n, op, &[&a, &b], &[])?,
        (Value::Layer(a), Value::Const(t)) => {
            let t = legacy_broadcast(c, n, a.shape.len(), t);
            let k = c.constant_layer(n, &t, a.shape.len())?;
            c.add(n, op, &[&a, &k], &[])?
        }
        (Value::Const(t), Value::Layer(b)) => {
            let k = c.constant_layer(n, &t, b.shape.len())?;
            c.add(n, op, &[&k, &b], &[])?
        }
        (Value::Const(a), Value::Const(b)) => return Ok(vec![Value::Const(fold_binary(op, &a, &b)?)]),
        _ => return Err(Skip::Upstream),
    };
    Ok(vec![Value::Layer(y)])
}

/// `a ∘ b` of two constants of the same shape, or one of them a single value.
fn fold_binary(op: LayerOp, a: &Tensor, b: &Tensor) -> NodeResult<Tensor> {
    let f = |x: f64, y: f64| match op {
        LayerOp::Add {} => x + y,
        LayerOp::Sub {} => x - y,
        LayerOp::Mul {} => x * y,
        _ => x / y,
    };
    let dims = if a.numel() >= b.numel() { a.dims.clone() } else { b.dims.clone() };
    let len = a.numel().max(b.numel());
    if !(a.numel() == b.numel() || a.numel() == 1 || b.numel() == 1) {
        return Err(format!("constants of shapes {:?} and {:?}", a.dims, b.dims).into());
    }
    let at = |t: &Tensor, i: usize| match &t.data {
        Data::F32(v) => v[if v.len() == 1 { 0 } else { i }] as f64,
        Data::I64(v) => v[if v.len() == 1 { 0 } else { i }] as f64,
    };
    let values = (0..len).map(|i| f(at(a, i), at(b, i)));
    Ok(match (&a.data, &b.data) {
        (Data::I64(_), Data::I64(_)) => Tensor::i64(dims, values.map(|v| v as i64).collect()),
        _ => Tensor::f32(dims, values.map(|v| v as f32).collect()),
    })
}

fn sum(c: &mut Converter, n: &NodeProto) -> NodeResult<LayerValue> {
    let mut acc = c.layer(n, 0)?;
    for i in 1..n.input.len() {
        let next = c.layer(n, i)?;
        acc = c.add(n, LayerOp::Add {}, &[&acc, &next], &[])?;
    }
    Ok(acc)
}

fn unary(c: &mut Converter, n: &NodeProto, op: LayerOp) -> NodeResult<LayerValue> {
    let x = c.layer(n, 0)?;
    c.add(n, op, &[&x], &[])
}

fn clip(c: &mut Converter, n: &NodeProto) -> NodeResult<LayerValue> {
    let finite = |v: f32| v.clamp(-f32::MAX, f32::MAX);
    let (min, max) = if c.opset < 11 {
        (attrs::float(n, "min", f32::NEG_INFINITY), attrs::float(n, "max", f32::INFINITY))
    } else {
        let bound = |t: Option<Tensor>, default: f32| t.and_then(|t| t.floats().first().copied()).unwrap_or(default);
        (bound(c.optional_constant(n, 1)?, f32::NEG_INFINITY), bound(c.optional_constant(n, 2)?, f32::INFINITY))
    };
    if min.is_nan() || max.is_nan() || min > max {
        return Err(format!("bounds [{min}, {max}]").into());
    }
    unary(c, n, LayerOp::Clip { min: finite(min), max: finite(max) })
}

/// Softmax over `axis`: ONNX < 13 flattens the axes from `axis` on into one; 13 and later use
/// the one axis (moved last with transposes when it is not).
fn softmax(c: &mut Converter, n: &NodeProto, log: bool) -> NodeResult<LayerValue> {
    let op = if log { LayerOp::LogSoftmax {} } else { LayerOp::Softmax {} };
    let x = c.layer(n, 0)?;
    let rank = x.shape.len();
    let axis = attrs::int(n, "axis", if c.opset < 13 { 1 } else { -1 });
    let axis = if axis < 0 { axis + rank as i64 } else { axis };
    if axis < 1 || axis >= rank as i64 {
        return Err(format!("axis {axis} of a rank-{rank} input (softmax across the batch)").into());
    }
    let axis = axis as usize;
    if axis == rank - 1 {
        return c.add(n, op, &[&x], &[]);
    }
    if c.opset < 13 {
        let inner: usize = x.shape[axis..].iter().product();
        let outer = &x.shape[1..axis];
        let flat = c.reshape_to(n, &x, &[outer, &[inner]].concat())?;
        let y = c.add(n, op, &[&flat], &[])?;
        return c.reshape_to(n, &y, &x.shape[1..]);
    }
    // Swap `axis` with the last one, apply, swap back (the permutation is its own inverse).
    let mut perm: Vec<u32> = (1..rank as u32).collect();
    perm.swap(axis - 1, rank - 2);
    let setting = dims_setting(&perm.iter().map(|&p| p as usize).collect::<Vec<_>>())?;
    let t = c.add(n, LayerOp::Transpose { perm: setting }, &[&x], &[])?;
    let y = c.add(n, op, &[&t], &[])?;
    c.add(n, LayerOp::Transpose { perm: setting }, &[&y], &[])
}

fn flatten(c: &mut Converter, n: &NodeProto) -> NodeResult<Vec<Value>> {
    let axis = attrs::int(n, "axis", 1);
    let x = match c.value(n, 0)? {
        Value::Const(mut t) if axis == 1 => {
            t.dims = vec![t.dims.first().copied().unwrap_or(1), t.dims.iter().skip(1).product()];
            return Ok(vec![Value::Const(t)]);
        }
        Value::Layer(x) => x,
        _ => return Err(format!("axis {axis} of a constant").into()),
    };
    if axis != 1 {
        return Err(format!("axis {axis}: mote flattens everything after the batch (axis 1)").into());
    }
    let per_sample = x.shape[1..].iter().product();
    Ok(vec![Value::Layer(c.reshape_to(n, &x, &[per_sample])?)])
}

/// A layer or constant given new dimensions (the batch must stay first).
fn redim(c: &mut Converter, n: &NodeProto, value: Value, dims: Vec<usize>) -> NodeResult<Vec<Value>> {
    match value {
        Value::Const(mut t) => {
            t.dims = dims;
            Ok(vec![Value::Const(t)])
        }
        Value::Layer(x) => {
            if dims.first() != x.shape.first() || dims.len() < 2 {
                return Err(format!("a reshape of {:?} to {dims:?}: mote keeps the batch first and alone", x.shape).into());
            }
            Ok(vec![Value::Layer(c.reshape_to(n, &x, &dims[1..])?)])
        }
        Value::Unknown => Err(Skip::Upstream),
    }
}

fn reshape(c: &mut Converter, n: &NodeProto) -> NodeResult<Vec<Value>> {
    if attrs::int(n, "allowzero", 0) != 0 {
        return Err("allowzero = 1".to_string().into());
    }
    let target = if c.opset < 5 { attrs::ints(n, "shape").unwrap_or_default() } else { c.constant(n, 1)?.ints() };
    let value = c.value(n, 0)?;
    let from = match &value {
        Value::Layer(x) => x.shape.clone(),
        Value::Const(t) => t.dims.clone(),
        Value::Unknown => return Err(Skip::Upstream),
    };
    let dims = reshape_target(&from, &target)?;
    redim(c, n, value, dims)
}

fn squeeze(c: &mut Converter, n: &NodeProto, unsqueeze: bool) -> NodeResult<Vec<Value>> {
    let axes = if c.opset < 13 { attrs::ints(n, "axes") } else { c.optional_constant(n, 1)?.map(|t| t.ints()) };
    let value = c.value(n, 0)?;
    let from = match &value {
        Value::Layer(x) => x.shape.clone(),
        Value::Const(t) => t.dims.clone(),
        Value::Unknown => return Err(Skip::Upstream),
    };
    let dims = if unsqueeze {
        let axes = axes.ok_or_else(|| Skip::Unsupported("no axes".into()))?;
        let rank = (from.len() + axes.len()) as i64;
        let mut axes: Vec<usize> = axes.iter().map(|&a| if a < 0 { a + rank } else { a } as usize).collect();
        axes.sort_unstable();
        let mut dims = from.clone();
        for a in axes {
            if a > dims.len() {
                return Err(format!("axis {a} past the rank").into());
            }
            dims.insert(a, 1);
        }
        dims
    } else {
        let rank = from.len() as i64;
        let axes: Vec<usize> = match axes {
            Some(a) => a.iter().map(|&a| if a < 0 { a + rank } else { a } as usize).collect(),
            None => (0..from.len()).filter(|&i| from[i] == 1).collect(),
        };
        from.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect()
    };
    redim(c, n, value, dims)
}

fn transpose(c: &mut Converter, n: &NodeProto) -> NodeResult<Vec<Value>> {
    let perm = attrs::ints(n, "perm");
    match c.value(n, 0)? {
        Value::Const(t) if t.dims.len() == 2 && perm.as_deref().is_none_or(|p| p == [1, 0]) => {
            Ok(vec![Value::Const(t.transposed_2d().unwrap_or(t))])
        }
        Value::Layer(x) => {
            let rank = x.shape.len();
            let perm: Vec<i64> = perm.unwrap_or_else(|| (0..rank as i64).rev().collect());
            if perm.len() != rank || perm.first() != Some(&0) || rank > 5 {
                return Err(format!("perm {perm:?} of {:?}: mote keeps the batch first", x.shape).into());
            }
            if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
                return Ok(vec![Value::Layer(x)]);
            }
            let setting = dims_setting(&perm[1..].iter().map(|&p| p as usize).collect::<Vec<_>>())?;
            Ok(vec![Value::Layer(c.add(n, LayerOp::Transpose { perm: setting }, &[&x], &[])?)])
        }
        Value::Unknown => Err(Skip::Upstream),
        Value::Const(t) => Err(format!("a transpose of a constant of {:?}", t.dims).into()),
    }
}

fn pad(c: &mut Converter, n: &NodeProto) -> NodeResult<LayerValue> {
    let mode = attrs::string(n, "mode").unwrap_or_else(|| "constant".into());
    if mode != "constant" {
        return Err(format!("mode `{mode}` (mote pads with a constant)").into());
    }
    if n.input.get(3).is_some_and(|s| !s.is_empty()) {
        return Err("the axes input".to_string().into());
    }
    let (pads, value) = if c.opset < 11 {
        (attrs::ints(n, "pads").unwrap_or_default(), attrs::float(n, "value", 0.0))
    } else {
        let value = c.optional_constant(n, 2)?.and_then(|t| t.floats().first().copied()).unwrap_or(0.0);
        (c.constant(n, 1)?.ints(), value)
    };
    let x = c.layer(n, 0)?;
    let rank = x.shape.len();
    if pads.len() != 2 * rank || pads.iter().any(|&p| !(0..=u32::MAX as i64).contains(&p)) || !(3..=4).contains(&rank) {
        return Err(format!("pads {pads:?} of a rank-{rank} input").into());
    }
    let (begin, end) = pads.split_at(rank);
    if begin[..2] != [0, 0] || end[..2] != [0, 0] {
        return Err(format!("pads {pads:?}: mote pads the spatial axes only").into());
    }
    let (pad_begin, pad_end) = if rank == 3 {
        ([0, begin[2] as u32], [0, end[2] as u32])
    } else {
        ([begin[2] as u32, begin[3] as u32], [end[2] as u32, end[3] as u32])
    };
    let x2 = as_2d(c, n, &x)?;
    let y = c.add(n, LayerOp::Pad { pad_begin, pad_end, value: value.clamp(-f32::MAX, f32::MAX) }, &[&x2], &[])?;
    back_to_1d(c, n, &x, y)
}

fn constant(n: &NodeProto) -> NodeResult<Tensor> {
    if let Some(t) = attrs::tensor(n, "value") {
        return Ok(super::attrs::decode_tensor(t)?);
    }
    if attrs::has(n, "value_float") {
        return Ok(Tensor::f32(vec![], vec![attrs::float(n, "value_float", 0.0)]));
    }
    if attrs::has(n, "value_int") {
        return Ok(Tensor::i64(vec![], vec![attrs::int(n, "value_int", 0)]));
    }
    if let Some(v) = attrs::ints(n, "value_ints") {
        return Ok(Tensor::i64(vec![v.len()], v));
    }
    Err("a Constant other than a tensor, float or int value".to_string().into())
}

/// `Gather` of constants (shape arithmetic): along axis 0 of a 1-D tensor.
fn gather(c: &mut Converter, n: &NodeProto) -> NodeResult<Tensor> {
    let (data, indices) = (c.constant(n, 0)?, c.constant(n, 1)?);
    if attrs::int(n, "axis", 0) != 0 || data.dims.len() != 1 {
        return Err("a Gather other than from a 1-D constant (shape arithmetic)".to_string().into());
    }
    let len = data.dims[0] as i64;
    let picks: Vec<usize> = indices
        .ints()
        .iter()
        .map(|&i| if i < 0 { i + len } else { i })
        .map(|i| usize::try_from(i).ok().filter(|&i| (i as i64) < len))
        .collect::<Option<_>>()
        .ok_or_else(|| Skip::Unsupported("an index out of range".into()))?;
    Ok(match &data.data {
        Data::F32(v) => Tensor::f32(indices.dims.clone(), picks.iter().map(|&i| v[i]).collect()),
        Data::I64(v) => Tensor::i64(indices.dims.clone(), picks.iter().map(|&i| v[i]).collect()),
    })
}

/// `Concat` of 1-D constants (shape arithmetic).
fn concat(c: &mut Converter, n: &NodeProto) -> NodeResult<Tensor> {
    let parts = (0..n.input.len()).map(|i| c.constant(n, i)).collect::<NodeResult<Vec<_>>>()?;
    if parts.iter().any(|t| t.dims.len() > 1) {
        return Err("a Concat other than of 1-D constants (shape arithmetic)".to_string().into());
    }
    let ints = parts.iter().all(|t| matches!(t.data, Data::I64(_)));
    Ok(if ints {
        let v: Vec<i64> = parts.iter().flat_map(|t| t.ints()).collect();
        Tensor::i64(vec![v.len()], v)
    } else {
        let v: Vec<f32> = parts.iter().flat_map(|t| t.floats()).collect();
        Tensor::f32(vec![v.len()], v)
    })
}
