//! The executor: runs a plan over caller-owned buffers (parameters, optimizer state, arena)
//! without allocating. Buffer sizes are checked once, before anything runs.

use crate::ops::{Backward, Forward, OpKind, OpSet};
use crate::plan::{Mode, Plan, Step};
use crate::rng::NoiseKey;
use crate::{Error, Graph, NodeId, NodeKind, Result, Shape, BYTES_PER_VALUE, MAX_INPUTS};
use core::marker::PhantomData;

mod fused;
mod updates;

/// Which buffer a region lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Space {
    Params,
    Optimizer,
    Arena,
}

/// A span of values in one buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Region {
    space: Space,
    offset: usize,
    len: usize,
}

impl Region {
    fn overlaps(&self, other: &Region) -> bool {
        // Saturating: only called on regions already checked to lie inside their buffers.
        self.space == other.space
            && self.offset < other.offset.saturating_add(other.len)
            && other.offset < self.offset.saturating_add(self.len)
    }
}

/// A caller's buffer, held as a raw pointer so one step can view disjoint parts of it.
struct Buffer<'a> {
    ptr: *mut f32,
    len: usize,
    writable: bool,
    _borrow: PhantomData<&'a mut [f32]>,
}

impl<'a> Buffer<'a> {
    fn mutable(s: &'a mut [f32]) -> Self {
        Buffer { ptr: s.as_mut_ptr(), len: s.len(), writable: true, _borrow: PhantomData }
    }
    fn read_only(s: &'a [f32]) -> Self {
        // Never written through: `writable` is false and every mutable view checks it.
        Buffer { ptr: s.as_ptr() as *mut f32, len: s.len(), writable: false, _borrow: PhantomData }
    }
}

/// The regions one step touches, checked together before any is viewed.
struct Access {
    regions: heapless::Vec<(Region, bool), { 2 * MAX_INPUTS + 4 }>,
}

impl Access {
    fn new() -> Self {
        Access { regions: heapless::Vec::new() }
    }
    fn add(&mut self, r: Region, mutable: bool) -> Result<Region> {
        self.regions.push((r, mutable)).map_err(|_| Error::PlanMismatch { expected: "at most 14 tensors per step" })?;
        Ok(r)
    }
}

/// Runs a [`Plan`] of a [`Graph`] over caller-owned buffers.
pub struct Executor<'a, const N: usize, const S: usize> {
    graph: &'a Graph<N>,
    plan: &'a Plan<N, S>,
    params: Buffer<'a>,
    optimizer_state: Buffer<'a>,
    arena: Buffer<'a>,
    optimizer: Option<crate::Optimizer>,
    runs: u32,
    seed: u64,
}

/// Reinterprets a byte buffer as an arena of f32, dropping the unaligned head and the tail
/// that does not fill a whole value.
pub fn f32_arena_from_bytes(bytes: &mut [u8]) -> &mut [f32] {
    // SAFETY: every bit pattern is a valid f32, and `align_to_mut` only returns the middle
    // part correctly aligned for f32.
    let (_, middle, _) = unsafe { bytes.align_to_mut::<f32>() };
    middle
}

impl<'a, const N: usize, const S: usize> Executor<'a, N, S> {
    /// An executor that may write the parameters (training, or batchnorm statistics).
    /// `params` holds [`Graph::params_len`] values, `optimizer_state` at least
    /// [`Plan::optimizer_len`] (zeroed for a fresh start), `arena` at least [`Plan::arena_len`].
    pub fn new(
        graph: &'a Graph<N>,
        plan: &'a Plan<N, S>,
        params: &'a mut [f32],
        optimizer_state: &'a mut [f32],
        arena: &'a mut [f32],
    ) -> Result<Self> {
        Self::check(graph, plan, params.len(), optimizer_state.len(), arena.len())?;
        Ok(Self::build(graph, plan, Buffer::mutable(params), Buffer::mutable(optimizer_state), Buffer::mutable(arena)))
    }

