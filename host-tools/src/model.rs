//! Loading what a command is given (a TOML spec or a model file), building its graph, and
//! saving model files without ever leaving a half-written one behind.

use crate::spec_file::{read_spec_file, TrainConfig};
use mote_core::model::{model_file_len, read_model, write_model, BuiltModel, ModelSpec, MAGIC};
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

/// A spec and its training defaults (the defaults when read from a model file).
pub struct Loaded {
    pub spec: ModelSpec,
    pub train: TrainConfig,
}

/// Reads a model file (it starts with `MOTE`) or a TOML spec.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    if bytes.starts_with(&MAGIC) || path.extension().is_some_and(|e| e == "mote") {
        let (spec, _) = load_model_bytes(path, &bytes)?;
        return Ok(Loaded { spec, train: TrainConfig::default() });
    }
    let file = read_spec_file(path).map_err(|e| e.to_string())?;
    Ok(Loaded { spec: file.spec, train: file.train })
}

/// Decodes a model file and checks its parameters fit the graph its spec builds.
pub fn load_model_bytes(path: &Path, bytes: &[u8]) -> Result<(ModelSpec, Vec<f32>), String> {
    let view = read_model(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let (g, _) = build(path, &view.spec, 1)?;
    if g.params_len() != view.param_count() {
        return Err(format!(
            "{}: the file holds {} parameter values but its spec needs {}",
            path.display(),
            view.param_count(),
            g.params_len()
        ));
    }
    let mut params = vec![0.0; view.param_count()];
    view.copy_params(&mut params).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((view.spec, params))
}

/// Builds `spec` for `batch` samples.
pub fn build(path: &Path, spec: &ModelSpec, batch: usize) -> Result<(Box<CliGraph>, BuiltModel), String> {
    let mut g = Box::new(CliGraph::new());
    let built = spec.build(&mut g, batch).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((g, built))
}

/// Writes a model file to `path` through a temporary file and a rename, so an existing file
/// is replaced whole or not at all.
pub fn save(path: &Path, spec: &ModelSpec, params: &[f32]) -> Result<usize, String> {
    let len = model_file_len(spec, params.len()).map_err(|e| e.to_string())?;
    let mut bytes = vec![0u8; len];
    let written = write_model(spec, params, &mut bytes).map_err(|e| e.to_string())?;
    bytes.truncate(written);
    let tmp = path.with_extension("mote.tmp");
    std::fs::write(&tmp, &bytes).map_err(|e| format!("{}: cannot write: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok(written)
}
