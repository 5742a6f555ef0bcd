//! Shape inference for runtime values: the shapes and dtypes of a node's outputs from what is
//! known about its inputs, one rule per op family.

use model_ir::DType;

use super::{EvalCtx, axes_of, cast_target, slice_params, unsqueeze_shape};
use crate::error::ErrorKind;
use crate::onnx::decode::Attrs;
use crate::onnx::value::{
    Dim, Val, broadcast_dims, check_perm, int_vec, is_one, known_shape, norm_axis, slice_indices,
};

/// The shape (unknown: `None`) and dtype of one output.
pub(super) type Inferred = (Option<Vec<Dim>>, Option<DType>);

/// A node as the shape rules read it: its op type, attributes, inputs and output count, and
/// the shape and dtype of its first input.
struct In<'a> {
    op: &'a str,
    attrs: Attrs<'a>,
    inputs: &'a [Option<&'a Val>],
    n_out: usize,
    xs: Option<Vec<Dim>>,
    xt: Option<DType>,
}

/// Shapes and dtypes of the outputs of a node that computes on runtime values.
pub(super) fn infer(
    op: &str,
    attrs: Attrs<'_>,
    inputs: &[Option<&Val>],
    n_out: usize,
    ctx: &mut EvalCtx,
) -> Result<Vec<Inferred>, ErrorKind> {
    let x = inputs.first().copied().flatten();
    let n = In {
        op,
        attrs,
        inputs,
        n_out,
        xs: dims_of(x),
        xt: x.and_then(Val::dtype),
    };
    let same = (n.xs.clone(), n.xt);
    let mut out: Vec<Inferred> = match op {
        "Relu"
        | "Sigmoid"
        | "Tanh"
        | "LeakyRelu"
        | "Elu"
        | "Selu"
        | "HardSigmoid"
        | "HardSwish"
        | "Softplus"
        | "Softsign"
        | "Erf"
        | "Abs"
        | "Neg"
        | "Sqrt"
        | "Exp"
        | "Log"
        | "Reciprocal"
        | "Softmax"
        | "LogSoftmax"
        | "Identity"
        | "Clip"
        | "Gelu"
        | "Mish"
        | "Celu"
        | "PRelu"
        | "InstanceNormalization"
        | "Floor"
        | "Ceil"
        | "ThresholdedRelu"
        | "Shrink"
        | "Sign" => {
            vec![same]
        }
        "Dropout" => vec![same, (n.xs, Some(DType::Bool))],
        "BatchNormalization" | "LayerNormalization" => normalization(n)?,
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Equal" | "Less" | "Greater"
        | "Where" | "Mod" | "And" | "Or" => broadcast(n)?,
        "Cast" => vec![(n.xs, Some(cast_target(attrs)?))],
        "CastLike" => vec![(n.xs, inputs.get(1).copied().flatten().and_then(Val::dtype))],
        "MatMul" => matmul(n)?,
        "Gemm" => gemm(n)?,
        "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" | "LpPool" => window(n, ctx)?,
        "GlobalAveragePool" | "GlobalMaxPool" => global_pool(n)?,
        "Flatten" => flatten(n, ctx)?,
        "Reshape" => reshape(n, ctx)?,
        "Transpose" => transpose(n)?,
        "Unsqueeze" => unsqueeze(n)?,
        "Squeeze" => squeeze(n)?,
        "Concat" => concat(n, ctx)?,
        "Slice" => slice(n, ctx)?,
        "Gather" => gather(n)?,
        "Split" => split(n)?,
        "Pad" => pad(n, ctx)?,
        "Resize" | "Upsample" => resize(n, ctx)?,
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL2"
        | "ReduceLogSumExp" | "ReduceSumSquare" | "ReduceL1" | "ArgMax" | "ArgMin" => reduce(n)?,
        "LSTM" | "GRU" | "RNN" => rnn(n, ctx)?,
        "GroupNormalization" => vec![same],
        _ => vec![(None, None); n_out.max(1)],
    };
    out.resize(n_out, (None, None));
    Ok(out)
}

