//! The naive translation a porter writes: same class name, values copied by name, the other
//! framework's defaults for the rest.

use super::*;

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
pub(super) fn torch_kind_by_name(k: &keras::Kind) -> Result<torch::Kind, NoEquivalent> {
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
pub(super) fn zero_torch_eps(mut kind: torch::Kind) -> torch::Kind {
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
pub(super) fn keras_kind_by_name(t: &torch::Kind) -> Result<keras::Kind, NoEquivalent> {
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
pub(super) fn zero_keras_eps(mut kind: keras::Kind) -> keras::Kind {
    if let Some(epsilon) = kind.epsilon_mut() {
        *epsilon = 0.0;
    }
    if let Some(epsilon_1) = kind.epsilon_1_mut() {
        *epsilon_1 = 0.0;
    }
    kind
}
