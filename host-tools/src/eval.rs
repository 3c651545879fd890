//! `mote eval`: accuracy, per-class accuracy and the confusion matrix of a model file on a
//! data set's test split; also the batched prediction loop `mote train` evaluates with.

use crate::checks;
use crate::dataset::{load_split, Split};
use crate::error::{CliError, CliResult};
use crate::model::{build, load_model_bytes, CliGraph, CliPlan};
use crate::quant::{is_quant_file, QuantFile};
use crate::say::Say;
use mote_core::model::BuiltModel;
use mote_core::{argmax_f32, Executor, Mode};
use serde_json::json;
use std::path::Path;

/// Arg-max class of every sample of `split`, from an evaluation-mode forward pass in batches
/// of the graph's batch size (the last batch padded with zeros, its padding ignored).
pub fn predict_classes(g: &CliGraph, built: &BuiltModel, params: &[f32], split: &Split) -> CliResult<Vec<usize>> {
    let plan = CliPlan::inference(g, &[built.output], Mode::Eval)?;
    let mut arena = vec![0.0; plan.arena_len()];
    let mut ex = Executor::read_only(g, &plan, params, &mut arena)?;
    let x_shape = g.shape(built.x)?;
    let (batch, per) = (x_shape.dim(0), x_shape.per_sample());
    let classes = g.shape(built.output)?.last();
    let mut out = Vec::with_capacity(split.len());
    for start in (0..split.len()).step_by(batch) {
        let n = batch.min(split.len() - start);
        let input = ex.input_mut(built.x)?;
        input.fill(0.0);
        input[..n * per].copy_from_slice(&split.images[start * per..(start + n) * per]);
        ex.run()?;
        let logits = ex.value(built.output)?;
        out.extend(logits.chunks_exact(classes).take(n).map(argmax_f32));
    }
    Ok(out)
}

/// Arg-max class of every sample of `split` by the int8 model `file` (each image quantized
/// with the model's input scale and zero point; the first of equal outputs wins).
pub fn predict_classes_int8(file: &QuantFile, split: &Split) -> Result<Vec<usize>, String> {
    let model = file.model()?;
    let mut arena = vec![0i8; model.arena_len()];
    let mut input = vec![0i8; model.input.numel()];
    let mut out = Vec::with_capacity(split.len());
    for i in 0..split.len() {
        for (o, &v) in input.iter_mut().zip(split.image(i)) {
            *o = model.input.quant.quantize(v);
        }
        let y = model.run(&mut arena, &input).map_err(|e| e.to_string())?;
        out.push(argmax_i8(y));
    }
    Ok(out)
}

/// The index of the largest of `values` (the first of equal ones).
pub fn argmax_i8(values: &[i8]) -> usize {
    values.iter().enumerate().fold(0, |best, (k, &v)| if v > values[best] { k } else { best })
}

/// Accuracy, per-class accuracy and confusion matrix (`[true][predicted]`).
pub struct Scores {
    pub accuracy: f64,
    pub per_class: Vec<f64>,
    pub confusion: Vec<Vec<usize>>,
}

/// Scores `predictions` against `labels` over `classes` classes.
pub fn score(predictions: &[usize], labels: &[u8], classes: usize) -> Scores {
    let mut confusion = vec![vec![0usize; classes]; classes];
    for (&p, &l) in predictions.iter().zip(labels) {
        if (l as usize) < classes && p < classes {
            confusion[l as usize][p] += 1;
        }
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class = confusion.iter().enumerate().map(|(c, row)| row[c] as f64 / row.iter().sum::<usize>().max(1) as f64).collect();
    Scores { accuracy: correct as f64 / predictions.len().max(1) as f64, per_class, confusion }
}

/// `mote eval MODEL --data DIR`.
pub fn run(model_path: &Path, data: &Path, json: bool, plot: Option<&Path>) -> CliResult<()> {
    let say = Say::new(json);
    if let Some(path) = plot {
        checks::writable_output(path, "--plot", &[model_path])?;
    }
    let bytes = std::fs::read(model_path).map_err(CliError::io(model_path))?;
    let test = load_split(data, "t10k")?;
    let (name, classes, predictions) = if is_quant_file(&bytes) {
        let file = QuantFile::new(&bytes).map_err(|m| CliError::invalid(model_path, m))?;
        let model = file.model().map_err(|m| CliError::invalid(model_path, m))?;
        let classes = model.output.numel();
        checks::data_fits_model(model_path, model.input.dims(), classes, &test)?;
        let predictions = predict_classes_int8(&file, &test).map_err(|m| CliError::invalid(model_path, m))?;
        (format!("{} (int8)", model.name), classes, predictions)
    } else {
        let (spec, params) = load_model_bytes(model_path, &bytes)?;
        let (g, built) = build(model_path, &spec, 100)?;
        let classes = g.shape(built.output)?.last();
        checks::data_fits_model(model_path, &spec.input, classes, &test)?;
        (spec.name.to_string(), classes, predict_classes(&g, &built, &params, &test)?)
    };
    let s = score(&predictions, &test.labels, classes);
    say.line(format!("{name}: accuracy {:.2}% on {} test samples", 100.0 * s.accuracy, test.len()));
    say.line(format!(
        "per class: {}",
        s.per_class.iter().enumerate().map(|(c, a)| format!("{c}: {:.1}%", 100.0 * a)).collect::<Vec<_>>().join("  ")
    ));
    say.line("confusion matrix (rows: true class, columns: predicted):");
    for (c, row) in s.confusion.iter().enumerate() {
        say.line(format!("{c:>3} |{}", row.iter().map(|n| format!("{n:>6}")).collect::<String>()));
    }
    if let Some(path) = plot {
        crate::plot::confusion_png(path, &format!("{name} on {}", data.display()), &s.confusion, s.accuracy)?;
        say.line(format!("wrote {}", path.display()));
    }
    if json {
        let report = json!({
            "accuracy": s.accuracy,
            "samples": test.len(),
            "per_class_accuracy": s.per_class,
            "confusion": s.confusion,
            "predictions": predictions,
        });
        println!("{report}");
    }
    Ok(())
}
