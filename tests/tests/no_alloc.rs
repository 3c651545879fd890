//! Running a planned training step allocates nothing: a counting global allocator sees zero
//! allocations on the test's own thread across many steps. Counting is per thread because the
//! test harness's main thread may allocate while the test runs (it did on the CI machine).

use mote_core::{Executor, Graph, Optimizer, Plan};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations made by this thread; const-initialised, so reading it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // try_with: a thread being torn down has no slot left; its allocations are not ours.
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn training_steps_allocate_nothing() {
    let mut g: Graph = Graph::new();
    let x = g.input(&[4, 1, 6, 6]).unwrap();
    let c = g.conv2d(x, 3, [3, 3], [1, 1], [1, 1], true).unwrap();
    let b = g.batchnorm(c, 1e-5, 0.1, true).unwrap();
    let r = g.relu(b).unwrap();
    let p = g.maxpool2d(r, [2, 2], [2, 2], [0, 0]).unwrap();
    let f = g.flatten(p).unwrap();
    let d = g.dropout(f, 0.2).unwrap();
    let logits = g.linear(d, 3, true).unwrap();
    let labels = g.labels(4).unwrap();
    let loss = g.cross_entropy(logits, labels).unwrap();
    let plan: Plan = Plan::training(&g, loss, &[logits], Some(Optimizer::adam(1e-2))).unwrap();
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 1).unwrap();
    let mut opt = vec![0.0; plan.optimizer_len()];
    let mut arena = vec![0.0; plan.arena_len()];
    let images = [0.3f32; 144];
    let mut ex = Executor::new(&g, &plan, &mut params, &mut opt, &mut arena).unwrap();

    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..50 {
        ex.set_input(x, &images).unwrap();
        ex.set_input(labels, &[0.0, 1.0, 2.0, 1.0]).unwrap();
        ex.run().unwrap();
    }
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(after - before, 0, "allocations during 50 training steps");
    assert!(ex.value(loss).unwrap()[0].is_finite());
}
