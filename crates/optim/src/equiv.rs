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

fn integral(x: f64) -> Option<u64> {
    (x >= 0.0 && x.fract().abs() < f64::EPSILON && x < 1e15).then_some(x as u64)
}

fn per_step(kind: SchedulerKind) -> SchedulerConfig {
    SchedulerConfig {
        kind,
        interval: StepInterval::Step,
        steps_per_epoch: None,
    }
}

/// The torch scheduler (stepped after every `optimizer.step()`) and initial `lr` that follow a
/// Keras schedule exactly, or why none does. Keras evaluates the schedule at the raw step
/// count s = t − 1 for update t; a per-step torch scheduler has `last_epoch` = t − 1 then.
pub fn keras_schedule_to_torch(s: &Schedule) -> Result<(f64, SchedulerConfig), NoEquivalent> {
    let staircase_granularity = || {
        none_t(
            &[Id::LrScheduleGranularity],
            "the decay_steps is not a whole number of steps, so no torch scheduler stepped per \
             batch changes the learning rate at the same steps",
        )
    };
    match *s {
        Schedule::ExponentialDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        } => {
            if staircase {
                let d = integral(decay_steps)
                    .filter(|&d| d > 0)
                    .ok_or_else(staircase_granularity)?;
                let kind = if d == 1 {
                    SchedulerKind::ExponentialLR { gamma: decay_rate }
                } else {
                    SchedulerKind::StepLR {
                        step_size: d,
                        gamma: decay_rate,
                    }
                };
                Ok((initial_learning_rate, per_step(kind)))
            } else {
                // η0·r^(s/D) = η0·(r^(1/D))^s.
                let gamma = if (decay_steps - 1.0).abs() > 0.0 {
                    decay_rate.powf(1.0 / decay_steps)
                } else {
                    decay_rate
                };
                Ok((
                    initial_learning_rate,
                    per_step(SchedulerKind::ExponentialLR { gamma }),
                ))
            }
        }
        Schedule::PiecewiseConstantDecay {
            ref boundaries,
            ref values,
        } => {
            let v0 = values[0];
            let ratio = if values.len() > 1 && v0.abs() > 0.0 {
                values[1] / v0
            } else {
                1.0
            };
            let geometric = v0.abs() > 0.0
                && values
                    .windows(2)
                    .all(|w| (w[1] - w[0] * ratio).abs() <= 1e-12 * w[0].abs().max(w[1].abs()));
            if !geometric {
                return Err(none_t(
                    &[Id::LrScheduleGranularity],
                    "the values are not a constant ratio apart; MultiStepLR multiplies by one \
                     gamma (torch needs a LambdaLR stepped after every optimizer.step())",
                ));
            }
            // value i applies for step > boundaries[i-1], i.e. from step floor(b) + 1.
            let milestones = boundaries
                .iter()
                .map(|&b| if b < 0.0 { 0 } else { b.floor() as u64 + 1 })
                .collect();
            Ok((
                v0,
                per_step(SchedulerKind::MultiStepLR {
                    milestones,
                    gamma: ratio,
                }),
            ))
        }
        Schedule::PolynomialDecay {
            initial_learning_rate,
            decay_steps,
            end_learning_rate,
            power,
            cycle,
        } => {
            let n = integral(decay_steps).filter(|&n| n > 0);
            if cycle || (power - 1.0).abs() > 0.0 || n.is_none() {
                return Err(none_t(
                    &[Id::LrScheduleGranularity],
                    "only a linear (power=1), non-cycling PolynomialDecay over whole steps has an \
                     emulated torch counterpart (LinearLR); otherwise use a LambdaLR stepped after \
                     every optimizer.step()",
                ));
            }
            let total_iters = n.unwrap_or(1);
            // η0 + (η_end − η0)·min(s, N)/N = base·(start + (end − start)·min(s, N)/N).
            let (base, start_factor, end_factor) = if end_learning_rate <= initial_learning_rate {
                (
                    initial_learning_rate,
                    1.0,
                    end_learning_rate / initial_learning_rate,
                )
            } else {
                (
                    end_learning_rate,
                    initial_learning_rate / end_learning_rate,
                    1.0,
                )
            };
            if !(start_factor > 0.0 && start_factor <= 1.0 && (0.0..=1.0).contains(&end_factor)) {
                return Err(none_t(
                    &[Id::LrScheduleGranularity],
                    "LinearLR needs 0 < start_factor <= 1 and 0 <= end_factor <= 1 (a learning rate \
                     that starts at 0 or changes sign has no LinearLR form)",
                ));
            }
            Ok((
                base,
                per_step(SchedulerKind::LinearLR {
                    start_factor,
                    end_factor,
                    total_iters,
                }),
            ))
        }
        Schedule::InverseTimeDecay { .. } => Err(none_t(
            &[Id::LrScheduleGranularity],
            "torch has no inverse-time scheduler; use LambdaLR(lambda s: 1/(1 + rate·s/decay_steps)) \
             stepped after every optimizer.step()",
        )),
        Schedule::CosineDecay {
            decay_steps,
            alpha,
            warmup_target,
            ..
        } => Err(none_t(
            &[Id::CosineDecaySemantics],
            if warmup_target.is_some() {
                "the linear warm-up followed by cosine decay has no single torch scheduler"
                    .to_string()
            } else {
                format!(
                    "CosineAnnealingLR(T_max={}, eta_min={}·lr) stepped per batch agrees only for \
                     the first {} updates: past T_max it rises again while Keras holds alpha·lr",
                    py(decay_steps),
                    py(alpha),
                    py(decay_steps + 1.0)
                )
            },
        )),
        Schedule::CosineDecayRestarts {
            initial_learning_rate,
            first_decay_steps,
            t_mul,
            m_mul,
            alpha,
        } => {
            let t_0 = integral(first_decay_steps).filter(|&n| n > 0);
            let t_mult = integral(t_mul).filter(|&n| n > 0);
            match (t_0, t_mult) {
                (Some(t_0), Some(t_mult)) if (m_mul - 1.0).abs() == 0.0 => Ok((
                    initial_learning_rate,
                    per_step(SchedulerKind::CosineAnnealingWarmRestarts {
                        t_0,
                        t_mult,
                        eta_min: alpha * initial_learning_rate,
                    }),
                )),
                _ => Err(none_t(
                    &[Id::CosineDecaySemantics],
                    "CosineAnnealingWarmRestarts restarts at the same peak (m_mul=1) after whole-step \
                     periods growing by an integer T_mult",
                )),
            }
        }
    }
}

