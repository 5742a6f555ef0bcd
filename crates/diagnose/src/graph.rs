//! Graph helpers over [`model_ir::Model`]: producers and consumers of values, the activation
//! chain after a layer, the model's output activation, and a static shape inference good
//! enough to know input sizes of padded layers, the feature map before a Flatten and the
//! rank of the tensors a normalization or softmax sees.

use std::collections::BTreeMap;

use model_ir::{Activation, DataLayout, MergeOp, Model, Node, Op, Padding, RnnDirection};

/// Static shapes of the values of a model (`None` = unknown dimension).
pub(crate) type Shapes = BTreeMap<String, Vec<Option<usize>>>;

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

/// Whether an op only moves or reshapes values (inference mode): the values it outputs are
/// its input's, in another arrangement.
pub(crate) fn shape_only(op: &Op) -> bool {
    passthrough(op)
        || matches!(
            op,
            Op::Flatten { .. }
                | Op::Reshape { .. }
                | Op::Permute { .. }
                | Op::Squeeze { .. }
                | Op::Unsqueeze { .. }
        )
}

/// How a model's (first) output ends.
#[derive(Debug, Clone)]
pub(crate) enum OutputEnd<'a> {
    /// `node` is the activation layer (or the layer with the fused activation) at the end of
    /// the output, seen through shape-only ops; `activation` is `None` for a linear output, and
    /// a softmax's axis is the axis it normalises over *in the output*.
    Known {
        node: &'a Node,
        activation: Option<Activation>,
    },
    /// A shape-only op between the activation and the output moves or merges the axis the
    /// activation normalises over, so which axis of the output it normalises is not the class
    /// axis (or cannot be told from static shapes): `reason` says which op and why.
    Undecided { node: &'a Node, reason: String },
}

/// How the model's (first) output ends: the activation at the very end (stand-alone or fused)
/// found by walking back through every shape-only op ([`shape_only`]: Dropout, Identity,
/// Flatten, Reshape, Squeeze, Unsqueeze, Permute). An element-wise activation passes any of them
/// unchanged; a softmax / log-softmax is followed axis by axis, and is only reported when its
/// axis stays one whole axis of the output in the same role (the last axis, or axis 1).
pub(crate) fn output_end(m: &Model) -> Option<OutputEnd<'_>> {
    let mut v = m.outputs.first()?.clone();
    let mut shape_ops: Vec<&Node> = Vec::new();
    let n = loop {
        let n = producer(m, &v)?;
        if shape_only(&n.op) {
            shape_ops.push(n);
            v = n.inputs.first()?.clone();
            continue;
        }
        break n;
    };
    let act = match &n.op {
        Op::Activation { function } => Some(function),
        op => op.fused_activation(),
    };
    let axis = match act {
        Some(Activation::Softmax { axis } | Activation::LogSoftmax { axis }) => *axis,
        _ => {
            return Some(OutputEnd::Known {
                node: n,
                activation: act.cloned(),
            });
        }
    };
    let act = act?;
    if shape_ops.iter().all(|s| passthrough(&s.op)) {
        return Some(OutputEnd::Known {
            node: n,
            activation: Some(act.clone()),
        });
    }
    let shapes = infer_shapes(m);
    let undecided = |reason: String| Some(OutputEnd::Undecided { node: n, reason });
    let Some(rank) = n.outputs.first().and_then(|o| shapes.get(o)).map(Vec::len) else {
        return undecided(format!(
            "the shape of `{}`'s output is unknown, so where its {} axis ends in the output \
             after the shape-only ops cannot be followed",
            n.name,
            act.describe()
        ));
    };
    let Some(start) = norm_axis(axis, rank) else {
        return undecided(format!("{} has axis {axis} outside rank {rank}", n.name));
    };
    let mut a = start;
    // Walk forward again, from the activation to the output.
    for s in shape_ops.iter().rev() {
        if passthrough(&s.op) {
            continue;
        }
        let sx = s.inputs.first().and_then(|v| shapes.get(v));
        let sy = s.outputs.first().and_then(|v| shapes.get(v));
        match follow_axis(&s.op, a, sx.map(Vec::as_slice), sy.map(Vec::as_slice)) {
            Ok(b) => a = b,
            Err(why) => {
                return undecided(format!(
                    "`{}` ({}) {why}: which axis of the output the {} normalises is not known",
                    s.name,
                    s.op.kind(),
                    act.describe()
                ));
            }
        }
    }
    let Some(out_rank) = m.outputs.first().and_then(|o| shapes.get(o)).map(Vec::len) else {
        return undecided("the output's rank is unknown".into());
    };
    let same_role = (start + 1 == rank && a + 1 == out_rank) || (start == 1 && a == 1);
    if !same_role {
        return undecided(format!(
            "the {} normalises axis {start} of `{}` (rank {rank}), which the shape-only ops \
             after it move to axis {a} of the output (rank {out_rank}): it is no longer the \
             class axis",
            act.describe(),
            n.name
        ));
    }
    // The axis as the output sees it, in the sign convention of the layer's own axis.
    let out_axis = if axis < 0 {
        a as i64 - out_rank as i64
    } else {
        a as i64
    };
    let moved = match act {
        Activation::Softmax { .. } => Activation::Softmax { axis: out_axis },
        _ => Activation::LogSoftmax { axis: out_axis },
    };
    Some(OutputEnd::Known {
        node: n,
        activation: Some(moved),
    })
}

