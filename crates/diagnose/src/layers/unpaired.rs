//! Layers the alignment left without a counterpart (`architecture-mismatch`).
//!
//! Only layers with parameters take part in the alignment ([`crate::align`]), so a
//! parameter-free layer that one framework spells differently (a Keras `Flatten` against a
//! torch `view`) never shows up here. Each unpaired layer is named with its kind and sizes;
//! when both sides have exactly one unpaired layer that computes the same linear map (a Keras
//! Dense against a torch 1×1 convolution with the same input and output sizes, bias and
//! activation), the computation does not differ and the finding is low; otherwise high.

use catalogue::Id;
use model_ir::{Node, Op, ParamLayout, ParamRole};
use report::Severity;

use crate::align::Aligned;
use crate::findings::{Findings, ev};

/// What an unpaired layer computes, as far as the comparison needs it.
struct Layer<'a> {
    node: &'a Node,
    /// `Dense 64→10`, `Conv2d 64→10, 1×1`, or the kind and parameter shapes.
    desc: String,
    /// Input and output sizes of a per-position linear map (Dense, or a 1×1 convolution with
    /// unit strides and dilations, one group and no padding), with its bias flag.
    linear: Option<(usize, usize, bool)>,
}

fn kernel(n: &Node) -> Option<(&[usize], &ParamLayout)> {
    n.params
        .iter()
        .find(|p| p.role == ParamRole::Kernel)
        .map(|p| (p.tensor.shape(), &p.layout))
}

/// (in, out, spatial kernel) from a kernel's shape and layout.
fn in_out(shape: &[usize], layout: &ParamLayout) -> Option<(usize, usize, Vec<usize>)> {
    let r = shape.len();
    match layout {
        ParamLayout::DenseInOut if r == 2 => Some((shape[0], shape[1], vec![])),
        ParamLayout::DenseOutIn if r == 2 => Some((shape[1], shape[0], vec![])),
        ParamLayout::ConvSpatialInOut { .. } if r >= 3 => {
            Some((shape[r - 2], shape[r - 1], shape[..r - 2].to_vec()))
        }
        ParamLayout::ConvOutInSpatial { .. } if r >= 3 => {
            Some((shape[1], shape[0], shape[2..].to_vec()))
        }
        _ => None,
    }
}

fn times(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join("×")
}

fn describe(n: &Node) -> Layer<'_> {
    let io = kernel(n).and_then(|(s, l)| in_out(s, l));
    let (desc, linear) = match (&n.op, io) {
        (
            Op::Dense {
                use_bias,
                activation,
                ..
            },
            Some((i, o, _)),
        ) => (
            format!("Dense {i}→{o}"),
            activation
                .eq(&model_ir::Activation::Linear)
                .then_some((i, o, *use_bias)),
        ),
        (
            Op::Conv {
                rank,
                strides,
                dilation,
                groups,
                padding,
                use_bias,
                activation,
                ..
            },
            Some((i, o, k)),
        ) => {
            let pointwise = k.iter().all(|&d| d == 1)
                && strides.iter().all(|&s| s == 1)
                && dilation.iter().all(|&d| d == 1)
                && *groups == 1
                && match padding {
                    model_ir::Padding::Explicit { begin, end } => {
                        begin.iter().chain(end).all(|&p| p == 0)
                    }
                    _ => true,
                }
                && *activation == model_ir::Activation::Linear;
            let mut d = format!("Conv{rank}d {i}→{o}, {}", times(&k));
            if *groups > 1 {
                d.push_str(&format!(", {groups} groups"));
            }
            if strides.iter().any(|&s| s != 1) {
                d.push_str(&format!(", stride {}", times(strides)));
            }
            (d, pointwise.then_some((i, o, *use_bias)))
        }
        (op, _) => {
            let shapes: Vec<String> = n
                .params
                .iter()
                .filter(|p| p.role != ParamRole::NumBatchesTracked)
                .map(|p| format!("{} {:?}", p.role.name(), p.tensor.shape()))
                .collect();
            (format!("{} ({})", op.kind(), shapes.join(", ")), None)
        }
    };
    Layer {
        node: n,
        desc,
        linear,
    }
}

