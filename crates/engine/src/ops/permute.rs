//! Axis permutation of the full tensor including batch (`perm[i]` = source axis of result
//! axis `i`; Keras `Permute` dims shifted by one, torch `permute`, ONNX Transpose).
//! VJP: `dx = dy` permuted by the inverse permutation.

use ndarray::ArrayD;

use super::util::{inverse_perm, permuted};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct Permute {
    pub(crate) perm: Vec<usize>,
}

impl Permute {
    pub(crate) fn compile(cx: &NodeCx<'_>, perm: &[usize]) -> Result<Permute, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        let mut seen = vec![false; perm.len()];
        for &p in perm {
            if p >= perm.len() || seen[p] {
                return Err(cx.invalid(format!("{perm:?} is not a permutation")));
            }
            seen[p] = true;
        }
        Ok(Permute {
            perm: perm.to_vec(),
        })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        if xs[0].len() != self.perm.len() {
            return Err(format!(
                "permutation {:?} for an input of rank {}",
                self.perm,
                xs[0].len()
            ));
        }
        Ok(vec![self.perm.iter().map(|&p| xs[0][p]).collect()])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        Ok(Out::one(permuted(xs[0], &self.perm)))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        NodeGrads::input(permuted(&cx.dys[0], &inverse_perm(&self.perm)))
    }
}
