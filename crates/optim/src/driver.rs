//! One training step per framework: what the framework's training loop does around the
//! optimizer on every batch, built from the IR's [`model_ir::TrainingConfig`] (or its parts)
//! and the trainable variables.
//!
//! The rules and the framework source each follows:
//! - **Keras** (`keras/src/trainers/*_trainer.py` `train_step` →
//!   `optimizer.apply(grads, trainable_variables)`): one `apply` per batch. Loss-scale
//!   unscaling, gradient accumulation, clipping, weight decay, the learning-rate schedule
//!   (evaluated at `iterations`, i.e. per optimizer iteration, never per epoch) and EMA all
//!   live inside the optimizer ([`keras::Optimizer`]); the driver only decides what to hand it.
//!   On the TensorFlow backend `tape.gradient` returns an embedding table's gradient as
//!   `tf.IndexedSlices` and Keras passes them on unchanged, so the driver hands the slices to
//!   [`keras::Optimizer::apply_with_slices`]; the JAX and torch backends produce dense
//!   gradients, so there the slices are ignored.
//! - **PyTorch** (the canonical loop `loss.backward()`;
//!   `torch.nn.utils.clip_grad_norm_`/`clip_grad_value_`; `optimizer.step()`;
//!   `scheduler.step()`): the optimizer's parameter groups (`train.json` `param_groups`,
//!   `torch/optim/optimizer.py` `add_param_group`: defaults with the group's overrides), then
//!   per batch: clip, step every group, and step the scheduler after every batch
//!   ([`StepInterval::Step`](model_ir::StepInterval)) or after every `steps_per_epoch`-th
//!   ([`StepInterval::Epoch`](model_ir::StepInterval)). `nn.Embedding` (without
//!   `sparse=True`) gives dense gradients, so slices are ignored.

use std::collections::BTreeMap;

use model_ir::{
    Constraint, Framework, GradClip, OptimizerSpec, ParamGroup, SchedulerSpec, TrainingConfig,
};

use crate::config::ConfigError;
use crate::constraint::{self, ConstraintError};
use crate::keras;
use crate::real::Real;
use crate::torch;
use crate::variable::Variable;

/// Why a [`Driver`] cannot be built from a training configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriverError {
    #[error("the {framework} bundle records no optimizer")]
    NoOptimizer { framework: &'static str },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
}

/// One batch's gradients, one entry per variable in the driver's variable order.
#[derive(Debug)]
pub struct Grads<'a, T> {
    /// Every variable's dense gradient (for a sliced one, its slices summed per row).
    /// Consumed as scratch space.
    pub dense: &'a mut [Vec<T>],
    /// The gradients the TensorFlow backend produces as `tf.IndexedSlices` (`None` for a
    /// dense one), one entry per variable; empty when every gradient is dense.
    pub slices: &'a [Option<keras::IndexedSlices<'a, T>>],
}

impl<'a, T> Grads<'a, T> {
    /// Dense gradients only.
    pub fn dense(dense: &'a mut [Vec<T>]) -> Grads<'a, T> {
        Grads { dense, slices: &[] }
    }

    /// Dense gradients plus the sliced form of some of them.
    pub fn with_slices(
        dense: &'a mut [Vec<T>],
        slices: &'a [Option<keras::IndexedSlices<'a, T>>],
    ) -> Grads<'a, T> {
        Grads { dense, slices }
    }
}

/// A framework's training step over a fixed list of variables (flattened, in order).
#[derive(Debug, Clone)]
pub struct Driver<T: Real> {
    inner: Inner<T>,
    /// Per variable (in the driver's order): the constraint applied after every step, with
    /// the variable's shape. Empty when no variable has one.
    constraints: Vec<Option<(Constraint, Vec<usize>)>>,
}

#[derive(Debug, Clone)]
enum Inner<T: Real> {
    Keras {
        opt: keras::Optimizer<T>,
        /// The backend hands embedding gradients over as `IndexedSlices` (TensorFlow).
        slices: bool,
    },
    Torch {
        groups: torch::ParamGroups<T>,
        clip: Option<GradClip>,
        scheduler: Option<(torch::Scheduler, torch::SchedulerConfig)>,
        /// Completed optimizer steps.
        t: u64,
    },
}

/// Optimizer steps in one epoch of `rows` samples: `len(DataLoader)` (`drop_last` drops the
/// last partial batch) or Keras's `ceil(rows / batch_size)`; at least 1. A batch size of 0
/// counts as 1.
pub fn steps_per_epoch(rows: usize, batch_size: usize, drop_last: bool) -> u64 {
    let b = batch_size.max(1);
    let steps = if drop_last {
        rows / b
    } else {
        rows.div_ceil(b)
    };
    steps.max(1) as u64
}

/// The torch parameter groups over the variables `names`: `param_groups` (non-empty) resolved
/// against the optimizer's defaults ([`torch::resolve_param_groups`]), else every variable in
/// one group with the defaults.
pub fn torch_param_groups(
    spec: &OptimizerSpec,
    param_groups: Option<&[ParamGroup]>,
    names: &[String],
) -> Result<Vec<(torch::Config, Vec<usize>)>, ConfigError> {
    match param_groups {
        Some(groups) if !groups.is_empty() => {
            let body = serde_json::json!({"class_name": spec.class_name, "defaults": spec.config});
            torch::resolve_param_groups(&body, groups, names)
        }
        _ => Ok(vec![(
            torch::Config::from_spec(spec)?,
            (0..names.len()).collect(),
        )]),
    }
}