/// The Keras schedule that reproduces a torch scheduler (with `base_lr` the group's `lr` when
/// the scheduler was created), or why none does. Keras evaluates schedules every batch, so a
/// scheduler stepped per epoch maps only where its staircase is one Keras has.
pub fn torch_scheduler_to_keras(
    base_lr: f64,
    s: &SchedulerConfig,
) -> Result<Schedule, NoEquivalent> {
    let k = match s.interval {
        StepInterval::Step => 1,
        StepInterval::Epoch => s.steps_per_epoch.ok_or_else(|| {
            none_k(
                &[Id::LrScheduleGranularity],
                "the scheduler steps once per epoch; without steps_per_epoch there is no per-batch \
                 Keras schedule",
            )
        })?,
    };
    let staircase = || {
        none_k(
            &[Id::LrScheduleGranularity],
            format!(
                "{} stepped once per epoch is a staircase in batches; Keras's schedule of that \
                 name is continuous",
                s.kind.class_name()
            ),
        )
    };
    match s.kind {
        SchedulerKind::StepLR { step_size, gamma } => Ok(Schedule::ExponentialDecay {
            initial_learning_rate: base_lr,
            decay_steps: (step_size * k) as f64,
            decay_rate: gamma,
            staircase: true,
        }),
        SchedulerKind::ExponentialLR { gamma } => Ok(Schedule::ExponentialDecay {
            initial_learning_rate: base_lr,
            decay_steps: k as f64,
            decay_rate: gamma,
            staircase: k > 1,
        }),
        SchedulerKind::MultiStepLR {
            ref milestones,
            gamma,
        } => {
            let mut ms = milestones.clone();
            ms.sort_unstable();
            let zeros = ms.iter().filter(|&&m| m == 0).count();
            let mut value = base_lr * gamma.powf(zeros as f64);
            let mut boundaries = Vec::new();
            let mut values = vec![value];
            let mut i = zeros;
            while i < ms.len() {
                let m = ms[i];
                let n = ms[i..].iter().take_while(|&&x| x == m).count();
                value *= gamma.powf(n as f64);
                // lr changes when last_epoch = floor(step/k) reaches m, i.e. for step > m·k − 1.
                boundaries.push((m * k - 1) as f64);
                values.push(value);
                i += n;
            }
            Ok(Schedule::PiecewiseConstantDecay { boundaries, values })
        }
        SchedulerKind::CosineAnnealingLR { t_max, .. } => Err(none_k(
            &[Id::CosineDecaySemantics],
            format!(
                "CosineAnnealingLR is periodic past T_max={} and Keras CosineDecay holds its floor",
                py(t_max)
            ),
        )),
        SchedulerKind::CosineAnnealingWarmRestarts {
            t_0,
            t_mult,
            eta_min,
        } => {
            if k > 1 {
                return Err(staircase());
            }
            if base_lr.abs() == 0.0 {
                return Err(none_k(
                    &[Id::CosineDecaySemantics],
                    "alpha = eta_min/lr needs a non-zero lr",
                ));
            }
            Ok(Schedule::CosineDecayRestarts {
                initial_learning_rate: base_lr,
                first_decay_steps: t_0 as f64,
                t_mul: t_mult as f64,
                m_mul: 1.0,
                alpha: eta_min / base_lr,
            })
        }
        SchedulerKind::LinearLR {
            start_factor,
            end_factor,
            total_iters,
        } => {
            if k > 1 {
                return Err(staircase());
            }
            Ok(Schedule::PolynomialDecay {
                initial_learning_rate: base_lr * start_factor,
                decay_steps: total_iters as f64,
                end_learning_rate: base_lr * end_factor,
                power: 1.0,
                cycle: false,
            })
        }
        SchedulerKind::OneCycleLR(_) => Err(none_k(
            &[Id::LrScheduleGranularity],
            "Keras has no one-cycle schedule and does not cycle momentum",
        )),
    }
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

/// What a porter writes: torch optimizer of the same class name with the Keras values copied
/// by name (`learning_rate`→`lr`, `beta_1/beta_2`→`betas`, `epsilon`→`eps`, `rho`→`alpha`
/// for RMSprop, `weight_decay`, `momentum`, ...), torch defaults for everything else.
/// The learning rate is the schedule's value at step 0; `--as` replay re-sets it per step.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchByName {
    pub config: torch::Config,
    /// Keras `global_clipnorm` → `clip_grad_norm_`, `clipvalue` → `clip_grad_value_`.
    pub grad_clip: Option<GradClip>,
    /// Keras `clipnorm` → `clip_grad_norm_([p], c)` for each parameter.
    pub per_param_clipnorm: Option<f64>,
    /// Keras `exclude_from_weight_decay` → a parameter group with `weight_decay=0`
    /// ([`torch_groups_for_exclusion`] with the Keras config's backend).
    pub exclude_from_weight_decay: Option<keras::Exclusion>,
}

