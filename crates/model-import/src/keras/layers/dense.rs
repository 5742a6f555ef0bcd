//! Densely connected layers: `Dense` and the `Embedding` lookup table.

use model_ir::{Op, ParamLayout, ParamRole};

use super::{Converted, last_dim, reject_non_null, var};
use crate::error::ErrorKind;
use crate::keras::activations;
use crate::keras::config::Cfg;

/// `Dense`: a kernel `(in, units)` and an optional bias.
pub(super) fn dense(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    reject_non_null(c, &["lora_rank", "quantization_config"])?;
    let units = c.usize("units")?;
    let use_bias = c.bool_or("use_bias", true, notes)?;
    let activation = activations::from_value(c.get("activation"), c.layer)?;
    let mut vars = vec![var(
        "kernel",
        ParamRole::Kernel,
        ParamLayout::DenseInOut,
        vec![last_dim(input), Some(units)],
        true,
    )];
    if use_bias {
        vars.push(var(
            "bias",
            ParamRole::Bias,
            ParamLayout::Vector,
            vec![Some(units)],
            true,
        ));
    }
    Ok(Converted::with_vars(
        Op::Dense {
            units,
            use_bias,
            activation,
        },
        vars,
    ))
}

/// `Embedding`: one table `(input_dim, output_dim)`.
pub(super) fn embedding(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    reject_non_null(c, &["lora_rank", "quantization_config"])?;
    let input_dim = c.usize("input_dim")?;
    let output_dim = c.usize("output_dim")?;
    let mask_zero = c.bool_or("mask_zero", false, notes)?;
    Ok(Converted::with_vars(
        Op::Embedding {
            input_dim,
            output_dim,
            mask_zero,
            padding_idx: None,
        },
        vec![var(
            "embeddings",
            ParamRole::Embeddings,
            ParamLayout::Embedding,
            vec![Some(input_dim), Some(output_dim)],
            true,
        )],
    ))
}
