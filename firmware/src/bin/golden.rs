//! Runs every op's golden case (forward and backward) on the device and sends the results
//! to the host, which compares them bit for bit with its own. First it calibrates the
//! instruction counter on a loop of known length.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use mote_firmware::board;
use mote_firmware::link::{HostLink, SemihostingLink, Upload};

#[entry]
fn main() -> ! {
    board::init();
    // 1,000,000 iterations of `subs; bne`: 2,000,000 instructions.
    let start = board::instructions();
    // SAFETY: a countdown in one register; touches no memory and no stack.
    unsafe { core::arch::asm!("1:", "subs {0}, {0}, #1", "bne 1b", inout(reg) 1_000_000u32 => _, options(nomem, nostack)) };
    let calibration = board::instructions() - start;
    let mut link = SemihostingLink::default();
    if link.begin_upload(Upload::Golden).is_err() {
        defmt::error!("cannot open the golden output");
        board::exit(1);
    }
    let mut failed = false;
    let result = mote_golden::run_all(&mut |name, values| {
        let (header, len) = mote_golden::encode_header(name, values.len());
        failed |= link.upload(&header[..len]).is_err();
        for v in values {
            failed |= link.upload(&v.to_le_bytes()).is_err();
        }
    });
    match result {
        Ok(n) if !failed => {
            defmt::println!("result golden_vectors={=u32} calibration_insns={=u64}", n as u32, calibration);
            board::exit(0)
        }
        _ => {
            defmt::error!("golden cases failed");
            board::exit(1)
        }
    }
}
