//! Losses with each framework's exact semantics, their gradients, and Keras weight regularizers.
//!
//! Every loss is computed in two stages, as both frameworks do: unreduced values `l` (Keras:
//! one per sample after its `mean(axis=-1)`/class sum; torch: one per element or per sample),
//! then a reduction with optional weights. [`compute`] returns the reduced value, the
//! unreduced values and the gradient of the reduced value w.r.t. the prediction (or w.r.t. the
//! logits when the Keras TensorFlow-backend shortcut applies).
//!
//! Keras 3 (`keras/src/losses/losses.py`, `keras/src/losses/loss.py`, backend `nn.py`):
//! - categorical crossentropy: `y ← y(1−α) + α/C`; probabilities are renormalized
//!   `p ← p/Σp`, clipped to `[ε, 1−ε]` (ε = 1e-7, gradient zero outside), `l = −Σ y·log p`
//!   (`keras/src/backend/tensorflow/nn.py::categorical_crossentropy`); from logits
//!   `l = −Σ y·log_softmax(z)`;
//! - sparse categorical crossentropy: TF backend clips `p` (no renormalization) and scores
//!   `log p` with `sparse_softmax_cross_entropy_with_logits`, i.e. `l = −log p_y + log Σ p`;
//!   torch/JAX backends renormalize, clip and take `−log p_y`; `ignore_class` masks entries;
//! - binary crossentropy: `y ← y(1−α) + α/2`, `p` clipped, `−[y log p + (1−y) log(1−p)]`,
//!   from logits `max(z,0) − z·y + log(1+e^{−|z|})`, then the mean over the last axis;
//! - the TF-backend shortcut (catalogue `cce-probability-clipping`): when the prediction came
//!   from a Keras softmax/sigmoid, TF scores its logits instead (`_get_logits`): pass the logits
//!   ([`crate::Tape::output_logits`]) to [`compute`] with `backend: TensorFlow`;
//! - MSE / MAE / Huber (`error = p − y`; `½e²` if `|e| ≤ δ` else `δ|e| − ½δ²`) / KL divergence
//!   (`Σ y·log(y/p)` with both clipped to `[ε, 1]`), each the mean over the last axis;
//! - reductions (`reduce_weighted_values`): values times sample weights, then
//!   `sum_over_batch_size` = `Σ w·l / numel(l)` (not `Σw`, catalogue `loss-reduction-weights`),
//!   `sum`, `none`, `mean_with_sample_weight` = `Σ w·l / Σ w`; masked entries (ignore_class) are
//!   dropped and the divisor becomes the number of valid entries.
//!
//! PyTorch 2 (`torch/nn/modules/loss.py`, `aten/src/ATen/native/LossNLL.cpp`, `Loss.cpp`):
//! - CrossEntropyLoss on logits with class dim 1: index targets
//!   `l_n = (1−α)·w_y(−log p_y) + (α/C)·Σ_c w_c(−log p_c)`, `mean` divides by `Σ_n w_{y_n}` over
//!   non-ignored entries; probability targets `l_n = −Σ_c w_c y'_c log p_c`, `mean` divides by N;
//! - NLLLoss `l_n = −w_y·x_{n,y}`, weighted mean as above;
//! - BCELoss `−w[y·max(log p, −100) + (1−y)·max(log(1−p), −100)]` with torch's backward
//!   `w(p − y)/max(p(1−p), 1e-12)`; BCEWithLogitsLoss
//!   `−w[pw·y·log σ(z) + (1−y)·log(1−σ(z))]`;
//! - MSE, L1, Huber(δ) (`½e²` if `|e| < δ` else `δ(|e| − ½δ)`), SmoothL1(β) (`½e²/β` if
//!   `|e| < β` else `|e| − ½β`), KLDiv(input = log q) `t(log t − x)` or with `log_target`
//!   `eᵗ(t − x)`;
//! - reductions `mean` (over elements), `sum`, `none`, `batchmean` (KLDiv: sum / N); sample
//!   weights follow the usual idiom `(loss(reduction='none')·w).sum() / w.sum()`.
//!
//! With reduction `none`, `value` is the sum of the unreduced values and the gradient is the
//! gradient of that sum.

use std::collections::BTreeMap;

use model_ir::{KerasLoss, LossError, LossSpec, TorchLoss, TypedLoss};
use ndarray::{ArrayD, Axis, IxDyn, Zip};

use crate::backward::OutputGrad;
use crate::error::EngineError;
use crate::float::{Float, c};
use crate::ops::activation::{log_softmax, softmax};
use crate::ops::util::{norm_axis, sigmoid, softplus};
use crate::params::ParamStore;

/// Keras's fuzz factor `backend.epsilon()`.
pub const KERAS_EPSILON: f64 = 1e-7;

/// The Keras backend a model trains with; losses differ by backend.
pub use model_ir::KerasBackend;
/// Loss reductions, as the typed loss specs carry them.
pub use model_ir::{KerasReduction, TorchReduction};

