//! Classifies the MNIST test digits with the exported model: weights in place from flash, a
//! static arena sized from the plan, one sample in RAM at a time. Reports accuracy, memory and
//! instructions per inference; sends the predictions back to the host.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use mote_core::model::BuiltModel;
use mote_core::{Executor, Graph, Plan};
use mote_firmware::link::{HostLink, SemihostingLink, Split, Upload};
use mote_firmware::sizes::{INFER_ARENA, NODES, STEPS};
use mote_firmware::{board, model};

static mut ARENA: [f32; INFER_ARENA] = [0.0; INFER_ARENA];

#[entry]
fn main() -> ! {
    board::run_main("infer", run)
}

fn run() -> Result<(), &'static str> {
    let params = model::params().map_err(|_| "embedded parameters are not aligned")?;
    let mut g = Graph::<NODES>::new();
    let built = model::build(&mut g, 1)?;
    let plan = model::inference_plan()?;
    let (correct, samples, insns) = classify(&g, &plan, &built, params)?;
    let ram = board::static_ram_bytes() + board::stack_high_water_bytes();
    defmt::println!(
        "result accuracy={=f32} samples={=u32} arena_bytes={=u32} ram_bytes={=u32} static_bytes={=u32} stack_bytes={=u32} flash_bytes={=u32} insns_per_inference={=u64}",
        correct as f32 / samples.max(1) as f32,
        samples as u32,
        (INFER_ARENA * 4) as u32,
        ram as u32,
        board::static_ram_bytes() as u32,
        board::stack_high_water_bytes() as u32,
        board::flash_bytes() as u32,
        insns / samples.max(1) as u64
    );
    Ok(())
}

/// Classifies the streamed test digits and sends the predictions back; returns (correct,
/// samples, instructions). Not inlined, so the executor's frame is not stacked on top of
/// the plan decoding's.
#[inline(never)]
fn classify(g: &Graph<NODES>, plan: &Plan<NODES, STEPS>, built: &BuiltModel, params: &[f32]) -> Result<(u32, usize, u64), &'static str> {
    // SAFETY: the only reference to ARENA, taken once in the single-threaded main.
    let arena = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
    let mut ex = Executor::read_only(g, plan, params, arena).map_err(|_| "the plan does not fit the model or the arena")?;
    let mut link = SemihostingLink::default();
    let samples = link.open(Split::Test).map_err(|_| "cannot open the test digits")?;
    link.begin_upload(Upload::Predictions).map_err(|_| "cannot send predictions")?;
    let (mut correct, mut insns) = (0u32, 0u64);
    for _ in 0..samples {
        let label = link.next_sample(ex.input_mut(built.x).map_err(|_| "input")?).map_err(|_| "cannot read a digit")?;
        let start = board::instructions();
        ex.run().map_err(|_| "run")?;
        insns += board::instructions() - start;
        let predicted = mote_core::argmax_f32(ex.value(built.output).map_err(|_| "output")?);
        correct += (predicted == label as usize) as u32;
        link.upload(&[predicted as u8]).map_err(|_| "cannot send a prediction")?;
    }
    Ok((correct, samples, insns))
}
