//! The convolution family: plain, depthwise, separable and transposed convolutions.

use model_ir::{DataLayout, Op, Padding, ParamLayout, ParamRole};
use serde_json::Value;

use super::{
    Converted, in_channels, layout_of, padding_of, rank_of, reject_non_null, unsupported_layer, var,
};
use crate::error::ErrorKind;
use crate::keras::activations;
use crate::keras::config::Cfg;

/// Keras 3's TensorFlow backend adds a conv layer's bias with `ops.add(outputs, bias)`, the
/// bias reshaped to `(1, filters, 1, ...)` for channels_first; its `add`
/// (keras/src/backend/tensorflow/numpy.py) turns that into `tf.nn.bias_add` and picks
/// `NHWC` whenever the output's *last* axis has `filters` entries, so the bias then goes
/// along the last spatial axis instead of the channels (measured: models/keras-sweep
/// Conv3D_4; Conv1D/2D grouped, Depthwise and Separable convs alike). That is not
/// reproduced: such a layer, or one whose output length cannot be known, is refused.
fn refuse_tf_bias_axis(
    c: &Cfg<'_>,
    layout: DataLayout,
    use_bias: bool,
    channels: Option<usize>,
    last_out: Option<usize>,
) -> Result<(), ErrorKind> {
    if layout != DataLayout::ChannelsFirst || !use_bias {
        return Ok(());
    }
    match (channels, last_out) {
        (Some(ch), Some(len)) if ch != len => Ok(()),
        (Some(ch), Some(_)) => Err(c.unsupported(format!(
            "data_format \"channels_first\" with use_bias when the output's last axis has {ch} entries, as many as its channels (Keras's TensorFlow backend then adds the bias along the last axis)"
        ))),
        _ => Err(c.unsupported(
            "data_format \"channels_first\" with use_bias and an unknown input shape (Keras's TensorFlow backend adds the bias along the last axis when its length equals the channels)",
        )),
    }
}

/// The output length of one spatial axis of a convolution (Keras `compute_conv_output_shape`).
fn conv_len(
    input: Option<&[Option<usize>]>,
    kernel: &[usize],
    strides: &[usize],
    dilation: &[usize],
    padding: &Padding,
) -> Option<usize> {
    let len = (*input?.last()?)?;
    let (k, s, d) = (*kernel.last()?, *strides.last()?, *dilation.last()?);
    let ke = k.checked_sub(1)?.checked_mul(d)? + 1;
    let s = s.max(1);
    match padding {
        Padding::Valid => Some(len.checked_sub(ke)? / s + 1),
        _ => Some(len.div_ceil(s)),
    }
}

/// The output length of the last spatial axis of a transposed convolution (Keras
/// `compute_conv_transpose_output_shape` / `deconv_output_length`).
fn conv_transpose_len(
    input: Option<&[Option<usize>]>,
    kernel: &[usize],
    strides: &[usize],
    dilation: &[usize],
    padding: &Padding,
    output_padding: Option<&[usize]>,
) -> Option<usize> {
    let len = (*input?.last()?)?;
    let (k, s, d) = (*kernel.last()?, *strides.last()?, *dilation.last()?);
    let ke = k.checked_sub(1)?.checked_mul(d)? + 1;
    match output_padding.and_then(|p| p.last().copied()) {
        None => match padding {
            Padding::Valid => Some(len * s + ke.saturating_sub(s)),
            _ => Some(len * s),
        },
        Some(op) => {
            let pad = if *padding == Padding::Valid {
                0
            } else {
                ke / 2
            };
            (len.checked_sub(1)? * s + ke + op).checked_sub(2 * pad)
        }
    }
}

/// `Conv1D/2D/3D`.
pub(super) fn conv(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let rank = rank_of(class).ok_or_else(|| unsupported_layer(c))?;
    reject_non_null(c, &["lora_rank"])?;
    let filters = c.usize("filters")?;
    let kernel_size = c.tuple("kernel_size", rank)?;
    let strides = c.tuple_or("strides", rank, 1, notes)?;
    let dilation = c.tuple_or("dilation_rate", rank, 1, notes)?;
    let groups = c.usize_or("groups", 1, notes)?.max(1);
    let padding = padding_of(c, rank == 1)?;
    let layout = layout_of(c, notes)?;
    let use_bias = c.bool_or("use_bias", true, notes)?;
    let activation = activations::from_value(c.get("activation"), c.layer)?;
    let cin = in_channels(input, layout);
    refuse_tf_bias_axis(
        c,
        layout,
        use_bias,
        Some(filters),
        conv_len(input, &kernel_size, &strides, &dilation, &padding),
    )?;
    let mut shape: Vec<Option<usize>> = kernel_size.iter().map(|k| Some(*k)).collect();
    shape.push(cin.map(|ci| ci / groups));
    shape.push(Some(filters));
    let mut vars = vec![var(
        "kernel",
        ParamRole::Kernel,
        ParamLayout::ConvSpatialInOut { rank },
        shape,
        true,
    )];
    if use_bias {
        vars.push(var(
            "bias",
            ParamRole::Bias,
            ParamLayout::Vector,
            vec![Some(filters)],
            true,
        ));
    }
    Ok(Converted::with_vars(
        Op::Conv {
            rank,
            filters,
            kernel_size,
            strides,
            dilation,
            groups,
            padding,
            layout,
            use_bias,
            activation,
        },
        vars,
    ))
}

