//! Separable convolution (Keras `SeparableConv1D/2D`): a depthwise convolution followed by a
//! 1×1 pointwise convolution, then bias and activation.
//!
//! Forward: `u = depthwise(x)` (strides, padding and dilation apply here, no bias),
//! `y = act(u · P + b)` with the pointwise kernel `P` `(C·M, filters)`.
//! VJP: `dz = act'(·)`, `dP = uᵀ · dz`, `db = Σ dz`, `du = dz · Pᵀ`, then the depthwise VJP of
//! [`super::depthwise_conv`]. Source: `keras/src/layers/convolutional/base_separable_conv.py`
//! (`ops.separable_conv` = depthwise then pointwise).
//!
//! Weights: depthwise `(*k, C, M)`, pointwise Keras `(1, …, 1, C·M, filters)` or torch
//! `(filters, C·M, 1, …, 1)`.

use model_ir::{Activation, DataLayout, Padding, ParamRole};
use ndarray::ArrayD;

use super::activation;
use super::conv::{
    ConvCore, KernelOrder, add_bias_cl, backward_cl, bias_grad_cl, bias_param, forward_cl,
};
use super::depthwise_conv::DwKernel;
use super::util::{from_mat, mat, matmul};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes, Saved};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct SeparableConv {
    pub(crate) core: ConvCore,
    pub(crate) depthwise: DwKernel,
    pub(crate) pointwise: String,
    pub(crate) pw_order: KernelOrder,
    pub(crate) filters: usize,
    pub(crate) bias: Option<String>,
    pub(crate) activation: Activation,
}

impl SeparableConv {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        rank: usize,
        filters: usize,
        depth_multiplier: usize,
        kernel_size: &[usize],
        strides: &[usize],
        dilation: &[usize],
        padding: &Padding,
        layout: DataLayout,
        use_bias: bool,
        activation: &Activation,
    ) -> Result<SeparableConv, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        activation::check(cx, activation)?;
        let core = ConvCore::new(cx, rank, kernel_size, strides, dilation, padding, layout)?;
        let depthwise = DwKernel::resolve(cx, rank, &core.kernel_size, depth_multiplier)?;
        let pw = cx.req_param(ParamRole::PointwiseKernel)?;
        let pw_order = KernelOrder::of(cx, &pw.layout, rank)?;
        let dims = pw_order.canonical_dims(pw.tensor.shape(), rank);
        let cm = depthwise.channels * depthwise.mult;
        if dims != Some((1, cm, filters)) {
            return Err(cx.invalid(format!(
                "pointwise kernel shape {:?}, expected 1×1 from {cm} to {filters} channels",
                pw.tensor.shape()
            )));
        }
        let bias = bias_param(cx, use_bias, filters)?;
        Ok(SeparableConv {
            core,
            depthwise,
            pointwise: pw.name.clone(),
            pw_order,
            filters,
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
        if c != self.depthwise.channels {
            return Err(format!(
                "input has {c} channels, the depthwise kernel expects {}",
                self.depthwise.channels
            ));
        }
        let win = self.core.window(sp)?;
        Ok(vec![self.core.out_shape(n, &win.out_sp, self.filters)])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let rank = self.core.rank;
        let x = self.core.to_cl(xs[0]);
        let (_, sp, _) = self.core.split(xs[0].shape())?;
        let win = self.core.window(sp)?;
        let w = self
            .depthwise
            .canonical(cx.param(&self.depthwise.name), rank);
        let u = forward_cl(&x, &w, self.depthwise.channels, &win);
        let p = self.pw_order.to_canonical(cx.param(&self.pointwise), rank);
        let cm = p.nrows();
        let mut out_shape = u.shape().to_vec();
        *out_shape.last_mut().unwrap_or(&mut 0) = self.filters;
        let mut y = from_mat(matmul(&mat(&u, cm), &p.view()), &out_shape);
        if let Some(b) = &self.bias {
            add_bias_cl(&mut y, cx.param(b));
        }
        let z = self.core.cl_to_layout(y);
        let mut saved = Saved::default();
        let y = activation::fused(&self.activation, z, &mut saved)?;
        saved.arrays.push(u);
        Ok(Out { ys: vec![y], saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let rank = self.core.rank;
        let dz =
            activation::fused_backward(&self.activation, cx.saved, cx.ys[0], &cx.dys[0], cx.seed);
        let dz = self.core.to_cl(&dz).into_owned();
        let u = &cx.saved.arrays[0];
        let pstored = cx.param(&self.pointwise);
        let p = self.pw_order.to_canonical(pstored, rank);
        let cm = p.nrows();
        let dzm = mat(&dz, self.filters);
        let dp = matmul(&mat(u, cm).t(), &dzm);
        let du = from_mat(matmul(&dzm, &p.t()), u.shape());
        let x = self.core.to_cl(cx.xs[0]);
        let win = match self
            .core
            .split(cx.xs[0].shape())
            .and_then(|(_, sp, _)| self.core.window(sp))
        {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        };
        let dstored = cx.param(&self.depthwise.name);
        let w = self.depthwise.canonical(dstored, rank);
        let (dx, dw) = backward_cl(&x, &w, self.depthwise.channels, &win, &du);
        let mut dparams = vec![
            (
                self.depthwise.name.clone(),
                self.depthwise
                    .canonical_to_stored(dw, dstored.shape(), rank),
            ),
            (
                self.pointwise.clone(),
                self.pw_order.canonical_to_stored(dp, pstored.shape(), rank),
            ),
        ];
        if let Some(b) = &self.bias {
            dparams.push((b.clone(), bias_grad_cl(&dz)));
        }
        NodeGrads {
            dxs: vec![Some(self.core.cl_to_layout(dx))],
            dparams,
        }
    }
}
