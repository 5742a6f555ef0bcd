//! Equivalence mapping between Keras 3 and PyTorch optimizer configurations.
//!
//! [`keras_to_torch`] / [`torch_to_keras`] return the *exact* counterpart (same update in
//! exact arithmetic, verified numerically in the tests) or [`NoEquivalent`] with the reason
//! and catalogue ids. [`torch_by_name`] / [`keras_by_name`] are the naive translation a
//! porter writes (same class name, hyper-parameters copied by name, the rest left at the
//! other framework's defaults); `cargo xtask replay --as` uses them to show the distance.

use crate::config::py;
use crate::keras::{self, LearningRate, Schedule};
use crate::torch::{self, GradClip};

/// Why no exact counterpart exists. Displays as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no {target} equivalent: {reason} (catalogue {})", ids(.catalogue))]
pub struct NoEquivalent {
    /// `torch` or `keras`: the side we tried to map to.
    pub target: &'static str,
    /// Catalogue entries (`../shared/catalogue.md`) that explain the difference.
    pub catalogue: Vec<u32>,
    pub reason: String,
}

fn ids(v: &[u32]) -> String {
    v.iter()
        .map(|i| format!("#{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn none_t(catalogue: &[u32], reason: impl Into<String>) -> NoEquivalent {
    NoEquivalent {
        target: "torch",
        catalogue: catalogue.to_vec(),
        reason: reason.into(),
    }
}

fn none_k(catalogue: &[u32], reason: impl Into<String>) -> NoEquivalent {
    NoEquivalent {
        target: "keras",
        catalogue: catalogue.to_vec(),
        reason: reason.into(),
    }
}

/// The exact torch counterpart of a Keras configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchEquivalent {
    pub config: torch::Config,
    /// Clipping the training loop must apply before every `step()`.
    pub grad_clip: Option<GradClip>,
    /// `torch.optim.X(params, ...)`.
    pub code: String,
    /// `torch.nn.utils.clip_grad_*(params, ...)`, when `grad_clip` is set.
    pub clip_code: Option<String>,
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
    let lr = match &k.learning_rate {
        LearningRate::Constant(x) => *x,
        LearningRate::Schedule(_) => {
            return Err(none_t(
                &[14],
                "the learning rate is a Keras schedule evaluated every batch; torch needs a \
                 LambdaLR stepped after every optimizer.step()",
            ));
        }
    };
    if k.use_ema {
        return Err(none_t(
            &[12],
            "use_ema overwrites the weights with an EMA; torch optimizers keep no EMA",
        ));
    }
    if k.clipnorm.is_some() {
        return Err(none_t(
            &[11],
            "clipnorm clips each variable separately and without torch's +1e-6 in clip_grad_norm_",
        ));
    }
    if k.global_clipnorm.is_some() {
        return Err(none_t(
            &[11],
            "torch clip_grad_norm_ divides by (N + 1e-6); Keras global_clipnorm by N",
        ));
    }
    if k.loss_scale_factor.is_some() {
        return Err(none_t(
            &[60],
            "loss_scale_factor unscales gradients inside the optimizer",
        ));
    }
    let wd = wd_of(k);
    let has_wd = wd.abs() > 0.0;
    let coupled_wd = || {
        none_t(
            &[2],
            "Keras weight_decay is decoupled; this torch optimizer only has coupled L2",
        )
    };
    let kind = match k.kind {
        K::Sgd { momentum, nesterov } => {
            if has_wd && momentum.abs() > 0.0 {
                return Err(none_t(
                    &[2, 4],
                    "decoupled weight decay with momentum: torch SGD's weight_decay is coupled and enters the buffer",
                ));
            }
            T::Sgd {
                momentum,
                dampening: 0.0,
                nesterov,
            }
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
            if epsilon.abs() > 0.0 {
                return Err(none_t(
                    &[1],
                    format!(
                        "Keras adds epsilon-hat {} to sqrt(v) before bias correction, i.e. torch \
                         eps_t = {}/sqrt(1-beta_2^t), which changes every step",
                        py(epsilon),
                        py(epsilon)
                    ),
                ));
            }
            if has_wd {
                T::AdamW {
                    betas: (beta_1, beta_2),
                    eps: 0.0,
                    amsgrad,
                }
            } else {
                T::Adam {
                    betas: (beta_1, beta_2),
                    eps: 0.0,
                    amsgrad,
                    decoupled_weight_decay: false,
                }
            }
        }
        K::RmsProp {
            rho,
            momentum,
            epsilon,
            centered,
        } => {
            if epsilon.abs() > 0.0 {
                return Err(none_t(
                    &[6],
                    "Keras RMSprop puts epsilon inside the square root, torch outside",
                ));
            }
            if has_wd {
                return Err(coupled_wd());
            }
            T::RmsProp {
                alpha: rho,
                eps: 0.0,
                momentum,
                centered,
            }
        }
        K::Adagrad {
            initial_accumulator_value,
            epsilon,
        } => {
            if epsilon.abs() > 0.0 {
                return Err(none_t(
                    &[7],
                    "Keras Adagrad puts epsilon inside the square root, torch outside",
                ));
            }
            if has_wd {
                return Err(coupled_wd());
            }
            T::Adagrad {
                lr_decay: 0.0,
                initial_accumulator_value,
                eps: 0.0,
            }
        }
        K::Adadelta { rho, epsilon } => {
            if has_wd {
                return Err(coupled_wd());
            }
            T::Adadelta { rho, eps: epsilon }
        }
        K::Adamax {
            beta_1,
            beta_2,
            epsilon,
        } => {
            if epsilon.abs() > 0.0 {
                return Err(none_t(
                    &[10],
                    "Keras Adamax adds epsilon after the max, torch inside it",
                ));
            }
            if has_wd {
                return Err(coupled_wd());
            }
            T::Adamax {
                betas: (beta_1, beta_2),
                eps: 0.0,
            }
        }
        K::Nadam {
            beta_1,
            beta_2,
            epsilon,
        } => T::NAdam {
            betas: (beta_1, beta_2),
            eps: epsilon,
            momentum_decay: 1.0,
            decoupled_weight_decay: has_wd,
        },
        K::Lion { .. } => {
            return Err(none_t(&[62], "torch.optim has no Lion"));
        }
    };
    let config = torch::Config {
        kind,
        lr,
        weight_decay: wd,
        maximize: false,
    };
    let grad_clip = k.clipvalue.map(|c| GradClip::Value { clip_value: c });
    Ok(TorchEquivalent {
        code: render_torch(&config),
        clip_code: grad_clip.as_ref().map(render_clip),
        config,
        grad_clip,
    })
}

/// The exact Keras equivalent of a torch optimizer (plus its training-loop clipping), or why
/// there is none.
pub fn torch_to_keras(
    t: &torch::Config,
    clip: Option<&GradClip>,
) -> Result<KerasEquivalent, NoEquivalent> {
    use keras::Kind as K;
    use torch::Kind as T;
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
                &[11],
                "clip_grad_norm_ divides by (N + 1e-6); Keras global_clipnorm by N",
            ));
        }
    };
    let wd = t.weight_decay;
    let has_wd = wd.abs() > 0.0;
    let coupled = || {
        none_k(
            &[2],
            "torch weight_decay here is coupled L2 (g + λθ); Keras weight_decay is decoupled",
        )
    };
    let mut learning_rate = LearningRate::Constant(t.lr);
    let mut keras_wd = None;
    let kind = match t.kind {
        T::Sgd {
            momentum,
            dampening,
            nesterov,
        } => {
            if momentum.abs() > 0.0 && dampening.abs() > 0.0 {
                return Err(none_k(&[4], "Keras SGD momentum has no dampening"));
            }
            if has_wd && momentum.abs() > 0.0 {
                return Err(coupled());
            }
            if has_wd {
                keras_wd = Some(wd);
            }
            K::Sgd { momentum, nesterov }
        }
        T::Adam {
            betas,
            eps,
            amsgrad,
            decoupled_weight_decay,
        } => {
            if eps.abs() > 0.0 {
                return Err(none_k(
                    &[1],
                    format!(
                        "torch adds eps {} after bias correction; Keras's epsilon-hat would have to change every step",
                        py(eps)
                    ),
                ));
            }
            if has_wd && !decoupled_weight_decay {
                return Err(coupled());
            }
            if has_wd {
                keras_wd = Some(wd);
                K::AdamW {
                    beta_1: betas.0,
                    beta_2: betas.1,
                    epsilon: 0.0,
                    amsgrad,
                }
            } else {
                K::Adam {
                    beta_1: betas.0,
                    beta_2: betas.1,
                    epsilon: 0.0,
                    amsgrad,
                }
            }
        }
        T::AdamW {
            betas,
            eps,
            amsgrad,
        } => {
            if eps.abs() > 0.0 {
                return Err(none_k(
                    &[1, 3],
                    format!(
                        "torch adds eps {} after bias correction; Keras's epsilon-hat would have to change every step",
                        py(eps)
                    ),
                ));
            }
            keras_wd = Some(wd);
            K::AdamW {
                beta_1: betas.0,
                beta_2: betas.1,
                epsilon: 0.0,
                amsgrad,
            }
        }
        T::RmsProp {
            alpha,
            eps,
            momentum,
            centered,
        } => {
            if eps.abs() > 0.0 {
                return Err(none_k(
                    &[6],
                    "torch RMSprop puts eps outside the square root, Keras inside",
                ));
            }
            if has_wd {
                return Err(coupled());
            }
            K::RmsProp {
                rho: alpha,
                momentum,
                epsilon: 0.0,
                centered,
            }
        }
        T::Adagrad {
            lr_decay,
            initial_accumulator_value,
            eps,
        } => {
            if eps.abs() > 0.0 {
                return Err(none_k(
                    &[7],
                    "torch Adagrad puts eps outside the square root, Keras inside",
                ));
            }
            if has_wd {
                return Err(coupled());
            }
            if lr_decay.abs() > 0.0 {
                // η/(1 + (t−1)·d) = InverseTimeDecay(η, decay_steps=1, decay_rate=d) at step t−1.
                learning_rate = LearningRate::Schedule(Schedule::InverseTimeDecay {
                    initial_learning_rate: t.lr,
                    decay_steps: 1.0,
                    decay_rate: lr_decay,
                    staircase: false,
                });
            }
            K::Adagrad {
                initial_accumulator_value,
                epsilon: 0.0,
            }
        }
        T::Adadelta { rho, eps } => {
            if has_wd {
                return Err(coupled());
            }
            K::Adadelta { rho, epsilon: eps }
        }
        T::Adamax { betas, eps } => {
            if eps.abs() > 0.0 {
                return Err(none_k(
                    &[10],
                    "torch Adamax adds eps inside the max, Keras after it",
                ));
            }
            if has_wd {
                return Err(coupled());
            }
            K::Adamax {
                beta_1: betas.0,
                beta_2: betas.1,
                epsilon: 0.0,
            }
        }
        T::NAdam {
            betas,
            eps,
            momentum_decay,
            decoupled_weight_decay,
        } => {
            if (momentum_decay - 1.0).abs() > 0.0 {
                return Err(none_k(
                    &[9],
                    format!(
                        "Keras Nadam's momentum schedule is 0.96^t (momentum_decay=1.0), not 0.96^({}·t)",
                        py(momentum_decay)
                    ),
                ));
            }
            if has_wd && !decoupled_weight_decay {
                return Err(coupled());
            }
            if has_wd {
                keras_wd = Some(wd);
            }
            K::Nadam {
                beta_1: betas.0,
                beta_2: betas.1,
                epsilon: eps,
            }
        }
        T::RAdam { .. } => return Err(none_k(&[62], "Keras has no RAdam")),
    };
    let config = keras::Config {
        kind,
        learning_rate,
        weight_decay: keras_wd,
        clipnorm: None,
        global_clipnorm: None,
        clipvalue,
        use_ema: false,
        ema_momentum: 0.99,
        ema_overwrite_frequency: None,
        loss_scale_factor: None,
    };
    Ok(KerasEquivalent {
        code: render_keras(&config),
        config,
    })
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
}

