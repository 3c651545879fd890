//! int8 model files on the host: building one (its data section and steps), writing it, and
//! loading one into aligned memory to check and run it with the core's int8 runner.

use mote_core::model::{check_quant_model, write_quant_model, Name, QUANT_MAGIC};
use mote_core::quant::{quant_spec_len, write_quant_spec, Blob, QStep, QTensor, QuantError, QuantModel};
use mote_kernels::reference::int8::Requant;

/// The data section of an int8 model file being built: int8 values anywhere, i32 values and
/// requantization tables at 4-byte aligned offsets.
#[derive(Default)]
pub struct DataBuilder {
    pub bytes: Vec<u8>,
}

impl DataBuilder {
    fn push(&mut self, bytes: &[u8], align: usize) -> Blob {
        self.bytes.resize(self.bytes.len().next_multiple_of(align), 0);
        let offset = self.bytes.len() as u32;
        self.bytes.extend_from_slice(bytes);
        Blob { offset, len: bytes.len() as u32 }
    }
    /// int8 values (weights, a constant operand).
    pub fn i8(&mut self, values: &[i8]) -> Blob {
        self.push(&values.iter().map(|&v| v as u8).collect::<Vec<_>>(), 1)
    }
    /// i32 values (a bias).
    pub fn i32(&mut self, values: &[i32]) -> Blob {
        self.push(&values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(), 4)
    }
    /// A requantization table (`Requant` is two i32s, multiplier then shift).
    pub fn requant(&mut self, values: &[Requant]) -> Blob {
        self.push(&values.iter().flat_map(|r| [r.multiplier.to_le_bytes(), r.shift.to_le_bytes()]).flatten().collect::<Vec<_>>(), 4)
    }
}

/// The bytes of an int8 model file.
pub fn quant_file(name: &str, input: &QTensor, steps: &[QStep], data: &[u8], notes: &[u8]) -> Result<Vec<u8>, String> {
    let name = Name::try_from(truncate(name, 24)).map_err(|_| "model name".to_string())?;
    let spec_len = quant_spec_len(&name, input, steps).map_err(|e| e.to_string())?;
    let mut spec = vec![0u8; spec_len + notes.len()];
    write_quant_spec(&name, input, steps, &mut spec).map_err(|e| e.to_string())?;
    spec[spec_len..].copy_from_slice(notes);
    let mut out = vec![0u8; mote_core::model::HEADER_LEN + data.len() + spec.len()];
    write_quant_model(data, &spec, &mut out).map_err(|e| e.to_string())?;
    // What is written must load: a builder bug is an error here, never a bad file on disk.
    QuantFile::new(&out)?;
    Ok(out)
}

/// The int8 model file `file` with `notes` in place of its notes.
pub fn with_notes(file: &[u8], notes: &[u8]) -> Result<Vec<u8>, String> {
    let loaded = QuantFile::new(file)?;
    let model = loaded.model()?;
    let parts = check_quant_model(file).map_err(|e| e.to_string())?;
    let spec = &parts.spec_bytes[..parts.spec_bytes.len() - model.notes.len()];
    let mut with = spec.to_vec();
    with.extend_from_slice(notes);
    let mut out = vec![0u8; mote_core::model::HEADER_LEN + parts.param_bytes.len() + with.len()];
    write_quant_model(parts.param_bytes, &with, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The first `max` bytes of `s` cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Whether `bytes` start like an int8 model file.
pub fn is_quant_file(bytes: &[u8]) -> bool {
    bytes.starts_with(&QUANT_MAGIC)
}

/// An int8 model file in 4-byte aligned memory, checked: its data is read in place.
pub struct QuantFile {
    words: Vec<u32>,
    len: usize,
}

impl QuantFile {
    /// Copies and checks `bytes` (header, CRC, every step, the arena plan).
    pub fn new(bytes: &[u8]) -> Result<QuantFile, String> {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        for (w, chunk) in words.iter_mut().zip(bytes.chunks(4)) {
            let mut b = [0u8; 4];
            b[..chunk.len()].copy_from_slice(chunk);
            *w = u32::from_le_bytes(b);
        }
        let file = QuantFile { words, len: bytes.len() };
        file.model()?;
        Ok(file)
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the words' memory holds `4 · words.len() ≥ len` initialized bytes; u8 has
        // no alignment or validity requirement.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }

    /// The model, its steps checked and its arena planned.
    pub fn model(&self) -> Result<QuantModel<'_>, String> {
        let parts = check_quant_model(self.bytes()).map_err(|e| e.to_string())?;
        QuantModel::new(parts.spec_bytes, parts.param_bytes).map_err(|e: QuantError| e.to_string())
    }

    /// The output for `input` (int8, NHWC, one sample), calling `each(k, output)` after step `k`.
    pub fn run_each(&self, input: &[i8], each: impl FnMut(usize, &[i8])) -> Result<Vec<i8>, String> {
        let model = self.model()?;
        let mut arena = vec![0i8; model.arena_len()];
        model.run_each(&mut arena, input, each).map(|y| y.to_vec()).map_err(|e| e.to_string())
    }

    /// The output for `input` (int8, NHWC, one sample).
    pub fn run(&self, input: &[i8]) -> Result<Vec<i8>, String> {
        self.run_each(input, |_, _| {})
    }
}
