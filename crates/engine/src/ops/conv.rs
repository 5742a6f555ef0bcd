//! Convolution (1-D, 2-D, 3-D; groups, strides, dilation, every padding rule, both layouts) via
//! im2col + GEMM; the shared core also runs DepthwiseConv and SeparableConv.
//!
//! Forward (cross-correlation, as both frameworks compute it; no kernel flip):
//! `y[n, o, c_out] = b[c_out] + Σ_{q, c} x[n, o·s + q·d − pad_b, g·C_g + c] · W[q, c, c_out]`
//! for `c_out` in group `g`, zero outside the input. Positions and pads per [`super::window`]
//! (TF `'same'` puts the extra pad at the end: `SameUpper`; Keras `'causal'` pads `(k−1)·d` at the
//! start). Computation: im2col on channels-last data with group-major columns `(g, q, c)`, then
//! one GEMM per group: `Y_g = cols_g · W_g`, `W` canonical `(K·C_g, C_out)`.
//!
//! VJP: `dW_g = cols_gᵀ · dY_g`, `dcols_g = dY_g · W_gᵀ` scattered back (col2im) into `dx`,
//! `db = Σ dY`. The fused activation's VJP runs first.
//!
//! Weights: Keras `(*k, C_in/g, C_out)` (`keras/src/layers/convolutional/base_conv.py`) is the
//! canonical order as is; PyTorch `(C_out, C_in/g, *k)` (`torch/nn/modules/conv.py`) is permuted
//! to it, and its gradient permuted back.

use std::borrow::Cow;

use model_ir::{Activation, DataLayout, Padding, ParamLayout, ParamRole};
use ndarray::{Array2, ArrayD, Axis, IxDyn, s};

use super::activation;
use super::util::{
    from_mat, gemm, inverse_perm, mat, permuted, standard, std_ref, to_first_perm, to_last_perm,
};
use super::window::{PAD, Window};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes, Saved};
use crate::error::EngineError;
use crate::float::Float;

/// Axis order of a stored convolution kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KernelOrder {
    /// `(*k, C_in/g, C_out)`: Keras, and the canonical order.
    SpatialInOut,
    /// `(C_out, C_in/g, *k)`: PyTorch / ONNX.
    OutInSpatial,
}

impl KernelOrder {
    pub(crate) fn of(
        cx: &NodeCx<'_>,
        layout: &ParamLayout,
        rank: usize,
    ) -> Result<Self, EngineError> {
        match layout {
            ParamLayout::ConvSpatialInOut { rank: r }
            | ParamLayout::DepthwiseSpatialInMult { rank: r }
                if *r == rank =>
            {
                Ok(KernelOrder::SpatialInOut)
            }
            ParamLayout::ConvOutInSpatial { rank: r }
            | ParamLayout::DepthwiseOutOneSpatial { rank: r }
                if *r == rank =>
            {
                Ok(KernelOrder::OutInSpatial)
            }
            other => Err(cx.unsupported(format!(
                "kernel layout {} for a rank-{rank} convolution",
                other.describe()
            ))),
        }
    }

    /// Shape `(K, C_g, C_out)` of the canonical kernel, from the stored shape.
    pub(crate) fn canonical_dims(
        self,
        shape: &[usize],
        rank: usize,
    ) -> Option<(usize, usize, usize)> {
        if shape.len() != rank + 2 {
            return None;
        }
        match self {
            KernelOrder::SpatialInOut => {
                Some((shape[..rank].iter().product(), shape[rank], shape[rank + 1]))
            }
            KernelOrder::OutInSpatial => Some((shape[2..].iter().product(), shape[1], shape[0])),
        }
    }

    /// Spatial kernel size from the stored shape.
    pub(crate) fn spatial(self, shape: &[usize], rank: usize) -> Vec<usize> {
        match self {
            KernelOrder::SpatialInOut => shape[..rank].to_vec(),
            KernelOrder::OutInSpatial => shape[2..].to_vec(),
        }
    }

    fn perm(self, rank: usize) -> Option<Vec<usize>> {
        match self {
            KernelOrder::SpatialInOut => None,
            KernelOrder::OutInSpatial => {
                let mut p: Vec<usize> = (2..rank + 2).collect();
                p.extend([1, 0]);
                Some(p)
            }
        }
    }

