//! `x[start:end:step]` along `axis` with ONNX Slice semantics: negative `start`/`end` count
//! from the end, both are clamped to the axis (`[0, n]` for positive steps, `[−1, n−1]` for
//! negative ones). VJP: `dy` scattered back to the selected positions, zero elsewhere.

use ndarray::{ArrayD, Axis};

use super::util::norm_axis;
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct Slice {
    pub(crate) axis: i64,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
}

impl Slice {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        axis: i64,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Slice, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        if step == 0 {
            return Err(cx.invalid("step is 0"));
        }
        Ok(Slice {
            axis,
            start,
            end,
            step,
        })
    }

    /// The axis and the selected indices.
    fn indices(&self, x: &[usize]) -> Result<(usize, Vec<usize>), String> {
        let ax = norm_axis(self.axis, x.len())?;
        let n = x[ax] as i64;
        let fix = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
        let (mut s, mut e) = (fix(self.start), fix(self.end));
        let mut out = Vec::new();
        if self.step > 0 {
            s = s.clamp(0, n);
            e = e.clamp(0, n);
            let mut i = s;
            while i < e {
                out.push(i as usize);
                i = i.saturating_add(self.step);
            }
        } else {
            s = s.clamp(-1, n - 1);
            e = e.clamp(-1, n - 1);
            let mut i = s;
            while i > e {
                out.push(i as usize);
                i = i.saturating_add(self.step);
            }
        }
        Ok((ax, out))
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let (ax, idx) = self.indices(xs[0])?;
        let mut y = xs[0].to_vec();
        y[ax] = idx.len();
        Ok(vec![y])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let (ax, idx) = self.indices(xs[0].shape())?;
        Ok(Out::one(xs[0].select(Axis(ax), &idx)))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = cx.xs[0];
        let (ax, idx) = match self.indices(x.shape()) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let mut dx = ArrayD::zeros(x.raw_dim());
        for (j, &i) in idx.iter().enumerate() {
            let mut dst = dx.index_axis_mut(Axis(ax), i);
            dst += &cx.dys[0].index_axis(Axis(ax), j);
        }
        NodeGrads::input(dx)
    }
}
