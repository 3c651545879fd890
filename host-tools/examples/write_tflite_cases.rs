//! Writes the small float32 TFLite models of `tests/fixtures/tflite/cases/` with the planus
//! builder of TFLite's schema: each exercises operators and options the MLPerf models do not
//! (depthwise convolution with a multiplier, dilation, SAME pooling, PAD, MEAN, a 4-D softmax,
//! a reshape across layouts). `make_reference.py` then records LiteRT's outputs for them.
//!
//! `cargo run -p mote-cli --example write_tflite_cases`

use mote_cli::import::tflite::schema::tflite::*;
use std::path::Path;

/// A model under construction: tensors, their buffers, operators.
struct Maker {
    tensors: Vec<Tensor>,
    buffers: Vec<Buffer>,
    ops: Vec<Operator>,
    codes: Vec<BuiltinOperator>,
    seed: u64,
}

impl Maker {
    fn new(seed: u64) -> Maker {
        // Buffer 0 is the empty buffer of tensors without data.
        Maker { tensors: Vec::new(), buffers: vec![Buffer::default()], ops: Vec::new(), codes: Vec::new(), seed }
    }
    fn tensor(&mut self, name: &str, shape: &[i32], ty: TensorType, data: Option<Vec<u8>>, dynamic: bool) -> i32 {
        let buffer = match data {
            Some(d) => {
                self.buffers.push(Buffer { data: Some(d), ..Default::default() });
                self.buffers.len() as u32 - 1
            }
            None => 0,
        };
        let signature = dynamic.then(|| [&[-1], &shape[1..]].concat());
        self.tensors.push(Tensor {
            shape: Some(shape.to_vec()),
            type_: ty,
            buffer,
            name: Some(name.into()),
            shape_signature: signature,
            ..Default::default()
        });
        self.tensors.len() as i32 - 1
    }
    /// The model input (dynamic batch).
    fn input(&mut self, shape: &[i32]) -> i32 {
        self.tensor("input", shape, TensorType::Float32, None, true)
    }
    /// A computed tensor.
    fn act(&mut self, name: &str, shape: &[i32]) -> i32 {
        self.tensor(name, shape, TensorType::Float32, None, false)
    }
    /// Seeded weights in [-scale, scale).
    fn weights(&mut self, name: &str, shape: &[i32], scale: f32) -> i32 {
        let n: i32 = shape.iter().product();
        let mut data = Vec::new();
        for _ in 0..n {
            self.seed ^= self.seed << 13;
            self.seed ^= self.seed >> 7;
            self.seed ^= self.seed << 17;
            let v = ((self.seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale;
            data.extend_from_slice(&v.to_le_bytes());
        }
        self.tensor(name, shape, TensorType::Float32, Some(data), false)
    }
    fn ints(&mut self, name: &str, values: &[i32], shape: &[i32]) -> i32 {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, shape, TensorType::Int32, Some(data), false)
    }
    fn op(&mut self, code: BuiltinOperator, inputs: &[i32], output: i32, options: Option<BuiltinOptions>) {
        let index = match self.codes.iter().position(|&c| c == code) {
            Some(i) => i,
            None => {
                self.codes.push(code);
                self.codes.len() - 1
            }
        };
        self.ops.push(Operator {
            opcode_index: index as u32,
            inputs: Some(inputs.to_vec()),
            outputs: Some(vec![output]),
            builtin_options: options,
            ..Default::default()
        });
    }
    fn finish(self, input: i32, output: i32) -> Vec<u8> {
        let codes = self
            .codes
            .iter()
            .map(|&c| OperatorCode {
                deprecated_builtin_code: (c as i32).min(127) as i8,
                builtin_code: c,
                version: 1,
                ..Default::default()
            })
            .collect();
        let graph = SubGraph {
            tensors: Some(self.tensors),
            inputs: Some(vec![input]),
            outputs: Some(vec![output]),
            operators: Some(self.ops),
            name: Some("main".into()),
            ..Default::default()
        };
        let model = Model {
            version: 3,
            operator_codes: Some(codes),
            subgraphs: Some(vec![graph]),
            buffers: Some(self.buffers),
            ..Default::default()
        };
        with_identifier(planus::Builder::new().finish(&model, None))
    }
}

/// `bytes` (a root offset, then the tables) with TFLite's file identifier after the root
/// offset. planus 1.3 writes an identifier before the root offset, which readers reject, so
/// it is added here: 12 bytes are inserted (identifier and padding), keeping every table's
/// 16-byte alignment, and the root offset moves by as much (all other offsets are relative).
fn with_identifier(bytes: &[u8]) -> Vec<u8> {
    let root = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) + 12;
    let mut out = root.to_le_bytes().to_vec();
    out.extend_from_slice(b"TFL3");
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&bytes[4..]);
    out
}

