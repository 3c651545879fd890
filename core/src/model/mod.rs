//! Models: a layer list ([`ModelSpec`]) that builds a graph for any batch size, and the model
//! file that stores it with its parameters (postcard, magic, version, CRC-32).

mod file;
mod firmware;
mod layer_macro;
mod op_info;
mod op_table;
pub(crate) mod settings;
mod spec;

pub use file::{
    check_model, check_quant_model, model_file_len, model_file_len_with_notes, model_header, model_len_from_header, read_model,
    write_model, write_model_with_notes, write_quant_model, ModelError, ModelParts, ModelView, FORMAT_VERSION, HEADER_LEN, MAGIC,
    QUANT_MAGIC,
};
pub use firmware::{firmware_optimizer, FirmwarePlan, FirmwarePlans, FIRMWARE_NODES, FIRMWARE_STEPS};
pub use op_info::OpInfo;
pub use op_table::{LayerOp, LAYER_OPS};
pub use settings::{dims_of, Setting, SettingDefault, SettingError, SettingKind, SettingProblem, SettingValue, MAX_SETTINGS};
pub use spec::{
    build_from_postcard, build_from_postcard_in, BuiltModel, Layer, Loss, ModelSpec, Name, SpecError, SpecErrorKind, MAX_LAYERS,
};
