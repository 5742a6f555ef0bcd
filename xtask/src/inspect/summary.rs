//! One-line summaries of an op's key attributes and conventions (the `attributes` column of
//! `cargo xtask inspect`), one function per family of ops.

use model_ir::conventions::fmt_num;
use model_ir::{Activation, Op, RnnDirection};

use super::shape_str;

/// Key attributes and conventions of an op, in one line.
pub(crate) fn summarize(op: &Op) -> String {
    let mut parts: Vec<String> = Vec::new();
    match op {
        Op::Dense { .. }
        | Op::Conv { .. }
        | Op::DepthwiseConv { .. }
        | Op::SeparableConv { .. }
        | Op::ConvTranspose { .. } => weighted(op, &mut parts),
        Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::GroupNorm { .. }
        | Op::Normalization { .. }
        | Op::Rescaling { .. } => normalization(op, &mut parts),
        Op::Pool { .. } | Op::GlobalPool { .. } | Op::Pad { .. } | Op::UpSampling { .. } => {
            spatial(op, &mut parts)
        }
        Op::Rnn { .. } => recurrent(op, &mut parts),
        Op::Resize {
            axes,
            mode,
            coordinate,
            exclude_outside,
            antialias,
        } => {
            for a in axes {
                let len = match (a.size, a.scale) {
                    (Some(m), _) => m.to_string(),
                    (None, Some(s)) => format!("×{s}"),
                    (None, None) => "?".into(),
                };
                parts.push(format!("axis{}→{len}", a.axis));
            }
            parts.push(format!("{mode:?} {coordinate:?}"));
            if *exclude_outside {
                parts.push("exclude_outside".into());
            }
            if *antialias {
                parts.push("antialias".into());
            }
        }
        Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::ReshapeAll { .. }
        | Op::Permute { .. }
        | Op::Reduce { .. }
        | Op::Select { .. }
        | Op::Slice { .. }
        | Op::Squeeze { .. }
        | Op::Unsqueeze { .. } => shape_ops(op, &mut parts),
        Op::Input { .. }
        | Op::Activation { .. }
        | Op::Dropout { .. }
        | Op::Embedding { .. }
        | Op::Merge { .. }
        | Op::ConstantBinary { .. }
        | Op::Unary { .. }
        | Op::Identity => elementwise_and_other(op, &mut parts),
    }
    parts.join(" ")
}

fn act(a: &Activation) -> Option<String> {
    match a {
        Activation::Linear => None,
        other => Some(other.describe()),
    }
}

fn list(v: &[usize]) -> String {
    let s: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    s.join("x")
}

fn pool_name(p: model_ir::PoolKind) -> &'static str {
    match p {
        model_ir::PoolKind::Max => "max",
        model_ir::PoolKind::Avg => "avg",
    }
}

/// `stride=...` when any stride is not 1.
fn strides_if_any(strides: &[usize], parts: &mut Vec<String>) {
    if strides.iter().any(|s| *s != 1) {
        parts.push(format!("stride={}", list(strides)));
    }
}

/// Dense and the convolutions: size, kernel, strides, padding, layout, fused activation.
fn weighted(op: &Op, parts: &mut Vec<String>) {
    match op {
        Op::Dense {
            units,
            use_bias,
            activation,
        } => {
            parts.push(format!("units={units}"));
            parts.extend(act(activation));
            if !use_bias {
                parts.push("no-bias".into());
            }
        }
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
        } => {
            parts.push(format!("{rank}d filters={filters} k={}", list(kernel_size)));
            strides_if_any(strides, parts);
            if dilation.iter().any(|s| *s != 1) {
                parts.push(format!("dilation={}", list(dilation)));
            }
            if *groups != 1 {
                parts.push(format!("groups={groups}"));
            }
            parts.push(format!("pad={}", padding.describe()));
            parts.push(layout.name().into());
            parts.extend(act(activation));
            if !use_bias {
                parts.push("no-bias".into());
            }
        }
        Op::DepthwiseConv {
            rank,
            depth_multiplier,
            kernel_size,
            strides,
            padding,
            layout,
            activation,
            ..
        } => {
            parts.push(format!(
                "{rank}d mult={depth_multiplier} k={}",
                list(kernel_size)
            ));
            strides_if_any(strides, parts);
            parts.push(format!("pad={}", padding.describe()));
            parts.push(layout.name().into());
            parts.extend(act(activation));
        }
        Op::SeparableConv {
            rank,
            filters,
            depth_multiplier,
            kernel_size,
            strides,
            padding,
            layout,
            activation,
            ..
        } => {
            parts.push(format!(
                "{rank}d filters={filters} mult={depth_multiplier} k={}",
                list(kernel_size)
            ));
            strides_if_any(strides, parts);
            parts.push(format!("pad={}", padding.describe()));
            parts.push(layout.name().into());
            parts.extend(act(activation));
        }
        Op::ConvTranspose {
            rank,
            filters,
            kernel_size,
            strides,
            padding,
            output_padding,
            layout,
            activation,
            ..
        } => {
            parts.push(format!("{rank}d filters={filters} k={}", list(kernel_size)));
            parts.push(format!("stride={}", list(strides)));
            parts.push(format!("pad={}", padding.describe()));
            if let Some(op) = output_padding {
                parts.push(format!("output_padding={}", list(op)));
            }
            parts.push(layout.name().into());
            parts.extend(act(activation));
        }
        _ => {}
    }
}

