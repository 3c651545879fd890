//! Central finite-difference checks of every op's backward, for every input and parameter,
//! on random shapes with odd sizes, stride 2 and padding.

use mote_core::model::{LayerOp, LAYER_OPS};
use mote_core::{Graph, NodeId, Rng};
use mote_tests::{away_from_zero, distinct, grad_check, uniform};

/// Adds `mse(y, target)` with a random target so any output can be checked through a scalar.
fn mse_loss(g: &mut Graph, y: NodeId, rng: &mut Rng, feeds: &mut Vec<(NodeId, Vec<f32>)>) -> NodeId {
    let dims = g.shape(y).unwrap();
    let t = g.input(dims.dims()).unwrap();
    feeds.push((t, uniform(rng, dims.numel(), -1.0, 1.0)));
    g.mse(y, t).unwrap()
}

/// A grad input of `dims` fed with `values(rng, n)`.
fn grad_input(g: &mut Graph, dims: &[usize], values: Vec<f32>, feeds: &mut Vec<(NodeId, Vec<f32>)>) -> NodeId {
    let x = g.input_with_grad(dims).unwrap();
    feeds.push((x, values));
    x
}

/// Builds `op(x)` for a random-valued grad input of `dims`, checks all gradients.
fn check_unary(dims: &[usize], seed: u64, values: fn(&mut Rng, usize) -> Vec<f32>, op: impl Fn(&mut Graph, NodeId) -> NodeId) {
    let mut rng = Rng::new(seed);
    let mut g = Graph::new();
    let mut feeds = Vec::new();
    let n = dims.iter().product();
    let x = grad_input(&mut g, dims, values(&mut rng, n), &mut feeds);
    let y = op(&mut g, x);
    let loss = mse_loss(&mut g, y, &mut rng, &mut feeds);
    let report = grad_check(&g, loss, &feeds, seed);
    assert!(report.entries >= n, "{report:?}");
}

fn smooth(rng: &mut Rng, n: usize) -> Vec<f32> {
    uniform(rng, n, -1.5, 1.5)
}

type Values = fn(&mut Rng, usize) -> Vec<f32>;
type Case = (LayerOp, &'static [usize], &'static [usize], Values, u64);

