//! Plans as bytes (the host plans, the device executes): every plan round-trips exactly and
//! runs identically; truncated, flipped or foreign plan bytes get a typed error, and a
//! decoded plan that survives flipped bytes still never panics the executor.

use mote_core::{Error, Executor, Graph, Mode, NodeId, Optimizer, Plan, Rng};
use mote_tests::nets::{line_convnet, mlp20, Net};

/// mnist-cnn's shape at batch 2: two fused conv → relu → maxpool blocks and a linear layer.
fn small_cnn(g: &mut Graph) -> Net {
    small_cnn_with(g, |g, c| g.relu(c))
}

/// [`small_cnn`] with `second` in place of its second relu.
fn small_cnn_with(g: &mut Graph, second: fn(&mut Graph, NodeId) -> mote_core::Result<NodeId>) -> Net {
    let x = g.input(&[2, 1, 12, 12]).unwrap();
    let c1 = g.conv2d(x, 4, [3, 3], [1, 1], [0, 0], true).unwrap();
    let r1 = g.relu(c1).unwrap();
    let p1 = g.maxpool2d(r1, [2, 2], [2, 2], [0, 0]).unwrap();
    let c2 = g.conv2d(p1, 6, [3, 3], [1, 1], [1, 1], true).unwrap();
    let r2 = second(g, c2).unwrap();
    let p2 = g.maxpool2d(r2, [2, 2], [2, 2], [0, 0]).unwrap();
    let f = g.flatten(p2).unwrap();
    let logits = g.linear(f, 3, true).unwrap();
    let labels = g.labels(2).unwrap();
    Net { x, labels, logits, loss: g.cross_entropy(logits, labels).unwrap() }
}

fn encode(plan: &Plan) -> Vec<u8> {
    let mut bytes = vec![0u8; plan.encoded_len()];
    assert_eq!(plan.to_bytes(&mut bytes).unwrap(), bytes.len());
    bytes
}

/// The plans of three networks: inference, training without and with optimizers.
fn plans(g: &Graph, net: Net) -> Vec<Plan> {
    vec![
        Plan::inference(g, &[net.logits], Mode::Eval).unwrap(),
        Plan::training(g, net.loss, &[net.logits], None).unwrap(),
        Plan::training(g, net.loss, &[net.logits], Some(Optimizer::momentum(0.05, 0.9))).unwrap(),
        Plan::training(g, net.loss, &[], Some(Optimizer::adamw(0.01, 0.1))).unwrap(),
    ]
}

/// Weights after three training steps with `plan` (its arena poisoned with NaN first).
fn train(g: &Graph, net: Net, plan: &Plan) -> Vec<u32> {
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 3).unwrap();
    let mut state = vec![0.0; plan.optimizer_len()];
    let mut arena = vec![f32::NAN; plan.arena_len()];
    let mut ex = Executor::new(g, plan, &mut params, &mut state, &mut arena).unwrap();
    let mut rng = Rng::new(9);
    let batch = g.shape(net.labels).unwrap().numel();
    for _ in 0..3 {
        let n = g.shape(net.x).unwrap().numel();
        ex.set_input(net.x, &(0..n).map(|_| rng.uniform()).collect::<Vec<_>>()).unwrap();
        ex.set_input(net.labels, &(0..batch).map(|i| (i % 3) as f32).collect::<Vec<_>>()).unwrap();
        ex.run().unwrap();
    }
    ex.params().iter().map(|v| v.to_bits()).collect()
}

#[test]
fn plans_round_trip_and_run_identically() {
    let builders: [fn(&mut Graph) -> Net; 3] = [|g| mlp20(g, 5), |g| line_convnet(g, 3), small_cnn];
    for build in builders {
        let mut g: Graph = Graph::new();
        let net = build(&mut g);
        for plan in plans(&g, net) {
            let decoded = Plan::from_bytes(&encode(&plan)).unwrap();
            assert_eq!(decoded, plan);
            if plan.optimizer().is_some() {
                assert_eq!(train(&g, net, &decoded), train(&g, net, &plan));
            }
        }
    }
}

