//! Model files: a round trip gives the same predictions bit for bit, and every truncation,
//! every single-byte flip, random bytes, empty files and other versions are typed errors.

use mote_cli::model::{build, load_model_bytes, save, CliPlan};
use mote_cli::spec_file::read_spec_file;
use mote_core::model::{model_len_from_header, read_model, ModelError, HEADER_LEN};
use mote_core::{Executor, Mode, Rng};
use std::path::Path;

/// A real model file: the shipped mnist-cnn spec with initialized parameters (as `mote train`
/// writes it before its first step), plus those parameters.
fn real_model(dir: &Path) -> (Vec<u8>, Vec<f32>) {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/mnist-cnn.toml");
    let spec = read_spec_file(&spec_path).unwrap().spec;
    let (g, _) = build(&spec_path, &spec, 1).unwrap();
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 3).unwrap();
    let path = dir.join("cnn.mote");
    save(&path, &spec, &params).unwrap();
    (std::fs::read(&path).unwrap(), params)
}

#[test]
fn round_trip_gives_the_same_predictions_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, params) = real_model(dir.path());
    let (spec, loaded) = load_model_bytes(Path::new("cnn.mote"), &bytes).unwrap();
    assert!(params.iter().zip(&loaded).all(|(a, b)| a.to_bits() == b.to_bits()));
    let (g, built) = build(Path::new("cnn"), &spec, 4).unwrap();
    let plan = CliPlan::inference(&g, &[built.output], Mode::Eval).unwrap();
    let mut rng = Rng::new(1);
    let input: Vec<f32> = (0..4 * 784).map(|_| rng.uniform()).collect();
    let logits = |p: &[f32]| {
        let mut arena = vec![0.0; plan.arena_len()];
        let mut ex = Executor::read_only(&g, &plan, p, &mut arena).unwrap();
        ex.set_input(built.x, &input).unwrap();
        ex.run().unwrap();
        ex.value(built.output).unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    };
    assert_eq!(logits(&params), logits(&loaded));
    // Saving again gives the same bytes.
    let again = dir.path().join("again.mote");
    save(&again, &spec, &loaded).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), bytes);
}

#[test]
fn every_truncation_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = real_model(dir.path());
    assert_eq!(read_model(&[]).err(), Some(ModelError::Empty));
    for len in 1..bytes.len() {
        match read_model(&bytes[..len]) {
            Err(ModelError::Truncated { needed, got }) => {
                assert_eq!(got, len);
                assert!(needed == HEADER_LEN || needed == bytes.len(), "{needed}");
            }
            other => panic!("truncated to {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn every_single_byte_flip_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = real_model(dir.path());
    let mut rng = Rng::new(9);
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 1 << rng.below(8);
        let err = read_model(&bad).err().unwrap_or_else(|| panic!("flip at byte {at} not detected"));
        let expected = match at {
            0..4 => matches!(err, ModelError::BadMagic { .. }),
            4..6 => matches!(err, ModelError::UnsupportedVersion { .. }),
            6..8 => matches!(err, ModelError::ReservedNotZero { .. }),
            8..16 => matches!(err, ModelError::Truncated { .. } | ModelError::TrailingBytes { .. } | ModelError::Oversized { .. }),
            _ => matches!(err, ModelError::Checksum { .. }),
        };
        assert!(expected, "flip at byte {at}: {err:?}");
    }
    // Many random multi-byte corruptions, and random files.
    for _ in 0..2000 {
        let mut bad = bytes.clone();
        for _ in 0..1 + rng.below(8) {
            let at = rng.below(bad.len());
            bad[at] = rng.next_u64() as u8;
        }
        if bad != bytes {
            assert!(read_model(&bad).is_err());
        }
        let random: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
        assert!(read_model(&random).is_err());
    }
}

#[test]
fn other_versions_and_trailing_bytes_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = real_model(dir.path());
    let mut v2 = bytes.clone();
    v2[4] = 2;
    let err = read_model(&v2).err().unwrap();
    assert_eq!(err, ModelError::UnsupportedVersion { found: 2, supported: 1 });
    assert!(err.to_string().contains("version 2 is not supported"));
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(read_model(&longer).err(), Some(ModelError::TrailingBytes { expected: bytes.len(), got: bytes.len() + 1 }));
}

