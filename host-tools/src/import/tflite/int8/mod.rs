//! Runs an int8 TFLite model with mote's int8 reference kernels, operator by operator in NHWC.
//! [`Int8Model::new`] prepares every operator (`prepare.rs`: as TFLM prepares it, after
//! checking every shape, type and size a kernel relies on, so a malformed model is an error,
//! never a panic); [`Int8Model::run`] then only executes. The host's int8 oracle, checked bit for
//! bit against the TFLM interpreter on the MLPerf Tiny models; the core does not plan int8
//! graphs yet.

mod prepare;

use super::read;
use mote_kernels::reference::int8::{
    add_s8, avgpool2d_s8, conv2d_s8, depthwise_conv2d_s8, fully_connected_s8, softmax_s8, AddParams, Int8Io, Requant, SoftmaxParams,
};
use mote_kernels::{Conv2dParams, Pool2dParams};
use prepare::{dims, index, int8, prepare, SUPPORTED};

/// Largest tensor (values) a model may declare: larger ones are refused before allocation.
pub(super) const MAX_VALUES: usize = 1 << 26;

/// A prepared operator: its kernel and parameters, its operand and its output tensor.
struct Step {
    kernel: Kernel,
    input: usize,
    output: usize,
    output_len: usize,
}

/// What a step computes, with everything its kernel needs.
enum Kernel {
    Conv { p: Conv2dParams, io: Int8Io, requant: Vec<Requant>, w: Vec<i8>, bias: Option<Vec<i32>>, depthwise: bool },
    FullyConnected { batch: usize, depth: usize, out: usize, io: Int8Io, requant: Vec<Requant>, w: Vec<i8>, bias: Option<Vec<i32>> },
    AvgPool { p: Pool2dParams, act: (i32, i32) },
    Add { p: AddParams, other: Operand },
    Softmax { p: SoftmaxParams, depth: usize },
    Reshape,
}

/// A second operand: a computed tensor or a constant.
enum Operand {
    Tensor(usize),
    Const(Vec<i8>),
}

/// An int8 TFLite model ready to run.
pub struct Int8Model {
    steps: Vec<Step>,
    input: usize,
    input_shape: Vec<usize>,
    output: usize,
    tensors: usize,
}

impl Int8Model {
    /// Reads and prepares `bytes`; names every operator it lacks at once, or the first
    /// malformed tensor or option.
    pub fn new(bytes: &[u8]) -> Result<Int8Model, String> {
        let model = read::read(bytes)?;
        let missing: Vec<String> = model.ops.iter().filter(|op| !SUPPORTED.contains(&op.code)).map(|op| op.name.clone()).collect();
        if !missing.is_empty() {
            return Err(format!("int8 operators not supported: {}", missing.join(", ")));
        }
        let at = |list: &[i32], what: &str| -> Result<usize, String> {
            let i = *list.first().ok_or_else(|| format!("the model has no {what}"))?;
            index(&model, i).map(|_| i as usize)
        };
        let (input, output) = (at(&model.inputs, "input")?, at(&model.outputs, "output")?);
        let input_tensor = &model.tensors[input];
        int8(input_tensor)?;
        let input_shape = dims(input_tensor)?;
        let mut known = vec![false; model.tensors.len()];
        known[input] = true;
        let mut steps = Vec::new();
        for op in &model.ops {
            let step = prepare(&model, op, &known).map_err(|e| format!("{}: {e}", op.name))?;
            known[step.output] = true;
            steps.push(step);
        }
        if !known[output] {
            return Err("the model's output is never computed".into());
        }
        Ok(Int8Model { steps, input, input_shape, output, tensors: model.tensors.len() })
    }

    /// Multiply-accumulates (convolutions, fully connected) and other value operations (pooled,
    /// added, softmaxed) of one run.
    pub fn work(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match &s.kernel {
                Kernel::Conv { p, depthwise, .. } => {
                    let taps = p.kernel_h * p.kernel_w * if *depthwise { 1 } else { p.in_c / p.groups.max(1) };
                    (s.output_len as u64).saturating_mul(taps as u64)
                }
                Kernel::FullyConnected { batch, depth, out, .. } => (*batch as u64) * (*depth as u64) * (*out as u64),
                Kernel::AvgPool { p, .. } => (s.output_len as u64).saturating_mul((p.kernel_h * p.kernel_w) as u64),
                _ => s.output_len as u64,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// The input's shape.
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// The model's output for `input` (int8, C order, of the input's shape).
    pub fn run(&self, input: &[i8]) -> Result<Vec<i8>, String> {
        self.run_layers(input, |_, _| {})
    }

    /// [`Int8Model::run`], calling `each(k, output)` with operator `k`'s output as it is made.
    pub fn run_layers(&self, input: &[i8], mut each: impl FnMut(usize, &[i8])) -> Result<Vec<i8>, String> {
        let want: usize = self.input_shape.iter().product();
        if input.len() != want {
            return Err(format!("the input holds {} values, the model takes {want}", input.len()));
        }
        let mut values: Vec<Option<Vec<i8>>> = vec![None; self.tensors];
        values[self.input] = Some(input.to_vec());
        for (k, step) in self.steps.iter().enumerate() {
            let x = values[step.input].as_deref().ok_or("an operand was never computed")?;
            let mut y = vec![0i8; step.output_len];
            match &step.kernel {
                Kernel::Conv { p, io, requant, w, bias, depthwise: true } => {
                    depthwise_conv2d_s8(p, io, requant, x, w, bias.as_deref(), &mut y)
                }
                Kernel::Conv { p, io, requant, w, bias, depthwise: false } => conv2d_s8(p, io, requant, x, w, bias.as_deref(), &mut y),
                Kernel::FullyConnected { batch, depth, out, io, requant, w, bias } => {
                    fully_connected_s8(*batch, *depth, *out, io, requant, x, w, bias.as_deref(), &mut y)
                }
                Kernel::AvgPool { p, act } => avgpool2d_s8(p, act.0, act.1, x, &mut y),
                Kernel::Add { p, other } => {
                    let b = match other {
                        Operand::Tensor(i) => values[*i].as_deref().ok_or("an operand was never computed")?,
                        Operand::Const(c) => c,
                    };
                    add_s8(p, x, b, &mut y)
                }
                Kernel::Softmax { p, depth } => softmax_s8(p, *depth, x, &mut y),
                Kernel::Reshape => y.copy_from_slice(x),
            }
            each(k, &y);
            values[step.output] = Some(y);
        }
        values[self.output].take().ok_or_else(|| "the output was never computed".to_string())
    }
}
