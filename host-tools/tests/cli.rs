//! The `mote` binary end to end on the real MNIST split (`cargo xtask data` puts it in
//! data/mnist; `cargo xtask test` does that first): a short training run, eval, inspect,
//! predict, and non-zero exits that name the problem for bad input.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mnist() -> PathBuf {
    let dir = root().join("data/mnist");
    assert!(dir.join("train-images-idx3-ubyte").exists(), "{} is missing: run `cargo xtask data` first", dir.display());
    dir
}

fn mote(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mote")).args(args).current_dir(root()).output().expect("run mote")
}

/// Runs `mote`, requires success, and returns the JSON object on the last stdout line.
fn mote_json(args: &[&str]) -> Value {
    let out = mote(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "mote {args:?} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.lines().last().expect("output")).expect("last line is JSON")
}

/// Requires failure with exit code 1 (not a panic) and a message containing every needle.
fn fails(args: &[&str], needles: &[&str]) {
    let out = mote(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "mote {args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr {stderr:?} should contain {n:?}");
    }
}

#[test]
fn train_eval_inspect_predict_on_real_digits() {
    let data = mnist();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("cnn.mote");
    let plot = dir.path().join("curves.png");
    let (m, p, d) = (model.to_str().unwrap(), plot.to_str().unwrap(), data.to_str().unwrap());
    let train =
        mote_json(&["train", "models/mnist-cnn.toml", "--data", d, "--epochs", "2", "--limit", "2000", "--out", m, "--json", "--plot", p]);
    let test_accuracy = train["test_accuracy"].as_f64().unwrap();
    // 2,000 digits, 2 epochs: far above chance (10%).
    assert!(test_accuracy > 0.8, "{train}");
    assert!(train["final_train_loss"].as_f64().unwrap() < 0.8 && train["epochs"] == 2);
    assert!(train["train_seconds"].as_f64().unwrap() > 0.0 && train["samples_per_second"].as_f64().unwrap() > 0.0);
    assert!(std::fs::read(&plot).unwrap().starts_with(b"\x89PNG"));

    // eval of the written file reproduces the accuracy train measured on the same split.
    let eval = mote_json(&["eval", m, "--data", d, "--json"]);
    assert_eq!(eval["accuracy"].as_f64().unwrap(), test_accuracy);
    assert_eq!(eval["samples"], 2000);
    let confusion = eval["confusion"].as_array().unwrap();
    let total: u64 = confusion.iter().flat_map(|r| r.as_array().unwrap()).map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 2000);

    // inspect reads the model file like the spec.
    let inspect = mote_json(&["inspect", m, "--json", "--batch", "4"]);
    assert_eq!(inspect["total_params"], 5258);
    assert_eq!(inspect["layers"][0]["output_shape"], serde_json::json!([4, 8, 26, 26]));

    // predict agrees with eval on test digit 0, given as PGM.
    let images = std::fs::read(data.join("t10k-images-idx3-ubyte")).unwrap();
    let mut pgm = b"P5\n# test digit 0\n28 28\n255\n".to_vec();
    pgm.extend_from_slice(&images[16..16 + 784]);
    let pgm_path = dir.path().join("digit.pgm");
    std::fs::write(&pgm_path, pgm).unwrap();
    // The same digit as an RGB PNG (gray in every channel) and as a dark-on-light PNG.
    let digit = &images[16..16 + 784];
    let rgb: Vec<u8> = digit.iter().flat_map(|&v| [v, v, v]).collect();
    let inverted: Vec<u8> = digit.iter().map(|&v| 255 - v).collect();
    let rgb_path = dir.path().join("digit-rgb.png");
    let inv_path = dir.path().join("digit-inverted.png");
    write_png(&rgb_path, &rgb, png::ColorType::Rgb);
    write_png(&inv_path, &inverted, png::ColorType::Grayscale);
    let out = mote(&["predict", m, pgm_path.to_str().unwrap(), rgb_path.to_str().unwrap(), inv_path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!("class {} ", eval["predictions"][0]);
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.contains(&want)).count(), 3, "{stdout} should say {want} three times");
}

fn write_png(path: &Path, data: &[u8], color: png::ColorType) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), 28, 28);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

