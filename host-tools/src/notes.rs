//! What the host tools keep about a model in its file's notes (bytes after the spec that
//! only the host reads): an imported model's source input and output names, so `mote run`
//! speaks of the source's tensors. A JSON object after a marker line; files without notes
//! (or with notes of another kind) read as having none.

use serde_json::{json, Value};

/// The first bytes of notes this version writes.
const MARKER: &[u8] = b"mote-notes/1\n";

/// The notes of a model file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notes {
    /// The source model's input names, in order (empty: a native model).
    pub inputs: Vec<String>,
    /// The source model's output names.
    pub outputs: Vec<String>,
}

impl Notes {
    /// The bytes stored after the spec (none for empty notes).
    pub fn to_bytes(&self) -> Vec<u8> {
        if *self == Notes::default() {
            return Vec::new();
        }
        let mut out = MARKER.to_vec();
        out.extend_from_slice(json!({"inputs": self.inputs, "outputs": self.outputs}).to_string().as_bytes());
        out
    }

    /// The notes in `bytes` (a notes section), or none.
    pub fn from_bytes(bytes: &[u8]) -> Notes {
        let Some(Ok(value)) = bytes.strip_prefix(MARKER).map(serde_json::from_slice::<Value>) else { return Notes::default() };
        let names = |key: &str| -> Vec<String> {
            value[key].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default()
        };
        Notes { inputs: names("inputs"), outputs: names("outputs") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_round_trip_and_foreign_bytes_read_as_none() {
        let notes = Notes { inputs: vec!["image".into(), "mask".into()], outputs: vec!["logits".into()] };
        assert_eq!(Notes::from_bytes(&notes.to_bytes()), notes);
        assert!(Notes::default().to_bytes().is_empty());
        for foreign in [&b""[..], b"mote-notes/9\n{}", b"mote-notes/1\n{not json", b"\xff\xfe"] {
            assert_eq!(Notes::from_bytes(foreign), Notes::default());
        }
    }
}
