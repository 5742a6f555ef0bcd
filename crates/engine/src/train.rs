//! A training loop that knows no optimizer: forward, loss (+ Keras regularizers), backward,
//! running-statistic updates, then a caller-supplied step (the `optim` emulator), recording
//! what the diagnosis compares: per-step loss, per-layer activation and gradient norms, and
//! optionally the parameters.

use std::collections::BTreeMap;

use model_ir::Model;
use ndarray::ArrayD;

use crate::backward::{OutputGrad, backward};
use crate::error::EngineError;
use crate::float::Float;
use crate::forward::{DropoutMasks, Mode, forward};
use crate::loss::{self, KerasBackend, Loss, Regularizer};
use crate::params::{Grads, ParamStore, l2_norm};
use crate::program::Program;

/// One batch: inputs (in [`Program::input_names`] order), target, optional sample weights and
/// dropout masks.
#[derive(Debug, Clone)]
pub struct Batch<F> {
    pub inputs: Vec<ArrayD<F>>,
    pub target: ArrayD<F>,
    pub sample_weight: Option<ArrayD<F>>,
    pub masks: DropoutMasks<F>,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Number of steps; batches are taken in order, cycling.
    pub steps: usize,
    /// The loss on the first model output.
    pub loss: Loss,
    /// Keras kernel/bias regularizers by parameter name, added to the loss.
    pub regularizers: BTreeMap<String, Regularizer>,
    /// Usually [`Mode::Training`].
    pub mode: Mode,
    /// Pass the logits of a final softmax/sigmoid to a Keras TensorFlow-backend loss (what TF
    /// does; see [`loss::compute`]).
    pub logits_shortcut: bool,
    /// Keep a copy of every parameter after each step.
    pub record_params: bool,
}

impl TrainConfig {
    /// The model's own training setup for `steps` steps: its loss ([`Loss::from_spec`], with
    /// the Keras backend the bundle names, TensorFlow when it names none) and its Keras weight
    /// regularizers.
    pub fn from_model(model: &Model, steps: usize) -> Result<TrainConfig, EngineError> {
        let missing = || EngineError::Loss {
            loss: "spec",
            message: format!(
                "model `{}` has no loss in its training configuration",
                model.name
            ),
        };
        let t = model.training.as_ref().ok_or_else(missing)?;
        let spec = t.loss.as_ref().ok_or_else(missing)?;
        // numpy (inference only) keeps TensorFlow's loss semantics, like no backend.
        let backend = match t.backend {
            Some(b @ (KerasBackend::Jax | KerasBackend::Torch)) => b,
            _ => KerasBackend::TensorFlow,
        };
        let mut config = TrainConfig::new(steps, Loss::from_spec(spec, backend)?);
        config.regularizers = t
            .regularizers
            .iter()
            .map(|(k, r)| (k.clone(), Regularizer::l1_l2(r.l1, r.l2)))
            .collect();
        Ok(config)
    }

    /// `steps` training-mode steps of `loss`, no regularizers, logits shortcut on (it only
    /// affects Keras TensorFlow-backend crossentropies), parameters not recorded.
    pub fn new(steps: usize, loss: Loss) -> TrainConfig {
        TrainConfig {
            steps,
            loss,
            regularizers: BTreeMap::new(),
            mode: Mode::Training,
            logits_shortcut: true,
            record_params: false,
        }
    }
}

/// What one step measured (before the parameter update, except `params`).
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord<F> {
    /// 0-based step index.
    pub step: usize,
    /// Data loss plus regularization (what Keras reports).
    pub loss: F,
    pub data_loss: F,
    pub regularization: F,
    /// Euclidean norm of each node's outputs, by node name.
    pub activation_norms: BTreeMap<String, F>,
    /// Euclidean norm of each trainable parameter's gradient.
    pub grad_norms: BTreeMap<String, F>,
    /// Euclidean norm of the gradients of each node's trainable parameters, by node name.
    pub layer_grad_norms: BTreeMap<String, F>,
    /// Every parameter after the step, when recorded.
    pub params: Option<BTreeMap<String, ArrayD<F>>>,
}

/// Every step's record.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainRecord<F> {
    pub steps: Vec<StepRecord<F>>,
}

/// Runs `config.steps` steps. Each step: forward on the batch, loss on output 0 plus
/// regularization, backward, running statistics written into `params`, then
/// `step_fn(step, params, grads)` (the optimizer; `grads` include the regularizer gradients).
pub fn train<F: Float>(
    program: &Program,
    params: &mut ParamStore<F>,
    batches: &[Batch<F>],
    config: &TrainConfig,
    mut step_fn: impl FnMut(usize, &mut ParamStore<F>, &Grads<F>),
) -> Result<TrainRecord<F>, EngineError> {
    if batches.is_empty() && config.steps > 0 {
        return Err(EngineError::Input {
            input: "batches".into(),
            message: "no batches to train on".into(),
        });
    }
    let mut steps = Vec::with_capacity(config.steps);
    for step in 0..config.steps {
        let batch = &batches[step % batches.len()];
        let (data_loss, mut grads, activation_norms, stats) = {
            let fwd = forward(program, params, &batch.inputs, config.mode, &batch.masks)?;
            let logits = if config.logits_shortcut && config.loss.uses_logits_shortcut() {
                fwd.tape.output_logits(0).map(|(_, z)| z)
            } else {
                None
            };
            let out = loss::compute(
                &config.loss,
                &fwd.outputs[0],
                &batch.target,
                batch.sample_weight.as_ref(),
                logits,
            )?;
            let mut d_outputs = vec![OutputGrad::None; program.outputs.len()];
            d_outputs[0] = out.grad;
            let grads = backward(&fwd.tape, &d_outputs)?;
            let norms = fwd
                .tape
                .activations()
                .into_iter()
                .map(|(name, ys)| {
                    let s = ys.iter().fold(F::zero(), |a, y| {
                        let n = l2_norm(y);
                        a + n * n
                    });
                    (name.to_string(), s.sqrt())
                })
                .collect::<BTreeMap<_, _>>();
            (out.value, grads, norms, fwd.stats)
        };
        let (regularization, rgrads) = loss::regularization(&config.regularizers, params)?;
        for (name, g) in rgrads {
            if let Some(acc) = grads.params.get_mut(&name) {
                *acc += &g;
            }
        }
        let grad_norms: BTreeMap<String, F> = grads
            .params
            .iter()
            .map(|(k, g)| (k.clone(), l2_norm(g)))
            .collect();
        let layer_grad_norms = program
            .nodes
            .iter()
            .filter_map(|n| {
                let mut s = F::zero();
                let mut any = false;
                for p in &n.params {
                    if let Some(g) = grad_norms.get(p) {
                        s += *g * *g;
                        any = true;
                    }
                }
                any.then(|| (n.name.clone(), s.sqrt()))
            })
            .collect();
        params.apply(&stats);
        step_fn(step, params, &grads);
        steps.push(StepRecord {
            step,
            loss: data_loss + regularization,
            data_loss,
            regularization,
            activation_norms,
            grad_norms,
            layer_grad_norms,
            params: config.record_params.then(|| params.values.clone()),
        });
    }
    Ok(TrainRecord { steps })
}
