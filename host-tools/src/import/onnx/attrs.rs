//! Reading an ONNX node's attributes and tensors (initializers, `Constant` values).

use super::proto::{AttributeProto, NodeProto, TensorProto};
use crate::import::tensor::Tensor;

/// The attribute `name` of `node`.
fn find<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}

pub fn int(node: &NodeProto, name: &str, default: i64) -> i64 {
    find(node, name).and_then(|a| a.i).unwrap_or(default)
}

pub fn float(node: &NodeProto, name: &str, default: f32) -> f32 {
    find(node, name).and_then(|a| a.f).unwrap_or(default)
}

pub fn ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    find(node, name).map(|a| a.ints.clone())
}

pub fn string(node: &NodeProto, name: &str) -> Option<String> {
    find(node, name).and_then(|a| a.s.as_ref()).map(|s| String::from_utf8_lossy(s).into_owned())
}

pub fn tensor<'a>(node: &'a NodeProto, name: &str) -> Option<&'a TensorProto> {
    find(node, name).and_then(|a| a.t.as_ref())
}

/// Whether `node` has the attribute `name`.
pub fn has(node: &NodeProto, name: &str) -> bool {
    find(node, name).is_some()
}

/// ONNX element types mote reads.
const FLOAT: i32 = 1;
const INT32: i32 = 6;
const INT64: i32 = 7;
const DOUBLE: i32 = 11;

/// The largest tensor an import accepts (values), so a hostile header cannot make it allocate
/// without bound.
const MAX_VALUES: usize = 1 << 28;

/// A TensorProto's values (float, double, int32 or int64; inline or as raw little-endian
/// bytes), or what is wrong with it.
pub fn decode_tensor(t: &TensorProto) -> Result<Tensor, String> {
    let name = t.name.as_deref().unwrap_or("");
    if t.data_location == Some(1) {
        return Err(format!("tensor `{name}` keeps its data in an external file: save the model with its weights inside"));
    }
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor `{name}` has a negative dimension {d}")))
        .collect::<Result<Vec<_>, _>>()?;
    let n = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).filter(|&n| n <= MAX_VALUES);
    let n = n.ok_or_else(|| format!("tensor `{name}` of shape {dims:?} is too large"))?;
    let raw = t.raw_data.as_deref();
    let data_type = t.data_type.unwrap_or(0);
    let width = match data_type {
        FLOAT | INT32 => 4,
        INT64 | DOUBLE => 8,
        other => return Err(format!("tensor `{name}` has element type {other}: mote reads float, double, int32 and int64")),
    };
    let tensor = match (data_type, raw) {
        (_, Some(raw)) if raw.len() != n * width => {
            return Err(format!("tensor `{name}` of shape {dims:?} holds {} bytes, expected {}", raw.len(), n * width))
        }
        (FLOAT, Some(raw)) => Tensor::f32(dims, raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()),
        (DOUBLE, Some(raw)) => {
            Tensor::f32(dims, raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32).collect())
        }
        (INT32, Some(raw)) => Tensor::i64(dims, raw.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect()),
        (INT64, Some(raw)) => Tensor::i64(dims, raw.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect()),
        (FLOAT, None) => Tensor::f32(dims, t.float_data.clone()),
        (DOUBLE, None) => Tensor::f32(dims, t.double_data.iter().map(|&v| v as f32).collect()),
        (INT32, None) => Tensor::i64(dims, t.int32_data.iter().map(|&v| v as i64).collect()),
        _ => Tensor::i64(dims, t.int64_data.clone()),
    };
    let got = match &tensor.data {
        crate::import::tensor::Data::F32(v) => v.len(),
        crate::import::tensor::Data::I64(v) => v.len(),
    };
    if got != n {
        return Err(format!("tensor `{name}` of shape {:?} holds {got} values, expected {n}", tensor.dims));
    }
    Ok(tensor)
}
