//! Evaluation of one ONNX node over what is known about its inputs: constant folding when
//! every input is known, symbolic shape arithmetic when some entries are batch-dependent, and
//! shape inference for runtime values.
//!
//! This is what collapses the `Shape→Gather→Unsqueeze→Concat→Reshape` chains torch emits for
//! `x.view(x.size(0), -1)`, the `Slice/Concat` subgraphs that reorder LSTM/GRU gates, the
//! pads computations of `F.pad`, and the `ConstantOfShape` zero initial states of recurrent
//! layers.

use model_ir::{DType, Tensor};
use ndarray::{ArrayD, IxDyn};
use onnx_proto::onnx::NodeProto;

use super::decode::{Attrs, dtype_of, tensor_from_proto};
use super::value::{
    Dim, MAX_CONST_ELEMS, Val, binary, broadcast_dims, cast, check_perm, concat, expand, filled,
    gather, int_vec, is_one, known_shape, norm_axis, reshape_target, slice_indices, unary,
};
use crate::error::ErrorKind;

/// Settings that stay the same for every node of a graph.
#[derive(Debug)]
pub(crate) struct EvalCtx {
    /// Size of the whole file, the bound on any stored tensor.
    pub(crate) file_len: usize,
    /// Counter for fresh symbolic dimension names.
    pub(crate) fresh: usize,
    /// Elements constant evaluation may still create, over the whole graph.
    pub(crate) budget: usize,
}

/// How many elements constant evaluation may create in one graph.
pub(crate) const CONST_BUDGET: usize = 1 << 28;

impl EvalCtx {
    fn fresh(&mut self) -> Dim {
        self.fresh += 1;
        Dim::Sym(format!("?{}", self.fresh))
    }
}

/// Ops whose outputs are fully computed when every input is a constant.
const FOLDABLE: &[&str] = &[
    "Identity",
    "Cast",
    "Shape",
    "Size",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Slice",
    "Reshape",
    "Transpose",
    "Split",
    "ConstantOfShape",
    "Expand",
    "Range",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Neg",
    "Abs",
    "Sqrt",
    "Exp",
    "Log",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Flatten",
    "CastLike",
];

/// Evaluates `node`; `inputs[k]` is `None` for an omitted optional input.
pub(crate) fn eval(
    node: &NodeProto,
    inputs: &[Option<&Val>],
    ctx: &mut EvalCtx,
) -> Result<Vec<Val>, ErrorKind> {
    let op = node.op_type.as_deref().unwrap_or("");
    let attrs = Attrs::new(node);
    let n_out = node.output.len();
    if op == "Constant" {
        return Ok(vec![constant(node, ctx)?]);
    }
    let present: Vec<&Val> = inputs.iter().flatten().copied().collect();
    if !present.is_empty()
        && present.iter().all(|v| v.as_const().is_some())
        && FOLDABLE.contains(&op)
    {
        let consts: Vec<Option<&Tensor>> =
            inputs.iter().map(|v| v.and_then(Val::as_const)).collect();
        let mut out = fold(op, attrs, &consts, n_out, ctx)?;
        let made: usize = out.iter().map(Tensor::len).sum();
        if made > MAX_CONST_ELEMS || made > ctx.budget {
            return Err(ErrorKind::TooLarge(format!(
                "constant evaluation of {op} makes {made} elements (at most {} per node and {CONST_BUDGET} per graph)",
                MAX_CONST_ELEMS
            )));
        }
        ctx.budget -= made;
        out.truncate(n_out);
        return Ok(out.into_iter().map(Val::Const).collect());
    }
    if let Some(out) = symbolic(op, attrs, inputs, ctx)? {
        return Ok(out);
    }
    let zeros_in = inputs
        .first()
        .copied()
        .flatten()
        .is_some_and(|v| matches!(v, Val::Zeros { .. }));
    let shapes = infer(op, attrs, inputs, n_out, ctx)?;
    let zero_preserving = matches!(
        op,
        "Identity"
            | "Cast"
            | "Slice"
            | "Gather"
            | "Unsqueeze"
            | "Squeeze"
            | "Reshape"
            | "Transpose"
            | "Expand"
            | "Split"
            | "Flatten"
    );
    Ok(shapes
        .into_iter()
        .map(|(shape, dtype)| {
            if let (true, Some(shape), Some(dtype)) =
                (zeros_in && zero_preserving, shape.clone(), dtype)
            {
                return Val::Zeros { shape, dtype };
            }
            Val::runtime(shape, dtype)
        })
        .collect())
}

