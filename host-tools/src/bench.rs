//! `mote bench`: batch-1 inference latency of a model file on this host, one sample at a
//! time on one thread (the figure ONNX Runtime's single-threaded session is compared with).

use crate::error::{CliError, CliResult};
use crate::model::{build, load_model_with_notes, CliPlan};
use crate::run::{input_nodes, model_inputs};
use crate::say::Say;
use mote_core::{Executor, Mode, Rng};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// Untimed runs before the timed ones (caches, branch predictors, CPU clock).
const WARM_UP: usize = 200;

/// Times `runs` batch-1 inferences of the model file at `path` on seeded inputs in [0, 1);
/// prints the median, mean and fastest latency in microseconds.
pub fn run(path: &Path, runs: usize, json: bool) -> CliResult<()> {
    let say = Say::new(json);
    let bytes = std::fs::read(path).map_err(CliError::io(path))?;
    let (spec, params, _) = load_model_with_notes(path, &bytes)?;
    let (g, built) = build(path, &spec, 1)?;
    let core = CliError::core(path);
    let plan = CliPlan::inference(&g, &[built.output], Mode::Eval).map_err(core)?;
    let mut arena = vec![0.0; plan.arena_len()];
    let mut ex = Executor::read_only(&g, &plan, &params, &mut arena).map_err(core)?;
    let mut rng = Rng::new(1);
    let nodes = input_nodes(&spec, &built);
    let inputs: Vec<Vec<f32>> =
        model_inputs(&spec).iter().map(|i| (0..i.shape.iter().product::<usize>()).map(|_| rng.uniform()).collect()).collect();
    let mut micros = Vec::with_capacity(runs);
    for k in 0..WARM_UP + runs {
        let started = Instant::now();
        for (&node, values) in nodes.iter().zip(&inputs) {
            ex.set_input(node, values).map_err(core)?;
        }
        ex.run_inference().map_err(core)?;
        std::hint::black_box(ex.value(built.output).map_err(core)?);
        if k >= WARM_UP {
            micros.push(started.elapsed().as_secs_f64() * 1e6);
        }
    }
    micros.sort_by(f64::total_cmp);
    let (median, min) = (micros[micros.len() / 2], micros[0]);
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    let kernels = format!("{:?}", mote_kernels::dispatch::active());
    say.line(format!("{}: batch-1 inference {median:.2} µs median, {mean:.2} µs mean, {min:.2} µs fastest over {runs} runs ({kernels} kernels, one thread)", spec.name));
    if json {
        println!(
            "{}",
            json!({"model": spec.name.as_str(), "runs": runs, "median_us": median, "mean_us": mean, "min_us": min, "kernels": kernels})
        );
    }
    Ok(())
}
