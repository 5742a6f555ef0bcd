//! Removes size-1 axes (ONNX Squeeze, torch `squeeze`). With no axes given, every size-1 axis
//! except the batch axis is removed (so a batch of one keeps its batch axis).
//! VJP: reshape `dy` back to the input shape.

use ndarray::ArrayD;

use super::util::{norm_axes, reshape};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct Squeeze {
    pub(crate) axes: Vec<i64>,
}

impl Squeeze {
    pub(crate) fn compile(cx: &NodeCx<'_>, axes: &[i64]) -> Result<Squeeze, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        Ok(Squeeze {
            axes: axes.to_vec(),
        })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let x = xs[0];
        let axes = if self.axes.is_empty() {
            (1..x.len()).filter(|&a| x[a] == 1).collect()
        } else {
            norm_axes(&self.axes, x.len())?
        };
        for &a in &axes {
            if x[a] != 1 {
                return Err(format!("axis {a} of {x:?} has size {}, not 1", x[a]));
            }
        }
        Ok(vec![
            x.iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect(),
        ])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let shape = self.infer(&[xs[0].shape()])?.remove(0);
        Ok(Out::one(reshape(xs[0].clone(), &shape)))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        NodeGrads::input(reshape(cx.dys[0].clone(), cx.xs[0].shape()))
    }
}
