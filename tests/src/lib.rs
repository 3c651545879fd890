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

/// Runs `steps` training steps of `plan` (optimizer state zeroed, arena poisoned with NaN)
/// on a copy of `params`, the same `feeds` each step, and returns the weights.
pub fn train_steps<const N: usize>(g: &Graph<N>, plan: &Plan<N>, params: &[f32], feeds: &[(NodeId, Vec<f32>)], steps: usize) -> Vec<f32> {
    let mut p = params.to_vec();
    let mut state = vec![0.0; plan.optimizer_len()];
    let mut arena = vec![f32::NAN; plan.arena_len()];
    let mut ex = Executor::new(g, plan, &mut p, &mut state, &mut arena).expect("executor");
    for _ in 0..steps {
        for (id, data) in feeds {
            ex.set_input(*id, data).expect("input");
        }
        ex.run().expect("run");
    }
    p
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

pub mod every_op;
pub mod nets;

/// A classifier graph: samples in, logits out, cross-entropy against labels.
pub struct Classifier<'g, const N: usize> {
    pub graph: &'g Graph<N>,
    pub x: NodeId,
    pub labels: NodeId,
    pub logits: NodeId,
    pub loss: NodeId,
}

impl<'g, const N: usize> Classifier<'g, N> {
    /// The classifier `net` of graph `g`.
    pub fn new(graph: &'g Graph<N>, net: nets::Net) -> Self {
        Classifier { graph, x: net.x, labels: net.labels, logits: net.logits, loss: net.loss }
    }
}

impl<const N: usize> Classifier<'_, N> {
    fn batch(&self) -> usize {
        self.graph.shape(self.x).expect("x").dim(0)
    }

    /// Trains from parameters initialized with `seed` for `epochs` over `(data, targets)`,
    /// shuffling with `seed` each epoch. Returns the parameters and the mean loss per epoch.
    pub fn train(&self, optimizer: mote_core::Optimizer, data: &[f32], targets: &[f32], epochs: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let g = self.graph;
        let plan: Plan<N> = Plan::training(g, self.loss, &[], Some(optimizer)).expect("plan");
        let mut params = vec![0.0; g.params_len()];
        g.init_params(&mut params, seed).expect("init");
        let mut opt = vec![0.0; plan.optimizer_len()];
        let mut arena = vec![0.0; plan.arena_len()];
        let mut ex = Executor::new(g, &plan, &mut params, &mut opt, &mut arena).expect("executor");
        ex.set_seed(seed);
        let (batch, per) = (self.batch(), data.len() / targets.len());
        let mut order: Vec<usize> = (0..targets.len()).collect();
        let mut rng = Rng::new(seed);
        let mut losses = Vec::new();
        let (mut xb, mut yb) = (vec![0.0; batch * per], vec![0.0; batch]);
        for _ in 0..epochs {
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            let mut total = 0.0;
            let steps = targets.len() / batch;
            for chunk in order.chunks_exact(batch) {
                for (k, &s) in chunk.iter().enumerate() {
                    xb[k * per..(k + 1) * per].copy_from_slice(&data[s * per..(s + 1) * per]);
                    yb[k] = targets[s];
                }
                ex.set_input(self.x, &xb).expect("x");
                ex.set_input(self.labels, &yb).expect("labels");
                ex.run().expect("step");
                total += ex.value(self.loss).expect("loss")[0];
            }
            losses.push(total / steps as f32);
        }
        (params, losses)
    }

    /// Fraction of `(data, targets)` whose argmax logit (evaluation mode) is the label.
    pub fn accuracy(&self, params: &[f32], data: &[f32], targets: &[f32]) -> f32 {
        let g = self.graph;
        let plan: Plan<N> = Plan::inference(g, &[self.logits], Mode::Eval).expect("plan");
        let mut arena = vec![0.0; plan.arena_len()];
        let mut ex = Executor::read_only(g, &plan, params, &mut arena).expect("executor");
        let (batch, per) = (self.batch(), data.len() / targets.len());
        let classes = g.shape(self.logits).expect("logits").last();
        let mut correct = 0;
        let full = targets.len() / batch * batch;
        for start in (0..full).step_by(batch) {
            ex.set_input(self.x, &data[start * per..(start + batch) * per]).expect("x");
            ex.run().expect("run");
            let logits = ex.value(self.logits).expect("logits");
            for k in 0..batch {
                let row = &logits[k * classes..(k + 1) * classes];
                correct += (mote_core::argmax_f32(row) as f32 == targets[start + k]) as usize;
            }
        }
        correct as f32 / full as f32
    }
}
