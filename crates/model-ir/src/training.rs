//! How a model is trained: optimizer, loss, clipping, schedule and data-loop settings.
//!
//! Optimizer, loss and scheduler configurations are kept in the framework's own
//! serialization (`class_name` + config object) so that `optim` can parse them with each
//! framework's defaults; this crate only carries them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::conventions::Framework;

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
    /// Keras backend the user trains with (`tensorflow`, `jax`, `torch`); losses differ by backend.
    pub backend: Option<String>,
    /// Framework version the bundle was exported with.
    pub framework_version: Option<String>,
    /// Keras weight regularizers (`kernel_regularizer`, `bias_regularizer`, ...) by parameter
    /// name: penalties added to the training loss. Empty for PyTorch, whose weight decay lives
    /// in the optimizer.
    pub regularizers: BTreeMap<String, WeightRegularizer>,
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

/// A loss in its framework's serialization.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossSpec {
    /// Keras loss name or class (`categorical_crossentropy`, `CategoricalCrossentropy`) or
    /// torch class (`CrossEntropyLoss`).
    pub class_name: String,
    pub config: serde_json::Value,
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
                backend: Some("tensorflow".into()),
                framework_version: None,
                regularizers: BTreeMap::new(),
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
            },
        }
    }
}
