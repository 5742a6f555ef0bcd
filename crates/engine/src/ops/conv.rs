//! Convolution (1-D, 2-D, 3-D; groups, strides, dilation, every padding rule, both layouts) via
//! im2col + GEMM; the shared core also runs DepthwiseConv and SeparableConv, and [`ConvCore`]
//! holds the steps the whole family (with ConvTranspose) shares.
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

use model_ir::{Activation, DataLayout, Op, Padding, ParamLayout, ParamRole};
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
            KernelOrder::OutInSpatial => Some(model_ir::layout::conv_kernel_to_keras_perm(rank)),
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

/// The attributes every convolution-family node (Conv, DepthwiseConv, SeparableConv,
/// ConvTranspose) carries: window geometry, layout, bias flag and fused activation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvSpec<'a> {
    pub(crate) rank: usize,
    pub(crate) kernel_size: &'a [usize],
    pub(crate) strides: &'a [usize],
    pub(crate) dilation: &'a [usize],
    pub(crate) padding: &'a Padding,
    pub(crate) layout: DataLayout,
    pub(crate) use_bias: bool,
    pub(crate) activation: &'a Activation,
}

impl<'a> ConvSpec<'a> {
    /// The shared attributes of a convolution-family node.
    pub(crate) fn of(cx: &NodeCx<'a>) -> Result<ConvSpec<'a>, EngineError> {
        match &cx.node.op {
            Op::Conv {
                rank,
                kernel_size,
                strides,
                dilation,
                padding,
                layout,
                use_bias,
                activation,
                ..
            }
            | Op::DepthwiseConv {
                rank,
                kernel_size,
                strides,
                dilation,
                padding,
                layout,
                use_bias,
                activation,
                ..
            }
            | Op::SeparableConv {
                rank,
                kernel_size,
                strides,
                dilation,
                padding,
                layout,
                use_bias,
                activation,
                ..
            }
            | Op::ConvTranspose {
                rank,
                kernel_size,
                strides,
                dilation,
                padding,
                layout,
                use_bias,
                activation,
                ..
            } => Ok(ConvSpec {
                rank: *rank,
                kernel_size,
                strides,
                dilation,
                padding,
                layout: *layout,
                use_bias: *use_bias,
                activation,
            }),
            _ => Err(cx.unsupported("a non-convolution op compiled as a convolution")),
        }
    }
}

/// `(K, C_g, C_out)`: kernel positions, input channels per group and output channels of a
/// canonical kernel.
pub(crate) type KernelDims = (usize, usize, usize);

/// `(N, spatial, C)`: batch, spatial sizes and channels of an input shape.
pub(crate) type Split<'s> = (usize, &'s [usize], usize);

