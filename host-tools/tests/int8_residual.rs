//! Residual blocks fused into one step (`fuse_residual_blocks`, which `mote import` applies):
//! the fused step's output equals the reference kernels run operator by operator (conv_a,
//! conv_b, the shortcut, the ADD) on blocks with an identity or a convolution shortcut, stride
//! 2 with TensorFlow's asymmetric padding, dilation, either ADD operand order; it runs in its
//! input's bytes exactly when nothing later reads the input and its output rows fit (the arena
//! then holds one tensor and the block's scratch), and otherwise apart.

use mote_cli::import::tflite::int8::fuse_residual_blocks;
use mote_cli::quant::{quant_file, DataBuilder, QuantFile};
use mote_core::quant::{Operand, QLayer, QStep, QTensor, Quant};
use mote_kernels::reference::int8::{add_s8, conv2d_s8, AddParams, Int8Io, Requant};
use mote_kernels::Conv2dParams;

fn values(n: usize, seed: usize) -> Vec<i8> {
    (0..n).map(|i| ((i * 7919 + seed * 104_729) % 251) as u8 as i8).collect()
}

fn tensor(hwc: [usize; 3], zero_point: i32) -> QTensor {
    QTensor { dims: [1, hwc[0] as u32, hwc[1] as u32, hwc[2] as u32], rank: 4, quant: Quant { scale: 0.05, zero_point } }
}

/// A convolution of `x` `[h, w, c]`: `out` channels, a `k`×`k` kernel, `stride`, padding
/// `[top, left, bottom, right]`, `dilation`.
fn conv(x: [usize; 3], out: usize, k: usize, stride: usize, pad: [usize; 4], dilation: usize) -> Conv2dParams {
    Conv2dParams {
        pad_top: pad[0],
        pad_left: pad[1],
        pad_bottom: pad[2],
        pad_right: pad[3],
        dilation_h: dilation,
        dilation_w: dilation,
        ..Conv2dParams::plain(1, [x[2], x[0], x[1]], out, [k, k], [stride, stride], [0, 0])
    }
}

fn out_dims(p: &Conv2dParams) -> [usize; 3] {
    [p.out_h(), p.out_w(), p.out_c]
}

/// Builds steps and computes the reference's outputs alongside.
#[derive(Default)]
struct Builder {
    data: DataBuilder,
    steps: Vec<QStep>,
    /// Each tensor's values as the reference kernels compute them (0: the input).
    values: Vec<Vec<i8>>,
    zero_points: Vec<i32>,
}

impl Builder {
    fn conv(&mut self, input: u16, p: Conv2dParams, seed: usize) -> u16 {
        let io =
            Int8Io { input_offset: -self.zero_points[input as usize], output_offset: seed as i32 % 7 - 3, act_min: -128, act_max: 127 };
        let w = values(p.out_c * p.kernel_h * p.kernel_w * p.in_c, seed);
        let bias: Vec<i32> = (0..p.out_c as i32).map(|c| c * 97 - 400).collect();
        let requant: Vec<Requant> = (0..p.out_c).map(|c| Requant::from_real(0.0008 + 0.0001 * c as f64)).collect();
        let mut y = vec![0i8; p.out_h() * p.out_w() * p.out_c];
        conv2d_s8(&p, &io, &requant, &self.values[input as usize], &w, Some(&bias), &mut y);
        let (weights, bias, requant) = (self.data.i8(&w), Some(self.data.i32(&bias)), self.data.requant(&requant));
        let layer = QLayer::Conv { p, io, depthwise: false, weights, bias, requant, pool: None };
        self.push(layer, input, out_dims(&p), io.output_offset, y)
    }

    fn add(&mut self, first: u16, second: u16, dims: [usize; 3]) -> u16 {
        let (z1, z2) = (self.zero_points[first as usize], self.zero_points[second as usize]);
        let p = AddParams::new((0.05, z1), (0.04, z2), (0.07, 2), (-128, 127));
        let mut y = vec![0i8; self.values[first as usize].len()];
        add_s8(&p, &self.values[first as usize], &self.values[second as usize], &mut y);
        self.push(QLayer::Add { p, other: Operand::Tensor(second) }, first, dims, 2, y)
    }

    fn push(&mut self, layer: QLayer, input: u16, dims: [usize; 3], zero_point: i32, y: Vec<i8>) -> u16 {
        self.steps.push(QStep { layer, input, output: tensor(dims, zero_point) });
        self.values.push(y);
        self.zero_points.push(zero_point);
        self.steps.len() as u16
    }
}

/// One block on input `x` `[h, w, c]`; `shortcut`: a convolution's parameters, or the input;
/// `reread`: the input added to the block's output afterwards (identity blocks only).
struct Block {
    x: [usize; 3],
    a: Conv2dParams,
    b: Conv2dParams,
    shortcut: Option<Conv2dParams>,
    shortcut_first: bool,
    reread: bool,
}

