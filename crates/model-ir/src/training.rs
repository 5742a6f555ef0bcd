//! How a model is trained: optimizer, loss, clipping, schedule and data-loop settings.
//!
//! Optimizer, loss and scheduler configurations are kept in the framework's own
//! serialization (`class_name` + config object) so that `optim` can parse them with each
//! framework's defaults; a loss also carries its typed reading ([`crate::loss`]), and the
//! Keras backend is typed ([`KerasBackend`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::conventions::Framework;
use crate::loss::{LossFamily, TypedLoss};

/// Everything a bundle says about training.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingConfig {
    pub framework: Framework,
    pub optimizer: Option<OptimizerSpec>,
    /// PyTorch parameter groups with per-group overrides; `None` = one group with the defaults.
    pub param_groups: Option<Vec<ParamGroup>>,
    pub loss: Option<LossSpec>,
    pub grad_clip: Option<GradClip>,
    pub scheduler: Option<SchedulerSpec>,
    pub batch_size: usize,
    pub epochs: usize,
    pub shuffle: bool,
    /// PyTorch DataLoader `drop_last` (Keras never drops the last partial batch).
    pub drop_last: bool,
    /// Keras `validation_split`: the *last* fraction of the samples, taken before shuffling.
    pub validation_split: f64,
    /// Keras `class_weight`: class index → weight.
    pub class_weight: Option<BTreeMap<String, f64>>,
    /// Keras backend the user trains with; losses differ by backend.
    pub backend: Option<KerasBackend>,
    /// Framework version the bundle was exported with.
    pub framework_version: Option<String>,
    /// Keras weight regularizers (`kernel_regularizer`, `bias_regularizer`, ...) by parameter
    /// name: penalties added to the training loss. Empty for PyTorch, whose weight decay lives
    /// in the optimizer.
    pub regularizers: BTreeMap<String, WeightRegularizer>,
    /// Keras weight constraints (`kernel_constraint`, ...) by parameter name: projections the
    /// optimizer applies to the variable after every update. Empty for PyTorch.
    pub constraints: BTreeMap<String, crate::init::Constraint>,
}

/// A Keras 3 backend (`keras.backend.backend()`), serialized as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KerasBackend {
    /// Keras's default.
    #[default]
    TensorFlow,
    Jax,
    Torch,
    /// Inference only; a bundle may still name it.
    Numpy,
}

impl KerasBackend {
    /// Every backend.
    pub const ALL: [KerasBackend; 4] = [
        KerasBackend::TensorFlow,
        KerasBackend::Jax,
        KerasBackend::Torch,
        KerasBackend::Numpy,
    ];

    /// The name Keras uses: `tensorflow`, `jax`, `torch` or `numpy`.
    pub fn name(self) -> &'static str {
        match self {
            KerasBackend::TensorFlow => "tensorflow",
            KerasBackend::Jax => "jax",
            KerasBackend::Torch => "torch",
            KerasBackend::Numpy => "numpy",
        }
    }

    /// From the name Keras uses; `None` for anything else.
    pub fn parse(name: &str) -> Option<KerasBackend> {
        KerasBackend::ALL.into_iter().find(|b| b.name() == name)
    }
}

impl std::fmt::Display for KerasBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A Keras weight regularizer: `l1·Σ|w| + l2·Σw²` added, unscaled, to the training loss
/// (`keras/src/regularizers/regularizers.py`; `L2()` and `"l2"` mean `l2 = 0.01`, catalogue
/// `l2-regularizer-factor-two`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WeightRegularizer {
    pub l1: f64,
    pub l2: f64,
}

/// An optimizer in its framework's serialization.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizerSpec {
    /// `Adam`, `SGD`, `RMSprop`, ...
    pub class_name: String,
    /// Keras `config` (every hyper-parameter, `learning_rate` possibly a serialized schedule)
    /// or torch `defaults`.
    pub config: serde_json::Value,
}

/// One PyTorch parameter group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamGroup {
    /// `state_dict` names of the parameters in the group.
    pub params: Vec<String>,
    /// Hyper-parameters that differ from the optimizer defaults.
    pub overrides: serde_json::Map<String, serde_json::Value>,
}

/// A loss in its framework's serialization, and its typed reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossSpec {
    /// Keras loss name or class (`categorical_crossentropy`, `CategoricalCrossentropy`) or
    /// torch class (`CrossEntropyLoss`).
    pub class_name: String,
    /// The config object as the bundle has it, for display.
    pub config: serde_json::Value,
    /// `class_name` and `config` typed once, with every default filled in; an error for a loss
    /// that cannot be typed (reported when a loss is built from it). Not serialized.
    #[serde(skip)]
    pub typed: TypedLoss,
}

impl LossSpec {
    /// A loss as `framework` serializes it, typed.
    pub fn new(framework: Framework, class_name: String, config: serde_json::Value) -> LossSpec {
        let typed = TypedLoss::parse(framework, &class_name, &config);
        LossSpec {
            class_name,
            config,
            typed,
        }
    }

    /// The loss's family: from the typed loss, or from the class name alone when the loss
    /// cannot be typed (a Keras name spelled with other case or underscores, poisson, hinge,
    /// ...).
    pub fn family(&self) -> LossFamily {
        match &self.typed {
            TypedLoss::Keras(Ok(k)) => k.family(),
            TypedLoss::Torch(Ok(t)) => t.family(),
            TypedLoss::Keras(Err(_)) => LossFamily::of_keras_name(&self.class_name),
            TypedLoss::Torch(Err(_)) => LossFamily::of_torch_name(&self.class_name),
        }
    }
}

/// Gradient clipping applied by the training loop (torch `clip_grad_*`; Keras clipping lives
/// in the optimizer config).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum GradClip {
    /// `clip_grad_norm_(params, max_norm, norm_type)` over all parameters.
    Norm { max_norm: f64, norm_type: f64 },
    /// `clip_grad_value_(params, clip_value)`.
    Value { clip_value: f64 },
}

/// A learning-rate scheduler stepped by the training loop (torch).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchedulerSpec {
    pub class_name: String,
    pub config: serde_json::Value,
    pub interval: StepInterval,
}

/// How often a scheduler steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepInterval {
    Epoch,
    Step,
}

impl TrainingConfig {
    /// A configuration with the framework's `fit` / DataLoader defaults and nothing else.
    pub fn defaults(framework: Framework) -> TrainingConfig {
        match framework {
            // keras.Model.fit: batch_size=32 (None means 32), epochs=1 in the signature; the
            // bundle's fit.json default is 5 epochs; shuffle=True.
            Framework::Keras => TrainingConfig {
                framework,
                optimizer: None,
                param_groups: None,
                loss: None,
                grad_clip: None,
                scheduler: None,
                batch_size: 32,
                epochs: 5,
                shuffle: true,
                drop_last: false,
                validation_split: 0.0,
                class_weight: None,
                backend: Some(KerasBackend::TensorFlow),
                framework_version: None,
                regularizers: BTreeMap::new(),
                constraints: BTreeMap::new(),
            },
            Framework::Torch => TrainingConfig {
                framework,
                optimizer: None,
                param_groups: None,
                loss: None,
                grad_clip: None,
                scheduler: None,
                batch_size: 32,
                epochs: 5,
                shuffle: true,
                drop_last: false,
                validation_split: 0.0,
                class_weight: None,
                backend: None,
                framework_version: None,
                regularizers: BTreeMap::new(),
                constraints: BTreeMap::new(),
            },
        }
    }
}