/// See [`TorchByName`].
pub fn torch_by_name(k: &keras::Config) -> Result<TorchByName, NoEquivalent> {
    if k.gradient_accumulation_steps.is_some() {
        return Err(none_t(
            &[Id::LrScheduleGranularity],
            "gradient_accumulation_steps has no torch optimizer argument; a port accumulates in \
             the training loop",
        ));
    }
    let kind = torch_kind_by_name(&k.kind)?;
    let lr = k.learning_rate.at::<f64>(0);
    let grad_clip = match (k.global_clipnorm, k.clipvalue) {
        (Some(c), _) => Some(GradClip::Norm {
            max_norm: c,
            norm_type: 2.0,
        }),
        (None, Some(c)) => Some(GradClip::Value { clip_value: c }),
        _ => None,
    };
    Ok(TorchByName {
        config: torch::Config {
            kind,
            lr,
            weight_decay: wd_of(k),
            maximize: false,
        },
        grad_clip,
        per_param_clipnorm: k.clipnorm,
        exclude_from_weight_decay: k.exclude_from_weight_decay.clone(),
    })
}

/// The torch class of the same name with the Keras values copied by name, torch defaults for
/// the rest.
fn torch_kind_by_name(k: &keras::Kind) -> Result<torch::Kind, NoEquivalent> {
    use keras::Kind as K;
    use torch::Kind as T;
    Ok(match *k {
        K::Sgd { momentum, nesterov } => T::Sgd {
            momentum,
            dampening: 0.0,
            nesterov,
        },
        K::Adam {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        } => T::Adam {
            betas: (beta_1, beta_2),
            eps: epsilon,
            amsgrad,
            decoupled_weight_decay: false,
        },
        K::AdamW {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        } => T::AdamW {
            betas: (beta_1, beta_2),
            eps: epsilon,
            amsgrad,
        },
        K::RmsProp {
            rho,
            momentum,
            epsilon,
            centered,
        } => T::RmsProp {
            alpha: rho,
            eps: epsilon,
            momentum,
            centered,
        },
        K::Adagrad {
            initial_accumulator_value,
            epsilon,
        } => T::Adagrad {
            lr_decay: 0.0,
            initial_accumulator_value,
            eps: epsilon,
        },
        K::Adadelta { rho, epsilon } => T::Adadelta { rho, eps: epsilon },
        K::Adamax {
            beta_1,
            beta_2,
            epsilon,
        } => T::Adamax {
            betas: (beta_1, beta_2),
            eps: epsilon,
        },
        K::Nadam {
            beta_1,
            beta_2,
            epsilon,
        } => T::NAdam {
            betas: (beta_1, beta_2),
            eps: epsilon,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
        },
        K::Lion { .. } => {
            return Err(none_t(
                &[Id::NoCounterpartOptimizers],
                "torch.optim has no Lion",
            ));
        }
        K::Adafactor {
            beta_2_decay,
            epsilon_1,
            epsilon_2,
            clip_threshold,
            ..
        } => T::Adafactor {
            beta2_decay: beta_2_decay,
            eps: (Some(epsilon_1), epsilon_2),
            d: clip_threshold,
        },
    })
}

