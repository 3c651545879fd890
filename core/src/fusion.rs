//! Plan-level fusion: conv2d → relu → maxpool2d runs as one step that writes only the pooled
//! output, so neither the conv output nor the relu output takes arena space. In training plans
//! the step also records each pooled value's argmax, and one fused backward step turns the
//! pooled gradient into the conv's input, weight and bias gradients, so the conv and relu
//! output gradients never take arena space either. Tested against the unfused plans.

use crate::ops::{Op, PoolKind};
use crate::{Graph, NodeId};
use mote_kernels::dispatch::Isa;
use mote_kernels::{
    conv2d_relu_maxpool2d_backward_scratch_len, conv2d_relu_maxpool2d_f32, conv2d_relu_maxpool2d_scratch_len, Pointwise,
    MAX_RECORDED_WINDOW,
};

/// For each maxpool node that can absorb its relu and conv producers: the conv node.
/// `consumers` counts the needed op nodes reading each node; `kept` marks plan outputs.
/// `training` also asks that the fused backward can run: pooling windows that do not
/// overlap and hold at most [`MAX_RECORDED_WINDOW`] values.
pub(crate) fn conv_relu_maxpool<const N: usize>(
    g: &Graph<N>,
    needed: &[bool; N],
    consumers: &[u8; N],
    kept: &[bool; N],
    training: bool,
) -> [Option<NodeId>; N] {
    let mut fused = [None; N];
    let only_feeds_next = |k: usize| consumers[k] == 1 && !kept[k];
    for (p, node) in g.nodes().iter().enumerate() {
        let Some(Op::Pool2d(pool)) = node.op().filter(|_| needed[p]) else { continue };
        let overlapping = pool.stride[0] < pool.kernel[0] || pool.stride[1] < pool.kernel[1];
        let unrecordable = pool.kernel[0].checked_mul(pool.kernel[1]).is_none_or(|window| window > MAX_RECORDED_WINDOW);
        if pool.kind != PoolKind::Max || (training && (overlapping || unrecordable)) {
            continue;
        }
        let r = node.inputs()[0];
        let relu = &g.nodes()[r.index()];
        if !matches!(relu.op(), Some(Op::Pointwise(Pointwise::Relu))) || !only_feeds_next(r.index()) {
            continue;
        }
        let c = relu.inputs()[0];
        if matches!(g.nodes()[c.index()].op(), Some(Op::Conv2d(conv)) if conv.groups == 1) && only_feeds_next(c.index()) {
            fused[p] = Some(c);
        }
    }
    fused
}

/// The conv2d and maxpool2d kernel parameters of the fused step of pool node `p` absorbing
/// conv node `c`, from the graph's shapes; `None` unless the graph really holds conv `c` →
/// relu → maxpool `p` (a plan read from bytes is checked here before any kernel runs).
pub(crate) fn layers<const N: usize>(
    g: &Graph<N>,
    p: NodeId,
    c: NodeId,
) -> Option<(mote_kernels::Conv2dParams, mote_kernels::Pool2dParams)> {
    let (pool_node, conv_node) = (g.nodes().get(p.index())?, g.nodes().get(c.index())?);
    let relu = g.nodes().get(pool_node.inputs().first()?.index())?;
    let chained = matches!(relu.op(), Some(Op::Pointwise(Pointwise::Relu))) && relu.inputs().first() == Some(&c);
    let (Some(Op::Conv2d(conv)), Some(Op::Pool2d(pool)), true) = (conv_node.op(), pool_node.op(), chained) else {
        return None;
    };
    if pool.kind != PoolKind::Max || conv.groups != 1 {
        return None;
    }
    let shape = |pos: usize| Some(g.nodes()[conv_node.inputs().get(pos)?.index()].shape);
    Some((conv.params(shape(0)?, shape(1)?), pool.params(conv_node.shape)))
}

/// Scratch values the fused step of pool node `p` absorbing conv node `c` needs in its
/// forward and in its backward (zero where the graph does not hold that step).
pub(crate) fn scratch_lens<const N: usize>(g: &Graph<N>, p: NodeId, c: NodeId, isa: Isa) -> (usize, usize) {
    match layers(g, p, c) {
        Some((cp, pp)) => (conv2d_relu_maxpool2d_scratch_len(&cp, &pp, isa), conv2d_relu_maxpool2d_backward_scratch_len(&cp, isa)),
        None => (0, 0),
    }
}

/// Runs the fused step of pool node `p` absorbing conv node `c`: `inputs` are the conv's
/// (x, weight, optional bias); `argmax` (training) records each pooled
/// value's origin for the backward, one byte each; `scratch` is the plan's.
pub(crate) fn run_conv_relu_maxpool<const N: usize>(
    g: &Graph<N>,
    (p, c): (NodeId, NodeId),
    inputs: &[&[f32]],
    out: &mut [f32],
    argmax: Option<&mut [u8]>,
    scratch: &mut [f32],
) -> Option<()> {
    let (cp, pp) = layers(g, p, c)?;
    conv2d_relu_maxpool2d_f32(&cp, &pp, inputs[0], inputs[1], inputs.get(2).copied(), out, argmax, scratch).then_some(())
}
