//! Windowed max and average pooling (1-D/2-D/3-D, strides, dilation, padding rules,
//! `count_include_pad`, `ceil_mode`, both layouts).
//!
//! Window positions and output sizes per [`super::window`]. Max: the largest input inside the
//! window, padding ignored (TF pads 'same' with −∞; torch pads with −∞); ties go to the first
//! position in window order (torch's `val > max` scan). Average: the window sum divided by
//! - the number of window positions inside the padded extent `[−b, n + a)` when
//!   `count_include_pad` (torch's default: `pool_size = (hend − hstart)…` with
//!   `hend = min(hstart + k, n + pad)`, `aten/src/ATen/native/cpu/AvgPoolKernel.cpp`),
//! - the number of real (non-padding) inputs otherwise (TF/Keras 'same', catalogue
//!   `pooling-padding`; torch `count_include_pad=False`).
//!
//! Max pooling's optional second output (ONNX MaxPool `Indices`): the position of each maximum
//! as a flat row-major index into the whole input tensor in the op's layout (for
//! channels-first `((n·C + c)·H + h)·W + w`, ONNX's `storage_order=0`), held as a float, exact
//! up to 2²⁴ input elements in f32 (larger inputs are refused).
//!
//! VJP: max `dx[argmax] += dy`; average `dx[i] += dy / divisor` for every real input `i` in the
//! window. The indices are piecewise constant: no gradient flows through them.

use model_ir::{DataLayout, Padding, PoolKind};
use ndarray::{ArrayD, IxDyn};

use super::conv::ConvCore;
use super::util::std_ref;
use super::window::{PAD, Window};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, Saved};
use crate::error::EngineError;
use crate::float::{Float, c};

#[derive(Debug, Clone)]
pub(crate) struct Pool {
    pub(crate) kind: PoolKind,
    pub(crate) core: ConvCore,
    pub(crate) count_include_pad: bool,
    pub(crate) ceil_mode: bool,
    /// Max pooling with the argmax as a second output.
    pub(crate) indices: bool,
}

