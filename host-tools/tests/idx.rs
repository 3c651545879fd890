//! The IDX reader: raw and gzip files, and errors that name the file and the problem.

use flate2::write::GzEncoder;
use mote_cli::dataset::load_split;
use mote_cli::idx::{encode_idx, parse_idx, read_idx};
use std::io::Write;

#[test]
fn raw_and_gzip_files_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2 * 3 * 4).map(|v| v as u8).collect();
    let bytes = encode_idx(&[2, 3, 4], &data);
    std::fs::write(dir.path().join("a"), &bytes).unwrap();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    std::fs::write(dir.path().join("a.gz"), gz.finish().unwrap()).unwrap();
    let raw = read_idx(&dir.path().join("a"), 3).unwrap();
    assert_eq!(raw.dims, [2, 3, 4]);
    assert_eq!(raw.data, data);
    assert_eq!(read_idx(&dir.path().join("a.gz"), 3).unwrap(), raw);
}

#[test]
fn bad_files_say_what_is_wrong() {
    let good = encode_idx(&[2, 2, 2], &[1; 8]);
    let cases: Vec<(Vec<u8>, usize, &str)> = vec![
        (vec![1, 2], 3, "too short"),
        (vec![7, 0, 8, 3, 0, 0, 0, 0], 3, "bad magic"),
        (vec![0, 0, 0x0d, 3], 3, "element type 0x0d"),
        (good.clone(), 1, "has 3 dimensions, expected 1"),
        (good[..10].to_vec(), 3, "header truncated"),
        (good[..good.len() - 1].to_vec(), 3, "need 8 data bytes, file has 7"),
    ];
    for (bytes, rank, needle) in cases {
        let err = parse_idx(&bytes, rank).unwrap_err();
        assert!(err.contains(needle), "{err:?} should contain {needle:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x"), [0x1f, 0x8b, 1, 2, 3]).unwrap();
    let err = read_idx(&dir.path().join("x"), 3).unwrap_err().to_string();
    assert!(err.contains("/x") && err.contains("bad gzip"), "{err}");
}

#[test]
fn image_and_label_counts_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), encode_idx(&[3, 2, 2], &[0; 12])).unwrap();
    std::fs::write(dir.path().join("train-labels-idx1-ubyte"), encode_idx(&[2], &[0, 1])).unwrap();
    let err = load_split(dir.path(), "train").unwrap_err().to_string();
    assert!(err.contains("train-labels-idx1-ubyte") && err.contains("has 2 labels but") && err.contains("3 images"), "{err}");
    let err = load_split(dir.path(), "t10k").unwrap_err().to_string();
    assert!(err.contains("t10k-images-idx3-ubyte") && err.contains("cargo xtask data"), "{err}");
}
