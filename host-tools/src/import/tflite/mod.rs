//! TFLite import (float32 models): reads the FlatBuffer (`read.rs`) and converts its operators
//! into mote layers (`ops.rs`). TFLite is NHWC, mote NCHW: the model's NHWC inputs and outputs
//! stay NHWC (a transpose at each edge), convolution weights are reordered at import, and
//! layout-dependent ops (reshape, fully connected over a 4-D tensor, softmax, mean) see their
//! operand in TFLite's order.

pub mod int8;
mod ops;
mod read;
#[allow(clippy::all, unused, missing_docs, unsafe_code)]
#[rustfmt::skip]
pub mod schema;

use super::builder::{LayerValue, ModelBuilder};
use super::tensor::Tensor;
use super::{ImportError, Imported, Io, Unsupported};
use mote_core::model::LayerOp;
use read::TflModel;
use schema::tflite::TensorType;
use std::collections::HashMap;

/// What a tensor of the subgraph stands for.
#[derive(Clone, Debug)]
enum Value {
    /// A computed tensor; 4-D ones are held NCHW.
    Layer(LayerValue),
    Const(Tensor),
    Unknown,
}

/// Reads a `.tflite` model and converts it.
pub fn convert(bytes: &[u8], name: &str) -> Result<Imported, ImportError> {
    let model = read::read(bytes).map_err(ImportError::Decode)?;
    let io = |indices: &[i32]| -> Result<Vec<Io>, ImportError> {
        indices
            .iter()
            .map(|&i| {
                let t = tensor(&model, i).ok_or_else(|| ImportError::Decode(format!("tensor {i} does not exist")))?;
                if t.ty != TensorType::Float32 {
                    return Err(ImportError::Model(format!("`{}` is {:?}: this import reads float32 models", t.name, t.ty)));
                }
                let dynamic = |d: usize| t.signature.as_ref().and_then(|s| s.get(d)).is_some_and(|&s| s < 0);
                let shape = t.shape.iter().enumerate().map(|(d, &v)| (!dynamic(d) && v > 0).then_some(v as usize)).collect();
                Ok(Io { name: t.name.clone(), shape })
            })
            .collect()
    };
    let (inputs, outputs) = (io(&model.inputs)?, io(&model.outputs)?);
    if inputs.len() != 1 || outputs.len() != 1 {
        return Err(ImportError::Model(format!(
            "{} inputs and {} outputs: mote imports TFLite models of one each",
            inputs.len(),
            outputs.len()
        )));
    }
    let first = &inputs[0];
    let dims: Vec<usize> = first.shape.iter().map(|d| d.unwrap_or(1)).collect();
    let (builder, x) = ModelBuilder::new(&dims).map_err(ImportError::Model)?;
    let mut c = Converter { builder, values: HashMap::new() };
    for (i, t) in model.tensors.iter().enumerate() {
        if let Some(value) = constant(t) {
            c.values.insert(i as i32, value);
        }
    }
    // An NHWC input is held NCHW inside.
    let x = if x.shape.len() == 4 { c.layer_op("(input)", "to_nchw", nchw(), &[&x]).map_err(ImportError::Model)? } else { x };
    c.values.insert(model.inputs[0], Value::Layer(x));
    let mut unsupported = Vec::new();
    for (i, op) in model.ops.iter().enumerate() {
        match ops::convert(&mut c, &model, op) {
            Ok(value) => {
                if let Some(&out) = op.outputs.first() {
                    c.values.insert(out, Value::Layer(value));
                }
            }
            Err(skip) => {
                if let super::Skip::Unsupported(what) = skip {
                    let node = op.outputs.first().and_then(|&o| tensor(&model, o)).map_or_else(|| format!("#{i}"), |t| t.name.clone());
                    unsupported.push(Unsupported { node, op: op.name.clone(), version: format!("version {}", op.version), what });
                }
                for &out in &op.outputs {
                    c.values.insert(out, Value::Unknown);
                }
            }
        }
    }
    if !unsupported.is_empty() {
        return Err(ImportError::Unsupported(unsupported));
    }
    let out = match c.values.get(&model.outputs[0]) {
        Some(Value::Layer(v)) => v.clone(),
        _ => return Err(ImportError::Model("the output is not computed from the input".into())),
    };
    // An NHWC output is given back NHWC.
    let out = if out.shape.len() == 4 { c.layer_op("(output)", "to_nhwc", nhwc(), &[&out]).map_err(ImportError::Model)? } else { out };
    let (spec, params, mapping) = c.builder.finish(name, &out).map_err(ImportError::Model)?;
    Ok(Imported { spec, params, mapping, inputs, outputs })
}

/// The transpose from NHWC to NCHW.
fn nchw() -> LayerOp {
    LayerOp::Transpose { perm: [3, 1, 2, 0] }
}

/// The transpose from NCHW to NHWC.
fn nhwc() -> LayerOp {
    LayerOp::Transpose { perm: [2, 3, 1, 0] }
}

/// Tensor `i` of the subgraph.
fn tensor(model: &TflModel, i: i32) -> Option<&read::TflTensor> {
    usize::try_from(i).ok().and_then(|i| model.tensors.get(i))
}

/// The constant a tensor with data holds (float32, int32 or int64).
fn constant(t: &read::TflTensor) -> Option<Value> {
    let data = t.data.as_ref()?;
    let dims: Vec<usize> = t.shape.iter().map(|&d| d.max(0) as usize).collect();
    let n: usize = dims.iter().product();
    let value = match t.ty {
        TensorType::Float32 if data.len() == 4 * n => {
            Tensor::f32(dims, data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
        }
        TensorType::Int32 if data.len() == 4 * n => {
            Tensor::i64(dims, data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect())
        }
        TensorType::Int64 if data.len() == 8 * n => {
            Tensor::i64(dims, data.chunks_exact(8).map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])).collect())
        }
        _ => return Some(Value::Unknown),
    };
    Some(Value::Const(value))
}

/// The conversion in progress.
struct Converter {
    builder: ModelBuilder,
    values: HashMap<i32, Value>,
}

impl Converter {
    fn layer_op(&mut self, source: &str, hint: &str, op: LayerOp, inputs: &[&LayerValue]) -> Result<LayerValue, String> {
        self.builder.add(source, hint, op, inputs, &[])
    }
}