impl<T: Real> Driver<T> {
    /// Keras: `config` built over `vars`. Embedding slices are used when `config.backend` is
    /// TensorFlow.
    pub fn keras(config: keras::Config, vars: &[Variable]) -> Driver<T> {
        let slices = config.backend == keras::Backend::TensorFlow;
        Driver {
            inner: Inner::Keras {
                opt: keras::Optimizer::build(config, vars),
                slices,
            },
            constraints: Vec::new(),
        }
    }

    /// PyTorch: parameter groups `(config, variable indices)` over `vars`, optional gradient
    /// clipping, and an optional scheduler with the loop's steps per epoch (needed for an
    /// `Epoch` interval; without it such a scheduler never steps).
    pub fn torch(
        groups: Vec<(torch::Config, Vec<usize>)>,
        clip: Option<GradClip>,
        scheduler: Option<&SchedulerSpec>,
        steps_per_epoch: Option<u64>,
        vars: &[Variable],
    ) -> Result<Driver<T>, ConfigError> {
        let mut groups = torch::ParamGroups::build(groups, vars);
        let scheduler = match scheduler {
            Some(spec) => {
                let cfg = torch::SchedulerConfig::from_spec(spec, steps_per_epoch)?;
                let sch = torch::Scheduler::new(&cfg.kind, &mut groups.configs_mut())?;
                Some((sch, cfg))
            }
            None => None,
        };
        Ok(Driver {
            inner: Inner::Torch {
                groups,
                clip,
                scheduler,
                t: 0,
            },
            constraints: Vec::new(),
        })
    }

    /// The framework's training step as `training` describes it, over `vars` (the trainable
    /// variables in the order the gradients come in). Keras takes its backend from
    /// `training.backend` (TensorFlow when absent or unknown).
    pub fn from_training(
        training: &TrainingConfig,
        vars: &[Variable],
        steps_per_epoch: Option<u64>,
    ) -> Result<Driver<T>, DriverError> {
        match training.framework {
            Framework::Keras => {
                let spec = training
                    .optimizer
                    .as_ref()
                    .ok_or(DriverError::NoOptimizer { framework: "Keras" })?;
                let mut config = keras::Config::from_spec(spec)?;
                if let Some(b) = training.backend {
                    config.backend = b;
                }
                Ok(Driver::keras(config, vars).with_constraints(&training.constraints, vars)?)
            }
            Framework::Torch => {
                let spec = training
                    .optimizer
                    .as_ref()
                    .ok_or(DriverError::NoOptimizer { framework: "torch" })?;
                let names: Vec<String> = vars.iter().map(|v| v.name.clone()).collect();
                let groups = torch_param_groups(spec, training.param_groups.as_deref(), &names)?;
                Ok(Driver::torch(
                    groups,
                    training.grad_clip,
                    training.scheduler.as_ref(),
                    steps_per_epoch,
                    vars,
                )?)
            }
        }
    }

    /// The same driver projecting the variables named in `constraints` after every step
    /// (variables not in `vars` are ignored). A constraint it cannot apply exactly (an unknown
    /// class, an axis the variable lacks) is an error.
    pub fn with_constraints(
        mut self,
        constraints: &BTreeMap<String, Constraint>,
        vars: &[Variable],
    ) -> Result<Driver<T>, ConstraintError> {
        if constraints.is_empty() {
            return Ok(self);
        }
        self.constraints = vars
            .iter()
            .map(|v| match constraints.get(&v.name) {
                Some(c) => {
                    constraint::check(c, &v.shape).map(|()| Some((c.clone(), v.shape.clone())))
                }
                None => Ok(None),
            })
            .collect::<Result<_, _>>()?;
        Ok(self)
    }

    /// One batch's optimizer work (see the module documentation for each framework's order),
    /// then the constraints.
    pub fn step(&mut self, grads: Grads<'_, T>, params: &mut [Vec<T>]) {
        self.optimizer_step(grads, params);
        for (c, p) in self.constraints.iter().zip(params.iter_mut()) {
            if let Some((c, shape)) = c {
                // Checked against the shape when built; a value vector of another length
                // (the caller's error) is left as it is.
                let _ = constraint::apply(c, shape, p);
            }
        }
    }

    fn optimizer_step(&mut self, grads: Grads<'_, T>, params: &mut [Vec<T>]) {
        match &mut self.inner {
            Inner::Keras { opt, slices } => {
                if *slices && !grads.slices.is_empty() {
                    opt.apply_with_slices(grads.dense, grads.slices, params);
                } else {
                    opt.apply(grads.dense, params);
                }
            }
            Inner::Torch {
                groups,
                clip,
                scheduler,
                t,
            } => {
                if let Some(c) = clip {
                    torch::apply_grad_clip(c, grads.dense);
                }
                groups.step(grads.dense, params);
                *t += 1;
                if let Some((sch, cfg)) = scheduler
                    && cfg.steps_after(*t) == Some(true)
                {
                    sch.step(&mut groups.configs_mut());
                }
            }
        }
    }

    /// The running Keras optimizer (EMA values, iterations), if this is Keras.
    pub fn keras_optimizer(&self) -> Option<&keras::Optimizer<T>> {
        match &self.inner {
            Inner::Keras { opt, .. } => Some(opt),
            Inner::Torch { .. } => None,
        }
    }

    /// The running torch parameter groups (current hyper-parameters), if this is torch.
    pub fn torch_groups(&self) -> Option<&torch::ParamGroups<T>> {
        match &self.inner {
            Inner::Torch { groups, .. } => Some(groups),
            Inner::Keras { .. } => None,
        }
    }
}
