//! `cargo xtask qemu infer|train|golden`: builds the firmware, runs it on QEMU's mps2-an386
//! (Cortex-M4F) with semihosting and `-icount shift=0`, decodes defmt with `defmt-print`,
//! and checks what comes back against the host.

use crate::{apt_install, data::which, root, run};
use mote_cli::idx::{encode_idx, read_idx};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The emulated core the firmware runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Cpu {
    /// Cortex-M4F on mps2-an386 (Armv7E-M, DSP, FPv4-SP).
    M4,
    /// Cortex-M55 on mps3-an547 (Armv8.1-M, Helium).
    M55,
}

impl Cpu {
    /// The rustup target of its firmware.
    pub fn target(self) -> &'static str {
        match self {
            Cpu::M4 => "thumbv7em-none-eabihf",
            Cpu::M55 => "thumbv8m.main-none-eabihf",
        }
    }
    /// The firmware's cargo features beyond the default (the DSP extension).
    pub fn features(self) -> &'static str {
        match self {
            Cpu::M4 => "dsp",
            Cpu::M55 => "mve",
        }
    }
    fn machine(self) -> [&'static str; 4] {
        match self {
            Cpu::M4 => ["-machine", "mps2-an386", "-cpu", "cortex-m4"],
            Cpu::M55 => ["-machine", "mps3-an547", "-cpu", "cortex-m55"],
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Cpu::M4 => "m4",
            Cpu::M55 => "m55",
        }
    }
}

/// The core the `qemu` commands target (`--cpu`, default M4): 0 for M4, 1 for M55.
static CPU: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Chooses the core the following commands run on.
pub fn select_cpu(cpu: Cpu) {
    CPU.store(cpu as u8, std::sync::atomic::Ordering::Relaxed);
}

fn cpu() -> Cpu {
    match CPU.load(std::sync::atomic::Ordering::Relaxed) {
        0 => Cpu::M4,
        _ => Cpu::M55,
    }
}

/// Where the firmware binaries for the selected core are.
fn elf_dir() -> std::path::PathBuf {
    root().join("firmware/target").join(cpu().target()).join("release")
}
const MODEL: &str = "firmware/model/model.mote";

/// Installs QEMU and defmt-print when missing.
pub fn ensure_tools() -> Result<(), String> {
    if which("qemu-system-arm").is_none() {
        apt_install(&["qemu-system-arm"], "running the firmware on an emulated Cortex-M4 or Cortex-M55")?;
    }
    if defmt_print().is_none() {
        crate::cargo(&["install", "defmt-print", "--locked"])?;
    }
    Ok(())
}

fn defmt_print() -> Option<String> {
    which("defmt-print").or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        let p = home.join("bin/defmt-print");
        p.is_file().then(|| p.to_string_lossy().into_owned())
    })
}

/// The host CLI, built in release mode (once per xtask run).
pub fn mote() -> Result<String, String> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| crate::cargo(&["build", "--release", "--quiet", "-p", "mote-cli"])).clone()?;
    Ok(root().join("target/release/mote").to_string_lossy().into_owned())
}

/// Runs the host CLI and returns the JSON object on the last line of its stdout.
pub fn mote_json(args: &[&str]) -> Result<Value, String> {
    mote_json_with_kernels("auto", args)
}

