//! The integer arithmetic of TFLite's int8 scheme, as TensorFlow Lite Micro's reference kernels
//! do it (its `common.h`, `quantization_util.cc` and gemmlowp's `fixedpoint.h`, double-rounding
//! build): real multipliers quantized to a Q31 significand and a power of two, requantization by
//! a saturating rounding doubling high multiply and a rounding shift, and the Q-format helpers
//! softmax needs. Every function is exact integer arithmetic; results are TFLM's bit for bit.

/// A real multiplier as TFLite stores it: `multiplier · 2^(shift − 31)`, `multiplier` in
/// `[2^30, 2^31)` (or 0). `repr(C)`: two `i32`s, so a model file's table of them can be read in
/// place (any bits are a valid `Requant`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[repr(C)]
pub struct Requant {
    pub multiplier: i32,
    /// Positive: shift left before the multiply; negative: rounding shift right after it.
    pub shift: i32,
}

impl Requant {
    /// TFLite's `QuantizeMultiplier`: the significand of `real` rounded half away from zero to
    /// 31 bits, its exponent; multipliers below 2^-31 flush to zero.
    pub fn from_real(real: f64) -> Requant {
        if real == 0.0 {
            return Requant::default();
        }
        let (fraction, mut shift) = libm::frexp(real);
        let mut q = libm::round(fraction * (1i64 << 31) as f64) as i64;
        if q == 1i64 << 31 {
            q /= 2;
            shift += 1;
        }
        if shift < -31 {
            return Requant::default();
        }
        Requant { multiplier: q as i32, shift }
    }

    /// TFLite's `MultiplyByQuantizedMultiplier(x, multiplier, shift)`.
    pub fn apply(self, x: i32) -> i32 {
        // TFLite's shifts lie in [−31, 30]; clamped so that no value can make a shift trap.
        let shift = self.shift.clamp(-31, 31);
        let (left, right) = if shift > 0 { (shift, 0) } else { (0, -shift) };
        rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x.wrapping_mul(1 << left), self.multiplier), right)
    }
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul` (Arm's `VQRDMULH`): `round(a·b / 2^31)`,
/// ties away from zero, saturating the one overflow (`i32::MIN · i32::MIN`).
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Division truncating toward zero, as C++'s.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let exponent = exponent.clamp(0, 31);
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// gemmlowp's `SaturatingRoundingMultiplyByPOT<exponent>`: a saturating left shift, or a
/// rounding right shift for a negative exponent.
pub fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent <= 0 {
        return rounding_divide_by_pot(x, -exponent);
    }
    let threshold = (1i32 << (31 - exponent)) - 1;
    if x > threshold {
        i32::MAX
    } else if x < -threshold {
        i32::MIN
    } else {
        x << exponent
    }
}

/// `zero_point + round(real / scale)` in f32 as TFLite's `Quantize` (activation bounds).
pub fn quantize(real: f32, scale: f32, zero_point: i32) -> i32 {
    zero_point + libm::roundf(real / scale) as i32
}

/// The clamp a fused activation sets on an int8 output of `scale` and `zero_point`, as
/// TFLite's `CalculateActivationRangeQuantized`: none, relu (`[0, ∞)`), relu6, relu_n1_to_1.
pub fn activation_range(activation: Activation, scale: f32, zero_point: i32) -> (i32, i32) {
    let (lo, hi) = (i8::MIN as i32, i8::MAX as i32);
    let q = |real: f32| quantize(real, scale, zero_point);
    match activation {
        Activation::None => (lo, hi),
        Activation::Relu => (lo.max(q(0.0)), hi),
        Activation::Relu6 => (lo.max(q(0.0)), hi.min(q(6.0))),
        Activation::ReluN1To1 => (lo.max(q(-1.0)), hi.min(q(1.0))),
    }
}

/// A fused activation of a TFLite int8 op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu,
    Relu6,
    ReluN1To1,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand computations of the Q31 helpers, ties and signs included.
    #[test]
    fn worked_examples() {
        // 0.5 = 2^30 · 2^(0 − 31)... as frexp(0.5) = (0.5, 0): multiplier 2^30, shift 0.
        assert_eq!(Requant::from_real(0.5), Requant { multiplier: 1 << 30, shift: 0 });
        // 3.0 = 0.75 · 2^2.
        assert_eq!(Requant::from_real(3.0), Requant { multiplier: 3 << 29, shift: 2 });
        // 2^-40 flushes to zero.
        assert_eq!(Requant::from_real(libm::ldexp(1.0, -40)), Requant::default());
        // x · 0.5 rounds in the doubling high multiply, whose nudge (2^30, or 1 − 2^30 below
        // zero) then truncation toward zero sends ties up: 3.5 → 4, −3.5 → (−2^33 + 1) / 2^31
        // = −3.99… → −3.
        let half = Requant::from_real(0.5);
        assert_eq!((half.apply(7), half.apply(-7), half.apply(6)), (4, -3, 3));
        // 0.25 = 0.5 · 2^-1: the multiply is exact (5, −5), the rounding shift sends ties away
        // from zero: 10 · 0.25 = 2.5 → 3, −10 → −3.
        let quarter = Requant::from_real(0.25);
        assert_eq!((quarter.apply(10), quarter.apply(-10)), (3, -3));
        assert_eq!(Requant::from_real(3.0).apply(5), 15);
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!((rounding_divide_by_pot(5, 1), rounding_divide_by_pot(-5, 1), rounding_divide_by_pot(-6, 2)), (3, -3, -2));
        assert_eq!((saturating_rounding_multiply_by_pot(1 << 29, 2), saturating_rounding_multiply_by_pot(3, 1)), (i32::MAX, 6));
        // relu6 on scale 0.05, zero point −128: [−128, −8].
        assert_eq!(activation_range(Activation::Relu6, 0.05, -128), (-128, -8));
    }
}
