//! Runs every op's golden case (forward and backward) on the device and sends the results
//! to the host, which compares them bit for bit with its own.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use mote_firmware::board;
use mote_firmware::link::{HostLink, SemihostingLink, Upload};

#[entry]
fn main() -> ! {
    board::init();
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
            defmt::println!("result golden_vectors={=u32} insns={=u64}", n as u32, board::instructions());
            board::exit(0)
        }
        _ => {
            defmt::error!("golden cases failed");
            board::exit(1)
        }
    }
}