/// Geometry of a grouped convolution, shared by Conv, DepthwiseConv, SeparableConv,
/// ConvTranspose and pooling; also the family's common compile prologue, forward epilogue
/// ([`ConvCore::finish`]) and backward prologue/epilogue ([`ConvCore::dz_cl`],
/// [`ConvCore::grads`]).
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

    /// The compile prologue shared by the convolution family: one input, one output, a valid
    /// fused activation, then [`ConvCore::new`]. A transposed convolution rejects causal
    /// padding before the geometry is checked.
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        spec: &ConvSpec<'_>,
        transposed: bool,
    ) -> Result<ConvCore, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(1)?;
        activation::check(cx, spec.activation)?;
        if transposed && matches!(spec.padding, Padding::Causal) {
            return Err(cx.unsupported("causal padding on a transposed convolution"));
        }
        ConvCore::new(
            cx,
            spec.rank,
            spec.kernel_size,
            spec.strides,
            spec.dilation,
            spec.padding,
            spec.layout,
        )
    }

    /// Checks that a stored kernel's spatial size matches `kernel_size`.
    pub(crate) fn check_kernel_spatial(
        &self,
        cx: &NodeCx<'_>,
        order: KernelOrder,
        shape: &[usize],
    ) -> Result<(), EngineError> {
        if order.spatial(shape, self.rank) != self.kernel_size {
            return Err(cx.invalid(format!(
                "kernel shape {shape:?} does not match kernel_size {:?}",
                self.kernel_size
            )));
        }
        Ok(())
    }

    /// `(N, spatial, C)` of an input shape.
    pub(crate) fn split<'s>(&self, x: &'s [usize]) -> Result<Split<'s>, String> {
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

    /// [`ConvCore::split`] of an input shape, then the stored shape of the kernel `kernel` and
    /// its canonical `(K, C_g, C_out)` (shape inference).
    pub(crate) fn split_with_kernel<'s, 'p>(
        &self,
        x: &'s [usize],
        ps: &'p ParamShapes,
        kernel: &str,
        order: KernelOrder,
    ) -> Result<(Split<'s>, &'p [usize], KernelDims), String> {
        let split = self.split(x)?;
        let kshape = &ps[kernel];
        let dims = order
            .canonical_dims(kshape, self.rank)
            .ok_or_else(|| format!("kernel shape {kshape:?}"))?;
        Ok((split, kshape, dims))
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

    /// The window of an input shape given in the op's layout.
    pub(crate) fn window_of(&self, x: &[usize]) -> Result<Window, String> {
        let (_, sp, _) = self.split(x)?;
        self.window(sp)
    }

    /// [`ConvCore::window_of`] in a backward pass, where the forward pass already checked it.
    pub(crate) fn checked_window(&self, x: &[usize]) -> Window {
        match self.window_of(x) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        }
    }

    /// The forward epilogue of the family: bias added in channels-last, the result back in the
    /// op's layout, then the fused activation (its input saved for the backward pass).
    pub(crate) fn finish<F: Float>(
        &self,
        cx: &FwdCx<'_, F>,
        mut y: ArrayD<F>,
        bias: Option<&str>,
        act: &Activation,
    ) -> Result<Out<F>, String> {
        if let Some(b) = bias {
            add_bias_cl(&mut y, cx.param(b));
        }
        let z = self.cl_to_layout(y);
        let mut saved = Saved::default();
        let y = activation::fused(act, z, &mut saved)?;
        Ok(Out { ys: vec![y], saved })
    }

    /// The backward prologue of the family: the fused activation's VJP, as channels-last
    /// standard layout.
    pub(crate) fn dz_cl<F: Float>(&self, cx: &BwdCx<'_, F>, act: &Activation) -> ArrayD<F> {
        let dz = activation::fused_backward(act, cx.saved, cx.ys[0], &cx.dys[0], cx.seed);
        match self.layout {
            DataLayout::ChannelsLast => standard(dz),
            DataLayout::ChannelsFirst => permuted(&dz, &to_last_perm(dz.ndim())),
        }
    }

    /// The backward epilogue of the family: the bias gradient `Σ dz` (when there is a bias)
    /// appended to `dparams`, and the channels-last input gradient back in the op's layout.
    pub(crate) fn grads<F: Float>(
        &self,
        dx: ArrayD<F>,
        mut dparams: Vec<(String, ArrayD<F>)>,
        bias: Option<&str>,
        dz: &ArrayD<F>,
    ) -> NodeGrads<F> {
        if let Some(b) = bias {
            dparams.push((b.to_owned(), bias_grad_cl(dz)));
        }
        NodeGrads {
            dxs: vec![Some(self.cl_to_layout(dx))],
            dparams,
        }
    }
}

/// Rows of the im2col matrix processed at once (bounds memory; whole samples per chunk).
const CHUNK_ROWS: usize = 4096;

/// Sizes of one grouped convolution on channels-last data, shared by its loops.
#[derive(Debug, Clone, Copy)]
struct Dims {
    /// Batch size.
    n: usize,
    cin: usize,
    cout: usize,
    groups: usize,
    /// Input channels per group.
    cg: usize,
    /// Output channels per group.
    og: usize,
    /// Kernel positions `K`.
    kk: usize,
    /// Output positions per sample.
    p: usize,
    /// Input positions per sample.
    sp: usize,
}

impl Dims {
    fn new<F>(x: &ArrayD<F>, w: &Array2<F>, groups: usize, win: &Window) -> Dims {
        let cin = *x.shape().last().unwrap_or(&0);
        let cout = w.ncols();
        Dims {
            n: x.shape()[0],
            cin,
            cout,
            groups,
            cg: cin / groups,
            og: cout / groups,
            kk: win.k_size(),
            p: win.out_size(),
            sp: win.in_size(),
        }
    }

    /// Width `groups·K·C_g` of an im2col row.
    fn cols_w(&self) -> usize {
        self.groups * self.kk * self.cg
    }

    /// The im2col columns of group `g`.
    fn cols_of(&self, g: usize) -> std::ops::Range<usize> {
        g * self.kk * self.cg..(g + 1) * self.kk * self.cg
    }

    /// The output channels of group `g`.
    fn outs_of(&self, g: usize) -> std::ops::Range<usize> {
        g * self.og..(g + 1) * self.og
    }

    /// Whole samples per im2col chunk.
    fn samples_per_chunk(&self) -> usize {
        (CHUNK_ROWS / self.p.max(1)).clamp(1, self.n.max(1))
    }

