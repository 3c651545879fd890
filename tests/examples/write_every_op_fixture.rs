//! Writes `tests/fixtures/every-op-v1.mote`: the every-op spec with its seeded parameters, in
//! the model-file format of the day. Run once when a format version is added (never to
//! "fix" the compatibility test): `cargo run -p mote-tests --example write_every_op_fixture`.

use mote_core::model::{model_file_len, write_model, FORMAT_VERSION};
use mote_core::Graph;
use mote_tests::every_op::{every_op_spec, EVERY_OP_SEED};

fn main() {
    let spec = every_op_spec();
    let mut g: Graph = Graph::new();
    spec.build(&mut g, 1).expect("the every-op spec builds");
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, EVERY_OP_SEED).expect("init");
    let mut bytes = vec![0u8; model_file_len(&spec, params.len()).expect("length")];
    write_model(&spec, &params, &mut bytes).expect("write");
    let path = format!("{}/fixtures/every-op-v{FORMAT_VERSION}.mote", env!("CARGO_MANIFEST_DIR"));
    std::fs::write(&path, &bytes).expect("write the fixture");
    println!("{path}: {} bytes, {} parameters", bytes.len(), params.len());
}
