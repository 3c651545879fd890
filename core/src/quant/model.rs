//! A loaded int8 model: its spec bytes checked step by step, its arena planned, and a runner
//! that decodes one step at a time (the device never holds the whole spec decoded) and calls
//! its kernel on slices of the arena and of the data section.

use super::plan::{plan, ArenaPlan, Life, MAX_BUFFERS, MAX_TENSORS};
use super::residual::{BlockTensors, ConvData, QConv, Residual};
use super::spec::{Blob, Operand, QLayer, QStep, QTensor, MAX_QUANT_STEPS};
use super::QuantError;
use crate::model::Name;
use core::ops::Range;
use mote_kernels::dispatch::{
    conv2d_s8, conv2d_s8_in_place, conv2d_s8_in_place_scratch_bytes, conv2d_s8_in_place_takes, conv2d_s8_scratch_bytes,
    depthwise_conv2d_s8, fully_connected_s8,
};
use mote_kernels::reference::int8::{add_s8, avgpool2d_s8, maxpool2d_s8, softmax_s8, Requant};

/// The bytes of a spec: the name, the input tensor, then the steps (postcard).
type Head = (Name, QTensor);

/// Bytes the spec of `name`, `input` and `steps` takes.
pub fn quant_spec_len(name: &Name, input: &QTensor, steps: &[QStep]) -> Result<usize, QuantError> {
    postcard::experimental::serialized_size(&(name, input, steps)).map_err(|_| QuantError::Spec { what: "spec (does not encode)" })
}

/// Writes the spec of `name`, `input` and `steps` into `out`; returns the bytes written.
pub fn write_quant_spec(name: &Name, input: &QTensor, steps: &[QStep], out: &mut [u8]) -> Result<usize, QuantError> {
    postcard::to_slice(&(name, input, steps), out).map(|b| b.len()).map_err(|_| QuantError::Spec { what: "spec (buffer too small)" })
}

/// An int8 model ready to run: its spec and data in place, its arena planned.
#[derive(Clone, Debug)]
pub struct QuantModel<'a> {
    pub name: Name,
    pub input: QTensor,
    pub output: QTensor,
    steps: &'a [u8],
    step_count: usize,
    data: &'a [u8],
    /// Values of each tensor (0: the input, `k + 1`: step `k`'s output).
    numel: heapless::Vec<usize, MAX_TENSORS>,
    /// Each step's scratch: its buffer in the plan and its bytes.
    scratch: heapless::Vec<(usize, usize), MAX_QUANT_STEPS>,
    /// Whether each step runs in its input's bytes.
    in_place: heapless::Vec<bool, MAX_QUANT_STEPS>,
    plan: ArenaPlan,
    /// Bytes after the steps (notes the host keeps).
    pub notes: &'a [u8],
}

