//! Worked examples of issue 2, each with golden values computed independently of the code
//! (by hand, or in f64 with plain loops in this file).

use mote_core::{Executor, Graph, Init, Mode, NodeId, Plan, Rng};
use mote_tests::{run_once, uniform};

/// Forward-only run in `mode` of `out`, with parameters from `params`.
fn eval(g: &Graph, out: NodeId, mode: Mode, params: &[f32], feeds: &[(NodeId, Vec<f32>)]) -> Vec<f32> {
    let plan: Plan = Plan::inference(g, &[out], mode).unwrap();
    run_once(g, &plan, params, feeds, out)
}

#[test]
fn conv2d_worked_example_through_the_graph() {
    let mut g = Graph::new();
    let x = g.input(&[1, 1, 3, 3]).unwrap();
    let y = g.conv2d(x, 1, [2, 2], [1, 1], [1, 1], false).unwrap();
    let params = [1.0, 0.0, 2.0, -1.0]; // kernel [[1, 0], [2, -1]]
    let out = eval(&g, y, Mode::Eval, &params, &[(x, vec![2.0, 4.0, 5.0, 2.0, 1.0, 3.0, 3.0, 1.0, 5.0])]);
    assert_eq!(g.shape(y).unwrap().dims(), &[1, 1, 4, 4]);
    let want = [-2.0, 0.0, 3.0, 10.0, -2.0, 5.0, 3.0, 11.0, -3.0, 7.0, -2.0, 13.0, 0.0, 3.0, 1.0, 5.0];
    assert_eq!(out, want);
}

#[test]
fn maxpool_worked_example_through_the_graph() {
    let mut g = Graph::new();
    let x = g.input(&[1, 1, 4, 4]).unwrap();
    let y = g.maxpool2d(x, [2, 2], [2, 2], [0, 0]).unwrap();
    let data = vec![2.0, 4.0, 5.0, 0.0, 2.0, 1.0, 3.0, 1.0, 3.0, 1.0, 5.0, 0.0, 0.0, 1.0, 0.0, 1.0];
    assert_eq!(eval(&g, y, Mode::Eval, &[], &[(x, data)]), [4.0, 5.0, 3.0, 5.0]);
}

#[test]
fn conv2d_32_by_32_kernel_3_padding_1_stride_2_gives_16_by_16() {
    let mut g: Graph = Graph::new();
    let x = g.input(&[1, 3, 32, 32]).unwrap();
    let y = g.conv2d(x, 8, [3, 3], [2, 2], [1, 1], true).unwrap();
    assert_eq!(g.shape(y).unwrap().dims(), &[1, 8, 16, 16]);
}

