//! Model files written by an earlier build read the same forever: the checked-in
//! `tests/fixtures/every-op-v1.mote` (written by `examples/write_every_op_fixture.rs` with
//! format version 1, before op tags were made explicit) decodes to the spec and parameters it
//! was written from, and today's writer produces the same bytes. Reordering or renumbering an
//! op tag, or changing how a setting is encoded, fails here.

use mote_core::model::{model_file_len, read_model, write_model};
use mote_core::Graph;
use mote_tests::every_op::{every_op_spec, EVERY_OP_SEED};

const FIXTURE: &[u8] = include_bytes!("../fixtures/every-op-v1.mote");

fn seeded_params() -> Vec<f32> {
    let mut g: Graph = Graph::new();
    every_op_spec().build(&mut g, 1).expect("the every-op spec builds");
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, EVERY_OP_SEED).expect("init");
    params
}

#[test]
fn version_1_file_decodes_to_the_same_model() {
    let view = read_model(FIXTURE).expect("a version-1 file is readable");
    assert_eq!(view.spec, every_op_spec());
    let mut params = vec![0.0; view.param_count()];
    view.copy_params(&mut params).expect("params");
    assert_eq!(params, seeded_params());
}

#[test]
fn todays_writer_produces_the_same_bytes() {
    let (spec, params) = (every_op_spec(), seeded_params());
    let mut bytes = vec![0u8; model_file_len(&spec, params.len()).expect("length")];
    let n = write_model(&spec, &params, &mut bytes).expect("write");
    assert_eq!(&bytes[..n], FIXTURE);
}
