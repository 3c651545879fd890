//! A model spec that uses every layer op of the spec format once, with settings away from
//! their defaults: the checked-in model file `tests/fixtures/every-op-v1.mote` holds it, so
//! a change that alters what old model files mean fails `tests/tests/model_file_compat.rs`.

use mote_core::model::{Layer, LayerOp, Loss, ModelSpec, Name};

fn layer(name: &str, op: LayerOp, inputs: &[&str]) -> Layer {
    Layer {
        name: Name::try_from(name).expect("short name"),
        op,
        inputs: inputs.iter().map(|n| Name::try_from(*n).expect("short name")).collect(),
    }
}

/// Input [2, 6, 6]; every op of the spec format; cross-entropy over 5 classes.
pub fn every_op_spec() -> ModelSpec {
    let layers = [
        layer("conv", LayerOp::Conv2d { out_channels: 4, kernel: [3, 2], stride: [1, 1], padding: [1, 1], bias: true }, &[]),
        layer("bn", LayerOp::BatchNorm { eps: 1e-3, momentum: 0.2, affine: true }, &[]),
        layer("relu", LayerOp::Relu {}, &[]),
        layer("max", LayerOp::MaxPool2d { kernel: [2, 2], stride: [2, 2], padding: [0, 1] }, &[]),
        layer("avg", LayerOp::AvgPool2d { kernel: [3, 3], stride: [1, 1], padding: [1, 1] }, &[]),
        layer("leaky", LayerOp::LeakyRelu { slope: 0.2 }, &[]),
        layer("tanh", LayerOp::Tanh {}, &[]),
        layer("sigmoid", LayerOp::Sigmoid {}, &[]),
        layer("sum", LayerOp::Add {}, &["avg", "sigmoid"]),
        layer("diff", LayerOp::Sub {}, &["sum", "max"]),
        layer("prod", LayerOp::Mul {}, &["diff", "tanh"]),
        layer("sq", LayerOp::Square {}, &[]),
        layer("e", LayerOp::Exp {}, &[]),
        layer("gap", LayerOp::GlobalAvgPool {}, &[]),
        layer("flat", LayerOp::Flatten {}, &[]),
        layer("drop", LayerOp::Dropout { p: 0.25 }, &[]),
        layer("ln", LayerOp::LayerNorm { eps: 1e-4, affine: false }, &[]),
        layer("fc", LayerOp::Linear { out: 5, bias: false }, &[]),
        layer("soft", LayerOp::Softmax {}, &[]),
        layer("logits", LayerOp::LogSoftmax {}, &[]),
    ];
    ModelSpec {
        name: "every-op".try_into().expect("short name"),
        input: [2, 6, 6].into_iter().collect(),
        layers: layers.into_iter().collect(),
        loss: Loss::CrossEntropy,
    }
}

/// The parameters stored in the fixture: the graph's initializers with this seed.
pub const EVERY_OP_SEED: u64 = 2026;