/// See [`TorchByName`].
pub fn torch_by_name(k: &keras::Config) -> Result<TorchByName, NoEquivalent> {
    use keras::Kind as K;
    use torch::Kind as T;
    let kind = match k.kind {
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
        K::Lion { .. } => return Err(none_t(&[62], "torch.optim has no Lion")),
    };
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
    })
}

/// What a porter writes the other way: Keras class of the same name, torch values copied by
/// name, Keras defaults for the rest (`dampening`, `lr_decay`, `momentum_decay`,
/// `decoupled_weight_decay`, `maximize` have no Keras name and are dropped).
pub fn keras_by_name(
    t: &torch::Config,
    clip: Option<&GradClip>,
) -> Result<keras::Config, NoEquivalent> {
    use keras::Kind as K;
    use torch::Kind as T;
    let kind = match t.kind {
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
        T::RAdam { .. } => return Err(none_k(&[62], "Keras has no RAdam")),
    };
    let (mut global_clipnorm, mut clipvalue) = (None, None);
    match clip {
        None => {}
        Some(GradClip::Norm {
            max_norm,
            norm_type,
        }) => {
            if (norm_type - 2.0).abs() > 0.0 {
                return Err(none_k(
                    &[11],
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
    Ok(keras::Config {
        kind,
        learning_rate: LearningRate::Constant(t.lr),
        weight_decay: (t.weight_decay.abs() > 0.0).then_some(t.weight_decay),
        clipnorm: None,
        global_clipnorm,
        clipvalue,
        use_ema: false,
        ema_momentum: 0.99,
        ema_overwrite_frequency: None,
        loss_scale_factor: None,
    })
}

fn differs(a: f64, b: f64) -> bool {
    (a - b).abs() > 0.0
}

/// `torch.optim.X(params, lr=..., <arguments that differ from torch's defaults>)`.
pub fn render_torch(c: &torch::Config) -> String {
    use torch::Kind as T;
    let d = torch::Config::default_for(c.kind.class_name()).ok();
    let dk = d.as_ref().map(|d| &d.kind);
    let mut args = vec![format!("lr={}", py(c.lr))];
    let mut num = |name: &str, v: f64, dv: Option<f64>| {
        if dv.is_none_or(|dv| differs(v, dv)) {
            args.push(format!("{name}={}", py(v)));
        }
    };
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
    let mut flags: Vec<String> = Vec::new();
    let mut flag = |name: &str, v: bool| {
        if v {
            flags.push(format!("{name}=True"));
        }
    };
    match c.kind {
        T::Sgd {
            momentum,
            dampening,
            nesterov,
        } => {
            num("momentum", momentum, Some(0.0));
            num("dampening", dampening, Some(0.0));
            flag("nesterov", nesterov);
        }
        T::Adam {
            eps,
            amsgrad,
            decoupled_weight_decay,
            ..
        } => {
            num("eps", eps, Some(1e-8));
            flag("amsgrad", amsgrad);
            flag("decoupled_weight_decay", decoupled_weight_decay);
        }
        T::AdamW { eps, amsgrad, .. } => {
            num("eps", eps, Some(1e-8));
            flag("amsgrad", amsgrad);
        }
        T::RmsProp {
            alpha,
            eps,
            momentum,
            centered,
        } => {
            num("alpha", alpha, Some(0.99));
            num("eps", eps, Some(1e-8));
            num("momentum", momentum, Some(0.0));
            flag("centered", centered);
        }
        T::Adagrad {
            lr_decay,
            initial_accumulator_value,
            eps,
        } => {
            num("lr_decay", lr_decay, Some(0.0));
            num(
                "initial_accumulator_value",
                initial_accumulator_value,
                Some(0.0),
            );
            num("eps", eps, Some(1e-10));
        }
        T::Adadelta { rho, eps } => {
            num("rho", rho, Some(0.9));
            num("eps", eps, Some(1e-6));
        }
        T::Adamax { eps, .. } => num("eps", eps, Some(1e-8)),
        T::NAdam {
            eps,
            momentum_decay,
            decoupled_weight_decay,
            ..
        } => {
            num("eps", eps, Some(1e-8));
            num("momentum_decay", momentum_decay, Some(4e-3));
            flag("decoupled_weight_decay", decoupled_weight_decay);
        }
        T::RAdam {
            eps,
            decoupled_weight_decay,
            ..
        } => {
            num("eps", eps, Some(1e-8));
            flag("decoupled_weight_decay", decoupled_weight_decay);
        }
    }
    num(
        "weight_decay",
        c.weight_decay,
        d.as_ref().map(|d| d.weight_decay),
    );
    if let Some(b) = betas_of(Some(&c.kind))
        && betas_of(dk).is_none_or(|db| differs(b.0, db.0) || differs(b.1, db.1))
    {
        args.insert(1, format!("betas=({}, {})", py(b.0), py(b.1)));
    }
    flag("maximize", c.maximize);
    args.extend(flags);
    format!(
        "torch.optim.{}(params, {})",
        c.kind.class_name(),
        args.join(", ")
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
    let mut args = vec![match &c.learning_rate {
        LearningRate::Constant(x) => format!("learning_rate={}", py(*x)),
        LearningRate::Schedule(Schedule::InverseTimeDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        }) => format!(
            "learning_rate=keras.optimizers.schedules.InverseTimeDecay({}, decay_steps={}, decay_rate={}{})",
            py(*initial_learning_rate),
            py(*decay_steps),
            py(*decay_rate),
            if *staircase { ", staircase=True" } else { "" }
        ),
        LearningRate::Schedule(s) => format!("learning_rate={s:?}"),
    }];
    let mut num = |name: &str, v: f64, dv: f64| {
        if differs(v, dv) {
            args.push(format!("{name}={}", py(v)));
        }
    };
    let mut flags = Vec::new();
    match c.kind {
        K::Sgd { momentum, nesterov } => {
            num("momentum", momentum, 0.0);
            if nesterov {
                flags.push("nesterov=True".to_string());
            }
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
            num("beta_1", beta_1, 0.9);
            num("beta_2", beta_2, 0.999);
            num("epsilon", epsilon, 1e-7);
            if amsgrad {
                flags.push("amsgrad=True".to_string());
            }
        }
        K::RmsProp {
            rho,
            momentum,
            epsilon,
            centered,
        } => {
            num("rho", rho, 0.9);
            num("momentum", momentum, 0.0);
            num("epsilon", epsilon, 1e-7);
            if centered {
                flags.push("centered=True".to_string());
            }
        }
        K::Adagrad {
            initial_accumulator_value,
            epsilon,
        } => {
            num("initial_accumulator_value", initial_accumulator_value, 0.1);
            num("epsilon", epsilon, 1e-7);
        }
        K::Adadelta { rho, epsilon } => {
            num("rho", rho, 0.95);
            num("epsilon", epsilon, 1e-7);
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
            num("beta_1", beta_1, 0.9);
            num("beta_2", beta_2, 0.999);
            num("epsilon", epsilon, 1e-7);
        }
        K::Lion { beta_1, beta_2 } => {
            num("beta_1", beta_1, 0.9);
            num("beta_2", beta_2, 0.99);
        }
    }
    let default_wd = if matches!(c.kind, K::AdamW { .. }) {
        0.004
    } else {
        0.0
    };
    num("weight_decay", c.weight_decay.unwrap_or(0.0), default_wd);
    for (name, v) in [
        ("clipnorm", c.clipnorm),
        ("global_clipnorm", c.global_clipnorm),
        ("clipvalue", c.clipvalue),
    ] {
        if let Some(v) = v {
            args.push(format!("{name}={}", py(v)));
        }
    }
    args.extend(flags);
    format!(
        "keras.optimizers.{}({})",
        c.kind.class_name(),
        args.join(", ")
    )
}
