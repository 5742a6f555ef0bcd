//! Inserts size-1 axes at `axes`, positions counted in the result (ONNX Unsqueeze, torch
//! `unsqueeze`). VJP: reshape `dy` back.

use ndarray::ArrayD;

use super::util::{norm_axes, reshape};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct Unsqueeze {
    pub(crate) axes: Vec<i64>,
}

impl Unsqueeze {
    pub(crate) fn compile(cx: &NodeCx<'_>, axes: &[i64]) -> Result<Unsqueeze, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        if axes.is_empty() {
            return Err(cx.invalid("no axes to insert"));
        }
        Ok(Unsqueeze {
            axes: axes.to_vec(),
        })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let x = xs[0];
        let rank = x.len() + self.axes.len();
        let axes = norm_axes(&self.axes, rank)?;
        if axes.len() != self.axes.len() {
            return Err(format!("repeated axes {:?}", self.axes));
        }
        let mut src = x.iter();
        let out = (0..rank)
            .map(|i| {
                if axes.contains(&i) {
                    1
                } else {
                    *src.next().unwrap_or(&1)
                }
            })
            .collect();
        Ok(vec![out])
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
