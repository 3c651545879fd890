//! The typed errors of mote-core: each names what was wrong, and nothing is changed when one
//! is returned.

use crate::Shape;
use core::fmt;

/// Result with [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// Everything that can go wrong when building a graph, planning it or running a plan.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Dimensions that do not make a shape (empty, rank > 4, a zero dimension, or more than
    /// `u32::MAX` elements).
    InvalidDims { rank: usize, has_zero: bool },
    /// Two shapes an op cannot combine.
    ShapeMismatch { op: &'static str, left: Shape, right: Shape, expected: &'static str },
    /// A shape an op cannot take.
    InvalidShape { op: &'static str, shape: Shape, expected: &'static str },
    /// A size computed from the op's settings overflows this machine's arithmetic (a huge
    /// padding, say: on a 32-bit device smaller values overflow than on the host).
    TooLarge { op: &'static str, what: &'static str },
    /// An op this build leaves out (a firmware links only its model's ops).
    OpNotInBuild { op: &'static str },
    /// A hyper-parameter out of its range.
    InvalidArgument { op: &'static str, expected: &'static str },
    /// An op got the wrong number of inputs.
    InputCount { op: &'static str, expected: &'static str, got: usize },
    /// The same node was passed twice to one op (use `square` for `x * x`).
    DuplicateInput { op: &'static str },
    /// A node id that is not in the graph.
    UnknownNode { index: usize },
    /// The graph or plan has no room left.
    CapacityExceeded { what: &'static str, capacity: usize },
    /// The node given as the loss is not a scalar.
    LossNotScalar { shape: Shape },
    /// Nothing upstream of the loss has a gradient: there is nothing to train.
    NothingToTrain,
    /// The arena is smaller than the plan needs.
    ArenaTooSmall { needed_bytes: usize, got_bytes: usize },
    /// A buffer (parameters, optimizer state, an input) has the wrong length.
    BufferLength { what: &'static str, needed: usize, got: usize },
    /// A class label that is not an integer in `0..classes`.
    InvalidLabel { index: usize, value: f32, classes: usize },
    /// A value or gradient the plan does not keep available after a run.
    NotInPlan { what: &'static str, index: usize },
    /// The plan does not belong to this graph or its offsets are out of bounds.
    PlanMismatch { expected: &'static str },
    /// The parameters are read-only (inference from flash) but the plan writes them.
    ReadOnlyParams,
    /// Graph bytes that cannot be read, or that describe a graph other than the one they
    /// rebuild: the field named.
    GraphBytes { what: &'static str },
    /// Plan bytes that cannot be read: the field named is missing or invalid.
    PlanBytes { what: &'static str },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::InvalidDims { rank, has_zero } => {
                write!(f, "invalid dimensions: rank {rank} (1 to 4 allowed, at most 2^32 - 1 elements)")?;
                if has_zero {
                    write!(f, ", with a zero dimension")?;
                }
                Ok(())
            }
            Error::ShapeMismatch { op, left, right, expected } => {
                write!(f, "{op}: shapes {left} and {right} do not fit: expected {expected}")
            }
            Error::InvalidShape { op, shape, expected } => {
                write!(f, "{op}: shape {shape} not allowed: expected {expected}")
            }
            Error::TooLarge { op, what } => write!(f, "{op}: {what} is too large (its size overflows usize)"),
            Error::OpNotInBuild { op } => write!(f, "{op}: not in this build (it links only the ops of the model it was built for)"),
            Error::InvalidArgument { op, expected } => write!(f, "{op}: invalid argument: expected {expected}"),
            Error::InputCount { op, expected, got } => {
                write!(f, "{op}: got {got} inputs, expected {expected}")
            }
            Error::DuplicateInput { op } => write!(f, "{op}: the same node given twice (use square for x*x)"),
            Error::UnknownNode { index } => write!(f, "node {index} is not in this graph"),
            Error::CapacityExceeded { what, capacity } => write!(f, "{what} is full (capacity {capacity})"),
            Error::LossNotScalar { shape } => write!(f, "the loss must be a scalar, got shape {shape}"),
            Error::NothingToTrain => write!(f, "no parameter or input upstream of the loss needs a gradient"),
            Error::ArenaTooSmall { needed_bytes, got_bytes } => {
                write!(f, "arena too small: the plan needs {needed_bytes} bytes, got {got_bytes}")
            }
            Error::BufferLength { what, needed, got } => {
                write!(f, "{what}: needs {needed} values, got {got}")
            }
            Error::InvalidLabel { index, value, classes } => {
                write!(f, "label {index} is {value}, expected an integer in 0..{classes}")
            }
            Error::NotInPlan { what, index } => write!(f, "{what} of node {index} is not kept by this plan"),
            Error::PlanMismatch { expected } => write!(f, "plan does not fit: {expected}"),
            Error::ReadOnlyParams => write!(f, "parameters are read-only but the plan updates them"),
            Error::GraphBytes { what } => write!(f, "graph bytes: bad or missing {what}"),
            Error::PlanBytes { what } => write!(f, "plan bytes: bad or missing {what}"),
        }
    }
}

impl core::error::Error for Error {}
