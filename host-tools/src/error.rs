//! The `mote` CLI's error: every command fails with one of these, and the core's, the model
//! file's and the spec's errors stay typed (with the file they came from) until `main` prints
//! them.

use crate::idx::IdxError;
use crate::spec_file::SpecFileError;
use mote_core::model::{ModelError, SpecError};
use mote_kernels::dispatch::IsaUnavailable;
use std::fmt;
use std::path::{Path, PathBuf};

/// Why a command failed. (The core's errors are boxed: they carry shapes and names, and a
/// `Result` of this type stays small on the happy path.)
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong: what, and the usage.
    Usage(String),
    /// A file could not be read or written.
    Io { path: PathBuf, source: std::io::Error },
    /// A TOML spec file is wrong.
    Spec(SpecFileError),
    /// A model file does not read.
    Model { path: PathBuf, source: ModelError },
    /// A spec (from a file or a model file) does not build a graph.
    Build { path: PathBuf, source: Box<SpecError> },
    /// The core refused a graph, plan or run.
    Core { path: Option<PathBuf>, source: Box<mote_core::Error> },
    /// IDX data files.
    Data(IdxError),
    /// The kernels asked for (`MOTE_KERNELS`) cannot run here.
    Kernels(IsaUnavailable),
    /// Training met a non-finite loss or weight; nothing was written.
    Diverged { epoch: usize, step: usize, loss: f32, lr: f32 },
    /// Input the CLI checks itself (images, data against the model, capacities): the file and
    /// what is wrong with it.
    Invalid { path: PathBuf, message: String },
}

impl CliError {
    /// `source` from the core, about `path`.
    pub fn core(path: &Path) -> impl Fn(mote_core::Error) -> CliError + Copy + '_ {
        move |source| CliError::Core { path: Some(path.into()), source: Box::new(source) }
    }
    /// `message` about `path`.
    pub fn invalid(path: &Path, message: impl Into<String>) -> CliError {
        CliError::Invalid { path: path.into(), message: message.into() }
    }
    /// An I/O `source` at `path`.
    pub fn io(path: &Path) -> impl Fn(std::io::Error) -> CliError + Copy + '_ {
        move |source| CliError::Io { path: path.into(), source }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) => write!(f, "{m}"),
            CliError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            CliError::Spec(e) => write!(f, "{e}"),
            CliError::Model { path, source } => write!(f, "{}: {source}", path.display()),
            CliError::Build { path, source } => write!(f, "{}: {source}", path.display()),
            CliError::Core { path: Some(path), source } => write!(f, "{}: {source}", path.display()),
            CliError::Core { path: None, source } => write!(f, "{source}"),
            CliError::Data(e) => write!(f, "{e}"),
            CliError::Kernels(e) => write!(f, "MOTE_KERNELS: {e}"),
            CliError::Invalid { path, message } => write!(f, "{}: {message}", path.display()),
            CliError::Diverged { epoch, step, loss, lr } => write!(
                f,
                "training diverged at epoch {epoch}, step {step} (loss {loss}, or a weight no longer finite); nothing was \
                 written: try a lower learning rate than {lr} (--lr)"
            ),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CliError::Io { source, .. } => Some(source),
            CliError::Spec(e) => Some(e),
            CliError::Model { source, .. } => Some(source),
            CliError::Build { source, .. } => Some(source.as_ref()),
            CliError::Core { source, .. } => Some(source.as_ref()),
            CliError::Data(e) => Some(e),
            CliError::Kernels(e) => Some(e),
            CliError::Usage(_) | CliError::Invalid { .. } | CliError::Diverged { .. } => None,
        }
    }
}

impl From<mote_core::Error> for CliError {
    fn from(source: mote_core::Error) -> Self {
        CliError::Core { path: None, source: Box::new(source) }
    }
}

impl From<IdxError> for CliError {
    fn from(e: IdxError) -> Self {
        CliError::Data(e)
    }
}

impl From<SpecFileError> for CliError {
    fn from(e: SpecFileError) -> Self {
        CliError::Spec(e)
    }
}

impl From<IsaUnavailable> for CliError {
    fn from(e: IsaUnavailable) -> Self {
        CliError::Kernels(e)
    }
}

/// A command's result.
pub type CliResult<T> = Result<T, CliError>;
