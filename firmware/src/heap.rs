//! The heap, for the one binary that needs one (`load`: a model received at run time, whose
//! size the build cannot know): embedded-alloc's linked-list heap over a static buffer, with
//! its high-water mark recorded so the report says what the heap really needed.

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};
use embedded_alloc::LlffHeap;

/// A heap that remembers the most bytes it ever had in use.
pub struct PeakHeap {
    heap: LlffHeap,
    peak: AtomicUsize,
}

impl PeakHeap {
    /// An uninitialized heap: call [`PeakHeap::init`] before the first allocation.
    pub const fn empty() -> Self {
        PeakHeap { heap: LlffHeap::empty(), peak: AtomicUsize::new(0) }
    }

    /// Gives the heap its memory.
    ///
    /// # Safety
    /// Once, before any allocation.
    pub unsafe fn init(&self, memory: &'static mut [MaybeUninit<u8>]) {
        // SAFETY: the memory is ours for the program's life ('static and exclusive), and the
        // caller promises this is the first and only call.
        unsafe { self.heap.init(memory.as_mut_ptr() as usize, memory.len()) }
    }

    /// Bytes not in use now (a single allocation of this size may still fail if the free
    /// memory is fragmented).
    pub fn free_bytes(&self) -> usize {
        self.heap.free()
    }

    /// The most bytes in use at once so far.
    pub fn peak_bytes(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

// SAFETY: forwards to embedded-alloc's heap unchanged, only reading how much is in use.
unsafe impl GlobalAlloc for PeakHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { self.heap.alloc(layout) };
        self.peak.fetch_max(self.heap.used(), Ordering::Relaxed);
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}
