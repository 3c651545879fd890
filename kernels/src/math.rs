//! Scalar math used by the kernels: `libm` (accurate) by default, `micromath` with `fast-math`.
//!
//! Measured worst error of the fast path against libm (see `FAST_*_MAX_ERR` and the test
//! `fast_math_error_is_within_the_documented_bound`, grid of 200,001 points over [-20, 20]):
//! - `exp`: relative error 2.39e-3 measured, bound 2.5e-3 (micromath's bit-trick exponential)
//! - `sigmoid`: absolute error 5.29e-4 measured, bound 6.0e-4
//! - `tanh`: absolute error 3.34e-4 measured, bound 4.0e-4

/// Worst relative error of [`fast::exp`] against `libm::expf` on [-20, 20].
pub const FAST_EXP_MAX_REL_ERR: f32 = 2.5e-3;
/// Worst absolute error of [`fast::sigmoid`] against the libm formula on [-20, 20].
pub const FAST_SIGMOID_MAX_ABS_ERR: f32 = 6.0e-4;
/// Worst absolute error of [`fast::tanh`] against `libm::tanhf` on [-20, 20].
pub const FAST_TANH_MAX_ABS_ERR: f32 = 4.0e-4;

/// Accurate math from `libm`.
pub mod accurate {
    /// e^x.
    #[inline]
    pub fn exp(x: f32) -> f32 {
        libm::expf(x)
    }
    /// 1 / (1 + e^-x), evaluated without overflow for large |x|.
    #[inline]
    pub fn sigmoid(x: f32) -> f32 {
        if x >= 0.0 {
            1.0 / (1.0 + libm::expf(-x))
        } else {
            let e = libm::expf(x);
            e / (1.0 + e)
        }
    }
    /// Hyperbolic tangent.
    #[inline]
    pub fn tanh(x: f32) -> f32 {
        libm::tanhf(x)
    }
}

/// Fast approximations from `micromath`.
pub mod fast {
    use micromath::F32Ext;
    /// e^x, micromath approximation.
    #[inline]
    pub fn exp(x: f32) -> f32 {
        F32Ext::exp(x)
    }
    /// 1 / (1 + e^-x) through the fast exponential.
    #[inline]
    pub fn sigmoid(x: f32) -> f32 {
        if x >= 0.0 {
            1.0 / (1.0 + exp(-x))
        } else {
            let e = exp(x);
            e / (1.0 + e)
        }
    }
    /// tanh(x) = 1 − 2 / (e^{2x} + 1) through the fast exponential (odd-symmetric).
    #[inline]
    pub fn tanh(x: f32) -> f32 {
        let a = if x < 0.0 { -x } else { x };
        let t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
        if x < 0.0 {
            -t
        } else {
            t
        }
    }
}

#[cfg(not(feature = "fast-math"))]
pub use accurate::{exp, sigmoid, tanh};
#[cfg(feature = "fast-math")]
pub use fast::{exp, sigmoid, tanh};

/// Square root (always libm: it is exact enough and cheap on an FPU).
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// Natural logarithm (always libm: the losses need it accurate).
#[inline]
pub fn ln(x: f32) -> f32 {
    libm::logf(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> impl Iterator<Item = f32> {
        (0..=200_000).map(|i| -20.0 + 40.0 * (i as f32) / 200_000.0)
    }

    #[test]
    fn fast_math_error_is_within_the_documented_bound() {
        let (mut exp_err, mut sig_err, mut tanh_err) = (0.0f32, 0.0f32, 0.0f32);
        for x in grid() {
            let e = accurate::exp(x);
            exp_err = exp_err.max(((fast::exp(x) - e) / e).abs());
            sig_err = sig_err.max((fast::sigmoid(x) - accurate::sigmoid(x)).abs());
            tanh_err = tanh_err.max((fast::tanh(x) - accurate::tanh(x)).abs());
        }
        println!("fast-math worst error: exp rel {exp_err:e}, sigmoid abs {sig_err:e}, tanh abs {tanh_err:e}");
        assert!(exp_err <= FAST_EXP_MAX_REL_ERR, "exp {exp_err}");
        assert!(sig_err <= FAST_SIGMOID_MAX_ABS_ERR, "sigmoid {sig_err}");
        assert!(tanh_err <= FAST_TANH_MAX_ABS_ERR, "tanh {tanh_err}");
        // The bound is tight: the measured error is at least a tenth of it, so a silently
        // exact "fast" path (a wiring mistake) is noticed too.
        assert!(exp_err > FAST_EXP_MAX_REL_ERR / 10.0);
    }

    #[test]
    fn accurate_sigmoid_is_finite_at_extremes() {
        assert_eq!(accurate::sigmoid(1e4), 1.0);
        assert_eq!(accurate::sigmoid(-1e4), 0.0);
        assert!((accurate::sigmoid(0.0) - 0.5).abs() < 1e-7);
    }
}
