//! The model spec: the input shape, a list of layers (each fed by the previous layer or by
//! named ones), and a loss. It builds the same graph, and so the same parameter layout, on
//! the host and on the device.

// A spec error carries the layer's name and the graph error with both shapes (~170 bytes);
// without a heap there is nothing to box it into, and it is only built on the error path.
#![allow(clippy::result_large_err)]

use super::{LayerOp, SettingError};
use crate::{Error, Graph, NodeId};
use core::fmt;
use serde::{Deserialize, Serialize};

/// The most layers a spec holds.
pub const MAX_LAYERS: usize = 48;
/// A layer name.
pub type Name = heapless::String<24>;

/// A layer: a name, an op, and the names of its inputs (empty: the previous layer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub name: Name,
    pub op: LayerOp,
    pub inputs: heapless::Vec<Name, 2>,
}

/// The loss a model trains with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loss {
    /// From logits, against integer class labels.
    CrossEntropy,
    /// Mean squared error against a target of the output's shape.
    Mse,
}

/// A whole model: one sample's input shape, the layers, the loss.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub name: heapless::String<32>,
    /// One sample's shape, without the batch dimension (at most 3 dimensions).
    pub input: heapless::Vec<u32, 3>,
    pub layers: heapless::Vec<Layer, MAX_LAYERS>,
    pub loss: Loss,
}

/// A spec problem: which layer (index and name) and what is wrong.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SpecError {
    /// Index of the layer in the spec, `None` for the model's input or loss.
    pub layer: Option<usize>,
    pub name: Name,
    pub kind: SpecErrorKind,
}

/// What is wrong with a layer.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SpecErrorKind {
    /// The graph refused the layer (shape mismatch, bad argument, no room).
    Graph(Error),
    /// A setting out of its range (a model file may carry anything).
    Setting(SettingError),
    /// An input names no earlier layer.
    UnknownInput(Name),
    /// The op got the wrong number of inputs.
    Arity { expected: usize, got: usize },
    /// The spec has no layers.
    NoLayers,
    /// The spec bytes of a model file do not decode.
    Decode,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layer {
            Some(i) => write!(f, "layer {i} ({}): ", self.name)?,
            None => write!(f, "{}: ", self.name)?,
        }
        match &self.kind {
            SpecErrorKind::Graph(e) => write!(f, "{e}"),
            SpecErrorKind::Setting(e) => write!(f, "{e}"),
            SpecErrorKind::UnknownInput(n) => write!(f, "input `{n}` is not the name of an earlier layer (or `input`)"),
            SpecErrorKind::Arity { expected, got } => write!(f, "takes {expected} input(s), got {got}"),
            SpecErrorKind::NoLayers => write!(f, "the model has no layers"),
            SpecErrorKind::Decode => write!(f, "the spec bytes do not decode"),
        }
    }
}

impl core::error::Error for SpecError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match &self.kind {
            SpecErrorKind::Graph(e) => Some(e),
            SpecErrorKind::Setting(e) => Some(e),
            _ => None,
        }
    }
}

/// The nodes of a built model.
#[derive(Clone, Debug)]
pub struct BuiltModel {
    /// The input images / features `[batch, …input]`.
    pub x: NodeId,
    /// Each layer's output node, in spec order.
    pub layers: heapless::Vec<NodeId, MAX_LAYERS>,
    /// The last layer's output (logits for classifiers).
    pub output: NodeId,
    /// Class labels `[batch]` (cross-entropy) or the target (mse).
    pub target: NodeId,
    pub loss: NodeId,
}

impl ModelSpec {
    /// The tag bits of the layer ops the model uses (for `build_from_postcard_in`).
    pub fn layer_tags(&self) -> u64 {
        self.layers.iter().fold(0, |set, layer| set | 1u64 << layer.op.info().tag)
    }

    /// Builds the model for `batch` samples into `g` (which should be empty so the
    /// parameter layout matches the model file).
    pub fn build<const N: usize>(&self, g: &mut Graph<N>, batch: usize) -> core::result::Result<BuiltModel, SpecError> {
        let (x, layers) = build_layers::<N, { u64::MAX }>(g, batch, &self.input, self.layers.iter().cloned().map(Ok))?;
        add_loss(g, batch, x, layers, self.loss)
    }
}

/// Builds a model straight from the postcard bytes of a [`ModelSpec`], decoding one layer at
/// a time: the whole layer list is never held (on a device that is several KB of stack).
pub fn build_from_postcard<const N: usize>(bytes: &[u8], g: &mut Graph<N>, batch: usize) -> core::result::Result<BuiltModel, SpecError> {
    build_from_postcard_in::<N, { u64::MAX }>(bytes, g, batch)
}

/// [`build_from_postcard`] in a build that links only the layer ops whose tag bits are set in
/// `TAGS` (a firmware's, from [`ModelSpec::layer_tags`] of its model at build time).
pub fn build_from_postcard_in<const N: usize, const TAGS: u64>(
    bytes: &[u8],
    g: &mut Graph<N>,
    batch: usize,
) -> core::result::Result<BuiltModel, SpecError> {
    // The fields in declaration order: name, input, layers (length, then each), loss.
    let (_, rest) = take::<heapless::String<32>>(bytes)?;
    let (input, rest) = take::<heapless::Vec<u32, 3>>(rest)?;
    let (count, rest) = take::<u32>(rest)?;
    let mut layers = LayerDecoder { rest, remaining: count };
    let (x, nodes) = build_layers::<N, TAGS>(g, batch, &input, &mut layers)?;
    let (loss, _) = take::<Loss>(layers.rest)?;
    add_loss(g, batch, x, nodes, loss)
}

