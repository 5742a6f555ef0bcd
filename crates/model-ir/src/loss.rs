//! Typed losses: each framework's loss classes with every argument resolved to its value or
//! that framework's default, parsed once from the serialization a bundle carries
//! (Keras `compile_config` loss, torch `train.json` loss), and the facts about a loss that
//! other crates need (its family, whether it takes logits, its reduction).
//!
//! The accepted classes and arguments are those the engine implements; anything else is a
//! [`LossError`] kept in the [`crate::LossSpec`] and reported when a loss is built from it.

use serde_json::{Map, Value};

use crate::conventions::Framework;

/// Keras loss reductions (`keras/src/losses/loss.py::standardize_reduction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KerasReduction {
    /// The default; also what `"mean"` and `"auto"` mean.
    SumOverBatchSize,
    Sum,
    /// `"none"`, or `reduction: null`.
    None,
    MeanWithSampleWeight,
}

/// PyTorch loss reductions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorchReduction {
    Mean,
    Sum,
    None,
    /// KLDivLoss only: sum divided by the batch size.
    BatchMean,
}

/// A Keras loss with its arguments (`keras/src/losses/losses.py`; defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub enum KerasLoss {
    /// `categorical_crossentropy` / `CategoricalCrossentropy`.
    CategoricalCrossentropy {
        from_logits: bool,
        label_smoothing: f64,
        axis: i64,
        reduction: KerasReduction,
    },
    /// `sparse_categorical_crossentropy` / `SparseCategoricalCrossentropy` (axis −1 only).
    SparseCategoricalCrossentropy {
        from_logits: bool,
        ignore_class: Option<i64>,
        reduction: KerasReduction,
    },
    /// `binary_crossentropy` / `BinaryCrossentropy` (axis −1 only).
    BinaryCrossentropy {
        from_logits: bool,
        label_smoothing: f64,
        reduction: KerasReduction,
    },
    /// `mean_squared_error` / `mse` / `MSE` / `MeanSquaredError`.
    MeanSquaredError { reduction: KerasReduction },
    /// `mean_absolute_error` / `mae` / `MAE` / `MeanAbsoluteError`.
    MeanAbsoluteError { reduction: KerasReduction },
    /// `huber` / `Huber`.
    Huber {
        delta: f64,
        reduction: KerasReduction,
    },
    /// `kl_divergence` / `kld` / `KLD` / `KLDivergence`.
    KlDivergence { reduction: KerasReduction },
}

/// A PyTorch loss module with its constructor arguments (`torch/nn/modules/loss.py`; defaults
/// filled in).
#[derive(Debug, Clone, PartialEq)]
pub enum TorchLoss {
    /// `CrossEntropyLoss`: input logits.
    CrossEntropy {
        weight: Option<Vec<f64>>,
        ignore_index: i64,
        label_smoothing: f64,
        reduction: TorchReduction,
    },
    /// `NLLLoss`: input log-probabilities.
    Nll {
        weight: Option<Vec<f64>>,
        ignore_index: i64,
        reduction: TorchReduction,
    },
    /// `BCELoss`: input probabilities.
    Bce {
        weight: Option<Vec<f64>>,
        reduction: TorchReduction,
    },
    /// `BCEWithLogitsLoss`: input logits.
    BceWithLogits {
        weight: Option<Vec<f64>>,
        pos_weight: Option<Vec<f64>>,
        reduction: TorchReduction,
    },
    /// `MSELoss`.
    Mse { reduction: TorchReduction },
    /// `L1Loss`.
    L1 { reduction: TorchReduction },
    /// `HuberLoss`.
    Huber {
        delta: f64,
        reduction: TorchReduction,
    },
    /// `SmoothL1Loss`.
    SmoothL1 {
        beta: f64,
        reduction: TorchReduction,
    },
    /// `KLDivLoss`: input log-probabilities.
    KlDiv {
        log_target: bool,
        reduction: TorchReduction,
    },
}

