//! One Keras layer's config → an IR [`Op`], the variables it stores and how many tensors it
//! returns.
//!
//! Every convention is read from the layer's config (padding rule, data format, momentum,
//! epsilon, gate order, reset placement, ...). Weight regularizers are attached to the
//! variables they penalize ([`super::regularizers`]). Attributes that change numerics but
//! that the IR cannot express are either an `Unsupported` error (when they change the forward
//! pass) or a note (activity regularizers, constraints, non-float32 dtype policies, stateful
//! RNNs, ...). A class this module does not know is `UnsupportedLayer`.

use model_ir::{
    Activation, BidiMerge, DType, DataLayout, GateOrder, GruReset, Interpolation, MergeOp,
    MomentumForm, Op, PadMode, Padding, ParamLayout, ParamRole, PoolKind, RnnBias, RnnCell,
    RnnDirection, VarianceEstimate,
};
use serde_json::Value;

use super::activations;
use super::config::{Cfg, shape_of, show};
use super::regularizers::{self, Attached};
use crate::error::ErrorKind;

/// A variable a layer stores, in `layer.weights` order.
#[derive(Debug, Clone)]
pub(super) struct VarSpec {
    /// Keras's variable name (`kernel`, `moving_mean`).
    pub(super) name: &'static str,
    pub(super) role: ParamRole,
    pub(super) layout: ParamLayout,
    /// Expected shape; `None` where the config does not fix a dimension.
    pub(super) shape: Vec<Option<usize>>,
    /// Whether Keras creates it trainable (before the layer's own `trainable` flag).
    pub(super) trainable: bool,
    /// The weight regularizer the layer's config attaches to it.
    pub(super) regularizer: Option<Attached>,
}

/// The variables stored in one HDF5 group below the layer's group.
#[derive(Debug, Clone)]
pub(super) struct VarGroup {
    /// Path below the layer's group (`""`, `cell`, `forward_layer/cell`).
    pub(super) sub: String,
    /// Inserted between the node name and the variable name (`forward_enc/`).
    pub(super) prefix: String,
    pub(super) vars: Vec<VarSpec>,
}

/// What a layer becomes in the IR.
#[derive(Debug, Clone)]
pub(super) struct Converted {
    pub(super) op: Op,
    pub(super) groups: Vec<VarGroup>,
    /// Number of tensors the layer returns.
    pub(super) outputs: usize,
    /// Minimum and maximum number of input tensors.
    pub(super) arity: (usize, usize),
    /// A Permute node to run first (`Flatten` of channels_first input), as `(perm)`.
    pub(super) transpose_first: Option<Vec<usize>>,
}

impl Converted {
    fn unary(op: Op) -> Converted {
        Converted {
            op,
            groups: Vec::new(),
            outputs: 1,
            arity: (1, 1),
            transpose_first: None,
        }
    }

    fn with_vars(op: Op, vars: Vec<VarSpec>) -> Converted {
        Converted {
            op,
            groups: vec![VarGroup {
                sub: String::new(),
                prefix: String::new(),
                vars,
            }],
            outputs: 1,
            arity: (1, 1),
            transpose_first: None,
        }
    }
}

fn var(
    name: &'static str,
    role: ParamRole,
    layout: ParamLayout,
    shape: Vec<Option<usize>>,
    trainable: bool,
) -> VarSpec {
    VarSpec {
        name,
        role,
        layout,
        shape,
        trainable,
        regularizer: None,
    }
}

/// The spatial rank in a class name ending in `1D`, `2D` or `3D`.
fn rank_of(class: &str) -> Option<usize> {
    match class.get(class.len().saturating_sub(2)..)? {
        "1D" => Some(1),
        "2D" => Some(2),
        "3D" => Some(3),
        _ => None,
    }
}

