//! `mote quantize`: post-training int8 quantization of an f32 model. Activation ranges are
//! calibrated on training samples (the minimum and maximum of every layer's output, widened to
//! hold 0); weights are quantized symmetrically per output channel, biases to i32 at the
//! input's scale times the weight's; conv → relu → maxpool and linear → relu become one step
//! each (the relu a clamp, the pool fused into the convolution); flatten becomes a reshape
//! and the next linear layer's columns are permuted from NCHW to NHWC order once, here.

use crate::dataset::{load_split, Split};
use crate::error::{CliError, CliResult};
use crate::model::{build, load_model_with_notes, CliGraph, CliPlan};
use crate::quant::{quant_file, DataBuilder, QuantFile};
use crate::say::Say;
use mote_core::model::{check_quant_model, BuiltModel, ModelSpec};
use mote_core::ops::{Op, OpKind, Pointwise, PoolKind};
use mote_core::quant::{QLayer, QStep, QTensor, Quant};
use mote_core::{Executor, Mode, NodeId};
use mote_kernels::reference::int8::{Int8Io, Requant, SoftmaxParams};
use mote_kernels::Pool2dParams;
use serde_json::json;
use std::path::Path;

/// What `quantize` made, for the report.
pub struct Quantized {
    pub file: Vec<u8>,
    pub steps: usize,
    pub calibration: usize,
}

/// The int8 quantization of `spec` with `params`, calibrated on `samples` (each one sample's
/// input, f32); `path` names the model in errors.
pub fn quantize(path: &Path, spec: &ModelSpec, params: &[f32], samples: &[&[f32]], notes: &[u8]) -> CliResult<Quantized> {
    let (g, built) = build(path, spec, 1)?;
    let ranges = calibrate(path, &g, &built, params, samples)?;
    let mut q = Builder { g: &g, params, data: DataBuilder::default(), steps: Vec::new(), flat_from: None };
    let x = g.shape(built.x)?;
    let input = match x.dims() {
        [_, c, h, w] => tensor(&[*h, *w, *c], ranges.input),
        dims => tensor(&dims[1..], ranges.input),
    };
    let mut current = input;
    let layers: Vec<NodeId> = built.layers.iter().copied().collect();
    let mut i = 0;
    while i < layers.len() {
        let node = g.node(layers[i])?;
        let bad = |what: String| CliError::invalid(path, format!("layer {i} (`{}`): {what}", spec.layers[i].name));
        if node.inputs().first() != Some(if i == 0 { &built.x } else { &layers[i - 1] }) {
            return Err(bad("int8 models are chains: each layer reads the one before".into()));
        }
        // The layers fused into this one: an activation, then (after a convolution) a max pool.
        let act = layers.get(i + 1).and_then(|&n| activation(&g, n));
        let after_act = i + 1 + act.is_some() as usize;
        let pool = layers.get(after_act).and_then(|&n| max_pool(&g, n));
        let op = node.op().copied().ok_or_else(|| bad("not an op".into()))?;
        let (step, used) = match op {
            Op::Conv2d(conv) => {
                let used = 1 + act.is_some() as usize + pool.is_some() as usize;
                let range = ranges.layers[i + used - 1];
                (q.conv(&current, layers[i], conv, act, pool, range).map_err(bad)?, used)
            }
            Op::Linear(_) => {
                let used = 1 + act.is_some() as usize;
                (q.linear(&current, layers[i], act, ranges.layers[i + used - 1]).map_err(bad)?, used)
            }
            // int8 average pooling leaves the padding out of the count, as TFLite does.
            Op::Pool2d(p) if p.kind == PoolKind::Max || p.padding == [0; 4] || !p.count_padding => {
                let pool_p = pool_params(&current, p.kernel, p.stride, p.padding).map_err(bad)?;
                let output = QTensor { dims: dims4(&[pool_p.out_h(), pool_p.out_w(), pool_p.channels]), ..current };
                let layer = if p.kind == PoolKind::Max {
                    QLayer::MaxPool { p: pool_p, act: [-128, 127] }
                } else {
                    QLayer::AvgPool { p: pool_p, act: [-128, 127] }
                };
                (QStep { layer, input: q.steps.len() as u16, output }, 1)
            }
            Op::Reshape(_) => {
                let n = current.numel();
                if current.rank == 4 {
                    let d = current.dims;
                    q.flat_from = Some([d[3] as usize, d[1] as usize, d[2] as usize]);
                }
                let output = QTensor { dims: [1, n as u32, 1, 1], rank: 2, quant: current.quant };
                (QStep { layer: QLayer::Reshape, input: q.steps.len() as u16, output }, 1)
            }
            Op::Dropout(_) => {
                i += 1;
                continue;
            }
            Op::Softmax(s) if !s.log && i + 1 == layers.len() => {
                let depth = current.dims()[current.rank as usize - 1];
                let output = QTensor { quant: Quant { scale: 1.0 / 256.0, zero_point: -128 }, ..current };
                let layer = QLayer::Softmax { p: SoftmaxParams::new(1.0, current.quant.scale), depth };
                (QStep { layer, input: q.steps.len() as u16, output }, 1)
            }
            other => return Err(bad(format!("{} has no int8 form here", other.name()))),
        };
        current = step.output;
        q.steps.push(step);
        i += used;
    }
    let steps = q.steps.len();
    let file = quant_file(&spec.name, &input, &q.steps, &q.data.bytes, notes).map_err(|m| CliError::invalid(path, m))?;
    Ok(Quantized { file, steps, calibration: samples.len() })
}

