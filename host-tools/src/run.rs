//! `mote run`: inference on tensors in NumPy `.npy` files. A mote model's first input, `input`,
//! has shape `[N, …the spec's input]` in float32 (any batch size N ≥ 1); an imported model may
//! have further inputs (its `input` layers, in order, each of one fixed shape). The output is
//! the last layer's, `[N, …]` in float32. An imported model's inputs and output go by the
//! source's names (kept in the model file's notes). Shape, dtype and layout mismatches are
//! errors that name the file and the model's input.

use crate::checks;
use crate::error::{CliError, CliResult};
use crate::model::{build, load_model_with_notes, CliPlan};
use crate::quant::{is_quant_file, QuantFile};
use crate::say::Say;
use mote_core::model::{dims_of, BuiltModel, LayerOp, ModelSpec};
use mote_core::{Executor, Mode, NodeId};
use npyz::WriterBuilder;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The name of a mote model's first input.
const INPUT: &str = "input";

/// One input of a model, in the order `mote run` takes them.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInput {
    pub name: String,
    /// The whole shape; for the first input the batch (dimension 0) may be any N ≥ 1.
    pub shape: Vec<usize>,
    pub any_batch: bool,
}

impl ModelInput {
    /// What is wrong with a tensor of `shape` for this input, if anything.
    pub fn check(&self, shape: &[usize]) -> Result<(), String> {
        let fits = if self.any_batch {
            shape.len() == self.shape.len() && shape[1..] == self.shape[1..] && shape[0] >= 1
        } else {
            shape == self.shape
        };
        if fits {
            return Ok(());
        }
        let dims: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        let want = if self.any_batch { format!("[N, {}] (N ≥ 1)", dims[1..].join(", ")) } else { format!("[{}]", dims.join(", ")) };
        Err(format!("shape {shape:?} does not fit the model's input `{}` {want}", self.name))
    }
}

/// The inputs of the model `spec` builds: `input`, then each `input` layer.
pub fn model_inputs(spec: &ModelSpec) -> Vec<ModelInput> {
    let first = std::iter::once(1).chain(spec.input.iter().map(|&d| d as usize)).collect();
    let mut out = vec![ModelInput { name: INPUT.into(), shape: first, any_batch: true }];
    for layer in &spec.layers {
        if let LayerOp::Input { shape } = layer.op {
            out.push(ModelInput {
                name: layer.name.to_string(),
                shape: dims_of(&shape).iter().map(|&d| d as usize).collect(),
                any_batch: false,
            });
        }
    }
    out
}

/// The graph nodes that take the model's inputs, in [`model_inputs`] order: `x`, then each
/// `input` layer's.
pub fn input_nodes(spec: &ModelSpec, built: &BuiltModel) -> Vec<NodeId> {
    let extra = spec.layers.iter().zip(&built.layers).filter(|(l, _)| matches!(l.op, LayerOp::Input { .. })).map(|(_, &id)| id);
    std::iter::once(built.x).chain(extra).collect()
}

/// Runs `spec` with `params` on `inputs` (in [`model_inputs`] order, shapes checked by the
/// caller); `path` names the model in errors.
pub fn infer(path: &Path, spec: &ModelSpec, params: &[f32], inputs: &[Tensor]) -> CliResult<Tensor> {
    let batch = inputs.first().map_or(1, |t| t.shape[0]);
    let (g, built) = build(path, spec, batch)?;
    let plan = CliPlan::inference(&g, &[built.output], Mode::Eval).map_err(CliError::core(path))?;
    let mut arena = vec![0.0; plan.arena_len()];
    let mut ex = Executor::read_only(&g, &plan, params, &mut arena)?;
    for (node, tensor) in input_nodes(spec, &built).into_iter().zip(inputs) {
        ex.set_input(node, &tensor.values).map_err(CliError::core(path))?;
    }
    ex.run()?;
    Ok(Tensor { shape: g.shape(built.output)?.dims().to_vec(), values: ex.value(built.output)?.to_vec() })
}

/// A float32 tensor read from or written to a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Reads a C-order little-endian float32 `.npy` file; `input` names the model input it feeds.
pub fn read_npy(path: &Path, input: &str) -> CliResult<Tensor> {
    let bytes = std::fs::read(path).map_err(CliError::io(path))?;
    parse_npy(&bytes, input).map_err(|m| CliError::invalid(path, m))
}

/// [`read_npy`] of bytes already read: what is wrong with them, if they are not such a tensor.
pub fn parse_npy(bytes: &[u8], input: &str) -> Result<Tensor, String> {
    match parse_npy_of(bytes, input, false)? {
        NpyTensor::F32(t) => Ok(t),
        NpyTensor::I8(..) => Err(format!("dtype int8: the model's input `{input}` takes float32 (<f4)")),
    }
}

