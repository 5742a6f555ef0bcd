//! Helpers shared by the op modules: axis normalization, broadcasting, matrix views and GEMM.

use std::borrow::Cow;

use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewMut2, Axis, IxDyn, linalg};

use crate::float::Float;

/// Resolves a possibly negative axis against a rank.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(format!("axis {axis} is out of range for rank {rank}"));
    }
    Ok(a as usize)
}

/// Resolves a list of axes, sorted and deduplicated.
pub(crate) fn norm_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, String> {
    let mut out = axes
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// NumPy broadcasting of two shapes.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return Err(format!("shapes {a:?} and {b:?} do not broadcast"));
        };
    }
    Ok(out)
}

/// Broadcasts `a` to `shape` as an owned standard-layout array.
pub(crate) fn broadcast_to<F: Float>(a: &ArrayD<F>, shape: &[usize]) -> ArrayD<F> {
    match a.broadcast(IxDyn(shape)) {
        Some(v) => v.to_owned(),
        None => panic!(
            "shape {:?} was checked to broadcast to {shape:?}",
            a.shape()
        ),
    }
}

/// Sums a gradient of a broadcast result back to the operand's shape.
pub(crate) fn unbroadcast<F: Float>(g: ArrayD<F>, shape: &[usize]) -> ArrayD<F> {
    if g.shape() == shape {
        return g;
    }
    let mut g = g;
    while g.ndim() > shape.len() {
        g = g.sum_axis(Axis(0));
    }
    for (i, &d) in shape.iter().enumerate() {
        if d == 1 && g.shape()[i] != 1 {
            g = g.sum_axis(Axis(i)).insert_axis(Axis(i));
        }
    }
    g
}

/// A standard-layout (row-major contiguous) copy, or the array itself when already so.
pub(crate) fn standard<F: Float>(a: ArrayD<F>) -> ArrayD<F> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// The array itself when it is standard layout, else a standard-layout copy.
pub(crate) fn std_ref<F: Float>(a: &ArrayD<F>) -> Cow<'_, ArrayD<F>> {
    if a.is_standard_layout() {
        Cow::Borrowed(a)
    } else {
        Cow::Owned(a.as_standard_layout().into_owned())
    }
}

/// Views a standard-layout array as a matrix `(len / cols, cols)`.
pub(crate) fn mat<F: Float>(a: &ArrayD<F>, cols: usize) -> ArrayView2<'_, F> {
    let rows = a.len().checked_div(cols).unwrap_or(0);
    match a.view().into_shape_with_order((rows, cols)) {
        Ok(v) => v,
        Err(e) => panic!("array of shape {:?} viewed as (_, {cols}): {e}", a.shape()),
    }
}

/// `a · b` through ndarray's GEMM (matrixmultiply for f32/f64).
pub(crate) fn matmul<F: Float>(a: &ArrayView2<'_, F>, b: &ArrayView2<'_, F>) -> Array2<F> {
    a.dot(b)
}

/// `c ← alpha · a · b + beta · c`.
pub(crate) fn gemm<F: Float>(
    alpha: F,
    a: &ArrayView2<'_, F>,
    b: &ArrayView2<'_, F>,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) {
    linalg::general_mat_mul(alpha, a, b, beta, c);
}

/// An owned matrix as a dynamic-rank array of `shape` (same element count).
pub(crate) fn from_mat<F: Float>(m: Array2<F>, shape: &[usize]) -> ArrayD<F> {
    let m = if m.is_standard_layout() {
        m
    } else {
        m.as_standard_layout().into_owned()
    };
    match m.into_shape_with_order(IxDyn(shape)) {
        Ok(v) => v,
        Err(e) => panic!("matrix reshaped to {shape:?}: {e}"),
    }
}

/// Reshapes a standard-layout array (cheap) or a copy of it.
pub(crate) fn reshape<F: Float>(a: ArrayD<F>, shape: &[usize]) -> ArrayD<F> {
    let a = standard(a);
    let from = a.shape().to_vec();
    match a.into_shape_with_order(IxDyn(shape)) {
        Ok(v) => v,
        Err(e) => panic!("reshape {from:?} -> {shape:?}: {e}"),
    }
}

/// Permutes axes and returns a standard-layout copy. Moving the channel axis between
/// position 1 and last (the layout changes of every spatial op) takes a blocked fast path.
pub(crate) fn permuted<F: Float>(a: &ArrayD<F>, perm: &[usize]) -> ArrayD<F> {
    let rank = a.ndim();
    if rank >= 3
        && let Some(src) = a.as_slice()
    {
        let shape = a.shape();
        let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
        let n = shape[0];
        let fast = if perm == to_last_perm(rank).as_slice() {
            // (N, C, S) → (N, S, C)
            Some(batched_transpose(
                src,
                n,
                shape[1],
                shape[2..].iter().product(),
            ))
        } else if perm == to_first_perm(rank).as_slice() {
            // (N, S, C) → (N, C, S)
            Some(batched_transpose(
                src,
                n,
                shape[1..rank - 1].iter().product(),
                shape[rank - 1],
            ))
        } else {
            None
        };
        if let Some(v) = fast {
            return match ArrayD::from_shape_vec(IxDyn(&out_shape), v) {
                Ok(r) => r,
                Err(e) => panic!("transpose: {e}"),
            };
        }
    }
    a.view()
        .permuted_axes(IxDyn(perm))
        .as_standard_layout()
        .into_owned()
}