/// The relu or clamp `node` applies, if it is one.
fn activation(g: &CliGraph, node: NodeId) -> Option<(f32, f32)> {
    match g.node(node).ok()?.op()? {
        Op::Pointwise(Pointwise::Relu) => Some((0.0, f32::INFINITY)),
        Op::Pointwise(Pointwise::Clip(lo, hi)) if *lo <= 0.0 && *hi >= 0.0 => Some((*lo, *hi)),
        _ => None,
    }
}

/// The max pool `node` is, if it is one.
fn max_pool(g: &CliGraph, node: NodeId) -> Option<mote_core::ops::Pool2d> {
    match g.node(node).ok()?.op()? {
        Op::Pool2d(p) if p.kind == PoolKind::Max => Some(*p),
        _ => None,
    }
}

/// `[1, dims…]` as a tensor's dimensions.
fn dims4(dims: &[usize]) -> [u32; 4] {
    let mut d = [1u32; 4];
    for (o, &v) in d[1..].iter_mut().zip(dims) {
        *o = v as u32;
    }
    d
}

/// A tensor of `dims` (after the batch) whose values span `range` (widened to hold 0, as
/// TFLite requires: 0 is exactly representable).
fn tensor(dims: &[usize], range: (f32, f32)) -> QTensor {
    let (lo, hi) = (range.0.min(0.0), range.1.max(0.0));
    let scale = ((hi - lo) / 255.0).max(1e-8);
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
    QTensor { dims: dims4(dims), rank: 1 + dims.len() as u8, quant: Quant { scale, zero_point } }
}

/// Pooling over the NHWC tensor `x`.
fn pool_params(x: &QTensor, kernel: [usize; 2], stride: [usize; 2], pad: [usize; 4]) -> Result<Pool2dParams, String> {
    if x.rank != 4 {
        return Err("pooling takes a 4-D input".into());
    }
    let d = x.dims.map(|v| v as usize);
    let mut p = Pool2dParams::plain(1, [d[3], d[1], d[2]], kernel, stride, [pad[0], pad[1]]);
    (p.pad_bottom, p.pad_right, p.count_padding) = (pad[2], pad[3], false);
    Ok(p)
}

/// The calibrated ranges: the input's and each layer's output's.
struct Ranges {
    input: (f32, f32),
    layers: Vec<(f32, f32)>,
}

/// Runs the f32 model on every sample, keeping every layer's output's minimum and maximum.
fn calibrate(path: &Path, g: &CliGraph, built: &BuiltModel, params: &[f32], samples: &[&[f32]]) -> CliResult<Ranges> {
    let mut keep: Vec<NodeId> = built.layers.iter().copied().collect();
    keep.push(built.output);
    let plan = CliPlan::inference(g, &keep, Mode::Eval).map_err(CliError::core(path))?;
    let mut arena = vec![0.0; plan.arena_len()];
    let mut ex = Executor::read_only(g, &plan, params, &mut arena)?;
    let empty = (f32::INFINITY, f32::NEG_INFINITY);
    let widen = |r: (f32, f32), v: &[f32]| v.iter().fold(r, |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let mut ranges = Ranges { input: empty, layers: vec![empty; built.layers.len()] };
    for s in samples {
        ex.set_input(built.x, s).map_err(CliError::core(path))?;
        ex.run()?;
        ranges.input = widen(ranges.input, s);
        for (r, &node) in ranges.layers.iter_mut().zip(&built.layers) {
            *r = widen(*r, ex.value(node)?);
        }
    }
    Ok(ranges)
}

/// The int8 model being built.
struct Builder<'a> {
    g: &'a CliGraph,
    params: &'a [f32],
    data: DataBuilder,
    steps: Vec<QStep>,
    /// After a flatten of an NHWC tensor: its `[c, h, w]`, so the next linear layer's columns
    /// (in the f32 model's NCHW order) are permuted to NHWC.
    flat_from: Option<[usize; 3]>,
}

