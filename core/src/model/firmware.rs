//! The plans a firmware build makes for a model, in one place: its `build.rs` embeds them, and
//! `mote export` sizes the firmware's memory from the same ones before anything is built.

use super::BuiltModel;
use crate::{Graph, Isa, Mode, Optimizer, Plan, Result};

/// Graph capacity (nodes) of the firmware: `mote export` refuses a model that does not fit.
pub const FIRMWARE_NODES: usize = 32;
/// Plan capacity (steps) of the firmware.
pub const FIRMWARE_STEPS: usize = 64;

/// A plan of the firmware's capacities.
pub type FirmwarePlan = Plan<FIRMWARE_NODES, FIRMWARE_STEPS>;

/// The firmware's training recipe: batch 1, SGD with momentum (the device may change these
/// settings; the optimizer kind and state layout are fixed by the plan).
pub fn firmware_optimizer() -> Optimizer {
    Optimizer::momentum(0.003, 0.9)
}

/// The firmware's four plans of a model built at batch 1.
pub struct FirmwarePlans {
    /// Inference (`infer`, `load`).
    pub infer: FirmwarePlan,
    /// A training step (`train`).
    pub train: FirmwarePlan,
    /// The same inference, every tensor out of place and nothing fused (`bench`'s baseline).
    pub infer_ref: FirmwarePlan,
    /// The same training step out of place, unfused, no updates in the backward.
    pub train_ref: FirmwarePlan,
}

impl FirmwarePlans {
    /// Plans `built` (in `g`) for the kernels of `isa`.
    pub fn new(g: &Graph<FIRMWARE_NODES>, built: &BuiltModel, isa: Isa) -> Result<FirmwarePlans> {
        let opt = Some(firmware_optimizer());
        Ok(FirmwarePlans {
            infer: FirmwarePlan::inference_for(isa, g, &[built.output], Mode::Eval)?,
            train: FirmwarePlan::training_for(isa, g, built.loss, &[], opt)?,
            infer_ref: FirmwarePlan::inference_out_of_place(g, &[built.output], Mode::Eval)?,
            train_ref: FirmwarePlan::training_out_of_place(g, built.loss, &[], opt)?,
        })
    }

    /// Values of the largest of the four arenas (the benchmark binary runs all four).
    pub fn bench_arena_len(&self) -> usize {
        [&self.infer, &self.train, &self.infer_ref, &self.train_ref].iter().map(|p| p.arena_len()).max().unwrap_or(0)
    }
}