    /// The stored kernel as the canonical matrix `(K·C_g, C_out)`.
    pub(crate) fn to_canonical<F: Float>(self, w: &ArrayD<F>, rank: usize) -> Array2<F> {
        let (k, cg, co) = match self.canonical_dims(w.shape(), rank) {
            Some(d) => d,
            None => panic!("kernel shape {:?} was validated", w.shape()),
        };
        let a = match self.perm(rank) {
            None => standard(w.clone()),
            Some(p) => permuted(w, &p),
        };
        match a.into_shape_with_order((k * cg, co)) {
            Ok(m) => m,
            Err(e) => panic!("canonical kernel: {e}"),
        }
    }

    /// A canonical-matrix gradient back in the stored order and shape.
    pub(crate) fn canonical_to_stored<F: Float>(
        self,
        dw: Array2<F>,
        stored: &[usize],
        rank: usize,
    ) -> ArrayD<F> {
        match self.perm(rank) {
            None => from_mat(dw, stored),
            Some(p) => {
                let canon_shape: Vec<usize> = p.iter().map(|&i| stored[i]).collect();
                let a = from_mat(dw, &canon_shape);
                permuted(&a, &inverse_perm(&p))
            }
        }
    }
}

/// Geometry of a grouped convolution, shared by Conv, DepthwiseConv and SeparableConv.
#[derive(Debug, Clone)]
pub(crate) struct ConvCore {
    pub(crate) rank: usize,
    pub(crate) kernel_size: Vec<usize>,
    pub(crate) strides: Vec<usize>,
    pub(crate) dilation: Vec<usize>,
    pub(crate) padding: Padding,
    pub(crate) layout: DataLayout,
}

impl ConvCore {
    pub(crate) fn new(
        cx: &NodeCx<'_>,
        rank: usize,
        kernel_size: &[usize],
        strides: &[usize],
        dilation: &[usize],
        padding: &Padding,
        layout: DataLayout,
    ) -> Result<ConvCore, EngineError> {
        if !(1..=3).contains(&rank) {
            return Err(cx.unsupported(format!("rank {rank} (1 to 3 are supported)")));
        }
        let fix = |v: &[usize], name: &str| -> Result<Vec<usize>, EngineError> {
            match v.len() {
                0 => Ok(vec![1; rank]),
                1 => Ok(vec![v[0]; rank]),
                n if n == rank => Ok(v.to_vec()),
                n => Err(cx.invalid(format!("{name} has {n} entries for rank {rank}"))),
            }
        };
        let kernel_size = fix(kernel_size, "kernel_size")?;
        let strides = fix(strides, "strides")?;
        let dilation = fix(dilation, "dilation")?;
        if kernel_size
            .iter()
            .chain(&strides)
            .chain(&dilation)
            .any(|&v| v == 0)
        {
            return Err(cx.invalid("kernel_size, strides and dilation must be positive"));
        }
        if let Padding::Explicit { begin, end } = padding
            && (begin.len() != rank || end.len() != rank)
        {
            return Err(cx.invalid(format!("explicit pads {begin:?}/{end:?} for rank {rank}")));
        }
        if matches!(padding, Padding::Causal) && rank != 1 {
            return Err(cx.unsupported("causal padding on a convolution of rank > 1"));
        }
        Ok(ConvCore {
            rank,
            kernel_size,
            strides,
            dilation,
            padding: padding.clone(),
            layout,
        })
    }