/// `kind` with the epsilon the exact mappings require to be zero (Adafactor: `eps1`) set to 0.0.
fn zero_torch_eps(mut kind: torch::Kind) -> torch::Kind {
    if let Some(eps) = kind.eps_mut() {
        *eps = 0.0;
    }
    if let Some(eps1) = kind.eps1_mut() {
        *eps1 = Some(0.0);
    }
    kind
}

/// What a porter writes the other way: Keras class of the same name, torch values copied by
/// name, Keras defaults for the rest (`dampening`, `lr_decay`, `momentum_decay`,
/// `decoupled_weight_decay`, `maximize` have no Keras name and are dropped).
pub fn keras_by_name(
    t: &torch::Config,
    clip: Option<&GradClip>,
) -> Result<keras::Config, NoEquivalent> {
    let kind = keras_kind_by_name(&t.kind)?;
    let (mut global_clipnorm, mut clipvalue) = (None, None);
    match clip {
        None => {}
        Some(GradClip::Norm {
            max_norm,
            norm_type,
        }) => {
            if (norm_type - 2.0).abs() > 0.0 {
                return Err(none_k(
                    &[Id::ClipnormPerTensorVsGlobal],
                    format!(
                        "Keras clips by the L2 norm only, not norm_type={}",
                        py(*norm_type)
                    ),
                ));
            }
            global_clipnorm = Some(*max_norm);
        }
        Some(GradClip::Value { clip_value }) => clipvalue = Some(*clip_value),
    }
    Ok(keras_config(
        kind,
        LearningRate::Constant(t.lr),
        nonzero(t.weight_decay).then_some(t.weight_decay),
        global_clipnorm,
        clipvalue,
    ))
}