/// For each of `n` row-major `(r, c)` matrices in `src`, its `(c, r)` transpose.
fn batched_transpose<F: Float>(src: &[F], n: usize, r: usize, c: usize) -> Vec<F> {
    const T: usize = 32;
    let mut out = vec![F::zero(); src.len()];
    for b in 0..n {
        let s = &src[b * r * c..(b + 1) * r * c];
        let o = &mut out[b * r * c..(b + 1) * r * c];
        for i0 in (0..r).step_by(T) {
            for j0 in (0..c).step_by(T) {
                for i in i0..(i0 + T).min(r) {
                    for j in j0..(j0 + T).min(c) {
                        o[j * r + i] = s[i * c + j];
                    }
                }
            }
        }
    }
    out
}

/// The inverse of a permutation.
pub(crate) fn inverse_perm(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// `[0, 2, 3, ..., 1]`: channels-first → channels-last for a tensor of `rank` axes.
pub(crate) fn to_last_perm(rank: usize) -> Vec<usize> {
    let mut p = vec![0];
    p.extend(2..rank);
    p.push(1);
    p
}

/// `[0, rank-1, 1, 2, ...]`: channels-last → channels-first.
pub(crate) fn to_first_perm(rank: usize) -> Vec<usize> {
    let mut p = vec![0, rank - 1];
    p.extend(1..rank - 1);
    p
}

/// Numerically stable logistic function.
pub(crate) fn sigmoid<F: Float>(x: F) -> F {
    if x >= F::zero() {
        F::one() / (F::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (F::one() + e)
    }
}

/// `log(1 + exp(x))` without overflow.
pub(crate) fn softplus<F: Float>(x: F) -> F {
    if x > F::zero() {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Builds a new array whose slice `j` along `axis` is slice `map[j]` of `x` (`None` → `fill`).
pub(crate) fn gather_axis<F: Float>(
    x: &ArrayD<F>,
    axis: usize,
    map: &[Option<usize>],
    fill: F,
) -> ArrayD<F> {
    let mut shape = x.shape().to_vec();
    shape[axis] = map.len();
    let mut y = ArrayD::from_elem(IxDyn(&shape), fill);
    for (j, src) in map.iter().enumerate() {
        if let Some(i) = src {
            y.index_axis_mut(Axis(axis), j)
                .assign(&x.index_axis(Axis(axis), *i));
        }
    }
    y
}

/// The transpose of [`gather_axis`]: sums slice `j` of `dy` into slice `map[j]` of a zero
/// array with `n` entries along `axis`.
pub(crate) fn scatter_axis<F: Float>(
    dy: &ArrayD<F>,
    axis: usize,
    map: &[Option<usize>],
    n: usize,
) -> ArrayD<F> {
    let mut shape = dy.shape().to_vec();
    shape[axis] = n;
    let mut dx = ArrayD::zeros(IxDyn(&shape));
    for (j, src) in map.iter().enumerate() {
        if let Some(i) = src {
            let mut d = dx.index_axis_mut(Axis(axis), *i);
            d += &dy.index_axis(Axis(axis), j);
        }
    }
    dx
}

/// Linear interpolation along `axis`: slice `j` = `(1 − λ)·x[i0] + λ·x[i1]` for `(i0, i1, λ)`.
pub(crate) fn lerp_axis<F: Float>(
    x: &ArrayD<F>,
    axis: usize,
    taps: &[(usize, usize, F)],
) -> ArrayD<F> {
    let mut shape = x.shape().to_vec();
    shape[axis] = taps.len();
    let mut y = ArrayD::zeros(IxDyn(&shape));
    for (j, &(i0, i1, l)) in taps.iter().enumerate() {
        let a = x.index_axis(Axis(axis), i0);
        let b = x.index_axis(Axis(axis), i1);
        let mut dst = y.index_axis_mut(Axis(axis), j);
        dst.zip_mut_with(&a, |d, &v| *d = v * (F::one() - l));
        dst.zip_mut_with(&b, |d, &v| *d += v * l);
    }
    y
}

/// The transpose of [`lerp_axis`].
pub(crate) fn lerp_axis_t<F: Float>(
    dy: &ArrayD<F>,
    axis: usize,
    taps: &[(usize, usize, F)],
    n: usize,
) -> ArrayD<F> {
    let mut shape = dy.shape().to_vec();
    shape[axis] = n;
    let mut dx = ArrayD::zeros(IxDyn(&shape));
    for (j, &(i0, i1, l)) in taps.iter().enumerate() {
        let g = dy.index_axis(Axis(axis), j);
        dx.index_axis_mut(Axis(axis), i0)
            .zip_mut_with(&g, |d, &v| *d += v * (F::one() - l));
        dx.index_axis_mut(Axis(axis), i1)
            .zip_mut_with(&g, |d, &v| *d += v * l);
    }
    dx
}
