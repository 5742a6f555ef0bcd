//! Padding of the spatial axes: constant, reflect (mirror without repeating the edge, torch
//! `ReflectionPad`, ONNX `reflect`), edge (replicate, torch `ReplicationPad`, ONNX `edge`) or
//! wrap (circular, torch `CircularPad`, ONNX `wrap`).
//! Keras `ZeroPadding*D` is the constant 0 case (`keras/src/layers/reshaping/zero_padding2d.py`).
//!
//! Forward, per spatial axis of length `n` padded by `(b, a)`: output index `j` reads input
//! `j − b` when inside; outside, constant → the value, edge → the clamped index, reflect →
//! `−i` below 0 and `2(n−1) − i` above `n − 1`, wrap → `i mod n` (with `i = j − b`).
//! VJP: every output gradient is added to the input it read (nothing for constant pads).

use model_ir::{DataLayout, PadMode};
use ndarray::ArrayD;

use super::util::{gather_axis, scatter_axis};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct Pad {
    pub(crate) rank: usize,
    pub(crate) begin: Vec<usize>,
    pub(crate) end: Vec<usize>,
    pub(crate) layout: DataLayout,
    pub(crate) mode: PadMode,
}

impl Pad {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        rank: usize,
        begin: &[usize],
        end: &[usize],
        layout: DataLayout,
        mode: PadMode,
    ) -> Result<Pad, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        if begin.len() != rank || end.len() != rank {
            return Err(cx.invalid(format!("pads {begin:?}/{end:?} for rank {rank}")));
        }
        Ok(Pad {
            rank,
            begin: begin.to_vec(),
            end: end.to_vec(),
            layout,
            mode,
        })
    }

    fn spatial_axis(&self, i: usize) -> usize {
        match self.layout {
            DataLayout::ChannelsLast => 1 + i,
            DataLayout::ChannelsFirst => 2 + i,
        }
    }

    fn map(&self, i: usize, n: usize) -> Result<Vec<Option<usize>>, String> {
        let (b, a) = (self.begin[i], self.end[i]);
        if matches!(self.mode, PadMode::Reflect) && (b >= n || a >= n) {
            return Err(format!(
                "reflect padding {b}/{a} needs an axis longer than that, got {n}"
            ));
        }
        if matches!(self.mode, PadMode::Edge | PadMode::Wrap) && n == 0 {
            return Err("edge or wrap padding of an empty axis".into());
        }
        Ok((0..n + b + a)
            .map(|j| {
                let i = j as isize - b as isize;
                let last = n as isize - 1;
                if (0..=last).contains(&i) {
                    return Some(i as usize);
                }
                match self.mode {
                    PadMode::Constant(_) => None,
                    PadMode::Edge => Some(i.clamp(0, last) as usize),
                    PadMode::Reflect => Some(if i < 0 { -i } else { 2 * last - i } as usize),
                    PadMode::Wrap => Some(i.rem_euclid(n as isize) as usize),
                }
            })
            .collect())
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let x = xs[0];
        if x.len() != self.rank + 2 {
            return Err(format!("expects a rank-{} input, got {x:?}", self.rank + 2));
        }
        let mut y = x.to_vec();
        for i in 0..self.rank {
            let ax = self.spatial_axis(i);
            y[ax] = self.map(i, x[ax])?.len();
        }
        Ok(vec![y])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let fill: F = match self.mode {
            PadMode::Constant(v) => c(v),
            _ => F::zero(),
        };
        let mut y = xs[0].clone();
        for i in 0..self.rank {
            let ax = self.spatial_axis(i);
            let map = self.map(i, y.shape()[ax])?;
            y = gather_axis(&y, ax, &map, fill);
        }
        Ok(Out::one(y))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = cx.xs[0];
        let mut d = cx.dys[0].clone();
        for i in (0..self.rank).rev() {
            let ax = self.spatial_axis(i);
            let n = x.shape()[ax];
            let map = match self.map(i, n) {
                Ok(m) => m,
                Err(e) => panic!("{e}"),
            };
            d = scatter_axis(&d, ax, &map, n);
        }
        NodeGrads::input(d)
    }
}
