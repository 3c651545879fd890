//! Requantization of the int8 kernels' i32 sums with a multiplier ≥ 0 and a right shift (every
//! requantization TFLite's converter and `mote quantize` make), its constants computed once per
//! channel: TFLite's `MultiplyByQuantizedMultiplier` in fewer steps, bit for bit.

use crate::reference::int8::{Int8Io, Requant};

/// One output channel's requantization: a rounding doubling high multiply by `multiplier`, a
/// rounding right shift by `exponent`, the zero point added, the clamp applied.
#[derive(Clone, Copy, Debug)]
pub(super) struct RequantDown {
    multiplier: i32,
    exponent: i32,
    mask: i32,
    half_mask: i32,
    offset: i32,
    min: i32,
    max: i32,
}

impl RequantDown {
    /// `r` for outputs of `io` further clamped to `clamp` (a fused pool's), or `None` if `r`
    /// multiplies by a negative number or shifts left.
    pub(super) fn new(io: &Int8Io, r: Requant, clamp: (i32, i32)) -> Option<RequantDown> {
        if !is_down(r) {
            return None;
        }
        let exponent = (-r.shift).clamp(0, 31);
        let mask = ((1i64 << exponent) - 1) as i32;
        // Clamping to io's range and then to `clamp` is one clamp to the ends of the first range
        // clamped into the second.
        let within = |v: i32| v.max(clamp.0).min(clamp.1);
        Some(RequantDown {
            multiplier: r.multiplier,
            exponent,
            mask,
            half_mask: mask >> 1,
            offset: io.output_offset,
            min: within(io.act_min),
            max: within(io.act_max),
        })
    }

    /// The int8 output of sum `acc`.
    #[inline(always)]
    pub(super) fn apply(&self, acc: i32) -> i8 {
        // round(acc · m / 2^31), ties away from zero, as gemmlowp computes it: (ab + nudge) / 2^31
        // truncated, nudge 2^30 or 1 − 2^30 by sign. For a negative numerator, truncation is
        // floor((n + 2^31 − 1) / 2^31), and 1 − 2^30 + 2^31 − 1 = 2^30: one floor for both signs.
        // No saturation: m ≥ 0 excludes MIN · MIN.
        let high = ((acc as i64 * self.multiplier as i64 + (1 << 30)) >> 31) as i32;
        let threshold = self.half_mask + (high < 0) as i32;
        let shifted = (high >> self.exponent) + ((high & self.mask) > threshold) as i32;
        shifted.saturating_add(self.offset).max(self.min).min(self.max) as i8
    }
}

/// Whether `r` multiplies by a number ≥ 0 and shifts right: the requantizations this file
/// takes, and monotone ones (the larger sum never gives the smaller output).
fn is_down(r: Requant) -> bool {
    r.multiplier >= 0 && r.shift <= 0
}

/// Whether every requantization of a table is monotone ([`is_down`]): then a max pool may take
/// the largest raw sum and requantize once.
pub(super) fn monotone(requant: &[Requant]) -> bool {
    requant.iter().all(|&r| is_down(r))
}

/// Requantizes `acc` for channel requantization `r`: the short path when it applies.
#[inline(always)]
pub(super) fn output(io: &Int8Io, acc: i32, r: Requant) -> i8 {
    match RequantDown::new(io, r, (i32::MIN, i32::MAX)) {
        Some(q) => q.apply(acc),
        None => io.output(acc, r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The short requantization equals TFLite's on sums across the i32 range, for multipliers
    /// and right shifts across theirs.
    #[test]
    fn short_requantization_is_tflites() {
        let io = Int8Io { input_offset: 0, output_offset: -7, act_min: -128, act_max: 127 };
        let mut s = 0x1234_5678u32;
        for i in 0..200_000u32 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let acc = match i % 4 {
                0 => s as i32,
                1 => (s as i32) >> 12,
                2 => (s as i32) >> 20,
                _ => [i32::MIN, i32::MAX, 0, -1, 1][(s % 5) as usize],
            };
            let r = Requant { multiplier: (s.rotate_left(7) >> 1) as i32 | (1 << 30), shift: -(((s >> 3) % 33) as i32) };
            assert_eq!(RequantDown::new(&io, r, (-128, 127)).map(|q| q.apply(acc)), Some(io.output(acc, r)), "{acc} {r:?}");
            let zero = Requant { multiplier: 0, shift: r.shift };
            assert_eq!(RequantDown::new(&io, zero, (-128, 127)).map(|q| q.apply(acc)), Some(io.output(acc, zero)));
        }
    }

    /// The short requantization passes the shared checks (Helium's vector one runs them on the
    /// device, `kcheck`).
    #[test]
    fn passes_the_shared_checks() {
        let kernel = |io: &Int8Io, sums: &[i32], rq: &[Requant], out: &mut [i8]| {
            for ((o, &s), &r) in out.iter_mut().zip(sums).zip(rq) {
                *o = output(io, s, r);
            }
        };
        assert_eq!(crate::checks::requantization(&kernel), Ok(4096));
    }

    /// A fused pool's clamp after the layer's: one clamp, the same as the two in turn.
    #[test]
    fn clamps_compose() {
        let io = Int8Io { input_offset: 0, output_offset: 3, act_min: -20, act_max: 90 };
        let r = Requant::from_real(0.01);
        for clamp in [(-128, 127), (0, 127), (-50, 10), (95, 120), (-128, -30)] {
            let q = RequantDown::new(&io, r, clamp).unwrap();
            for acc in (-20_000..20_000).step_by(37) {
                let want = (io.output(acc, r) as i32).clamp(clamp.0, clamp.1) as i8;
                assert_eq!(q.apply(acc), want, "{acc} {clamp:?}");
            }
        }
    }
}
