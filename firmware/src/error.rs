//! The firmware's error: the core's, the model file's, the spec's and the link's errors as they
//! are, so the log names what went wrong (`defmt::Format`), not a fixed string.

use crate::link::LinkError;
use mote_core::model::{ModelError, SpecError};

/// Why a binary stopped.
#[derive(Debug, defmt::Format)]
pub enum FirmwareError {
    /// The core refused a graph, plan or run.
    Core(mote_core::Error),
    /// A model file (embedded, or received) does not read.
    Model(ModelError),
    /// A model's spec does not build this firmware's graph.
    Spec(SpecError),
    /// The host link failed.
    Link(LinkError),
    /// A command-line argument the binary cannot read: the argument's key.
    Argument(&'static str),
    /// Training met a non-finite loss at this step (a learning rate too large): nothing was
    /// sent back.
    Diverged { step: u32, loss: f32 },
    /// A trained weight is not finite (at this index): nothing was sent back.
    NonFiniteWeight { index: u32 },
    /// A received model file larger than the heap left for it.
    ModelTooLarge { bytes: usize, heap_free: usize },
    /// The int8 model does not load or run.
    Quant(mote_core::quant::QuantError),
    /// An int8 kernel's bytes differ from the reference's (`kcheck`): the check and its case.
    KernelMismatch { check: &'static str, case: u32 },
}

impl From<mote_core::quant::QuantError> for FirmwareError {
    fn from(e: mote_core::quant::QuantError) -> Self {
        FirmwareError::Quant(e)
    }
}

impl From<mote_core::Error> for FirmwareError {
    fn from(e: mote_core::Error) -> Self {
        FirmwareError::Core(e)
    }
}

impl From<ModelError> for FirmwareError {
    fn from(e: ModelError) -> Self {
        FirmwareError::Model(e)
    }
}

impl From<SpecError> for FirmwareError {
    fn from(e: SpecError) -> Self {
        FirmwareError::Spec(e)
    }
}

impl From<LinkError> for FirmwareError {
    fn from(e: LinkError) -> Self {
        FirmwareError::Link(e)
    }
}
