//! Models: a layer list ([`ModelSpec`]) that builds a graph for any batch size, and the model
//! file that stores it with its parameters (postcard, magic, version, CRC-32).

mod file;
mod spec;

pub use file::{
    check_model, model_file_len, model_header, model_len_from_header, read_model, write_model, ModelError, ModelParts, ModelView,
    FORMAT_VERSION, HEADER_LEN, MAGIC,
};
pub use spec::{build_from_postcard, BuiltModel, Layer, LayerOp, Loss, ModelSpec, Name, SpecError, SpecErrorKind, MAX_LAYERS};

/// Graph capacity (nodes) of the firmware: `mote export` refuses a model that does not fit.
pub const FIRMWARE_NODES: usize = 32;
/// Plan capacity (steps) of the firmware.
pub const FIRMWARE_STEPS: usize = 64;
