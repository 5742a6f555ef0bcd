//! Element-wise activations (every [`model_ir::Activation`] variant) and the stand-alone
//! Activation op; the fused activations of Dense/Conv layers use [`apply`] and [`vjp`].
//!
//! Forward `y = f(x)`, VJP `dx = dy ⊙ f'(x)`, except softmax / log-softmax along `axis`:
//! softmax `y_i = e^{x_i} / Σ_j e^{x_j}`, `dx = y ⊙ (dy − Σ(dy ⊙ y))`;
//! log-softmax `y = x − log Σ e^x`, `dx = dy − softmax(x) · Σ dy`.
//!
//! Definitions (Keras 3 `keras/src/activations/activations.py`, PyTorch
//! `torch/nn/modules/activation.py`):
//! - `relu(x, negative_slope, max_value, threshold)` follows Keras's `relu`: the positive part is
//!   `x·[x > threshold]` (plain `max(x, 0)` when threshold is 0), clipped to `[0, max_value]`, minus
//!   `negative_slope · max(threshold − x, 0)`.
//! - leaky relu `x` for `x ≥ 0`, else `slope·x`; elu `α(eˣ − 1)` below 0; selu with
//!   `λ = 1.0507009873554805`, `α = 1.6732632423543772`.
//! - gelu exact `½x(1 + erf(x/√2))`; tanh form `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (Keras
//!   `ops.gelu` default, torch `approximate='tanh'`).
//! - hard sigmoid `clip(slope·x + offset, 0, 1)` with both definitions from the IR (Keras 3 /
//!   torch `1/6, 1/2`; tf.keras 2 `0.2, 0.5`); hard swish `x · relu6(x + 3)/6`.
//! - softplus `log(1 + e^{βx})/β`, linear when `βx > threshold` (torch); softsign `x/(1+|x|)`;
//!   silu `x·σ(x)`; mish `x·tanh(softplus(x))`; exponential `eˣ`; relu6 `min(max(x,0),6)`;
//!   log-sigmoid `−softplus(−x)`; tanh-shrink `x − tanh x`.
//!
//! At the kinks (relu at the threshold, clips at their bounds) the derivative is the one-sided
//! value the frameworks use (0 at a relu's kink, pass-through inside a closed clip range).

use model_ir::Activation;
use ndarray::{ArrayD, Axis, Zip};

use super::util::{norm_axis, sigmoid, softplus};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, Saved};
use crate::error::EngineError;
use crate::float::{Float, c};

const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;

/// The stand-alone Activation op.
#[derive(Debug, Clone)]
pub(crate) struct ActivationOp {
    pub(crate) function: Activation,
}

impl ActivationOp {
    pub(crate) fn compile(cx: &NodeCx<'_>, function: &Activation) -> Result<Self, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        check(cx, function)?;
        Ok(ActivationOp {
            function: function.clone(),
        })
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        check_rank(&self.function, xs[0].len())?;
        Ok(vec![xs[0].to_vec()])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        Ok(Out::one(apply(&self.function, xs[0])?))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        NodeGrads::input(backward(
            &self.function,
            cx.xs[0],
            cx.ys[0],
            &cx.dys[0],
            cx.seed,
        ))
    }
}

/// Rejects activation parameters no framework allows.
pub(crate) fn check(cx: &NodeCx<'_>, act: &Activation) -> Result<(), EngineError> {
    match act {
        Activation::Softplus { beta, .. } if *beta <= 0.0 => {
            Err(cx.invalid(format!("softplus beta must be positive, got {beta}")))
        }
        _ => Ok(()),
    }
}

/// Checks a softmax axis against the input rank.
pub(crate) fn check_rank(act: &Activation, rank: usize) -> Result<(), String> {
    match act {
        Activation::Softmax { axis } | Activation::LogSoftmax { axis } => {
            norm_axis(*axis, rank).map(|_| ())
        }
        _ => Ok(()),
    }
}

