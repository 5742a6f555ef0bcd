//! Normalization layers: BatchNorm momentum form, epsilon, running-variance estimate and
//! frozen statistics; LayerNorm and GroupNorm epsilon and axes.

use catalogue::Id;
use model_ir::{DataLayout, Op, VarianceEstimate};
use report::{Severity, sig};

use super::{Ctx, LAYER_ATTR_TOL, input_shape, logical_axis, py};
use crate::align::Pair;
use crate::findings::{Findings, ev, pair_label};
use crate::graph::{norm_axis, spatial_layout};

fn bn_module(rank: Option<usize>) -> &'static str {
    match rank {
        Some(5) => "BatchNorm3d",
        Some(4) => "BatchNorm2d",
        _ => "BatchNorm1d",
    }
}

pub(super) fn batch_norm(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
    let (
        Op::BatchNorm {
            epsilon: ke,
            momentum: km,
            running_variance: kv,
            trainable: ktrain,
            ..
        },
        Op::BatchNorm {
            epsilon: te,
            momentum: tm,
            running_variance: tv,
            training_mode: tmode,
            ..
        },
    ) = (&p.keras.op, &p.torch.op)
    else {
        return;
    };
    let label = pair_label(&p.keras.name, &p.torch.name);
    let channels = p.keras.params.first().map_or(0, |q| q.tensor.len());
    let rank = input_shape(c.kshapes, p.keras).map(Vec::len);
    let module = bn_module(rank);
    let keep_k = km.keep_fraction();
    let keep_t = tm.keep_fraction();
    let momentum_differs = match (keep_k, keep_t) {
        (Some(a), Some(b)) => !LAYER_ATTR_TOL.close(b, a),
        (None, None) => false,
        _ => true,
    };
    let eps_differs = !LAYER_ATTR_TOL.close(*te, *ke);
    let torch_fix = format!(
        "nn.{module}({channels}, momentum={}, eps={})",
        keep_k.map_or_else(|| "None".to_string(), |k| py(1.0 - k)),
        py(*ke)
    );
    if momentum_differs {
        let show = |k: Option<f64>| {
            k.map_or_else(
                || "cumulative average".to_string(),
                |k| {
                    format!(
                        "keeps {} of the running value per step (torch momentum={})",
                        py(k),
                        py(1.0 - k)
                    )
                },
            )
        };
        let ratio = match (keep_k, keep_t) {
            (Some(a), Some(b)) => ((1.0 - a).max(1e-9) / (1.0 - b).max(1e-9)).ln().abs(),
            _ => 1.0,
        };
        let torch_form = |k: Option<f64>| {
            k.map_or_else(|| "None (cumulative average)".to_string(), |k| py(1.0 - k))
        };
        out.title_item(
            Id::BnMomentumConvention,
            "BatchNorm running statistics update at different rates",
            format!(
                "Keras {} (torch momentum={}), torch momentum={}",
                km.describe(),
                torch_form(keep_k),
                torch_form(keep_t)
            ),
        );
        out.add(
            Id::BnMomentumConvention,
            Severity::Medium,
            ratio,
            vec![ev(
                format!("running statistics update ({})", km.describe()),
                show(keep_k),
                show(keep_t),
                label.clone(),
            )],
            torch_fix.clone(),
            format!(
                "keras.layers.BatchNormalization(momentum={})",
                keep_t.map_or_else(|| "0.99".into(), py)
            ),
        );
    }
    if eps_differs {
        // The output scale changes by sqrt((var + eps_t)/(var + eps_k)); with copied running
        // statistics the smallest variance shows the worst case.
        let var = p
            .keras
            .params
            .iter()
            .find(|q| q.role == model_ir::ParamRole::MovingVariance)
            .map(|q| {
                q.tensor
                    .to_f64()
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min)
            })
            .filter(|v| v.is_finite())
            .unwrap_or(1.0);
        let dev = (((var + te) / (var + ke)).sqrt() - 1.0).abs();
        let sev = if dev > 1e-2 {
            Severity::High
        } else if dev > 1e-3 {
            Severity::Medium
        } else {
            Severity::Low
        };
        out.title_item(
            Id::BnEpsilon,
            "BatchNorm epsilon differs",
            format!("Keras {}, torch {}", py(*ke), py(*te)),
        );
        out.add(
            Id::BnEpsilon,
            sev,
            dev,
            vec![ev(
                format!(
                    "epsilon (output scale off by {} at running variance {})",
                    sig(dev),
                    sig(var)
                ),
                py(*ke),
                py(*te),
                label.clone(),
            )],
            torch_fix,
            format!("keras.layers.BatchNormalization(epsilon={})", py(*te)),
        );
    }
    if kv != tv {
        let name = |v: &VarianceEstimate| match v {
            VarianceEstimate::Biased => "biased (÷n)",
            VarianceEstimate::Unbiased => "unbiased (÷(n−1))",
        };
        out.title_item(
            Id::BnRunningVarBias,
            "BatchNorm running variance updated differently",
            format!("Keras {}, torch {}", name(kv), name(tv)),
        );
        out.add(
            Id::BnRunningVarBias,
            Severity::Info,
            0.0,
            vec![ev(
                "running-variance update".to_string(),
                name(kv),
                name(tv),
                label.clone(),
            )],
            "no flag: scale the running-variance update by (n−1)/n by hand, or accept the difference (≈1/(n−1) relative, n = values per channel in a batch)",
            "no flag: Keras always stores the biased variance",
        );
    }
    // The ONNX export says whether each torch BatchNorm runs in training mode; in an export
    // made in eval mode nothing is known.
    let exported_training = c.torch.nodes.iter().any(|n| {
        matches!(
            n.op,
            Op::BatchNorm {
                training_mode: Some(true),
                ..
            }
        )
    });
    let torch_frozen = *tmode == Some(false);
    let differs = if *ktrain {
        torch_frozen && exported_training
    } else {
        *tmode == Some(true)
    };
    if differs {
        out.title_item(
            Id::BnFrozenMeansInference,
            "BatchNorm runs in a different mode during training",
            format!(
                "`{}`: Keras {}, torch {}",
                p.keras.name,
                if *ktrain {
                    "trainable (batch statistics)"
                } else {
                    "trainable=False (inference mode)"
                },
                if torch_frozen {
                    "eval mode"
                } else {
                    "train mode (batch statistics)"
                }
            ),
        );
        out.add(
            Id::BnFrozenMeansInference,
            Severity::High,
            1.0,
            vec![ev(
                "BatchNorm in training",
                if *ktrain {
                    "trainable: batch statistics, running statistics updated"
                } else {
                    "trainable=False: inference mode, moving statistics used and not updated"
                },
                if torch_frozen {
                    "eval mode: running statistics used and not updated"
                } else {
                    "train mode: batch statistics, running statistics updated"
                },
                label,
            )],
            if *ktrain {
                format!("keep `{}` in train mode while training", p.torch.name)
            } else {
                format!(
                    "after every model.train(): {}.eval()  # requires_grad_(False) alone still updates the statistics",
                    crate::findings::torch_ref(&p.torch.name)
                )
            },
            if *ktrain {
                "nothing to change on this side".to_string()
            } else {
                "layer.trainable = True, if the port is the reference".to_string()
            },
        );
    }
}