/// The normalizations (batch, layer, group, Keras `Normalization`) and `Rescaling`: axes,
/// epsilon, running-statistics conventions.
fn normalization(op: &Op, parts: &mut Vec<String>) {
    match op {
        Op::BatchNorm {
            axis,
            epsilon,
            momentum,
            running_variance,
            center,
            scale,
            trainable,
            track_running_stats,
            training_mode,
        } => {
            parts.push(format!("axis={axis} eps={}", fmt_num(*epsilon)));
            parts.push(format!("momentum={}", momentum.describe()));
            if let Some(k) = momentum.keep_fraction() {
                parts.push(format!("(keeps {} of old)", fmt_num(k)));
            }
            parts.push(format!(
                "running_var={}",
                match running_variance {
                    model_ir::VarianceEstimate::Biased => "biased",
                    model_ir::VarianceEstimate::Unbiased => "unbiased",
                }
            ));
            if !center {
                parts.push("no-center".into());
            }
            if !scale {
                parts.push("no-scale".into());
            }
            if !trainable {
                parts.push("frozen(inference-mode)".into());
            }
            if !track_running_stats {
                parts.push("no-running-stats".into());
            }
            if let Some(t) = training_mode {
                parts.push(format!("training_mode={}", u8::from(*t)));
            }
        }
        Op::LayerNorm {
            axes,
            epsilon,
            center,
            scale,
            rms_scaling,
        } => {
            parts.push(format!("axes={axes:?} eps={}", fmt_num(*epsilon)));
            if *rms_scaling {
                parts.push("rms".into());
            }
            if !center {
                parts.push("no-center".into());
            }
            if !scale {
                parts.push("no-scale".into());
            }
        }
        Op::GroupNorm {
            groups,
            axis,
            epsilon,
            ..
        } => parts.push(format!(
            "groups={groups} axis={axis} eps={}",
            fmt_num(*epsilon)
        )),
        Op::Normalization {
            axes,
            invert,
            epsilon,
        } => {
            parts.push(format!("axes={axes:?} eps={}", fmt_num(*epsilon)));
            if *invert {
                parts.push("invert".into());
            }
        }
        Op::Rescaling { scale, offset } => parts.push(format!(
            "scale={} offset={}",
            fmt_num(*scale),
            fmt_num(*offset)
        )),
        _ => {}
    }
}

/// Pooling, padding and up-sampling: window geometry and layout.
fn spatial(op: &Op, parts: &mut Vec<String>) {
    match op {
        Op::Pool {
            pool,
            rank,
            pool_size,
            strides,
            padding,
            layout,
            count_include_pad,
            ceil_mode,
            ..
        } => {
            parts.push(format!(
                "{} {rank}d size={} stride={}",
                pool_name(*pool),
                list(pool_size),
                list(strides)
            ));
            parts.push(format!("pad={}", padding.describe()));
            parts.push(layout.name().into());
            if matches!(pool, model_ir::PoolKind::Avg) {
                parts.push(if *count_include_pad {
                    "counts-pad".into()
                } else {
                    "excludes-pad".into()
                });
            }
            if *ceil_mode {
                parts.push("ceil".into());
            }
        }
        Op::GlobalPool {
            pool,
            rank,
            layout,
            keepdims,
        } => {
            parts.push(format!("{} {rank}d {}", pool_name(*pool), layout.name()));
            if *keepdims {
                parts.push("keepdims".into());
            }
        }
        Op::Pad {
            begin,
            end,
            layout,
            mode,
            ..
        } => parts.push(format!(
            "begin={begin:?} end={end:?} {} {mode:?}",
            layout.name()
        )),
        Op::UpSampling {
            size,
            interpolation,
            layout,
            ..
        } => parts.push(format!(
            "size={} {interpolation:?} {}",
            list(size),
            layout.name()
        )),
        _ => {}
    }
}

