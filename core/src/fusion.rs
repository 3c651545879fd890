//! Plan-level fusion: in inference plans, conv2d → relu → maxpool2d runs as one step that
//! writes only the pooled output, so neither the conv output nor the relu output takes arena
//! space. Tested bit for bit against the unfused plan.

use crate::ops::{Op, PoolKind};
use crate::{Graph, NodeId, Shape};
use mote_kernels::{conv2d_relu_maxpool2d_f32, Pointwise};

/// For each maxpool node that can absorb its relu and conv producers: the conv node.
/// `consumers` counts the needed op nodes reading each node; `kept` marks plan outputs.
pub(crate) fn conv_relu_maxpool<const N: usize>(
    g: &Graph<N>,
    needed: &[bool; N],
    consumers: &[u8; N],
    kept: &[bool; N],
) -> [Option<NodeId>; N] {
    let mut fused = [None; N];
    let only_feeds_next = |k: usize| consumers[k] == 1 && !kept[k];
    for (p, node) in g.nodes().iter().enumerate() {
        let Some(Op::Pool2d(pool)) = node.op().filter(|_| needed[p]) else { continue };
        if pool.kind != PoolKind::Max {
            continue;
        }
        let r = node.inputs()[0];
        let relu = &g.nodes()[r.index()];
        if !matches!(relu.op(), Some(Op::Pointwise(Pointwise::Relu))) || !only_feeds_next(r.index()) {
            continue;
        }
        let c = relu.inputs()[0];
        if matches!(g.nodes()[c.index()].op(), Some(Op::Conv2d(_))) && only_feeds_next(c.index()) {
            fused[p] = Some(c);
        }
    }
    fused
}

/// Runs the fused step of pool node `p` absorbing conv node `c`: `inputs` are the conv's
/// (x, weight, optional bias) and `shapes` theirs.
pub(crate) fn run_conv_relu_maxpool<const N: usize>(
    g: &Graph<N>,
    p: NodeId,
    c: NodeId,
    shapes: &[Shape],
    inputs: &[&[f32]],
    out: &mut [f32],
) -> Option<()> {
    let (Some(Op::Conv2d(conv)), Some(Op::Pool2d(pool))) = (g.nodes().get(c.index())?.op(), g.nodes().get(p.index())?.op()) else {
        return None;
    };
    let conv_shape = g.nodes()[c.index()].shape;
    let (cp, pp) = (conv.params(shapes[0], shapes[1]), pool.params(conv_shape));
    conv2d_relu_maxpool2d_f32(&cp, &pp, inputs[0], inputs[1], inputs.get(2).copied(), out, None);
    Some(())
}
