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
    Dim, MAX_CONST_ELEMS, Val, binary, cast, check_perm, concat, expand, filled, gather, int_vec,
    norm_axis, reshape_target, slice_indices, unary,
};
use crate::error::ErrorKind;
use infer::infer;

mod infer;

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
