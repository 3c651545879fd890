//! A residual block as one step: `ADD(conv_b(conv_a(x)), shortcut(x))`, the shortcut `x` itself
//! or a convolution of it. Computed output row by output row, so that conv_a's output is never
//! stored whole (a window of the rows conv_b reads is), and, when nothing later reads `x`, in
//! `x`'s bytes: each output row is written once every row of `x` it covers has been read for
//! the last time. Each row is the same kernels on a one-row convolution, so the bytes are the
//! unfused operators' (TFLM's) bit for bit; only the memory differs (ResNet-8's first block:
//! 16 KB instead of 48 KB).

use super::spec::Blob;
use core::ops::Range;
use mote_kernels::dispatch::{conv2d_s8, conv2d_s8_scratch_bytes};
use mote_kernels::reference::int8::{add_s8, AddParams, Int8Io, Requant};
use mote_kernels::Conv2dParams;
use serde::{Deserialize, Serialize};

/// A plain convolution of a residual block (groups allowed; not depthwise, no pool).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct QConv {
    pub p: Conv2dParams,
    pub io: Int8Io,
    pub weights: Blob,
    pub bias: Option<Blob>,
    pub requant: Blob,
}

/// `add(b(a(x)), shortcut)`: `shortcut` is `x` (`None`) or a convolution of it, the ADD's first
/// operand when `shortcut_first`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Residual {
    pub a: QConv,
    pub b: QConv,
    pub shortcut: Option<QConv>,
    pub add: AddParams,
    pub shortcut_first: bool,
}

/// One convolution's constants, read from the data section.
pub struct ConvData<'a> {
    pub weights: &'a [i8],
    pub bias: Option<&'a [i32]>,
    pub requant: &'a [Requant],
}

/// The input and output of a block: apart, or sharing bytes (the input at the start).
pub enum BlockTensors<'a> {
    Apart(&'a [i8], &'a mut [i8]),
    Shared(&'a mut [i8]),
}

/// Convolution `p` cut to its output row `r`: the one-row convolution (padding above and below
/// made explicit) and the input rows it reads, or `None` if the row's window lies wholly in the
/// padding or outside the output.
pub fn row_conv(p: &Conv2dParams, r: usize) -> Option<(Conv2dParams, Range<usize>)> {
    let span = (p.kernel_h.checked_sub(1)?).checked_mul(p.dilation_h)? + 1;
    let top = (r.checked_mul(p.stride_h)? as isize) - p.pad_top as isize;
    let (first, end) = (top.max(0) as usize, (top + span as isize).clamp(0, p.in_h as isize) as usize);
    if r >= p.out_h() || first >= end {
        return None;
    }
    let row = Conv2dParams {
        in_h: end - first,
        pad_top: (first as isize - top) as usize,
        pad_bottom: (top + span as isize - end as isize).max(0) as usize,
        stride_h: 1,
        ..*p
    };
    Some((row, first..end))
}

/// Rows of conv_a's output the window holds: conv_b's window span, at most all of them.
fn window_rows(block: &Residual) -> usize {
    let b = &block.b.p;
    ((b.kernel_h - 1) * b.dilation_h + 1).min(block.a.p.out_h())
}

impl Residual {
    /// Bytes of one row of conv_a's output, and of the block's output.
    fn row_bytes(&self) -> (usize, usize) {
        (self.a.p.out_w() * self.a.p.out_c, self.b.p.out_w() * self.b.p.out_c)
    }

    /// The scratch's parts in bytes: the kernels' (the largest of the three convolutions',
    /// rounded to words), the window of conv_a's rows, and a row each of conv_b's and the
    /// shortcut's output.
    fn scratch_parts(&self) -> [usize; 4] {
        let kernels = [Some(&self.a), Some(&self.b), self.shortcut.as_ref()].into_iter().flatten().map(|c| conv2d_s8_scratch_bytes(&c.p));
        let (row_a, row_y) = self.row_bytes();
        [kernels.max().unwrap_or(0).next_multiple_of(4), window_rows(self) * row_a, row_y, row_y]
    }

    /// Scratch bytes [`Residual::run`] needs.
    pub fn scratch_bytes(&self) -> usize {
        self.scratch_parts().iter().sum()
    }

    /// Whether every row has a window of real input rows in each convolution (checked once).
    pub fn rows_ok(&self) -> bool {
        let all = |c: &QConv| (0..c.p.out_h()).all(|r| row_conv(&c.p, r).is_some());
        all(&self.a) && all(&self.b) && self.shortcut.as_ref().is_none_or(all)
    }

