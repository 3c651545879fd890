//! The `mote` CLI's library: model specs in TOML, IDX data, model files, and the commands
//! (`inspect`, `train`, `eval`, `predict`) the binary dispatches to.

pub mod bench;
pub mod boards;
pub mod checks;
pub mod dataset;
pub mod error;
pub mod eval;
pub mod export;
pub mod idx;
pub mod import;
pub mod inspect;
pub mod model;
pub mod notes;
pub mod plot;
pub mod predict;
pub mod quant;
pub mod quantize;
pub mod run;
pub mod say;
pub mod spec_file;
pub mod train;
