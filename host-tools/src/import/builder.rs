//! Builds a mote model one layer at a time while a source graph is converted: each layer is
//! added to a real graph at once (so its output shape is known to the next node's mapping and
//! every shape rule is checked), and its parameters are filled from the source's tensors.

use crate::model::CliGraph;
use mote_core::model::{Layer, LayerOp, Loss, ModelSpec, Name, MAX_LAYERS};
use mote_core::NodeId;

/// One converted layer, for the mapping report.
#[derive(Clone, Debug)]
pub struct Mapped {
    /// The source node (name and op type) the layer came from.
    pub source: String,
    pub layer: String,
    pub op: &'static str,
    pub shape: Vec<usize>,
    pub params: usize,
}

/// A value of the model being built: the model input or a layer's output.
#[derive(Clone, Debug)]
pub struct LayerValue {
    pub name: Name,
    pub node: NodeId,
    pub shape: Vec<usize>,
}

/// The model under construction.
pub struct ModelBuilder {
    graph: Box<CliGraph>,
    input: Vec<u32>,
    layers: Vec<Layer>,
    params: Vec<f32>,
    pub mapping: Vec<Mapped>,
    /// Which parameter values were given by the source (the others are an error).
    filled: Vec<bool>,
}

impl ModelBuilder {
    /// A model whose first input has `dims` (batch first).
    pub fn new(dims: &[usize]) -> Result<(ModelBuilder, LayerValue), String> {
        if !(1..=4).contains(&dims.len()) {
            return Err(format!("the first input has shape {dims:?}: mote takes inputs of 1 to 4 dimensions, the batch first"));
        }
        let mut graph = Box::new(CliGraph::new());
        let node = graph.input(dims).map_err(|e| e.to_string())?;
        let input = dims[1..].iter().map(|&d| d as u32).collect();
        let first = LayerValue { name: name("input"), node, shape: dims.to_vec() };
        Ok((ModelBuilder { graph, input, layers: Vec::new(), params: Vec::new(), mapping: Vec::new(), filled: Vec::new() }, first))
    }

    /// Adds `op` over `inputs` under a name made from `hint` (the op's name, or a source
    /// input's), its parameters (in the order
    /// the op creates them: weight, bias; batchnorm's mean, variance, scale, shift; a
    /// constant's values) taken from `tensors`.
    pub fn add(&mut self, source: &str, hint: &str, op: LayerOp, inputs: &[&LayerValue], tensors: &[&[f32]]) -> Result<LayerValue, String> {
        if self.layers.len() >= MAX_LAYERS {
            return Err(format!("the model needs more than {MAX_LAYERS} layers"));
        }
        let start = self.graph.nodes().len();
        let model_input = self.graph.node_id(0).map_err(|e| e.to_string())?;
        let first = inputs.first().map_or(model_input, |v| v.node);
        let ins = [first, inputs.get(1).map_or(first, |v| v.node)];
        let node = op.add_to(&mut self.graph, ins).map_err(|e| e.to_string())?;
        // The parameter nodes the op created, in creation order.
        let created: Vec<NodeId> = (start..self.graph.nodes().len())
            .filter_map(|i| self.graph.node_id(i).ok())
            .filter(|&id| self.graph.node(id).is_ok_and(|n| n.param_offset().is_some()))
            .collect();
        if created.len() != tensors.len() {
            return Err(format!("{} takes {} parameter tensors, the source gives {}", op.name(), created.len(), tensors.len()));
        }
        self.params.resize(self.graph.params_len(), 0.0);
        self.filled.resize(self.graph.params_len(), false);
        for (&id, values) in created.iter().zip(tensors) {
            let n = self.graph.node(id).map_err(|e| e.to_string())?;
            let (offset, len) = (n.param_offset().unwrap_or(0), n.shape.numel());
            if values.len() != len {
                return Err(format!("{}: a parameter of shape {:?} given {} values", op.name(), n.shape.dims(), values.len()));
            }
            self.params[offset..offset + len].copy_from_slice(values);
            self.filled[offset..offset + len].fill(true);
        }
        let name = self.unique_name(hint);
        let shape = self.graph.shape(node).map_err(|e| e.to_string())?.dims().to_vec();
        let params = created.iter().filter_map(|&id| self.graph.node(id).ok()).map(|n| n.shape.numel()).sum();
        let layer_inputs = inputs.iter().map(|v| v.name.clone()).collect();
        self.layers.push(Layer { name: name.clone(), op, inputs: layer_inputs });
        self.mapping.push(Mapped { source: source.into(), layer: name.to_string(), op: op.name(), shape: shape.clone(), params });
        Ok(LayerValue { name, node, shape })
    }

    /// A layer name from `hint` (cut to fit), made unique with a counter.
    fn unique_name(&self, hint: &str) -> Name {
        let clean: String = hint.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).take(16).collect();
        let clean = if clean.is_empty() || clean == "input" { "layer".to_string() } else { clean };
        let taken = |n: &str| self.layers.iter().any(|l| l.name.as_str() == n);
        let mut candidate = clean.clone();
        let mut i = 1;
        while taken(&candidate) {
            candidate = format!("{clean}_{i}");
            i += 1;
        }
        name(&candidate)
    }

    /// The finished model: its spec (output: `output`, the last layer, or a copy of it) and
    /// parameters.
    pub fn finish(mut self, model_name: &str, output: &LayerValue) -> Result<(ModelSpec, Vec<f32>, Vec<Mapped>), String> {
        if self.layers.last().is_none_or(|l| l.name != output.name) {
            let copy = LayerOp::Reshape { shape: dims_setting(&output.shape[1..])? };
            self.add("(output)", "output", copy, &[output], &[])?;
        }
        if let Some(i) = self.filled.iter().position(|f| !f) {
            return Err(format!("parameter value {i} was not given by the source"));
        }
        // A classifier's `[N, classes]` output trains with cross-entropy, anything else with MSE.
        let loss = if self.mapping.last().is_some_and(|m| m.shape.len() == 2) { Loss::CrossEntropy } else { Loss::Mse };
        let mut spec = ModelSpec {
            name: heapless::String::try_from(&model_name[..model_name.len().min(32)]).unwrap_or_default(),
            input: heapless::Vec::from_slice(&self.input).map_err(|_| "the first input has more than 3 dimensions after the batch")?,
            layers: heapless::Vec::new(),
            loss,
        };
        for layer in self.layers {
            spec.layers.push(layer).map_err(|_| format!("the model needs more than {MAX_LAYERS} layers"))?;
        }
        Ok((spec, self.params, self.mapping))
    }
}

/// A layer name (at most 24 bytes, checked by the caller).
fn name(s: &str) -> Name {
    Name::try_from(&s[..s.len().min(24)]).unwrap_or_default()
}

/// A dims setting from one to four sizes ≥ 1.
pub fn dims_setting(dims: &[usize]) -> Result<[u32; 4], String> {
    if dims.is_empty() || dims.len() > 4 || dims.iter().any(|&d| d == 0 || d > u32::MAX as usize) {
        return Err(format!("shape {dims:?}: mote takes 1 to 4 dimensions of size ≥ 1"));
    }
    let mut out = [0; 4];
    out.iter_mut().zip(dims).for_each(|(o, &d)| *o = d as u32);
    Ok(out)
}