/// `BatchNormalization`/`LayerNormalization`: the input's shape, then per-channel statistics.
fn normalization(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In { xs, xt, .. } = n;
    let c = xs.as_ref().and_then(|s| s.get(1).cloned());
    Ok(vec![
        (xs.clone(), xt),
        (c.clone().map(|c| vec![c]), xt),
        (c.map(|c| vec![c]), xt),
    ])
}

/// Element-wise binaries and comparisons: the broadcast shape.
fn broadcast(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In { op, inputs, xt, .. } = n;
    let mut shape = Some(Vec::new());
    let mut dtype = None;
    for v in inputs.iter().flatten() {
        shape = match (shape, v.shape()) {
            (Some(a), Some(b)) => Some(broadcast_dims(&a, &b)),
            _ => None,
        };
        if dtype.is_none() && !matches!(v, Val::Const(_)) {
            dtype = v.dtype();
        }
    }
    let dtype = if matches!(op, "Equal" | "Less" | "Greater" | "And" | "Or") {
        Some(DType::Bool)
    } else {
        dtype.or(xt)
    };
    Ok(vec![(shape, dtype)])
}

/// `MatMul`: batch axes broadcast, then `(m, k)·(k, n)`.
fn matmul(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In { inputs, xs, xt, .. } = n;
    let b = dims_of(inputs.get(1).copied().flatten());
    Ok(vec![(
        match (xs, b) {
            (Some(a), Some(b)) if a.len() >= 2 && b.len() >= 2 => {
                let mut s = broadcast_dims(&a[..a.len() - 2], &b[..b.len() - 2]);
                s.push(a[a.len() - 2].clone());
                s.push(b[b.len() - 1].clone());
                Some(s)
            }
            (Some(a), Some(b)) if a.len() >= 2 && b.len() == 1 => Some(a[..a.len() - 1].to_vec()),
            _ => None,
        },
        xt,
    )])
}

/// `Gemm`: `(m, k)·(k, n)` with optional transposes.
fn gemm(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        attrs,
        inputs,
        xs,
        xt,
        ..
    } = n;
    let b = dims_of(inputs.get(1).copied().flatten());
    let ta = attrs.int_or("transA", 0)? != 0;
    let tb = attrs.int_or("transB", 0)? != 0;
    Ok(vec![(
        match (xs, b) {
            (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => Some(vec![
                a[usize::from(ta)].clone(),
                b[usize::from(!tb)].clone(),
            ]),
            _ => None,
        },
        xt,
    )])
}

/// Convolutions and pooling: the batch, the channels, then each spatial axis through its window.
fn window(n: In<'_>, ctx: &mut EvalCtx) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        op,
        attrs,
        inputs,
        xs,
        xt,
        ..
    } = n;
    let mut fresh = || ctx.fresh();
    let w = dims_of(inputs.get(1).copied().flatten());
    let shape = xs.and_then(|s| {
        let rank = s.len().checked_sub(2)?;
        let kernel = match attrs.ints("kernel_shape").ok().flatten() {
            Some(k) => k
                .into_iter()
                .map(|v| usize::try_from(v).unwrap_or(0))
                .collect(),
            None => known_shape(w.as_ref()?.get(2..)?)?,
        };
        let strides = usize_list(attrs.ints("strides").ok().flatten(), rank, 1);
        let dil = usize_list(attrs.ints("dilations").ok().flatten(), rank, 1);
        let pads = usize_list(attrs.ints("pads").ok().flatten(), 2 * rank, 0);
        let ceil = attrs.int_or("ceil_mode", 0).ok()? != 0;
        let auto = attrs.string("auto_pad").ok().flatten().unwrap_or_default();
        if kernel.len() != rank
            || strides.len() != rank
            || dil.len() != rank
            || pads.len() != 2 * rank
        {
            return None;
        }
        let channels = match op {
            "Conv" => w.as_ref()?.first()?.clone(),
            "ConvTranspose" => {
                let group = attrs.int_or("group", 1).ok()?;
                match w.as_ref()?.get(1)?.known() {
                    Some(c) => Dim::Known(c.saturating_mul(group)),
                    None => fresh(),
                }
            }
            _ => s.get(1)?.clone(),
        };
        let mut out = vec![s[0].clone(), channels];
        for i in 0..rank {
            let d = if op == "ConvTranspose" {
                let op_pad = usize_list(attrs.ints("output_padding").ok().flatten(), rank, 0);
                match s[2 + i].known() {
                    Some(n) => {
                        let full = strides[i]
                            .saturating_mul(n.max(1) as usize - 1)
                            .saturating_add(op_pad.get(i).copied().unwrap_or(0))
                            .saturating_add(kernel[i].saturating_sub(1).saturating_mul(dil[i]))
                            .saturating_add(1);
                        Dim::Known(full.saturating_sub(pads[i] + pads[rank + i]) as i64)
                    }
                    None => fresh(),
                }
            } else {
                let w = Window {
                    k: kernel[i],
                    stride: strides[i],
                    dil: dil[i],
                    pads: (pads[i], pads[rank + i]),
                    ceil,
                    auto_pad: &auto,
                };
                spatial_out(&s[2 + i], &w, &mut fresh)
            };
            out.push(d);
        }
        Some(out)
    });
    Ok(vec![(shape.clone(), xt), (shape, Some(DType::I64))])
}

