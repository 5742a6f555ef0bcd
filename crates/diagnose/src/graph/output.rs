//! The activation that ends a model's output, followed back through shape-only ops with
//! the softmax axis it normalises over (what the loss checks and the probe need).

use model_ir::{Activation, Model, Node, Op};

use super::{infer_shapes, norm_axis, passthrough, producer, show_shape};

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

#[cfg(test)]
mod tests {
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