/// v4 = x @ W, v5 = exp(v4), v6 = v4 + v5, v7 = mse(v6, y): v4 feeds two consumers, so its
/// gradient is the sum of both adjoints. Closed form (computed here in f64):
/// ∂v7/∂v4 = (2/d)(v6 − y) ⊙ (exp(v4) + 1); ∂x = ∂v4 · Wᵀ; ∂W = xᵀ · ∂v4; ∂y = −(2/d)(v6 − y).
#[test]
fn two_consumer_graph_matches_the_closed_form() {
    let (n, k, m) = (3, 4, 2);
    let mut rng = Rng::new(5);
    let xv = uniform(&mut rng, n * k, -1.0, 1.0);
    let wv = uniform(&mut rng, k * m, -1.0, 1.0);
    let yv = uniform(&mut rng, n * m, -1.0, 1.0);

    let mut g: Graph = Graph::new();
    let x = g.input_with_grad(&[n, k]).unwrap();
    let w = g.param(&[k, m], Init::Zeros).unwrap();
    let y = g.input_with_grad(&[n, m]).unwrap();
    let v4 = g.matmul(x, w).unwrap();
    let v5 = g.exp(v4).unwrap();
    let v6 = g.add(v4, v5).unwrap();
    let v7 = g.mse(v6, y).unwrap();
    let plan: Plan = Plan::training(&g, v7, &[], None).unwrap();
    let mut params = wv.clone();
    let mut arena = vec![f32::NAN; plan.arena_len()];
    let mut ex = Executor::new(&g, &plan, &mut params, &mut [], &mut arena).unwrap();
    ex.set_input(x, &xv).unwrap();
    ex.set_input(y, &yv).unwrap();
    ex.run().unwrap();

    // Closed form in f64.
    let d = (n * m) as f64;
    let mut v4f = vec![0.0f64; n * m];
    for i in 0..n {
        for j in 0..m {
            v4f[i * m + j] = (0..k).map(|p| xv[i * k + p] as f64 * wv[p * m + j] as f64).sum();
        }
    }
    let v6f: Vec<f64> = v4f.iter().map(|v| v + v.exp()).collect();
    let loss: f64 = v6f.iter().zip(&yv).map(|(a, &b)| (a - b as f64).powi(2)).sum::<f64>() / d;
    let dv4: Vec<f64> = (0..n * m).map(|i| 2.0 / d * (v6f[i] - yv[i] as f64) * (v4f[i].exp() + 1.0)).collect();
    let dx: Vec<f64> = (0..n * k).map(|e| (0..m).map(|j| dv4[(e / k) * m + j] * wv[(e % k) * m + j] as f64).sum()).collect();
    let dw: Vec<f64> = (0..k * m).map(|e| (0..n).map(|i| xv[i * k + e / m] as f64 * dv4[i * m + e % m]).sum()).collect();
    let dy: Vec<f64> = (0..n * m).map(|i| -2.0 / d * (v6f[i] - yv[i] as f64)).collect();

    let close = |got: &[f32], want: &[f64], what: &str| {
        assert_eq!(got.len(), want.len());
        for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
            assert!((a as f64 - b).abs() <= 1e-5 * (1.0 + b.abs()), "{what}[{i}]: {a} vs {b}");
        }
    };
    close(ex.value(v7).unwrap(), &[loss], "loss");
    close(ex.grad(x).unwrap(), &dx, "dx");
    close(ex.grad(w).unwrap(), &dw, "dW");
    close(ex.grad(y).unwrap(), &dy, "dy");
}

#[test]
fn batchnorm_eval_with_fresh_statistics_is_the_identity() {
    for dims in [&[4, 3][..], &[2, 3, 4, 5][..]] {
        let mut g: Graph = Graph::new();
        let x = g.input(dims).unwrap();
        let y = g.batchnorm(x, 0.0, 0.1, false).unwrap();
        let mut params = vec![0.0; g.params_len()];
        g.init_params(&mut params, 0).unwrap(); // running mean 0, var 1
        let data = uniform(&mut Rng::new(1), dims.iter().product(), -5.0, 5.0);
        assert_eq!(eval(&g, y, Mode::Eval, &params, &[(x, data.clone())]), data);
    }
}

#[test]
fn batchnorm_training_updates_running_statistics_like_pytorch() {
    // Hand computation for one channel with values 1, 2, 3, 6 (mean 3, biased var 3.5,
    // unbiased var 14/3) and momentum 0.1: running mean 0.3, running var 0.9 + 0.1·14/3.
    let mut g: Graph = Graph::new();
    let x = g.input(&[4, 1]).unwrap();
    let y = g.batchnorm(x, 0.0, 0.1, false).unwrap();
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 0).unwrap();
    let plan: Plan = Plan::inference(&g, &[y], Mode::Train).unwrap();
    let mut arena = vec![0.0; plan.arena_len()];
    let mut ex = Executor::new(&g, &plan, &mut params, &mut [], &mut arena).unwrap();
    ex.set_input(x, &[1.0, 2.0, 3.0, 6.0]).unwrap();
    ex.run().unwrap();
    let out = ex.value(y).unwrap().to_vec();
    let s = 3.5f32.sqrt();
    for (o, v) in out.iter().zip([1.0f32, 2.0, 3.0, 6.0]) {
        assert!((o - (v - 3.0) / s).abs() < 1e-6);
    }
    assert!((params[0] - 0.3).abs() < 1e-6);
    assert!((params[1] - (0.9 + 0.1 * 14.0 / 3.0)).abs() < 1e-6);
}

