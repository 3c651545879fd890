//! Benchmark: the exported model's plans against their baselines in the same run, on the
//! emulated core — inference (fused, in place, the core's kernels) against the out-of-place
//! unfused plan run with the reference kernels, and a training step (fused forward and
//! backward, updates inside the backward) against the out-of-place unfused one, also with the
//! reference kernels. Reports instructions and arena bytes of each, and checks the plans
//! agree: the same logits, and the same weights after the same training steps.
//!
//! Arguments (semihosting command line): `steps=N` (training steps per plan, default 20).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use mote_core::{Executor, Graph, Plan, BYTES_PER_VALUE};
use mote_firmware::error::FirmwareError;
use mote_firmware::link::{HostLink, SemihostingLink, Split};
use mote_firmware::model::ModelNodes;
use mote_firmware::sizes::{BENCH_ARENA, INFER_PLAN, INFER_REF_PLAN, NODES, OPTIMIZER, PARAMS, STEPS, TRAIN_PLAN, TRAIN_REF_PLAN};
use mote_firmware::{board, model};
use mote_kernels::dispatch::{self, Isa};

static mut PARAMS_RAM: [f32; PARAMS] = [0.0; PARAMS];
static mut OPTIMIZER_STATE: [f32; OPTIMIZER] = [0.0; OPTIMIZER];
static mut ARENA: [f32; BENCH_ARENA] = [0.0; BENCH_ARENA];

/// Digits classified per inference plan.
const INFERENCES: usize = 20;

#[entry]
fn main() -> ! {
    board::run_main("bench", run)
}

/// Instructions per run of `plan`, and a fingerprint of what it computed (the logits of every
/// digit, or the weights after training).
struct Measured {
    insns: u64,
    arena_bytes: usize,
    result_hash: u32,
}

fn steps_argument() -> Result<usize, FirmwareError> {
    let args = semihosting::experimental::env::args::<64>().map_err(|_| FirmwareError::Argument("command line"))?;
    for arg in (&args).skip(1) {
        let arg = arg.map_err(|_| FirmwareError::Argument("command line (UTF-8)"))?;
        if let Some(n) = arg.strip_prefix("steps=") {
            return n.parse().map_err(|_| FirmwareError::Argument("steps="));
        }
    }
    Ok(20)
}

/// FNV-1a over the bits of `values`, continuing from `h`.
fn hash(h: u32, values: &[f32]) -> u32 {
    values.iter().flat_map(|v| v.to_bits().to_le_bytes()).fold(h, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193))
}

fn run() -> Result<(), FirmwareError> {
    let steps = steps_argument()?;
    let mut g = Graph::<NODES>::new();
    let built = model::graph(&mut g)?;
    let infer = infer_with(&g, &built, &model::plan(INFER_PLAN)?)?;
    let train = train_with(&g, &built, &model::plan(TRAIN_PLAN)?, steps)?;
    // The baselines with the reference kernels (their scratch needs are within the plans').
    let kernels = |isa: Isa| dispatch::select(isa).map_err(|_| FirmwareError::Argument("kernel set"));
    kernels(Isa::Reference)?;
    let infer_ref = infer_with(&g, &built, &model::plan(INFER_REF_PLAN)?)?;
    let train_ref = train_with(&g, &built, &model::plan(TRAIN_REF_PLAN)?, steps)?;
    kernels(Isa::built_in())?;
    defmt::println!(
        "result infer_insns={=u64} infer_ref_insns={=u64} infer_arena_bytes={=u32} infer_ref_arena_bytes={=u32} same_logits={=bool} train_insns={=u64} train_ref_insns={=u64} train_arena_bytes={=u32} train_ref_arena_bytes={=u32} same_weights={=bool} steps={=u32} inferences={=u32}",
        infer.insns,
        infer_ref.insns,
        infer.arena_bytes as u32,
        infer_ref.arena_bytes as u32,
        infer.result_hash == infer_ref.result_hash,
        train.insns,
        train_ref.insns,
        train.arena_bytes as u32,
        train_ref.arena_bytes as u32,
        train.result_hash == train_ref.result_hash,
        steps as u32,
        INFERENCES as u32
    );
    Ok(())
}

/// Classifies the first test digits with `plan`, weights in flash.
#[inline(never)]
fn infer_with(g: &Graph<NODES>, built: &ModelNodes, plan: &Plan<NODES, STEPS>) -> Result<Measured, FirmwareError> {
    let params = model::params()?;
    // SAFETY: the only reference to ARENA while this function runs (single-threaded main).
    let arena = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
    let mut ex = Executor::read_only(g, plan, params, arena)?;
    let mut link = SemihostingLink::default();
    link.open(Split::Test)?;
    let (mut insns, mut h) = (0u64, 0x811c_9dc5u32);
    for _ in 0..INFERENCES {
        link.next_sample(ex.input_mut(built.x)?)?;
        let start = board::instructions();
        ex.run_inference()?;
        insns += board::instructions() - start;
        h = hash(h, ex.value(built.output)?);
    }
    Ok(Measured { insns: insns / INFERENCES as u64, arena_bytes: plan.arena_len() * BYTES_PER_VALUE, result_hash: h })
}

/// Fine-tunes the flash weights for `steps` training digits with `plan`.
#[inline(never)]
fn train_with(g: &Graph<NODES>, built: &ModelNodes, plan: &Plan<NODES, STEPS>, steps: usize) -> Result<Measured, FirmwareError> {
    // SAFETY: the only references to these statics while this function runs.
    let (params, state, arena) = unsafe {
        (&mut *core::ptr::addr_of_mut!(PARAMS_RAM), &mut *core::ptr::addr_of_mut!(OPTIMIZER_STATE), &mut *core::ptr::addr_of_mut!(ARENA))
    };
    params.copy_from_slice(model::params()?);
    state.fill(0.0);
    let mut ex = Executor::new(g, plan, params, state, arena)?;
    let mut link = SemihostingLink::default();
    link.open(Split::Train)?;
    let mut insns = 0u64;
    for _ in 0..steps {
        let label = link.next_sample(ex.input_mut(built.x)?)?;
        ex.set_input(built.target, &[label as f32])?;
        let start = board::instructions();
        ex.run()?;
        insns += board::instructions() - start;
    }
    let result_hash = hash(0x811c_9dc5, ex.params());
    Ok(Measured { insns: insns / steps.max(1) as u64, arena_bytes: plan.arena_len() * BYTES_PER_VALUE, result_hash })
}
