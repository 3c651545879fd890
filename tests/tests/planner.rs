//! The planner: arena sizes against the lower bound, exact-size arenas, refusals before
//! anything runs, and the memory figures of the issue's two training networks.

use mote_core::{f32_arena_from_bytes, Error, Executor, Graph, Mode, NodeId, Optimizer, Plan, BYTES_PER_VALUE};
use mote_tests::nets::{line_convnet, mlp20, Net};

/// (x, labels, logits, loss) of a shared test network.
fn ids(net: Net) -> (NodeId, NodeId, NodeId, NodeId) {
    (net.x, net.labels, net.logits, net.loss)
}

fn mlp(g: &mut Graph, batch: usize) -> (NodeId, NodeId, NodeId, NodeId) {
    ids(mlp20(g, batch))
}

fn convnet(g: &mut Graph, batch: usize) -> (NodeId, NodeId, NodeId, NodeId) {
    ids(line_convnet(g, batch))
}

/// Sum of every arena tensor's size: what a planner without reuse would need.
fn no_reuse_bytes(g: &Graph, training: bool) -> usize {
    let activations: usize = g.nodes().iter().filter(|n| n.param_offset().is_none()).map(|n| n.shape.numel()).sum();
    let grads: usize = g.nodes().iter().filter(|n| n.requires_grad).map(|n| n.shape.numel()).sum();
    BYTES_PER_VALUE * (activations + if training { grads } else { 0 })
}

#[test]
fn report_and_bounds_of_the_issue_networks() {
    type Build = fn(&mut Graph, usize) -> (NodeId, NodeId, NodeId, NodeId);
    let nets: [(&str, Build, usize); 4] = [("mlp-20", mlp, 50), ("mlp-20", mlp, 1), ("convnet", convnet, 16), ("convnet", convnet, 1)];
    for (name, build, batch) in nets {
        let mut g = Graph::new();
        let (_, _, logits, loss) = build(&mut g, batch);
        let infer: Plan = Plan::inference(&g, &[logits], Mode::Eval).unwrap();
        let train: Plan = Plan::training(&g, loss, &[], Some(Optimizer::adam(1e-3))).unwrap();
        let grads: Plan = Plan::training(&g, loss, &[], None).unwrap();
        let (i, t, k) = (infer.memory(), train.memory(), grads.memory());
        println!(
            "{name} batch {batch}: {} params; inference arena {} B (lower bound {}); training arena {} B (lower bound {}), \
             params {} B, Adam state {} B; without fused updates {} B; no reuse {} B",
            g.trainable_params(),
            i.arena_bytes,
            i.arena_lower_bound_bytes,
            t.arena_bytes,
            t.arena_lower_bound_bytes,
            t.params_bytes,
            t.optimizer_bytes,
            k.arena_bytes,
            no_reuse_bytes(&g, true),
        );
        for m in [i, t, k] {
            assert!(m.arena_lower_bound_bytes <= m.arena_bytes);
            // Greedy placement stays within 25% of the bound on these graphs.
            assert!(m.arena_bytes * 4 <= m.arena_lower_bound_bytes * 5, "{m:?}");
        }
        assert!(i.arena_bytes < no_reuse_bytes(&g, false));
        assert!(t.arena_bytes < no_reuse_bytes(&g, true));
        // Updating each parameter as soon as its gradient is complete never needs more
        // arena than keeping every parameter gradient to the end.
        assert!(t.arena_bytes <= k.arena_bytes);
        assert_eq!(t.optimizer_bytes, 2 * BYTES_PER_VALUE * g.trainable_params());
    }
}