fn constant(node: &NodeProto, ctx: &EvalCtx) -> Result<Val, ErrorKind> {
    let attrs = Attrs::new(node);
    let name = node.name.as_deref().unwrap_or("");
    let what = format!("the value of Constant node `{name}`");
    if let Some(t) = attrs.tensor("value")? {
        return Ok(Val::Const(tensor_from_proto(t, &what, ctx.file_len)?));
    }
    if let Some(v) = attrs.float("value_float")? {
        return Ok(Val::Const(Tensor::F32(ArrayD::from_elem(
            IxDyn(&[]),
            v as f32,
        ))));
    }
    if let Some(v) = attrs.floats("value_floats")? {
        let v: Vec<f32> = v.into_iter().map(|x| x as f32).collect();
        return Ok(Val::Const(Tensor::F32(
            ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)
                .map_err(|e| ErrorKind::Malformed(format!("{what}: {e}")))?,
        )));
    }
    if let Some(v) = attrs.int("value_int")? {
        return Ok(Val::Const(Tensor::I64(ArrayD::from_elem(IxDyn(&[]), v))));
    }
    if let Some(v) = attrs.ints("value_ints")? {
        return Ok(Val::Const(Tensor::I64(
            ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)
                .map_err(|e| ErrorKind::Malformed(format!("{what}: {e}")))?,
        )));
    }
    let names = attrs.names();
    if names.is_empty() {
        return Err(ErrorKind::Malformed(format!(
            "Constant node `{name}` has no value"
        )));
    }
    Err(ErrorKind::Unsupported(format!(
        "Constant node `{name}` with attribute {}",
        names.join(", ")
    )))
}

/// Axes given as attribute (older opsets) or as the input at `k` (newer opsets).
pub(crate) fn axes_of(
    attrs: Attrs<'_>,
    inputs: &[Option<&Val>],
    k: usize,
) -> Result<Option<Vec<i64>>, ErrorKind> {
    if let Some(a) = attrs.ints("axes")? {
        return Ok(Some(a));
    }
    match inputs.get(k).copied().flatten() {
        None => Ok(None),
        Some(Val::Const(t)) => int_vec(t)
            .map(Some)
            .ok_or_else(|| ErrorKind::Malformed("axes must be integers".into())),
        Some(_) => Err(ErrorKind::Unsupported("axes computed at run time".into())),
    }
}

fn want<'a>(inputs: &[Option<&'a Tensor>], k: usize, op: &str) -> Result<&'a Tensor, ErrorKind> {
    inputs
        .get(k)
        .copied()
        .flatten()
        .ok_or_else(|| ErrorKind::Malformed(format!("{op} needs input {k}")))
}

fn ints_input(
    inputs: &[Option<&Tensor>],
    k: usize,
    op: &str,
) -> Result<Option<Vec<i64>>, ErrorKind> {
    match inputs.get(k).copied().flatten() {
        None => Ok(None),
        Some(t) => int_vec(t).map(Some).ok_or_else(|| {
            ErrorKind::Malformed(format!("{op} input {k} must be an integer vector"))
        }),
    }
}

fn to_shape(v: &[i64], op: &str) -> Result<Vec<usize>, ErrorKind> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| ErrorKind::Malformed(format!("{op} shape {v:?}"))))
        .collect()
}

fn cast_target(attrs: Attrs<'_>) -> Result<DType, ErrorKind> {
    let to = attrs
        .int("to")?
        .ok_or_else(|| ErrorKind::Malformed("Cast without `to`".into()))?;
    dtype_of(i32::try_from(to).unwrap_or(-1), "Cast target")
}

/// Slice parameters: (starts, ends, axes, steps) from inputs (opset ≥ 10) or attributes.
type SliceParams = (Vec<i64>, Vec<i64>, Option<Vec<i64>>, Option<Vec<i64>>);