    /// `(n0, m)`: the chunks of `m` samples starting at `n0`, covering the batch.
    fn chunks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (n, nb) = (self.n, self.samples_per_chunk());
        (0..n).step_by(nb).map(move |n0| (n0, nb.min(n - n0)))
    }

    /// The `C_g = 1` (depthwise) case, run by a direct loop.
    fn is_depthwise(&self) -> bool {
        self.cg == 1 && self.groups > 1
    }
}

/// A standard-layout array's elements.
fn elems<'a, F, D: ndarray::Dimension>(a: &'a ndarray::Array<F, D>, what: &str) -> &'a [F] {
    match a.as_slice() {
        Some(s) => s,
        None => panic!("{what} must be standard layout"),
    }
}

/// A fresh (standard-layout) array's elements.
fn elems_mut<F, D: ndarray::Dimension>(a: &mut ndarray::Array<F, D>) -> &mut [F] {
    match a.as_slice_mut() {
        Some(s) => s,
        None => panic!("fresh array is standard layout"),
    }
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
    let d = Dims::new(x, w, groups, win);
    let mut out_shape = vec![d.n];
    out_shape.extend(&win.out_sp);
    out_shape.push(d.cout);
    let mut y = ArrayD::<F>::zeros(IxDyn(&out_shape));
    let xs = elems(x, "conv input");
    let table = win.table();
    let ys = elems_mut(&mut y);
    if d.is_depthwise() {
        depthwise_forward(xs, w, &d, &table, ys);
        return y;
    }
    let identity = is_pointwise(win);
    let cols_w = d.cols_w();
    let chunk_len = if identity {
        0
    } else {
        d.samples_per_chunk() * d.p * cols_w
    };
    let mut cols = vec![F::zero(); chunk_len];
    for (n0, m) in d.chunks() {
        let rows = m * d.p;
        let ychunk = &mut ys[n0 * d.p * d.cout..(n0 + m) * d.p * d.cout];
        let mut yv = match ndarray::ArrayViewMut2::from_shape((rows, d.cout), ychunk) {
            Ok(v) => v,
            Err(e) => panic!("conv output chunk: {e}"),
        };
        let cview = chunk_cols(xs, &d, n0, m, &table, identity, &mut cols);
        for g in 0..groups {
            let a = cview.slice(s![.., d.cols_of(g)]);
            let b = w.slice(s![.., d.outs_of(g)]);
            let mut c = yv.slice_mut(s![.., d.outs_of(g)]);
            gemm(F::one(), &a, &b, F::zero(), &mut c);
        }
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
    let d = Dims::new(x, w, groups, win);
    let mut dx = ArrayD::<F>::zeros(x.raw_dim());
    let mut dw = Array2::<F>::zeros(w.raw_dim());
    let xs = elems(x, "conv input");
    let dy = std_ref(dy);
    let dys = elems(&dy, "dy");
    let table = win.table();
    let dxs = elems_mut(&mut dx);
    if d.is_depthwise() {
        depthwise_backward(xs, w, &d, &table, dys, dxs, &mut dw);
        return (dx, dw);
    }
    let identity = is_pointwise(win);
    let cols_w = d.cols_w();
    let mut cols = vec![F::zero(); d.samples_per_chunk() * d.p * cols_w];
    let mut dcols = vec![F::zero(); d.samples_per_chunk() * d.p * cols_w];
    for (n0, m) in d.chunks() {
        let rows = m * d.p;
        let dyv = match ndarray::ArrayView2::from_shape(
            (rows, d.cout),
            &dys[n0 * d.p * d.cout..(n0 + m) * d.p * d.cout],
        ) {
            Ok(v) => v,
            Err(e) => panic!("dy chunk: {e}"),
        };
        let cview = chunk_cols(xs, &d, n0, m, &table, identity, &mut cols);
        {
            let mut dcv = match ndarray::ArrayViewMut2::from_shape(
                (rows, cols_w),
                &mut dcols[..rows * cols_w],
            ) {
                Ok(v) => v,
                Err(e) => panic!("dcols chunk: {e}"),
            };
            for g in 0..groups {
                let a = cview.slice(s![.., d.cols_of(g)]);
                let dyg = dyv.slice(s![.., d.outs_of(g)]);
                let mut dwg = dw.slice_mut(s![.., d.outs_of(g)]);
                gemm(F::one(), &a.t(), &dyg, F::one(), &mut dwg);
                let wg = w.slice(s![.., d.outs_of(g)]);
                let mut dc = dcv.slice_mut(s![.., d.cols_of(g)]);
                gemm(F::one(), &dyg, &wg.t(), F::zero(), &mut dc);
            }
        }
        if identity {
            dxs[n0 * d.sp * d.cin..(n0 + m) * d.sp * d.cin]
                .copy_from_slice(&dcols[..rows * cols_w]);
        } else {
            col2im(&dcols[..rows * cols_w], &d, n0, m, &table, dxs);
        }
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

/// The im2col matrix `(m·P, groups·K·C_g)` of samples `n0..n0 + m`: built in `cols`, or for a
/// pointwise window a view of the input itself.
fn chunk_cols<'a, F: Float>(
    xs: &'a [F],
    d: &Dims,
    n0: usize,
    m: usize,
    table: &[usize],
    identity: bool,
    cols: &'a mut [F],
) -> ndarray::ArrayView2<'a, F> {
    let rows = m * d.p;
    let (cin, sp) = (d.cin, d.sp);
    if identity {
        match ndarray::ArrayView2::from_shape((rows, cin), &xs[n0 * sp * cin..(n0 + m) * sp * cin])
        {
            Ok(v) => v,
            Err(e) => panic!("pointwise input chunk: {e}"),
        }
    } else {
        let cols_w = d.cols_w();
        let cols = &mut cols[..rows * cols_w];
        im2col(xs, d, n0, m, table, cols);
        match ndarray::ArrayView2::from_shape((rows, cols_w), &*cols) {
            Ok(v) => v,
            Err(e) => panic!("im2col chunk: {e}"),
        }
    }
}

/// Fills `cols` with the im2col rows of samples `n0..n0 + m`.
fn im2col<F: Float>(x: &[F], d: &Dims, n0: usize, m: usize, table: &[usize], cols: &mut [F]) {
    let Dims {
        sp,
        cin,
        groups,
        cg,
        kk,
        p,
        ..
    } = *d;
    let cols_w = d.cols_w();
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

/// The transpose of [`im2col`]: sums the rows `dcols` of samples `n0..n0 + m` into `dx`.
fn col2im<F: Float>(dcols: &[F], d: &Dims, n0: usize, m: usize, table: &[usize], dx: &mut [F]) {
    let Dims {
        sp,
        cin,
        groups,
        cg,
        kk,
        p,
        ..
    } = *d;
    let cols_w = d.cols_w();
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
fn depthwise_forward<F: Float>(x: &[F], w: &Array2<F>, d: &Dims, table: &[usize], y: &mut [F]) {
    let Dims {
        n,
        groups,
        og: mult,
        kk,
        p,
        sp,
        ..
    } = *d;
    let w = standard_mat(w);
    let ws = elems(&w, "the kernel");
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

/// Gradient of [`depthwise_forward`]: accumulates into `dx` and `dw`.
fn depthwise_backward<F: Float>(
    x: &[F],
    w: &Array2<F>,
    d: &Dims,
    table: &[usize],
    dy: &[F],
    dx: &mut [F],
    dw: &mut Array2<F>,
) {
    let Dims {
        n,
        groups,
        og: mult,
        kk,
        p,
        sp,
        ..
    } = *d;
    let w = standard_mat(w);
    let ws = elems(&w, "the kernel");
    let dws = elems_mut(dw);
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
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        spec: &ConvSpec<'_>,
        filters: usize,
        groups: usize,
    ) -> Result<Conv, EngineError> {
        let core = ConvCore::compile(cx, spec, false)?;
        let rank = spec.rank;
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
        core.check_kernel_spatial(cx, order, k.tensor.shape())?;
        let bias = bias_param(cx, spec.use_bias, filters)?;
        Ok(Conv {
            core,
            filters,
            groups,
            kernel: k.name.clone(),
            order,
            bias,
            activation: spec.activation.clone(),
        })
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let ((n, sp, cin), kshape, (_, cg, _)) =
            self.core
                .split_with_kernel(xs[0], ps, &self.kernel, self.order)?;
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
        let win = self.core.window_of(xs[0].shape())?;
        let w = self
            .order
            .to_canonical(cx.param(&self.kernel), self.core.rank);
        let y = forward_cl(&x, &w, self.groups, &win);
        self.core
            .finish(cx, y, self.bias.as_deref(), &self.activation)
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let dz = self.core.dz_cl(cx, &self.activation);
        let x = self.core.to_cl(cx.xs[0]);
        let win = self.core.checked_window(cx.xs[0].shape());
        let kernel = cx.param(&self.kernel);
        let w = self.order.to_canonical(kernel, self.core.rank);
        let (dx, dw) = backward_cl(&x, &w, self.groups, &win, &dz);
        let dparams = vec![(
            self.kernel.clone(),
            self.order
                .canonical_to_stored(dw, kernel.shape(), self.core.rank),
        )];
        self.core.grads(dx, dparams, self.bias.as_deref(), &dz)
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