#[test]
fn a_plan_runs_only_against_its_own_graph() {
    let (mut a, mut b): (Graph, Graph) = (Graph::new(), Graph::new());
    let net = small_cnn(&mut a);
    small_cnn(&mut b);
    // Same structure: same fingerprint, the plan is accepted.
    assert_eq!(a.fingerprint(), b.fingerprint());
    let plan: Plan = Plan::inference(&a, &[net.logits], Mode::Eval).unwrap();
    let decoded: Plan = Plan::from_bytes(&encode(&plan)).unwrap();
    let params = vec![0.0; b.params_len()];
    let mut arena = vec![0.0; plan.arena_len()];
    assert!(Executor::read_only(&b, &decoded, &params, &mut arena).is_ok());
    // tanh instead of the second relu: same nodes and parameters, another graph.
    let mut c: Graph = Graph::new();
    small_cnn_with(&mut c, |g, x| g.tanh(x));
    assert_eq!((c.nodes().len(), c.params_len()), (a.nodes().len(), a.params_len()));
    assert_ne!(c.fingerprint(), a.fingerprint());
    let params = vec![0.0; c.params_len()];
    let err = Executor::read_only(&c, &decoded, &params, &mut arena).err().unwrap();
    assert!(matches!(err, Error::PlanMismatch { .. }), "{err}");
}

/// What became of damaged plan bytes: refused by the decoder, refused by the executor (when
/// set up or when run), or run to the end.
#[derive(PartialEq)]
enum Fate {
    Undecodable,
    Refused,
    Ran,
}

/// Decodes `bytes` and, if that works, runs one training step of `net` with it; never panics.
fn try_plan(g: &Graph, net: Net, bytes: &[u8]) -> Fate {
    let Ok(decoded) = Plan::<64, 256>::from_bytes(bytes) else { return Fate::Undecodable };
    let mut params = vec![0.1; g.params_len()];
    let mut state = vec![0.0; decoded.optimizer_len().min(1 << 16)];
    let mut arena = vec![0.0; decoded.arena_len().min(1 << 16)];
    let Ok(mut ex) = Executor::new(g, &decoded, &mut params, &mut state, &mut arena) else { return Fate::Refused };
    let _ = ex.set_input(net.x, &[0.5; 288]);
    let _ = ex.set_input(net.labels, &[1.0, 2.0]);
    if ex.run().is_ok() {
        Fate::Ran
    } else {
        Fate::Refused
    }
}

