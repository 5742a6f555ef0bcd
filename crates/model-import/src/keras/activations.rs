//! Keras 3 activation names → [`Activation`], with each function's own defaults.
//!
//! Source: keras/src/activations/activations.py (Keras 3.15) and the TensorFlow backend's
//! keras/src/backend/tensorflow/nn.py. The defaults that differ from other places matter:
//! the `leaky_relu` *function* has `negative_slope=0.2` (the `LeakyReLU` layer has 0.3);
//! `gelu` has `approximate=False` (the erf form); `hard_sigmoid` is `relu6(x + 3) / 6`
//! (slope 1/6, the Keras 2 definition was 0.2x + 0.5); `hard_silu`/`hard_swish` is
//! `x · hard_sigmoid(x)`; `softmax`/`log_softmax` use `axis=-1`; `softplus` is
//! `log(1 + exp(x))` with no threshold; `swish` is an alias of `silu`; `celu` (alpha 1) is `elu`. Every other built-in
//! (`glu`, `hard_shrink`, `hard_tanh`, `soft_shrink`, `sparse_plus`, `sparse_sigmoid`,
//! `sparsemax`, `squareplus`, `threshold`) and any custom function is unsupported.

use model_ir::{Activation, HardSigmoid};
use serde_json::Value;

use super::config::show;
use crate::error::ErrorKind;

/// The activation a Keras name stands for.
pub(super) fn by_name(name: &str) -> Option<Activation> {
    Some(match name {
        "linear" => Activation::Linear,
        "relu" => Activation::RELU,
        "relu6" => Activation::Relu6,
        "leaky_relu" => Activation::LeakyRelu { slope: 0.2 },
        "elu" => Activation::Elu { alpha: 1.0 },
        // celu(x, alpha=1.0) = max(0, x) + min(0, alpha·(exp(x/alpha) − 1)): at the default
        // alpha (the only one a name can select) it is elu with alpha 1.
        "celu" => Activation::Elu { alpha: 1.0 },
        "selu" => Activation::Selu,
        "gelu" => Activation::Gelu { approximate: false },
        "sigmoid" => Activation::Sigmoid,
        "hard_sigmoid" => Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH),
        "hard_silu" | "hard_swish" => Activation::HardSwish,
        "tanh" => Activation::Tanh,
        "softmax" => Activation::Softmax { axis: -1 },
        "log_softmax" => Activation::LogSoftmax { axis: -1 },
        "softplus" => Activation::Softplus {
            beta: 1.0,
            threshold: None,
        },
        "softsign" => Activation::Softsign,
        "silu" | "swish" => Activation::Silu,
        "mish" => Activation::Mish,
        "exponential" => Activation::Exponential,
        "log_sigmoid" => Activation::LogSigmoid,
        "tanh_shrink" => Activation::TanhShrink,
        _ => return None,
    })
}

/// The activation in a layer's `activation` field: a name, `null` (linear) or a serialized
/// function (`{"class_name": "function", "config": "<name>"}`).
pub(super) fn from_value(v: Option<&Value>, layer: &str) -> Result<Activation, ErrorKind> {
    let name = match v {
        None | Some(Value::Null) => return Ok(Activation::Linear),
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(m)) => match (m.get("class_name"), m.get("config")) {
            (Some(Value::String(c)), Some(Value::String(n))) if c == "function" => n.as_str(),
            _ => {
                return Err(ErrorKind::Unsupported(format!(
                    "activation {} of layer `{layer}` (only Keras built-in functions)",
                    show(v.unwrap_or(&Value::Null))
                )));
            }
        },
        Some(other) => {
            return Err(ErrorKind::Malformed(format!(
                "layer `{layer}`: activation {} is not a name",
                show(other)
            )));
        }
    };
    by_name(name)
        .ok_or_else(|| ErrorKind::Unsupported(format!("activation `{name}` of layer `{layer}`")))
}