/// Global pooling: every spatial axis becomes 1.
fn global_pool(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In { xs, xt, .. } = n;
    Ok(vec![(
        xs.map(|s| {
            s.iter()
                .enumerate()
                .map(|(i, d)| if i < 2 { d.clone() } else { Dim::Known(1) })
                .collect()
        }),
        xt,
    )])
}

/// `Flatten`: two axes, the products before and from `axis`.
fn flatten(n: In<'_>, ctx: &mut EvalCtx) -> Result<Vec<Inferred>, ErrorKind> {
    let In { attrs, xs, xt, .. } = n;
    let mut fresh = || ctx.fresh();
    let shape = xs.and_then(|s| {
        let axis = attrs.int_or("axis", 1).ok()?;
        let axis = if axis == s.len() as i64 {
            s.len()
        } else {
            norm_axis(axis, s.len(), "Flatten").ok()?
        };
        Some(vec![
            product(&s[..axis], &mut fresh),
            product(&s[axis..], &mut fresh),
        ])
    });
    Ok(vec![(shape, xt)])
}

/// `Reshape` to a (possibly symbolic) target.
fn reshape(n: In<'_>, ctx: &mut EvalCtx) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        attrs,
        inputs,
        xs,
        xt,
        ..
    } = n;
    let mut fresh = || ctx.fresh();
    let target = inputs.get(1).copied().flatten().and_then(Val::as_dims);
    let allowzero = attrs.int_or("allowzero", 0)? != 0;
    Ok(vec![(
        match (xs, target) {
            (Some(s), Some((t, _))) => Some(reshape_dims(&s, &t, allowzero, &mut fresh)),
            (None, Some((t, _))) => Some(
                t.into_iter()
                    .map(|d| match d {
                        Dim::Known(v) if v > 0 => Dim::Known(v),
                        Dim::Sym(s) => Dim::Sym(s),
                        _ => fresh(),
                    })
                    .collect(),
            ),
            _ => None,
        },
        xt,
    )])
}

/// `Transpose` by `perm` (reversed axes by default).
fn transpose(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In { attrs, xs, xt, .. } = n;
    let shape = xs.and_then(|s| {
        let perm = match attrs.ints("perm").ok()? {
            Some(p) => check_perm(&p, s.len()).ok()?,
            None => (0..s.len()).rev().collect(),
        };
        Some(perm.iter().map(|&p| s[p].clone()).collect())
    });
    Ok(vec![(shape, xt)])
}

/// `Unsqueeze`: ones inserted at `axes`.
fn unsqueeze(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        attrs,
        inputs,
        xs,
        xt,
        ..
    } = n;
    let axes = axes_of(attrs, inputs, 1)?.unwrap_or_default();
    let shape = match xs {
        Some(s) => {
            let wrapped: Vec<DimOrOne> = s.into_iter().map(DimOrOne::D).collect();
            Some(
                unsqueeze_shape(&wrapped, &axes)?
                    .into_iter()
                    .map(DimOrOne::into_dim)
                    .collect(),
            )
        }
        None => None,
    };
    Ok(vec![(shape, xt)])
}

