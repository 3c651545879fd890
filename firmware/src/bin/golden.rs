//! Runs every op's golden case (forward and backward) on the device and sends the results
//! to the host, which compares them bit for bit with its own. First it calibrates the
//! instruction counter on a loop of known length.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use mote_firmware::board;
use mote_firmware::error::FirmwareError;
use mote_firmware::link::{HostLink, SemihostingLink, Upload};

#[entry]
fn main() -> ! {
    board::run_main("golden", run)
}

fn run() -> Result<(), FirmwareError> {
    // 1,000,000 iterations of `subs; bne`: 2,000,000 instructions.
    let start = board::instructions();
    // SAFETY: a countdown in one register; touches no memory and no stack.
    unsafe { core::arch::asm!("1:", "subs {0}, {0}, #1", "bne 1b", inout(reg) 1_000_000u32 => _, options(nomem, nostack)) };
    let calibration = board::instructions() - start;

    let mut link = SemihostingLink::default();
    link.begin_upload(Upload::Golden)?;
    // The first link failure, if any: the cases run on, the vectors stop being sent.
    let mut sent = Ok(());
    let cases = mote_golden::run_all(&mut |name, values| {
        let (header, len) = mote_golden::encode_header(name, values.len());
        sent = sent.and_then(|()| link.upload(&header[..len]));
        for v in values {
            sent = sent.and_then(|()| link.upload(&v.to_le_bytes()));
        }
    });
    let vectors = cases?;
    sent?;
    defmt::println!("result golden_vectors={=u32} calibration_insns={=u64}", vectors as u32, calibration);
    Ok(())
}
