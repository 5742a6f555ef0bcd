//! Identity (ONNX Identity, lifted no-ops): `y = x`, `dx = dy`.

use ndarray::ArrayD;

use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct Identity;

impl Identity {
    pub(crate) fn compile(cx: &NodeCx<'_>) -> Result<Identity, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        Ok(Identity)
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        Ok(vec![xs[0].to_vec()])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        Ok(Out::one(xs[0].clone()))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        NodeGrads::input(cx.dys[0].clone())
    }
}