/// Depthwise (multiplier 2, SAME, stride 2, ReLU6) → dilated VALID conv (ReLU) → + a
/// per-channel constant: an NHWC output.
fn convs() -> Vec<u8> {
    let mut m = Maker::new(1);
    let x = m.input(&[1, 9, 8, 3]);
    let (w1, b1) = (m.weights("dw_w", &[1, 3, 3, 6], 0.5), m.weights("dw_b", &[6], 0.2));
    let h1 = m.act("dw", &[1, 5, 4, 6]);
    let dw = DepthwiseConv2DOptions {
        padding: Padding::Same,
        stride_w: 2,
        stride_h: 2,
        depth_multiplier: 2,
        fused_activation_function: ActivationFunctionType::Relu6,
        dilation_w_factor: 1,
        dilation_h_factor: 1,
    };
    m.op(BuiltinOperator::DepthwiseConv2d, &[x, w1, b1], h1, Some(BuiltinOptions::DepthwiseConv2DOptions(Box::new(dw))));
    let (w2, b2) = (m.weights("conv_w", &[4, 2, 2, 6], 0.4), m.weights("conv_b", &[4], 0.2));
    let h2 = m.act("conv", &[1, 3, 2, 4]);
    let conv = Conv2DOptions {
        padding: Padding::Valid,
        stride_w: 1,
        stride_h: 1,
        fused_activation_function: ActivationFunctionType::Relu,
        dilation_w_factor: 2,
        dilation_h_factor: 2,
        ..Default::default()
    };
    m.op(BuiltinOperator::Conv2d, &[h1, w2, b2], h2, Some(BuiltinOptions::Conv2DOptions(Box::new(conv))));
    let k = m.weights("shift", &[4], 1.0);
    let y = m.act("output", &[1, 3, 2, 4]);
    m.op(BuiltinOperator::Add, &[h2, k], y, Some(BuiltinOptions::AddOptions(Box::default())));
    m.finish(x, y)
}

fn pool(padding: Padding, size: i32, stride: i32) -> Box<Pool2DOptions> {
    Box::new(Pool2DOptions {
        padding,
        stride_w: stride,
        stride_h: stride,
        filter_width: size,
        filter_height: size,
        fused_activation_function: ActivationFunctionType::None,
    })
}