/// A tensor of a `.npy` file: float32, or int8 (an int8 model's input).
pub enum NpyTensor {
    F32(Tensor),
    I8(Vec<usize>, Vec<i8>),
}

/// [`parse_npy`] also taking int8 (`|i1`) files when `int8` is set.
pub fn parse_npy_of(bytes: &[u8], input: &str, int8: bool) -> Result<NpyTensor, String> {
    // The header's length must fit the file before the reader allocates for it (a version-3
    // header claiming 4 GB was the fuzzer's first find).
    let header_end = match (bytes.get(..6), bytes.get(6)) {
        (Some(b"\x93NUMPY"), Some(1)) => bytes.get(8..10).map(|b| 10 + u16::from_le_bytes([b[0], b[1]]) as usize),
        (Some(b"\x93NUMPY"), Some(2 | 3)) => bytes.get(8..12).map(|b| 12 + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
        _ => None,
    };
    let Some(header) = header_end.filter(|&end| end <= bytes.len()).map(|end| &bytes[..end]) else {
        return Err("not a NumPy .npy file: no header, or one longer than the file".into());
    };
    // NumPy writes one flat dict of plain ASCII; the reader's literal parser slows down without
    // bound on nested braces and escapes (the fuzzer's second find), so those are refused here.
    let text = &header[header.iter().position(|&b| b == b'{').unwrap_or(header.len())..];
    let count = |c: u8| text.iter().filter(|&&b| b == c).count();
    if count(b'{') != 1
        || count(b'}') != 1
        || count(b'\\') > 0
        || !text.iter().all(|b| b.is_ascii() && !b.is_ascii_control() || *b == b'\n')
    {
        return Err("not a NumPy .npy file: its header is not one flat dict of plain ASCII".into());
    }
    let file = npyz::NpyFile::new(bytes).map_err(|e| format!("not a NumPy .npy file: {e}"))?;
    let dtype = file.dtype().descr();
    let is_i8 = int8 && dtype == "'|i1'";
    if dtype != "'<f4'" && !is_i8 {
        let name = match dtype.trim_matches('\'') {
            "<f8" => "float64",
            "<f2" => "float16",
            "|i1" => "int8",
            "|u1" => "uint8",
            "<i4" => "int32",
            "<i8" => "int64",
            other => other,
        };
        let takes = if int8 { "int8 (|i1) or float32 (<f4, quantized with the input's scale)" } else { "float32 (<f4)" };
        return Err(format!("dtype {name}: the model's input `{input}` takes {takes}"));
    }
    if file.order() != npyz::Order::C {
        return Err(format!("Fortran (column-major) order: `{input}` takes C order (numpy.ascontiguousarray)"));
    }
    let shape = file
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("dimension {d} is too large")))
        .collect::<Result<Vec<_>, _>>()?;
    // The header's shape must be backed by the file's bytes before anything is allocated for it.
    let size = if is_i8 { 1 } else { 4 };
    let values = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|&n| n.checked_mul(size).is_some_and(|b| b <= bytes.len()));
    if values.is_none() {
        return Err(format!("shape {shape:?} needs more data than the file's {} bytes", bytes.len()));
    }
    if is_i8 {
        let values = file.into_vec::<i8>().map_err(|e| format!("the data does not read: {e}"))?;
        return Ok(NpyTensor::I8(shape, values));
    }
    let values = file.into_vec::<f32>().map_err(|e| format!("the data does not read: {e}"))?;
    Ok(NpyTensor::F32(Tensor { shape, values }))
}

/// Writes `tensor` as a float32 `.npy` file, through a temporary file and a rename.
pub fn write_npy(path: &Path, tensor: &Tensor) -> CliResult<()> {
    write_npy_of(path, &tensor.shape, &tensor.values)
}

/// Writes `values` of `shape` as a `.npy` file of their type (float32 or int8).
pub fn write_npy_of<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[usize], values: &[T]) -> CliResult<()> {
    let tmp = path.with_extension("npy.tmp");
    let write = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let mut writer = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut out).begin_nd()?;
        writer.extend(values.iter().copied())?;
        writer.finish()?;
        std::io::Write::flush(&mut out)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(CliError::Io { path: tmp, source: e });
    }
    std::fs::rename(&tmp, path).map_err(CliError::io(path))
}

