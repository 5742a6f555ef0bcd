//! Layer normalization over `axes` (Keras `LayerNormalization`, torch `LayerNorm` over its
//! trailing `normalized_shape`), including Keras's `rms_scaling` form.
//!
//! Statistics over the normalized axes (`n` values per group): `μ`, biased `σ²`.
//! Forward: `x̂ = (x − μ)/√(σ² + ε)`, `y = γ·x̂ + β` with `γ`, `β` shaped like the normalized
//! axes (`keras/src/ops/nn.py::_layer_normalization`, `torch/nn/modules/normalization.py`).
//! `rms_scaling` (Keras): `y = x·γ/√(σ² + ε)` with the *centered* variance `σ²` and no `β`,
//! exactly as `_layer_normalization` computes it (`var(x)`, not `mean(x²)`).
//!
//! VJP with `g = dy·γ`: standard form
//! `dx = (1/√(σ²+ε)) · (g − mean(g) − x̂·mean(g·x̂))`; rms form
//! `dx = g·r − r³·(x − μ)·mean(g·x)` with `r = 1/√(σ²+ε)`.
//! `dγ = Σ dy·x̂` (rms: `Σ dy·x·r`), `dβ = Σ dy`, summed over the other axes.

use model_ir::ParamRole;
use ndarray::{ArrayD, Axis, IxDyn};

use super::util::norm_axes;
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes, Saved};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct LayerNorm {
    pub(crate) axes: Vec<i64>,
    pub(crate) epsilon: f64,
    pub(crate) rms_scaling: bool,
    pub(crate) gamma: Option<String>,
    pub(crate) beta: Option<String>,
}

impl LayerNorm {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        axes: &[i64],
        epsilon: f64,
        center: bool,
        scale: bool,
        rms_scaling: bool,
    ) -> Result<LayerNorm, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        if axes.is_empty() {
            return Err(cx.invalid("no axes to normalize over"));
        }
        let gamma = cx.opt_param(ParamRole::Gamma)?;
        let beta = cx.opt_param(ParamRole::Beta)?;
        // Keras builds gamma when `scale or rms_scaling`, beta when `center and not rms_scaling`.
        if (scale || rms_scaling) && gamma.is_none() {
            return Err(cx.invalid("scale is true but gamma is missing"));
        }
        if center && beta.is_none() && !rms_scaling {
            return Err(cx.invalid("center is true but beta is missing"));
        }
        Ok(LayerNorm {
            axes: axes.to_vec(),
            epsilon,
            rms_scaling,
            gamma: gamma.map(|p| p.name.clone()),
            beta: beta.filter(|_| !rms_scaling).map(|p| p.name.clone()),
        })
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let axes = norm_axes(&self.axes, xs[0].len())?;
        let want: usize = axes.iter().map(|&a| xs[0][a]).product();
        for p in [&self.gamma, &self.beta].into_iter().flatten() {
            let n: usize = ps[p].iter().product();
            if n != want {
                return Err(format!(
                    "parameter `{p}` has {n} entries, the normalized axes {axes:?} of {:?} hold {want}",
                    xs[0]
                ));
            }
        }
        Ok(vec![xs[0].to_vec()])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = xs[0];
        let axes = norm_axes(&self.axes, x.ndim())?;
        let pshape = param_shape(x.shape(), &axes);
        let (xhat, inv, _) = normalize(x, &axes, c(self.epsilon));
        let mut saved = Saved::default();
        let mut y = if self.rms_scaling {
            x * &inv
        } else {
            xhat.clone()
        };
        if let Some(g) = &self.gamma {
            y *= &reshaped(cx.param(g), &pshape);
        }
        if let Some(b) = &self.beta {
            y += &reshaped(cx.param(b), &pshape);
        }
        saved.arrays.push(xhat);
        saved.arrays.push(inv);
        Ok(Out { ys: vec![y], saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = cx.xs[0];
        let dy = &cx.dys[0];
        let axes = match norm_axes(&self.axes, x.ndim()) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        let pshape = param_shape(x.shape(), &axes);
        let other: Vec<usize> = (0..x.ndim()).filter(|a| !axes.contains(a)).collect();
        let xhat = &cx.saved.arrays[0];
        let inv = &cx.saved.arrays[1];
        let g = match &self.gamma {
            Some(gn) => dy * &reshaped(cx.param(gn), &pshape),
            None => dy.clone(),
        };
        let mut dparams = Vec::new();
        let dx = if self.rms_scaling {
            let n: F = c(axes.iter().map(|&a| x.shape()[a]).product::<usize>() as f64);
            let mean = mean_keep(x, &axes);
            let s = sum_keep(&(&g * x), &axes).mapv(|v| v / n);
            let inv3 = inv.mapv(|v| v * v * v);
            &g * inv - &((x - &mean) * &inv3 * &s)
        } else {
            normalize_backward(&g, xhat, inv, &axes)
        };
        if let Some(gn) = &self.gamma {
            let basis = if self.rms_scaling {
                x * inv
            } else {
                xhat.clone()
            };
            let dg = sum_keep(&(dy * &basis), &other);
            dparams.push((gn.clone(), reshaped(&dg, cx.param(gn).shape())));
        }
        if let Some(bn) = &self.beta {
            let db = sum_keep(dy, &other);
            dparams.push((bn.clone(), reshaped(&db, cx.param(bn).shape())));
        }
        NodeGrads {
            dxs: vec![Some(dx)],
            dparams,
        }
    }
}

