//! Reads a `.tflite` FlatBuffer (planus code generated from TFLite's `schema.fbs`) into plain
//! structures: the first subgraph's tensors (with their constant data) and operators (with
//! the options mote uses). Every malformed offset or length is an error, never a panic.

use super::schema::tflite::{self as tfl, BuiltinOptionsRef, ModelRef};
use planus::ReadAsRoot;

/// A tensor of the subgraph.
#[derive(Clone, Debug)]
pub struct TflTensor {
    pub name: String,
    pub shape: Vec<i32>,
    /// `shape` with -1 where a dimension is dynamic.
    pub signature: Option<Vec<i32>>,
    pub ty: tfl::TensorType,
    /// The constant data, if the tensor has any.
    pub data: Option<Vec<u8>>,
    /// Its affine quantization (int8 models), if any.
    pub quant: Option<Quantization>,
}

/// A tensor's affine quantization: `real = scale · (q − zero_point)`, per tensor (one scale)
/// or per slice along `dimension`.
#[derive(Clone, Debug, PartialEq)]
pub struct Quantization {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub dimension: i32,
}

/// An operator's options that mote reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Options {
    None,
    Conv {
        same: bool,
        stride: [i32; 2],
        dilation: [i32; 2],
        activation: i32,
    },
    Depthwise {
        same: bool,
        stride: [i32; 2],
        dilation: [i32; 2],
        multiplier: i32,
        activation: i32,
    },
    Pool {
        same: bool,
        stride: [i32; 2],
        filter: [i32; 2],
        activation: i32,
    },
    FullyConnected {
        activation: i32,
        keep_num_dims: bool,
        shuffled: bool,
    },
    /// ADD, SUB, MUL, DIV.
    Activation(i32),
    Softmax {
        beta: f32,
    },
    Reducer {
        keep_dims: bool,
    },
    Reshape {
        new_shape: Option<[i32; 8]>,
        rank: usize,
    },
    Other,
}

/// An operator of the subgraph.
#[derive(Clone, Debug)]
pub struct TflOp {
    /// The builtin operator number and its name.
    pub code: i32,
    pub name: String,
    pub version: i32,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub options: Options,
}

/// The model's first subgraph.
#[derive(Debug)]
pub struct TflModel {
    pub tensors: Vec<TflTensor>,
    pub ops: Vec<TflOp>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
}

fn err(e: planus::Error) -> String {
    format!("not a TFLite model: {e}")
}

/// Reads the model in `bytes`.
pub fn read(bytes: &[u8]) -> Result<TflModel, String> {
    if bytes.get(4..8) != Some(b"TFL3") {
        return Err("not a TFLite model: the FlatBuffer identifier is not \"TFL3\"".into());
    }
    let model = ModelRef::read_as_root(bytes).map_err(err)?;
    let buffers: Vec<tfl::BufferRef> =
        model.buffers().map_err(err)?.map(|b| b.iter().collect::<Result<_, _>>()).transpose().map_err(err)?.unwrap_or_default();
    let codes = model.operator_codes().map_err(err)?.ok_or("no operator codes")?;
    let subgraphs = model.subgraphs().map_err(err)?.ok_or("no subgraph")?;
    if subgraphs.len() != 1 {
        return Err(format!("{} subgraphs: mote imports models of one", subgraphs.len()));
    }
    let graph = subgraphs.get(0).ok_or("no subgraph")?.map_err(err)?;
    let mut tensors = Vec::new();
    for t in graph.tensors().map_err(err)?.ok_or("no tensors")?.iter() {
        let t = t.map_err(err)?;
        let data = match buffers.get(t.buffer().map_err(err)? as usize) {
            Some(b) => buffer_data(b, bytes)?,
            None => return Err("a tensor names a buffer that does not exist".into()),
        };
        tensors.push(TflTensor {
            name: t.name().map_err(err)?.unwrap_or("").to_string(),
            shape: t.shape().map_err(err)?.map(|s| s.to_vec::<i32>()).transpose().map_err(err)?.unwrap_or_default(),
            signature: t.shape_signature().map_err(err)?.map(|s| s.to_vec::<i32>()).transpose().map_err(err)?,
            ty: t.type_().map_err(err)?,
            data,
            quant: quantization(t.quantization().map_err(err)?).map_err(err)?,
        });
    }
    let mut ops = Vec::new();
    for op in graph.operators().map_err(err)?.ok_or("no operators")?.iter() {
        let op = op.map_err(err)?;
        let code_ref = codes.get(op.opcode_index().map_err(err)? as usize).ok_or("an operator names an unknown opcode")?.map_err(err)?;
        // Old files keep the code in the deprecated byte, new ones in the int (the larger wins).
        let code = (code_ref.deprecated_builtin_code().map_err(err)? as i32).max(code_ref.builtin_code().map(|c| c as i32).unwrap_or(-1));
        let name = tfl::BuiltinOperator::try_from(code).map(|c| format!("{c:?}")).unwrap_or_else(|_| format!("operator {code}"));
        ops.push(TflOp {
            code,
            name,
            version: code_ref.version().map_err(err)?,
            inputs: op.inputs().map_err(err)?.map(|v| v.to_vec::<i32>()).transpose().map_err(err)?.unwrap_or_default(),
            outputs: op.outputs().map_err(err)?.map(|v| v.to_vec::<i32>()).transpose().map_err(err)?.unwrap_or_default(),
            options: options(op.builtin_options().map_err(err)?).map_err(err)?,
        });
    }
    let ints = |v: Option<planus::Vector<i32>>| v.map(|v| v.to_vec::<i32>()).transpose().map_err(err).map(Option::unwrap_or_default);
    Ok(TflModel { tensors, ops, inputs: ints(graph.inputs().map_err(err)?)?, outputs: ints(graph.outputs().map_err(err)?)? })
}

