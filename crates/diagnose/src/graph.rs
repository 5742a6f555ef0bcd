//! Graph helpers over [`model_ir::Model`]: producers and consumers of values, the activation
//! chain after a layer, the model's output activation (`output`), and a static shape inference good
//! enough to know input sizes of padded layers, the feature map before a Flatten and the
//! rank of the tensors a normalization or softmax sees.

use std::collections::BTreeMap;

use model_ir::{Activation, DataLayout, MergeOp, Model, Node, Op, Padding, RnnDirection};

/// Static shapes of the values of a model (`None` = unknown dimension).
pub(crate) type Shapes = BTreeMap<String, Vec<Option<usize>>>;

mod output;
pub(crate) use output::{OutputEnd, output_activation, output_end, output_source};

/// The node producing `value`.
pub(crate) fn producer<'a>(m: &'a Model, value: &str) -> Option<&'a Node> {
    m.nodes
        .iter()
        .find(|n| n.outputs.iter().any(|o| o == value))
}

/// The nodes consuming `value`.
pub(crate) fn consumers<'a>(m: &'a Model, value: &str) -> Vec<&'a Node> {
    m.nodes
        .iter()
        .filter(|n| n.inputs.iter().any(|i| i == value))
        .collect()
}

/// Whether a node passes its input through unchanged in inference (Dropout, Identity).
pub(crate) fn passthrough(op: &Op) -> bool {
    matches!(op, Op::Dropout { .. } | Op::Identity)
}

/// The element-wise activations applied after `node`: its fused activation, then the
/// stand-alone activation layers that follow it one after another (through Dropout and
/// Identity), up to the next layer of any other kind or a branch. The crop Slices right after
/// a transposed convolution ([`crop_slices`]) belong to that layer: the chain starts after them.
pub(crate) fn activation_chain<'a>(m: &'a Model, node: &'a Node) -> Vec<(&'a Activation, &'a str)> {
    let mut out = Vec::new();
    if let Some(a) = node.op.fused_activation() {
        out.push((a, node.name.as_str()));
    }
    let mut cur = crop_slices(m, node).last().map_or(node, |(_, n)| *n);
    while let Some(v) = cur.outputs.first() {
        let next = consumers(m, v);
        if next.len() != 1 {
            break;
        }
        let n = next[0];
        match &n.op {
            Op::Activation { function } => out.push((function, n.name.as_str())),
            op if passthrough(op) => {}
            _ => break,
        }
        cur = n;
    }
    out
}

/// Walks back from `value` through Dropout, Identity and activation layers to the node of
/// interest (the first node that is none of those).
pub(crate) fn source_of<'a>(m: &'a Model, value: &str) -> Option<&'a Node> {
    let mut v = value.to_string();
    loop {
        let n = producer(m, &v)?;
        if passthrough(&n.op) || matches!(n.op, Op::Activation { .. }) {
            v = n.inputs.first()?.clone();
            continue;
        }
        return Some(n);
    }
}

/// Layout a model uses for its spatial layers (the first one found), if it has any.
pub(crate) fn spatial_layout(m: &Model) -> Option<DataLayout> {
    m.nodes.iter().find_map(|n| match &n.op {
        Op::Conv { layout, .. }
        | Op::DepthwiseConv { layout, .. }
        | Op::SeparableConv { layout, .. }
        | Op::ConvTranspose { layout, .. }
        | Op::Pool { layout, .. }
        | Op::GlobalPool { layout, .. }
        | Op::UpSampling { layout, .. }
        | Op::Pad { layout, .. } => Some(*layout),
        _ => None,
    })
}

fn axis(a: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let p = if a < 0 { a + r } else { a };
    (0..r).contains(&p).then_some(p as usize)
}

/// Positive axis index of `a` in a tensor of rank `rank`.
pub(crate) fn norm_axis(a: i64, rank: usize) -> Option<usize> {
    axis(a, rank)
}

