//! Equivalence mapping between Keras 3 and PyTorch optimizer configurations.
//!
//! [`keras_to_torch`] / [`torch_to_keras`] return the *exact* counterpart (same update in
//! exact arithmetic, verified numerically in the tests) or [`NoEquivalent`] with the reason
//! and catalogue ids. [`torch_by_name`] / [`keras_by_name`] are the naive translation a
//! porter writes (same class name, hyper-parameters copied by name, the rest left at the
//! other framework's defaults); `cargo xtask replay --as` uses them to show the distance.
//!
//! Learning-rate schedules map both ways where one is exact
//! ([`keras_schedule_to_torch`], [`torch_scheduler_to_keras`]): a Keras schedule is evaluated
//! every batch at the raw step count, so its torch counterpart is a scheduler stepped after
//! every `optimizer.step()`, e.g. `ExponentialDecay(staircase=True)` ↔ `StepLR` and
//! `ExponentialDecay` ↔ `ExponentialLR`, `PiecewiseConstantDecay` with a constant ratio ↔
//! `MultiStepLR`, linear `PolynomialDecay` ↔ `LinearLR`, `CosineDecayRestarts(m_mul=1)` ↔
//! `CosineAnnealingWarmRestarts` (catalogue 14, 15).

use catalogue::Id;
use model_ir::StepInterval;

use crate::config::py;
use crate::keras::{self, LearningRate, Schedule};
use crate::torch::{self, GradClip, SchedulerConfig, SchedulerKind};

mod by_name;
mod render;
mod schedule;

pub use by_name::{TorchByName, keras_by_name, torch_by_name};
use by_name::{keras_kind_by_name, torch_kind_by_name, zero_keras_eps, zero_torch_eps};
use render::render_exclusion;
pub use render::{render_clip, render_keras, render_schedule, render_scheduler, render_torch};
use schedule::integral;
pub use schedule::{keras_schedule_to_torch, torch_scheduler_to_keras};

/// Why no exact counterpart exists. Displays as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no {target} equivalent: {reason}{}", ids(.catalogue))]
pub struct NoEquivalent {
    /// `torch` or `keras`: the side we tried to map to.
    pub target: &'static str,
    /// Catalogue entries (`../shared/catalogue.md`) that explain the difference.
    pub catalogue: Vec<Id>,
    pub reason: String,
}

/// ` (catalogue #1, #14)`, or nothing without entries.
fn ids(v: &[Id]) -> String {
    if v.is_empty() {
        return String::new();
    }
    let list = v
        .iter()
        .map(|i| format!("#{}", i.number()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(" (catalogue {list})")
}

fn none(target: &'static str, catalogue: &[Id], reason: impl Into<String>) -> NoEquivalent {
    NoEquivalent {
        target,
        catalogue: catalogue.to_vec(),
        reason: reason.into(),
    }
}

fn none_t(catalogue: &[Id], reason: impl Into<String>) -> NoEquivalent {
    none("torch", catalogue, reason)
}

fn none_k(catalogue: &[Id], reason: impl Into<String>) -> NoEquivalent {
    none("keras", catalogue, reason)
}

/// Why a momentum optimizer driven by a schedule has no exact counterpart (both directions).
const LR_IN_BUFFER: &str = "with momentum, Keras folds the learning rate into the buffer and torch \
                            applies it outside, which agree only while the learning rate is constant";

fn nonzero(x: f64) -> bool {
    x.abs() > 0.0
}

/// The exact torch counterpart of a Keras configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchEquivalent {
    pub config: torch::Config,
    /// Clipping the training loop must apply before every `step()`.
    pub grad_clip: Option<GradClip>,
    /// The scheduler for a Keras learning-rate schedule, stepped after every
    /// `optimizer.step()` ([`StepInterval::Step`]).
    pub scheduler: Option<SchedulerConfig>,
    /// Keras's `exclude_from_weight_decay`: the parameters it matches (on the Keras config's
    /// backend) go in a parameter group with `weight_decay=0` (see
    /// [`torch_groups_for_exclusion`]).
    pub exclude_from_weight_decay: Option<keras::Exclusion>,
    /// `torch.optim.X(params, ...)`.
    pub code: String,
    /// `torch.nn.utils.clip_grad_*(params, ...)`, when `grad_clip` is set.
    pub clip_code: Option<String>,
    /// `torch.optim.lr_scheduler.X(optimizer, ...)  # ...`, when `scheduler` is set.
    pub scheduler_code: Option<String>,
}

/// The exact Keras counterpart of a torch configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasEquivalent {
    pub config: keras::Config,
    /// `keras.optimizers.X(...)`.
    pub code: String,
}