/// Where axis `a` of a shape-only op's input is in its output, when it stays one whole axis
/// with the same elements along it (and in the same order); `Err` says why not.
fn follow_axis(
    op: &Op,
    a: usize,
    x: Option<&[Option<usize>]>,
    y: Option<&[Option<usize>]>,
) -> Result<usize, String> {
    if let Op::Permute { perm } = op {
        return perm
            .iter()
            .position(|&p| p == a)
            .ok_or_else(|| format!("has no axis {a} in its permutation {perm:?}"));
    }
    let (Some(x), Some(y)) = (x, y) else {
        return Err("has a shape that cannot be inferred statically".into());
    };
    // Row-major reshape (Flatten, Reshape, Squeeze, Unsqueeze): axis `a` stays whole iff some
    // output axis `b` has the same length and the same number of elements before it. Only
    // the batch axis may be unknown, and it must stay the first axis on both sides.
    let unknown_inner = |s: &[Option<usize>]| s.iter().skip(1).any(Option::is_none);
    if unknown_inner(x) || unknown_inner(y) || a == 0 {
        return Err("has dimensions that are unknown statically".into());
    }
    if let Op::Flatten { start_axis, .. } = op {
        // A Flatten may reorder the flattened axes (Keras's channels-last order): the axis
        // stays whole only before the flattened range, or when it is the only axis in it
        // longer than 1.
        let st = norm_axis(*start_axis, x.len()).ok_or("has an invalid start axis")?;
        if a < st {
            return Ok(a);
        }
        if x[st..]
            .iter()
            .enumerate()
            .all(|(i, d)| i + st == a || *d == Some(1))
        {
            return Ok(st);
        }
        return Err(format!(
            "merges axis {a} with other axes of length > 1 ({})",
            show_shape(&x[st..])
        ));
    }
    let before = |s: &[Option<usize>], i: usize| -> usize {
        s[1..i].iter().map(|d| d.unwrap_or(1)).product()
    };
    let len = x[a];
    let pre = before(x, a);
    (1..y.len())
        .find(|&b| y[b] == len && before(y, b) == pre)
        .ok_or_else(|| {
            format!(
                "turns {} into {}, splitting or merging axis {a}",
                show_shape(x),
                show_shape(y)
            )
        })
}

/// The node that produces the model's (first) output and the activation at its very end, as
/// [`output_end`] finds it; `None` when there is none or when it cannot be decided.
pub(crate) fn output_activation(m: &Model) -> Option<(&Node, Option<Activation>)> {
    match output_end(m)? {
        OutputEnd::Known { node, activation } => Some((node, activation)),
        OutputEnd::Undecided { .. } => None,
    }
}