/// `data_format` → layout (`null` = the Keras default `channels_last`, as
/// `backend.image_data_format()` is unless keras.json changes it).
fn layout_of(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<DataLayout, ErrorKind> {
    match c.get("data_format") {
        None => Ok(DataLayout::ChannelsLast),
        Some(Value::Null) => {
            notes.push(format!(
                "layer `{}` ({}): data_format is null; assuming the Keras default channels_last",
                c.layer, c.class
            ));
            Ok(DataLayout::ChannelsLast)
        }
        Some(v) => match v.as_str() {
            Some("channels_last") => Ok(DataLayout::ChannelsLast),
            Some("channels_first") => Ok(DataLayout::ChannelsFirst),
            _ => Err(c.malformed(format!("data_format {}", show(v)))),
        },
    }
}

fn padding_of(c: &Cfg<'_>, allow_causal: bool) -> Result<Padding, ErrorKind> {
    let p = c.str("padding")?;
    match p.to_ascii_lowercase().as_str() {
        "valid" => Ok(Padding::Valid),
        // TensorFlow 'same': the odd pad element goes at the end.
        "same" => Ok(Padding::SameUpper),
        "causal" if allow_causal => Ok(Padding::Causal),
        _ => Err(c.unsupported(format!("padding \"{p}\""))),
    }
}

/// Channel count of the (single) input from `build_config.input_shape`.
fn in_channels(input: Option<&[Option<usize>]>, layout: DataLayout) -> Option<usize> {
    let s = input?;
    match layout {
        DataLayout::ChannelsLast => *s.last()?,
        DataLayout::ChannelsFirst => *s.get(1)?,
    }
}

fn last_dim(input: Option<&[Option<usize>]>) -> Option<usize> {
    *input?.last()?
}

/// Notes for attributes that change training numerics but have no place in the IR
/// (regularizers are [`regularizers::attach`]'s).
pub(super) fn training_only_notes(c: &Cfg<'_>, notes: &mut Vec<String>) {
    for (key, v) in c.map {
        if key.ends_with("_constraint") && !v.is_null() {
            let what = v
                .get("class_name")
                .and_then(Value::as_str)
                .map(|cls| match v.get("config") {
                    Some(cfg) if cfg.as_object().is_some_and(|m| !m.is_empty()) => {
                        format!("{cls}({})", show(cfg))
                    }
                    _ => cls.to_string(),
                })
                .unwrap_or_else(|| show(v));
            notes.push(format!(
                "layer `{}` ({}): {key} {what} is applied to the variable after every optimizer step; the IR does not carry it",
                c.layer, c.class
            ));
        }
    }
    if let Some(policy) = c
        .get("dtype")
        .and_then(|d| d.get("config"))
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
        && policy != "float32"
    {
        notes.push(format!(
            "layer `{}` ({}): dtype policy `{policy}` (variables and computations not in float32)",
            c.layer, c.class
        ));
    }
}

fn reject_non_null(c: &Cfg<'_>, keys: &[&str]) -> Result<(), ErrorKind> {
    for k in keys {
        if let Some(v) = c.get(k)
            && !v.is_null()
        {
            return Err(c.unsupported(format!("`{k}` = {}", show(v))));
        }
    }
    Ok(())
}

/// Converts one non-model layer. `input` is the single input's shape from `build_config`
/// (`None` when unknown or when the layer takes several inputs).
pub(super) fn convert(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let class = c.class;
    training_only_notes(c, notes);
    let unsupported_layer = || ErrorKind::UnsupportedLayer {
        name: c.layer.to_string(),
        class: class.to_string(),
    };
    let mut conv = match class {
        "Dense" => {
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
            Converted::with_vars(
                Op::Dense {
                    units,
                    use_bias,
                    activation,
                },
                vars,
            )
        }
        "Conv1D" | "Conv2D" | "Conv3D" => {
            let rank = rank_of(class).ok_or_else(unsupported_layer)?;
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
            Converted::with_vars(
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
            )
        }
        "DepthwiseConv1D" | "DepthwiseConv2D" => {
            let rank = rank_of(class).ok_or_else(unsupported_layer)?;
            let depth_multiplier = c.usize_or("depth_multiplier", 1, notes)?;
            let kernel_size = c.tuple("kernel_size", rank)?;
            let strides = c.tuple_or("strides", rank, 1, notes)?;
            let dilation = c.tuple_or("dilation_rate", rank, 1, notes)?;
            let padding = padding_of(c, false)?;
            let layout = layout_of(c, notes)?;
            let use_bias = c.bool_or("use_bias", true, notes)?;
            let activation = activations::from_value(c.get("activation"), c.layer)?;
            let cin = in_channels(input, layout);
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
            Converted::with_vars(
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
            )
        }
        "SeparableConv1D" | "SeparableConv2D" => {
            let rank = rank_of(class).ok_or_else(unsupported_layer)?;
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
            Converted::with_vars(
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
            )
        }
        "Conv1DTranspose" | "Conv2DTranspose" | "Conv3DTranspose" => {
            let rank =
                rank_of(&class[..class.len() - "Transpose".len()]).ok_or_else(unsupported_layer)?;
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
            Converted::with_vars(
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
            )
        }
        "BatchNormalization" => {
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
            Converted::with_vars(
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
            )
        }
        "LayerNormalization" => {
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
            Converted::with_vars(
                Op::LayerNorm {
                    axes,
                    epsilon,
                    center: center && !rms_scaling,
                    scale: scale || rms_scaling,
                    rms_scaling,
                },
                vars,
            )
        }
        "GroupNormalization" => {
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
            Converted::with_vars(
                Op::GroupNorm {
                    groups,
                    axis,
                    epsilon,
                    center,
                    scale,
                },
                vars,
            )
        }
        "Activation" => Converted::unary(Op::Activation {
            function: activations::from_value(Some(c.req("activation")?), c.layer)?,
        }),
        "ReLU" => {
            let max_value = c.opt_f64("max_value")?;
            let negative_slope = c.f64_or("negative_slope", 0.0, notes)?;
            let threshold = c.f64_or("threshold", 0.0, notes)?;
            Converted::unary(Op::Activation {
                function: Activation::Relu {
                    negative_slope,
                    max_value,
                    threshold,
                },
            })
        }
        "LeakyReLU" => {
            // Keras 3 calls it `negative_slope` (default 0.3); Keras 2 configs say `alpha`.
            let slope = match (c.get("negative_slope"), c.get("alpha")) {
                (Some(_), _) => c.f64("negative_slope")?,
                (None, Some(_)) => c.f64("alpha")?,
                (None, None) => c.f64_or("negative_slope", 0.3, notes)?,
            };
            Converted::unary(Op::Activation {
                function: Activation::LeakyRelu { slope },
            })
        }
        "ELU" => Converted::unary(Op::Activation {
            function: Activation::Elu {
                alpha: c.f64_or("alpha", 1.0, notes)?,
            },
        }),
        "Softmax" => {
            let axes = c.axes("axis")?;
            let [axis] = axes[..] else {
                return Err(c.unsupported(format!("softmax over axes {axes:?}")));
            };
            Converted::unary(Op::Activation {
                function: Activation::Softmax { axis },
            })
        }
        "Dropout" => {
            if let Some(ns) = c.get("noise_shape").filter(|v| !v.is_null()) {
                notes.push(format!(
                    "layer `{}` (Dropout): noise_shape {} shares the dropout mask along some axes; the IR records element-wise dropout",
                    c.layer,
                    show(ns)
                ));
            }
            Converted::unary(Op::Dropout {
                rate: c.f64("rate")?,
                spatial: None,
            })
        }
        "SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D" => {
            let layout = if class == "SpatialDropout1D" {
                DataLayout::ChannelsLast
            } else {
                layout_of(c, notes)?
            };
            Converted::unary(Op::Dropout {
                rate: c.f64("rate")?,
                spatial: Some(layout),
            })
        }
        "Flatten" => {
            let layout = layout_of(c, notes)?;
            let mut conv = Converted::unary(Op::Flatten {
                start_axis: 1,
                // keras/src/layers/reshaping/flatten.py transposes channels_first input to
                // channels_last before reshaping: the element order is always H, W, C.
                order: DataLayout::ChannelsLast,
            });
            if layout == DataLayout::ChannelsFirst {
                let rank = input.map(<[_]>::len).ok_or_else(|| {
                    c.unsupported(
                        "channels_first Flatten whose input rank is unknown (no build_config)",
                    )
                })?;
                if rank > 2 {
                    let mut perm = vec![0];
                    perm.extend(2..rank);
                    perm.push(1);
                    conv.transpose_first = Some(perm);
                }
            }
            conv
        }
        "Reshape" => {
            let v = c.req("target_shape")?;
            let target_shape = v
                .as_array()
                .and_then(|a| a.iter().map(Value::as_i64).collect::<Option<Vec<_>>>())
                .ok_or_else(|| c.malformed(format!("target_shape {}", show(v))))?;
            Converted::unary(Op::Reshape { target_shape })
        }
        "Permute" => {
            let v = c.req("dims")?;
            let dims = v
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| c.malformed(format!("dims {}", show(v))))?;
            // Keras dims are 1-based and exclude the batch axis.
            let mut sorted = dims.clone();
            sorted.sort_unstable();
            if sorted != (1..=dims.len()).collect::<Vec<_>>() {
                return Err(c.malformed(format!(
                    "dims {dims:?} are not a permutation of 1..={}",
                    dims.len()
                )));
            }
            let mut perm = vec![0];
            perm.extend(dims);
            Converted::unary(Op::Permute { perm })
        }
        "MaxPooling1D" | "MaxPooling2D" | "MaxPooling3D" | "AveragePooling1D"
        | "AveragePooling2D" | "AveragePooling3D" => {
            let rank = rank_of(class).ok_or_else(unsupported_layer)?;
            let pool = if class.starts_with("Max") {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            let pool_size = c.tuple("pool_size", rank)?;
            let strides = match c.get("strides") {
                None | Some(Value::Null) => pool_size.clone(),
                Some(v) => c.tuple_of("strides", v, rank)?,
            };
            Converted::unary(Op::Pool {
                pool,
                rank,
                pool_size,
                strides,
                dilation: vec![1; rank],
                padding: padding_of(c, false)?,
                layout: layout_of(c, notes)?,
                // tf.nn.avg_pool with 'SAME' divides by the number of real elements.
                count_include_pad: false,
                ceil_mode: false,
            })
        }
        "GlobalAveragePooling1D"
        | "GlobalAveragePooling2D"
        | "GlobalAveragePooling3D"
        | "GlobalMaxPooling1D"
        | "GlobalMaxPooling2D"
        | "GlobalMaxPooling3D" => {
            let rank = rank_of(class).ok_or_else(unsupported_layer)?;
            let pool = if class.starts_with("GlobalMax") {
                PoolKind::Max
            } else {
                PoolKind::Avg
            };
            Converted::unary(Op::GlobalPool {
                pool,
                rank,
                layout: layout_of(c, notes)?,
                keepdims: c.bool_or("keepdims", false, notes)?,
            })
        }
        "ZeroPadding1D" | "ZeroPadding2D" | "ZeroPadding3D" => {
            let rank = rank_of(class).ok_or_else(unsupported_layer)?;
            let v = c.req("padding")?;
            let (begin, end) = zero_padding(c, v, rank)?;
            Converted::unary(Op::Pad {
                rank,
                begin,
                end,
                layout: layout_of(c, notes)?,
                mode: PadMode::Constant(0.0),
            })
        }
        "UpSampling1D" | "UpSampling2D" | "UpSampling3D" => {
            let rank = rank_of(class).ok_or_else(unsupported_layer)?;
            let size = c.tuple("size", rank)?;
            let interpolation = match c.get("interpolation").and_then(Value::as_str) {
                None | Some("nearest") => Interpolation::Nearest,
                Some("bilinear") => Interpolation::Bilinear,
                Some(other) => return Err(c.unsupported(format!("interpolation \"{other}\""))),
            };
            Converted::unary(Op::UpSampling {
                rank,
                size,
                interpolation,
                layout: layout_of(c, notes)?,
            })
        }
        "Embedding" => {
            reject_non_null(c, &["lora_rank", "quantization_config"])?;
            let input_dim = c.usize("input_dim")?;
            let output_dim = c.usize("output_dim")?;
            let mask_zero = c.bool_or("mask_zero", false, notes)?;
            Converted::with_vars(
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
            )
        }
        "SimpleRNN" | "LSTM" | "GRU" => {
            let rnn = rnn(c, last_dim(input), notes)?;
            let outputs = 1 + if rnn.return_state { rnn.states } else { 0 };
            Converted {
                op: rnn.op(RnnDirection::Forward),
                groups: vec![VarGroup {
                    sub: "cell".into(),
                    prefix: String::new(),
                    vars: rnn.vars,
                }],
                outputs,
                arity: (1, 1),
                transpose_first: None,
            }
        }
        "Bidirectional" => bidirectional(c, last_dim(input), notes)?,
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" | "Concatenate" => {
            let op = match class {
                "Add" => MergeOp::Add,
                "Subtract" => MergeOp::Subtract,
                "Multiply" => MergeOp::Multiply,
                "Average" => MergeOp::Average,
                "Maximum" => MergeOp::Maximum,
                "Minimum" => MergeOp::Minimum,
                _ => MergeOp::Concatenate(c.i64_or("axis", -1, notes)?),
            };
            let arity = if class == "Subtract" {
                (2, 2)
            } else {
                (1, usize::MAX)
            };
            Converted {
                op: Op::Merge { op },
                groups: Vec::new(),
                outputs: 1,
                arity,
                transpose_first: None,
            }
        }
        "Rescaling" => {
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
            Converted::unary(Op::Rescaling { scale, offset })
        }
        "Normalization" => normalization(c, input, notes)?,
        "Identity" => Converted::unary(Op::Identity),
        _ => return Err(unsupported_layer()),
    };
    // Bidirectional attaches its inner layers' regularizers itself.
    if class != "Bidirectional" {
        regularizers::attach(c, &mut conv.groups, notes)?;
    }
    Ok(conv)
}

