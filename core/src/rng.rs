//! A small seeded PRNG (SplitMix64) so every run repeats exactly, plus a counter-based hash
//! for dropout masks that can be regenerated in the backward pass instead of stored.

/// SplitMix64's finalizer: a bijective 64-bit mix.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from the top 24 bits of a 64-bit value.
#[inline]
pub(crate) fn unit_f32(bits: u64) -> f32 {
    (bits >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// A seeded pseudo-random generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator from a seed; equal seeds give equal streams.
    pub fn new(seed: u64) -> Rng {
        Rng { state: mix64(seed ^ 0x6d6f_7465_6d6f_7465) }
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f32 {
        unit_f32(self.next_u64())
    }
    /// Uniform in [-bound, bound).
    pub fn symmetric(&mut self, bound: f32) -> f32 {
        (2.0 * self.uniform() - 1.0) * bound
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: the log stays finite
        let u2 = self.uniform();
        libm::sqrtf(-2.0 * libm::logf(u1)) * libm::cosf(core::f32::consts::TAU * u2)
    }
    /// An index in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Key of a reproducible noise stream: one per (seed, run, node).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NoiseKey(u64);

impl NoiseKey {
    pub(crate) fn new(seed: u64, run: u32, node: usize) -> NoiseKey {
        NoiseKey(mix64(mix64(seed) ^ ((run as u64) << 20) ^ node as u64))
    }
    /// Uniform in [0, 1) for element `i`, the same every time it is asked for.
    pub(crate) fn uniform(self, i: usize) -> f32 {
        unit_f32(mix64(self.0.wrapping_add((i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_has_unit_moments_and_streams_repeat() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..n {
            let v = r.normal() as f64;
            s += v;
            s2 += v * v;
        }
        let mean = s / n as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((s2 / n as f64 - 1.0).abs() < 0.02);
        assert_eq!(Rng::new(3).next_u64(), Rng::new(3).next_u64());
        assert_ne!(Rng::new(3).next_u64(), Rng::new(4).next_u64());
    }
}