/// The Keras class of the same name with the torch values copied by name, Keras defaults for
/// the rest.
fn keras_kind_by_name(t: &torch::Kind) -> Result<keras::Kind, NoEquivalent> {
    use keras::Kind as K;
    use torch::Kind as T;
    Ok(match *t {
        T::Sgd {
            momentum, nesterov, ..
        } => K::Sgd { momentum, nesterov },
        T::Adam {
            betas,
            eps,
            amsgrad,
            ..
        } => K::Adam {
            beta_1: betas.0,
            beta_2: betas.1,
            epsilon: eps,
            amsgrad,
        },
        T::AdamW {
            betas,
            eps,
            amsgrad,
        } => K::AdamW {
            beta_1: betas.0,
            beta_2: betas.1,
            epsilon: eps,
            amsgrad,
        },
        T::RmsProp {
            alpha,
            eps,
            momentum,
            centered,
        } => K::RmsProp {
            rho: alpha,
            momentum,
            epsilon: eps,
            centered,
        },
        T::Adagrad {
            initial_accumulator_value,
            eps,
            ..
        } => K::Adagrad {
            initial_accumulator_value,
            epsilon: eps,
        },
        T::Adadelta { rho, eps } => K::Adadelta { rho, epsilon: eps },
        T::Adamax { betas, eps } => K::Adamax {
            beta_1: betas.0,
            beta_2: betas.1,
            epsilon: eps,
        },
        T::NAdam { betas, eps, .. } => K::Nadam {
            beta_1: betas.0,
            beta_2: betas.1,
            epsilon: eps,
        },
        T::RAdam { .. } => {
            return Err(none_k(&[Id::NoCounterpartOptimizers], "Keras has no RAdam"));
        }
        T::Adafactor {
            beta2_decay,
            eps: (eps1, eps2),
            d,
        } => K::Adafactor {
            beta_2_decay: beta2_decay,
            // `eps=(None, ...)` has no Keras spelling: Keras's default epsilon_1 stays.
            epsilon_1: eps1.unwrap_or(1e-30),
            epsilon_2: eps2,
            clip_threshold: d,
            relative_step: true,
        },
    })
}

/// `kind` with the epsilon the exact mappings require to be zero (Adafactor: `epsilon_1`) set
/// to 0.0.
fn zero_keras_eps(mut kind: keras::Kind) -> keras::Kind {
    if let Some(epsilon) = kind.epsilon_mut() {
        *epsilon = 0.0;
    }
    if let Some(epsilon_1) = kind.epsilon_1_mut() {
        *epsilon_1 = 0.0;
    }
    kind
}

fn differs(a: f64, b: f64) -> bool {
    (a - b).abs() > 0.0
}

/// A Python argument list being rendered: `name=value` items, in order.
#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn push(&mut self, item: impl Into<String>) {
        self.0.push(item.into());
    }

    /// `name=value`.
    fn val(&mut self, name: &str, v: f64) {
        self.push(format!("{name}={}", py(v)));
    }

    /// `name=value` unless `v` is the `default` (always without one).
    fn num_or(&mut self, name: &str, v: f64, default: Option<f64>) {
        if default.is_none_or(|d| differs(v, d)) {
            self.val(name, v);
        }
    }

    /// `name=value` unless `v` is the `default`.
    fn num(&mut self, name: &str, v: f64, default: f64) {
        self.num_or(name, v, Some(default));
    }

    /// `name=value` when there is a value.
    fn opt(&mut self, name: &str, v: Option<f64>) {
        if let Some(v) = v {
            self.val(name, v);
        }
    }

    /// `name=True` when `on`.
    fn flag(&mut self, name: &str, on: bool) {
        if on {
            self.push(format!("{name}=True"));
        }
    }

    fn join(&self) -> String {
        self.0.join(", ")
    }
}

