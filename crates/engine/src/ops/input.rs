//! Graph input: passes the value fed for this input through, after checking it against the
//! declared shape (`None` dimensions are free). VJP: `dx = dy`.

use ndarray::ArrayD;

use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct Input {
    pub(crate) shape: Vec<Option<usize>>,
}

impl Input {
    pub(crate) fn compile(cx: &NodeCx<'_>, shape: &[Option<usize>]) -> Result<Input, EngineError> {
        cx.inputs(0, 1)?;
        cx.outputs(1)?;
        Ok(Input {
            shape: shape.to_vec(),
        })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        check_declared(&self.shape, xs[0])?;
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

/// Checks an actual shape against a declared one with free (`None`) dimensions.
pub(crate) fn check_declared(declared: &[Option<usize>], actual: &[usize]) -> Result<(), String> {
    if declared.is_empty() {
        return Ok(());
    }
    let fits = declared.len() == actual.len()
        && declared
            .iter()
            .zip(actual)
            .all(|(d, a)| d.is_none_or(|d| d == *a));
    if !fits {
        let shown: Vec<String> = declared
            .iter()
            .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
            .collect();
        return Err(format!(
            "shape {actual:?} does not match the declared [{}]",
            shown.join(", ")
        ));
    }
    Ok(())
}