#[test]
fn a_failed_save_leaves_the_old_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, params) = real_model(dir.path());
    let path = dir.path().join("cnn.mote");
    // A directory where the temporary file should go makes the write fail.
    std::fs::create_dir(dir.path().join("cnn.mote.tmp")).unwrap();
    let spec = load_model_bytes(&path, &bytes).unwrap().0;
    assert!(save(&path, &spec, &params).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn streaming_spec_build_matches_the_decoded_spec() {
    use mote_core::model::{build_from_postcard, check_model};
    let dir = tempfile::tempdir().unwrap();
    let (bytes, _) = real_model(dir.path());
    let spec = read_model(&bytes).unwrap().spec;
    let parts = check_model(&bytes).unwrap();
    let mut a = mote_core::Graph::<64>::new();
    let mut b = mote_core::Graph::<64>::new();
    let built_a = spec.build(&mut a, 2).unwrap();
    let built_b = build_from_postcard(parts.spec_bytes, &mut b, 2).unwrap();
    assert_eq!(a.nodes(), b.nodes());
    assert_eq!(built_a.layers, built_b.layers);
    assert_eq!((built_a.output, built_a.loss), (built_b.output, built_b.loss));
    assert!(build_from_postcard(&parts.spec_bytes[..parts.spec_bytes.len() - 1], &mut mote_core::Graph::<64>::new(), 1).is_err());
}

/// A receiver (the firmware loading a model over its link) reads the header first: it must
/// learn the file's exact length from it, or a typed error.
#[test]
fn the_header_gives_the_file_length_or_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, params) = real_model(dir.path());
    let header = &bytes[..HEADER_LEN];
    assert_eq!(model_len_from_header(header), Ok(bytes.len()));
    assert_eq!(model_len_from_header(&bytes), Ok(bytes.len()));
    // By hand: 20 header bytes, 4 per parameter, then the spec.
    assert!(bytes.len() > HEADER_LEN + 4 * params.len());
    for len in 0..HEADER_LEN {
        let err = model_len_from_header(&header[..len]).unwrap_err();
        assert!(matches!(err, ModelError::Empty | ModelError::Truncated { .. }), "{len}: {err}");
    }
    let mut huge = header.to_vec();
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(model_len_from_header(&huge), Err(ModelError::Oversized { .. })));
    let mut other = header.to_vec();
    other[0] = b'X';
    assert!(matches!(model_len_from_header(&other), Err(ModelError::BadMagic { .. })));
}

#[test]
fn the_cli_keeps_model_and_spec_errors_typed_until_printed() {
    use mote_cli::error::CliError;
    use mote_core::model::SpecErrorKind;
    let dir = tempfile::tempdir().unwrap();
    let (mut bytes, _) = real_model(dir.path());
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    match load_model_bytes(Path::new("bad.mote"), &bytes) {
        Err(CliError::Model { path, source: ModelError::Checksum { .. } }) => assert_eq!(path, Path::new("bad.mote")),
        other => panic!("expected a typed checksum error, got {other:?}"),
    }
    // A spec whose conv padding overflows the shape arithmetic: a typed graph error inside a
    // typed spec error, with its source chain intact.
    let mut spec = shipped_cnn_spec();
    if let mote_core::model::LayerOp::Conv2d { padding, .. } = &mut spec.layers[0].op {
        *padding = [u32::MAX, u32::MAX];
    }
    let err = build(Path::new("huge.toml"), &spec, 1).map(|_| ()).unwrap_err();
    let CliError::Build { source, .. } = &err else { panic!("{err:?}") };
    assert_eq!(source.layer, Some(0));
    assert!(matches!(source.kind, SpecErrorKind::Graph(_)), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

/// The shipped mnist-cnn spec (its first layer is a conv).
fn shipped_cnn_spec() -> mote_core::model::ModelSpec {
    read_spec_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/mnist-cnn.toml")).unwrap().spec
}
