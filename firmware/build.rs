//! Build script: links `memory.x`, plans the exported model (`model/model.mote`, written by
//! `mote export`) for inference and for a training step, writes both plans as bytes for the
//! firmware to execute (the device never plans), and sizes the static arenas from them, so
//! RAM is known at link time.

use mote_core::model::{check_quant_model, read_model, FirmwarePlans};
use mote_core::quant::QuantModel;
use mote_core::{Graph, Isa};
use std::path::PathBuf;

const NODES: usize = mote_core::model::FIRMWARE_NODES;
const STEPS: usize = mote_core::model::FIRMWARE_STEPS;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // The Cortex-M55 (Armv8.1-M, mps3-an547) has its own memory map and SysTick rate.
    println!("cargo:rustc-check-cfg=cfg(m55)");
    let m55 = std::env::var("TARGET").is_ok_and(|t| t.starts_with("thumbv8m"));
    if m55 {
        println!("cargo:rustc-cfg=m55");
    }
    let memory = if m55 { "memory-m55.x" } else { "memory.x" };
    std::fs::copy(memory, out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={memory}");
    println!("cargo:rerun-if-changed=model/model.mote");

    let bytes = std::fs::read("model/model.mote")
        .unwrap_or_else(|e| panic!("firmware/model/model.mote: {e}: export a model first (`mote export MODEL`, or `cargo xtask qemu`)"));
    let view = read_model(&bytes).unwrap_or_else(|e| panic!("firmware/model/model.mote: {e}"));
    let mut g = Graph::<NODES>::new();
    let built = view.spec.build(&mut g, 1).unwrap_or_else(|e| panic!("firmware/model/model.mote: {e}"));
    // The kernels the firmware runs (its cargo features): scratch sizes depend on them.
    let isa = if std::env::var_os("CARGO_FEATURE_MVE").is_some() {
        Isa::Mve
    } else if std::env::var_os("CARGO_FEATURE_DSP").is_some() {
        Isa::Dsp
    } else {
        Isa::Reference
    };
    let plans = FirmwarePlans::new(&g, &built, isa).unwrap_or_else(|e| panic!("firmware/model/model.mote: {e}"));
    let FirmwarePlans { infer, train, infer_ref, train_ref } = &plans;
    for (plan, file) in [(infer, "infer.plan"), (train, "train.plan"), (infer_ref, "infer_ref.plan"), (train_ref, "train_ref.plan")] {
        let mut bytes = vec![0u8; plan.encoded_len()];
        plan.to_bytes(&mut bytes).unwrap();
        std::fs::write(out.join(file), bytes).unwrap();
    }
    // The graph as bytes: the device decodes it instead of building it from the spec.
    let mut graph = vec![0u8; g.encoded_len().unwrap()];
    g.to_bytes(&mut graph).unwrap();
    std::fs::write(out.join("graph.bytes"), graph).unwrap();
    // The ops this firmware links: the model's.
    let ops = g.nodes().iter().filter_map(|n| n.op()).fold(0, |set, op| set | op.bit());
    let (x, output, target, loss) = (built.x.index(), built.output.index(), built.target.index(), built.loss.index());
    let sizes = format!(
        "/// Ops of the model's graph (`Graph::from_bytes_in`, `run_inference_in`).\npub const OPS: mote_core::ops::OpSet = {ops:#x};\n\
         /// The model's graph at batch 1, as bytes (`Graph::to_bytes`).\npub static GRAPH: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/graph.bytes\"));\n\
         /// Node indices of the graph's input, output, target and loss.\npub const MODEL_NODES: [usize; 4] = [{x}, {output}, {target}, {loss}];\n\
         /// Graph node capacity.\npub const NODES: usize = {NODES};\n/// Plan step capacity.\npub const STEPS: usize = {STEPS};\n\
         /// Values of the inference arena.\npub const INFER_ARENA: usize = {};\n/// Values of the training arena.\npub const TRAIN_ARENA: usize = {};\n\
         /// Values of parameters and state.\npub const PARAMS: usize = {};\n/// Values of SGD-momentum state.\npub const OPTIMIZER: usize = {};\n\
         /// Trainable parameter values.\npub const TRAINABLE: usize = {};\n\
         /// The inference plan, as bytes.\npub static INFER_PLAN: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/infer.plan\"));\n\
         /// The training plan, as bytes.\npub static TRAIN_PLAN: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/train.plan\"));\n\
         /// The benchmark's baseline inference plan (out of place, unfused), as bytes.\npub static INFER_REF_PLAN: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/infer_ref.plan\"));\n\
         /// The benchmark's baseline training plan (out of place, unfused, no updates in the backward), as bytes.\npub static TRAIN_REF_PLAN: &[u8] = include_bytes!(concat!(env!(\"OUT_DIR\"), \"/train_ref.plan\"));\n\
         /// Values of the largest arena of the four plans (the benchmark's).\npub const BENCH_ARENA: usize = {};\n",
        infer.arena_len(),
        train.arena_len(),
        g.params_len(),
        train.optimizer_len(),
        g.trainable_params(),
        plans.bench_arena_len()
    );
    std::fs::write(out.join("sizes.rs"), sizes + &int8_model(&out)).unwrap();
}

/// The int8 model `qinfer` runs (`model/model-int8.mote`, written by `cargo xtask qemu infer
/// --model`), copied where the binary embeds it, and its arena size; an empty model if none.
fn int8_model(out: &std::path::Path) -> String {
    println!("cargo:rerun-if-changed=model/model-int8.mote");
    let bytes = std::fs::read("model/model-int8.mote").unwrap_or_default();
    let arena = if bytes.is_empty() {
        0
    } else {
        let parts = check_quant_model(&bytes).unwrap_or_else(|e| panic!("firmware/model/model-int8.mote: {e}"));
        // The data section is read in place and must be 4-byte aligned: copy it to words.
        let data = parts.param_bytes;
        let aligned: Vec<u32> = data
            .chunks(4)
            .map(|c| {
                let mut b = [0u8; 4];
                b[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(b)
            })
            .collect();
        // SAFETY: the words hold at least `data.len()` initialized bytes.
        let view = unsafe { std::slice::from_raw_parts(aligned.as_ptr().cast::<u8>(), data.len()) };
        QuantModel::new(parts.spec_bytes, view).unwrap_or_else(|e| panic!("firmware/model/model-int8.mote: {e}")).arena_len()
    };
    std::fs::write(out.join("model-int8.mote"), &bytes).unwrap();
    format!(
        "/// The int8 model `qinfer` runs (empty if none was exported).\npub static INT8_MODEL: &crate::model::Aligned<[u8]> = &crate::model::Aligned(*include_bytes!(concat!(env!(\"OUT_DIR\"), \"/model-int8.mote\")));\n\
         /// Bytes of the int8 model's arena.\npub const INT8_ARENA: usize = {arena};\n"
    )
}
