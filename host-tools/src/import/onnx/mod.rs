//! ONNX import: decodes a `ModelProto` (prost code generated from `onnx.proto`) and converts its
//! graph node by node into mote layers (`nodes.rs`). Weights are taken from initializers and
//! `Constant` nodes; shapes, axes and the like are folded at import time.

mod attrs;
mod nodes;
#[allow(clippy::all, missing_docs)]
pub mod proto;

use super::builder::{LayerValue, ModelBuilder};
use super::tensor::Tensor;
use super::{ImportError, Imported, Io, Skip, Unsupported};
use prost::Message;
use proto::tensor_shape_proto::dimension::Value as Dim;
use proto::type_proto::Value as TypeValue;
use proto::{ModelProto, ValueInfoProto};
use std::collections::HashMap;

/// What a tensor name of the source graph stands for.
#[derive(Clone, Debug)]
enum Value {
    Layer(LayerValue),
    Const(Tensor),
    /// Produced by a node that was not converted.
    Unknown,
}

type NodeResult<T> = Result<T, Skip>;

/// The conversion in progress.
struct Converter {
    builder: ModelBuilder,
    values: HashMap<String, Value>,
    /// The default-domain opset the model imports.
    opset: i64,
}

/// Reads an ONNX model and converts it.
pub fn convert(bytes: &[u8], name: &str) -> Result<Imported, ImportError> {
    let model = ModelProto::decode(bytes).map_err(|e| ImportError::Decode(format!("not an ONNX model: {e}")))?;
    let graph = model.graph.as_ref().ok_or_else(|| ImportError::Decode("the ONNX model has no graph".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.as_deref().unwrap_or("").is_empty() || o.domain.as_deref() == Some("ai.onnx"))
        .and_then(|o| o.version)
        .unwrap_or(1);
    let mut consts: HashMap<String, Value> = HashMap::new();
    for t in &graph.initializer {
        let tensor = attrs::decode_tensor(t).map_err(ImportError::Decode)?;
        consts.insert(t.name.clone().unwrap_or_default(), Value::Const(tensor));
    }
    let inputs: Vec<&ValueInfoProto> = graph.input.iter().filter(|i| !consts.contains_key(i.name.as_deref().unwrap_or(""))).collect();
    let sources: Vec<Io> = inputs.iter().map(|i| io_of(i)).collect::<Result<_, _>>()?;
    let outputs: Vec<Io> = graph.output.iter().map(io_of).collect::<Result<_, _>>()?;
    let first = sources.first().ok_or_else(|| ImportError::Model("the model has no input".into()))?;
    if outputs.len() != 1 {
        return Err(ImportError::Model(format!("the model has {} outputs: mote models have one", outputs.len())));
    }
    let dims = |io: &Io, dynamic_batch: bool| -> Result<Vec<usize>, ImportError> {
        io.shape
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Some(d) => Ok(*d),
                None if i == 0 && dynamic_batch => Ok(1),
                None => Err(ImportError::Model(format!("input `{}` has a dynamic dimension {i}: only the first may be", io.name))),
            })
            .collect()
    };
    let (builder, x) = ModelBuilder::new(&dims(first, true)?).map_err(ImportError::Model)?;
    let mut c = Converter { builder, values: consts, opset };
    c.values.insert(first.name.clone(), Value::Layer(x));
    for io in &sources[1..] {
        let shape = dims(io, false)?;
        let op = mote_core::model::LayerOp::Input { shape: super::builder::dims_setting(&shape).map_err(ImportError::Model)? };
        let value = c.builder.add(&io.name, &io.name, op, &[], &[]).map_err(ImportError::Model)?;
        c.values.insert(io.name.clone(), Value::Layer(value));
    }
    let mut unsupported = Vec::new();
    for (i, node) in graph.node.iter().enumerate() {
        let op = node.op_type.clone().unwrap_or_default();
        let result = if node.domain.as_deref().is_some_and(|d| !d.is_empty() && d != "ai.onnx") {
            Err(Skip::Unsupported(format!("domain `{}` (mote reads the default ONNX domain)", node.domain.as_deref().unwrap_or(""))))
        } else {
            nodes::convert(&mut c, node)
        };
        match result {
            Ok(values) => {
                for (name, value) in node.output.iter().zip(values) {
                    c.values.insert(name.clone(), value);
                }
            }
            Err(skip) => {
                if let Skip::Unsupported(what) = skip {
                    let node_name = node.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| format!("#{i}"));
                    unsupported.push(Unsupported { node: node_name, op, version: format!("opset {opset}"), what });
                }
                for name in &node.output {
                    c.values.insert(name.clone(), Value::Unknown);
                }
            }
        }
    }
    if !unsupported.is_empty() {
        return Err(ImportError::Unsupported(unsupported));
    }
    let out = match c.values.get(&outputs[0].name) {
        Some(Value::Layer(v)) => v.clone(),
        _ => return Err(ImportError::Model(format!("the output `{}` is not computed from the input", outputs[0].name))),
    };
    let (spec, params, mapping) = c.builder.finish(name, &out).map_err(ImportError::Model)?;
    Ok(Imported { spec, params, mapping, inputs: sources, outputs })
}

/// The name and shape of a graph input or output (float tensors only).
fn io_of(v: &ValueInfoProto) -> Result<Io, ImportError> {
    let name = v.name.clone().unwrap_or_default();
    let Some(TypeValue::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.as_ref()) else {
        return Err(ImportError::Model(format!("`{name}` is not a tensor")));
    };
    // float; double is read as float (mote computes in float32).
    if !matches!(t.elem_type, Some(1) | Some(11)) {
        return Err(ImportError::Model(format!(
            "`{name}` has element type {}: mote's inputs and outputs are float32",
            t.elem_type.unwrap_or(0)
        )));
    }
    let shape = t
        .shape
        .as_ref()
        .map(|s| {
            s.dim
                .iter()
                .map(|d| match d.value {
                    Some(Dim::DimValue(v)) if v > 0 => Some(v as usize),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Io { name, shape })
}

/// Reads a serialized `TensorProto` (an ONNX test case's input or output file).
pub fn read_tensor(bytes: &[u8]) -> Result<Tensor, String> {
    let t = proto::TensorProto::decode(bytes).map_err(|e| format!("not an ONNX tensor: {e}"))?;
    attrs::decode_tensor(&t)
}
