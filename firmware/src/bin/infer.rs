//! Classifies the MNIST test digits with the exported model: weights in place from flash, a
//! static arena sized from the plan, one sample in RAM at a time. Reports accuracy, memory and
//! instructions per inference; sends the predictions back to the host.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use mote_core::Graph;
use mote_firmware::error::FirmwareError;
use mote_firmware::link::SemihostingLink;
use mote_firmware::sizes::{INFER_ARENA, NODES, OPS};
use mote_firmware::{board, model};

static mut ARENA: [f32; INFER_ARENA] = [0.0; INFER_ARENA];

#[entry]
fn main() -> ! {
    board::run_main("infer", run)
}

fn run() -> Result<(), FirmwareError> {
    let params = model::params()?;
    let mut g = Graph::<NODES>::new();
    let built = model::graph(&mut g)?;
    let plan = model::inference_plan()?;
    // SAFETY: the only reference to ARENA, taken once in the single-threaded main.
    let arena = unsafe { &mut *core::ptr::addr_of_mut!(ARENA) };
    let c = model::classify_test_digits::<OPS>(&g, &plan, &built, params, arena, &mut SemihostingLink::default())?;
    let ram = board::static_ram_bytes() + board::stack_high_water_bytes();
    defmt::println!(
        "result accuracy={=f32} samples={=u32} arena_bytes={=u32} ram_bytes={=u32} static_bytes={=u32} stack_bytes={=u32} flash_bytes={=u32} insns_per_inference={=u64}",
        c.correct as f32 / c.samples.max(1) as f32,
        c.samples as u32,
        (INFER_ARENA * 4) as u32,
        ram as u32,
        board::static_ram_bytes() as u32,
        board::stack_high_water_bytes() as u32,
        board::flash_bytes() as u32,
        c.insns / c.samples.max(1) as u64
    );
    Ok(())
}
