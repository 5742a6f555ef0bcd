//! Activations after each aligned layer: GELU approximation, leaky-ReLU slope, hard sigmoid,
//! softmax axis and activation chains that differ.

use catalogue::Id;
use model_ir::{Activation, DataLayout, Model, Node};
use report::Severity;

use super::{Ctx, LAYER_ATTR_TOL, logical_axis, py};
use crate::align::Pair;
use crate::findings::{Findings, ev, pair_label};
use crate::graph::{Shapes, activation_chain, norm_axis, spatial_layout};

/// A canonical form for comparing activations: ReLU with a slope is a leaky ReLU.
fn canon(a: &Activation) -> Activation {
    match a {
        Activation::Relu {
            negative_slope,
            max_value: None,
            threshold,
        } if *negative_slope != 0.0 && *threshold == 0.0 => Activation::LeakyRelu {
            slope: *negative_slope,
        },
        Activation::Relu {
            negative_slope,
            max_value: Some(m),
            threshold,
        } if *negative_slope == 0.0 && *threshold == 0.0 && (*m - 6.0).abs() < 1e-12 => {
            Activation::Relu6
        }
        other => other.clone(),
    }
}

fn is_prob(a: &Activation) -> bool {
    matches!(
        a,
        Activation::Softmax { .. } | Activation::LogSoftmax { .. } | Activation::Sigmoid
    )
}

#[allow(clippy::float_cmp)]
fn same_params(a: &Activation, b: &Activation) -> bool {
    // Exact structural equality on the canonical forms; the values are configuration
    // constants read from the files, not computed.
    a == b
}

pub(super) struct ActCtx<'a> {
    pub(super) label: Option<String>,
    pub(super) krank: Option<usize>,
    pub(super) trank: Option<usize>,
    pub(super) kl: Option<DataLayout>,
    pub(super) tl: Option<DataLayout>,
    pub(super) tname: &'a str,
}

