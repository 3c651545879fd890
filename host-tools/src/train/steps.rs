//! Training steps: data-parallel shards (`mote train --threads N`), or one executor whose plan
//! updates the weights itself.
//!
//! Sharded: the batch is split into one shard per thread; each shard runs a gradient-only plan
//! of its own (no optimizer) over the shared weights, the shards' gradients are summed in shard
//! order weighted by their share of the batch, and one optimizer update then moves every
//! trainable tensor. Each shard's loss is the mean over its samples, so the weighted sum is the
//! batch mean's gradient: the result is the one-executor step's up to float summation order,
//! and the same from run to run for a given thread count. Models whose plan writes parameters
//! outside the optimizer (batchnorm's running statistics) take the one-executor step, whose
//! statistics see the whole batch.

use crate::dataset::Split;
use crate::error::{CliError, CliResult};
use crate::model::{build, CliGraph, CliPlan, NODES, STEPS};
use mote_core::model::{BuiltModel, Loss, ModelSpec};
use mote_core::{Executor, NodeId, Optimizer};
use rayon::prelude::*;
use std::ops::Range;
use std::path::Path;

type Result<T> = core::result::Result<T, mote_core::Error>;

/// The loss and correct predictions of one step over the whole batch.
pub struct StepOutcome {
    pub loss: f32,
    pub correct: usize,
}

/// How each training step runs.
pub enum Steps {
    /// One executor, its plan updating each weight as soon as its gradient is complete.
    One { plan: Box<CliPlan>, optimizer_state: Vec<f32>, work: Work },
    /// Data-parallel shards.
    Sharded(Sharded),
}

/// A graph built for some number of samples, its arena, and the batch a step feeds it.
pub struct Work {
    graph: Box<CliGraph>,
    built: BuiltModel,
    arena: Vec<f32>,
    batch: Batch,
}

/// The inputs of one step.
struct Batch {
    x: Vec<f32>,
    labels: Vec<f32>,
    /// One-hot rows of the labels (`mse` models), else empty.
    targets: Vec<f32>,
    classes: usize,
}

/// One thread's share of the batch.
struct Shard {
    work: Work,
    plan: Box<CliPlan>,
    /// This shard's gradient, laid out like the parameters (zeros where nothing trains).
    grads: Vec<f32>,
    /// The graph's trainable tensors and their values in the parameters.
    trainables: Vec<(NodeId, Range<usize>)>,
    /// Which samples of the batch it takes.
    rows: Range<usize>,
}

/// The trainable tensors of `graph` and their values in the parameters.
fn trainable_tensors(graph: &CliGraph) -> Vec<(NodeId, Range<usize>)> {
    graph
        .node_ids()
        .filter_map(|id| graph.node(id).ok().filter(|n| n.is_trainable()).map(|n| (id, n)))
        .filter_map(|(id, n)| n.param_offset().map(|at| (id, at..at + n.shape.numel())))
        .collect()
}

/// The shards, and what the update after them needs.
pub struct Sharded {
    shards: Vec<Shard>,
    /// The trainable tensors' values in the parameters, in chunks updated in parallel.
    chunks: Vec<Range<usize>>,
    optimizer: Optimizer,
    /// The batch's gradient.
    grads: Vec<f32>,
    /// Optimizer state: `slots` values per parameter value, chunk by chunk.
    state: Vec<f32>,
    seed: u64,
    pool: rayon::ThreadPool,
}

