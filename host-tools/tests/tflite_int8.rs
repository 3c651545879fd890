//! int8 TFLite: the MLPerf Tiny int8 models (`../shared/models/mlperf-tiny`) run with mote's
//! int8 reference kernels give the TFLM interpreter's outputs bit for bit (0 LSB apart) on 100
//! seeded random int8 inputs each, and every operator's output tensor equals TFLM's (compared
//! by hash) on the first 5; the golden data is made by `fixtures/tflite/int8/make_reference.py`
//! (PyPI `tflite-micro`), which documents how the inputs are generated (the same xorshift here).

use mote_cli::import::tflite::int8::Int8Model;
use std::path::Path;

/// Sample `k`'s input: xorshift32 seeded with k · 2654435761 + 1, the low byte as int8.
fn input_values(k: u32, n: usize) -> Vec<i8> {
    let mut s = k.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as u8 as i8
        })
        .collect()
}

/// MLPerf Tiny's `model`, ready to run (residual blocks fused, as `mote import` converts it).
fn runner(model: &str) -> Int8Model {
    Int8Model::new(&source(model)).unwrap_or_else(|e| panic!("{model}: {e}"))
}

fn source(model: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/mlperf-tiny").join(format!("{model}.tflite"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A golden file of `fixtures/tflite/int8/`: its rows, its columns and its values.
fn golden<T: npyz::Deserialize>(file: &str) -> (usize, usize, Vec<T>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tflite/int8").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(bytes.as_slice()).unwrap();
    let shape = npy.shape().to_vec();
    (shape[0] as usize, shape[1] as usize, npy.into_vec().unwrap())
}

/// Runs `model` on the golden inputs; returns (samples, outputs differing, largest LSB gap).
fn compare(model: &str) -> (usize, usize, i32) {
    let runner = runner(model);
    let (samples, outputs, want) = golden::<i8>(&format!("{model}.tflm.npy"));
    let n = runner.input_shape().iter().product();
    let (mut differing, mut worst) = (0, 0);
    for k in 0..samples {
        let got = runner.run(&input_values(k as u32, n)).unwrap_or_else(|e| panic!("{model}: {e}"));
        let row = &want[k * outputs..(k + 1) * outputs];
        assert_eq!(got.len(), outputs, "{model}: output size");
        differing += got.iter().zip(row).filter(|(a, b)| a != b).count();
        worst = got.iter().zip(row).map(|(&a, &b)| (a as i32 - b as i32).abs()).fold(worst, i32::max);
    }
    println!("{model}: {samples} inputs, {differing} of {} outputs differ, largest gap {worst} LSB", samples * outputs);
    (samples, differing, worst)
}

/// FNV-1a of int8 bytes, as `make_reference.py` hashes each layer.
fn fnv1a(values: &[i8]) -> u32 {
    values.iter().fold(0x811c_9dc5, |h, &v| (h ^ v as u8 as u32).wrapping_mul(0x0100_0193))
}

/// Every step's output on the first samples against TFLM's hash of the operator output it
/// makes (one step per operator, or residual blocks fused); returns the outputs compared, or
/// panics naming the first operator that differs.
fn compare_layers(model: &str, fused: bool) -> usize {
    let runner = if fused { runner(model) } else { Int8Model::unfused(&source(model)).unwrap() };
    let (samples, ops, want) = golden::<u32>(&format!("{model}.tflm-layers.npy"));
    let n = runner.input_shape().iter().product();
    let mut compared = 0;
    for k in 0..samples {
        let mut got = Vec::new();
        runner.run_layers(&input_values(k as u32, n), |_, out| got.push(fnv1a(out))).unwrap();
        assert_eq!(got.len(), runner.operators.len(), "{model}: step count");
        for (&op, g) in runner.operators.iter().zip(&got) {
            assert_eq!(*g, want[k * ops + op], "{model}, sample {k}: operator {op}'s output differs from TFLM's");
            compared += 1;
        }
    }
    println!("{model}: {compared} step outputs ({samples} samples × {} steps, fused: {fused}) equal TFLM's", runner.operators.len());
    compared
}

#[test]
fn every_layer_matches_tflm() {
    assert_eq!(compare_layers("kws_ref_model", false), 5 * 13);
    assert_eq!(compare_layers("pretrainedResnet_quant", false), 5 * 16);
    // Fused: the stem, three residual blocks (operators 3, 7 and 11: their ADDs), then the head.
    assert_eq!(runner("pretrainedResnet_quant").operators, [0, 3, 7, 11, 12, 13, 14, 15]);
    assert_eq!(compare_layers("pretrainedResnet_quant", true), 5 * 8);
}

#[test]
fn kws_ds_cnn_matches_tflm_bit_for_bit() {
    let (samples, differing, worst) = compare("kws_ref_model");
    assert_eq!(samples, 100);
    assert_eq!((differing, worst), (0, 0));
}

#[test]
fn resnet8_matches_tflm_bit_for_bit() {
    let (samples, differing, worst) = compare("pretrainedResnet_quant");
    assert_eq!(samples, 100);
    assert_eq!((differing, worst), (0, 0));
}

/// `mote import` writes an int8 model file of the KWS model and `mote run` on it gives TFLM's
/// outputs for a batch of the golden inputs, int8 in and out.
#[test]
fn import_and_run_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source = root.join("../shared/models/mlperf-tiny/kws_ref_model.tflite");
    let (model, input, output) = (dir.path().join("kws.mote"), dir.path().join("x.npy"), dir.path().join("y.npy"));
    let mote = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mote")).args(args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    mote(&["import".as_ref(), source.as_os_str(), "--out".as_ref(), model.as_os_str()]);
    let samples = 3;
    let x: Vec<i8> = (0..samples).flat_map(|k| input_values(k, 490)).collect();
    let mut bytes = Vec::new();
    use npyz::WriterBuilder;
    let mut w = npyz::WriteOptions::<i8>::new().default_dtype().shape(&[samples as u64, 49, 10, 1]).writer(&mut bytes).begin_nd().unwrap();
    w.extend(x.iter().copied()).unwrap();
    w.finish().unwrap();
    std::fs::write(&input, bytes).unwrap();
    mote(&["run".as_ref(), model.as_os_str(), "--input".as_ref(), input.as_os_str(), "--output".as_ref(), output.as_os_str()]);
    let y_bytes = std::fs::read(&output).unwrap();
    let y = npyz::NpyFile::new(y_bytes.as_slice()).unwrap();
    assert_eq!(y.shape(), &[samples as u64, 12]);
    let y: Vec<i8> = y.into_vec().unwrap();
    let (_, outputs, want) = golden::<i8>("kws_ref_model.tflm.npy");
    assert_eq!(y, want[..samples as usize * outputs]);
}
