//! What the importer knows about each ONNX value, and the tensor operations that constant
//! evaluation needs.
//!
//! A value is a constant (initializer, `Constant` node, or anything computed only from
//! those), a shape vector whose entries may be symbolic (`Shape` of a value with a dynamic
//! batch dimension, and arithmetic on it), an all-zero tensor of such a shape
//! (`ConstantOfShape`, the initial states torch feeds to LSTM/GRU), or a runtime value
//! computed from the graph inputs, with its shape as far as it is known.

use half::{bf16, f16};
use model_ir::{DType, Tensor};
use ndarray::{ArrayD, Axis, IxDyn};

use crate::error::ErrorKind;

/// Largest tensor constant evaluation may create from a small description
/// (`ConstantOfShape`, `Expand`, `Range`), in elements.
pub(crate) const MAX_CONST_ELEMS: usize = 1 << 26;

/// One dimension: a number, or a name standing for a size only known at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dim {
    Known(i64),
    Sym(String),
}

impl Dim {
    pub(crate) fn known(&self) -> Option<i64> {
        match self {
            Dim::Known(v) => Some(*v),
            Dim::Sym(_) => None,
        }
    }
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Known(v) => write!(f, "{v}"),
            Dim::Sym(s) => f.write_str(s),
        }
    }
}

/// What is known about an ONNX value.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// Fully known.
    Const(Tensor),
    /// An int64 vector (or scalar) of dimensions, some symbolic.
    Shape { dims: Vec<Dim>, scalar: bool },
    /// All zeros, of a shape that depends on the batch size.
    Zeros { shape: Vec<Dim>, dtype: DType },
    /// Computed from the graph inputs.
    Runtime {
        shape: Option<Vec<Dim>>,
        dtype: Option<DType>,
    },
}

impl Val {
    pub(crate) fn runtime(shape: Option<Vec<Dim>>, dtype: Option<DType>) -> Val {
        Val::Runtime { shape, dtype }
    }

    pub(crate) fn as_const(&self) -> Option<&Tensor> {
        match self {
            Val::Const(t) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn is_runtime(&self) -> bool {
        matches!(self, Val::Runtime { .. })
    }

    /// The shape, as far as it is known.
    pub(crate) fn shape(&self) -> Option<Vec<Dim>> {
        match self {
            Val::Const(t) => Some(t.shape().iter().map(|&d| Dim::Known(d as i64)).collect()),
            Val::Shape { dims, scalar } => Some(if *scalar {
                Vec::new()
            } else {
                vec![Dim::Known(dims.len() as i64)]
            }),
            Val::Zeros { shape, .. } => Some(shape.clone()),
            Val::Runtime { shape, .. } => shape.clone(),
        }
    }

    pub(crate) fn dtype(&self) -> Option<DType> {
        match self {
            Val::Const(t) => Some(t.dtype()),
            Val::Shape { .. } => Some(DType::I64),
            Val::Zeros { dtype, .. } => Some(*dtype),
            Val::Runtime { dtype, .. } => *dtype,
        }
    }

    /// The entries of a 0-d or 1-d integer value as dimensions (constants or shape vectors).
    pub(crate) fn as_dims(&self) -> Option<(Vec<Dim>, bool)> {
        match self {
            Val::Shape { dims, scalar } => Some((dims.clone(), *scalar)),
            Val::Const(t) if !t.dtype().is_float() && t.shape().len() <= 1 => Some((
                t.to_i64().iter().map(|&v| Dim::Known(v)).collect(),
                t.shape().is_empty(),
            )),
            _ => None,
        }
    }

    /// A shape vector, collapsed to a constant when every entry is known.
    pub(crate) fn from_dims(dims: Vec<Dim>, scalar: bool) -> Val {
        if let Some(v) = dims.iter().map(Dim::known).collect::<Option<Vec<i64>>>() {
            let shape: &[usize] = if scalar { &[] } else { &[v.len()] };
            return Val::Const(Tensor::I64(
                ArrayD::from_shape_vec(IxDyn(shape), v)
                    .unwrap_or_else(|_| ArrayD::zeros(IxDyn(&[0]))),
            ));
        }
        Val::Shape { dims, scalar }
    }
}

/// A shape with every dimension known, as sizes.
pub(crate) fn known_shape(shape: &[Dim]) -> Option<Vec<usize>> {
    shape
        .iter()
        .map(|d| d.known().and_then(|v| usize::try_from(v).ok()))
        .collect()
}

/// Whether a float is 1 (scales, fill values), to within rounding.
pub(crate) fn is_one(v: f64) -> bool {
    (v - 1.0).abs() <= 1e-12
}

/// Resolves a possibly negative axis against a rank.
pub(crate) fn norm_axis(axis: i64, rank: usize, what: &str) -> Result<usize, ErrorKind> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(ErrorKind::Malformed(format!(
            "{what}: axis {axis} is out of range for rank {rank}"
        )))
    }
}

