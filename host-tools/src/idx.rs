//! IDX files (the MNIST format), raw or gzip: magic, dimensions and sizes are checked, and a
//! problem names the file and what is wrong with it.

use flate2::read::GzDecoder;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// An IDX problem in one file.
#[derive(Debug)]
pub struct IdxError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for IdxError {}

/// An IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads `path` (gzip when it starts with the gzip magic), expecting `rank` dimensions.
pub fn read_idx(path: &Path, rank: usize) -> Result<IdxArray, IdxError> {
    let err = |message: String| IdxError { path: path.into(), message };
    let raw = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| err(format!("bad gzip data: {e}")))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes, rank).map_err(err)
}

/// Parses IDX bytes holding unsigned bytes in `rank` dimensions.
pub fn parse_idx(bytes: &[u8], rank: usize) -> Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!("too short for an IDX header ({} bytes)", bytes.len()));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!("bad magic {:02x?}: an IDX file starts with two zero bytes", &bytes[..4]));
    }
    if bytes[2] != 0x08 {
        return Err(format!("element type 0x{:02x} is not supported: expected 0x08 (unsigned byte)", bytes[2]));
    }
    let ndims = bytes[3] as usize;
    if ndims != rank {
        return Err(format!("has {ndims} dimensions, expected {rank}"));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format!("header truncated: needs {header} bytes, file has {}", bytes.len()));
    }
    let dims: Vec<usize> =
        (0..ndims).map(|i| u32::from_be_bytes([bytes[4 + 4 * i], bytes[5 + 4 * i], bytes[6 + 4 * i], bytes[7 + 4 * i]]) as usize).collect();
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("dimensions overflow")?;
    let body = bytes.len() - header;
    if body != count {
        return Err(format!("dimensions {dims:?} need {count} data bytes, file has {body}"));
    }
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Writes an IDX array of unsigned bytes (raw).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
