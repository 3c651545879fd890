//! Graphs as bytes: the host builds a model's graph once and a firmware embeds it, so the device
//! decodes neither a spec nor runs a layer builder. Decoding rebuilds the graph node by node
//! through the same checks as building it (inputs, shapes, parameter offsets), so hostile bytes
//! get a typed error and a decoded graph is one `Graph` could have built.
//!
//! ```text
//! version u8 (1)   node count (varint)   per node: kind (postcard), inputs (u16 list), dims (u32 list)
//! ```

use crate::graph::MAX_INPUTS;
use crate::ops::OpSet;
use crate::shape::MAX_RANK;
use crate::{Error, Graph, NodeKind, Result};
use serde::{Deserialize, Serialize};

const VERSION: u8 = 1;

/// One node as stored.
#[derive(Serialize, Deserialize)]
struct NodeRecord {
    kind: NodeKind,
    inputs: heapless::Vec<u16, MAX_INPUTS>,
    dims: heapless::Vec<u32, MAX_RANK>,
}

fn bad(what: &'static str) -> Error {
    Error::GraphBytes { what }
}

impl<const N: usize> Graph<N> {
    fn record(&self, index: usize) -> NodeRecord {
        let node = &self.nodes()[index];
        NodeRecord {
            kind: node.kind,
            inputs: node.inputs().iter().map(|k| k.index() as u16).collect(),
            dims: node.shape.dims().iter().map(|&d| d as u32).collect(),
        }
    }

    /// Bytes of [`Graph::to_bytes`]'s encoding.
    pub fn encoded_len(&self) -> Result<usize> {
        let mut len = 1 + postcard::experimental::serialized_size(&(self.nodes().len() as u32)).map_err(|_| bad("node count"))?;
        for i in 0..self.nodes().len() {
            len += postcard::experimental::serialized_size(&self.record(i)).map_err(|_| bad("node"))?;
        }
        Ok(len)
    }

    /// Writes the graph into `out` (at least [`Graph::encoded_len`] bytes); returns the bytes
    /// written.
    pub fn to_bytes(&self, out: &mut [u8]) -> Result<usize> {
        let got = out.len();
        let full = || Error::BufferLength { what: "graph bytes", needed: self.encoded_len().unwrap_or(0), got };
        let (first, mut rest) = out.split_first_mut().ok_or_else(full)?;
        *first = VERSION;
        let mut at = 1;
        let count = postcard::to_slice(&(self.nodes().len() as u32), rest).map_err(|_| full())?.len();
        (at, rest) = (at + count, &mut rest[count..]);
        for i in 0..self.nodes().len() {
            let written = postcard::to_slice(&self.record(i), rest).map_err(|_| full())?.len();
            (at, rest) = (at + written, &mut rest[written..]);
        }
        Ok(at)
    }

    /// Reads a graph written by [`Graph::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Self::from_bytes_in::<{ OpSet::MAX }>(bytes)
    }

    /// [`Graph::from_bytes`] in a build that links only the shape rules of the ops in `OPS`
    /// (a firmware's model's ops); a graph with another op is refused.
    pub fn from_bytes_in<const OPS: OpSet>(bytes: &[u8]) -> Result<Self> {
        let mut g = Graph::new();
        g.read_bytes_in::<OPS>(bytes)?;
        Ok(g)
    }

    /// [`Graph::from_bytes_in`] into `self` (emptied first, and left empty on an error): a
    /// device decodes into the graph it already holds instead of moving a new one through its
    /// stack.
    pub fn read_bytes_in<const OPS: OpSet>(&mut self, bytes: &[u8]) -> Result<()> {
        self.clear();
        let result = self.push_records::<OPS>(bytes);
        if result.is_err() {
            self.clear();
        }
        result
    }

    fn push_records<const OPS: OpSet>(&mut self, bytes: &[u8]) -> Result<()> {
        let (&version, rest) = bytes.split_first().ok_or(bad("version"))?;
        if version != VERSION {
            return Err(bad("version (expected 1)"));
        }
        let (count, mut rest) = postcard::take_from_bytes::<u32>(rest).map_err(|_| bad("node count"))?;
        if count as usize > N {
            return Err(Error::CapacityExceeded { what: "graph", capacity: N });
        }
        for _ in 0..count {
            let (record, tail) = postcard::take_from_bytes::<NodeRecord>(rest).map_err(|_| bad("node"))?;
            rest = tail;
            self.push_record::<OPS>(&record)?;
        }
        if !rest.is_empty() {
            return Err(bad("length (trailing bytes)"));
        }
        Ok(())
    }

    /// Rebuilds one stored node with the checks of building it, then compares.
    fn push_record<const OPS: OpSet>(&mut self, r: &NodeRecord) -> Result<()> {
        let mut dims = [0usize; MAX_RANK];
        for (d, &v) in dims.iter_mut().zip(&r.dims) {
            *d = usize::try_from(v).map_err(|_| bad("dimension"))?;
        }
        let dims = &dims[..r.dims.len()];
        let mut inputs = [crate::NodeId(0); MAX_INPUTS];
        for (slot, &k) in inputs.iter_mut().zip(&r.inputs) {
            *slot = self.node_id(k as usize).map_err(|_| bad("input (not an earlier node)"))?;
        }
        let id = match r.kind {
            NodeKind::Input { requires_grad } if r.inputs.is_empty() => self.input_node(dims, requires_grad)?,
            NodeKind::Param { init, trainable, offset } if r.inputs.is_empty() && offset == self.params_len() => {
                self.param_node(dims, init, trainable)?
            }
            NodeKind::Op(op) => self.push_op_in::<OPS>(op, &inputs[..r.inputs.len()])?,
            _ => return Err(bad("node kind, inputs or parameter offset")),
        };
        if self.shape(id)?.dims() != dims {
            return Err(bad("shape (not the one its op gives)"));
        }
        Ok(())
    }
}