/// The only element of a one-element tensor, as f64.
///
/// An f32 value is read as the shortest decimal that round-trips it (`0.3f32` → `0.3`).
pub(crate) fn scalar_f64(t: &Tensor) -> Option<f64> {
    if t.len() != 1 {
        return None;
    }
    match t {
        Tensor::F32(a) => a.iter().next().map(|&v| super::decode::f32_to_f64(v)),
        _ => t.to_f64().iter().next().copied(),
    }
}

/// Integer entries of a 0-d/1-d tensor.
pub(crate) fn int_vec(t: &Tensor) -> Option<Vec<i64>> {
    (!t.dtype().is_float() && t.shape().len() <= 1).then(|| t.to_i64().iter().copied().collect())
}

macro_rules! map_tensor {
    ($t:expr, $a:ident => $e:expr) => {
        match $t {
            Tensor::F32($a) => Tensor::F32($e),
            Tensor::F64($a) => Tensor::F64($e),
            Tensor::F16($a) => Tensor::F16($e),
            Tensor::BF16($a) => Tensor::BF16($e),
            Tensor::I64($a) => Tensor::I64($e),
            Tensor::I32($a) => Tensor::I32($e),
            Tensor::U8($a) => Tensor::U8($e),
            Tensor::Bool($a) => Tensor::Bool($e),
        }
    };
}

/// Concatenation along `axis`; every part must have the same dtype and matching shapes.
pub(crate) fn concat(parts: &[&Tensor], axis: usize) -> Result<Tensor, ErrorKind> {
    let Some(first) = parts.first() else {
        return Err(ErrorKind::Malformed("Concat of nothing".into()));
    };
    let rank = first.shape().len();
    if axis >= rank {
        return Err(ErrorKind::Malformed(format!(
            "Concat axis {axis} is out of range for rank {rank}"
        )));
    }
    for p in parts {
        let same = p.dtype() == first.dtype()
            && p.shape().len() == rank
            && (0..rank).all(|i| i == axis || p.shape()[i] == first.shape()[i]);
        if !same {
            return Err(ErrorKind::Malformed(format!(
                "Concat of {} {:?} and {} {:?}",
                first.dtype(),
                first.shape(),
                p.dtype(),
                p.shape()
            )));
        }
    }
    let total = parts
        .iter()
        .try_fold(0usize, |acc, p| acc.checked_add(p.len()));
    if total.is_none_or(|n| n > MAX_CONST_ELEMS) {
        return Err(ErrorKind::TooLarge(format!(
            "Concat of {} constants with {total:?} elements",
            parts.len()
        )));
    }
    macro_rules! cat {
        ($v:ident) => {{
            let views: Vec<_> = parts
                .iter()
                .filter_map(|p| match p {
                    Tensor::$v(a) => Some(a.view()),
                    _ => None,
                })
                .collect();
            ndarray::concatenate(Axis(axis), &views)
                .map(Tensor::$v)
                .map_err(|e| ErrorKind::Malformed(format!("Concat: {e}")))
        }};
    }
    match first {
        Tensor::F32(_) => cat!(F32),
        Tensor::F64(_) => cat!(F64),
        Tensor::F16(_) => cat!(F16),
        Tensor::BF16(_) => cat!(BF16),
        Tensor::I64(_) => cat!(I64),
        Tensor::I32(_) => cat!(I32),
        Tensor::U8(_) => cat!(U8),
        Tensor::Bool(_) => cat!(Bool),
    }
}

