//! Keras weight constraints (`weight-constraints`): Keras projects a constrained variable
//! after every optimizer update; torch does nothing unless the training loop does it. Each
//! constrained Keras variable of a pair is evidence; its constraint is mapped onto the torch
//! parameter's axes (the layout counterpart's axis permutation: Dense kernel `(in, out)` axis 0
//! ↔ Linear weight `(out, in)` axis 1, conv HWIO axes `[0, 1, 2]` ↔ OIHW `[1, 2, 3]`) for the
//! simulation switch and the fix.

use std::collections::BTreeMap;

use catalogue::Id;
use model_ir::{Constraint, Model, Param, Step};
use report::Severity;

use crate::align::{Group, Pair};
use crate::findings::{Findings, ev, torch_ref};

/// The Keras constraints under torch names and axes, and the Keras parameters whose
/// constraint has no exact torch counterpart.
#[derive(Debug, Default)]
pub(super) struct Mapped {
    pub(super) mapped: BTreeMap<String, Constraint>,
    pub(super) unmapped: Vec<String>,
}

/// Keras axis → torch axis under the counterpart transform of `k` (its permutations; gate
/// block reorders keep every norm), when the mapped shape is `t`'s.
fn axis_map(k: &Param, t: &Param) -> Option<Vec<usize>> {
    let (_, transform) = k.layout.counterpart();
    let rank = k.tensor.shape().len();
    // pos[a] = the axis of the current tensor that Keras axis a is at.
    let mut pos: Vec<usize> = (0..rank).collect();
    for s in &transform.steps {
        if let Step::Permute { perm } = s {
            if perm.len() != rank {
                return None;
            }
            // Result axis j holds source axis perm[j].
            let mut next = vec![0; rank];
            for (a, p) in pos.iter().enumerate() {
                next[a] = perm.iter().position(|x| x == p)?;
            }
            pos = next;
        }
    }
    let expect: Vec<usize> = (0..rank)
        .map(|j| {
            pos.iter()
                .position(|&p| p == j)
                .map_or(0, |a| k.tensor.shape()[a])
        })
        .collect();
    (expect.as_slice() == t.tensor.shape()).then_some(pos)
}

