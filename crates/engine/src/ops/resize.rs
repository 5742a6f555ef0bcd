//! General resizing with the ONNX `Resize` semantics (`onnx/reference/ops/op_resize.py`,
//! `_interpolate_1d_along_axis` and `_interpolate_nd`).
//!
//! Separable: the listed axes are resampled one after the other. Along an axis of length `n`
//! resized to `m` with coordinate scale `s` (the given scale, or `m / n` for given sizes),
//! output index `j` has the source coordinate `x` of the coordinate transformation (computed
//! with the real-valued output length `s·n`, as the reference does), a ratio
//! `r = x − ⌊x⌋` (1 when `x` is an integer: the left pixel is preferred), and `k` taps at
//! input indices `⌈x⌉ − k/2 …` (the reference's edge-padded window), clamped into `[0, n)`,
//! with the weights of the mode: nearest `[r rounds down, r rounds up]`, linear `[1 − r, r]`,
//! cubic the four Keys coefficients of `a` (TensorFlow's tabulated variant rounds `r` to the
//! table's step first), and with antialias the linear / cubic kernel
//! stretched by `1/min(s, 1)` and normalised. `exclude_outside` zeroes the weights of taps
//! outside the input and renormalises. `tf_crop_and_resize` outputs whose source lies
//! outside `[0, n − 1]` take the extrapolation value.
//!
//! The result is linear in the input plus a constant, so the VJP applies the transposed taps
//! axis by axis in reverse order (extrapolated outputs pass no gradient).

// The reference's exact tests (a one-element real output length, an integer coordinate) are
// reproduced exactly: a tolerance would move taps.
#![allow(clippy::float_cmp)]

use model_ir::{NearestRounding, ResizeAxis, ResizeCoordinate, ResizeMode};
use ndarray::{ArrayD, Axis, IxDyn};

use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out};
use crate::error::EngineError;
use crate::float::{Float, c};

/// The taps of one output index: `(input index, weight)`, or `None` for the extrapolation
/// value.
pub type Taps = Vec<Option<Vec<(usize, f64)>>>;

#[derive(Debug, Clone)]
pub(crate) struct Resize {
    axes: Vec<ResizeAxis>,
    mode: ResizeMode,
    coordinate: ResizeCoordinate,
    exclude_outside: bool,
    antialias: bool,
}