fn vec_layout(shape: &[Option<usize>]) -> ParamLayout {
    if shape.len() == 1 {
        ParamLayout::Vector
    } else {
        ParamLayout::AsIs
    }
}

/// The size of `axis` (negative from the end) of the input shape.
fn axis_dim(input: Option<&[Option<usize>]>, axis: i64) -> Option<usize> {
    let s = input?;
    let n = s.len() as i64;
    let a = if axis < 0 { n + axis } else { axis };
    if (0..n).contains(&a) {
        s[a as usize]
    } else {
        None
    }
}

/// ZeroPadding `padding`: an int, a list of `rank` ints, or a list of `rank` `[begin, end]` pairs.
fn zero_padding(
    c: &Cfg<'_>,
    v: &Value,
    rank: usize,
) -> Result<(Vec<usize>, Vec<usize>), ErrorKind> {
    let bad = || c.malformed(format!("padding {}", show(v)));
    let num = |x: &Value| {
        x.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(bad)
    };
    match v {
        Value::Array(items)
            if rank == 1 && items.len() == 2 && items.iter().all(Value::is_number) =>
        {
            Ok((vec![num(&items[0])?], vec![num(&items[1])?]))
        }
        Value::Array(items) if items.len() == rank => {
            let mut begin = Vec::new();
            let mut end = Vec::new();
            for it in items {
                match it {
                    Value::Array(pair) if pair.len() == 2 => {
                        begin.push(num(&pair[0])?);
                        end.push(num(&pair[1])?);
                    }
                    other => {
                        let p = num(other)?;
                        begin.push(p);
                        end.push(p);
                    }
                }
            }
            Ok((begin, end))
        }
        other => {
            let p = num(other)?;
            Ok((vec![p; rank], vec![p; rank]))
        }
    }
}

