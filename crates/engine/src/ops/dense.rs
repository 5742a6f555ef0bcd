//! Dense / Linear: `y = act(x · K + b)` over the last axis (Keras `Dense`, torch `Linear`,
//! ONNX Gemm / MatMul+Add).
//!
//! Forward: with `x` viewed as `(rows, in)`, `z = x · K + b` where `K` is `(in, units)`; torch
//! stores `W = Kᵀ` `(units, in)` and computes `x · Wᵀ + b` (`torch/nn/modules/linear.py`;
//! Keras `keras/src/layers/core/dense.py`, catalogue `dense-layout`).
//! VJP: `dz = act'(z) ⊙ dy`; `dK = xᵀ · dz` (torch `dW = dzᵀ · x`); `db = Σ_rows dz`;
//! `dx = dz · Kᵀ` (torch `dz · W`).

use model_ir::{Activation, ParamLayout, ParamRole};
use ndarray::{ArrayD, Axis};

use super::activation;
use super::conv::bias_param;
use super::util::{from_mat, mat, matmul, standard, std_ref};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes, Saved};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub(crate) units: usize,
    pub(crate) kernel: String,
    /// `true` for torch's `(units, in)` weight.
    pub(crate) out_in: bool,
    pub(crate) bias: Option<String>,
    pub(crate) activation: Activation,
}

impl Dense {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        units: usize,
        use_bias: bool,
        activation: &Activation,
    ) -> Result<Dense, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        activation::check(cx, activation)?;
        let k = cx.req_param(ParamRole::Kernel)?;
        let shape = k.tensor.shape();
        let out_in = match k.layout {
            ParamLayout::DenseInOut => false,
            ParamLayout::DenseOutIn => true,
            ref other => return Err(cx.unsupported(format!("kernel layout {}", other.describe()))),
        };
        let ok = shape.len() == 2 && shape[if out_in { 0 } else { 1 }] == units;
        if !ok {
            return Err(cx.invalid(format!(
                "kernel `{}` has shape {shape:?}, expected {} with {units} units",
                k.name,
                if out_in { "(units, in)" } else { "(in, units)" }
            )));
        }
        let bias = bias_param(cx, use_bias, units)?;
        Ok(Dense {
            units,
            kernel: k.name.clone(),
            out_in,
            bias,
            activation: activation.clone(),
        })
    }

    fn in_dim(&self, kshape: &[usize]) -> usize {
        if self.out_in { kshape[1] } else { kshape[0] }
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let x = xs[0];
        let want = self.in_dim(&ps[&self.kernel]);
        match x.last() {
            Some(&d) if d == want => {}
            _ => {
                return Err(format!(
                    "input shape {x:?} does not end in the kernel's {want} inputs"
                ));
            }
        }
        activation::check_rank(&self.activation, x.len())?;
        let mut y = x.to_vec();
        if let Some(l) = y.last_mut() {
            *l = self.units;
        }
        Ok(vec![y])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = std_ref(xs[0]);
        let k = cx.param(&self.kernel);
        let inn = self.in_dim(k.shape());
        let xm = mat(&x, inn);
        let km = mat(k, k.shape()[1]);
        let mut z = if self.out_in {
            matmul(&xm, &km.t())
        } else {
            matmul(&xm, &km)
        };
        if let Some(b) = &self.bias {
            let b = mat(cx.param(b), self.units);
            z += &b.row(0);
        }
        let mut shape = x.shape().to_vec();
        if let Some(l) = shape.last_mut() {
            *l = self.units;
        }
        let z = from_mat(z, &shape);
        let mut saved = Saved::default();
        let y = activation::fused(&self.activation, z, &mut saved)?;
        Ok(Out { ys: vec![y], saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let dz = standard(activation::fused_backward(
            &self.activation,
            cx.saved,
            cx.ys[0],
            &cx.dys[0],
            cx.seed,
        ));
        let x = std_ref(cx.xs[0]);
        let k = cx.param(&self.kernel);
        let inn = self.in_dim(k.shape());
        let xm = mat(&x, inn);
        let dzm = mat(&dz, self.units);
        let km = mat(k, k.shape()[1]);
        let (dk, dx) = if self.out_in {
            (matmul(&dzm.t(), &xm), matmul(&dzm, &km))
        } else {
            (matmul(&xm.t(), &dzm), matmul(&dzm, &km.t()))
        };
        let mut dparams = vec![(self.kernel.clone(), dk.into_dyn())];
        if let Some(b) = &self.bias {
            dparams.push((b.clone(), dzm.sum_axis(Axis(0)).into_dyn()));
        }
        NodeGrads {
            dxs: vec![Some(from_mat(dx, x.shape()))],
            dparams,
        }
    }
}
