//! The model exported by `mote export`, embedded in flash: its graph is built straight from
//! the file's spec bytes, and its parameters are used in place (no copy to RAM).
//!
//! The plans were made on the host by `build.rs`; the device only decodes them (the
//! executor checks they belong to the graph built here). Building and decoding are not
//! inlined into their callers: their temporaries must not stay in the frames that are live
//! while the model runs (the stack is measured).

use crate::board;
use crate::error::FirmwareError;
use crate::link::{HostLink, Split, Upload};
use crate::sizes::{GRAPH, INFER_PLAN, MODEL_NODES, NODES, OPS, STEPS, TRAIN_PLAN};
use mote_core::model::{check_model, BuiltModel, ModelError};
use mote_core::ops::OpSet;
use mote_core::{Executor, Graph, NodeId, Plan};

/// Bytes aligned to 4 so the parameters can be read as f32 in place.
#[repr(C, align(4))]
pub struct Aligned<T: ?Sized>(pub T);

/// The exported model file.
pub static MODEL_FILE: &Aligned<[u8]> = &Aligned(*include_bytes!("../model/model.mote"));

/// The nodes a binary feeds and reads.
#[derive(Clone, Copy, Debug)]
pub struct ModelNodes {
    /// The input images.
    pub x: NodeId,
    /// The logits.
    pub output: NodeId,
    /// The class label.
    pub target: NodeId,
    pub loss: NodeId,
}

impl From<&BuiltModel> for ModelNodes {
    fn from(b: &BuiltModel) -> Self {
        ModelNodes { x: b.x, output: b.output, target: b.target, loss: b.loss }
    }
}

/// The embedded model's graph at batch 1, made on the host by `build.rs` and decoded with the
/// shape rules of its own ops only (no spec decoding, no layer builders on the device).
#[inline(never)]
pub fn graph(g: &mut Graph<NODES>) -> Result<ModelNodes, FirmwareError> {
    g.read_bytes_in::<OPS>(GRAPH)?;
    let [x, output, target, loss] = MODEL_NODES.map(|i| g.node_id(i));
    Ok(ModelNodes { x: x?, output: output?, target: target?, loss: loss? })
}

/// The embedded model's parameters, in place in flash.
pub fn params() -> Result<&'static [f32], ModelError> {
    let parts = check_model(&MODEL_FILE.0)?;
    // SAFETY: any 4 bytes are a valid f32; `align_to` only returns the aligned middle, and
    // the target is little-endian like the file.
    let (head, floats, tail) = unsafe { parts.param_bytes.align_to::<f32>() };
    if !head.is_empty() || !tail.is_empty() {
        return Err(ModelError::Truncated { needed: parts.param_bytes.len(), got: floats.len() * 4 });
    }
    Ok(floats)
}

/// A plan made on the host by `build.rs` (one of `sizes::*_PLAN`).
#[inline(never)]
pub fn plan(bytes: &[u8]) -> Result<Plan<NODES, STEPS>, FirmwareError> {
    Plan::from_bytes(bytes).map_err(FirmwareError::from)
}

/// The inference plan of the model (evaluation mode).
pub fn inference_plan() -> Result<Plan<NODES, STEPS>, FirmwareError> {
    plan(INFER_PLAN)
}

/// The training plan of the model (batch 1, SGD with momentum); the executor may change its
/// learning rate and momentum.
pub fn training_plan() -> Result<Plan<NODES, STEPS>, FirmwareError> {
    plan(TRAIN_PLAN)
}

/// What classifying the test digits measured.
pub struct Classified {
    pub correct: u32,
    pub samples: usize,
    /// Instructions of all the inferences (the executor's runs only).
    pub insns: u64,
}

/// Classifies the test digits `link` streams with `plan` over read-only `params`, and sends
/// each prediction back, linking the forward code of the ops in `OPS` only. Not inlined, so the executor's frame is not stacked on the callers'
/// setup frames.
#[inline(never)]
pub fn classify_test_digits<const OPS: OpSet>(
    g: &Graph<NODES>,
    plan: &Plan<NODES, STEPS>,
    built: &ModelNodes,
    params: &[f32],
    arena: &mut [f32],
    link: &mut impl HostLink,
) -> Result<Classified, FirmwareError> {
    let mut ex = Executor::read_only(g, plan, params, arena)?;
    let samples = link.open(Split::Test)?;
    link.begin_upload(Upload::Predictions)?;
    let (mut correct, mut insns) = (0u32, 0u64);
    for _ in 0..samples {
        let label = link.next_sample(ex.input_mut(built.x)?)?;
        let start = board::instructions();
        ex.run_inference_in::<OPS>()?;
        insns += board::instructions() - start;
        let predicted = mote_core::argmax_f32(ex.value(built.output)?);
        correct += (predicted == label as usize) as u32;
        link.upload(&[predicted as u8])?;
    }
    Ok(Classified { correct, samples, insns })
}