#[test]
fn a_training_step_runs_in_exactly_the_planned_arena_and_one_byte_less_is_refused() {
    let mut g = Graph::new();
    let (x, labels, _, loss) = convnet(&mut g, 2);
    let plan: Plan = Plan::training(&g, loss, &[], Some(Optimizer::momentum(0.01, 0.9))).unwrap();
    let bytes = plan.memory().arena_bytes;
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 1).unwrap();
    let mut opt = vec![0.0; plan.optimizer_len()];

    // An f32-aligned byte buffer of exactly the planned size.
    let mut backing = vec![0.0f32; plan.arena_len()];
    // SAFETY: a Vec<f32>'s buffer is valid for len · 4 bytes and any byte pattern is a valid f32.
    let exact: &mut [u8] = unsafe { std::slice::from_raw_parts_mut(backing.as_mut_ptr() as *mut u8, bytes) };
    let mut ex = Executor::new(&g, &plan, &mut params, &mut opt, f32_arena_from_bytes(exact)).unwrap();
    ex.set_input(x, &[0.5; 128]).unwrap();
    ex.set_input(labels, &[1.0, 3.0]).unwrap();
    ex.run().unwrap();
    let loss_value = ex.value(loss).unwrap()[0];
    assert!(loss_value.is_finite() && loss_value > 0.0);

    let mut params2 = vec![0.0; g.params_len()];
    let short: &mut [u8] = unsafe { std::slice::from_raw_parts_mut(backing.as_mut_ptr() as *mut u8, bytes - 1) };
    let err = Executor::new(&g, &plan, &mut params2, &mut opt, f32_arena_from_bytes(short)).err().unwrap();
    assert_eq!(err, Error::ArenaTooSmall { needed_bytes: bytes, got_bytes: bytes - 4 });
    assert!(err.to_string().contains(&format!("needs {bytes} bytes")), "{err}");
}

#[test]
fn wrong_buffers_and_plans_are_refused_before_anything_runs() {
    let mut g = Graph::new();
    let (x, labels, logits, loss) = mlp(&mut g, 4);
    let train: Plan = Plan::training(&g, loss, &[], Some(Optimizer::adam(1e-3))).unwrap();
    let mut params = vec![0.0; g.params_len()];
    let mut arena = vec![0.0; train.arena_len()];
    let mut short_params = vec![0.0; g.params_len() - 1];
    let err = Executor::new(&g, &train, &mut short_params, &mut [], &mut arena).err().unwrap();
    assert_eq!(err, Error::BufferLength { what: "parameters", needed: g.params_len(), got: g.params_len() - 1 });
    let err = Executor::new(&g, &train, &mut params, &mut [], &mut arena).err().unwrap();
    assert!(matches!(err, Error::BufferLength { what: "optimizer state", .. }));
    assert_eq!(Executor::read_only(&g, &train, &params, &mut arena).err(), Some(Error::ReadOnlyParams));

    let mut small = Graph::new();
    let (_, _, small_logits, _) = mlp(&mut small, 4);
    small.input(&[1]).unwrap();
    let mismatched: Plan = Plan::inference(&small, &[small_logits], Mode::Eval).unwrap();
    assert!(matches!(Executor::read_only(&g, &mismatched, &params, &mut arena).err(), Some(Error::PlanMismatch { .. })));

    let err = Plan::<64>::training(&g, logits, &[], None).err().unwrap();
    assert!(matches!(err, Error::LossNotScalar { .. }));

    // A label out of range is a typed error at run time, naming the sample.
    let infer: Plan = Plan::training(&g, loss, &[], None).unwrap();
    let mut arena = vec![0.0; infer.arena_len()];
    let mut ex = Executor::new(&g, &infer, &mut params, &mut [], &mut arena).unwrap();
    ex.set_input(x, &[0.1; 8]).unwrap();
    ex.set_input(labels, &[1.0, 2.0, 20.0, 3.0]).unwrap();
    assert_eq!(ex.run(), Err(Error::InvalidLabel { index: 2, value: 20.0, classes: 20 }));
    assert_eq!(ex.set_input(x, &[0.0; 3]), Err(Error::BufferLength { what: "input", needed: 8, got: 3 }));
    assert!(matches!(ex.value(logits), Err(Error::NotInPlan { .. })));
}

