//! The int8 planner's in-place decisions: a pointwise convolution whose input nothing else
//! reads runs in its input's bytes (the arena holds one of the two tensors), one whose input a
//! later addition reads does not; both give what the reference kernels give when run one by one.

use mote_cli::quant::{quant_file, DataBuilder, QuantFile};
use mote_core::quant::{Operand, QLayer, QStep, QTensor, Quant};
use mote_kernels::reference::int8::{add_s8, conv2d_s8, AddParams, Int8Io, Requant};
use mote_kernels::Conv2dParams;

const C: usize = 16;
const PIXELS: usize = 6;

fn tensor(scale: f32, zero_point: i32) -> QTensor {
    QTensor { dims: [1, 2, 3, C as u32], rank: 4, quant: Quant { scale, zero_point } }
}

fn values(n: usize, seed: usize) -> Vec<i8> {
    (0..n).map(|i| ((i * 7919 + seed * 104_729) % 251) as u8 as i8).collect()
}

/// The model (a pointwise conv, then with `add` an addition of the conv's input) and the
/// reference kernels' output for `x`.
fn model(add: bool, x: &[i8]) -> (Vec<u8>, Vec<i8>) {
    let p = Conv2dParams::plain(1, [C, 2, 3], C, [1, 1], [1, 1], [0, 0]);
    let io = Int8Io { input_offset: 3, output_offset: -2, act_min: -128, act_max: 127 };
    let (w, bias) = (values(C * C, 1), (0..C as i32).map(|c| c * 100 - 700).collect::<Vec<_>>());
    let requant: Vec<Requant> = (0..C).map(|c| Requant::from_real(0.01 + 0.001 * c as f64)).collect();
    let mut data = DataBuilder::default();
    let conv = QLayer::Conv {
        p,
        io,
        depthwise: false,
        weights: data.i8(&w),
        bias: Some(data.i32(&bias)),
        requant: data.requant(&requant),
        pool: None,
    };
    let mut steps = vec![QStep { layer: conv, input: 0, output: tensor(0.05, -2) }];
    let mut want = vec![0i8; PIXELS * C];
    conv2d_s8(&p, &io, &requant, x, &w, Some(&bias), &mut want);
    if add {
        let params = AddParams::new((0.05, -2), (0.04, -3), (0.08, 1), (-128, 127));
        steps.push(QStep { layer: QLayer::Add { p: params, other: Operand::Tensor(0) }, input: 1, output: tensor(0.08, 1) });
        let mut sum = vec![0i8; PIXELS * C];
        add_s8(&params, &want, x, &mut sum);
        want = sum;
    }
    (quant_file("plan", &tensor(0.04, -3), &steps, &data.bytes, &[]).unwrap(), want)
}

#[test]
fn in_place_only_when_the_input_is_free() {
    let x = values(PIXELS * C, 7);
    for add in [false, true] {
        let (bytes, want) = model(add, &x);
        let file = QuantFile::new(&bytes).unwrap();
        let arena = file.model().unwrap().arena_len();
        assert_eq!(file.run(&x).unwrap(), want, "add: {add}");
        // Tensors of 96 bytes; the scratch the kernels ask for (the largest of the DSP columns,
        // 4 lanes × 8 words × 4 bytes = 128, and Helium's and Neon's column and per-channel sums,
        // 16 + 8 · 16 = 144).
        let p = Conv2dParams::plain(1, [C, 2, 3], C, [1, 1], [1, 1], [0, 0]);
        let (tensor, scratch) = (PIXELS * C, mote_kernels::dispatch::conv2d_s8_in_place_scratch_bytes(&p, false));
        assert_eq!(scratch, 144);
        if add {
            // Not in place: the input, the conv's output and its scratch alive together (in
            // place, the most ever alive would be 3 × 96 = 288 at the addition).
            assert!(arena >= 2 * tensor + scratch, "{arena}");
        } else {
            // In place: one tensor and the scratch.
            assert_eq!(arena, tensor + scratch);
        }
    }
}
