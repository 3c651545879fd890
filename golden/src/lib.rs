//! Golden cases: every op's forward and backward on small fixed inputs, as a stream of named
//! f32 vectors. The host and the emulated Cortex-M4 both produce it; `cargo xtask test`
//! compares the two bit for bit (IEEE-754 single precision, same operation order, libm in
//! Rust on both sides).
#![no_std]

use mote_core::model::LayerOp;
use mote_core::{Error, Executor, Graph, NodeId, Plan, Result, Rng};

/// Capacity of a case's graph.
const NODES: usize = 16;
/// Values of the largest arena and parameter buffer a case may use.
const ARENA: usize = 2048;
const PARAMS: usize = 512;

type G = Graph<NODES>;
/// The fused case's builder.
type Build = fn(&mut G, NodeId) -> Result<NodeId>;

/// (name, op, dims of input a, dims of input b (empty: none)): one case or more per op of
/// the op table, built through the table (`LayerOp::add_to`); [`ops_covered`] lists them.
const CASES: &[(&str, LayerOp, &[usize], &[usize])] = &[
    ("linear", LayerOp::Linear { out: 4, bias: true }, &[3, 5], &[]),
    ("matmul", LayerOp::MatMul {}, &[3, 5], &[5, 4]),
    ("add_broadcast", LayerOp::Add {}, &[2, 3, 3, 3], &[3, 1, 1]),
    ("sub", LayerOp::Sub {}, &[3, 5], &[3, 5]),
    ("mul_broadcast", LayerOp::Mul {}, &[3, 5], &[5]),
    ("relu", LayerOp::Relu {}, &[3, 7], &[]),
    ("leaky_relu", LayerOp::LeakyRelu { slope: 0.1 }, &[3, 7], &[]),
    ("sigmoid", LayerOp::Sigmoid {}, &[3, 7], &[]),
    ("tanh", LayerOp::Tanh {}, &[3, 7], &[]),
    ("exp", LayerOp::Exp {}, &[3, 7], &[]),
    ("square", LayerOp::Square {}, &[3, 7], &[]),
    ("conv2d", LayerOp::Conv2d { out_channels: 3, kernel: [3, 2], stride: [2, 2], padding: [1, 1], bias: true }, &[2, 2, 7, 5], &[]),
    ("maxpool2d", LayerOp::MaxPool2d { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, &[2, 2, 7, 5], &[]),
    ("avgpool2d", LayerOp::AvgPool2d { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }, &[2, 2, 7, 5], &[]),
    ("global_avgpool", LayerOp::GlobalAvgPool {}, &[2, 3, 5, 3], &[]),
    ("flatten", LayerOp::Flatten {}, &[2, 3, 2, 2], &[]),
    ("softmax", LayerOp::Softmax {}, &[3, 7], &[]),
    ("log_softmax", LayerOp::LogSoftmax {}, &[3, 7], &[]),
    ("layernorm", LayerOp::LayerNorm { eps: 1e-5, affine: true }, &[3, 7], &[]),
    ("batchnorm2d", LayerOp::BatchNorm { eps: 1e-5, momentum: 0.1, affine: true }, &[3, 2, 3, 3], &[]),
    ("dropout", LayerOp::Dropout { p: 0.3 }, &[3, 7], &[]),
    ("conv2d_general", CONV_GENERAL, &[2, 4, 7, 6], &[]),
    (
        "maxpool2d_general",
        LayerOp::MaxPool2dGeneral { kernel: [3, 2], stride: [2, 2], pad_begin: [0, 1], pad_end: [2, 0] },
        &[2, 2, 7, 5],
        &[],
    ),
    ("avgpool2d_general", AVGPOOL_GENERAL, &[2, 2, 7, 5], &[]),
    ("pad", LayerOp::Pad { pad_begin: [1, 0], pad_end: [0, 2], value: 0.5 }, &[2, 2, 3, 3], &[]),
    ("clip", LayerOp::Clip { min: -0.3, max: 0.4 }, &[3, 7], &[]),
    ("neg", LayerOp::Neg {}, &[3, 7], &[]),
    ("div_broadcast", LayerOp::Div {}, &[3, 5], &[5]),
    ("reshape", LayerOp::Reshape { shape: [4, 3, 0, 0] }, &[2, 3, 2, 2], &[]),
    ("transpose", LayerOp::Transpose { perm: [3, 1, 2, 0] }, &[2, 3, 4, 5], &[]),
    ("input", LayerOp::Input { shape: [2, 3, 2, 0] }, &[2, 3, 2], &[]),
    ("constant", LayerOp::Constant { shape: [3, 1, 1, 0] }, &[2, 3, 2, 2], &[]),
];

/// Two groups, dilation 2 along the height, stride 2, padding on each side differing.
const CONV_GENERAL: LayerOp = LayerOp::Conv2dGeneral {
    out_channels: 4,
    kernel: [3, 2],
    stride: [2, 1],
    pad_begin: [1, 0],
    pad_end: [2, 1],
    dilation: [2, 1],
    groups: 2,
    bias: true,
};

/// Padding excluded from the divisor, more padding at the end (TFLite's SAME).
const AVGPOOL_GENERAL: LayerOp =
    LayerOp::AvgPool2dGeneral { kernel: [3, 3], stride: [2, 2], pad_begin: [0, 1], pad_end: [2, 1], count_padding: false };

/// Planned as one fused step with one fused backward: padded conv and pool; and a 3×3 conv
/// whose 12-wide rows the Cortex-M4 computes in its assembly blocks of 8 and 4 columns.
const FUSED: [(&str, &[usize], Build); 2] = [
    ("conv_relu_maxpool", &[2, 2, 9, 7], |g, a| {
        let c = g.conv2d(a, 3, [3, 2], [1, 1], [1, 1], true)?;
        let r = g.relu(c)?;
        g.maxpool2d(r, [2, 2], [2, 2], [1, 1])
    }),
    ("conv3x3_relu_maxpool", &[1, 3, 7, 14], |g, a| {
        let c = g.conv2d(a, 2, [3, 3], [1, 1], [0, 0], true)?;
        let r = g.relu(c)?;
        g.maxpool2d(r, [2, 2], [2, 2], [0, 0])
    }),
];

/// The spec names of the ops the golden cases cover (a test checks every op of the table is
/// among them).
pub fn ops_covered() -> impl Iterator<Item = &'static str> {
    CASES.iter().map(|(_, op, _, _)| op.name())
}

