//! `mote import` end to end: a model with unsupported nodes is refused with every one of them
//! named and nothing written; truncated, corrupted or foreign files get typed errors; an
//! imported model runs with `mote run` on all its inputs, with shape errors naming the input.

use mote_cli::import::onnx::proto::{self, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, ValueInfoProto};
use prost::Message;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn mote(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mote")).args(args).current_dir(root()).output().expect("run mote")
}

/// Requires exit code 1 (not a panic) and a message containing every needle; returns stderr.
fn fails(args: &[&str], needles: &[&str]) -> String {
    let out = mote(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "mote {args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr {stderr:?} should contain {n:?}");
    }
    stderr
}

fn case(name: &str) -> PathBuf {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx-backend");
    ["pytorch-converted", "pytorch-operator"].iter().map(|d| base.join(d).join(name)).find(|p| p.exists()).unwrap()
}

fn float_input(name: &str, dims: &[i64]) -> ValueInfoProto {
    use proto::tensor_shape_proto::{dimension::Value, Dimension};
    let dim = dims.iter().map(|&d| Dimension { value: Some(Value::DimValue(d)), ..Default::default() }).collect();
    let tensor = proto::type_proto::Tensor { elem_type: Some(1), shape: Some(proto::TensorShapeProto { dim }) };
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(proto::TypeProto { value: Some(proto::type_proto::Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

fn node(name: &str, op: &str, inputs: &[&str], output: &str, attributes: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attributes,
        ..Default::default()
    }
}

/// Relu → Elu → Pad (reflect) → Selu → Sigmoid: three unsupported nodes, two of them after
/// one that already failed.
fn three_unsupported() -> Vec<u8> {
    let reflect = AttributeProto { name: Some("mode".into()), s: Some(b"reflect".to_vec()), r#type: Some(3), ..Default::default() };
    let pads = AttributeProto { name: Some("pads".into()), ints: vec![0, 0, 1, 1, 0, 0, 1, 1], r#type: Some(7), ..Default::default() };
    let graph = GraphProto {
        node: vec![
            node("first", "Relu", &["x"], "a", vec![]),
            node("elu", "Elu", &["a"], "b", vec![]),
            node("mirror", "Pad", &["b"], "c", vec![reflect, pads]),
            node("selu", "Selu", &["c"], "d", vec![]),
            node("last", "Sigmoid", &["d"], "y", vec![]),
        ],
        input: vec![float_input("x", &[1, 2, 4, 4])],
        output: vec![float_input("y", &[1, 2, 6, 6])],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(7),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(9) }],
        graph: Some(graph),
        ..Default::default()
    };
    model.encode_to_vec()
}

#[test]
fn every_unsupported_node_is_listed_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("three.onnx");
    std::fs::write(&src, three_unsupported()).unwrap();
    let out = dir.path().join("three.mote");
    let stderr = fails(
        &["import", src.to_str().unwrap(), "--out", out.to_str().unwrap()],
        &[
            "3 unsupported node(s), nothing written",
            "node `elu` (Elu opset 9)",
            "node `mirror` (Pad opset 9): mode `reflect`",
            "node `selu` (Selu opset 9)",
        ],
    );
    assert!(!stderr.contains("`first`") && !stderr.contains("`last`"), "{stderr}");
    assert!(!out.exists(), "a refused import must not write");
}

#[test]
fn an_existing_output_survives_a_refused_import() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("three.onnx");
    std::fs::write(&src, three_unsupported()).unwrap();
    let out = dir.path().join("kept.mote");
    std::fs::write(&out, b"previous").unwrap();
    fails(&["import", src.to_str().unwrap(), "--out", out.to_str().unwrap()], &["unsupported"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"previous");
}

#[test]
fn truncated_corrupted_and_foreign_files_get_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.mote");
    let o = out.to_str().unwrap();
    let good = std::fs::read(case("test_Conv2d").join("model.onnx")).unwrap();
    let tflite = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tflite/cases/convs.tflite")).unwrap();
    let files: [(&str, Vec<u8>, &[&str]); 6] = [
        ("half.onnx", good[..good.len() / 2].to_vec(), &["does not decode", "not an ONNX model"]),
        ("empty.onnx", Vec::new(), &["the ONNX model has no graph"]),
        ("text.onnx", b"this is not protobuf at all".to_vec(), &["does not decode"]),
        ("half.tflite", tflite[..tflite.len() / 2].to_vec(), &["does not decode", "not a TFLite model"]),
        ("onnx.tflite", good.clone(), &["not a TFLite model", "TFL3"]),
        ("model.pb", good, &["give a .onnx file (ONNX) or a .tflite file (TFLite)"]),
    ];
    for (name, bytes, needles) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        fails(&["import", path.to_str().unwrap(), "--out", o], needles);
        assert!(!out.exists(), "{name}: nothing may be written");
    }
}