#[test]
fn a_tensor_with_two_consumers_gets_one_gradient_buffer_zeroed_once() {
    let mut g: Graph = Graph::new();
    let x = g.input_with_grad(&[2, 3]).unwrap();
    let a = g.exp(x).unwrap();
    let b = g.add(x, a).unwrap();
    let t = g.input(&[2, 3]).unwrap();
    let loss = g.mse(b, t).unwrap();
    let plan: Plan = Plan::training(&g, loss, &[], None).unwrap();
    use mote_core::Step::*;
    // By hand: b has one gradient buffer; x's is zeroed once before b's backward adds into
    // it, and a's backward adds the second adjoint.
    let want = [
        Forward(a),
        Forward(b),
        Forward(loss),
        SeedGrad(loss),
        ZeroGrad(b),
        Backward(loss),
        ZeroGrad(x),
        ZeroGrad(a),
        Backward(b),
        Backward(a),
    ];
    assert_eq!(plan.steps(), &want);
}

/// In-place steps (pointwise ops overwriting their input, backward turning the output
/// gradient into the input's) must compute exactly what the out-of-place plan computes.
#[test]
fn in_place_plans_match_the_out_of_place_reference_bit_for_bit() {
    use mote_core::Rng;
    let mut g = Graph::new();
    let (x, labels, logits, loss) = convnet(&mut g, 4);
    let fused: Plan = Plan::training(&g, loss, &[logits], Some(Optimizer::adam(1e-2))).unwrap();
    let reference: Plan = Plan::training_out_of_place(&g, loss, &[logits], Some(Optimizer::adam(1e-2))).unwrap();
    // Two relus run in place forward and backward (the tanh-free convnet has no other
    // candidates: batchnorm and conv outputs feed ops that save them).
    assert_eq!((fused.in_place_steps(), reference.in_place_steps()), (4, 0));
    assert!(fused.memory().arena_bytes <= reference.memory().arena_bytes);
    let mut rng = Rng::new(3);
    let images: Vec<f32> = (0..4 * 64).map(|_| rng.uniform()).collect();
    let train = |plan: &Plan| {
        let mut params = vec![0.0; g.params_len()];
        g.init_params(&mut params, 5).unwrap();
        let mut opt = vec![0.0; plan.optimizer_len()];
        let mut arena = vec![f32::NAN; plan.arena_len()];
        let mut ex = Executor::new(&g, plan, &mut params, &mut opt, &mut arena).unwrap();
        let mut losses = Vec::new();
        for _ in 0..5 {
            ex.set_input(x, &images).unwrap();
            ex.set_input(labels, &[0.0, 1.0, 2.0, 3.0]).unwrap();
            ex.run().unwrap();
            losses.push(ex.value(loss).unwrap()[0].to_bits());
        }
        (params.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), losses)
    };
    assert_eq!(train(&fused), train(&reference));

    let infer: Plan = Plan::inference(&g, &[logits], Mode::Eval).unwrap();
    let infer_ref: Plan = Plan::inference_out_of_place(&g, &[logits], Mode::Eval).unwrap();
    assert!(infer.in_place_steps() == 2 && infer.memory().arena_bytes <= infer_ref.memory().arena_bytes);
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 5).unwrap();
    let run = |plan: &Plan| mote_tests::run_once(&g, plan, &params, &[(x, images.clone())], logits);
    assert_eq!(run(&infer), run(&infer_ref));
}

