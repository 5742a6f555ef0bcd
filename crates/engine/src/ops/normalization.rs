//! Keras `Normalization` with adapted statistics:
//! `y = (x − mean) / max(√variance, ε)`, or with `invert`: `y = mean + x · max(√variance, ε)`
//! (`keras/src/layers/preprocessing/normalization.py`, `call`). `mean`/`variance` hold one
//! value per position of the kept `axes` and broadcast over the others.
//! VJP: `dx = dy / max(√variance, ε)` (`dy · max(√variance, ε)` inverted); the statistics are
//! not trainable.

use model_ir::ParamRole;
use ndarray::ArrayD;

use super::layer_norm::{param_shape, reshaped};
use super::util::norm_axes;
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct Normalization {
    pub(crate) axes: Vec<i64>,
    pub(crate) invert: bool,
    pub(crate) epsilon: f64,
    pub(crate) mean: String,
    pub(crate) variance: String,
}

impl Normalization {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        axes: &[i64],
        invert: bool,
        epsilon: f64,
    ) -> Result<Normalization, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        let mean = cx.req_param(ParamRole::Mean)?;
        let variance = cx.req_param(ParamRole::Variance)?;
        if mean.tensor.len() != variance.tensor.len() {
            return Err(cx.invalid("mean and variance differ in length"));
        }
        Ok(Normalization {
            axes: axes.to_vec(),
            invert,
            epsilon,
            mean: mean.name.clone(),
            variance: variance.name.clone(),
        })
    }

    fn bshape(&self, x: &[usize]) -> Result<Vec<usize>, String> {
        let axes = norm_axes(&self.axes, x.len())?;
        Ok(param_shape(x, &axes))
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let b = self.bshape(xs[0])?;
        let want: usize = b.iter().product();
        let have: usize = ps[&self.mean].iter().product();
        if want != have {
            return Err(format!(
                "statistics have {have} entries, axes {:?} of {:?} need {want}",
                self.axes, xs[0]
            ));
        }
        Ok(vec![xs[0].to_vec()])
    }

    fn denom<F: Float>(&self, params: &ArrayD<F>, b: &[usize]) -> ArrayD<F> {
        let eps: F = c(self.epsilon);
        reshaped(params, b).mapv(|v| v.sqrt().max(eps))
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = xs[0];
        let b = self.bshape(x.shape())?;
        let mean = reshaped(cx.param(&self.mean), &b);
        let d = self.denom(cx.param(&self.variance), &b);
        let y = if self.invert {
            &mean + &(x * &d)
        } else {
            (x - &mean) / &d
        };
        Ok(Out::one(y))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let b = match self.bshape(cx.xs[0].shape()) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        };
        let d = self.denom(cx.param(&self.variance), &b);
        let dy = &cx.dys[0];
        NodeGrads::input(if self.invert { dy * &d } else { dy / &d })
    }
}