/// The indices ONNX `Slice` selects along an axis of length `len`.
pub(crate) fn slice_indices(
    len: usize,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Vec<usize>, ErrorKind> {
    if step == 0 {
        return Err(ErrorKind::Malformed("Slice with step 0".into()));
    }
    let n = len as i64;
    let fix = |v: i64| if v < 0 { v.saturating_add(n) } else { v };
    let (mut s, mut e) = (fix(start), fix(end));
    let mut out = Vec::new();
    if step > 0 {
        s = s.clamp(0, n);
        e = e.clamp(0, n);
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    } else {
        s = s.clamp(-1, n - 1);
        e = e.clamp(-1, n - 1);
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i = i.saturating_add(step);
        }
    }
    Ok(out)
}

/// `Gather` of `indices` (any shape) along `axis`.
pub(crate) fn gather(data: &Tensor, axis: usize, indices: &Tensor) -> Result<Tensor, ErrorKind> {
    let shape = data.shape();
    let len = *shape
        .get(axis)
        .ok_or_else(|| ErrorKind::Malformed(format!("Gather axis {axis} out of range")))?;
    let row: usize = shape
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != axis)
        .map(|(_, &d)| d)
        .product();
    if row
        .checked_mul(indices.len())
        .is_none_or(|n| n > MAX_CONST_ELEMS)
    {
        return Err(ErrorKind::TooLarge(format!(
            "Gather of {} rows of {row} elements",
            indices.len()
        )));
    }
    let mut idx = Vec::with_capacity(indices.len());
    for &i in indices.to_i64().iter() {
        let j = if i < 0 { i + len as i64 } else { i };
        if !(0..len as i64).contains(&j) {
            return Err(ErrorKind::Malformed(format!(
                "Gather index {i} out of range for an axis of {len}"
            )));
        }
        idx.push(j as usize);
    }
    let picked = data.select(axis, &idx);
    let mut out_shape: Vec<usize> = shape[..axis].to_vec();
    out_shape.extend_from_slice(indices.shape());
    out_shape.extend_from_slice(&shape[axis + 1..]);
    picked
        .reshaped(&out_shape)
        .ok_or_else(|| ErrorKind::Malformed("Gather result shape".into()))
}

/// The dims of `t` permuted; checks that `perm` is a permutation.
pub(crate) fn check_perm(perm: &[i64], rank: usize) -> Result<Vec<usize>, ErrorKind> {
    let mut seen = vec![false; rank];
    let mut out = Vec::with_capacity(rank);
    if perm.len() != rank {
        return Err(ErrorKind::Malformed(format!(
            "Transpose perm {perm:?} does not fit rank {rank}"
        )));
    }
    for &p in perm {
        let ok = usize::try_from(p).ok().filter(|&p| p < rank && !seen[p]);
        let Some(p) = ok else {
            return Err(ErrorKind::Malformed(format!(
                "Transpose perm {perm:?} is not a permutation"
            )));
        };
        seen[p] = true;
        out.push(p);
    }
    Ok(out)
}

