//! `mote import`: converts an ONNX or TFLite model into a mote model file (spec and
//! parameters). Every source node maps to mote layers through the op table; a model with any
//! unsupported node is refused with the full list of them, and nothing is written.

pub mod builder;
pub mod onnx;
pub mod tensor;
pub mod tflite;

use crate::error::{CliError, CliResult};
use crate::model::save_with_notes;
use crate::notes::Notes;
use crate::say::Say;
use builder::Mapped;
use mote_core::model::ModelSpec;
use serde_json::json;
use std::fmt;
use std::path::Path;

/// Why one source node did not convert.
pub(crate) enum Skip {
    /// The node itself is not supported: reported.
    Unsupported(String),
    /// An input comes from a node that did not convert: not reported again.
    Upstream,
}

impl From<String> for Skip {
    fn from(what: String) -> Skip {
        Skip::Unsupported(what)
    }
}

/// One node mote cannot convert.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsupported {
    /// The node's name (or its index when it has none).
    pub node: String,
    /// Its op type (ONNX) or builtin operator (TFLite).
    pub op: String,
    /// The opset (ONNX) or operator version (TFLite).
    pub version: String,
    /// What about it is not supported.
    pub what: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node `{}` ({} {}): {}", self.node, self.op, self.version, self.what)
    }
}

/// Why a model does not import.
#[derive(Debug, PartialEq)]
pub enum ImportError {
    /// The file is not a model of the format (truncated, corrupted, another format).
    Decode(String),
    /// The model is well formed but uses what mote does not support (every such node).
    Unsupported(Vec<Unsupported>),
    /// The model is well formed but not one mote can hold (no inputs, several outputs, …).
    Model(String),
}

impl fmt::Display for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dims: Vec<String> = self.shape.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
        write!(f, "`{}` [{}]", self.name, dims.join(", "))
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Decode(m) => write!(f, "does not decode: {m}"),
            ImportError::Model(m) => write!(f, "{m}"),
            ImportError::Unsupported(list) => {
                write!(f, "{} unsupported node(s), nothing written:", list.len())?;
                list.iter().try_for_each(|u| write!(f, "\n  {u}"))
            }
        }
    }
}

impl std::error::Error for ImportError {}

/// A model input or output as the source declares it.
#[derive(Clone, Debug, PartialEq)]
pub struct Io {
    /// The source's name.
    pub name: String,
    /// Its shape; `None` for a dynamic dimension.
    pub shape: Vec<Option<usize>>,
}

/// A converted model.
#[derive(Debug)]
pub struct Imported {
    pub spec: ModelSpec,
    pub params: Vec<f32>,
    pub mapping: Vec<Mapped>,
    pub inputs: Vec<Io>,
    pub outputs: Vec<Io>,
}

/// The source formats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Format {
    Onnx,
    Tflite,
}

/// The format of `bytes` read from `path`: by extension.
pub fn format_of(path: &Path) -> Option<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("onnx") => Some(Format::Onnx),
        Some("tflite") => Some(Format::Tflite),
        _ => None,
    }
}

/// Converts the model in `bytes` (named `name` in the spec).
pub fn convert(format: Format, bytes: &[u8], name: &str) -> Result<Imported, ImportError> {
    match format {
        Format::Onnx => onnx::convert(bytes, name),
        Format::Tflite => tflite::convert(bytes, name),
    }
}

/// `s` cut to its last `n` characters (TFLite names run long).
fn short(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    let tail: String = s.chars().skip(count - (n - 1)).collect();
    format!("…{tail}")
}

/// `mote import MODEL --out FILE`.
pub fn import(path: &Path, out: &Path, json: bool) -> CliResult<()> {
    let say = Say::new(json);
    crate::checks::writable_output(out, "--out", &[path])?;
    let format = format_of(path)
        .ok_or_else(|| CliError::invalid(path, "not a model mote imports: give a .onnx file (ONNX) or a .tflite file (TFLite)"))?;
    let bytes = std::fs::read(path).map_err(CliError::io(path))?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("imported");
    if format == Format::Tflite && tflite::int8::is_int8(&bytes) {
        return import_int8(path, &bytes, name, out, &say, json);
    }
    let imported = convert(format, &bytes, name).map_err(|e| CliError::invalid(path, e.to_string()))?;
    let notes = Notes {
        inputs: imported.inputs.iter().map(|i| i.name.clone()).collect(),
        outputs: imported.outputs.iter().map(|o| o.name.clone()).collect(),
    };
    let written = save_with_notes(out, &imported.spec, &imported.params, &notes)?;
    for m in &imported.mapping {
        say.line(format!(
            "{:<40} → {:<20} {:<18} {:>16} {:>8} params",
            short(&m.source, 40),
            m.layer,
            m.op,
            format!("{:?}", m.shape),
            m.params
        ));
    }
    let describe = |io: &[Io]| io.iter().map(Io::to_string).collect::<Vec<_>>().join(", ");
    say.line(format!("inputs {}; outputs {}", describe(&imported.inputs), describe(&imported.outputs)));
    say.line(format!(
        "{} layers, {} parameters: wrote {} ({written} bytes)",
        imported.spec.layers.len(),
        imported.params.len(),
        out.display()
    ));
    if json {
        let layers: Vec<_> = imported
            .mapping
            .iter()
            .map(|m| json!({"source": m.source, "layer": m.layer, "op": m.op, "shape": m.shape, "params": m.params}))
            .collect();
        let io = |io: &[Io]| io.iter().map(|i| json!({"name": i.name, "shape": i.shape})).collect::<Vec<_>>();
        println!(
            "{}",
            json!({"model": out, "bytes": written, "layers": layers, "inputs": io(&imported.inputs), "outputs": io(&imported.outputs)})
        );
    }
    Ok(())
}

/// `mote import` of an int8 TFLite model: an int8 model file, its steps listed.
fn import_int8(path: &Path, bytes: &[u8], name: &str, out: &Path, say: &Say, json: bool) -> CliResult<()> {
    let (file, [input, output]) = tflite::int8::convert(bytes, name).map_err(|m| CliError::invalid(path, m))?;
    let notes = Notes { inputs: vec![input], outputs: vec![output] };
    let file = crate::quant::with_notes(&file, &notes.to_bytes()).map_err(|m| CliError::invalid(path, m))?;
    let loaded = crate::quant::QuantFile::new(&file).map_err(|m| CliError::invalid(path, m))?;
    let model = loaded.model().map_err(|m| CliError::invalid(path, m))?;
    crate::model::write_atomically(out, &file)?;
    let steps = crate::inspect::int8_steps(&model);
    for s in &steps {
        say.line(format!("{:<3} {:<16} {:>20} {:>10} MACs", s.index, s.op, format!("{:?}", s.shape), s.work));
    }
    say.line(format!(
        "int8 model: input `{}` {:?}, output `{}` {:?}; {} steps, arena {} bytes: wrote {} ({} bytes)",
        notes.inputs[0],
        model.input.dims(),
        notes.outputs[0],
        model.output.dims(),
        steps.len(),
        model.arena_len(),
        out.display(),
        file.len()
    ));
    if json {
        let layers: Vec<_> = steps.iter().map(|s| json!({"op": s.op, "shape": s.shape, "macs": s.work})).collect();
        println!(
            "{}",
            json!({"model": out, "bytes": file.len(), "int8": true, "arena_bytes": model.arena_len(), "layers": layers,
                   "inputs": [{"name": notes.inputs[0], "shape": model.input.dims()}],
                   "outputs": [{"name": notes.outputs[0], "shape": model.output.dims()}]})
        );
    }
    Ok(())
}