/// A recurrent layer's attributes and variables.
struct Rnn {
    cell: RnnCell,
    units: usize,
    activation: Activation,
    recurrent_activation: Option<Activation>,
    gate_order: GateOrder,
    bias: RnnBias,
    gru_reset: Option<GruReset>,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
    unit_forget_bias: bool,
    dropout: f64,
    recurrent_dropout: f64,
    /// Number of state tensors (LSTM: h and c).
    states: usize,
    vars: Vec<VarSpec>,
}

impl Rnn {
    fn op(&self, direction: RnnDirection) -> Op {
        Op::Rnn {
            cell: self.cell,
            units: self.units,
            activation: self.activation.clone(),
            recurrent_activation: self.recurrent_activation.clone(),
            gate_order: self.gate_order,
            bias: self.bias,
            gru_reset: self.gru_reset,
            direction,
            return_sequences: self.return_sequences,
            return_state: self.return_state,
            go_backwards: self.go_backwards,
            batch_first: true,
            unit_forget_bias: self.unit_forget_bias,
            dropout: self.dropout,
            recurrent_dropout: self.recurrent_dropout,
        }
    }

    /// The attributes that must agree between the two directions of a Bidirectional layer.
    fn signature(&self) -> String {
        format!(
            "{:?} {} {:?} {:?} {:?} {:?} {} {} {} {} {}",
            self.cell,
            self.units,
            self.activation,
            self.recurrent_activation,
            self.bias,
            self.gru_reset,
            self.return_sequences,
            self.return_state,
            self.unit_forget_bias,
            self.dropout,
            self.recurrent_dropout
        )
    }
}

