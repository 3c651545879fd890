//! `cargo xtask bench host`: host training speed against PyTorch on the same CPU (same
//! recipe, same IDX files, runs alternating in one invocation), and batch-1 inference latency
//! against ONNX Runtime. PyTorch and ONNX Runtime are optional: without them mote's figures
//! are printed alone, with the command that installs them.

use crate::qemu::{mote, mote_json};
use crate::root;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// The training cases: name, data directory, spec.
const CASES: [(&str, &str, &str); 4] = [
    ("MNIST 8k, mnist-mlp", "data/mnist", "models/mnist-mlp.toml"),
    ("MNIST 8k, mnist-cnn", "data/mnist", "models/mnist-cnn.toml"),
    ("Fashion-MNIST 60k, mlp", "data/fashion-mnist", "models/mnist-mlp.toml"),
    ("Fashion-MNIST 60k, cnn", "data/fashion-mnist", "models/mnist-cnn.toml"),
];

const INSTALL_TORCH: &str = "pip install torch --index-url https://download.pytorch.org/whl/cpu";

/// A Python that imports `module`: `$MOTE_PYTHON`, the journey's venv, or `python3`.
fn python_with(module: &str) -> Option<String> {
    let candidates = [
        std::env::var("MOTE_PYTHON").ok(),
        Some(root().join("target/pytorch-venv/bin/python").display().to_string()),
        Some("python3".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|py| Command::new(py).args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success()))
}

/// Runs `python script args…` and returns the JSON object on its last stdout line.
fn python_json(python: &str, script: &str, args: &[&str]) -> Result<Value, String> {
    let script = root().join("tools/bench").join(script);
    eprintln!("$ {python} {} {}", script.display(), args.join(" "));
    let out = Command::new(python).arg(&script).args(args).output().map_err(|e| format!("cannot start {python}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr)));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).map_err(|e| format!("{}: no JSON result ({e})", script.display()))
}

/// `cargo xtask bench host`: `epochs` overrides the specs'; `threads` is mote's and PyTorch's.
pub fn host(epochs: Option<usize>, threads: usize, json_out: bool) -> Result<(), String> {
    crate::data::data(&root())?;
    mote()?;
    let torch = python_with("torch");
    if torch.is_none() {
        eprintln!("PyTorch not found (no `import torch` in $MOTE_PYTHON, target/pytorch-venv or python3): mote's figures only. To compare: {INSTALL_TORCH}");
    }
    let out_dir = root().join("target/bench");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let threads_arg = threads.to_string();
    let mut rows = Vec::new();
    for (name, data, spec) in CASES {
        let stem = Path::new(spec).file_stem().and_then(|s| s.to_str()).unwrap_or("model");
        let mnist = data == "data/mnist";
        let model = out_dir.join(format!("{stem}{}.mote", if mnist { "" } else { "-fashion" })).display().to_string();
        let mut args = vec!["train", spec, "--data", data, "--out", &model, "--json", "--threads", &threads_arg];
        let epochs_arg = epochs.map(|e| e.to_string());
        if let Some(e) = &epochs_arg {
            args.extend(["--epochs", e.as_str()]);
        }
        eprintln!("== {name}: mote");
        let m = mote_json(&args)?;
        let onnx = out_dir.join(format!("{stem}.onnx")).display().to_string();
        let t = match &torch {
            Some(py) => {
                eprintln!("== {name}: PyTorch");
                let mut targs = vec![spec, "--data", data, "--threads", &threads_arg];
                if let Some(e) = &epochs_arg {
                    targs.extend(["--epochs", e.as_str()]);
                }
                if mnist {
                    targs.extend(["--onnx", onnx.as_str()]);
                }
                Some(python_json(py, "pytorch_train.py", &targs)?)
            }
            None => None,
        };
        rows.push(training_row(name, &m, t.as_ref()));
    }
    let mut latency = Vec::new();
    let ort = python_with("onnxruntime");
    for stem in ["mnist-mlp", "mnist-cnn"] {
        let model = out_dir.join(format!("{stem}.mote")).display().to_string();
        let m = mote_json(&["bench", &model, "--json"])?;
        let onnx = out_dir.join(format!("{stem}.onnx"));
        let o = match (&ort, onnx.is_file()) {
            (Some(py), true) => Some(python_json(py, "ort_latency.py", &[&onnx.display().to_string()])?),
            _ => None,
        };
        latency.push(json!({"model": stem, "mote_us": m["median_us"], "onnxruntime_us": o.as_ref().map(|o| o["median_us"].clone()), "onnxruntime": o.as_ref().map(|o| o["onnxruntime"].clone())}));
    }
    if ort.is_none() {
        eprintln!("ONNX Runtime not found: mote's latency only. To compare: pip install onnxruntime");
    }
    print_tables(&rows, &latency, threads);
    if json_out {
        println!("{}", json!({"threads": threads, "training": rows, "latency": latency}));
    }
    Ok(())
}

/// One case's figures: seconds per epoch, samples/s, test accuracy, both sides, and the ratio.
fn training_row(name: &str, m: &Value, t: Option<&Value>) -> Value {
    let epochs = m["epochs"].as_f64().unwrap_or(1.0);
    let mote_epoch = m["train_seconds"].as_f64().unwrap_or(f64::NAN) / epochs;
    let torch_epoch = t.and_then(|t| t["seconds_per_epoch"].as_f64());
    json!({
        "case": name,
        "mote_seconds_per_epoch": mote_epoch,
        "mote_samples_per_second": m["samples_per_second"],
        "mote_test_accuracy": m["test_accuracy"],
        "pytorch_seconds_per_epoch": torch_epoch,
        "pytorch_samples_per_second": t.map(|t| t["samples_per_second"].clone()),
        "pytorch_test_accuracy": t.map(|t| t["test_accuracy"].clone()),
        "pytorch_over_mote": torch_epoch.map(|p| p / mote_epoch),
    })
}

fn print_tables(rows: &[Value], latency: &[Value], threads: usize) {
    let f = |v: &Value, digits: usize| v.as_f64().map_or("-".to_string(), |x| format!("{x:.digits$}"));
    let pct = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{:.2}%", 100.0 * x));
    println!("\nhost training, {threads} threads each (PyTorch time / mote time: > 1 means mote is faster)");
    println!("| case | mote s/epoch | mote samples/s | mote acc | PyTorch s/epoch | PyTorch samples/s | PyTorch acc | PyTorch / mote |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r["case"].as_str().unwrap_or(""),
            f(&r["mote_seconds_per_epoch"], 3),
            f(&r["mote_samples_per_second"], 0),
            pct(&r["mote_test_accuracy"]),
            f(&r["pytorch_seconds_per_epoch"], 3),
            f(&r["pytorch_samples_per_second"], 0),
            pct(&r["pytorch_test_accuracy"]),
            f(&r["pytorch_over_mote"], 2),
        );
    }
    println!("\nbatch-1 inference latency on the host, one thread (median µs; ONNX Runtime measured through Python)");
    println!("| model | mote µs | ONNX Runtime µs |");
    println!("|---|---|---|");
    for l in latency {
        println!("| {} | {} | {} |", l["model"].as_str().unwrap_or(""), f(&l["mote_us"], 2), f(&l["onnxruntime_us"], 2));
    }
}