#[test]
fn dropout_is_the_identity_in_eval_and_unbiased_in_training() {
    let mut g: Graph = Graph::new();
    let x = g.input(&[1, 50]).unwrap();
    let y = g.dropout(x, 0.5).unwrap();
    let data = uniform(&mut Rng::new(2), 50, 0.5, 2.0);
    assert_eq!(eval(&g, y, Mode::Eval, &[], &[(x, data.clone())]), data);

    let plan: Plan = Plan::inference(&g, &[y], Mode::Train).unwrap();
    let mut arena = vec![0.0; plan.arena_len()];
    let mut ex = Executor::new(&g, &plan, &mut [], &mut [], &mut arena).unwrap();
    let runs = 4000;
    let mut mean = vec![0.0f64; 50];
    let mut zeros = 0;
    for _ in 0..runs {
        ex.set_input(x, &data).unwrap();
        ex.run().unwrap();
        for (m, &v) in mean.iter_mut().zip(ex.value(y).unwrap()) {
            *m += v as f64 / runs as f64;
            zeros += (v == 0.0) as usize;
        }
    }
    // Each mean has std ≤ 2·x/√4000 ≈ 0.032·x: 5 sigma is 0.16·x.
    for (m, &v) in mean.iter().zip(&data) {
        assert!((m - v as f64).abs() < 0.16 * v as f64, "{m} vs {v}");
    }
    let frac = zeros as f64 / (runs * 50) as f64;
    assert!((frac - 0.5).abs() < 0.01, "dropped fraction {frac}");
}

/// Linear → relu → linear → mse without biases.
fn two_layer(g: &mut Graph, bias: bool) -> (NodeId, NodeId, NodeId, NodeId) {
    let x = g.input_with_grad(&[4, 5]).unwrap();
    let h = g.linear(x, 6, bias).unwrap();
    let r = g.relu(h).unwrap();
    let out = g.linear(r, 3, bias).unwrap();
    let t = g.input(&[4, 3]).unwrap();
    let loss = g.mse(out, t).unwrap();
    (x, r, out, loss)
}

#[test]
fn all_zero_weights_give_all_zero_weight_gradients() {
    let mut g: Graph = Graph::new();
    let (x, _, _, loss) = two_layer(&mut g, false);
    let t = mote_tests::node_id(&g, g.nodes().len() - 2);
    let plan: Plan = Plan::training(&g, loss, &[], None).unwrap();
    let mut params = vec![0.0; g.params_len()];
    let mut arena = vec![f32::NAN; plan.arena_len()];
    let mut ex = Executor::new(&g, &plan, &mut params, &mut [], &mut arena).unwrap();
    ex.set_input(x, &uniform(&mut Rng::new(3), 20, -1.0, 1.0)).unwrap();
    ex.set_input(t, &uniform(&mut Rng::new(4), 12, -1.0, 1.0)).unwrap();
    ex.run().unwrap();
    let weights: Vec<_> = g.node_ids().filter(|&id| g.node(id).unwrap().is_trainable()).collect();
    assert_eq!(weights.len(), 2);
    for w in weights {
        assert!(ex.grad(w).unwrap().iter().all(|&v| v == 0.0));
    }
}