/// Splits a shape into (spatial dims, channel dim) for a layout and spatial rank.
fn split_spatial(
    shape: &[Option<usize>],
    rank: usize,
    layout: DataLayout,
) -> Option<(Vec<Option<usize>>, Option<usize>)> {
    if shape.len() != rank + 2 {
        return None;
    }
    Some(match layout {
        DataLayout::ChannelsLast => (shape[1..=rank].to_vec(), shape[rank + 1]),
        DataLayout::ChannelsFirst => (shape[2..].to_vec(), shape[1]),
    })
}

fn join_spatial(
    batch: Option<usize>,
    spatial: Vec<Option<usize>>,
    c: Option<usize>,
    layout: DataLayout,
) -> Vec<Option<usize>> {
    let mut out = vec![batch];
    match layout {
        DataLayout::ChannelsLast => {
            out.extend(spatial);
            out.push(c);
        }
        DataLayout::ChannelsFirst => {
            out.push(c);
            out.extend(spatial);
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn conv_like(
    x: &[Option<usize>],
    rank: usize,
    layout: DataLayout,
    kernel: &[usize],
    strides: &[usize],
    dilation: &[usize],
    padding: &Padding,
    channels: Option<usize>,
    ceil: bool,
) -> Option<Vec<Option<usize>>> {
    let (sp, c) = split_spatial(x, rank, layout)?;
    let out: Vec<Option<usize>> = sp
        .iter()
        .enumerate()
        .map(|(i, n)| {
            // Zero sizes count as 1; a window larger than the padded input gives 0.
            let k = kernel.get(i).copied().unwrap_or(1).max(1);
            let s = strides.get(i).copied().unwrap_or(1).max(1);
            let d = dilation.get(i).copied().unwrap_or(1).max(1);
            n.map(|n| padding.window(i, n, k, s, d, ceil).map_or(0, |w| w.out))
        })
        .collect();
    Some(join_spatial(x[0], out, channels.or(c), layout))
}

/// Infers static shapes of every value it can, in graph order.
pub(crate) fn infer_shapes(m: &Model) -> Shapes {
    let mut s: Shapes = BTreeMap::new();
    for i in &m.inputs {
        s.insert(i.name.clone(), i.shape.clone());
    }
    for n in &m.nodes {
        let x = n.inputs.first().and_then(|v| s.get(v)).cloned();
        let out = infer_node(n, x.as_deref(), &n.inputs, &s);
        if let (Some(o), Some(name)) = (out, n.outputs.first()) {
            s.insert(name.clone(), o);
        }
    }
    s
}

fn infer_node(
    n: &Node,
    x: Option<&[Option<usize>]>,
    inputs: &[String],
    shapes: &Shapes,
) -> Option<Vec<Option<usize>>> {
    if let Op::Input { shape, .. } = &n.op {
        return Some(shape.clone());
    }
    let x = x?;
    let r = x.len();
    Some(match &n.op {
        Op::Input { .. } => return None,
        Op::Dense { units, .. } => {
            let mut o = x.to_vec();
            *o.last_mut()? = Some(*units);
            o
        }
        Op::Conv { .. }
        | Op::SeparableConv { .. }
        | Op::DepthwiseConv { .. }
        | Op::ConvTranspose { .. }
        | Op::Pool { .. }
        | Op::GlobalPool { .. }
        | Op::Pad { .. }
        | Op::UpSampling { .. } => return infer_spatial(&n.op, x),
        Op::Flatten { .. }
        | Op::Reshape { .. }
        | Op::ReshapeAll { .. }
        | Op::Permute { .. }
        | Op::Select { .. }
        | Op::Slice { .. }
        | Op::Squeeze { .. }
        | Op::Unsqueeze { .. }
        | Op::Reduce { .. } => return infer_axes(&n.op, x),
        Op::Embedding { output_dim, .. } => {
            let mut o = x.to_vec();
            o.push(Some(*output_dim));
            o
        }
        Op::Rnn { .. } => return infer_rnn(&n.op, x),
        Op::Resize { axes, .. } => {
            let mut o = x.to_vec();
            for a in axes {
                let d = o.get_mut(a.axis)?;
                *d = match (a.size, a.scale) {
                    (Some(m), _) => Some(m),
                    (None, Some(s)) => d.map(|n| (n as f64 * s).floor() as usize),
                    (None, None) => None,
                };
            }
            o
        }
        Op::Merge {
            op: MergeOp::Concatenate(a),
        } => {
            let a = axis(*a, r)?;
            let mut o = x.to_vec();
            let mut total = Some(0usize);
            for v in inputs {
                let d = shapes.get(v).and_then(|s| s.get(a).copied().flatten());
                total = total.zip(d).map(|(t, d)| t + d);
            }
            o[a] = total;
            o
        }
        Op::BatchNorm { .. }
        | Op::LayerNorm { .. }
        | Op::GroupNorm { .. }
        | Op::Activation { .. }
        | Op::Dropout { .. }
        | Op::Merge { .. }
        | Op::ConstantBinary { .. }
        | Op::Unary { .. }
        | Op::Rescaling { .. }
        | Op::Normalization { .. }
        | Op::Identity => x.to_vec(),
    })
}

/// Output shape of a windowed or spatial op: convolutions, pooling, padding, upsampling.
fn infer_spatial(op: &Op, x: &[Option<usize>]) -> Option<Vec<Option<usize>>> {
    Some(match op {
        Op::Conv {
            rank,
            filters,
            kernel_size,
            strides,
            dilation,
            padding,
            layout,
            ..
        }
        | Op::SeparableConv {
            rank,
            filters,
            kernel_size,
            strides,
            dilation,
            padding,
            layout,
            ..
        } => conv_like(
            x,
            *rank,
            *layout,
            kernel_size,
            strides,
            dilation,
            padding,
            Some(*filters),
            false,
        )?,
        Op::DepthwiseConv {
            rank,
            depth_multiplier,
            kernel_size,
            strides,
            dilation,
            padding,
            layout,
            ..
        } => {
            let (_, c) = split_spatial(x, *rank, *layout)?;
            conv_like(
                x,
                *rank,
                *layout,
                kernel_size,
                strides,
                dilation,
                padding,
                c.map(|c| c * depth_multiplier),
                false,
            )?
        }
        Op::ConvTranspose {
            rank,
            filters,
            kernel_size,
            strides,
            dilation,
            padding,
            output_padding,
            layout,
            ..
        } => {
            let (sp, _) = split_spatial(x, *rank, *layout)?;
            let out = sp
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let n = (*n)?;
                    let k = *kernel_size.get(i).unwrap_or(&1);
                    let s = *strides.get(i).unwrap_or(&1);
                    let d = *dilation.get(i).unwrap_or(&1);
                    let eff = (k.max(1) - 1) * d + 1;
                    let full = (n.max(1) - 1) * s + eff;
                    let (b, e) = transpose_crop(padding, output_padding.as_deref(), i, n, k, s, d);
                    (full + e.min(0).unsigned_abs() as usize).checked_sub(b + e.max(0) as usize)
                })
                .collect();
            join_spatial(x[0], out, Some(*filters), *layout)
        }
        Op::Pool {
            rank,
            pool_size,
            strides,
            dilation,
            padding,
            layout,
            ceil_mode,
            ..
        } => conv_like(
            x, *rank, *layout, pool_size, strides, dilation, padding, None, *ceil_mode,
        )?,
        Op::GlobalPool {
            rank,
            layout,
            keepdims,
            ..
        } => {
            let (sp, c) = split_spatial(x, *rank, *layout)?;
            if *keepdims {
                join_spatial(x[0], vec![Some(1); sp.len()], c, *layout)
            } else {
                vec![x[0], c]
            }
        }
        Op::Pad {
            rank,
            begin,
            end,
            layout,
            ..
        } => {
            let (sp, c) = split_spatial(x, *rank, *layout)?;
            let out = sp
                .iter()
                .enumerate()
                .map(|(i, n)| n.map(|n| n + begin.get(i).unwrap_or(&0) + end.get(i).unwrap_or(&0)))
                .collect();
            join_spatial(x[0], out, c, *layout)
        }
        Op::UpSampling {
            rank, size, layout, ..
        } => {
            let (sp, c) = split_spatial(x, *rank, *layout)?;
            let out = sp
                .iter()
                .enumerate()
                .map(|(i, n)| n.map(|n| n * size.get(i).unwrap_or(&1)))
                .collect();
            join_spatial(x[0], out, c, *layout)
        }
        _ => return None,
    })
}

/// Output shape of an op that reshapes or reduces axes: flatten, reshape, permute, select,
/// slice, squeeze, unsqueeze, reduce.
fn infer_axes(op: &Op, x: &[Option<usize>]) -> Option<Vec<Option<usize>>> {
    let r = x.len();
    Some(match op {
        Op::Flatten { start_axis, .. } => {
            let a = axis(*start_axis, r)?;
            let tail: Option<usize> = x[a..].iter().try_fold(1usize, |acc, d| d.map(|d| acc * d));
            let mut o = x[..a].to_vec();
            o.push(tail);
            o
        }
        Op::Reshape { target_shape } => {
            let known: Option<usize> = x[1..].iter().try_fold(1usize, |acc, d| d.map(|d| acc * d));
            let fixed: usize = target_shape
                .iter()
                .filter(|d| **d > 0)
                .map(|d| *d as usize)
                .product();
            let mut o = vec![x[0]];
            for d in target_shape {
                o.push(if *d > 0 {
                    Some(*d as usize)
                } else {
                    known.and_then(|k| (fixed > 0).then(|| k / fixed))
                });
            }
            o
        }
        Op::ReshapeAll { shape } => {
            let total: Option<usize> = x.iter().try_fold(1usize, |acc, d| d.map(|d| acc * d));
            let fixed: usize = shape
                .iter()
                .filter(|d| **d >= 0)
                .map(|d| *d as usize)
                .product();
            shape
                .iter()
                .map(|&d| {
                    if d >= 0 {
                        Some(d as usize)
                    } else {
                        total.and_then(|t| (fixed > 0).then(|| t / fixed))
                    }
                })
                .collect()
        }
        Op::Permute { perm } => perm.iter().map(|p| x.get(*p).copied().flatten()).collect(),
        Op::Select { axis: a, .. } => {
            let a = axis(*a, r)?;
            let mut o = x.to_vec();
            o.remove(a);
            o
        }
        Op::Slice {
            axis: a,
            start,
            end,
            step,
        } => {
            let a = axis(*a, r)?;
            let mut o = x.to_vec();
            o[a] = x[a].map(|len| {
                let len = len as i64;
                let clamp = |v: i64| if v < 0 { (v + len).max(0) } else { v.min(len) };
                let (s, e) = (clamp(*start), clamp(*end));
                let st = (*step).max(1);
                if e > s {
                    ((e - s + st - 1) / st) as usize
                } else {
                    0
                }
            });
            o
        }
        Op::Squeeze { axes } => {
            let ax: Vec<usize> = axes.iter().filter_map(|a| axis(*a, r)).collect();
            x.iter()
                .enumerate()
                .filter(|(i, d)| {
                    if ax.is_empty() {
                        **d != Some(1)
                    } else {
                        !ax.contains(i)
                    }
                })
                .map(|(_, d)| *d)
                .collect()
        }
        Op::Unsqueeze { axes } => {
            let mut o = x.to_vec();
            let new_rank = r + axes.len();
            let mut ax: Vec<usize> = axes.iter().filter_map(|a| axis(*a, new_rank)).collect();
            ax.sort_unstable();
            for a in ax {
                if a <= o.len() {
                    o.insert(a, Some(1));
                }
            }
            o
        }
        Op::Reduce { axes, keepdims, .. } => {
            let ax: Vec<usize> = axes.iter().filter_map(|a| axis(*a, r)).collect();
            x.iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    if ax.contains(&i) {
                        keepdims.then_some(Some(1))
                    } else {
                        Some(*d)
                    }
                })
                .collect()
        }
        _ => return None,
    })
}

