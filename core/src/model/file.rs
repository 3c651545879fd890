//! The model file: a 20-byte header, the parameters as little-endian f32 (4-byte aligned, so
//! firmware can use them in place from flash), then the spec in postcard.
//!
//! ```text
//! 0   magic "MOTE"        4   format version u16   6  reserved u16 (0)
//! 8   parameter count u32 12  spec length u32      16 CRC-32 of everything after the header
//! 20  parameters (count · 4 bytes)   then the spec (postcard), then optional notes
//! ```
//! The notes are bytes after the spec (inside the spec length and the CRC) that the host tools
//! keep about a model (an imported model's source input and output names); readers that only
//! build the model, the firmware's among them, never look at them.
//! int8 models (`crate::quant`) use the same header with the magic `MOTQ`: the count is then of
//! data bytes (int8 weights, i32 biases and requantization tables at 4-byte aligned offsets), and
//! the spec is the int8 model's.
//! A reader never panics on hostile bytes: every problem is a [`ModelError`].

use super::ModelSpec;
use core::fmt;

/// The first four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"MOTE";
/// The first four bytes of every int8 model file.
pub const QUANT_MAGIC: [u8; 4] = *b"MOTQ";
/// The format version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// CRC-32 (ISO-HDLC, as zlib and PNG) with a 1 KB table: a 16 KB slice-by-16 table would be
/// the largest thing in an inference firmware after the weights.
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
/// Bytes before the parameters.
pub const HEADER_LEN: usize = 20;
/// Largest spec this reader accepts (a spec is a few hundred bytes).
const MAX_SPEC_LEN: usize = 64 * 1024;

/// Why a model file could not be read or written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ModelError {
    /// The file is empty.
    Empty,
    /// The file ends before the header or the body does.
    Truncated { needed: usize, got: usize },
    /// The file does not start with `MOTE`.
    BadMagic { found: [u8; 4] },
    /// A format version this reader does not know.
    UnsupportedVersion { found: u16, supported: u16 },
    /// The reserved header bytes are not zero (a newer writer, or corruption).
    ReservedNotZero { found: u16 },
    /// The header claims sizes no model has.
    Oversized { params: u32, spec_len: u32 },
    /// Bytes after the end of the model.
    TrailingBytes { expected: usize, got: usize },
    /// The body does not match its CRC-32: the file is corrupted.
    Checksum { stored: u32, computed: u32 },
    /// The spec bytes do not decode (the CRC matched, so it was written wrong).
    BadSpec,
    /// The output buffer is too small to write the model.
    BufferTooSmall { needed: usize, got: usize },
    /// An int8 model file where an f32 one is needed (`int8: true`), or the other way round.
    WrongKind { int8: bool },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModelError::Empty => write!(f, "the model file is empty"),
            ModelError::Truncated { needed, got } => write!(f, "truncated model file: needs {needed} bytes, has {got}"),
            ModelError::BadMagic { found } => write!(f, "not a mote model file: starts with {found:02x?}, expected \"MOTE\""),
            ModelError::UnsupportedVersion { found, supported } => {
                write!(f, "model file format version {found} is not supported (this build reads version {supported})")
            }
            ModelError::ReservedNotZero { found } => {
                write!(f, "model file header is corrupted: reserved field is {found:#06x}, expected 0")
            }
            ModelError::Oversized { params, spec_len } => {
                write!(f, "model file header claims {params} parameters and a {spec_len}-byte spec: too large")
            }
            ModelError::TrailingBytes { expected, got } => {
                write!(f, "model file has {} unexpected bytes after its end (expected {expected} bytes, got {got})", got - expected)
            }
            ModelError::Checksum { stored, computed } => {
                write!(f, "model file is corrupted: CRC-32 {computed:08x} does not match the stored {stored:08x}")
            }
            ModelError::BadSpec => write!(f, "model file spec does not decode"),
            ModelError::BufferTooSmall { needed, got } => write!(f, "buffer too small for the model: needs {needed} bytes, has {got}"),
            ModelError::WrongKind { int8: true } => write!(f, "an int8 model file (MOTQ): this needs an f32 model (MOTE)"),
            ModelError::WrongKind { int8: false } => write!(f, "an f32 model file (MOTE): this needs an int8 model (MOTQ)"),
        }
    }
}

impl core::error::Error for ModelError {}