/// [`mote_json`] with the CLI's kernels set (`MOTE_KERNELS`): `reference` where its results are
/// compared bit for bit with the device's (which runs the reference kernels).
pub fn mote_json_with_kernels(kernels: &str, args: &[&str]) -> Result<Value, String> {
    let mote = mote()?;
    eprintln!("$ MOTE_KERNELS={kernels} mote {}", args.join(" "));
    let mut command = Command::new(&mote);
    command.args(args).env("MOTE_KERNELS", kernels).current_dir(root()).stderr(Stdio::inherit());
    let out = command.output().map_err(|e| format!("mote: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines().filter(|l| !l.starts_with('{')) {
        eprintln!("{line}");
    }
    if !out.status.success() {
        return Err(format!("mote {} failed", args.join(" ")));
    }
    serde_json::from_str(stdout.lines().last().unwrap_or("")).map_err(|e| format!("mote {}: no JSON result ({e})", args.join(" ")))
}

/// Makes sure a model is exported for the firmware: trains one on the host if there is none
/// (`quick`: 1 epoch on 2,000 digits, for tests; otherwise the spec's full recipe).
pub fn ensure_model(quick: bool) -> Result<(), String> {
    if root().join(MODEL).exists() {
        return Ok(());
    }
    train_and_export(quick).map(|_| ())
}

/// Trains mnist-cnn on the host and exports it; returns the training report.
pub fn train_and_export(quick: bool) -> Result<Value, String> {
    std::fs::create_dir_all(root().join("target/host")).map_err(|e| e.to_string())?;
    let mut args = vec!["train", "models/mnist-cnn.toml", "--data", "data/mnist", "--out", "target/host/mnist-cnn.mote", "--json"];
    if quick {
        args.extend(["--epochs", "1", "--limit", "2000"]);
    }
    let report = mote_json(&args)?;
    run(&mote()?, &["export", "target/host/mnist-cnn.mote", "--out", MODEL])?;
    Ok(report)
}

/// Builds the firmware (its own workspace) for the selected core.
pub fn build_firmware() -> Result<(), String> {
    let (target, features) = (cpu().target(), cpu().features());
    eprintln!("$ (cd firmware && cargo build --release --target {target} --features {features})");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "--target", target, "--features", features])
        .current_dir(root().join("firmware"))
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    status.success().then_some(()).ok_or_else(|| "firmware build failed".to_string())
}

/// Writes the training digits in a shuffled order (seeded) for the device to stream: a data
/// set sorted by class would make one pass of batch-1 training useless.
fn shuffled_training_stream(seed: u64) -> Result<(), String> {
    let src = root().join("data/mnist");
    let images = read_idx(&src.join("train-images-idx3-ubyte"), 3).map_err(|e| format!("{e} (run cargo xtask data)"))?;
    let labels = read_idx(&src.join("train-labels-idx1-ubyte"), 1).map_err(|e| e.to_string())?;
    let (n, pixels) = (labels.dims[0], images.dims[1] * images.dims[2]);
    let mut order: Vec<usize> = (0..n).collect();
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    for i in (1..n).rev() {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    let out_images: Vec<u8> = order.iter().flat_map(|&i| images.data[i * pixels..(i + 1) * pixels].iter().copied()).collect();
    let out_labels: Vec<u8> = order.iter().map(|&i| labels.data[i]).collect();
    let dir = qemu_dir()?;
    std::fs::write(dir.join("train-images-idx3-ubyte"), encode_idx(&images.dims, &out_images)).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("train-labels-idx1-ubyte"), encode_idx(&labels.dims, &out_labels)).map_err(|e| e.to_string())
}