/// Runs every case, emitting `(name, values)`: for each case its loss, then the gradient of
/// each input and of each trainable parameter. Returns the number of vectors emitted.
pub fn run_all(emit: &mut dyn FnMut(&str, &[f32])) -> Result<usize> {
    let mut count = 0;
    for (i, &(name, op, da, db)) in CASES.iter().enumerate() {
        let mut g = G::new();
        let a = g.input_with_grad(da)?;
        let b = if db.is_empty() { a } else { g.input_with_grad(db)? };
        let made = op.add_to(&mut g, [a, b])?;
        // A layer without an input (a model input, a constant) is scored through `made + a`,
        // so the case has a gradient; a new model input is fed like the others.
        let (y, fed) = match op {
            LayerOp::Input { .. } => (g.add(made, a)?, made),
            LayerOp::Constant { .. } => (g.add(made, a)?, b),
            _ => (made, b),
        };
        count += run_mse_case(name, &mut g, y, [a, fed], i as u64, emit)?;
    }
    for (i, (name, dims, build)) in FUSED.into_iter().enumerate() {
        let mut g = G::new();
        let a = g.input_with_grad(dims)?;
        let y = build(&mut g, a)?;
        count += run_mse_case(name, &mut g, y, [a, a], (CASES.len() + i) as u64, emit)?;
    }
    // Cross-entropy with integer labels.
    let mut g = G::new();
    let logits = g.input_with_grad(&[4, 5])?;
    let labels = g.labels(4)?;
    let loss = g.cross_entropy(logits, labels)?;
    count += run_case("cross_entropy", &g, loss, &[logits, labels], 99, emit)?;
    count += run_training_steps(emit)?;
    Ok(count)
}

/// Runs a case whose output `y` is scored by MSE against a random target.
fn run_mse_case(name: &str, g: &mut G, y: NodeId, inputs: [NodeId; 2], seed: u64, emit: &mut dyn FnMut(&str, &[f32])) -> Result<usize> {
    let target = g.input(g.shape(y)?.dims())?;
    let loss = g.mse(y, target)?;
    run_case(name, g, loss, &[inputs[0], inputs[1], target], seed, emit)
}

