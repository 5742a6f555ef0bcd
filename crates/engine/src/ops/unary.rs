//! Element-wise math that is not an activation (ONNX Neg/Abs/Sqrt/Exp/Log/Reciprocal/Erf).
//!
//! VJP `dx = dy · f'(x)`: neg `−1`; abs `sign(x)` (0 at 0, as torch); sqrt `1/(2√x)`;
//! exp `eˣ`; log `1/x`; reciprocal `−1/x²`; erf `2/√π · e^{−x²}`.
//!
//! The roundings (ONNX `Cast` between float types) round to the nearest value of the target
//! type, ties to even (IEEE; `half` for f16/bf16), directly from the computed value; their
//! VJP passes `dy` through unchanged (torch's `Tensor.to(dtype)` backward casts the gradient
//! back, the identity on values). `Ones` is 1 everywhere (a dropout's all-true mask), VJP 0.
//! The integer checks (`CheckU8`/`CheckI32`/`CheckI64`) pass values through and fail the run
//! when integer arithmetic left the exactly computed range (a fraction, a value outside the
//! integer type, or beyond 2^24 in f32 / 2^53 in f64); VJP `dy`.

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

    /// The integer checks: every value an integer the compute type holds exactly, inside the
    /// integer type's range (ONNX would wrap around or truncate).
    fn check_integers<F: Float>(&self, x: &ArrayD<F>) -> Result<(), String> {
        let (lo, hi, what) = match self.op {
            UnaryOp::CheckU8 => (0.0, 255.0, "uint8"),
            UnaryOp::CheckI32 => (-2_147_483_648.0, 2_147_483_647.0, "int32"),
            UnaryOp::CheckI64 => (-9.223_372_036_854_776e18, 9.223_372_036_854_776e18, "int64"),
            _ => return Ok(()),
        };
        let exact = if F::DTYPE == model_ir::DType::F32 {
            16_777_216.0
        } else {
            9_007_199_254_740_992.0
        };
        for &v in x {
            let v = v.as_f64();
            if v.fract() != 0.0 || !v.is_finite() {
                return Err(format!(
                    "{what} arithmetic gives {v}, not an integer (ONNX truncates)"
                ));
            }
            if v < lo || v > hi {
                return Err(format!(
                    "{what} arithmetic gives {v}, outside the {what} range (ONNX wraps around)"
                ));
            }
            if v.abs() > exact {
                return Err(format!(
                    "{what} arithmetic gives {v}, beyond the integers {:?} holds exactly",
                    F::DTYPE
                ));
            }
        }
        Ok(())
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
            UnaryOp::RoundF32 => c(f64::from(x.as_f64() as f32)),
            UnaryOp::RoundF16 => c(half::f16::from_f64(x.as_f64()).to_f64()),
            UnaryOp::RoundBf16 => c(half::bf16::from_f64(x.as_f64()).to_f64()),
            UnaryOp::Ones => F::one(),
            UnaryOp::CheckU8 | UnaryOp::CheckI32 | UnaryOp::CheckI64 => x,
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
            UnaryOp::CheckU8 | UnaryOp::CheckI32 | UnaryOp::CheckI64 => F::one(),
        }
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        self.check_integers(xs[0])?;
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
