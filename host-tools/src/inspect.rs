//! `mote inspect`: per-layer parameters, output shapes and MACs, and what the model costs on
//! a chip (arena for inference and for a training step, flash for the weights).

use crate::boards::{firmware_costs, BinaryCost, Board, BOARDS};
use crate::error::{CliError, CliResult};
use crate::model::{build, load, CliPlan};
use crate::say::Say;
use mote_core::model::{model_file_len, ModelSpec, FIRMWARE_NODES};
use mote_core::{Graph, Mode, BYTES_PER_VALUE};
use serde_json::json;
use std::path::Path;

/// Prints the report for `path` at `batch`; with `json`, the last stdout line is JSON.
pub fn run(path: &Path, batch: usize, json: bool) -> CliResult<()> {
    let say = Say::new(json);
    let loaded = load(path)?;
    let (g, built) = build(path, &loaded.spec, batch)?;
    let core = CliError::core(path);
    let infer = CliPlan::inference(&g, &[built.output], Mode::Eval).map_err(core)?;
    let train = CliPlan::training(&g, built.loss, &[], Some(loaded.train.optimizer())).map_err(core)?;
    let (im, tm) = (infer.memory(), train.memory());
    let mut rows = Vec::new();
    for (layer, &node) in loaded.spec.layers.iter().zip(&built.layers) {
        let params = g.op_params(node).map_err(core)?;
        let shape = g.shape(node).map_err(core)?;
        let macs = g.node_macs(node).map_err(core)?;
        let settings: Vec<(&str, String)> = layer.op.settings().map(|(s, v)| (s.key, v.to_string())).collect();
        rows.push((layer.name.to_string(), layer.op.name(), params, shape.dims().to_vec(), macs, settings));
    }
    let total_macs = infer.forward_macs(&g).map_err(core)?;
    let flash = g.params_len() * BYTES_PER_VALUE;
    say.line(format!("{} ({}), batch {batch}", loaded.spec.name, path.display()));
    say.line(format!("{:<16} {:<14} {:>9} {:<20} {:>12}  settings", "layer", "op", "params", "output", "MACs"));
    for (name, op, params, shape, macs, settings) in &rows {
        let settings: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let line = format!("{name:<16} {op:<14} {params:>9} {:<20} {macs:>12}  {}", format!("{shape:?}"), settings.join(" "));
        say.line(line.trim_end());
    }
    say.line(format!("total parameters: {}", g.trainable_params()));
    say.line(format!("total MACs per batch: {total_macs}"));
    say.line(format!("arena, inference: {} bytes (lower bound {})", im.arena_bytes, im.arena_lower_bound_bytes));
    say.line(format!(
        "arena, training step: {} bytes (lower bound {}), plus optimizer state {} bytes",
        tm.arena_bytes, tm.arena_lower_bound_bytes, tm.optimizer_bytes
    ));
    say.line(format!("flash for the weights: {flash} bytes"));
    let boards = board_fits(&loaded.spec);
    say.line("firmware on each board (infer / train binaries):");
    for (board, fits) in &boards {
        let verdict = match fits {
            Ok([infer, train]) => format!("infer {}, train {}", verdict(infer, board), verdict(train, board)),
            Err(e) => e.clone(),
        };
        say.line(format!("  {:<12} {verdict}", board.name));
    }
    if json {
        let boards: Vec<_> = boards
            .iter()
            .map(|(board, fits)| match fits {
                Ok(costs) => json!({
                    "board": board.name,
                    "binaries": costs.iter().map(|c| json!({"binary": c.binary, "flash_bytes": c.flash_bytes, "ram_bytes": c.ram_bytes, "fits": c.fits(board)})).collect::<Vec<_>>(),
                }),
                Err(e) => json!({"board": board.name, "error": e}),
            })
            .collect();
        let layers: Vec<_> = rows
            .iter()
            .map(|(name, op, params, shape, macs, settings)| {
                let settings: serde_json::Map<String, serde_json::Value> =
                    settings.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
                json!({"name": name, "op": op, "settings": settings, "params": params, "output_shape": shape, "macs": macs})
            })
            .collect();
        let report = json!({
            "name": loaded.spec.name.as_str(),
            "batch": batch,
            "layers": layers,
            "total_params": g.trainable_params(),
            "total_macs": total_macs,
            "arena_bytes": {
                "inference": im.arena_bytes,
                "inference_lower_bound": im.arena_lower_bound_bytes,
                "training": tm.arena_bytes,
                "training_lower_bound": tm.arena_lower_bound_bytes,
            },
            "optimizer_bytes": tm.optimizer_bytes,
            "flash_bytes": flash,
            "boards": boards,
        });
        println!("{report}");
    }
    Ok(())
}

/// For each board, the cost of the infer and train firmware with `spec`, or why the firmware
/// cannot hold it at all.
fn board_fits(spec: &ModelSpec) -> Vec<(&'static Board, Result<[BinaryCost; 2], String>)> {
    let costs = (|| -> Result<[BinaryCost; 2], String> {
        let mut g = Box::new(Graph::<FIRMWARE_NODES>::new());
        let built = spec.build(&mut g, 1).map_err(|e| format!("does not fit the firmware's graphs: {e}"))?;
        let file = model_file_len(spec, g.params_len()).map_err(|e| e.to_string())?;
        let [infer, train, _bench] = firmware_costs(&g, &built, file).map_err(|e| format!("does not fit the firmware's plans: {e}"))?;
        Ok([infer, train])
    })();
    BOARDS.iter().map(|b| (b, costs.clone())).collect()
}

/// "fits (… KB flash, … KB RAM)" or what is over.
fn verdict(c: &BinaryCost, board: &Board) -> String {
    let kb = |b: usize| b.div_ceil(1024);
    let (flash, ram) = (kb(c.flash_bytes), kb(c.ram_bytes));
    if c.fits(board) {
        format!("fits ({flash} KB flash, {ram} KB RAM)")
    } else {
        format!("does not fit ({flash} KB flash of {}, {ram} KB RAM of {})", board.flash_bytes >> 10, board.ram_bytes >> 10)
    }
}