fn rnn(c: &Cfg<'_>, features: Option<usize>, notes: &mut Vec<String>) -> Result<Rnn, ErrorKind> {
    let cell = match c.class {
        "SimpleRNN" => RnnCell::SimpleRnn,
        "LSTM" => RnnCell::Lstm,
        "GRU" => RnnCell::Gru,
        _ => {
            return Err(ErrorKind::UnsupportedLayer {
                name: c.layer.to_string(),
                class: c.class.to_string(),
            });
        }
    };
    if c.get("stateful").and_then(Value::as_bool) == Some(true) {
        notes.push(format!(
            "layer `{}` ({}): stateful=True carries the state across batches; the IR starts every batch from zeros",
            c.layer, c.class
        ));
    }
    if c.get("time_major").and_then(Value::as_bool) == Some(true) {
        return Err(c.unsupported("time_major=True"));
    }
    let units = c.usize("units")?;
    let activation = match c.get("activation") {
        Some(v) => activations::from_value(Some(v), c.layer)?,
        None => {
            notes.push(format!(
                "layer `{}` ({}): `activation` is absent from config.json; using the Keras default \"tanh\"",
                c.layer, c.class
            ));
            Activation::Tanh
        }
    };
    let recurrent_activation = match cell {
        RnnCell::SimpleRnn => None,
        _ => Some(match c.get("recurrent_activation") {
            Some(v) => activations::from_value(Some(v), c.layer)?,
            None => {
                notes.push(format!(
                    "layer `{}` ({}): `recurrent_activation` is absent from config.json; using the Keras default \"sigmoid\"",
                    c.layer, c.class
                ));
                Activation::Sigmoid
            }
        }),
    };
    let use_bias = c.bool_or("use_bias", true, notes)?;
    let reset_after = match cell {
        RnnCell::Gru => Some(c.bool_or("reset_after", true, notes)?),
        _ => None,
    };
    let (gate_order, gates) = match cell {
        RnnCell::SimpleRnn => (GateOrder::Single, 1),
        RnnCell::Lstm => (GateOrder::Ifco, 4),
        RnnCell::Gru => (GateOrder::Zrh, 3),
    };
    let bias = match (use_bias, reset_after) {
        (false, _) => RnnBias::None,
        (true, Some(true)) => RnnBias::KerasInputRecurrentRows,
        (true, _) => RnnBias::Single,
    };
    let gh = units * gates;
    let mut vars = vec![
        var(
            "kernel",
            ParamRole::InputKernel,
            ParamLayout::RnnInGates { gate_order },
            vec![features, Some(gh)],
            true,
        ),
        var(
            "recurrent_kernel",
            ParamRole::RecurrentKernel,
            ParamLayout::RnnInGates { gate_order },
            vec![Some(units), Some(gh)],
            true,
        ),
    ];
    match bias {
        RnnBias::Single => vars.push(var(
            "bias",
            ParamRole::InputBias,
            ParamLayout::RnnGateVector { gate_order },
            vec![Some(gh)],
            true,
        )),
        RnnBias::KerasInputRecurrentRows => vars.push(var(
            "bias",
            ParamRole::Bias,
            ParamLayout::GruBiasRows { gate_order },
            vec![Some(2), Some(gh)],
            true,
        )),
        _ => {}
    }
    Ok(Rnn {
        cell,
        units,
        activation,
        recurrent_activation,
        gate_order,
        bias,
        gru_reset: reset_after.map(|r| {
            if r {
                GruReset::AfterMatmul
            } else {
                GruReset::BeforeMatmul
            }
        }),
        return_sequences: c.bool_or("return_sequences", false, notes)?,
        return_state: c.bool_or("return_state", false, notes)?,
        go_backwards: c.bool_or("go_backwards", false, notes)?,
        unit_forget_bias: cell == RnnCell::Lstm && c.bool_or("unit_forget_bias", true, notes)?,
        dropout: c.f64_or("dropout", 0.0, notes)?,
        recurrent_dropout: c.f64_or("recurrent_dropout", 0.0, notes)?,
        states: if cell == RnnCell::Lstm { 2 } else { 1 },
        vars,
    })
}

