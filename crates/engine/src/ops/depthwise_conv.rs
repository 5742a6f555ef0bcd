//! Depthwise convolution: each input channel `c` convolved with `M = depth_multiplier` filters,
//! output channel `c·M + m` (Keras `DepthwiseConv2D`, torch `Conv2d(groups=C)`).
//!
//! Forward: `y[n, o, c·M+m] = b[c·M+m] + Σ_q x[n, o·s + q·d − pad_b, c] · W[q, c, m]`, then the
//! fused activation. It is the grouped convolution of [`super::conv`] with `groups = C`,
//! `C_g = 1`, run by a direct loop. VJP: `dW[q, c, m] = Σ_{n,o} x[n, t(o,q), c] · dY[n, o, c·M+m]`,
//! `dx[n, t(o,q), c] += Σ_m W[q, c, m] · dY[n, o, c·M+m]`, `db = Σ dY`.
//!
//! Weights: Keras `(*k, C, M)` (`keras/src/layers/convolutional/base_depthwise_conv.py`) reshapes to
//! the canonical `(K, C·M)` as stored; torch `(C·M, 1, *k)` is permuted (catalogue
//! `depthwise-separable-layout`).

use model_ir::{Activation, DataLayout, Padding, ParamLayout, ParamRole};
use ndarray::{Array2, ArrayD};

use super::activation;
use super::conv::{
    ConvCore, KernelOrder, add_bias_cl, backward_cl, bias_grad_cl, bias_param, forward_cl,
};
use super::util::{from_mat, standard};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes, Saved};
use crate::error::EngineError;
use crate::float::Float;

/// A stored depthwise kernel and how to read it.
#[derive(Debug, Clone)]
pub(crate) struct DwKernel {
    pub(crate) name: String,
    pub(crate) order: KernelOrder,
    pub(crate) channels: usize,
    pub(crate) mult: usize,
}

impl DwKernel {
    pub(crate) fn resolve(
        cx: &NodeCx<'_>,
        rank: usize,
        kernel_size: &[usize],
        depth_multiplier: usize,
    ) -> Result<DwKernel, EngineError> {
        let p = match cx.opt_param(ParamRole::DepthwiseKernel)? {
            Some(p) => p,
            None => cx.req_param(ParamRole::Kernel)?,
        };
        let order = KernelOrder::of(cx, &p.layout, rank)?;
        let shape = p.tensor.shape();
        if shape.len() != rank + 2 {
            return Err(cx.invalid(format!("depthwise kernel shape {shape:?} for rank {rank}")));
        }
        let (channels, mult) = match order {
            KernelOrder::SpatialInOut => (shape[rank], shape[rank + 1]),
            KernelOrder::OutInSpatial => {
                if shape[1] != 1 || depth_multiplier == 0 || shape[0] % depth_multiplier != 0 {
                    return Err(cx.invalid(format!(
                        "depthwise kernel shape {shape:?} with depth_multiplier {depth_multiplier}"
                    )));
                }
                (shape[0] / depth_multiplier, depth_multiplier)
            }
        };
        if mult != depth_multiplier {
            return Err(cx.invalid(format!(
                "depthwise kernel shape {shape:?} does not match depth_multiplier {depth_multiplier}"
            )));
        }
        if order.spatial(shape, rank) != kernel_size {
            return Err(cx.invalid(format!(
                "depthwise kernel shape {shape:?} does not match kernel_size {kernel_size:?}"
            )));
        }
        if let ParamLayout::ConvSpatialInOut { .. } = p.layout {
            return Err(
                cx.unsupported("a depthwise kernel stored in the regular (*k, in, out) layout")
            );
        }
        Ok(DwKernel {
            name: p.name.clone(),
            order,
            channels,
            mult,
        })
    }