fn slice_params(
    attrs: Attrs<'_>,
    inputs: &[Option<&Val>],
) -> Result<Option<SliceParams>, ErrorKind> {
    if let Some(starts) = attrs.ints("starts")? {
        let ends = attrs.ints("ends")?.unwrap_or_default();
        return Ok(Some((starts, ends, attrs.ints("axes")?, None)));
    }
    let get = |k: usize| -> Result<Option<Option<Vec<i64>>>, ErrorKind> {
        match inputs.get(k).copied().flatten() {
            None => Ok(Some(None)),
            Some(Val::Const(t)) => Ok(Some(Some(int_vec(t).ok_or_else(|| {
                ErrorKind::Malformed("Slice parameters must be integers".into())
            })?))),
            Some(_) => Ok(None),
        }
    };
    let (Some(Some(starts)), Some(Some(ends)), Some(axes), Some(steps)) =
        (get(1)?, get(2)?, get(3)?, get(4)?)
    else {
        return Ok(None);
    };
    Ok(Some((starts, ends, axes, steps)))
}

fn fold(
    op: &str,
    attrs: Attrs<'_>,
    inputs: &[Option<&Tensor>],
    n_out: usize,
    ctx: &mut EvalCtx,
) -> Result<Vec<Tensor>, ErrorKind> {
    let x = want(inputs, 0, op)?;
    let rank = x.shape().len();
    let one = |t: Tensor| Ok(vec![t]);
    match op {
        "Identity" => one(x.clone()),
        "Cast" => one(cast(x, cast_target(attrs)?)),
        "CastLike" => one(cast(x, want(inputs, 1, op)?.dtype())),
        "Shape" => {
            let dims: Vec<Dim> = x.shape().iter().map(|&d| Dim::Known(d as i64)).collect();
            let dims = shape_range(attrs, &dims)?;
            let v: Vec<i64> = dims.iter().filter_map(Dim::known).collect();
            one(Tensor::I64(
                ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)
                    .map_err(|e| ErrorKind::Malformed(e.to_string()))?,
            ))
        }
        "Size" => one(Tensor::I64(ArrayD::from_elem(IxDyn(&[]), x.len() as i64))),
        "Gather" => {
            let axis = norm_axis(attrs.int_or("axis", 0)?, rank, "Gather")?;
            one(gather(x, axis, want(inputs, 1, op)?)?)
        }
        "Unsqueeze" | "Squeeze" => {
            let axes = match attrs.ints("axes")? {
                Some(a) => Some(a),
                None => ints_input(inputs, 1, op)?,
            };
            let shape = if op == "Unsqueeze" {
                unsqueeze_shape(x.shape(), &axes.unwrap_or_default())?
            } else {
                squeeze_shape(x.shape(), axes.as_deref())?
            };
            one(x
                .reshaped(&shape)
                .ok_or_else(|| ErrorKind::Malformed(format!("{op} shape")))?)
        }
        "Concat" => {
            let parts: Vec<&Tensor> = inputs.iter().flatten().copied().collect();
            let axis = norm_axis(attrs.int_or("axis", 0)?, rank, "Concat")?;
            one(concat(&parts, axis)?)
        }
        "Slice" => {
            let vals: Vec<Option<Val>> = inputs
                .iter()
                .map(|t| t.map(|t| Val::Const(t.clone())))
                .collect();
            let refs: Vec<Option<&Val>> = vals.iter().map(Option::as_ref).collect();
            let (starts, ends, axes, steps) = slice_params(attrs, &refs)?
                .ok_or_else(|| ErrorKind::Malformed("Slice parameters".into()))?;
            let mut out = x.clone();
            for (i, (&s, &e)) in starts.iter().zip(&ends).enumerate() {
                let axis = axes
                    .as_ref()
                    .and_then(|a| a.get(i).copied())
                    .unwrap_or(i as i64);
                let axis = norm_axis(axis, rank, "Slice")?;
                let step = steps.as_ref().and_then(|a| a.get(i).copied()).unwrap_or(1);
                let idx = slice_indices(out.shape()[axis], s, e, step)?;
                out = out.select(axis, &idx);
            }
            one(out)
        }
        "Reshape" => {
            let target = ints_input(inputs, 1, op)?.unwrap_or_default();
            let shape = reshape_target(x.shape(), &target, attrs.int_or("allowzero", 0)? != 0)?;
            one(x
                .reshaped(&shape)
                .ok_or_else(|| ErrorKind::Malformed("Reshape".into()))?)
        }
        "Flatten" => {
            let axis = attrs.int_or("axis", 1)?;
            let axis = if axis == rank as i64 {
                rank
            } else {
                norm_axis(axis, rank, "Flatten")?
            };
            let a: usize = x.shape()[..axis].iter().product();
            let b: usize = x.shape()[axis..].iter().product();
            one(x
                .reshaped(&[a, b])
                .ok_or_else(|| ErrorKind::Malformed("Flatten".into()))?)
        }
        "Transpose" => {
            let perm = match attrs.ints("perm")? {
                Some(p) => check_perm(&p, rank)?,
                None => (0..rank).rev().collect(),
            };
            one(x.permuted(&perm))
        }
        "Split" => {
            let axis = norm_axis(attrs.int_or("axis", 0)?, rank, "Split")?;
            let len = x.shape()[axis];
            let sizes = match attrs.ints("split")? {
                Some(s) => s,
                None => match ints_input(inputs, 1, op)? {
                    Some(s) => s,
                    None => even_split(len, n_out, attrs)?,
                },
            };
            let mut out = Vec::new();
            let mut at = 0usize;
            for &s in &sizes {
                let s = usize::try_from(s)
                    .map_err(|_| ErrorKind::Malformed(format!("Split sizes {sizes:?}")))?;
                if at + s > len {
                    return Err(ErrorKind::Malformed(format!(
                        "Split sizes {sizes:?} exceed {len}"
                    )));
                }
                out.push(x.select(axis, &(at..at + s).collect::<Vec<_>>()));
                at += s;
            }
            Ok(out)
        }
        "ConstantOfShape" => {
            let shape = to_shape(&int_vec(x).unwrap_or_default(), op)?;
            let fill = constant_of_shape_fill(attrs, ctx)?;
            one(filled(&fill, &shape)?)
        }
        "Expand" => {
            let shape = to_shape(&ints_input(inputs, 1, op)?.unwrap_or_default(), op)?;
            one(expand(x, &shape)?)
        }
        "Range" => {
            let (s, l, d) = (
                want(inputs, 0, op)?,
                want(inputs, 1, op)?,
                want(inputs, 2, op)?,
            );
            let (s, l, d) = (s.to_f64(), l.to_f64(), d.to_f64());
            let (Some(&s), Some(&l), Some(&d)) =
                (s.iter().next(), l.iter().next(), d.iter().next())
            else {
                return Err(ErrorKind::Malformed("Range needs scalars".into()));
            };
            let n = ((l - s) / d).ceil().max(0.0);
            if !n.is_finite() || n > MAX_CONST_ELEMS as f64 {
                return Err(ErrorKind::TooLarge(format!("Range({s}, {l}, {d})")));
            }
            let v: Vec<f64> = (0..n as usize).map(|i| s + i as f64 * d).collect();
            let t = Tensor::F64(
                ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)
                    .map_err(|e| ErrorKind::Malformed(e.to_string()))?,
            );
            one(cast(&t, x.dtype()))
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" => {
            let mut acc = x.clone();
            for t in inputs.iter().skip(1).flatten() {
                acc = binary(op, &acc, t)?;
            }
            one(acc)
        }
        _ => one(unary(op, x)?),
    }
}

