//! Normalization layers: batch, layer (and RMS) and group normalization.

use model_ir::{MomentumForm, Op, ParamLayout, ParamRole, VarianceEstimate};
use serde_json::Value;

use super::{Converted, axis_dim, var, vec_layout};
use crate::error::ErrorKind;
use crate::keras::config::Cfg;

/// `BatchNormalization` with Keras's momentum convention.
pub(super) fn batch_norm(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    if c.get("synchronized").and_then(Value::as_bool) == Some(true) {
        notes.push(format!(
            "layer `{}`: synchronized BatchNormalization (statistics across replicas)",
            c.layer
        ));
    }
    let axis = c.i64_or("axis", -1, notes)?;
    let momentum = c.f64_or("momentum", 0.99, notes)?;
    let epsilon = c.f64_or("epsilon", 1e-3, notes)?;
    let center = c.bool_or("center", true, notes)?;
    let scale = c.bool_or("scale", true, notes)?;
    let trainable = c.bool_or("trainable", true, notes)?;
    let ch = axis_dim(input, axis);
    let mut vars = Vec::new();
    if scale {
        vars.push(var(
            "gamma",
            ParamRole::Gamma,
            ParamLayout::Vector,
            vec![ch],
            true,
        ));
    }
    if center {
        vars.push(var(
            "beta",
            ParamRole::Beta,
            ParamLayout::Vector,
            vec![ch],
            true,
        ));
    }
    vars.push(var(
        "moving_mean",
        ParamRole::MovingMean,
        ParamLayout::Vector,
        vec![ch],
        false,
    ));
    vars.push(var(
        "moving_variance",
        ParamRole::MovingVariance,
        ParamLayout::Vector,
        vec![ch],
        false,
    ));
    Ok(Converted::with_vars(
        Op::BatchNorm {
            axis,
            epsilon,
            // Keras: moving = moving · momentum + batch · (1 − momentum).
            momentum: MomentumForm::KeepOld(momentum),
            // Keras 3 updates the moving variance with the biased batch variance.
            running_variance: VarianceEstimate::Biased,
            center,
            scale,
            trainable,
            track_running_stats: true,
            training_mode: None,
        },
        vars,
    ))
}

/// `LayerNormalization` (with `rms_scaling`).
pub(super) fn layer_norm(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let axes = c.axes("axis")?;
    let epsilon = c.f64_or("epsilon", 1e-3, notes)?;
    let center = c.bool_or("center", true, notes)?;
    let scale = c.bool_or("scale", true, notes)?;
    let rms_scaling = c.bool_or("rms_scaling", false, notes)?;
    let shape: Vec<Option<usize>> = axes.iter().map(|a| axis_dim(input, *a)).collect();
    let mut vars = Vec::new();
    if scale || rms_scaling {
        vars.push(var(
            "gamma",
            ParamRole::Gamma,
            vec_layout(&shape),
            shape.clone(),
            true,
        ));
    }
    if center && !rms_scaling {
        vars.push(var(
            "beta",
            ParamRole::Beta,
            vec_layout(&shape),
            shape.clone(),
            true,
        ));
    }
    Ok(Converted::with_vars(
        Op::LayerNorm {
            axes,
            epsilon,
            center: center && !rms_scaling,
            scale: scale || rms_scaling,
            rms_scaling,
        },
        vars,
    ))
}

/// `GroupNormalization`.
pub(super) fn group_norm(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let groups = c.usize("groups")?;
    let axis = c.i64_or("axis", -1, notes)?;
    let epsilon = c.f64_or("epsilon", 1e-3, notes)?;
    let center = c.bool_or("center", true, notes)?;
    let scale = c.bool_or("scale", true, notes)?;
    let ch = axis_dim(input, axis);
    if groups == 0 {
        return Err(c.malformed("groups is 0"));
    }
    if let Some(ch) = ch
        && ch % groups != 0
    {
        return Err(c.malformed(format!("{ch} channels do not split into {groups} groups")));
    }
    let mut vars = Vec::new();
    if scale {
        vars.push(var(
            "gamma",
            ParamRole::Gamma,
            ParamLayout::Vector,
            vec![ch],
            true,
        ));
    }
    if center {
        vars.push(var(
            "beta",
            ParamRole::Beta,
            ParamLayout::Vector,
            vec![ch],
            true,
        ));
    }
    Ok(Converted::with_vars(
        Op::GroupNorm {
            groups,
            axis,
            epsilon,
            center,
            scale,
        },
        vars,
    ))
}
