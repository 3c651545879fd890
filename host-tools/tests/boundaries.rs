//! Every boundary of the `mote` CLI holds (issue 8's cases, one test or more each): inputs are
//! checked against everything they must agree with before the long work starts, bad ones get
//! a message naming the file, field or flag and a non-zero exit, and nothing is left half
//! written. Data sets here are small synthetic IDX files, so each case runs in milliseconds.

use mote_cli::idx::encode_idx;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mote(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mote")).args(args).current_dir(root()).output().expect("run mote")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Requires exit status `code` and every needle in stderr.
fn exits(code: i32, args: &[&str], needles: &[&str]) -> String {
    let out = mote(args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "mote {args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr {stderr:?} should contain {n:?}");
    }
    stderr
}

/// A data folder with `train` and `t10k` splits of `n` images of `side`×`side` each, labels
/// `label(i)`; pixels deterministic.
/// (samples, image side, label of sample i) of one split.
type SplitSpec = (usize, usize, fn(usize) -> u8);

fn data(dir: &Path, name: &str, splits: [SplitSpec; 2]) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    for ((n, side, label), prefix) in splits.into_iter().zip(["train", "t10k"]) {
        let pixels: Vec<u8> = (0..n * side * side).map(|i| (i * 37 % 251) as u8).collect();
        let labels: Vec<u8> = (0..n).map(label).collect();
        std::fs::write(folder.join(format!("{prefix}-images-idx3-ubyte")), encode_idx(&[n, side, side], &pixels)).unwrap();
        std::fs::write(folder.join(format!("{prefix}-labels-idx1-ubyte")), encode_idx(&[n], &labels)).unwrap();
    }
    folder
}

fn digits(i: usize) -> u8 {
    (i % 10) as u8
}

/// A small spec file: flatten then linear to `classes`, on `side`×`side` images.
fn spec(dir: &Path, name: &str, side: usize, classes: usize, extra: &str) -> PathBuf {
    let path = dir.join(name);
    let toml = format!(
        "input = [1, {side}, {side}]\n[[layer]]\nop = \"flatten\"\n[[layer]]\nop = \"linear\"\nout = {classes}\n{extra}\n[train]\nepochs = 1\nbatch = 4\n"
    );
    std::fs::write(&path, toml).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A trained model of `spec` on `data`, written to `out`.
fn trained(spec: &Path, data: &Path, out: &Path) {
    let t = mote(&["train", s(spec), "--data", s(data), "--out", s(out)]);
    assert!(t.status.success(), "{}", text(&t.stderr));
}

#[test]
fn case_1_image_sizes_of_both_splits_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let good = data(dir.path(), "good", [(40, 8, digits), (20, 8, digits)]);
    let spec8 = spec(dir.path(), "s8.toml", 8, 10, "");
    let model = dir.path().join("m.mote");
    trained(&spec8, &good, &model);
    for (name, side) in [("smaller", 6), ("larger", 10)] {
        let bad = data(dir.path(), name, [(40, 8, digits), (20, side, digits)]);
        let images = format!("{name}/t10k-images-idx3-ubyte");
        let holds = format!("holds {side}×{side} images");
        exits(1, &["eval", s(&model), "--data", s(&bad)], &[&images, &holds, "m.mote", "[1, 8, 8]"]);
        // train refuses before its first step: no model is written.
        let out = dir.path().join(format!("{name}.mote"));
        exits(1, &["train", s(&spec8), "--data", s(&bad), "--out", s(&out)], &[&images, &holds]);
        assert!(!out.exists());
    }
}

