//! The arena of an int8 model: every tensor gets an offset such that no two tensors alive at
//! the same step overlap (a tensor lives from the step that makes it to the last step that
//! reads it; the input from the start, the output to the end; a step's scratch during that
//! step). Greedy: each buffer at the lowest offset free through its whole life, placed largest
//! first (TFLM's greedy planner's rule) and, separately, in order of first use; the smaller of
//! the two arenas is kept. A reshape's output shares its input's bytes.

use super::spec::MAX_QUANT_STEPS;

/// Tensors: the input and one per step.
pub const MAX_TENSORS: usize = MAX_QUANT_STEPS + 1;
/// Buffers the planner places: the tensors, and a scratch buffer per step.
pub const MAX_BUFFERS: usize = MAX_TENSORS + MAX_QUANT_STEPS;
/// Offsets are multiples of this (word loads of int8 data).
const ALIGN: usize = 4;

/// One tensor as the planner sees it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Life {
    /// Bytes.
    pub len: usize,
    /// The step that makes it (0 for the input, `k + 1` for step `k`).
    pub first: usize,
    /// The last step that reads it, plus one (the output: past the last step).
    pub last: usize,
    /// The tensor whose bytes it shares (a reshape's output), or itself.
    pub owner: usize,
}

/// Offsets of every tensor in one arena of `len` bytes.
#[derive(Clone, Debug, Default)]
pub struct ArenaPlan {
    pub offsets: heapless::Vec<usize, MAX_BUFFERS>,
    pub len: usize,
}

/// Plans `lives` (tensor `t` is `lives[t]`; owners come before the tensors that share them):
/// placed largest first, and in order of first use; the smaller arena of the two.
pub fn plan(lives: &[Life]) -> ArenaPlan {
    let n = lives.len().min(MAX_BUFFERS);
    // An owner's life spans the lives of every tensor that shares its bytes.
    let mut span: heapless::Vec<(usize, usize), MAX_BUFFERS> = lives[..n].iter().map(|l| (l.first, l.last)).collect();
    for (t, life) in lives[..n].iter().enumerate() {
        let o = life.owner.min(t);
        span[o] = (span[o].0.min(life.first), span[o].1.max(life.last));
    }
    let owners: heapless::Vec<usize, MAX_BUFFERS> = (0..n).filter(|&t| lives[t].owner >= t).collect();
    let mut by_size = owners.clone();
    by_size.sort_unstable_by(|&a, &b| lives[b].len.cmp(&lives[a].len).then(a.cmp(&b)));
    let mut by_first_use = owners;
    by_first_use.sort_unstable_by(|&a, &b| span[a].0.cmp(&span[b].0).then(lives[b].len.cmp(&lives[a].len)).then(a.cmp(&b)));
    let (a, b) = (place(&lives[..n], &span, &by_size), place(&lives[..n], &span, &by_first_use));
    let mut best = if b.len < a.len { b } else { a };
    for (t, life) in lives[..n].iter().enumerate() {
        best.offsets[t] = best.offsets[life.owner.min(t)];
    }
    best
}

/// Places the owners in `order`, each at the lowest offset where it collides with no placed
/// buffer alive at the same time.
fn place(lives: &[Life], span: &[(usize, usize)], order: &[usize]) -> ArenaPlan {
    let mut offsets: heapless::Vec<usize, MAX_BUFFERS> = (0..lives.len()).map(|_| 0).collect();
    let mut placed: heapless::Vec<usize, MAX_BUFFERS> = heapless::Vec::new();
    let mut len = 0;
    for &t in order {
        let overlaps = |u: usize| span[u].0 <= span[t].1 && span[t].0 <= span[u].1;
        let mut at = 0;
        // Move past every placed, overlapping buffer that collides, until none does.
        while let Some(&u) = placed.iter().find(|&&u| overlaps(u) && offsets[u] < at + lives[t].len && at < offsets[u] + lives[u].len) {
            at = (offsets[u] + lives[u].len).next_multiple_of(ALIGN);
        }
        offsets[t] = at;
        len = len.max(at + lives[t].len);
        let _ = placed.push(t);
    }
    ArenaPlan { offsets, len: len.next_multiple_of(ALIGN) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(len: usize, first: usize, last: usize, owner: usize) -> Life {
        Life { len, first, last, owner }
    }

    /// A chain a → b → c → d: the arena holds the largest neighbouring pair, and no tensor
    /// overlaps one alive with it (worked by hand: 784 + 1352 is the peak).
    #[test]
    fn chain_reuses_bytes() {
        let lives = [life(784, 0, 1, 0), life(1352, 1, 2, 1), life(400, 2, 3, 2), life(10, 3, 4, 3)];
        let p = plan(&lives);
        assert_eq!(p.len, 2136);
        // 1352 first at 0, then 784 after it, 400 after 1352 (alive with it), 10 at 0.
        assert_eq!(&p.offsets[..], &[1352, 0, 1352, 0]);
    }

    /// A residual add keeps the skip tensor alive across the branch; a reshape shares bytes.
    #[test]
    fn skip_and_reshape() {
        // x(0) → conv(1) → conv(2); add(3) reads 2 and 0; reshape(4) of 3.
        let lives = [life(100, 0, 3, 0), life(100, 1, 2, 1), life(100, 2, 3, 2), life(100, 3, 4, 3), life(100, 4, 5, 3)];
        let p = plan(&lives);
        assert_eq!(p.len, 300);
        let o = &p.offsets;
        assert_eq!(o[4], o[3]);
        for (a, b) in [(0, 1), (0, 2), (0, 3), (1, 2), (2, 3)] {
            assert_ne!(o[a], o[b], "tensors {a} and {b} are alive together");
        }
    }

    /// A chain like int8 mnist-cnn's with kernel scratch: largest first gives 2,288 bytes, first
    /// use the lower bound 2,176 (step 0: the 784-byte input, a 1,352-byte output and 40 bytes of
    /// scratch), worked by hand.
    #[test]
    fn the_better_of_two_orders() {
        let lives = [
            life(784, 0, 1, 0),
            life(1352, 1, 2, 1),
            life(400, 2, 3, 2),
            life(400, 3, 4, 2),
            life(10, 4, 5, 4),
            life(40, 1, 1, 5),
            life(288, 2, 2, 6),
            life(0, 3, 3, 7),
            life(1600, 4, 4, 8),
        ];
        let p = plan(&lives);
        assert_eq!(p.len, 2176);
        assert_eq!(p.offsets[3], p.offsets[2]);
    }
}