/// What a loss compares, whatever its framework: the grouping under which a Keras loss and a
/// torch loss are counterparts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossFamily {
    /// Categorical / sparse categorical crossentropy, CrossEntropyLoss, NLLLoss.
    CrossEntropy,
    /// Binary crossentropy, BCELoss, BCEWithLogitsLoss.
    Binary,
    Mse,
    Mae,
    /// Huber, HuberLoss, SmoothL1Loss.
    Huber,
    Kld,
    Poisson,
    Cosine,
    Hinge,
    Other,
}

/// A loss the importer could not type: an unknown class or an unsupported or malformed
/// argument. Shown as `` `class`: message ``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{class_name}`: {message}")]
pub struct LossError {
    pub class_name: String,
    pub message: String,
}

/// The typed reading of a [`crate::LossSpec`], in its framework; an error when the class or
/// an argument is not supported.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedLoss {
    Keras(Result<KerasLoss, LossError>),
    Torch(Result<TorchLoss, LossError>),
}

impl TypedLoss {
    /// Types `class_name` and `config` as `framework` serializes a loss.
    pub fn parse(framework: Framework, class_name: &str, config: &Value) -> TypedLoss {
        match framework {
            Framework::Keras => TypedLoss::Keras(KerasLoss::parse(class_name, config)),
            Framework::Torch => TypedLoss::Torch(TorchLoss::parse(class_name, config)),
        }
    }

    pub fn framework(&self) -> Framework {
        match self {
            TypedLoss::Keras(_) => Framework::Keras,
            TypedLoss::Torch(_) => Framework::Torch,
        }
    }

    /// Why the loss could not be typed, if it could not.
    pub fn error(&self) -> Option<&LossError> {
        match self {
            TypedLoss::Keras(r) => r.as_ref().err(),
            TypedLoss::Torch(r) => r.as_ref().err(),
        }
    }
}

/// Reads loss arguments from a config object with the messages the engine has always given.
struct Args<'a> {
    class_name: &'a str,
    cfg: Option<&'a Map<String, Value>>,
}

impl<'a> Args<'a> {
    fn new(class_name: &'a str, config: &'a Value) -> Args<'a> {
        Args {
            class_name,
            cfg: config.as_object(),
        }
    }

    fn get(&self, k: &str) -> Option<&'a Value> {
        self.cfg.and_then(|m| m.get(k))
    }

    fn err(&self, message: impl Into<String>) -> LossError {
        LossError {
            class_name: self.class_name.to_string(),
            message: message.into(),
        }
    }

    fn f64(&self, k: &str, default: f64) -> Result<f64, LossError> {
        match self.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(format!("`{k}` is not a number"))),
        }
    }

    fn bool(&self, k: &str, default: bool) -> Result<bool, LossError> {
        match self.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(format!("`{k}` is not a boolean"))),
        }
    }

    fn int(&self, k: &str) -> Result<Option<i64>, LossError> {
        match self.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.err(format!("`{k}` is not an integer"))),
        }
    }

    /// A list of numbers; a single number is a list of one.
    fn list(&self, k: &str) -> Result<Option<Vec<f64>>, LossError> {
        match self.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_f64()
                        .ok_or_else(|| self.err(format!("`{k}` holds a non-number")))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => v
                .as_f64()
                .map(|x| Some(vec![x]))
                .ok_or_else(|| self.err(format!("`{k}` is not a list of numbers"))),
        }
    }

    /// Keras's `axis` for losses that support only the last axis.
    fn last_axis_only(&self) -> Result<(), LossError> {
        if self.int("axis")?.is_some_and(|a| a != -1) {
            return Err(self.err("only axis=-1 is supported"));
        }
        Ok(())
    }
}

