//! int8 softmax as TFLM's reference kernel computes it: input differences from the row's
//! maximum scaled into Q5.26, exponentials by gemmlowp's fixed-point `exp_on_negative_values`,
//! their sum in Q12.19, its reciprocal by Newton–Raphson, the output in steps of 1/256 from
//! −128. `SoftmaxParams::new` is TFLM's `CalculateSoftmaxParams` for int8 in and out.

use super::fixed::{
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul as mul, saturating_rounding_multiply_by_pot as mul_pot, Requant,
};

/// Integer bits of the scaled input differences (Q5.26).
const DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19).
const ACCUMULATION_INTEGER_BITS: i32 = 12;
/// 1.0 in Q0.31 (saturated: gemmlowp's `One()` for zero integer bits).
const ONE_Q0: i32 = i32::MAX;

/// The prepared multiplier and cut-off of an int8 softmax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SoftmaxParams {
    /// `beta · input_scale · 2^26` as a multiplier greater than one.
    pub input: Requant,
    /// Differences below this are too small to matter: their output is −128.
    pub diff_min: i32,
}

impl SoftmaxParams {
    /// TFLite's `PreprocessSoftmaxScaling` and `CalculateInputRadius` (double-rounding build).
    pub fn new(beta: f32, input_scale: f32) -> SoftmaxParams {
        let max_real = ((1i64 << 31) - 1) as f64;
        let real = (beta as f64 * input_scale as f64 * (1i64 << (31 - DIFF_INTEGER_BITS)) as f64).min(max_real);
        let mut input = Requant::from_real(real);
        // A multiplier greater than one shifts left by 0 … 31 (clamped for degenerate scales).
        input.shift = input.shift.clamp(0, 31);
        let radius = ((1i64 << DIFF_INTEGER_BITS) - 1) as f64 * (1i64 << (31 - DIFF_INTEGER_BITS)) as f64 / (1i64 << input.shift) as f64;
        SoftmaxParams { input, diff_min: -(libm::floor(radius) as i32) }
    }
}

/// Softmax over each row of `depth` values of `x` into `y` (output scale 1/256, zero point
/// −128, as TFLite requires of int8 softmax).
pub fn softmax_s8(p: &SoftmaxParams, depth: usize, x: &[i8], y: &mut [i8]) {
    if depth == 0 {
        return;
    }
    for (row, out) in x.chunks_exact(depth).zip(y.chunks_exact_mut(depth)) {
        let max = row.iter().copied().max().unwrap_or(i8::MIN) as i32;
        // exp(β·s·(x − max)) in Q0.31, or None where the difference is cut off.
        let exp = |v: i8| {
            let diff = v as i32 - max;
            (diff >= p.diff_min).then(|| exp_on_negative_values(mul(diff.wrapping_mul(1 << p.input.shift), p.input.multiplier)))
        };
        let sum = row.iter().filter_map(|&v| exp(v)).fold(0i32, |s, e| s.wrapping_add(mul_pot(e, -ACCUMULATION_INTEGER_BITS)));
        let (reciprocal, bits_over_unit) = reciprocal(sum, ACCUMULATION_INTEGER_BITS);
        let exponent = bits_over_unit + 31 - 8;
        for (o, &v) in out.iter_mut().zip(row) {
            *o = match exp(v) {
                Some(e) => rounding_divide_by_pot(mul(reciprocal, e), exponent).saturating_add(i8::MIN as i32).clamp(-128, 127) as i8,
                None => i8::MIN,
            };
        }
    }
}