impl<'a> QuantModel<'a> {
    /// Decodes and checks `spec` (every step against its operands and the `data` section)
    /// and plans the arena.
    pub fn new(spec: &'a [u8], data: &'a [u8]) -> Result<QuantModel<'a>, QuantError> {
        if !(data.as_ptr() as usize).is_multiple_of(4) {
            return Err(QuantError::Misaligned);
        }
        let ((name, input), rest): (Head, _) = postcard::take_from_bytes(spec).map_err(|_| QuantError::Spec { what: "name or input" })?;
        input.check().map_err(|what| QuantError::Spec { what })?;
        let (step_count, steps): (usize, _) = postcard::take_from_bytes(rest).map_err(|_| QuantError::Spec { what: "step count" })?;
        if !(1..=MAX_QUANT_STEPS).contains(&step_count) {
            return Err(QuantError::Spec { what: "step count (1 to 64)" });
        }
        let mut tensors: heapless::Vec<QTensor, MAX_TENSORS> = heapless::Vec::new();
        let mut numel: heapless::Vec<usize, MAX_TENSORS> = heapless::Vec::new();
        let mut lives: heapless::Vec<Life, MAX_BUFFERS> = heapless::Vec::new();
        let mut scratch_len: heapless::Vec<usize, MAX_QUANT_STEPS> = heapless::Vec::new();
        // Per step: the scratch it needs if it runs in place, when it can.
        let mut candidates: heapless::Vec<Option<(usize, usize)>, MAX_QUANT_STEPS> = heapless::Vec::new();
        let full = QuantError::Spec { what: "step count (1 to 64)" };
        tensors.push(input).map_err(|_| full)?;
        numel.push(input.numel()).map_err(|_| full)?;
        lives.push(Life { len: input.numel(), first: 0, last: 0, owner: 0 }).map_err(|_| full)?;
        let mut cursor = steps;
        for k in 0..step_count {
            let (step, rest): (QStep, _) = postcard::take_from_bytes(cursor).map_err(|_| QuantError::Step { step: k, what: "encoding" })?;
            cursor = rest;
            let x = *tensors.get(step.input as usize).ok_or(QuantError::Step { step: k, what: "input (an earlier tensor)" })?;
            step.check(&x, &numel, data.len())?;
            scratch_len.push(scratch_bytes(&step.layer)).map_err(|_| full)?;
            candidates.push(in_place_candidate(&step.layer).map(|len| (step.input as usize, len))).map_err(|_| full)?;
            for t in step.reads() {
                lives[t as usize].last = k + 1;
            }
            let owner = if step.layer == QLayer::Reshape { lives[step.input as usize].owner } else { k + 1 };
            let y = step.output;
            tensors.push(y).map_err(|_| full)?;
            numel.push(y.numel()).map_err(|_| full)?;
            lives.push(Life { len: y.numel(), first: k + 1, last: k + 1, owner }).map_err(|_| full)?;
        }
        lives[step_count].last = step_count + 1;
        // A step that can run in place does when nothing after it reads its input (nor a tensor
        // sharing the input's bytes): its output takes the input's bytes.
        let mut in_place: heapless::Vec<bool, MAX_QUANT_STEPS> = heapless::Vec::new();
        for (k, candidate) in candidates.iter().enumerate() {
            let free = candidate.filter(|&(input, _)| {
                let owner = lives[input].owner;
                lives.iter().filter(|l| l.owner == owner).all(|l| l.last <= k + 1)
            });
            if let Some((input, len)) = free {
                lives[k + 1].owner = lives[input].owner;
                scratch_len[k] = len;
            }
            in_place.push(free.is_some()).map_err(|_| full)?;
        }
        // Each step's scratch lives while the step runs.
        let mut scratch = heapless::Vec::new();
        for (k, &len) in scratch_len.iter().enumerate() {
            let buffer = lives.len();
            lives.push(Life { len, first: k + 1, last: k + 1, owner: buffer }).map_err(|_| full)?;
            scratch.push((buffer, len)).map_err(|_| full)?;
        }
        let output = tensors[step_count];
        let steps = &steps[..steps.len() - cursor.len()];
        Ok(QuantModel { name, input, output, steps, step_count, data, numel, scratch, in_place, plan: plan(&lives), notes: cursor })
    }

    /// Bytes of the arena [`QuantModel::run`] needs (every tensor, the input's included).
    pub fn arena_len(&self) -> usize {
        self.plan.len
    }

    /// Number of steps.
    pub fn step_count(&self) -> usize {
        self.step_count
    }

    /// The steps, decoded one by one.
    pub fn steps(&self) -> impl Iterator<Item = QStep> + '_ {
        let mut cursor = self.steps;
        (0..self.step_count).map_while(move |_| {
            let (step, rest) = postcard::take_from_bytes::<QStep>(cursor).ok()?;
            cursor = rest;
            Some(step)
        })
    }

    /// Where tensor `t` lies in the arena.
    fn range(&self, t: usize) -> Range<usize> {
        self.plan.offsets[t]..self.plan.offsets[t] + self.numel[t]
    }

    /// Runs the model on `input` (int8, NHWC) in `arena`; returns the output's values.
    pub fn run<'b>(&self, arena: &'b mut [i8], input: &[i8]) -> Result<&'b [i8], QuantError> {
        self.run_each(arena, input, |_, _| {})
    }

    /// Multiply-accumulates (convolutions, fully connected; a fused pool's convolution
    /// counted whole) and other value operations (pooled, added, softmaxed) of one run.
    pub fn work(&self) -> u64 {
        self.steps().enumerate().map(|(k, s)| s.work(self.numel[s.input as usize], self.numel[k + 1])).fold(0, u64::saturating_add)
    }

    /// [`QuantModel::run`], calling `each(k, output)` with step `k`'s output once it is made.
    pub fn run_each<'b>(&self, arena: &'b mut [i8], input: &[i8], each: impl FnMut(usize, &[i8])) -> Result<&'b [i8], QuantError> {
        if arena.len() < self.plan.len {
            return Err(QuantError::ArenaTooSmall { needed: self.plan.len, got: arena.len() });
        }
        if input.len() != self.numel[0] {
            return Err(QuantError::InputLength { needed: self.numel[0], got: input.len() });
        }
        arena[self.range(0)].copy_from_slice(input);
        self.run_loaded_each(arena, each)
    }

    /// Where the input goes in `arena`, for a reader that fills it in place (then
    /// [`QuantModel::run_loaded_each`]).
    pub fn input_mut<'b>(&self, arena: &'b mut [i8]) -> Result<&'b mut [i8], QuantError> {
        if arena.len() < self.plan.len {
            return Err(QuantError::ArenaTooSmall { needed: self.plan.len, got: arena.len() });
        }
        Ok(&mut arena[self.range(0)])
    }

    /// [`QuantModel::run_each`] with the input already in `arena` ([`QuantModel::input_mut`]).
    pub fn run_loaded_each<'b>(&self, arena: &'b mut [i8], mut each: impl FnMut(usize, &[i8])) -> Result<&'b [i8], QuantError> {
        if arena.len() < self.plan.len {
            return Err(QuantError::ArenaTooSmall { needed: self.plan.len, got: arena.len() });
        }
        for (k, step) in self.steps().enumerate() {
            self.run_step(k, &step, arena)?;
            each(k, &arena[self.range(k + 1)]);
        }
        Ok(&arena[self.range(self.step_count)])
    }

    fn run_step(&self, k: usize, step: &QStep, arena: &mut [i8]) -> Result<(), QuantError> {
        let other = match step.layer {
            QLayer::Add { other: Operand::Tensor(t), .. } => Some(self.range(t as usize)),
            QLayer::Reshape => return Ok(()),
            _ => None,
        };
        let bad = QuantError::Step { step: k, what: "arena plan (overlapping operands)" };
        if self.in_place[k] {
            return self.run_in_place(k, step, arena);
        }
        let (buffer, len) = self.scratch[k];
        let y_range = self.range(k + 1);
        // No scratch: an empty range just after the output (an empty buffer's offset is arbitrary).
        let scratch = if len == 0 { y_range.end..y_range.end } else { self.plan.offsets[buffer]..self.plan.offsets[buffer] + len };
        let ([x, b], y, scratch) = split(arena, [Some(self.range(step.input as usize)), other], [y_range, scratch]).ok_or(bad)?;
        let x = x.ok_or(bad)?;
        let scratch = bytes_mut(scratch);
        let blob = |b: &Blob| self.blob(b, k);
        match &step.layer {
            QLayer::Conv { p, io, depthwise, weights, bias, requant, pool } => {
                let (w, bias, requant) = (i8s(blob(weights)?), bias.map(|b| blob(&b)).transpose()?, requants(blob(requant)?, k)?);
                let bias = bias.map(|b| i32s(b, k)).transpose()?;
                if *depthwise {
                    depthwise_conv2d_s8(p, io, requant, x, w, bias, y)
                } else {
                    conv2d_s8(p, pool.as_ref().map(|(pool, act)| (pool, (act[0], act[1]))), io, requant, x, w, bias, y, scratch)
                }
            }
            QLayer::FullyConnected { depth, out, io, weights, bias, requant } => {
                let (w, requant) = (i8s(blob(weights)?), requants(blob(requant)?, k)?);
                let bias = bias.map(|b| blob(&b).and_then(|b| i32s(b, k))).transpose()?;
                let (depth, out) = (*depth as usize, *out as usize);
                fully_connected_s8(x.len() / depth, depth, out, io, requant, x, w, bias, y, scratch)
            }
            QLayer::AvgPool { p, act } => avgpool2d_s8(p, act[0], act[1], x, y),
            QLayer::MaxPool { p, act } => maxpool2d_s8(p, act[0], act[1], x, y),
            QLayer::Add { p, other } => {
                let b = match other {
                    Operand::Tensor(_) => b.unwrap_or(&[]),
                    Operand::Const(c) => i8s(blob(c)?),
                };
                add_s8(p, x, b, y)
            }
            QLayer::Softmax { p, depth } => softmax_s8(p, *depth as usize, x, y),
            QLayer::Reshape => {}
            QLayer::Residual(block) => {
                if !block.run(BlockTensors::Apart(x, y), self.block_data(block, k)?, scratch) {
                    return Err(QuantError::Step { step: k, what: "residual block operands" });
                }
            }
        }
        Ok(())
    }

    /// The constants of a residual block's convolutions.
    fn block_data(&self, block: &Residual, k: usize) -> Result<[Option<ConvData<'a>>; 3], QuantError> {
        let data = |c: &QConv| -> Result<ConvData<'a>, QuantError> {
            let bias = c.bias.map(|b| self.blob(&b, k).and_then(|b| i32s(b, k))).transpose()?;
            Ok(ConvData { weights: i8s(self.blob(&c.weights, k)?), bias, requant: requants(self.blob(&c.requant, k)?, k)? })
        };
        Ok([Some(data(&block.a)?), Some(data(&block.b)?), block.shortcut.as_ref().map(data).transpose()?])
    }

    /// Step `k`, a pointwise or depthwise convolution or a residual block, in its input's bytes.
    fn run_in_place(&self, k: usize, step: &QStep, arena: &mut [i8]) -> Result<(), QuantError> {
        let bad = QuantError::Step { step: k, what: "arena plan (overlapping operands)" };
        let (buffer, len) = self.scratch[k];
        let scratch = self.plan.offsets[buffer]..self.plan.offsets[buffer] + len;
        // The input's bytes, which the output (no larger) takes over.
        let xy = self.range(step.input as usize);
        let (_, xy, scratch) = split(arena, [None, None], [xy, scratch]).ok_or(bad)?;
        if let QLayer::Residual(block) = &step.layer {
            return match block.run(BlockTensors::Shared(xy), self.block_data(block, k)?, bytes_mut(scratch)) {
                true => Ok(()),
                false => Err(QuantError::Step { step: k, what: "residual block operands" }),
            };
        }
        let QLayer::Conv { p, io, depthwise, weights, bias, requant, pool: None } = &step.layer else {
            return Err(QuantError::Step { step: k, what: "in-place step" });
        };
        let (w, requant) = (i8s(self.blob(weights, k)?), requants(self.blob(requant, k)?, k)?);
        let bias = bias.map(|b| self.blob(&b, k).and_then(|b| i32s(b, k))).transpose()?;
        conv2d_s8_in_place(p, *depthwise, io, requant, xy, w, bias, bytes_mut(scratch));
        Ok(())
    }

    /// The bytes of `b` (checked when the model was loaded; checked again, never trusted).
    fn blob(&self, b: &Blob, step: usize) -> Result<&'a [u8], QuantError> {
        let start = b.offset as usize;
        self.data.get(start..start + b.len as usize).ok_or(QuantError::Step { step, what: "blob" })
    }
}

