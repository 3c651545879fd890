//! A plan as bytes, so the host can plan and the device just executes: `build.rs` encodes
//! the firmware's plans and the firmware decodes them, with no planner temporaries on its
//! stack. Little-endian; every field is checked when read, and a plan is only run against
//! the graph whose fingerprint it carries (the executor checks), so hostile bytes give a
//! typed error, never a panic or an out-of-bounds view.

use super::{Mode, Offset, Plan, Step};
use crate::{Error, Graph, NodeId, Optimizer, Result};
use mote_kernels::dispatch::Isa;
use mote_kernels::{AdamParams, SgdParams};

const MAGIC: &[u8; 4] = b"MPLN";
/// 2: the ISA byte after the mode.
const VERSION: u8 = 2;
/// Bytes per node: seven offsets, the flags and the fused conv node.
const NODE_BYTES: usize = 7 * 4 + 1 + 2;
const NO_NODE: u16 = u16::MAX;

/// Appends little-endian fields to a byte buffer, failing once it is full.
struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) -> Result<()> {
        let (end, got) = (self.at + b.len(), self.out.len());
        let dst = self.out.get_mut(self.at..end).ok_or(Error::BufferLength { what: "plan bytes", needed: end, got })?;
        dst.copy_from_slice(b);
        self.at = end;
        Ok(())
    }
    fn u8(&mut self, v: u8) -> Result<()> {
        self.bytes(&[v])
    }
    fn u16(&mut self, v: u16) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }
    fn usize(&mut self, v: usize) -> Result<()> {
        self.u32(u32::try_from(v).map_err(|_| Error::CapacityExceeded { what: "plan bytes field", capacity: u32::MAX as usize })?)
    }
    fn f32(&mut self, v: f32) -> Result<()> {
        self.bytes(&v.to_le_bytes())
    }
}

/// Reads little-endian fields, naming the first one that is missing or invalid.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn bad(what: &'static str) -> Error {
    Error::PlanBytes { what }
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let b = self.bytes.get(self.at..self.at + n).ok_or(bad(what))?;
        self.at += n;
        Ok(b)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn usize(&mut self, what: &'static str) -> Result<usize> {
        Ok(self.u32(what)? as usize)
    }
    fn f32(&mut self, what: &'static str) -> Result<f32> {
        Ok(f32::from_bits(self.u32(what)?))
    }
    fn bool(&mut self, what: &'static str) -> Result<bool> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad(what)),
        }
    }
    fn offset(&mut self, what: &'static str) -> Result<Option<Offset>> {
        Ok(core::num::NonZeroU32::new(self.u32(what)?).map(Offset))
    }
}

/// Flag bits of a node.
const KEPT_VALUE: u8 = 1;
const KEPT_GRAD: u8 = 2;
const IN_PLACE_FORWARD: u8 = 4;
const IN_PLACE_BACKWARD: u8 = 8;
const UPDATE_IN_BACKWARD: u8 = 16;

impl<const N: usize, const S: usize> Plan<N, S> {
    /// Bytes of [`Plan::to_bytes`]'s encoding.
    pub fn encoded_len(&self) -> usize {
        4 + 1 + 4 + 2 + 4 + 2 + 1 + 1 + 1 + 6 * 4 + 2 + 6 * 4 + 1 + 3 * self.steps.len() + NODE_BYTES * self.nodes_len
    }

