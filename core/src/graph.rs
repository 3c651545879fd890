//! The static graph: `Input`, `Param` and op nodes, each with its inputs and its output shape,
//! inferred and checked when the node is added. Capacity is a const generic (`heapless`).

use crate::ops::{Op, OpKind, OpSet};
use crate::{Error, Init, Result, Rng, Shape};

/// The most inputs one op takes (batchnorm: x, running mean, running var, gamma, beta).
pub const MAX_INPUTS: usize = 5;

/// Index of a node in its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub(crate) u16);

impl NodeId {
    /// Position of the node in the graph (nodes are stored in topological order).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum NodeKind {
    /// Data fed in before each run (images, targets, class labels stored as f32).
    Input { requires_grad: bool },
    /// A stored tensor: trainable weights, or state such as batchnorm's running statistics.
    Param { init: Init, trainable: bool, offset: usize },
    /// An op over earlier nodes.
    Op(Op),
}

/// One node of the graph.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    inputs: [NodeId; MAX_INPUTS],
    n_inputs: u8,
    pub shape: Shape,
    /// Whether a gradient flows to this node from a trainable parameter or a grad input.
    pub requires_grad: bool,
}

impl Node {
    /// The node's inputs, in the op's order.
    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs[..self.n_inputs as usize]
    }
    /// The op, for op nodes.
    pub fn op(&self) -> Option<&Op> {
        match &self.kind {
            NodeKind::Op(op) => Some(op),
            _ => None,
        }
    }
    /// Offset in the parameter buffer, for `Param` nodes.
    pub fn param_offset(&self) -> Option<usize> {
        match self.kind {
            NodeKind::Param { offset, .. } => Some(offset),
            _ => None,
        }
    }
    /// Whether this is a trainable parameter.
    pub fn is_trainable(&self) -> bool {
        matches!(self.kind, NodeKind::Param { trainable: true, .. })
    }
    /// Whether this is a non-trainable state tensor (running statistics).
    pub fn is_state(&self) -> bool {
        matches!(self.kind, NodeKind::Param { trainable: false, .. })
    }
}

/// A static DAG of at most `N` nodes, built once. Nodes are appended in topological order.
#[derive(Clone, Debug)]
pub struct Graph<const N: usize = 64> {
    nodes: heapless::Vec<Node, N>,
    params_len: usize,
}

impl<const N: usize> Default for Graph<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Graph<N> {
    /// An empty graph.
    pub const fn new() -> Self {
        Graph { nodes: heapless::Vec::new(), params_len: 0 }
    }

    /// All nodes, in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The ids of all nodes, in topological order.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> {
        (0..self.nodes.len()).map(|i| NodeId(i as u16))
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> Result<&Node> {
        self.nodes.get(id.index()).ok_or(Error::UnknownNode { index: id.index() })
    }

    /// The output shape of `id`.
    pub fn shape(&self, id: NodeId) -> Result<Shape> {
        Ok(self.node(id)?.shape)
    }

    /// Values in the parameter buffer (trainable parameters and state, in graph order).
    pub fn params_len(&self) -> usize {
        self.params_len
    }

    /// Number of trainable parameter values.
    pub fn trainable_params(&self) -> usize {
        self.nodes.iter().filter(|n| n.is_trainable()).map(|n| n.shape.numel()).sum()
    }

    /// Trainable parameter values owned by op node `id` (its weight, bias, scale, shift).
    pub fn op_params(&self, id: NodeId) -> Result<usize> {
        let node = self.node(id)?;
        let mut total = 0;
        for &i in node.inputs() {
            let input = self.node(i)?;
            if input.is_trainable() {
                total += input.shape.numel();
            }
        }
        Ok(total)
    }

    /// Multiply-accumulates of op node `id`'s forward pass (0 for inputs and parameters).
    pub fn node_macs(&self, id: NodeId) -> Result<usize> {
        let node = self.node(id)?;
        let Some(op) = node.op() else { return Ok(0) };
        let mut shapes = [Shape::default(); MAX_INPUTS];
        for (s, &k) in shapes.iter_mut().zip(node.inputs()) {
            *s = self.node(k)?.shape;
        }
        Ok(op.macs(&shapes[..node.inputs().len()], node.shape))
    }

    /// The parameter inputs of op node `id`, in the op's input order.
    pub fn param_inputs(&self, id: NodeId) -> Result<heapless::Vec<NodeId, MAX_INPUTS>> {
        let mut out = heapless::Vec::new();
        for &i in self.node(id)?.inputs() {
            if self.node(i)?.param_offset().is_some() {
                // Cannot overflow: a node has at most MAX_INPUTS inputs.
                let _ = out.push(i);
            }
        }
        Ok(out)
    }

    fn push(&mut self, node: Node) -> Result<NodeId> {
        let id = NodeId(self.nodes.len() as u16);
        if self.nodes.len() >= u16::MAX as usize {
            return Err(Error::CapacityExceeded { what: "graph", capacity: N });
        }
        self.nodes.push(node).map_err(|_| Error::CapacityExceeded { what: "graph", capacity: N })?;
        Ok(id)
    }

