//! The dispatched gemm (AVX2+FMA where the CPU has it) against the scalar reference, on the
//! three products a batch-64 training step of mnist-mlp makes in its 784→128 layer, measured in
//! the same run with the two alternating: `cargo run --release -p mote-kernels --features std
//! --example gemm_bench`.

use mote_kernels::dispatch::{self, Isa};
use mote_kernels::{reference, Transpose};
use std::time::Instant;

/// Best of `rounds` timings of `reps` calls, in seconds per call.
fn best_time(rounds: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let isa = Isa::detect();
    if dispatch::select(isa).is_err() || isa == Isa::Reference {
        println!("no AVX2+FMA on this CPU: the dispatch runs the reference, nothing to compare");
        return;
    }
    // (name, transposes, m, n, k): forward x·Wᵀ, input gradient dy·W, weight gradient dyᵀ·x.
    let cases = [
        ("forward   x[64,784]·Wᵀ", Transpose { a: false, b: true }, 64, 128, 784),
        ("backward dy[64,128]·W", Transpose { a: false, b: false }, 64, 784, 128),
        ("weights  dyᵀ·x[64,784]", Transpose { a: true, b: false }, 128, 784, 64),
    ];
    println!("{:<24} {:>12} {:>12} {:>9}", "gemm", "reference", format!("{isa:?}"), "speed-up");
    for (name, t, m, n, k) in cases {
        let a: Vec<f32> = mote_kernels::test_values(1, m * k).collect();
        let b: Vec<f32> = mote_kernels::test_values(2, k * n).collect();
        let mut c = vec![0.0f32; m * n];
        let flop = 2.0 * (m * n * k) as f64;
        let (mut slow, mut fast) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..3 {
            slow = slow.min(best_time(3, 20, || reference::gemm_f32(t, m, n, k, &a, &b, &mut c, false)));
            fast = fast.min(best_time(3, 20, || mote_kernels::gemm_f32(t, m, n, k, &a, &b, &mut c, false)));
        }
        println!("{name:<24} {:>8.2} GF/s {:>8.2} GF/s {:>8.2}×", flop / slow / 1e9, flop / fast / 1e9, slow / fast);
    }
}
