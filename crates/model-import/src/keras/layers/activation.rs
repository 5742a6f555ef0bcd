//! Activation layers: `Activation` and the configurable ones (`ReLU`, `LeakyReLU`, `ELU`,
//! `Softmax`).

use model_ir::{Activation, Op};

use super::Converted;
use crate::error::ErrorKind;
use crate::keras::activations;
use crate::keras::config::Cfg;

/// `Activation(name)`.
pub(super) fn activation(c: &Cfg<'_>) -> Result<Converted, ErrorKind> {
    Ok(Converted::unary(Op::Activation {
        function: activations::from_value(Some(c.req("activation")?), c.layer)?,
    }))
}

/// `ReLU` with its slope, cap and threshold.
pub(super) fn relu(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    let max_value = c.opt_f64("max_value")?;
    let negative_slope = c.f64_or("negative_slope", 0.0, notes)?;
    let threshold = c.f64_or("threshold", 0.0, notes)?;
    Ok(Converted::unary(Op::Activation {
        function: Activation::Relu {
            negative_slope,
            max_value,
            threshold,
        },
    }))
}

/// `LeakyReLU` (Keras 3 `negative_slope`, Keras 2 `alpha`).
pub(super) fn leaky_relu(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    // Keras 3 calls it `negative_slope` (default 0.3); Keras 2 configs say `alpha`.
    let slope = match (c.get("negative_slope"), c.get("alpha")) {
        (Some(_), _) => c.f64("negative_slope")?,
        (None, Some(_)) => c.f64("alpha")?,
        (None, None) => c.f64_or("negative_slope", 0.3, notes)?,
    };
    Ok(Converted::unary(Op::Activation {
        function: Activation::LeakyRelu { slope },
    }))
}

/// `ELU`.
pub(super) fn elu(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    Ok(Converted::unary(Op::Activation {
        function: Activation::Elu {
            alpha: c.f64_or("alpha", 1.0, notes)?,
        },
    }))
}

/// `Softmax` over one axis.
pub(super) fn softmax(c: &Cfg<'_>) -> Result<Converted, ErrorKind> {
    let axes = c.axes("axis")?;
    let [axis] = axes[..] else {
        return Err(c.unsupported(format!("softmax over axes {axes:?}")));
    };
    Ok(Converted::unary(Op::Activation {
        function: Activation::Softmax { axis },
    }))
}