/// Output shape of a recurrent layer: `(batch, time, hidden)` or `(batch, hidden)`.
fn infer_rnn(op: &Op, x: &[Option<usize>]) -> Option<Vec<Option<usize>>> {
    let r = x.len();
    Some(match op {
        Op::Rnn {
            units,
            direction,
            return_sequences,
            batch_first,
            ..
        } => {
            let h = Some(
                units
                    * match direction {
                        RnnDirection::Bidirectional(model_ir::BidiMerge::Concat) => 2,
                        _ => 1,
                    },
            );
            if r != 3 {
                return None;
            }
            let (b, t) = if *batch_first {
                (x[0], x[1])
            } else {
                (x[1], x[0])
            };
            if *return_sequences {
                if *batch_first {
                    vec![b, t, h]
                } else {
                    vec![t, b, h]
                }
            } else {
                vec![b, h]
            }
        }
        _ => return None,
    })
}

/// Output crop `(begin, end)` of a transposed convolution on one spatial axis: how many
/// elements are removed from the full `(n − 1)·s + eff` output at each end (negative `end`:
/// extra elements added by `output_padding`).
pub(crate) fn transpose_crop(
    padding: &Padding,
    output_padding: Option<&[usize]>,
    axis: usize,
    _n: usize,
    k: usize,
    s: usize,
    d: usize,
) -> (usize, i64) {
    let eff = (k.max(1) - 1) * d.max(1) + 1;
    let op = output_padding
        .and_then(|o| o.get(axis))
        .copied()
        .unwrap_or(0) as i64;
    match padding {
        Padding::Valid => (0, -op),
        // TF 'same': the output is n·s, so the crop is eff − s split with the extra at the end.
        Padding::SameUpper | Padding::SameLower => {
            let c = eff.saturating_sub(s);
            let small = c / 2;
            let (b, e) = if matches!(padding, Padding::SameUpper) {
                (small, c - small)
            } else {
                (c - small, small)
            };
            (b, e as i64 - op)
        }
        Padding::Causal => (0, -op),
        Padding::Explicit { begin, end } => (
            begin.get(axis).copied().unwrap_or(0),
            end.get(axis).copied().unwrap_or(0) as i64 - op,
        ),
    }
}

