//! Pooling over every spatial axis (Keras `GlobalAveragePooling*D`/`GlobalMaxPooling*D`, torch
//! `AdaptiveAvgPool(1)` / `mean(dim=(2, 3))`, ONNX GlobalAveragePool), optionally keeping the
//! spatial axes as size 1.
//!
//! Forward: mean or max over the `S` spatial positions of each (sample, channel).
//! VJP: mean `dx = dy / S` everywhere; max `dy` to the first maximal position.

use model_ir::{DataLayout, PoolKind};
use ndarray::{ArrayD, IxDyn};

use super::util::std_ref;
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, Saved};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct GlobalPool {
    pub(crate) kind: PoolKind,
    pub(crate) rank: usize,
    pub(crate) layout: DataLayout,
    pub(crate) keepdims: bool,
}

impl GlobalPool {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        kind: PoolKind,
        rank: usize,
        layout: DataLayout,
        keepdims: bool,
    ) -> Result<GlobalPool, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        if rank == 0 {
            return Err(cx.invalid("rank 0"));
        }
        Ok(GlobalPool {
            kind,
            rank,
            layout,
            keepdims,
        })
    }

    /// `(N, S, C)` and whether channels come first.
    fn dims(&self, x: &[usize]) -> Result<(usize, usize, usize), String> {
        if x.len() != self.rank + 2 {
            return Err(format!("expects a rank-{} input, got {x:?}", self.rank + 2));
        }
        Ok(match self.layout {
            DataLayout::ChannelsLast => (x[0], x[1..=self.rank].iter().product(), x[self.rank + 1]),
            DataLayout::ChannelsFirst => (x[0], x[2..].iter().product(), x[1]),
        })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let (n, s, ch) = self.dims(xs[0])?;
        if s == 0 {
            return Err("pooling over no spatial positions".into());
        }
        let mut y = vec![n];
        if self.keepdims {
            match self.layout {
                DataLayout::ChannelsLast => {
                    y.extend(std::iter::repeat_n(1, self.rank));
                    y.push(ch);
                }
                DataLayout::ChannelsFirst => {
                    y.push(ch);
                    y.extend(std::iter::repeat_n(1, self.rank));
                }
            }
        } else {
            y.push(ch);
        }
        Ok(vec![y])
    }

    /// Flat offset of (sample, position, channel).
    fn at(&self, b: usize, p: usize, cc: usize, s: usize, ch: usize) -> usize {
        match self.layout {
            DataLayout::ChannelsLast => (b * s + p) * ch + cc,
            DataLayout::ChannelsFirst => (b * ch + cc) * s + p,
        }
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = std_ref(xs[0]);
        let (n, s, ch) = self.dims(x.shape())?;
        let shape = self.infer(&[x.shape()])?.remove(0);
        let v = x.as_slice().ok_or("layout")?;
        let mut y = vec![F::zero(); n * ch];
        let mut saved = Saved::default();
        for b in 0..n {
            for cc in 0..ch {
                let o = b * ch + cc;
                match self.kind {
                    PoolKind::Avg => {
                        let sum = (0..s).fold(F::zero(), |a, p| a + v[self.at(b, p, cc, s, ch)]);
                        y[o] = sum / c::<F>(s as f64);
                    }
                    PoolKind::Max => {
                        let mut best = 0;
                        for p in 1..s {
                            if v[self.at(b, p, cc, s, ch)] > v[self.at(b, best, cc, s, ch)] {
                                best = p;
                            }
                        }
                        y[o] = v[self.at(b, best, cc, s, ch)];
                        saved.idx.push(best);
                    }
                }
            }
        }
        let y = ArrayD::from_shape_vec(IxDyn(&shape), y).map_err(|e| e.to_string())?;
        Ok(Out { ys: vec![y], saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let (n, s, ch) = match self.dims(cx.xs[0].shape()) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let dy: Vec<F> = cx.dys[0].iter().copied().collect();
        let mut dx = vec![F::zero(); n * s * ch];
        let inv: F = c(1.0 / s as f64);
        for b in 0..n {
            for cc in 0..ch {
                let g = dy[b * ch + cc];
                match self.kind {
                    PoolKind::Avg => {
                        for p in 0..s {
                            dx[self.at(b, p, cc, s, ch)] = g * inv;
                        }
                    }
                    PoolKind::Max => {
                        let best = cx.saved.idx[b * ch + cc];
                        dx[self.at(b, best, cc, s, ch)] = g;
                    }
                }
            }
        }
        let dx = match ArrayD::from_shape_vec(cx.xs[0].raw_dim(), dx) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        NodeGrads::input(dx)
    }
}