/// A loss with one framework's exact semantics.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    KerasCategoricalCrossentropy {
        from_logits: bool,
        label_smoothing: f64,
        axis: i64,
        backend: KerasBackend,
        reduction: KerasReduction,
    },
    KerasSparseCategoricalCrossentropy {
        from_logits: bool,
        ignore_class: Option<i64>,
        backend: KerasBackend,
        reduction: KerasReduction,
    },
    KerasBinaryCrossentropy {
        from_logits: bool,
        label_smoothing: f64,
        backend: KerasBackend,
        reduction: KerasReduction,
    },
    KerasMeanSquaredError {
        reduction: KerasReduction,
    },
    KerasMeanAbsoluteError {
        reduction: KerasReduction,
    },
    KerasHuber {
        delta: f64,
        reduction: KerasReduction,
    },
    KerasKlDivergence {
        reduction: KerasReduction,
    },
    /// Input: logits `(N, C, …)` or `(C)`; target: class indices `(N, …)` or probabilities of the
    /// input's shape.
    TorchCrossEntropy {
        weight: Option<Vec<f64>>,
        ignore_index: i64,
        label_smoothing: f64,
        reduction: TorchReduction,
    },
    /// Input: log-probabilities `(N, C, …)`; target: class indices.
    TorchNll {
        weight: Option<Vec<f64>>,
        ignore_index: i64,
        reduction: TorchReduction,
    },
    TorchBce {
        weight: Option<Vec<f64>>,
        reduction: TorchReduction,
    },
    TorchBceWithLogits {
        weight: Option<Vec<f64>>,
        pos_weight: Option<Vec<f64>>,
        reduction: TorchReduction,
    },
    TorchMse {
        reduction: TorchReduction,
    },
    TorchL1 {
        reduction: TorchReduction,
    },
    TorchHuber {
        delta: f64,
        reduction: TorchReduction,
    },
    TorchSmoothL1 {
        beta: f64,
        reduction: TorchReduction,
    },
    /// Input: log-probabilities; target: probabilities (or log-probabilities with `log_target`).
    TorchKlDiv {
        log_target: bool,
        reduction: TorchReduction,
    },
}

impl Loss {
    /// The loss a model was compiled/trained with, from its typed spec in the IR (parsed by
    /// the importer from the Keras `compile_config` or torch `train.json`, every default filled
    /// in), with `backend` for a Keras loss. A loss the importer could not type (an unknown
    /// loss or an unsupported option) is an error here.
    pub fn from_spec(spec: &LossSpec, backend: KerasBackend) -> Result<Loss, EngineError> {
        let err = |e: &LossError| EngineError::Loss {
            loss: "spec",
            message: e.to_string(),
        };
        match &spec.typed {
            TypedLoss::Keras(Ok(k)) => Ok(Loss::keras(k, backend)),
            TypedLoss::Torch(Ok(t)) => Ok(Loss::torch(t)),
            TypedLoss::Keras(Err(e)) | TypedLoss::Torch(Err(e)) => Err(err(e)),
        }
    }

    /// A Keras loss run on `backend`.
    pub fn keras(loss: &KerasLoss, backend: KerasBackend) -> Loss {
        match *loss {
            KerasLoss::CategoricalCrossentropy {
                from_logits,
                label_smoothing,
                axis,
                reduction,
            } => Loss::KerasCategoricalCrossentropy {
                from_logits,
                label_smoothing,
                axis,
                backend,
                reduction,
            },
            KerasLoss::SparseCategoricalCrossentropy {
                from_logits,
                ignore_class,
                reduction,
            } => Loss::KerasSparseCategoricalCrossentropy {
                from_logits,
                ignore_class,
                backend,
                reduction,
            },
            KerasLoss::BinaryCrossentropy {
                from_logits,
                label_smoothing,
                reduction,
            } => Loss::KerasBinaryCrossentropy {
                from_logits,
                label_smoothing,
                backend,
                reduction,
            },
            KerasLoss::MeanSquaredError { reduction } => Loss::KerasMeanSquaredError { reduction },
            KerasLoss::MeanAbsoluteError { reduction } => {
                Loss::KerasMeanAbsoluteError { reduction }
            }
            KerasLoss::Huber { delta, reduction } => Loss::KerasHuber { delta, reduction },
            KerasLoss::KlDivergence { reduction } => Loss::KerasKlDivergence { reduction },
        }
    }

    /// A torch loss.
    pub fn torch(loss: &TorchLoss) -> Loss {
        match loss.clone() {
            TorchLoss::CrossEntropy {
                weight,
                ignore_index,
                label_smoothing,
                reduction,
            } => Loss::TorchCrossEntropy {
                weight,
                ignore_index,
                label_smoothing,
                reduction,
            },
            TorchLoss::Nll {
                weight,
                ignore_index,
                reduction,
            } => Loss::TorchNll {
                weight,
                ignore_index,
                reduction,
            },
            TorchLoss::Bce { weight, reduction } => Loss::TorchBce { weight, reduction },
            TorchLoss::BceWithLogits {
                weight,
                pos_weight,
                reduction,
            } => Loss::TorchBceWithLogits {
                weight,
                pos_weight,
                reduction,
            },
            TorchLoss::Mse { reduction } => Loss::TorchMse { reduction },
            TorchLoss::L1 { reduction } => Loss::TorchL1 { reduction },
            TorchLoss::Huber { delta, reduction } => Loss::TorchHuber { delta, reduction },
            TorchLoss::SmoothL1 { beta, reduction } => Loss::TorchSmoothL1 { beta, reduction },
            TorchLoss::KlDiv {
                log_target,
                reduction,
            } => Loss::TorchKlDiv {
                log_target,
                reduction,
            },
        }
    }