#[test]
fn huge_biases_make_every_relu_active_and_the_network_affine() {
    let mut g: Graph = Graph::new();
    let (x, r, out, loss) = two_layer(&mut g, true);
    let t = mote_tests::node_id(&g, g.nodes().len() - 2);
    let ids: Vec<_> = g.node_ids().filter(|&id| g.node(id).unwrap().is_trainable()).collect();
    let (w1, b1, w2, b2) = (ids[0], ids[1], ids[2], ids[3]);
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 9).unwrap();
    for b in [b1, b2] {
        let off = g.node(b).unwrap().param_offset().unwrap();
        params[off..off + g.shape(b).unwrap().numel()].fill(1e6);
    }
    let (w1v, w2v) = {
        let o1 = g.node(w1).unwrap().param_offset().unwrap();
        let o2 = g.node(w2).unwrap().param_offset().unwrap();
        (params[o1..o1 + 30].to_vec(), params[o2..o2 + 18].to_vec())
    };
    let plan: Plan = Plan::training(&g, loss, &[r, out], None).unwrap();
    let mut arena = vec![f32::NAN; plan.arena_len()];
    let mut ex = Executor::new(&g, &plan, &mut params, &mut [], &mut arena).unwrap();
    let xv = uniform(&mut Rng::new(3), 20, -1.0, 1.0);
    let tv = uniform(&mut Rng::new(4), 12, -1.0, 1.0);
    ex.set_input(x, &xv).unwrap();
    ex.set_input(t, &tv).unwrap();
    ex.run().unwrap();
    assert!(ex.value(r).unwrap().iter().all(|&v| v > 0.0), "every relu active");
    // Affine network: ∂loss/∂x = (2/n)(out − t) · W2 · W1 exactly, no relu mask (f64 here).
    let o = ex.value(out).unwrap();
    for s in 0..4 {
        for i in 0..5 {
            let mut want = 0.0f64;
            for c in 0..3 {
                let d = 2.0 / 12.0 * (o[s * 3 + c] as f64 - tv[s * 3 + c] as f64);
                for h in 0..6 {
                    want += d * w2v[c * 6 + h] as f64 * w1v[h * 5 + i] as f64;
                }
            }
            let got = ex.grad(x).unwrap()[s * 5 + i] as f64;
            assert!((got - want).abs() <= 1e-4 * want.abs().max(1.0), "dx[{s},{i}] {got} vs {want}");
        }
    }
}

#[test]
fn softmax_and_log_softmax_stay_finite_for_huge_logits() {
    let mut g: Graph = Graph::new();
    let x = g.input(&[2, 3]).unwrap();
    let s = g.softmax(x).unwrap();
    let l = g.log_softmax(x).unwrap();
    let data = vec![1e4, -1e4, 0.0, -1e4, -1e4, -1e4 + 1.0];
    let sv = eval(&g, s, Mode::Eval, &[], &[(x, data.clone())]);
    let lv = eval(&g, l, Mode::Eval, &[], &[(x, data)]);
    assert!(sv.iter().chain(&lv).all(|v| v.is_finite()));
    assert_eq!(&sv[..3], &[1.0, 0.0, 0.0]);
    // Row 2 by hand: shifted by its max it is [-1, -1, 0], so log_softmax is
    // [-1 − ln(1 + 2e⁻¹), -1 − ln(1 + 2e⁻¹), −ln(1 + 2e⁻¹)].
    let lse = (1.0f32 + 2.0 * (-1.0f32).exp()).ln();
    assert!((lv[5] + lse).abs() < 1e-5 && (lv[3] + 1.0 + lse).abs() < 1e-5, "{lv:?}");
}

/// A classifier ending in a softmax (as imported models do) trains on its logits: its loss is
/// the cross-entropy of the softmax's input. By hand: logits [1, 2, 3], label 2:
/// −log(e³ / (e + e² + e³)) = log(1 + e⁻¹ + e⁻²) = 0.40760596.
#[test]
fn a_final_softmax_trains_on_its_logits() {
    use mote_core::model::{Layer, LayerOp, Loss, ModelSpec};
    let layer = |name: &str, op| Layer { name: name.try_into().unwrap(), op, inputs: heapless::Vec::new() };
    let mut spec = ModelSpec {
        name: "soft".try_into().unwrap(),
        input: heapless::Vec::from_slice(&[3]).unwrap(),
        layers: heapless::Vec::new(),
        loss: Loss::CrossEntropy,
    };
    spec.layers.push(layer("probs", LayerOp::Softmax {})).unwrap();
    let mut g: Graph = Graph::new();
    let built = spec.build(&mut g, 1).unwrap();
    let plan: Plan = Plan::inference(&g, &[built.loss, built.output], Mode::Eval).unwrap();
    let loss = run_once(&g, &plan, &[], &[(built.x, vec![1.0, 2.0, 3.0]), (built.target, vec![2.0])], built.loss);
    assert!((loss[0] - 0.40760596).abs() < 1e-6, "{loss:?}");
}
