//! One Keras layer's config → an IR [`Op`], the variables it stores and how many tensors it
//! returns.
//!
//! Every convention is read from the layer's config (padding rule, data format, momentum,
//! epsilon, gate order, reset placement, ...). Weight regularizers are attached to the
//! variables they penalize ([`super::regularizers`]). Attributes that change numerics but
//! that the IR cannot express are either an `Unsupported` error (when they change the forward
//! pass) or a note (activity regularizers, non-float32 dtype policies, stateful
//! RNNs, ...). A class this module does not know is `UnsupportedLayer`.
//!
//! [`convert`] dispatches on the class name to one function per class family, each in its
//! family's module (dense, conv, norm, activation, regularization, reshaping, pooling,
//! recurrent, merge, preprocessing); the shared variable specs and config readers live here.

use model_ir::{DType, DataLayout, Op, Padding, ParamLayout, ParamRole};
use serde_json::Value;

use super::config::{Cfg, shape_of, show};
use super::regularizers::{self, Attached};
use crate::error::ErrorKind;

mod activation;
mod conv;
mod dense;
mod gate;
mod merge;
mod norm;
mod pooling;
mod preprocessing;
mod recurrent;
mod regularization;
mod reshaping;

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
    /// The initializer the layer's config names for it.
    pub(super) initializer: Option<model_ir::Initializer>,
    /// The constraint the layer's config applies to it after every optimizer step.
    pub(super) constraint: Option<model_ir::Constraint>,
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
        initializer: None,
        constraint: None,
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

/// The error for a class this module does not convert.
fn unsupported_layer(c: &Cfg<'_>) -> ErrorKind {
    ErrorKind::UnsupportedLayer {
        name: c.layer.to_string(),
        class: c.class.to_string(),
    }
}

/// Converts one non-model layer. `input` is the single input's shape from `build_config`
/// (`None` when unknown or when the layer takes several inputs).
pub(super) fn convert(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let class = c.class;
    gate::check(c)?;
    training_only_notes(c, notes);
    let mut conv = match class {
        "Dense" => dense::dense(c, input, notes)?,
        "Conv1D" | "Conv2D" | "Conv3D" => conv::conv(c, input, notes)?,
        "DepthwiseConv1D" | "DepthwiseConv2D" => conv::depthwise_conv(c, input, notes)?,
        "SeparableConv1D" | "SeparableConv2D" => conv::separable_conv(c, input, notes)?,
        "Conv1DTranspose" | "Conv2DTranspose" | "Conv3DTranspose" => {
            conv::conv_transpose(c, input, notes)?
        }
        "BatchNormalization" => norm::batch_norm(c, input, notes)?,
        "LayerNormalization" => norm::layer_norm(c, input, notes)?,
        "GroupNormalization" => norm::group_norm(c, input, notes)?,
        "Activation" => activation::activation(c)?,
        "ReLU" => activation::relu(c, notes)?,
        "LeakyReLU" => activation::leaky_relu(c, notes)?,
        "ELU" => activation::elu(c, notes)?,
        "Softmax" => activation::softmax(c)?,
        "Dropout" => regularization::dropout(c, notes)?,
        "SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D" => {
            regularization::spatial_dropout(c, notes)?
        }
        "Flatten" => reshaping::flatten(c, input, notes)?,
        "Reshape" => reshaping::reshape(c)?,
        "Permute" => reshaping::permute(c)?,
        "MaxPooling1D" | "MaxPooling2D" | "MaxPooling3D" | "AveragePooling1D"
        | "AveragePooling2D" | "AveragePooling3D" => pooling::pool(c, notes)?,
        "GlobalAveragePooling1D"
        | "GlobalAveragePooling2D"
        | "GlobalAveragePooling3D"
        | "GlobalMaxPooling1D"
        | "GlobalMaxPooling2D"
        | "GlobalMaxPooling3D" => pooling::global_pool(c, notes)?,
        "ZeroPadding1D" | "ZeroPadding2D" | "ZeroPadding3D" => {
            reshaping::zero_padding_layer(c, notes)?
        }
        "UpSampling1D" | "UpSampling2D" | "UpSampling3D" => reshaping::upsampling(c, notes)?,
        "Embedding" => dense::embedding(c, notes)?,
        "SimpleRNN" | "LSTM" | "GRU" => recurrent::recurrent(c, input, notes)?,
        "Bidirectional" => recurrent::bidirectional(c, last_dim(input), notes)?,
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" | "Concatenate" => {
            merge::merge(c, notes)?
        }
        "Rescaling" => preprocessing::rescaling(c, notes)?,
        "Resizing" => reshaping::resizing(c, notes)?,
        "Normalization" => preprocessing::normalization(c, input, notes)?,
        "Identity" => Converted::unary(Op::Identity),
        _ => return Err(unsupported_layer(c)),
    };
    // Bidirectional attaches its inner layers' regularizers itself.
    if class != "Bidirectional" {
        regularizers::attach(c, &mut conv.groups, notes)?;
        super::initializers::attach(c, &mut conv.groups, notes)?;
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

/// Normalization `mean`/`variance` given in the config: a number is broadcast over the
/// normalized axes (Keras `ops.broadcast_to` in `Normalization.build`), a list keeps its
/// nested shape.
pub(super) fn normalization_stat(
    c: &Cfg<'_>,
    key: &str,
    input: Option<&[Option<usize>]>,
) -> Result<model_ir::Tensor, ErrorKind> {
    let t = config_tensor(c, key)?;
    let axes = c.axes("axis")?;
    if !t.shape().is_empty() || axes.is_empty() {
        return Ok(t);
    }
    let dims: Option<Vec<usize>> = axes.iter().map(|a| axis_dim(input, *a)).collect();
    let dims = dims.ok_or_else(|| {
        c.unsupported(format!(
            "a single `{key}` over axes {axes:?} of an input whose shape is unknown (no build_config)"
        ))
    })?;
    let v = t.to_f64().first().copied().unwrap_or(0.0) as f32;
    let n: usize = dims.iter().product();
    model_ir::Tensor::from_f32(&dims, vec![v; n])
        .ok_or_else(|| c.malformed(format!("`{key}` broadcast to {dims:?}")))
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
}
