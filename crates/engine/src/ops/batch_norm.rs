//! Batch normalization over the channel `axis`, in inference and training mode, with each
//! framework's running-statistic update.
//!
//! Statistics over every axis but the channel axis (`n` values per channel):
//! `μ = mean(x)`, `σ² = mean((x − μ)²)` (biased, in both frameworks, for normalization).
//! Training (batch statistics): `x̂ = (x − μ)/√(σ² + ε)`, `y = γ·x̂ + β`.
//! Inference: the same with the running mean and variance.
//!
//! Running update in training mode, returned as [`crate::StatUpdates`]:
//! - `KeepOld(m)` (Keras, ONNX): `running = m·running + (1 − m)·batch`
//!   (`keras/src/layers/normalization/batch_normalization.py`, `call`);
//! - `TakeNew(m)` (torch): `running = (1 − m)·running + m·batch`; `CumulativeAverage`
//!   (torch `momentum=None`): `m = 1/num_batches_tracked` after the increment
//!   (`torch/nn/modules/batchnorm.py`, `_BatchNorm.forward`);
//! - the variance blended in is `σ²` (`Biased`, Keras 3) or `σ²·n/(n − 1)` (`Unbiased`, torch);
//! - `num_batches_tracked` is incremented when stored.
//!
//! Mode: batch statistics iff training mode and the layer is trainable (Keras runs a
//! `trainable=False` BatchNormalization in inference mode even inside `fit`, catalogue
//! `bn-frozen-means-inference`), or always when torch `track_running_stats=False` (no running
//! statistics exist). The ONNX `training_mode` attribute is informational: the requested
//! [`crate::Mode`] decides.
//!
//! VJP, batch statistics: `dγ = Σ dy·x̂`, `dβ = Σ dy`,
//! `dx = (γ/√(σ²+ε)) · (dy − mean(dy) − x̂·mean(dy·x̂))`.
//! Running statistics: `dx = dy·γ/√(r_σ² + ε)`, same `dγ`, `dβ`.

use model_ir::{MomentumForm, ParamRole, VarianceEstimate};
use ndarray::{ArrayD, IxDyn};

use super::kernel_cx::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes, Saved};
use super::norm_stats::to_b;
use super::util::{norm_axis, std_ref};
use crate::error::EngineError;
use crate::float::{Float, c};
use crate::mode::Mode;

#[derive(Debug, Clone)]
pub(crate) struct BatchNorm {
    pub(crate) axis: i64,
    pub(crate) epsilon: f64,
    pub(crate) momentum: MomentumForm,
    pub(crate) variance: VarianceEstimate,
    pub(crate) trainable: bool,
    pub(crate) track_running_stats: bool,
    pub(crate) gamma: Option<String>,
    pub(crate) beta: Option<String>,
    pub(crate) mean: Option<String>,
    pub(crate) var: Option<String>,
    pub(crate) count: Option<String>,
}