/// Whether the activation is the identity.
pub(crate) fn is_linear(act: &Activation) -> bool {
    matches!(act, Activation::Linear)
}

/// Forward of a fused activation: returns `y` and, unless linear, keeps `z` in `saved.pre`.
pub(crate) fn fused<F: Float>(
    act: &Activation,
    z: ArrayD<F>,
    saved: &mut Saved<F>,
) -> Result<ArrayD<F>, String> {
    if is_linear(act) {
        return Ok(z);
    }
    let y = apply(act, &z)?;
    saved.pre = Some(z);
    Ok(y)
}

/// Backward of a fused activation: `dz` from `dy` (and the logits seed, if any).
pub(crate) fn fused_backward<F: Float>(
    act: &Activation,
    saved: &Saved<F>,
    y: &ArrayD<F>,
    dy: &ArrayD<F>,
    seed: Option<&ArrayD<F>>,
) -> ArrayD<F> {
    match &saved.pre {
        Some(z) => backward(act, z, y, dy, seed),
        None => match seed {
            Some(s) => dy + s,
            None => dy.clone(),
        },
    }
}

/// `dz = vjp(dy) + seed`.
pub(crate) fn backward<F: Float>(
    act: &Activation,
    z: &ArrayD<F>,
    y: &ArrayD<F>,
    dy: &ArrayD<F>,
    seed: Option<&ArrayD<F>>,
) -> ArrayD<F> {
    let mut dz = vjp(act, z, y, dy);
    if let Some(s) = seed {
        dz += s;
    }
    dz
}

/// `y = f(x)`.
pub(crate) fn apply<F: Float>(act: &Activation, x: &ArrayD<F>) -> Result<ArrayD<F>, String> {
    match act {
        Activation::Softmax { axis } => {
            let ax = norm_axis(*axis, x.ndim())?;
            Ok(softmax(x, ax))
        }
        Activation::LogSoftmax { axis } => {
            let ax = norm_axis(*axis, x.ndim())?;
            Ok(log_softmax(x, ax))
        }
        Activation::Linear => Ok(x.clone()),
        // The common cases with the dispatch hoisted out of the element loop.
        a if *a == Activation::RELU => Ok(x.mapv(|v| v.max(F::zero()))),
        Activation::Sigmoid => Ok(x.mapv(sigmoid)),
        Activation::Tanh => Ok(x.mapv(|v| v.tanh())),
        other => Ok(x.mapv(|v| scalar(other, v))),
    }
}

/// `dx = dy ⊙ f'(x)` (softmax kinds: the Jacobian-vector product along the axis).
pub(crate) fn vjp<F: Float>(
    act: &Activation,
    x: &ArrayD<F>,
    y: &ArrayD<F>,
    dy: &ArrayD<F>,
) -> ArrayD<F> {
    match act {
        Activation::Linear => dy.clone(),
        Activation::Softmax { axis } => {
            let ax = Axis(norm_axis(*axis, x.ndim()).unwrap_or(0));
            let mut dx = dy * y;
            let s = dx.sum_axis(ax).insert_axis(ax);
            dx -= &(y * &s);
            dx
        }
        Activation::LogSoftmax { axis } => {
            let ax = Axis(norm_axis(*axis, x.ndim()).unwrap_or(0));
            let s = dy.sum_axis(ax).insert_axis(ax);
            let p = y.mapv(|v| v.exp());
            dy - &(p * &s)
        }
        other => {
            let mut dx = ArrayD::zeros(x.raw_dim());
            let z = Zip::from(&mut dx).and(x).and(y).and(dy);
            match other {
                a if *a == Activation::RELU => {
                    z.for_each(|d, &xv, _, &g| *d = if xv > F::zero() { g } else { F::zero() })
                }
                Activation::Sigmoid => z.for_each(|d, _, &yv, &g| *d = g * yv * (F::one() - yv)),
                Activation::Tanh => z.for_each(|d, _, &yv, &g| *d = g * (F::one() - yv * yv)),
                _ => z.for_each(|d, &xv, &yv, &g| *d = g * derivative(other, xv, yv)),
            }
            dx
        }
    }
}

