//! Element-wise binary op of the input with a stored constant `k` (NumPy broadcasting):
//! `x ∘ k`, or `k ∘ x` when `constant_first`.
//!
//! VJPs (`a ∘ b`, result broadcast then summed back to each operand's shape):
//! add `da = g, db = g`; sub `da = g, db = −g`; mul `da = g·b, db = g·a`;
//! div `da = g/b, db = −g·a/b²`; pow `da = g·b·a^{b−1}, db = g·a^b·ln a`;
//! maximum/minimum (`max(a, b)`, `min(a, b)`): `g` to the operand selected, `a` on ties.
//! The constant gets a gradient only when it is trainable.

use model_ir::{BinaryOp, ParamRole};
use ndarray::{ArrayD, IxDyn, Zip};

use super::util::{broadcast_shape, broadcast_to, unbroadcast};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct ConstantBinary {
    pub(crate) op: BinaryOp,
    pub(crate) constant_first: bool,
    pub(crate) constant: String,
    pub(crate) trainable: bool,
}

impl ConstantBinary {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        op: BinaryOp,
        constant_first: bool,
    ) -> Result<ConstantBinary, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        let k = cx.req_param(ParamRole::Constant)?;
        Ok(ConstantBinary {
            op,
            constant_first,
            constant: k.name.clone(),
            trainable: k.trainable,
        })
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        Ok(vec![broadcast_shape(xs[0], &ps[&self.constant])?])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let k = cx.param(&self.constant);
        let (a, b) = if self.constant_first {
            (k, xs[0])
        } else {
            (xs[0], k)
        };
        Ok(Out::one(binary(self.op, a, b)?))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let k = cx.param(&self.constant);
        let x = cx.xs[0];
        let (a, b) = if self.constant_first { (k, x) } else { (x, k) };
        let (da, db) = binary_vjp(self.op, a, b, cx.ys[0], &cx.dys[0]);
        let (dx, dk) = if self.constant_first {
            (db, da)
        } else {
            (da, db)
        };
        let dparams = if self.trainable {
            vec![(self.constant.clone(), dk)]
        } else {
            Vec::new()
        };
        NodeGrads {
            dxs: vec![Some(dx)],
            dparams,
        }
    }
}

/// `a ∘ b` with broadcasting.
pub(crate) fn binary<F: Float>(
    op: BinaryOp,
    a: &ArrayD<F>,
    b: &ArrayD<F>,
) -> Result<ArrayD<F>, String> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    let a = broadcast_to(a, &shape);
    let b = broadcast_to(b, &shape);
    let mut y = ArrayD::zeros(IxDyn(&shape));
    Zip::from(&mut y).and(&a).and(&b).for_each(|y, &a, &b| {
        *y = match op {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            // NaN propagates (numpy, torch.maximum, tf.maximum).
            BinaryOp::Maximum => {
                if b > a || b.is_nan() {
                    b
                } else {
                    a
                }
            }
            BinaryOp::Minimum => {
                if b < a || b.is_nan() {
                    b
                } else {
                    a
                }
            }
        }
    });
    Ok(y)
}

/// Gradients of `a ∘ b` w.r.t. both operands, summed back to their shapes.
pub(crate) fn binary_vjp<F: Float>(
    op: BinaryOp,
    a: &ArrayD<F>,
    b: &ArrayD<F>,
    y: &ArrayD<F>,
    g: &ArrayD<F>,
) -> (ArrayD<F>, ArrayD<F>) {
    let shape = g.shape().to_vec();
    let ab = broadcast_to(a, &shape);
    let bb = broadcast_to(b, &shape);
    let mut da = ArrayD::zeros(IxDyn(&shape));
    let mut db = ArrayD::zeros(IxDyn(&shape));
    Zip::from(&mut da)
        .and(&mut db)
        .and(&ab)
        .and(&bb)
        .and(y)
        .and(g)
        .for_each(|da, db, &a, &b, &y, &g| {
            let (x, z) = match op {
                BinaryOp::Add => (g, g),
                BinaryOp::Sub => (g, -g),
                BinaryOp::Mul => (g * b, g * a),
                BinaryOp::Div => (g / b, -g * a / (b * b)),
                BinaryOp::Pow => {
                    let dz = if a > F::zero() {
                        g * y * a.ln()
                    } else {
                        F::zero()
                    };
                    (g * b * a.powf(b - F::one()), dz)
                }
                // The gradient goes to the operand selected (the first one on ties, as
                // `torch.clamp` passes it to `x` at the bound).
                BinaryOp::Maximum => {
                    if b > a {
                        (F::zero(), g)
                    } else {
                        (g, F::zero())
                    }
                }
                BinaryOp::Minimum => {
                    if b < a {
                        (F::zero(), g)
                    } else {
                        (g, F::zero())
                    }
                }
            };
            *da = x;
            *db = z;
        });
    (unbroadcast(da, a.shape()), unbroadcast(db, b.shape()))
}