/// The scratch step `layer` needs when it runs in place, if it can.
fn in_place_candidate(layer: &QLayer) -> Option<usize> {
    match layer {
        QLayer::Conv { p, depthwise, pool: None, .. } if conv2d_s8_in_place_takes(p, *depthwise) => {
            Some(conv2d_s8_in_place_scratch_bytes(p, *depthwise))
        }
        QLayer::Residual(block) if block.in_place_ok() => Some(block.scratch_bytes()),
        _ => None,
    }
}

/// Scratch bytes step `layer` is planned with (the DSP kernels' columns, a residual block's rows).
fn scratch_bytes(layer: &QLayer) -> usize {
    match layer {
        QLayer::Conv { p, depthwise: false, .. } => conv2d_s8_scratch_bytes(p),
        QLayer::Residual(block) => block.scratch_bytes(),
        _ => 0,
    }
}

/// The arena as `(reads, write, scratch)`: `reads` read-only, the two writes mutable, or `None`
/// if the writes overlap each other or a read, or any lies outside.
#[allow(clippy::type_complexity)]
fn split(
    arena: &mut [i8],
    reads: [Option<Range<usize>>; 2],
    writes: [Range<usize>; 2],
) -> Option<([Option<&[i8]>; 2], &mut [i8], &mut [i8])> {
    let [y, s] = writes;
    let swap = s.start < y.start;
    let (first, second) = if swap { (s, y) } else { (y, s) };
    if first.end > second.start || second.end > arena.len() || first.start > first.end || second.start > second.end {
        return None;
    }
    let (head, rest) = arena.split_at_mut(first.start);
    let (w1, rest) = rest.split_at_mut(first.len());
    let (middle, rest) = rest.split_at_mut(second.start - first.end);
    let (w2, tail) = rest.split_at_mut(second.len());
    let parts: [(usize, &[i8]); 3] = [(0, head), (first.end, middle), (second.end, tail)];
    let pick = |r: Range<usize>| -> Option<&[i8]> {
        parts.iter().find_map(|&(at, part)| (r.start >= at && r.end <= at + part.len()).then(|| &part[r.start - at..r.end - at]))
    };
    let mut out = [None, None];
    for (o, r) in out.iter_mut().zip(reads) {
        if let Some(r) = r {
            *o = Some(pick(r)?);
        }
    }
    let (y, s) = if swap { (w2, w1) } else { (w1, w2) };
    Some((out, y, s))
}

