//! 64-bit Arm: the kernels, the core and the CLI cross-built for `aarch64-unknown-linux-gnu`
//! (Debian's `gcc-aarch64-linux-gnu` links) and run under `qemu-aarch64` (Debian `qemu-user`):
//! the unit and golden tests, then the CLI training with its Neon kernels against the
//! reference kernels in the same emulated run.

use crate::{apt_install, cargo_with_env, data::which, root};
use serde_json::Value;
use std::process::Command;

pub const TARGET: &str = "aarch64-unknown-linux-gnu";

/// The environment that makes cargo link with the cross gcc and run tests under QEMU.
fn env() -> [(&'static str, &'static str); 2] {
    [
        ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER", "aarch64-linux-gnu-gcc"),
        ("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER", "qemu-aarch64 -L /usr/aarch64-linux-gnu"),
    ]
}

/// Installs the cross linker and the user-mode emulator if missing.
pub fn ensure_tools() -> Result<(), String> {
    if which("aarch64-linux-gnu-gcc").is_none() || which("qemu-aarch64").is_none() {
        apt_install(&["gcc-aarch64-linux-gnu", "qemu-user"], "cross-building and running the aarch64 (Neon) tests")?;
    }
    Ok(())
}

/// The aarch64 tests.
pub fn test() -> Result<(), String> {
    ensure_tools()?;
    cargo_with_env(
        &["test", "--release", "-p", "mote-kernels", "--features", "std", "-p", "mote-core", "-p", "mote-tests", "--target", TARGET],
        &env(),
    )?;
    cargo_with_env(&["build", "--release", "-p", "mote-cli", "--target", TARGET], &env())?;
    let cli = root().join("target").join(TARGET).join("release/mote");
    let out = root().join("target/aarch64");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for model in ["mnist-mlp", "mnist-cnn"] {
        let mut runs = Vec::new();
        for kernels in ["reference", "neon"] {
            let file = out.join(format!("{model}-{kernels}.mote"));
            let output = Command::new("qemu-aarch64")
                .args(["-L", "/usr/aarch64-linux-gnu"])
                .arg(&cli)
                .args([
                    "train",
                    &format!("models/{model}.toml"),
                    "--data",
                    "data/mnist",
                    "--limit",
                    "1024",
                    "--epochs",
                    "1",
                    "--threads",
                    "1",
                    "--json",
                ])
                .arg("--out")
                .arg(&file)
                .env("MOTE_KERNELS", if kernels == "neon" { "auto" } else { kernels })
                .current_dir(root())
                .output()
                .map_err(|e| format!("cannot start qemu-aarch64: {e}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let report: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).map_err(|e| {
                format!("mote train {model} under qemu-aarch64 ({kernels}): no JSON ({e}): {}", String::from_utf8_lossy(&output.stderr))
            })?;
            runs.push((report["test_accuracy"].as_f64().unwrap_or(f64::NAN), report["train_seconds"].as_f64().unwrap_or(f64::NAN)));
        }
        let [(reference_accuracy, reference_seconds), (neon_accuracy, neon_seconds)] = runs[..] else { unreachable!() };
        println!(
            "aarch64 {model}: 1,024 samples, one epoch under qemu-aarch64: reference {reference_seconds:.2} s, Neon {neon_seconds:.2} s ({:.1}× the reference's speed in emulation); test accuracy {:.2}% / {:.2}%",
            reference_seconds / neon_seconds,
            100.0 * reference_accuracy,
            100.0 * neon_accuracy
        );
        // Other summation orders move a prediction or two, not more (a NaN fails too).
        let close = (reference_accuracy - neon_accuracy).abs() <= 0.02;
        if !close {
            return Err(format!("aarch64 {model}: Neon training reached {neon_accuracy}, the reference kernels {reference_accuracy}"));
        }
    }
    int8(&cli, &out)
}

/// int8 under emulation: MLPerf Tiny's models imported (on the host) and run by the aarch64 CLI
/// on 8 seeded random inputs with the reference kernels and with Neon's (SDOT where the
/// emulated CPU has it, else SMULL): the same bytes out, and the time of each.
fn int8(cli: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    for model in ["kws_ref_model", "pretrainedResnet_quant"] {
        let file = root().join(crate::qemu::import_mlperf(model)?);
        let loaded = mote_cli::quant::QuantFile::new(&std::fs::read(&file).map_err(|e| e.to_string())?)?;
        let input = loaded.model()?.input;
        let mut shape: Vec<usize> = input.dims().iter().map(|&d| d as usize).collect();
        shape[0] = 8;
        let values = crate::qemu::seeded_int8(shape.iter().product(), 0x9e37_79b9);
        let x = out.join(format!("{model}-inputs.npy"));
        mote_cli::run::write_npy_of(&x, &shape, &values).map_err(|e| e.to_string())?;
        let mut results = Vec::new();
        for kernels in ["reference", "neon"] {
            let y = out.join(format!("{model}-{kernels}.npy"));
            let start = std::time::Instant::now();
            let status = Command::new("qemu-aarch64")
                .args(["-L", "/usr/aarch64-linux-gnu"])
                .arg(cli)
                .args(["run", &file.to_string_lossy(), "--input", &x.to_string_lossy(), "--output", &y.to_string_lossy()])
                .env("MOTE_KERNELS", if kernels == "neon" { "auto" } else { kernels })
                .current_dir(root())
                .status()
                .map_err(|e| format!("cannot start qemu-aarch64: {e}"))?;
            if !status.success() {
                return Err(format!("mote run {model} under qemu-aarch64 ({kernels}) failed"));
            }
            results.push((std::fs::read(&y).map_err(|e| e.to_string())?, start.elapsed().as_secs_f64()));
        }
        let [(reference, reference_seconds), (neon, neon_seconds)] = &results[..] else { unreachable!() };
        if reference != neon {
            return Err(format!("aarch64 int8 {model}: Neon's outputs differ from the reference kernels'"));
        }
        println!(
            "aarch64 int8 {model}: 8 inputs under qemu-aarch64, the same bytes; reference {reference_seconds:.2} s, Neon {neon_seconds:.2} s ({:.1}× in emulation)",
            reference_seconds / neon_seconds
        );
    }
    Ok(())
}
