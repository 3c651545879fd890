//! Tensor lifetimes of a plan: the first and last step that touches each arena tensor.

use super::{Plan, Step};
use crate::ops::OpKind;
use crate::{Error, Graph, NodeId, NodeKind, Result};

/// What an arena tensor of a node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Value,
    Grad,
    /// The argmax a fused conv-relu-maxpool step keeps for its backward (training plans),
    /// one byte per pooled value.
    Argmax,
    /// One row (`numel / dim 0` values) of the gradient of a parameter updated inside the
    /// backward.
    GradRow,
    /// A kernel's scratch, alive during the node's forward step only ...
    ForwardScratch,
    /// ... or during its backward step only.
    BackwardScratch,
}

/// One arena tensor of a node (its value, gradient, or a buffer one of its steps needs),
/// alive over steps `first..=last`.
/// Compact (16 bytes on a 32-bit target): the planner holds one per tensor on the stack.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tensor {
    pub node: u16,
    pub kind: Kind,
    pub first: u16,
    pub last: u16,
    pub len: usize,
    pub offset: usize,
}

/// The node whose value buffer node `i`'s value shares (its output overwrote that input in
/// place, possibly through a chain), if any.
pub(super) fn value_root<const N: usize, const S: usize>(plan: &Plan<N, S>, g: &Graph<N>, i: usize) -> Option<usize> {
    let mut root = None;
    let mut at = i;
    while plan.in_place_forward[at] {
        at = g.nodes()[at].inputs()[0].index();
        root = Some(at);
    }
    root
}

/// The node whose gradient buffer node `i`'s gradient shares (an in-place backward turned
/// that node's output gradient into `i`'s, possibly through a chain), if any.
pub(super) fn grad_root<const N: usize, const S: usize>(plan: &Plan<N, S>, g: &Graph<N>, i: usize) -> Option<usize> {
    let mut root = None;
    let mut at = i;
    while let Some(c) =
        (0..g.nodes().len()).find(|&c| plan.in_place_backward[c] && g.nodes()[c].inputs().first().map(|k| k.index()) == Some(at))
    {
        at = c;
        root = Some(c);
    }
    root
}