/// Converts every element to `dtype` (ONNX `Cast`).
pub(crate) fn cast(t: &Tensor, dtype: DType) -> Tensor {
    if t.dtype() == dtype {
        return t.clone();
    }
    let from_float = t.dtype().is_float();
    let f = || t.to_f64();
    let i = || t.to_i64();
    match dtype {
        DType::F32 => Tensor::F32(f().mapv(|v| v as f32)),
        DType::F64 => Tensor::F64(f()),
        DType::F16 => Tensor::F16(f().mapv(f16::from_f64)),
        DType::BF16 => Tensor::BF16(f().mapv(bf16::from_f64)),
        DType::I64 if from_float => Tensor::I64(f().mapv(|v| v as i64)),
        DType::I64 => Tensor::I64(i()),
        DType::I32 if from_float => Tensor::I32(f().mapv(|v| v as i32)),
        DType::I32 => Tensor::I32(i().mapv(|v| v as i32)),
        DType::U8 if from_float => Tensor::U8(f().mapv(|v| v as u8)),
        DType::U8 => Tensor::U8(i().mapv(|v| v as u8)),
        DType::Bool => Tensor::Bool(f().mapv(|v| v != 0.0)),
    }
}

/// The broadcast shape of two shapes (numpy rules), if they are compatible.
pub(crate) fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
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
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Symbolic broadcast of two shapes; unknown pairs take the non-1 side.
pub(crate) fn broadcast_dims(a: &[Dim], b: &[Dim]) -> Vec<Dim> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let da = (i + a.len() >= n).then(|| a[i + a.len() - n].clone());
            let db = (i + b.len() >= n).then(|| b[i + b.len() - n].clone());
            match (da, db) {
                (Some(x), None) | (None, Some(x)) => x,
                (Some(Dim::Known(1)), Some(y)) => y,
                (Some(x), Some(_)) => x,
                (None, None) => Dim::Known(1),
            }
        })
        .collect()
}

/// Element-wise arithmetic on two constants, with broadcasting.
///
/// Integer operands stay integer (`Div` truncates, as ONNX does); anything with a float operand
/// is computed in f64 and stored in the float dtype of the operands.
pub(crate) fn binary(op: &str, a: &Tensor, b: &Tensor) -> Result<Tensor, ErrorKind> {
    let shape = broadcast_shapes(a.shape(), b.shape()).ok_or_else(|| {
        ErrorKind::Malformed(format!(
            "{op} of shapes {:?} and {:?} that do not broadcast",
            a.shape(),
            b.shape()
        ))
    })?;
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if n.is_none_or(|n| n > MAX_CONST_ELEMS) {
        return Err(ErrorKind::TooLarge(format!(
            "{op} result of shape {shape:?}"
        )));
    }
    let float = a.dtype().is_float() || b.dtype().is_float();
    if float {
        let (x, y) = (a.to_f64(), b.to_f64());
        let (Some(x), Some(y)) = (x.broadcast(IxDyn(&shape)), y.broadcast(IxDyn(&shape))) else {
            return Err(ErrorKind::Malformed(format!("{op} broadcast")));
        };
        let f: fn(f64, f64) -> f64 = match op {
            "Add" => |p, q| p + q,
            "Sub" => |p, q| p - q,
            "Mul" => |p, q| p * q,
            "Div" => |p, q| p / q,
            "Pow" => f64::powf,
            "Max" => f64::max,
            "Min" => f64::min,
            _ => return Err(ErrorKind::Unsupported(format!("constant {op}"))),
        };
        let r = ndarray::Zip::from(&x).and(&y).map_collect(|&p, &q| f(p, q));
        let dtype = [a.dtype(), b.dtype()]
            .into_iter()
            .find(|d| d.is_float())
            .unwrap_or(DType::F32);
        Ok(cast(&Tensor::F64(r.into_dyn()), dtype))
    } else {
        let (x, y) = (a.to_i64(), b.to_i64());
        let (Some(x), Some(y)) = (x.broadcast(IxDyn(&shape)), y.broadcast(IxDyn(&shape))) else {
            return Err(ErrorKind::Malformed(format!("{op} broadcast")));
        };
        let mut err = None;
        let r = ndarray::Zip::from(&x).and(&y).map_collect(|&p, &q| {
            let v = match op {
                "Add" => p.checked_add(q),
                "Sub" => p.checked_sub(q),
                "Mul" => p.checked_mul(q),
                "Div" => p.checked_div(q),
                "Max" => Some(p.max(q)),
                "Min" => Some(p.min(q)),
                "Pow" => u32::try_from(q).ok().and_then(|q| p.checked_pow(q)),
                _ => None,
            };
            v.unwrap_or_else(|| {
                err = Some(ErrorKind::Malformed(format!("integer {op} of {p} and {q}")));
                0
            })
        });
        if let Some(e) = err {
            return Err(e);
        }
        let out = Tensor::I64(r.into_dyn());
        Ok(if a.dtype() == b.dtype() {
            cast(&out, a.dtype())
        } else {
            out
        })
    }
}

