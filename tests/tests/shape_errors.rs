//! Every op refuses bad shapes and arguments with a typed error naming the op and the
//! shapes, and a refused call leaves the graph exactly as it was.

use mote_core::model::{LayerOp, OpInfo, SettingDefault, SettingKind, SettingValue, LAYER_OPS};
use mote_core::ops::{Conv2d, Op};
use mote_core::{Error, Graph, Init, NodeId, Result};

/// Asserts `build` fails with an error whose message names `op` and contains every `needles`,
/// and that the graph's nodes and parameter count are unchanged.
fn refused(g: &mut Graph, op: &str, needles: &[&str], build: impl FnOnce(&mut Graph) -> Result<NodeId>) -> Error {
    let (nodes, params) = (g.nodes().len(), g.params_len());
    let err = build(g).expect_err("must be refused");
    let msg = err.to_string();
    assert!(msg.starts_with(op), "{msg:?} should name {op}");
    for n in needles {
        assert!(msg.contains(n), "{msg:?} should mention {n}");
    }
    assert_eq!((g.nodes().len(), g.params_len()), (nodes, params), "graph changed by a refused call");
    err
}

#[test]
fn binary_ops_name_both_shapes() {
    let mut g = Graph::new();
    let a = g.input(&[2, 3, 4, 5]).unwrap();
    let b = g.input(&[3, 4]).unwrap();
    let e = refused(&mut g, "add", &["[2, 3, 4, 5]", "[3, 4]"], |g| g.add(a, b));
    assert!(matches!(e, Error::ShapeMismatch { op: "add", .. }));
    refused(&mut g, "sub", &["[2, 3, 4, 5]", "[3, 4]"], |g| g.sub(a, b));
    refused(&mut g, "mul", &["[3, 4]", "[2, 3, 4, 5]"], |g| g.mul(b, a));
    refused(&mut g, "add", &["same node"], |g| g.add(a, a));
}

#[test]
fn matmul_and_linear() {
    let mut g = Graph::new();
    let a = g.input(&[2, 3]).unwrap();
    let b = g.input(&[4, 5]).unwrap();
    refused(&mut g, "matmul", &["[2, 3]", "[4, 5]"], |g| g.matmul(a, b));
    let w = g.param(&[4, 7], Init::Zeros).unwrap();
    refused(&mut g, "linear", &["[2, 3]", "[4, 7]"], |g| g.push_op(Op::Linear(mote_core::ops::Linear), &[a, w]));
}

#[test]
fn conv2d_and_pooling() {
    let mut g = Graph::new();
    let x = g.input(&[1, 3, 5, 5]).unwrap();
    let flat = g.input(&[1, 75]).unwrap();
    refused(&mut g, "conv2d", &["[1, 75]"], |g| g.conv2d(flat, 4, [3, 3], [1, 1], [0, 0], true));
    refused(&mut g, "conv2d", &["[1, 3, 5, 5]", "[4, 3, 7, 7]"], |g| g.conv2d(x, 4, [7, 7], [1, 1], [0, 0], true));
    refused(&mut g, "conv2d", &["stride"], |g| g.conv2d(x, 4, [3, 3], [0, 1], [0, 0], true));
    let w = g.param(&[4, 2, 3, 3], Init::Zeros).unwrap();
    let conv = Op::Conv2d(Conv2d::plain([1, 1], [0, 0]));
    refused(&mut g, "conv2d", &["[1, 3, 5, 5]", "[4, 2, 3, 3]"], |g| g.push_op(conv, &[x, w]));
    refused(&mut g, "maxpool2d", &["padding"], |g| g.maxpool2d(x, [2, 2], [2, 2], [2, 2]));
    refused(&mut g, "avgpool2d", &["[1, 3, 5, 5]"], |g| g.avgpool2d(x, [6, 6], [1, 1], [0, 0]));
    refused(&mut g, "global_avgpool", &["[1, 75]"], |g| g.global_avgpool(flat));
}