/// PAD → SAME max pool → SAME average pool (padding left out of the count) → × an NHWC
/// constant → MEAN over H, W → RESHAPE → FULLY_CONNECTED → SOFTMAX.
fn pools() -> Vec<u8> {
    let mut m = Maker::new(2);
    let x = m.input(&[1, 7, 6, 2]);
    let pads = m.ints("pads", &[0, 0, 1, 0, 0, 2, 0, 0], &[4, 2]);
    let p = m.act("pad", &[1, 8, 8, 2]);
    m.op(BuiltinOperator::Pad, &[x, pads], p, None);
    let mx = m.act("max", &[1, 4, 4, 2]);
    m.op(BuiltinOperator::MaxPool2d, &[p], mx, Some(BuiltinOptions::Pool2DOptions(pool(Padding::Same, 3, 2))));
    let av = m.act("avg", &[1, 2, 2, 2]);
    m.op(BuiltinOperator::AveragePool2d, &[mx], av, Some(BuiltinOptions::Pool2DOptions(pool(Padding::Same, 3, 2))));
    let k = m.weights("scale", &[1, 1, 1, 2], 2.0);
    let sc = m.act("scaled", &[1, 2, 2, 2]);
    m.op(BuiltinOperator::Mul, &[av, k], sc, Some(BuiltinOptions::MulOptions(Box::default())));
    let axes = m.ints("axes", &[1, 2], &[2]);
    let mean = m.act("mean", &[1, 1, 1, 2]);
    m.op(BuiltinOperator::Mean, &[sc, axes], mean, Some(BuiltinOptions::ReducerOptions(Box::new(ReducerOptions { keep_dims: true }))));
    let shape = m.ints("shape", &[-1, 2], &[2]);
    let flat = m.act("flat", &[1, 2]);
    m.op(BuiltinOperator::Reshape, &[mean, shape], flat, None);
    let (w, b) = (m.weights("fc_w", &[3, 2], 1.0), m.weights("fc_b", &[3], 0.5));
    let fc = m.act("fc", &[1, 3]);
    m.op(BuiltinOperator::FullyConnected, &[flat, w, b], fc, Some(BuiltinOptions::FullyConnectedOptions(Box::default())));
    let y = m.act("output", &[1, 3]);
    m.op(BuiltinOperator::Softmax, &[fc], y, Some(BuiltinOptions::SoftmaxOptions(Box::new(SoftmaxOptions { beta: 1.0 }))));
    m.finish(x, y)
}

/// 1×1 conv → softmax (beta 2) over the channels of a 4-D tensor → RESHAPE of NHWC values to
/// 2-D → FULLY_CONNECTED (clipped to [-1, 1]).
fn layout() -> Vec<u8> {
    let mut m = Maker::new(3);
    let x = m.input(&[1, 4, 3, 5]);
    let (w, b) = (m.weights("w", &[2, 1, 1, 5], 1.0), m.weights("b", &[2], 0.3));
    let c = m.act("conv", &[1, 4, 3, 2]);
    let conv = Conv2DOptions {
        padding: Padding::Same,
        stride_w: 1,
        stride_h: 1,
        dilation_w_factor: 1,
        dilation_h_factor: 1,
        ..Default::default()
    };
    m.op(BuiltinOperator::Conv2d, &[x, w, b], c, Some(BuiltinOptions::Conv2DOptions(Box::new(conv))));
    let s = m.act("softmax", &[1, 4, 3, 2]);
    m.op(BuiltinOperator::Softmax, &[c], s, Some(BuiltinOptions::SoftmaxOptions(Box::new(SoftmaxOptions { beta: 2.0 }))));
    let shape = m.ints("shape", &[-1, 24], &[2]);
    let flat = m.act("flat", &[1, 24]);
    m.op(BuiltinOperator::Reshape, &[s, shape], flat, None);
    let (w2, b2) = (m.weights("fc_w", &[6, 24], 1.0), m.weights("fc_b", &[6], 0.3));
    let y = m.act("output", &[1, 6]);
    let fc = FullyConnectedOptions { fused_activation_function: ActivationFunctionType::ReluN1To1, ..Default::default() };
    m.op(BuiltinOperator::FullyConnected, &[flat, w2, b2], y, Some(BuiltinOptions::FullyConnectedOptions(Box::new(fc))));
    m.finish(x, y)
}

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tflite/cases");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in [("convs", convs()), ("pools", pools()), ("layout", layout())] {
        std::fs::write(dir.join(format!("{name}.tflite")), &bytes)?;
        println!("{name}.tflite: {} bytes", bytes.len());
    }
    Ok(())
}
