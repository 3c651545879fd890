//! Arena placement: greedy by size (as TFLM's GreedyMemoryPlanner). Each tensor, largest
//! first, goes to the lowest offset where it overlaps no placed tensor whose lifetime it
//! shares.

use super::lifetimes::{Kind, Tensor};

fn overlaps_in_time(a: &Tensor, b: &Tensor) -> bool {
    a.first <= b.last && b.first <= a.last
}

/// Arena figures of a placement, in values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Placement {
    pub len: usize,
    /// The largest total of tensors alive at one step.
    pub lower_bound: usize,
    /// At that step: forward values (activations, inputs, argmax indices) and gradients.
    pub peak_values: usize,
    pub peak_grads: usize,
}

/// Placement order: largest first, then earliest, then by node and kind (a total order).
fn placed_before(a: &Tensor, b: &Tensor) -> bool {
    b.len.cmp(&a.len).then(a.first.cmp(&b.first)).then(a.node.cmp(&b.node)).then(a.kind.cmp(&b.kind)).is_lt()
}

/// Sets every tensor's offset and returns the arena figures.
pub(super) fn place_greedy(tensors: &mut [Tensor]) -> Placement {
    // Insertion sort: a plan has a few dozen tensors, and core's quicksort needs about 0.8 KB
    // of stack on the device, more than the planner's other temporaries.
    for i in 1..tensors.len() {
        let mut j = i;
        while j > 0 && placed_before(&tensors[j], &tensors[j - 1]) {
            tensors.swap(j, j - 1);
            j -= 1;
        }
    }
    let mut arena = 0;
    for i in 0..tensors.len() {
        let (placed, rest) = tensors.split_at_mut(i);
        let t = &mut rest[0];
        // Candidate offsets: 0 and the end of every placed tensor alive at the same time.
        // Ends saturate: a plan whose arena reaches usize::MAX is refused by the caller.
        let conflicts = |offset: usize| {
            placed
                .iter()
                .any(|p| overlaps_in_time(p, t) && offset < p.offset.saturating_add(p.len) && p.offset < offset.saturating_add(t.len))
        };
        let candidates =
            core::iter::once(0).chain(placed.iter().filter(|p| overlaps_in_time(p, t)).map(|p| p.offset.saturating_add(p.len)));
        let offset = candidates.filter(|&o| !conflicts(o)).min().unwrap_or(0);
        t.offset = offset;
        arena = arena.max(offset.saturating_add(t.len));
    }
    let last_step = tensors.iter().map(|t| t.last).max().unwrap_or(0);
    let live = |s: u16, grad: bool| {
        tensors
            .iter()
            .filter(|t| t.first <= s && s <= t.last && matches!(t.kind, Kind::Grad | Kind::GradRow) == grad)
            .fold(0usize, |sum, t| sum.saturating_add(t.len))
    };
    let mut placement = Placement { len: arena, ..Placement::default() };
    for s in 0..=last_step {
        let (values, grads) = (live(s, false), live(s, true));
        if values.saturating_add(grads) > placement.lower_bound {
            placement = Placement { len: arena, lower_bound: values.saturating_add(grads), peak_values: values, peak_grads: grads };
        }
    }
    placement
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(node: u16, len: usize, first: u16, last: u16) -> Tensor {
        Tensor { node, kind: Kind::Value, first, last, len, offset: 0 }
    }

    /// Hand-worked: A(10, steps 0-1), B(6, 1-2), C(10, 2-3). A and C never meet, so they share
    /// offset 0 and B sits at 10: arena 16 = lower bound (A+B at step 1, B+C at step 2).
    #[test]
    fn reuses_memory_of_dead_tensors() {
        let mut ts = [t(0, 10, 0, 1), t(1, 6, 1, 2), t(2, 10, 2, 3)];
        let p = place_greedy(&mut ts);
        assert_eq!((p.len, p.lower_bound, p.peak_values, p.peak_grads), (16, 16, 16, 0));
        let off = |n: u16| ts.iter().find(|x| x.node == n).unwrap().offset;
        assert_eq!((off(0), off(1), off(2)), (0, 10, 0));
    }
}
