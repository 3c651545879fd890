//! int8 inference kernels with TFLite's quantization scheme, bit for bit TensorFlow Lite
//! Micro's reference kernels (the specification of its integer arithmetic): NHWC tensors,
//! per-channel symmetric weights, per-tensor activations with zero points, i32 biases.

mod conv;
mod elementwise;
pub mod fixed;
mod in_place;
mod softmax;

pub(crate) use conv::{channel as channel_requant, window as pool_window};
pub use conv::{conv2d_maxpool_s8, conv2d_s8, depthwise_conv2d_s8, fully_connected_s8, Int8Io};
pub use elementwise::{add_s8, avgpool2d_s8, maxpool2d_s8, AddParams};
pub use fixed::{activation_range, Activation, Requant};
pub use in_place::{
    depthwise_conv2d_s8_in_place, depthwise_in_place, depthwise_in_place_scratch, depthwise_in_place_with, pointwise_conv2d_s8_in_place,
    pointwise_in_place, pointwise_in_place_scratch,
};
pub use softmax::{softmax_s8, SoftmaxParams};
