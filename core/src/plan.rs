//! Plans: the ordered steps of an inference pass or a whole training step (forward, loss,
//! backward, optimizer updates), with a fixed arena offset for every tensor.
//!
//! Reverse-mode autodiff is derived here, once: the backward steps run in reverse topological
//! order, a gradient that several consumers feed is zeroed before its first contribution and
//! accumulated, and each parameter is updated as soon as its gradient is complete, so no
//! full gradient buffer is ever live.

mod bytes;
mod lifetimes;
mod memory;

use crate::ops::{Op, OpKind};
use crate::{Error, Graph, NodeId, NodeKind, Optimizer, Result, BYTES_PER_VALUE};
use mote_kernels::dispatch::{active as active_isa, Isa};

/// Whether batchnorm and dropout behave as in training or in evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// One step of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Compute an op node's output.
    Forward(NodeId),
    /// Set the loss gradient to 1.
    SeedGrad(NodeId),
    /// Zero a gradient before its first contribution.
    ZeroGrad(NodeId),
    /// Accumulate an op node's input gradients from its output gradient.
    Backward(NodeId),
    /// Apply the optimizer to a parameter whose gradient is complete.
    Update(NodeId),
}

/// An offset into the arena or the optimizer state: 4 bytes on any target (a plan holds
/// several per node, and plans live on the device's stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Offset(core::num::NonZeroU32);

impl Offset {
    fn new(offset: usize) -> Result<Offset> {
        let stored = u32::try_from(offset).ok().and_then(|o| o.checked_add(1)).and_then(core::num::NonZeroU32::new);
        stored.map(Offset).ok_or(Error::CapacityExceeded { what: "arena values", capacity: u32::MAX as usize - 1 })
    }
    /// The offset, in values.
    pub(crate) fn get(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// Memory a plan needs, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryReport {
    /// The arena: activations, gradients and inputs, placed by lifetime.
    pub arena_bytes: usize,
    /// The largest set of arena tensors alive at one step: no placement can do better.
    pub arena_lower_bound_bytes: usize,
    /// Parameters and state (running statistics), stored outside the arena.
    pub params_bytes: usize,
    /// Optimizer state (momentum, Adam moments), stored outside the arena.
    pub optimizer_bytes: usize,
    /// At the arena's busiest step: bytes of forward values (activations, inputs) ...
    pub peak_activation_bytes: usize,
    /// ... and of gradients.
    pub peak_gradient_bytes: usize,
}

/// A plan for one graph: plain data, built on the host or on the device, and written as
/// bytes ([`Plan::to_bytes`]) for a device that should only execute it.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan<const N: usize = 64, const S: usize = 256> {
    pub(crate) steps: heapless::Vec<Step, S>,
    pub(crate) value_at: [Option<Offset>; N],
    pub(crate) grad_at: [Option<Offset>; N],
    pub(crate) optimizer_at: [Option<Offset>; N],
    pub(crate) kept_value: [bool; N],
    pub(crate) kept_grad: [bool; N],
    /// The op's output overwrites its input 0 (which is dead afterwards).
    pub(crate) in_place_forward: [bool; N],
    /// The op's backward turns its output gradient into input 0's gradient in place.
    pub(crate) in_place_backward: [bool; N],
    /// For a maxpool step fused with its relu and conv producers: the conv node.
    pub(crate) fused_conv: [Option<NodeId>; N],
    /// In training plans, where a fused step keeps the argmax of each pooled value (a byte
    /// each, four to an arena value) from its forward to its backward.
    pub(crate) argmax_at: [Option<Offset>; N],
    /// Parameters updated inside their layer's backward, one row of the gradient at a time
    /// (a linear weight's row, a fused conv's output channel), so their whole gradient never
    /// exists.
    pub(crate) update_in_backward: [bool; N],
    /// Where such a parameter's gradient row (`numel / dim 0` values) lives during that step.
    pub(crate) grad_row_at: [Option<Offset>; N],
    /// Where a node's forward step, and its backward step, keep their kernel's scratch.
    pub(crate) forward_scratch_at: [Option<Offset>; N],
    pub(crate) backward_scratch_at: [Option<Offset>; N],
    pub(crate) arena_len: usize,
    pub(crate) lower_bound: usize,
    pub(crate) peak_values: usize,
    pub(crate) peak_grads: usize,
    pub(crate) mode: Mode,
    /// The instruction set whose kernels' scratch sizes the plan holds.
    pub(crate) isa: Isa,
    pub(crate) optimizer: Option<Optimizer>,
    pub(crate) optimizer_len: usize,
    pub(crate) writes_params: bool,
    pub(crate) nodes_len: usize,
    pub(crate) params_len: usize,
    /// [`Graph::fingerprint`] of the graph the plan was built from.
    pub(crate) graph_fingerprint: u32,
}