/// A wrapped layer's `{"class_name", "config"}` as a [`Cfg`].
fn inner<'a>(c: &Cfg<'a>, key: &'static str) -> Result<Option<Cfg<'a>>, ErrorKind> {
    let Some(v) = c.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let class = v
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| c.malformed(format!("`{key}` has no class_name")))?;
    let map = v
        .get("config")
        .and_then(Value::as_object)
        .ok_or_else(|| c.malformed(format!("`{key}` has no config object")))?;
    let name = map.get("name").and_then(Value::as_str).unwrap_or(key);
    Ok(Some(Cfg::new(map, name, class)))
}

fn bidirectional(
    c: &Cfg<'_>,
    features: Option<usize>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let fwd_cfg = inner(c, "layer")?.ok_or_else(|| {
        ErrorKind::Missing(format!(
            "field `layer` in the config of layer `{}` (Bidirectional)",
            c.layer
        ))
    })?;
    training_only_notes(&fwd_cfg, notes);
    let fwd = rnn(&fwd_cfg, features, notes)?;
    let bwd_cfg = inner(c, "backward_layer")?;
    let (bwd_name, bwd) = match &bwd_cfg {
        Some(b) => {
            training_only_notes(b, notes);
            (b.layer.to_string(), Some(rnn(b, features, notes)?))
        }
        // Keras names the generated backward copy `backward_<inner name>`.
        None => (
            format!("backward_{}", fwd_cfg.layer.trim_start_matches("forward_")),
            None,
        ),
    };
    if let Some(b) = &bwd
        && (b.signature() != fwd.signature() || b.go_backwards == fwd.go_backwards)
    {
        return Err(c.unsupported(
            "a backward_layer whose configuration differs from the forward layer's (other than go_backwards)",
        ));
    }
    let merge = match c.get("merge_mode") {
        None => {
            notes.push(format!(
                "layer `{}` (Bidirectional): `merge_mode` is absent from config.json; using the Keras default \"concat\"",
                c.layer
            ));
            BidiMerge::Concat
        }
        Some(Value::Null) => BidiMerge::None,
        Some(v) => match v.as_str() {
            Some("concat") => BidiMerge::Concat,
            Some("sum") => BidiMerge::Sum,
            Some("mul") => BidiMerge::Mul,
            Some("ave") => BidiMerge::Ave,
            _ => return Err(c.malformed(format!("merge_mode {}", show(v)))),
        },
    };
    let main = if merge == BidiMerge::None { 2 } else { 1 };
    let outputs = main + if fwd.return_state { 2 * fwd.states } else { 0 };
    let mut fwd_group = VarGroup {
        sub: "forward_layer/cell".into(),
        prefix: format!("{}/", fwd_cfg.layer),
        vars: fwd.vars.clone(),
    };
    let mut bwd_group = VarGroup {
        sub: "backward_layer/cell".into(),
        prefix: format!("{bwd_name}/"),
        vars: bwd
            .as_ref()
            .map_or_else(|| fwd.vars.clone(), |b| b.vars.clone()),
    };
    // Without a backward_layer config, Keras builds the backward copy from the forward
    // layer's config, regularizers included.
    match &bwd_cfg {
        Some(b) => {
            regularizers::attach(&fwd_cfg, std::slice::from_mut(&mut fwd_group), notes)?;
            regularizers::attach(b, std::slice::from_mut(&mut bwd_group), notes)?;
        }
        None => {
            let mut both = [fwd_group, bwd_group];
            regularizers::attach(&fwd_cfg, &mut both, notes)?;
            [fwd_group, bwd_group] = both;
        }
    }
    Ok(Converted {
        op: fwd.op(RnnDirection::Bidirectional(merge)),
        groups: vec![fwd_group, bwd_group],
        outputs,
        arity: (1, 1),
        transpose_first: None,
    })
}

