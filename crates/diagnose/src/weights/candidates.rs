//! The mapping search: for one Keras parameter, the torch values under the correct mapping
//! (layout counterpart, gate reorder, RNN bias split, flatten row permutation) and under each
//! known wrong mapping, with the id that wrong mapping is catalogued under.

use catalogue::Id;
use model_ir::{DataLayout, GateOrder, Param, ParamLayout, ParamRole, RnnCell, Step, Tensor};
use report::Tolerance;

use super::Flat;
use crate::align::{Group, ParamMatch};

pub(super) fn values(t: &Tensor) -> Option<Vec<f64>> {
    t.dtype()
        .is_float()
        .then(|| t.to_f64().iter().copied().collect())
}

/// Exact copies allow float32 round-off only.
const COPY: Tolerance = Tolerance::Custom {
    atol: 1e-7,
    rtol: 1e-5,
};

pub(super) fn same(a: &[f64], b: &[f64]) -> bool {
    COPY.all_close(a, b)
}

/// The Keras tensor with only the axis permutations of its counterpart transform applied
/// (gate blocks still in Keras order), and the gate axis in the result.
pub(super) fn permuted_only(p: &Param) -> Option<Tensor> {
    let (_, t) = p.layout.counterpart();
    let mut cur = p.tensor.clone();
    for s in &t.steps {
        if let Step::Permute { perm } = s {
            if perm.len() != cur.shape().len() {
                return None;
            }
            cur = cur.permuted(perm);
        }
    }
    Some(cur)
}

/// Reorders gate blocks along `axis`: block `i` of the result is block `order[i]`.
pub(super) fn reorder(t: &Tensor, axis: usize, order: &[usize]) -> Option<Tensor> {
    let len = *t.shape().get(axis)?;
    let g = order.len();
    if g == 0 || len % g != 0 {
        return None;
    }
    let size = len / g;
    let idx: Vec<usize> = order
        .iter()
        .flat_map(|&b| (b * size)..((b + 1) * size))
        .collect();
    Some(t.select(axis, &idx))
}

pub(super) fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

pub(super) fn gate_names(order: GateOrder, perm: &[usize]) -> String {
    let g = order.gates();
    perm.iter()
        .map(|&i| g.get(i).copied().unwrap_or("?"))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn order_name(l: DataLayout) -> &'static str {
    match l {
        DataLayout::ChannelsLast => "H,W,C",
        DataLayout::ChannelsFirst => "C,H,W",
    }
}

/// Candidate torch values: the correct one first, then the known wrong ones with their id.
pub(super) struct Candidates {
    pub(super) correct: Option<(Vec<f64>, String)>,
    pub(super) wrong: Vec<Wrong>,
}

pub(super) fn rnn_id(cell: Option<RnnCell>) -> Id {
    match cell {
        Some(RnnCell::Gru) => Id::GruLayoutResetAfter,
        Some(RnnCell::Lstm) => Id::LstmLayout,
        _ => Id::DenseLayout,
    }
}

/// A known wrong mapping: its id, how it maps, and the torch values it gives.
type Wrong = (Id, String, Vec<f64>);

