//! Element-wise math that is not an activation (ONNX Neg/Abs/Sqrt/Exp/Log/Reciprocal/Erf).
//!
//! VJP `dx = dy · f'(x)`: neg `−1`; abs `sign(x)` (0 at 0, as torch); sqrt `1/(2√x)`;
//! exp `eˣ`; log `1/x`; reciprocal `−1/x²`; erf `2/√π · e^{−x²}`.
//!
//! The roundings (ONNX `Cast` between float types) round to the nearest value of the target
//! type, ties to even (IEEE; `half` for f16/bf16), directly from the computed value; their
//! VJP passes `dy` through unchanged (torch's `Tensor.to(dtype)` backward casts the gradient
//! back, the identity on values). `Ones` is 1 everywhere (a dropout's all-true mask), VJP 0.

use model_ir::UnaryOp;
use ndarray::{ArrayD, Zip};

use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct Unary {
    pub(crate) op: UnaryOp,
}

impl Unary {
    pub(crate) fn compile(cx: &NodeCx<'_>, op: UnaryOp) -> Result<Unary, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        Ok(Unary { op })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        Ok(vec![xs[0].to_vec()])
    }

    fn f<F: Float>(&self, x: F) -> F {
        match self.op {
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Reciprocal => F::one() / x,
            UnaryOp::Erf => x.erf(),
            UnaryOp::RoundF32 => c(x.to_f64().map_or(f64::NAN, |v| f64::from(v as f32))),
            UnaryOp::RoundF16 => c(x
                .to_f64()
                .map_or(f64::NAN, |v| half::f16::from_f64(v).to_f64())),
            UnaryOp::RoundBf16 => c(x
                .to_f64()
                .map_or(f64::NAN, |v| half::bf16::from_f64(v).to_f64())),
            UnaryOp::Ones => F::one(),
        }
    }

    fn df<F: Float>(&self, x: F, y: F) -> F {
        match self.op {
            UnaryOp::Neg => -F::one(),
            UnaryOp::Abs => {
                if x > F::zero() {
                    F::one()
                } else if x < F::zero() {
                    -F::one()
                } else {
                    F::zero()
                }
            }
            UnaryOp::Sqrt => c::<F>(0.5) / y,
            UnaryOp::Exp => y,
            UnaryOp::Log => F::one() / x,
            UnaryOp::Reciprocal => -(y * y),
            UnaryOp::Erf => c::<F>(2.0 / std::f64::consts::PI.sqrt()) * (-(x * x)).exp(),
            UnaryOp::RoundF32 | UnaryOp::RoundF16 | UnaryOp::RoundBf16 => F::one(),
            UnaryOp::Ones => F::zero(),
        }
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        Ok(Out::one(xs[0].mapv(|v| self.f(v))))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let mut dx = ArrayD::zeros(cx.xs[0].raw_dim());
        Zip::from(&mut dx)
            .and(cx.xs[0])
            .and(cx.ys[0])
            .and(&cx.dys[0])
            .for_each(|d, &x, &y, &g| *d = g * self.df(x, y));
        NodeGrads::input(dx)
    }
}
