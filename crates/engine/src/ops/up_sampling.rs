//! Upsampling of the spatial axes by integer factors.
//!
//! Nearest: output index `j` reads input `⌊j / size⌋` (Keras `UpSampling2D` via `ops.repeat`,
//! `keras/src/layers/reshaping/up_sampling2d.py`; torch `Upsample(mode='nearest')` with an integer
//! scale). Bilinear, separable per axis, `i0 = ⌊src⌋`, `i1 = min(i0 + 1, n − 1)`,
//! `λ = src − i0`, `y = (1 − λ)·x[i0] + λ·x[i1]`, where the source coordinate of output `j`
//! follows the convention:
//! - half-pixel centers (TF2 `tf.image.resize`, Keras `UpSampling2D(interpolation='bilinear')`,
//!   torch `align_corners=False`): `src = (j + ½)/size − ½` clamped at 0;
//! - aligned corners (torch `align_corners=True`, `aten/src/ATen/native/UpSample.h`
//!   `area_pixel_compute_scale` / `area_pixel_compute_source_index`):
//!   `src = j·(n − 1)/(n·size − 1)`, and 0 when the output has one element.
//!
//! VJP: the transpose of each linear map (gradients summed into the inputs read).

use model_ir::{DataLayout, Interpolation};
use ndarray::ArrayD;

use super::util::{gather_axis, lerp_axis, lerp_axis_t, scatter_axis};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct UpSampling {
    pub(crate) rank: usize,
    pub(crate) size: Vec<usize>,
    pub(crate) interpolation: Interpolation,
    pub(crate) layout: DataLayout,
}

impl UpSampling {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        rank: usize,
        size: &[usize],
        interpolation: Interpolation,
        layout: DataLayout,
    ) -> Result<UpSampling, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        let size = match size.len() {
            1 => vec![size[0]; rank],
            n if n == rank => size.to_vec(),
            n => return Err(cx.invalid(format!("{n} sizes for rank {rank}"))),
        };
        if size.contains(&0) {
            return Err(cx.invalid("upsampling factors must be positive"));
        }
        Ok(UpSampling {
            rank,
            size,
            interpolation,
            layout,
        })
    }

    fn spatial_axis(&self, i: usize) -> usize {
        match self.layout {
            DataLayout::ChannelsLast => 1 + i,
            DataLayout::ChannelsFirst => 2 + i,
        }
    }

    /// The `(i0, i1, λ)` of every output index along an axis of length `n` upsampled by `s`.
    fn taps<F: Float>(n: usize, s: usize, align_corners: bool) -> Vec<(usize, usize, F)> {
        let out = n * s;
        (0..out)
            .map(|j| {
                let src = if !align_corners {
                    ((j as f64 + 0.5) / s as f64 - 0.5).max(0.0)
                } else if out > 1 {
                    j as f64 * (n - 1) as f64 / (out - 1) as f64
                } else {
                    0.0
                };
                let i0 = (src.floor() as usize).min(n - 1);
                let i1 = (i0 + 1).min(n - 1);
                (i0, i1, c(src - i0 as f64))
            })
            .collect()
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let x = xs[0];
        if x.len() != self.rank + 2 {
            return Err(format!("expects a rank-{} input, got {x:?}", self.rank + 2));
        }
        let mut y = x.to_vec();
        for i in 0..self.rank {
            let ax = self.spatial_axis(i);
            if x[ax] == 0 {
                return Err("upsampling an empty axis".into());
            }
            y[ax] *= self.size[i];
        }
        Ok(vec![y])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        self.infer(&[xs[0].shape()])?;
        let mut y = xs[0].clone();
        for i in 0..self.rank {
            let ax = self.spatial_axis(i);
            let (n, s) = (y.shape()[ax], self.size[i]);
            y = match self.interpolation {
                Interpolation::Nearest => {
                    let map: Vec<Option<usize>> = (0..n * s).map(|j| Some(j / s)).collect();
                    gather_axis(&y, ax, &map, F::zero())
                }
                Interpolation::Bilinear => lerp_axis(&y, ax, &Self::taps::<F>(n, s, false)),
                Interpolation::BilinearAlignCorners => {
                    lerp_axis(&y, ax, &Self::taps::<F>(n, s, true))
                }
            };
        }
        Ok(Out::one(y))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = cx.xs[0];
        let mut d = cx.dys[0].clone();
        for i in (0..self.rank).rev() {
            let ax = self.spatial_axis(i);
            let (n, s) = (x.shape()[ax], self.size[i]);
            d = match self.interpolation {
                Interpolation::Nearest => {
                    let map: Vec<Option<usize>> = (0..n * s).map(|j| Some(j / s)).collect();
                    scatter_axis(&d, ax, &map, n)
                }
                Interpolation::Bilinear => lerp_axis_t(&d, ax, &Self::taps::<F>(n, s, false), n),
                Interpolation::BilinearAlignCorners => {
                    lerp_axis_t(&d, ax, &Self::taps::<F>(n, s, true), n)
                }
            };
        }
        NodeGrads::input(d)
    }
}