/// A model read from bytes: the spec, and the parameters still as little-endian bytes.
#[derive(Clone, Debug)]
pub struct ModelView<'a> {
    pub spec: ModelSpec,
    /// `count · 4` little-endian f32 bytes, at offset [`HEADER_LEN`] of the file.
    pub param_bytes: &'a [u8],
    /// The notes after the spec (empty for most files).
    pub notes: &'a [u8],
}

impl ModelView<'_> {
    /// Number of parameter values.
    pub fn param_count(&self) -> usize {
        self.param_bytes.len() / 4
    }
    /// Copies the parameters into `out` (length [`Self::param_count`]).
    pub fn copy_params(&self, out: &mut [f32]) -> Result<(), ModelError> {
        if out.len() != self.param_count() {
            return Err(ModelError::BufferTooSmall { needed: self.param_count(), got: out.len() });
        }
        for (o, b) in out.iter_mut().zip(self.param_bytes.chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The two parts of a checked model file.
#[derive(Clone, Copy, Debug)]
pub struct ModelParts<'a> {
    /// `count · 4` little-endian f32 bytes, at offset [`HEADER_LEN`] of the file.
    pub param_bytes: &'a [u8],
    /// The spec in postcard (decode with [`super::build_from_postcard`] or `postcard`).
    pub spec_bytes: &'a [u8],
}

/// Reads a model file, checking magic, version, sizes and CRC, and decodes its spec.
pub fn read_model(bytes: &[u8]) -> Result<ModelView<'_>, ModelError> {
    let parts = check_model(bytes)?;
    let (spec, notes) = postcard::take_from_bytes::<ModelSpec>(parts.spec_bytes).map_err(|_| ModelError::BadSpec)?;
    Ok(ModelView { spec, param_bytes: parts.param_bytes, notes })
}

/// The length of the whole model file whose first bytes are `header` (at least the 20-byte
/// header), after checking magic, version and sizes: how much a receiver must read.
pub fn model_len_from_header(header: &[u8]) -> Result<usize, ModelError> {
    file_len(header, MAGIC, 4)
}

/// [`model_len_from_header`] for a file with `magic` whose count is of `unit`-byte values.
fn file_len(header: &[u8], magic: [u8; 4], unit: usize) -> Result<usize, ModelError> {
    if header.is_empty() {
        return Err(ModelError::Empty);
    }
    let other = if magic == MAGIC { QUANT_MAGIC } else { MAGIC };
    if header.len() >= 4 && header[..4] == other {
        return Err(ModelError::WrongKind { int8: other == QUANT_MAGIC });
    }
    if header.len() < 4 || header[..4] != magic {
        let mut found = [0; 4];
        let n = header.len().min(4);
        found[..n].copy_from_slice(&header[..n]);
        if header.len() < 4 && magic.starts_with(&header[..n]) {
            return Err(ModelError::Truncated { needed: HEADER_LEN, got: header.len() });
        }
        return Err(ModelError::BadMagic { found });
    }
    if header.len() < HEADER_LEN {
        return Err(ModelError::Truncated { needed: HEADER_LEN, got: header.len() });
    }
    let version = u16_at(header, 4);
    if version != FORMAT_VERSION {
        return Err(ModelError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let reserved = u16_at(header, 6);
    if reserved != 0 {
        return Err(ModelError::ReservedNotZero { found: reserved });
    }
    let (params, spec_len) = (u32_at(header, 8), u32_at(header, 12));
    (params as usize)
        .checked_mul(unit)
        .and_then(|p| p.checked_add(HEADER_LEN))
        .and_then(|p| p.checked_add(spec_len as usize))
        .filter(|_| (spec_len as usize) <= MAX_SPEC_LEN)
        .ok_or(ModelError::Oversized { params, spec_len })
}

/// Checks magic, version, sizes and CRC and splits the file, without decoding the spec.
pub fn check_model(bytes: &[u8]) -> Result<ModelParts<'_>, ModelError> {
    check_file(bytes, MAGIC, 4)
}

/// [`check_model`] for an int8 model file (`MOTQ`): `param_bytes` is its data section.
pub fn check_quant_model(bytes: &[u8]) -> Result<ModelParts<'_>, ModelError> {
    check_file(bytes, QUANT_MAGIC, 1)
}

fn check_file(bytes: &[u8], magic: [u8; 4], unit: usize) -> Result<ModelParts<'_>, ModelError> {
    let total = file_len(bytes, magic, unit)?;
    let params = u32_at(bytes, 8);
    if bytes.len() < total {
        return Err(ModelError::Truncated { needed: total, got: bytes.len() });
    }
    if bytes.len() > total {
        return Err(ModelError::TrailingBytes { expected: total, got: bytes.len() });
    }
    let stored = u32_at(bytes, 16);
    let computed = CRC32.checksum(&bytes[HEADER_LEN..]);
    if stored != computed {
        return Err(ModelError::Checksum { stored, computed });
    }
    let params_end = HEADER_LEN + unit * params as usize;
    Ok(ModelParts { param_bytes: &bytes[HEADER_LEN..params_end], spec_bytes: &bytes[params_end..] })
}