impl Steps {
    /// The steps for `spec` at `batch` samples on `threads` threads (at most one per sample).
    pub fn new(path: &Path, spec: &ModelSpec, batch: usize, threads: usize, optimizer: Optimizer, seed: u64) -> CliResult<Steps> {
        let core = CliError::core(path);
        let count = threads.clamp(1, batch);
        let mut shards = Vec::with_capacity(count);
        for k in 0..count {
            let rows = k * batch / count..(k + 1) * batch / count;
            let (graph, built) = build(path, spec, rows.len())?;
            let plan = Box::new(CliPlan::training(&graph, built.loss, &[built.output], None).map_err(core)?);
            if plan.writes_params() {
                return Self::one(path, spec, batch, optimizer);
            }
            let (grads, trainables) = (vec![0.0; graph.params_len()], trainable_tensors(&graph));
            shards.push(Shard { work: Work::new(path, spec, graph, built, plan.arena_len())?, plan, grads, trainables, rows });
        }
        let chunks = chunked(shards[0].trainables.iter().map(|(_, values)| values.clone()));
        let params = shards[0].work.graph.params_len();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(count)
            .build()
            .map_err(|e| CliError::Usage(format!("cannot start {count} training threads: {e}")))?;
        let state = vec![0.0; optimizer.slots() * params];
        Ok(Steps::Sharded(Sharded { shards, chunks, optimizer, grads: vec![0.0; params], state, seed, pool }))
    }

    /// One executor over the whole batch, its plan holding the optimizer.
    fn one(path: &Path, spec: &ModelSpec, batch: usize, optimizer: Optimizer) -> CliResult<Steps> {
        let (graph, built) = build(path, spec, batch)?;
        let plan = Box::new(CliPlan::training(&graph, built.loss, &[built.output], Some(optimizer)).map_err(CliError::core(path))?);
        let optimizer_state = vec![0.0; plan.optimizer_len()];
        Ok(Steps::One { work: Work::new(path, spec, graph, built, plan.arena_len())?, plan, optimizer_state })
    }

    /// Threads each step uses.
    pub fn threads(&self) -> usize {
        match self {
            Steps::One { .. } => 1,
            Steps::Sharded(s) => s.shards.len(),
        }
    }

    /// Values the steps hold besides the parameters: optimizer state, arenas, gradients.
    pub fn values(&self) -> usize {
        match self {
            Steps::One { optimizer_state, work, .. } => optimizer_state.len() + work.arena.len(),
            Steps::Sharded(s) => {
                s.state.len() + s.grads.len() + s.shards.iter().map(|sh| sh.work.arena.len() + sh.grads.len()).sum::<usize>()
            }
        }
    }

    /// One step over the samples `batch` of `split` at learning rate `lr`; `step` counts the
    /// steps before it (Adam's bias correction, dropout masks).
    pub fn step(&mut self, params: &mut [f32], split: &Split, batch: &[usize], lr: f32, step: u32, seed: u64) -> Result<StepOutcome> {
        match self {
            Steps::One { plan, optimizer_state, work } => {
                let mut ex = Executor::new(&work.graph, plan, params, optimizer_state, &mut work.arena)?;
                ex.set_seed(seed);
                ex.set_runs(step);
                ex.set_lr(lr);
                let (loss, correct) = work.batch.run(&work.built, &mut ex, split, batch)?;
                Ok(StepOutcome { loss, correct })
            }
            Steps::Sharded(s) => s.step(params, split, batch, lr, step),
        }
    }
}

impl Sharded {
    fn step(&mut self, params: &mut [f32], split: &Split, batch: &[usize], lr: f32, step: u32) -> Result<StepOutcome> {
        let seed = self.seed;
        let shared: &[f32] = params;
        let outcomes: Vec<Result<(f32, usize)>> = self.pool.install(|| {
            self.shards
                .par_iter_mut()
                .enumerate()
                .map(|(k, shard)| shard.run(shared, split, batch, seed.wrapping_add(k as u64), step))
                .collect()
        });
        let (mut loss, mut correct) = (0.0f32, 0);
        for (shard, outcome) in self.shards.iter().zip(outcomes) {
            let (shard_loss, shard_correct) = outcome?;
            loss += shard.share(batch.len()) * shard_loss;
            correct += shard_correct;
        }
        // The update, chunk by chunk on the pool: each chunk's gradient is summed over the
        // shards, then the optimizer (elementwise) moves its values.
        let (optimizer, shards, n) = (&mut self.optimizer, &self.shards, batch.len());
        optimizer.set_lr(lr);
        let optimizer = *optimizer;
        let chunks = split_chunks(&self.chunks, params, &mut self.grads, &mut self.state, optimizer.slots());
        self.pool.install(|| {
            chunks.into_par_iter().for_each(|(values, params, grads, state)| {
                for (k, shard) in shards.iter().enumerate() {
                    let (w, part) = (shard.share(n), &shard.grads[values.clone()]);
                    let pairs = grads.iter_mut().zip(part);
                    if k == 0 {
                        pairs.for_each(|(g, &v)| *g = w * v);
                    } else {
                        pairs.for_each(|(g, &v)| *g += w * v);
                    }
                }
                optimizer.update(step + 1, params, grads, state);
            })
        });
        Ok(StepOutcome { loss, correct })
    }
}

