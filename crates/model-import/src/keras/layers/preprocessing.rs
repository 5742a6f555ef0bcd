//! Preprocessing layers: `Rescaling` and `Normalization`.

use model_ir::{Op, ParamLayout, ParamRole};
use serde_json::Value;

use super::{Converted, axis_dim, var, vec_layout};
use crate::error::ErrorKind;
use crate::keras::config::{Cfg, show};

/// `Rescaling` by a number, plus an offset.
pub(super) fn rescaling(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    let scale = c.get("scale").and_then(Value::as_f64).ok_or_else(|| {
        c.unsupported(format!(
            "scale {} (only a number)",
            show(c.get("scale").unwrap_or(&Value::Null))
        ))
    })?;
    let offset = match c.get("offset") {
        None => c.f64_or("offset", 0.0, notes)?,
        Some(v) => v
            .as_f64()
            .ok_or_else(|| c.unsupported(format!("offset {} (only a number)", show(v))))?,
    };
    Ok(Converted::unary(Op::Rescaling { scale, offset }))
}

pub(super) fn normalization(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let axes = c.axes("axis")?;
    let invert = c.bool_or("invert", false, notes)?;
    let from_config = c.get("mean").is_some_and(|v| !v.is_null());
    notes.push(format!(
        "layer `{}` (Normalization): divides by max(sqrt(variance), keras.config.epsilon()); the IR assumes the default epsilon 1e-7",
        c.layer
    ));
    let op = Op::Normalization {
        axes: axes.clone(),
        invert,
        epsilon: 1e-7,
    };
    if from_config {
        // mean/variance given to the constructor: no variables; the values are in the config.
        return Ok(Converted::unary(op));
    }
    let shape: Vec<Option<usize>> = axes.iter().map(|a| axis_dim(input, *a)).collect();
    Ok(Converted::with_vars(
        op,
        vec![
            var(
                "mean",
                ParamRole::Mean,
                vec_layout(&shape),
                shape.clone(),
                false,
            ),
            var(
                "variance",
                ParamRole::Variance,
                vec_layout(&shape),
                shape.clone(),
                false,
            ),
            // The number of samples `adapt` saw; unused by the forward pass.
            var(
                "count",
                ParamRole::Constant,
                ParamLayout::AsIs,
                Vec::new(),
                false,
            ),
        ],
    ))
}