#[test]
fn an_imported_model_with_three_inputs_runs_and_names_a_misfit_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("addmm.mote");
    let m = model.to_str().unwrap();
    let out = mote(&["import", case("test_operator_addmm").join("model.onnx").to_str().unwrap(), "--out", m, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["inputs"].as_array().unwrap().len(), 3, "{report}");
    // The case's inputs as .npy files: [2, 3], [3, 4], [4].
    let write = |name: &str, shape: &[usize]| {
        let path = dir.path().join(name);
        let t =
            mote_cli::run::Tensor { shape: shape.to_vec(), values: (0..shape.iter().product::<usize>()).map(|i| i as f32 * 0.1).collect() };
        mote_cli::run::write_npy(&path, &t).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (a, b, c, bad) = (write("a.npy", &[2, 3]), write("b.npy", &[3, 4]), write("c.npy", &[4]), write("bad.npy", &[4, 3]));
    let y = dir.path().join("y.npy");
    let yo = y.to_str().unwrap();
    let ok = mote(&["run", m, "--input", &a, "--input", &b, "--input", &c, "--output", yo]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    // The graph is Gemm(a, b, c) then Gemm(a, b, that): y = 2·a·b + c. By hand, with
    // a = 0.1·[0..6), b = 0.1·[0..12), c = 0.1·[0..4): y[0][0] = 2·(0.1·0.4 + 0.2·0.8) + 0 = 0.4
    // and y[1][3] = 2·(0.3·0.3 + 0.4·0.7 + 0.5·1.1) + 0.3 = 2.14.
    let got = mote_cli::run::read_npy(&y, "output").unwrap();
    assert_eq!(got.shape, vec![2, 4]);
    assert!((got.values[0] - 0.4).abs() < 1e-5 && (got.values[7] - 2.14).abs() < 1e-5, "{:?}", got.values);
    fails(&["run", m, "--input", &a, "--input", &bad, "--input", &c, "--output", yo], &["bad.npy", "`1` [3, 4]"]);
    // The source's input names (`0`, `1`, `2`), kept in the model file's notes.
    fails(&["run", m, "--input", &a, "--output", yo], &["3 input(s)", "`0`, `1`, `2`", "got 1"]);
}

/// A one-node model over `x` [1, 4] with initializer `k`.
fn one_node(op: &str, k: proto::TensorProto) -> Vec<u8> {
    let graph = GraphProto {
        node: vec![node("n", op, &["x", "k"], "y", vec![])],
        input: vec![float_input("x", &[1, 4])],
        output: vec![float_input("y", &[1, 4])],
        initializer: vec![k],
        ..Default::default()
    };
    let opset = vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(13) }];
    ModelProto { ir_version: Some(7), opset_import: opset, graph: Some(graph), ..Default::default() }.encode_to_vec()
}

/// Shapes a hostile file can hold that once reached an index or a multiplication unchecked:
/// a scalar Gemm B, a reshape whose target overflows. Each is refused by name.
#[test]
fn hostile_shapes_are_refused_not_panics() {
    use mote_cli::import::{convert, Format, ImportError};
    let scalar = proto::TensorProto { name: Some("k".into()), data_type: Some(1), float_data: vec![2.0], ..Default::default() };
    let huge = proto::TensorProto {
        name: Some("k".into()),
        data_type: Some(7),
        dims: vec![3],
        int64_data: vec![1, 1 << 40, 1 << 40],
        ..Default::default()
    };
    for (op, k, needle) in [("Gemm", scalar, "Gemm's B is a matrix"), ("Reshape", huge, "too large")] {
        match convert(Format::Onnx, &one_node(op, k), "hostile") {
            Err(ImportError::Unsupported(list)) => assert!(list[0].what.contains(needle), "{op}: {list:?}"),
            other => panic!("{op}: {other:?}"),
        }
    }
}
