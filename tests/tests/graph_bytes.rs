//! Graphs as bytes (what a firmware embeds instead of building from a spec): a round trip gives
//! the same graph, damaged bytes get typed errors and never a panic, and a build limited to
//! some ops refuses a graph with others.

use mote_core::ops::{Op, OpSet};
use mote_core::{Error, Graph, Rng};
use mote_tests::every_op::every_op_spec;

fn every_op_graph() -> (Graph, Vec<u8>) {
    let mut g: Graph = Graph::new();
    every_op_spec().build(&mut g, 3).unwrap();
    let mut bytes = vec![0u8; g.encoded_len().unwrap()];
    assert_eq!(g.to_bytes(&mut bytes).unwrap(), bytes.len());
    (g, bytes)
}

#[test]
fn a_round_trip_gives_the_same_graph() {
    let (g, bytes) = every_op_graph();
    let back: Graph = Graph::from_bytes(&bytes).unwrap();
    assert_eq!(back.nodes(), g.nodes());
    assert_eq!(back.params_len(), g.params_len());
    assert_eq!(back.fingerprint(), g.fingerprint());
    // A buffer one byte short is refused, not overrun.
    assert!(matches!(g.to_bytes(&mut vec![0u8; bytes.len() - 1]), Err(Error::BufferLength { .. })));
}

#[test]
fn damaged_graph_bytes_get_typed_errors_and_never_panic() {
    let (_, bytes) = every_op_graph();
    for len in 0..bytes.len() {
        let err = Graph::<64>::from_bytes(&bytes[..len]).unwrap_err();
        assert!(matches!(err, Error::GraphBytes { .. }), "{len}: {err}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Graph::<64>::from_bytes(&longer).unwrap_err(), Error::GraphBytes { what: "length (trailing bytes)" });
    assert!(matches!(Graph::<8>::from_bytes(&bytes).unwrap_err(), Error::CapacityExceeded { what: "graph", .. }));
    let mut rng = Rng::new(5);
    let (mut refused, mut decoded) = (0, 0);
    for _ in 0..3000 {
        let mut damaged = bytes.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(damaged.len());
            damaged[at] ^= 1u8 << rng.below(8);
        }
        match Graph::<64>::from_bytes(&damaged) {
            Ok(_) => decoded += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 1000, "refused {refused}, decoded {decoded}");
}

#[test]
fn a_build_limited_to_some_ops_refuses_a_graph_with_others() {
    let mut g: Graph = Graph::new();
    let x = g.input(&[2, 4]).unwrap();
    let h = g.linear(x, 3, true).unwrap();
    g.relu(h).unwrap();
    let mut bytes = vec![0u8; g.encoded_len().unwrap()];
    g.to_bytes(&mut bytes).unwrap();
    let ops: OpSet = g.nodes().iter().filter_map(|n| n.op()).fold(0, |set, op| set | op.bit());
    assert_eq!(Graph::<64>::from_bytes_in::<3>(&bytes).map(|g| g.nodes().len()), Err(Error::OpNotInBuild { op: "relu" }));
    assert_eq!(ops, Op::Linear(mote_core::ops::Linear).bit() | (1 << 3), "linear is bit 0, pointwise bit 3");
    assert_eq!(Graph::<64>::from_bytes_in::<0b1001>(&bytes).unwrap().nodes(), g.nodes());
}