/// The mapping search for one match: the correct candidate and every known wrong one.
pub(super) fn candidates(
    m: &ParamMatch<'_>,
    torch_shape: &[usize],
    cell: Option<RnnCell>,
    flatten: Option<&Flat>,
) -> Option<Candidates> {
    let k = m.keras;
    let kv = values(&k.tensor)?;
    let gate_layout = match &k.layout {
        ParamLayout::RnnInGates { gate_order }
        | ParamLayout::RnnGateVector { gate_order }
        | ParamLayout::GruBiasRows { gate_order } => Some(*gate_order),
        _ => None,
    };
    if let Some(from) = gate_layout.filter(|g| !matches!(g, GateOrder::Single)) {
        return gate_candidates(m, from, cell, &kv);
    }
    let (mut correct, mut desc) = layout_counterpart(k, torch_shape)?;
    let mut wrong = Vec::new();
    match &k.layout {
        ParamLayout::DenseInOut => {
            dense_wrong(k, &kv, flatten, &mut correct, &mut desc, &mut wrong)?;
        }
        ParamLayout::ConvSpatialInOut { rank } => {
            conv_wrong(k, *rank, &kv, &correct, torch_shape, &mut wrong)?;
        }
        ParamLayout::ConvTransposeSpatialOutIn { rank } => {
            conv_transpose_wrong(k, *rank, &kv, &correct, torch_shape, &mut wrong)?;
        }
        ParamLayout::DepthwiseSpatialInMult { rank } => {
            depthwise_wrong(k, *rank, &kv, &correct, torch_shape, &mut wrong)?;
        }
        _ => {}
    }
    // Single-block (SimpleRNN) biases: bias_ih + bias_hh = bias.
    if m.group == Group::SumOfTwo {
        wrong.push(bias_counted_twice(rnn_id(cell), &correct));
    }
    Some(Candidates {
        correct: Some((correct, desc)),
        wrong,
    })
}

/// RNN bias split: the Keras bias copied into both torch biases, whose sum then counts it
/// twice.
fn bias_counted_twice(id: Id, correct: &[f64]) -> Wrong {
    let doubled: Vec<f64> = correct.iter().map(|x| 2.0 * x).collect();
    (
        id,
        "the Keras bias copied into both bias_ih and bias_hh (counted twice)".into(),
        doubled,
    )
}

/// Gate reorder of recurrent tensors: every gate-block order, the torch one being correct;
/// the others, the bias counted twice or its rows swapped, and a kernel reshaped instead of
/// transposed are wrong.
fn gate_candidates(
    m: &ParamMatch<'_>,
    from: GateOrder,
    cell: Option<RnnCell>,
    kv: &[f64],
) -> Option<Candidates> {
    let k = m.keras;
    let mut c = Candidates {
        correct: None,
        wrong: Vec::new(),
    };
    let (to_layout, _) = k.layout.counterpart();
    let to = match to_layout {
        ParamLayout::RnnGatesIn { gate_order }
        | ParamLayout::RnnGateVector { gate_order }
        | ParamLayout::GruBiasRows { gate_order } => gate_order,
        _ => from,
    };
    let correct_perm = from.permutation_to(to)?;
    let base = permuted_only(k)?;
    let axis = match k.layout {
        ParamLayout::GruBiasRows { .. } => 1,
        _ => 0,
    };
    let id = rnn_id(cell);
    for perm in permutations(from.gates().len()) {
        let t = reorder(&base, axis, &perm)?;
        let v = values(&t)?;
        let label = format!("gate blocks in order {}", gate_names(from, &perm));
        if perm == correct_perm {
            let transposed = matches!(k.layout, ParamLayout::RnnInGates { .. });
            let desc = match (perm.iter().enumerate().all(|(i, p)| i == *p), transposed) {
                (true, true) => "transpose".to_string(),
                (true, false) => "identity".to_string(),
                (false, t) => format!(
                    "{}gates {} → {}",
                    if t { "transpose, " } else { "" },
                    from.gates().join(","),
                    gate_names(from, &perm)
                ),
            };
            c.correct = Some((v.clone(), desc));
            if m.group == Group::SumOfTwo {
                c.wrong.push(bias_counted_twice(id, &v));
            }
            if m.group == Group::Rows {
                let half = v.len() / 2;
                let swapped: Vec<f64> = v[half..].iter().chain(&v[..half]).copied().collect();
                c.wrong
                    .push((id, "bias rows swapped (input ↔ recurrent)".into(), swapped));
            }
        } else {
            c.wrong.push((
                id,
                format!(
                    "{label} (torch expects {})",
                    gate_names(from, &correct_perm)
                ),
                v,
            ));
        }
    }
    if m.group == Group::One && axis == 0 && k.tensor.shape().len() == 2 {
        c.wrong
            .push((id, "reshaped instead of transposed".into(), kv.to_vec()));
    }
    Some(c)
}