pub(super) fn compare_act(x: &ActCtx<'_>, ka: &Activation, ta: &Activation, out: &mut Findings) {
    let (k, t) = (canon(ka), canon(ta));
    match (&k, &t) {
        (Activation::Gelu { approximate: a }, Activation::Gelu { approximate: b }) if a != b => {
            let form = |ap: bool| {
                if ap {
                    "tanh approximation"
                } else {
                    "exact (erf)"
                }
            };
            out.title_item(
                Id::GeluApproximate,
                "GELU forms differ",
                format!("Keras {}, torch {}", form(*a), form(*b)),
            );
            out.add(
                Id::GeluApproximate,
                Severity::Low,
                0.5,
                vec![ev("GELU", form(*a), form(*b), x.label.clone())],
                format!(
                    "nn.GELU(approximate='{}')",
                    if *a { "tanh" } else { "none" }
                ),
                format!(
                    "keras.activations.gelu(x, approximate={})",
                    if *b { "True" } else { "False" }
                ),
            );
        }
        (Activation::LeakyRelu { slope: a }, Activation::LeakyRelu { slope: b })
            if !LAYER_ATTR_TOL.close(*b, *a) =>
        {
            out.title_item(
                Id::LeakyReluSlope,
                "LeakyReLU negative slope differs",
                format!("Keras {}, torch {}", py(*a), py(*b)),
            );
            out.add(
                Id::LeakyReluSlope,
                Severity::Medium,
                (a / b.max(1e-12)).ln().abs(),
                vec![ev(
                    "LeakyReLU negative slope",
                    py(*a),
                    py(*b),
                    x.label.clone(),
                )],
                format!("nn.LeakyReLU(negative_slope={})", py(*a)),
                format!("keras.layers.LeakyReLU(negative_slope={})", py(*b)),
            );
        }
        (Activation::HardSigmoid(a), Activation::HardSigmoid(b))
            if !LAYER_ATTR_TOL.close(b.slope, a.slope)
                || !LAYER_ATTR_TOL.close(b.offset, a.offset) =>
        {
            out.title_item(
                Id::HardSigmoidDefinition,
                "hard_sigmoid definition differs",
                format!("Keras {}, torch {}", ka.describe(), ta.describe()),
            );
            out.add(
                Id::HardSigmoidDefinition,
                Severity::Medium,
                1.0,
                vec![ev(
                    "hard_sigmoid",
                    ka.describe(),
                    ta.describe(),
                    x.label.clone(),
                )],
                format!("torch.clamp({} * x + {}, 0, 1)", py(a.slope), py(a.offset)),
                "keras.layers.Lambda(lambda x: keras.ops.relu6(x + 3) / 6)".to_string(),
            );
        }
        (Activation::Softmax { axis: a }, Activation::Softmax { axis: b })
        | (Activation::LogSoftmax { axis: a }, Activation::LogSoftmax { axis: b }) => {
            let la = x
                .krank
                .and_then(|r| norm_axis(*a, r).map(|p| logical_axis(p, r, x.kl)));
            let lb = x
                .trank
                .and_then(|r| norm_axis(*b, r).map(|p| logical_axis(p, r, x.tl)));
            let differ = match (&la, &lb) {
                (Some(p), Some(q)) => p != q,
                _ => false,
            };
            if differ {
                out.title_item(
                    Id::SoftmaxImplicitDim,
                    "softmax taken over a different axis",
                    format!(
                        "Keras axis {a} ({}), torch dim {b} ({})",
                        la.as_deref().unwrap_or("?"),
                        lb.as_deref().unwrap_or("?")
                    ),
                );
                out.add(
                    Id::SoftmaxImplicitDim,
                    Severity::High,
                    2.0,
                    vec![ev(
                        "softmax axis",
                        format!("{a} ({})", la.unwrap_or_default()),
                        format!("{b} ({})", lb.unwrap_or_default()),
                        x.label.clone(),
                    )],
                    format!(
                        "torch.softmax(x, dim={})  # always pass dim",
                        x.krank
                            .and_then(|r| norm_axis(*a, r))
                            .map_or("-1".to_string(), |p| if x.kl != x.tl {
                                "1".into()
                            } else {
                                p.to_string()
                            })
                    ),
                    "nothing to change on this side".to_string(),
                );
            }
        }
        _ if same_params(&k, &t) => {}
        _ => {
            out.set_title(
                Id::ArchitectureMismatch,
                format!(
                    "activation differs after `{}`: Keras {}, torch {}",
                    x.tname,
                    ka.describe(),
                    ta.describe()
                ),
            );
            out.add(
                Id::ArchitectureMismatch,
                if std::mem::discriminant(&k) == std::mem::discriminant(&t) {
                    Severity::Medium
                } else {
                    Severity::High
                },
                1.0,
                vec![ev(
                    "activation",
                    ka.describe(),
                    ta.describe(),
                    x.label.clone(),
                )],
                format!(
                    "use the Keras activation ({}) after `{}`",
                    ka.describe(),
                    x.tname
                ),
                "nothing to change on this side".to_string(),
            );
        }
    }
}

