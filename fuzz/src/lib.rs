//! What each fuzz target does with its bytes: read them as the format a user or a link can hand
//! mote, and go as far as the bytes allow (decode, build, plan, run). A panic, abort, hang or
//! huge allocation anywhere is a bug.

use mote_core::model::{build_from_postcard, check_model, read_model};
use mote_core::{Executor, Graph, Mode, Optimizer, Plan};

/// Graph and plan capacities of the targets (the CLI's).
type G = Graph<128>;
type P = Plan<128, 512>;

/// Model files: checked, decoded, built (both ways) and planned.
pub fn model_bytes(data: &[u8]) {
    if let Ok(parts) = check_model(data) {
        let _ = build_from_postcard(parts.spec_bytes, &mut G::new(), 1);
    }
    let Ok(view) = read_model(data) else { return };
    let mut g = G::new();
    let Ok(built) = view.spec.build(&mut g, 1) else { return };
    let _ = P::inference(&g, &[built.output], Mode::Eval);
    let _ = P::training(&g, built.loss, &[], Some(Optimizer::adam(1e-3)));
}

/// A small convnet (conv-relu-maxpool fused, linear, cross-entropy) for plans to run against.
fn small_cnn(g: &mut G) -> Option<[mote_core::NodeId; 3]> {
    let x = g.input(&[2, 1, 6, 6]).ok()?;
    let c = g.conv2d(x, 2, [3, 3], [1, 1], [0, 0], true).ok()?;
    let r = g.relu(c).ok()?;
    let p = g.maxpool2d(r, [2, 2], [2, 2], [0, 0]).ok()?;
    let f = g.flatten(p).ok()?;
    let logits = g.linear(f, 3, true).ok()?;
    let labels = g.labels(2).ok()?;
    Some([x, labels, g.cross_entropy(logits, labels).ok()?])
}

/// Plan bytes: decoded, and run against the graph they may claim (refused or run, never a
/// panic or an out-of-bounds view).
pub fn plan_bytes(data: &[u8]) {
    let Ok(plan) = P::from_bytes(data) else { return };
    let mut g = G::new();
    let Some([x, labels, _]) = small_cnn(&mut g) else { return };
    let mut params = vec![0.1; g.params_len()];
    let mut state = vec![0.0; plan.optimizer_len().min(1 << 16)];
    let mut arena = vec![0.0; plan.arena_len().min(1 << 16)];
    let Ok(mut ex) = Executor::new(&g, &plan, &mut params, &mut state, &mut arena) else { return };
    let _ = ex.set_input(x, &[0.5; 72]);
    let _ = ex.set_input(labels, &[1.0, 2.0]);
    let _ = ex.run();
}

/// The plan bytes of [`small_cnn`]'s training plan: a seed for `plan_bytes`.
pub fn plan_seed() -> Vec<u8> {
    let mut g = G::new();
    let Some([_, _, loss]) = small_cnn(&mut g) else { return Vec::new() };
    let Ok(plan) = P::training(&g, loss, &[], Some(Optimizer::momentum(0.1, 0.9))) else { return Vec::new() };
    let mut bytes = vec![0u8; plan.encoded_len()];
    let _ = plan.to_bytes(&mut bytes);
    bytes
}

/// The graph bytes of [`small_cnn`]: a seed for `graph_bytes`.
pub fn graph_seed() -> Vec<u8> {
    let mut g = G::new();
    if small_cnn(&mut g).is_none() {
        return Vec::new();
    }
    let mut bytes = vec![0u8; g.encoded_len().unwrap_or(0)];
    let _ = g.to_bytes(&mut bytes);
    bytes
}

/// Graph bytes: decoded through the building checks, then planned.
pub fn graph_bytes(data: &[u8]) {
    let Ok(g) = G::from_bytes(data) else { return };
    if let Some(last) = g.node_ids().last() {
        let _ = P::inference(&g, &[last], Mode::Eval);
    }
}

/// Spec TOML: parsed, built at batch 2, planned for inference and training.
pub fn spec_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(file) = mote_cli::spec_file::parse_spec(text) else { return };
    let mut g = G::new();
    let Ok(built) = file.spec.build(&mut g, 2) else { return };
    let _ = P::inference(&g, &[built.output], Mode::Eval);
    let _ = P::training(&g, built.loss, &[], Some(file.train.optimizer()));
}

/// IDX files of rank 1 (labels) and 3 (images).
pub fn idx(data: &[u8]) {
    let _ = mote_cli::idx::parse_idx(data, 1);
    let _ = mote_cli::idx::parse_idx(data, 3);
}

/// NumPy `.npy` tensors as `mote run` reads them.
pub fn npy(data: &[u8]) {
    let _ = mote_cli::run::parse_npy(data, "input");
}

/// Images (PNG, PGM) as `predict` reads them, into a 28×28 input.
pub fn image(data: &[u8]) {
    let _ = mote_cli::predict::decode_image(data, 28, 28);
}

/// ONNX models as `mote import` reads them: decoded, converted, and a converted model built
/// and planned (a refusal is fine; a panic, hang or huge allocation is not).
pub fn onnx(data: &[u8]) {
    imported(mote_cli::import::Format::Onnx, data);
}

/// TFLite models as `mote import` reads them (see [`onnx`]).
pub fn tflite(data: &[u8]) {
    imported(mote_cli::import::Format::Tflite, data);
    // The int8 runner: prepared (every check), and run where the work is small.
    if let Ok(m) = mote_cli::import::tflite::int8::Int8Model::new(data) {
        let n: usize = m.input_shape().iter().product();
        if m.work() <= 20_000_000 {
            let _ = m.run(&vec![0; n]);
        }
    }
}

/// int8 model files (`MOTQ`): checked and loaded (every step checked, the arena planned) as
/// they are, then with their CRC recomputed so that mutations reach the spec and the data, and
/// run where the work is small.
pub fn quant_model(data: &[u8]) {
    let _ = mote_cli::quant::QuantFile::new(data);
    let mut fixed = data.to_vec();
    if fixed.len() >= mote_core::model::HEADER_LEN {
        let crc = crc32(&fixed[mote_core::model::HEADER_LEN..]);
        fixed[16..20].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(file) = mote_cli::quant::QuantFile::new(&fixed) else { return };
    let Ok(model) = file.model() else { return };
    if model.work() <= 20_000_000 {
        let _ = file.run(&vec![0; model.input.numel()]);
    }
}

/// CRC-32 (ISO-HDLC), bit by bit: the model file's checksum.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |mut c, &b| {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
        c
    })
}

fn imported(format: mote_cli::import::Format, data: &[u8]) {
    let Ok(m) = mote_cli::import::convert(format, data, "fuzz") else { return };
    let mut g = G::new();
    let Ok(built) = m.spec.build(&mut g, 1) else { return };
    assert_eq!(g.params_len(), m.params.len(), "an imported model's parameters fit its spec");
    let _ = P::inference(&g, &[built.output], Mode::Eval);
}