/// The layout counterpart of a non-recurrent parameter (the correct mapping and its
/// description); `None` when its shape does not give the torch shape.
fn layout_counterpart(k: &Param, torch_shape: &[usize]) -> Option<(Vec<f64>, String)> {
    let (_, transform) = k.layout.counterpart();
    let mapped = transform.apply(&k.tensor).ok()?;
    let correct = values(&mapped)?;
    let mut desc = transform.describe();
    let mut shape_ok =
        mapped.shape() == torch_shape || mapped.len() == torch_shape.iter().product::<usize>();
    if k.layout == ParamLayout::AsIs && k.tensor.shape() == torch_shape {
        shape_ok = true;
    }
    if !shape_ok {
        return None;
    }
    if matches!(k.layout, ParamLayout::DepthwiseSpatialInMult { .. }) {
        desc = format!("{desc}; reshape to (C·M, 1, k…)");
    }
    Some((correct, desc))
}

/// Dense kernels: after a Flatten whose order differs the rows are permuted; wrong: the rows
/// not permuted, the kernel reshaped (or copied) instead of transposed.
fn dense_wrong(
    k: &Param,
    kv: &[f64],
    flatten: Option<&Flat>,
    correct: &mut Vec<f64>,
    desc: &mut String,
    wrong: &mut Vec<Wrong>,
) -> Option<()> {
    let [rows, cols] = k.tensor.shape() else {
        return None;
    };
    let (rows, cols) = (*rows, *cols);
    if let Some(flat) = flatten {
        flatten_rows(kv, (rows, cols), flat, correct, desc, wrong);
    }
    wrong.push((
        Id::DenseLayout,
        if rows == cols {
            "copied without the transpose".into()
        } else {
            "reshaped to (out, in) instead of transposed".into()
        },
        kv.to_vec(),
    ));
    Some(())
}

/// Flatten row permutation: the correct Dense kernel after a Flatten whose order differs
/// has its rows permuted into the torch flatten order; transposing only is `flatten-order`.
fn flatten_rows(
    kv: &[f64],
    (rows, cols): (usize, usize),
    flat: &Flat,
    correct: &mut Vec<f64>,
    desc: &mut String,
    wrong: &mut Vec<Wrong>,
) {
    let Flat {
        perm, from: ko, to, ..
    } = flat;
    // W[o, i] = K[perm[i], o]
    let mut permuted = vec![0.0; rows * cols];
    for o in 0..cols {
        for i in 0..rows {
            permuted[o * rows + i] = kv[perm[i] * cols + o];
        }
    }
    let plain = std::mem::replace(correct, permuted);
    *desc = format!(
        "rows permuted {} → {} (flatten order), then transpose",
        order_name(*ko),
        order_name(*to)
    );
    wrong.push((
        Id::FlattenOrder,
        format!(
            "transposed without permuting the rows from {} to {} flatten order",
            order_name(*ko),
            order_name(*to)
        ),
        plain,
    ));
}

/// Known wrong mappings of a convolution kernel: reshaped instead of transposed, spatial
/// axes swapped, in and out channels swapped, flipped spatially.
fn conv_wrong(
    k: &Param,
    r: usize,
    kv: &[f64],
    correct: &[f64],
    torch_shape: &[usize],
    wrong: &mut Vec<Wrong>,
) -> Option<()> {
    // The pointwise kernel of a SeparableConv belongs to the separable layout.
    let id = if k.role == ParamRole::PointwiseKernel {
        Id::DepthwiseSeparableLayout
    } else {
        Id::ConvLayout
    };
    wrong.push((id, "reshaped instead of transposed".into(), kv.to_vec()));
    // Spatial axes swapped: (o, i, kw, kh).
    if r == 2 {
        let t = k.tensor.permuted(&[3, 2, 1, 0]);
        if t.shape() == torch_shape {
            wrong.push((
                id,
                "transposed with the spatial axes swapped (permute 3,2,1,0)".into(),
                values(&t)?,
            ));
        }
    }
    // In and out swapped (square channel counts).
    let mut p: Vec<usize> = vec![r, r + 1];
    p.extend(0..r);
    let t = k.tensor.permuted(&p);
    if t.shape() == torch_shape {
        wrong.push((id, "in and out channels swapped".into(), values(&t)?));
    }
    // Spatially flipped (convolution vs cross-correlation).
    wrong.push((
        id,
        "kernel flipped spatially (both frameworks cross-correlate)".into(),
        flip_spatial(correct, torch_shape, 2),
    ));
    Some(())
}