    /// `(N, spatial, C)` of an input shape.
    pub(crate) fn split<'s>(&self, x: &'s [usize]) -> Result<(usize, &'s [usize], usize), String> {
        if x.len() != self.rank + 2 {
            return Err(format!(
                "expects a rank-{} input (batch, {} spatial, channels), got shape {x:?}",
                self.rank + 2,
                self.rank
            ));
        }
        Ok(match self.layout {
            DataLayout::ChannelsLast => (x[0], &x[1..=self.rank], x[self.rank + 1]),
            DataLayout::ChannelsFirst => (x[0], &x[2..], x[1]),
        })
    }

    pub(crate) fn window(&self, in_sp: &[usize]) -> Result<Window, String> {
        Window::new(
            &self.padding,
            in_sp,
            &self.kernel_size,
            &self.strides,
            &self.dilation,
            false,
        )
    }

    /// Output shape in the op's layout.
    pub(crate) fn out_shape(&self, n: usize, out_sp: &[usize], c: usize) -> Vec<usize> {
        let mut v = vec![n];
        match self.layout {
            DataLayout::ChannelsLast => {
                v.extend(out_sp);
                v.push(c);
            }
            DataLayout::ChannelsFirst => {
                v.push(c);
                v.extend(out_sp);
            }
        }
        v
    }

    /// The input as channels-last standard layout.
    pub(crate) fn to_cl<'a, F: Float>(&self, x: &'a ArrayD<F>) -> Cow<'a, ArrayD<F>> {
        match self.layout {
            DataLayout::ChannelsLast => std_ref(x),
            DataLayout::ChannelsFirst => Cow::Owned(permuted(x, &to_last_perm(x.ndim()))),
        }
    }

    /// A channels-last result back in the op's layout.
    pub(crate) fn cl_to_layout<F: Float>(&self, y: ArrayD<F>) -> ArrayD<F> {
        match self.layout {
            DataLayout::ChannelsLast => y,
            DataLayout::ChannelsFirst => permuted(&y, &to_first_perm(y.ndim())),
        }
    }
}

/// Rows of the im2col matrix processed at once (bounds memory; whole samples per chunk).
const CHUNK_ROWS: usize = 4096;

fn samples_per_chunk(n: usize, p: usize) -> usize {
    (CHUNK_ROWS / p.max(1)).clamp(1, n.max(1))
}

/// Grouped convolution on channels-last data.
///
/// `x`: `(N, *in, C_in)` standard layout; `w`: canonical `(K·C_g, C_out)`; returns
/// `(N, *out, C_out)`.
pub(crate) fn forward_cl<F: Float>(
    x: &ArrayD<F>,
    w: &Array2<F>,
    groups: usize,
    win: &Window,
) -> ArrayD<F> {
    let n = x.shape()[0];
    let cin = *x.shape().last().unwrap_or(&0);
    let cout = w.ncols();
    let cg = cin / groups;
    let og = cout / groups;
    let kk = win.k_size();
    let p = win.out_size();
    let sp = win.in_size();
    let mut out_shape = vec![n];
    out_shape.extend(&win.out_sp);
    out_shape.push(cout);
    let mut y = ArrayD::<F>::zeros(IxDyn(&out_shape));
    let xs = match x.as_slice() {
        Some(s) => s,
        None => panic!("conv input must be standard layout"),
    };
    let table = win.table();
    if cg == 1 && groups > 1 {
        depthwise_forward(xs, w, groups, og, kk, p, sp, n, &table, y.as_slice_mut());
        return y;
    }
    let ys = match y.as_slice_mut() {
        Some(s) => s,
        None => panic!("fresh array is standard layout"),
    };
    let identity = is_pointwise(win);
    let nb = samples_per_chunk(n, p);
    let cols_w = groups * kk * cg;
    let mut cols = vec![F::zero(); if identity { 0 } else { nb * p * cols_w }];
    let mut n0 = 0;
    while n0 < n {
        let m = nb.min(n - n0);
        let rows = m * p;
        let ychunk = &mut ys[n0 * p * cout..(n0 + m) * p * cout];
        let mut yv = match ndarray::ArrayViewMut2::from_shape((rows, cout), ychunk) {
            Ok(v) => v,
            Err(e) => panic!("conv output chunk: {e}"),
        };
        let cview = if identity {
            match ndarray::ArrayView2::from_shape(
                (rows, cin),
                &xs[n0 * sp * cin..(n0 + m) * sp * cin],
            ) {
                Ok(v) => v,
                Err(e) => panic!("pointwise input chunk: {e}"),
            }
        } else {
            im2col(
                xs,
                n0,
                m,
                sp,
                cin,
                groups,
                kk,
                p,
                &table,
                &mut cols[..rows * cols_w],
            );
            match ndarray::ArrayView2::from_shape((rows, cols_w), &cols[..rows * cols_w]) {
                Ok(v) => v,
                Err(e) => panic!("im2col chunk: {e}"),
            }
        };
        for g in 0..groups {
            let a = cview.slice(s![.., g * kk * cg..(g + 1) * kk * cg]);
            let b = w.slice(s![.., g * og..(g + 1) * og]);
            let mut c = yv.slice_mut(s![.., g * og..(g + 1) * og]);
            gemm(F::one(), &a, &b, F::zero(), &mut c);
        }
        n0 += m;
    }
    y
}