    /// Whether the block may write its output over its input: the output is no larger, and each
    /// output row lies below the first input row anything after it still reads.
    pub fn in_place_ok(&self) -> bool {
        let (x_row, (_, y_row)) = (self.a.p.in_w * self.a.p.in_c, self.row_bytes());
        let a_rows = self.a.p.out_h();
        // The output must fit the input's bytes; each row must not cover input still to be read.
        self.b.p.out_h() * y_row <= self.a.p.in_h * x_row
            && (0..self.b.p.out_h()).all(|r| {
                let Some((_, window)) = row_conv(&self.b.p, r) else { return false };
                // conv_a rows computed after output row r start at window.end.
                let next_a = (window.end < a_rows).then(|| row_conv(&self.a.p, window.end).map(|(_, rows)| rows.start));
                let next_shortcut = (r + 1 < self.b.p.out_h()).then(|| match &self.shortcut {
                    Some(s) => row_conv(&s.p, r + 1).map(|(_, rows)| rows.start),
                    None => Some(r + 1),
                });
                match (next_a, next_shortcut) {
                    (Some(None), _) | (_, Some(None)) => false,
                    (a, s) => {
                        let first_read = a.flatten().into_iter().chain(s.flatten()).min().unwrap_or(usize::MAX);
                        (r + 1) * y_row <= first_read.saturating_mul(x_row)
                    }
                }
            })
    }

    /// Runs the block: `x` (and `y`) as `tensors`, the three convolutions' constants, `scratch`
    /// of [`Residual::scratch_bytes`] bytes, 4-byte aligned. Returns `false`, having written
    /// nothing but scratch, if an operand is too short or shared bytes are not allowed.
    pub fn run(&self, tensors: BlockTensors, data: [Option<ConvData>; 3], scratch: &mut [u8]) -> bool {
        let [Some(a), Some(b), s] = data else { return false };
        if s.is_some() != self.shortcut.is_some() {
            return false;
        }
        let (row_a, row_y) = self.row_bytes();
        let [kernel_len, window_len, _, _] = self.scratch_parts();
        let x_len = self.a.p.in_h * self.a.p.in_w * self.a.p.in_c;
        let y_len = self.b.p.out_h() * row_y;
        let mut tensors = tensors;
        let fits = match &tensors {
            BlockTensors::Apart(x, y) => x.len() >= x_len && y.len() >= y_len,
            BlockTensors::Shared(xy) => xy.len() >= x_len.max(y_len) && self.in_place_ok(),
        };
        if !fits || scratch.len() < self.scratch_bytes() {
            return false;
        }
        let (kernel, rest) = scratch.split_at_mut(kernel_len);
        let (window, rest) = rest.split_at_mut(window_len);
        let (b_row, rest) = rest.split_at_mut(row_y);
        let s_row = &mut rest[..row_y];
        let (window, b_row, s_row) = (signed(window), signed(b_row), signed(s_row));
        let x_row = self.a.p.in_w * self.a.p.in_c;
        // conv_a rows `first..first + held` are in the window, in order.
        let (mut first, mut held) = (0usize, 0usize);
        for r in 0..self.b.p.out_h() {
            let Some((b_conv, need)) = row_conv(&self.b.p, r) else { return false };
            let x = match &tensors {
                BlockTensors::Apart(x, _) => &x[..x_len],
                BlockTensors::Shared(xy) => &xy[..x_len],
            };
            if need.start >= first + held {
                (first, held) = (need.start, 0);
            } else if need.start > first {
                let drop = need.start - first;
                window.copy_within(drop * row_a..held * row_a, 0);
                (first, held) = (need.start, held - drop);
            }
            while first + held < need.end {
                let Some((a_conv, rows)) = row_conv(&self.a.p, first + held) else { return false };
                let slot = &mut window[held * row_a..(held + 1) * row_a];
                conv2d_s8(&a_conv, None, &self.a.io, a.requant, &x[rows.start * x_row..rows.end * x_row], a.weights, a.bias, slot, kernel);
                held += 1;
            }
            let b_in = &window[(need.start - first) * row_a..(need.end - first) * row_a];
            conv2d_s8(&b_conv, None, &self.b.io, b.requant, b_in, b.weights, b.bias, b_row, kernel);
            match (&self.shortcut, &s) {
                (Some(sc), Some(s)) => {
                    let Some((s_conv, rows)) = row_conv(&sc.p, r) else { return false };
                    conv2d_s8(&s_conv, None, &sc.io, s.requant, &x[rows.start * x_row..rows.end * x_row], s.weights, s.bias, s_row, kernel);
                }
                _ => s_row.copy_from_slice(&x[r * row_y..(r + 1) * row_y]),
            }
            let y = match &mut tensors {
                BlockTensors::Apart(_, y) => &mut y[r * row_y..(r + 1) * row_y],
                BlockTensors::Shared(xy) => &mut xy[r * row_y..(r + 1) * row_y],
            };
            let (first_operand, second_operand) = if self.shortcut_first { (&*s_row, &*b_row) } else { (&*b_row, &*s_row) };
            add_s8(&self.add, first_operand, second_operand, y);
        }
        true
    }
}

fn signed(bytes: &mut [u8]) -> &mut [i8] {
    // SAFETY: i8 and u8 have the same size, alignment and validity (any bits).
    unsafe { core::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<i8>(), bytes.len()) }
}
