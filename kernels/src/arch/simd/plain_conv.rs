//! The unfused convolution on host batches (any stride, padding and dilation; one group): per
//! sample, forward `W · cols`, input gradient `Wᵀ · dY` added back through col2im, weight
//! gradient `dY · colsᵀ`, all gemm products at the chosen width. Their im2col matrix lives in
//! a per-thread buffer the kernels grow themselves: these host kernels run outside the
//! device's planned arena (the reference's have no scratch to plan). Sums are the
//! reference's in another order with fused multiply-adds, within the tolerance the tests
//! state.

use super::im2col::{col2im_add, im2col, im2col_dims};
use super::{gemm_f32, Width};
use crate::reference::{Conv2dParams, Transpose};
use std::cell::RefCell;
use std::vec::Vec;

std::thread_local! {
    /// One sample's im2col matrix (or its gradient), reused by every call on this thread.
    static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's buffer of at least `len` values.
fn with_cols(len: usize, f: impl FnOnce(&mut [f32])) {
    COLS.with(|cols| {
        let mut cols = cols.borrow_mut();
        if cols.len() < len {
            cols.resize(len, 0.0);
        }
        f(&mut cols[..len]);
    });
}

/// Whether these kernels take the convolution: one group, and slices of its sizes.
fn takes(p: &Conv2dParams, x: usize, w: usize, y: usize) -> bool {
    let (k, cols) = im2col_dims(p);
    p.groups == 1 && x >= p.batch * p.in_c * p.in_h * p.in_w && w >= p.out_c * k && y >= p.batch * p.out_c * cols
}

/// `y = conv(x, w) + bias`, as [`crate::reference::conv2d_f32`]; `false` (nothing written) for
/// groups.
///
/// # Safety
/// The CPU must run `width` ([`Width::runs_here`]).
pub unsafe fn conv2d_f32(width: Width, p: &Conv2dParams, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> bool {
    let (k, n) = im2col_dims(p);
    if !takes(p, x.len(), w.len(), y.len()) {
        return false;
    }
    with_cols(k * n, |cols| {
        for (b, out) in y.chunks_exact_mut(p.out_c * n).take(p.batch).enumerate() {
            im2col(p, x, b, cols);
            for (oc, plane) in out.chunks_exact_mut(n).enumerate() {
                plane.fill(bias.map_or(0.0, |bias| bias[oc]));
            }
            // SAFETY: the caller's.
            unsafe { gemm_f32(width, Transpose { a: false, b: false }, p.out_c, n, k, w, cols, out, true) };
        }
    });
    true
}

/// `dx += conv2d's input gradient from dy`, as [`crate::reference::conv2d_backward_input_f32`];
/// `false` (nothing written) for groups.
///
/// # Safety
/// The CPU must run `width` ([`Width::runs_here`]).
pub unsafe fn conv2d_backward_input_f32(width: Width, p: &Conv2dParams, dy: &[f32], w: &[f32], dx: &mut [f32]) -> bool {
    let (k, n) = im2col_dims(p);
    if !takes(p, dx.len(), w.len(), dy.len()) {
        return false;
    }
    with_cols(k * n, |col_grads| {
        for (b, grads) in dy.chunks_exact(p.out_c * n).take(p.batch).enumerate() {
            // SAFETY: the caller's.
            unsafe { gemm_f32(width, Transpose { a: true, b: false }, k, n, p.out_c, w, grads, col_grads, false) };
            col2im_add(p, col_grads, b, dx);
        }
    });
    true
}

/// `dw += conv2d's weight gradient`, as [`crate::reference::conv2d_backward_weight_f32`];
/// `false` (nothing written) for groups.
///
/// # Safety
/// The CPU must run `width` ([`Width::runs_here`]).
pub unsafe fn conv2d_backward_weight_f32(width: Width, p: &Conv2dParams, x: &[f32], dy: &[f32], dw: &mut [f32]) -> bool {
    let (k, n) = im2col_dims(p);
    if !takes(p, x.len(), dw.len(), dy.len()) {
        return false;
    }
    with_cols(k * n, |cols| {
        for (b, grads) in dy.chunks_exact(p.out_c * n).take(p.batch).enumerate() {
            im2col(p, x, b, cols);
            // SAFETY: the caller's.
            unsafe { gemm_f32(width, Transpose { a: false, b: true }, p.out_c, k, n, grads, cols, dw, true) };
        }
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;
    use std::vec;

    fn values(seed: u32, n: usize) -> Vec<f32> {
        crate::test_values(seed, n).collect()
    }

    fn absolute(v: &[f32]) -> Vec<f32> {
        v.iter().map(|x| x.abs()).collect()
    }

    /// Forward and both backward kernels against the reference at every width this CPU runs,
    /// on shapes with strides, padding on each side, dilation and odd sizes, within the
    /// summation bound `(terms + 1)·ε·Σ|terms|` (the sums of absolute terms from the reference
    /// run on absolute values). A 1e-4 relative error in any of them is caught.
    #[test]
    fn matches_the_reference() {
        let mut dilated = Conv2dParams::plain(2, [3, 11, 9], 5, [3, 2], [1, 2], [1, 0]);
        dilated.dilation_h = 2;
        dilated.pad_right = 2;
        let cases = [
            Conv2dParams::plain(3, [1, 12, 10], 4, [3, 3], [1, 1], [1, 1]),
            Conv2dParams::plain(2, [5, 9, 7], 6, [5, 3], [2, 1], [2, 1]),
            dilated,
        ];
        for (p, width) in cases.into_iter().flat_map(|p| Width::available().map(move |w| (p, w))) {
            let (k, n) = im2col_dims(&p);
            let (x, w, bias) = (values(1, p.batch * p.in_c * p.in_h * p.in_w), values(2, p.out_c * k), values(3, p.out_c));
            let (dy, start_dx, start_dw) = (values(4, p.batch * p.out_c * n), values(5, x.len()), values(6, w.len()));
            let bound = |terms: usize, abs: f32| (terms + 1) as f32 * f32::EPSILON * abs;
            let close = |name: &str, terms: usize, want: &[f32], got: &[f32], abs: &[f32]| {
                for i in 0..want.len() {
                    assert!((want[i] - got[i]).abs() <= bound(terms, abs[i]), "{p:?} {width:?} {name}[{i}]: {} vs {}", want[i], got[i]);
                }
            };
            let (ax, aw, ady) = (absolute(&x), absolute(&w), absolute(&dy));

            let (mut want, mut got, mut abs) = (vec![0.0; dy.len()], vec![0.0; dy.len()], vec![0.0; dy.len()]);
            reference::conv2d_f32(&p, &x, &w, Some(&bias), &mut want);
            reference::conv2d_f32(&p, &ax, &aw, Some(&absolute(&bias)), &mut abs);
            // SAFETY: the width runs on this CPU.
            assert!(unsafe { conv2d_f32(width, &p, &x, &w, Some(&bias), &mut got) });
            close("y", k + 1, &want, &got, &abs);

            let (mut want, mut got, mut abs) = (start_dx.clone(), start_dx.clone(), absolute(&start_dx));
            reference::conv2d_backward_input_f32(&p, &dy, &w, &mut want);
            reference::conv2d_backward_input_f32(&p, &ady, &aw, &mut abs);
            // SAFETY: as above.
            assert!(unsafe { conv2d_backward_input_f32(width, &p, &dy, &w, &mut got) });
            close("dx", p.out_c * k + 1, &want, &got, &abs);

            let (mut want, mut got, mut abs) = (start_dw.clone(), start_dw.clone(), absolute(&start_dw));
            reference::conv2d_backward_weight_f32(&p, &x, &dy, &mut want);
            reference::conv2d_backward_weight_f32(&p, &ax, &ady, &mut abs);
            // SAFETY: as above.
            assert!(unsafe { conv2d_backward_weight_f32(width, &p, &x, &dy, &mut got) });
            close("dw", p.batch * n + 1, &want, &got, &abs);
        }
        let Some(width) = Width::available().next() else { return };
        // Groups are not taken, and nothing is written.
        let grouped = Conv2dParams { groups: 2, ..Conv2dParams::plain(1, [2, 5, 5], 2, [3, 3], [1, 1], [0, 0]) };
        let mut y = vec![7.0; 18];
        // SAFETY: as above.
        assert!(!unsafe { conv2d_f32(width, &grouped, &values(1, 50), &values(2, 9), None, &mut y) });
        assert!(y.iter().all(|&v| v == 7.0));
    }
}