/// Marks `roots` and every node they depend on.
fn ancestors<const N: usize>(g: &Graph<N>, roots: &[NodeId]) -> Result<[bool; N]> {
    let mut marked = [false; N];
    for &r in roots {
        g.node(r)?;
        marked[r.index()] = true;
    }
    for i in (0..g.nodes().len()).rev() {
        if marked[i] {
            for &k in g.nodes()[i].inputs() {
                marked[k.index()] = true;
            }
        }
    }
    Ok(marked)
}

/// How many needed op nodes read each node.
fn consumer_counts<const N: usize>(g: &Graph<N>, needed: &[bool; N]) -> [u8; N] {
    let mut counts = [0u8; N];
    for (i, node) in g.nodes().iter().enumerate() {
        if needed[i] && node.op().is_some() {
            for &k in node.inputs() {
                counts[k.index()] = counts[k.index()].saturating_add(1);
            }
        }
    }
    counts
}

impl<const N: usize, const S: usize> Plan<N, S> {
    fn empty(g: &Graph<N>, mode: Mode, isa: Isa) -> Self {
        let mut plan = Self::empty_sized(g.nodes().len(), g.params_len(), mode);
        plan.graph_fingerprint = g.fingerprint();
        plan.isa = isa;
        plan
    }

    fn empty_sized(nodes_len: usize, params_len: usize, mode: Mode) -> Self {
        Plan {
            steps: heapless::Vec::new(),
            value_at: [None; N],
            grad_at: [None; N],
            optimizer_at: [None; N],
            kept_value: [false; N],
            kept_grad: [false; N],
            in_place_forward: [false; N],
            in_place_backward: [false; N],
            fused_conv: [None; N],
            argmax_at: [None; N],
            update_in_backward: [false; N],
            grad_row_at: [None; N],
            forward_scratch_at: [None; N],
            backward_scratch_at: [None; N],
            arena_len: 0,
            lower_bound: 0,
            peak_values: 0,
            peak_grads: 0,
            mode,
            isa: Isa::Reference,
            optimizer: None,
            optimizer_len: 0,
            writes_params: false,
            nodes_len,
            params_len,
            graph_fingerprint: 0,
        }
    }

    fn push(&mut self, step: Step) -> Result<()> {
        self.steps.push(step).map_err(|_| Error::CapacityExceeded { what: "plan steps", capacity: S })
    }