/// `Squeeze`: `axes` (or every known 1) dropped.
fn squeeze(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        attrs,
        inputs,
        xs,
        xt,
        ..
    } = n;
    let axes = axes_of(attrs, inputs, 1)?;
    let shape = xs.and_then(|s| {
        let rank = s.len();
        let drop: Vec<usize> = match &axes {
            Some(a) => a
                .iter()
                .map(|&x| norm_axis(x, rank, "Squeeze").ok())
                .collect::<Option<_>>()?,
            None => (0..rank).filter(|&i| s[i] == Dim::Known(1)).collect(),
        };
        Some(
            (0..rank)
                .filter(|i| !drop.contains(i))
                .map(|i| s[i].clone())
                .collect(),
        )
    });
    Ok(vec![(shape, xt)])
}

/// `Concat`: the lengths along `axis` summed.
fn concat(n: In<'_>, ctx: &mut EvalCtx) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        attrs, inputs, xt, ..
    } = n;
    let mut fresh = || ctx.fresh();
    let mut shape: Option<Vec<Dim>> = None;
    let mut ok = true;
    for v in inputs.iter().flatten() {
        let Some(s) = v.shape() else {
            ok = false;
            break;
        };
        let axis = match norm_axis(attrs.int_or("axis", 0)?, s.len(), "Concat") {
            Ok(a) => a,
            Err(_) => {
                ok = false;
                break;
            }
        };
        shape = Some(match shape {
            None => s,
            Some(mut acc) if acc.len() == s.len() => {
                acc[axis] = match (acc[axis].known(), s[axis].known()) {
                    (Some(a), Some(b)) => match a.checked_add(b) {
                        Some(v) => Dim::Known(v),
                        None => fresh(),
                    },
                    _ => fresh(),
                };
                acc
            }
            Some(_) => {
                ok = false;
                break;
            }
        });
    }
    Ok(vec![(shape.filter(|_| ok), xt)])
}

/// `Slice` with constant starts, ends, axes and steps.
fn slice(n: In<'_>, ctx: &mut EvalCtx) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        attrs,
        inputs,
        xs,
        xt,
        ..
    } = n;
    let mut fresh = || ctx.fresh();
    let params = slice_params(attrs, inputs)?;
    let shape = match (xs, params) {
        (Some(mut s), Some((starts, ends, axes, steps))) => {
            for (i, (&st, &en)) in starts.iter().zip(&ends).enumerate() {
                let axis = axes
                    .as_ref()
                    .and_then(|a| a.get(i).copied())
                    .unwrap_or(i as i64);
                let axis = norm_axis(axis, s.len(), "Slice")?;
                let step = steps.as_ref().and_then(|a| a.get(i).copied()).unwrap_or(1);
                s[axis] = match s[axis].known() {
                    Some(n) => Dim::Known(slice_indices(n as usize, st, en, step)?.len() as i64),
                    None => fresh(),
                };
            }
            Some(s)
        }
        _ => None,
    };
    Ok(vec![(shape, xt)])
}

/// `Gather`: the indices' shape replaces `axis`.
fn gather(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        attrs,
        inputs,
        xs,
        xt,
        ..
    } = n;
    let idx = dims_of(inputs.get(1).copied().flatten());
    let shape = match (xs, idx) {
        (Some(s), Some(i)) => {
            let axis = norm_axis(attrs.int_or("axis", 0)?, s.len(), "Gather")?;
            let mut out = s[..axis].to_vec();
            out.extend(i);
            out.extend_from_slice(&s[axis + 1..]);
            Some(out)
        }
        _ => None,
    };
    Ok(vec![(shape, xt)])
}

