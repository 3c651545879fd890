//! int8 pooling and addition (NHWC), with TFLM's rounding: the pooled sum divided by the count
//! of in-bounds values rounding half away from zero; the maximum of the in-bounds values; the
//! sum of two tensors rescaled to a common 2^20-times finer scale, added and rescaled to the
//! output.

use super::conv::window;
use super::fixed::{rounding_divide_by_pot, saturating_rounding_doubling_high_mul, Requant};
use crate::reference::Pool2dParams;

/// TFLite's AVERAGE_POOL_2D on int8: `x` `[batch, in_h, in_w, channels]`; the padding is left
/// out of each average; the result clamped to `[act_min, act_max]`.
pub fn avgpool2d_s8(p: &Pool2dParams, act_min: i32, act_max: i32, x: &[i8], y: &mut [i8]) {
    let (oh, ow, c) = (p.out_h(), p.out_w(), p.channels);
    for b in 0..p.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let (rows, cols) = window(p, oy, ox);
                let count = (rows.len() * cols.len()) as i32;
                for ch in 0..c {
                    let mut sum = 0i32;
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            sum = sum.wrapping_add(x[((b * p.in_h + iy) * p.in_w + ix) * c + ch] as i32);
                        }
                    }
                    let average = match count {
                        0 => 0,
                        _ if sum > 0 => (sum + count / 2) / count,
                        _ => (sum - count / 2) / count,
                    };
                    y[((b * oh + oy) * ow + ox) * c + ch] = average.clamp(act_min, act_max) as i8;
                }
            }
        }
    }
}

/// TFLite's MAX_POOL_2D on int8: `x` `[batch, in_h, in_w, channels]`; the maximum of the
/// values inside the input (padding left out), clamped to `[act_min, act_max]` (an all-padding
/// window gives `act_min`).
pub fn maxpool2d_s8(p: &Pool2dParams, act_min: i32, act_max: i32, x: &[i8], y: &mut [i8]) {
    let (oh, ow, c) = (p.out_h(), p.out_w(), p.channels);
    for b in 0..p.batch {
        for oy in 0..oh {
            for ox in 0..ow {
                let (rows, cols) = window(p, oy, ox);
                for ch in 0..c {
                    let mut max = i32::MIN;
                    for iy in rows.clone() {
                        for ix in cols.clone() {
                            max = max.max(x[((b * p.in_h + iy) * p.in_w + ix) * c + ch] as i32);
                        }
                    }
                    y[((b * oh + oy) * ow + ox) * c + ch] = max.clamp(act_min, act_max) as i8;
                }
            }
        }
    }
}

/// The prepared scales of an int8 ADD (TFLM's `CalculateOpDataAdd` for int8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AddParams {
    pub input1_offset: i32,
    pub input2_offset: i32,
    pub output_offset: i32,
    pub input1: Requant,
    pub input2: Requant,
    pub output: Requant,
    pub act_min: i32,
    pub act_max: i32,
}

/// Inputs are shifted left by this before their rescaling.
const ADD_LEFT_SHIFT: i32 = 20;

impl AddParams {
    /// From the inputs' and the output's scales and zero points, and the activation's clamp.
    pub fn new(input1: (f32, i32), input2: (f32, i32), output: (f32, i32), act: (i32, i32)) -> AddParams {
        let twice_max = 2.0 * input1.0.max(input2.0) as f64;
        AddParams {
            input1_offset: -input1.1,
            input2_offset: -input2.1,
            output_offset: output.1,
            input1: Requant::from_real(input1.0 as f64 / twice_max),
            input2: Requant::from_real(input2.0 as f64 / twice_max),
            output: Requant::from_real(twice_max / ((1i64 << ADD_LEFT_SHIFT) as f64 * output.0 as f64)),
            act_min: act.0,
            act_max: act.1,
        }
    }
}

/// `MultiplyByQuantizedMultiplierSmallerThanOneExp`.
fn smaller_than_one(x: i32, r: Requant) -> i32 {
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, r.multiplier), -r.shift)
}

/// TFLite's ADD on int8, two tensors of the same shape.
pub fn add_s8(p: &AddParams, a: &[i8], b: &[i8], y: &mut [i8]) {
    for ((o, &u), &v) in y.iter_mut().zip(a).zip(b) {
        let scaled = |x: i8, offset: i32, r: Requant| smaller_than_one((offset + x as i32).wrapping_mul(1 << ADD_LEFT_SHIFT), r);
        let sum = scaled(u, p.input1_offset, p.input1).wrapping_add(scaled(v, p.input2_offset, p.input2));
        *o = smaller_than_one(sum, p.output).saturating_add(p.output_offset).clamp(p.act_min, p.act_max) as i8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked examples: averages rounding half away from zero with the padding left out; an
    /// addition of two tensors of the same scale.
    #[test]
    fn worked_examples() {
        // 2×2 input, one channel, 2×2 window with one row and column of padding at the top
        // left: the first output averages x[0,0] alone, the last all four.
        let mut p = Pool2dParams::plain(1, [1, 2, 2], [2, 2], [1, 1], [1, 1]);
        p.pad_bottom = 0;
        p.pad_right = 0;
        let mut y = [0i8; 4];
        avgpool2d_s8(&p, -128, 127, &[3, -5, 6, 7], &mut y);
        // (3)/1 = 3; (3 − 5)/2 = −1 → −1 (−2 − 1)/2 = −1; (3 + 6)/2 = 4.5 → 5; (11 + 1)/4 = 2.75 → 3.
        assert_eq!(y, [3, -1, 5, 3]);
        // Same scales and zero points 0: y = a + b exactly (up to the clamp).
        let add = AddParams::new((0.5, 0), (0.5, 0), (0.5, 0), (-128, 127));
        let mut y = [0i8; 3];
        add_s8(&add, &[10, -20, 100], &[5, -7, 100], &mut y);
        assert_eq!(y, [15, -27, 127]);
    }
}