/// Values of a trainable tensor updated together (elementwise updates need no more).
const CHUNK: usize = 16 * 1024;

/// The trainable tensors `tensors` (disjoint) cut into chunks of at most [`CHUNK`], ascending.
fn chunked(tensors: impl Iterator<Item = Range<usize>>) -> Vec<Range<usize>> {
    let mut chunks: Vec<_> = tensors.flat_map(|t| (t.start..t.end).step_by(CHUNK).map(move |at| at..(at + CHUNK).min(t.end))).collect();
    chunks.sort_by_key(|c| c.start);
    chunks
}

/// A chunk's values, and its parameters, gradient and optimizer state (`slots` per value).
type Chunk<'a> = (Range<usize>, &'a mut [f32], &'a mut [f32], &'a mut [f32]);

/// Disjoint views of `chunks` (ascending, disjoint) in the parameters, the gradient and the
/// optimizer state.
fn split_chunks<'a>(
    chunks: &[Range<usize>],
    params: &'a mut [f32],
    grads: &'a mut [f32],
    state: &'a mut [f32],
    slots: usize,
) -> Vec<Chunk<'a>> {
    let (mut params, mut grads, mut state) = (params, grads, state);
    let mut at = 0;
    let mut views = Vec::with_capacity(chunks.len());
    for c in chunks {
        let skip = c.start - at;
        let (p, rest) = std::mem::take(&mut params)[skip..].split_at_mut(c.len());
        params = rest;
        let (g, rest) = std::mem::take(&mut grads)[skip..].split_at_mut(c.len());
        grads = rest;
        let (s, rest) = std::mem::take(&mut state)[slots * skip..].split_at_mut(slots * c.len());
        state = rest;
        views.push((c.clone(), p, g, s));
        at = c.end;
    }
    views
}

impl Shard {
    /// This shard's share of a batch of `n` samples.
    fn share(&self, n: usize) -> f32 {
        self.rows.len() as f32 / n as f32
    }

    /// Forward and backward over this shard's samples of `batch`; returns its mean loss and
    /// correct predictions and leaves its gradient in `self.grads`.
    fn run(&mut self, params: &[f32], split: &Split, batch: &[usize], seed: u64, step: u32) -> Result<(f32, usize)> {
        let mut ex = Executor::read_only(&self.work.graph, &self.plan, params, &mut self.work.arena)?;
        // Dropout masks differ between shards and steps.
        ex.set_seed(seed);
        ex.set_runs(step);
        let outcome = self.work.batch.run(&self.work.built, &mut ex, split, &batch[self.rows.clone()])?;
        for (id, values) in &self.trainables {
            self.grads[values.clone()].copy_from_slice(ex.grad(*id)?);
        }
        Ok(outcome)
    }
}

impl Work {
    fn new(path: &Path, spec: &ModelSpec, graph: Box<CliGraph>, built: BuiltModel, arena: usize) -> CliResult<Work> {
        let core = CliError::core(path);
        let x_shape = graph.shape(built.x).map_err(core)?;
        let classes = graph.shape(built.output).map_err(core)?.last();
        let n = x_shape.dim(0);
        let targets = vec![0.0; if spec.loss == Loss::Mse { n * classes } else { 0 }];
        let batch = Batch { x: vec![0.0; x_shape.numel()], labels: vec![0.0; n], targets, classes };
        Ok(Work { arena: vec![0.0; arena], batch, graph, built })
    }
}