/// Runs `block` unfused and fused; returns (fused arena, the input's bytes, the block output's
/// bytes, the fused step's scratch bytes).
fn check(block: &Block) -> (usize, usize, usize, usize) {
    let mut m = Builder { values: vec![values(block.x.iter().product(), 3)], zero_points: vec![-5], ..Builder::default() };
    let ya = m.conv(0, block.a, 11);
    let yb = m.conv(ya, block.b, 12);
    let side = match block.shortcut {
        Some(s) => m.conv(0, s, 13),
        None => 0,
    };
    let dims = out_dims(&block.b);
    let z = if block.shortcut_first { m.add(side, yb, dims) } else { m.add(yb, side, dims) };
    if block.reread {
        m.add(z, 0, dims);
    }
    let input = tensor(block.x, -5);
    let want = m.values.last().unwrap().clone();
    let unfused = QuantFile::new(&quant_file("block", &input, &m.steps, &m.data.bytes, &[]).unwrap()).unwrap();
    assert_eq!(unfused.run(&m.values[0]).unwrap(), want, "unfused");
    let (fused_steps, origins) = fuse_residual_blocks(&input, &m.steps);
    let fused_len = m.steps.len() - 2 - block.shortcut.is_some() as usize;
    assert_eq!(fused_steps.len(), fused_len, "one step for the block");
    assert_eq!(origins[0], z as usize - 1, "the block makes the ADD's output");
    let QLayer::Residual(residual) = fused_steps[0].layer else { panic!("not fused: {:?}", fused_steps[0].layer) };
    let fused = QuantFile::new(&quant_file("block", &input, &fused_steps, &m.data.bytes, &[]).unwrap()).unwrap();
    assert_eq!(fused.run(&m.values[0]).unwrap(), want, "fused");
    let arena = fused.model().unwrap().arena_len();
    (arena, block.x.iter().product(), dims.iter().product(), residual.scratch_bytes())
}

/// In place: the arena holds the input and the scratch, each at a 4-byte aligned offset.
fn assert_in_place(arena: usize, x_len: usize, scratch: usize) {
    assert!(x_len + scratch <= arena && arena <= x_len.next_multiple_of(4) + scratch.next_multiple_of(4), "{arena}: not in place");
}

#[test]
fn identity_block_runs_in_its_input() {
    let x = [7, 5, 4];
    let a = conv(x, 4, 3, 1, [1, 1, 1, 1], 1);
    let b = conv(out_dims(&a), 4, 3, 1, [1, 1, 1, 1], 1);
    for shortcut_first in [false, true] {
        let (arena, x_len, y_len, scratch) = check(&Block { x, a, b, shortcut: None, shortcut_first, reread: false });
        assert_eq!(x_len, y_len);
        assert_in_place(arena, x_len, scratch);
    }
}

#[test]
fn strided_block_with_a_conv_shortcut_runs_in_its_input() {
    // ResNet-8's downsampling blocks: 3×3 stride 2 with TensorFlow's SAME padding (one row
    // and column after), 1×1 stride 2 shortcut, twice the channels.
    let x = [8, 6, 3];
    let a = conv(x, 6, 3, 2, [0, 0, 1, 1], 1);
    let b = conv(out_dims(&a), 6, 3, 1, [1, 1, 1, 1], 1);
    let s = conv(x, 6, 1, 2, [0, 0, 0, 0], 1);
    for shortcut_first in [true, false] {
        let (arena, x_len, _, scratch) = check(&Block { x, a, b, shortcut: Some(s), shortcut_first, reread: false });
        assert_in_place(arena, x_len, scratch);
    }
}

#[test]
fn dilated_and_odd_blocks_match_the_reference() {
    // Dilation 2 in conv_b (a five-row window), a 5×5 conv_a, an uneven shortcut.
    let x = [9, 7, 2];
    let a = conv(x, 3, 5, 1, [2, 2, 2, 2], 1);
    let b = conv(out_dims(&a), 2, 3, 1, [2, 2, 2, 2], 2);
    check(&Block { x, a, b, shortcut: None, shortcut_first: false, reread: false });
    let a = conv(x, 5, 3, 2, [1, 0, 1, 1], 1);
    let b = conv(out_dims(&a), 5, 2, 1, [0, 0, 1, 1], 1);
    let s = conv(x, 5, 3, 2, [1, 0, 1, 1], 1);
    check(&Block { x, a, b, shortcut: Some(s), shortcut_first: true, reread: false });
}

#[test]
fn block_runs_apart_when_its_input_is_read_later_or_its_rows_do_not_fit() {
    let x = [6, 5, 4];
    let a = conv(x, 4, 3, 1, [1, 1, 1, 1], 1);
    let b = conv(out_dims(&a), 4, 3, 1, [1, 1, 1, 1], 1);
    let (arena, x_len, y_len, scratch) = check(&Block { x, a, b, shortcut: None, shortcut_first: false, reread: true });
    assert!(arena >= x_len + y_len + scratch, "apart: {arena}");
    // Three times the channels at stride 1: output row r would cover input rows needed later.
    let a = conv(x, 12, 3, 1, [1, 1, 1, 1], 1);
    let b = conv(out_dims(&a), 12, 3, 1, [1, 1, 1, 1], 1);
    let s = conv(x, 12, 1, 1, [0, 0, 0, 0], 1);
    let (arena, x_len, y_len, scratch) = check(&Block { x, a, b, shortcut: Some(s), shortcut_first: false, reread: false });
    assert!(arena >= x_len + y_len + scratch, "apart: {arena}");
    // One output row, four times the input's bytes: no later row to protect, but no room.
    let x = [1, 3, 2];
    let a = conv(x, 8, 1, 1, [0, 0, 0, 0], 1);
    let b = conv(out_dims(&a), 8, 1, 1, [0, 0, 0, 0], 1);
    let s = conv(x, 8, 1, 1, [0, 0, 0, 0], 1);
    let (arena, x_len, y_len, scratch) = check(&Block { x, a, b, shortcut: Some(s), shortcut_first: true, reread: false });
    assert!(arena >= x_len + y_len + scratch, "apart: {arena}");
}
