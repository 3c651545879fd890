//! Loading what a command is given (a TOML spec or a model file), building its graph, and
//! saving model files without ever leaving a half-written one behind.

use crate::error::{CliError, CliResult};
use crate::notes::Notes;
use crate::spec_file::{read_spec_file, TrainConfig};
use mote_core::model::{model_file_len_with_notes, read_model, write_model_with_notes, BuiltModel, ModelSpec, SpecErrorKind, MAGIC};
use mote_core::Graph;
use std::path::Path;

/// Node capacity of the CLI's graphs.
pub const NODES: usize = 128;
/// Step capacity of the CLI's plans.
pub const STEPS: usize = 512;
/// The CLI's graph type.
pub type CliGraph = Graph<NODES>;
/// The CLI's plan type.
pub type CliPlan = mote_core::Plan<NODES, STEPS>;

/// A spec and its training defaults (the defaults when read from a model file), with the
/// model file's parameters.
pub struct Loaded {
    pub spec: ModelSpec,
    pub train: TrainConfig,
    /// A model file's parameters (`None` for a TOML spec).
    pub params: Option<Vec<f32>>,
    /// A model file's notes (kept when it is trained on).
    pub notes: Notes,
}

/// Reads a model file (it starts with `MOTE`) or a TOML spec.
pub fn load(path: &Path) -> CliResult<Loaded> {
    let bytes = std::fs::read(path).map_err(CliError::io(path))?;
    if bytes.starts_with(&MAGIC) || path.extension().is_some_and(|e| e == "mote") {
        let (spec, params, notes) = load_model_with_notes(path, &bytes)?;
        return Ok(Loaded { spec, train: TrainConfig::default(), params: Some(params), notes });
    }
    let file = read_spec_file(path)?;
    Ok(Loaded { spec: file.spec, train: file.train, params: None, notes: Notes::default() })
}

/// Decodes a model file and checks its parameters fit the graph its spec builds.
pub fn load_model_bytes(path: &Path, bytes: &[u8]) -> CliResult<(ModelSpec, Vec<f32>)> {
    load_model_with_notes(path, bytes).map(|(spec, params, _)| (spec, params))
}

/// [`load_model_bytes`] with the file's notes (read in the same pass).
pub fn load_model_with_notes(path: &Path, bytes: &[u8]) -> CliResult<(ModelSpec, Vec<f32>, Notes)> {
    let model = |source| CliError::Model { path: path.into(), source };
    let view = read_model(bytes).map_err(model)?;
    let (g, _) = build(path, &view.spec, 1)?;
    if g.params_len() != view.param_count() {
        let message = format!("the file holds {} parameter values but its spec needs {}", view.param_count(), g.params_len());
        return Err(CliError::invalid(path, message));
    }
    let mut params = vec![0.0; view.param_count()];
    view.copy_params(&mut params).map_err(model)?;
    if let Some(i) = crate::checks::first_non_finite(&params) {
        let bad = params.iter().filter(|v| !v.is_finite()).count();
        let message = format!("holds {bad} non-finite parameter values (the first at index {i}): the training that wrote it diverged");
        return Err(CliError::invalid(path, message));
    }
    let notes = Notes::from_bytes(view.notes);
    Ok((view.spec, params, notes))
}

/// Builds `spec` for `batch` samples.
pub fn build(path: &Path, spec: &ModelSpec, batch: usize) -> CliResult<(Box<CliGraph>, BuiltModel)> {
    let mut g = Box::new(CliGraph::new());
    let built = spec.build(&mut g, batch).map_err(|source| {
        // A 2-D input under an image op: the channel dimension is missing.
        let image_op = matches!(
            source.kind,
            SpecErrorKind::Graph(mote_core::Error::InvalidShape { op: "conv2d" | "maxpool2d" | "avgpool2d" | "global_avgpool", .. })
        );
        if image_op && spec.input.len() == 2 {
            let message = format!(
                "{source}; the input {:?} has no channel dimension: write input = [1, {}, {}]",
                spec.input, spec.input[0], spec.input[1]
            );
            return CliError::invalid(path, message);
        }
        CliError::Build { path: path.into(), source: Box::new(source) }
    })?;
    Ok((g, built))
}

/// Writes a model file to `path` through a temporary file and a rename, so an existing file
/// is replaced whole or not at all.
pub fn save(path: &Path, spec: &ModelSpec, params: &[f32]) -> CliResult<usize> {
    save_with_notes(path, spec, params, &Notes::default())
}

/// [`save`] with the host's `notes` about the model.
pub fn save_with_notes(path: &Path, spec: &ModelSpec, params: &[f32], notes: &Notes) -> CliResult<usize> {
    let model = |source| CliError::Model { path: path.into(), source };
    let notes = notes.to_bytes();
    let len = model_file_len_with_notes(spec, params.len(), notes.len()).map_err(model)?;
    let mut bytes = vec![0u8; len];
    let written = write_model_with_notes(spec, params, &notes, &mut bytes).map_err(model)?;
    bytes.truncate(written);
    write_atomically(path, &bytes)?;
    Ok(written)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let tmp = path.with_extension("mote.tmp");
    std::fs::write(&tmp, bytes).map_err(CliError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(CliError::io(path))
}
