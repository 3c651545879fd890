//! Constant tensors met while importing (weights, shapes, attribute values), in either
//! source format, and the small folds done on them at import time.

/// A constant's values: floats, or integers (shapes, axes, indices).
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// A constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub dims: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    pub fn f32(dims: Vec<usize>, values: Vec<f32>) -> Tensor {
        Tensor { dims, data: Data::F32(values) }
    }
    pub fn i64(dims: Vec<usize>, values: Vec<i64>) -> Tensor {
        Tensor { dims, data: Data::I64(values) }
    }
    /// Number of values the dimensions call for.
    pub fn numel(&self) -> usize {
        self.dims.iter().product()
    }
    /// The values as floats (integers converted).
    pub fn floats(&self) -> Vec<f32> {
        match &self.data {
            Data::F32(v) => v.clone(),
            Data::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
    /// The values as integers (floats truncated).
    pub fn ints(&self) -> Vec<i64> {
        match &self.data {
            Data::F32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I64(v) => v.clone(),
        }
    }
    /// A 2-D tensor transposed.
    pub fn transposed_2d(&self) -> Option<Tensor> {
        let [r, c] = self.dims[..] else { return None };
        let v = self.floats();
        let t = (0..c).flat_map(|j| (0..r).map(move |i| (i, j))).map(|(i, j)| v[i * c + j]).collect();
        Some(Tensor::f32(vec![c, r], t))
    }
}

/// The product of `dims`, `None` where it overflows (a hostile shape).
pub fn product(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The shape a reshape to `target` gives `from` (0: copy the dimension, as ONNX's; -1: infer).
pub fn reshape_target(from: &[usize], target: &[i64]) -> Result<Vec<usize>, String> {
    let total: usize = from.iter().product();
    let mut dims = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        dims.push(match t {
            0 => *from.get(i).ok_or("a 0 past the input's rank")?,
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            t if t > 0 => t as usize,
            _ => return Err(format!("shape {target:?}")),
        });
    }
    let too_large = || format!("shape {target:?} is too large");
    let known = product(&dims).ok_or_else(too_large)?;
    if let Some(i) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return Err(format!("shape {target:?} does not fit {from:?}"));
        }
        dims[i] = total / known;
    }
    if product(&dims).ok_or_else(too_large)? != total {
        return Err(format!("shape {target:?} does not fit {from:?}"));
    }
    Ok(dims)
}

/// The dimensions a constant operand takes beside a tensor of `rank`: leading 1s dropped while
/// it has more dimensions than that (so it cannot add a batch-like dimension in front), a
/// scalar as `[1]`.
pub fn operand_dims(dims: &[usize], rank: usize) -> Vec<usize> {
    let mut dims = dims;
    while dims.len() > rank.max(1) && dims[0] == 1 {
        dims = &dims[1..];
    }
    if dims.is_empty() {
        vec![1]
    } else {
        dims.to_vec()
    }
}

/// The values of a tensor of `dims` broadcast (NumPy rules) to `len` values along its last
/// axis, for a bias: `[N]`, `[1, N]`, `[1]` or a scalar.
pub fn bias_values(t: &Tensor, len: usize) -> Option<Vec<f32>> {
    let v = t.floats();
    let real: Vec<usize> = t.dims.iter().copied().filter(|&d| d != 1).collect();
    match (v.len(), real.as_slice()) {
        (1, _) => Some(vec![v[0]; len]),
        (n, [m]) if n == len && *m == len => Some(v),
        _ => None,
    }
}
