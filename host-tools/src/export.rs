//! `mote export`: checks a model file fits the firmware (graph and plan capacities) and the
//! board's flash and RAM, and writes it where the firmware build embeds it
//! (`firmware/model/model.mote`), reporting what each binary will cost on the chip.

use crate::boards::{self, firmware_costs, first_misfit};
use crate::checks;
use crate::error::{CliError, CliResult};
use crate::model::{load_model_with_notes, save_with_notes};
use mote_core::model::{model_file_len, FIRMWARE_NODES, FIRMWARE_STEPS};
use mote_core::Graph;
use std::path::Path;

/// Validates `model`, checks it fits the firmware's capacities and `board`'s memory (for the
/// infer and train binaries, or `only` one of them), and writes it to `out`; nothing is
/// written when it does not fit.
pub fn run(model: &Path, out: &Path, board: &str, only: Option<&str>) -> CliResult<()> {
    let board = boards::board(board).map_err(CliError::Usage)?;
    // The firmware's model folder is git-ignored: on a fresh clone it is made here.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(CliError::io(dir))?;
    }
    checks::writable_output(out, "--out", &[model])?;
    let bytes = std::fs::read(model).map_err(CliError::io(model))?;
    let (spec, params, notes) = load_model_with_notes(model, &bytes)?;
    let too_big = |e: &dyn std::fmt::Display| {
        CliError::invalid(
            model,
            format!("does not fit the firmware (graphs of {FIRMWARE_NODES} nodes, plans of {FIRMWARE_STEPS} steps): {e}"),
        )
    };
    let mut g = Box::new(Graph::<FIRMWARE_NODES>::new());
    let built = spec.build(&mut g, 1).map_err(|e| too_big(&e))?;
    let file_bytes = model_file_len(&spec, params.len()).map_err(|source| CliError::Model { path: model.into(), source })?;
    let costs = firmware_costs(&g, &built, file_bytes).map_err(|e| too_big(&e))?;
    if let Some(misfit) = first_misfit(&costs, board, only) {
        return Err(CliError::invalid(model, format!("does not fit {} ({}): {misfit}", board.name, board.about)));
    }
    let written = save_with_notes(out, &spec, &params, &notes)?;
    println!("exported {} to {} ({written} bytes, weights used in place from flash)", spec.name, out.display());
    println!("  on {} (estimated from the binaries' measured code and stack and the plans' arenas):", board.name);
    for c in costs {
        let note =
            if c.fits(board) { "" } else { "  does not fit: build the binaries you flash, e.g. `cargo build --release --bin infer`" };
        println!(
            "  {:<6} flash {:>5} KB of {} KB, RAM {:>4} KB of {} KB{note}",
            c.binary,
            c.flash_bytes.div_ceil(1024),
            board.flash_bytes >> 10,
            c.ram_bytes.div_ceil(1024),
            board.ram_bytes >> 10
        );
    }
    Ok(())
}