/// `DepthwiseConv1D/2D`.
pub(super) fn depthwise_conv(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let rank = rank_of(class).ok_or_else(|| unsupported_layer(c))?;
    let depth_multiplier = c.usize_or("depth_multiplier", 1, notes)?;
    let kernel_size = c.tuple("kernel_size", rank)?;
    let strides = c.tuple_or("strides", rank, 1, notes)?;
    let dilation = c.tuple_or("dilation_rate", rank, 1, notes)?;
    let padding = padding_of(c, false)?;
    let layout = layout_of(c, notes)?;
    let use_bias = c.bool_or("use_bias", true, notes)?;
    let activation = activations::from_value(c.get("activation"), c.layer)?;
    let cin = in_channels(input, layout);
    refuse_tf_bias_axis(
        c,
        layout,
        use_bias,
        cin.map(|ci| ci * depth_multiplier),
        conv_len(input, &kernel_size, &strides, &dilation, &padding),
    )?;
    let mut shape: Vec<Option<usize>> = kernel_size.iter().map(|k| Some(*k)).collect();
    shape.push(cin);
    shape.push(Some(depth_multiplier));
    let mut vars = vec![var(
        "kernel",
        ParamRole::Kernel,
        ParamLayout::DepthwiseSpatialInMult { rank },
        shape,
        true,
    )];
    if use_bias {
        vars.push(var(
            "bias",
            ParamRole::Bias,
            ParamLayout::Vector,
            vec![cin.map(|ci| ci * depth_multiplier)],
            true,
        ));
    }
    Ok(Converted::with_vars(
        Op::DepthwiseConv {
            rank,
            depth_multiplier,
            kernel_size,
            strides,
            dilation,
            padding,
            layout,
            use_bias,
            activation,
        },
        vars,
    ))
}

/// `SeparableConv1D/2D`: depthwise then pointwise kernels.
pub(super) fn separable_conv(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let rank = rank_of(class).ok_or_else(|| unsupported_layer(c))?;
    let filters = c.usize("filters")?;
    let depth_multiplier = c.usize_or("depth_multiplier", 1, notes)?;
    let kernel_size = c.tuple("kernel_size", rank)?;
    let strides = c.tuple_or("strides", rank, 1, notes)?;
    let dilation = c.tuple_or("dilation_rate", rank, 1, notes)?;
    let padding = padding_of(c, rank == 1)?;
    let layout = layout_of(c, notes)?;
    let use_bias = c.bool_or("use_bias", true, notes)?;
    let activation = activations::from_value(c.get("activation"), c.layer)?;
    let cin = in_channels(input, layout);
    refuse_tf_bias_axis(
        c,
        layout,
        use_bias,
        Some(filters),
        conv_len(input, &kernel_size, &strides, &dilation, &padding),
    )?;
    let mut dshape: Vec<Option<usize>> = kernel_size.iter().map(|k| Some(*k)).collect();
    dshape.push(cin);
    dshape.push(Some(depth_multiplier));
    let mut pshape = vec![Some(1); rank];
    pshape.push(cin.map(|ci| ci * depth_multiplier));
    pshape.push(Some(filters));
    let mut vars = vec![
        var(
            "depthwise_kernel",
            ParamRole::DepthwiseKernel,
            ParamLayout::DepthwiseSpatialInMult { rank },
            dshape,
            true,
        ),
        var(
            "pointwise_kernel",
            ParamRole::PointwiseKernel,
            ParamLayout::ConvSpatialInOut { rank },
            pshape,
            true,
        ),
    ];
    if use_bias {
        vars.push(var(
            "bias",
            ParamRole::Bias,
            ParamLayout::Vector,
            vec![Some(filters)],
            true,
        ));
    }
    Ok(Converted::with_vars(
        Op::SeparableConv {
            rank,
            filters,
            depth_multiplier,
            kernel_size,
            strides,
            dilation,
            padding,
            layout,
            use_bias,
            activation,
        },
        vars,
    ))
}

/// `Conv1DTranspose/2DTranspose/3DTranspose`.
pub(super) fn conv_transpose(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let rank =
        rank_of(&class[..class.len() - "Transpose".len()]).ok_or_else(|| unsupported_layer(c))?;
    let filters = c.usize("filters")?;
    let kernel_size = c.tuple("kernel_size", rank)?;
    let strides = c.tuple_or("strides", rank, 1, notes)?;
    let dilation = c.tuple_or("dilation_rate", rank, 1, notes)?;
    let padding = padding_of(c, false)?;
    let output_padding = match c.get("output_padding") {
        None | Some(Value::Null) => None,
        Some(v) => Some(c.tuple_of("output_padding", v, rank)?),
    };
    let layout = layout_of(c, notes)?;
    let use_bias = c.bool_or("use_bias", true, notes)?;
    let activation = activations::from_value(c.get("activation"), c.layer)?;
    let cin = in_channels(input, layout);
    refuse_tf_bias_axis(
        c,
        layout,
        use_bias,
        Some(filters),
        conv_transpose_len(
            input,
            &kernel_size,
            &strides,
            &dilation,
            &padding,
            output_padding.as_deref(),
        ),
    )?;
    let mut shape: Vec<Option<usize>> = kernel_size.iter().map(|k| Some(*k)).collect();
    shape.push(Some(filters));
    shape.push(cin);
    let mut vars = vec![var(
        "kernel",
        ParamRole::Kernel,
        ParamLayout::ConvTransposeSpatialOutIn { rank },
        shape,
        true,
    )];
    if use_bias {
        vars.push(var(
            "bias",
            ParamRole::Bias,
            ParamLayout::Vector,
            vec![Some(filters)],
            true,
        ));
    }
    Ok(Converted::with_vars(
        Op::ConvTranspose {
            rank,
            filters,
            kernel_size,
            strides,
            dilation,
            groups: 1,
            padding,
            output_padding,
            layout,
            use_bias,
            activation,
        },
        vars,
    ))
}