#[test]
fn case_2_divergence_stops_training_and_non_finite_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.mote");
    let args = ["train", "models/mnist-mlp.toml", "--data", "data/mnist", "--out", s(&out), "--epochs", "2", "--limit", "2000"];
    let args: Vec<&str> = args.into_iter().chain(["--optimizer", "sgd", "--lr", "1e6"]).collect();
    exits(1, &args, &["training diverged at epoch 1", "nothing was written", "--lr"]);
    assert!(!out.exists() && !out.with_extension("mote.tmp").exists());
    // A file with a NaN weight (as an earlier build wrote them) is refused by every reader.
    let spec8 = spec(dir.path(), "s8.toml", 8, 10, "");
    let good = data(dir.path(), "good", [(40, 8, digits), (20, 8, digits)]);
    let model = dir.path().join("m.mote");
    trained(&spec8, &good, &model);
    let view_spec = mote_core::model::read_model(&std::fs::read(&model).unwrap()).unwrap().spec;
    let mut params = vec![0.5f32; 8 * 8 * 10 + 10];
    params[7] = f32::NAN;
    let nan_model = dir.path().join("nan.mote");
    mote_cli::model::save(&nan_model, &view_spec, &params).unwrap();
    let image = dir.path().join("x.pgm");
    std::fs::write(&image, b"P5\n8 8\n255\n".iter().copied().chain([9u8; 64]).collect::<Vec<_>>()).unwrap();
    let firmware_out = dir.path().join("fw.mote");
    for args in [
        vec!["eval", s(&nan_model), "--data", s(&good)],
        vec!["predict", s(&nan_model), s(&image)],
        vec!["export", s(&nan_model), "--out", s(&firmware_out)],
        vec!["inspect", s(&nan_model)],
    ] {
        exits(1, &args, &["nan.mote", "1 non-finite parameter values (the first at index 7)"]);
    }
    assert!(!firmware_out.exists());
}

#[test]
fn case_3_hyperparameters_are_checked_on_the_command_line_and_in_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let good = data(dir.path(), "good", [(40, 8, digits), (20, 8, digits)]);
    let spec8 = spec(dir.path(), "s8.toml", 8, 10, "");
    let out = dir.path().join("m.mote");
    for lr in ["nan", "inf", "-1", "0"] {
        exits(2, &["train", s(&spec8), "--data", s(&good), "--out", s(&out), "--lr", lr], &["--lr", "finite and > 0"]);
    }
    for (line, needle) in [
        ("momentum = 5.0", "`momentum` must be in [0, 1), got 5"),
        ("betas = [1.0, 1.0]", "`betas` [0] must be in [0, 1), got 1"),
        ("betas = [0.9, 1.5]", "`betas` [1] must be in [0, 1), got 1.5"),
        ("weight_decay = -10.0", "`weight_decay` must be finite and ≥ 0, got -10"),
        ("lr = -0.1", "`lr` must be finite and > 0, got -0.1"),
    ] {
        let path = dir.path().join("h.toml");
        let toml = std::fs::read_to_string(&spec8).unwrap().replace("[train]\n", &format!("[train]\n{line}\n"));
        std::fs::write(&path, toml).unwrap();
        exits(1, &["train", s(&path), "--data", s(&good), "--out", s(&out)], &["h.toml", "[train]", needle]);
    }
    // Integers are numbers too.
    let path = dir.path().join("ok.toml");
    std::fs::write(&path, std::fs::read_to_string(&spec8).unwrap().replace("[train]\n", "[train]\nbetas = [0.9, 0]\n")).unwrap();
    trained(&path, &good, &out);
}

#[test]
fn case_4_mse_trains_from_class_labels_as_one_hot_targets() {
    let dir = tempfile::tempdir().unwrap();
    let good = data(dir.path(), "good", [(40, 8, digits), (20, 8, digits)]);
    let spec8 = spec(dir.path(), "mse.toml", 8, 10, "[loss]\nop = \"mse\"");
    let out = dir.path().join("mse.mote");
    let t = mote(&["train", s(&spec8), "--data", s(&good), "--out", s(&out), "--json", "--epochs", "3"]);
    assert!(t.status.success(), "{}", text(&t.stderr));
    let report: Value = serde_json::from_slice(&t.stdout).expect("stdout is only JSON");
    // Mean squared error against a one-hot row of 10: at most 1/10 per value at the start.
    let loss = report["final_train_loss"].as_f64().unwrap();
    assert!(loss.is_finite() && loss < 1.0, "{report}");
}