/// Inference plans run conv2d → relu → maxpool2d as one step that never stores the conv or
/// relu output; the logits must equal the unfused plan's bit for bit, in less arena.
#[test]
fn fused_conv_relu_maxpool_matches_the_unfused_plan_bit_for_bit() {
    use mote_core::Rng;
    let mut g: Graph = Graph::new();
    let x = g.input(&[3, 1, 28, 28]).unwrap();
    let c1 = g.conv2d(x, 8, [3, 3], [1, 1], [0, 0], true).unwrap();
    let r1 = g.relu(c1).unwrap();
    let p1 = g.maxpool2d(r1, [2, 2], [2, 2], [0, 0]).unwrap();
    let c2 = g.conv2d(p1, 16, [3, 3], [2, 2], [1, 1], false).unwrap();
    let r2 = g.relu(c2).unwrap();
    let p2 = g.maxpool2d(r2, [3, 3], [2, 2], [1, 1]).unwrap();
    let f = g.flatten(p2).unwrap();
    let logits = g.linear(f, 10, true).unwrap();
    let fused: Plan = Plan::inference(&g, &[logits], Mode::Eval).unwrap();
    let reference: Plan = Plan::inference_out_of_place(&g, &[logits], Mode::Eval).unwrap();
    assert_eq!((fused.fused_steps(), reference.fused_steps()), (2, 0));
    println!("fused inference arena {} B, unfused {} B", fused.memory().arena_bytes, reference.memory().arena_bytes);
    // By hand: the unfused plan must hold conv1's output (8·26·26 values per sample); the
    // fused one never does.
    assert!(fused.memory().arena_bytes < 3 * 8 * 26 * 26 * 4);
    assert!(reference.memory().arena_bytes >= 3 * 8 * 26 * 26 * 4);
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 2).unwrap();
    let mut rng = Rng::new(4);
    let images: Vec<f32> = (0..3 * 784).map(|_| rng.uniform()).collect();
    let run = |plan: &Plan| mote_tests::run_once(&g, plan, &params, &[(x, images.clone())], logits);
    let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(run(&fused)), bits(run(&reference)));
    // A relu output that is also a plan output is not fused away.
    let kept: Plan = Plan::inference(&g, &[logits, r1], Mode::Eval).unwrap();
    assert_eq!(kept.fused_steps(), 1);
    assert_eq!(bits(mote_tests::run_once(&g, &kept, &params, &[(x, images.clone())], logits)), bits(run(&reference)));
}

/// Training plans fuse conv2d → relu → maxpool2d too: the forward records the argmax, one
/// fused backward step yields the conv's gradients. Gradients and trained weights must equal
/// the unfused out-of-place plan's, in less than half its arena.
#[test]
fn fused_training_matches_the_unfused_plan() {
    use mote_core::Rng;
    let mut g: Graph = Graph::new();
    let x = g.input_with_grad(&[3, 1, 28, 28]).unwrap();
    let c1 = g.conv2d(x, 8, [3, 3], [1, 1], [0, 0], true).unwrap();
    let r1 = g.relu(c1).unwrap();
    let p1 = g.maxpool2d(r1, [2, 2], [2, 2], [0, 0]).unwrap();
    let c2 = g.conv2d(p1, 16, [3, 3], [1, 1], [1, 1], false).unwrap();
    let r2 = g.relu(c2).unwrap();
    let p2 = g.maxpool2d(r2, [2, 2], [2, 2], [0, 0]).unwrap();
    let f = g.flatten(p2).unwrap();
    let logits = g.linear(f, 10, true).unwrap();
    let labels = g.labels(3).unwrap();
    let loss = g.cross_entropy(logits, labels).unwrap();
    let mut rng = Rng::new(6);
    let images: Vec<f32> = (0..3 * 784).map(|_| rng.uniform()).collect();
    let feeds = [(x, images), (labels, vec![3.0, 7.0, 0.0])];

    // Gradients of one step without an optimizer: every parameter's and the input's.
    let fused: Plan = Plan::training(&g, loss, &[logits], None).unwrap();
    let reference: Plan = Plan::training_out_of_place(&g, loss, &[logits], None).unwrap();
    assert_eq!((fused.fused_steps(), reference.fused_steps()), (2, 0));
    println!("training arena: fused {} B, unfused {} B", fused.memory().arena_bytes, reference.memory().arena_bytes);
    // By hand: the unfused plan holds conv1's output (8·26·26 values per sample) and its
    // gradient at once; the fused plan never holds either and needs less than half.
    assert!(reference.memory().arena_bytes >= 2 * 3 * 8 * 26 * 26 * 4);
    assert!(fused.memory().arena_bytes < reference.memory().arena_bytes / 2);
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 8).unwrap();
    let grads = |plan: &Plan| {
        let mut p = params.clone();
        let mut arena = vec![f32::NAN; plan.arena_len()];
        let mut ex = Executor::new(&g, plan, &mut p, &mut [], &mut arena).unwrap();
        for (id, data) in &feeds {
            ex.set_input(*id, data).unwrap();
        }
        ex.run().unwrap();
        let trainable = (0..g.nodes().len()).map(|i| mote_tests::node_id(&g, i)).filter(|&id| g.node(id).unwrap().is_trainable());
        let mut all: Vec<f32> = trainable.flat_map(|id| ex.grad(id).unwrap().to_vec()).collect();
        all.extend_from_slice(ex.grad(x).unwrap());
        (all, ex.value(loss).unwrap()[0].to_bits())
    };
    let (got, want) = (grads(&fused), grads(&reference));
    assert_eq!(got.0.len(), g.params_len() + 3 * 784);
    // Equal as numbers: a sum of only zeros may differ in its sign.
    assert_eq!(got, want);
    assert!(got.0.iter().filter(|v| **v != 0.0).count() > g.params_len() / 2);

    // Five steps of SGD with momentum, or of AdamW, give the same weights (the fused plan
    // updates the conv and linear weights inside the backward, row by row).
    for opt in [Optimizer::momentum(0.05, 0.9), Optimizer::adamw(0.01, 0.1)] {
        let train = |plan: &Plan| mote_tests::train_steps(&g, plan, &params, &feeds, 5);
        let fused: Plan = Plan::training(&g, loss, &[logits], Some(opt)).unwrap();
        let reference: Plan = Plan::training_out_of_place(&g, loss, &[logits], Some(opt)).unwrap();
        assert_eq!(fused.fused_steps(), 2);
        // Every parameter but the linear bias is updated inside the backward: one update step.
        assert_eq!(fused.steps().iter().filter(|s| matches!(s, mote_core::Step::Update(_))).count(), 1);
        let (got, want) = (train(&fused), train(&reference));
        assert_eq!(got, want, "{opt:?}");
        assert_ne!(got, params, "training changed the weights");
    }
}