    /// Writes the plan into `out`, returning the bytes written; `out` needs
    /// [`Plan::encoded_len`] bytes.
    pub fn to_bytes(&self, out: &mut [u8]) -> Result<usize> {
        let mut w = Writer { out, at: 0 };
        w.bytes(MAGIC)?;
        w.u8(VERSION)?;
        w.u32(self.graph_fingerprint)?;
        w.u16(self.nodes_len as u16)?;
        w.usize(self.params_len)?;
        w.u16(self.steps.len() as u16)?;
        w.u8(match self.mode {
            Mode::Train => 0,
            Mode::Eval => 1,
        })?;
        w.u8(self.isa as u8)?;
        match self.optimizer {
            None => w.bytes(&[0; 1 + 6 * 4 + 2])?,
            Some(Optimizer::Sgd(h)) => {
                w.u8(1)?;
                for v in [h.lr, h.momentum, h.weight_decay, 0.0, 0.0, 0.0] {
                    w.f32(v)?;
                }
                w.bytes(&[h.nesterov as u8, 0])?;
            }
            Some(Optimizer::Adam(h)) => {
                w.u8(2)?;
                for v in [h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, 0.0] {
                    w.f32(v)?;
                }
                w.bytes(&[0, h.decoupled as u8])?;
            }
        }
        for v in [self.optimizer_len, self.arena_len, self.lower_bound, self.peak_values, self.peak_grads] {
            w.usize(v)?;
        }
        w.u32(0)?; // reserved
        w.u8(self.writes_params as u8)?;
        for step in &self.steps {
            let (tag, id) = match *step {
                Step::Forward(id) => (0, id),
                Step::SeedGrad(id) => (1, id),
                Step::ZeroGrad(id) => (2, id),
                Step::Backward(id) => (3, id),
                Step::Update(id) => (4, id),
            };
            w.u8(tag)?;
            w.u16(id.0)?;
        }
        for i in 0..self.nodes_len {
            let offsets = [
                self.value_at[i],
                self.grad_at[i],
                self.optimizer_at[i],
                self.argmax_at[i],
                self.grad_row_at[i],
                self.forward_scratch_at[i],
                self.backward_scratch_at[i],
            ];
            for o in offsets {
                w.u32(o.map_or(0, |o| o.0.get()))?;
            }
            let flags = [
                (self.kept_value[i], KEPT_VALUE),
                (self.kept_grad[i], KEPT_GRAD),
                (self.in_place_forward[i], IN_PLACE_FORWARD),
                (self.in_place_backward[i], IN_PLACE_BACKWARD),
                (self.update_in_backward[i], UPDATE_IN_BACKWARD),
            ];
            w.u8(flags.iter().filter(|(on, _)| *on).fold(0, |acc, (_, bit)| acc | bit))?;
            w.u16(self.fused_conv[i].map_or(NO_NODE, |c| c.0))?;
        }
        Ok(w.at)
    }