    /// A short name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::KerasCategoricalCrossentropy { .. } => "keras categorical_crossentropy",
            Loss::KerasSparseCategoricalCrossentropy { .. } => {
                "keras sparse_categorical_crossentropy"
            }
            Loss::KerasBinaryCrossentropy { .. } => "keras binary_crossentropy",
            Loss::KerasMeanSquaredError { .. } => "keras mean_squared_error",
            Loss::KerasMeanAbsoluteError { .. } => "keras mean_absolute_error",
            Loss::KerasHuber { .. } => "keras huber",
            Loss::KerasKlDivergence { .. } => "keras kl_divergence",
            Loss::TorchCrossEntropy { .. } => "torch CrossEntropyLoss",
            Loss::TorchNll { .. } => "torch NLLLoss",
            Loss::TorchBce { .. } => "torch BCELoss",
            Loss::TorchBceWithLogits { .. } => "torch BCEWithLogitsLoss",
            Loss::TorchMse { .. } => "torch MSELoss",
            Loss::TorchL1 { .. } => "torch L1Loss",
            Loss::TorchHuber { .. } => "torch HuberLoss",
            Loss::TorchSmoothL1 { .. } => "torch SmoothL1Loss",
            Loss::TorchKlDiv { .. } => "torch KLDivLoss",
        }
    }

    /// Whether the TensorFlow-backend logits shortcut applies to this loss.
    pub fn uses_logits_shortcut(&self) -> bool {
        matches!(
            self,
            Loss::KerasCategoricalCrossentropy {
                backend: KerasBackend::TensorFlow,
                ..
            } | Loss::KerasSparseCategoricalCrossentropy {
                backend: KerasBackend::TensorFlow,
                ..
            } | Loss::KerasBinaryCrossentropy {
                backend: KerasBackend::TensorFlow,
                ..
            }
        )
    }
}

/// The value of a loss and its gradient.
#[derive(Debug, Clone)]
pub struct LossOutput<F> {
    /// The reduced loss (the sum of `per_sample` for reduction `none`).
    pub value: F,
    /// Unreduced values, before weighting.
    pub per_sample: ArrayD<F>,
    /// `∂value/∂prediction`, or `∂value/∂logits` when the logits shortcut was taken.
    pub grad: OutputGrad<F>,
}

/// Unreduced values and the block-diagonal Jacobian: `g` has the prediction's shape and holds
/// `∂l_n/∂pred` for the entries of each `l_n`; `axis` is the prediction axis reduced away
/// (`None` when `l` is element-wise).
struct Raw<F> {
    per: ArrayD<F>,
    g: ArrayD<F>,
    axis: Option<usize>,
    /// Entries to drop from the reduction (ignore_class / ignore_index).
    valid: Option<ArrayD<F>>,
    /// torch weighted-mean divisor (Σ w_{y_n}) replacing the element count.
    divisor: Option<F>,
}

/// Computes `loss(pred, target)`.
///
/// `sample_weight`: per-sample weights (Keras `sample_weight`/`class_weight`, or the torch
/// weighted-mean idiom), broadcast to the unreduced values. `logits`: for the Keras
/// TensorFlow-backend shortcut, the input of the softmax/sigmoid that produced `pred`; ignored by
/// other losses and backends.
pub fn compute<F: Float>(
    loss: &Loss,
    pred: &ArrayD<F>,
    target: &ArrayD<F>,
    sample_weight: Option<&ArrayD<F>>,
    logits: Option<&ArrayD<F>>,
) -> Result<LossOutput<F>, EngineError> {
    let err = |message: String| EngineError::Loss {
        loss: loss.name(),
        message,
    };
    let shortcut = if loss.uses_logits_shortcut() {
        logits
    } else {
        None
    };
    if let Some(z) = shortcut
        && z.shape() != pred.shape()
    {
        return Err(err(format!(
            "logits {:?} differ from the prediction {:?}",
            z.shape(),
            pred.shape()
        )));
    }
    let (raw, on_logits) = match loss {
        Loss::KerasCategoricalCrossentropy { .. }
        | Loss::KerasSparseCategoricalCrossentropy { .. }
        | Loss::KerasBinaryCrossentropy { .. }
        | Loss::KerasMeanSquaredError { .. }
        | Loss::KerasMeanAbsoluteError { .. }
        | Loss::KerasHuber { .. }
        | Loss::KerasKlDivergence { .. } => keras_raw(loss, pred, target, shortcut, &err)?,
        Loss::TorchCrossEntropy { .. }
        | Loss::TorchNll { .. }
        | Loss::TorchBce { .. }
        | Loss::TorchBceWithLogits { .. }
        | Loss::TorchMse { .. }
        | Loss::TorchL1 { .. }
        | Loss::TorchHuber { .. }
        | Loss::TorchSmoothL1 { .. }
        | Loss::TorchKlDiv { .. } => torch_raw(loss, pred, target, &err)?,
    };
    let w = match sample_weight {
        Some(sw) => Some(fit_weights(sw, raw.per.shape()).map_err(err)?),
        None => None,
    };
    let (value, u) = reduce(loss, &raw, w.as_ref(), pred.shape()).map_err(err)?;
    let mut grad = raw.g.clone();
    let ub = match raw.axis {
        Some(ax) => u.insert_axis(Axis(ax)),
        None => u,
    };
    grad *= &ub;
    Ok(LossOutput {
        value,
        per_sample: raw.per,
        grad: if on_logits {
            OutputGrad::Logits(grad)
        } else {
            OutputGrad::Value(grad)
        },
    })
}