/// The layer whose output the model's (first) output is: walking back through shape-only
/// ops and activation layers.
pub(crate) fn output_source(m: &Model) -> Option<&Node> {
    let mut v = m.outputs.first()?.clone();
    loop {
        let n = producer(m, &v)?;
        if shape_only(&n.op) || matches!(n.op, Op::Activation { .. }) {
            v = n.inputs.first()?.clone();
            continue;
        }
        return Some(n);
    }
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

#[cfg(test)]
mod output_end_tests {
    use model_ir::{Activation, DataLayout, Framework, Model, Op};
    use report::Severity;
    use serde_json::json;

    use super::{OutputEnd, output_activation, output_end};
    use crate::testkit::*;

    fn flatten(fw: Framework, name: &str, input: &str) -> model_ir::Node {
        node(
            fw,
            name,
            Op::Flatten {
                start_axis: 1,
                order: match fw {
                    Framework::Keras => DataLayout::ChannelsLast,
                    Framework::Torch => DataLayout::ChannelsFirst,
                },
            },
            input,
            vec![],
        )
    }

    /// Appends nodes to a model's output.
    fn end_with(m: &mut Model, nodes: Vec<model_ir::Node>) {
        let last = nodes.last().map(|n| n.name.clone());
        m.nodes.extend(nodes);
        if let Some(l) = last {
            m.outputs = vec![l];
        }
    }

    #[test]
    fn log_softmax_then_flatten_then_nll_is_no_finding() {
        let (k, mut t) = faithful_mlp();
        end_with(
            &mut t,
            vec![
                act(
                    Framework::Torch,
                    "log_softmax",
                    "fc2",
                    Activation::LogSoftmax { axis: 1 },
                ),
                flatten(Framework::Torch, "flatten", "log_softmax"),
            ],
        );
        let o = t.training.as_ref().unwrap().optimizer.clone().unwrap();
        train(&mut t, &o.class_name, o.config, "NLLLoss", json!({}));
        assert!(matches!(
            output_activation(&t),
            Some((n, Some(Activation::LogSoftmax { axis: 1 }))) if n.name == "log_softmax"
        ));
        let d = run(k, t);
        assert!(d.findings.is_empty(), "{:#?}", d.findings);
    }

    #[test]
    fn softmax_then_reshape_then_cross_entropy_is_still_double_softmax() {
        let (k, mut t) = faithful_mlp();
        end_with(
            &mut t,
            vec![
                act(
                    Framework::Torch,
                    "softmax",
                    "fc2",
                    Activation::Softmax { axis: 1 },
                ),
                node(
                    Framework::Torch,
                    "view",
                    Op::Reshape {
                        target_shape: vec![3],
                    },
                    "softmax",
                    vec![],
                ),
            ],
        );
        let d = run(k, t);
        let ids: Vec<(&str, Severity)> = d
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.severity))
            .collect();
        assert_eq!(ids, [("double-softmax", Severity::High)]);
        let softmax = Activation::Softmax { axis: 1 }.describe();
        assert!(
            d.findings[0].title.contains(&softmax),
            "{}",
            d.findings[0].title
        );
    }

    #[test]
    fn keras_softmax_then_flatten_is_the_output_activation() {
        let (mut k, t) = faithful_mlp();
        end_with(&mut k, vec![flatten(Framework::Keras, "flatten", "d2")]);
        assert!(matches!(
            output_activation(&k),
            Some((n, Some(Activation::Softmax { axis: -1 }))) if n.name == "d2"
        ));
        let d = run(k, t);
        assert!(d.findings.is_empty(), "{:#?}", d.findings);
    }

    /// A Permute that moves the softmax axis away from the class axis: undecided, and the loss
    /// check says so instead of guessing.
    #[test]
    fn a_permute_that_moves_the_softmax_axis_is_undecided() {
        let (k, mut t) = faithful_mlp();
        end_with(
            &mut t,
            vec![
                node(
                    Framework::Torch,
                    "unsqueeze",
                    Op::Unsqueeze { axes: vec![2] },
                    "fc2",
                    vec![],
                ),
                act(
                    Framework::Torch,
                    "softmax",
                    "unsqueeze",
                    Activation::Softmax { axis: 1 },
                ),
                node(
                    Framework::Torch,
                    "permute",
                    Op::Permute {
                        perm: vec![0, 2, 1],
                    },
                    "softmax",
                    vec![],
                ),
            ],
        );
        match output_end(&t) {
            Some(OutputEnd::Undecided { node, reason }) => {
                assert_eq!(node.name, "softmax");
                assert!(
                    reason.contains("axis 1") && reason.contains("axis 2"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(output_activation(&t).is_none());
        let d = run(k, t);
        assert!(
            d.findings.iter().all(|f| f.id != "double-softmax"),
            "{:#?}",
            d.findings
        );
        assert!(
            d.not_checked
                .iter()
                .any(|n| n.what.contains("torch output activation")),
            "{:#?}",
            d.not_checked
        );
    }

    /// Axis bookkeeping of the shape-only ops.
    #[test]
    fn softmax_axis_through_shape_ops() {
        use super::follow_axis;
        let s = |v: &[usize]| {
            let mut o = vec![None];
            o.extend(v.iter().map(|d| Some(*d)));
            o
        };
        let flat = Op::Flatten {
            start_axis: 1,
            order: DataLayout::ChannelsFirst,
        };
        // (N, C, 1, 1) → (N, C): the class axis survives.
        assert_eq!(
            follow_axis(&flat, 1, Some(&s(&[5, 1, 1])), Some(&s(&[5]))),
            Ok(1)
        );
        // (N, C, 2) → (N, 2C): merged.
        assert!(follow_axis(&flat, 1, Some(&s(&[5, 2])), Some(&s(&[10]))).is_err());
        let reshape = Op::Reshape {
            target_shape: vec![2, 3],
        };
        // (N, 2, 3) → (N, 6) splits nothing but merges axis 2 into a longer axis.
        assert!(follow_axis(&reshape, 2, Some(&s(&[2, 3])), Some(&s(&[6]))).is_err());
        // (N, 6) → (N, 1, 6): axis 1 is now axis 2.
        assert_eq!(
            follow_axis(&reshape, 1, Some(&s(&[6])), Some(&s(&[1, 6]))),
            Ok(2)
        );
        let perm = Op::Permute {
            perm: vec![0, 2, 1],
        };
        assert_eq!(follow_axis(&perm, 2, None, None), Ok(1));
        // Unknown inner dimensions: refused.
        assert!(follow_axis(&reshape, 1, Some(&[None, None]), Some(&s(&[6]))).is_err());
    }
}