/// Appends the arena tensors of `plan` with their lifetimes (offsets still zero) to `out`.
pub(super) fn tensors<const N: usize, const S: usize>(g: &Graph<N>, plan: &Plan<N, S>, out: &mut heapless::Vec<Tensor, S>) -> Result<()> {
    const NONE: (u16, u16) = (u16::MAX, 0);
    if plan.steps.len() >= u16::MAX as usize {
        return Err(Error::CapacityExceeded { what: "plan steps", capacity: u16::MAX as usize - 1 });
    }
    let mut value = [NONE; N];
    let mut grad = [NONE; N];
    let mut argmax = [NONE; N];
    let mut grad_row = [NONE; N];
    let mut forward_scratch = [NONE; N];
    let mut backward_scratch = [NONE; N];
    let training = plan.steps.iter().any(|s| matches!(s, Step::SeedGrad(_)));
    let touch = |span: &mut (u16, u16), s: usize| {
        let s = s as u16; // fits: checked above
        span.0 = span.0.min(s);
        span.1 = span.1.max(s);
    };
    let end = plan.steps.len() as u16;
    for (s, step) in plan.steps.iter().enumerate() {
        match *step {
            Step::Forward(id) => {
                touch(&mut value[id.index()], s);
                if plan.scratch_lens(g, id).0 > 0 {
                    touch(&mut forward_scratch[id.index()], s);
                }
                if training && plan.fused_conv[id.index()].is_some() {
                    touch(&mut argmax[id.index()], s);
                }
                for &k in plan.step_inputs(g, id) {
                    let first = if matches!(g.nodes()[k.index()].kind, NodeKind::Input { .. }) { 0 } else { s };
                    touch(&mut value[k.index()], first);
                    touch(&mut value[k.index()], s);
                }
            }
            Step::SeedGrad(id) | Step::ZeroGrad(id) | Step::Update(id) => touch(&mut grad[id.index()], s),
            Step::Backward(id) if plan.fused_conv[id.index()].is_some() => {
                // Reads the pooled gradient, the argmax and the conv's input and weight;
                // accumulates the conv's input, weight and bias gradients.
                touch(&mut grad[id.index()], s);
                touch(&mut argmax[id.index()], s);
                if plan.scratch_lens(g, id).1 > 0 {
                    touch(&mut backward_scratch[id.index()], s);
                }
                for &k in plan.step_inputs(g, id) {
                    touch(&mut value[k.index()], s);
                    if grad[k.index()].0 != u16::MAX {
                        touch(&mut grad[k.index()], s);
                    }
                    if plan.update_in_backward[k.index()] {
                        touch(&mut grad_row[k.index()], s);
                    }
                }
            }
            Step::Backward(id) => {
                let node = &g.nodes()[id.index()];
                let saved = node.op().map(|op| op.saved()).ok_or(Error::PlanMismatch { expected: "backward of an op node" })?;
                touch(&mut grad[id.index()], s);
                if saved.output {
                    touch(&mut value[id.index()], s);
                }
                for (pos, &k) in node.inputs().iter().enumerate() {
                    if saved.input(pos) {
                        touch(&mut value[k.index()], s);
                    }
                    if plan.update_in_backward[k.index()] {
                        touch(&mut grad_row[k.index()], s);
                    }
                    if grad[k.index()].0 != u16::MAX {
                        touch(&mut grad[k.index()], s);
                    }
                }
            }
        }
    }
    // A tensor computed in place lives in its root's buffer: merge its span there.
    let merge = |spans: &mut [(u16, u16); N], i: usize, root: usize| {
        let (first, last) = spans[i];
        if first != u16::MAX {
            spans[root].0 = spans[root].0.min(first);
            spans[root].1 = spans[root].1.max(last);
        }
    };
    for i in 0..g.nodes().len() {
        if let Some(root) = value_root(plan, g, i) {
            let kept = plan.kept_value[i];
            merge(&mut value, i, root);
            if kept {
                value[root].1 = end;
            }
        }
        if let Some(root) = grad_root(plan, g, i) {
            merge(&mut grad, i, root);
            if plan.kept_grad[i] {
                grad[root].1 = end;
            }
        }
    }
    for (i, node) in g.nodes().iter().enumerate() {
        if value_root(plan, g, i).is_some() {
            value[i] = NONE;
        }
        if grad_root(plan, g, i).is_some() {
            grad[i] = NONE;
        }
        let in_arena = !matches!(node.kind, NodeKind::Param { .. });
        let spans = [
            (Kind::Value, value[i], plan.kept_value[i] && in_arena),
            (Kind::Grad, grad[i], plan.kept_grad[i]),
            (Kind::Argmax, argmax[i], false),
            (Kind::GradRow, grad_row[i], false),
            (Kind::ForwardScratch, forward_scratch[i], false),
            (Kind::BackwardScratch, backward_scratch[i], false),
        ];
        for (kind, (first, mut last), kept) in spans {
            if first == u16::MAX || (kind == Kind::Value && !in_arena) {
                continue;
            }
            if kept {
                last = end;
            }
            let len = match kind {
                Kind::GradRow => node.shape.numel() / node.shape.dim(0),
                Kind::Argmax => node.shape.numel().div_ceil(4), // one byte per pooled value
                Kind::Value | Kind::Grad => node.shape.numel(),
                Kind::ForwardScratch => plan.scratch_lens(g, NodeId(i as u16)).0,
                Kind::BackwardScratch => plan.scratch_lens(g, NodeId(i as u16)).1,
            };
            let t = Tensor { node: i as u16, kind, first, last, len, offset: 0 };
            out.push(t).map_err(|_| Error::CapacityExceeded { what: "plan tensors", capacity: S })?;
        }
    }
    Ok(())
}