impl BatchNorm {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        axis: i64,
        epsilon: f64,
        momentum: MomentumForm,
        running_variance: VarianceEstimate,
        center: bool,
        scale: bool,
        trainable: bool,
        track_running_stats: bool,
    ) -> Result<BatchNorm, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        if epsilon < 0.0 {
            return Err(cx.invalid(format!("epsilon {epsilon} is negative")));
        }
        let gamma = cx.opt_param(ParamRole::Gamma)?;
        let beta = cx.opt_param(ParamRole::Beta)?;
        if scale != gamma.is_some() {
            return Err(cx.invalid(format!(
                "scale is {scale} but gamma is {}",
                present(gamma.is_some())
            )));
        }
        if center != beta.is_some() {
            return Err(cx.invalid(format!(
                "center is {center} but beta is {}",
                present(beta.is_some())
            )));
        }
        let mean = cx.opt_param(ParamRole::MovingMean)?;
        let var = cx.opt_param(ParamRole::MovingVariance)?;
        if track_running_stats && (mean.is_none() || var.is_none()) {
            return Err(
                cx.invalid("running statistics are tracked but moving mean/variance are missing")
            );
        }
        let count = cx.opt_param(ParamRole::NumBatchesTracked)?;
        if matches!(momentum, MomentumForm::CumulativeAverage)
            && track_running_stats
            && count.is_none()
        {
            return Err(cx.invalid("cumulative-average momentum needs num_batches_tracked"));
        }
        let len = [gamma, beta, mean, var]
            .iter()
            .flatten()
            .map(|p| p.tensor.len())
            .collect::<Vec<_>>();
        if len.windows(2).any(|w| w[0] != w[1]) {
            return Err(cx.invalid("gamma, beta and the running statistics differ in length"));
        }
        Ok(BatchNorm {
            axis,
            epsilon,
            momentum,
            variance: running_variance,
            trainable,
            track_running_stats,
            gamma: gamma.map(|p| p.name.clone()),
            beta: beta.map(|p| p.name.clone()),
            mean: mean.map(|p| p.name.clone()),
            var: var.map(|p| p.name.clone()),
            count: count.map(|p| p.name.clone()),
        })
    }

    fn channels(&self, ps: &ParamShapes) -> Option<usize> {
        [&self.gamma, &self.beta, &self.mean, &self.var]
            .into_iter()
            .flatten()
            .map(|n| ps[n].iter().product())
            .next()
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let ax = norm_axis(self.axis, xs[0].len())?;
        if let Some(c) = self.channels(ps)
            && xs[0][ax] != c
        {
            return Err(format!(
                "input has {} channels on axis {ax}, parameters have {c}",
                xs[0][ax]
            ));
        }
        Ok(vec![xs[0].to_vec()])
    }

    /// Whether a pass in `mode` normalizes with the batch statistics.
    pub(crate) fn uses_batch_stats(&self, mode: Mode) -> bool {
        !self.track_running_stats || (mode == Mode::Training && self.trainable)
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = std_ref(xs[0]);
        let ax = norm_axis(self.axis, x.ndim())?;
        let blocks = Blocks::of(x.shape(), ax);
        let ch = blocks.c;
        let n = blocks.outer * blocks.inner;
        let batch = self.uses_batch_stats(cx.mode);
        let xv = x.as_slice().ok_or("batch norm input layout")?;
        let (mean, var) = if batch {
            if n == 0 {
                return Err("batch statistics of an empty batch".into());
            }
            blocks.moments(xv)
        } else {
            let m = cx
                .param(self.mean.as_deref().unwrap_or_default())
                .iter()
                .copied()
                .collect::<Vec<F>>();
            let v = cx
                .param(self.var.as_deref().unwrap_or_default())
                .iter()
                .copied()
                .collect::<Vec<F>>();
            (m, v)
        };
        let eps: F = c(self.epsilon);
        let inv: Vec<F> = var.iter().map(|&v| F::one() / (v + eps).sqrt()).collect();
        let gamma: Vec<F> = match &self.gamma {
            Some(g) => cx.param(g).iter().copied().collect(),
            None => vec![F::one(); ch],
        };
        let beta: Vec<F> = match &self.beta {
            Some(b) => cx.param(b).iter().copied().collect(),
            None => vec![F::zero(); ch],
        };
        let mut xhat = vec![F::zero(); xv.len()];
        let mut y = vec![F::zero(); xv.len()];
        blocks.for_each(|k, range| {
            for i in range {
                let h = (xv[i] - mean[k]) * inv[k];
                xhat[i] = h;
                y[i] = h * gamma[k] + beta[k];
            }
        });
        if batch && self.track_running_stats && cx.mode == Mode::Training {
            self.update_stats(cx, &mean, &var, n)?;
        }
        let shape = IxDyn(x.shape());
        let mut saved = Saved {
            flag: batch,
            ..Saved::default()
        };
        saved
            .arrays
            .push(ArrayD::from_shape_vec(shape.clone(), xhat).map_err(|e| e.to_string())?);
        saved
            .arrays
            .push(ArrayD::from_shape_vec(IxDyn(&[ch]), inv).map_err(|e| e.to_string())?);
        let y = ArrayD::from_shape_vec(shape, y).map_err(|e| e.to_string())?;
        Ok(Out { ys: vec![y], saved })
    }

    fn update_stats<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        mean: &[F],
        var: &[F],
        n: usize,
    ) -> Result<(), String> {
        let (Some(mname), Some(vname)) = (&self.mean, &self.var) else {
            return Ok(());
        };
        let count = match &self.count {
            Some(cn) => {
                let old = cx.param(cn);
                let new = old.mapv(|v| v + F::one());
                let val = new.iter().next().copied().unwrap_or(F::one());
                cx.stats.insert(cn.clone(), new);
                Some(val)
            }
            None => None,
        };
        // (weight on the old value, weight on the batch value), each computed in f64 first.
        let (w_old, w_new): (F, F) = match self.momentum {
            MomentumForm::KeepOld(m) => (c(m), c(1.0 - m)),
            MomentumForm::TakeNew(m) => (c(1.0 - m), c(m)),
            MomentumForm::CumulativeAverage => {
                let f = 1.0 / count.unwrap_or(F::one()).as_f64();
                (c(1.0 - f), c(f))
            }
        };
        let batch_var: Vec<F> = match self.variance {
            VarianceEstimate::Biased => var.to_vec(),
            VarianceEstimate::Unbiased => {
                if n < 2 {
                    return Err(format!(
                        "expected more than 1 value per channel when training (got {n}), as torch requires for the unbiased running variance"
                    ));
                }
                let f: F = c(n as f64 / (n as f64 - 1.0));
                var.iter().map(|&v| v * f).collect()
            }
        };
        let old_m = cx.param(mname).clone();
        let old_v = cx.param(vname).clone();
        let new_m = blend(&old_m, mean, w_old, w_new);
        let new_v = blend(&old_v, &batch_var, w_old, w_new);
        cx.stats.insert(mname.clone(), new_m);
        cx.stats.insert(vname.clone(), new_v);
        Ok(())
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = cx.xs[0];
        let ax = match norm_axis(self.axis, x.ndim()) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        let blocks = Blocks::of(x.shape(), ax);
        let ch = blocks.c;
        let dy = std_ref(&cx.dys[0]);
        let dyv = match dy.as_slice() {
            Some(s) => s,
            None => panic!("standard layout"),
        };
        let xhat = match cx.saved.arrays[0].as_slice() {
            Some(s) => s,
            None => panic!("standard layout"),
        };
        let inv: Vec<F> = cx.saved.arrays[1].iter().copied().collect();
        // Channel sums accumulated in f64.
        let mut sd = vec![0.0f64; ch];
        let mut sdx = vec![0.0f64; ch];
        blocks.for_each(|k, range| {
            for i in range {
                sd[k] += dyv[i].as_f64();
                sdx[k] += (dyv[i] * xhat[i]).as_f64();
            }
        });
        let sum_dy: Vec<F> = sd.iter().map(|&v| c(v)).collect();
        let sum_dy_xhat: Vec<F> = sdx.iter().map(|&v| c(v)).collect();
        let gamma: Vec<F> = match &self.gamma {
            Some(g) => cx.param(g).iter().copied().collect(),
            None => vec![F::one(); ch],
        };
        let scale: Vec<F> = gamma.iter().zip(&inv).map(|(&g, &i)| g * i).collect();
        let mut dx = vec![F::zero(); dyv.len()];
        if cx.saved.flag {
            let n: F = c((blocks.outer * blocks.inner) as f64);
            let mdy: Vec<F> = sum_dy.iter().map(|&v| v / n).collect();
            let mdx: Vec<F> = sum_dy_xhat.iter().map(|&v| v / n).collect();
            blocks.for_each(|k, range| {
                for i in range {
                    dx[i] = scale[k] * (dyv[i] - mdy[k] - xhat[i] * mdx[k]);
                }
            });
        } else {
            blocks.for_each(|k, range| {
                for i in range {
                    dx[i] = dyv[i] * scale[k];
                }
            });
        }
        let dx = match ArrayD::from_shape_vec(x.raw_dim(), dx) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        let mut dparams = Vec::new();
        if let Some(g) = &self.gamma {
            dparams.push((g.clone(), to_b(&sum_dy_xhat, &[ch])));
        }
        if let Some(b) = &self.beta {
            dparams.push((b.clone(), to_b(&sum_dy, &[ch])));
        }
        NodeGrads {
            dxs: vec![Some(dx)],
            dparams,
        }
    }
}

