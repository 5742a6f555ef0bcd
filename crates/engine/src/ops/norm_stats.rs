//! Per-channel statistics helpers shared by the normalizations (BatchNorm, GroupNorm):
//! broadcast shapes, per-channel vectors as arrays, sums over the reduced axes.

use ndarray::{ArrayD, Axis, IxDyn};

use crate::float::Float;

/// `[1, .., ch, .., 1]` with `ch` at `ax`.
pub(crate) fn bcast_shape(rank: usize, ax: usize, ch: usize) -> Vec<usize> {
    let mut s = vec![1; rank];
    s[ax] = ch;
    s
}

/// A per-channel vector as a broadcastable array.
pub(crate) fn to_b<F: Float>(v: &[F], shape: &[usize]) -> ArrayD<F> {
    match ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()) {
        Ok(a) => a,
        Err(e) => panic!("per-channel vector: {e}"),
    }
}

/// Sums over `axes` (descending removal), leaving the kept axis as a vector.
pub(crate) fn sum_over<F: Float>(a: &ArrayD<F>, axes: &[usize]) -> Vec<F> {
    let mut r = a.clone();
    for &ax in axes.iter().rev() {
        r = r.sum_axis(Axis(ax));
    }
    r.iter().copied().collect()
}