/// `torch.optim.X(params, lr=..., <arguments that differ from torch's defaults>)`.
pub fn render_torch(c: &torch::Config) -> String {
    use torch::Kind as T;
    let d = torch::Config::default_for(c.kind.class_name()).ok();
    let dk = d.as_ref().map(|d| &d.kind);
    let mut args = Args::default();
    args.val("lr", c.lr);
    let mut eps_arg = None;
    let betas_of = |k: Option<&T>| match k {
        Some(
            T::Adam { betas, .. }
            | T::AdamW { betas, .. }
            | T::Adamax { betas, .. }
            | T::NAdam { betas, .. }
            | T::RAdam { betas, .. },
        ) => Some(*betas),
        _ => None,
    };
    let mut flags = Args::default();
    match c.kind {
        T::Sgd {
            momentum,
            dampening,
            nesterov,
        } => {
            args.num("momentum", momentum, 0.0);
            args.num("dampening", dampening, 0.0);
            flags.flag("nesterov", nesterov);
        }
        T::Adam {
            eps,
            amsgrad,
            decoupled_weight_decay,
            ..
        } => {
            args.num("eps", eps, 1e-8);
            flags.flag("amsgrad", amsgrad);
            flags.flag("decoupled_weight_decay", decoupled_weight_decay);
        }
        T::AdamW { eps, amsgrad, .. } => {
            args.num("eps", eps, 1e-8);
            flags.flag("amsgrad", amsgrad);
        }
        T::RmsProp {
            alpha,
            eps,
            momentum,
            centered,
        } => {
            args.num("alpha", alpha, 0.99);
            args.num("eps", eps, 1e-8);
            args.num("momentum", momentum, 0.0);
            flags.flag("centered", centered);
        }
        T::Adagrad {
            lr_decay,
            initial_accumulator_value,
            eps,
        } => {
            args.num("lr_decay", lr_decay, 0.0);
            args.num("initial_accumulator_value", initial_accumulator_value, 0.0);
            args.num("eps", eps, 1e-10);
        }
        T::Adadelta { rho, eps } => {
            args.num("rho", rho, 0.9);
            args.num("eps", eps, 1e-6);
        }
        T::Adamax { eps, .. } => args.num("eps", eps, 1e-8),
        T::NAdam {
            eps,
            momentum_decay,
            decoupled_weight_decay,
            ..
        } => {
            args.num("eps", eps, 1e-8);
            args.num("momentum_decay", momentum_decay, 4e-3);
            flags.flag("decoupled_weight_decay", decoupled_weight_decay);
        }
        T::RAdam {
            eps,
            decoupled_weight_decay,
            ..
        } => {
            args.num("eps", eps, 1e-8);
            flags.flag("decoupled_weight_decay", decoupled_weight_decay);
        }
        T::Adafactor {
            beta2_decay,
            eps: (eps1, eps2),
            d,
        } => {
            args.num("beta2_decay", beta2_decay, -0.8);
            if eps1.is_some() || differs(eps2, 1e-3) {
                let e1 = eps1.map_or("None".to_string(), py);
                eps_arg = Some(format!("eps=({e1}, {})", py(eps2)));
            }
            args.num("d", d, 1.0);
        }
    }
    args.num_or(
        "weight_decay",
        c.weight_decay,
        d.as_ref().map(|d| d.weight_decay),
    );
    if let Some(b) = betas_of(Some(&c.kind))
        && betas_of(dk).is_none_or(|db| differs(b.0, db.0) || differs(b.1, db.1))
    {
        args.0
            .insert(1, format!("betas=({}, {})", py(b.0), py(b.1)));
    }
    if let Some(e) = eps_arg {
        args.0.insert(1, e);
    }
    flags.flag("maximize", c.maximize);
    args.0.extend(flags.0);
    format!(
        "torch.optim.{}(params, {})",
        c.kind.class_name(),
        args.join()
    )
}

/// `torch.nn.utils.clip_grad_norm_(params, ...)` / `clip_grad_value_`.
pub fn render_clip(c: &GradClip) -> String {
    match *c {
        GradClip::Norm {
            max_norm,
            norm_type,
        } => {
            format!(
                "torch.nn.utils.clip_grad_norm_(params, max_norm={}, norm_type={})",
                py(max_norm),
                py(norm_type)
            )
        }
        GradClip::Value { clip_value } => format!(
            "torch.nn.utils.clip_grad_value_(params, clip_value={})",
            py(clip_value)
        ),
    }
}