/// `run_inference` (what an inference firmware calls, linking no training code) computes what
/// `run` computes on a forward-only plan, and refuses a training plan before running it.
#[test]
fn run_inference_equals_run_and_refuses_training_plans() {
    use mote_core::ops::{Op, OpSet};
    let mut g = Graph::new();
    let (x, _, logits, loss) = convnet(&mut g, 2);
    let infer: Plan = Plan::inference(&g, &[logits], Mode::Eval).unwrap();
    let mut params = vec![0.0; g.params_len()];
    g.init_params(&mut params, 9).unwrap();
    let images: Vec<f32> = (0..2 * 64).map(|i| (i % 7) as f32 / 7.0).collect();
    let mut arena = vec![0.0; infer.arena_len()];
    let mut ex = Executor::read_only(&g, &infer, &params, &mut arena).unwrap();
    ex.set_input(x, &images).unwrap();
    ex.run_inference().unwrap();
    let once: Vec<u32> = ex.value(logits).unwrap().iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        once,
        mote_tests::run_once(&g, &infer, &params, &[(x, images.clone())], logits).iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // Limited to the graph's own ops it runs; limited to linear alone it refuses the others.
    let all: OpSet = g.nodes().iter().filter_map(|n| n.op()).fold(0, |set, op| set | op.bit());
    assert_eq!(all & Op::Linear(mote_core::ops::Linear).bit(), 1);
    assert!(matches!(ex.run_inference_in::<1>(), Err(Error::OpNotInBuild { .. })));
    let train: Plan = Plan::training(&g, loss, &[], Some(Optimizer::sgd(0.1))).unwrap();
    let mut params2 = params.clone();
    let mut arena = vec![0.0; train.arena_len()];
    let mut ex = Executor::new(&g, &train, &mut params2, &mut [], &mut arena).unwrap();
    assert!(matches!(ex.run_inference(), Err(Error::PlanMismatch { .. })));
    assert_eq!(params2, params, "nothing ran");
}