/// The Slices directly after a transposed convolution that crop its output (one after
/// another, each the only consumer of the value before it, on a spatial axis, step 1): how a
/// port writes the Keras 'same' crop torch cannot express (`ConvTranspose2d` then
/// `y[..., 0:8, 0:8]`). Each comes with the spatial axis (0-based) it crops. Empty for any
/// other node.
pub(crate) fn crop_slices<'a>(m: &'a Model, node: &'a Node) -> Vec<(usize, &'a Node)> {
    let Op::ConvTranspose { rank, layout, .. } = &node.op else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut cur = node;
    while let Some(v) = cur.outputs.first() {
        let next = consumers(m, v);
        let [n] = next.as_slice() else {
            break;
        };
        let Op::Slice {
            axis: a, step: 1, ..
        } = &n.op
        else {
            break;
        };
        if n.inputs.len() != 1 {
            break;
        }
        let Some(a) = axis(*a, rank + 2) else {
            break;
        };
        let spatial = match layout {
            DataLayout::ChannelsLast => a.checked_sub(1).filter(|i| i < rank),
            DataLayout::ChannelsFirst => a.checked_sub(2),
        };
        let Some(i) = spatial else {
            break;
        };
        out.push((i, *n));
        cur = n;
    }
    out
}

/// Crop `(begin, end)` that `x[start:end]` (step 1) removes from an axis of length `len`,
/// with ONNX Slice clamping. With the length unknown only a non-negative start with a
/// negative or open end is understood. `None` when not understood or when nothing is left.
pub(crate) fn slice_crop(len: Option<usize>, start: i64, end: i64) -> Option<(usize, usize)> {
    const OPEN: i64 = i64::MAX / 2;
    let Some(len) = len else {
        return match (start, end) {
            (s, e) if s >= 0 && e < 0 => Some((s as usize, e.unsigned_abs() as usize)),
            (s, e) if s >= 0 && e >= OPEN => Some((s as usize, 0)),
            _ => None,
        };
    };
    let l = len as i64;
    let clamp = |v: i64| if v < 0 { (v + l).max(0) } else { v.min(l) };
    let (s, e) = (clamp(start), clamp(end));
    (e > s).then(|| (s as usize, (l - e) as usize))
}