/// Gradient of [`forward_cl`]: returns `(dx, dw)` with `dx` `(N, *in, C_in)` and `dw` canonical.
pub(crate) fn backward_cl<F: Float>(
    x: &ArrayD<F>,
    w: &Array2<F>,
    groups: usize,
    win: &Window,
    dy: &ArrayD<F>,
) -> (ArrayD<F>, Array2<F>) {
    let n = x.shape()[0];
    let cin = *x.shape().last().unwrap_or(&0);
    let cout = w.ncols();
    let cg = cin / groups;
    let og = cout / groups;
    let kk = win.k_size();
    let p = win.out_size();
    let sp = win.in_size();
    let mut dx = ArrayD::<F>::zeros(x.raw_dim());
    let mut dw = Array2::<F>::zeros(w.raw_dim());
    let xs = match x.as_slice() {
        Some(s) => s,
        None => panic!("conv input must be standard layout"),
    };
    let dy = std_ref(dy);
    let dys = match dy.as_slice() {
        Some(s) => s,
        None => panic!("standard layout"),
    };
    let table = win.table();
    if cg == 1 && groups > 1 {
        let dxs = match dx.as_slice_mut() {
            Some(s) => s,
            None => panic!("fresh array is standard layout"),
        };
        depthwise_backward(xs, w, groups, og, kk, p, sp, n, &table, dys, dxs, &mut dw);
        return (dx, dw);
    }
    let identity = is_pointwise(win);
    let nb = samples_per_chunk(n, p);
    let cols_w = groups * kk * cg;
    let mut cols = vec![F::zero(); nb * p * cols_w];
    let mut dcols = vec![F::zero(); nb * p * cols_w];
    let dxs = match dx.as_slice_mut() {
        Some(s) => s,
        None => panic!("fresh array is standard layout"),
    };
    let mut n0 = 0;
    while n0 < n {
        let m = nb.min(n - n0);
        let rows = m * p;
        let dyv = match ndarray::ArrayView2::from_shape(
            (rows, cout),
            &dys[n0 * p * cout..(n0 + m) * p * cout],
        ) {
            Ok(v) => v,
            Err(e) => panic!("dy chunk: {e}"),
        };
        let cview = if identity {
            match ndarray::ArrayView2::from_shape(
                (rows, cin),
                &xs[n0 * sp * cin..(n0 + m) * sp * cin],
            ) {
                Ok(v) => v,
                Err(e) => panic!("pointwise chunk: {e}"),
            }
        } else {
            im2col(
                xs,
                n0,
                m,
                sp,
                cin,
                groups,
                kk,
                p,
                &table,
                &mut cols[..rows * cols_w],
            );
            match ndarray::ArrayView2::from_shape((rows, cols_w), &cols[..rows * cols_w]) {
                Ok(v) => v,
                Err(e) => panic!("im2col chunk: {e}"),
            }
        };
        {
            let mut dcv = match ndarray::ArrayViewMut2::from_shape(
                (rows, cols_w),
                &mut dcols[..rows * cols_w],
            ) {
                Ok(v) => v,
                Err(e) => panic!("dcols chunk: {e}"),
            };
            for g in 0..groups {
                let a = cview.slice(s![.., g * kk * cg..(g + 1) * kk * cg]);
                let d = dyv.slice(s![.., g * og..(g + 1) * og]);
                let mut dwg = dw.slice_mut(s![.., g * og..(g + 1) * og]);
                gemm(F::one(), &a.t(), &d, F::one(), &mut dwg);
                let wg = w.slice(s![.., g * og..(g + 1) * og]);
                let mut dc = dcv.slice_mut(s![.., g * kk * cg..(g + 1) * kk * cg]);
                gemm(F::one(), &d, &wg.t(), F::zero(), &mut dc);
            }
        }
        if identity {
            dxs[n0 * sp * cin..(n0 + m) * sp * cin].copy_from_slice(&dcols[..rows * cols_w]);
        } else {
            col2im(
                &dcols[..rows * cols_w],
                n0,
                m,
                sp,
                cin,
                groups,
                kk,
                p,
                &table,
                dxs,
            );
        }
        n0 += m;
    }
    (dx, dw)
}

