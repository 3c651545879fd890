//! `mote run` on NumPy `.npy` tensors written by NumPy itself (`tests/fixtures/npy/make_npy.py`):
//! outputs checked against a hand computation, any batch size, and mismatches named.

use mote_cli::run::read_npy;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy").join(name)
}

fn mote(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mote")).args(args).output().expect("run mote")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// input [3] → linear 2 with W = [[1, 2, 3], [4, 5, 6]], b = [0.5, -1] (weight, then bias, in
/// the parameter buffer).
fn hand_model(dir: &Path) -> PathBuf {
    let spec_path = dir.join("lin.toml");
    std::fs::write(&spec_path, "input = [3]\n[[layer]]\nop = \"linear\"\nout = 2\n").unwrap();
    let spec = mote_cli::spec_file::read_spec_file(&spec_path).unwrap().spec;
    let model = dir.join("lin.mote");
    mote_cli::model::save(&model, &spec, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.5, -1.0]).unwrap();
    model
}

#[test]
fn outputs_match_the_hand_computation_at_any_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let model = hand_model(dir.path());
    let out = dir.path().join("y.npy");
    let r = mote(&["run", s(&model), "--input", s(&fixture("x_2x3_f32.npy")), "--output", s(&out)]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    // [1, 0, -1]·W + b = [1 − 3 + 0.5, 4 − 6 − 1] = [−1.5, −3];
    // [0.5, 0.5, 0.5]·W + b = [3 + 0.5, 7.5 − 1] = [3.5, 6.5].
    let y = read_npy(&out, "output").unwrap();
    assert_eq!(y.shape, [2, 2]);
    assert_eq!(y.values, [-1.5, -3.0, 3.5, 6.5]);
    // Five samples: row i is [0.3i, 0.3i + 0.1, 0.3i + 0.2] (NumPy's arange / 10).
    let r = mote(&["run", s(&model), "--input", s(&fixture("x_5x3_f32.npy")), "--output", s(&out), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&r.stdout).expect("stdout is only JSON");
    assert_eq!(report["outputs"][0]["shape"], serde_json::json!([5, 2]));
    let y = read_npy(&out, "output").unwrap();
    for i in 0..5 {
        let x = [0.3 * i as f32, 0.3 * i as f32 + 0.1, 0.3 * i as f32 + 0.2];
        let want = [x[0] + 2.0 * x[1] + 3.0 * x[2] + 0.5, 4.0 * x[0] + 5.0 * x[1] + 6.0 * x[2] - 1.0];
        for (k, w) in want.iter().enumerate() {
            assert!((y.values[2 * i + k] - w).abs() < 1e-5, "row {i}: {:?} vs {want:?}", &y.values[2 * i..2 * i + 2]);
        }
    }
}

#[test]
fn mismatched_tensors_are_refused_naming_the_file_and_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = hand_model(dir.path());
    let out = dir.path().join("y.npy");
    for (name, needles) in [
        ("x_2x3_f64.npy", &["x_2x3_f64.npy", "dtype float64", "`input` takes float32"][..]),
        ("x_2x4_f32.npy", &["x_2x4_f32.npy", "shape [2, 4]", "`input` [N, 3]"]),
        ("x_2x3_f32_fortran.npy", &["Fortran", "C order"]),
        ("make_npy.py", &["make_npy.py", "not a NumPy .npy file"]),
    ] {
        let r = mote(&["run", s(&model), "--input", s(&fixture(name)), "--output", s(&out)]);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{name}: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{name}: {stderr:?} should contain {n:?}");
        }
        assert!(!out.exists(), "nothing written for {name}");
    }
    let x = fixture("x_2x3_f32.npy");
    let r = mote(&["run", s(&model), "--input", s(&x), "--input", s(&x), "--output", s(&out)]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("has 1 input(s) (`input`), got 2"));
}

/// Inputs the fuzzer found (`cargo xtask fuzz`, target npy): headers claiming gigabytes made the
/// reader allocate them, and a header of nested braces and escapes made its parser hang; now
/// each is a typed error, at once.
#[test]
fn fuzzer_finds_are_refused() {
    for name in ["fuzz-oom-header.npy", "fuzz-oom-2.npy", "fuzz-timeout-header.npy"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let started = std::time::Instant::now();
        let err = mote_cli::run::parse_npy(&bytes, "input").expect_err(name);
        assert!(err.contains("not a NumPy .npy file") || err.contains("needs more data"), "{name}: {err}");
        assert!(started.elapsed().as_secs() < 2, "{name} took {:?}", started.elapsed());
    }
}
