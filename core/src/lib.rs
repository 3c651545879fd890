//! mote-core: a `no_std` static graph of tensor ops, planned ahead of time into one arena.
//!
//! Build a [`Graph`], derive a [`Plan`] (inference, or a whole training step: forward, loss,
//! backward, optimizer update), size the buffers from the plan, and run it with an
//! [`Executor`]. Running allocates nothing; every offset was fixed when the plan was built.
#![cfg_attr(not(test), no_std)]

mod error;
mod exec;
mod fusion;
mod graph;
mod graph_bytes;
mod init;
pub mod model;
pub mod ops;
mod optim;
mod plan;
pub mod quant;
mod rng;
mod shape;

pub use error::{Error, Result};
pub use exec::{f32_arena_from_bytes, Executor};
pub use graph::{Graph, Node, NodeId, NodeKind, MAX_INPUTS};
pub use init::Init;
pub use mote_kernels::argmax_f32;
pub use mote_kernels::dispatch::Isa;
pub use optim::Optimizer;
pub use plan::{MemoryReport, Mode, Plan, Step};
pub use rng::Rng;
pub use shape::Shape;

/// Bytes per stored value (everything is f32 for now).
pub const BYTES_PER_VALUE: usize = core::mem::size_of::<f32>();
