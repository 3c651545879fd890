//! Finds residual blocks among converted int8 steps — `ADD(conv_b(conv_a(x)), x or conv_s(x))`
//! where nothing else reads conv_a's, conv_b's or conv_s's output — and replaces each by one
//! `QLayer::Residual` step at the ADD's place, which the core runs row by row in far less
//! memory (the same bytes out).

use mote_core::quant::{Operand, QConv, QLayer, QStep, QTensor, Residual};

/// Tensor `t`'s plain convolution (made by step `t − 1`: not depthwise, no pool), if it is one.
fn plain_conv(steps: &[QStep], t: u16) -> Option<(usize, QConv)> {
    let k = (t as usize).checked_sub(1)?;
    match steps.get(k)?.layer {
        QLayer::Conv { p, io, depthwise: false, weights, bias, requant, pool: None } => Some((k, QConv { p, io, weights, bias, requant })),
        _ => None,
    }
}

/// The residual block ending at ADD step `k`, if there is one: the block, its input tensor,
/// and the steps it absorbs.
fn block_at(steps: &[QStep], input: &QTensor, k: usize, readers: &[Vec<usize>]) -> Option<(Residual, u16, Vec<usize>)> {
    let QLayer::Add { p: add, other: Operand::Tensor(second) } = steps[k].layer else { return None };
    let only_reader = |t: u16, reader: usize| readers.get(t as usize).is_some_and(|r| r == &[reader]);
    let first = steps[k].input;
    for (main, side, shortcut_first) in [(first, second, false), (second, first, true)] {
        let Some((kb, b)) = plain_conv(steps, main) else { continue };
        let Some((ka, a)) = plain_conv(steps, steps[kb].input) else { continue };
        let x = steps[ka].input;
        if !only_reader(main, k) || !only_reader(ka as u16 + 1, kb) {
            continue;
        }
        let x_dims = if x == 0 { input.dims() } else { steps[x as usize - 1].output.dims() };
        let (shortcut, absorbed) = if side == x && x_dims == steps[k].output.dims() {
            (None, vec![ka, kb])
        } else {
            match plain_conv(steps, side) {
                Some((ks, s)) if steps[ks].input == x && only_reader(side, k) => (Some(s), vec![ka, kb, ks]),
                _ => continue,
            }
        };
        return Some((Residual { a, b, shortcut, add, shortcut_first }, x, absorbed));
    }
    None
}

/// `steps` (of a model with input `input`) with every residual block fused into one step, and
/// for each step of the result the step of `steps` whose output it makes.
pub fn fuse_residual_blocks(input: &QTensor, steps: &[QStep]) -> (Vec<QStep>, Vec<usize>) {
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); steps.len() + 1];
    for (k, step) in steps.iter().enumerate() {
        for t in step.reads() {
            if let Some(r) = readers.get_mut(t as usize) {
                r.push(k);
            }
        }
    }
    let mut absorbed = vec![false; steps.len()];
    let mut blocks: Vec<Option<(Residual, u16)>> = vec![None; steps.len()];
    for (k, fused) in blocks.iter_mut().enumerate() {
        if let Some((block, x, inner)) = block_at(steps, input, k, &readers) {
            if inner.iter().all(|&j| !absorbed[j]) {
                inner.iter().for_each(|&j| absorbed[j] = true);
                *fused = Some((block, x));
            }
        }
    }
    // New tensor numbers: 0 the input, then one per kept step.
    let mut renamed: Vec<u16> = vec![0; steps.len() + 1];
    let (mut fused, mut origins) = (Vec::new(), Vec::new());
    for (k, step) in steps.iter().enumerate() {
        if absorbed[k] {
            continue;
        }
        let mut step = match blocks[k] {
            Some((block, x)) => QStep { layer: QLayer::Residual(block), input: x, output: step.output },
            None => *step,
        };
        step.input = renamed[step.input as usize];
        if let QLayer::Add { other: Operand::Tensor(t), .. } = &mut step.layer {
            *t = renamed[*t as usize];
        }
        fused.push(step);
        origins.push(k);
        renamed[k + 1] = fused.len() as u16;
    }
    (fused, origins)
}