impl Builder<'_> {
    /// The values of `node`'s operand `k` (a parameter), if it has one.
    fn param(&self, node: NodeId, k: usize) -> Option<&[f32]> {
        let n = self.g.node(*self.g.node(node).ok()?.inputs().get(k)?).ok()?;
        let at = n.param_offset()?;
        self.params.get(at..at + n.shape.numel())
    }

    /// Weights `[out, per]` quantized per row; the bias at `input_scale · weight_scale`; the
    /// requantizations to `output_scale`.
    fn weights(&mut self, w: &[f32], out: usize, bias: Option<&[f32]>, input: &QTensor, output: &QTensor) -> (QLayerConsts, Vec<i8>) {
        let per = w.len() / out;
        let mut q = Vec::with_capacity(w.len());
        let (mut biases, mut requant) = (Vec::new(), Vec::new());
        for (c, row) in w.chunks_exact(per).enumerate() {
            let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            q.extend(row.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
            let bias_scale = input.quant.scale as f64 * scale as f64;
            if let Some(b) = bias {
                biases.push((b[c] as f64 / bias_scale).round().clamp(i32::MIN as f64, i32::MAX as f64) as i32);
            }
            requant.push(Requant::from_real(bias_scale / output.quant.scale as f64));
        }
        let bias = bias.map(|_| self.data.i32(&biases));
        (QLayerConsts { bias, requant: self.data.requant(&requant) }, q)
    }

    fn io(input: &QTensor, output: &QTensor, act: Option<(f32, f32)>) -> Int8Io {
        let z = output.quant.zero_point;
        let (lo, hi) = act.map_or((-128, 127), |(lo, hi)| {
            let q = |v: f32| if v.is_finite() { output.quant.quantize(v) as i32 } else { 127 };
            (q(lo).max(-128), q(hi))
        });
        Int8Io { input_offset: -input.quant.zero_point, output_offset: z, act_min: lo, act_max: hi }
    }

    fn conv(
        &mut self,
        x: &QTensor,
        node: NodeId,
        conv: mote_core::ops::Conv2d,
        act: Option<(f32, f32)>,
        pool: Option<mote_core::ops::Pool2d>,
        range: (f32, f32),
    ) -> Result<QStep, String> {
        if x.rank != 4 {
            return Err("a convolution takes a 4-D input".into());
        }
        let shape = self.g.shape(node).map_err(|e| e.to_string())?;
        let w_shape = self
            .g
            .node(*self.g.node(node).map_err(|e| e.to_string())?.inputs().get(1).ok_or("no weight")?)
            .map_err(|e| e.to_string())?
            .shape;
        let [out_c, per_in, kh, kw] = [w_shape.dim(0), w_shape.dim(1), w_shape.dim(2), w_shape.dim(3)];
        let conv_node = self.g.node(node).map_err(|e| e.to_string())?;
        let x_shape = self.g.shape(conv_node.inputs()[0]).map_err(|e| e.to_string())?;
        // The same numbers in NHWC: the int8 kernels index their own layout.
        let p = conv.params(x_shape, w_shape);
        let conv_out = [shape.dim(2), shape.dim(3), out_c];
        let pool = match pool {
            Some(pl) => {
                let conv_tensor = QTensor { dims: dims4(&conv_out), rank: 4, quant: x.quant };
                Some(pool_params(&conv_tensor, pl.kernel, pl.stride, pl.padding)?)
            }
            None => None,
        };
        let out_dims = pool.map_or(conv_out, |pl| [pl.out_h(), pl.out_w(), out_c]);
        let output = tensor(&out_dims, range);
        let w = self.param(node, 1).ok_or("no weight")?.to_vec();
        let bias = self.param(node, 2).map(<[f32]>::to_vec);
        let (consts, q) = self.weights(&w, out_c, bias.as_deref(), x, &output);
        // [out_c, in/groups, kh, kw] → [out_c, kh, kw, in/groups] (TFLite's OHWI).
        let mut ohwi = vec![0i8; q.len()];
        for o in 0..out_c {
            for i in 0..per_in {
                for y in 0..kh {
                    for xk in 0..kw {
                        ohwi[((o * kh + y) * kw + xk) * per_in + i] = q[((o * per_in + i) * kh + y) * kw + xk];
                    }
                }
            }
        }
        let io = Self::io(x, &output, act);
        let layer = QLayer::Conv {
            p,
            io,
            depthwise: false,
            weights: self.data.i8(&ohwi),
            bias: consts.bias,
            requant: consts.requant,
            pool: pool.map(|pl| (pl, [io.act_min, io.act_max])),
        };
        Ok(QStep { layer, input: self.steps.len() as u16, output })
    }

    fn linear(&mut self, x: &QTensor, node: NodeId, act: Option<(f32, f32)>, range: (f32, f32)) -> Result<QStep, String> {
        let out = self.g.shape(node).map_err(|e| e.to_string())?.last();
        let depth = x.dims()[x.rank as usize - 1] as usize;
        let mut w = self.param(node, 1).ok_or("no weight")?.to_vec();
        if let Some([c, h, wd]) = self.flat_from.take() {
            // Column c·h·w + y·w + x of the f32 model reads what the int8 model holds at (y·w + x)·c + c.
            let original = w.clone();
            for o in 0..out {
                for ch in 0..c {
                    for y in 0..h {
                        for xx in 0..wd {
                            w[o * depth + (y * wd + xx) * c + ch] = original[o * depth + (ch * h + y) * wd + xx];
                        }
                    }
                }
            }
        }
        let bias = self.param(node, 2).map(<[f32]>::to_vec);
        let output = tensor(&[out], range);
        let (consts, q) = self.weights(&w, out, bias.as_deref(), x, &output);
        let layer = QLayer::FullyConnected {
            depth: depth as u32,
            out: out as u32,
            io: Self::io(x, &output, act),
            weights: self.data.i8(&q),
            bias: consts.bias,
            requant: consts.requant,
        };
        Ok(QStep { layer, input: self.steps.len() as u16, output })
    }
}