#[test]
fn damaged_plan_bytes_get_typed_errors_and_never_panic() {
    let mut g: Graph = Graph::new();
    let net = small_cnn(&mut g);
    let plan: Plan = Plan::training(&g, net.loss, &[], Some(Optimizer::momentum(0.05, 0.9))).unwrap();
    let bytes = encode(&plan);
    for len in 0..bytes.len() {
        let err = Plan::<64, 256>::from_bytes(&bytes[..len]).unwrap_err();
        assert!(matches!(err, Error::PlanBytes { .. }), "{len}: {err}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Plan::<64, 256>::from_bytes(&longer).unwrap_err(), Error::PlanBytes { what: "length (trailing bytes)" });
    // A plan for more nodes than the decoder's capacity.
    assert!(matches!(Plan::<8, 256>::from_bytes(&bytes).unwrap_err(), Error::CapacityExceeded { what: "plan nodes", .. }));
    // Random flips of one to three bytes: an error, or a plan that the executor runs or
    // refuses, but no panic.
    let mut rng = Rng::new(17);
    let (mut refused, mut ran) = (0, 0);
    for _ in 0..3000 {
        let mut damaged = bytes.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(damaged.len());
            damaged[at] ^= 1u8 << rng.below(8);
        }
        match try_plan(&g, net, &damaged) {
            Fate::Undecodable => refused += 1,
            Fate::Refused => {}
            Fate::Ran => ran += 1,
        }
    }
    assert!(refused > 100 && ran > 100, "refused {refused}, ran {ran}");
}

#[test]
fn a_fused_step_pointed_at_the_wrong_conv_is_refused() {
    // x → conv a → relu → maxpool (fused) beside x → conv b (another shape) → global pool.
    // Edit the plan bytes so the fused step absorbs conv b instead: the executor must refuse
    // before any kernel runs, since the kernel would be sized from conv b's shapes.
    let mut g: Graph = Graph::new();
    let x = g.input(&[1, 1, 8, 8]).unwrap();
    let a = g.conv2d(x, 2, [3, 3], [1, 1], [0, 0], true).unwrap();
    let ra = g.relu(a).unwrap();
    let pa = g.maxpool2d(ra, [2, 2], [2, 2], [0, 0]).unwrap();
    let b = g.conv2d(x, 4, [3, 3], [1, 1], [1, 1], true).unwrap();
    let gb = g.global_avgpool(b).unwrap();
    let plan: Plan = Plan::inference(&g, &[pa, gb], Mode::Eval).unwrap();
    assert_eq!(plan.fused_steps(), 1);
    let mut bytes = encode(&plan);
    // Node records (31 bytes each) close the encoding; each ends with its fused conv (u16).
    let record = |i: usize| bytes.len() - 31 * (g.nodes().len() - i);
    let at = record(pa.index()) + 29;
    assert_eq!(u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize, a.index());
    bytes[at..at + 2].copy_from_slice(&(b.index() as u16).to_le_bytes());
    let edited: Plan = Plan::from_bytes(&bytes).unwrap();
    let params = vec![0.1; g.params_len()];
    let mut arena = vec![0.0; edited.arena_len()];
    let mut ex = Executor::read_only(&g, &edited, &params, &mut arena).unwrap();
    ex.set_input(x, &[0.5; 64]).unwrap();
    assert!(matches!(ex.run(), Err(Error::PlanMismatch { .. })));
}

/// The firmware embeds a training plan made on the host and sets its own learning rate and
/// momentum: the executor takes new settings of the same optimizer kind and state layout,
/// and refuses another kind or layout.
#[test]
fn a_decoded_plan_takes_new_optimizer_settings_of_the_same_layout() {
    let mut g: Graph = Graph::new();
    let net = small_cnn(&mut g);
    let baked: Plan = Plan::training(&g, net.loss, &[], Some(Optimizer::momentum(0.003, 0.9))).unwrap();
    let decoded: Plan = Plan::from_bytes(&encode(&baked)).unwrap();
    let wanted: Plan = Plan::training(&g, net.loss, &[], Some(Optimizer::momentum(0.05, 0.5))).unwrap();
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 3).unwrap();
    let mut state = vec![0.0; decoded.optimizer_len()];
    let mut arena = vec![f32::NAN; decoded.arena_len()];
    let mut ex = Executor::new(&g, &decoded, &mut params, &mut state, &mut arena).unwrap();
    for other in [Optimizer::adam(0.01), Optimizer::sgd(0.05)] {
        assert!(matches!(ex.set_optimizer(other), Err(Error::PlanMismatch { .. })), "{other:?}");
    }
    ex.set_optimizer(Optimizer::momentum(0.05, 0.5)).unwrap();
    let mut rng = Rng::new(9);
    for _ in 0..3 {
        ex.set_input(net.x, &(0..288).map(|_| rng.uniform()).collect::<Vec<_>>()).unwrap();
        ex.set_input(net.labels, &[0.0, 1.0]).unwrap();
        ex.run().unwrap();
    }
    let got: Vec<u32> = ex.params().iter().map(|v| v.to_bits()).collect();
    assert_eq!(got, train(&g, net, &wanted));
}