    /// An executor over read-only parameters (weights in flash). Plans that write parameters
    /// (updates, batchnorm in training mode) are refused.
    pub fn read_only(graph: &'a Graph<N>, plan: &'a Plan<N, S>, params: &'a [f32], arena: &'a mut [f32]) -> Result<Self> {
        if plan.writes_params {
            return Err(Error::ReadOnlyParams);
        }
        Self::check(graph, plan, params.len(), 0, arena.len())?;
        Ok(Self::build(graph, plan, Buffer::read_only(params), Buffer::mutable(&mut []), Buffer::mutable(arena)))
    }

    fn build(graph: &'a Graph<N>, plan: &'a Plan<N, S>, params: Buffer<'a>, optimizer_state: Buffer<'a>, arena: Buffer<'a>) -> Self {
        Executor { graph, plan, params, optimizer_state, arena, optimizer: plan.optimizer, runs: 0, seed: 0 }
    }

    fn check(graph: &Graph<N>, plan: &Plan<N, S>, params: usize, optimizer: usize, arena: usize) -> Result<()> {
        if plan.nodes_len != graph.nodes().len() || plan.params_len != graph.params_len() || plan.graph_fingerprint != graph.fingerprint() {
            return Err(Error::PlanMismatch { expected: "a plan built from this graph" });
        }
        if params != graph.params_len() {
            return Err(Error::BufferLength { what: "parameters", needed: graph.params_len(), got: params });
        }
        if optimizer < plan.optimizer_len {
            return Err(Error::BufferLength { what: "optimizer state", needed: plan.optimizer_len, got: optimizer });
        }
        if arena < plan.arena_len {
            return Err(Error::ArenaTooSmall {
                needed_bytes: plan.arena_len.saturating_mul(BYTES_PER_VALUE),
                got_bytes: arena.saturating_mul(BYTES_PER_VALUE),
            });
        }
        Ok(())
    }