impl Resize {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        axes: &[ResizeAxis],
        mode: ResizeMode,
        coordinate: ResizeCoordinate,
        exclude_outside: bool,
        antialias: bool,
    ) -> Result<Resize, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        for (k, a) in axes.iter().enumerate() {
            if axes[..k].iter().any(|b| b.axis == a.axis) {
                return Err(cx.invalid(format!("axis {} resized twice", a.axis)));
            }
            match (a.size, a.scale) {
                (None, None) => {
                    return Err(cx.invalid(format!("axis {}: neither a size nor a scale", a.axis)));
                }
                (Some(0), _) => return Err(cx.invalid(format!("axis {}: size 0", a.axis))),
                (_, Some(s)) if !(s.is_finite() && s > 0.0) => {
                    return Err(cx.invalid(format!("axis {}: scale {s}", a.axis)));
                }
                _ => {}
            }
            if !(a.roi.0.is_finite() && a.roi.1.is_finite()) {
                return Err(cx.invalid(format!("axis {}: roi {:?}", a.axis, a.roi)));
            }
        }
        match mode {
            ResizeMode::Cubic(a) if !a.is_finite() => {
                return Err(cx.invalid(format!("cubic coefficient {a}")));
            }
            ResizeMode::CubicTable { a, entries } if !a.is_finite() || entries == 0 => {
                return Err(cx.invalid(format!("cubic table of {entries} entries, a = {a}")));
            }
            ResizeMode::CubicTable { .. } if antialias => {
                return Err(cx.invalid("antialias with a tabulated cubic"));
            }
            ResizeMode::Nearest(_) if antialias => {
                return Err(cx.invalid("antialias with nearest resizing"));
            }
            _ => {}
        }
        if let ResizeCoordinate::TfCropAndResize(v) = coordinate
            && v.is_nan()
        {
            return Err(cx.invalid("extrapolation value NaN"));
        }
        Ok(Resize {
            axes: axes.to_vec(),
            mode,
            coordinate,
            exclude_outside,
            antialias,
        })
    }

    /// Output length and coordinate scale of `a` for an input length `n`.
    fn extent(a: &ResizeAxis, n: usize) -> Result<(usize, f64), String> {
        if n == 0 {
            return Err(format!("resizing the empty axis {}", a.axis));
        }
        let (m, s) = match (a.size, a.scale) {
            (Some(m), Some(s)) => (m, s),
            (Some(m), None) => (m, m as f64 / n as f64),
            (None, Some(s)) => {
                let m = (s * n as f64).floor();
                if !(m >= 1.0 && m <= (1u64 << 40) as f64) {
                    return Err(format!(
                        "axis {} of length {n} scaled by {s} has {m} elements",
                        a.axis
                    ));
                }
                (m as usize, s)
            }
            (None, None) => unreachable!("rejected by compile"),
        };
        Ok((m, s))
    }

    /// Whether the reference skips the axis as an identity (`_interpolate_nd`).
    fn identity(a: &ResizeAxis, n: usize, m: usize, s: f64) -> bool {
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(y.abs());
        close(s, 1.0) && m == n && a.roi.0 == 0.0 && close(a.roi.1, 1.0)
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let mut y = xs[0].to_vec();
        for a in &self.axes {
            let n = *y.get(a.axis).ok_or_else(|| {
                format!("resizes axis {} of a rank-{} input", a.axis, xs[0].len())
            })?;
            y[a.axis] = Self::extent(a, n)?.0;
        }
        Ok(vec![y])
    }

    /// The taps of every output index along an axis of length `n` resized to `m`, scale `s`.
    fn taps(&self, a: &ResizeAxis, n: usize, m: usize, s: f64) -> Taps {
        axis_taps(
            n,
            m,
            s,
            a.roi,
            self.mode,
            self.coordinate,
            self.exclude_outside,
            self.antialias,
        )
    }

    fn fill(&self) -> f64 {
        match self.coordinate {
            ResizeCoordinate::TfCropAndResize(v) => v,
            _ => 0.0,
        }
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        self.infer(&[xs[0].shape()])?;
        let mut y = xs[0].clone();
        for a in &self.axes {
            let n = y.shape()[a.axis];
            let (m, s) = Self::extent(a, n)?;
            if Self::identity(a, n, m, s) {
                continue;
            }
            y = apply(&y, a.axis, &self.taps(a, n, m, s), c(self.fill()));
        }
        Ok(Out::one(y))
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        // The input length of every axis as the forward pass met it.
        let mut shape = cx.xs[0].shape().to_vec();
        let mut steps = Vec::new();
        for a in &self.axes {
            let n = shape[a.axis];
            let Ok((m, s)) = Self::extent(a, n) else {
                // Validated by the forward pass.
                return NodeGrads::input(ArrayD::zeros(IxDyn(cx.xs[0].shape())));
            };
            shape[a.axis] = m;
            if !Self::identity(a, n, m, s) {
                steps.push((a, n, m, s));
            }
        }
        let mut d = cx.dys[0].clone();
        for &(a, n, m, s) in steps.iter().rev() {
            d = apply_t(&d, a.axis, &self.taps(a, n, m, s), n);
        }
        NodeGrads::input(d)
    }
}

/// `y[j] = Σ w·x[i]` over the taps of `j` along `axis`, or `fill`.
fn apply<F: Float>(x: &ArrayD<F>, axis: usize, taps: &Taps, fill: F) -> ArrayD<F> {
    let mut shape = x.shape().to_vec();
    shape[axis] = taps.len();
    let mut y = ArrayD::zeros(IxDyn(&shape));
    for (j, t) in taps.iter().enumerate() {
        let mut dst = y.index_axis_mut(Axis(axis), j);
        match t {
            None => dst.fill(fill),
            Some(t) => {
                for &(i, w) in t {
                    let w: F = c(w);
                    dst.zip_mut_with(&x.index_axis(Axis(axis), i), |d, &v| *d += v * w);
                }
            }
        }
    }
    y
}