pub(super) fn activations(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
    let mut kc = activation_chain(c.keras, p.keras);
    let mut tc = activation_chain(c.torch, p.torch);
    let is_out =
        |m: &Model, n: &Node| crate::graph::output_source(m).is_some_and(|s| s.name == n.name);
    let rank = |shapes: &Shapes, v: Option<&String>| v.and_then(|v| shapes.get(v)).map(Vec::len);
    let x = ActCtx {
        label: pair_label(&p.keras.name, &p.torch.name),
        krank: rank(c.kshapes, p.keras.outputs.first()),
        trank: rank(c.tshapes, p.torch.outputs.first()),
        kl: spatial_layout(c.keras),
        tl: spatial_layout(c.torch),
        tname: &p.torch.name,
    };
    if is_out(c.keras, p.keras) && is_out(c.torch, p.torch) {
        // The loss check owns the output activation; only the softmax axis is compared here.
        if let (Some((ka, _)), Some((ta, _))) = (kc.last(), tc.last())
            && is_prob(ka)
            && is_prob(ta)
            && std::mem::discriminant(*ka) == std::mem::discriminant(*ta)
        {
            compare_act(&x, ka, ta, out);
        }
        while kc.last().is_some_and(|(a, _)| is_prob(a)) {
            kc.pop();
        }
        while tc.last().is_some_and(|(a, _)| is_prob(a)) {
            tc.pop();
        }
    }
    if kc.len() == tc.len() {
        for ((ka, _), (ta, _)) in kc.iter().zip(&tc) {
            compare_act(&x, ka, ta, out);
        }
    } else {
        let show = |v: &[(&Activation, &str)]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|(a, _)| a.describe())
                    .collect::<Vec<_>>()
                    .join(" → ")
            }
        };
        out.set_title(
            Id::ArchitectureMismatch,
            format!(
                "activations after `{}` differ: Keras {}, torch {}",
                p.torch.name,
                show(&kc),
                show(&tc)
            ),
        );
        out.add(
            Id::ArchitectureMismatch,
            Severity::High,
            1.0,
            vec![ev(
                "activations after the layer",
                show(&kc),
                show(&tc),
                x.label.clone(),
            )],
            format!("apply {} after `{}`", show(&kc), p.torch.name),
            "nothing to change on this side".to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use model_ir::{Activation, Framework, HardSigmoid, Op};
    use report::Severity;

    use super::super::tests::check;
    use crate::testkit::*;

    fn act_pair(ka: Activation, ta: Activation) -> (model_ir::Model, model_ir::Model) {
        let (mut k, mut t) = faithful_mlp();
        if let Op::Dense { activation, .. } = &mut k.nodes[0].op {
            *activation = ka;
        }
        t.nodes[1].op = Op::Activation { function: ta };
        (k, t)
    }

    #[test]
    fn activations() {
        let (k, t) = act_pair(
            Activation::LeakyRelu { slope: 0.3 },
            Activation::LeakyRelu { slope: 0.01 },
        );
        check(k, t, &[("leaky-relu-slope", Severity::Medium)]);
        let (k, t) = act_pair(
            Activation::Gelu { approximate: true },
            Activation::Gelu { approximate: false },
        );
        check(k, t, &[("gelu-approximate", Severity::Low)]);
        let (k, t) = act_pair(
            Activation::HardSigmoid(HardSigmoid::LEGACY),
            Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH),
        );
        check(k, t, &[("hard-sigmoid-definition", Severity::Medium)]);
        let (k, t) = act_pair(Activation::RELU, Activation::Tanh);
        check(k, t, &[("architecture-mismatch", Severity::High)]);
        // ReLU(negative_slope=s) is a leaky ReLU.
        let (k, t) = act_pair(
            Activation::Relu {
                negative_slope: 0.01,
                max_value: None,
                threshold: 0.0,
            },
            Activation::LeakyRelu { slope: 0.01 },
        );
        check(k, t, &[]);
    }

    #[test]
    fn softmax_axis_over_the_batch() {
        // (N, T, C) output: Keras softmax over C, torch's implicit dim 0 for 3-D input.
        let kk = tensor(&[4, 3], uniform(12, 0.5, 1));
        let k = model(
            Framework::Keras,
            &[5, 4],
            vec![
                keras_dense("d", "x", kk.clone(), vec![0.0; 3], Activation::Linear),
                act(
                    Framework::Keras,
                    "sm",
                    "d",
                    Activation::Softmax { axis: -1 },
                ),
            ],
        );
        let t = model(
            Framework::Torch,
            &[5, 4],
            vec![
                torch_dense("d", "x", kk.permuted(&[1, 0]), vec![0.0; 3]),
                act(Framework::Torch, "sm", "d", Activation::Softmax { axis: 0 }),
            ],
        );
        check(k, t, &[("softmax-implicit-dim", Severity::High)]);
    }
}