/// Output crop `(begin, end)` per spatial axis of a transposed convolution with input
/// spatial sizes `n`, including the crop Slices that follow it ([`crop_slices`]): the conv's
/// own crop ([`transpose_crop`]) plus what the Slices remove. Slice lengths come from
/// `shapes` when the conv's output shape is known there, else from `n`.
pub(crate) fn effective_transpose_crop(
    m: &Model,
    shapes: &Shapes,
    node: &Node,
    n: &[usize],
) -> Vec<(usize, i64)> {
    let Op::ConvTranspose {
        rank,
        kernel_size,
        strides,
        dilation,
        padding,
        output_padding,
        layout,
        ..
    } = &node.op
    else {
        return Vec::new();
    };
    let known = node
        .outputs
        .first()
        .and_then(|v| shapes.get(v))
        .and_then(|s| split_spatial(s, *rank, *layout))
        .map(|(sp, _)| sp);
    let mut crop = Vec::new();
    let mut len = Vec::new();
    for i in 0..*rank {
        let ni = *n.get(i).unwrap_or(&8);
        let k = *kernel_size.get(i).unwrap_or(&1);
        let s = *strides.get(i).unwrap_or(&1);
        let d = *dilation.get(i).unwrap_or(&1);
        let (b, e) = transpose_crop(padding, output_padding.as_deref(), i, ni, k, s, d);
        let eff = (k.max(1) - 1) * d.max(1) + 1;
        let full = ((ni.max(1) - 1) * s + eff) as i64;
        let computed = usize::try_from(full - b as i64 - e).ok();
        let l = known
            .as_ref()
            .and_then(|sp| sp.get(i).copied().flatten())
            .or(computed);
        crop.push((b, e));
        len.push(l);
    }
    for (i, sl) in crop_slices(m, node) {
        let Op::Slice { start, end, .. } = &sl.op else {
            continue;
        };
        let Some((sb, se)) = slice_crop(len[i], *start, *end) else {
            break;
        };
        crop[i].0 += sb;
        crop[i].1 += se as i64;
        len[i] = len[i].and_then(|l| l.checked_sub(sb + se));
    }
    crop
}

