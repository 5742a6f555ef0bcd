//! Reduction over `axes` (ONNX ReduceMean/ReduceSum/ReduceMax/ReduceMin, torch `mean(dim)`),
//! optionally keeping the reduced axes as size 1. Empty `axes` reduces every axis.
//!
//! VJP: sum `dx = dy` broadcast; mean `dy/n`; max/min: `dy` to the first extreme position of each
//! reduced group (torch's `max(dim)` index rule), zero elsewhere.

use model_ir::ReduceKind;
use ndarray::{ArrayD, IxDyn};

use super::util::{broadcast_to, norm_axes, permuted, reshape};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, Saved};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct Reduce {
    pub(crate) kind: ReduceKind,
    pub(crate) axes: Vec<i64>,
    pub(crate) keepdims: bool,
}

impl Reduce {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        kind: ReduceKind,
        axes: &[i64],
        keepdims: bool,
    ) -> Result<Reduce, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        Ok(Reduce {
            kind,
            axes: axes.to_vec(),
            keepdims,
        })
    }

    fn axes(&self, rank: usize) -> Result<Vec<usize>, String> {
        if self.axes.is_empty() {
            Ok((0..rank).collect())
        } else {
            norm_axes(&self.axes, rank)
        }
    }

    fn kept_shape(x: &[usize], axes: &[usize]) -> Vec<usize> {
        x.iter()
            .enumerate()
            .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
            .collect()
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let axes = self.axes(xs[0].len())?;
        if axes.iter().any(|&a| xs[0][a] == 0) {
            return Err("reduction over an empty axis".into());
        }
        let keep = Self::kept_shape(xs[0], &axes);
        Ok(vec![if self.keepdims {
            keep
        } else {
            xs[0]
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect()
        }])
    }

    /// The input with kept axes first and reduced axes flattened last: `(groups, n)`.
    fn grouped<F: Float>(x: &ArrayD<F>, axes: &[usize]) -> (ArrayD<F>, Vec<usize>) {
        let mut perm: Vec<usize> = (0..x.ndim()).filter(|a| !axes.contains(a)).collect();
        perm.extend(axes);
        let n: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let groups = x.len() / n.max(1);
        (reshape(permuted(x, &perm), &[groups, n]), perm)
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = xs[0];
        let axes = self.axes(x.ndim())?;
        let out_shape = self.infer(&[x.shape()])?.remove(0);
        let (g, _) = Self::grouped(x, &axes);
        let n = g.shape()[1];
        let mut saved = Saved::default();
        let vals: Vec<F> = g
            .outer_iter()
            .map(|row| match self.kind {
                ReduceKind::Sum => row.sum(),
                ReduceKind::Mean => row.sum() / c::<F>(n as f64),
                ReduceKind::Max | ReduceKind::Min => {
                    let max = self.kind == ReduceKind::Max;
                    let mut best = 0;
                    for (i, &v) in row.iter().enumerate() {
                        if (max && v > row[best]) || (!max && v < row[best]) {
                            best = i;
                        }
                    }
                    saved.idx.push(best);
                    row[best]
                }
            })
            .collect();
        let y = ArrayD::from_shape_vec(IxDyn(&out_shape), vals).map_err(|e| e.to_string())?;
        Ok(Out { ys: vec![y], saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = cx.xs[0];
        let axes = match self.axes(x.ndim()) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        let keep = Self::kept_shape(x.shape(), &axes);
        let dy = reshape(cx.dys[0].clone(), &keep);
        let n: usize = axes.iter().map(|&a| x.shape()[a]).product();
        let dx = match self.kind {
            ReduceKind::Sum => broadcast_to(&dy, x.shape()),
            ReduceKind::Mean => {
                let k: F = c(n as f64);
                broadcast_to(&dy.mapv(|v| v / k), x.shape())
            }
            ReduceKind::Max | ReduceKind::Min => {
                let (_, perm) = Self::grouped(x, &axes);
                let groups = x.len() / n.max(1);
                let mut g = ArrayD::<F>::zeros(IxDyn(&[groups, n]));
                for ((gi, &best), &d) in (0..groups).zip(&cx.saved.idx).zip(dy.iter()) {
                    g[[gi, best]] = d;
                }
                let pshape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
                let gp = reshape(g, &pshape);
                let inv = super::util::inverse_perm(&perm);
                permuted(&gp, &inv)
            }
        };
        NodeGrads::input(dx)
    }
}
