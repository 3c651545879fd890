//! `mote`: the host CLI. Inspect a model spec or file, train on IDX data, evaluate, predict,
//! export for the firmware. Help on stdout, errors on stderr with a non-zero status; with
//! `--json`, stdout holds only the JSON report.

use clap::{Parser, Subcommand};
use mote_cli::error::{CliError, CliResult};
use mote_cli::spec_file::{self, at_least_one, learning_rate, OptimizerKind};
use mote_cli::{eval, export, import, inspect, model, predict, quantize, run, train};
use mote_kernels::dispatch::{self, Isa};
use std::path::PathBuf;
use std::process::ExitCode;

/// Trains, evaluates, inspects and exports small neural networks for microcontrollers.
///
/// Kernels: MOTE_KERNELS=auto (default: AVX-512F or AVX2+FMA where the CPU has them, Neon on
/// aarch64), reference (the scalar kernels the Cortex-M4 runs, bit for bit), avx2, avx512 or neon.
#[derive(Parser)]
#[command(name = "mote", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per-layer settings, parameters, output shapes and MACs of a spec or model file; arena,
    /// optimizer state and flash for a chip.
    Inspect {
        /// A TOML spec or a .mote model file.
        path: PathBuf,
        /// Samples per batch the figures are for.
        #[arg(long, default_value_t = 1, value_parser = at_least_one)]
        batch: usize,
        /// Print only a JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Trains a spec on IDX data and writes a model file.
    Train(TrainFlags),
    /// Accuracy, per-class accuracy and confusion matrix of a model file on the test split.
    Eval {
        /// A .mote model file.
        model: PathBuf,
        /// Directory with t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (raw or .gz).
        #[arg(long)]
        data: PathBuf,
        /// Print only a JSON report on stdout.
        #[arg(long)]
        json: bool,
        /// Also draw the confusion matrix as a PNG.
        #[arg(long, value_name = "FILE.png")]
        plot: Option<PathBuf>,
    },
    /// Classifies PNG or PGM images (any size or color, converted to the model's gray input).
    Predict {
        /// A .mote model file.
        model: PathBuf,
        /// The images.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Print only a JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Converts an ONNX or float32 TFLite model into a mote model file, printing the layer
    /// mapping; lists every unsupported node at once and writes nothing if there is one.
    Import {
        /// A .onnx or .tflite model.
        model: PathBuf,
        /// The .mote model file to write.
        #[arg(long)]
        out: PathBuf,
        /// Print only a JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Inference on NumPy .npy tensors: the model's inputs (`input` [N, …], then an imported
    /// model's further inputs) float32 in, its output [N, …] float32 out.
    Run {
        /// A .mote model file.
        model: PathBuf,
        /// A tensor for each model input, in order (C order, float32); the first takes any
        /// batch size N ≥ 1.
        #[arg(long, required = true)]
        input: Vec<PathBuf>,
        /// Where to write the output tensor.
        #[arg(long)]
        output: PathBuf,
        /// Print only a JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Batch-1 inference latency of a model file on this host (one thread, seeded inputs).
    Bench {
        /// A .mote model file.
        model: PathBuf,
        /// Timed inferences (after 200 untimed ones).
        #[arg(long, default_value_t = 5000, value_parser = at_least_one)]
        runs: usize,
        /// Print only a JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Post-training int8 quantization: calibrates activation ranges on training samples,
    /// quantizes weights per output channel, writes an int8 model file.
    Quantize {
        /// An f32 .mote model file.
        model: PathBuf,
        /// Directory with train-* IDX files (raw or .gz): the calibration samples.
        #[arg(long)]
        data: PathBuf,
        /// The int8 model file to write (replaced whole, or left as it was).
        #[arg(long)]
        out: PathBuf,
        /// Calibration samples, spread evenly over the training split.
        #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
        calibration: usize,
        /// Print only a JSON report on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Checks a model file fits the firmware and writes it where the firmware build embeds it.
    Export {
        /// A .mote model file.
        model: PathBuf,
        /// Where to write it.
        #[arg(long, default_value = "firmware/model/model.mote")]
        out: PathBuf,
        /// The board whose flash and RAM it must fit: mps2-an386 (the emulated M4), nrf52840,
        /// stm32f429zi, stm32f411re or stm32f401re.
        #[arg(long, default_value = "mps2-an386")]
        board: String,
        /// Check only this binary (infer or train) against the board, for a build of that
        /// binary alone (`cargo build --release --bin infer`).
        #[arg(long, value_parser = ["infer", "train"])]
        only: Option<String>,
    },
}

/// `mote train`'s flags; those left out come from the spec's `[train]` table.
#[derive(clap::Args)]
struct TrainFlags {
    /// The TOML spec (trained from scratch), or a .mote model file (trained from its weights,
    /// e.g. an imported model; its settings are the defaults below).
    spec: PathBuf,
    /// Directory with train-* and t10k-* IDX files (raw or .gz).
    #[arg(long)]
    data: PathBuf,
    /// The model file to write (replaced whole, or left as it was).
    #[arg(long)]
    out: PathBuf,
    /// Passes over the training set [spec's [train], else 10].
    #[arg(long, value_parser = at_least_one)]
    epochs: Option<usize>,
    /// Samples per step [spec's [train], else 64].
    #[arg(long, value_parser = at_least_one)]
    batch: Option<usize>,
    /// Learning rate, finite and > 0 [spec's [train], else 0.001].
    #[arg(long, value_parser = learning_rate, allow_hyphen_values = true)]
    lr: Option<f32>,
    /// sgd, momentum, nesterov, adam or adamw [spec's [train], else adam].
    #[arg(long, value_parser = optimizer)]
    optimizer: Option<OptimizerKind>,
    /// Seed of the initialization and the shuffling [spec's [train], else 0].
    #[arg(long)]
    seed: Option<u64>,
    /// Train on at most this many samples, spread evenly over the set.
    #[arg(long, value_parser = at_least_one)]
    limit: Option<usize>,
    /// Threads: each step's batch is split into this many shards computed in parallel
    /// [all cores]. Results depend on the count only through float summation order.
    #[arg(long, value_parser = at_least_one)]
    threads: Option<usize>,
    /// Print only a JSON report on stdout.
    #[arg(long)]
    json: bool,
    /// Also draw the loss and accuracy curves as a PNG.
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
    /// Refuse a model whose parameters, optimizer state and arena need more memory than this.
    #[arg(long, default_value_t = 4096, value_name = "MB", value_parser = at_least_one)]
    max_memory_mb: usize,
}

fn optimizer(s: &str) -> Result<OptimizerKind, String> {
    spec_file::parse_optimizer(s)
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    match select_kernels().and_then(|()| run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mote: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A closed pipe (`mote eval … | head -1`) ends the program quietly, as for other Unix tools,
/// instead of a panic in `println!`.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread starts; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Makes the kernels `MOTE_KERNELS` names (default: the fastest this CPU runs) the active ones.
fn select_kernels() -> CliResult<()> {
    let isa = match std::env::var("MOTE_KERNELS").as_deref() {
        Err(_) | Ok("auto") => Isa::detect(),
        Ok("reference") => Isa::Reference,
        Ok("avx2") => Isa::Avx2Fma,
        Ok("avx512") => Isa::Avx512,
        Ok("neon") => Isa::Neon,
        Ok(other) => return Err(CliError::Usage(format!("MOTE_KERNELS=`{other}`: expected auto, reference, avx2, avx512 or neon"))),
    };
    Ok(dispatch::select(isa)?)
}

fn run(command: Command) -> CliResult<()> {
    match command {
        Command::Inspect { path, batch, json } => inspect::run(&path, batch, json),
        Command::Train(f) => {
            let file = model::load(&f.spec)?;
            let (start, notes) = (file.params, file.notes);
            let mut config = file.train;
            config.epochs = f.epochs.unwrap_or(config.epochs);
            config.batch = f.batch.unwrap_or(config.batch);
            config.lr = f.lr.unwrap_or(config.lr);
            config.seed = f.seed.unwrap_or(config.seed);
            config.optimizer = f.optimizer.unwrap_or(config.optimizer);
            let args = train::TrainArgs {
                spec_path: f.spec,
                spec: file.spec,
                data: f.data,
                out: f.out,
                config,
                json: f.json,
                plot: f.plot,
                limit: f.limit,
                threads: f.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
                max_memory_bytes: f.max_memory_mb.saturating_mul(1 << 20),
                start,
                notes,
            };
            train::run(&args).map(|_| ())
        }
        Command::Eval { model, data, json, plot } => eval::run(&model, &data, json, plot.as_deref()),
        Command::Predict { model, images, json } => predict::run(&model, &images, json),
        Command::Import { model, out, json } => import::import(&model, &out, json),
        Command::Run { model, input, output, json } => run::run(&model, &input, &output, json),
        Command::Bench { model, runs, json } => mote_cli::bench::run(&model, runs, json),
        Command::Quantize { model, data, out, calibration, json } => quantize::run(&model, &data, &out, calibration, json),
        Command::Export { model, out, board, only } => export::run(&model, &out, &board, only.as_deref()),
    }
}
