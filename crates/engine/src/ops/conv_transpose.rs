//! Transposed convolution (1-D/2-D/3-D, groups, strides, dilation, output padding, both layouts).
//!
//! Forward, the adjoint of a convolution: every input position `i` scatters
//! `x[n, i, c] · W[q, o, c]` to output position `i·s + q·d − crop` (channels of group `g`), then
//! bias and activation. Per spatial axis with input `n`, effective kernel `e = (k−1)·d + 1`:
//! - explicit pads `(b, a)` (torch / ONNX): length `(n−1)·s − b − a + e + output_padding`,
//!   crop `b` (`torch/nn/modules/conv.py`, `ConvTranspose2d` shape formula);
//! - `'valid'`: length `n·s + max(e − s, 0)` without output padding (Keras
//!   `keras/src/backend/common/backend_utils.py`, `_convert_conv_transpose_padding_args` /
//!   `compute_conv_transpose_output_shape`), `(n−1)·s + e + output_padding` with it; crop 0;
//! - TF `'same'`: length `n·s` without output padding, `(n−1)·s + e − 2⌊e/2⌋ + output_padding`
//!   with it; crop `⌊P/2⌋` with `P = max((n−1)·s + e − length, 0)` (the SAME-conv gradient of
//!   `tf.nn.conv2d_transpose`; catalogue `conv-transpose-same-crop`); `SameLower` crops `P − ⌊P/2⌋`.
//!
//! Computation on channels-last data: `T_g = x_g · W_gᵀ` (`(N·P_in, K·O_g)`) then col2im into
//! `y`. VJP: `dT = im2col(dY)`, `dx_g = dT_g · W_g`, `dW_g = dT_gᵀ · x_g`, `db = Σ dY`.
//!
//! Weights: Keras `(*k, C_out, C_in)` is the canonical `(K·O_g, C_in)` as stored; torch
//! `(C_in, C_out/g, *k)` is permuted to it (catalogue `conv-transpose-layout`).

use model_ir::{Activation, Padding, ParamLayout, ParamRole};
use ndarray::{Array2, ArrayD, ArrayView2, ArrayViewMut2, IxDyn, s};

use super::conv::{ConvCore, ConvSpec, KernelOrder, bias_param};
use super::util::gemm;
use super::window::{PAD, position_table};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes};
use crate::error::EngineError;
use crate::float::Float;

#[derive(Debug, Clone)]
pub(crate) struct ConvTranspose {
    pub(crate) core: ConvCore,
    pub(crate) filters: usize,
    pub(crate) groups: usize,
    pub(crate) output_padding: Option<Vec<usize>>,
    pub(crate) kernel: String,
    pub(crate) order: KernelOrder,
    pub(crate) bias: Option<String>,
    pub(crate) activation: Activation,
}

/// Geometry of one transposed convolution.
#[derive(Debug, Clone)]
struct TGeom {
    in_sp: Vec<usize>,
    out_sp: Vec<usize>,
    crop: Vec<usize>,
}