fn list(side: &[Layer<'_>]) -> String {
    side.iter()
        .map(|l| format!("`{}` ({})", l.node.name, l.desc))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Torch code for a layer computing what the Keras layer `l` computes.
fn torch_code(l: &Layer<'_>) -> Option<String> {
    let (shape, layout) = kernel(l.node)?;
    let (i, o, k) = in_out(shape, layout)?;
    Some(match &l.node.op {
        Op::Dense { use_bias, .. } => {
            format!(
                "nn.Linear({i}, {o}{})",
                if *use_bias { "" } else { ", bias=False" }
            )
        }
        Op::Conv { rank, .. } => format!(
            "nn.Conv{rank}d({i}, {o}, kernel_size={})",
            match k.as_slice() {
                [one] => one.to_string(),
                more => format!(
                    "({})",
                    more.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        ),
        _ => return None,
    })
}

pub(super) fn unpaired(aligned: &Aligned<'_>, out: &mut Findings) {
    if aligned.keras_only.is_empty() && aligned.torch_only.is_empty() {
        return;
    }
    let k: Vec<Layer<'_>> = aligned.keras_only.iter().map(|n| describe(n)).collect();
    let t: Vec<Layer<'_>> = aligned.torch_only.iter().map(|n| describe(n)).collect();
    let same_computation = matches!((k.as_slice(), t.as_slice()),
        ([a], [b]) if a.linear.is_some() && a.linear == b.linear);
    let title = match (k.as_slice(), t.as_slice()) {
        ([], t) => format!(
            "torch layer{} {} {} no counterpart in the Keras model",
            if t.len() > 1 { "s" } else { "" },
            list(t),
            if t.len() > 1 { "have" } else { "has" }
        ),
        (k, []) => format!(
            "Keras layer{} {} {} no counterpart in the torch model",
            if k.len() > 1 { "s" } else { "" },
            list(k),
            if k.len() > 1 { "have" } else { "has" }
        ),
        (k, t) => format!(
            "Keras layer{} {} {} no counterpart; torch has {} instead",
            if k.len() > 1 { "s" } else { "" },
            list(k),
            if k.len() > 1 { "have" } else { "has" },
            list(t)
        ),
    };
    let severity = if same_computation {
        Severity::Low
    } else {
        Severity::High
    };
    let what = if same_computation {
        "layers without a counterpart (the same linear map, in layers of different kinds: \
         their weights are not compared)"
    } else {
        "layers without a counterpart (the two models compute different functions)"
    };
    let show = |side: &[Layer<'_>]| {
        if side.is_empty() {
            "none".to_string()
        } else {
            list(side)
        }
    };
    let torch_fix = if same_computation {
        let (a, b) = (&k[0], &t[0]);
        format!(
            "# `{}` computes what Keras's `{}` does; copy its kernel into `{}` (reshaped to the \
             1×1 kernel) to compare the weights, or use {}",
            b.node.name,
            a.node.name,
            b.node.name,
            torch_code(a).unwrap_or_else(|| a.desc.clone())
        )
    } else {
        let mut lines: Vec<String> = k
            .iter()
            .map(|l| match torch_code(l) {
                Some(code) => format!("# add {code} where Keras has `{}`", l.node.name),
                None => format!(
                    "# add a layer computing Keras's `{}` ({})",
                    l.node.name, l.desc
                ),
            })
            .collect();
        lines.extend(t.iter().map(|l| {
            format!(
                "# remove `{}` ({}) or give the Keras model its counterpart",
                l.node.name, l.desc
            )
        }));
        lines.join("\n")
    };
    out.set_title(Id::ArchitectureMismatch, title);
    out.add(
        Id::ArchitectureMismatch,
        severity,
        if same_computation { 0.2 } else { 2.0 },
        vec![ev(what, show(&k), show(&t), None)],
        torch_fix,
        if same_computation || t.is_empty() {
            "nothing to change on this side".to_string()
        } else {
            format!("# or give the Keras model the counterpart of {}", list(&t))
        },
    );
}

#[cfg(test)]
mod tests {
    use model_ir::{Activation, DataLayout, Framework, Op, Padding, ParamLayout, ParamRole};
    use report::Severity;

    use crate::testkit::*;

    fn conv(name: &str, input: &str, cin: usize, cout: usize, k: usize) -> model_ir::Node {
        node(
            Framework::Torch,
            name,
            conv_op(cout, k, 1, Padding::Valid, DataLayout::ChannelsFirst),
            input,
            vec![
                param(
                    &format!("{name}.weight"),
                    ParamRole::Kernel,
                    ParamLayout::ConvOutInSpatial { rank: 2 },
                    tensor(&[cout, cin, k, k], uniform(cout * cin * k * k, 0.3, 5)),
                ),
                param(
                    &format!("{name}.bias"),
                    ParamRole::Bias,
                    ParamLayout::Vector,
                    tensor(&[cout], vec![0.0; cout]),
                ),
            ],
        )
    }

    /// Keras `Dense(6→3)` head against a torch 1×1 / 3×3 conv classifier on a (6, 1, 1) map.
    fn pair(k: usize) -> (model_ir::Model, model_ir::Model) {
        let (i, o) = (6, 3);
        let keras = model(
            Framework::Keras,
            &[i],
            vec![keras_dense(
                "head",
                "x",
                tensor(&[i, o], uniform(i * o, 0.5, 3)),
                vec![0.0; o],
                Activation::Linear,
            )],
        );
        let torch = model(
            Framework::Torch,
            &[i, k, k],
            vec![
                conv("classifier", "x", i, o, k),
                node(
                    Framework::Torch,
                    "flatten",
                    Op::Flatten {
                        start_axis: 1,
                        order: DataLayout::ChannelsFirst,
                    },
                    "classifier",
                    vec![],
                ),
            ],
        );
        (keras, torch)
    }

    fn finding(k: model_ir::Model, t: model_ir::Model) -> Option<report::Finding> {
        run(k, t)
            .findings
            .into_iter()
            .find(|f| f.id == "architecture-mismatch")
    }

    #[test]
    fn a_dense_head_against_a_conv_classifier_is_named() {
        let f = finding(pair(3).0, pair(3).1).expect("architecture-mismatch");
        assert_eq!(
            f.title,
            "Keras layer `head` (Dense 6→3) has no counterpart; torch has `classifier` \
             (Conv2d 6→3, 3×3) instead"
        );
        assert_eq!(f.severity, Severity::High);
        assert!(f.fix.torch.contains("nn.Linear(6, 3)"), "{}", f.fix.torch);
        // A 1×1 convolution computes the same linear map as the Dense: low.
        let f = finding(pair(1).0, pair(1).1).expect("architecture-mismatch");
        assert!(f.title.contains("(Conv2d 6→3, 1×1)"), "{}", f.title);
        assert_eq!(f.severity, Severity::Low);
    }

    #[test]
    fn parameter_free_layers_without_counterpart_are_not_reported() {
        // The faithful MLP plus a torch Flatten (a `view`) and a Keras Flatten at the input
        // (no parameters, no counterpart by design): nothing to report.
        let (mut k, mut t) = faithful_mlp();
        for (m, fw, order) in [
            (&mut k, Framework::Keras, DataLayout::ChannelsLast),
            (&mut t, Framework::Torch, DataLayout::ChannelsFirst),
        ] {
            m.nodes.insert(
                0,
                node(
                    fw,
                    "flat",
                    Op::Flatten {
                        start_axis: 1,
                        order,
                    },
                    "x",
                    vec![],
                ),
            );
            m.nodes[1].inputs = vec!["flat".into()];
            if fw == Framework::Torch {
                m.nodes.push(node(
                    fw,
                    "view",
                    Op::Reshape {
                        target_shape: vec![-1],
                    },
                    "fc2",
                    vec![],
                ));
                m.outputs = vec!["view".into()];
            }
        }
        let d = run(k, t);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
    }
}
