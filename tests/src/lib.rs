//! Shared helpers for mote's cross-crate tests: a central finite-difference gradient checker
//! and small utilities for feeding and reading graphs.

use mote_core::{Executor, Graph, Mode, NodeId, NodeKind, Plan, Rng};

/// Step of the central differences: large enough that f32 round-off of the loss stays far
/// below the difference, small enough that the curvature term stays below the tolerance.
pub const FD_STEP: f32 = 1e-2;

/// `n` values uniform in [lo, hi).
pub fn uniform(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| lo + (hi - lo) * rng.uniform()).collect()
}

/// `n` values with |v| in [0.1, 1) and random sign: away from the kinks of relu and friends.
pub fn away_from_zero(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let v = 0.1 + 0.9 * rng.uniform();
            if rng.uniform() < 0.5 {
                -v
            } else {
                v
            }
        })
        .collect()
}

/// `n` distinct values 0.05 apart, shuffled: maxima of pooling windows are never near-ties.
pub fn distinct(rng: &mut Rng, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.05).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

/// Parameters initialized by the graph, then every trainable one redrawn uniform in [-1, 1)
/// so that biases and scales are not special values.
pub fn random_params<const N: usize>(g: &Graph<N>, seed: u64) -> Vec<f32> {
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, seed).expect("params");
    let mut rng = Rng::new(seed ^ 0xabcd);
    for node in g.nodes() {
        if let NodeKind::Param { trainable: true, offset, .. } = node.kind {
            for v in &mut params[offset..offset + node.shape.numel()] {
                *v = rng.symmetric(1.0);
            }
        }
    }
    params
}

/// Runs `plan` once on a copy of `params` with `feeds`, returning the value of `read`.
pub fn run_once<const N: usize>(g: &Graph<N>, plan: &Plan<N>, params: &[f32], feeds: &[(NodeId, Vec<f32>)], read: NodeId) -> Vec<f32> {
    let mut p = params.to_vec();
    let mut opt = vec![0.0; plan.optimizer_len()];
    let mut arena = vec![f32::NAN; plan.arena_len()];
    let mut ex = Executor::new(g, plan, &mut p, &mut opt, &mut arena).expect("executor");
    for (id, data) in feeds {
        ex.set_input(*id, data).expect("input");
    }
    ex.run().expect("run");
    ex.value(read).expect("value").to_vec()
}

/// What a gradient check compared.
#[derive(Debug, Default)]
pub struct GradReport {
    /// Tensors (grad inputs and trainable parameters) checked.
    pub tensors: usize,
    /// Scalar entries checked.
    pub entries: usize,
    /// Largest |analytic − numeric| seen.
    pub max_abs_err: f32,
}

/// Checks the analytic gradient of every grad input and every trainable parameter of `g`
/// against central finite differences of `loss`. Panics naming the first entry that differs
/// by more than `2e-3·|numeric| + 2e-4·max|gradient|` plus the f32 round-off floor of the
/// difference quotient (8 ulp of the loss over `2·FD_STEP`).
pub fn grad_check<const N: usize>(g: &Graph<N>, loss: NodeId, feeds: &[(NodeId, Vec<f32>)], seed: u64) -> GradReport {
    let params = random_params(g, seed);
    let train: Plan<N> = Plan::training(g, loss, &[], None).expect("training plan");
    let forward: Plan<N> = Plan::inference(g, &[loss], Mode::Train).expect("forward plan");

    // Analytic gradients from one training step without an optimizer.
    let mut p = params.clone();
    let mut arena = vec![f32::NAN; train.arena_len()];
    let mut ex = Executor::new(g, &train, &mut p, &mut [], &mut arena).expect("executor");
    for (id, data) in feeds {
        ex.set_input(*id, data).expect("input");
    }
    ex.run().expect("run");
    let mut targets: Vec<(NodeId, Vec<f32>)> = Vec::new();
    for (i, node) in g.nodes().iter().enumerate() {
        let wanted = node.is_trainable() || matches!(node.kind, NodeKind::Input { requires_grad: true });
        let id = node_id(g, i);
        if wanted {
            targets.push((id, ex.grad(id).expect("gradient kept").to_vec()));
        }
    }
    drop(ex);
    assert!(!targets.is_empty(), "nothing to check");

    let scale = targets.iter().flat_map(|(_, g)| g.iter()).fold(0.0f32, |m, v| m.max(v.abs()));
    let base_loss = run_once(g, &forward, &params, feeds, loss)[0];
    let roundoff = 8.0 * f32::EPSILON * base_loss.abs().max(1e-3) / (2.0 * FD_STEP);
    let loss_with = |params: &[f32], feeds: &[(NodeId, Vec<f32>)]| run_once(g, &forward, params, feeds, loss)[0];
    let mut report = GradReport::default();
    for (id, analytic) in &targets {
        let node = g.node(*id).expect("node");
        for (j, &a) in analytic.iter().enumerate() {
            let numeric = match node.param_offset() {
                Some(off) => {
                    let mut plus = params.clone();
                    let mut minus = params.clone();
                    plus[off + j] += FD_STEP;
                    minus[off + j] -= FD_STEP;
                    (loss_with(&plus, feeds) - loss_with(&minus, feeds)) / (2.0 * FD_STEP)
                }
                None => {
                    let perturb = |delta: f32| {
                        let mut f = feeds.to_vec();
                        let slot = f.iter_mut().find(|(k, _)| k == id).expect("grad input is fed");
                        slot.1[j] += delta;
                        loss_with(&params, &f)
                    };
                    (perturb(FD_STEP) - perturb(-FD_STEP)) / (2.0 * FD_STEP)
                }
            };
            let err = (a - numeric).abs();
            report.max_abs_err = report.max_abs_err.max(err);
            assert!(
                err <= 2e-3 * numeric.abs() + 2e-4 * scale + roundoff,
                "node {} ({:?}) entry {j}: analytic {a} vs numeric {numeric} (gradient scale {scale})",
                id.index(),
                node.kind
            );
            report.entries += 1;
        }
        report.tensors += 1;
    }
    report
}

/// The id of node `index` (ids are only handed out by the graph; this finds it by position).
pub fn node_id<const N: usize>(g: &Graph<N>, index: usize) -> NodeId {
    g.node_ids().nth(index).expect("node index in range")
}