/// The Keras losses' unreduced values and Jacobian, and whether the gradient is taken on the
/// logits (`shortcut`: the TensorFlow backend's logits shortcut).
fn keras_raw<F: Float>(
    loss: &Loss,
    pred: &ArrayD<F>,
    target: &ArrayD<F>,
    shortcut: Option<&ArrayD<F>>,
    err: &dyn Fn(String) -> EngineError,
) -> Result<(Raw<F>, bool), EngineError> {
    Ok(match loss {
        Loss::KerasCategoricalCrossentropy {
            from_logits,
            label_smoothing,
            axis,
            ..
        } => {
            same_shape(pred, target).map_err(err)?;
            let ax = norm_axis(*axis, pred.ndim()).map_err(err)?;
            let y = smooth(target, *label_smoothing, pred.shape()[ax] as f64);
            match shortcut {
                Some(z) => (cce_logits(z, &y, ax), true),
                None if *from_logits => (cce_logits(pred, &y, ax), false),
                None => (cce_probs(pred, &y, ax), false),
            }
        }
        Loss::KerasSparseCategoricalCrossentropy {
            from_logits,
            ignore_class,
            backend,
            ..
        } => {
            let ids = sparse_ids(pred, target).map_err(err)?;
            let valid =
                ignore_class.map(|ic| ids.mapv(|v| if v == ic { F::zero() } else { F::one() }));
            let ids = ids.mapv(|v| if Some(v) == *ignore_class { 0 } else { v });
            let c_ = pred.shape()[pred.ndim() - 1] as i64;
            if ids.iter().any(|&i| i < 0 || i >= c_) {
                return Err(err(format!("a class index is outside [0, {c_})")));
            }
            let mut raw = match shortcut {
                Some(z) => scce_logits(z, &ids),
                None if *from_logits => scce_logits(pred, &ids),
                None if *backend == KerasBackend::TensorFlow => scce_probs_tf(pred, &ids),
                None => {
                    let onehot = one_hot(&ids, pred.shape());
                    cce_probs(pred, &onehot, pred.ndim() - 1)
                }
            };
            if let Some(v) = &valid {
                mask_raw(&mut raw, v);
            }
            raw.valid = valid;
            (raw, shortcut.is_some())
        }
        Loss::KerasBinaryCrossentropy {
            from_logits,
            label_smoothing,
            ..
        } => {
            same_shape(pred, target).map_err(err)?;
            let y = smooth(target, *label_smoothing, 2.0);
            let raw = match shortcut {
                Some(z) => bce_logits(z, &y, None),
                None if *from_logits => bce_logits(pred, &y, None),
                None => keras_bce_probs(pred, &y),
            };
            (mean_last(raw), shortcut.is_some())
        }
        Loss::KerasMeanSquaredError { .. } => {
            same_shape(pred, target).map_err(err)?;
            (
                mean_last(elementwise(pred, target, |p, y| {
                    ((p - y) * (p - y), c::<F>(2.0) * (p - y))
                })),
                false,
            )
        }
        Loss::KerasMeanAbsoluteError { .. } => {
            same_shape(pred, target).map_err(err)?;
            (
                mean_last(elementwise(pred, target, |p, y| {
                    ((p - y).abs(), sign(p - y))
                })),
                false,
            )
        }
        Loss::KerasHuber { delta, .. } => {
            same_shape(pred, target).map_err(err)?;
            let d: F = c(*delta);
            let half: F = c(0.5);
            (
                mean_last(elementwise(pred, target, |p, y| {
                    let e = p - y;
                    if e.abs() <= d {
                        (half * e * e, e)
                    } else {
                        (d * e.abs() - half * d * d, d * sign(e))
                    }
                })),
                false,
            )
        }
        Loss::KerasKlDivergence { .. } => {
            same_shape(pred, target).map_err(err)?;
            let eps: F = c(KERAS_EPSILON);
            (
                sum_last(elementwise(pred, target, |p, y| {
                    let yc = y.max(eps).min(F::one());
                    let pc = p.max(eps).min(F::one());
                    let pass = p >= eps && p <= F::one();
                    (yc * (yc / pc).ln(), if pass { -yc / pc } else { F::zero() })
                })),
                false,
            )
        }
        _ => unreachable!("{} is not a Keras loss", loss.name()),
    })
}

/// The torch losses' unreduced values and Jacobian (never on logits).
fn torch_raw<F: Float>(
    loss: &Loss,
    pred: &ArrayD<F>,
    target: &ArrayD<F>,
    err: &dyn Fn(String) -> EngineError,
) -> Result<(Raw<F>, bool), EngineError> {
    Ok(match loss {
        Loss::TorchCrossEntropy {
            weight,
            ignore_index,
            label_smoothing,
            ..
        } => (
            torch_ce(
                pred,
                target,
                weight.as_deref(),
                *ignore_index,
                *label_smoothing,
                true,
            )
            .map_err(err)?,
            false,
        ),
        Loss::TorchNll {
            weight,
            ignore_index,
            ..
        } => (
            torch_ce(pred, target, weight.as_deref(), *ignore_index, 0.0, false).map_err(err)?,
            false,
        ),
        Loss::TorchBce { weight, .. } => {
            same_shape(pred, target).map_err(err)?;
            let mut raw = elementwise(pred, target, |p, y| {
                let lp = p.ln().max(c(-100.0));
                let l1p = (F::one() - p).ln().max(c(-100.0));
                let l = -(y * lp + (F::one() - y) * l1p);
                let g = (p - y) / ((F::one() - p) * p).max(c(1e-12));
                (l, g)
            });
            if let Some(w) = weight {
                scale_by(&mut raw, w).map_err(err)?;
            }
            (raw, false)
        }
        Loss::TorchBceWithLogits {
            weight, pos_weight, ..
        } => {
            same_shape(pred, target).map_err(err)?;
            let pw = match pos_weight {
                Some(p) => Some(last_axis_vec(p, pred.shape()).map_err(err)?),
                None => None,
            };
            let mut raw = bce_logits(pred, target, pw.as_ref());
            if let Some(w) = weight {
                scale_by(&mut raw, w).map_err(err)?;
            }
            (raw, false)
        }
        Loss::TorchMse { .. } => {
            same_shape(pred, target).map_err(err)?;
            (
                elementwise(pred, target, |p, y| {
                    ((p - y) * (p - y), c::<F>(2.0) * (p - y))
                }),
                false,
            )
        }
        Loss::TorchL1 { .. } => {
            same_shape(pred, target).map_err(err)?;
            (
                elementwise(pred, target, |p, y| ((p - y).abs(), sign(p - y))),
                false,
            )
        }
        Loss::TorchHuber { delta, .. } => {
            same_shape(pred, target).map_err(err)?;
            let d: F = c(*delta);
            let half: F = c(0.5);
            (
                elementwise(pred, target, |p, y| {
                    let e = p - y;
                    if e.abs() < d {
                        (half * e * e, e)
                    } else {
                        (d * (e.abs() - half * d), d * sign(e))
                    }
                }),
                false,
            )
        }
        Loss::TorchSmoothL1 { beta, .. } => {
            same_shape(pred, target).map_err(err)?;
            let b: F = c(*beta);
            let half: F = c(0.5);
            (
                elementwise(pred, target, |p, y| {
                    let e = p - y;
                    if *beta > 0.0 && e.abs() < b {
                        (half * e * e / b, e / b)
                    } else {
                        (e.abs() - half * b, sign(e))
                    }
                }),
                false,
            )
        }
        Loss::TorchKlDiv { log_target, .. } => {
            same_shape(pred, target).map_err(err)?;
            let lt = *log_target;
            (
                elementwise(pred, target, |x, t| {
                    if lt {
                        (t.exp() * (t - x), -t.exp())
                    } else if t > F::zero() {
                        (t * (t.ln() - x), -t)
                    } else {
                        (F::zero(), -t)
                    }
                }),
                false,
            )
        }
        _ => unreachable!("{} is not a torch loss", loss.name()),
    })
}