#[test]
fn inspect_reports_hand_counted_figures() {
    let v = mote_json(&["inspect", "models/mnist-cnn.toml", "--json"]);
    let layers = v["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["conv2d_0", "relu_1", "maxpool2d_2", "conv2d_3", "relu_4", "maxpool2d_5", "flatten_6", "linear_7"]);
    let params: Vec<u64> = layers.iter().map(|l| l["params"].as_u64().unwrap()).collect();
    assert_eq!(params, [80, 0, 0, 1168, 0, 0, 0, 4010]);
    assert_eq!(layers[3]["output_shape"], serde_json::json!([1, 16, 11, 11]));
    // MACs by hand: 26·26·8·9 = 48,672; 11·11·16·72 = 139,392; 400·10 = 4,000.
    let macs: Vec<u64> = layers.iter().map(|l| l["macs"].as_u64().unwrap()).collect();
    assert_eq!(macs, [48_672, 0, 0, 139_392, 0, 0, 0, 4_000]);
    assert_eq!(v["total_macs"], 192_064);
    assert_eq!(v["total_params"], 5258);
    assert_eq!(v["flash_bytes"], 4 * 5258);
    let arena = &v["arena_bytes"];
    assert!(arena["inference"].as_u64().unwrap() >= arena["inference_lower_bound"].as_u64().unwrap());
    assert!(arena["training"].as_u64().unwrap() > arena["inference"].as_u64().unwrap());
}

#[test]
fn bad_input_exits_non_zero_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad.toml");
    std::fs::write(&spec, "input = [1, 28, 28]\n[[layer]]\nop = \"linear\"\nname = \"head\"\n").unwrap();
    fails(&["inspect", spec.to_str().unwrap()], &["bad.toml", "layer 0 (head)", "linear needs `out`"]);
    let garbage = dir.path().join("garbage.mote");
    std::fs::write(&garbage, b"MOTE\x01\x00\x00\x00\x10\x00\x00\x00").unwrap();
    fails(&["eval", garbage.to_str().unwrap(), "--data", "data/mnist"], &["garbage.mote", "truncated"]);
    std::fs::write(&garbage, b"").unwrap();
    fails(&["predict", garbage.to_str().unwrap(), "x.png"], &["garbage.mote", "empty"]);
    fails(&["train", "models/mnist-cnn.toml", "--data", "/nonexistent", "--out", "x.mote"], &["/nonexistent", "cargo xtask data"]);
    // Command-line mistakes are usage errors: exit status 2, the flag named.
    let out = mote(&["train", "models/mnist-cnn.toml", "--data", "data/mnist", "--out", "x.mote", "--lr", "fast"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--lr") && stderr.contains("fast"), "{stderr}");
}

/// `mote export` refuses a model the firmware cannot hold, naming its capacities, and writes
/// nothing; a model that fits is exported.
#[test]
fn export_refuses_models_too_big_for_the_firmware() {
    use mote_cli::model::{build, save};
    use mote_cli::spec_file::read_spec_file;
    let dir = tempfile::tempdir().unwrap();
    // Twelve linear layers: 3 nodes each (weight, bias, op), 36 in all plus input and loss,
    // over the firmware's 32.
    let mut toml = String::from("name = \"deep\"\ninput = [16]\n");
    for _ in 0..12 {
        toml.push_str("[[layer]]\nop = \"linear\"\nout = 16\n");
    }
    toml.push_str("[loss]\nop = \"cross_entropy\"\n");
    let spec_path = dir.path().join("deep.toml");
    std::fs::write(&spec_path, toml).unwrap();
    let spec = read_spec_file(&spec_path).unwrap().spec;
    let (g, _) = build(&spec_path, &spec, 1).unwrap();
    let model = dir.path().join("deep.mote");
    save(&model, &spec, &vec![0.0; g.params_len()]).unwrap();
    let out = dir.path().join("out.mote");
    let (model_arg, out_arg) = (model.to_str().unwrap(), out.to_str().unwrap());
    fails(&["export", model_arg, "--out", out_arg], &["deep.mote", "does not fit the firmware", "32 nodes"]);
    assert!(!out.exists());
    let shipped = root().join("models/mnist-cnn.toml");
    let spec = read_spec_file(&shipped).unwrap().spec;
    let (g, _) = build(&shipped, &spec, 1).unwrap();
    save(&model, &spec, &vec![0.0; g.params_len()]).unwrap();
    let ok = mote(&["export", model_arg, "--out", out_arg]);
    assert!(ok.status.success() && out.exists(), "{}", String::from_utf8_lossy(&ok.stderr));
}