    /// A data input of `dims` (batch first). Inputs get no gradient.
    pub fn input(&mut self, dims: &[usize]) -> Result<NodeId> {
        self.input_node(dims, false)
    }

    /// A data input whose gradient the training plan computes and keeps (for gradient checks
    /// and targets that are learned).
    pub fn input_with_grad(&mut self, dims: &[usize]) -> Result<NodeId> {
        self.input_node(dims, true)
    }

    /// Class labels for `batch` samples: integers stored as f32.
    pub fn labels(&mut self, batch: usize) -> Result<NodeId> {
        self.input(&[batch])
    }

    /// The id of the node at `index`.
    pub fn node_id(&self, index: usize) -> Result<NodeId> {
        self.nodes.get(index).map(|_| NodeId(index as u16)).ok_or(Error::UnknownNode { index })
    }

    pub(crate) fn input_node(&mut self, dims: &[usize], requires_grad: bool) -> Result<NodeId> {
        let shape = Shape::new(dims)?;
        let kind = NodeKind::Input { requires_grad };
        self.push(Node { kind, inputs: [NodeId(0); MAX_INPUTS], n_inputs: 0, shape, requires_grad })
    }

    /// A trainable parameter of `dims`, initialized by `init`.
    pub fn param(&mut self, dims: &[usize], init: Init) -> Result<NodeId> {
        self.param_node(dims, init, true)
    }

    /// A non-trainable state tensor (e.g. running statistics), initialized by `init`.
    pub fn state(&mut self, dims: &[usize], init: Init) -> Result<NodeId> {
        self.param_node(dims, init, false)
    }

    pub(crate) fn param_node(&mut self, dims: &[usize], init: Init, trainable: bool) -> Result<NodeId> {
        let shape = Shape::new(dims)?;
        let kind = NodeKind::Param { init, trainable, offset: self.params_len };
        let params_len =
            self.params_len.checked_add(shape.numel()).ok_or(Error::CapacityExceeded { what: "parameter buffer", capacity: usize::MAX })?;
        let id = self.push(Node { kind, inputs: [NodeId(0); MAX_INPUTS], n_inputs: 0, shape, requires_grad: trainable })?;
        self.params_len = params_len;
        Ok(id)
    }

    /// Changes the initializer of parameter `id`.
    pub fn set_init(&mut self, id: NodeId, new: Init) -> Result<()> {
        let index = id.index();
        match self.nodes.get_mut(index).map(|n| &mut n.kind) {
            Some(NodeKind::Param { init, .. }) => {
                *init = new;
                Ok(())
            }
            _ => Err(Error::UnknownNode { index }),
        }
    }

    /// Appends op `op` over `inputs`, checking the inputs exist and their shapes fit.
    pub fn push_op(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        self.push_op_in::<{ OpSet::MAX }>(op, inputs)
    }

    /// [`Graph::push_op`] in a build that links only the shape rules of the ops in `OPS`.
    pub(crate) fn push_op_in<const OPS: OpSet>(&mut self, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        if inputs.len() > MAX_INPUTS {
            return Err(Error::InputCount { op: op.name(), expected: "at most 5", got: inputs.len() });
        }
        let mut shapes = [Shape::default(); MAX_INPUTS];
        let mut requires_grad = false;
        for (i, &id) in inputs.iter().enumerate() {
            let node = self.node(id)?;
            shapes[i] = node.shape;
            requires_grad |= node.requires_grad;
            if inputs[..i].contains(&id) {
                return Err(Error::DuplicateInput { op: op.name() });
            }
        }
        let shape = op.output_shape_in::<OPS>(&shapes[..inputs.len()])?;
        let mut ids = [NodeId(0); MAX_INPUTS];
        ids[..inputs.len()].copy_from_slice(inputs);
        self.push(Node { kind: NodeKind::Op(op), inputs: ids, n_inputs: inputs.len() as u8, shape, requires_grad })
    }

    /// Removes every node.
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.params_len = 0;
    }

    /// Runs `build`, and if it fails removes every node it added: a failed builder call leaves
    /// the graph as it was.
    pub(crate) fn atomically(&mut self, build: impl FnOnce(&mut Self) -> Result<NodeId>) -> Result<NodeId> {
        let (len, params_len) = (self.nodes.len(), self.params_len);
        let result = build(self);
        if result.is_err() {
            self.nodes.truncate(len);
            self.params_len = params_len;
        }
        result
    }

    /// Fills `params` (length [`Graph::params_len`]) with every parameter's initializer.
    /// Each parameter draws from its own stream keyed by `seed` and its node index, so a run
    /// repeats exactly.
    pub fn init_params(&self, params: &mut [f32], seed: u64) -> Result<()> {
        if params.len() != self.params_len {
            return Err(Error::BufferLength { what: "parameters", needed: self.params_len, got: params.len() });
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if let NodeKind::Param { init, offset, .. } = node.kind {
                let mut rng = Rng::new(seed ^ crate::rng::mix64(i as u64 + 1));
                init.fill(node.shape, &mut rng, &mut params[offset..offset + node.shape.numel()]);
            }
        }
        Ok(())
    }
}