/// Sizes of an even `Split` into as many parts as the node has outputs.
pub(crate) fn even_split(
    len: usize,
    n_out: usize,
    attrs: Attrs<'_>,
) -> Result<Vec<i64>, ErrorKind> {
    let parts = n_out.max(1);
    if let Some(n) = attrs.int("num_outputs")?
        && usize::try_from(n).ok() != Some(parts)
    {
        return Err(ErrorKind::Malformed(format!(
            "Split into num_outputs={n} parts with {parts} outputs"
        )));
    }
    let size = len.div_ceil(parts);
    Ok((0..parts)
        .map(|i| size.min(len.saturating_sub(i.saturating_mul(size))) as i64)
        .collect())
}

fn constant_of_shape_fill(attrs: Attrs<'_>, ctx: &EvalCtx) -> Result<Tensor, ErrorKind> {
    match attrs.tensor("value")? {
        Some(t) => {
            let t = tensor_from_proto(t, "ConstantOfShape value", ctx.file_len)?;
            if t.len() != 1 {
                return Err(ErrorKind::Malformed(
                    "ConstantOfShape value must have one element".into(),
                ));
            }
            Ok(t)
        }
        None => Ok(Tensor::F32(ArrayD::zeros(IxDyn(&[1])))),
    }
}

fn shape_range(attrs: Attrs<'_>, dims: &[Dim]) -> Result<Vec<Dim>, ErrorKind> {
    let r = dims.len() as i64;
    let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = clamp(attrs.int_or("start", 0)?);
    let end = clamp(attrs.int_or("end", r)?);
    Ok(if start < end {
        dims[start..end].to_vec()
    } else {
        Vec::new()
    })
}