/// `Split`: one shape per output.
fn split(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        attrs,
        inputs,
        n_out,
        xs,
        xt,
        ..
    } = n;
    let sizes = match attrs.ints("split")? {
        Some(s) => Some(s),
        None => match inputs.get(1).copied().flatten() {
            Some(Val::Const(t)) => int_vec(t),
            _ => None,
        },
    };
    Ok((0..n_out)
        .map(|i| {
            let shape = xs.clone().and_then(|mut s| {
                let axis = norm_axis(attrs.int_or("axis", 0).ok()?, s.len(), "Split").ok()?;
                s[axis] = match (&sizes, s[axis].known()) {
                    (Some(sz), _) => Dim::Known(*sz.get(i)?),
                    (None, Some(n)) => Dim::Known(n / n_out.max(1) as i64),
                    (None, None) => Dim::Sym(format!("?split{i}")),
                };
                Some(s)
            });
            (shape, xt)
        })
        .collect())
}

/// `Pad` with constant pads.
fn pad(n: In<'_>, ctx: &mut EvalCtx) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        attrs,
        inputs,
        xs,
        xt,
        ..
    } = n;
    let mut fresh = || ctx.fresh();
    let pads = match attrs.ints("pads")? {
        Some(p) => Some(p),
        None => inputs
            .get(1)
            .copied()
            .flatten()
            .and_then(Val::as_const)
            .and_then(int_vec),
    };
    let shape = match (xs, pads) {
        (Some(s), Some(p)) if p.len() == 2 * s.len() => Some(
            s.iter()
                .enumerate()
                .map(|(i, d)| match d.known() {
                    Some(n) => Dim::Known(n.saturating_add(p[i]).saturating_add(p[s.len() + i])),
                    None if p[i] == 0 && p[s.len() + i] == 0 => d.clone(),
                    None => fresh(),
                })
                .collect(),
        ),
        _ => None,
    };
    Ok(vec![(shape, xt)])
}

/// `Resize`/`Upsample` by constant scales or to constant sizes.
fn resize(n: In<'_>, ctx: &mut EvalCtx) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        op, inputs, xs, xt, ..
    } = n;
    let mut fresh = || ctx.fresh();
    let k = if op == "Upsample" { 1 } else { 2 };
    let scales = inputs
        .get(k)
        .copied()
        .flatten()
        .and_then(Val::as_const)
        .map(|t| t.to_f64());
    let sizes = inputs
        .get(3)
        .copied()
        .flatten()
        .and_then(Val::as_dims)
        .map(|d| d.0);
    let shape = match (xs, scales, sizes) {
        (_, _, Some(sz)) => Some(sz),
        (Some(s), Some(sc), None) if sc.len() == s.len() => Some(
            s.iter()
                .zip(sc.iter())
                .map(|(d, &f)| match d.known() {
                    Some(n) => Dim::Known((n as f64 * f).floor() as i64),
                    None if is_one(f) => d.clone(),
                    None => fresh(),
                })
                .collect(),
        ),
        _ => None,
    };
    Ok(vec![(shape, xt)])
}

/// Reductions and `ArgMax`/`ArgMin`: the reduced axes kept as 1 or dropped.
fn reduce(n: In<'_>) -> Result<Vec<Inferred>, ErrorKind> {
    let In {
        op,
        attrs,
        inputs,
        xs,
        xt,
        ..
    } = n;
    let keep = attrs.int_or("keepdims", 1)? != 0;
    let axes = if op.starts_with("Arg") {
        Some(vec![attrs.int_or("axis", 0)?])
    } else {
        axes_of(attrs, inputs, 1)?
    };
    let shape = xs.and_then(|s| {
        let rank = s.len();
        let axes: Vec<usize> = match &axes {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(|&x| norm_axis(x, rank, op).ok())
                .collect::<Option<_>>()?,
            _ => (0..rank).collect(),
        };
        Some(
            (0..rank)
                .filter_map(|i| match (axes.contains(&i), keep) {
                    (true, true) => Some(Dim::Known(1)),
                    (true, false) => None,
                    (false, _) => Some(s[i].clone()),
                })
                .collect(),
        )
    });
    let dtype = if op.starts_with("Arg") {
        Some(DType::I64)
    } else {
        xt
    };
    Ok(vec![(shape, dtype)])
}

