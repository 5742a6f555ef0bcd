//! Keras 3 optimizers fed a `tf.IndexedSlices` gradient on the TensorFlow backend (an
//! `Embedding` table's gradient: one slice per lookup, duplicate rows not summed).
//!
//! Keras runs the same `update_step` code on it, and what happens is decided op by op by the
//! wrappers in `keras/src/backend/tensorflow/sparse.py` and by `TFOptimizer.assign*` in
//! `keras/src/backend/tensorflow/optimizer.py`:
//! - `square`, `abs`, `negative`, `sign`, `sqrt` (`elementwise_unary`) and `multiply` /
//!   `divide` by a scalar or a dense tensor (`elementwise_binary_intersection`,
//!   `elementwise_division`, which gather the dense operand at the slice rows) act **per
//!   slice** and keep the slices;
//! - `add`, `subtract` (`elementwise_binary_union`) and `maximum` with a dense operand
//!   **densify** the slices first (`tf.convert_to_tensor`, an `unsorted_segment_sum` that
//!   adds the slices of a row in order): so `square(g)` then `subtract(·, v)` gives `Σ gₖ²`
//!   per row, not `(Σ gₖ)²`;
//! - `assign_add` / `assign_sub` of slices are `scatter_add` / `scatter_sub`: only the
//!   looked-up rows change, one slice after the other.
//!
//! With `D(f(g))` the per-row sum of `f` applied to each slice, `G = D(g)` (the dense
//! gradient) and `[r]` the value at a slice's row, each optimizer becomes (every other line
//! is the dense formula, over every row):
//! - SGD: θ[r] −= gₖ·η per slice; with momentum m ← μm − D(gₖ·η).
//! - Adam, AdamW: m ← m + (G − m)(1−β1); **v ← v + (D(gₖ²) − v)(1−β2)**; θ over every row.
//! - Nadam: m from G, v from D(gₖ²); m̂'s gradient term is D((1−μ_t)·gₖ/(1−Π_t)).
//! - Adamax: m from G; **u ← max(β2·u, D(|gₖ|))**.
//! - RMSprop: v ← ρv + D((1−ρ)gₖ²); centered ḡ ← ρḡ + D((1−ρ)gₖ); incₖ = η·gₖ/√den[r];
//!   with momentum b ← μb + D(incₖ), θ ← θ − b; without, θ[r] −= incₖ per slice.
//! - Adagrad: a[r] += gₖ² per slice, then θ[r] −= η·gₖ/√(a[r] + ε) per slice.
//! - Adadelta: E_g ← ρE_g + D((1−ρ)gₖ²); Δₖ = −√(E_Δ[r]+ε)·gₖ/√(E_g[r]+ε);
//!   E_Δ ← ρE_Δ + D((1−ρ)Δₖ²); θ[r] += η·Δₖ per slice.
//! - Lion: θ ← θ − η·sign(β1·m + D((1−β1)gₖ)); m ← β2·m + D((1−β2)gₖ).
//! - Adafactor: G² = D(gₖ²) + ε₁; uₖ = gₖ/√v[r]; RMS(u) = √(Σₖ uₖ² / numel);
//!   θ[r] −= α·uₖ/max(1, RMS(u)/d) per slice.
//!
//! The base-optimizer steps ([`super::Optimizer::apply_with_slices`]): `clipnorm` takes the
//! norm of the slices (`tf.clip_by_norm` on `IndexedSlices`) and scales them; `clipvalue`
//! clips each slice (`tf.clip_by_value`); `global_clipnorm` counts `Σ gₖ²` in the global
//! norm and then returns `g * scale`, a dense tensor, so the update is dense; gradient
//! accumulation (`g + acc`) is dense from the start; `loss_scale_factor` (`g / scale`)
//! raises a `TypeError` in Keras.
//!
//! Not modelled: `divide` by a dense tensor holding a zero or NaN (Adafactor with
//! `epsilon_1 = 0` on a row never looked up, RMSprop/Adagrad/Adadelta with `epsilon = 0`)
//! takes another path in `elementwise_division` whose index bookkeeping breaks on duplicate
//! rows; the emulation assumes a positive finite divisor.

use super::{Kind, Slots};
use crate::real::Real;

/// A gradient in slices, owned (clipping rewrites the values).
#[derive(Debug, Clone)]
pub(super) struct Sparse<T> {
    pub(super) indices: Vec<usize>,
    /// `indices.len()` rows of `row` elements.
    pub(super) values: Vec<T>,
    /// Elements per row of the variable.
    pub(super) row: usize,
}