impl KerasReduction {
    /// From a loss config's `reduction` entry (`None` when absent).
    fn parse(v: Option<&Value>, args: &Args<'_>) -> Result<KerasReduction, LossError> {
        Ok(match v {
            None => KerasReduction::SumOverBatchSize,
            Some(Value::Null) => KerasReduction::None,
            Some(v) => match v.as_str() {
                Some("sum_over_batch_size" | "mean" | "auto") => KerasReduction::SumOverBatchSize,
                Some("sum") => KerasReduction::Sum,
                Some("none") => KerasReduction::None,
                Some("mean_with_sample_weight") => KerasReduction::MeanWithSampleWeight,
                _ => return Err(args.err(format!("reduction {v}"))),
            },
        })
    }
}

impl TorchReduction {
    /// From a loss config's `reduction` entry (`"mean"` when absent or not a string).
    fn parse(v: Option<&Value>, args: &Args<'_>) -> Result<TorchReduction, LossError> {
        Ok(match v.and_then(Value::as_str).unwrap_or("mean") {
            "mean" => TorchReduction::Mean,
            "sum" => TorchReduction::Sum,
            "none" => TorchReduction::None,
            "batchmean" => TorchReduction::BatchMean,
            other => return Err(args.err(format!("reduction `{other}`"))),
        })
    }
}

impl KerasLoss {
    /// A Keras loss from its name or class and its config (`compile_config`). Missing
    /// arguments take Keras's defaults; unknown losses and unsupported arguments are errors.
    pub fn parse(class_name: &str, config: &Value) -> Result<KerasLoss, LossError> {
        let a = Args::new(class_name, config);
        let reduction = KerasReduction::parse(a.get("reduction"), &a)?;
        Ok(match class_name {
            "categorical_crossentropy" | "CategoricalCrossentropy" => {
                KerasLoss::CategoricalCrossentropy {
                    from_logits: a.bool("from_logits", false)?,
                    label_smoothing: a.f64("label_smoothing", 0.0)?,
                    axis: a.int("axis")?.unwrap_or(-1),
                    reduction,
                }
            }
            "sparse_categorical_crossentropy" | "SparseCategoricalCrossentropy" => {
                a.last_axis_only()?;
                KerasLoss::SparseCategoricalCrossentropy {
                    from_logits: a.bool("from_logits", false)?,
                    ignore_class: a.int("ignore_class")?,
                    reduction,
                }
            }
            "binary_crossentropy" | "BinaryCrossentropy" => {
                a.last_axis_only()?;
                KerasLoss::BinaryCrossentropy {
                    from_logits: a.bool("from_logits", false)?,
                    label_smoothing: a.f64("label_smoothing", 0.0)?,
                    reduction,
                }
            }
            "mean_squared_error" | "mse" | "MSE" | "MeanSquaredError" => {
                KerasLoss::MeanSquaredError { reduction }
            }
            "mean_absolute_error" | "mae" | "MAE" | "MeanAbsoluteError" => {
                KerasLoss::MeanAbsoluteError { reduction }
            }
            "huber" | "Huber" => KerasLoss::Huber {
                delta: a.f64("delta", 1.0)?,
                reduction,
            },
            "kl_divergence" | "kld" | "KLD" | "KLDivergence" => {
                KerasLoss::KlDivergence { reduction }
            }
            other => {
                return Err(a.err(format!("the Keras loss `{other}` is not implemented")));
            }
        })
    }

    pub fn family(&self) -> LossFamily {
        match self {
            KerasLoss::CategoricalCrossentropy { .. }
            | KerasLoss::SparseCategoricalCrossentropy { .. } => LossFamily::CrossEntropy,
            KerasLoss::BinaryCrossentropy { .. } => LossFamily::Binary,
            KerasLoss::MeanSquaredError { .. } => LossFamily::Mse,
            KerasLoss::MeanAbsoluteError { .. } => LossFamily::Mae,
            KerasLoss::Huber { .. } => LossFamily::Huber,
            KerasLoss::KlDivergence { .. } => LossFamily::Kld,
        }
    }

