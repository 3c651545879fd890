//! Runs the exported int8 model (`model/model-int8.mote`, constants in place from flash, one
//! static arena of the planned size) on the inputs the host wrote to
//! `target/qemu/int8-inputs.bin` (the model's input size each, int8), writes every output to
//! `target/qemu/int8-outputs.bin` for the host to compare bit for bit, and reports
//! instructions per inference, arena, RAM and flash.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use mote_core::model::check_quant_model;
use mote_core::quant::QuantModel;
use mote_firmware::board;
use mote_firmware::error::FirmwareError;
use mote_firmware::link::LinkError;
use mote_firmware::sizes::{INT8_ARENA, INT8_MODEL};
use semihosting::fs::File;
use semihosting::io::{Read, Write};

/// The arena, 4-byte aligned: the planner aligns every buffer's offset to 4 for word loads.
#[repr(C, align(4))]
struct Arena([i8; INT8_ARENA]);

static mut ARENA: Arena = Arena([0; INT8_ARENA]);

#[entry]
fn main() -> ! {
    board::run_main("qinfer", run)
}

fn run() -> Result<(), FirmwareError> {
    let parts = check_quant_model(&INT8_MODEL.0)?;
    let model = QuantModel::new(parts.spec_bytes, parts.param_bytes)?;
    defmt::println!("stack after loading: {=u32} bytes", board::stack_high_water_bytes() as u32);
    // SAFETY: the only reference to ARENA, taken once in the single-threaded main.
    let arena = unsafe { &mut (*core::ptr::addr_of_mut!(ARENA)).0 };
    let mut inputs = File::open(c"target/qemu/int8-inputs.bin").map_err(|_| LinkError::Open("int8-inputs.bin"))?;
    let mut outputs = File::create(c"target/qemu/int8-outputs.bin").map_err(|_| LinkError::Open("int8-outputs.bin"))?;
    let (mut samples, mut insns) = (0u64, 0u64);
    // Each sample is read straight into the arena's input tensor.
    while read_full(&mut inputs, unsigned(model.input_mut(arena)?))? {
        let start = board::instructions();
        let mut last = start;
        let mut steps = [0u32; 64];
        let y = model.run_loaded_each(arena, |k, _| {
            let now = board::instructions();
            if let Some(s) = steps.get_mut(k) {
                *s = (now - last) as u32;
            }
            last = now;
        })?;
        insns += board::instructions() - start;
        if samples == 0 {
            // Where the first inference's instructions go, step by step.
            for (k, s) in steps[..model.step_count().min(64)].iter().enumerate() {
                defmt::println!("step {=usize}: {=u32} instructions", k, s);
            }
        }
        // SAFETY: as above.
        let bytes = unsafe { core::slice::from_raw_parts(y.as_ptr().cast::<u8>(), y.len()) };
        outputs.write_all(bytes).map_err(|_| LinkError::Write("int8-outputs.bin"))?;
        samples += 1;
    }
    let ram = board::static_ram_bytes() + board::stack_high_water_bytes();
    defmt::println!(
        "result samples={=u64} arena_bytes={=u32} ram_bytes={=u32} static_bytes={=u32} stack_bytes={=u32} flash_bytes={=u32} model_bytes={=u32} insns_per_inference={=u64}",
        samples,
        model.arena_len() as u32,
        ram as u32,
        board::static_ram_bytes() as u32,
        board::stack_high_water_bytes() as u32,
        board::flash_bytes() as u32,
        INT8_MODEL.0.len() as u32,
        insns / samples.max(1)
    );
    Ok(())
}

/// Bytes as u8 (the file's).
fn unsigned(values: &mut [i8]) -> &mut [u8] {
    // SAFETY: u8 and i8 have the same size, alignment and validity.
    unsafe { core::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), values.len()) }
}

/// Fills `buf` from `file`: `true`, or `false` at the end of the file (a partial sample is an
/// error).
fn read_full(file: &mut File, buf: &mut [u8]) -> Result<bool, LinkError> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(LinkError::Read("int8-inputs.bin (a partial sample)")),
            Ok(n) => got += n,
            Err(_) => return Err(LinkError::Read("int8-inputs.bin")),
        }
    }
    Ok(true)
}