/// Recurrent layers: cell, gate order, bias convention, direction, what is returned.
fn recurrent(op: &Op, parts: &mut Vec<String>) {
    let Op::Rnn {
        cell,
        units,
        activation,
        recurrent_activation,
        gate_order,
        bias,
        gru_reset,
        direction,
        return_sequences,
        return_state,
        go_backwards,
        batch_first,
        ..
    } = op
    else {
        return;
    };
    parts.push(format!("{cell:?} units={units}").to_lowercase());
    parts.push(format!("gates={}", gate_order.gates().join(",")));
    parts.push(format!("bias={bias:?}"));
    if let Some(r) = gru_reset {
        parts.push(format!("reset={r:?}"));
    }
    parts.push(format!("act={}", activation.describe()));
    if let Some(r) = recurrent_activation {
        parts.push(format!("rec_act={}", r.describe()));
    }
    match direction {
        RnnDirection::Forward => {}
        RnnDirection::Reverse => parts.push("reverse".into()),
        RnnDirection::Bidirectional(m) => parts.push(format!("bidirectional({m:?})")),
    }
    if *return_sequences {
        parts.push("seq".into());
    }
    if *return_state {
        parts.push("state".into());
    }
    if *go_backwards {
        parts.push("go_backwards".into());
    }
    parts.push(
        if *batch_first {
            "batch-first"
        } else {
            "time-first"
        }
        .into(),
    );
}

/// Ops that move, select or reduce axes.
fn shape_ops(op: &Op, parts: &mut Vec<String>) {
    match op {
        Op::Flatten { start_axis, order } => parts.push(format!(
            "from axis {start_axis}, order={}",
            match order {
                model_ir::DataLayout::ChannelsLast => "HWC (channels_last)",
                model_ir::DataLayout::ChannelsFirst => "CHW (channels_first)",
            }
        )),
        Op::Reshape { target_shape } => parts.push(format!("to {target_shape:?}")),
        Op::ReshapeAll { shape } => parts.push(format!("to {shape:?} (batch axis included)")),
        Op::Permute { perm } => parts.push(format!("perm={perm:?}")),
        Op::Reduce {
            reduce,
            axes,
            keepdims,
        } => parts.push(format!("{reduce:?} axes={axes:?} keepdims={keepdims}").to_lowercase()),
        Op::Select { axis, index } => parts.push(format!("axis={axis} index={index}")),
        Op::Slice {
            axis,
            start,
            end,
            step,
        } => parts.push(format!("axis={axis} [{start}:{end}:{step}]")),
        Op::Squeeze { axes } => parts.push(format!("axes={axes:?}")),
        Op::Unsqueeze { axes } => parts.push(format!("axes={axes:?}")),
        _ => {}
    }
}

/// Inputs, activations, dropout, embeddings and the element-wise ops.
fn elementwise_and_other(op: &Op, parts: &mut Vec<String>) {
    match op {
        Op::Input { shape, dtype } => parts.push(format!("shape={} {dtype}", shape_str(shape))),
        Op::Activation { function } => parts.push(function.describe()),
        Op::Dropout { rate, spatial } => {
            parts.push(format!("rate={}", fmt_num(*rate)));
            if let Some(l) = spatial {
                parts.push(format!("spatial {}", l.name()));
            }
        }
        Op::Embedding {
            input_dim,
            output_dim,
            mask_zero,
            padding_idx,
        } => {
            parts.push(format!("vocab={input_dim} dim={output_dim}"));
            if *mask_zero {
                parts.push("mask_zero".into());
            }
            if let Some(p) = padding_idx {
                parts.push(format!("padding_idx={p}"));
            }
        }
        Op::Merge { op } => parts.push(format!("{op:?}").to_lowercase()),
        Op::ConstantBinary { op, constant_first } => parts.push(format!(
            "{op:?}{}",
            if *constant_first {
                " (constant first)"
            } else {
                ""
            }
        )),
        Op::Unary { op } => parts.push(format!("{op:?}").to_lowercase()),
        _ => {}
    }
}
