//! Board support: instruction counting from SysTick, stack painting, RAM and flash usage from
//! the linker symbols, and exits that end QEMU with a status (non-zero on panic or fault).

use crate::error::FirmwareError;
use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{exception, ExceptionFrame};

/// Instructions per SysTick tick, as a fraction: under `-icount shift=0` QEMU runs one
/// instruction per virtual nanosecond; the mps2-an386 SysTick counts at 25 MHz (one tick per
/// 40 ns), the mps3-an547's (Cortex-M55) at 32 MHz (31.25 ns). Both checked by `golden`'s
/// calibration loop.
#[cfg(not(m55))]
pub const INSNS_PER_TICK: (u64, u64) = (40, 1);
#[cfg(m55)]
pub const INSNS_PER_TICK: (u64, u64) = (125, 4);
const RELOAD: u32 = 0x00FF_FFFF;
const PAINT: u32 = 0xC0DE_CAFE;
const RAM_ORIGIN: usize = 0x2000_0000;
const FLASH_ORIGIN: usize = 0x0000_0000;

static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc {=u32:#x}", frame.pc());
    exit(3)
}

#[defmt::panic_handler]
fn defmt_panic() -> ! {
    exit(101)
}

/// Logs where the panic happened (file and line, not the message: formatting it would link
/// `core::fmt`, several KB of flash, for a path that should never run).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    match info.location() {
        Some(at) => defmt::error!("panic at {=str}:{=u32}", at.file(), at.line()),
        None => defmt::error!("panic"),
    }
    exit(101)
}

/// The body of every binary's `main`: initializes the board, runs `body`, and exits with 0,
/// or logs the error and exits with 1.
pub fn run_main(name: &str, body: fn() -> Result<(), FirmwareError>) -> ! {
    init();
    match body() {
        Ok(()) => exit(0),
        Err(e) => {
            defmt::error!("{=str} failed: {}", name, e);
            exit(1)
        }
    }
}

/// Ends the program (and QEMU) with `code`.
pub fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

extern "C" {
    static mut __sheap: u32;
    static _stack_start: u32;
    static __sidata: u32;
    static __sdata: u32;
    static __edata: u32;
}

/// Paints the free RAM between the static data and the stack, then starts SysTick. Call
/// first thing in `main`.
pub fn init() {
    // SAFETY: writes only words between the end of static data and 256 bytes below the
    // current stack pointer: memory nothing uses yet.
    unsafe {
        let mut p = core::ptr::addr_of_mut!(__sheap);
        let limit = cortex_m::register::msp::read() as usize - 256;
        while (p as usize) < limit {
            p.write_volatile(PAINT);
            p = p.add(1);
        }
    }
    // SAFETY: called once at start-up, before anything else owns the peripherals.
    let mut p = unsafe { cortex_m::Peripherals::steal() };
    p.SYST.set_clock_source(SystClkSource::Core);
    p.SYST.set_reload(RELOAD);
    p.SYST.clear_current();
    p.SYST.enable_interrupt();
    p.SYST.enable_counter();
    // The cleared counter reads 0 until its first tick loads RELOAD; start counting from there.
    while cortex_m::peripheral::SYST::get_current() == 0 {}
}

/// Instructions executed since [`init`] (SysTick ticks × [`INSNS_PER_TICK`]).
///
/// A wrap whose interrupt is still pending (QEMU delivers interrupts between translation
/// blocks) is counted from the pending bit; a read that straddles a wrap is retried.
pub fn instructions() -> u64 {
    use cortex_m::peripheral::{SCB, SYST};
    loop {
        let before = WRAPS.load(Ordering::Acquire);
        let pending_before = SCB::is_pendst_pending();
        let current = SYST::get_current();
        let pending_after = SCB::is_pendst_pending();
        if WRAPS.load(Ordering::Acquire) == before && pending_before == pending_after {
            let wraps = before as u64 + pending_after as u64;
            let ticks = wraps * (RELOAD as u64 + 1) + (RELOAD - current) as u64;
            return ticks * INSNS_PER_TICK.0 / INSNS_PER_TICK.1;
        }
    }
}

/// Bytes of static RAM (.data, .bss, .uninit): everything below the heap start.
pub fn static_ram_bytes() -> usize {
    core::ptr::addr_of!(__sheap) as usize - RAM_ORIGIN
}

/// Deepest stack use so far: the distance from the stack top to the lowest word that no
/// longer holds the paint.
pub fn stack_high_water_bytes() -> usize {
    // SAFETY: reads words of RAM between the heap start and the stack top, all mapped.
    unsafe {
        let top = core::ptr::addr_of!(_stack_start) as usize;
        let mut p = core::ptr::addr_of!(__sheap);
        while (p as usize) < top && p.read_volatile() == PAINT {
            p = p.add(1);
        }
        top - p as usize
    }
}

/// Bytes of flash used: code, read-only data and the initial values of .data.
pub fn flash_bytes() -> usize {
    let data = core::ptr::addr_of!(__edata) as usize - core::ptr::addr_of!(__sdata) as usize;
    core::ptr::addr_of!(__sidata) as usize + data - FLASH_ORIGIN
}