/// A standard-layout tensor seen as `(outer, C, inner)` around the channel axis.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blocks {
    pub(crate) outer: usize,
    pub(crate) c: usize,
    pub(crate) inner: usize,
}

impl Blocks {
    pub(crate) fn of(shape: &[usize], ax: usize) -> Blocks {
        Blocks {
            outer: shape[..ax].iter().product(),
            c: shape[ax],
            inner: shape[ax + 1..].iter().product(),
        }
    }

    /// Calls `f(channel, flat index range)` for every contiguous run of one channel.
    pub(crate) fn for_each(&self, mut f: impl FnMut(usize, std::ops::Range<usize>)) {
        for o in 0..self.outer {
            for k in 0..self.c {
                let start = (o * self.c + k) * self.inner;
                f(k, start..start + self.inner);
            }
        }
    }

    /// Per-channel mean and biased variance (two passes, accumulated in f64).
    pub(crate) fn moments<F: Float>(&self, x: &[F]) -> (Vec<F>, Vec<F>) {
        let n = (self.outer * self.inner) as f64;
        let mut sum = vec![0.0f64; self.c];
        self.for_each(|k, r| sum[k] += x[r].iter().fold(0.0, |a, &v| a + v.as_f64()));
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let mut sq = vec![0.0f64; self.c];
        self.for_each(|k, r| {
            sq[k] += x[r].iter().fold(0.0, |a, &v| {
                let d = v.as_f64() - mean[k];
                a + d * d
            })
        });
        (
            mean.iter().map(|&m| c(m)).collect(),
            sq.iter().map(|&v| c(v / n)).collect(),
        )
    }
}

fn present(p: bool) -> &'static str {
    if p { "stored" } else { "missing" }
}

fn blend<F: Float>(old: &ArrayD<F>, batch: &[F], w_old: F, w_new: F) -> ArrayD<F> {
    let mut out = old.clone();
    for (o, &b) in out.iter_mut().zip(batch) {
        *o = *o * w_old + b * w_new;
    }
    out
}
