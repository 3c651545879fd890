//! Fused conv2d → relu → maxpool2d steps: the forward (recording the argmax in training
//! plans) and the backward, which either accumulates the conv's gradients or, when the plan
//! updates the conv's weight and bias inside the backward, updates them one output channel
//! at a time.

use super::{Access, Executor, Region, Space};
use crate::{Error, NodeId, Result, BYTES_PER_VALUE, MAX_INPUTS};
use mote_kernels::{conv2d_relu_maxpool2d_backward_channel_f32, conv2d_relu_maxpool2d_backward_f32, ChannelGrads};

impl<'a, const N: usize, const S: usize> Executor<'a, N, S> {
    /// The argmax bytes of fused step `id`, four to a value.
    fn argmax_region(&self, id: NodeId) -> Result<Region> {
        let len = self.node_shape(id)?.numel().div_ceil(4);
        let offset = self.plan.argmax_at[id.index()].map(|o| o.get()).ok_or(Error::NotInPlan { what: "argmax", index: id.index() })?;
        Ok(Region { space: Space::Arena, offset, len })
    }

    /// The scratch of fused step `id`'s forward, or of its backward.
    fn scratch_region(&self, id: NodeId, backward: bool) -> Result<Region> {
        let (forward_len, backward_len) = self.plan.scratch_lens(self.graph, id);
        let (at, len) = match backward {
            false => (self.plan.forward_scratch_at[id.index()], forward_len),
            true => (self.plan.backward_scratch_at[id.index()], backward_len),
        };
        let offset = at.map(|o| o.get()).ok_or(Error::NotInPlan { what: "kernel scratch", index: id.index() })?;
        Ok(Region { space: Space::Arena, offset, len })
    }

    /// The bytes of region `r`.
    ///
    /// # Safety
    /// As [`Self::view_mut`].
    #[allow(clippy::mut_from_ref)]
    unsafe fn view_bytes_mut(&self, r: Region) -> &mut [u8] {
        // SAFETY: as `view_mut`, over the same memory as bytes (any bit pattern is valid for
        // both u8 and f32, and u8 needs no alignment).
        unsafe { core::slice::from_raw_parts_mut(self.buffer(r.space).ptr.add(r.offset) as *mut u8, r.len * BYTES_PER_VALUE) }
    }

    /// # Safety
    /// As [`Self::view`].
    unsafe fn view_bytes(&self, r: Region) -> &[u8] {
        // SAFETY: as `view`, over the same memory as bytes.
        unsafe { core::slice::from_raw_parts(self.buffer(r.space).ptr.add(r.offset) as *const u8, r.len * BYTES_PER_VALUE) }
    }

    /// Adds the value regions of the conv inputs of fused step `id` to `access` (read only,
    /// or all but the input writable when `params_writable`); returns them and their count.
    fn conv_inputs(&self, id: NodeId, access: &mut Access, params_writable: bool) -> Result<([Option<Region>; MAX_INPUTS], usize)> {
        let mut regions = [None; MAX_INPUTS];
        let inputs = self.plan.step_inputs(self.graph, id);
        for (pos, &k) in inputs.iter().enumerate() {
            regions[pos] = Some(access.add(self.value_region(k)?, params_writable && pos > 0)?);
        }
        Ok((regions, inputs.len()))
    }

    /// A conv2d → relu → maxpool2d step: reads the conv's inputs, writes the pooled output
    /// (and in training plans the argmax its backward reads).
    pub(super) fn forward_fused(&mut self, id: NodeId, conv: NodeId) -> Result<()> {
        let mut access = Access::new();
        let (regions, n) = self.conv_inputs(id, &mut access, false)?;
        let out = access.add(self.value_region(id)?, true)?;
        let argmax = match self.plan.argmax_at[id.index()] {
            Some(_) => Some(access.add(self.argmax_region(id)?, true)?),
            None => None,
        };
        let scratch = access.add(self.scratch_region(id, false)?, true)?;
        self.validate(&access)?;
        // SAFETY: every region of this step was validated together above.
        let views = regions.map(|r| r.map_or(&[][..], |r| unsafe { self.view(r) }));
        // SAFETY: as above (the output and the scratch are distinct mutable regions).
        let (out, scratch) = unsafe { (self.view_mut(out), self.view_mut(scratch)) };
        // SAFETY: as above.
        let argmax = argmax.map(|r| unsafe { self.view_bytes_mut(r) });
        crate::fusion::run_conv_relu_maxpool(self.graph, (id, conv), &views[..n], out, argmax, scratch)
            .ok_or(Error::PlanMismatch { expected: "a fused step over conv2d, relu and maxpool2d" })
    }