    /// Forward steps computing `outputs`, in `mode`; the outputs stay readable after a run.
    /// With `backward`, values a later backward step reads are never overwritten in place.
    fn forward_steps(&mut self, g: &Graph<N>, needed: &[bool; N], outputs: &[NodeId], backward: bool, in_place: bool) -> Result<()> {
        for &o in outputs {
            self.kept_value[o.index()] = true;
        }
        let consumers = consumer_counts(g, needed);
        // conv2d → relu → maxpool2d runs as one step: the conv and relu get none.
        if in_place {
            self.fused_conv = crate::fusion::conv_relu_maxpool(g, needed, &consumers, &self.kept_value, backward);
        }
        let fused_away = self.fused_away(g);
        for (i, node) in g.nodes().iter().enumerate() {
            let Some(op) = node.op().filter(|_| needed[i] && !fused_away[i]) else { continue };
            self.push(Step::Forward(NodeId(i as u16)))?;
            let writes_state = node.inputs().iter().any(|&k| g.nodes()[k.index()].is_state());
            self.writes_params |= self.mode == Mode::Train && writes_state;
            // In place: input 0 is an arena value of the same shape, read by nothing else
            // (no other consumer, not kept, not saved by this op or by its producer).
            let k = node.inputs()[0].index();
            let input = &g.nodes()[k];
            let producer_saves_output = input.op().is_some_and(|p| p.saved().output);
            self.in_place_forward[i] = self.fused_conv[i].is_none()
                && in_place
                && op.in_place()
                && !op.saved().input(0)
                && input.param_offset().is_none()
                && input.shape == node.shape
                && consumers[k] == 1
                && !self.kept_value[k]
                && !(backward && producer_saves_output);
        }
        Ok(())
    }

    /// The conv and relu nodes that fused steps absorb (they get no steps of their own).
    fn fused_away(&self, g: &Graph<N>) -> [bool; N] {
        let mut away = [false; N];
        for (p, c) in self.fused_conv.iter().enumerate() {
            if let Some(c) = c {
                away[c.index()] = true;
                away[g.nodes()[p].inputs()[0].index()] = true;
            }
        }
        away
    }

    /// A forward-only plan computing `outputs` (batchnorm and dropout obey `mode`), for the
    /// kernels active now ([`mote_kernels::dispatch::active`]).
    pub fn inference(g: &Graph<N>, outputs: &[NodeId], mode: Mode) -> Result<Self> {
        Self::build_inference(g, outputs, mode, true, active_isa())
    }

    /// [`Plan::inference`] for the kernels of `isa`: a plan made on the host for a device.
    pub fn inference_for(isa: Isa, g: &Graph<N>, outputs: &[NodeId], mode: Mode) -> Result<Self> {
        Self::build_inference(g, outputs, mode, true, isa)
    }

    /// [`Plan::inference`] with every step out of place: the reference the in-place plan is
    /// tested against.
    pub fn inference_out_of_place(g: &Graph<N>, outputs: &[NodeId], mode: Mode) -> Result<Self> {
        Self::build_inference(g, outputs, mode, false, active_isa())
    }

    fn build_inference(g: &Graph<N>, outputs: &[NodeId], mode: Mode, in_place: bool, isa: Isa) -> Result<Self> {
        let mut plan = Self::empty(g, mode, isa);
        let needed = ancestors(g, outputs)?;
        plan.forward_steps(g, &needed, outputs, false, in_place)?;
        plan.place(g)?;
        Ok(plan)
    }

    /// Whether running the plan writes parameters (updates, batchnorm's running statistics):
    /// such a plan needs [`crate::Executor::new`], not `read_only`.
    pub fn writes_params(&self) -> bool {
        self.writes_params
    }

    /// A whole training step: forward (training mode), `loss`, backward, and with an
    /// `optimizer` an update of each trainable parameter as soon as its gradient is complete.
    /// `outputs` (e.g. logits) stay readable after a run, as does the loss. Without an
    /// optimizer the parameter gradients stay readable instead (for gradient checks).
    pub fn training(g: &Graph<N>, loss: NodeId, outputs: &[NodeId], optimizer: Option<Optimizer>) -> Result<Self> {
        Self::build_training(g, loss, outputs, optimizer, true, active_isa())
    }

    /// [`Plan::training`] for the kernels of `isa`: a plan made on the host for a device.
    pub fn training_for(isa: Isa, g: &Graph<N>, loss: NodeId, outputs: &[NodeId], optimizer: Option<Optimizer>) -> Result<Self> {
        Self::build_training(g, loss, outputs, optimizer, true, isa)
    }