/// `target/qemu/`, created if missing: the files the firmware reads and writes through
/// semihosting.
fn qemu_dir() -> Result<std::path::PathBuf, String> {
    let dir = root().join("target/qemu");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs firmware binary `bin` under QEMU with semihosting `args`, echoes its decoded log to
/// stderr, and returns the `result key=value ...` line as a map.
pub fn run_qemu(bin: &str, args: &[&str], timeout: Duration) -> Result<BTreeMap<String, String>, String> {
    let (status, log) = run_qemu_logged(bin, args, timeout)?;
    if !status.success() {
        return Err(format!("{bin}: firmware exited with {status}"));
    }
    let line = log.iter().rev().find_map(|l| l.strip_prefix("result ")).ok_or_else(|| format!("{bin}: no result line"))?;
    Ok(line.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// Runs firmware binary `bin` under QEMU and returns its exit status and decoded log lines.
fn run_qemu_logged(bin: &str, args: &[&str], timeout: Duration) -> Result<(std::process::ExitStatus, Vec<String>), String> {
    qemu_dir()?;
    let elf = elf_dir().join(bin);
    let mut semihosting = format!("enable=on,target=native,arg={bin}");
    for a in args {
        semihosting.push_str(&format!(",arg={a}"));
    }
    let [machine, board, cpu_flag, core] = cpu().machine();
    let qemu_args = [machine, board, cpu_flag, core, "-nographic", "-monitor", "none", "-serial", "none", "-icount", "shift=0"];
    eprintln!("$ qemu-system-arm {} -semihosting-config {semihosting} -kernel {}", qemu_args.join(" "), elf.display());
    let mut qemu = Command::new("qemu-system-arm")
        .args(qemu_args)
        .args(["-semihosting-config", &semihosting, "-kernel"])
        .arg(&elf)
        .current_dir(root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("qemu-system-arm: {e}"))?;
    let printer = defmt_print().ok_or("defmt-print not found (cargo install defmt-print)")?;
    let mut decoder = Command::new(printer)
        .arg("-e")
        .arg(&elf)
        .stdin(qemu.stdout.take().ok_or("qemu stdout")?)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("defmt-print: {e}"))?;
    let lines = BufReader::new(decoder.stdout.take().ok_or("defmt-print stdout")?);
    let tag = cpu().tag();
    let reader = std::thread::spawn(move || {
        let mut log = Vec::new();
        for line in lines.lines().map_while(Result::ok) {
            eprintln!("  [{tag}] {line}");
            log.push(line);
        }
        log
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = qemu.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = qemu.kill();
            let _ = decoder.kill();
            return Err(format!("{bin}: QEMU timed out after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = decoder.wait();
    let log = reader.join().map_err(|_| "log reader failed")?;
    Ok((status, log))
}

fn to_json(map: &BTreeMap<String, String>) -> Map<String, Value> {
    let value = |v: &String| match (v.parse::<u64>(), v.parse::<f64>(), v.parse::<bool>()) {
        (Ok(n), _, _) => json!(n),
        (_, Ok(x), _) => json!(x),
        (_, _, Ok(b)) => json!(b),
        _ => json!(v),
    };
    map.iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

/// `qemu infer`: the 2,000 test digits on the device, compared sample for sample with the
/// host's predictions of the same model.
pub fn infer(quick_model: bool) -> Result<Value, String> {
    ensure_tools()?;
    ensure_model(quick_model)?;
    build_firmware()?;
    let result = run_qemu("infer", &[], Duration::from_secs(900))?;
    compare_predictions(result, MODEL)
}

/// Hostile model files sent to `load` on the 32-bit device: each must end the run with the
/// typed error named (exit status 1 and the error in the log), never a panic (101) or a fault
/// (3). Returns how many were refused as expected.
pub fn load_hostile(quick_model: bool) -> Result<usize, String> {
    use mote_core::model::{model_file_len, read_model, write_model, LayerOp};
    ensure_tools()?;
    ensure_model(quick_model)?;
    build_firmware()?;
    let good = std::fs::read(root().join(MODEL)).map_err(|e| format!("{MODEL}: {e}"))?;
    let view = read_model(&good).map_err(|e| format!("{MODEL}: {e}"))?;
    let mut params = vec![0.0; view.param_count()];
    view.copy_params(&mut params).map_err(|e| e.to_string())?;
    // A conv padding that fits the host's 64-bit arithmetic but overflows the device's 32 bits
    // when doubled.
    let mut spec = view.spec.clone();
    let conv = spec.layers.iter_mut().find(|l| matches!(l.op, LayerOp::Conv2d { .. })).ok_or("the model has no conv2d")?;
    if let LayerOp::Conv2d { padding, .. } = &mut conv.op {
        *padding = [u32::MAX / 2 + 1, 1];
    }
    let mut huge_padding = vec![0u8; model_file_len(&spec, params.len()).map_err(|e| e.to_string())?];
    write_model(&spec, &params, &mut huge_padding).map_err(|e| e.to_string())?;
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let cases: [(&str, &[u8], &str); 3] = [
        ("conv padding 2^31", &huge_padding, "TooLarge"),
        // The header promises more bytes than the link delivers.
        ("truncated", &good[..good.len() / 2], "Link(Read(download))"),
        ("one bit flipped", &flipped, "Checksum"),
    ];
    for (name, bytes, error) in cases {
        std::fs::write(qemu_dir()?.join("to-device.mote"), bytes).map_err(|e| e.to_string())?;
        let (status, log) = run_qemu_logged("load", &[], Duration::from_secs(300))?;
        let named = log.iter().any(|l| l.contains("load failed") && l.contains(error));
        if status.code() != Some(1) || !named {
            return Err(format!("{name}: expected exit 1 with a {error} error, got {status}"));
        }
    }
    Ok(cases.len())
}

/// On-device training with a learning rate so large that the loss overflows: the firmware
/// must stop at that step with a typed error (exit 1) and send nothing back.
pub fn diverging_training(quick_model: bool) -> Result<String, String> {
    ensure_tools()?;
    ensure_model(quick_model)?;
    build_firmware()?;
    shuffled_training_stream(7)?;
    let sent = root().join("target/qemu/device-trained.mote");
    let _ = std::fs::remove_file(&sent);
    let (status, log) = run_qemu_logged("train", &["scratch", "steps=100", "eval=10", "log=50", "lr=3e38"], Duration::from_secs(300))?;
    let stopped = log.iter().find(|l| l.contains("train failed: Diverged"));
    match stopped {
        Some(line) if status.code() == Some(1) && !sent.exists() => Ok(line.trim().to_string()),
        _ => Err(format!("expected exit 1 with a Diverged error and no model sent back, got {status}")),
    }
}

/// `qemu load`: the device receives `model` over its link at run time (not the one in flash)
/// and classifies the test digits with it, compared sample for sample with the host.
pub fn load(model: Option<&str>, quick_model: bool) -> Result<Value, String> {
    ensure_tools()?;
    ensure_model(quick_model)?;
    build_firmware()?;
    let model = model.unwrap_or(MODEL);
    std::fs::copy(root().join(model), qemu_dir()?.join("to-device.mote")).map_err(|e| format!("{model}: {e}"))?;
    let result = run_qemu("load", &[], Duration::from_secs(900))?;
    let mut out = compare_predictions(result, model)?;
    out["model_file"] = json!(model);
    Ok(out)
}

/// The device's result with its predictions (`target/qemu/predictions.bin`) compared with
/// the host's `mote eval` of `model`.
fn compare_predictions(result: BTreeMap<String, String>, model: &str) -> Result<Value, String> {
    let device = std::fs::read(root().join("target/qemu/predictions.bin")).map_err(|e| format!("predictions: {e}"))?;
    let host = mote_json_with_kernels("reference", &["eval", model, "--data", "data/mnist", "--json"])?;
    let host_predictions: Vec<u64> = host["predictions"].as_array().ok_or("host predictions")?.iter().filter_map(Value::as_u64).collect();
    if host_predictions.len() != device.len() {
        return Err(format!("device sent {} predictions, host made {}", device.len(), host_predictions.len()));
    }
    let differ = device.iter().zip(&host_predictions).filter(|(&d, &h)| d as u64 != h).count();
    let mut out = to_json(&result);
    out.insert("host_accuracy".into(), host["accuracy"].clone());
    out.insert("predictions_differing_from_host".into(), json!(differ));
    Ok(Value::Object(out))
}

/// `qemu train`: on-device training (from scratch or fine-tuning), then the trained model
/// sent back and evaluated by the host.
pub fn train(steps: usize, eval: usize, finetune: bool, lr: f32, quick_model: bool) -> Result<Value, String> {
    ensure_tools()?;
    ensure_model(quick_model)?;
    build_firmware()?;
    shuffled_training_stream(7)?;
    let (steps_arg, eval_arg) = (format!("steps={steps}"), format!("eval={eval}"));
    let log = format!("log={}", (steps / 8).clamp(1, 1000));
    let mode = if finetune { "finetune" } else { "scratch" };
    let lr = format!("lr={lr}");
    let result = run_qemu("train", &[mode, &steps_arg, &eval_arg, &log, &lr], Duration::from_secs(3600))?;
    let trained = "target/qemu/device-trained.mote";
    let host = mote_json(&["eval", trained, "--data", "data/mnist", "--json"])?;
    let mut out = to_json(&result);
    out.insert("mode".into(), json!(mode));
    out.insert("lr".into(), json!(lr.trim_start_matches("lr=").parse::<f64>().unwrap_or(0.0)));
    out.insert("host_accuracy_of_device_model".into(), host["accuracy"].clone());
    out.insert("model_file".into(), json!(trained));
    Ok(Value::Object(out))
}

/// `qemu golden`: every op's forward and backward on the device, compared bit for bit with
/// the host.
pub fn golden() -> Result<Value, String> {
    ensure_tools()?;
    ensure_model(true)?;
    build_firmware()?;
    let result = run_qemu("golden", &[], Duration::from_secs(300))?;
    let device = std::fs::read(root().join("target/qemu/golden.bin")).map_err(|e| format!("golden.bin: {e}"))?;
    let mut host = Vec::new();
    let mut names = Vec::new();
    mote_golden::run_all(&mut |name, values| {
        let (header, len) = mote_golden::encode_header(name, values.len());
        host.extend_from_slice(&header[..len]);
        values.iter().for_each(|v| host.extend_from_slice(&v.to_le_bytes()));
        names.push(name.to_string());
    })
    .map_err(|e| format!("host golden cases: {e}"))?;
    if device != host {
        let at = device.iter().zip(&host).position(|(a, b)| a != b).unwrap_or(device.len().min(host.len()));
        return Err(format!("device golden vectors differ from the host's at byte {at} ({} vs {} bytes)", device.len(), host.len()));
    }
    // The instruction counter must see the 2,000,000 instructions of the calibration loop.
    let calibration = result.get("calibration_insns").and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    if (calibration / 2.0e6 - 1.0).abs() > 0.01 {
        return Err(format!("instruction counter off: {calibration} for a 2,000,000-instruction loop"));
    }
    let mut out = to_json(&result);
    out.insert("bit_exact".into(), json!(true));
    out.insert("cases".into(), json!(names.iter().collect::<std::collections::BTreeSet<_>>().len()));
    Ok(Value::Object(out))
}

/// `qemu bench`: the plans against their out-of-place, unfused baselines in the same run on
/// the M4 (instructions and arena bytes, with ratios); fails if they disagree.
pub fn bench(steps: usize, quick_model: bool) -> Result<Value, String> {
    ensure_tools()?;
    ensure_model(quick_model)?;
    build_firmware()?;
    shuffled_training_stream(7)?;
    let result = run_qemu("bench", &[&format!("steps={steps}")], Duration::from_secs(900))?;
    let mut out = to_json(&result);
    for (a, b, name) in [
        ("infer_insns", "infer_ref_insns", "infer_insns_ratio"),
        ("infer_arena_bytes", "infer_ref_arena_bytes", "infer_arena_ratio"),
        ("train_insns", "train_ref_insns", "train_insns_ratio"),
        ("train_arena_bytes", "train_ref_arena_bytes", "train_arena_ratio"),
    ] {
        let (a, b) = (out[a].as_f64().unwrap_or(f64::NAN), out[b].as_f64().unwrap_or(f64::NAN));
        out.insert(name.into(), json!((a / b * 1000.0).round() / 1000.0));
    }
    if out["same_logits"] != json!(true) || out["same_weights"] != json!(true) {
        return Err(format!("the plans and their baselines disagree on the device: {}", Value::Object(out)));
    }
    if !quick_model {
        // The same model quantized to int8, beside the f32 figures.
        let int8 = quantize_and_infer(steps)?;
        if int8["outputs_differing_from_host"] != json!(0) {
            return Err(format!("the int8 model disagrees with the host on the device: {int8}"));
        }
        for key in ["insns_per_inference", "arena_bytes", "ram_bytes", "flash_bytes"] {
            out.insert(format!("int8_{key}"), int8[key].clone());
        }
        // MLPerf Tiny's int8 models, their arenas beside TFLM's (the 64-bit Python interpreter's,
        // as the int8 issue measured them: ≈ 24.3 KB and ≈ 56.0 KB).
        for (name, model, tflm_arena) in [("kws", "kws_ref_model", 24_300.0), ("resnet8", "pretrainedResnet_quant", 56_000.0)] {
            let r = import_and_infer(model, 2)?;
            if r["outputs_differing_from_host"] != json!(0) {
                return Err(format!("{model} disagrees with the host on the device: {r}"));
            }
            for key in ["insns_per_inference", "arena_bytes", "ram_bytes", "flash_bytes"] {
                out.insert(format!("{name}_int8_{key}"), r[key].clone());
            }
            let ratio = r["arena_bytes"].as_f64().unwrap_or(f64::NAN) / tflm_arena;
            out.insert(format!("{name}_int8_arena_vs_tflm"), json!((ratio * 1000.0).round() / 1000.0));
        }
    }
    Ok(Value::Object(out))
}

/// `kcheck`: the int8 kernels the firmware dispatches to on this core (the DSP extension's,
/// Helium's) and its fused f32 convolution against the reference on odd shapes, bit for bit,
/// on the device; fails on the first mismatch.
pub fn kernel_checks() -> Result<Value, String> {
    ensure_tools()?;
    ensure_model(true)?;
    build_firmware()?;
    let result = run_qemu("kcheck", &[], Duration::from_secs(300))?;
    Ok(Value::Object(to_json(&result)))
}

/// Where `qinfer` finds the int8 model it embeds.
const INT8_MODEL: &str = "firmware/model/model-int8.mote";

/// `qemu infer --model FILE`: runs `model` on the device. An f32 model is exported and
/// classifies the test digits ([`infer`]); an int8 model (`MOTQ`) runs in `qinfer` on `samples`
/// inputs — the MNIST test digits quantized with its input's scale for a 28×28×1 input, seeded
/// random int8 values otherwise — and every output byte is compared with `mote run` of the
/// same inputs on the host.
pub fn infer_model(model: &str, samples: Option<usize>) -> Result<Value, String> {
    let bytes = std::fs::read(root().join(model)).map_err(|e| format!("{model}: {e}"))?;
    if !mote_cli::quant::is_quant_file(&bytes) {
        ensure_tools()?;
        run(&mote()?, &["export", model, "--out", MODEL])?;
        return infer(false);
    }
    ensure_tools()?;
    ensure_model(true)?;
    let file = mote_cli::quant::QuantFile::new(&bytes).map_err(|e| format!("{model}: {e}"))?;
    let m = file.model().map_err(|e| format!("{model}: {e}"))?;
    let shape: Vec<usize> = m.input.dims().iter().map(|&d| d as usize).collect();
    let per = m.input.numel();
    let mnist = shape == [1, 28, 28, 1];
    let inputs: Vec<i8> = if mnist {
        let images = read_idx(&root().join("data/mnist/t10k-images-idx3-ubyte"), 3).map_err(|e| format!("{e} (run cargo xtask data)"))?;
        let n = samples.unwrap_or(images.dims[0]).min(images.dims[0]);
        images.data[..n * per].iter().map(|&p| m.input.quant.quantize(p as f32 / 255.0)).collect()
    } else {
        seeded_int8(samples.unwrap_or(10) * per, 0x2545_f491)
    };
    let n = inputs.len() / per;
    let dir = qemu_dir()?;
    let mut batch_shape = shape.clone();
    batch_shape[0] = n;
    let (x, y) = (dir.join("int8-inputs.npy"), dir.join("int8-host-outputs.npy"));
    mote_cli::run::write_npy_of(&x, &batch_shape, &inputs).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("int8-inputs.bin"), inputs.iter().map(|&v| v as u8).collect::<Vec<u8>>()).map_err(|e| e.to_string())?;
    run(&mote()?, &["run", model, "--input", x.to_str().unwrap_or_default(), "--output", y.to_str().unwrap_or_default()])?;
    let host = match mote_cli::run::parse_npy_of(&std::fs::read(&y).map_err(|e| e.to_string())?, "output", true)? {
        mote_cli::run::NpyTensor::I8(_, v) => v,
        mote_cli::run::NpyTensor::F32(_) => return Err("mote run wrote float32 for int8 inputs".into()),
    };
    std::fs::copy(root().join(model), root().join(INT8_MODEL)).map_err(|e| format!("{INT8_MODEL}: {e}"))?;
    build_firmware()?;
    let result = run_qemu("qinfer", &[], Duration::from_secs(1800))?;
    let device: Vec<i8> =
        std::fs::read(dir.join("int8-outputs.bin")).map_err(|e| format!("int8-outputs.bin: {e}"))?.iter().map(|&b| b as i8).collect();
    if device.len() != host.len() {
        return Err(format!("the device wrote {} output values, the host {}", device.len(), host.len()));
    }
    let differ = device.iter().zip(&host).filter(|(a, b)| a != b).count();
    let mut out = to_json(&result);
    out.insert("model".into(), json!(model));
    out.insert("inputs".into(), json!(if mnist { "MNIST test digits" } else { "seeded random int8" }));
    out.insert("outputs_compared".into(), json!(host.len()));
    out.insert("outputs_differing_from_host".into(), json!(differ));
    if mnist {
        let labels = read_idx(&root().join("data/mnist/t10k-labels-idx1-ubyte"), 1).map_err(|e| e.to_string())?;
        let classes = m.output.numel();
        let correct =
            device.chunks_exact(classes).zip(&labels.data).filter(|(row, &l)| mote_cli::eval::argmax_i8(row) == l as usize).count();
        out.insert("accuracy".into(), json!(correct as f64 / n.max(1) as f64));
    }
    Ok(Value::Object(out))
}

/// Quantizes the exported model (calibrated on 200 training digits) and runs it on `samples`
/// test digits on the device ([`infer_model`]).
pub fn quantize_and_infer(samples: usize) -> Result<Value, String> {
    ensure_model(true)?;
    let out = "target/host/model-int8.mote";
    std::fs::create_dir_all(root().join("target/host")).map_err(|e| e.to_string())?;
    run(&mote()?, &["quantize", MODEL, "--data", "data/mnist", "--out", out, "--calibration", "200"])?;
    infer_model(out, Some(samples))
}

/// `n` int8 values from xorshift32 seeded with `seed` (its low bytes).
pub fn seeded_int8(n: usize, seed: u32) -> Vec<i8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as u8 as i8
        })
        .collect()
}

/// Imports MLPerf Tiny's int8 `model` (`../shared/models/mlperf-tiny/MODEL.tflite`) with the
/// host CLI into `target/host/MODEL.mote`; returns that path (relative to the root).
pub fn import_mlperf(model: &str) -> Result<String, String> {
    let source = root().join(format!("../shared/models/mlperf-tiny/{model}.tflite"));
    let out = format!("target/host/{model}.mote");
    std::fs::create_dir_all(root().join("target/host")).map_err(|e| e.to_string())?;
    run(&mote()?, &["import", source.to_str().unwrap_or_default(), "--out", &out])?;
    Ok(out)
}

/// Imports MLPerf Tiny's int8 `model` ([`import_mlperf`]) and runs it on `samples` random
/// inputs on the device ([`infer_model`]).
pub fn import_and_infer(model: &str, samples: usize) -> Result<Value, String> {
    infer_model(&import_mlperf(model)?, Some(samples))
}