fn logical_axes(axes: &[i64], r: Option<usize>, layout: Option<DataLayout>) -> Option<Vec<String>> {
    let r = r?;
    let mut v: Vec<String> = axes
        .iter()
        .map(|a| norm_axis(*a, r).map(|p| logical_axis(p, r, layout)))
        .collect::<Option<_>>()?;
    v.sort();
    Some(v)
}

pub(super) fn layer_norm(c: &Ctx<'_>, p: &Pair<'_>, out: &mut Findings) {
    let label = pair_label(&p.keras.name, &p.torch.name);
    let kl = spatial_layout(c.keras);
    let tl = spatial_layout(c.torch);
    let kr = input_shape(c.kshapes, p.keras).map(Vec::len);
    let tr = input_shape(c.tshapes, p.torch).map(Vec::len);
    match (&p.keras.op, &p.torch.op) {
        (
            Op::LayerNorm {
                axes: ka,
                epsilon: ke,
                rms_scaling: krms,
                ..
            },
            Op::LayerNorm {
                axes: ta,
                epsilon: te,
                rms_scaling: trms,
                ..
            },
        ) => {
            let (kax, tax) = (logical_axes(ka, kr, kl), logical_axes(ta, tr, tl));
            let axes_differ = match (&kax, &tax) {
                (Some(a), Some(b)) => a != b,
                _ => ka.len() != ta.len(),
            };
            let c_dim = p.keras.params.first().map_or(0, |q| q.tensor.len());
            let fix_t = if tl.is_some() {
                format!(
                    "nn.LayerNorm({c_dim}, eps={})  # over the channel axis only; permute NCHW → NHWC first",
                    py(*ke)
                )
            } else {
                format!("nn.LayerNorm({c_dim}, eps={})", py(*ke))
            };
            if axes_differ || krms != trms {
                let show = |ax: &Option<Vec<String>>, a: &[i64], rms: bool| {
                    format!(
                        "{}{}",
                        ax.as_ref()
                            .map_or_else(|| format!("{a:?}"), |v| v.join(", ")),
                        if rms { " (RMS scaling)" } else { "" }
                    )
                };
                out.title_item(
                    Id::LayernormEpsAxis,
                    "LayerNorm differs",
                    format!(
                        "normalized axes (Keras {}, torch {})",
                        show(&kax, ka, *krms),
                        show(&tax, ta, *trms)
                    ),
                );
                out.add(
                    Id::LayernormEpsAxis,
                    Severity::High,
                    2.0,
                    vec![ev(
                        "normalized axes",
                        kax.map_or_else(|| format!("{ka:?}"), |v| v.join(", ")),
                        tax.map_or_else(|| format!("{ta:?}"), |v| v.join(", ")),
                        label.clone(),
                    )],
                    fix_t.clone(),
                    "keras.layers.LayerNormalization(axis=...)  # the axes torch normalizes",
                );
            }
            if !LAYER_ATTR_TOL.close(*te, *ke) {
                out.title_item(
                    Id::LayernormEpsAxis,
                    "LayerNorm differs",
                    format!("epsilon (Keras {}, torch {})", py(*ke), py(*te)),
                );
                out.add(
                    Id::LayernormEpsAxis,
                    Severity::Medium,
                    (te / ke).ln().abs(),
                    vec![ev("epsilon", py(*ke), py(*te), label)],
                    fix_t,
                    format!("keras.layers.LayerNormalization(epsilon={})", py(*te)),
                );
            }
        }
        (
            Op::GroupNorm {
                groups: kg,
                epsilon: ke,
                ..
            },
            Op::GroupNorm {
                groups: tg,
                epsilon: te,
                ..
            },
        ) => {
            let c_dim = p.keras.params.first().map_or(0, |q| q.tensor.len());
            if kg != tg {
                out.set_title(
                    Id::ArchitectureMismatch,
                    format!(
                        "GroupNorm groups differ at `{}` (Keras {kg}, torch {tg})",
                        p.keras.name
                    ),
                );
                out.add(
                    Id::ArchitectureMismatch,
                    Severity::High,
                    1.0,
                    vec![ev(
                        "GroupNorm groups",
                        kg.to_string(),
                        tg.to_string(),
                        label.clone(),
                    )],
                    format!("nn.GroupNorm({kg}, {c_dim}, eps={})", py(*ke)),
                    format!("keras.layers.GroupNormalization(groups={tg})"),
                );
            }
            if !LAYER_ATTR_TOL.close(*te, *ke) {
                out.title_item(
                    Id::LayernormEpsAxis,
                    "LayerNorm differs",
                    format!("GroupNorm epsilon (Keras {}, torch {})", py(*ke), py(*te)),
                );
                out.add(
                    Id::LayernormEpsAxis,
                    Severity::Medium,
                    (te / ke).ln().abs(),
                    vec![ev("GroupNorm epsilon", py(*ke), py(*te), label)],
                    format!("nn.GroupNorm({kg}, {c_dim}, eps={})", py(*ke)),
                    format!("keras.layers.GroupNormalization(epsilon={})", py(*te)),
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use model_ir::{Framework, MomentumForm, Op, VarianceEstimate};
    use report::Severity;

    use super::super::tests::check;
    use crate::testkit::*;

    fn bn(fw: Framework, eps: f64, m: MomentumForm, var: VarianceEstimate) -> model_ir::Node {
        let roles = [
            (model_ir::ParamRole::Gamma, 1.0f32, "gamma"),
            (model_ir::ParamRole::Beta, 0.0, "beta"),
            (model_ir::ParamRole::MovingMean, 0.0, "moving_mean"),
            (model_ir::ParamRole::MovingVariance, 1.0, "moving_variance"),
        ];
        node(
            fw,
            "bn",
            Op::BatchNorm {
                axis: -1,
                epsilon: eps,
                momentum: m,
                running_variance: var,
                center: true,
                scale: true,
                trainable: true,
                track_running_stats: true,
                training_mode: None,
            },
            "x",
            roles
                .iter()
                .map(|(r, v, n)| {
                    param(
                        &format!("bn/{n}"),
                        *r,
                        model_ir::ParamLayout::Vector,
                        tensor(&[4], vec![*v; 4]),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn batch_norm_conventions() {
        let k = || {
            model(
                Framework::Keras,
                &[4],
                vec![bn(
                    Framework::Keras,
                    1e-3,
                    MomentumForm::KeepOld(0.99),
                    VarianceEstimate::Biased,
                )],
            )
        };
        let t = |eps, m| {
            model(
                Framework::Torch,
                &[4],
                vec![bn(Framework::Torch, eps, m, VarianceEstimate::Biased)],
            )
        };
        check(k(), t(1e-3, MomentumForm::TakeNew(0.01)), &[]);
        check(
            k(),
            t(1e-3, MomentumForm::TakeNew(0.1)),
            &[("bn-momentum-convention", Severity::Medium)],
        );
        check(
            k(),
            t(1e-5, MomentumForm::TakeNew(0.01)),
            &[("bn-epsilon", Severity::Low)],
        );
        let tv = model(
            Framework::Torch,
            &[4],
            vec![bn(
                Framework::Torch,
                1e-3,
                MomentumForm::TakeNew(0.01),
                VarianceEstimate::Unbiased,
            )],
        );
        check(k(), tv, &[("bn-running-var-bias", Severity::Info)]);
    }

    #[test]
    fn frozen_batch_norm() {
        let mut kn = bn(
            Framework::Keras,
            1e-3,
            MomentumForm::KeepOld(0.99),
            VarianceEstimate::Biased,
        );
        if let Op::BatchNorm { trainable, .. } = &mut kn.op {
            *trainable = false;
        }
        let mut tn = bn(
            Framework::Torch,
            1e-3,
            MomentumForm::TakeNew(0.01),
            VarianceEstimate::Biased,
        );
        if let Op::BatchNorm { training_mode, .. } = &mut tn.op {
            *training_mode = Some(true);
        }
        let k = model(Framework::Keras, &[4], vec![kn]);
        let t = model(Framework::Torch, &[4], vec![tn]);
        check(k, t, &[("bn-frozen-means-inference", Severity::High)]);
    }
}