/// Element-wise unary math on a constant.
pub(crate) fn unary(op: &str, t: &Tensor) -> Result<Tensor, ErrorKind> {
    if !t.dtype().is_float() {
        let v = t.to_i64();
        let r = match op {
            "Neg" => v.mapv(|x| x.wrapping_neg()),
            "Abs" => v.mapv(|x| x.wrapping_abs()),
            "Floor" | "Ceil" | "Identity" => v,
            _ => return Err(ErrorKind::Unsupported(format!("constant integer {op}"))),
        };
        return Ok(cast(&Tensor::I64(r), t.dtype()));
    }
    let f: fn(f64) -> f64 = match op {
        "Neg" => |x| -x,
        "Abs" => f64::abs,
        "Sqrt" => f64::sqrt,
        "Exp" => f64::exp,
        "Log" => f64::ln,
        "Reciprocal" => f64::recip,
        "Floor" => f64::floor,
        "Ceil" => f64::ceil,
        "Relu" => |x| x.max(0.0),
        "Sigmoid" => |x| 1.0 / (1.0 + (-x).exp()),
        "Tanh" => f64::tanh,
        _ => return Err(ErrorKind::Unsupported(format!("constant {op}"))),
    };
    Ok(cast(&Tensor::F64(t.to_f64().mapv(f)), t.dtype()))
}

/// A tensor of `shape` filled with the single value of `fill`.
pub(crate) fn filled(fill: &Tensor, shape: &[usize]) -> Result<Tensor, ErrorKind> {
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if n.is_none_or(|n| n > MAX_CONST_ELEMS) {
        return Err(ErrorKind::TooLarge(format!(
            "a constant of shape {shape:?}"
        )));
    }
    if fill.len() != 1 {
        return Err(ErrorKind::Malformed(
            "fill value must have one element".into(),
        ));
    }
    Ok(map_tensor!(fill, a => {
        let v = a.iter().next().cloned().unwrap_or_default();
        ArrayD::from_elem(IxDyn(shape), v)
    }))
}

/// Broadcasts a constant to `shape` (ONNX `Expand`, numpy rules in both directions).
pub(crate) fn expand(t: &Tensor, shape: &[usize]) -> Result<Tensor, ErrorKind> {
    let target = broadcast_shapes(t.shape(), shape)
        .ok_or_else(|| ErrorKind::Malformed(format!("Expand of {:?} to {shape:?}", t.shape())))?;
    let n = target.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if n.is_none_or(|n| n > MAX_CONST_ELEMS) {
        return Err(ErrorKind::TooLarge(format!("Expand to {target:?}")));
    }
    let mut err = false;
    let out = map_tensor!(t, a => match a.broadcast(IxDyn(&target)) {
        Some(v) => v.to_owned(),
        None => {
            err = true;
            a.clone()
        }
    });
    if err {
        return Err(ErrorKind::Malformed(format!(
            "Expand of {:?} to {shape:?}",
            t.shape()
        )));
    }
    Ok(out)
}

