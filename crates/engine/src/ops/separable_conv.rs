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

use model_ir::{Activation, ParamRole};
use ndarray::ArrayD;

use super::conv::{ConvCore, ConvSpec, KernelOrder, bias_param};
use super::depthwise_conv::DwKernel;
use super::util::{from_mat, mat, matmul};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes};
use crate::error::EngineError;
use crate::float::Float;

/// Separable convolution: depthwise, then pointwise.
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
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        spec: &ConvSpec<'_>,
        filters: usize,
        depth_multiplier: usize,
    ) -> Result<SeparableConv, EngineError> {
        let core = ConvCore::compile(cx, spec, false)?;
        let rank = spec.rank;
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
        let bias = bias_param(cx, spec.use_bias, filters)?;
        Ok(SeparableConv {
            core,
            depthwise,
            pointwise: pw.name.clone(),
            pw_order,
            filters,
            bias,
            activation: spec.activation.clone(),
        })
    }

    pub(crate) fn infer(
        &self,
        _ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        self.depthwise.infer(&self.core, xs[0], self.filters)
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let u = self.depthwise.forward_cl(&self.core, cx, xs[0])?;
        let p = self
            .pw_order
            .to_canonical(cx.param(&self.pointwise), self.core.rank);
        let cm = p.nrows();
        let mut out_shape = u.shape().to_vec();
        *out_shape.last_mut().unwrap_or(&mut 0) = self.filters;
        let y = from_mat(matmul(&mat(&u, cm), &p.view()), &out_shape);
        let mut out = self
            .core
            .finish(cx, y, self.bias.as_deref(), &self.activation)?;
        out.saved.arrays.push(u);
        Ok(out)
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let rank = self.core.rank;
        let dz = self.core.dz_cl(cx, &self.activation);
        let u = &cx.saved.arrays[0];
        let pstored = cx.param(&self.pointwise);
        let p = self.pw_order.to_canonical(pstored, rank);
        let cm = p.nrows();
        let dzm = mat(&dz, self.filters);
        let dp = matmul(&mat(u, cm).t(), &dzm);
        let du = from_mat(matmul(&dzm, &p.t()), u.shape());
        let (dx, dw) = self.depthwise.backward_cl(&self.core, cx, &du);
        let dparams = vec![
            dw,
            (
                self.pointwise.clone(),
                self.pw_order.canonical_to_stored(dp, pstored.shape(), rank),
            ),
        ];
        self.core.grads(dx, dparams, self.bias.as_deref(), &dz)
    }
}