impl<T: Real> Sparse<T> {
    /// `D(f(g))`: `f` of every slice element, added per row in slice order
    /// (`unsorted_segment_sum`), zero on rows not looked up; `n` = the variable's size.
    pub(super) fn densify(&self, n: usize, f: impl Fn(T) -> T) -> Vec<T> {
        let mut out = vec![T::default(); n];
        for (k, &r) in self.indices.iter().enumerate() {
            let (dst, src) = (r * self.row, k * self.row);
            for j in 0..self.row {
                out[dst + j] = out[dst + j] + f(self.values[src + j]);
            }
        }
        out
    }

    /// (flat variable index, slice value) for every slice element, in slice order.
    fn elements(&self) -> impl Iterator<Item = (usize, T)> + '_ {
        self.indices.iter().enumerate().flat_map(move |(k, &r)| {
            (0..self.row).map(move |j| (r * self.row + j, self.values[k * self.row + j]))
        })
    }

    /// Σ gₖ² over the slice values (`reduce_sum(values * values)`).
    pub(super) fn sum_of_squares(&self) -> T {
        self.values.iter().fold(T::default(), |a, &x| a + x * x)
    }
}

/// One variable's `update_step` with an `IndexedSlices` gradient; `g` is its dense sum `G`;
/// t = iterations + 1, η and Nadam's Π_t as in the dense `update_step`.
pub(super) fn update_step<T: Real>(
    kind: &Kind,
    (t, lr, u_product): (u64, T, T),
    g: &[T],
    sp: &Sparse<T>,
    th: &mut [T],
    s: &mut Slots<T>,
) {
    let c = T::of;
    let one = c(1.0);
    let tt = c(t as f64);
    let n = th.len();
    match *kind {
        Kind::Sgd { momentum, nesterov } => {
            if momentum.abs() > 0.0 {
                // `m·μ − gradient·η`: the product stays in slices, the subtraction densifies.
                let mu = c(momentum);
                let step = sp.densify(n, |x| x * lr);
                for ((x, m), &p) in th.iter_mut().zip(s.a.iter_mut()).zip(&step) {
                    *m = *m * mu - p;
                    if nesterov {
                        *x = *x + (*m * mu - p);
                    } else {
                        *x = *x + *m;
                    }
                }
            } else {
                // `assign_sub(variable, gradient·η)`: scatter_sub.
                for (i, x) in sp.elements() {
                    th[i] = th[i] - x * lr;
                }
            }
        }
        Kind::Adam {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        }
        | Kind::AdamW {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        } => {
            let b1p = c(beta_1).powf(tt);
            let b2p = c(beta_2).powf(tt);
            let alpha = lr * (one - b2p).sqrt() / (one - b1p);
            let sq = sp.densify(n, |x| x * x);
            for i in 0..n {
                s.a[i] = s.a[i] + (g[i] - s.a[i]) * c(1.0 - beta_1);
                s.b[i] = s.b[i] + (sq[i] - s.b[i]) * c(1.0 - beta_2);
                let v = if amsgrad {
                    s.c[i] = s.c[i].maximum(s.b[i]);
                    s.c[i]
                } else {
                    s.b[i]
                };
                th[i] = th[i] - (s.a[i] * alpha) / (v.sqrt() + c(epsilon));
            }
        }
        Kind::RmsProp {
            rho,
            momentum,
            epsilon,
            centered,
        } => {
            let sq = sp.densify(n, |x| c(1.0 - rho) * (x * x));
            for (a, &q) in s.a.iter_mut().zip(&sq) {
                *a = c(rho) * *a + q;
            }
            let den: Vec<T> = if centered {
                let mean = sp.densify(n, |x| c(1.0 - rho) * x);
                (0..n)
                    .map(|i| {
                        s.b[i] = c(rho) * s.b[i] + mean[i];
                        s.a[i] - s.b[i] * s.b[i] + c(epsilon)
                    })
                    .collect()
            } else {
                s.a.iter().map(|&v| v + c(epsilon)).collect()
            };
            let inc = Sparse {
                indices: sp.indices.clone(),
                values: sp
                    .elements()
                    .map(|(i, x)| (lr * x) / den[i].sqrt())
                    .collect(),
                row: sp.row,
            };
            if momentum > 0.0 {
                let inc = inc.densify(n, |x| x);
                for i in 0..n {
                    s.c[i] = c(momentum) * s.c[i] + inc[i];
                    th[i] = th[i] - s.c[i];
                }
            } else {
                for (i, x) in inc.elements() {
                    th[i] = th[i] - x;
                }
            }
        }
        Kind::Adagrad { epsilon, .. } => {
            for (i, x) in sp.elements() {
                s.a[i] = s.a[i] + x * x;
            }
            for (i, x) in sp.elements() {
                th[i] = th[i] - (lr * x) / (s.a[i] + c(epsilon)).sqrt();
            }
        }
        Kind::Adadelta { rho, epsilon } => {
            let rms = |x: T| (x + c(epsilon)).sqrt();
            let sq = sp.densify(n, |x| c(1.0 - rho) * (x * x));
            for (a, &q) in s.a.iter_mut().zip(&sq) {
                *a = c(rho) * *a + q;
            }
            let delta = Sparse {
                indices: sp.indices.clone(),
                values: sp
                    .elements()
                    .map(|(i, x)| -((rms(s.b[i]) * x) / rms(s.a[i])))
                    .collect(),
                row: sp.row,
            };
            let dsq = delta.densify(n, |d| c(1.0 - rho) * (d * d));
            for (b, &q) in s.b.iter_mut().zip(&dsq) {
                *b = c(rho) * *b + q;
            }
            for (i, d) in delta.elements() {
                th[i] = th[i] + lr * d;
            }
        }
        Kind::Adamax {
            beta_1,
            beta_2,
            epsilon,
        } => {
            let b1p = c(beta_1).powf(tt);
            let abs = sp.densify(n, T::abs);
            for i in 0..n {
                s.a[i] = s.a[i] + (g[i] - s.a[i]) * c(1.0 - beta_1);
                s.b[i] = (c(beta_2) * s.b[i]).maximum(abs[i]);
                th[i] = th[i] - (lr * s.a[i]) / ((one - b1p) * (s.b[i] + c(epsilon)));
            }
        }
        Kind::Nadam {
            beta_1,
            beta_2,
            epsilon,
        } => {
            let (b1, b2, decay) = (c(beta_1), c(beta_2), c(0.96));
            let half = c(0.5);
            let u_t = b1 * (one - half * decay.powf(tt));
            let u_t1 = b1 * (one - half * decay.powf(c((t + 1) as f64)));
            let up_t = u_product;
            let up_t1 = up_t * u_t1;
            let b2p = b2.powf(tt);
            let sq = sp.densify(n, |x| x * x);
            let gterm = sp.densify(n, |x| ((one - u_t) * x) / (one - up_t));
            for i in 0..n {
                s.a[i] = s.a[i] + (g[i] - s.a[i]) * (one - b1);
                s.b[i] = s.b[i] + (sq[i] - s.b[i]) * (one - b2);
                let m_hat = (u_t1 * s.a[i]) / (one - up_t1) + gterm[i];
                let v_hat = s.b[i] / (one - b2p);
                th[i] = th[i] - (m_hat * lr) / (v_hat.sqrt() + c(epsilon));
            }
        }
        Kind::Lion { beta_1, beta_2 } => {
            let (b1, b2) = (c(beta_1), c(beta_2));
            let g1 = sp.densify(n, |x| x * (one - b1));
            let g2 = sp.densify(n, |x| x * (one - b2));
            for i in 0..n {
                th[i] = th[i] - lr * (s.a[i] * b1 + g1[i]).sign();
                s.a[i] = s.a[i] * b2 + g2[i];
            }
        }
        Kind::Adafactor {
            beta_2_decay,
            epsilon_1,
            epsilon_2,
            clip_threshold,
            ..
        } => adafactor(
            (beta_2_decay, epsilon_1, epsilon_2, clip_threshold),
            (t, lr),
            sp,
            th,
            s,
        ),
    }
}