fn write_png(path: &Path, width: u32, height: u32, color: png::ColorType, data: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

#[test]
fn case_5_predict_reads_alpha_area_averages_refuses_bombs_and_names_blank_images() {
    use mote_cli::predict::{read_image, MAX_SIDE};
    let dir = tempfile::tempdir().unwrap();
    // A digit drawn only in the alpha channel (black, opaque strokes on a transparent canvas).
    let mut rgba = vec![0u8; 28 * 28 * 4];
    for y in 6..22 {
        rgba[(y * 28 + 14) * 4 + 3] = 255;
    }
    let alpha = dir.path().join("alpha.png");
    write_png(&alpha, 28, 28, png::ColorType::Rgba, &rgba);
    let img = read_image(&alpha, 28, 28).unwrap();
    assert!(!img.blank);
    assert_eq!(img.pixels[10 * 28 + 14], 1.0, "the stroke is the light digit");
    assert_eq!(img.pixels[10 * 28 + 3], 0.0, "the canvas is the dark background");
    // A 3-pixel stroke on a 560×560 canvas keeps 3/20 of its brightness in its 28×28 column.
    let mut canvas = vec![255u8; 560 * 560];
    for y in 100..460 {
        for x in 280..283 {
            canvas[y * 560 + x] = 0;
        }
    }
    let big = dir.path().join("canvas.png");
    write_png(&big, 560, 560, png::ColorType::Grayscale, &canvas);
    let img = read_image(&big, 28, 28).unwrap();
    let column = img.pixels[14 * 28 + 14];
    assert!((column - 0.15).abs() < 0.02, "area-averaged stroke: {column}");
    // Blank and 1×1 images are said to be blank.
    for (name, w, h) in [("blank.png", 40, 30), ("dot.png", 1, 1)] {
        let path = dir.path().join(name);
        write_png(&path, w, h, png::ColorType::Grayscale, &vec![200u8; (w * h) as usize]);
        assert!(read_image(&path, 28, 28).unwrap().blank, "{name}");
    }
    // A 20000×20000 PNG header is refused before anything is decoded or allocated.
    let bomb = dir.path().join("bomb.png");
    std::fs::write(&bomb, png_header_only(20_000, 20_000)).unwrap();
    let started = std::time::Instant::now();
    let err = read_image(&bomb, 28, 28).err().expect("refused").to_string();
    assert!(err.contains("bomb.png") && err.contains(&format!("larger than {MAX_SIDE}×{MAX_SIDE}")), "{err}");
    assert!(started.elapsed().as_secs() < 5);
}

/// The signature and IHDR chunk of a `width`×`height` 8-bit gray PNG, and nothing more.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut crc = flate2::Crc::new();
    crc.update(&ihdr);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc.sum().to_be_bytes());
    out
}

#[test]
fn case_5_predict_warns_on_a_blank_image_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let good = data(dir.path(), "good", [(40, 28, digits), (20, 28, digits)]);
    let spec28 = spec(dir.path(), "s28.toml", 28, 10, "");
    let model = dir.path().join("m.mote");
    trained(&spec28, &good, &model);
    let blank = dir.path().join("blank.png");
    write_png(&blank, 28, 28, png::ColorType::Grayscale, &[255u8; 784]);
    let out = mote(&["predict", s(&model), s(&blank), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("blank.png is blank"), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    assert_eq!(report["predictions"][0]["blank"], true);
}

#[test]
fn case_6_a_layer_named_input_and_duplicate_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.toml");
    let head = "input = [4]\n[[layer]]\nop = \"linear\"\nout = 3\n";
    std::fs::write(&path, format!("{head}name = \"input\"\n")).unwrap();
    exits(1, &["inspect", s(&path)], &["layer 0 (input)", "`input` names the model's input"]);
    let toml = "input = [4]\n[[layer]]\nop = \"linear\"\nout = 3\nname = \"a\"\n[[layer]]\nop = \"relu\"\nname = \"a\"\n";
    std::fs::write(&path, toml).unwrap();
    exits(1, &["inspect", s(&path)], &["layer 1 (a)", "already layer 0's"]);
}