    /// `from_logits` of the crossentropies; `false` for the others, which have none.
    pub fn from_logits(&self) -> bool {
        match self {
            KerasLoss::CategoricalCrossentropy { from_logits, .. }
            | KerasLoss::SparseCategoricalCrossentropy { from_logits, .. }
            | KerasLoss::BinaryCrossentropy { from_logits, .. } => *from_logits,
            _ => false,
        }
    }

    /// `label_smoothing`; 0 for the losses that have none.
    pub fn label_smoothing(&self) -> f64 {
        match self {
            KerasLoss::CategoricalCrossentropy {
                label_smoothing, ..
            }
            | KerasLoss::BinaryCrossentropy {
                label_smoothing, ..
            } => *label_smoothing,
            _ => 0.0,
        }
    }

    pub fn reduction(&self) -> KerasReduction {
        match self {
            KerasLoss::CategoricalCrossentropy { reduction, .. }
            | KerasLoss::SparseCategoricalCrossentropy { reduction, .. }
            | KerasLoss::BinaryCrossentropy { reduction, .. }
            | KerasLoss::MeanSquaredError { reduction }
            | KerasLoss::MeanAbsoluteError { reduction }
            | KerasLoss::Huber { reduction, .. }
            | KerasLoss::KlDivergence { reduction } => *reduction,
        }
    }
}

impl TorchLoss {
    /// A torch loss from its class and constructor kwargs (`train.json`). Missing arguments
    /// take torch's defaults; unknown losses, the legacy `size_average`/`reduce` arguments and
    /// unknown reductions are errors.
    pub fn parse(class_name: &str, config: &Value) -> Result<TorchLoss, LossError> {
        let a = Args::new(class_name, config);
        if a.get("size_average").is_some_and(|v| !v.is_null())
            || a.get("reduce").is_some_and(|v| !v.is_null())
        {
            return Err(a.err("the legacy size_average/reduce arguments"));
        }
        let reduction = TorchReduction::parse(a.get("reduction"), &a)?;
        Ok(match class_name {
            "CrossEntropyLoss" => TorchLoss::CrossEntropy {
                weight: a.list("weight")?,
                ignore_index: a.int("ignore_index")?.unwrap_or(-100),
                label_smoothing: a.f64("label_smoothing", 0.0)?,
                reduction,
            },
            "NLLLoss" => TorchLoss::Nll {
                weight: a.list("weight")?,
                ignore_index: a.int("ignore_index")?.unwrap_or(-100),
                reduction,
            },
            "BCELoss" => TorchLoss::Bce {
                weight: a.list("weight")?,
                reduction,
            },
            "BCEWithLogitsLoss" => TorchLoss::BceWithLogits {
                weight: a.list("weight")?,
                pos_weight: a.list("pos_weight")?,
                reduction,
            },
            "MSELoss" => TorchLoss::Mse { reduction },
            "L1Loss" => TorchLoss::L1 { reduction },
            "HuberLoss" => TorchLoss::Huber {
                delta: a.f64("delta", 1.0)?,
                reduction,
            },
            "SmoothL1Loss" => TorchLoss::SmoothL1 {
                beta: a.f64("beta", 1.0)?,
                reduction,
            },
            "KLDivLoss" => TorchLoss::KlDiv {
                log_target: a.bool("log_target", false)?,
                reduction,
            },
            other => {
                return Err(a.err(format!("the torch loss `{other}` is not implemented")));
            }
        })
    }

    pub fn family(&self) -> LossFamily {
        match self {
            TorchLoss::CrossEntropy { .. } | TorchLoss::Nll { .. } => LossFamily::CrossEntropy,
            TorchLoss::Bce { .. } | TorchLoss::BceWithLogits { .. } => LossFamily::Binary,
            TorchLoss::Mse { .. } => LossFamily::Mse,
            TorchLoss::L1 { .. } => LossFamily::Mae,
            TorchLoss::Huber { .. } | TorchLoss::SmoothL1 { .. } => LossFamily::Huber,
            TorchLoss::KlDiv { .. } => LossFamily::Kld,
        }
    }