    /// [`Plan::training`] with every step out of place: the reference the in-place plan is
    /// tested against.
    pub fn training_out_of_place(g: &Graph<N>, loss: NodeId, outputs: &[NodeId], optimizer: Option<Optimizer>) -> Result<Self> {
        Self::build_training(g, loss, outputs, optimizer, false, active_isa())
    }

    fn build_training(
        g: &Graph<N>,
        loss: NodeId,
        outputs: &[NodeId],
        optimizer: Option<Optimizer>,
        in_place: bool,
        isa: Isa,
    ) -> Result<Self> {
        let loss_shape = g.shape(loss)?;
        if loss_shape.numel() != 1 {
            return Err(Error::LossNotScalar { shape: loss_shape });
        }
        if !g.node(loss)?.requires_grad {
            return Err(Error::NothingToTrain);
        }
        if let Some(opt) = optimizer {
            opt.check()?;
        }
        let mut plan = Self::empty(g, Mode::Train, isa);
        plan.optimizer = optimizer;
        let mut roots: heapless::Vec<NodeId, 9> = heapless::Vec::new();
        roots.push(loss).map_err(|_| Error::CapacityExceeded { what: "plan outputs", capacity: 9 })?;
        for &o in outputs {
            roots.push(o).map_err(|_| Error::CapacityExceeded { what: "plan outputs", capacity: 9 })?;
        }
        plan.forward_steps(g, &ancestors(g, &roots)?, &roots, true, in_place)?;

        let started = plan.backward_steps(g, loss, in_place)?;
        let grad_input = |k: usize| matches!(g.nodes()[k].kind, NodeKind::Input { requires_grad: true });
        for (i, node) in g.nodes().iter().enumerate() {
            plan.kept_grad[i] = started[i] && (grad_input(i) || (node.is_trainable() && optimizer.is_none()));
        }
        plan.place(g)?;
        plan.place_optimizer_state(g)?;
        Ok(plan)
    }

    /// Appends the backward steps of a training plan (seed, zeroed and accumulated gradients,
    /// updates) and returns which nodes get a gradient. Gradients flow through nodes upstream
    /// of `loss` that require them; the steps run in reverse node order, fused-away nodes
    /// having none.
    fn backward_steps(&mut self, g: &Graph<N>, loss: NodeId, in_place: bool) -> Result<[bool; N]> {
        let upstream = ancestors(g, &[loss])?;
        let flows = |i: usize| upstream[i] && g.nodes()[i].requires_grad;
        let fused_away = self.fused_away(g);
        let backward_order = || (0..g.nodes().len()).rev().filter(|&c| flows(c) && !fused_away[c] && g.nodes()[c].op().is_some());
        // The last backward step (in backward order) contributing to each node's gradient,
        // and how many backward steps contribute to it.
        let mut last_contributor = [usize::MAX; N];
        let mut contributors = [0u8; N];
        for c in backward_order() {
            for &k in self.step_inputs(g, NodeId(c as u16)) {
                last_contributor[k.index()] = c;
                contributors[k.index()] = contributors[k.index()].saturating_add(1);
            }
        }
        // A parameter whose gradient comes from one layer alone is updated inside that layer's
        // backward, row by row, where the layer supports it: a linear weight, a fused conv's
        // weight and bias.
        for c in backward_order() {
            let id = NodeId(c as u16);
            for &k in self.rows_updated_in_backward(g, id) {
                let k = k.index();
                self.update_in_backward[k] = in_place && self.optimizer.is_some() && g.nodes()[k].is_trainable() && contributors[k] == 1;
            }
        }
        let grad_input = |k: usize| matches!(g.nodes()[k].kind, NodeKind::Input { requires_grad: true });
        self.push(Step::SeedGrad(loss))?;
        let mut started = [false; N];
        started[loss.index()] = true;
        for c in backward_order() {
            let (node, id) = (&g.nodes()[c], NodeId(c as u16));
            let Some(op) = node.op() else { continue };
            // In place: input 0's gradient has this step as its only contributor, so the
            // output gradient's buffer can become it.
            let k = node.inputs()[0].index();
            let input = &g.nodes()[k];
            if in_place
                && self.fused_conv[c].is_none()
                && op.in_place()
                && flows(k)
                && contributors[k] == 1
                && input.param_offset().is_none()
                && input.shape == node.shape
                && !grad_input(k)
            {
                self.in_place_backward[c] = true;
                started[k] = true;
            }
            for &k in self.step_inputs(g, id) {
                if flows(k.index()) && !started[k.index()] && !self.update_in_backward[k.index()] {
                    started[k.index()] = true;
                    self.push(Step::ZeroGrad(k))?;
                }
            }
            self.push(Step::Backward(id))?;
            for &k in self.step_inputs(g, id) {
                let trainable = g.nodes()[k.index()].is_trainable();
                if trainable && self.optimizer.is_some() && last_contributor[k.index()] == c {
                    if !self.update_in_backward[k.index()] {
                        self.push(Step::Update(k))?;
                    }
                    self.writes_params = true;
                }
            }
        }
        Ok(started)
    }

