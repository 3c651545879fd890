//! Build script: links `memory.x`, and sizes the static arenas from the plans of the exported
//! model (`model/model.mote`, written by `mote export`), so RAM is known at link time.

use mote_core::model::read_model;
use mote_core::{Graph, Mode, Optimizer, Plan};
use std::path::PathBuf;

const NODES: usize = 32;
const STEPS: usize = 64;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=model/model.mote");

    let bytes = std::fs::read("model/model.mote")
        .unwrap_or_else(|e| panic!("firmware/model/model.mote: {e}: export a model first (`mote export MODEL`, or `cargo xtask qemu`)"));
    let view = read_model(&bytes).unwrap_or_else(|e| panic!("firmware/model/model.mote: {e}"));
    let mut g = Graph::<NODES>::new();
    let built = view.spec.build(&mut g, 1).unwrap_or_else(|e| panic!("firmware/model/model.mote: {e}"));
    let infer = Plan::<NODES, STEPS>::inference(&g, &[built.output], Mode::Eval).unwrap();
    let train = Plan::<NODES, STEPS>::training(&g, built.loss, &[built.output], Some(Optimizer::momentum(0.003, 0.9))).unwrap();
    let sizes = format!(
        "/// Graph node capacity.\npub const NODES: usize = {NODES};\n/// Plan step capacity.\npub const STEPS: usize = {STEPS};\n\
         /// Values of the inference arena.\npub const INFER_ARENA: usize = {};\n/// Values of the training arena.\npub const TRAIN_ARENA: usize = {};\n\
         /// Values of parameters and state.\npub const PARAMS: usize = {};\n/// Values of SGD-momentum state.\npub const OPTIMIZER: usize = {};\n\
         /// Trainable parameter values.\npub const TRAINABLE: usize = {};\n",
        infer.arena_len(),
        train.arena_len(),
        g.params_len(),
        train.optimizer_len(),
        g.trainable_params()
    );
    std::fs::write(out.join("sizes.rs"), sizes).unwrap();
}
