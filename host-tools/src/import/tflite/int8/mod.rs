//! Converts an int8 TFLite model into a mote int8 model (`MOTQ`): every operator prepared as
//! TFLM's Prepare does (`prepare.rs`: one function per operator, after checking every shape,
//! type and size its kernel relies on, so a malformed model is an error, never a panic), its
//! constants laid out in the file's data section. The core's int8 runner then executes it,
//! bit for bit the TFLM interpreter on the MLPerf Tiny models.

mod prepare;
mod residual;

use super::read;
use crate::quant::{quant_file, DataBuilder, QuantFile};
use mote_core::quant::{QStep, QTensor};
use prepare::{index, prepare, tensor, SUPPORTED};
pub use residual::fuse_residual_blocks;

/// Largest tensor (values) a model may declare: larger ones are refused before allocation.
pub(super) const MAX_VALUES: usize = mote_core::quant::MAX_TENSOR_VALUES;

/// Whether a TFLite model's input is int8 (then it converts with [`convert`]).
pub fn is_int8(bytes: &[u8]) -> bool {
    read::read(bytes)
        .ok()
        .and_then(|m| m.inputs.first().and_then(|&i| index(&m, i).ok()).map(|t| prepare::int8(t).is_ok()))
        .unwrap_or(false)
}

/// The int8 model file for the int8 TFLite model `bytes`, and the source's input and output
/// names; names every operator it lacks at once, or the first malformed tensor or option.
/// Residual blocks become one step each.
pub fn convert(bytes: &[u8], name: &str) -> Result<(Vec<u8>, [String; 2]), String> {
    convert_steps(bytes, name, true).map(|(file, names, _)| (file, names))
}

/// A converted model file, the source's input and output names, and each step's operator.
type Converted = (Vec<u8>, [String; 2], Vec<usize>);

/// [`convert`], residual blocks fused or not (`fuse`); also, for each step, the operator
/// whose output it makes. A fused model that does not load is written unfused.
fn convert_steps(bytes: &[u8], name: &str, fuse: bool) -> Result<Converted, String> {
    let model = read::read(bytes)?;
    let missing: Vec<String> = model.ops.iter().filter(|op| !SUPPORTED.contains(&op.code)).map(|op| op.name.clone()).collect();
    if !missing.is_empty() {
        return Err(format!("int8 operators not supported: {}", missing.join(", ")));
    }
    if model.inputs.len() != 1 || model.outputs.len() != 1 {
        return Err(format!("{} inputs and {} outputs: mote imports models of one each", model.inputs.len(), model.outputs.len()));
    }
    let (input, output) = (index(&model, model.inputs[0])?, index(&model, model.outputs[0])?);
    let input_tensor = tensor(input)?;
    // Each TFLite tensor's number in the mote model, once computed (0: the input).
    let mut known: Vec<Option<u16>> = vec![None; model.tensors.len()];
    known[model.inputs[0] as usize] = Some(0);
    let mut data = DataBuilder::default();
    let mut steps: Vec<QStep> = Vec::new();
    for op in &model.ops {
        let (step, out) = prepare(&model, op, &known, &mut data).map_err(|e| format!("{}: {e}", op.name))?;
        steps.push(step);
        known[out] = Some(u16::try_from(steps.len()).map_err(|_| "too many operators")?);
    }
    if known[model.outputs[0] as usize] != Some(steps.len() as u16) {
        return Err("the model's output is not its last operator's".into());
    }
    let names = [input.name.clone(), output.name.clone()];
    let operators = (0..steps.len()).collect();
    if fuse {
        let (fused, origins) = fuse_residual_blocks(&input_tensor, &steps);
        if let Ok(file) = quant_file(name, &input_tensor, &fused, &data.bytes, &[]) {
            return Ok((file, names, origins));
        }
    }
    Ok((quant_file(name, &input_tensor, &steps, &data.bytes, &[])?, names, operators))
}

/// An int8 TFLite model converted and loaded, ready to run.
pub struct Int8Model {
    file: QuantFile,
    input: QTensor,
    /// For each step, the operator whose output it makes.
    pub operators: Vec<usize>,
}

impl Int8Model {
    /// Converts (residual blocks fused, as `mote import` does) and loads `bytes`.
    pub fn new(bytes: &[u8]) -> Result<Int8Model, String> {
        Self::converted(bytes, true)
    }

    /// Converts `bytes` one step per operator and loads it.
    pub fn unfused(bytes: &[u8]) -> Result<Int8Model, String> {
        Self::converted(bytes, false)
    }

    fn converted(bytes: &[u8], fuse: bool) -> Result<Int8Model, String> {
        let (file, _, operators) = convert_steps(bytes, "tflite", fuse)?;
        let file = QuantFile::new(&file)?;
        let input = file.model()?.input;
        Ok(Int8Model { file, input, operators })
    }

    /// Multiply-accumulates and other value operations of one run.
    pub fn work(&self) -> u64 {
        self.file.model().map_or(0, |m| m.work())
    }

    /// The input's shape.
    pub fn input_shape(&self) -> Vec<usize> {
        self.input.dims().iter().map(|&d| d as usize).collect()
    }

    /// The model's output for `input` (int8, C order, of the input's shape).
    pub fn run(&self, input: &[i8]) -> Result<Vec<i8>, String> {
        self.file.run(input)
    }

    /// [`Int8Model::run`], calling `each(k, output)` with step `k`'s output as it is made (the
    /// output of operator `operators[k]`).
    pub fn run_layers(&self, input: &[i8], each: impl FnMut(usize, &[i8])) -> Result<Vec<i8>, String> {
        self.file.run_each(input, each)
    }

    /// The int8 model file.
    pub fn file(&self) -> &QuantFile {
        &self.file
    }
}