/// `LSTM`/`GRU`/`RNN`: the sequence output, then the final states.
fn rnn(n: In<'_>, ctx: &mut EvalCtx) -> Result<Vec<Inferred>, ErrorKind> {
    let In { attrs, xs, xt, .. } = n;
    let mut fresh = || ctx.fresh();
    let hidden = attrs
        .int("hidden_size")?
        .map(Dim::Known)
        .unwrap_or_else(&mut fresh);
    let dirs = match attrs.string("direction")?.as_deref() {
        Some("bidirectional") => 2,
        _ => 1,
    };
    let layout = attrs.int_or("layout", 0)?;
    let (y, h) = match xs {
        Some(s) if s.len() == 3 => {
            let (t, b) = if layout == 1 {
                (s[1].clone(), s[0].clone())
            } else {
                (s[0].clone(), s[1].clone())
            };
            let d = Dim::Known(dirs);
            if layout == 1 {
                (
                    Some(vec![b.clone(), t, d.clone(), hidden.clone()]),
                    Some(vec![b, d, hidden]),
                )
            } else {
                (
                    Some(vec![t, d.clone(), b.clone(), hidden.clone()]),
                    Some(vec![d, b, hidden]),
                )
            }
        }
        _ => (None, None),
    };
    Ok(vec![(y, xt), (h.clone(), xt), (h, xt)])
}

fn dims_of(v: Option<&Val>) -> Option<Vec<Dim>> {
    v.and_then(Val::shape)
}

/// One spatial axis of a convolution or pooling window.
struct Window<'a> {
    k: usize,
    stride: usize,
    dil: usize,
    pads: (usize, usize),
    ceil: bool,
    auto_pad: &'a str,
}

fn spatial_out(input: &Dim, w: &Window<'_>, fresh: &mut dyn FnMut() -> Dim) -> Dim {
    let Window {
        k,
        stride,
        dil,
        pads,
        ceil,
        auto_pad,
    } = *w;
    let Some(n) = input.known() else {
        return fresh();
    };
    let n = n as usize;
    let stride = stride.max(1);
    let eff = k.saturating_sub(1).saturating_mul(dil).saturating_add(1);
    let v = match auto_pad {
        "SAME_UPPER" | "SAME_LOWER" => n.div_ceil(stride),
        "VALID" => (n.saturating_sub(eff)) / stride + 1,
        _ => {
            let total = n.saturating_add(pads.0).saturating_add(pads.1);
            if total < eff {
                return Dim::Known(0);
            }
            let span = total - eff;
            let mut out = if ceil {
                span.div_ceil(stride) + 1
            } else {
                span / stride + 1
            };
            // torch/ONNX: the last window must start inside the input or the left padding.
            if ceil && (out - 1).saturating_mul(stride) >= n.saturating_add(pads.0) {
                out -= 1;
            }
            out
        }
    };
    Dim::Known(v as i64)
}

fn usize_list(v: Option<Vec<i64>>, n: usize, default: usize) -> Vec<usize> {
    match v {
        Some(v) => v
            .into_iter()
            .map(|x| usize::try_from(x).unwrap_or(0))
            .collect(),
        None => vec![default; n],
    }
}

/// A dimension or the literal 1 that `Unsqueeze` inserts.
#[derive(Clone)]
enum DimOrOne {
    D(Dim),
    One,
}

impl From<u8> for DimOrOne {
    fn from(_: u8) -> Self {
        DimOrOne::One
    }
}

impl DimOrOne {
    fn into_dim(self) -> Dim {
        match self {
            DimOrOne::D(d) => d,
            DimOrOne::One => Dim::Known(1),
        }
    }
}

fn product(dims: &[Dim], fresh: &mut dyn FnMut() -> Dim) -> Dim {
    let mut known = 1i64;
    let mut syms = Vec::new();
    for d in dims {
        match d {
            Dim::Known(v) => known = known.saturating_mul(*v),
            Dim::Sym(s) => syms.push(s.clone()),
        }
    }
    match (syms.len(), known) {
        (0, k) => Dim::Known(k),
        (1, 1) => Dim::Sym(syms.remove(0)),
        _ => fresh(),
    }
}