fn decode_error() -> SpecError {
    SpecError { layer: None, name: Name::try_from("spec").unwrap_or_default(), kind: SpecErrorKind::Decode }
}

fn take<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> core::result::Result<(T, &'a [u8]), SpecError> {
    postcard::take_from_bytes(bytes).map_err(|_| decode_error())
}

/// Decodes the layers of a postcard spec one by one.
struct LayerDecoder<'a> {
    rest: &'a [u8],
    remaining: u32,
}

impl Iterator for LayerDecoder<'_> {
    type Item = core::result::Result<Layer, SpecError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        Some(take::<Layer>(self.rest).map(|(layer, rest)| {
            self.rest = rest;
            layer
        }))
    }
}

/// The model input and every layer; returns the input node and each layer's output node.
fn build_layers<const N: usize, const TAGS: u64>(
    g: &mut Graph<N>,
    batch: usize,
    input: &[u32],
    layers: impl Iterator<Item = core::result::Result<Layer, SpecError>>,
) -> core::result::Result<(NodeId, heapless::Vec<NodeId, MAX_LAYERS>), SpecError> {
    let model_err = |kind| SpecError { layer: None, name: Name::try_from("input").unwrap_or_default(), kind };
    let mut dims = [batch; 4];
    for (d, &v) in dims[1..].iter_mut().zip(input) {
        *d = v as usize;
    }
    let x = g.input(&dims[..1 + input.len().min(3)]).map_err(|e| model_err(SpecErrorKind::Graph(e)))?;
    // Names of the layers so far, for `inputs = [...]`.
    let mut named: heapless::Vec<(Name, NodeId), MAX_LAYERS> = heapless::Vec::new();
    let mut nodes: heapless::Vec<NodeId, MAX_LAYERS> = heapless::Vec::new();
    for (i, layer) in layers.enumerate() {
        let layer = layer?;
        let err = |kind| SpecError { layer: Some(i), name: layer.name.clone(), kind };
        let resolve = |name: &Name| -> core::result::Result<NodeId, SpecError> {
            if name.as_str() == "input" {
                return Ok(x);
            }
            named.iter().rev().find(|(n, _)| n == name).map(|(_, id)| *id).ok_or_else(|| err(SpecErrorKind::UnknownInput(name.clone())))
        };
        let mut ins = [nodes.last().copied().unwrap_or(x); 2];
        match (layer.inputs.len(), layer.op.arity()) {
            (0, 1) => {}
            (n, a) if n == a => {
                for (slot, name) in ins.iter_mut().zip(&layer.inputs) {
                    *slot = resolve(name)?;
                }
            }
            (n, a) => return Err(err(SpecErrorKind::Arity { expected: a, got: n })),
        }
        layer.op.check().map_err(|e| err(SpecErrorKind::Setting(e)))?;
        let node = layer.op.add_to_in::<N, TAGS>(g, ins).map_err(|e| err(SpecErrorKind::Graph(e)))?;
        let full = || err(SpecErrorKind::Graph(Error::CapacityExceeded { what: "layers", capacity: MAX_LAYERS }));
        nodes.push(node).map_err(|_| full())?;
        named.push((layer.name.clone(), node)).map_err(|_| full())?;
    }
    if nodes.is_empty() {
        return Err(model_err(SpecErrorKind::NoLayers));
    }
    Ok((x, nodes))
}

/// The logits cross-entropy reads from `output`: the input of a final softmax (a classifier
/// imported with its softmax trains on its logits, not on probabilities), else `output`.
fn logits<const N: usize>(g: &Graph<N>, output: NodeId) -> NodeId {
    match g.node(output).map(|n| (n.op(), n.inputs().first())) {
        Ok((Some(crate::ops::Op::Softmax(crate::ops::Softmax { log: false })), Some(&input))) => input,
        _ => output,
    }
}

/// Adds the target input and the loss after the last layer.
fn add_loss<const N: usize>(
    g: &mut Graph<N>,
    batch: usize,
    x: NodeId,
    layers: heapless::Vec<NodeId, MAX_LAYERS>,
    loss: Loss,
) -> core::result::Result<BuiltModel, SpecError> {
    let output = *layers.last().unwrap_or(&x);
    let loss_err = |e| SpecError { layer: None, name: Name::try_from("loss").unwrap_or_default(), kind: SpecErrorKind::Graph(e) };
    let (target, loss) = match loss {
        Loss::CrossEntropy => {
            let labels = g.labels(batch).map_err(loss_err)?;
            (labels, g.cross_entropy(logits(g, output), labels).map_err(loss_err)?)
        }
        Loss::Mse => {
            let shape = g.shape(output).map_err(loss_err)?;
            let target = g.input(shape.dims()).map_err(loss_err)?;
            (target, g.mse(output, target).map_err(loss_err)?)
        }
    };
    Ok(BuiltModel { x, layers, output, target, loss })
}