/// `mote run MODEL --input X.npy --output OUT.npy`.
pub fn run(model_path: &Path, inputs: &[PathBuf], output: &Path, json: bool) -> CliResult<()> {
    let say = Say::new(json);
    let mut read: Vec<&Path> = vec![model_path];
    read.extend(inputs.iter().map(PathBuf::as_path));
    checks::writable_output(output, "--output", &read)?;
    let bytes = std::fs::read(model_path).map_err(CliError::io(model_path))?;
    if is_quant_file(&bytes) {
        return run_int8(model_path, &bytes, inputs, output, &say, json);
    }
    let (spec, params, notes) = load_model_with_notes(model_path, &bytes)?;
    // An imported model's inputs and output go by the source's names.
    let mut wanted = model_inputs(&spec);
    if notes.inputs.len() == wanted.len() {
        wanted.iter_mut().zip(&notes.inputs).for_each(|(input, name)| input.name = name.clone());
    }
    let output_name = notes.outputs.first().map_or("output", String::as_str);
    if inputs.len() != wanted.len() {
        let names: Vec<String> = wanted.iter().map(|i| format!("`{}`", i.name)).collect();
        let message =
            format!("{} has {} input(s) ({}), got {} --input files", model_path.display(), wanted.len(), names.join(", "), inputs.len());
        return Err(CliError::Usage(message));
    }
    let mut tensors = Vec::new();
    for (path, input) in inputs.iter().zip(&wanted) {
        let t = read_npy(path, &input.name)?;
        input.check(&t.shape).map_err(|m| CliError::invalid(path, m))?;
        tensors.push(t);
    }
    let y = infer(model_path, &spec, &params, &tensors)?;
    write_npy(output, &y)?;
    let described: Vec<String> = wanted.iter().zip(&tensors).map(|(i, t)| format!("`{}` {:?}", i.name, t.shape)).collect();
    say.line(format!("{}: {} → `{output_name}` {:?}, written to {}", spec.name, described.join(", "), y.shape, output.display()));
    if json {
        let ins: Vec<_> =
            wanted.iter().zip(&tensors).zip(inputs).map(|((i, t), f)| json!({"name": i.name, "shape": t.shape, "file": f})).collect();
        println!("{}", json!({"inputs": ins, "outputs": [{"name": output_name, "shape": y.shape, "file": output}]}));
    }
    Ok(())
}

/// `mote run` of an int8 model: int8 in, int8 out; or float32 in (quantized with the input's
/// scale and zero point), float32 out (dequantized).
fn run_int8(model_path: &Path, bytes: &[u8], inputs: &[PathBuf], output: &Path, say: &Say, json: bool) -> CliResult<()> {
    let file = QuantFile::new(bytes).map_err(|m| CliError::invalid(model_path, m))?;
    let model = file.model().map_err(|m| CliError::invalid(model_path, m))?;
    let notes = crate::notes::Notes::from_bytes(model.notes);
    let input_name = notes.inputs.first().map_or(INPUT, String::as_str);
    let output_name = notes.outputs.first().map_or("output", String::as_str);
    let [path] = inputs else {
        return Err(CliError::Usage(format!("{} has 1 input (`{input_name}`), got {} --input files", model_path.display(), inputs.len())));
    };
    let npy = std::fs::read(path).map_err(CliError::io(path))?;
    let tensor = parse_npy_of(&npy, input_name, true).map_err(|m| CliError::invalid(path, m))?;
    let shape = match &tensor {
        NpyTensor::F32(t) => t.shape.clone(),
        NpyTensor::I8(shape, _) => shape.clone(),
    };
    let wanted = ModelInput { name: input_name.into(), shape: model.input.dims().iter().map(|&d| d as usize).collect(), any_batch: true };
    wanted.check(&shape).map_err(|m| CliError::invalid(path, m))?;
    let (qi, qo) = (model.input.quant, model.output.quant);
    let values: Vec<i8> = match &tensor {
        NpyTensor::I8(_, v) => v.clone(),
        NpyTensor::F32(t) => t.values.iter().map(|&v| qi.quantize(v)).collect(),
    };
    let mut arena = vec![0i8; model.arena_len()];
    let mut out = Vec::new();
    for sample in values.chunks_exact(model.input.numel()) {
        out.extend_from_slice(model.run(&mut arena, sample).map_err(|e| CliError::invalid(model_path, e.to_string()))?);
    }
    let mut out_shape: Vec<usize> = model.output.dims().iter().map(|&d| d as usize).collect();
    out_shape[0] = shape[0];
    match tensor {
        NpyTensor::I8(..) => write_npy_of(output, &out_shape, &out)?,
        NpyTensor::F32(_) => {
            let real: Vec<f32> = out.iter().map(|&q| qo.dequantize(q)).collect();
            write_npy_of(output, &out_shape, &real)?
        }
    }
    let dtype = if matches!(tensor, NpyTensor::I8(..)) { "int8" } else { "float32" };
    say.line(format!(
        "{} (int8): `{input_name}` {shape:?} {dtype} → `{output_name}` {out_shape:?} {dtype}, written to {}",
        model.name,
        output.display()
    ));
    if json {
        println!(
            "{}",
            json!({"inputs": [{"name": input_name, "shape": shape, "file": path, "dtype": dtype}],
                   "outputs": [{"name": output_name, "shape": out_shape, "file": output, "dtype": dtype}]})
        );
    }
    Ok(())
}
