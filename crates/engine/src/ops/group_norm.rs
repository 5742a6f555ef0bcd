//! Group normalization: the channels on `axis` split into `groups` contiguous blocks, each
//! normalized per sample over its channels and every spatial position (Keras
//! `GroupNormalization`, `keras/src/layers/normalization/group_normalization.py`; torch
//! `GroupNorm`, `torch/nn/modules/normalization.py`).
//!
//! Forward: with the input viewed as `(N, G, C/G · S)`: `x̂ = (x − μ)/√(σ² + ε)` per `(n, g)`,
//! biased `σ²`; `y = γ_c·x̂ + β_c`.
//! VJP: `g = dy·γ`; `dx = (1/√(σ²+ε))·(g − mean(g) − x̂·mean(g·x̂))` per group;
//! `dγ = Σ dy·x̂`, `dβ = Σ dy` over everything but the channel axis.

use model_ir::ParamRole;
use ndarray::{ArrayD, IxDyn};

use super::kernel_cx::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes, Saved};
use super::layer_norm::{normalize, normalize_backward};
use super::norm_stats::{bcast_shape, sum_over, to_b};
use super::util::{inverse_perm, norm_axis, permuted};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct GroupNorm {
    pub(crate) groups: usize,
    pub(crate) axis: i64,
    pub(crate) epsilon: f64,
    pub(crate) gamma: Option<String>,
    pub(crate) beta: Option<String>,
}

impl GroupNorm {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        groups: usize,
        axis: i64,
        epsilon: f64,
        center: bool,
        scale: bool,
    ) -> Result<GroupNorm, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        if groups == 0 {
            return Err(cx.invalid("groups must be positive"));
        }
        let gamma = cx.opt_param(ParamRole::Gamma)?;
        let beta = cx.opt_param(ParamRole::Beta)?;
        if scale != gamma.is_some() || center != beta.is_some() {
            return Err(cx.invalid("center/scale do not match the stored beta/gamma"));
        }
        Ok(GroupNorm {
            groups,
            axis,
            epsilon,
            gamma: gamma.map(|p| p.name.clone()),
            beta: beta.map(|p| p.name.clone()),
        })
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let x = xs[0];
        if x.len() < 2 {
            return Err(format!("expects batch and channel axes, got shape {x:?}"));
        }
        let ax = norm_axis(self.axis, x.len())?;
        if ax == 0 {
            return Err("the channel axis cannot be the batch axis".into());
        }
        let ch = x[ax];
        if !ch.is_multiple_of(self.groups) {
            return Err(format!(
                "{ch} channels do not split into {} groups",
                self.groups
            ));
        }
        for p in [&self.gamma, &self.beta].into_iter().flatten() {
            if ps[p].iter().product::<usize>() != ch {
                return Err(format!(
                    "parameter `{p}` has shape {:?}, expected {ch} entries",
                    ps[p]
                ));
            }
        }
        Ok(vec![x.to_vec()])
    }

    /// Permutation moving the channel axis to position 1.
    fn perm(&self, rank: usize) -> Vec<usize> {
        let ax = norm_axis(self.axis, rank).unwrap_or(1);
        let mut p = vec![0, ax];
        p.extend((1..rank).filter(|&a| a != ax));
        p
    }

    fn grouped<F: Float>(&self, x: &ArrayD<F>) -> ArrayD<F> {
        let p = self.perm(x.ndim());
        let xf = permuted(x, &p);
        let n = xf.shape()[0];
        let rest = xf.len() / n.max(1) / self.groups;
        match xf.into_shape_with_order(IxDyn(&[n, self.groups, rest])) {
            Ok(v) => v,
            Err(e) => panic!("group view: {e}"),
        }
    }

    fn ungrouped<F: Float>(&self, g: ArrayD<F>, shape: &[usize]) -> ArrayD<F> {
        let p = self.perm(shape.len());
        let pshape: Vec<usize> = p.iter().map(|&i| shape[i]).collect();
        let a = match g.into_shape_with_order(IxDyn(&pshape)) {
            Ok(v) => v,
            Err(e) => panic!("group view: {e}"),
        };
        permuted(&a, &inverse_perm(&p))
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = xs[0];
        let ax = norm_axis(self.axis, x.ndim())?;
        let ch = x.shape()[ax];
        let bshape = bcast_shape(x.ndim(), ax, ch);
        let (xhat_g, inv, _) = normalize(&self.grouped(x), &[2], c(self.epsilon));
        let xhat = self.ungrouped(xhat_g.clone(), x.shape());
        let mut y = xhat.clone();
        if let Some(g) = &self.gamma {
            y *= &to_b(&cx.param(g).iter().copied().collect::<Vec<_>>(), &bshape);
        }
        if let Some(b) = &self.beta {
            y += &to_b(&cx.param(b).iter().copied().collect::<Vec<_>>(), &bshape);
        }
        let mut saved = Saved::default();
        saved.arrays.push(xhat);
        saved.arrays.push(xhat_g);
        saved.arrays.push(inv);
        Ok(Out { ys: vec![y], saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = cx.xs[0];
        let dy = &cx.dys[0];
        let ax = norm_axis(self.axis, x.ndim()).unwrap_or(1);
        let ch = x.shape()[ax];
        let bshape = bcast_shape(x.ndim(), ax, ch);
        let xhat = &cx.saved.arrays[0];
        let g = match &self.gamma {
            Some(gn) => dy * &to_b(&cx.param(gn).iter().copied().collect::<Vec<_>>(), &bshape),
            None => dy.clone(),
        };
        let dxg = normalize_backward(
            &self.grouped(&g),
            &cx.saved.arrays[1],
            &cx.saved.arrays[2],
            &[2],
        );
        let dx = self.ungrouped(dxg, x.shape());
        let red: Vec<usize> = (0..x.ndim()).filter(|&a| a != ax).collect();
        let mut dparams = Vec::new();
        if let Some(gn) = &self.gamma {
            let v = sum_over(&(dy * xhat), &red);
            dparams.push((gn.clone(), to_b(&v, &[ch])));
        }
        if let Some(bn) = &self.beta {
            dparams.push((bn.clone(), to_b(&sum_over(dy, &red), &[ch])));
        }
        NodeGrads {
            dxs: vec![Some(dx)],
            dparams,
        }
    }
}
