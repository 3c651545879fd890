//! `mote train`: trains a spec (from scratch) or a model file (from its weights) on an IDX
//! data set with a progress bar, evaluates on the test split after each epoch, and writes the
//! model file.

use crate::checks;
use crate::dataset::{load_split, Split};
use crate::error::{CliError, CliResult};
use crate::eval::{predict_classes, score};
use crate::model::{build, save_with_notes};
use crate::notes::Notes;
use crate::say::Say;
use crate::spec_file::{Schedule, TrainConfig};
use indicatif::{ProgressBar, ProgressStyle};
use mote_core::model::ModelSpec;
use mote_core::{NodeKind, Rng};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use steps::Steps;

mod steps;

/// What `mote train` was asked to do.
pub struct TrainArgs {
    /// The spec file (for messages) and the model it describes.
    pub spec_path: PathBuf,
    pub spec: ModelSpec,
    pub data: PathBuf,
    pub out: PathBuf,
    pub config: TrainConfig,
    pub json: bool,
    pub plot: Option<PathBuf>,
    /// Train on at most this many samples, spread evenly over the set (for quick runs).
    pub limit: Option<usize>,
    /// Threads (data-parallel shards of each batch); see [`steps`].
    pub threads: usize,
    /// Refuse a model whose parameters, optimizer state and arena need more bytes.
    pub max_memory_bytes: usize,
    /// The weights to start from (a model file's: fine-tuning an imported or trained model);
    /// `None` initializes them.
    pub start: Option<Vec<f32>>,
    /// The notes of the model file trained from, kept in the one written.
    pub notes: Notes,
}

/// Per-epoch figures.
#[derive(Clone, Debug)]
pub struct Epoch {
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
}

/// Learning rate at `step` of `total`.
fn lr_at(c: &TrainConfig, step: usize, total: usize) -> f32 {
    match c.schedule {
        Schedule::Constant => c.lr,
        Schedule::Cosine => c.lr * 0.5 * (1.0 + (std::f32::consts::PI * step as f32 / total as f32).cos()),
    }
}

