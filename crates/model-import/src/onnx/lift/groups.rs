//! The multi-node patterns found by [`crate::onnx::patterns`]: one IR layer per group.

use model_ir::{Op, Param, ParamLayout, ParamRole};

use crate::onnx::patterns::GroupKind;

use super::norm::gamma_layout;
use super::{Lifter, R};

impl Lifter<'_> {
    pub(super) fn lift_group(&mut self, k: usize) -> R<()> {
        let grp = self.groups[k].clone();
        for &n in &grp.nodes {
            if let Some(attrs) = super::Registry::attrs(self.g.op(n)) {
                self.check_attrs(n, attrs)?;
            }
        }
        let first = grp.nodes[0];
        let last = *grp.nodes.last().unwrap_or(&first);
        let x = self.resolve(&grp.input, &self.g.name(first))?;
        let class: String = grp
            .nodes
            .iter()
            .map(|&n| self.g.op(n))
            .collect::<Vec<_>>()
            .join("+");
        let layout = self.layout_of(&x);
        match grp.kind {
            GroupKind::Act(function) => {
                self.emit(
                    first,
                    Op::Activation { function },
                    vec![x],
                    vec![grp.output.clone()],
                    Vec::new(),
                    &class,
                )?;
            }
            GroupKind::LayerNorm {
                axes,
                epsilon,
                weight,
                bias,
            } => {
                let mut params = Vec::new();
                if let Some(w) = &weight {
                    let layout = gamma_layout(
                        self.g
                            .konst(w)
                            .ok_or_else(|| self.malformed(last, "weight"))?,
                    );
                    params.push(self.param_of_value(
                        last,
                        w,
                        ParamRole::Gamma,
                        layout,
                        "weight",
                    )?);
                }
                if let Some(b) = &bias {
                    let layout = gamma_layout(
                        self.g
                            .konst(b)
                            .ok_or_else(|| self.malformed(last, "bias"))?,
                    );
                    params.push(self.param_of_value(last, b, ParamRole::Beta, layout, "bias")?);
                }
                self.emit(
                    first,
                    Op::LayerNorm {
                        axes,
                        epsilon,
                        center: bias.is_some(),
                        scale: weight.is_some(),
                        rms_scaling: false,
                    },
                    vec![x],
                    vec![grp.output.clone()],
                    params,
                    &class,
                )?;
            }
            GroupKind::GroupNorm {
                groups,
                epsilon,
                weight,
                bias,
            } => {
                let mut params = Vec::new();
                if let Some(w) = &weight {
                    params.push(self.flat_param(last, w, ParamRole::Gamma, "weight")?);
                }
                if let Some(b) = &bias {
                    params.push(self.flat_param(last, b, ParamRole::Beta, "bias")?);
                }
                self.emit(
                    first,
                    Op::GroupNorm {
                        groups,
                        axis: 1,
                        epsilon,
                        center: bias.is_some(),
                        scale: weight.is_some(),
                    },
                    vec![x],
                    vec![grp.output.clone()],
                    params,
                    &class,
                )?;
            }
        }
        self.set_layout(&grp.output, layout);
        Ok(())
    }

    /// A per-channel parameter stored broadcastable (`(C, 1, 1)`), as a vector.
    fn flat_param(&mut self, i: usize, v: &str, role: ParamRole, suffix: &str) -> R<Param> {
        let mut p = self.param_of_value(i, v, role, ParamLayout::Vector, suffix)?;
        let n = p.tensor.len();
        if p.tensor.shape() != [n] {
            p.tensor = p.tensor.reshaped(&[n]).unwrap_or(p.tensor);
        }
        Ok(p)
    }
}
