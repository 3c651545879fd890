//! Training runs on synthetic problems made here: an MLP with layernorm and dropout on 20
//! classes in 2-D, and a small convnet with batchnorm and a residual add on line images.
//! Each is run twice with one seed and must give bit-identical weights.

use mote_core::{Graph, Optimizer, Rng};
use mote_tests::nets::{line_convnet, mlp20};
use mote_tests::Classifier;
use std::f32::consts::TAU;

/// 20 classes of points around the unit circle: class k near angle 2πk/20 (±0.04 rad), at a
/// radius in [0.8, 1.2].
fn circle_classes(per_class: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for k in 0..20 {
        for _ in 0..per_class {
            let angle = TAU * k as f32 / 20.0 + rng.symmetric(0.04);
            let radius = 0.8 + 0.4 * rng.uniform();
            xs.extend([radius * angle.cos(), radius * angle.sin()]);
            ys.push(k as f32);
        }
    }
    (xs, ys)
}

const MLP_BATCH: usize = 50;

#[test]
fn mlp_learns_twenty_classes_in_2d_and_repeats_bit_for_bit() {
    let (xs, ys) = circle_classes(30, 1);
    let mut g = Graph::new();
    let ids = mlp20(&mut g, MLP_BATCH);
    let net = Classifier::new(&g, ids);
    let (params, losses) = net.train(Optimizer::adam(0.02), &xs, &ys, 150, 7);
    let acc = net.accuracy(&params, &xs, &ys);
    println!("mlp: loss {:.3} → {:.3}, training accuracy {:.2}%", losses[0], losses[losses.len() - 1], 100.0 * acc);
    assert!(acc >= 0.95, "training accuracy {acc}");
    let (again, _) = net.train(Optimizer::adam(0.02), &xs, &ys, 150, 7);
    assert!(params.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "same seed, same bits");
    let (other, _) = net.train(Optimizer::adam(0.02), &xs, &ys, 1, 8);
    assert!(params.iter().zip(&other).any(|(a, b)| a.to_bits() != b.to_bits()));
}

/// 8×8 images of a line: class 0 horizontal, 1 vertical, 2 diagonal, 3 anti-diagonal, of
/// length 5 at a random position, plus N(0, 0.1²) noise.
fn line_images(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let class = rng.below(4);
        let mut img = [0.0f32; 64];
        let (r, c) = (rng.below(4), rng.below(4));
        for t in 0..5 {
            let (y, x) = match class {
                0 => (r + 2, c + t),
                1 => (r + t, c + 2),
                2 => (r + t, c + t),
                _ => (r + t, c + 4 - t),
            };
            img[y.min(7) * 8 + x.min(7)] = 1.0;
        }
        xs.extend(img.iter().map(|v| v + 0.1 * rng.normal()));
        ys.push(class as f32);
    }
    (xs, ys)
}

const CNN_BATCH: usize = 16;

#[test]
fn convnet_with_batchnorm_and_residual_learns_line_orientations() {
    let (train_x, train_y) = line_images(800, 2);
    let (test_x, test_y) = line_images(320, 3);
    let mut g = Graph::new();
    let ids = line_convnet(&mut g, CNN_BATCH);
    let net = Classifier::new(&g, ids);
    let (params, losses) = net.train(Optimizer::adam(0.01), &train_x, &train_y, 8, 11);
    let acc = net.accuracy(&params, &test_x, &test_y);
    println!("convnet: loss {:.3} → {:.3}, test accuracy {:.2}%", losses[0], losses[losses.len() - 1], 100.0 * acc);
    assert!(losses[losses.len() - 1] < 0.5 * losses[0], "{losses:?}");
    assert!(acc >= 0.9, "test accuracy {acc}");
    let (again, _) = net.train(Optimizer::adam(0.01), &train_x, &train_y, 8, 11);
    assert!(params.iter().zip(&again).all(|(a, b)| a.to_bits() == b.to_bits()), "same seed, same bits");
}

#[test]
fn every_optimizer_lowers_the_loss() {
    let (xs, ys) = circle_classes(10, 4);
    let mut g = Graph::new();
    let ids = mlp20(&mut g, MLP_BATCH);
    let net = Classifier::new(&g, ids);
    for opt in [
        Optimizer::sgd(0.5),
        Optimizer::momentum(0.1, 0.9),
        Optimizer::nesterov(0.1, 0.9),
        Optimizer::adam(0.02),
        Optimizer::adamw(0.02, 0.01),
        Optimizer::momentum(0.1, 0.9).with_weight_decay(1e-3),
    ] {
        let (_, losses) = net.train(opt, &xs, &ys, 30, 5);
        assert!(losses[29] < 0.7 * losses[0], "{opt:?}: {losses:?}");
    }
}