    /// Seed of the dropout masks (default 0); masks also depend on the run number.
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
    }
    /// Runs completed so far (Adam's step count is `runs + 1` during a run).
    pub fn runs(&self) -> u32 {
        self.runs
    }
    /// Sets the run counter, e.g. to resume training.
    pub fn set_runs(&mut self, runs: u32) {
        self.runs = runs;
    }
    /// Replaces the plan's optimizer settings (learning rate, momentum, betas, ...) with
    /// `optimizer`, which must keep the plan's optimizer-state layout: the same kind with the
    /// same number of state slots (a plan built on the host, tuned on the device).
    pub fn set_optimizer(&mut self, optimizer: crate::Optimizer) -> Result<()> {
        optimizer.check()?;
        match self.optimizer {
            Some(current)
                if core::mem::discriminant(&current) == core::mem::discriminant(&optimizer) && current.slots() == optimizer.slots() =>
            {
                self.optimizer = Some(optimizer);
                Ok(())
            }
            _ => Err(Error::PlanMismatch { expected: "an optimizer with the plan's kind and state layout" }),
        }
    }

    /// Changes the learning rate of the plan's optimizer (for schedules).
    pub fn set_lr(&mut self, lr: f32) {
        if let Some(opt) = &mut self.optimizer {
            opt.set_lr(lr);
        }
    }

    /// The parameters.
    pub fn params(&self) -> &[f32] {
        // SAFETY: the buffer came from a slice of this length borrowed for 'a; `&self` rules
        // out a live mutable view (views only exist inside `run`, which takes `&mut self`).
        unsafe { core::slice::from_raw_parts(self.params.ptr, self.params.len) }
    }

    fn node_shape(&self, id: NodeId) -> Result<Shape> {
        self.graph.shape(id)
    }

    fn value_region(&self, id: NodeId) -> Result<Region> {
        let node = self.graph.node(id)?;
        let len = node.shape.numel();
        match node.kind {
            NodeKind::Param { offset, .. } => Ok(Region { space: Space::Params, offset, len }),
            _ => {
                let offset =
                    self.plan.value_at[id.index()].map(|o| o.get()).ok_or(Error::NotInPlan { what: "value", index: id.index() })?;
                Ok(Region { space: Space::Arena, offset, len })
            }
        }
    }

    fn grad_region(&self, id: NodeId) -> Result<Region> {
        let len = self.node_shape(id)?.numel();
        let offset = self.plan.grad_at[id.index()].map(|o| o.get()).ok_or(Error::NotInPlan { what: "gradient", index: id.index() })?;
        Ok(Region { space: Space::Arena, offset, len })
    }

    fn buffer(&self, space: Space) -> &Buffer<'a> {
        match space {
            Space::Params => &self.params,
            Space::Optimizer => &self.optimizer_state,
            Space::Arena => &self.arena,
        }
    }

    /// Checks every region is in bounds, writable where it must be, and that no mutable
    /// region overlaps any other region of the step.
    fn validate(&self, access: &Access) -> Result<()> {
        for (r, mutable) in &access.regions {
            let buf = self.buffer(r.space);
            if r.offset.checked_add(r.len).is_none_or(|end| end > buf.len) {
                return Err(Error::PlanMismatch { expected: "offsets inside the buffers" });
            }
            if *mutable && !buf.writable {
                return Err(Error::ReadOnlyParams);
            }
        }
        for (i, (r, mutable)) in access.regions.iter().enumerate() {
            for (other, other_mut) in &access.regions[i + 1..] {
                if (*mutable || *other_mut) && r.overlaps(other) {
                    return Err(Error::PlanMismatch { expected: "no tensor written while another view of it is live" });
                }
            }
        }
        Ok(())
    }

    /// # Safety
    /// `r` must have passed [`Self::validate`] together with every other region viewed at
    /// the same time.
    unsafe fn view(&self, r: Region) -> &[f32] {
        // SAFETY: in bounds (validated); no live mutable view overlaps it (validated).
        unsafe { core::slice::from_raw_parts(self.buffer(r.space).ptr.add(r.offset), r.len) }
    }

    /// # Safety
    /// As [`Self::view`], and the region must have been validated as mutable.
    #[allow(clippy::mut_from_ref)]
    unsafe fn view_mut(&self, r: Region) -> &mut [f32] {
        // SAFETY: in bounds and writable (validated); no other view overlaps it (validated);
        // the executor holds the caller's exclusive borrow for 'a.
        unsafe { core::slice::from_raw_parts_mut(self.buffer(r.space).ptr.add(r.offset), r.len) }
    }

    /// The values of input `id`, to fill before each run (the arena reuses them afterwards).
    pub fn input_mut(&mut self, id: NodeId) -> Result<&mut [f32]> {
        if !matches!(self.graph.node(id)?.kind, NodeKind::Input { .. }) {
            return Err(Error::NotInPlan { what: "input", index: id.index() });
        }
        let r = self.value_region(id)?;
        let mut access = Access::new();
        access.add(r, true)?;
        self.validate(&access)?;
        // SAFETY: validated above; `&mut self` rules out any other view.
        Ok(unsafe { self.view_mut(r) })
    }

    /// Copies `data` into input `id`.
    pub fn set_input(&mut self, id: NodeId, data: &[f32]) -> Result<()> {
        let dst = self.input_mut(id)?;
        if dst.len() != data.len() {
            return Err(Error::BufferLength { what: "input", needed: dst.len(), got: data.len() });
        }
        dst.copy_from_slice(data);
        Ok(())
    }

    /// A value the plan keeps after a run (its outputs, the loss) or a parameter.
    pub fn value(&self, id: NodeId) -> Result<&[f32]> {
        let node = self.graph.node(id)?;
        if !self.plan.kept_value[id.index()] && node.param_offset().is_none() {
            return Err(Error::NotInPlan { what: "value", index: id.index() });
        }
        let r = self.value_region(id)?;
        let mut access = Access::new();
        access.add(r, false)?;
        self.validate(&access)?;
        // SAFETY: validated above; `&self` rules out a mutable view.
        Ok(unsafe { self.view(r) })
    }

    /// A gradient the plan keeps after a run (grad inputs; parameters when the plan has no
    /// optimizer).
    pub fn grad(&self, id: NodeId) -> Result<&[f32]> {
        self.graph.node(id)?;
        if !self.plan.kept_grad[id.index()] {
            return Err(Error::NotInPlan { what: "gradient", index: id.index() });
        }
        let r = self.grad_region(id)?;
        let mut access = Access::new();
        access.add(r, false)?;
        self.validate(&access)?;
        // SAFETY: validated above; `&self` rules out a mutable view.
        Ok(unsafe { self.view(r) })
    }

    /// Runs every step of the plan once. Never inlined: merged into a caller that holds the
    /// plan, its frame made the M4's training stack 1.2 KB deeper.
    #[inline(never)]
    pub fn run(&mut self) -> Result<()> {
        for i in 0..self.plan.steps.len() {
            match self.plan.steps[i] {
                Step::Forward(id) => self.forward::<{ OpSet::MAX }>(id)?,
                Step::Backward(id) => self.backward(id)?,
                Step::SeedGrad(id) => self.fill_grad(id, 1.0)?,
                Step::ZeroGrad(id) => self.fill_grad(id, 0.0)?,
                Step::Update(id) => self.update(id)?,
            }
        }
        self.runs = self.runs.wrapping_add(1);
        Ok(())
    }

    /// Runs a forward-only plan once; a plan with any other step is refused before it runs.
    /// A binary that only infers calls this instead of [`Executor::run`], so it links none of
    /// the backward, gradient or optimizer code.
    pub fn run_inference(&mut self) -> Result<()> {
        self.run_inference_in::<{ OpSet::MAX }>()
    }

    /// [`Executor::run_inference`] in a build that links the forward code of the ops in `OPS`
    /// only (a firmware's model's ops, computed when it is built); other ops are refused.
    pub fn run_inference_in<const OPS: OpSet>(&mut self) -> Result<()> {
        if self.plan.steps.iter().any(|s| !matches!(s, Step::Forward(_))) {
            return Err(Error::PlanMismatch { expected: "a forward-only plan (run training plans with run)" });
        }
        for i in 0..self.plan.steps.len() {
            if let Step::Forward(id) = self.plan.steps[i] {
                self.forward::<OPS>(id)?;
            }
        }
        self.runs = self.runs.wrapping_add(1);
        Ok(())
    }

    fn noise(&self, id: NodeId) -> NoiseKey {
        NoiseKey::new(self.seed, self.runs, id.index())
    }

    /// A step in place must be one its op can run in place: the plan may come from bytes.
    fn checked_in_place(&self, node: &crate::Node, op: &crate::ops::Op, in_place: bool) -> Result<bool> {
        let input = self.graph.node(node.inputs()[0])?;
        if in_place && !(op.in_place() && input.shape == node.shape && input.param_offset().is_none()) {
            return Err(Error::PlanMismatch { expected: "in-place steps only where the op runs in place" });
        }
        Ok(in_place)
    }

    fn forward<const OPS: OpSet>(&mut self, id: NodeId) -> Result<()> {
        if let Some(conv) = self.plan.fused_conv[id.index()] {
            return self.forward_fused(id, conv);
        }
        let node = *self.graph.node(id)?;
        let op = node.op().ok_or(Error::PlanMismatch { expected: "forward of an op node" })?;
        let mode = self.plan.mode;
        let in_place = self.checked_in_place(&node, op, self.plan.in_place_forward[id.index()])?;
        let mut access = Access::new();
        let mut shapes = [Shape::default(); MAX_INPUTS];
        let mut regions = [None; MAX_INPUTS];
        for (pos, &k) in node.inputs().iter().enumerate() {
            shapes[pos] = self.node_shape(k)?;
            if in_place && pos == 0 {
                continue; // the output region holds it
            }
            let is_state = self.graph.node(k)?.is_state() && mode == Mode::Train;
            regions[pos] = Some((access.add(self.value_region(k)?, is_state)?, is_state));
        }
        let out = access.add(self.value_region(id)?, true)?;
        self.validate(&access)?;
        let mut inputs: [&[f32]; MAX_INPUTS] = [&[]; MAX_INPUTS];
        let mut state: [Option<&mut [f32]>; MAX_INPUTS] = Default::default();
        for pos in 0..MAX_INPUTS {
            match regions[pos] {
                // SAFETY: all regions of this step were validated together above.
                Some((r, true)) => state[pos] = Some(unsafe { self.view_mut(r) }),
                // SAFETY: as above.
                Some((r, false)) => inputs[pos] = unsafe { self.view(r) },
                None => {}
            }
        }
        let f = Forward {
            inputs,
            state,
            shapes,
            n_inputs: node.inputs().len(),
            // SAFETY: validated above with every other region of the step.
            out: unsafe { self.view_mut(out) },
            out_shape: node.shape,
            mode,
            in_place,
            noise: self.noise(id),
        };
        op.forward_in::<OPS>(f)
    }

    fn backward(&mut self, id: NodeId) -> Result<()> {
        if let Some(conv) = self.plan.fused_conv[id.index()] {
            return self.backward_fused(id, conv);
        }
        let node = *self.graph.node(id)?;
        let op = node.op().ok_or(Error::PlanMismatch { expected: "backward of an op node" })?;
        let saved = op.saved();
        let in_place = self.checked_in_place(&node, op, self.plan.in_place_backward[id.index()])?;
        let mut access = Access::new();
        let mut shapes = [Shape::default(); MAX_INPUTS];
        let mut values = [None; MAX_INPUTS];
        let mut grads = [None; MAX_INPUTS];
        for (pos, &k) in node.inputs().iter().enumerate() {
            shapes[pos] = self.node_shape(k)?;
            if saved.input(pos) {
                values[pos] = Some(access.add(self.value_region(k)?, false)?);
            }
            if self.plan.grad_at[k.index()].is_some() {
                grads[pos] = Some(access.add(self.grad_region(k)?, true)?);
            }
        }
        let out = if saved.output { Some(access.add(self.value_region(id)?, false)?) } else { None };
        // In place, input 0's gradient region is the output gradient's.
        let dout = if in_place { None } else { Some(access.add(self.grad_region(id)?, false)?) };
        self.validate(&access)?;
        let b = Backward {
            // SAFETY: every region of this step was validated together above.
            inputs: values.map(|r| r.map_or(&[][..], |r| unsafe { self.view(r) })),
            shapes,
            n_inputs: node.inputs().len(),
            // SAFETY: as above.
            out: out.map_or(&[][..], |r| unsafe { self.view(r) }),
            out_shape: node.shape,
            // SAFETY: as above.
            dout: dout.map_or(&[][..], |r| unsafe { self.view(r) }),
            // SAFETY: as above; the gradients are the step's only mutable regions.
            grads: grads.map(|r| r.map(|r| unsafe { self.view_mut(r) })),
            mode: self.plan.mode,
            in_place,
            noise: self.noise(id),
        };
        op.backward(b)?;
        match node.inputs().get(1) {
            Some(&w) if self.plan.update_in_backward[w.index()] => match op {
                crate::ops::Op::Linear(_) => self.update_linear_weight_by_rows(id, w),
                _ => Err(Error::PlanMismatch { expected: "row updates in the backward of linear layers only" }),
            },
            _ => Ok(()),
        }
    }

    fn fill_grad(&mut self, id: NodeId, value: f32) -> Result<()> {
        let mut access = Access::new();
        let r = access.add(self.grad_region(id)?, true)?;
        self.validate(&access)?;
        // SAFETY: validated above.
        unsafe { self.view_mut(r) }.fill(value);
        Ok(())
    }
}
