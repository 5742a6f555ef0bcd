//! Keras weight constraints: the projection `optimizer.apply` assigns to every trainable
//! variable that has one, right after the update (`keras/src/optimizers/base_optimizer.py`
//! `apply`: "Apply variable constraints after applying gradients";
//! `keras/src/constraints/constraints.py`), with Keras's `backend.epsilon()` = 1e-7:
//!
//! - `MaxNorm`: `w · clip(n, 0, max_value) / (ε + n)`, `n = √Σ w²` over `axis` (keepdims);
//! - `UnitNorm`: `w / (ε + n)`;
//! - `NonNeg`: `max(w, 0)`;
//! - `MinMaxNorm`: `w · (rate · clip(n, min_value, max_value) + (1 − rate) · n) / (ε + n)`.
//!
//! Norms below `max_value` are still scaled by `n / (ε + n)` (slightly below 1), which
//! `torch.renorm` (scale 1 below the bound, `maxnorm / (n + 1e-7)` above) does not do.

use model_ir::Constraint;

use crate::real::Real;

/// Keras `backend.epsilon()`.
pub const KERAS_EPSILON: f64 = 1e-7;

/// Why a constraint cannot be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConstraintError {
    #[error("constraint {0} is not a Keras built-in: its projection cannot be reproduced")]
    Unknown(String),
    #[error("constraint {constraint} names axis {axis} of a variable of shape {shape:?}")]
    Axis {
        constraint: String,
        axis: usize,
        shape: Vec<usize>,
    },
    #[error("a variable of shape {shape:?} holds {len} values")]
    Len { shape: Vec<usize>, len: usize },
}

/// Checks that `c` can be applied to a variable of `shape`.
pub fn check(c: &Constraint, shape: &[usize]) -> Result<(), ConstraintError> {
    if let Constraint::Unknown { class } = c {
        return Err(ConstraintError::Unknown(class.clone()));
    }
    if let Some(&axis) = c.axes().iter().find(|&&a| a >= shape.len()) {
        return Err(ConstraintError::Axis {
            constraint: c.display(),
            axis,
            shape: shape.to_vec(),
        });
    }
    Ok(())
}

/// The Euclidean norm over `axes` for every index of the kept axes, and each element's slot.
fn norms<T: Real>(w: &[T], shape: &[usize], axes: &[usize]) -> (Vec<T>, Vec<usize>) {
    let rank = shape.len();
    // Strides of the kept (non-reduced) axes in the norms array.
    let mut kept_stride = vec![0usize; rank];
    let mut size = 1usize;
    for a in (0..rank).rev() {
        if !axes.contains(&a) {
            kept_stride[a] = size;
            size *= shape[a];
        }
    }
    let mut slot = vec![0usize; w.len()];
    let mut idx = vec![0usize; rank];
    for s in slot.iter_mut() {
        *s = idx.iter().zip(&kept_stride).map(|(i, st)| i * st).sum();
        for a in (0..rank).rev() {
            idx[a] += 1;
            if idx[a] < shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
    let mut sq = vec![T::default(); size];
    for (x, &s) in w.iter().zip(&slot) {
        sq[s] = sq[s] + *x * *x;
    }
    (sq.into_iter().map(Real::sqrt).collect(), slot)
}

/// Applies `c` in place to the row-major values `w` of a variable of `shape`.
pub fn apply<T: Real>(c: &Constraint, shape: &[usize], w: &mut [T]) -> Result<(), ConstraintError> {
    check(c, shape)?;
    let n: usize = shape.iter().product();
    if n != w.len() {
        return Err(ConstraintError::Len {
            shape: shape.to_vec(),
            len: w.len(),
        });
    }
    let eps = T::of(KERAS_EPSILON);
    let clip = |x: T, lo: T, hi: T| x.maximum(lo).minimum(hi);
    let scale = |desired: &dyn Fn(T) -> T, w: &mut [T]| {
        let (norms, slot) = norms(w, shape, c.axes());
        let factor: Vec<T> = norms.iter().map(|&nm| desired(nm) / (eps + nm)).collect();
        for (x, s) in w.iter_mut().zip(slot) {
            *x = *x * factor[s];
        }
    };
    match c {
        Constraint::MaxNorm { max_value, .. } => {
            let m = T::of(*max_value);
            scale(&|nm| clip(nm, T::of(0.0), m), w);
        }
        Constraint::UnitNorm { .. } => {
            // `w / (ε + n)`: the same as scaling by 1 / (ε + n).
            let (norms, slot) = norms(w, shape, c.axes());
            for (x, s) in w.iter_mut().zip(slot) {
                *x = *x / (eps + norms[s]);
            }
        }
        Constraint::NonNeg => {
            for x in w.iter_mut() {
                *x = x.maximum(T::of(0.0));
            }
        }
        Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            ..
        } => {
            let (lo, hi, r) = (T::of(*min_value), T::of(*max_value), T::of(*rate));
            let one_minus = T::of(1.0 - *rate);
            scale(&|nm| r * clip(nm, lo, hi) + one_minus * nm, w);
        }
        Constraint::Unknown { .. } => unreachable!("refused by check"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn max_norm_per_column_of_a_dense_kernel() {
        // (in=2, out=2), axis 0: column norms 5 and 0.5.
        let mut w = vec![3.0, 0.3, 4.0, 0.4];
        let c = Constraint::MaxNorm {
            max_value: 2.0,
            axes: vec![0],
        };
        apply(&c, &[2, 2], &mut w).unwrap();
        let f0 = 2.0 / (1e-7 + 5.0);
        let f1 = 0.5 / (1e-7 + 0.5);
        close(&w, &[3.0 * f0, 0.3 * f1, 4.0 * f0, 0.4 * f1]);
    }

    #[test]
    fn unit_norm_nonneg_minmax() {
        let mut w = vec![3.0, 4.0];
        apply(&Constraint::UnitNorm { axes: vec![0] }, &[2], &mut w).unwrap();
        close(&w, &[3.0 / (5.0 + 1e-7), 4.0 / (5.0 + 1e-7)]);
        let mut w = vec![-1.0, 2.0];
        apply(&Constraint::NonNeg, &[2], &mut w).unwrap();
        close(&w, &[0.0, 2.0]);
        let mut w = vec![3.0, 4.0];
        let c = Constraint::MinMaxNorm {
            min_value: 0.0,
            max_value: 1.0,
            rate: 0.5,
            axes: vec![0],
        };
        apply(&c, &[2], &mut w).unwrap();
        let f = (0.5 * 1.0 + 0.5 * 5.0) / (5.0 + 1e-7);
        close(&w, &[3.0 * f, 4.0 * f]);
        let mut w = vec![1.0f64];
        assert!(
            apply(
                &Constraint::Unknown {
                    class: "Clip".into()
                },
                &[1],
                &mut w
            )
            .is_err()
        );
        assert!(apply(&Constraint::UnitNorm { axes: vec![3] }, &[1], &mut w).is_err());
    }

    #[test]
    fn conv_filter_norms_over_three_axes() {
        // HWIO (1, 1, 2, 2), axes [0, 1, 2]: one norm per output channel.
        let mut w = vec![3.0, 1.0, 4.0, 0.0];
        let c = Constraint::MaxNorm {
            max_value: 1.0,
            axes: vec![0, 1, 2],
        };
        apply(&c, &[1, 1, 2, 2], &mut w).unwrap();
        let f0 = 1.0 / (5.0 + 1e-7);
        let f1 = 1.0 / (1.0 + 1e-7);
        close(&w, &[3.0 * f0, 1.0 * f1, 4.0 * f0, 0.0]);
    }
}
