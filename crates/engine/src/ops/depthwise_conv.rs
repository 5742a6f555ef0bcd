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

use model_ir::{Activation, ParamLayout, ParamRole};
use ndarray::{Array2, ArrayD};

use super::conv::{ConvCore, ConvSpec, KernelOrder, backward_cl, bias_param, forward_cl};
use super::util::{from_mat, standard};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes};
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

    /// Output shape of the depthwise stage's op on input `x` with `out_c` output channels,
    /// after checking the input's channels against the kernel.
    pub(crate) fn infer(
        &self,
        core: &ConvCore,
        x: &[usize],
        out_c: usize,
    ) -> Result<Vec<Vec<usize>>, String> {
        let (n, sp, c) = core.split(x)?;
        if c != self.channels {
            return Err(format!(
                "input has {c} channels, the depthwise kernel expects {}",
                self.channels
            ));
        }
        let win = core.window(sp)?;
        Ok(vec![core.out_shape(n, &win.out_sp, out_c)])
    }

    /// The depthwise convolution of the op's input, channels-last `(N, *out, C·M)`, no bias.
    pub(crate) fn forward_cl<F: Float>(
        &self,
        core: &ConvCore,
        cx: &FwdCx<'_, F>,
        x: &ArrayD<F>,
    ) -> Result<ArrayD<F>, String> {
        let win = core.window_of(x.shape())?;
        let x = core.to_cl(x);
        let w = self.canonical(cx.param(&self.name), core.rank);
        Ok(forward_cl(&x, &w, self.channels, &win))
    }

    /// VJP of [`DwKernel::forward_cl`] for the channels-last gradient `du` of its output:
    /// the channels-last input gradient and the kernel's gradient in its stored shape.
    pub(crate) fn backward_cl<F: Float>(
        &self,
        core: &ConvCore,
        cx: &BwdCx<'_, F>,
        du: &ArrayD<F>,
    ) -> (ArrayD<F>, (String, ArrayD<F>)) {
        let x = core.to_cl(cx.xs[0]);
        let win = core.checked_window(cx.xs[0].shape());
        let stored = cx.param(&self.name);
        let w = self.canonical(stored, core.rank);
        let (dx, dw) = backward_cl(&x, &w, self.channels, &win, du);
        let dw = self.canonical_to_stored(dw, stored.shape(), core.rank);
        (dx, (self.name.clone(), dw))
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
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        spec: &ConvSpec<'_>,
        depth_multiplier: usize,
    ) -> Result<DepthwiseConv, EngineError> {
        let core = ConvCore::compile(cx, spec, false)?;
        let kernel = DwKernel::resolve(cx, spec.rank, &core.kernel_size, depth_multiplier)?;
        let bias = bias_param(cx, spec.use_bias, kernel.channels * kernel.mult)?;
        Ok(DepthwiseConv {
            core,
            kernel,
            bias,
            activation: spec.activation.clone(),
        })
    }

    pub(crate) fn infer(
        &self,
        _ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        self.kernel
            .infer(&self.core, xs[0], self.kernel.channels * self.kernel.mult)
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let y = self.kernel.forward_cl(&self.core, cx, xs[0])?;
        self.core
            .finish(cx, y, self.bias.as_deref(), &self.activation)
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let dz = self.core.dz_cl(cx, &self.activation);
        let (dx, dw) = self.kernel.backward_cl(&self.core, cx, &dz);
        self.core.grads(dx, vec![dw], self.bias.as_deref(), &dz)
    }
}