fn unsqueeze_shape<T: Clone + From<u8>>(shape: &[T], axes: &[i64]) -> Result<Vec<T>, ErrorKind> {
    let out_rank = shape.len() + axes.len();
    let mut pos: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, out_rank, "Unsqueeze"))
        .collect::<Result<_, _>>()?;
    pos.sort_unstable();
    pos.dedup();
    if pos.len() != axes.len() {
        return Err(ErrorKind::Malformed(format!(
            "Unsqueeze axes {axes:?} repeat"
        )));
    }
    let mut src = shape.iter();
    Ok((0..out_rank)
        .map(|i| {
            if pos.binary_search(&i).is_ok() {
                T::from(1u8)
            } else {
                src.next().cloned().unwrap_or_else(|| T::from(1u8))
            }
        })
        .collect())
}

fn squeeze_shape(shape: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>, ErrorKind> {
    let rank = shape.len();
    let drop: Vec<usize> = match axes {
        Some(a) => a
            .iter()
            .map(|&x| norm_axis(x, rank, "Squeeze"))
            .collect::<Result<_, _>>()?,
        None => (0..rank).filter(|&i| shape[i] == 1).collect(),
    };
    for &d in &drop {
        if shape[d] != 1 {
            return Err(ErrorKind::Malformed(format!(
                "Squeeze of axis {d} of size {}",
                shape[d]
            )));
        }
    }
    Ok((0..rank)
        .filter(|i| !drop.contains(i))
        .map(|i| shape[i])
        .collect())
}

/// Shape-vector arithmetic: ops on `Shape` values with symbolic entries.
fn symbolic(
    op: &str,
    attrs: Attrs<'_>,
    inputs: &[Option<&Val>],
    ctx: &mut EvalCtx,
) -> Result<Option<Vec<Val>>, ErrorKind> {
    let first = inputs.first().copied().flatten();
    if op == "Shape" {
        return Ok(match first.and_then(Val::shape) {
            Some(s) => Some(vec![Val::from_dims(shape_range(attrs, &s)?, false)]),
            None => None,
        });
    }
    if op == "Size" {
        return Ok(Some(vec![Val::from_dims(vec![ctx.fresh()], true)]));
    }
    let Some(first) = first else { return Ok(None) };
    let dims_in = |k: usize| inputs.get(k).copied().flatten().and_then(Val::as_dims);
    let shapey = inputs
        .iter()
        .flatten()
        .any(|v| matches!(v, Val::Shape { .. }));
    match op {
        "ConstantOfShape" => {
            let Some((dims, _)) = first.as_dims() else {
                return Ok(None);
            };
            let fill = constant_of_shape_fill(attrs, ctx)?;
            let dtype = fill.dtype();
            return Ok(Some(vec![if fill.to_f64().iter().all(|&v| v == 0.0) {
                Val::Zeros { shape: dims, dtype }
            } else {
                Val::runtime(Some(dims), Some(dtype))
            }]));
        }
        "Expand" if matches!(first, Val::Const(t) if t.to_f64().iter().all(|&v| v == 0.0)) => {
            let Some((dims, _)) = dims_in(1) else {
                return Ok(None);
            };
            let Some(dtype) = first.dtype() else {
                return Ok(None);
            };
            return Ok(Some(vec![Val::Zeros { shape: dims, dtype }]));
        }
        _ => {}
    }
    if !shapey {
        return Ok(None);
    }
    let Some((dims, scalar)) = first.as_dims() else {
        return Ok(None);
    };
    let out = match op {
        "Identity" | "Cast" => Val::from_dims(dims, scalar),
        "Gather" => {
            let Some((idx, idx_scalar)) = dims_in(1) else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for i in idx {
                let Some(i) = i.known() else { return Ok(None) };
                let j = if i < 0 { i + dims.len() as i64 } else { i };
                let d = usize::try_from(j)
                    .ok()
                    .and_then(|j| dims.get(j))
                    .ok_or_else(|| {
                        ErrorKind::Malformed(format!("Gather index {i} out of range"))
                    })?;
                out.push(d.clone());
            }
            Val::from_dims(out, idx_scalar)
        }
        "Unsqueeze" if scalar => Val::from_dims(dims, false),
        "Squeeze" if !scalar && dims.len() == 1 => Val::from_dims(dims, true),
        "Reshape" => {
            let Some((target, _)) = dims_in(1) else {
                return Ok(None);
            };
            if target.is_empty() && dims.len() == 1 {
                Val::from_dims(dims, true)
            } else {
                Val::from_dims(dims, false)
            }
        }
        "Concat" => {
            let mut out = Vec::new();
            for v in inputs.iter().flatten() {
                let Some((d, _)) = v.as_dims() else {
                    return Ok(None);
                };
                out.extend(d);
            }
            Val::from_dims(out, false)
        }
        "Slice" => {
            let Some((starts, ends, _, steps)) = slice_params(attrs, inputs)? else {
                return Ok(None);
            };
            let (Some(&s), Some(&e)) = (starts.first(), ends.first()) else {
                return Ok(None);
            };
            let step = steps.and_then(|v| v.first().copied()).unwrap_or(1);
            let idx = slice_indices(dims.len(), s, e, step)?;
            Val::from_dims(idx.into_iter().map(|i| dims[i].clone()).collect(), false)
        }
        "Add" | "Sub" | "Mul" | "Div" => {
            let Some((other, other_scalar)) = dims_in(1) else {
                return Ok(None);
            };
            let n = dims.len().max(other.len());
            let pick = |v: &[Dim], i: usize| {
                if v.len() == 1 {
                    v[0].clone()
                } else {
                    v[i].clone()
                }
            };
            if !(dims.len() == n || dims.len() == 1) || !(other.len() == n || other.len() == 1) {
                return Ok(None);
            }
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let (a, b) = (pick(&dims, i), pick(&other, i));
                out.push(match (op, a.known(), b.known()) {
                    (_, Some(x), Some(y)) => {
                        let t = binary(
                            op,
                            &Tensor::I64(ArrayD::from_elem(IxDyn(&[]), x)),
                            &Tensor::I64(ArrayD::from_elem(IxDyn(&[]), y)),
                        )?;
                        Dim::Known(t.to_i64().iter().next().copied().unwrap_or(0))
                    }
                    ("Mul" | "Div", None, Some(1)) | ("Add" | "Sub", None, Some(0)) => a,
                    ("Mul", Some(1), None) | ("Add", Some(0), None) => b,
                    _ => ctx.fresh(),
                });
            }
            Val::from_dims(out, scalar && other_scalar)
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}

type Inferred = (Option<Vec<Dim>>, Option<DType>);

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

/// Shapes and dtypes of the outputs of a node that computes on runtime values.
fn infer(
    op: &str,
    attrs: Attrs<'_>,
    inputs: &[Option<&Val>],
    n_out: usize,
    ctx: &mut EvalCtx,
) -> Result<Vec<Inferred>, ErrorKind> {
    let x = inputs.first().copied().flatten();
    let xs = dims_of(x);
    let xt = x.and_then(Val::dtype);
    let mut fresh = || ctx.fresh();
    let same = (xs.clone(), xt);
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
        "Dropout" => vec![same.clone(), (xs, Some(DType::Bool))],
        "BatchNormalization" | "LayerNormalization" => {
            let c = xs.as_ref().and_then(|s| s.get(1).cloned());
            vec![
                same,
                (c.clone().map(|c| vec![c]), xt),
                (c.map(|c| vec![c]), xt),
            ]
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Equal" | "Less" | "Greater"
        | "Where" | "Mod" | "And" | "Or" => {
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
            vec![(shape, dtype)]
        }
        "Cast" => vec![(xs, Some(cast_target(attrs)?))],
        "CastLike" => vec![(xs, inputs.get(1).copied().flatten().and_then(Val::dtype))],
        "MatMul" => {
            let b = dims_of(inputs.get(1).copied().flatten());
            vec![(
                match (xs, b) {
                    (Some(a), Some(b)) if a.len() >= 2 && b.len() >= 2 => {
                        let mut s = broadcast_dims(&a[..a.len() - 2], &b[..b.len() - 2]);
                        s.push(a[a.len() - 2].clone());
                        s.push(b[b.len() - 1].clone());
                        Some(s)
                    }
                    (Some(a), Some(b)) if a.len() >= 2 && b.len() == 1 => {
                        Some(a[..a.len() - 1].to_vec())
                    }
                    _ => None,
                },
                xt,
            )]
        }
        "Gemm" => {
            let b = dims_of(inputs.get(1).copied().flatten());
            let ta = attrs.int_or("transA", 0)? != 0;
            let tb = attrs.int_or("transB", 0)? != 0;
            vec![(
                match (xs, b) {
                    (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => Some(vec![
                        a[usize::from(ta)].clone(),
                        b[usize::from(!tb)].clone(),
                    ]),
                    _ => None,
                },
                xt,
            )]
        }
        "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" | "LpPool" => {
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
                        let op_pad =
                            usize_list(attrs.ints("output_padding").ok().flatten(), rank, 0);
                        match s[2 + i].known() {
                            Some(n) => {
                                let full = strides[i]
                                    .saturating_mul(n.max(1) as usize - 1)
                                    .saturating_add(op_pad.get(i).copied().unwrap_or(0))
                                    .saturating_add(
                                        kernel[i].saturating_sub(1).saturating_mul(dil[i]),
                                    )
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
            vec![(shape.clone(), xt), (shape, Some(DType::I64))]
        }
        "GlobalAveragePool" | "GlobalMaxPool" => vec![(
            xs.map(|s| {
                s.iter()
                    .enumerate()
                    .map(|(i, d)| if i < 2 { d.clone() } else { Dim::Known(1) })
                    .collect()
            }),
            xt,
        )],
        "Flatten" => {
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
            vec![(shape, xt)]
        }
        "Reshape" => {
            let target = inputs.get(1).copied().flatten().and_then(Val::as_dims);
            let allowzero = attrs.int_or("allowzero", 0)? != 0;
            vec![(
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
            )]
        }
        "Transpose" => {
            let shape = xs.and_then(|s| {
                let perm = match attrs.ints("perm").ok()? {
                    Some(p) => check_perm(&p, s.len()).ok()?,
                    None => (0..s.len()).rev().collect(),
                };
                Some(perm.iter().map(|&p| s[p].clone()).collect())
            });
            vec![(shape, xt)]
        }
        "Unsqueeze" => {
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
            vec![(shape, xt)]
        }
        "Squeeze" => {
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
            vec![(shape, xt)]
        }
        "Concat" => {
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
            vec![(shape.filter(|_| ok), xt)]
        }
        "Slice" => {
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
                            Some(n) => {
                                Dim::Known(slice_indices(n as usize, st, en, step)?.len() as i64)
                            }
                            None => fresh(),
                        };
                    }
                    Some(s)
                }
                _ => None,
            };
            vec![(shape, xt)]
        }
        "Gather" => {
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
            vec![(shape, xt)]
        }
        "Split" => {
            let sizes = match attrs.ints("split")? {
                Some(s) => Some(s),
                None => match inputs.get(1).copied().flatten() {
                    Some(Val::Const(t)) => int_vec(t),
                    _ => None,
                },
            };
            (0..n_out)
                .map(|i| {
                    let shape = xs.clone().and_then(|mut s| {
                        let axis =
                            norm_axis(attrs.int_or("axis", 0).ok()?, s.len(), "Split").ok()?;
                        s[axis] = match (&sizes, s[axis].known()) {
                            (Some(sz), _) => Dim::Known(*sz.get(i)?),
                            (None, Some(n)) => Dim::Known(n / n_out.max(1) as i64),
                            (None, None) => Dim::Sym(format!("?split{i}")),
                        };
                        Some(s)
                    });
                    (shape, xt)
                })
                .collect()
        }
        "Pad" => {
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
                            Some(n) => {
                                Dim::Known(n.saturating_add(p[i]).saturating_add(p[s.len() + i]))
                            }
                            None if p[i] == 0 && p[s.len() + i] == 0 => d.clone(),
                            None => fresh(),
                        })
                        .collect(),
                ),
                _ => None,
            };
            vec![(shape, xt)]
        }
        "Resize" | "Upsample" => {
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
            vec![(shape, xt)]
        }
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL2"
        | "ReduceLogSumExp" | "ReduceSumSquare" | "ReduceL1" | "ArgMax" | "ArgMin" => {
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
            vec![(shape, dtype)]
        }
        "LSTM" | "GRU" | "RNN" => {
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
            vec![(y, xt), (h.clone(), xt), (h, xt)]
        }
        "GroupNormalization" => vec![same],
        _ => vec![(None, None); n_out.max(1)],
    };
    out.resize(n_out, (None, None));
    Ok(out)
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