/// Three SGD-momentum steps of a small convnet whose plan fuses conv → relu → maxpool and
/// updates the conv's and the linear layer's weights inside the backward; emits the loss of
/// each step and the parameters after the last.
fn run_training_steps(emit: &mut dyn FnMut(&str, &[f32])) -> Result<usize> {
    const NAME: &str = "train_fused_updates";
    let mut g = G::new();
    let x = g.input(&[2, 1, 8, 8])?;
    let c = g.conv2d(x, 4, [3, 3], [1, 1], [0, 0], true)?;
    let r = g.relu(c)?;
    let p = g.maxpool2d(r, [2, 2], [2, 2], [0, 0])?;
    let f = g.flatten(p)?;
    let logits = g.linear(f, 3, true)?;
    let labels = g.labels(2)?;
    let loss = g.cross_entropy(logits, labels)?;
    let plan = Plan::<NODES, 64>::training(&g, loss, &[], Some(mote_core::Optimizer::momentum(0.1, 0.9)))?;
    if plan.fused_steps() != 1 {
        return Err(Error::PlanMismatch { expected: "a fused conv-relu-maxpool step in the golden training case" });
    }
    let mut params = [0.0f32; PARAMS];
    let params = &mut params[..g.params_len()];
    g.init_params(params, 7)?;
    let (mut state, mut arena) = ([0.0f32; PARAMS], [0.0f32; ARENA]);
    let mut ex = Executor::new(&g, &plan, params, &mut state, &mut arena)?;
    let mut rng = Rng::new(7);
    for _ in 0..3 {
        ex.input_mut(x)?.iter_mut().for_each(|v| *v = rng.uniform());
        ex.set_input(labels, &[rng.below(3) as f32, rng.below(3) as f32])?;
        ex.run()?;
        emit(NAME, ex.value(loss)?);
    }
    emit(NAME, ex.params());
    Ok(4)
}

fn run_case(name: &str, g: &G, loss: NodeId, feeds: &[NodeId], seed: u64, emit: &mut dyn FnMut(&str, &[f32])) -> Result<usize> {
    let plan = Plan::<NODES, 64>::training(g, loss, &[], None)?;
    let too_big = Error::BufferLength { what: "golden case buffers", needed: plan.arena_len().max(g.params_len()), got: ARENA };
    if plan.arena_len() > ARENA || g.params_len() > PARAMS {
        return Err(too_big);
    }
    let mut rng = Rng::new(seed);
    let mut params = [0.0f32; PARAMS];
    let params = &mut params[..g.params_len()];
    g.init_params(params, seed)?;
    for v in params.iter_mut() {
        *v += 0.1 * rng.symmetric(1.0);
    }
    let mut arena = [0.0f32; ARENA];
    let mut ex = Executor::new(g, &plan, params, &mut [], &mut arena[..plan.arena_len()])?;
    for (k, &id) in feeds.iter().enumerate() {
        if k > 0 && id == feeds[k - 1] {
            continue;
        }
        let labels = name == "cross_entropy" && k == 1;
        for v in ex.input_mut(id)?.iter_mut() {
            *v = if labels { rng.below(5) as f32 } else { rng.symmetric(1.5) };
        }
    }
    ex.run()?;
    emit(name, ex.value(loss)?);
    let mut emitted = 1;
    for id in g.node_ids() {
        if let Ok(grad) = ex.grad(id) {
            emit(name, grad);
            emitted += 1;
        }
    }
    Ok(emitted)
}

/// Encodes one emitted vector as the firmware sends it: name length (u8), name, value count
/// (u32 LE), values (f32 LE).
pub fn encode_header(name: &str, count: usize) -> ([u8; 40], usize) {
    let mut out = [0u8; 40];
    let n = name.len().min(32);
    out[0] = n as u8;
    out[1..1 + n].copy_from_slice(&name.as_bytes()[..n]);
    out[1 + n..5 + n].copy_from_slice(&(count as u32).to_le_bytes());
    (out, 5 + n)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    #[test]
    fn cases_run_and_repeat_exactly() {
        let collect = || {
            let mut out: Vec<(std::string::String, Vec<u32>)> = Vec::new();
            let n = super::run_all(&mut |name, values| out.push((name.into(), values.iter().map(|v| v.to_bits()).collect()))).unwrap();
            assert_eq!(n, out.len());
            out
        };
        let a = collect();
        assert!(a.len() > 50, "{}", a.len());
        assert!(a.iter().all(|(_, v)| v.iter().all(|&b| f32::from_bits(b).is_finite())));
        assert_eq!(a, collect());
    }

    #[test]
    fn every_op_of_the_table_has_a_golden_case() {
        for info in mote_core::model::LAYER_OPS {
            assert!(super::ops_covered().any(|name| name == info.name), "{} has no golden case", info.name);
        }
    }
}