/// Shape with the input's sizes on `axes` and 1 elsewhere.
pub(crate) fn param_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { d } else { 1 })
        .collect()
}

/// A copy of `a` with the same elements under `shape`.
pub(crate) fn reshaped<F: Float>(a: &ArrayD<F>, shape: &[usize]) -> ArrayD<F> {
    let v: Vec<F> = a.iter().copied().collect();
    match ArrayD::from_shape_vec(IxDyn(shape), v) {
        Ok(r) => r,
        Err(e) => panic!("reshape {:?} -> {shape:?}: {e}", a.shape()),
    }
}

/// Sum over `axes`, keeping them as size 1.
pub(crate) fn sum_keep<F: Float>(a: &ArrayD<F>, axes: &[usize]) -> ArrayD<F> {
    let mut r = a.clone();
    for &ax in axes {
        r = r.sum_axis(Axis(ax)).insert_axis(Axis(ax));
    }
    r
}

/// Mean over `axes`, keeping them as size 1.
pub(crate) fn mean_keep<F: Float>(a: &ArrayD<F>, axes: &[usize]) -> ArrayD<F> {
    let n: usize = axes.iter().map(|&ax| a.shape()[ax]).product();
    let inv_n: F = c(1.0 / n.max(1) as f64);
    sum_keep(a, axes).mapv(|v| v * inv_n)
}

/// `(x̂, 1/√(σ²+ε), μ)` with statistics over `axes` (kept as size 1).
pub(crate) fn normalize<F: Float>(
    x: &ArrayD<F>,
    axes: &[usize],
    eps: F,
) -> (ArrayD<F>, ArrayD<F>, ArrayD<F>) {
    let mean = mean_keep(x, axes);
    let centered = x - &mean;
    let var = mean_keep(&centered.mapv(|v| v * v), axes);
    let inv = var.mapv(|v| F::one() / (v + eps).sqrt());
    let xhat = centered * &inv;
    (xhat, inv, mean)
}

/// `dx = inv · (g − mean(g) − x̂·mean(g·x̂))`, the VJP of `x ↦ x̂` applied to `g`.
pub(crate) fn normalize_backward<F: Float>(
    g: &ArrayD<F>,
    xhat: &ArrayD<F>,
    inv: &ArrayD<F>,
    axes: &[usize],
) -> ArrayD<F> {
    let mg = mean_keep(g, axes);
    let mgx = mean_keep(&(g * xhat), axes);
    ((g - &mg) - &(xhat * &mgx)) * inv
}
