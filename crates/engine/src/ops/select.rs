//! Takes index `index` along `axis` and removes that axis (torch `x[:, -1]`, ONNX Gather with a
//! scalar index). Negative indices count from the end.
//! VJP: `dx` is zero except the selected slice, which receives `dy`.

use ndarray::{ArrayD, Axis};

use super::util::norm_axis;
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct Select {
    pub(crate) axis: i64,
    pub(crate) index: i64,
}

impl Select {
    pub(crate) fn compile(cx: &NodeCx<'_>, axis: i64, index: i64) -> Result<Select, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        Ok(Select { axis, index })
    }

    fn resolve(&self, x: &[usize]) -> Result<(usize, usize), String> {
        let ax = norm_axis(self.axis, x.len())?;
        let n = x[ax] as i64;
        let i = if self.index < 0 {
            self.index + n
        } else {
            self.index
        };
        if i < 0 || i >= n {
            return Err(format!(
                "index {} is out of range for axis {ax} of size {n}",
                self.index
            ));
        }
        Ok((ax, i as usize))
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let (ax, _) = self.resolve(xs[0])?;
        let mut y = xs[0].to_vec();
        y.remove(ax);
        Ok(vec![y])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let (ax, i) = self.resolve(xs[0].shape())?;
        Ok(Out::one(xs[0].index_axis(Axis(ax), i).to_owned()))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = cx.xs[0];
        let (ax, i) = match self.resolve(x.shape()) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let mut dx = ArrayD::zeros(x.raw_dim());
        dx.index_axis_mut(Axis(ax), i).assign(&cx.dys[0]);
        NodeGrads::input(dx)
    }
}