/// Known wrong mappings of a transposed-convolution kernel: reshaped instead of transposed,
/// in and out channels swapped, flipped spatially.
fn conv_transpose_wrong(
    k: &Param,
    r: usize,
    kv: &[f64],
    correct: &[f64],
    torch_shape: &[usize],
    wrong: &mut Vec<Wrong>,
) -> Option<()> {
    wrong.push((
        Id::ConvTransposeLayout,
        "reshaped instead of transposed".into(),
        kv.to_vec(),
    ));
    let mut p: Vec<usize> = vec![r, r + 1];
    p.extend(0..r);
    let t = k.tensor.permuted(&p);
    if t.shape() == torch_shape {
        wrong.push((
            Id::ConvTransposeLayout,
            "in and out channels swapped".into(),
            values(&t)?,
        ));
    }
    wrong.push((
        Id::ConvTransposeLayout,
        "kernel flipped spatially".into(),
        flip_spatial(correct, torch_shape, 2),
    ));
    Some(())
}

/// Known wrong mappings of a depthwise kernel, Keras (*k, C, M) → torch (C·M, 1, *k) with
/// output channel c·M + m: reshaped, transposed like a regular conv kernel, flipped.
fn depthwise_wrong(
    k: &Param,
    r: usize,
    kv: &[f64],
    correct: &[f64],
    torch_shape: &[usize],
    wrong: &mut Vec<Wrong>,
) -> Option<()> {
    let id = Id::DepthwiseSeparableLayout;
    let ks = k.tensor.shape();
    let (ch, mult) = (ks.get(r).copied()?, ks.get(r + 1).copied()?);
    wrong.push((
        id,
        format!(
            "reshaped to {torch_shape:?} instead of transposed: the ({}, C·M) buffer \
             reinterpreted as (C·M, 1, {})",
            spatial_names(r),
            spatial_names(r)
        ),
        kv.to_vec(),
    ));
    // The regular-conv transpose (M taken for the output axis): channel m·C + c.
    if mult > 1 && ch > 1 {
        let mut p: Vec<usize> = vec![r + 1, r];
        p.extend(0..r);
        wrong.push((
            id,
            "transposed like a regular conv kernel (channel m·C + c instead of c·M + m)".into(),
            values(&k.tensor.permuted(&p))?,
        ));
    }
    wrong.push((
        id,
        "kernel flipped spatially (both frameworks cross-correlate)".into(),
        flip_spatial(correct, torch_shape, 2),
    ));
    Some(())
}

/// `kh, kw` (or `kw`, `kd, kh, kw`) for a kernel of spatial rank `r`.
pub(super) fn spatial_names(r: usize) -> &'static str {
    match r {
        1 => "kw",
        2 => "kh, kw",
        3 => "kd, kh, kw",
        _ => "k…",
    }
}

/// Reverses every axis from `first` on of a row-major tensor of `shape`.
pub(super) fn flip_spatial(v: &[f64], shape: &[usize], first: usize) -> Vec<f64> {
    let n = v.len();
    let mut out = vec![0.0; n];
    let rank = shape.len();
    let mut idx = vec![0usize; rank];
    for (flat, item) in out.iter_mut().enumerate() {
        let mut rem = flat;
        for a in (0..rank).rev() {
            idx[a] = rem % shape[a].max(1);
            rem /= shape[a].max(1);
        }
        let mut src = 0;
        for a in 0..rank {
            let i = if a >= first {
                shape[a] - 1 - idx[a]
            } else {
                idx[a]
            };
            src = src * shape[a] + i;
        }
        *item = v.get(src).copied().unwrap_or(0.0);
    }
    out
}