impl ConvTranspose {
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        spec: &ConvSpec<'_>,
        filters: usize,
        groups: usize,
        output_padding: &Option<Vec<usize>>,
    ) -> Result<ConvTranspose, EngineError> {
        let core = ConvCore::compile(cx, spec, true)?;
        let rank = spec.rank;
        let groups = groups.max(1);
        let k = cx.req_param(ParamRole::Kernel)?;
        let order = match k.layout {
            ParamLayout::ConvTransposeSpatialOutIn { rank: r } if r == rank => {
                KernelOrder::SpatialInOut
            }
            ParamLayout::ConvTransposeInOutSpatial { rank: r } if r == rank => {
                KernelOrder::OutInSpatial
            }
            ref other => {
                return Err(cx.unsupported(format!(
                    "kernel layout {} for a rank-{rank} transposed convolution",
                    other.describe()
                )));
            }
        };
        let (_, og, _) = order
            .canonical_dims(k.tensor.shape(), rank)
            .ok_or_else(|| cx.invalid(format!("kernel shape {:?}", k.tensor.shape())))?;
        if og * groups != filters {
            return Err(cx.invalid(format!(
                "kernel shape {:?} does not give {filters} filters in {groups} groups",
                k.tensor.shape()
            )));
        }
        core.check_kernel_spatial(cx, order, k.tensor.shape())?;
        if let Some(op) = output_padding
            && op.len() != rank
        {
            return Err(cx.invalid(format!("output_padding {op:?} for rank {rank}")));
        }
        let bias = bias_param(cx, spec.use_bias, filters)?;
        Ok(ConvTranspose {
            core,
            filters,
            groups,
            output_padding: output_padding.clone(),
            kernel: k.name.clone(),
            order,
            bias,
            activation: spec.activation.clone(),
        })
    }

    fn geom(&self, in_sp: &[usize]) -> Result<TGeom, String> {
        let c = &self.core;
        let mut out_sp = Vec::new();
        let mut crop = Vec::new();
        for (i, &n) in in_sp.iter().enumerate() {
            let (k, s, d) = (c.kernel_size[i], c.strides[i], c.dilation[i]);
            let eff = (k - 1) * d + 1;
            let op = self.output_padding.as_ref().map(|v| v[i]);
            let base = n.saturating_sub(1) * s;
            let (len, cr) = match &c.padding {
                Padding::Explicit { begin, end } => {
                    let full = base + eff + op.unwrap_or(0);
                    let trim = begin[i] + end[i];
                    if trim >= full {
                        return Err(format!(
                            "pads {}+{} remove the whole output on axis {i}",
                            begin[i], end[i]
                        ));
                    }
                    (full - trim, begin[i])
                }
                Padding::Valid => match op {
                    None => (n * s + eff.saturating_sub(s), 0),
                    Some(op) => (base + eff + op, 0),
                },
                Padding::SameUpper | Padding::SameLower => {
                    let len = match op {
                        None => n * s,
                        Some(op) => base + eff - 2 * (eff / 2) + op,
                    };
                    let p = (base + eff).saturating_sub(len);
                    let b = if matches!(c.padding, Padding::SameUpper) {
                        p / 2
                    } else {
                        p - p / 2
                    };
                    (len, b)
                }
                Padding::Causal => return Err("causal padding".into()),
            };
            out_sp.push(len);
            crop.push(cr);
        }
        Ok(TGeom {
            in_sp: in_sp.to_vec(),
            out_sp,
            crop,
        })
    }

    /// `table[i·K + q]` = output position of input position `i` and kernel offset `q`, or PAD.
    fn table(&self, g: &TGeom) -> Vec<usize> {
        let c = &self.core;
        position_table(
            &g.in_sp,
            &g.out_sp,
            &c.kernel_size,
            &c.strides,
            &c.dilation,
            &g.crop,
        )
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let ((n, sp, cin), kshape, (_, _, kin)) =
            self.core
                .split_with_kernel(xs[0], ps, &self.kernel, self.order)?;
        if cin != kin || cin % self.groups != 0 {
            return Err(format!(
                "input has {cin} channels, the kernel {kshape:?} expects {kin}"
            ));
        }
        let g = self.geom(sp)?;
        Ok(vec![self.core.out_shape(n, &g.out_sp, self.filters)])
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = self.core.to_cl(xs[0]);
        let (n, sp, cin) = self.core.split(xs[0].shape())?;
        let g = self.geom(sp)?;
        let table = self.table(&g);
        let w = self
            .order
            .to_canonical(cx.param(&self.kernel), self.core.rank);
        let kk: usize = self.core.kernel_size.iter().product();
        let og = self.filters / self.groups;
        let cg = cin / self.groups;
        let pin: usize = g.in_sp.iter().product();
        let pout: usize = g.out_sp.iter().product();
        let xm = as_mat(&x, n * pin, cin);
        let mut cols = Array2::<F>::zeros((n * pin, self.groups * kk * og));
        for gi in 0..self.groups {
            let a = xm.slice(s![.., gi * cg..(gi + 1) * cg]);
            let wg = w.slice(s![.., gi * cg..(gi + 1) * cg]);
            let mut c = cols.slice_mut(s![.., gi * kk * og..(gi + 1) * kk * og]);
            gemm(F::one(), &a, &wg.t(), F::zero(), &mut c);
        }
        let mut out_shape = vec![n];
        out_shape.extend(&g.out_sp);
        out_shape.push(self.filters);
        let mut y = ArrayD::<F>::zeros(IxDyn(&out_shape));
        {
            let ys = slice_mut(&mut y);
            let cs = match cols.as_slice() {
                Some(s) => s,
                None => panic!("fresh array is standard layout"),
            };
            let width = self.groups * kk * og;
            for b in 0..n {
                for ip in 0..pin {
                    let row = &cs[(b * pin + ip) * width..(b * pin + ip + 1) * width];
                    for (q, &dst) in table[ip * kk..(ip + 1) * kk].iter().enumerate() {
                        if dst == PAD {
                            continue;
                        }
                        let yrow = &mut ys
                            [(b * pout + dst) * self.filters..(b * pout + dst + 1) * self.filters];
                        for gi in 0..self.groups {
                            let from = &row[gi * kk * og + q * og..gi * kk * og + (q + 1) * og];
                            for (t, &f) in yrow[gi * og..(gi + 1) * og].iter_mut().zip(from) {
                                *t += f;
                            }
                        }
                    }
                }
            }
        }
        self.core
            .finish(cx, y, self.bias.as_deref(), &self.activation)
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let dz = self.core.dz_cl(cx, &self.activation);
        let x = self.core.to_cl(cx.xs[0]);
        let (n, sp, cin) = match self.core.split(cx.xs[0].shape()) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let g = match self.geom(sp) {
            Ok(g) => g,
            Err(e) => panic!("{e}"),
        };
        let table = self.table(&g);
        let stored = cx.param(&self.kernel);
        let w = self.order.to_canonical(stored, self.core.rank);
        let kk: usize = self.core.kernel_size.iter().product();
        let og = self.filters / self.groups;
        let cg = cin / self.groups;
        let pin: usize = g.in_sp.iter().product();
        let pout: usize = g.out_sp.iter().product();
        let width = self.groups * kk * og;
        let mut cols = Array2::<F>::zeros((n * pin, width));
        {
            let cs = match cols.as_slice_mut() {
                Some(s) => s,
                None => panic!("fresh array is standard layout"),
            };
            let dys = match dz.as_slice() {
                Some(s) => s,
                None => panic!("standard layout"),
            };
            for b in 0..n {
                for ip in 0..pin {
                    let row = &mut cs[(b * pin + ip) * width..(b * pin + ip + 1) * width];
                    for (q, &dst) in table[ip * kk..(ip + 1) * kk].iter().enumerate() {
                        if dst == PAD {
                            continue;
                        }
                        let dyrow = &dys
                            [(b * pout + dst) * self.filters..(b * pout + dst + 1) * self.filters];
                        for gi in 0..self.groups {
                            row[gi * kk * og + q * og..gi * kk * og + (q + 1) * og]
                                .copy_from_slice(&dyrow[gi * og..(gi + 1) * og]);
                        }
                    }
                }
            }
        }
        let xm = as_mat(&x, n * pin, cin);
        let mut dx = ArrayD::<F>::zeros(x.raw_dim());
        let mut dw = Array2::<F>::zeros(w.raw_dim());
        {
            let mut dxm = as_mat_mut(&mut dx, n * pin, cin);
            for gi in 0..self.groups {
                let cg_cols = cols.slice(s![.., gi * kk * og..(gi + 1) * kk * og]);
                let wg = w.slice(s![.., gi * cg..(gi + 1) * cg]);
                let mut dxg = dxm.slice_mut(s![.., gi * cg..(gi + 1) * cg]);
                gemm(F::one(), &cg_cols, &wg, F::zero(), &mut dxg);
                let xg = xm.slice(s![.., gi * cg..(gi + 1) * cg]);
                let mut dwg = dw.slice_mut(s![.., gi * cg..(gi + 1) * cg]);
                gemm(F::one(), &cg_cols.t(), &xg, F::zero(), &mut dwg);
            }
        }
        let dparams = vec![(
            self.kernel.clone(),
            self.order
                .canonical_to_stored(dw, stored.shape(), self.core.rank),
        )];
        self.core.grads(dx, dparams, self.bias.as_deref(), &dz)
    }
}

fn as_mat<F: Float>(a: &ArrayD<F>, rows: usize, cols: usize) -> ArrayView2<'_, F> {
    match a.view().into_shape_with_order((rows, cols)) {
        Ok(v) => v,
        Err(e) => panic!("matrix view: {e}"),
    }
}

fn as_mat_mut<F: Float>(a: &mut ArrayD<F>, rows: usize, cols: usize) -> ArrayViewMut2<'_, F> {
    match a.view_mut().into_shape_with_order((rows, cols)) {
        Ok(v) => v,
        Err(e) => panic!("matrix view: {e}"),
    }
}

fn slice_mut<F: Float>(a: &mut ArrayD<F>) -> &mut [F] {
    match a.as_slice_mut() {
        Some(s) => s,
        None => panic!("fresh array is standard layout"),
    }
}
