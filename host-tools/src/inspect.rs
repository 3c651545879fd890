//! `mote inspect`: per-layer parameters, output shapes and MACs, and what the model costs on
//! a chip (arena for inference and for a training step, flash for the weights).

use crate::boards::{firmware_costs, BinaryCost, Board, BOARDS};
use crate::error::{CliError, CliResult};
use crate::model::{build, load, CliPlan};
use crate::quant::{is_quant_file, QuantFile};
use crate::say::Say;
use mote_core::model::{model_file_len, ModelSpec, FIRMWARE_NODES};
use mote_core::quant::{QLayer, QuantModel};
use mote_core::{Graph, Mode, BYTES_PER_VALUE};
use serde_json::json;
use std::path::Path;

/// One step of an int8 model, as reported.
pub struct StepRow {
    pub index: usize,
    pub op: &'static str,
    pub shape: Vec<u32>,
    /// Multiply-accumulates (other value operations for the other steps).
    pub work: u64,
}

/// The steps of an int8 model.
pub fn int8_steps(model: &QuantModel) -> Vec<StepRow> {
    let mut numel = vec![model.input.numel()];
    let mut rows = Vec::new();
    for (index, step) in model.steps().enumerate() {
        let op = match step.layer {
            QLayer::Conv { depthwise: true, .. } => "depthwise_conv",
            QLayer::Conv { pool: Some(_), .. } => "conv+maxpool",
            QLayer::Conv { .. } => "conv",
            QLayer::FullyConnected { .. } => "fully_connected",
            QLayer::AvgPool { .. } => "avgpool",
            QLayer::MaxPool { .. } => "maxpool",
            QLayer::Add { .. } => "add",
            QLayer::Softmax { .. } => "softmax",
            QLayer::Reshape => "reshape",
            QLayer::Residual(block) if block.shortcut.is_some() => "residual+conv",
            QLayer::Residual(_) => "residual",
        };
        let work = step.work(numel[step.input as usize], step.output.numel());
        numel.push(step.output.numel());
        rows.push(StepRow { index, op, shape: step.output.dims().to_vec(), work });
    }
    rows
}

/// `mote inspect` of an int8 model file.
fn run_int8(path: &Path, bytes: &[u8], json: bool) -> CliResult<()> {
    let say = Say::new(json);
    let file = QuantFile::new(bytes).map_err(|m| CliError::invalid(path, m))?;
    let model = file.model().map_err(|m| CliError::invalid(path, m))?;
    let rows = int8_steps(&model);
    say.line(format!(
        "{} ({}), int8, input {:?} (scale {}, zero point {})",
        model.name,
        path.display(),
        model.input.dims(),
        model.input.quant.scale,
        model.input.quant.zero_point
    ));
    say.line(format!("{:<5} {:<16} {:<20} {:>12}", "step", "op", "output", "MACs"));
    for r in &rows {
        say.line(format!("{:<5} {:<16} {:<20} {:>12}", r.index, r.op, format!("{:?}", r.shape), r.work));
    }
    let macs: u64 =
        rows.iter().filter(|r| r.op.contains("conv") || r.op.starts_with("residual") || r.op == "fully_connected").map(|r| r.work).sum();
    say.line(format!("total MACs: {macs}"));
    say.line(format!("arena: {} bytes (every tensor, the input's included)", model.arena_len()));
    say.line(format!("flash for the model file: {} bytes", bytes.len()));
    if json {
        let steps: Vec<_> = rows.iter().map(|r| json!({"op": r.op, "output_shape": r.shape, "macs": r.work})).collect();
        println!(
            "{}",
            json!({"name": model.name.as_str(), "int8": true, "steps": steps, "total_macs": macs, "arena_bytes": model.arena_len(), "flash_bytes": bytes.len()})
        );
    }
    Ok(())
}

/// Prints the report for `path` at `batch`; with `json`, the last stdout line is JSON.
pub fn run(path: &Path, batch: usize, json: bool) -> CliResult<()> {
    let bytes = std::fs::read(path).map_err(CliError::io(path))?;
    if is_quant_file(&bytes) {
        return run_int8(path, &bytes, json);
    }
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