/// Finite-difference cases of the op table's ops, built through the table (`LayerOp::add_to`):
/// (op, dims of input a, dims of input b (empty: one-input op), input values, seed). Odd sizes,
/// stride 2 and padding; kinks avoided (`away_from_zero`, `distinct` for pooling maxima).
#[rustfmt::skip]
const CASES: &[Case] = &[
    (LayerOp::Linear { out: 7, bias: true }, &[3, 5], &[], smooth, 1),
    (LayerOp::Linear { out: 3, bias: false }, &[5], &[], smooth, 2),
    (LayerOp::Linear { out: 3, bias: true }, &[2, 3, 5], &[], smooth, 3),
    (LayerOp::MatMul {}, &[3, 5], &[5, 7], smooth, 4),
    // add / sub / mul: same shape, per-channel over NCHW, per-feature over [B, F], b first.
    (LayerOp::Add {}, &[3, 5], &[3, 5], smooth, 10),
    (LayerOp::Add {}, &[2, 3, 3, 5], &[3, 1, 1], smooth, 11),
    (LayerOp::Add {}, &[3, 5], &[5], smooth, 12),
    (LayerOp::Add {}, &[5], &[3, 5], smooth, 13),
    (LayerOp::Sub {}, &[3, 5], &[3, 5], smooth, 20),
    (LayerOp::Sub {}, &[2, 3, 3, 5], &[3, 1, 1], smooth, 21),
    (LayerOp::Sub {}, &[5], &[3, 5], smooth, 22),
    (LayerOp::Mul {}, &[3, 5], &[3, 5], smooth, 30),
    (LayerOp::Mul {}, &[2, 3, 3, 5], &[3, 1, 1], smooth, 31),
    (LayerOp::Mul {}, &[3, 5], &[5], smooth, 32),
    (LayerOp::Relu {}, &[3, 7], &[], away_from_zero, 20),
    (LayerOp::LeakyRelu { slope: 0.1 }, &[3, 7], &[], away_from_zero, 21),
    (LayerOp::Sigmoid {}, &[3, 7], &[], smooth, 22),
    (LayerOp::Tanh {}, &[3, 7], &[], smooth, 23),
    (LayerOp::Exp {}, &[3, 7], &[], smooth, 24),
    (LayerOp::Square {}, &[3, 7], &[], smooth, 25),
    // 7x9 input, 3x2 kernel, stride 2, padding (1, 2), with bias; square kernel, no bias.
    (LayerOp::Conv2d { out_channels: 5, kernel: [3, 2], stride: [2, 2], padding: [1, 2], bias: true }, &[2, 3, 7, 9], &[], smooth, 30),
    (LayerOp::Conv2d { out_channels: 3, kernel: [3, 3], stride: [1, 1], padding: [1, 1], bias: false }, &[1, 2, 5, 5], &[], smooth, 31),
    (LayerOp::MaxPool2d { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, &[2, 3, 7, 5], &[], distinct, 40),
    (LayerOp::AvgPool2d { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, &[2, 3, 7, 5], &[], smooth, 41),
    (LayerOp::GlobalAvgPool {}, &[2, 3, 5, 7], &[], smooth, 42),
    (LayerOp::Flatten {}, &[2, 3, 3, 5], &[], smooth, 50),
    (LayerOp::Softmax {}, &[3, 7], &[], smooth, 60),
    (LayerOp::LogSoftmax {}, &[3, 7], &[], smooth, 61),
    (LayerOp::LayerNorm { eps: 1e-5, affine: true }, &[3, 7], &[], smooth, 70),
    (LayerOp::LayerNorm { eps: 1e-5, affine: false }, &[2, 3, 5], &[], smooth, 71),
    // Batchnorm in training mode, 1d and 2d.
    (LayerOp::BatchNorm { eps: 1e-5, momentum: 0.1, affine: true }, &[5, 3], &[], smooth, 80),
    (LayerOp::BatchNorm { eps: 1e-5, momentum: 0.1, affine: true }, &[3, 3, 3, 5], &[], smooth, 81),
    (LayerOp::BatchNorm { eps: 1e-5, momentum: 0.1, affine: false }, &[3, 2, 3, 3], &[], smooth, 82),
    (LayerOp::Dropout { p: 0.3 }, &[3, 7], &[], smooth, 90),
    // Grouped (depthwise with channel multiplier 2), dilated, padded on each side differently.
    (LayerOp::Conv2dGeneral { out_channels: 6, kernel: [3, 2], stride: [2, 1], pad_begin: [1, 0], pad_end: [2, 1], dilation: [2, 3], groups: 3, bias: true }, &[2, 3, 8, 7], &[], smooth, 100),
    (LayerOp::Conv2dGeneral { out_channels: 2, kernel: [2, 2], stride: [1, 2], pad_begin: [0, 1], pad_end: [1, 0], dilation: [1, 1], groups: 2, bias: false }, &[1, 4, 5, 5], &[], smooth, 101),
    (LayerOp::MaxPool2dGeneral { kernel: [3, 2], stride: [2, 2], pad_begin: [0, 1], pad_end: [2, 0] }, &[2, 3, 7, 5], &[], distinct, 102),
    (LayerOp::AvgPool2dGeneral { kernel: [3, 3], stride: [2, 2], pad_begin: [0, 1], pad_end: [2, 1], count_padding: false }, &[2, 3, 7, 5], &[], smooth, 103),
    (LayerOp::AvgPool2dGeneral { kernel: [2, 3], stride: [1, 2], pad_begin: [1, 1], pad_end: [0, 2], count_padding: true }, &[2, 3, 4, 5], &[], smooth, 104),
    (LayerOp::Pad { pad_begin: [1, 0], pad_end: [0, 2], value: 0.5 }, &[2, 3, 3, 4], &[], smooth, 105),
    (LayerOp::Clip { min: -0.6, max: 0.7 }, &[3, 7], &[], away_from_bounds, 106),
    (LayerOp::Neg {}, &[3, 7], &[], smooth, 107),
    (LayerOp::Div {}, &[3, 5], &[3, 5], divisors, 108),
    (LayerOp::Div {}, &[2, 3, 3, 5], &[3, 1, 1], divisors, 109),
    (LayerOp::Reshape { shape: [5, 3, 3, 0] }, &[2, 3, 3, 5], &[], smooth, 110),
    (LayerOp::Transpose { perm: [2, 3, 1, 0] }, &[2, 3, 4, 5], &[], smooth, 111),
    (LayerOp::Transpose { perm: [2, 1, 0, 0] }, &[2, 3, 4], &[], smooth, 112),
    // Layers without an input: a model input and a trained constant.
    (LayerOp::Input { shape: [2, 3, 2, 0] }, &[2, 3, 2], &[], smooth, 113),
    (LayerOp::Constant { shape: [3, 1, 1, 0] }, &[2, 3, 2, 2], &[], smooth, 114),
];

/// Values of magnitude in [0.5, 1.5): divisors whose quotient's curvature finite differences
/// resolve.
fn divisors(rng: &mut Rng, n: usize) -> Vec<f32> {
    away_from_zero(rng, n).into_iter().map(|v| v + 0.4 * v.signum()).collect()
}

/// Values at least 0.1 away from clip's bounds (-0.6, 0.7), where its derivative jumps.
fn away_from_bounds(rng: &mut Rng, n: usize) -> Vec<f32> {
    away_from_zero(rng, n).into_iter().map(|v| if (v + 0.6).abs() < 0.1 || (v - 0.7).abs() < 0.1 { v + 0.25 } else { v }).collect()
}

#[test]
fn every_table_op_against_finite_differences() {
    for &(op, da, db, values, seed) in CASES {
        let mut rng = Rng::new(seed);
        let mut g = Graph::new();
        let mut feeds = Vec::new();
        let a = grad_input(&mut g, da, values(&mut rng, da.iter().product()), &mut feeds);
        let b = if db.is_empty() { a } else { grad_input(&mut g, db, values(&mut rng, db.iter().product()), &mut feeds) };
        let made = op.add_to(&mut g, [a, b]).unwrap_or_else(|e| panic!("{op:?}: {e}"));
        // A layer without an input (a model input, a constant) is checked through `made + a`:
        // the constant's entries and a's; a new model input is fed like the others.
        let y = if op.arity() == 0 { g.add(made, a).unwrap() } else { made };
        if let LayerOp::Input { .. } = op {
            feeds.push((made, smooth(&mut rng, da.iter().product())));
        }
        let loss = mse_loss(&mut g, y, &mut rng, &mut feeds);
        let report = grad_check(&g, loss, &feeds, seed);
        let inputs: usize = [da, db].iter().filter(|d| !d.is_empty()).map(|d| d.iter().product::<usize>()).sum();
        // Every entry of every grad input is checked (and those of the op's parameters).
        assert!(report.entries >= inputs, "{op:?}: {report:?}");
    }
}

#[test]
fn every_op_of_the_table_has_a_gradient_check() {
    for info in LAYER_OPS {
        assert!(CASES.iter().any(|(op, ..)| op.name() == info.name), "{} has no finite-difference case", info.name);
    }
}

#[test]
fn reshape_outside_the_table() {
    check_unary(&[3, 5], 51, smooth, |g, x| g.reshape(x, &[5, 3]).unwrap());
}

#[test]
fn cross_entropy_logits() {
    let mut rng = Rng::new(100);
    let mut g = Graph::new();
    let mut feeds = Vec::new();
    let logits = grad_input(&mut g, &[5, 7], uniform(&mut rng, 35, -2.0, 2.0), &mut feeds);
    let labels = g.labels(5).unwrap();
    feeds.push((labels, vec![0.0, 6.0, 3.0, 3.0, 1.0]));
    let loss = g.cross_entropy(logits, labels).unwrap();
    assert_eq!(grad_check(&g, loss, &feeds, 100).entries, 35);
}

#[test]
fn mse_both_operands() {
    let mut rng = Rng::new(110);
    let mut g = Graph::new();
    let mut feeds = Vec::new();
    let a = grad_input(&mut g, &[3, 5], smooth(&mut rng, 15), &mut feeds);
    let b = grad_input(&mut g, &[3, 5], smooth(&mut rng, 15), &mut feeds);
    let loss = g.mse(a, b).unwrap();
    assert_eq!(grad_check(&g, loss, &feeds, 110).entries, 30);
}

#[test]
fn small_convnet_end_to_end() {
    // conv → batchnorm → relu → residual add → maxpool → flatten → linear → cross-entropy:
    // gradients through a tensor with two consumers and through every layer's parameters.
    let mut rng = Rng::new(120);
    let mut g = Graph::new();
    let mut feeds = Vec::new();
    let x = grad_input(&mut g, &[2, 2, 5, 5], smooth(&mut rng, 100), &mut feeds);
    let c1 = g.conv2d(x, 3, [3, 3], [1, 1], [1, 1], true).unwrap();
    let b1 = g.batchnorm(c1, 1e-5, 0.1, true).unwrap();
    let t1 = g.tanh(b1).unwrap();
    let c2 = g.conv2d(t1, 3, [3, 3], [1, 1], [1, 1], false).unwrap();
    let r = g.add(c2, t1).unwrap();
    let p = g.avgpool2d(r, [2, 2], [2, 2], [0, 0]).unwrap();
    let f = g.flatten(p).unwrap();
    let logits = g.linear(f, 4, true).unwrap();
    let labels = g.labels(2).unwrap();
    feeds.push((labels, vec![1.0, 3.0]));
    let loss = g.cross_entropy(logits, labels).unwrap();
    let report = grad_check(&g, loss, &feeds, 120);
    assert_eq!(report.tensors, 1 + 2 + 2 + 1 + 2);
}

#[test]
fn fused_conv_relu_maxpool_in_a_training_plan() {
    // Training plans run conv → relu → maxpool as one step with one fused backward (the conv
    // and relu outputs and their gradients are never stored): check it like any op, with a
    // stride-2 padded conv on odd sizes, a padded pool and a second fused block after it.
    let mut rng = Rng::new(130);
    let mut g = Graph::new();
    let mut feeds = Vec::new();
    let x = grad_input(&mut g, &[2, 3, 11, 9], smooth(&mut rng, 594), &mut feeds);
    let c1 = g.conv2d(x, 4, [3, 2], [2, 2], [1, 1], true).unwrap();
    let r1 = g.relu(c1).unwrap();
    let p1 = g.maxpool2d(r1, [2, 2], [2, 2], [1, 1]).unwrap();
    let c2 = g.conv2d(p1, 3, [2, 2], [1, 1], [0, 0], false).unwrap();
    let r2 = g.relu(c2).unwrap();
    let p2 = g.maxpool2d(r2, [2, 1], [2, 1], [0, 0]).unwrap();
    let loss = mse_loss(&mut g, p2, &mut rng, &mut feeds);
    let plan: mote_core::Plan = mote_core::Plan::training(&g, loss, &[], None).unwrap();
    assert_eq!(plan.fused_steps(), 2);
    let report = grad_check(&g, loss, &feeds, 130);
    assert_eq!(report.tensors, 1 + 2 + 1);
}