/// Trains and saves; returns the epochs' figures.
pub fn run(args: &TrainArgs) -> CliResult<Vec<Epoch>> {
    let c = &args.config;
    let spec = &args.spec;
    let say = Say::new(args.json);
    // Everything is checked before the first step: outputs, both splits against the model,
    // the batch, memory.
    checks::writable_output(&args.out, "--out", &[&args.spec_path])?;
    if let Some(plot) = &args.plot {
        checks::writable_output(plot, "--plot", &[&args.spec_path, &args.out])?;
    }
    let mut train = load_split(&args.data, "train")?;
    let test = load_split(&args.data, "t10k")?;
    if let Some(limit) = args.limit {
        train = evenly_spaced(&train, limit);
    }
    if train.len() < c.batch {
        return Err(CliError::Usage(format!("--batch {} is larger than the {} training samples", c.batch, train.len())));
    }
    let (mut g, built) = build(&args.spec_path, spec, c.batch)?;
    let core = CliError::core(&args.spec_path);
    let classes = g.shape(built.output).map_err(core)?.last();
    for split in [&train, &test] {
        checks::data_fits_model(&args.spec_path, &spec.input, classes, split)?;
    }
    let weights: Vec<_> = g.node_ids().filter(|&id| g.node(id).is_ok_and(|n| n.is_trainable() && n.shape.rank() >= 2)).collect();
    for w in weights {
        g.set_init(w, c.init)?;
    }
    let mut steps = Steps::new(&args.spec_path, spec, c.batch, args.threads, c.optimizer(), c.seed)?;
    let values = g.params_len().saturating_add(steps.values());
    checks::memory_fits(values, args.max_memory_bytes, "the parameters, optimizer state and training arenas")?;
    let mut params = vec![0.0; g.params_len()];
    match &args.start {
        Some(start) => params.copy_from_slice(start),
        None => g.init_params(&mut params, c.seed).map_err(core)?,
    }

    let steps_per_epoch = train.len() / c.batch;
    let total_steps = steps_per_epoch * c.epochs;
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng = Rng::new(c.seed);
    let mut epochs = Vec::new();
    let mut step_losses = Vec::with_capacity(total_steps);
    let mut train_time = 0.0;
    for epoch in 0..c.epochs {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let bar = progress(steps_per_epoch, epoch, c.epochs);
        let started = Instant::now();
        let (mut loss_sum, mut correct) = (0.0f64, 0usize);
        for (step, chunk) in order.chunks_exact(c.batch).enumerate() {
            let global = epoch * steps_per_epoch + step;
            let lr = lr_at(c, global, total_steps);
            let outcome = steps.step(&mut params, &train, chunk, lr, global as u32, c.seed).map_err(core)?;
            let loss = outcome.loss;
            if !loss.is_finite() {
                return Err(CliError::Diverged { epoch: epoch + 1, step: step + 1, loss, lr: c.lr });
            }
            loss_sum += loss as f64;
            step_losses.push(loss);
            correct += outcome.correct;
            let seen = (step + 1) * c.batch;
            bar.set_message(format!(
                "loss {:.4}  acc {:.2}%  {:.0} samples/s",
                loss_sum / (step + 1) as f64,
                100.0 * correct as f64 / seen as f64,
                seen as f64 / started.elapsed().as_secs_f64()
            ));
            bar.inc(1);
        }
        train_time += started.elapsed().as_secs_f64();
        // A finite loss can hide an overflowed weight: nothing non-finite is ever written.
        if checks::first_non_finite(&params).is_some() {
            return Err(CliError::Diverged { epoch: epoch + 1, step: steps_per_epoch, loss: f32::NAN, lr: c.lr });
        }
        let predictions = predict_classes(&g, &built, &params, &test)?;
        let test_accuracy = score(&predictions, &test.labels, classes).accuracy;
        let e = Epoch {
            train_loss: loss_sum / steps_per_epoch as f64,
            train_accuracy: correct as f64 / (steps_per_epoch * c.batch) as f64,
            test_accuracy,
        };
        bar.finish_and_clear();
        say.line(format!(
            "epoch {:>2}/{}: train loss {:.4}, train accuracy {:.2}%, test accuracy {:.2}%",
            epoch + 1,
            c.epochs,
            e.train_loss,
            100.0 * e.train_accuracy,
            100.0 * e.test_accuracy
        ));
        epochs.push(e);
    }
    let bytes = save_with_notes(&args.out, spec, &params, &args.notes)?;
    say.line(format!("wrote {} ({bytes} bytes)", args.out.display()));
    if let Some(path) = &args.plot {
        let title = format!("{} on {}", spec.name, args.data.display());
        crate::plot::training_png(path, &title, &step_losses, &epochs)?;
        say.line(format!("wrote {}", path.display()));
    }
    let samples = (steps_per_epoch * c.batch * c.epochs) as f64;
    let last = epochs.last().cloned().unwrap_or(Epoch { train_loss: f64::NAN, train_accuracy: 0.0, test_accuracy: 0.0 });
    say.line(format!(
        "trained {samples} samples in {train_time:.1} s ({:.0} samples/s, {} threads)",
        samples / train_time,
        steps.threads()
    ));
    if args.json {
        let report = json!({
            "model": spec.name.as_str(),
            "test_accuracy": last.test_accuracy,
            "train_seconds": train_time,
            "samples_per_second": samples / train_time,
            "threads": steps.threads(),
            "epochs": c.epochs,
            "final_train_loss": last.train_loss,
            "history": epochs.iter().map(|e| json!({"train_loss": e.train_loss, "train_accuracy": e.train_accuracy, "test_accuracy": e.test_accuracy})).collect::<Vec<_>>(),
            "params": g.nodes().iter().filter(|n| matches!(n.kind, NodeKind::Param { trainable: true, .. })).map(|n| n.shape.numel()).sum::<usize>(),
        });
        println!("{report}");
    }
    Ok(epochs)
}

fn progress(steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.set_prefix(format!("epoch {}/{}", epoch + 1, epochs));
    bar
}

/// At most `n` samples spread evenly over `split` (data sets are often sorted by class).
fn evenly_spaced(split: &Split, n: usize) -> Split {
    let n = n.min(split.len());
    let picks: Vec<usize> = (0..n).map(|i| i * split.len() / n).collect();
    Split {
        images: picks.iter().flat_map(|&i| split.image(i).iter().copied()).collect(),
        labels: picks.iter().map(|&i| split.labels[i]).collect(),
        rows: split.rows,
        cols: split.cols,
        images_path: split.images_path.clone(),
        labels_path: split.labels_path.clone(),
    }
}