/// Reduced value and `∂value/∂per`.
fn reduce<F: Float>(
    loss: &Loss,
    raw: &Raw<F>,
    w: Option<&ArrayD<F>>,
    pred_shape: &[usize],
) -> Result<(F, ArrayD<F>), String> {
    let n = raw.per.len();
    let ones = ArrayD::from_elem(raw.per.raw_dim(), F::one());
    let mut wt = w.cloned().unwrap_or_else(|| ones.clone());
    if let Some(v) = &raw.valid {
        wt *= v;
    }
    let weighted_sum = (&raw.per * &wt).sum();
    Ok(match keras_reduction(loss) {
        Some(r) => match r {
            KerasReduction::Sum | KerasReduction::None => (weighted_sum, wt),
            KerasReduction::SumOverBatchSize => {
                // Masked entries: divide by the valid count (Keras apply_mask's total/valid).
                let count: F = match &raw.valid {
                    Some(v) => v.sum(),
                    None => c(n as f64),
                };
                if count == F::zero() {
                    (F::zero(), ArrayD::zeros(raw.per.raw_dim()))
                } else {
                    (weighted_sum / count, wt.mapv(|v| v / count))
                }
            }
            KerasReduction::MeanWithSampleWeight => {
                let div: F = match w {
                    Some(_) => wt.sum(),
                    None => match &raw.valid {
                        Some(v) => v.sum(),
                        None => c(n as f64),
                    },
                };
                if div == F::zero() {
                    (F::zero(), ArrayD::zeros(raw.per.raw_dim()))
                } else {
                    (weighted_sum / div, wt.mapv(|v| v / div))
                }
            }
        },
        None => match torch_reduction(loss) {
            TorchReduction::Sum | TorchReduction::None => (weighted_sum, wt),
            TorchReduction::BatchMean => {
                if !matches!(loss, Loss::TorchKlDiv { .. }) {
                    return Err("reduction 'batchmean' exists only for KLDivLoss".into());
                }
                let b: F = c(pred_shape.first().copied().unwrap_or(1).max(1) as f64);
                (weighted_sum / b, wt.mapv(|v| v / b))
            }
            TorchReduction::Mean => {
                let div: F = match (w, raw.divisor) {
                    (Some(_), _) => wt.sum(),
                    (None, Some(d)) => d,
                    (None, None) => match &raw.valid {
                        Some(v) => v.sum(),
                        None => c(n as f64),
                    },
                };
                // torch returns NaN for an all-ignored batch (0/0).
                (weighted_sum / div, wt.mapv(|v| v / div))
            }
        },
    })
}

fn keras_reduction(loss: &Loss) -> Option<KerasReduction> {
    match loss {
        Loss::KerasCategoricalCrossentropy { reduction, .. }
        | Loss::KerasSparseCategoricalCrossentropy { reduction, .. }
        | Loss::KerasBinaryCrossentropy { reduction, .. }
        | Loss::KerasMeanSquaredError { reduction }
        | Loss::KerasMeanAbsoluteError { reduction }
        | Loss::KerasHuber { reduction, .. }
        | Loss::KerasKlDivergence { reduction } => Some(*reduction),
        _ => None,
    }
}

fn torch_reduction(loss: &Loss) -> TorchReduction {
    match loss {
        Loss::TorchCrossEntropy { reduction, .. }
        | Loss::TorchNll { reduction, .. }
        | Loss::TorchBce { reduction, .. }
        | Loss::TorchBceWithLogits { reduction, .. }
        | Loss::TorchMse { reduction }
        | Loss::TorchL1 { reduction }
        | Loss::TorchHuber { reduction, .. }
        | Loss::TorchSmoothL1 { reduction, .. }
        | Loss::TorchKlDiv { reduction, .. } => *reduction,
        _ => TorchReduction::Mean,
    }
}

fn same_shape<F>(a: &ArrayD<F>, b: &ArrayD<F>) -> Result<(), String> {
    if a.shape() != b.shape() {
        return Err(format!(
            "prediction {:?} and target {:?} differ in shape",
            a.shape(),
            b.shape()
        ));
    }
    Ok(())
}

fn sign<F: Float>(x: F) -> F {
    if x > F::zero() {
        F::one()
    } else if x < F::zero() {
        -F::one()
    } else {
        F::zero()
    }
}

