//! Regularization layers: `Dropout` and `SpatialDropout*`.

use model_ir::{DataLayout, Op};

use super::{Converted, layout_of};
use crate::error::ErrorKind;
use crate::keras::config::{Cfg, show};

/// `Dropout` (a `noise_shape` is noted, not modelled).
pub(super) fn dropout(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    if let Some(ns) = c.get("noise_shape").filter(|v| !v.is_null()) {
        notes.push(format!(
            "layer `{}` (Dropout): noise_shape {} shares the dropout mask along some axes; the IR records element-wise dropout",
            c.layer,
            show(ns)
        ));
    }
    Ok(Converted::unary(Op::Dropout {
        rate: c.f64("rate")?,
        spatial: None,
    }))
}

/// `SpatialDropout1D/2D/3D`: whole feature maps dropped.
pub(super) fn spatial_dropout(
    c: &Cfg<'_>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let layout = if class == "SpatialDropout1D" {
        DataLayout::ChannelsLast
    } else {
        layout_of(c, notes)?
    };
    Ok(Converted::unary(Op::Dropout {
        rate: c.f64("rate")?,
        spatial: Some(layout),
    }))
}
