//! L1/L2 weight regularizers against torch weight decay.

use super::*;

/// An L1/L2 weight regularizer of one Keras variable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Regularizer {
    pub(crate) layer: String,
    /// The variable: `kernel`, `bias`, `depthwise_kernel`, ...
    pub(crate) target: String,
    pub(crate) l1: f64,
    pub(crate) l2: f64,
}

/// The Keras weight regularizers the importer put in the training configuration
/// (`TrainingConfig::regularizers`, by parameter name: only trainable variables, whose
/// penalty Keras adds to the loss), in graph order.
pub(crate) fn regularizers(m: &Model) -> Vec<Regularizer> {
    let Some(t) = &m.training else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in &m.nodes {
        for p in &n.params {
            let Some(r) = t.regularizers.get(&p.name) else {
                continue;
            };
            let leaf = p.name.rsplit('/').next().unwrap_or(&p.name);
            out.push(Regularizer {
                layer: n.name.clone(),
                target: leaf.to_string(),
                l1: r.l1,
                l2: r.l2,
            });
        }
    }
    out
}

/// The weight decay torch applies to each parameter: the group override or the default.
fn torch_weight_decay(t: &TrainingConfig) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for g in t.param_groups.iter().flatten() {
        if let Some(wd) = g
            .overrides
            .get("weight_decay")
            .and_then(serde_json::Value::as_f64)
        {
            for p in &g.params {
                m.insert(p.clone(), wd);
            }
        }
    }
    m
}

/// Whether weight decay is owned by the regularizer check (Keras L2 regularizers, or torch
/// parameter groups with their own weight decay).
pub(super) fn regularization_ported(regs: &[Regularizer], _t: &TrainingConfig) -> bool {
    !regs.is_empty()
}

