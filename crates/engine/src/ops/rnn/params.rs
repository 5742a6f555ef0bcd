//! How the stored recurrent parameters map onto the canonical per-direction form of
//! [`super`]: which tensor (and which direction, row, half, transpose, gate permutation) each
//! canonical piece `Wx`, `Wh`, `bx`, `bh` is read from, the shapes that reading implies, and the
//! inverse mapping that writes gradients back in the stored layout.

use model_ir::{GateOrder, ParamLayout, ParamRole, RnnBias, RnnCell};
use ndarray::{ArrayD, Axis, IxDyn};

use super::canonical_order;
use crate::error::EngineError;
use crate::float::Float;
use crate::ops::NodeCx;
use crate::ops::util::standard;

/// How a canonical piece is read from a stored parameter.
#[derive(Debug, Clone)]
pub(super) struct PMap {
    pub(super) name: String,
    /// Index on a leading direction axis (ONNX layouts).
    pub(super) dir: Option<usize>,
    /// Row of a `(2, G·H)` bias, or half of a `(2·G·H)` bias.
    pub(super) part: Part,
    /// Stored as `(G·H, in)`.
    pub(super) transposed: bool,
    /// Canonical gate block `i` is stored block `perm[i]`.
    pub(super) perm: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Whole,
    Row(usize),
    Half(usize),
}

impl PMap {
    /// The canonical piece: `(rows, G·H)` for kernels, `(G·H)` for biases.
    pub(super) fn read<F: Float>(&self, stored: &ArrayD<F>, gh: usize) -> ArrayD<F> {
        let mut a = stored.view();
        if let Some(d) = self.dir {
            a = a.index_axis_move(Axis(0), d);
        }
        let a = match self.part {
            Part::Whole => a.to_owned(),
            Part::Row(r) => a.index_axis_move(Axis(0), r).to_owned(),
            Part::Half(h) => a
                .slice_axis(Axis(0), ndarray::Slice::from(h * gh..(h + 1) * gh))
                .to_owned(),
        };
        let a = if self.transposed {
            a.reversed_axes()
        } else {
            a
        };
        reorder_last(&standard(a), &self.perm, false)
    }

    /// A canonical gradient placed into a zero tensor of the stored shape.
    pub(super) fn write<F: Float>(&self, g: &ArrayD<F>, stored: &[usize], gh: usize) -> ArrayD<F> {
        let g = reorder_last(g, &self.perm, true);
        let g = if self.transposed {
            g.reversed_axes()
        } else {
            g
        };
        let mut out = ArrayD::<F>::zeros(IxDyn(stored));
        {
            let mut v = out.view_mut();
            if let Some(d) = self.dir {
                v = v.index_axis_move(Axis(0), d);
            }
            match self.part {
                Part::Whole => v.assign(&g),
                Part::Row(r) => v.index_axis_move(Axis(0), r).assign(&g),
                Part::Half(h) => v
                    .slice_axis_mut(Axis(0), ndarray::Slice::from(h * gh..(h + 1) * gh))
                    .assign(&g),
            }
        }
        out
    }
}

/// Reorders the gate blocks of the last axis: block `i` of the result is block `perm[i]` of
/// `a` (or the inverse mapping).
pub(super) fn reorder_last<F: Float>(a: &ArrayD<F>, perm: &[usize], inverse: bool) -> ArrayD<F> {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return a.clone();
    }
    let last = a.ndim() - 1;
    let n = a.shape()[last];
    let h = n / perm.len();
    let mut idx = vec![0; n];
    for (i, &p) in perm.iter().enumerate() {
        for j in 0..h {
            if inverse {
                idx[p * h + j] = i * h + j;
            } else {
                idx[i * h + j] = p * h + j;
            }
        }
    }
    a.select(Axis(last), &idx)
}

/// Parameters of one direction.
#[derive(Debug, Clone)]
pub(super) struct DirParams {
    pub(super) wx: PMap,
    pub(super) wh: PMap,
    pub(super) bx: Option<PMap>,
    pub(super) bh: Option<PMap>,
}