/// Softmax along `ax`, max-subtracted.
pub(crate) fn softmax<F: Float>(x: &ArrayD<F>, ax: usize) -> ArrayD<F> {
    let mut y = x.clone();
    for mut lane in y.lanes_mut(Axis(ax)) {
        let m = lane.iter().fold(F::neg_infinity(), |a, &b| a.max(b));
        let mut s = F::zero();
        for v in lane.iter_mut() {
            *v = (*v - m).exp();
            s += *v;
        }
        for v in lane.iter_mut() {
            *v /= s;
        }
    }
    y
}

/// Log-softmax along `ax`: `x − m − log Σ e^{x − m}`.
pub(crate) fn log_softmax<F: Float>(x: &ArrayD<F>, ax: usize) -> ArrayD<F> {
    let mut y = x.clone();
    for mut lane in y.lanes_mut(Axis(ax)) {
        let m = lane.iter().fold(F::neg_infinity(), |a, &b| a.max(b));
        let s = lane.iter().fold(F::zero(), |a, &v| a + (v - m).exp());
        let lse = m + s.ln();
        for v in lane.iter_mut() {
            *v -= lse;
        }
    }
    y
}

fn relu_parts<F: Float>(x: F, negative_slope: f64, max_value: Option<f64>, threshold: f64) -> F {
    let t: F = c(threshold);
    let pos = if threshold != 0.0 {
        if x > t { x } else { F::zero() }
    } else {
        x.max(F::zero())
    };
    let pos = match max_value {
        Some(m) => pos.max(F::zero()).min(c(m)),
        None => pos,
    };
    let neg = if negative_slope != 0.0 {
        (t - x).max(F::zero())
    } else {
        F::zero()
    };
    pos - c::<F>(negative_slope) * neg
}