/// L1/L2 regularizers vs torch weight decay (`l2-regularizer-factor-two`).
pub(super) fn regularization(
    torch_cfg: &TrainingConfig,
    aligned: &Aligned<'_>,
    regs: &[Regularizer],
    out: &mut Findings,
) {
    let id = Id::L2RegularizerFactorTwo;
    let base = torch_cfg
        .optimizer
        .as_ref()
        .and_then(|o| topt::Config::from_spec(o).ok());
    let Some(mut base) = base else { return };
    base.normalize_adamw();
    let decoupled = matches!(base.kind, topt::Kind::AdamW { .. });
    let overrides = torch_weight_decay(torch_cfg);
    let wd_of = |name: &str| overrides.get(name).copied().unwrap_or(base.weight_decay);
    if regs.is_empty() {
        // Parameter groups with their own decay, and no Keras regularizer they could port.
        let odd: Vec<String> = overrides
            .iter()
            .filter(|(_, wd)| differs(**wd, base.weight_decay))
            .map(|(n, wd)| format!("{n}: {}", num(*wd)))
            .collect();
        if !odd.is_empty() {
            out.set_title(
                Id::OptimizerMismatch,
                format!(
                    "torch gives parameters their own weight decay ({}) where Keras has one setting",
                    odd.join(", ")
                ),
            );
            out.add(
                Id::OptimizerMismatch,
                Severity::Medium,
                1.0,
                vec![ev(
                    "per-parameter weight decay",
                    "one setting for every variable (no regularizers)",
                    odd.join(", "),
                    None,
                )],
                "one parameter group, as in Keras",
                "kernel_regularizer=keras.regularizers.L2(weight_decay / 2) on those layers, if the decay is meant",
            );
        }
        return;
    }
    let mut regularized = Vec::new();
    for r in regs {
        let Some(pair) = aligned.pairs.iter().find(|p| p.keras.name == r.layer) else {
            continue;
        };
        let role = match r.target.as_str() {
            "kernel" => ParamRole::Kernel,
            "bias" => ParamRole::Bias,
            _ => {
                out.title_item(
                    id,
                    "Keras weight regularizers and torch weight decay differ",
                    format!(
                        "`{}` {}_regularizer (l1={}, l2={}) has no torch counterpart",
                        r.layer,
                        r.target,
                        num(r.l1),
                        num(r.l2)
                    ),
                );
                out.add(
                    id,
                    Severity::Medium,
                    1.0,
                    vec![ev(
                        format!("{}_regularizer", r.target),
                        format!("l1={}, l2={}", num(r.l1), num(r.l2)),
                        "no counterpart",
                        pair_label(&pair.keras.name, &pair.torch.name),
                    )],
                    "add the penalty to the torch loss by hand",
                    "nothing to change on this side",
                );
                continue;
            }
        };
        let Some(tp) = pair
            .params
            .iter()
            .find(|m| m.keras.role == role)
            .and_then(|m| m.torch.first())
        else {
            continue;
        };
        regularized.push(tp.name.clone());
        let wd = wd_of(&tp.name);
        let label = pair_label(&pair.keras.name, &pair.torch.name);
        let fix_t = format!(
            "torch.optim.{}([{{'params': [{}], 'weight_decay': {}}}, {{'params': <the rest>, 'weight_decay': 0}}], ...)  # coupled (not AdamW); or loss += {} * {}.pow(2).sum()",
            if decoupled {
                "Adam"
            } else {
                base.kind.class_name()
            },
            torch_ref(&tp.name),
            num(2.0 * r.l2),
            num(r.l2),
            torch_ref(&tp.name)
        );
        if r.l1 > 0.0 {
            out.title_item(
                id,
                "Keras weight regularizers and torch weight decay differ",
                format!(
                    "`{}` {} L1 {} (torch no L1 term)",
                    r.layer,
                    r.target,
                    num(r.l1)
                ),
            );
            out.add(
                id,
                Severity::Medium,
                1.0,
                vec![ev(
                    format!("{} L1 penalty", r.target),
                    format!("l1={}", num(r.l1)),
                    "no L1 term",
                    label.clone(),
                )],
                format!(
                    "loss += {} * {}.abs().sum()",
                    num(r.l1),
                    torch_ref(&tp.name)
                ),
                "nothing to change on this side",
            );
        }
        if r.l2 <= 0.0 {
            continue;
        }
        let want = 2.0 * r.l2;
        if !differs(want, wd) {
            if decoupled {
                out.set_title(
                    Id::AdamWeightDecayCoupling,
                    format!(
                        "Keras L2 l2={} on `{}` ported as AdamW's decoupled weight_decay={}",
                        num(r.l2),
                        r.layer,
                        num(wd)
                    ),
                );
                out.add(
                    Id::AdamWeightDecayCoupling,
                    Severity::Medium,
                    1.0,
                    vec![ev(
                        format!("L2 on {}", tp.name),
                        format!("l2={} in the loss (gradient 2λw)", num(r.l2)),
                        format!("decoupled weight_decay={}", num(wd)),
                        label,
                    )],
                    "use torch.optim.Adam (coupled weight_decay) for the L2 term",
                    "nothing to change on this side",
                );
            }
            continue;
        }
        let why = if wd.abs() <= 0.0 {
            "the regularizer is not ported".to_string()
        } else if !differs(r.l2, wd) {
            "weight_decay = λ: half the Keras gradient 2λw".to_string()
        } else {
            format!("weight_decay {} ≠ 2λ = {}", num(wd), num(want))
        };
        out.title_item(
            id,
            "Keras weight regularizers and torch weight decay differ",
            format!(
                "`{}` {} l2={} (gradient {}·w), torch weight_decay={}",
                r.layer,
                r.target,
                num(r.l2),
                num(want),
                num(wd)
            ),
        );
        out.add(
            id,
            Severity::Medium,
            1.0,
            vec![ev(
                format!("L2 on {} ({why})", r.layer),
                format!("l2({}): loss += λ·Σw², gradient {}·w", num(r.l2), num(want)),
                format!("weight_decay={} on {}", num(wd), tp.name),
                label,
            )],
            fix_t,
            format!(
                "kernel_regularizer=keras.regularizers.L2({})",
                num(wd / 2.0)
            ),
        );
    }
    if !regs.is_empty() {
        // Decay on parameters Keras does not regularize (biases, BatchNorm).
        let extra: Vec<String> = keras_unregularized_torch_params(aligned, &regularized)
            .into_iter()
            .filter(|n| wd_of(n) > 0.0)
            .collect();
        if !extra.is_empty() {
            out.title_item(
                id,
                "Keras weight regularizers and torch weight decay differ",
                format!(
                    "torch weight_decay={} on {} (no Keras regularizer)",
                    num(wd_of(&extra[0])),
                    extra.join(", ")
                ),
            );
            out.add(
                id,
                Severity::Low,
                0.5,
                vec![ev(
                    "weight decay on parameters Keras does not regularize",
                    "none",
                    format!(
                        "{} (weight_decay={})",
                        extra.join(", "),
                        num(wd_of(&extra[0]))
                    ),
                    None,
                )],
                "put those parameters in a group with weight_decay=0",
                "nothing to change on this side",
            );
        }
    }
}

fn keras_unregularized_torch_params(aligned: &Aligned<'_>, regularized: &[String]) -> Vec<String> {
    aligned
        .pairs
        .iter()
        .flat_map(|p| p.params.iter().flat_map(|m| m.torch.iter()))
        .filter(|p| p.trainable && !regularized.contains(&p.name))
        .map(|p| p.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regularizers_come_from_the_training_config() {
        use crate::testkit::{model, node, param, tensor};
        use model_ir::{Framework, ParamLayout, ParamRole, TrainingConfig, WeightRegularizer};
        let mut m = model(
            Framework::Keras,
            &[2],
            vec![node(
                Framework::Keras,
                "branch_a",
                model_ir::Op::Dense {
                    units: 2,
                    use_bias: true,
                    activation: model_ir::Activation::Linear,
                },
                "x",
                vec![
                    param(
                        "branch_a/kernel",
                        ParamRole::Kernel,
                        ParamLayout::DenseInOut,
                        tensor(&[2, 2], vec![1.0; 4]),
                    ),
                    param(
                        "branch_a/bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        tensor(&[2], vec![0.0; 2]),
                    ),
                ],
            )],
        );
        let mut t = TrainingConfig::defaults(Framework::Keras);
        t.regularizers.insert(
            "branch_a/kernel".into(),
            WeightRegularizer { l1: 0.0, l2: 0.001 },
        );
        m.training = Some(t);
        let r = regularizers(&m);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].layer, "branch_a");
        assert_eq!(r[0].target, "kernel");
        assert!((r[0].l2 - 0.001).abs() < 1e-12);
    }
}
