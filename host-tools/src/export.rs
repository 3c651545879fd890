//! `mote export`: checks a model file and writes it where the firmware build embeds it
//! (`firmware/model/model.mote`), reporting what it will cost on the chip.

use crate::model::{build, load_model_bytes, save, CliPlan};
use mote_core::{Mode, Optimizer};
use std::path::Path;

/// Validates `model` and writes it to `out`.
pub fn run(model: &Path, out: &Path) -> Result<(), String> {
    let bytes = std::fs::read(model).map_err(|e| format!("{}: cannot read: {e}", model.display()))?;
    let (spec, params) = load_model_bytes(model, &bytes)?;
    let (g, built) = build(model, &spec, 1)?;
    let core = |e: mote_core::Error| format!("{}: {e}", model.display());
    let infer = CliPlan::inference(&g, &[built.output], Mode::Eval).map_err(core)?;
    let train = CliPlan::training(&g, built.loss, &[], Some(Optimizer::momentum(0.003, 0.9))).map_err(core)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let written = save(out, &spec, &params)?;
    println!("exported {} to {} ({written} bytes, weights used in place from flash)", spec.name, out.display());
    println!(
        "  inference arena {} bytes; training arena {} bytes + params {} + momentum {}",
        infer.memory().arena_bytes,
        train.memory().arena_bytes,
        train.memory().params_bytes,
        train.memory().optimizer_bytes
    );
    Ok(())
}