    /// Places the optimizer state of every parameter the plan updates, in update order.
    fn place_optimizer_state(&mut self, g: &Graph<N>) -> Result<()> {
        let Some(opt) = self.optimizer else { return Ok(()) };
        let (mut at, mut len) = ([None; N], 0);
        for step in &self.steps {
            let updated = match step {
                Step::Update(k) => core::slice::from_ref(k),
                Step::Backward(c) => self.rows_updated_in_backward(g, *c),
                _ => &[],
            };
            for &k in updated.iter().filter(|k| matches!(step, Step::Update(_)) || self.update_in_backward[k.index()]) {
                at[k.index()] = Some(Offset::new(len)?);
                let state = opt.slots().checked_mul(g.nodes()[k.index()].shape.numel());
                len = state
                    .and_then(|s| s.checked_add(len))
                    .ok_or(Error::CapacityExceeded { what: "optimizer state", capacity: usize::MAX })?;
            }
        }
        (self.optimizer_at, self.optimizer_len) = (at, len);
        Ok(())
    }

    /// Assigns arena offsets from the tensors' lifetimes.
    fn place(&mut self, g: &Graph<N>) -> Result<()> {
        let mut tensors = heapless::Vec::<lifetimes::Tensor, S>::new();
        lifetimes::tensors(g, self, &mut tensors)?;
        let placed = memory::place_greedy(&mut tensors);
        // Every offset fits in u32 (`Offset::new`), and the arena's bytes in usize.
        if placed.len.checked_mul(BYTES_PER_VALUE).is_none_or(|bytes| bytes == usize::MAX) {
            return Err(Error::CapacityExceeded { what: "arena bytes", capacity: usize::MAX });
        }
        for t in &tensors {
            let slot = match t.kind {
                lifetimes::Kind::Value => &mut self.value_at,
                lifetimes::Kind::Grad => &mut self.grad_at,
                lifetimes::Kind::Argmax => &mut self.argmax_at,
                lifetimes::Kind::GradRow => &mut self.grad_row_at,
                lifetimes::Kind::ForwardScratch => &mut self.forward_scratch_at,
                lifetimes::Kind::BackwardScratch => &mut self.backward_scratch_at,
            };
            slot[usize::from(t.node)] = Some(Offset::new(t.offset)?);
        }
        // Tensors placed in place share their root's offset.
        for i in 0..g.nodes().len() {
            if let Some(root) = lifetimes::value_root(self, g, i) {
                self.value_at[i] = self.value_at[root];
            }
            if let Some(root) = lifetimes::grad_root(self, g, i) {
                self.grad_at[i] = self.grad_at[root];
            }
        }
        self.arena_len = placed.len;
        self.lower_bound = placed.lower_bound;
        self.peak_values = placed.peak_values;
        self.peak_grads = placed.peak_grads;
        Ok(())
    }