#[test]
fn case_9_labels_are_checked_against_the_model_naming_the_file_and_sample() {
    let dir = tempfile::tempdir().unwrap();
    let spec8 = spec(dir.path(), "s8.toml", 8, 10, "");
    let out = dir.path().join("m.mote");
    let bad_train = data(dir.path(), "bad-train", [(40, 8, |i| if i == 13 { 12 } else { digits(i) }), (20, 8, digits)]);
    exits(
        1,
        &["train", s(&spec8), "--data", s(&bad_train), "--out", s(&out)],
        &["bad-train/train-labels-idx1-ubyte", "sample 13 has label 12"],
    );
    let bad_test = data(dir.path(), "bad-test", [(40, 8, digits), (20, 8, |i| if i == 5 { 10 } else { digits(i) })]);
    exits(
        1,
        &["train", s(&spec8), "--data", s(&bad_test), "--out", s(&out)],
        &["bad-test/t10k-labels-idx1-ubyte", "sample 5 has label 10"],
    );
    assert!(!out.exists());
    // A model with 5 outputs on 10-class data: a model/data mismatch, said as such.
    let spec5 = spec(dir.path(), "s5.toml", 8, 5, "");
    let good = data(dir.path(), "good", [(40, 8, digits), (20, 8, digits)]);
    exits(1, &["train", s(&spec5), "--data", s(&good), "--out", s(&out)], &["has 5 outputs (labels 0 to 4), the data has 10 classes"]);
    let model5 = dir.path().join("m5.mote");
    let five = data(dir.path(), "five", [(40, 8, |i| (i % 5) as u8), (20, 8, |i| (i % 5) as u8)]);
    trained(&spec5, &five, &model5);
    exits(1, &["eval", s(&model5), "--data", s(&good)], &["good/t10k-labels-idx1-ubyte", "the data has 10 classes"]);
}

#[test]
fn case_10_output_paths_are_checked_before_training_and_nothing_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let good = data(dir.path(), "good", [(40, 8, digits), (20, 8, digits)]);
    let spec8 = spec(dir.path(), "s8.toml", 8, 10, "");
    let before = std::fs::read(&spec8).unwrap();
    let missing = dir.path().join("missing/m.mote");
    for (out, needle) in
        [(dir.path().to_path_buf(), "is a folder"), (missing.clone(), "does not exist"), (spec8.clone(), "is also an input")]
    {
        exits(1, &["train", s(&spec8), "--data", s(&good), "--out", s(&out)], &["--out", needle]);
    }
    assert_eq!(std::fs::read(&spec8).unwrap(), before, "the spec is untouched");
    let out = dir.path().join("m.mote");
    exits(1, &["train", s(&spec8), "--data", s(&good), "--out", s(&out), "--plot", s(&missing)], &["--plot", "does not exist"]);
    assert!(!out.exists());
    let leftovers: Vec<_> =
        std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains("tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn case_11_a_model_over_the_memory_cap_is_refused_before_anything_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let good = data(dir.path(), "good", [(40, 28, digits), (20, 28, digits)]);
    // 784 → 863,000 → 10: 677 M parameters, 2.7 GB of weights and 8 GB with Adam's state.
    let path = dir.path().join("huge.toml");
    let toml = "input = [1, 28, 28]\n[[layer]]\nop = \"flatten\"\n[[layer]]\nop = \"linear\"\nout = 863000\n[[layer]]\nop = \"linear\"\nout = 10\n";
    std::fs::write(&path, toml).unwrap();
    let out = dir.path().join("h.mote");
    let started = std::time::Instant::now();
    exits(
        1,
        &["train", s(&path), "--data", s(&good), "--out", s(&out), "--batch", "4"],
        &["MB, over the 4096 MB allowed", "--max-memory-mb"],
    );
    assert!(started.elapsed().as_secs() < 10, "refused before allocating");
}

#[test]
fn case_12_a_closed_pipe_ends_mote_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mote"))
        .args(["inspect", "models/mnist-mlp.toml"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(101), "a panic: {}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"), "{}", text(&out.stderr));
}

