//! Trains the exported model's architecture on the device: from scratch (Kaiming init from a
//! seeded PRNG) or fine-tuning the weights in flash, batch 1, SGD with momentum, samples
//! streamed from the host one at a time; then evaluates on the test digits and sends the
//! trained model back as a model file.
//!
//! Arguments (semihosting command line): `scratch|finetune steps=N eval=M log=K lr=X
//! momentum=X seed=N`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use mote_core::model::{check_model, model_header};
use mote_core::{Executor, Graph, Optimizer};
use mote_firmware::error::FirmwareError;
use mote_firmware::link::{HostLink, SemihostingLink, Split, Upload};
use mote_firmware::model::ModelNodes;
use mote_firmware::sizes::{NODES, OPTIMIZER, PARAMS, TRAIN_ARENA};
use mote_firmware::{board, model};

static mut PARAMS_RAM: [f32; PARAMS] = [0.0; PARAMS];
static mut OPTIMIZER_STATE: [f32; OPTIMIZER] = [0.0; OPTIMIZER];
static mut ARENA: [f32; TRAIN_ARENA] = [0.0; TRAIN_ARENA];

/// The run's settings.
struct Settings {
    finetune: bool,
    steps: usize,
    eval: usize,
    log_every: usize,
    lr: f32,
    momentum: f32,
    seed: u64,
}

/// Reads the command line. Not inlined, like every setup step below: their temporaries must
/// not stay in the frames that are live while training runs.
#[inline(never)]
fn settings() -> Result<Settings, FirmwareError> {
    let mut s = Settings { finetune: false, steps: 8000, eval: 2000, log_every: 500, lr: 0.003, momentum: 0.9, seed: 1 };
    let args = semihosting::experimental::env::args::<256>().map_err(|_| FirmwareError::Argument("command line"))?;
    for arg in (&args).skip(1) {
        let arg = arg.map_err(|_| FirmwareError::Argument("command line (UTF-8)"))?;
        let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
        let number = || value.parse::<f32>().map_err(|_| FirmwareError::Argument("a number after ="));
        match key {
            "scratch" => s.finetune = false,
            "finetune" => s.finetune = true,
            "steps" => s.steps = number()? as usize,
            "eval" => s.eval = number()? as usize,
            "log" => s.log_every = (number()? as usize).max(1),
            "lr" => s.lr = number()?,
            "momentum" => s.momentum = number()?,
            "seed" => s.seed = number()? as u64,
            _ => return Err(FirmwareError::Argument("unknown (expected scratch|finetune steps= eval= log= lr= momentum= seed=)")),
        }
    }
    Ok(s)
}

#[entry]
fn main() -> ! {
    board::run_main("train", run)
}

/// What the training loop measured.
struct TrainStats {
    steps: usize,
    insns: u64,
    first_loss: f32,
    last_loss: f32,
    memory: mote_core::MemoryReport,
}

fn run() -> Result<(), FirmwareError> {
    let s = settings()?;
    let mut g = Graph::<NODES>::new();
    let built = model::graph(&mut g)?;
    // SAFETY: the only references to these statics, taken once in the single-threaded main.
    let (params, opt_state, arena) = unsafe {
        (&mut *core::ptr::addr_of_mut!(PARAMS_RAM), &mut *core::ptr::addr_of_mut!(OPTIMIZER_STATE), &mut *core::ptr::addr_of_mut!(ARENA))
    };
    if s.finetune {
        params.copy_from_slice(model::params()?);
    } else {
        init(&g, params, s.seed)?;
    }
    let mut link = SemihostingLink::default();
    let t = train(&g, &built, &s, &mut link, params, opt_state, arena)?;
    let (correct, samples) = evaluate(&g, &built, &s, &mut link, params, arena)?;
    send_back(&mut link, params)?;

    let stack = board::stack_high_water_bytes();
    defmt::println!(
        "result accuracy={=f32} samples={=u32} eval_samples={=u32} first_loss={=f32} last_loss={=f32} arena_bytes={=u32} ram_bytes={=u32} static_bytes={=u32} stack_bytes={=u32} params_bytes={=u32} optimizer_bytes={=u32} activation_bytes={=u32} gradient_bytes={=u32} flash_bytes={=u32} insns_per_step={=u64}",
        correct as f32 / samples.max(1) as f32,
        t.steps as u32,
        samples as u32,
        t.first_loss,
        t.last_loss,
        t.memory.arena_bytes as u32,
        (board::static_ram_bytes() + stack) as u32,
        board::static_ram_bytes() as u32,
        stack as u32,
        t.memory.params_bytes as u32,
        t.memory.optimizer_bytes as u32,
        t.memory.peak_activation_bytes as u32,
        t.memory.peak_gradient_bytes as u32,
        board::flash_bytes() as u32,
        t.insns / t.steps.max(1) as u64
    );
    Ok(())
}