/// The transpose of [`apply`] (without the constant): sums `w·dy[j]` into `dx[i]`.
fn apply_t<F: Float>(dy: &ArrayD<F>, axis: usize, taps: &Taps, n: usize) -> ArrayD<F> {
    let mut shape = dy.shape().to_vec();
    shape[axis] = n;
    let mut dx = ArrayD::zeros(IxDyn(&shape));
    for (j, t) in taps.iter().enumerate() {
        let Some(t) = t else { continue };
        let g = dy.index_axis(Axis(axis), j);
        for &(i, w) in t {
            let w: F = c(w);
            dx.index_axis_mut(Axis(axis), i)
                .zip_mut_with(&g, |d, &v| *d += v * w);
        }
    }
    dx
}

/// The source coordinate of output `j` (`None`: extrapolated), following `_compute_x_ori`:
/// `w` is the real-valued output length `s·n`, `m` the integer one.
fn source(
    coord: ResizeCoordinate,
    j: f64,
    n: usize,
    m: usize,
    s: f64,
    roi: (f64, f64),
) -> Option<f64> {
    let nf = n as f64;
    let w = s * nf;
    Some(match coord {
        ResizeCoordinate::AlignCorners if w == 1.0 => 0.0,
        ResizeCoordinate::AlignCorners => j * (nf - 1.0) / (w - 1.0),
        ResizeCoordinate::Asymmetric => j / s,
        ResizeCoordinate::TfCropAndResize(_) => {
            let x = if w == 1.0 {
                (roi.1 - roi.0) * (nf - 1.0) / 2.0
            } else {
                j * (roi.1 - roi.0) * (nf - 1.0) / (w - 1.0)
            } + roi.0 * (nf - 1.0);
            if x < 0.0 || x > nf - 1.0 {
                return None;
            }
            x
        }
        ResizeCoordinate::PytorchHalfPixel if w == 1.0 => -0.5,
        ResizeCoordinate::PytorchHalfPixel | ResizeCoordinate::HalfPixel => (j + 0.5) / s - 0.5,
        ResizeCoordinate::HalfPixelSymmetric => {
            let adjustment = m as f64 / w;
            let offset = nf / 2.0 * (1.0 - adjustment);
            offset + (j + 0.5) / s - 0.5
        }
        ResizeCoordinate::TfHalfPixelForNn => (j + 0.5) / s,
    })
}

/// The Keys cubic convolution kernel with coefficient `a`.
fn cubic(a: f64, x: f64) -> f64 {
    let x = x.abs();
    let (x2, x3) = (x * x, x * x * x);
    if x <= 1.0 {
        (a + 2.0) * x3 - (a + 3.0) * x2 + 1.0
    } else if x < 2.0 {
        a * x3 - 5.0 * a * x2 + 8.0 * a * x - 4.0 * a
    } else {
        0.0
    }
}

/// The weights of the taps of a source coordinate with ratio `r` (`get_coeffs`).
fn coefficients(mode: ResizeMode, antialias: bool, r: f64, s: f64) -> Vec<f64> {
    match mode {
        ResizeMode::Nearest(rounding) => {
            let up = if r == 1.0 {
                true
            } else {
                match rounding {
                    NearestRounding::RoundPreferFloor => r > 0.5,
                    NearestRounding::RoundPreferCeil => r >= 0.5,
                    NearestRounding::Floor => false,
                    NearestRounding::Ceil => true,
                }
            };
            if up { vec![0.0, 1.0] } else { vec![1.0, 0.0] }
        }
        ResizeMode::Linear if antialias => {
            let s = s.min(1.0);
            let start = (-1.0 / s).floor() as i64 + 1;
            let w: Vec<f64> = (start..2 - start)
                .map(|k| (1.0 - ((k as f64 - r) * s).abs()).clamp(0.0, 1.0))
                .collect();
            normalise(w)
        }
        ResizeMode::Linear => vec![1.0 - r, r],
        ResizeMode::Cubic(a) if antialias => {
            let s = s.min(1.0);
            let start = (-2.0 / s).floor() as i64 + 1;
            let w: Vec<f64> = (start..2 - start)
                .map(|k| cubic(a, s * (k as f64 - r)))
                .collect();
            normalise(w)
        }
        ResizeMode::CubicTable { a, entries } => {
            let k = f64::from(entries);
            coefficients(
                ResizeMode::Cubic(a),
                false,
                (r * k).round_ties_even() / k,
                s,
            )
        }
        ResizeMode::Cubic(a) => {
            let (p, q) = (r + 1.0, 2.0 - r);
            vec![
                ((a * p - 5.0 * a) * p + 8.0 * a) * p - 4.0 * a,
                ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
                ((a + 2.0) * (1.0 - r) - (a + 3.0)) * (1.0 - r) * (1.0 - r) + 1.0,
                ((a * q - 5.0 * a) * q + 8.0 * a) * q - 4.0 * a,
            ]
        }
    }
}