    /// Canonical `(K, C·M)`.
    pub(crate) fn canonical<F: Float>(&self, w: &ArrayD<F>, rank: usize) -> Array2<F> {
        match self.order {
            KernelOrder::SpatialInOut => {
                let k: usize = w.shape()[..rank].iter().product();
                match standard(w.clone()).into_shape_with_order((k, self.channels * self.mult)) {
                    Ok(m) => m,
                    Err(e) => panic!("depthwise kernel: {e}"),
                }
            }
            KernelOrder::OutInSpatial => self.order.to_canonical(w, rank),
        }
    }

    pub(crate) fn canonical_to_stored<F: Float>(
        &self,
        dw: Array2<F>,
        stored: &[usize],
        rank: usize,
    ) -> ArrayD<F> {
        match self.order {
            KernelOrder::SpatialInOut => from_mat(dw, stored),
            KernelOrder::OutInSpatial => self.order.canonical_to_stored(dw, stored, rank),
        }
    }
}

/// Depthwise convolution.
#[derive(Debug, Clone)]
pub(crate) struct DepthwiseConv {
    pub(crate) core: ConvCore,
    pub(crate) kernel: DwKernel,
    pub(crate) bias: Option<String>,
    pub(crate) activation: Activation,
}

impl DepthwiseConv {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        rank: usize,
        depth_multiplier: usize,
        kernel_size: &[usize],
        strides: &[usize],
        dilation: &[usize],
        padding: &Padding,
        layout: DataLayout,
        use_bias: bool,
        activation: &Activation,
    ) -> Result<DepthwiseConv, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        activation::check(cx, activation)?;
        let core = ConvCore::new(cx, rank, kernel_size, strides, dilation, padding, layout)?;
        let kernel = DwKernel::resolve(cx, rank, &core.kernel_size, depth_multiplier)?;
        let bias = bias_param(cx, use_bias, kernel.channels * kernel.mult)?;
        Ok(DepthwiseConv {
            core,
            kernel,
            bias,
            activation: activation.clone(),
        })
    }

    pub(crate) fn infer(
        &self,
        _ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let (n, sp, c) = self.core.split(xs[0])?;
        if c != self.kernel.channels {
            return Err(format!(
                "input has {c} channels, the depthwise kernel expects {}",
                self.kernel.channels
            ));
        }
        let win = self.core.window(sp)?;
        Ok(vec![self.core.out_shape(
            n,
            &win.out_sp,
            c * self.kernel.mult,
        )])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = self.core.to_cl(xs[0]);
        let (_, sp, _) = self.core.split(xs[0].shape())?;
        let win = self.core.window(sp)?;
        let w = self
            .kernel
            .canonical(cx.param(&self.kernel.name), self.core.rank);
        let mut y = forward_cl(&x, &w, self.kernel.channels, &win);
        if let Some(b) = &self.bias {
            add_bias_cl(&mut y, cx.param(b));
        }
        let z = self.core.cl_to_layout(y);
        let mut saved = Saved::default();
        let y = activation::fused(&self.activation, z, &mut saved)?;
        Ok(Out { ys: vec![y], saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let dz =
            activation::fused_backward(&self.activation, cx.saved, cx.ys[0], &cx.dys[0], cx.seed);
        let dz = self.core.to_cl(&dz);
        let x = self.core.to_cl(cx.xs[0]);
        let win = match self
            .core
            .split(cx.xs[0].shape())
            .and_then(|(_, sp, _)| self.core.window(sp))
        {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        };
        let stored = cx.param(&self.kernel.name);
        let w = self.kernel.canonical(stored, self.core.rank);
        let (dx, dw) = backward_cl(&x, &w, self.kernel.channels, &win, &dz);
        let mut dparams = vec![(
            self.kernel.name.clone(),
            self.kernel
                .canonical_to_stored(dw, stored.shape(), self.core.rank),
        )];
        if let Some(b) = &self.bias {
            dparams.push((b.clone(), bias_grad_cl(&dz)));
        }
        NodeGrads {
            dxs: vec![Some(self.core.cl_to_layout(dx))],
            dparams,
        }
    }
}