    /// How many steps run conv2d → relu → maxpool2d fused.
    pub fn fused_steps(&self) -> usize {
        self.fused_conv.iter().filter(|c| c.is_some()).count()
    }

    /// The nodes whose values step `id`'s forward reads and whose gradients its backward
    /// accumulates: its inputs, or for a fused step the conv's inputs.
    pub(crate) fn step_inputs<'g>(&self, g: &'g Graph<N>, id: NodeId) -> &'g [NodeId] {
        match self.fused_conv[id.index()] {
            Some(c) => g.nodes()[c.index()].inputs(),
            None => g.nodes()[id.index()].inputs(),
        }
    }

    /// Scratch values the kernel of node `id`'s forward step and of its backward step need
    /// (only fused steps have any).
    pub(crate) fn scratch_lens(&self, g: &Graph<N>, id: NodeId) -> (usize, usize) {
        match self.fused_conv[id.index()] {
            Some(c) => crate::fusion::scratch_lens(g, id, c, self.isa),
            None => (0, 0),
        }
    }

    /// The parameters step `id`'s backward could update row by row: a linear layer's weight,
    /// a fused step's conv weight and bias.
    pub(crate) fn rows_updated_in_backward<'g>(&self, g: &'g Graph<N>, id: NodeId) -> &'g [NodeId] {
        let inputs = self.step_inputs(g, id);
        match g.nodes()[id.index()].op() {
            _ if self.fused_conv[id.index()].is_some() => inputs.get(1..).unwrap_or(&[]),
            Some(Op::Linear(_)) => inputs.get(1..2).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// How many forward and backward steps run in place.
    pub fn in_place_steps(&self) -> usize {
        self.in_place_forward.iter().chain(&self.in_place_backward).filter(|&&b| b).count()
    }

    /// The steps, in execution order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// Arena values this plan needs.
    pub fn arena_len(&self) -> usize {
        self.arena_len
    }
    /// Optimizer-state values this plan needs.
    pub fn optimizer_len(&self) -> usize {
        self.optimizer_len
    }
    /// The optimizer, if this is a training plan with updates.
    pub fn optimizer(&self) -> Option<Optimizer> {
        self.optimizer
    }
    /// The instruction set whose kernels the plan's scratch is sized for.
    pub fn isa(&self) -> Isa {
        self.isa
    }
    /// Training or evaluation behaviour.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// Bytes of arena, its lower bound, parameters and optimizer state.
    pub fn memory(&self) -> MemoryReport {
        MemoryReport {
            arena_bytes: self.arena_len.saturating_mul(BYTES_PER_VALUE),
            arena_lower_bound_bytes: self.lower_bound.saturating_mul(BYTES_PER_VALUE),
            params_bytes: self.params_len.saturating_mul(BYTES_PER_VALUE),
            optimizer_bytes: self.optimizer_len.saturating_mul(BYTES_PER_VALUE),
            peak_activation_bytes: self.peak_values.saturating_mul(BYTES_PER_VALUE),
            peak_gradient_bytes: self.peak_grads.saturating_mul(BYTES_PER_VALUE),
        }
    }
    /// Multiply-accumulates of the forward pass (saturating: a report, never a size).
    pub fn forward_macs(&self, g: &Graph<N>) -> Result<usize> {
        let mut total = 0;
        for step in &self.steps {
            if let Step::Forward(id) = *step {
                total = g.node_macs(id)?.saturating_add(total);
                if let Some(conv) = self.fused_conv[id.index()] {
                    total = g.node_macs(conv)?.saturating_add(total);
                }
            }
        }
        Ok(total)
    }
}
