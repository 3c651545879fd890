//! Every op refuses bad shapes and arguments with a typed error naming the op and the
//! shapes, and a refused call leaves the graph exactly as it was.

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
    let conv = Op::Conv2d(Conv2d { stride: [1, 1], padding: [0, 0] });
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
