//! Batchnorm's evaluation-mode backward (running statistics are constants) has no training
//! plan of its own, so it is checked here at the kernel level against central differences
//! of `L = Σ y ⊙ r` for a random `r`.

use mote_core::Rng;
use mote_kernels::{batchnorm_backward_f32, batchnorm_eval_f32, BatchNormGrads, BatchNormParams};
use mote_tests::{uniform, FD_STEP};

#[test]
fn eval_mode_backward_matches_finite_differences() {
    let p = BatchNormParams { batch: 3, channels: 2, inner: 5, eps: 1e-5, momentum: 0.1 };
    let n = 30;
    let mut rng = Rng::new(1);
    let x = uniform(&mut rng, n, -2.0, 2.0);
    let r = uniform(&mut rng, n, -1.0, 1.0);
    let gamma = vec![1.5, -0.7];
    let beta = vec![0.2, 0.4];
    let (mean, var) = (vec![0.3, -0.2], vec![2.0, 0.5]);
    let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| {
        let mut y = vec![0.0; n];
        batchnorm_eval_f32(&p, x, Some(gamma), Some(beta), &mean, &var, &mut y);
        y.iter().zip(&r).map(|(a, b)| (a * b) as f64).sum::<f64>()
    };
    let (mut dx, mut dg, mut db) = (vec![0.0; n], vec![0.0; 2], vec![0.0; 2]);
    let grads = BatchNormGrads { dx: Some(&mut dx), dgamma: Some(&mut dg), dbeta: Some(&mut db) };
    batchnorm_backward_f32(&p, &x, Some(&gamma), Some((&mean, &var)), &r, grads);

    let fd = |f: &dyn Fn(f32) -> f64| ((f(FD_STEP) - f(-FD_STEP)) / (2.0 * FD_STEP as f64)) as f32;
    let close = |a: f32, b: f32, what: &str| assert!((a - b).abs() <= 2e-3 * b.abs() + 1e-4, "{what}: {a} vs {b}");
    for i in 0..n {
        let num = fd(&|d| {
            let mut xp = x.clone();
            xp[i] += d;
            loss(&xp, &gamma, &beta)
        });
        close(dx[i], num, &format!("dx[{i}]"));
    }
    for c in 0..2 {
        let num_g = fd(&|d| {
            let mut gp = gamma.clone();
            gp[c] += d;
            loss(&x, &gp, &beta)
        });
        let num_b = fd(&|d| {
            let mut bp = beta.clone();
            bp[c] += d;
            loss(&x, &gamma, &bp)
        });
        close(dg[c], num_g, "dgamma");
        close(db[c], num_b, "dbeta");
    }
}