#[test]
fn reshape_norms_activations_losses() {
    let mut g = Graph::new();
    let x = g.input(&[2, 6]).unwrap();
    refused(&mut g, "reshape", &["[2, 6]", "[5, 2]"], |g| g.reshape(x, &[5, 2]));
    refused(&mut g, "leaky_relu", &["slope"], |g| g.leaky_relu(x, 1.5));
    refused(&mut g, "dropout", &["p in"], |g| g.dropout(x, 1.0));
    let x3 = g.input(&[2, 3, 4]).unwrap();
    refused(&mut g, "batchnorm", &["[2, 3, 4]"], |g| g.batchnorm(x3, 1e-5, 0.1, true));
    refused(&mut g, "batchnorm", &["momentum"], |g| g.batchnorm(x, 1e-5, 2.0, true));
    let gamma = g.param(&[5], Init::Zeros).unwrap();
    let beta = g.param(&[5], Init::Zeros).unwrap();
    let ln = Op::LayerNorm(mote_core::ops::LayerNorm { eps: 1e-5 });
    refused(&mut g, "layernorm", &["[5]", "[6]"], |g| g.push_op(ln, &[x, gamma, beta]));
    let labels = g.labels(3).unwrap();
    refused(&mut g, "cross_entropy", &["[2, 6]", "[3]"], |g| g.cross_entropy(x, labels));
    let y = g.input(&[6, 2]).unwrap();
    refused(&mut g, "mse", &["[2, 6]", "[6, 2]"], |g| g.mse(x, y));
}

#[test]
fn bad_dimensions_and_unknown_nodes() {
    let mut g: Graph = Graph::new();
    assert!(matches!(g.input(&[1, 2, 3, 4, 5]), Err(Error::InvalidDims { rank: 5, .. })));
    assert!(matches!(g.input(&[0, 2]), Err(Error::InvalidDims { has_zero: true, .. })));
    let mut other = Graph::<64>::new();
    for _ in 0..5 {
        other.input(&[1]).unwrap();
    }
    let far = other.node_ids().last().unwrap();
    assert_eq!(g.relu(far), Err(Error::UnknownNode { index: 4 }));
}

#[test]
fn a_full_graph_says_so_and_keeps_what_it_had() {
    let mut g = Graph::<5>::new();
    let x = g.input(&[2, 3]).unwrap();
    let h = g.linear(x, 4, true).unwrap(); // 4 nodes: x, W, b, linear
    let (nodes, params) = (g.nodes().len(), g.params_len());
    let e = g.linear(h, 2, true).expect_err("no room for W, b and the op");
    assert_eq!(e, Error::CapacityExceeded { what: "graph", capacity: 5 });
    assert_eq!(e.to_string(), "graph is full (capacity 5)");
    assert_eq!((g.nodes().len(), g.params_len()), (nodes, params));
}

/// A valid op of `info`'s row: required counts 2, required pairs [2, 2], defaults elsewhere.
fn valid_settings(info: &OpInfo) -> Vec<Option<SettingValue>> {
    info.settings
        .iter()
        .map(|s| match (s.default, s.kind) {
            (SettingDefault::Required, SettingKind::Int { .. }) => Some(SettingValue::Int(2)),
            (SettingDefault::Required, SettingKind::Pair { .. }) => Some(SettingValue::Pair([2, 2])),
            (SettingDefault::Required, SettingKind::Dims) => Some(SettingValue::Dims([1, 0, 0, 0])),
            _ => None,
        })
        .collect()
}

/// Builds `op` over fresh inputs of `dims` (two of them for two-input ops); a refused op
/// must leave the graph as it was.
fn try_build(op: LayerOp, dims: &[usize]) -> Result<NodeId> {
    let mut g: Graph = Graph::new();
    let a = g.input(dims).unwrap();
    let b = g.input(dims).unwrap();
    let (nodes, params) = (g.nodes().len(), g.params_len());
    let built = op.add_to(&mut g, [a, b]);
    if built.is_err() {
        assert_eq!((g.nodes().len(), g.params_len()), (nodes, params), "{op:?}: graph changed by a refused call");
    }
    built
}

