//! Spec files: the shipped specs, every op, and errors that name the file, the layer and
//! what was expected. Parameter counts are hand-counted in the comments.

use mote_cli::model::build;
use mote_cli::spec_file::{parse_spec, read_spec_file, OptimizerKind, Schedule};
use std::path::{Path, PathBuf};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models").join(name)
}

#[test]
fn shipped_specs_have_the_hand_counted_parameters() {
    // conv 1→8 3×3: 8·9 + 8 = 80; conv 8→16 3×3: 16·72 + 16 = 1,168;
    // 28→26→13→11→5, so linear 16·5·5 = 400 → 10: 4,010. Total 5,258.
    let cnn = read_spec_file(&shipped("mnist-cnn.toml")).unwrap();
    let (g, built) = build(Path::new("cnn"), &cnn.spec, 1).unwrap();
    assert_eq!(g.trainable_params(), 5_258);
    let per_layer: Vec<usize> = built.layers.iter().map(|&n| g.op_params(n).unwrap()).collect();
    assert_eq!(per_layer, [80, 0, 0, 1_168, 0, 0, 0, 4_010]);
    assert_eq!(g.shape(built.output).unwrap().dims(), &[1, 10]);
    assert_eq!(cnn.train.optimizer, OptimizerKind::Adam);
    assert_eq!(cnn.train.schedule, Schedule::Cosine);

    // 784·128 + 128 = 100,480; 128·10 + 10 = 1,290. Total 101,770.
    let mlp = read_spec_file(&shipped("mnist-mlp.toml")).unwrap();
    let (g, _) = build(Path::new("mlp"), &mlp.spec, 1).unwrap();
    assert_eq!(g.trainable_params(), 101_770);
}

#[test]
fn every_op_parses_and_builds() {
    let text = r#"
name = "all-ops"
input = [2, 9, 9]
[[layer]]
op = "conv2d"
name = "stem"
out_channels = 4
kernel = [3, 3]
padding = 1
[[layer]]
op = "batchnorm"
[[layer]]
op = "leaky_relu"
slope = 0.1
[[layer]]
op = "maxpool2d"
kernel = 3
stride = 2
padding = 1
[[layer]]
op = "avgpool2d"
kernel = 2
stride = 1
[[layer]]
op = "sigmoid"
[[layer]]
op = "tanh"
name = "t"
[[layer]]
op = "square"
[[layer]]
op = "exp"
[[layer]]
op = "add"
inputs = ["t", "exp_8"]
[[layer]]
op = "mul"
inputs = ["add_9", "t"]
[[layer]]
op = "sub"
inputs = ["mul_10", "t"]
[[layer]]
op = "relu"
[[layer]]
op = "global_avgpool"
[[layer]]
op = "linear"
out = 6
bias = false
[[layer]]
op = "layernorm"
[[layer]]
op = "dropout"
p = 0.2
[[layer]]
op = "softmax"
[[layer]]
op = "log_softmax"
[[layer]]
op = "flatten"
[loss]
op = "mse"
"#;
    let spec = parse_spec(text).unwrap().spec;
    assert_eq!(spec.layers.len(), 20);
    let (g, built) = build(Path::new("all"), &spec, 3).unwrap();
    // conv 2→4 3×3 with bias: 4·18 + 4 = 76; batchnorm 4 + 4 = 8; linear 4→6 no bias: 24;
    // layernorm 6 + 6 = 12. Total 120.
    assert_eq!(g.trainable_params(), 120);
    assert_eq!(g.shape(built.layers[3]).unwrap().dims(), &[3, 4, 5, 5]);
    assert_eq!(g.shape(built.output).unwrap().dims(), &[3, 6]);
}

/// The error for `text`, as `mote` prints it for file `bad.toml`.
fn error_of(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    match read_spec_file(&path) {
        Err(e) => e.to_string(),
        Ok(file) => build(&path, &file.spec, 1).map(|_| ()).expect_err("the spec must be refused").to_string(),
    }
}

const HEAD: &str = "input = [1, 8, 8]\n";

#[test]
fn errors_name_the_file_the_layer_and_what_was_expected() {
    let cases: &[(&str, &[&str])] = &[
        ("[[layer]]\nop = \"convolve\"\n", &["bad.toml", "layer 0 (convolve_0)", "unknown op `convolve`", "conv2d"]),
        ("[[layer]]\nop = \"flatten\"\n[[layer]]\nop = \"linear\"\n", &["layer 1 (linear_1)", "linear needs `out`"]),
        ("[[layer]]\nop = \"conv2d\"\nname = \"c1\"\nout_channels = 4\n", &["layer 0 (c1)", "needs `kernel`"]),
        ("[[layer]]\nop = \"relu\"\nslope = 2\n", &["layer 0 (relu_0)", "unknown key `slope`"]),
        ("[[layer]]\nop = \"relu\"\n[[layer]]\nop = \"add\"\ninputs = [\"relu_0\", \"nope\"]\n", &["layer 1 (add_1)", "`nope`"]),
        ("[[layer]]\nop = \"conv2d\"\nout_channels = 2\nkernel = 9\n", &["layer 0 (conv2d_0)", "conv2d", "[1, 1, 8, 8]", "[2, 1, 9, 9]"]),
        ("[[layer]]\nop = \"flatten\"\n[[layer]]\nop = \"maxpool2d\"\nkernel = 2\n", &["layer 1 (maxpool2d_1)", "[1, 64]"]),
        ("[[layer]]\nop = \"relu\"\ninputs = [\"a\", \"b\"]\n", &["layer 0 (relu_0)", "takes 1 input(s), got 2"]),
        ("[[layer]]\nop = \"dropout\"\np = 1.5\n", &["layer 0 (dropout_0)", "`p` must be a number in [0, 1), got 1.5"]),
        (
            "[[layer]]\nop = \"conv2d\"\nout_channels = 2\nkernel = 3\nstride = [1, 0]\n",
            &["conv2d: `stride` must be an integer ≥ 1", "got [1, 0]"],
        ),
        ("[[layer]]\nop = \"linear\"\nout = 0\n", &["linear: `out` must be an integer ≥ 1, got 0"]),
        ("[[layer]]\nop = \"batchnorm\"\neps = nan\n", &["batchnorm: `eps` must be a finite number ≥ 0, got NaN"]),
        ("[[layer]]\nop = \"linear\"\nout = -3\n", &["layer 0 (linear_0)", "`out` must be a non-negative integer"]),
        ("[[layer]]\nop = \"relu\"\n[loss]\nop = \"hinge\"\n", &["bad.toml", "unknown loss `hinge`"]),
        ("[[layer]]\nop = \"relu\"\n[train]\noptimizer = \"lbfgs\"\n", &["[train]", "unknown optimizer `lbfgs`"]),
        ("[[layer]\nop = \"relu\"\n", &["bad.toml", "invalid TOML"]),
        ("colour = 3\n[[layer]]\nop = \"relu\"\n", &["unknown key `colour`"]),
    ];
    for (body, needles) in cases {
        let msg = error_of(&format!("{HEAD}{body}"));
        for n in *needles {
            assert!(msg.contains(n), "error {msg:?} should contain {n:?}");
        }
    }
    assert!(error_of("[[layer]]\nop = \"relu\"\n").contains("missing `input`"));
    assert!(error_of(HEAD).contains("no layers"));
}