/// The canonical shape a map reads, from the stored shape.
pub(super) fn read_shape(cx: &NodeCx<'_>, m: &PMap) -> Result<Vec<usize>, EngineError> {
    let p = cx
        .node
        .params
        .iter()
        .find(|p| p.name == m.name)
        .ok_or_else(|| cx.invalid(format!("parameter `{}` vanished", m.name)))?;
    let mut s = p.tensor.shape().to_vec();
    let bad = || {
        cx.invalid(format!(
            "parameter `{}` of shape {:?} does not fit its layout",
            m.name,
            p.tensor.shape()
        ))
    };
    if let Some(d) = m.dir {
        if s.is_empty() || s[0] <= d {
            return Err(bad());
        }
        s.remove(0);
    }
    match m.part {
        Part::Whole => {}
        Part::Row(r) => {
            if s.len() != 2 || s[0] <= r {
                return Err(bad());
            }
            s.remove(0);
        }
        Part::Half(_) => {
            if s.len() != 1 || s[0] % 2 != 0 {
                return Err(bad());
            }
            s[0] /= 2;
        }
    }
    if m.transposed {
        s.reverse();
    }
    Ok(s)
}

/// Finds the parameters of direction `d` of `ndir`.
pub(super) fn resolve_dir(
    cx: &NodeCx<'_>,
    cell: RnnCell,
    op_order: GateOrder,
    bias: RnnBias,
    d: usize,
    ndir: usize,
    units: usize,
) -> Result<DirParams, EngineError> {
    let canon = canonical_order(cell);
    let gh = cell.gates() * units;
    let roles = if d == 0 {
        [
            ParamRole::InputKernel,
            ParamRole::RecurrentKernel,
            ParamRole::InputBias,
            ParamRole::RecurrentBias,
        ]
    } else {
        [
            ParamRole::ReverseInputKernel,
            ParamRole::ReverseRecurrentKernel,
            ParamRole::ReverseInputBias,
            ParamRole::ReverseRecurrentBias,
        ]
    };
    // The parameter of a slot for this direction: the reverse role (d = 1), else the d-th of
    // the parameters with the forward role (importers list the forward direction first), or
    // one direction-stacked ONNX tensor. Keras stores the GRU `(2, 3H)` bias under `Bias`.
    let stacked = |p: &model_ir::Param| {
        matches!(
            p.layout,
            ParamLayout::OnnxRnnWeight { .. } | ParamLayout::OnnxRnnBias { .. }
        )
    };
    let has_reverse = |role_f: ParamRole| {
        let rev = match role_f {
            ParamRole::InputKernel => ParamRole::ReverseInputKernel,
            ParamRole::RecurrentKernel => ParamRole::ReverseRecurrentKernel,
            ParamRole::InputBias => ParamRole::ReverseInputBias,
            _ => ParamRole::ReverseRecurrentBias,
        };
        !cx.params_with(rev).is_empty()
    };
    let pick = |role_d: ParamRole,
                role_f: ParamRole|
     -> Result<Option<(&model_ir::Param, Option<usize>)>, EngineError> {
        if d == 1 {
            let own = cx.params_with(role_d);
            match own.as_slice() {
                [] => {}
                [p] => return Ok(Some((p, stacked(p).then_some(1)))),
                _ => {
                    return Err(
                        cx.invalid(format!("several parameters with role {}", role_d.name()))
                    );
                }
            }
        }
        let mut fw = cx.params_with(role_f);
        if role_f == ParamRole::InputBias {
            fw.extend(cx.params_with(ParamRole::Bias));
        }
        match fw.as_slice() {
            [] => Ok(None),
            [p] if stacked(p) => Ok(Some((p, Some(d)))),
            // One forward-role parameter: the forward direction's, when the reverse direction
            // has its own roles.
            [p] if ndir == 1 || (d == 0 && has_reverse(role_f)) => Ok(Some((p, None))),
            list if list.len() == ndir => Ok(Some((list[d], None))),
            list => Err(cx.invalid(format!(
                "{} parameters with role {} for {ndir} direction(s)",
                list.len(),
                role_f.name()
            ))),
        }
    };
    let fw_roles = [
        ParamRole::InputKernel,
        ParamRole::RecurrentKernel,
        ParamRole::InputBias,
        ParamRole::RecurrentBias,
    ];
    let kernel = |i: usize| -> Result<PMap, EngineError> {
        let (p, dir) = pick(roles[i], fw_roles[i])?.ok_or_else(|| {
            cx.invalid(format!("missing parameter with role {}", roles[i].name()))
        })?;
        let (transposed, order, dir) = match &p.layout {
            ParamLayout::RnnInGates { gate_order } => (false, *gate_order, dir),
            ParamLayout::RnnGatesIn { gate_order } => (true, *gate_order, dir),
            ParamLayout::OnnxRnnWeight { gate_order } => {
                (true, *gate_order, Some(dir.unwrap_or(0)))
            }
            other => {
                return Err(cx.unsupported(format!(
                    "RNN kernel `{}` in layout {}",
                    p.name,
                    other.describe()
                )));
            }
        };
        Ok(PMap {
            name: p.name.clone(),
            dir,
            part: Part::Whole,
            transposed,
            perm: perm(cx, order, canon)?,
        })
    };
    let wx = kernel(0)?;
    let wh = kernel(1)?;
    let mut bx = None;
    let mut bh = None;
    for (i, is_input) in [(2usize, true), (3usize, false)] {
        let Some((p, dir)) = pick(roles[i], fw_roles[i])? else {
            continue;
        };
        let shape = p.tensor.shape();
        let order_of = |l: &ParamLayout| match l {
            ParamLayout::RnnGateVector { gate_order }
            | ParamLayout::GruBiasRows { gate_order }
            | ParamLayout::OnnxRnnBias { gate_order } => *gate_order,
            _ => op_order,
        };
        let order = perm(cx, order_of(&p.layout), canon)?;
        let mk = |part: Part, dir: Option<usize>| PMap {
            name: p.name.clone(),
            dir,
            part,
            transposed: false,
            perm: order.clone(),
        };
        match (&p.layout, shape.len()) {
            (ParamLayout::OnnxRnnBias { .. }, _) => {
                let dir = Some(dir.unwrap_or(0));
                bx = Some(mk(Part::Half(0), dir));
                bh = Some(mk(Part::Half(1), dir));
            }
            (_, 2) if shape[0] == 2 => {
                bx = Some(mk(Part::Row(0), dir));
                bh = Some(mk(Part::Row(1), dir));
            }
            (_, 1) if shape[0] == gh => {
                if is_input {
                    bx = Some(mk(Part::Whole, dir));
                } else {
                    bh = Some(mk(Part::Whole, dir));
                }
            }
            _ => {
                return Err(cx.invalid(format!("RNN bias `{}` has shape {shape:?}", p.name)));
            }
        }
    }
    let ok = match bias {
        RnnBias::None => bx.is_none() && bh.is_none(),
        RnnBias::Single => bx.is_some() && bh.is_none(),
        RnnBias::KerasInputRecurrentRows | RnnBias::InputAndRecurrent => {
            bx.is_some() && bh.is_some()
        }
    };
    if !ok {
        return Err(cx.invalid(format!(
            "the stored biases do not match the bias arrangement {bias:?}"
        )));
    }
    Ok(DirParams { wx, wh, bx, bh })
}

pub(super) fn perm(
    cx: &NodeCx<'_>,
    from: GateOrder,
    to: GateOrder,
) -> Result<Vec<usize>, EngineError> {
    from.permutation_to(to)
        .ok_or_else(|| cx.invalid(format!("gate order {from:?} does not fit a {to:?} cell")))
}
