//! Tensor lifetimes of a plan: the first and last step that touches each arena tensor.

use super::{Plan, Step};
use crate::ops::OpKind;
use crate::{Error, Graph, NodeKind, Result};

/// One arena tensor: a node's value or its gradient, alive over steps `first..=last`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tensor {
    pub node: usize,
    pub grad: bool,
    pub len: usize,
    pub first: usize,
    pub last: usize,
    pub offset: usize,
}

/// The arena tensors of `plan` with their lifetimes (offsets still zero).
pub(super) fn tensors<const N: usize, const S: usize>(g: &Graph<N>, plan: &Plan<N, S>) -> Result<heapless::Vec<Tensor, S>> {
    const NONE: (usize, usize) = (usize::MAX, 0);
    let mut value = [NONE; N];
    let mut grad = [NONE; N];
    let touch = |span: &mut (usize, usize), s: usize| {
        span.0 = span.0.min(s);
        span.1 = span.1.max(s);
    };
    let end = plan.steps.len();
    for (s, step) in plan.steps.iter().enumerate() {
        match *step {
            Step::Forward(id) => {
                let node = &g.nodes()[id.index()];
                touch(&mut value[id.index()], s);
                for &k in node.inputs() {
                    let first = if matches!(g.nodes()[k.index()].kind, NodeKind::Input { .. }) { 0 } else { s };
                    touch(&mut value[k.index()], first);
                    touch(&mut value[k.index()], s);
                }
            }
            Step::SeedGrad(id) | Step::ZeroGrad(id) | Step::Update(id) => touch(&mut grad[id.index()], s),
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
                    if grad[k.index()].0 != usize::MAX {
                        touch(&mut grad[k.index()], s);
                    }
                }
            }
        }
    }
    let mut out = heapless::Vec::new();
    for (i, node) in g.nodes().iter().enumerate() {
        let in_arena = !matches!(node.kind, NodeKind::Param { .. });
        let spans = [(false, value[i], plan.kept_value[i] && in_arena), (true, grad[i], plan.kept_grad[i])];
        for (is_grad, (first, mut last), kept) in spans {
            if first == usize::MAX || (!is_grad && !in_arena) {
                continue;
            }
            if kept {
                last = end;
            }
            let t = Tensor { node: i, grad: is_grad, len: node.shape.numel(), first, last, offset: 0 };
            out.push(t).map_err(|_| Error::CapacityExceeded { what: "plan tensors", capacity: S })?;
        }
    }
    Ok(out)
}