fn wd_of(k: &keras::Config) -> f64 {
    k.weight_decay.unwrap_or(0.0)
}

/// The exact torch equivalent of a Keras optimizer, or why there is none.
pub fn keras_to_torch(k: &keras::Config) -> Result<TorchEquivalent, NoEquivalent> {
    use keras::Kind as K;
    use torch::Kind as T;
    let (lr, scheduler) = match &k.learning_rate {
        LearningRate::Constant(x) => (*x, None),
        LearningRate::Schedule(s) => {
            let (lr, sched) = keras_schedule_to_torch(s)?;
            (lr, Some(sched))
        }
    };
    if let Some(n) = k.gradient_accumulation_steps {
        return Err(none_t(
            &[Id::LrScheduleGranularity],
            format!(
                "gradient_accumulation_steps={n} averages the gradients inside the optimizer and \
                 counts schedule steps per micro-batch; torch accumulates in the training loop"
            ),
        ));
    }
    if scheduler.is_some()
        && let K::Sgd { momentum, .. } | K::RmsProp { momentum, .. } = k.kind
        && nonzero(momentum)
    {
        return Err(none_t(
            &[Id::SgdMomentumLrInBuffer, Id::LrScheduleGranularity],
            LR_IN_BUFFER,
        ));
    }
    if k.use_ema {
        return Err(none_t(
            &[Id::EmaWeights],
            "use_ema overwrites the weights with an EMA; torch optimizers keep no EMA",
        ));
    }
    if k.clipnorm.is_some() {
        return Err(none_t(
            &[Id::ClipnormPerTensorVsGlobal],
            "clipnorm clips each variable separately and without torch's +1e-6 in clip_grad_norm_",
        ));
    }
    if k.global_clipnorm.is_some() {
        return Err(none_t(
            &[Id::ClipnormPerTensorVsGlobal],
            "torch clip_grad_norm_ divides by (N + 1e-6); Keras global_clipnorm by N",
        ));
    }
    if k.loss_scale_factor.is_some() {
        return Err(none_t(
            &[Id::MixedPrecisionLossScale],
            "loss_scale_factor unscales gradients inside the optimizer",
        ));
    }
    let wd = wd_of(k);
    let has_wd = wd.abs() > 0.0;
    // Per class: the epsilon check first, then the weight-decay one; what passes is the
    // by-name mapping with the (zero) epsilon, except where the exact form differs.
    let kind = match k.kind {
        K::Sgd { momentum, .. } if has_wd && nonzero(momentum) => Err(none_t(
            &[Id::AdamWeightDecayCoupling, Id::SgdMomentumLrInBuffer],
            "decoupled weight decay with momentum: torch SGD's weight_decay is coupled and enters the buffer",
        )),
        K::Adam { epsilon, .. } | K::AdamW { epsilon, .. } if nonzero(epsilon) => Err(none_t(
            &[Id::AdamEpsilonHat],
            format!(
                "Keras adds epsilon-hat {} to sqrt(v) before bias correction, i.e. torch \
                 eps_t = {}/sqrt(1-beta_2^t), which changes every step",
                py(epsilon),
                py(epsilon)
            ),
        )),
        K::RmsProp { epsilon, .. } if nonzero(epsilon) => Err(none_t(
            &[Id::RmspropEpsAndRho],
            "Keras RMSprop puts epsilon inside the square root, torch outside",
        )),
        K::Adagrad { epsilon, .. } if nonzero(epsilon) => Err(none_t(
            &[Id::AdagradInitEps],
            "Keras Adagrad puts epsilon inside the square root, torch outside",
        )),
        K::Adamax { epsilon, .. } if nonzero(epsilon) => Err(none_t(
            &[Id::AdamaxEpsPlacement],
            "Keras Adamax adds epsilon after the max, torch inside it",
        )),
        K::Adafactor { epsilon_1, .. } if nonzero(epsilon_1) => Err(none_t(
            &[Id::NoCounterpartOptimizers],
            format!(
                "Keras Adafactor adds epsilon_1 {} to g² before factoring; torch clamps \
                 the factored estimate at eps1 instead (same only with epsilon_1=0)",
                py(epsilon_1)
            ),
        )),
        K::Adafactor { .. } if has_wd => Err(none_t(
            &[Id::AdamWeightDecayCoupling, Id::NoCounterpartOptimizers],
            "Keras Adafactor scales its step by RMS(θ) after the base optimizer's weight \
             decay, torch by RMS(θ) before its own",
        )),
        K::RmsProp { .. } | K::Adagrad { .. } | K::Adadelta { .. } | K::Adamax { .. } if has_wd => {
            Err(none_t(
                &[Id::AdamWeightDecayCoupling],
                "Keras weight_decay is decoupled; this torch optimizer only has coupled L2",
            ))
        }
        K::Adam {
            beta_1,
            beta_2,
            amsgrad,
            ..
        }
        | K::AdamW {
            beta_1,
            beta_2,
            amsgrad,
            ..
        } => {
            let betas = (beta_1, beta_2);
            Ok(if has_wd {
                T::AdamW {
                    betas,
                    eps: 0.0,
                    amsgrad,
                }
            } else {
                T::Adam {
                    betas,
                    eps: 0.0,
                    amsgrad,
                    decoupled_weight_decay: false,
                }
            })
        }
        K::Nadam {
            beta_1,
            beta_2,
            epsilon,
        } => Ok(T::NAdam {
            betas: (beta_1, beta_2),
            eps: epsilon,
            momentum_decay: 1.0,
            decoupled_weight_decay: has_wd,
        }),
        _ => torch_kind_by_name(&k.kind).map(zero_torch_eps),
    }?;
    let config = torch::Config {
        kind,
        lr,
        weight_decay: wd,
        maximize: false,
    };
    let grad_clip = k.clipvalue.map(|c| GradClip::Value { clip_value: c });
    let exclude_from_weight_decay = k
        .exclude_from_weight_decay
        .clone()
        .filter(|e| has_wd && !(e.var_names.is_empty() && e.var_list.is_empty()));
    let mut code = render_torch(&config);
    if let Some(e) = &exclude_from_weight_decay {
        code.push_str(&format!(
            "  # with the parameters exclude_from_weight_decay{} matches in a group with weight_decay=0.0",
            render_exclusion(e)
        ));
    }
    Ok(TorchEquivalent {
        code,
        clip_code: grad_clip.as_ref().map(render_clip),
        scheduler_code: scheduler.as_ref().map(render_scheduler),
        config,
        grad_clip,
        scheduler,
        exclude_from_weight_decay,
    })
}