/// `dim=1`, `dim=(1, 2, 3)`: the torch `dim` argument for these axes.
fn dims(axes: &[usize]) -> String {
    match axes {
        [one] => format!("dim={one}"),
        many => format!(
            "dim=({})",
            many.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn py(x: f64) -> String {
    let s = format!("{x:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The torch code applying `c` (already in the torch parameter's axes) to `name` after
/// `opt.step()`, exactly as Keras computes it, and a note on `torch.renorm`.
pub(super) fn torch_fix(c: &Constraint, name: &str, rank: usize) -> String {
    let w = torch_ref(name);
    let body = match c {
        Constraint::MaxNorm { max_value, axes } => {
            let kept: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
            let renorm = match kept.as_slice() {
                [d] => format!(
                    "  # torch.renorm({w}, 2, {d}, {}) is close but not bit-identical: it leaves norms ≤ max_value unscaled, Keras multiplies them by n / (1e-7 + n)",
                    py(*max_value)
                ),
                _ => String::new(),
            };
            format!(
                "n = {w}.norm(2, {}, keepdim=True); {w}.mul_(n.clamp(0, {}) / (1e-7 + n)){renorm}",
                dims(axes),
                py(*max_value)
            )
        }
        Constraint::UnitNorm { axes } => {
            format!("{w}.div_(1e-7 + {w}.norm(2, {}, keepdim=True))", dims(axes))
        }
        Constraint::NonNeg => format!("{w}.clamp_(min=0)"),
        Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            axes,
        } => format!(
            "n = {w}.norm(2, {}, keepdim=True); {w}.mul_(({} * n.clamp({}, {}) + {} * n) / (1e-7 + n))",
            dims(axes),
            py(*rate),
            py(*min_value),
            py(*max_value),
            py(1.0 - rate)
        ),
        Constraint::Unknown { class } => {
            return format!(
                "# after opt.step(): apply the projection of the custom Keras constraint {class} to {w}"
            );
        }
    };
    format!("# after every opt.step():\nwith torch.no_grad(): {body}")
}

/// Evidence and the torch mapping of every constrained Keras variable of `pair`.
pub(super) fn check_pair(
    keras: &Model,
    pair: &Pair<'_>,
    label: Option<String>,
    out: &mut Findings,
    mapped: &mut Mapped,
) {
    let Some(all) = keras.training.as_ref().map(|t| &t.constraints) else {
        return;
    };
    for m in &pair.params {
        let Some(c) = all.get(&m.keras.name) else {
            continue;
        };
        let t = match (m.group, m.torch.as_slice()) {
            (Group::One, [t]) => Some(*t),
            _ => None,
        };
        let tc = t.and_then(|t| {
            let pos = axis_map(m.keras, t)?;
            c.with_axes(|a| pos.get(a).copied()).map(|c| (t, c))
        });
        let fix = match &tc {
            Some((t, tc)) => {
                mapped.mapped.insert(t.name.clone(), tc.clone());
                torch_fix(tc, &t.name, t.tensor.shape().len())
            }
            None => {
                mapped.unmapped.push(m.keras.name.clone());
                format!(
                    "# after every opt.step(): project {} as Keras {} does (no exact axis mapping for this layout)",
                    m.torch
                        .iter()
                        .map(|p| torch_ref(&p.name))
                        .collect::<Vec<_>>()
                        .join(", "),
                    c.display()
                )
            }
        };
        let tnames = m
            .torch
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let tside = match &tc {
            Some((_, tc)) if tc.axes() != c.axes() => {
                format!(
                    "{tnames}: none (the same norm is over torch axes {:?})",
                    tc.axes()
                )
            }
            _ => format!("{tnames}: none"),
        };
        out.add(
            Id::WeightConstraints,
            Severity::Medium,
            1.0,
            vec![ev(
                "constraint applied after every optimizer step",
                format!("{}: {}", m.keras.name, c.display()),
                tside,
                label.clone(),
            )],
            fix,
            format!(
                "or drop the constraint from layer `{}` so that neither side projects",
                pair.keras.name
            ),
        );
        out.set_title(
            Id::WeightConstraints,
            format!(
                "Keras applies {} to {} after every optimizer step; torch applies none",
                c.display(),
                m.keras.name
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model_ir::{ParamLayout, ParamRole, Tensor};

    fn p(name: &str, layout: ParamLayout, shape: &[usize]) -> Param {
        let n: usize = shape.iter().product();
        Param {
            name: name.into(),
            role: ParamRole::Kernel,
            layout,
            tensor: Tensor::from_f32(shape, vec![0.0; n]).unwrap(),
            trainable: true,
        }
    }

    #[test]
    fn axes_follow_the_layout() {
        let k = p("d/kernel", ParamLayout::DenseInOut, &[4, 3]);
        let t = p("fc.weight", ParamLayout::DenseOutIn, &[3, 4]);
        let pos = axis_map(&k, &t).unwrap();
        assert_eq!(pos, vec![1, 0]);
        let k = p(
            "c/kernel",
            ParamLayout::ConvSpatialInOut { rank: 2 },
            &[3, 3, 2, 5],
        );
        let t = p(
            "c.weight",
            ParamLayout::ConvOutInSpatial { rank: 2 },
            &[5, 2, 3, 3],
        );
        let pos = axis_map(&k, &t).unwrap();
        let c = Constraint::MaxNorm {
            max_value: 2.0,
            axes: vec![0, 1, 2],
        };
        assert_eq!(
            c.with_axes(|a| pos.get(a).copied()).unwrap().axes(),
            &[1, 2, 3]
        );
        // A torch tensor of another shape has no exact mapping.
        let t = p(
            "c.weight",
            ParamLayout::ConvOutInSpatial { rank: 2 },
            &[2, 5, 3, 3],
        );
        assert!(axis_map(&k, &t).is_none());
    }

    #[test]
    fn fix_is_the_keras_formula() {
        let c = Constraint::MaxNorm {
            max_value: 3.0,
            axes: vec![1],
        };
        let f = torch_fix(&c, "fc.weight", 2);
        assert!(f.contains("n = model.fc.weight.norm(2, dim=1, keepdim=True); model.fc.weight.mul_(n.clamp(0, 3) / (1e-7 + n))"), "{f}");
        assert!(f.contains("torch.renorm(model.fc.weight, 2, 0, 3)"), "{f}");
    }

    #[test]
    fn constrained_keras_kernel_is_a_finding() {
        let (mut k, t) = crate::testkit::faithful_mlp();
        if let Some(tr) = k.training.as_mut() {
            tr.constraints.insert(
                "d1/kernel".into(),
                Constraint::MaxNorm {
                    max_value: 2.5,
                    axes: vec![0],
                },
            );
        }
        let d = crate::testkit::run(k.clone(), t.clone());
        let f = d
            .findings
            .iter()
            .find(|f| f.id == "weight-constraints")
            .expect("weight-constraints");
        assert_eq!(f.evidence.len(), 1);
        let e = &f.evidence[0];
        assert_eq!(e.keras, "d1/kernel: MaxNorm(max_value=2.5, axis=0)");
        assert_eq!(
            e.torch,
            "fc1.weight: none (the same norm is over torch axes [1])"
        );
        assert_eq!(e.layer.as_deref(), Some("d1 ↔ fc1"));
        assert!(
            f.fix
                .torch
                .contains("n = model.fc1.weight.norm(2, dim=1, keepdim=True); model.fc1.weight.mul_(n.clamp(0, 2.5) / (1e-7 + n))"),
            "{}",
            f.fix.torch
        );
        assert_eq!(
            f.title,
            "Keras applies MaxNorm(max_value=2.5, axis=0) to d1/kernel after every optimizer step; torch applies none"
        );
        // The mapping the switch uses.
        let aligned = crate::align::align(&k, &t);
        let shapes = crate::graph::infer_shapes(&k);
        let mut out = crate::findings::Findings::default();
        let w = super::super::check(&k, &t, &aligned, &shapes, &mut out);
        assert_eq!(
            w.constraints.get("fc1.weight"),
            Some(&Constraint::MaxNorm {
                max_value: 2.5,
                axes: vec![1]
            })
        );
        assert!(w.constraints_unmapped.is_empty());
        // Without a constraint: no finding.
        let (k, t) = crate::testkit::faithful_mlp();
        assert!(
            crate::testkit::run(k, t)
                .findings
                .iter()
                .all(|f| f.id != "weight-constraints")
        );
    }
}