fn bytes_mut(values: &mut [i8]) -> &mut [u8] {
    // SAFETY: i8 and u8 have the same size, alignment and validity (any bits).
    unsafe { core::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), values.len()) }
}

fn i8s(bytes: &[u8]) -> &[i8] {
    // SAFETY: i8 and u8 have the same size, alignment and validity (any bits).
    unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<i8>(), bytes.len()) }
}

fn i32s(bytes: &[u8], step: usize) -> Result<&[i32], QuantError> {
    // SAFETY: any 4 bytes are a valid i32; `align_to` returns only the aligned middle, and the
    // targets are little-endian like the file.
    let (head, values, tail) = unsafe { bytes.align_to::<i32>() };
    if head.is_empty() && tail.is_empty() {
        Ok(values)
    } else {
        Err(QuantError::Step { step, what: "bias alignment" })
    }
}

fn requants(bytes: &[u8], step: usize) -> Result<&[Requant], QuantError> {
    // SAFETY: `Requant` is `repr(C)` of two i32s, so any 8 bytes are a valid one; `align_to`
    // returns only the aligned middle; the targets are little-endian like the file.
    let (head, values, tail) = unsafe { bytes.align_to::<Requant>() };
    if head.is_empty() && tail.is_empty() {
        Ok(values)
    } else {
        Err(QuantError::Step { step, what: "requantization table alignment" })
    }
}

#[cfg(target_endian = "big")]
compile_error!("int8 model files store their constants little-endian and are read in place");