fn normalization(
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

/// Normalization `mean`/`variance` given in the config, as f32 tensors of their nested shape.
pub(super) fn config_tensor(c: &Cfg<'_>, key: &str) -> Result<model_ir::Tensor, ErrorKind> {
    fn walk(v: &Value, depth: usize, shape: &mut Vec<usize>, out: &mut Vec<f32>) -> Option<()> {
        match v {
            Value::Array(items) => {
                if shape.len() == depth {
                    shape.push(items.len());
                } else if shape.get(depth) != Some(&items.len()) {
                    return None;
                }
                for it in items {
                    walk(it, depth + 1, shape, out)?;
                }
                Some(())
            }
            other => {
                if depth != shape.len() {
                    return None;
                }
                out.push(other.as_f64()? as f32);
                Some(())
            }
        }
    }
    let v = c.req(key)?;
    let mut shape = Vec::new();
    let mut values = Vec::new();
    walk(v, 0, &mut shape, &mut values)
        .and_then(|_| model_ir::Tensor::from_f32(&shape, values))
        .ok_or_else(|| {
            c.malformed(format!(
                "`{key}` {} is not a number or a regular nested list",
                show(v)
            ))
        })
}

/// The input's shape and dtype for an `InputLayer` config.
pub(super) fn input_layer(c: &Cfg<'_>) -> Result<(Vec<Option<usize>>, DType), ErrorKind> {
    for key in ["sparse", "ragged"] {
        if c.get(key).and_then(Value::as_bool) == Some(true) {
            return Err(c.unsupported(format!("{key} input")));
        }
    }
    let shape = match (c.get("batch_shape"), c.get("batch_input_shape")) {
        (Some(v), _) | (None, Some(v)) => {
            shape_of(v).ok_or_else(|| c.malformed(format!("batch_shape {}", show(v))))?
        }
        (None, None) => {
            return Err(ErrorKind::Missing(format!(
                "field `batch_shape` in the config of input layer `{}`",
                c.layer
            )));
        }
    };
    let dtype = match c.get("dtype") {
        None | Some(Value::Null) => "float32",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => other
            .get("config")
            .and_then(|x| x.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| c.malformed(format!("dtype {}", show(other))))?,
    };
    Ok((
        shape,
        dtype_of(dtype).ok_or_else(|| c.unsupported(format!("input dtype {dtype}")))?,
    ))
}

/// A Keras dtype name → IR dtype.
pub(super) fn dtype_of(name: &str) -> Option<DType> {
    Some(match name {
        "float32" => DType::F32,
        "float64" => DType::F64,
        "float16" => DType::F16,
        "bfloat16" => DType::BF16,
        "int32" => DType::I32,
        "int64" => DType::I64,
        "uint8" => DType::U8,
        "bool" => DType::Bool,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_from_class_name() {
        assert_eq!(rank_of("Conv2D"), Some(2));
        assert_eq!(rank_of("MaxPooling1D"), Some(1));
        assert_eq!(rank_of("Dense"), None);
    }

    #[test]
    fn zero_padding_forms() {
        let map = serde_json::Map::new();
        let c = Cfg::new(&map, "p", "ZeroPadding2D");
        let v = serde_json::json!([[1, 0], [0, 2]]);
        assert_eq!(zero_padding(&c, &v, 2).ok(), Some((vec![1, 0], vec![0, 2])));
        let v = serde_json::json!(3);
        assert_eq!(zero_padding(&c, &v, 2).ok(), Some((vec![3, 3], vec![3, 3])));
        let v = serde_json::json!([1, 2]);
        assert_eq!(zero_padding(&c, &v, 1).ok(), Some((vec![1], vec![2])));
    }
}