#[test]
fn a_plan_names_the_kernels_it_was_sized_for() {
    let mut g: Graph = Graph::new();
    let net = small_cnn(&mut g);
    let plan: Plan = Plan::training_for(mote_core::Isa::Dsp, &g, net.loss, &[], Some(Optimizer::momentum(0.05, 0.9))).unwrap();
    assert_eq!(plan.isa(), mote_core::Isa::Dsp);
    let mut bytes = encode(&plan);
    assert_eq!(Plan::<64, 256>::from_bytes(&bytes).unwrap().isa(), mote_core::Isa::Dsp);
    // The ISA byte follows magic (4), version (1), fingerprint (4), node count (2), parameter
    // count (4), step count (2) and mode (1).
    assert_eq!(bytes[18], mote_core::Isa::Dsp as u8);
    bytes[18] = 200;
    assert_eq!(Plan::<64, 256>::from_bytes(&bytes).unwrap_err(), Error::PlanBytes { what: "isa" });
}

#[test]
fn u32_max_in_any_field_of_plan_bytes_is_refused_or_run_without_a_panic() {
    // Every 4-byte window of the encoding (offsets, lengths, counts, settings) set to u32::MAX
    // and to 2^31 in turn.
    let mut g: Graph = Graph::new();
    let net = small_cnn(&mut g);
    let plan: Plan = Plan::training(&g, net.loss, &[], Some(Optimizer::momentum(0.05, 0.9))).unwrap();
    let bytes = encode(&plan);
    let mut refused = 0;
    for at in 0..bytes.len() - 3 {
        for value in [u32::MAX, 1 << 31] {
            let mut hostile = bytes.clone();
            hostile[at..at + 4].copy_from_slice(&value.to_le_bytes());
            refused += (try_plan(&g, net, &hostile) != Fate::Ran) as usize;
        }
    }
    // Windows that break the plan are refused by the decoder or the executor; the others land
    // in settings that stay in range (the bits 2^31 are −0.0, a valid learning rate), the
    // report-only peak figures, or offsets of tensors the plan never touches. Measured: 615 of
    // 1,292 refused.
    let tried = 2 * (bytes.len() - 3);
    assert!(3 * refused > tried, "refused {refused} of {tried}");
}

#[test]
fn optimizer_settings_out_of_range_are_refused_in_plans_bytes_and_executors() {
    let mut g: Graph = Graph::new();
    let net = small_cnn(&mut g);
    let bad = Error::InvalidArgument {
        op: "optimizer",
        expected: "lr finite and ≥ 0, momentum and betas in [0, 1), eps finite and > 0, weight decay finite and ≥ 0",
    };
    for opt in [
        Optimizer::momentum(f32::NAN, 0.9),
        Optimizer::momentum(0.1, 1.5),
        Optimizer::adam(-1.0),
        Optimizer::sgd(0.1).with_weight_decay(f32::INFINITY),
    ] {
        assert_eq!(Plan::<64, 256>::training(&g, net.loss, &[], Some(opt)).unwrap_err(), bad, "{opt:?}");
    }
    let plan: Plan = Plan::training(&g, net.loss, &[], Some(Optimizer::momentum(0.05, 0.9))).unwrap();
    let mut bytes = encode(&plan);
    // The learning rate is the first f32 after the optimizer tag: magic (4), version (1),
    // fingerprint (4), node count (2), parameter count (4), step count (2), mode (1), ISA (1),
    // optimizer tag (1).
    assert_eq!(bytes[20..24], 0.05f32.to_le_bytes());
    bytes[20..24].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_eq!(Plan::<64, 256>::from_bytes(&bytes).unwrap_err(), Error::PlanBytes { what: "optimizer settings (out of range)" });
    let mut params = vec![0.1; g.params_len()];
    let mut state = vec![0.0; plan.optimizer_len()];
    let mut arena = vec![0.0; plan.arena_len()];
    let mut ex = Executor::new(&g, &plan, &mut params, &mut state, &mut arena).unwrap();
    assert_eq!(ex.set_optimizer(Optimizer::momentum(f32::INFINITY, 0.9)).unwrap_err(), bad);
}
