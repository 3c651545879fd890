//! Optimizer configuration for a training plan: SGD (momentum, Nesterov), Adam, AdamW, all
//! with weight decay. The arithmetic lives in `mote_kernels::optim`.

use mote_kernels::{adam_f32, sgd_f32, AdamParams, SgdParams};

/// An optimizer and its hyper-parameters (PyTorch semantics).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    Sgd(SgdParams),
    Adam(AdamParams),
}

impl Optimizer {
    /// Plain SGD.
    pub fn sgd(lr: f32) -> Optimizer {
        Optimizer::Sgd(SgdParams { lr, momentum: 0.0, nesterov: false, weight_decay: 0.0 })
    }
    /// SGD with (heavy-ball) momentum.
    pub fn momentum(lr: f32, momentum: f32) -> Optimizer {
        Optimizer::Sgd(SgdParams { lr, momentum, nesterov: false, weight_decay: 0.0 })
    }
    /// SGD with Nesterov momentum.
    pub fn nesterov(lr: f32, momentum: f32) -> Optimizer {
        Optimizer::Sgd(SgdParams { lr, momentum, nesterov: true, weight_decay: 0.0 })
    }
    /// Adam with betas (0.9, 0.999) and eps 1e-8.
    pub fn adam(lr: f32) -> Optimizer {
        Optimizer::Adam(AdamParams { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decoupled: false })
    }
    /// AdamW: Adam with decoupled weight decay.
    pub fn adamw(lr: f32, weight_decay: f32) -> Optimizer {
        Optimizer::Adam(AdamParams { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled: true })
    }
    /// The same optimizer with weight decay `wd` (L2 for SGD and Adam, decoupled for AdamW).
    pub fn with_weight_decay(mut self, wd: f32) -> Optimizer {
        match &mut self {
            Optimizer::Sgd(p) => p.weight_decay = wd,
            Optimizer::Adam(p) => p.weight_decay = wd,
        }
        self
    }
    /// The learning rate.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd(p) => p.lr,
            Optimizer::Adam(p) => p.lr,
        }
    }
    /// Changes the learning rate (for schedules).
    pub fn set_lr(&mut self, lr: f32) {
        match self {
            Optimizer::Sgd(p) => p.lr = lr,
            Optimizer::Adam(p) => p.lr = lr,
        }
    }
    /// Whether the settings are in their ranges: learning rate finite and ≥ 0 (a schedule may
    /// end at 0), momentum and betas in [0, 1), Adam's eps finite and > 0, weight decay finite
    /// and ≥ 0. Plans, plan bytes and `Executor::set_optimizer` refuse anything else.
    pub fn check(&self) -> crate::Result<()> {
        let unit = |x: f32| (0.0..1.0).contains(&x);
        let non_negative = |x: f32| x.is_finite() && x >= 0.0;
        let ok = match *self {
            Optimizer::Sgd(h) => non_negative(h.lr) && unit(h.momentum) && non_negative(h.weight_decay),
            Optimizer::Adam(h) => {
                non_negative(h.lr) && unit(h.beta1) && unit(h.beta2) && h.eps.is_finite() && h.eps > 0.0 && non_negative(h.weight_decay)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(crate::Error::InvalidArgument {
                op: "optimizer",
                expected: "lr finite and ≥ 0, momentum and betas in [0, 1), eps finite and > 0, weight decay finite and ≥ 0",
            })
        }
    }
    /// Optimizer-state values kept per parameter value.
    pub fn slots(&self) -> usize {
        match self {
            Optimizer::Sgd(p) if p.momentum == 0.0 => 0,
            Optimizer::Sgd(_) => 1,
            Optimizer::Adam(_) => 2,
        }
    }
    /// Applies update number `t` (1-based) to one parameter tensor; `state` holds
    /// `slots() · params.len()` values (zeroed before the first update).
    pub fn update(&self, t: u32, params: &mut [f32], grads: &[f32], state: &mut [f32]) {
        self.update_part(t, params, 0, grads, state);
    }

    /// [`Self::update`] of the values `at..at + grads.len()` of a parameter tensor only, with
    /// their gradient: `params` and `state` are the whole tensor's.
    pub(crate) fn update_part(&self, t: u32, params: &mut [f32], at: usize, grads: &[f32], state: &mut [f32]) {
        let (len, part) = (params.len(), at..at + grads.len());
        match self {
            Optimizer::Sgd(h) => {
                let velocity = if self.slots() == 0 { &mut [][..] } else { &mut state[part.clone()] };
                sgd_f32(h, &mut params[part], grads, velocity)
            }
            Optimizer::Adam(h) => {
                let (m, v) = state.split_at_mut(len);
                adam_f32(h, t, &mut params[part.clone()], grads, &mut m[part.clone()], &mut v[part]);
            }
        }
    }
}