/// Writes an int8 model file of `data` (its data section) and `spec` (its spec and notes, as
/// [`crate::quant::write_quant_spec`] makes them) into `out`; returns the bytes written.
pub fn write_quant_model(data: &[u8], spec: &[u8], out: &mut [u8]) -> Result<usize, ModelError> {
    let needed = HEADER_LEN + data.len() + spec.len();
    if out.len() < needed {
        return Err(ModelError::BufferTooSmall { needed, got: out.len() });
    }
    if spec.len() > MAX_SPEC_LEN || u32::try_from(data.len()).is_err() {
        return Err(ModelError::Oversized { params: data.len().min(u32::MAX as usize) as u32, spec_len: spec.len() as u32 });
    }
    out[HEADER_LEN..HEADER_LEN + data.len()].copy_from_slice(data);
    out[HEADER_LEN + data.len()..needed].copy_from_slice(spec);
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&QUANT_MAGIC);
    h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
    h[12..16].copy_from_slice(&(spec.len() as u32).to_le_bytes());
    h[16..20].copy_from_slice(&CRC32.checksum(&out[HEADER_LEN..needed]).to_le_bytes());
    out[..HEADER_LEN].copy_from_slice(&h);
    Ok(needed)
}

/// Bytes `spec` takes in a model file.
fn encoded_spec_len(spec: &ModelSpec) -> Result<usize, ModelError> {
    postcard::experimental::serialized_size(spec).map_err(|_| ModelError::BadSpec)
}

/// Bytes of the model file for `spec` with `param_count` parameters.
pub fn model_file_len(spec: &ModelSpec, param_count: usize) -> Result<usize, ModelError> {
    model_file_len_with_notes(spec, param_count, 0)
}

/// Bytes of the model file for `spec` with `param_count` parameters and `notes` bytes of notes.
pub fn model_file_len_with_notes(spec: &ModelSpec, param_count: usize, notes: usize) -> Result<usize, ModelError> {
    Ok(HEADER_LEN + 4 * param_count + encoded_spec_len(spec)? + notes)
}

/// The header of a model file holding `params` and the postcard `spec_bytes`, for writers
/// that stream the body (a device sending its trained weights over a link).
pub fn model_header(params: &[f32], spec_bytes: &[u8]) -> [u8; HEADER_LEN] {
    let mut crc = CRC32.digest();
    for p in params {
        crc.update(&p.to_le_bytes());
    }
    crc.update(spec_bytes);
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[8..12].copy_from_slice(&(params.len() as u32).to_le_bytes());
    h[12..16].copy_from_slice(&(spec_bytes.len() as u32).to_le_bytes());
    h[16..20].copy_from_slice(&crc.finalize().to_le_bytes());
    h
}

/// Writes `spec` and `params` as a model file into `out`; returns the bytes written.
pub fn write_model(spec: &ModelSpec, params: &[f32], out: &mut [u8]) -> Result<usize, ModelError> {
    write_model_with_notes(spec, params, &[], out)
}

/// [`write_model`] with `notes` after the spec.
pub fn write_model_with_notes(spec: &ModelSpec, params: &[f32], notes: &[u8], out: &mut [u8]) -> Result<usize, ModelError> {
    let params_end = HEADER_LEN + 4 * params.len();
    let needed = params_end + encoded_spec_len(spec)? + notes.len();
    if out.len() < needed {
        return Err(ModelError::BufferTooSmall { needed, got: out.len() });
    }
    for (chunk, p) in out[HEADER_LEN..params_end].chunks_exact_mut(4).zip(params) {
        chunk.copy_from_slice(&p.to_le_bytes());
    }
    let spec_len = match postcard::to_slice(spec, &mut out[params_end..]) {
        Ok(written) => written.len(),
        Err(_) => return Err(ModelError::BadSpec),
    };
    out[params_end + spec_len..needed].copy_from_slice(notes);
    let total = needed;
    let (body, spec_bytes) = out[..total].split_at_mut(params_end);
    let header = model_header(params, spec_bytes);
    body[..HEADER_LEN].copy_from_slice(&header);
    Ok(total)
}