/// A tensor's quantization, when it has scales.
fn quantization(q: Option<tfl::QuantizationParametersRef>) -> planus::Result<Option<Quantization>> {
    let Some(q) = q else { return Ok(None) };
    let scale: Vec<f32> = q.scale()?.map(|v| v.to_vec()).transpose()?.unwrap_or_default();
    if scale.is_empty() {
        return Ok(None);
    }
    let zero_point = q.zero_point()?.map(|v| v.to_vec()).transpose()?.unwrap_or_default();
    Ok(Some(Quantization { scale, zero_point, dimension: q.quantized_dimension()? }))
}

/// A buffer's bytes: inside the FlatBuffer, or (large models) at `offset` in the file.
fn buffer_data(b: &tfl::BufferRef, file: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if let Some(data) = b.data().map_err(err)?.filter(|d| !d.is_empty()) {
        return Ok(Some(data.to_vec()));
    }
    let (offset, size) = (b.offset().map_err(err)?, b.size().map_err(err)?);
    if offset > 1 {
        let range = usize::try_from(offset).ok().and_then(|o| Some(o..o.checked_add(usize::try_from(size).ok()?)?));
        return match range.and_then(|r| file.get(r)) {
            Some(d) => Ok(Some(d.to_vec())),
            None => Err(format!("a buffer at offset {offset} of {size} bytes lies past the end of the file")),
        };
    }
    Ok(None)
}

fn options(o: Option<BuiltinOptionsRef>) -> planus::Result<Options> {
    let same = |p: tfl::Padding| p == tfl::Padding::Same;
    Ok(match o {
        Some(BuiltinOptionsRef::Conv2DOptions(c)) => Options::Conv {
            same: same(c.padding()?),
            stride: [c.stride_h()?, c.stride_w()?],
            dilation: [c.dilation_h_factor()?, c.dilation_w_factor()?],
            activation: c.fused_activation_function()? as i32,
        },
        Some(BuiltinOptionsRef::DepthwiseConv2DOptions(c)) => Options::Depthwise {
            same: same(c.padding()?),
            stride: [c.stride_h()?, c.stride_w()?],
            dilation: [c.dilation_h_factor()?, c.dilation_w_factor()?],
            multiplier: c.depth_multiplier()?,
            activation: c.fused_activation_function()? as i32,
        },
        Some(BuiltinOptionsRef::Pool2DOptions(p)) => Options::Pool {
            same: same(p.padding()?),
            stride: [p.stride_h()?, p.stride_w()?],
            filter: [p.filter_height()?, p.filter_width()?],
            activation: p.fused_activation_function()? as i32,
        },
        Some(BuiltinOptionsRef::FullyConnectedOptions(f)) => Options::FullyConnected {
            activation: f.fused_activation_function()? as i32,
            keep_num_dims: f.keep_num_dims()?,
            shuffled: f.weights_format()? != tfl::FullyConnectedOptionsWeightsFormat::Default,
        },
        Some(BuiltinOptionsRef::AddOptions(a)) => Options::Activation(a.fused_activation_function()? as i32),
        Some(BuiltinOptionsRef::SubOptions(a)) => Options::Activation(a.fused_activation_function()? as i32),
        Some(BuiltinOptionsRef::MulOptions(a)) => Options::Activation(a.fused_activation_function()? as i32),
        Some(BuiltinOptionsRef::DivOptions(a)) => Options::Activation(a.fused_activation_function()? as i32),
        Some(BuiltinOptionsRef::SoftmaxOptions(s)) => Options::Softmax { beta: s.beta()? },
        Some(BuiltinOptionsRef::ReducerOptions(r)) => Options::Reducer { keep_dims: r.keep_dims()? },
        Some(BuiltinOptionsRef::ReshapeOptions(r)) => match r.new_shape()? {
            Some(v) if v.len() <= 8 => {
                let mut shape = [0; 8];
                for (s, d) in shape.iter_mut().zip(v.iter()) {
                    *s = d;
                }
                Options::Reshape { new_shape: Some(shape), rank: v.len() }
            }
            _ => Options::Reshape { new_shape: None, rank: 0 },
        },
        None => Options::None,
        Some(_) => Options::Other,
    })
}