/// Label smoothing `y(1−α) + α/k`.
fn smooth<F: Float>(y: &ArrayD<F>, alpha: f64, k: f64) -> ArrayD<F> {
    if alpha == 0.0 {
        return y.clone();
    }
    let (a, b): (F, F) = (c(1.0 - alpha), c(alpha / k));
    y.mapv(|v| v * a + b)
}

/// Element-wise loss `(l, ∂l/∂p)`.
fn elementwise<F: Float>(p: &ArrayD<F>, y: &ArrayD<F>, f: impl Fn(F, F) -> (F, F)) -> Raw<F> {
    let mut per = ArrayD::zeros(p.raw_dim());
    let mut g = ArrayD::zeros(p.raw_dim());
    Zip::from(&mut per)
        .and(&mut g)
        .and(p)
        .and(y)
        .for_each(|l, d, &p, &y| {
            let (a, b) = f(p, y);
            *l = a;
            *d = b;
        });
    Raw {
        per,
        g,
        axis: None,
        valid: None,
        divisor: None,
    }
}

/// Keras's `mean(axis=-1)` over element-wise values.
fn mean_last<F: Float>(raw: Raw<F>) -> Raw<F> {
    let ax = raw.per.ndim() - 1;
    let k: F = c(raw.per.shape()[ax].max(1) as f64);
    Raw {
        per: raw.per.sum_axis(Axis(ax)).mapv(|v| v / k),
        g: raw.g.mapv(|v| v / k),
        axis: Some(ax),
        valid: None,
        divisor: None,
    }
}

/// `sum(axis=-1)` over element-wise values (Keras KL divergence).
fn sum_last<F: Float>(raw: Raw<F>) -> Raw<F> {
    let ax = raw.per.ndim() - 1;
    Raw {
        per: raw.per.sum_axis(Axis(ax)),
        g: raw.g,
        axis: Some(ax),
        valid: None,
        divisor: None,
    }
}

/// `l = −Σ y·log_softmax(z)`, `∂l/∂z = softmax(z)·Σy − y`.
fn cce_logits<F: Float>(z: &ArrayD<F>, y: &ArrayD<F>, ax: usize) -> Raw<F> {
    let lsm = log_softmax(z, ax);
    let p = softmax(z, ax);
    let per = (y * &lsm).sum_axis(Axis(ax)).mapv(|v| -v);
    let sy = y.sum_axis(Axis(ax)).insert_axis(Axis(ax));
    let g = &p * &sy - y;
    Raw {
        per,
        g,
        axis: Some(ax),
        valid: None,
        divisor: None,
    }
}

/// Keras probabilities: `q = p/Σp`, `qc = clip(q, ε, 1−ε)`, `l = −Σ y·log qc`.
fn cce_probs<F: Float>(p: &ArrayD<F>, y: &ArrayD<F>, ax: usize) -> Raw<F> {
    let eps: F = c(KERAS_EPSILON);
    let hi = F::one() - eps;
    let s = p.sum_axis(Axis(ax)).insert_axis(Axis(ax));
    let q = p / &s;
    let qc = q.mapv(|v| v.max(eps).min(hi));
    let per = (y * &qc.mapv(|v| v.ln())).sum_axis(Axis(ax)).mapv(|v| -v);
    // g_j = ∂l/∂q_j (zero where the clip is active), then through the renormalization.
    let mut gq = ArrayD::zeros(p.raw_dim());
    Zip::from(&mut gq)
        .and(&q)
        .and(&qc)
        .and(y)
        .for_each(|g, &q, &qc, &y| {
            *g = if q >= eps && q <= hi {
                -y / qc
            } else {
                F::zero()
            };
        });
    let dot = (&gq * &q).sum_axis(Axis(ax)).insert_axis(Axis(ax));
    let g = (gq - &dot) / &s;
    Raw {
        per,
        g,
        axis: Some(ax),
        valid: None,
        divisor: None,
    }
}

/// Class ids from a sparse target `(N, …)` or `(N, …, 1)`.
fn sparse_ids<F: Float>(pred: &ArrayD<F>, target: &ArrayD<F>) -> Result<ArrayD<i64>, String> {
    let want = &pred.shape()[..pred.ndim() - 1];
    let t = if target.ndim() == pred.ndim() && target.shape().last() == Some(&1) {
        target.index_axis(Axis(target.ndim() - 1), 0).to_owned()
    } else {
        target.clone()
    };
    if t.shape() != want {
        return Err(format!(
            "target {:?} does not fit the prediction {:?}",
            target.shape(),
            pred.shape()
        ));
    }
    Ok(t.mapv(|v| v.round().as_f64() as i64))
}

fn one_hot<F: Float>(ids: &ArrayD<i64>, shape: &[usize]) -> ArrayD<F> {
    let cl = shape[shape.len() - 1];
    let mut y = ArrayD::zeros(IxDyn(shape));
    if let Some(s) = y.as_slice_mut() {
        for (row, &i) in s.chunks_mut(cl).zip(ids.iter()) {
            row[i as usize] = F::one();
        }
    }
    y
}

/// `l = −log_softmax(z)_y`, `∂l/∂z = softmax(z) − onehot(y)`.
fn scce_logits<F: Float>(z: &ArrayD<F>, ids: &ArrayD<i64>) -> Raw<F> {
    let onehot = one_hot(ids, z.shape());
    cce_logits(z, &onehot, z.ndim() - 1)
}

