//! Central finite-difference checks of every op's backward, for every input and parameter,
//! on random shapes with odd sizes, stride 2 and padding.

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

#[test]
fn linear_with_and_without_bias() {
    check_unary(&[3, 5], 1, smooth, |g, x| g.linear(x, 7, true).unwrap());
    check_unary(&[5], 2, smooth, |g, x| g.linear(x, 3, false).unwrap());
    check_unary(&[2, 3, 5], 3, smooth, |g, x| g.linear(x, 3, true).unwrap());
}

#[test]
fn matmul_both_operands() {
    let mut rng = Rng::new(4);
    let mut g = Graph::new();
    let mut feeds = Vec::new();
    let a = grad_input(&mut g, &[3, 5], smooth(&mut rng, 15), &mut feeds);
    let b = grad_input(&mut g, &[5, 7], smooth(&mut rng, 35), &mut feeds);
    let y = g.matmul(a, b).unwrap();
    let loss = mse_loss(&mut g, y, &mut rng, &mut feeds);
    assert_eq!(grad_check(&g, loss, &feeds, 4).entries, 50);
}

#[test]
fn add_sub_mul_same_shape_and_broadcast() {
    type Build = fn(&mut Graph, NodeId, NodeId) -> mote_core::Result<NodeId>;
    let ops: [Build; 3] = [Graph::add, Graph::sub, Graph::mul];
    // (a, b): same shape, per-channel over NCHW, per-feature over [B, F], and b broadcast first.
    let cases: [(&[usize], &[usize]); 4] = [(&[3, 5], &[3, 5]), (&[2, 3, 3, 5], &[3, 1, 1]), (&[3, 5], &[5]), (&[5], &[3, 5])];
    for (k, op) in ops.iter().enumerate() {
        for (c, (da, db)) in cases.iter().enumerate() {
            let seed = (10 * k + c) as u64;
            let mut rng = Rng::new(seed);
            let mut g = Graph::new();
            let mut feeds = Vec::new();
            let a = grad_input(&mut g, da, smooth(&mut rng, da.iter().product()), &mut feeds);
            let b = grad_input(&mut g, db, smooth(&mut rng, db.iter().product()), &mut feeds);
            let y = op(&mut g, a, b).unwrap();
            let loss = mse_loss(&mut g, y, &mut rng, &mut feeds);
            let report = grad_check(&g, loss, &feeds, seed);
            assert_eq!(report.tensors, 2);
        }
    }
}

#[test]
fn pointwise_ops() {
    check_unary(&[3, 7], 20, away_from_zero, |g, x| g.relu(x).unwrap());
    check_unary(&[3, 7], 21, away_from_zero, |g, x| g.leaky_relu(x, 0.1).unwrap());
    check_unary(&[3, 7], 22, smooth, |g, x| g.sigmoid(x).unwrap());
    check_unary(&[3, 7], 23, smooth, |g, x| g.tanh(x).unwrap());
    check_unary(&[3, 7], 24, smooth, |g, x| g.exp(x).unwrap());
    check_unary(&[3, 7], 25, smooth, |g, x| g.square(x).unwrap());
}

#[test]
fn conv2d_odd_sizes_stride_two_padding() {
    // 7x9 input, 3x2 kernel, stride 2, padding (1, 2), with bias.
    check_unary(&[2, 3, 7, 9], 30, smooth, |g, x| g.conv2d(x, 5, [3, 2], [2, 2], [1, 2], true).unwrap());
    // Square 3x3 kernel, stride 1, padding 1, no bias.
    check_unary(&[1, 2, 5, 5], 31, smooth, |g, x| g.conv2d(x, 3, [3, 3], [1, 1], [1, 1], false).unwrap());
}

#[test]
fn pooling_odd_sizes_stride_two_padding() {
    check_unary(&[2, 3, 7, 5], 40, distinct, |g, x| g.maxpool2d(x, [3, 3], [2, 2], [1, 1]).unwrap());
    check_unary(&[2, 3, 7, 5], 41, smooth, |g, x| g.avgpool2d(x, [3, 3], [2, 2], [1, 1]).unwrap());
    check_unary(&[2, 3, 5, 7], 42, smooth, |g, x| g.global_avgpool(x).unwrap());
}

#[test]
fn flatten_and_reshape() {
    check_unary(&[2, 3, 3, 5], 50, smooth, |g, x| g.flatten(x).unwrap());
    check_unary(&[3, 5], 51, smooth, |g, x| g.reshape(x, &[5, 3]).unwrap());
}

#[test]
fn softmax_and_log_softmax() {
    check_unary(&[3, 7], 60, smooth, |g, x| g.softmax(x).unwrap());
    check_unary(&[3, 7], 61, smooth, |g, x| g.log_softmax(x).unwrap());
}

#[test]
fn layernorm_affine_and_plain() {
    check_unary(&[3, 7], 70, smooth, |g, x| g.layernorm(x, 1e-5, true).unwrap());
    check_unary(&[2, 3, 5], 71, smooth, |g, x| g.layernorm(x, 1e-5, false).unwrap());
}

#[test]
fn batchnorm_1d_and_2d_in_training_mode() {
    check_unary(&[5, 3], 80, smooth, |g, x| g.batchnorm(x, 1e-5, 0.1, true).unwrap());
    check_unary(&[3, 3, 3, 5], 81, smooth, |g, x| g.batchnorm(x, 1e-5, 0.1, true).unwrap());
    check_unary(&[3, 2, 3, 3], 82, smooth, |g, x| g.batchnorm(x, 1e-5, 0.1, false).unwrap());
}

#[test]
fn dropout_in_training_mode() {
    check_unary(&[3, 7], 90, smooth, |g, x| g.dropout(x, 0.3).unwrap());
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
