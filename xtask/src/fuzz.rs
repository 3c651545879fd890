//! `cargo xtask fuzz`: runs every fuzz target of `fuzz/` with cargo fuzz (libFuzzer, on a
//! nightly toolchain, both installed when missing) for a number of executions each, from the
//! seeds in `fuzz/seeds/` plus plan and graph bytes made with today's format.

use crate::{root, run};
use std::process::Command;

/// The fuzz targets (`fuzz/fuzz_targets/*.rs`).
pub const TARGETS: &[&str] =
    &["model_bytes", "plan_bytes", "graph_bytes", "spec_toml", "idx", "image", "npy", "onnx", "tflite", "quant_model"];

/// Installs nightly and cargo-fuzz if missing, then runs `runs` executions of each target;
/// returns (target, executions) as libFuzzer reported them.
pub fn fuzz(runs: usize) -> Result<Vec<(String, u64)>, String> {
    ensure_nightly_and_cargo_fuzz()?;
    seed_corpus()?;
    let mut done = Vec::new();
    for target in TARGETS {
        let corpus = root().join("target/fuzz-corpus").join(target);
        let corpus = corpus.to_string_lossy();
        let args = ["+nightly", "fuzz", "run", "-O", target, &corpus, "--", &format!("-runs={runs}"), "-max_len=65536", "-timeout=10"];
        eprintln!("$ cargo {}", args.join(" "));
        let out = Command::new("cargo").args(args).current_dir(root()).output().map_err(|e| format!("cargo fuzz: {e}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            return Err(format!("fuzz target {target} failed:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
        }
        let executed = log.lines().filter_map(|l| l.strip_prefix("Done ")?.split(' ').next()?.parse::<u64>().ok()).next_back().unwrap_or(0);
        eprintln!("fuzz {target}: {executed} executions, no crash");
        done.push((target.to_string(), executed));
    }
    Ok(done)
}

fn ensure_nightly_and_cargo_fuzz() -> Result<(), String> {
    let has_nightly = Command::new("rustup").args(["run", "nightly", "rustc", "--version"]).output().is_ok_and(|o| o.status.success());
    if !has_nightly {
        run("rustup", &["toolchain", "install", "nightly", "--profile", "minimal"])?;
    }
    let has_fuzz = Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !has_fuzz {
        run("cargo", &["install", "cargo-fuzz", "--locked"])?;
    }
    Ok(())
}

/// `target/fuzz-corpus/<target>/`: the committed seeds, and plan and graph bytes in today's
/// formats (written by the fuzz crate's `write_seeds` example).
fn seed_corpus() -> Result<(), String> {
    let base = root().join("target/fuzz-corpus");
    for target in TARGETS {
        let dir = base.join(target);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let seeds = root().join("fuzz/seeds").join(target);
        for entry in std::fs::read_dir(&seeds).into_iter().flatten().flatten() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).map_err(|e| e.to_string())?;
        }
    }
    let manifest = root().join("fuzz/Cargo.toml");
    run(
        "cargo",
        &["run", "--quiet", "--manifest-path", &manifest.to_string_lossy(), "--example", "write_seeds", "--", &base.to_string_lossy()],
    )
}

/// The fuzz targets' stable smoke (`fuzz/tests/smoke.rs`): each target's code on its seeds and
/// thousands of mutations of them, no nightly needed.
pub fn smoke() -> Result<(), String> {
    let manifest = root().join("fuzz/Cargo.toml");
    run("cargo", &["test", "--manifest-path", &manifest.to_string_lossy()])
}