/// 1×1 kernel, stride 1, no padding: the im2col matrix is the input itself.
fn is_pointwise(win: &Window) -> bool {
    win.k.iter().all(|&k| k == 1)
        && win.s.iter().all(|&s| s == 1)
        && win.pad_b.iter().all(|&p| p == 0)
        && win.out_sp == win.in_sp
}

#[allow(clippy::too_many_arguments)]
fn im2col<F: Float>(
    x: &[F],
    n0: usize,
    m: usize,
    sp: usize,
    cin: usize,
    groups: usize,
    kk: usize,
    p: usize,
    table: &[usize],
    cols: &mut [F],
) {
    let cg = cin / groups;
    let cols_w = groups * kk * cg;
    for b in 0..m {
        let xb = &x[(n0 + b) * sp * cin..(n0 + b + 1) * sp * cin];
        for pi in 0..p {
            let row = &mut cols[(b * p + pi) * cols_w..(b * p + pi + 1) * cols_w];
            let trow = &table[pi * kk..(pi + 1) * kk];
            for g in 0..groups {
                for (q, &src) in trow.iter().enumerate() {
                    let dst = &mut row[g * kk * cg + q * cg..g * kk * cg + (q + 1) * cg];
                    if src == PAD {
                        dst.iter_mut().for_each(|v| *v = F::zero());
                    } else if cg == 1 {
                        dst[0] = xb[src * cin + g];
                    } else {
                        dst.copy_from_slice(&xb[src * cin + g * cg..src * cin + (g + 1) * cg]);
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn col2im<F: Float>(
    dcols: &[F],
    n0: usize,
    m: usize,
    sp: usize,
    cin: usize,
    groups: usize,
    kk: usize,
    p: usize,
    table: &[usize],
    dx: &mut [F],
) {
    let cg = cin / groups;
    let cols_w = groups * kk * cg;
    for b in 0..m {
        let dxb = &mut dx[(n0 + b) * sp * cin..(n0 + b + 1) * sp * cin];
        for pi in 0..p {
            let row = &dcols[(b * p + pi) * cols_w..(b * p + pi + 1) * cols_w];
            let trow = &table[pi * kk..(pi + 1) * kk];
            for g in 0..groups {
                for (q, &src) in trow.iter().enumerate() {
                    if src == PAD {
                        continue;
                    }
                    let from = &row[g * kk * cg + q * cg..g * kk * cg + (q + 1) * cg];
                    let to = &mut dxb[src * cin + g * cg..src * cin + (g + 1) * cg];
                    for (t, &f) in to.iter_mut().zip(from) {
                        *t += f;
                    }
                }
            }
        }
    }
}

/// Direct loop for `C_g = 1` (depthwise): `y[n,p,g·M+m] = Σ_q x[n, t(p,q), g] · W[q, g·M+m]`.
#[allow(clippy::too_many_arguments)]
fn depthwise_forward<F: Float>(
    x: &[F],
    w: &Array2<F>,
    groups: usize,
    mult: usize,
    kk: usize,
    p: usize,
    sp: usize,
    n: usize,
    table: &[usize],
    y: Option<&mut [F]>,
) {
    let y = match y {
        Some(y) => y,
        None => panic!("fresh array is standard layout"),
    };
    let w = standard_mat(w);
    let ws = match w.as_slice() {
        Some(s) => s,
        None => panic!("standard layout"),
    };
    let cout = groups * mult;
    for b in 0..n {
        let xb = &x[b * sp * groups..(b + 1) * sp * groups];
        for pi in 0..p {
            let yrow = &mut y[(b * p + pi) * cout..(b * p + pi + 1) * cout];
            for (q, &src) in table[pi * kk..(pi + 1) * kk].iter().enumerate() {
                if src == PAD {
                    continue;
                }
                let xrow = &xb[src * groups..(src + 1) * groups];
                let wrow = &ws[q * cout..(q + 1) * cout];
                if mult == 1 {
                    for ((yv, &xv), &wv) in yrow.iter_mut().zip(xrow).zip(wrow) {
                        *yv += xv * wv;
                    }
                } else {
                    for (g, &xv) in xrow.iter().enumerate() {
                        for m in 0..mult {
                            yrow[g * mult + m] += xv * wrow[g * mult + m];
                        }
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn depthwise_backward<F: Float>(
    x: &[F],
    w: &Array2<F>,
    groups: usize,
    mult: usize,
    kk: usize,
    p: usize,
    sp: usize,
    n: usize,
    table: &[usize],
    dy: &[F],
    dx: &mut [F],
    dw: &mut Array2<F>,
) {
    let w = standard_mat(w);
    let ws = match w.as_slice() {
        Some(s) => s,
        None => panic!("standard layout"),
    };
    let dws = match dw.as_slice_mut() {
        Some(s) => s,
        None => panic!("fresh array is standard layout"),
    };
    let cout = groups * mult;
    for b in 0..n {
        let xb = &x[b * sp * groups..(b + 1) * sp * groups];
        let dxb = &mut dx[b * sp * groups..(b + 1) * sp * groups];
        for pi in 0..p {
            let dyrow = &dy[(b * p + pi) * cout..(b * p + pi + 1) * cout];
            for (q, &src) in table[pi * kk..(pi + 1) * kk].iter().enumerate() {
                if src == PAD {
                    continue;
                }
                let wrow = &ws[q * cout..(q + 1) * cout];
                let dwrow = &mut dws[q * cout..(q + 1) * cout];
                for g in 0..groups {
                    let xv = xb[src * groups + g];
                    let mut acc = F::zero();
                    for m in 0..mult {
                        let o = g * mult + m;
                        dwrow[o] += xv * dyrow[o];
                        acc += wrow[o] * dyrow[o];
                    }
                    dxb[src * groups + g] += acc;
                }
            }
        }
    }
}

fn standard_mat<F: Float>(w: &Array2<F>) -> Array2<F> {
    if w.is_standard_layout() {
        w.clone()
    } else {
        w.as_standard_layout().into_owned()
    }
}

/// Adds a per-channel bias along the last axis of a channels-last array.
pub(crate) fn add_bias_cl<F: Float>(y: &mut ArrayD<F>, b: &ArrayD<F>) {
    let c = b.len();
    let bs = match b.as_slice() {
        Some(s) => s.to_vec(),
        None => b.iter().copied().collect(),
    };
    if let Some(ys) = y.as_slice_mut() {
        for row in ys.chunks_mut(c) {
            for (v, &bv) in row.iter_mut().zip(&bs) {
                *v += bv;
            }
        }
    }
}

/// `Σ dY` over every axis except the last (channels-last bias gradient).
pub(crate) fn bias_grad_cl<F: Float>(dy: &ArrayD<F>) -> ArrayD<F> {
    let c = *dy.shape().last().unwrap_or(&0);
    let m = mat(dy, c);
    m.sum_axis(Axis(0)).into_dyn()
}

/// Regular (optionally grouped) convolution.
#[derive(Debug, Clone)]
pub(crate) struct Conv {
    pub(crate) core: ConvCore,
    pub(crate) filters: usize,
    pub(crate) groups: usize,
    pub(crate) kernel: String,
    pub(crate) order: KernelOrder,
    pub(crate) bias: Option<String>,
    pub(crate) activation: Activation,
}

impl Conv {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        rank: usize,
        filters: usize,
        kernel_size: &[usize],
        strides: &[usize],
        dilation: &[usize],
        groups: usize,
        padding: &Padding,
        layout: DataLayout,
        use_bias: bool,
        activation: &Activation,
    ) -> Result<Conv, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        activation::check(cx, activation)?;
        let core = ConvCore::new(cx, rank, kernel_size, strides, dilation, padding, layout)?;
        let groups = groups.max(1);
        let k = cx.req_param(ParamRole::Kernel)?;
        let order = KernelOrder::of(cx, &k.layout, rank)?;
        let (_, _, co) = order
            .canonical_dims(k.tensor.shape(), rank)
            .ok_or_else(|| {
                cx.invalid(format!(
                    "kernel shape {:?} for rank {rank}",
                    k.tensor.shape()
                ))
            })?;
        if co != filters || !filters.is_multiple_of(groups) {
            return Err(cx.invalid(format!(
                "kernel shape {:?} does not give {filters} filters in {groups} groups",
                k.tensor.shape()
            )));
        }
        if order.spatial(k.tensor.shape(), rank) != core.kernel_size {
            return Err(cx.invalid(format!(
                "kernel shape {:?} does not match kernel_size {:?}",
                k.tensor.shape(),
                core.kernel_size
            )));
        }
        let bias = bias_param(cx, use_bias, filters)?;
        Ok(Conv {
            core,
            filters,
            groups,
            kernel: k.name.clone(),
            order,
            bias,
            activation: activation.clone(),
        })
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let (n, sp, cin) = self.core.split(xs[0])?;
        let kshape = &ps[&self.kernel];
        let (_, cg, _) = self
            .order
            .canonical_dims(kshape, self.core.rank)
            .ok_or_else(|| format!("kernel shape {kshape:?}"))?;
        if cin != cg * self.groups {
            return Err(format!(
                "input has {cin} channels, the kernel {kshape:?} expects {} ({} groups of {cg})",
                cg * self.groups,
                self.groups
            ));
        }
        let win = self.core.window(sp)?;
        Ok(vec![self.core.out_shape(n, &win.out_sp, self.filters)])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = self.core.to_cl(xs[0]);
        let (_, sp, _) = self.core.split(xs[0].shape())?;
        let win = self.core.window(sp)?;
        let w = self
            .order
            .to_canonical(cx.param(&self.kernel), self.core.rank);
        let mut y = forward_cl(&x, &w, self.groups, &win);
        if let Some(b) = &self.bias {
            add_bias_cl(&mut y, cx.param(b));
        }
        let z = self.core.cl_to_layout(y);
        let mut saved = Saved::default();
        let y = activation::fused(&self.activation, z, &mut saved)?;
        Ok(Out { ys: vec![y], saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let dz =
            activation::fused_backward(&self.activation, cx.saved, cx.ys[0], &cx.dys[0], cx.seed);
        let dz = self.core.to_cl(&dz);
        let x = self.core.to_cl(cx.xs[0]);
        let (_, sp, _) = match self.core.split(cx.xs[0].shape()) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let win = match self.core.window(sp) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        };
        let kernel = cx.param(&self.kernel);
        let w = self.order.to_canonical(kernel, self.core.rank);
        let (dx, dw) = backward_cl(&x, &w, self.groups, &win, &dz);
        let mut dparams = vec![(
            self.kernel.clone(),
            self.order
                .canonical_to_stored(dw, kernel.shape(), self.core.rank),
        )];
        if let Some(b) = &self.bias {
            dparams.push((b.clone(), bias_grad_cl(&dz)));
        }
        NodeGrads {
            dxs: vec![Some(self.core.cl_to_layout(dx))],
            dparams,
        }
    }
}

/// The bias parameter when `use_bias`, checked to have `units` entries.
pub(crate) fn bias_param(
    cx: &NodeCx<'_>,
    use_bias: bool,
    units: usize,
) -> Result<Option<String>, EngineError> {
    let b = cx.opt_param(ParamRole::Bias)?;
    match (use_bias, b) {
        (false, None) => Ok(None),
        (false, Some(p)) => {
            Err(cx.invalid(format!("use_bias is false but `{}` is stored", p.name)))
        }
        (true, None) => Err(cx.invalid("use_bias is true but no bias is stored")),
        (true, Some(p)) => {
            if p.tensor.len() != units {
                return Err(cx.invalid(format!(
                    "bias `{}` has shape {:?}, expected {units} entries",
                    p.name,
                    p.tensor.shape()
                )));
            }
            Ok(Some(p.name.clone()))
        }
    }
}