#[inline(never)]
fn init(g: &Graph<NODES>, params: &mut [f32], seed: u64) -> Result<(), FirmwareError> {
    Ok(g.init_params(params, seed)?)
}

/// Plans the training step and runs it over the streamed training digits. Not inlined, so
/// its plan's stack frame is gone before the evaluation builds its own.
#[inline(never)]
fn train(
    g: &Graph<NODES>,
    built: &ModelNodes,
    s: &Settings,
    link: &mut SemihostingLink,
    params: &mut [f32],
    opt_state: &mut [f32],
    arena: &mut [f32],
) -> Result<TrainStats, FirmwareError> {
    let plan = model::training_plan()?;
    let available = link.open(Split::Train)?;
    let steps = s.steps.min(available);
    defmt::println!(
        "training {=u32} digits ({=str}), lr {=f32}, momentum {=f32}",
        steps as u32,
        if s.finetune { "fine-tune" } else { "from scratch" },
        s.lr,
        s.momentum
    );
    let mut t = TrainStats { steps, insns: 0, first_loss: f32::NAN, last_loss: f32::NAN, memory: plan.memory() };
    let mut window = 0.0f32;
    let mut ex = Executor::new(g, &plan, params, opt_state, arena)?;
    ex.set_optimizer(Optimizer::momentum(s.lr, s.momentum))?;
    ex.set_seed(s.seed);
    for step in 0..steps {
        let label = link.next_sample(ex.input_mut(built.x)?)?;
        ex.set_input(built.target, &[label as f32])?;
        let start = board::instructions();
        ex.run()?;
        t.insns += board::instructions() - start;
        let loss = ex.value(built.loss)?[0];
        if !loss.is_finite() {
            // Nothing non-finite is sent back: the run stops here, naming the step.
            return Err(FirmwareError::Diverged { step: step as u32 + 1, loss });
        }
        window += loss;
        if (step + 1) % s.log_every == 0 || step + 1 == steps {
            let mean = window / (step % s.log_every + 1) as f32;
            defmt::println!("step {=u32}: mean loss {=f32}", step as u32 + 1, mean);
            if t.first_loss.is_nan() {
                t.first_loss = mean;
            }
            t.last_loss = mean;
            window = 0.0;
        }
    }
    Ok(t)
}

/// Classifies the test digits with the trained weights, reusing the training arena; returns
/// (correct, samples). Runs the same forward code as training (`run_inference`, every op):
/// a second, model-only instance would be no smaller here and would cost stack.
#[inline(never)]
fn evaluate(
    g: &Graph<NODES>,
    built: &ModelNodes,
    s: &Settings,
    link: &mut SemihostingLink,
    params: &[f32],
    arena: &mut [f32],
) -> Result<(u32, usize), FirmwareError> {
    let infer = model::inference_plan()?;
    let samples = link.open(Split::Test)?.min(s.eval);
    let mut correct = 0u32;
    let mut ex = Executor::read_only(g, &infer, params, arena)?;
    for _ in 0..samples {
        let label = link.next_sample(ex.input_mut(built.x)?)?;
        ex.run_inference()?;
        correct += (mote_core::argmax_f32(ex.value(built.output)?) == label as usize) as u32;
    }
    Ok((correct, samples))
}

/// Sends the trained model back: a new header and parameters, the embedded spec bytes.
fn send_back(link: &mut SemihostingLink, params: &[f32]) -> Result<(), FirmwareError> {
    if let Some(i) = params.iter().position(|p| !p.is_finite()) {
        return Err(FirmwareError::NonFiniteWeight { index: i as u32 });
    }
    let spec_bytes = check_model(&model::MODEL_FILE.0)?.spec_bytes;
    link.begin_upload(Upload::Model)?;
    link.upload(&model_header(params, spec_bytes))?;
    for chunk in params.chunks(16) {
        let mut buf = [0u8; 64];
        for (b, p) in buf.chunks_exact_mut(4).zip(chunk) {
            b.copy_from_slice(&p.to_le_bytes());
        }
        link.upload(&buf[..4 * chunk.len()])?;
    }
    Ok(link.upload(spec_bytes)?)
}