/// `keras.optimizers.X(learning_rate=..., <arguments that differ from Keras's defaults>)`.
pub fn render_keras(c: &keras::Config) -> String {
    use keras::Kind as K;
    let mut args = Args::default();
    match &c.learning_rate {
        LearningRate::Constant(x) => args.val("learning_rate", *x),
        LearningRate::Schedule(s) => args.push(format!("learning_rate={}", render_schedule(s))),
    }
    let mut flags = Args::default();
    match c.kind {
        K::Sgd { momentum, nesterov } => {
            args.num("momentum", momentum, 0.0);
            flags.flag("nesterov", nesterov);
        }
        K::Adam {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        }
        | K::AdamW {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        } => {
            args.num("beta_1", beta_1, 0.9);
            args.num("beta_2", beta_2, 0.999);
            args.num("epsilon", epsilon, 1e-7);
            flags.flag("amsgrad", amsgrad);
        }
        K::RmsProp {
            rho,
            momentum,
            epsilon,
            centered,
        } => {
            args.num("rho", rho, 0.9);
            args.num("momentum", momentum, 0.0);
            args.num("epsilon", epsilon, 1e-7);
            flags.flag("centered", centered);
        }
        K::Adagrad {
            initial_accumulator_value,
            epsilon,
        } => {
            args.num("initial_accumulator_value", initial_accumulator_value, 0.1);
            args.num("epsilon", epsilon, 1e-7);
        }
        K::Adadelta { rho, epsilon } => {
            args.num("rho", rho, 0.95);
            args.num("epsilon", epsilon, 1e-7);
        }
        K::Adamax {
            beta_1,
            beta_2,
            epsilon,
        }
        | K::Nadam {
            beta_1,
            beta_2,
            epsilon,
        } => {
            args.num("beta_1", beta_1, 0.9);
            args.num("beta_2", beta_2, 0.999);
            args.num("epsilon", epsilon, 1e-7);
        }
        K::Lion { beta_1, beta_2 } => {
            args.num("beta_1", beta_1, 0.9);
            args.num("beta_2", beta_2, 0.99);
        }
        K::Adafactor {
            beta_2_decay,
            epsilon_1,
            epsilon_2,
            clip_threshold,
            relative_step,
        } => {
            args.num("beta_2_decay", beta_2_decay, -0.8);
            args.num("epsilon_1", epsilon_1, 1e-30);
            args.num("epsilon_2", epsilon_2, 1e-3);
            args.num("clip_threshold", clip_threshold, 1.0);
            if !relative_step {
                flags.push("relative_step=False");
            }
        }
    }
    let default_wd = if matches!(c.kind, K::AdamW { .. }) {
        0.004
    } else {
        0.0
    };
    args.num("weight_decay", c.weight_decay.unwrap_or(0.0), default_wd);
    args.opt("clipnorm", c.clipnorm);
    args.opt("global_clipnorm", c.global_clipnorm);
    args.opt("clipvalue", c.clipvalue);
    if let Some(n) = c.gradient_accumulation_steps {
        args.push(format!("gradient_accumulation_steps={n}"));
    }
    args.0.extend(flags.0);
    format!("keras.optimizers.{}({})", c.kind.class_name(), args.join())
}

/// A Python list of numbers, whole numbers without `.0` (as Keras boundaries are written).
fn py_list(v: &[f64], whole_as_int: bool) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|&x| match integral(x.abs()) {
            Some(n) if whole_as_int => format!("{}{n}", if x < 0.0 { "-" } else { "" }),
            _ => py(x),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// `keras.optimizers.schedules.X(...)` with the arguments that are required or differ from
/// Keras's defaults.
pub fn render_schedule(s: &Schedule) -> String {
    let mut args = Args::default();
    let name = match *s {
        Schedule::ExponentialDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        }
        | Schedule::InverseTimeDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        } => {
            args.push(py(initial_learning_rate));
            args.val("decay_steps", decay_steps);
            args.val("decay_rate", decay_rate);
            args.flag("staircase", staircase);
            if matches!(s, Schedule::ExponentialDecay { .. }) {
                "ExponentialDecay"
            } else {
                "InverseTimeDecay"
            }
        }
        Schedule::PiecewiseConstantDecay {
            ref boundaries,
            ref values,
        } => {
            args.push(format!("boundaries={}", py_list(boundaries, true)));
            args.push(format!("values={}", py_list(values, false)));
            "PiecewiseConstantDecay"
        }
        Schedule::PolynomialDecay {
            initial_learning_rate,
            decay_steps,
            end_learning_rate,
            power,
            cycle,
        } => {
            args.push(py(initial_learning_rate));
            args.val("decay_steps", decay_steps);
            args.val("end_learning_rate", end_learning_rate);
            args.num("power", power, 1.0);
            args.flag("cycle", cycle);
            "PolynomialDecay"
        }
        Schedule::CosineDecay {
            initial_learning_rate,
            decay_steps,
            alpha,
            warmup_target,
            warmup_steps,
        } => {
            args.push(py(initial_learning_rate));
            args.val("decay_steps", decay_steps);
            args.num("alpha", alpha, 0.0);
            args.opt("warmup_target", warmup_target);
            args.num("warmup_steps", warmup_steps, 0.0);
            "CosineDecay"
        }
        Schedule::CosineDecayRestarts {
            initial_learning_rate,
            first_decay_steps,
            t_mul,
            m_mul,
            alpha,
        } => {
            args.push(py(initial_learning_rate));
            args.val("first_decay_steps", first_decay_steps);
            args.num("t_mul", t_mul, 2.0);
            args.num("m_mul", m_mul, 1.0);
            args.num("alpha", alpha, 0.0);
            "CosineDecayRestarts"
        }
    };
    format!("keras.optimizers.schedules.{name}({})", args.join())
}

