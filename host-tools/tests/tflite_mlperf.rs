//! TFLite float32 import: the MLPerf Tiny reference models (`../shared/models/mlperf-tiny`) and
//! the small models of `fixtures/tflite/cases` (depthwise with a multiplier, dilation, SAME
//! pooling, PAD, MEAN, 4-D softmax, reshapes across layouts), imported and run on 8 seeded
//! random inputs, give LiteRT's outputs (made by `fixtures/tflite/make_reference.py`) within
//! rtol 1e-3, atol 1e-4, in one batch of 8 (the models' batch is dynamic). NHWC inputs and
//! outputs stay NHWC.

use mote_cli::import::{convert, Format};
use mote_cli::run::{infer, model_inputs, read_npy};
use std::path::{Path, PathBuf};

fn shared_model(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/mlperf-tiny").join(name)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tflite").join(name)
}

/// Imports `model`, runs the reference inputs, returns the worst |error| / (atol + rtol·|ref|).
fn worst_error(model: &str) -> f32 {
    let path = match model.strip_prefix("cases/") {
        Some(_) => fixture(&format!("{model}.tflite")),
        None => shared_model(&format!("{model}.tflite")),
    };
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let imported = convert(Format::Tflite, &bytes, model).unwrap_or_else(|e| panic!("{model}: {e}"));
    let x = read_npy(&fixture(&format!("{model}_inputs.npy")), "input").unwrap();
    let want = read_npy(&fixture(&format!("{model}_outputs.npy")), "output").unwrap();
    model_inputs(&imported.spec)[0].check(&x.shape).unwrap();
    let y = infer(&path, &imported.spec, &imported.params, &[x]).unwrap();
    assert_eq!(y.shape, want.shape, "{model}: output shape");
    let abs = y.values.iter().zip(&want.values).map(|(&g, &w)| (g - w).abs()).fold(0.0, f32::max);
    println!("{model}: largest absolute difference {abs:.3e}");
    y.values.iter().zip(&want.values).map(|(&g, &w)| (g - w).abs() / (1e-4 + 1e-3 * w.abs())).fold(0.0, f32::max)
}

#[test]
fn resnet8_matches_litert() {
    let worst = worst_error("pretrainedResnet");
    println!("ResNet-8: worst error {worst:.3} of the tolerance");
    assert!(worst <= 1.0, "{worst}");
}

#[test]
fn anomaly_detection_autoencoder_matches_litert() {
    let worst = worst_error("ad01_fp32");
    println!("AD01 autoencoder: worst error {worst:.3} of the tolerance");
    assert!(worst <= 1.0, "{worst}");
}

#[test]
fn small_models_of_every_supported_operator_match_litert() {
    for case in ["cases/convs", "cases/pools", "cases/layout"] {
        let worst = worst_error(case);
        println!("{case}: worst error {worst:.3} of the tolerance");
        assert!(worst <= 1.0, "{case}: {worst}");
    }
}

#[test]
fn int8_models_are_refused_with_the_reason() {
    let bytes = std::fs::read(shared_model("kws_ref_model.tflite")).unwrap();
    let e = convert(Format::Tflite, &bytes, "kws").unwrap_err().to_string();
    assert!(e.contains("Int8") && e.contains("float32"), "{e}");
}
