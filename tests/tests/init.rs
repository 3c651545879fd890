//! Initializers: Kaiming-normal init keeps the activation scale through a deep relu network
//! while N(0, 1) init does not.

use mote_core::{Graph, Init, Mode, Plan, Rng};
use mote_tests::run_once;

/// Mean square of the output of 10 linear+relu layers of width 256 over the mean square of
/// the N(0, 1) input, with every weight initialized by `init`.
fn depth_ten_ratio(init: Init) -> f64 {
    let (batch, width) = (64, 256);
    let mut g: Graph = Graph::new();
    let x = g.input(&[batch, width]).unwrap();
    let mut h = x;
    for _ in 0..10 {
        let l = g.linear(h, width, false).unwrap();
        h = g.relu(l).unwrap();
    }
    let weights: Vec<_> = g.node_ids().filter(|&id| g.node(id).unwrap().is_trainable()).collect();
    for w in weights {
        g.set_init(w, init).unwrap();
    }
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 3).unwrap();
    let mut rng = Rng::new(4);
    let input: Vec<f32> = (0..batch * width).map(|_| rng.normal()).collect();
    let plan: Plan = Plan::inference(&g, &[h], Mode::Eval).unwrap();
    let out = run_once(&g, &plan, &params, &[(x, input.clone())], h);
    let ms = |v: &[f32]| v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>() / v.len() as f64;
    ms(&out) / ms(&input)
}

#[test]
fn kaiming_normal_keeps_the_scale_through_ten_relu_layers() {
    let kaiming = depth_ten_ratio(Init::KaimingNormal);
    let normal = depth_ten_ratio(Init::Normal { std: 1.0 });
    println!("mean-square ratio after 10 layers: Kaiming {kaiming:.3}, N(0,1) {normal:.3e}");
    assert!((0.5..=2.0).contains(&kaiming), "{kaiming}");
    assert!(!(0.5..=2.0).contains(&normal), "{normal}");
}

#[test]
fn xavier_and_constants() {
    let mut g: Graph = Graph::new();
    let w = g.param(&[30, 50], Init::XavierUniform).unwrap();
    let c = g.param(&[7], Init::Constant(0.25)).unwrap();
    let z = g.param(&[7], Init::Zeros).unwrap();
    let mut p = vec![f32::NAN; g.params_len()];
    g.init_params(&mut p, 1).unwrap();
    let bound = (6.0f32 / 80.0).sqrt();
    let off = |id| g.node(id).unwrap().param_offset().unwrap();
    assert!(p[off(w)..off(w) + 1500].iter().all(|v| v.abs() <= bound));
    let var = p[off(w)..off(w) + 1500].iter().map(|v| v * v).sum::<f32>() / 1500.0;
    assert!((var - bound * bound / 3.0).abs() < 0.1 * bound * bound / 3.0, "{var}");
    assert!(p[off(c)..off(c) + 7].iter().all(|&v| v == 0.25));
    assert!(p[off(z)..off(z) + 7].iter().all(|&v| v == 0.0));
    let mut again = vec![0.0; g.params_len()];
    g.init_params(&mut again, 1).unwrap();
    assert_eq!(p, again);
}
