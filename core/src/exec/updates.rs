//! Optimizer updates: a parameter whose gradient is complete (an `Update` step), and the
//! row-by-row updates of parameters updated inside their layer's backward.

use super::{Access, Executor, Region, Space};
use crate::{Error, NodeId, Optimizer, Result};

impl<'a, const N: usize, const S: usize> Executor<'a, N, S> {
    pub(super) fn optimizer_or_mismatch(&self) -> Result<Optimizer> {
        self.optimizer.ok_or(Error::PlanMismatch { expected: "an optimizer for the plan's updates" })
    }

    /// The optimizer state of parameter `k` (all of it: `slots · numel` values).
    pub(super) fn state_region(&self, k: NodeId, opt: &Optimizer) -> Result<Region> {
        let offset =
            self.plan.optimizer_at[k.index()].map(|o| o.get()).ok_or(Error::NotInPlan { what: "optimizer state", index: k.index() })?;
        Ok(Region { space: Space::Optimizer, offset, len: self.node_shape(k)?.numel() * opt.slots() })
    }

    /// The gradient row (`numel / dim 0` values) of a parameter updated in the backward.
    pub(super) fn grad_row_region(&self, k: NodeId) -> Result<Region> {
        let shape = self.node_shape(k)?;
        let offset =
            self.plan.grad_row_at[k.index()].map(|o| o.get()).ok_or(Error::NotInPlan { what: "gradient row", index: k.index() })?;
        Ok(Region { space: Space::Arena, offset, len: shape.numel() / shape.dim(0) })
    }

    /// Update step number `runs + 1`.
    pub(super) fn update_number(&self) -> u32 {
        self.runs.wrapping_add(1)
    }

    /// Applies the optimizer to parameter `id`, whose gradient is complete.
    pub(super) fn update(&mut self, id: NodeId) -> Result<()> {
        let opt = self.optimizer_or_mismatch()?;
        let mut access = Access::new();
        let p = access.add(self.value_region(id)?, true)?;
        let g = access.add(self.grad_region(id)?, false)?;
        let s = access.add(self.state_region(id, &opt)?, true)?;
        self.validate(&access)?;
        // SAFETY: the three regions were validated together above.
        let (p, g, s) = unsafe { (self.view_mut(p), self.view(g), self.view_mut(s)) };
        opt.update(self.update_number(), p, g, s);
        Ok(())
    }

    /// Updates linear weight `w` of node `id` from its gradient, computed one row at a time
    /// into the plan's row buffer (after the layer's input gradient has used the old weight).
    pub(super) fn update_linear_weight_by_rows(&mut self, id: NodeId, w: NodeId) -> Result<()> {
        let opt = self.optimizer_or_mismatch()?;
        let x = self.graph.node(id)?.inputs()[0];
        let w_shape = self.node_shape(w)?;
        let (outf, inf) = (w_shape.dim(0), w_shape.dim(1));
        let rows = self.node_shape(x)?.numel() / inf;
        let mut access = Access::new();
        let (xr, dy) = (access.add(self.value_region(x)?, false)?, access.add(self.grad_region(id)?, false)?);
        let p = access.add(self.value_region(w)?, true)?;
        let s = access.add(self.state_region(w, &opt)?, true)?;
        let row = access.add(self.grad_row_region(w)?, true)?;
        self.validate(&access)?;
        // SAFETY: the five regions were validated together above.
        let (xv, dy, p, s, row) = unsafe { (self.view(xr), self.view(dy), self.view_mut(p), self.view_mut(s), self.view_mut(row)) };
        for o in 0..outf {
            mote_kernels::linear_weight_grad_row_f32(rows, outf, o, dy, xv, row);
            opt.update_part(self.update_number(), p, o * inf, row, s);
        }
        Ok(())
    }
}