    /// Backward of a fused step: from the pooled gradient and the argmax to the conv's input
    /// gradient (when it needs one), and to its weight and bias gradients or updates.
    pub(super) fn backward_fused(&mut self, id: NodeId, conv: NodeId) -> Result<()> {
        let inputs = self.plan.step_inputs(self.graph, id);
        let updating = inputs.get(1).is_some_and(|w| self.plan.update_in_backward[w.index()]);
        let opt = if updating { Some(self.optimizer_or_mismatch()?) } else { None };
        let mut access = Access::new();
        let (regions, _) = self.conv_inputs(id, &mut access, updating)?;
        // Per conv input: its gradient, or with in-backward updates (weight and bias) its
        // gradient row and optimizer state.
        let (mut grads, mut states) = ([None; MAX_INPUTS], [None; MAX_INPUTS]);
        for (pos, &k) in inputs.iter().enumerate() {
            if let (Some(opt), true) = (&opt, pos > 0) {
                grads[pos] = Some(access.add(self.grad_row_region(k)?, true)?);
                states[pos] = Some(access.add(self.state_region(k, opt)?, true)?);
            } else if self.plan.grad_at[k.index()].is_some() {
                grads[pos] = Some(access.add(self.grad_region(k)?, true)?);
            }
        }
        let argmax = access.add(self.argmax_region(id)?, false)?;
        let dy = access.add(self.grad_region(id)?, false)?;
        let scratch = access.add(self.scratch_region(id, true)?, true)?;
        self.validate(&access)?;
        let mismatch = Error::PlanMismatch { expected: "a fused backward over conv2d, relu and maxpool2d" };
        let (cp, pp) = crate::fusion::layers(self.graph, id, conv).ok_or(mismatch)?;
        let [Some(x), Some(w), bias, ..] = regions else { return Err(mismatch) };
        let [dx, Some(dw), db, ..] = grads else { return Err(mismatch) };
        let per_channel = cp.in_c * cp.kernel_h * cp.kernel_w;
        // Every region of this step was validated together above, and no two views of one
        // region are live at once: the weight and bias are only read inside the kernel call and
        // only written after it.
        // SAFETY: read-only views of validated regions.
        let (x, argmax, dy) = unsafe { (self.view(x), self.view_bytes(argmax), self.view(dy)) };
        // SAFETY: a validated mutable region, viewed once.
        let scratch = unsafe { self.view_mut(scratch) };
        // SAFETY: as above.
        let mut dx = dx.map(|r| unsafe { self.view_mut(r) });
        // SAFETY: as above.
        let (dw, mut db) = unsafe { (self.view_mut(dw), db.map(|r| self.view_mut(r))) };
        let Some(opt) = opt else {
            // No updates inside: the whole layer's gradients at once.
            // SAFETY: validated; only read while the kernel runs.
            let w = unsafe { self.view(w) };
            return match conv2d_relu_maxpool2d_backward_f32(&cp, &pp, x, w, argmax, dy, dx, dw, db, scratch) {
                true => Ok(()),
                false => Err(mismatch),
            };
        };
        for oc in 0..cp.out_c {
            // This channel's gradient rows, from zero.
            dw.fill(0.0);
            db.as_deref_mut().into_iter().for_each(|d| d.fill(0.0));
            let (dw_part, db_part) = (&mut dw[..], db.as_deref_mut().map(|d| &mut d[0]));
            let done = {
                // SAFETY: validated; read only while the kernel runs, written only after it.
                let w_now = unsafe { self.view(w) };
                let grads = ChannelGrads { dx: dx.as_deref_mut(), dw: dw_part, dbias: db_part };
                conv2d_relu_maxpool2d_backward_channel_f32(&cp, &pp, oc, x, w_now, argmax, dy, grads, scratch)
            };
            if !done {
                return Err(mismatch);
            }
            // This channel's gradients are complete and its old weights no longer needed.
            let t = self.update_number();
            let [_, Some(sw), sb, ..] = states else { return Err(mismatch) };
            // SAFETY: the weight's read-only view ended with the kernel call; its state is a
            // validated region no other view covers.
            unsafe { opt.update_part(t, self.view_mut(w), oc * per_channel, dw, self.view_mut(sw)) };
            if let (Some(b), Some(sb), Some(db)) = (bias, sb, db.as_deref()) {
                // SAFETY: as for the weight.
                unsafe { opt.update_part(t, self.view_mut(b), oc, db, self.view_mut(sb)) };
            }
        }
        Ok(())
    }
}
