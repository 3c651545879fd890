//! Classifies the MNIST test digits with a model received over the host link at run time,
//! not the one in flash: a model update without reflashing. This is where a heap is really
//! needed — the model's size, and so its parameters' and its arena's, is unknown when the
//! firmware is built — so this binary alone has one (embedded-alloc), and reports its
//! high-water mark. The graph still has a fixed capacity (`NODES`); the plan is made here.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use core::mem::MaybeUninit;
use cortex_m_rt::entry;
use mote_core::model::{build_from_postcard, check_model, model_len_from_header, BuiltModel, ModelError, HEADER_LEN};
use mote_core::ops::OpSet;
use mote_core::{Graph, Mode, Plan, BYTES_PER_VALUE};
use mote_firmware::error::FirmwareError;
use mote_firmware::heap::PeakHeap;
use mote_firmware::link::{Download, HostLink, SemihostingLink};
use mote_firmware::sizes::{NODES, STEPS};
use mote_firmware::{board, model};

/// Bytes of RAM given to the heap: room for a model file and its arena.
const HEAP_BYTES: usize = 96 * 1024;

#[global_allocator]
static HEAP: PeakHeap = PeakHeap::empty();

#[entry]
fn main() -> ! {
    static mut HEAP_MEMORY: [MaybeUninit<u8>; HEAP_BYTES] = [MaybeUninit::uninit(); HEAP_BYTES];
    // SAFETY: the first statement of main, before anything allocates; `HEAP_MEMORY` is the
    // entry's own static, handed out once as 'static by cortex-m-rt.
    unsafe { HEAP.init(HEAP_MEMORY) };
    board::run_main("load", run)
}

fn run() -> Result<(), FirmwareError> {
    let mut link = SemihostingLink::default();
    link.begin_download(Download::Model)?;
    let mut header = [0u8; HEADER_LEN];
    link.download(&mut header)?;
    let len = model_len_from_header(&header)?;
    // Refused, not a failed allocation (which would abort), when larger than the heap left.
    if len > HEAP.free_bytes() {
        return Err(FirmwareError::ModelTooLarge { bytes: len, heap_free: HEAP.free_bytes() });
    }
    // u32 words, so the parameters (at byte 20) are aligned for f32.
    let mut words = vec![0u32; len.div_ceil(4)];
    // SAFETY: the words' memory viewed as the `len` bytes it holds (u8 needs no alignment,
    // any bit pattern is valid); `words` is not used otherwise while `bytes` lives.
    let bytes = unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, len) };
    bytes[..HEADER_LEN].copy_from_slice(&header);
    link.download(&mut bytes[HEADER_LEN..])?;
    let parts = check_model(bytes)?;
    // SAFETY: any 4 bytes are a valid f32; `align_to` returns only the aligned middle.
    let (head, params, tail) = unsafe { parts.param_bytes.align_to::<f32>() };
    if !head.is_empty() || !tail.is_empty() {
        return Err(ModelError::Truncated { needed: parts.param_bytes.len(), got: params.len() * 4 }.into());
    }
    let mut g = Graph::<NODES>::new();
    let built = build_from_postcard(parts.spec_bytes, &mut g, 1)?;
    let plan = plan(&g, &built)?;
    let mut arena = vec![0.0f32; plan.arena_len()];
    // A model received at run time may hold any op: every op's forward is linked.
    let c = model::classify_test_digits::<{ OpSet::MAX }>(&g, &plan, &(&built).into(), params, &mut arena, &mut link)?;
    let stack = board::stack_high_water_bytes();
    defmt::println!(
        "result accuracy={=f32} samples={=u32} model_bytes={=u32} arena_bytes={=u32} heap_peak_bytes={=u32} heap_bytes={=u32} ram_bytes={=u32} static_bytes={=u32} stack_bytes={=u32} insns_per_inference={=u64}",
        c.correct as f32 / c.samples.max(1) as f32,
        c.samples as u32,
        len as u32,
        (plan.arena_len() * BYTES_PER_VALUE) as u32,
        HEAP.peak_bytes() as u32,
        HEAP_BYTES as u32,
        (board::static_ram_bytes() + stack) as u32,
        board::static_ram_bytes() as u32,
        stack as u32,
        c.insns / c.samples.max(1) as u64
    );
    Ok(())
}

/// Plans inference for the received model (on the device: it was unknown at build time).
#[inline(never)]
fn plan(g: &Graph<NODES>, built: &BuiltModel) -> Result<Plan<NODES, STEPS>, FirmwareError> {
    Plan::inference(g, &[built.output], Mode::Eval).map_err(FirmwareError::from)
}