impl Batch {
    /// Feeds `samples` of `split` to `ex` (a plan of this graph), runs it and returns the
    /// mean loss and the correct predictions.
    fn run(&mut self, built: &BuiltModel, ex: &mut Executor<'_, NODES, STEPS>, split: &Split, samples: &[usize]) -> Result<(f32, usize)> {
        let per = split.rows * split.cols;
        for (k, &s) in samples.iter().enumerate() {
            self.x[k * per..(k + 1) * per].copy_from_slice(split.image(s));
            self.labels[k] = split.labels[s] as f32;
        }
        ex.set_input(built.x, &self.x)?;
        if self.targets.is_empty() {
            ex.set_input(built.target, &self.labels)?;
        } else {
            self.targets.fill(0.0);
            let classes = self.classes;
            self.labels.iter().enumerate().for_each(|(k, &y)| self.targets[k * classes + y as usize] = 1.0);
            ex.set_input(built.target, &self.targets)?;
        }
        ex.run()?;
        let loss = ex.value(built.loss)?[0];
        let logits = ex.value(built.output)?;
        let correct =
            logits.chunks_exact(self.classes).zip(&self.labels).filter(|(row, &y)| mote_core::argmax_f32(row) == y as usize).count();
        Ok((loss, correct))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec_file::parse_spec;
    use mote_core::Rng;

    const SPEC: &str = r#"
name = "small-cnn"
input = [1, 8, 8]
[[layer]]
op = "conv2d"
out_channels = 3
kernel = 3
[[layer]]
op = "relu"
[[layer]]
op = "maxpool2d"
kernel = 2
[[layer]]
op = "flatten"
[[layer]]
op = "linear"
out = 4
[loss]
op = "cross_entropy"
"#;

    /// 10 random 8×8 images with labels 0..3.
    fn split() -> Split {
        let mut rng = Rng::new(7);
        Split {
            images: (0..10 * 64).map(|_| rng.uniform()).collect(),
            labels: (0..10).map(|i| (i % 4) as u8).collect(),
            rows: 8,
            cols: 8,
            images_path: "images".into(),
            labels_path: "labels".into(),
        }
    }

    /// Three SGD steps over a batch of 10 split into 1, 2 and 3 shards (3 + 3 + 4: unequal
    /// shares) give the one-executor plan's weights and losses up to float summation order
    /// (1e-6, where the weights move by ~1e-2), and a thread count gives the same bits twice.
    #[test]
    fn shards_match_the_one_executor_step() {
        let spec = parse_spec(SPEC).expect("spec").spec;
        let path = Path::new("small-cnn.toml");
        let (data, batch) = (split(), (0..10).collect::<Vec<_>>());
        let optimizer = Optimizer::sgd(0.5);
        let (g, _) = build(path, &spec, 10).expect("graph");
        let mut start = vec![0.0; g.params_len()];
        g.init_params(&mut start, 3).expect("init");
        let train = |mut steps: Steps| {
            let mut params = start.clone();
            let losses: Vec<f32> = (0..3).map(|s| steps.step(&mut params, &data, &batch, 0.5, s, 1).expect("step").loss).collect();
            (params, losses)
        };
        let (want, want_losses) = train(Steps::one(path, &spec, 10, optimizer).expect("one"));
        let moved = want.iter().zip(&start).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(moved > 1e-2, "the weights hardly moved: {moved}");
        for threads in [1, 2, 3] {
            let sharded = || Steps::new(path, &spec, 10, threads, optimizer, 1).expect("shards");
            assert_eq!(sharded().threads(), threads);
            let (got, losses) = train(sharded());
            for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                assert!((a - b).abs() <= 1e-6, "{threads} threads, parameter {i}: {a} vs {b}");
            }
            for (a, b) in want_losses.iter().zip(&losses) {
                assert!((a - b).abs() <= 1e-6, "{threads} threads: loss {a} vs {b}");
            }
            assert_eq!(train(sharded()).0, got, "{threads} threads: not reproducible");
        }
    }
}