    /// Whether the loss applies softmax/sigmoid itself (CrossEntropyLoss, BCEWithLogitsLoss),
    /// so the model must output logits.
    pub fn takes_logits(&self) -> bool {
        matches!(
            self,
            TorchLoss::CrossEntropy { .. } | TorchLoss::BceWithLogits { .. }
        )
    }

    /// `label_smoothing` (CrossEntropyLoss); 0 for the others.
    pub fn label_smoothing(&self) -> f64 {
        match self {
            TorchLoss::CrossEntropy {
                label_smoothing, ..
            } => *label_smoothing,
            _ => 0.0,
        }
    }

    /// The per-class `weight`, for the losses that take one.
    pub fn weight(&self) -> Option<&[f64]> {
        match self {
            TorchLoss::CrossEntropy { weight, .. }
            | TorchLoss::Nll { weight, .. }
            | TorchLoss::Bce { weight, .. }
            | TorchLoss::BceWithLogits { weight, .. } => weight.as_deref(),
            _ => None,
        }
    }

    /// BCEWithLogitsLoss's `pos_weight`.
    pub fn pos_weight(&self) -> Option<&[f64]> {
        match self {
            TorchLoss::BceWithLogits { pos_weight, .. } => pos_weight.as_deref(),
            _ => None,
        }
    }

    pub fn reduction(&self) -> TorchReduction {
        match self {
            TorchLoss::CrossEntropy { reduction, .. }
            | TorchLoss::Nll { reduction, .. }
            | TorchLoss::Bce { reduction, .. }
            | TorchLoss::BceWithLogits { reduction, .. }
            | TorchLoss::Mse { reduction }
            | TorchLoss::L1 { reduction }
            | TorchLoss::Huber { reduction, .. }
            | TorchLoss::SmoothL1 { reduction, .. }
            | TorchLoss::KlDiv { reduction, .. } => *reduction,
        }
    }
}

impl LossFamily {
    /// The family a Keras loss name or class belongs to, spelled any way Keras accepts
    /// (case and underscores ignored), including losses that cannot be typed (poisson,
    /// hinge, ...).
    pub fn of_keras_name(name: &str) -> LossFamily {
        let n: String = name
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        match n.as_str() {
            "categoricalcrossentropy" | "sparsecategoricalcrossentropy" => LossFamily::CrossEntropy,
            "binarycrossentropy" => LossFamily::Binary,
            "meansquarederror" | "mse" => LossFamily::Mse,
            "meanabsoluteerror" | "mae" => LossFamily::Mae,
            "huber" | "huberloss" => LossFamily::Huber,
            "kldivergence" | "kld" | "kullbackleiblerdivergence" => LossFamily::Kld,
            "poisson" => LossFamily::Poisson,
            "cosinesimilarity" => LossFamily::Cosine,
            "hinge" | "squaredhinge" | "categoricalhinge" => LossFamily::Hinge,
            _ => LossFamily::Other,
        }
    }

    /// The family of a torch loss class, including classes that cannot be typed.
    pub fn of_torch_name(name: &str) -> LossFamily {
        match name {
            "CrossEntropyLoss" | "NLLLoss" => LossFamily::CrossEntropy,
            "BCELoss" | "BCEWithLogitsLoss" => LossFamily::Binary,
            "MSELoss" => LossFamily::Mse,
            "L1Loss" => LossFamily::Mae,
            "HuberLoss" | "SmoothL1Loss" => LossFamily::Huber,
            "KLDivLoss" => LossFamily::Kld,
            "PoissonNLLLoss" => LossFamily::Poisson,
            "CosineEmbeddingLoss" | "CosineSimilarity" => LossFamily::Cosine,
            "HingeEmbeddingLoss" | "MultiMarginLoss" => LossFamily::Hinge,
            _ => LossFamily::Other,
        }
    }
}