/// gemmlowp's `exp_on_negative_values` for a Q5.26 input `a` ≤ 0, result in Q0.31.
fn exp_on_negative_values(a: i32) -> i32 {
    const FRACTIONAL_BITS: i32 = 31 - DIFF_INTEGER_BITS;
    let one_quarter = 1i32 << (FRACTIONAL_BITS - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(mul_pot(a_mod_quarter_minus_one_quarter, DIFF_INTEGER_BITS));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // exp(−2^k) in Q0.31 for k = −2 … 4, applied for each bit of the remainder.
    const BARREL: [(i32, i32); 7] =
        [(-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242)];
    for (exponent, multiplier) in BARREL {
        if DIFF_INTEGER_BITS > exponent && remainder & (1 << (FRACTIONAL_BITS + exponent)) != 0 {
            result = mul(result, multiplier);
        }
    }
    if a == 0 {
        ONE_Q0
    } else {
        result
    }
}

/// gemmlowp's `exp_on_interval_between_negative_one_quarter_and_0_excl`: a Taylor expansion
/// around −1/8 in Q0.31.
fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const EXP_MINUS_ONE_EIGHTH: i32 = 1895147668;
    const ONE_THIRD: i32 = 715827883;
    let x = a.wrapping_add(1 << 28);
    let x2 = mul(x, x);
    let x3 = mul(x2, x);
    let x4 = mul(x2, x2);
    let x4_over_4 = mul_pot(x4, -2);
    let poly = mul_pot(mul(x4_over_4.wrapping_add(x3), ONE_THIRD).wrapping_add(x2), -1);
    EXP_MINUS_ONE_EIGHTH.wrapping_add(mul(EXP_MINUS_ONE_EIGHTH, x.wrapping_add(poly)))
}

/// TFLite's `GetReciprocal`: 1 / `x` (Q`integer_digits`) as a Q0.31 value and the number of
/// bits by which `x` exceeds one.
fn reciprocal(x: i32, integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = (x as u32).leading_zeros() as i32;
    let bits_over_unit = integer_digits - headroom_plus_one;
    let shifted_minus_one = ((x as u32).wrapping_shl(headroom_plus_one as u32)).wrapping_sub(1 << 31) as i32;
    (one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), bits_over_unit)
}

/// gemmlowp's `one_over_one_plus_x_for_x_in_0_1` (Q0.31 in and out): three Newton–Raphson
/// steps from 48/17 − 32/17·d, in Q2.29.
fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const FORTY_EIGHT_OVER_17: i32 = 1515870810;
    const NEG_THIRTY_TWO_OVER_17: i32 = -1010580540;
    const ONE_Q2: i32 = 1 << 29;
    let half_denominator = rounding_half_sum(a, ONE_Q0);
    let mut x = FORTY_EIGHT_OVER_17.wrapping_add(mul(half_denominator, NEG_THIRTY_TWO_OVER_17));
    for _ in 0..3 {
        let one_minus = ONE_Q2.wrapping_sub(mul(half_denominator, x));
        x = x.wrapping_add(mul_pot(mul(x, one_minus), 2));
    }
    mul_pot(x, 1)
}

/// gemmlowp's `RoundingHalfSum`: (a + b) / 2 rounded away from zero.
fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    ((sum + if sum >= 0 { 1 } else { -1 }) / 2) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed-point exponential and reciprocal against their real values (they are
    /// approximations: within 1e-6 here), and a softmax row worked by hand: equal inputs
    /// share 256 steps.
    #[test]
    fn fixed_point_pieces_and_a_worked_row() {
        let q26 = |v: f64| (v * (1i64 << 26) as f64) as i32;
        for v in [-0.1, -0.25, -1.0, -3.5, -10.0] {
            let e = exp_on_negative_values(q26(v)) as f64 / (1i64 << 31) as f64;
            assert!((e - libm::exp(v)).abs() < 1e-6, "exp({v}) = {e}");
        }
        assert_eq!(exp_on_negative_values(0), ONE_Q0);
        for v in [0.1, 0.5, 0.9] {
            let r = one_over_one_plus_x_for_x_in_0_1((v * (1i64 << 31) as f64) as i32) as f64 / (1i64 << 31) as f64;
            assert!((r - 1.0 / (1.0 + v)).abs() < 1e-6, "1/(1+{v}) = {r}");
        }
        // Four equal inputs: each 1/4 = 64/256 → −128 + 64 = −64.
        let p = SoftmaxParams::new(1.0, 0.1);
        let mut y = [0i8; 4];
        softmax_s8(&p, 4, &[5, 5, 5, 5], &mut y);
        assert_eq!(y, [-64; 4]);
        // One input far above the rest takes everything: 255/256 at most (127), the rest −128.
        softmax_s8(&p, 4, &[127, -128, -128, -128], &mut y);
        assert_eq!(y, [127, -128, -128, -128]);
    }
}