fn normalise(w: Vec<f64>) -> Vec<f64> {
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// Every output index's taps along one axis (see the module documentation).
/// Public as `engine::resize_taps`: the diagnosis compares two resizes by their taps.
#[allow(clippy::too_many_arguments)]
pub fn axis_taps(
    n: usize,
    m: usize,
    s: f64,
    roi: (f64, f64),
    mode: ResizeMode,
    coord: ResizeCoordinate,
    exclude_outside: bool,
    antialias: bool,
) -> Taps {
    (0..m)
        .map(|j| {
            let x = source(coord, j as f64, n, m, s, roi)?;
            let fl = x.floor();
            let r = if x == fl { 1.0 } else { x - fl };
            let mut w = coefficients(mode, antialias, r, s);
            let k = w.len() as i64;
            // The reference's window in edge-padded coordinates (an even kernel).
            let pad = (k + 1) / 2;
            let xp = x + pad as f64;
            let p = xp.floor();
            let start = p as i64 + if xp == p { -(k / 2) } else { -(k / 2) + 1 } - pad;
            let idx: Vec<i64> = (start..start + k).collect();
            if exclude_outside {
                for (w, &i) in w.iter_mut().zip(&idx) {
                    if i < 0 || i >= n as i64 {
                        *w = 0.0;
                    }
                }
                let sum: f64 = w.iter().sum();
                if sum != 0.0 {
                    w.iter_mut().for_each(|v| *v /= sum);
                }
            }
            Some(
                idx.iter()
                    .zip(w)
                    .map(|(&i, w)| (i.clamp(0, n as i64 - 1) as usize, w))
                    .collect(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(t: &Taps, n: usize) -> Vec<Vec<f64>> {
        t.iter()
            .map(|t| {
                let mut row = vec![0.0; n];
                for &(i, w) in t.as_ref().unwrap() {
                    row[i] += w;
                }
                row
            })
            .collect()
    }

    #[test]
    fn half_pixel_linear_upsampling_by_two() {
        let t = axis_taps(
            2,
            4,
            2.0,
            (0.0, 1.0),
            ResizeMode::Linear,
            ResizeCoordinate::HalfPixel,
            false,
            false,
        );
        let want = [[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]];
        for (got, want) in dense(&t, 2).iter().zip(want) {
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn nearest_prefers_the_rule_at_halves() {
        // Asymmetric ×2 of 3: x = j/2; round_prefer_ceil reads 0, 1, 1, 2, 2, 2.
        let t = axis_taps(
            3,
            6,
            2.0,
            (0.0, 1.0),
            ResizeMode::Nearest(NearestRounding::RoundPreferCeil),
            ResizeCoordinate::Asymmetric,
            false,
            false,
        );
        let read: Vec<usize> = dense(&t, 3)
            .iter()
            .map(|r| r.iter().position(|&w| w == 1.0).unwrap())
            .collect();
        assert_eq!(read, [0, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn weights_sum_to_one_in_every_mode() {
        for mode in [
            ResizeMode::Linear,
            ResizeMode::Cubic(-0.75),
            ResizeMode::Cubic(-0.5),
        ] {
            for aa in [false, true] {
                for ex in [false, true] {
                    for (n, m) in [(4, 3), (5, 11), (7, 2), (1, 3)] {
                        let s = m as f64 / n as f64;
                        let t = axis_taps(
                            n,
                            m,
                            s,
                            (0.0, 1.0),
                            mode,
                            ResizeCoordinate::HalfPixel,
                            ex,
                            aa,
                        );
                        for row in dense(&t, n) {
                            let sum: f64 = row.iter().sum();
                            assert!((sum - 1.0).abs() < 1e-12, "{mode:?} {aa} {ex} {n}->{m}");
                        }
                    }
                }
            }
        }
    }
}