impl Pool {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        kind: PoolKind,
        rank: usize,
        pool_size: &[usize],
        strides: &[usize],
        dilation: &[usize],
        padding: &Padding,
        layout: DataLayout,
        count_include_pad: bool,
        ceil_mode: bool,
    ) -> Result<Pool, EngineError> {
        cx.inputs(1, 1)?;
        cx.outputs(if kind == PoolKind::Max { 2 } else { 1 })?;
        let indices = cx.node.outputs.len() == 2;
        // Keras `strides=None` means the pool size.
        let strides = if strides.is_empty() {
            pool_size
        } else {
            strides
        };
        let core = ConvCore::new(cx, rank, pool_size, strides, dilation, padding, layout)?;
        Ok(Pool {
            kind,
            core,
            count_include_pad,
            ceil_mode,
            indices,
        })
    }

    fn window(&self, sp: &[usize]) -> Result<Window, String> {
        let c = &self.core;
        Window::new(
            &c.padding,
            sp,
            &c.kernel_size,
            &c.strides,
            &c.dilation,
            self.ceil_mode,
        )
    }

    pub(crate) fn infer(&self, xs: &[&[usize]]) -> Result<Vec<Vec<usize>>, String> {
        let (n, sp, ch) = self.core.split(xs[0])?;
        let win = self.window(sp)?;
        let shape = self.core.out_shape(n, &win.out_sp, ch);
        if self.indices {
            let total: usize = xs[0].iter().product();
            if total > 1 << 24 {
                return Err(format!(
                    "max-pooling indices of an input of {total} elements exceed the integers f32 holds exactly (2^24)"
                ));
            }
            return Ok(vec![shape.clone(), shape]);
        }
        Ok(vec![shape])
    }

    fn divisors(&self, win: &Window, table: &[usize]) -> Vec<usize> {
        if self.count_include_pad {
            win.padded_counts()
        } else {
            let kk = win.k_size();
            table
                .chunks(kk)
                .map(|row| row.iter().filter(|&&s| s != PAD).count())
                .collect()
        }
    }

    /// For (sample, channel): the flat offset of spatial position 0 in the input and in the
    /// output, and the step between spatial positions, in the op's layout.
    fn bases(
        &self,
        s: usize,
        p: usize,
        ch: usize,
    ) -> impl Fn(usize, usize) -> (usize, usize, usize) {
        let first = self.core.layout == DataLayout::ChannelsFirst;
        move |b, cc| {
            if first {
                ((b * ch + cc) * s, (b * ch + cc) * p, 1)
            } else {
                (b * s * ch + cc, b * p * ch + cc, ch)
            }
        }
    }

    pub(crate) fn forward<F: Float>(
        &self,
        _cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = std_ref(xs[0]);
        let (n, sp, ch) = self.core.split(x.shape())?;
        let win = self.window(sp)?;
        let table = win.table();
        let (p, kk, s) = (win.out_size(), win.k_size(), win.in_size());
        let shape = self.core.out_shape(n, &win.out_sp, ch);
        let xs_ = x.as_slice().ok_or("pool input layout")?;
        let bases = self.bases(s, p, ch);
        let mut y = vec![F::zero(); n * p * ch];
        let mut saved = Saved::default();
        let div = match self.kind {
            PoolKind::Avg => self.divisors(&win, &table),
            PoolKind::Max => {
                saved.idx = vec![PAD; n * p * ch];
                Vec::new()
            }
        };
        for b in 0..n {
            for cc in 0..ch {
                let (ib, ob, st) = bases(b, cc);
                for pi in 0..p {
                    let row = &table[pi * kk..(pi + 1) * kk];
                    let o = ob + pi * st;
                    match self.kind {
                        PoolKind::Max => {
                            let mut best = F::neg_infinity();
                            let mut arg = PAD;
                            for &src in row {
                                if src == PAD {
                                    continue;
                                }
                                let i = ib + src * st;
                                if arg == PAD || xs_[i] > best {
                                    best = xs_[i];
                                    arg = i;
                                }
                            }
                            y[o] = if arg == PAD { F::zero() } else { best };
                            saved.idx[o] = arg;
                        }
                        PoolKind::Avg => {
                            let mut acc = F::zero();
                            for &src in row {
                                if src != PAD {
                                    acc += xs_[ib + src * st];
                                }
                            }
                            y[o] = acc / c::<F>(div[pi].max(1) as f64);
                        }
                    }
                }
            }
        }
        let y = ArrayD::from_shape_vec(IxDyn(&shape), y).map_err(|e| e.to_string())?;
        let mut ys = vec![y];
        if self.indices {
            let idx: Vec<F> = saved
                .idx
                .iter()
                .map(|&a| {
                    if a == PAD {
                        c::<F>(-1.0)
                    } else {
                        c::<F>(a as f64)
                    }
                })
                .collect();
            ys.push(ArrayD::from_shape_vec(IxDyn(&shape), idx).map_err(|e| e.to_string())?);
        }
        Ok(Out { ys, saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let (n, sp, ch) = match self.core.split(cx.xs[0].shape()) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        let win = match self.window(sp) {
            Ok(w) => w,
            Err(e) => panic!("{e}"),
        };
        let dy = std_ref(&cx.dys[0]);
        let dys = match dy.as_slice() {
            Some(s) => s,
            None => panic!("standard layout"),
        };
        let (p, kk, s) = (win.out_size(), win.k_size(), win.in_size());
        let mut dx = vec![F::zero(); n * s * ch];
        match self.kind {
            PoolKind::Max => {
                for (o, &arg) in cx.saved.idx.iter().enumerate() {
                    if arg != PAD {
                        dx[arg] += dys[o];
                    }
                }
            }
            PoolKind::Avg => {
                let table = win.table();
                let div = self.divisors(&win, &table);
                let bases = self.bases(s, p, ch);
                for b in 0..n {
                    for cc in 0..ch {
                        let (ib, ob, st) = bases(b, cc);
                        for pi in 0..p {
                            let g = dys[ob + pi * st] / c::<F>(div[pi].max(1) as f64);
                            for &src in &table[pi * kk..(pi + 1) * kk] {
                                if src != PAD {
                                    dx[ib + src * st] += g;
                                }
                            }
                        }
                    }
                }
            }
        }
        let dx = match ArrayD::from_shape_vec(cx.xs[0].raw_dim(), dx) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        NodeGrads::input(dx)
    }
}