#[test]
fn hostile_settings_of_every_table_op_get_typed_errors() {
    // Values a model file or spec may carry. Each numeric setting of each op takes each in
    // turn: a setting error (below its minimum), a graph error, or a graph that fits; no panic.
    let hostile = [0, 1, u32::MAX / 2 + 1, u32::MAX - 1, u32::MAX];
    let mut tried = 0;
    for info in LAYER_OPS {
        let valid = valid_settings(info);
        let op = info.layer_op(&valid).unwrap_or_else(|e| panic!("{}: {e}", info.name));
        for dims in [&[2, 3, 9, 9][..], &[9, 9]] {
            let _ = try_build(op, dims);
        }
        for (i, setting) in info.settings.iter().enumerate() {
            for &h in &hostile {
                let value = match setting.kind {
                    SettingKind::Int { .. } => SettingValue::Int(h),
                    SettingKind::Pair { .. } => SettingValue::Pair([h, 2]),
                    SettingKind::Dims => SettingValue::Dims([h, 2, 0, 0]),
                    _ => continue,
                };
                let mut given = valid.clone();
                given[i] = Some(value);
                let Ok(op) = info.layer_op(&given) else { continue };
                for dims in [&[2, 3, 9, 9][..], &[9, 9]] {
                    let _ = try_build(op, dims);
                    tried += 1;
                }
            }
        }
    }
    assert!(tried > 60, "{tried}");
}

#[test]
fn sizes_that_overflow_usize_are_refused_by_name() {
    let mut g: Graph = Graph::new();
    let x = g.input(&[1, 1, 5, 5]).unwrap();
    let huge = usize::MAX / 2 + 1;
    let e = refused(&mut g, "conv2d", &["padded input", "too large"], |g| g.conv2d(x, 2, [3, 3], [1, 1], [huge, 0], true));
    assert_eq!(e, Error::TooLarge { op: "conv2d", what: "the padded input" });
    // Padding of half a usize::MAX kernel: allowed by the half-kernel rule, overflows when doubled.
    refused(&mut g, "maxpool2d", &["padded input"], |g| g.maxpool2d(x, [usize::MAX, 3], [1, 1], [usize::MAX / 2, 0]));
    refused(&mut g, "avgpool2d", &["as large as the kernel"], |g| g.avgpool2d(x, [usize::MAX, 3], [usize::MAX, 1], [0, 0]));
    // A stride as large as usize still gives one position per axis.
    let y = g.conv2d(x, 2, [3, 3], [usize::MAX, usize::MAX], [0, 0], false).unwrap();
    assert_eq!(g.shape(y).unwrap().dims(), &[1, 2, 1, 1]);
}

#[test]
fn out_of_range_settings_in_a_model_file_are_refused_when_built() {
    use mote_core::model::{ModelSpec, SpecErrorKind};
    let mut spec: ModelSpec = mote_tests::every_op::every_op_spec();
    spec.layers[1].op = LayerOp::BatchNorm { eps: f32::NAN, momentum: 0.1, affine: true };
    let mut g: Graph = Graph::new();
    let e = spec.build(&mut g, 1).unwrap_err();
    assert_eq!(e.layer, Some(1));
    assert!(matches!(e.kind, SpecErrorKind::Setting(_)), "{e}");
    assert_eq!(e.to_string(), "layer 1 (bn): batchnorm: `eps` must be a finite number ≥ 0, got NaN");
}

