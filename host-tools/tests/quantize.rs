//! `mote quantize` end to end on the real MNIST split: the int8 models of mnist-cnn and
//! mnist-mlp classify within 0.5 percentage points of their f32 models; the int8 mnist-cnn's
//! MACs, steps and arena are the hand-counted ones; hostile int8 model files are refused
//! with an error, never a panic.

use mote_cli::quant::QuantFile;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mote_json(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_mote")).args(args).current_dir(root()).output().expect("run mote");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "mote {args:?} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().expect("output")).expect("last line is JSON")
}

/// Trains `spec` briefly, quantizes it; returns (f32 accuracy, int8 accuracy, int8 file).
fn train_and_quantize(dir: &Path, spec: &str) -> (f64, f64, PathBuf) {
    let data = root().join("data/mnist");
    assert!(data.join("train-images-idx3-ubyte").exists(), "{} is missing: run `cargo xtask data` first", data.display());
    let d = data.to_str().unwrap();
    let (f32_model, int8_model) = (dir.join(format!("{spec}.mote")), dir.join(format!("{spec}-int8.mote")));
    let (m, q) = (f32_model.to_str().unwrap(), int8_model.to_str().unwrap());
    mote_json(&["train", &format!("models/{spec}.toml"), "--data", d, "--epochs", "3", "--out", m, "--json"]);
    let report = mote_json(&["quantize", m, "--data", d, "--out", q, "--calibration", "500", "--json"]);
    assert_eq!(report["calibration"], 500);
    let f = mote_json(&["eval", m, "--data", d, "--json"])["accuracy"].as_f64().unwrap();
    let i = mote_json(&["eval", q, "--data", d, "--json"])["accuracy"].as_f64().unwrap();
    println!("{spec}: f32 {:.2}%, int8 {:.2}%", 100.0 * f, 100.0 * i);
    (f, i, int8_model)
}

#[test]
fn quantized_models_keep_their_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    for spec in ["mnist-cnn", "mnist-mlp"] {
        let (f, i, _) = train_and_quantize(dir.path(), spec);
        assert!(f > 0.9, "{spec}: the f32 model trained ({f})");
        assert!((f - i).abs() <= 0.005, "{spec}: int8 {i} is more than 0.5 points from f32 {f}");
    }
}

#[test]
fn int8_mnist_cnn_has_the_hand_counted_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, q) = train_and_quantize(dir.path(), "mnist-cnn");
    let report = mote_json(&["inspect", q.to_str().unwrap(), "--json"]);
    // conv1 26·26·8 outputs × 9 taps = 48,672; conv2 11·11·16 × 72 = 139,392; linear 400 × 10.
    assert_eq!(report["total_macs"], 48_672 + 139_392 + 4_000);
    let ops: Vec<&str> = report["steps"].as_array().unwrap().iter().map(|s| s["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["conv+maxpool", "conv+maxpool", "reshape", "fully_connected"]);
    // Step 1's buffers, the largest set alive together: conv1's pooled 13·13·8 = 1,352 bytes,
    // conv2's pooled 5·5·16 = 400 and the DSP kernel's four columns of 72 i16 values (4 × 36
    // words); step 0 needs less: the 784-byte input, 1,352 and four 9-value columns (96).
    assert_eq!(report["arena_bytes"], 1352 + 400 + 4 * 36 * 4);

    // Hostile files: single-byte changes of the spec (odd k) or anywhere after the header
    // (even k), the CRC fixed so the parser sees them, load with an error or run; none panics.
    let bytes = std::fs::read(&q).unwrap();
    let spec_start = 20 + u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let input = vec![0i8; 784];
    let mut loaded = 0;
    for k in 0..3000usize {
        let mut b = bytes.clone();
        let start = if k % 2 == 1 { spec_start } else { 20 };
        let at = start + (k * 7919) % (b.len() - start);
        b[at] = b[at].wrapping_add(1 + (k % 255) as u8);
        let crc = crc32(&b[20..]);
        b[16..20].copy_from_slice(&crc.to_le_bytes());
        if let Ok(file) = QuantFile::new(&b) {
            loaded += 1;
            let _ = file.run(&input);
        }
    }
    println!("{loaded} of 3000 mutated files loaded and ran");
}

/// CRC-32 (ISO-HDLC), bit by bit: the model file's checksum.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |mut c, &b| {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
        c
    })
}