    /// Reads a plan written by [`Plan::to_bytes`] (for a graph of at most `N` nodes and `S`
    /// steps). It runs only against the graph it was built from.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(4, "magic")? != MAGIC {
            return Err(bad("magic (expected MPLN)"));
        }
        if r.u8("version")? != VERSION {
            return Err(bad("version (expected 2)"));
        }
        let graph_fingerprint = r.u32("graph fingerprint")?;
        let nodes_len = r.u16("node count")? as usize;
        let params_len = r.usize("parameter count")?;
        let steps_len = r.u16("step count")? as usize;
        if nodes_len > N {
            return Err(Error::CapacityExceeded { what: "plan nodes", capacity: N });
        }
        if steps_len > S {
            return Err(Error::CapacityExceeded { what: "plan steps", capacity: S });
        }
        let mode = match r.u8("mode")? {
            0 => Mode::Train,
            1 => Mode::Eval,
            _ => return Err(bad("mode")),
        };
        let isa = r.u8("isa").and_then(|v| Isa::from_u8(v).ok_or(bad("isa")))?;
        let tag = r.u8("optimizer")?;
        let mut h = [0.0f32; 6];
        for v in h.iter_mut() {
            *v = r.f32("optimizer settings")?;
        }
        let (nesterov, decoupled) = (r.bool("nesterov flag")?, r.bool("decoupled flag")?);
        let optimizer = match tag {
            0 => None,
            1 => Some(Optimizer::Sgd(SgdParams { lr: h[0], momentum: h[1], weight_decay: h[2], nesterov })),
            2 => Some(Optimizer::Adam(AdamParams { lr: h[0], beta1: h[1], beta2: h[2], eps: h[3], weight_decay: h[4], decoupled })),
            _ => return Err(bad("optimizer")),
        };
        if optimizer.is_some_and(|o| o.check().is_err()) {
            return Err(bad("optimizer settings (out of range)"));
        }
        let mut plan = Self::empty_sized(nodes_len, params_len, mode);
        plan.graph_fingerprint = graph_fingerprint;
        plan.isa = isa;
        plan.optimizer = optimizer;
        plan.optimizer_len = r.usize("optimizer length")?;
        plan.arena_len = r.usize("arena length")?;
        plan.lower_bound = r.usize("lower bound")?;
        plan.peak_values = r.usize("peak values")?;
        plan.peak_grads = r.usize("peak gradients")?;
        r.u32("reserved")?;
        plan.writes_params = r.bool("writes-params flag")?;
        let node = |id: u16, what| if (id as usize) < nodes_len { Ok(NodeId(id)) } else { Err(bad(what)) };
        for _ in 0..steps_len {
            let tag = r.u8("step")?;
            let id = node(r.u16("step node")?, "step node (not in the graph)")?;
            let step = match tag {
                0 => Step::Forward(id),
                1 => Step::SeedGrad(id),
                2 => Step::ZeroGrad(id),
                3 => Step::Backward(id),
                4 => Step::Update(id),
                _ => return Err(bad("step kind")),
            };
            plan.push(step)?;
        }
        for i in 0..nodes_len {
            plan.value_at[i] = r.offset("value offset")?;
            plan.grad_at[i] = r.offset("gradient offset")?;
            plan.optimizer_at[i] = r.offset("optimizer offset")?;
            plan.argmax_at[i] = r.offset("argmax offset")?;
            plan.grad_row_at[i] = r.offset("gradient row offset")?;
            plan.forward_scratch_at[i] = r.offset("forward scratch offset")?;
            plan.backward_scratch_at[i] = r.offset("backward scratch offset")?;
            let flags = r.u8("node flags")?;
            if flags >= 32 {
                return Err(bad("node flags"));
            }
            plan.kept_value[i] = flags & KEPT_VALUE != 0;
            plan.kept_grad[i] = flags & KEPT_GRAD != 0;
            plan.in_place_forward[i] = flags & IN_PLACE_FORWARD != 0;
            plan.in_place_backward[i] = flags & IN_PLACE_BACKWARD != 0;
            plan.update_in_backward[i] = flags & UPDATE_IN_BACKWARD != 0;
            let conv = r.u16("fused conv node")?;
            plan.fused_conv[i] = if conv == NO_NODE { None } else { Some(node(conv, "fused conv node (not in the graph)")?) };
        }
        if r.at != bytes.len() {
            return Err(bad("length (trailing bytes)"));
        }
        Ok(plan)
    }
}

impl<const N: usize> Graph<N> {
    /// A 32-bit FNV-1a hash of the graph's structure (each node's kind, op, inputs, shape and
    /// parameter offset): a plan carries its graph's, and runs only against a graph with the
    /// same.
    pub fn fingerprint(&self) -> u32 {
        let mut h = 0x811c_9dc5u32;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ b as u32).wrapping_mul(0x0100_0193);
            }
        };
        for node in self.nodes() {
            let (tag, name, offset) = match node.kind {
                crate::NodeKind::Input { requires_grad } => (requires_grad as u8, "input", 0),
                crate::NodeKind::Param { trainable, offset, .. } => (2 + trainable as u8, "param", offset),
                crate::NodeKind::Op(op) => (4, crate::ops::OpKind::name(&op), 0),
            };
            eat(&[tag, node.requires_grad as u8, node.inputs().len() as u8]);
            eat(name.as_bytes());
            eat(&(offset as u32).to_le_bytes());
            for k in node.inputs() {
                eat(&k.0.to_le_bytes());
            }
            for &d in node.shape.dims() {
                eat(&(d as u32).to_le_bytes());
            }
        }
        h
    }
}