/// A layer's bias and requantization table, in the data section.
struct QLayerConsts {
    bias: Option<mote_core::quant::Blob>,
    requant: mote_core::quant::Blob,
}

/// `count` samples spread evenly over `split` (data sets are often sorted by class).
pub fn spread(split: &Split, count: usize) -> Vec<&[f32]> {
    let n = count.min(split.len()).max(1);
    (0..n).map(|k| split.image(k * split.len() / n)).collect()
}

/// `mote quantize MODEL --data DIR --out FILE [--calibration N]`.
pub fn run(model_path: &Path, data: &Path, out: &Path, calibration: usize, json: bool) -> CliResult<()> {
    let say = Say::new(json);
    crate::checks::writable_output(out, "--out", &[model_path])?;
    let bytes = std::fs::read(model_path).map_err(CliError::io(model_path))?;
    let (spec, params, notes) = load_model_with_notes(model_path, &bytes)?;
    let train = load_split(data, "train")?;
    let (g, built) = build(model_path, &spec, 1)?;
    let classes = g.shape(built.output)?.last();
    crate::checks::data_fits_model(model_path, &spec.input, classes, &train)?;
    let q = quantize(model_path, &spec, &params, &spread(&train, calibration), &notes.to_bytes())?;
    let file = QuantFile::new(&q.file).map_err(|m| CliError::invalid(out, m))?;
    let model = file.model().map_err(|m| CliError::invalid(out, m))?;
    let data_bytes = check_quant_model(&q.file).map_err(|source| CliError::Model { path: out.into(), source })?.param_bytes.len();
    crate::model::write_atomically(out, &q.file)?;
    say.line(format!(
        "{}: {} int8 steps calibrated on {} samples, arena {} bytes, {} data bytes: wrote {} ({} bytes)",
        spec.name,
        q.steps,
        q.calibration,
        model.arena_len(),
        data_bytes,
        out.display(),
        q.file.len()
    ));
    if json {
        println!(
            "{}",
            json!({"model": out, "bytes": q.file.len(), "steps": q.steps, "calibration": q.calibration, "arena_bytes": model.arena_len()})
        );
    }
    Ok(())
}