/// The torch parameter groups that reproduce Keras's `exclude_from_weight_decay` (matched as
/// on `backend`) for the parameters at `paths`: the excluded ones in a group with
/// `weight_decay=0`, the rest with `config`'s. Empty groups are left out.
pub fn torch_groups_for_exclusion(
    config: &torch::Config,
    exclusion: &keras::Exclusion,
    backend: keras::Backend,
    paths: &[String],
) -> Vec<(torch::Config, Vec<usize>)> {
    let (excluded, kept): (Vec<usize>, Vec<usize>) =
        (0..paths.len()).partition(|&i| exclusion.excludes(&paths[i], backend));
    let mut no_decay = config.clone();
    no_decay.weight_decay = 0.0;
    [(config.clone(), kept), (no_decay, excluded)]
        .into_iter()
        .filter(|(_, members)| !members.is_empty())
        .collect()
}

/// The exact Keras equivalent of a torch optimizer (plus its training-loop clipping), or why
/// there is none.
pub fn torch_to_keras(
    t: &torch::Config,
    clip: Option<&GradClip>,
) -> Result<KerasEquivalent, NoEquivalent> {
    torch_to_keras_scheduled(t, clip, None)
}

/// [`torch_to_keras`] for an optimizer driven by a learning-rate scheduler (the group's `lr`
/// is the scheduler's base learning rate).
pub fn torch_to_keras_scheduled(
    t: &torch::Config,
    clip: Option<&GradClip>,
    scheduler: Option<&SchedulerConfig>,
) -> Result<KerasEquivalent, NoEquivalent> {
    use keras::Kind as K;
    use torch::Kind as T;
    let schedule = scheduler
        .map(|s| torch_scheduler_to_keras(t.lr, s))
        .transpose()?;
    if schedule.is_some() {
        match t.kind {
            T::Sgd { momentum, .. } | T::RmsProp { momentum, .. } if nonzero(momentum) => {
                return Err(none_k(
                    &[Id::SgdMomentumLrInBuffer, Id::LrScheduleGranularity],
                    LR_IN_BUFFER,
                ));
            }
            T::Adagrad { lr_decay, .. } if lr_decay.abs() > 0.0 => {
                return Err(none_k(
                    &[Id::LrScheduleGranularity],
                    "lr_decay on top of a scheduler has no single Keras schedule",
                ));
            }
            _ => {}
        }
    }
    if t.maximize {
        return Err(none_k(
            &[],
            "Keras optimizers have no maximize; negate the loss instead",
        ));
    }
    let clipvalue = match clip {
        None => None,
        Some(GradClip::Value { clip_value }) => Some(*clip_value),
        Some(GradClip::Norm { .. }) => {
            return Err(none_k(
                &[Id::ClipnormPerTensorVsGlobal],
                "clip_grad_norm_ divides by (N + 1e-6); Keras global_clipnorm by N",
            ));
        }
    };
    let wd = t.weight_decay;
    let has_wd = wd.abs() > 0.0;
    let coupled_l2 = || {
        none_k(
            &[Id::AdamWeightDecayCoupling],
            "torch weight_decay here is coupled L2 (g + λθ); Keras weight_decay is decoupled",
        )
    };
    let eps_after_bias = |catalogue: &[Id], eps: f64| {
        none_k(
            catalogue,
            format!(
                "torch adds eps {} after bias correction; Keras's epsilon-hat would have to change every step",
                py(eps)
            ),
        )
    };
    // Per class: the epsilon (or other unmappable value) check first, then the weight-decay
    // one; what passes is the by-name mapping with the (zero) epsilon.
    let kind = match t.kind {
        T::Sgd {
            momentum,
            dampening,
            ..
        } if nonzero(momentum) && nonzero(dampening) => Err(none_k(
            &[Id::SgdMomentumLrInBuffer],
            "Keras SGD momentum has no dampening",
        )),
        T::Adam { eps, .. } if nonzero(eps) => Err(eps_after_bias(&[Id::AdamEpsilonHat], eps)),
        T::AdamW { eps, .. } if nonzero(eps) => Err(eps_after_bias(
            &[Id::AdamEpsilonHat, Id::AdamwDefaultDecay],
            eps,
        )),
        T::RmsProp { eps, .. } if nonzero(eps) => Err(none_k(
            &[Id::RmspropEpsAndRho],
            "torch RMSprop puts eps outside the square root, Keras inside",
        )),
        T::Adagrad { eps, .. } if nonzero(eps) => Err(none_k(
            &[Id::AdagradInitEps],
            "torch Adagrad puts eps outside the square root, Keras inside",
        )),
        T::Adamax { eps, .. } if nonzero(eps) => Err(none_k(
            &[Id::AdamaxEpsPlacement],
            "torch Adamax adds eps inside the max, Keras after it",
        )),
        T::NAdam { momentum_decay, .. } if differs(momentum_decay, 1.0) => Err(none_k(
            &[Id::NadamMomentumSchedule],
            format!(
                "Keras Nadam's momentum schedule is 0.96^t (momentum_decay=1.0), not 0.96^({}·t)",
                py(momentum_decay)
            ),
        )),
        T::Adafactor { eps: (eps1, _), .. } if eps1.is_none_or(nonzero) => Err(none_k(
            &[Id::NoCounterpartOptimizers],
            format!(
                "torch Adafactor clamps the factored estimate at eps1 ({}); Keras adds \
                 epsilon_1 to g² before factoring (same only with eps1=0)",
                eps1.map_or("None: finfo(float32).eps".to_string(), py)
            ),
        )),
        T::Adafactor { .. } if has_wd => Err(none_k(
            &[Id::AdamWeightDecayCoupling, Id::NoCounterpartOptimizers],
            "torch Adafactor scales its step by RMS(θ) before its weight decay, Keras \
             after the base optimizer's",
        )),
        T::Sgd { momentum, .. } if has_wd && nonzero(momentum) => Err(coupled_l2()),
        T::Adam {
            decoupled_weight_decay: false,
            ..
        }
        | T::NAdam {
            decoupled_weight_decay: false,
            ..
        }
        | T::RmsProp { .. }
        | T::Adagrad { .. }
        | T::Adadelta { .. }
        | T::Adamax { .. }
            if has_wd =>
        {
            Err(coupled_l2())
        }
        T::Adam { betas, amsgrad, .. } if has_wd => Ok(K::AdamW {
            beta_1: betas.0,
            beta_2: betas.1,
            epsilon: 0.0,
            amsgrad,
        }),
        _ => keras_kind_by_name(&t.kind).map(zero_keras_eps),
    }?;
    // Decoupled decay carries over; AdamW keeps its own (Keras's default differs).
    let keras_wd = (has_wd || matches!(t.kind, T::AdamW { .. })).then_some(wd);
    let mut learning_rate = LearningRate::Constant(t.lr);
    if let T::Adagrad { lr_decay, .. } = t.kind
        && nonzero(lr_decay)
    {
        // η/(1 + (t−1)·d) = InverseTimeDecay(η, decay_steps=1, decay_rate=d) at step t−1.
        learning_rate = LearningRate::Schedule(Schedule::InverseTimeDecay {
            initial_learning_rate: t.lr,
            decay_steps: 1.0,
            decay_rate: lr_decay,
            staircase: false,
        });
    }
    if let Some(s) = schedule {
        learning_rate = LearningRate::Schedule(s);
    }
    let config = keras_config(kind, learning_rate, keras_wd, None, clipvalue);
    Ok(KerasEquivalent {
        code: render_keras(&config),
        config,
    })
}

/// A Keras configuration with the given values and Keras's defaults (no EMA, no
/// accumulation, no exclusion) for the rest.
fn keras_config(
    kind: keras::Kind,
    learning_rate: LearningRate,
    weight_decay: Option<f64>,
    global_clipnorm: Option<f64>,
    clipvalue: Option<f64>,
) -> keras::Config {
    keras::Config {
        kind,
        learning_rate,
        weight_decay,
        clipnorm: None,
        global_clipnorm,
        clipvalue,
        use_ema: false,
        ema_momentum: 0.99,
        ema_overwrite_frequency: None,
        loss_scale_factor: None,
        gradient_accumulation_steps: None,
        exclude_from_weight_decay: None,
        backend: keras::Backend::default(),
    }
}

fn differs(a: f64, b: f64) -> bool {
    (a - b).abs() > 0.0
}
