//! One module per IR op: compile-time validation, shape inference, forward and vector-Jacobian
//! product. [`Kernel`] has one variant per [`model_ir::Op`] variant; `forward.rs` and
//! `backward.rs` dispatch over it with exhaustive matches.

// The kernel contexts live in the leaf `kernel_cx`; re-exported for the op modules.
pub(crate) use kernel_cx::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes, Saved, param};

pub(crate) mod activation;
pub(crate) mod batch_norm;
pub(crate) mod constant_binary;
pub(crate) mod conv;
pub(crate) mod conv_transpose;
pub(crate) mod dense;
pub(crate) mod depthwise_conv;
pub(crate) mod dropout;
pub(crate) mod embedding;
pub(crate) mod flatten;
pub(crate) mod global_pool;
pub(crate) mod group_norm;
pub(crate) mod identity;
pub(crate) mod input;
pub(crate) mod kernel_cx;
pub(crate) mod layer_norm;
pub(crate) mod merge;
pub(crate) mod norm_stats;
pub(crate) mod normalization;
pub(crate) mod pad;
pub(crate) mod permute;
pub(crate) mod pool;
pub(crate) mod reduce;
pub(crate) mod rescaling;
pub(crate) mod reshape;
pub(crate) mod resize;
pub(crate) mod rnn;
pub(crate) mod select;
pub(crate) mod separable_conv;
pub(crate) mod slice;
pub(crate) mod squeeze;
pub(crate) mod unary;
pub(crate) mod unsqueeze;
pub(crate) mod up_sampling;
pub(crate) mod util;
pub(crate) mod window;

/// A node resolved against its parameters: one variant per [`model_ir::Op`] variant.
#[derive(Debug, Clone)]
pub(crate) enum Kernel {
    Input(input::Input),
    Dense(dense::Dense),
    Conv(conv::Conv),
    DepthwiseConv(depthwise_conv::DepthwiseConv),
    SeparableConv(separable_conv::SeparableConv),
    ConvTranspose(conv_transpose::ConvTranspose),
    BatchNorm(batch_norm::BatchNorm),
    LayerNorm(layer_norm::LayerNorm),
    GroupNorm(group_norm::GroupNorm),
    Activation(activation::ActivationOp),
    Dropout(dropout::Dropout),
    Flatten(flatten::Flatten),
    Reshape(reshape::Reshape),
    Permute(permute::Permute),
    Pool(pool::Pool),
    GlobalPool(global_pool::GlobalPool),
    Pad(pad::Pad),
    UpSampling(up_sampling::UpSampling),
    Resize(resize::Resize),
    Embedding(embedding::Embedding),
    Rnn(rnn::Rnn),
    Merge(merge::Merge),
    ConstantBinary(constant_binary::ConstantBinary),
    Unary(unary::Unary),
    Rescaling(rescaling::Rescaling),
    Normalization(normalization::Normalization),
    Identity(identity::Identity),
    Reduce(reduce::Reduce),
    Select(select::Select),
    ReshapeAll(reshape::ReshapeAll),
    Slice(slice::Slice),
    Squeeze(squeeze::Squeeze),
    Unsqueeze(unsqueeze::Unsqueeze),
}
