//! Element-wise combination of several inputs (NumPy broadcasting), or concatenation
//! (ONNX `Div` of two values, Keras `Add`/`Subtract`/`Multiply`/`Average`/`Maximum`/`Minimum`/`Concatenate`,
//! `keras/src/layers/merging/`; torch `+`, `*`, `torch.cat`).
//!
//! Forward: add `Σ xᵢ`; subtract `x₀ − x₁`; multiply `Π xᵢ`; divide `x₀ / x₁`; power `x₀ ^ x₁`
//! (ONNX `Pow` of two values); average `Σ xᵢ / k`; maximum /
//! minimum folded left to right (`out = max(out, xᵢ)`, as Keras's `_merge_function`);
//! concatenate along `axis`.
//! VJP: add `dxᵢ = dy`; subtract `dy, −dy`; multiply `dy · Π_{j≠i} xⱼ`; divide
//! `dy/x₁, −dy·x₀/x₁²`; power `dy·x₁·x₀^(x₁−1), dy·y·ln x₀` (0 for `x₀ ≤ 0`); average `dy/k`;
//! maximum/minimum: `dy` to the input holding the extreme, the earlier one on ties (TF's
//! `Maximum` gradient gives ties to the first operand); concatenate: the slices of `dy`.
//! Gradients are summed back over broadcast axes.

use model_ir::{BinaryOp, MergeOp};
use ndarray::{ArrayD, Axis, IxDyn, Zip};

use super::constant_binary::binary_vjp;
use super::util::{broadcast_shape, broadcast_to, norm_axis, unbroadcast};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct Merge {
    pub(crate) op: MergeOp,
}

impl Merge {
    pub(crate) fn compile(cx: &NodeCx<'_>, op: MergeOp) -> Result<Merge, EngineError> {
        match op {
            MergeOp::Subtract | MergeOp::Divide | MergeOp::Power => cx.inputs(2, 2)?,
            _ => cx.inputs(1, usize::MAX)?,
        }
        cx.outputs(1)?;
        Ok(Merge { op })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        match self.op {
            MergeOp::Concatenate(axis) => {
                let rank = xs[0].len();
                let ax = norm_axis(axis, rank)?;
                let mut out = xs[0].to_vec();
                for x in &xs[1..] {
                    let same = x.len() == rank && (0..rank).all(|i| i == ax || x[i] == out[i]);
                    if !same {
                        return Err(format!(
                            "cannot concatenate {:?} and {x:?} on axis {ax}",
                            xs[0]
                        ));
                    }
                    out[ax] += x[ax];
                }
                Ok(vec![out])
            }
            _ => {
                let mut s = xs[0].to_vec();
                for x in &xs[1..] {
                    s = broadcast_shape(&s, x)?;
                }
                Ok(vec![s])
            }
        }
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let shape = self
            .infer(&xs.iter().map(|x| x.shape()).collect::<Vec<_>>())?
            .remove(0);
        let y = match self.op {
            MergeOp::Concatenate(axis) => {
                let ax = norm_axis(axis, shape.len())?;
                let views: Vec<_> = xs.iter().map(|x| x.view()).collect();
                ndarray::concatenate(Axis(ax), &views).map_err(|e| e.to_string())?
            }
            op => {
                let mut y = broadcast_to(xs[0], &shape);
                for x in &xs[1..] {
                    let xb = broadcast_to(x, &shape);
                    Zip::from(&mut y).and(&xb).for_each(|y, &x| {
                        *y = match op {
                            MergeOp::Add | MergeOp::Average => *y + x,
                            MergeOp::Subtract => *y - x,
                            MergeOp::Multiply => *y * x,
                            MergeOp::Divide => *y / x,
                            MergeOp::Power => y.powf(x),
                            // NaN propagates (numpy, torch.maximum, tf.maximum).
                            MergeOp::Maximum => {
                                if x > *y || x.is_nan() {
                                    x
                                } else {
                                    *y
                                }
                            }
                            MergeOp::Minimum => {
                                if x < *y || x.is_nan() {
                                    x
                                } else {
                                    *y
                                }
                            }
                            MergeOp::Concatenate(_) => unreachable!("handled above"),
                        }
                    });
                }
                if op == MergeOp::Average {
                    let k: F = c(xs.len() as f64);
                    y.mapv_inplace(|v| v / k);
                }
                y
            }
        };
        Ok(Out::one(y))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let dy = &cx.dys[0];
        let xs = &cx.xs;
        let shape = dy.shape().to_vec();
        let dxs: Vec<ArrayD<F>> = match self.op {
            MergeOp::Concatenate(axis) => {
                let ax = norm_axis(axis, shape.len()).unwrap_or(0);
                let mut off = 0;
                xs.iter()
                    .map(|x| {
                        let n = x.shape()[ax];
                        let part = dy
                            .slice_axis(Axis(ax), ndarray::Slice::from(off..off + n))
                            .to_owned();
                        off += n;
                        part
                    })
                    .collect()
            }
            MergeOp::Add => xs
                .iter()
                .map(|x| unbroadcast(dy.clone(), x.shape()))
                .collect(),
            MergeOp::Average => {
                let k: F = c(xs.len() as f64);
                xs.iter()
                    .map(|x| unbroadcast(dy.mapv(|v| v / k), x.shape()))
                    .collect()
            }
            MergeOp::Subtract => vec![
                unbroadcast(dy.clone(), xs[0].shape()),
                unbroadcast(dy.mapv(|v| -v), xs[1].shape()),
            ],
            MergeOp::Divide => {
                let (a, b) = binary_vjp(BinaryOp::Div, xs[0], xs[1], cx.ys[0], dy);
                vec![a, b]
            }
            MergeOp::Power => {
                let (a, b) = binary_vjp(BinaryOp::Pow, xs[0], xs[1], cx.ys[0], dy);
                vec![a, b]
            }
            MergeOp::Multiply => (0..xs.len())
                .map(|i| {
                    let mut g = dy.clone();
                    for (j, x) in xs.iter().enumerate() {
                        if j != i {
                            g *= &broadcast_to(x, &shape);
                        }
                    }
                    unbroadcast(g, xs[i].shape())
                })
                .collect(),
            MergeOp::Maximum | MergeOp::Minimum => {
                let max = self.op == MergeOp::Maximum;
                let mut best = broadcast_to(xs[0], &shape);
                let mut who = ArrayD::<usize>::zeros(IxDyn(&shape));
                for (i, x) in xs.iter().enumerate().skip(1) {
                    let xb = broadcast_to(x, &shape);
                    Zip::from(&mut best)
                        .and(&mut who)
                        .and(&xb)
                        .for_each(|b, w, &x| {
                            if (max && x > *b) || (!max && x < *b) {
                                *b = x;
                                *w = i;
                            }
                        });
                }
                (0..xs.len())
                    .map(|i| {
                        let mut g = dy.clone();
                        Zip::from(&mut g).and(&who).for_each(|g, &w| {
                            if w != i {
                                *g = F::zero();
                            }
                        });
                        unbroadcast(g, xs[i].shape())
                    })
                    .collect()
            }
        };
        NodeGrads {
            dxs: dxs.into_iter().map(Some).collect(),
            dparams: Vec::new(),
        }
    }
}