/// One refused case per op of the table that has a shape rule: (op, dims of a, dims of b, what
/// the message names).
#[rustfmt::skip]
const BAD_SHAPES: &[(LayerOp, &[usize], &[usize], &str)] = &[
    (LayerOp::Conv2d { out_channels: 2, kernel: [3, 3], stride: [1, 1], padding: [0, 0], bias: true }, &[2, 75], &[], "[2, 75]"),
    (LayerOp::MaxPool2d { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }, &[2, 75], &[], "[2, 75]"),
    (LayerOp::AvgPool2d { kernel: [6, 6], stride: [1, 1], padding: [0, 0] }, &[1, 3, 5, 5], &[], "[1, 3, 5, 5]"),
    (LayerOp::GlobalAvgPool {}, &[2, 75], &[], "[2, 75]"),
    (LayerOp::BatchNorm { eps: 1e-5, momentum: 0.1, affine: true }, &[2, 3, 4], &[], "[2, 3, 4]"),
    (LayerOp::Add {}, &[2, 3, 4, 5], &[3, 4], "[3, 4]"),
    (LayerOp::Sub {}, &[2, 3, 4, 5], &[3, 4], "[3, 4]"),
    (LayerOp::Mul {}, &[3, 4], &[2, 3, 4, 5], "[3, 4]"),
    (LayerOp::MatMul {}, &[2, 3], &[4, 5], "[4, 5]"),
    // 3 input channels do not split into 2 groups.
    (LayerOp::Conv2dGeneral { out_channels: 4, kernel: [3, 3], stride: [1, 1], pad_begin: [0, 0], pad_end: [0, 0], dilation: [1, 1], groups: 2, bias: true }, &[1, 3, 5, 5], &[], "groups"),
    // A dilated 3×3 kernel spans 7×7: larger than the padded 5×6 input.
    (LayerOp::Conv2dGeneral { out_channels: 4, kernel: [3, 3], stride: [1, 1], pad_begin: [0, 0], pad_end: [0, 1], dilation: [3, 3], groups: 1, bias: true }, &[1, 3, 5, 5], &[], "[1, 3, 5, 5]"),
    (LayerOp::MaxPool2dGeneral { kernel: [2, 2], stride: [2, 2], pad_begin: [0, 0], pad_end: [2, 0] }, &[1, 3, 5, 5], &[], "padding"),
    (LayerOp::AvgPool2dGeneral { kernel: [2, 2], stride: [2, 2], pad_begin: [0, 0], pad_end: [0, 0], count_padding: false }, &[2, 75], &[], "[2, 75]"),
    (LayerOp::Pad { pad_begin: [1, 1], pad_end: [1, 1], value: 0.0 }, &[2, 75], &[], "[2, 75]"),
    (LayerOp::Div {}, &[2, 3], &[4], "[4]"),
    (LayerOp::Reshape { shape: [7, 11, 0, 0] }, &[2, 75], &[], "[2, 75]"),
    (LayerOp::Transpose { perm: [2, 1, 3, 0] }, &[2, 75], &[], "[2, 75]"),
];

/// Ops of the table that take any shape (elementwise, or over the last dimension).
const ANY_SHAPE: &[&str] = &[
    "linear",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
    "exp",
    "square",
    "softmax",
    "log_softmax",
    "layernorm",
    "dropout",
    "flatten",
    "clip",
    "neg",
    "input",
    "constant",
];

#[test]
fn bad_shapes_of_table_ops_name_the_op_and_the_shape() {
    for &(op, da, db, needle) in BAD_SHAPES {
        let mut g: Graph = Graph::new();
        let a = g.input(da).unwrap();
        let b = if db.is_empty() { a } else { g.input(db).unwrap() };
        // The general variants' errors name the op they build (conv2d, maxpool2d, …).
        refused(&mut g, op.name().trim_end_matches("_general"), &[needle], |g| op.add_to(g, [a, b]));
    }
}

#[test]
fn every_op_of_the_table_has_a_shape_error_case_or_takes_any_shape() {
    for info in LAYER_OPS {
        let covered = BAD_SHAPES.iter().any(|(op, ..)| op.name() == info.name) || ANY_SHAPE.contains(&info.name);
        assert!(covered, "{} has no shape-error case (add one to BAD_SHAPES, or to ANY_SHAPE)", info.name);
    }
}
