//! The networks the training and planner tests share (their memory figures are reported).

use mote_core::{Graph, NodeId};

/// The node ids of a classifier network.
#[derive(Clone, Copy, Debug)]
pub struct Net {
    pub x: NodeId,
    pub labels: NodeId,
    pub logits: NodeId,
    pub loss: NodeId,
}

/// Issue 2's MLP: 2 → 6 → layernorm → relu → dropout(0.05) → 20 classes, cross-entropy.
pub fn mlp20(g: &mut Graph, batch: usize) -> Net {
    let x = g.input(&[batch, 2]).unwrap();
    let h = g.linear(x, 6, true).unwrap();
    let n = g.layernorm(h, 1e-5, true).unwrap();
    let r = g.relu(n).unwrap();
    let d = g.dropout(r, 0.05).unwrap();
    let logits = g.linear(d, 20, true).unwrap();
    let labels = g.labels(batch).unwrap();
    Net { x, labels, logits, loss: g.cross_entropy(logits, labels).unwrap() }
}

/// A small convnet on 8×8 images: conv-batchnorm-relu, then conv-batchnorm plus a residual
/// add, relu, maxpool, global average pool, linear to 4 classes, cross-entropy.
pub fn line_convnet(g: &mut Graph, batch: usize) -> Net {
    let x = g.input(&[batch, 1, 8, 8]).unwrap();
    let c1 = g.conv2d(x, 8, [3, 3], [1, 1], [1, 1], false).unwrap();
    let b1 = g.batchnorm(c1, 1e-5, 0.1, true).unwrap();
    let a = g.relu(b1).unwrap();
    let c2 = g.conv2d(a, 8, [3, 3], [1, 1], [1, 1], false).unwrap();
    let b2 = g.batchnorm(c2, 1e-5, 0.1, true).unwrap();
    let res = g.add(b2, a).unwrap();
    let r = g.relu(res).unwrap();
    let p = g.maxpool2d(r, [2, 2], [2, 2], [0, 0]).unwrap();
    let gap = g.global_avgpool(p).unwrap();
    let logits = g.linear(gap, 4, true).unwrap();
    let labels = g.labels(batch).unwrap();
    Net { x, labels, logits, loss: g.cross_entropy(logits, labels).unwrap() }
}