/// Output dims of `Reshape(input, target)` where some entries may be symbolic.
fn reshape_dims(
    input: &[Dim],
    target: &[Dim],
    allowzero: bool,
    fresh: &mut dyn FnMut() -> Dim,
) -> Vec<Dim> {
    let mut out: Vec<Option<Dim>> = target
        .iter()
        .enumerate()
        .map(|(i, d)| match d {
            Dim::Known(0) if !allowzero => input.get(i).cloned(),
            Dim::Known(-1) => None,
            other => Some(other.clone()),
        })
        .collect();
    if let Some(pos) = out.iter().position(Option::is_none) {
        // Symbols on both sides cancel; the rest must be known for -1 to be computed.
        let mut in_syms: Vec<&str> = Vec::new();
        let mut in_known = 1i64;
        for d in input {
            match d {
                Dim::Known(v) => in_known = in_known.saturating_mul(*v),
                Dim::Sym(s) => in_syms.push(s),
            }
        }
        let mut out_known = 1i64;
        let mut ok = true;
        for d in out.iter().flatten() {
            match d {
                Dim::Known(v) => out_known = out_known.saturating_mul(*v),
                Dim::Sym(s) => match in_syms.iter().position(|x| x == s) {
                    Some(p) => {
                        in_syms.remove(p);
                    }
                    None => ok = false,
                },
            }
        }
        out[pos] = Some(match (ok, in_syms.as_slice()) {
            (true, []) if out_known > 0 && in_known % out_known == 0 => {
                Dim::Known(in_known / out_known)
            }
            // One batch-like symbol left over and the known sizes agree: -1 is that symbol.
            (true, [s]) if in_known == out_known => Dim::Sym(s.to_string()),
            _ => fresh(),
        });
    }
    out.into_iter()
        .map(|d| d.unwrap_or_else(&mut *fresh))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_with_a_batch_symbol() {
        let b = Dim::Sym("batch".into());
        let input = vec![b.clone(), Dim::Known(8), Dim::Known(2), Dim::Known(2)];
        let mut n = 0;
        let mut fresh = || {
            n += 1;
            Dim::Sym(format!("?{n}"))
        };
        assert_eq!(
            reshape_dims(&input, &[b.clone(), Dim::Known(-1)], false, &mut fresh),
            vec![b.clone(), Dim::Known(32)]
        );
        assert_eq!(
            reshape_dims(&input, &[Dim::Known(-1), Dim::Known(32)], false, &mut fresh),
            vec![b.clone(), Dim::Known(32)]
        );
        assert_eq!(
            reshape_dims(&input, &[Dim::Known(-1), Dim::Known(16)], false, &mut fresh),
            vec![Dim::Sym("?1".into()), Dim::Known(16)]
        );
        assert_eq!(
            reshape_dims(&input, &[Dim::Known(0), Dim::Known(-1)], false, &mut fresh),
            vec![b, Dim::Known(32)]
        );
    }

    #[test]
    fn pooling_output_sizes() {
        let mut fresh = || Dim::Sym("?".into());
        let d = |n| Dim::Known(n);
        let w = |k, stride, pads, ceil, auto_pad| Window {
            k,
            stride,
            dil: 1,
            pads,
            ceil,
            auto_pad,
        };
        assert_eq!(
            spatial_out(&d(3), &w(2, 2, (0, 0), true, ""), &mut fresh),
            d(2)
        );
        assert_eq!(
            spatial_out(&d(3), &w(2, 2, (0, 0), false, ""), &mut fresh),
            d(1)
        );
        assert_eq!(
            spatial_out(&d(10), &w(3, 1, (1, 1), false, ""), &mut fresh),
            d(10)
        );
        assert_eq!(
            spatial_out(&d(5), &w(3, 2, (1, 1), false, ""), &mut fresh),
            d(3)
        );
        assert_eq!(
            spatial_out(&d(7), &w(3, 2, (0, 0), false, "SAME_UPPER"), &mut fresh),
            d(4)
        );
    }
}