/// TF backend: `pc = clip(p)`, `l = −log pc_y + log Σ pc` (softmax of `log pc`).
fn scce_probs_tf<F: Float>(p: &ArrayD<F>, ids: &ArrayD<i64>) -> Raw<F> {
    let eps: F = c(KERAS_EPSILON);
    let hi = F::one() - eps;
    let ax = p.ndim() - 1;
    let pc = p.mapv(|v| v.max(eps).min(hi));
    let s = pc.sum_axis(Axis(ax));
    let onehot: ArrayD<F> = one_hot(ids, p.shape());
    let py = (&pc * &onehot).sum_axis(Axis(ax));
    let per = Zip::from(&py)
        .and(&s)
        .map_collect(|&a, &b| -a.ln() + b.ln());
    let sb = s.insert_axis(Axis(ax));
    let pyb = py.insert_axis(Axis(ax));
    let mut g = ArrayD::zeros(p.raw_dim());
    Zip::from(&mut g)
        .and(p)
        .and(&onehot)
        .and_broadcast(&sb)
        .and_broadcast(&pyb)
        .for_each(|g, &pv, &oh, &s, &py| {
            let pass = pv >= eps && pv <= hi;
            *g = if pass {
                -oh / py + F::one() / s
            } else {
                F::zero()
            };
        });
    Raw {
        per,
        g,
        axis: Some(ax),
        valid: None,
        divisor: None,
    }
}

/// Zeroes masked entries of a raw loss (values and gradients).
fn mask_raw<F: Float>(raw: &mut Raw<F>, valid: &ArrayD<F>) {
    raw.per *= valid;
    let ax = raw.axis.unwrap_or(0);
    let vb = valid.clone().insert_axis(Axis(ax));
    raw.g *= &vb;
}

/// Keras probabilities BCE: `pc = clip(p)`, `−[y log pc + (1−y) log(1−pc)]`.
fn keras_bce_probs<F: Float>(p: &ArrayD<F>, y: &ArrayD<F>) -> Raw<F> {
    let eps: F = c(KERAS_EPSILON);
    let hi = F::one() - eps;
    elementwise(p, y, |p, y| {
        let pc = p.max(eps).min(hi);
        let l = -(y * pc.ln() + (F::one() - y) * (F::one() - pc).ln());
        let g = if p >= eps && p <= hi {
            -(y / pc - (F::one() - y) / (F::one() - pc))
        } else {
            F::zero()
        };
        (l, g)
    })
}

/// `−[pw·y·log σ(z) + (1−y)·log(1−σ(z))]`; `pw = 1` gives TF's
/// `max(z,0) − z·y + log(1+e^{−|z|})`.
fn bce_logits<F: Float>(z: &ArrayD<F>, y: &ArrayD<F>, pos_weight: Option<&ArrayD<F>>) -> Raw<F> {
    let ones;
    let pw = match pos_weight {
        Some(p) => p,
        None => {
            ones = ArrayD::from_elem(z.raw_dim(), F::one());
            &ones
        }
    };
    let mut per = ArrayD::zeros(z.raw_dim());
    let mut g = ArrayD::zeros(z.raw_dim());
    Zip::from(&mut per)
        .and(&mut g)
        .and(z)
        .and(y)
        .and_broadcast(pw)
        .for_each(|l, d, &z, &y, &pw| {
            // −log σ(z) = softplus(−z); −log(1 − σ(z)) = softplus(z).
            *l = pw * y * softplus(-z) + (F::one() - y) * softplus(z);
            *d = sigmoid(z) * (pw * y + F::one() - y) - pw * y;
        });
    Raw {
        per,
        g,
        axis: None,
        valid: None,
        divisor: None,
    }
}

/// A per-class vector broadcast along the last axis.
fn last_axis_vec<F: Float>(v: &[f64], shape: &[usize]) -> Result<ArrayD<F>, String> {
    let last = *shape.last().unwrap_or(&1);
    if v.len() != last && v.len() != 1 {
        return Err(format!("{} weights for a last axis of {last}", v.len()));
    }
    let a = ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.iter().map(|&x| c(x)).collect())
        .map_err(|e| e.to_string())?;
    Ok(a)
}

/// torch's element-wise `weight` (broadcast along the last axis).
fn scale_by<F: Float>(raw: &mut Raw<F>, w: &[f64]) -> Result<(), String> {
    let wv = last_axis_vec::<F>(w, raw.per.shape())?;
    raw.per *= &wv;
    raw.g *= &wv;
    Ok(())
}

