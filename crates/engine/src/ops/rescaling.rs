//! Keras `Rescaling`: `y = x·scale + offset`; VJP `dx = dy·scale`
//! (`keras/src/layers/preprocessing/rescaling.py`).

use ndarray::ArrayD;

use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct Rescaling {
    pub(crate) scale: f64,
    pub(crate) offset: f64,
}

impl Rescaling {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        scale: f64,
        offset: f64,
    ) -> Result<Rescaling, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        Ok(Rescaling { scale, offset })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        Ok(vec![xs[0].to_vec()])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let (s, o): (F, F) = (c(self.scale), c(self.offset));
        Ok(Out::one(xs[0].mapv(|v| v * s + o)))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let s: F = c(self.scale);
        NodeGrads::input(cx.dys[0].mapv(|v| v * s))
    }
}