/// Element-wise activation value (not for the softmax kinds).
pub(crate) fn scalar<F: Float>(act: &Activation, x: F) -> F {
    let zero = F::zero();
    let one = F::one();
    match act {
        Activation::Linear => x,
        Activation::Relu {
            negative_slope,
            max_value,
            threshold,
        } => relu_parts(x, *negative_slope, *max_value, *threshold),
        Activation::LeakyRelu { slope } => {
            if x >= zero {
                x
            } else {
                c::<F>(*slope) * x
            }
        }
        Activation::Elu { alpha } => {
            if x > zero {
                x
            } else {
                c::<F>(*alpha) * x.exp_m1()
            }
        }
        Activation::Selu => {
            let v = if x > zero {
                x
            } else {
                c::<F>(SELU_ALPHA) * x.exp_m1()
            };
            c::<F>(SELU_SCALE) * v
        }
        Activation::Gelu { approximate } => {
            if *approximate {
                let k: F = c((2.0 / std::f64::consts::PI).sqrt());
                let inner = k * (x + c::<F>(0.044715) * x * x * x);
                c::<F>(0.5) * x * (one + inner.tanh())
            } else {
                c::<F>(0.5) * x * (one + (x * c::<F>(std::f64::consts::FRAC_1_SQRT_2)).erf())
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::HardSigmoid(h) => (c::<F>(h.slope) * x + c::<F>(h.offset)).max(zero).min(one),
        Activation::HardSwish => x * (x + c::<F>(3.0)).max(zero).min(c(6.0)) / c::<F>(6.0),
        Activation::Tanh => x.tanh(),
        Activation::Softplus { beta, threshold } => {
            let b: F = c(*beta);
            if let Some(t) = threshold
                && b * x > c::<F>(*t)
            {
                return x;
            }
            softplus(b * x) / b
        }
        Activation::Softsign => x / (one + x.abs()),
        Activation::Silu => x * sigmoid(x),
        Activation::Mish => x * softplus(x).tanh(),
        Activation::Exponential => x.exp(),
        Activation::Relu6 => x.max(zero).min(c(6.0)),
        Activation::LogSigmoid => -softplus(-x),
        Activation::TanhShrink => x - x.tanh(),
        Activation::Softmax { .. } | Activation::LogSoftmax { .. } => {
            panic!("softmax kinds are not element-wise")
        }
    }
}

/// `f'(x)` given `x` and `y = f(x)` (not for the softmax kinds).
pub(crate) fn derivative<F: Float>(act: &Activation, x: F, y: F) -> F {
    let zero = F::zero();
    let one = F::one();
    match act {
        Activation::Linear => one,
        Activation::Relu {
            negative_slope,
            max_value,
            threshold,
        } => {
            let t: F = c(*threshold);
            let above = if *threshold != 0.0 { x > t } else { x > zero };
            let mut d = if above {
                match max_value {
                    Some(m) => {
                        if x <= c::<F>(*m) && x >= zero {
                            one
                        } else {
                            zero
                        }
                    }
                    None => one,
                }
            } else {
                zero
            };
            if *negative_slope != 0.0 && x < t {
                d += c::<F>(*negative_slope);
            }
            d
        }
        Activation::LeakyRelu { slope } => {
            if x >= zero {
                one
            } else {
                c(*slope)
            }
        }
        Activation::Elu { alpha } => {
            if x > zero {
                one
            } else {
                c::<F>(*alpha) * x.exp()
            }
        }
        Activation::Selu => {
            if x > zero {
                c(SELU_SCALE)
            } else {
                c::<F>(SELU_SCALE * SELU_ALPHA) * x.exp()
            }
        }
        Activation::Gelu { approximate } => {
            if *approximate {
                let k: F = c((2.0 / std::f64::consts::PI).sqrt());
                let a: F = c(0.044715);
                let inner = k * (x + a * x * x * x);
                let t = inner.tanh();
                let half: F = c(0.5);
                half * (one + t) + half * x * (one - t * t) * k * (one + c::<F>(3.0) * a * x * x)
            } else {
                let cdf = c::<F>(0.5) * (one + (x * c::<F>(std::f64::consts::FRAC_1_SQRT_2)).erf());
                let pdf = (-(x * x) * c::<F>(0.5)).exp()
                    * c::<F>(1.0 / (2.0 * std::f64::consts::PI).sqrt());
                cdf + x * pdf
            }
        }
        Activation::Sigmoid => y * (one - y),
        Activation::HardSigmoid(h) => {
            let v = c::<F>(h.slope) * x + c::<F>(h.offset);
            if v > zero && v < one {
                c(h.slope)
            } else {
                zero
            }
        }
        Activation::HardSwish => {
            let three: F = c(3.0);
            if x < -three {
                zero
            } else if x > three {
                one
            } else {
                (c::<F>(2.0) * x + three) / c::<F>(6.0)
            }
        }
        Activation::Tanh => one - y * y,
        Activation::Softplus { beta, threshold } => {
            let b: F = c(*beta);
            if let Some(t) = threshold
                && b * x > c::<F>(*t)
            {
                return one;
            }
            sigmoid(b * x)
        }
        Activation::Softsign => {
            let d = one + x.abs();
            one / (d * d)
        }
        Activation::Silu => {
            let s = sigmoid(x);
            s * (one + x * (one - s))
        }
        Activation::Mish => {
            let sp = softplus(x);
            let t = sp.tanh();
            t + x * (one - t * t) * sigmoid(x)
        }
        Activation::Exponential => y,
        Activation::Relu6 => {
            if x > zero && x < c(6.0) {
                one
            } else {
                zero
            }
        }
        Activation::LogSigmoid => sigmoid(-x),
        Activation::TanhShrink => {
            let t = x.tanh();
            t * t
        }
        Activation::Softmax { .. } | Activation::LogSoftmax { .. } => {
            panic!("softmax kinds are not element-wise")
        }
    }
}