/// Adafactor's `update_step` with an `IndexedSlices` gradient (`keras/src/optimizers/adafactor.py`):
/// the squares are densified before ε₁ is added, and the update's RMS is the `mean` of the slices.
fn adafactor<T: Real>(
    (beta_2_decay, epsilon_1, epsilon_2, clip_threshold): (f64, f64, f64, f64),
    (t, lr): (u64, T),
    sp: &Sparse<T>,
    th: &mut [T],
    s: &mut Slots<T>,
) {
    let c = T::of;
    let one = c(1.0);
    let tt = c(t as f64);
    let n = th.len();
    let rho_t = lr.minimum(one / tt.sqrt());
    let alpha_t = c(epsilon_2).maximum(super::rms(th)) * rho_t;
    // `add(square(gradient), ε₁)`: the squares are densified before ε₁ is added.
    let regulated: Vec<T> = sp
        .densify(n, |x| x * x)
        .into_iter()
        .map(|x| x + c(epsilon_1))
        .collect();
    let beta_2_t = one - tt.powf(c(beta_2_decay));
    super::adafactor_second_moment(beta_2_t, &regulated, s);
    let u: Vec<T> = sp.elements().map(|(i, x)| x / s.a[i].sqrt()).collect();
    // `mean` of `IndexedSlices` over all axes: Σ values / numel (`numpy.py`, `mean`).
    let ms = u.iter().fold(T::default(), |a, &x| a + x * x) / c(n as f64);
    let den = one.maximum(ms.sqrt() / c(clip_threshold));
    for ((i, _), &ui) in sp.elements().zip(&u) {
        th[i] = th[i] - alpha_t * (ui / den);
    }
}
