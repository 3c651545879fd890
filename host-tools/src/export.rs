//! `mote export`: checks a model file and writes it where the firmware build embeds it
//! (`firmware/model/model.mote`), reporting what it will cost on the chip.

use crate::error::{CliError, CliResult};
use crate::model::{load_model_bytes, save};
use mote_core::model::{FIRMWARE_NODES, FIRMWARE_STEPS};
use mote_core::{Graph, Mode, Optimizer, Plan};
use std::path::Path;

/// Validates `model`, checks it fits the firmware's graph and plan capacities (the plans the
/// firmware build will make), and writes it to `out`.
pub fn run(model: &Path, out: &Path) -> CliResult<()> {
    let bytes = std::fs::read(model).map_err(CliError::io(model))?;
    let (spec, params) = load_model_bytes(model, &bytes)?;
    let too_big = |e: &dyn std::fmt::Display| {
        CliError::invalid(
            model,
            format!("does not fit the firmware (graphs of {FIRMWARE_NODES} nodes, plans of {FIRMWARE_STEPS} steps): {e}"),
        )
    };
    let mut g = Box::new(Graph::<FIRMWARE_NODES>::new());
    let built = spec.build(&mut g, 1).map_err(|e| too_big(&e))?;
    let infer = Plan::<FIRMWARE_NODES, FIRMWARE_STEPS>::inference(&g, &[built.output], Mode::Eval).map_err(|e| too_big(&e))?;
    let train = Plan::<FIRMWARE_NODES, FIRMWARE_STEPS>::training(&g, built.loss, &[], Some(Optimizer::momentum(0.003, 0.9)))
        .map_err(|e| too_big(&e))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(CliError::io(dir))?;
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