/// torch CrossEntropyLoss (`logits = true`, input = logits) or NLLLoss (input = log-probs).
fn torch_ce<F: Float>(
    input: &ArrayD<F>,
    target: &ArrayD<F>,
    weight: Option<&[f64]>,
    ignore_index: i64,
    alpha: f64,
    logits: bool,
) -> Result<Raw<F>, String> {
    if input.ndim() == 0 {
        return Err("a scalar input".into());
    }
    let ax = if input.ndim() == 1 { 0 } else { 1 };
    let ncls = input.shape()[ax];
    let w: Vec<F> = match weight {
        Some(w) if w.len() == ncls => w.iter().map(|&v| c(v)).collect(),
        Some(w) => return Err(format!("{} class weights for {ncls} classes", w.len())),
        None => vec![F::one(); ncls],
    };
    let mut wshape = vec![1; input.ndim()];
    wshape[ax] = ncls;
    let wb = ArrayD::from_shape_vec(IxDyn(&wshape), w.clone()).map_err(|e| e.to_string())?;
    let (logp, p) = if logits {
        (log_softmax(input, ax), softmax(input, ax))
    } else {
        (input.clone(), input.mapv(|v| v.exp()))
    };
    if target.shape() == input.shape() {
        if !logits {
            return Err("probability targets need CrossEntropyLoss".into());
        }
        // Probability targets: l_n = −Σ_c w_c t'_c logp_c, mean over N.
        let t = smooth(target, alpha, ncls as f64);
        let wt = &t * &wb;
        let per = (&wt * &logp).sum_axis(Axis(ax)).mapv(|v| -v);
        let swt = wt.sum_axis(Axis(ax)).insert_axis(Axis(ax));
        let g = &p * &swt - &wt;
        return Ok(Raw {
            per,
            g,
            axis: Some(ax),
            valid: None,
            divisor: None,
        });
    }
    let mut want = input.shape().to_vec();
    want.remove(ax);
    if target.shape() != want.as_slice() {
        return Err(format!(
            "target {:?} does not fit the input {:?}",
            target.shape(),
            input.shape()
        ));
    }
    let ids = target.mapv(|v| v.round().as_f64() as i64);
    let valid = ids.mapv(|i| {
        if i == ignore_index {
            F::zero()
        } else {
            F::one()
        }
    });
    if ids
        .iter()
        .any(|&i| i != ignore_index && (i < 0 || i as usize >= ncls))
    {
        return Err(format!("a class index is outside [0, {ncls})"));
    }
    let safe = ids.mapv(|i| if i == ignore_index { 0 } else { i as usize });
    // One-hot along the class axis.
    let mut onehot = ArrayD::<F>::zeros(input.raw_dim());
    for (mut lane, &i) in onehot.lanes_mut(Axis(ax)).into_iter().zip(safe.iter()) {
        lane[i] = F::one();
    }
    let wy = safe.mapv(|i| w[i]);
    let wsum: F = w.iter().copied().sum();
    let nll = (&onehot * &logp).sum_axis(Axis(ax)).mapv(|v| -v) * &wy;
    let smooth_l = (&logp * &wb).sum_axis(Axis(ax)).mapv(|v| -v);
    let a1: F = c(1.0 - alpha);
    let a2: F = c(alpha / ncls as f64);
    let per = (nll.mapv(|v| v * a1) + smooth_l.mapv(|v| v * a2)) * &valid;
    // ∂/∂z_k: (1−α)·w_y(p_k − δ_yk) + (α/C)(p_k·Σw − w_k); for NLL: −w_y δ_yk.
    let wyb = wy.clone().insert_axis(Axis(ax));
    let g = if logits {
        let t1 = (&p - &onehot) * &wyb;
        let t2 = &p * wsum - &wb;
        (t1.mapv(|v| v * a1) + t2.mapv(|v| v * a2)) * &valid.clone().insert_axis(Axis(ax))
    } else {
        (&onehot * &wyb).mapv(|v| -v) * &valid.clone().insert_axis(Axis(ax))
    };
    let divisor = (&wy * &valid).sum();
    Ok(Raw {
        per,
        g,
        axis: Some(ax),
        valid: Some(valid),
        divisor: Some(divisor),
    })
}

/// Sample weights shaped like the unreduced values (Keras `squeeze_or_expand_to_same_rank`,
/// then broadcasting).
fn fit_weights<F: Float>(w: &ArrayD<F>, shape: &[usize]) -> Result<ArrayD<F>, String> {
    let mut w = w.clone();
    if w.ndim() == shape.len() + 1 && w.shape().last() == Some(&1) {
        w = w.index_axis(Axis(w.ndim() - 1), 0).to_owned();
    }
    while w.ndim() < shape.len() {
        let n = w.ndim();
        w = w.insert_axis(Axis(n));
    }
    match w.broadcast(IxDyn(shape)) {
        Some(b) => Ok(b.to_owned()),
        None => Err(format!(
            "sample weights {:?} do not fit the losses {shape:?}",
            w.shape()
        )),
    }
}

/// A Keras weight regularizer (`keras/src/regularizers/regularizers.py`): `l1·Σ|w| + l2·Σw²`,
/// added to the loss unscaled (catalogue `l2-regularizer-factor-two`: gradient `2·l2·w`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regularizer {
    pub l1: f64,
    pub l2: f64,
}

impl Regularizer {
    /// `L1(l1)`; Keras's default factor is 0.01.
    pub fn l1(l1: f64) -> Regularizer {
        Regularizer { l1, l2: 0.0 }
    }

    /// `L2(l2)`; Keras's default factor is 0.01.
    pub fn l2(l2: f64) -> Regularizer {
        Regularizer { l1: 0.0, l2 }
    }

    /// `L1L2(l1, l2)`; Keras's defaults are 0 and 0.
    pub fn l1_l2(l1: f64, l2: f64) -> Regularizer {
        Regularizer { l1, l2 }
    }

    /// The penalty and its gradient `l1·sign(w) + 2·l2·w`.
    pub fn penalty<F: Float>(&self, w: &ArrayD<F>) -> (F, ArrayD<F>) {
        let (l1, l2): (F, F) = (c(self.l1), c(self.l2));
        let mut v = F::zero();
        if self.l1 != 0.0 {
            v += l1 * w.iter().fold(F::zero(), |a, &x| a + x.abs());
        }
        if self.l2 != 0.0 {
            v += l2 * w.iter().fold(F::zero(), |a, &x| a + x * x);
        }
        let two: F = c(2.0);
        let g = w.mapv(|x| l1 * sign(x) + two * l2 * x);
        (v, g)
    }
}

/// The total penalty of `regularizers` (parameter name → regularizer) and its gradient per
/// parameter.
pub fn regularization<F: Float>(
    regularizers: &BTreeMap<String, Regularizer>,
    params: &ParamStore<F>,
) -> Result<(F, BTreeMap<String, ArrayD<F>>), EngineError> {
    let mut total = F::zero();
    let mut grads = BTreeMap::new();
    for (name, r) in regularizers {
        let w = params.get(name).ok_or_else(|| EngineError::Param {
            name: name.clone(),
            message: "has a regularizer but is not in the parameter store".into(),
        })?;
        let (v, g) = r.penalty(w);
        total += v;
        grads.insert(name.clone(), g);
    }
    Ok((total, grads))
}