/// Shape as text (`[?,8,8,1]`).
pub(crate) fn show_shape(s: &[Option<usize>]) -> String {
    let v: Vec<String> = s
        .iter()
        .map(|d| d.map_or_else(|| "?".to_string(), |d| d.to_string()))
        .collect();
    format!("[{}]", v.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_ir::{DType, Framework, Origin, ValueInfo};

    fn node(name: &str, op: Op, input: &str) -> Node {
        Node {
            name: name.into(),
            op,
            inputs: vec![input.into()],
            outputs: vec![name.into()],
            params: vec![],
            origin: Origin {
                framework: Framework::Keras,
                name: name.into(),
                class: String::new(),
            },
        }
    }

    #[test]
    fn shapes_through_conv_pool_flatten() {
        let mut m = Model::new(Framework::Keras, "m");
        m.inputs.push(ValueInfo {
            name: "x".into(),
            shape: vec![None, Some(8), Some(8), Some(1)],
            dtype: DType::F32,
        });
        m.nodes.push(node(
            "conv",
            Op::Conv {
                rank: 2,
                filters: 4,
                kernel_size: vec![3, 3],
                strides: vec![2, 2],
                dilation: vec![1, 1],
                groups: 1,
                padding: Padding::SameUpper,
                layout: DataLayout::ChannelsLast,
                use_bias: true,
                activation: Activation::Linear,
            },
            "x",
        ));
        m.nodes.push(node(
            "flat",
            Op::Flatten {
                start_axis: 1,
                order: DataLayout::ChannelsLast,
            },
            "conv",
        ));
        let s = infer_shapes(&m);
        assert_eq!(s["conv"], vec![None, Some(4), Some(4), Some(4)]);
        assert_eq!(s["flat"], vec![None, Some(64)]);
    }

    #[test]
    fn transposed_same_crop() {
        // k=3, s=2: crop 1, extra at the end.
        assert_eq!(
            transpose_crop(&Padding::SameUpper, None, 0, 4, 3, 2, 1),
            (0, 1)
        );
        // torch padding=1, output_padding=1: crop 1 at the start, 0 at the end.
        assert_eq!(
            transpose_crop(&Padding::symmetric(&[1]), Some(&[1]), 0, 4, 3, 2, 1),
            (1, 0)
        );
    }

    #[test]
    fn slice_crops() {
        assert_eq!(slice_crop(Some(9), 0, 8), Some((0, 1)));
        assert_eq!(slice_crop(Some(9), 1, i64::MAX), Some((1, 0)));
        assert_eq!(slice_crop(Some(9), -8, -1), Some((1, 1)));
        assert_eq!(slice_crop(Some(9), 5, 3), None);
        assert_eq!(slice_crop(None, 0, -1), Some((0, 1)));
        assert_eq!(slice_crop(None, 2, i64::MAX), Some((2, 0)));
        assert_eq!(slice_crop(None, 0, 8), None);
    }

    /// `x [?,c,4,4] → ConvTranspose2d(c, 2, 3, stride=2) → Slices (axis, start, end, step) → ReLU`.
    fn transposed_then(slices: &[(i64, i64, i64, i64)]) -> Model {
        let mut m = Model::new(Framework::Torch, "m");
        m.inputs.push(ValueInfo {
            name: "x".into(),
            shape: vec![None, Some(3), Some(4), Some(4)],
            dtype: DType::F32,
        });
        m.nodes.push(node(
            "up",
            Op::ConvTranspose {
                rank: 2,
                filters: 2,
                kernel_size: vec![3, 3],
                strides: vec![2, 2],
                dilation: vec![1, 1],
                groups: 1,
                padding: Padding::Valid,
                output_padding: None,
                layout: DataLayout::ChannelsFirst,
                use_bias: true,
                activation: Activation::Linear,
            },
            "x",
        ));
        let mut prev = "up".to_string();
        for (j, (axis, start, end, step)) in slices.iter().enumerate() {
            let name = format!("s{j}");
            m.nodes.push(node(
                &name,
                Op::Slice {
                    axis: *axis,
                    start: *start,
                    end: *end,
                    step: *step,
                },
                &prev,
            ));
            prev = name;
        }
        m.nodes.push(node(
            "relu",
            Op::Activation {
                function: Activation::RELU,
            },
            &prev,
        ));
        m.outputs = vec!["relu".into()];
        m
    }

    #[test]
    fn crop_slices_belong_to_the_transposed_conv() {
        let m = transposed_then(&[(2, 0, 8, 1), (-1, 0, -1, 1)]);
        let up = &m.nodes[0];
        let s = infer_shapes(&m);
        assert_eq!(s["up"], vec![None, Some(2), Some(9), Some(9)]);
        let axes: Vec<usize> = crop_slices(&m, up).iter().map(|(i, _)| *i).collect();
        assert_eq!(axes, vec![0, 1]);
        assert_eq!(
            effective_transpose_crop(&m, &s, up, &[4, 4]),
            vec![(0, 1), (0, 1)]
        );
        let chain: Vec<&str> = activation_chain(&m, up).iter().map(|(_, n)| *n).collect();
        assert_eq!(chain, vec!["relu"]);

        // A slice of the channel axis or with a step is not a crop: the chain stops there.
        for bad in [(1, 0, 1, 1), (2, 0, 8, 2)] {
            let m = transposed_then(&[bad]);
            let up = &m.nodes[0];
            assert!(crop_slices(&m, up).is_empty());
            assert!(activation_chain(&m, up).is_empty());
            let s = infer_shapes(&m);
            assert_eq!(
                effective_transpose_crop(&m, &s, up, &[4, 4]),
                vec![(0, 0), (0, 0)]
            );
        }
    }
}