/// `torch.optim.lr_scheduler.X(optimizer, ...)  # step() after every optimizer.step()` (or
/// once per epoch), with the arguments that are required or differ from torch's defaults.
pub fn render_scheduler(s: &SchedulerConfig) -> String {
    let mut args = Args::default();
    args.push("optimizer");
    match s.kind {
        SchedulerKind::StepLR { step_size, gamma } => {
            args.push(format!("step_size={step_size}"));
            args.num("gamma", gamma, 0.1);
        }
        SchedulerKind::MultiStepLR {
            ref milestones,
            gamma,
        } => {
            let ms: Vec<String> = milestones.iter().map(u64::to_string).collect();
            args.push(format!("milestones=[{}]", ms.join(", ")));
            args.num("gamma", gamma, 0.1);
        }
        SchedulerKind::ExponentialLR { gamma } => args.val("gamma", gamma),
        SchedulerKind::CosineAnnealingLR { t_max, eta_min } => {
            args.push(format!(
                "T_max={}",
                py_list(&[t_max], true).trim_matches(['[', ']'])
            ));
            args.num("eta_min", eta_min, 0.0);
        }
        SchedulerKind::CosineAnnealingWarmRestarts {
            t_0,
            t_mult,
            eta_min,
        } => {
            args.push(format!("T_0={t_0}"));
            if t_mult != 1 {
                args.push(format!("T_mult={t_mult}"));
            }
            args.num("eta_min", eta_min, 0.0);
        }
        SchedulerKind::LinearLR {
            start_factor,
            end_factor,
            total_iters,
        } => {
            args.val("start_factor", start_factor);
            args.val("end_factor", end_factor);
            args.push(format!("total_iters={total_iters}"));
        }
        SchedulerKind::OneCycleLR(ref oc) => {
            let one_or_list = |v: &[f64]| {
                if v.len() == 1 {
                    py(v[0])
                } else {
                    py_list(v, false)
                }
            };
            args.push(format!("max_lr={}", one_or_list(&oc.max_lr)));
            args.push(format!("total_steps={}", oc.total_steps));
            args.num("pct_start", oc.pct_start, 0.3);
            if !oc.anneal_cos {
                args.push("anneal_strategy='linear'");
            }
            if !oc.cycle_momentum {
                args.push("cycle_momentum=False");
            }
            if oc.base_momentum.len() != 1 || differs(oc.base_momentum[0], 0.85) {
                args.push(format!("base_momentum={}", one_or_list(&oc.base_momentum)));
            }
            if oc.max_momentum.len() != 1 || differs(oc.max_momentum[0], 0.95) {
                args.push(format!("max_momentum={}", one_or_list(&oc.max_momentum)));
            }
            args.num("div_factor", oc.div_factor, 25.0);
            args.num("final_div_factor", oc.final_div_factor, 1e4);
            args.flag("three_phase", oc.three_phase);
        }
    }
    let when = match (s.interval, s.steps_per_epoch) {
        (StepInterval::Step, _) => "scheduler.step() after every optimizer.step()".to_string(),
        (StepInterval::Epoch, Some(k)) => {
            format!("scheduler.step() once per epoch ({k} optimizer steps)")
        }
        (StepInterval::Epoch, None) => "scheduler.step() once per epoch".to_string(),
    };
    format!(
        "torch.optim.lr_scheduler.{}({})  # {when}",
        s.kind.class_name(),
        args.join()
    )
}

/// `(var_list=[...], var_names=[...])` with the non-empty arguments.
fn render_exclusion(e: &keras::Exclusion) -> String {
    let q = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        format!("[{}]", items.join(", "))
    };
    let mut args = Vec::new();
    if !e.var_list.is_empty() {
        args.push(format!("var_list={}", q(&e.var_list)));
    }
    if !e.var_names.is_empty() {
        args.push(format!("var_names={}", q(&e.var_names)));
    }
    format!("({})", args.join(", "))
}