/// Resolves an ONNX `Reshape` target (`0` copies, `-1` infers) against a known input shape.
pub(crate) fn reshape_target(
    input: &[usize],
    target: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, ErrorKind> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(*input.get(i).ok_or_else(|| {
                ErrorKind::Malformed(format!("Reshape 0 at axis {i} beyond the input rank"))
            })?),
            t if t >= 0 => out.push(t as usize),
            _ => return Err(ErrorKind::Malformed(format!("Reshape target {target:?}"))),
        }
    }
    let known = out.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match (infer, known) {
        (Some(i), Some(k)) if k > 0 && total.is_multiple_of(k) => out[i] = total / k,
        (None, Some(k)) if k == total => {}
        _ => {
            return Err(ErrorKind::Malformed(format!(
                "Reshape of {input:?} to {target:?}"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_f32(shape, v.to_vec()).unwrap()
    }

    #[test]
    fn slices_follow_onnx_clamping() {
        assert_eq!(slice_indices(5, 0, 2, 1).unwrap(), vec![0, 1]);
        assert_eq!(
            slice_indices(5, -1, i64::MIN + 1, -1).unwrap(),
            vec![4, 3, 2, 1, 0]
        );
        assert_eq!(slice_indices(5, 3, i64::MAX, 1).unwrap(), vec![3, 4]);
        assert_eq!(
            slice_indices(4, -1, -9223372036854775807, -1).unwrap(),
            vec![3, 2, 1, 0]
        );
        assert!(slice_indices(3, 0, 1, 0).is_err());
    }

    #[test]
    fn gather_and_concat() {
        let a = t(&[3, 2], &[0., 1., 2., 3., 4., 5.]);
        let g = gather(&a, 0, &Tensor::I64(ArrayD::from_elem(IxDyn(&[]), -1))).unwrap();
        assert_eq!(g.shape(), &[2]);
        assert_eq!(g.to_f32().iter().copied().collect::<Vec<_>>(), vec![4., 5.]);
        let c = concat(&[&a, &a], 1).unwrap();
        assert_eq!(c.shape(), &[3, 4]);
        assert!(concat(&[&a, &t(&[2], &[0., 1.])], 0).is_err());
    }

    #[test]
    fn arithmetic_broadcasts_and_keeps_types() {
        let four = Tensor::I64(ArrayD::from_elem(IxDyn(&[]), 4));
        let two = Tensor::I64(ArrayD::from_elem(IxDyn(&[]), 2));
        let r = binary("Mul", &four, &two).unwrap();
        assert_eq!(r.dtype(), DType::I64);
        assert_eq!(r.to_i64().iter().copied().collect::<Vec<_>>(), vec![8]);
        let r = binary("Add", &t(&[2, 1], &[1., 2.]), &t(&[3], &[0., 10., 20.])).unwrap();
        assert_eq!(r.shape(), &[2, 3]);
        assert!(binary("Add", &t(&[2], &[1., 2.]), &t(&[3], &[0., 1., 2.])).is_err());
        assert!(binary("Div", &four, &Tensor::I64(ArrayD::zeros(IxDyn(&[])))).is_err());
    }

    #[test]
    fn reshape_targets() {
        assert_eq!(
            reshape_target(&[2, 8, 2, 2], &[2, -1], false).unwrap(),
            vec![2, 32]
        );
        assert_eq!(
            reshape_target(&[2, 3, 4], &[0, 0, -1], false).unwrap(),
            vec![2, 3, 4]
        );
        assert!(reshape_target(&[2, 3], &[4, -1], false).is_err());
        assert!(filled(&four_f32(), &[1 << 20, 1 << 20]).is_err());
    }

    fn four_f32() -> Tensor {
        t(&[1], &[4.0])
    }
}