#[test]
fn case_13_the_cli_follows_the_usual_conventions() {
    for args in [&["--help"][..], &["train", "--help"], &["help", "eval"], &["--version"]] {
        let out = mote(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty() && out.stderr.is_empty(), "{args:?}: help goes to stdout");
    }
    assert!(text(&mote(&["train", "--help"]).stdout).contains("--lr"));
    // Extra arguments and flags of other commands are refused.
    exits(2, &["inspect", "models/mnist-cnn.toml", "models/mnist-mlp.toml"], &["unexpected argument"]);
    exits(2, &["eval", "x.mote", "--data", "data/mnist", "--epochs", "3"], &["--epochs"]);
    exits(2, &["frobnicate"], &["frobnicate"]);
    // --batch 0 is the flag's fault, not the spec's.
    exits(2, &["train", "models/mnist-cnn.toml", "--data", "data/mnist", "--out", "x.mote", "--batch", "0"], &["--batch", "≥ 1"]);
    // --json: stdout is exactly one JSON document.
    let out = mote(&["inspect", "models/mnist-cnn.toml", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    assert_eq!(report["total_params"], 5258);
    // An image op on an input without a channel dimension says what to write.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "input = [28, 28]\n[[layer]]\nop = \"conv2d\"\nout_channels = 4\nkernel = 3\n").unwrap();
    exits(1, &["inspect", s(&path)], &["no channel dimension", "input = [1, 28, 28]"]);
}

/// A model file of `spec_toml` with zero weights.
fn model_file(dir: &Path, name: &str, spec_toml: &str) -> PathBuf {
    let spec_path = dir.join(format!("{name}.toml"));
    std::fs::write(&spec_path, spec_toml).unwrap();
    let spec = mote_cli::spec_file::read_spec_file(&spec_path).unwrap().spec;
    let (g, _) = mote_cli::model::build(&spec_path, &spec, 1).unwrap();
    let path = dir.join(format!("{name}.mote"));
    mote_cli::model::save(&path, &spec, &vec![0.0; g.params_len()]).unwrap();
    path
}

#[test]
fn case_7_export_checks_the_boards_flash_and_ram_before_anything_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fw.mote");
    // mnist-mlp: 101,770 weights; its training firmware holds them twice (momentum) in RAM.
    let mlp = model_file(dir.path(), "mlp", &std::fs::read_to_string(root().join("models/mnist-mlp.toml")).unwrap());
    exits(
        1,
        &["export", s(&mlp), "--out", s(&out)],
        &["mlp.mote", "does not fit mps2-an386", "the train firmware needs 813 KB of RAM", "has 256 KB"],
    );
    assert!(!out.exists());
    let ok = mote(&["export", s(&mlp), "--out", s(&out), "--only", "infer"]);
    assert!(ok.status.success() && out.exists(), "{}", text(&ok.stderr));
    // The firmware's model folder is made when missing (it is git-ignored: a fresh clone has none).
    let nested = dir.path().join("firmware/model/model.mote");
    let ok = mote(&["export", s(&mlp), "--out", s(&nested), "--only", "infer"]);
    assert!(ok.status.success() && nested.exists(), "{}", text(&ok.stderr));
    // 2.5 MB of weights: over the 1 MB of flash.
    let big = model_file(dir.path(), "big", "input = [784]\n[[layer]]\nop = \"linear\"\nout = 800\n");
    let out2 = dir.path().join("fw2.mote");
    exits(
        1,
        &["export", s(&big), "--out", s(&out2), "--only", "infer"],
        &["the infer firmware needs", "KB of flash, mps2-an386 has 1024 KB"],
    );
    assert!(!out2.exists());
    exits(1, &["export", s(&big), "--out", s(&out2), "--board", "esp32"], &["unknown board `esp32`", "nrf52840"]);
    // inspect tells which boards hold the firmware.
    let report: Value = serde_json::from_slice(&mote(&["inspect", s(&mlp), "--json"]).stdout).unwrap();
    let boards = report["boards"].as_array().unwrap();
    assert_eq!(boards.len(), 5);
    assert_eq!(boards[0]["binaries"][0]["fits"], true, "{}", boards[0]);
    assert_eq!(boards[0]["binaries"][1]["fits"], false, "{}", boards[0]);
}
