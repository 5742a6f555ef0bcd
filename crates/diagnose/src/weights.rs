//! Step 2: how the torch initial weights relate to the Keras ones.
//!
//! For every paired parameter, in this order:
//! 1. the correct mapping (the layout counterpart, gate reorder, RNN bias split, and the row
//!    permutation of a Dense after a Flatten whose order differs) reproduces the torch tensor:
//!    the weights were copied correctly;
//! 2. a known wrong mapping reproduces it: kernel reshaped instead of transposed
//!    (`dense-layout`, `conv-layout`, `conv-transpose-layout`, `depthwise-separable-layout`),
//!    spatially flipped or axes swapped (`conv-layout`), Dense rows not permuted (or permuted
//!    when they should not be) after a Flatten (`flatten-order`), gate blocks in another order
//!    or the LSTM bias copied into both torch biases (`lstm-layout`), GRU gates not reordered
//!    or its bias rows swapped (`gru-layout-reset-after`);
//! 3. otherwise the two were initialised independently: their distributions are compared
//!    (constant vs random, standard deviation within sampling error, uniform vs bell-shaped,
//!    orthogonality of recurrent kernels) and named after the framework initializer they fit
//!    (`dense-init`, `conv-init`, `depthwise-init`, `embedding-init`, `rnn-init`).

use std::collections::BTreeMap;

use catalogue::Id;
use model_ir::{
    DataLayout, GateOrder, Model, Node, Op, Param, ParamLayout, ParamRole, RnnCell, Step, Tensor,
    layout::flatten_permutation,
};
use report::{Evidence, Severity, Tolerance};

use crate::align::{Aligned, Group, Pair, ParamMatch};
use crate::findings::{Findings, ev, pair_label, torch_ref};
use crate::graph::{Shapes, source_of};
use crate::stats::{Dist, Known, Stats, describe, fits, orthogonal, same_distribution};

/// How one paired parameter's torch values relate to the Keras values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Relation {
    /// The correct mapping reproduces the torch tensor (and the values are not constant).
    Copied,
    /// Equal constants (zero biases, unit gammas): says nothing about copying.
    EqualConstant,
    /// A known wrong mapping reproduces the torch tensor.
    Wrong { id: Id, how: String },
    /// Drawn independently.
    Independent,
    /// Not comparable (non-float storage, shapes no mapping explains).
    Unknown,
}

/// The result of step 2 for every pair, in the order of [`Aligned::pairs`].
#[derive(Debug, Default)]
pub(crate) struct WeightReport {
    /// Per pair: the layer's summary (`copied`, `independent draws`, ...) and, per parameter
    /// match, the mapping description.
    pub(crate) layers: Vec<(String, Vec<String>)>,
    /// Every paired torch parameter under the correct mapping of the Keras initial value
    /// (torch name → values in the torch shape), for the engine-based stages.
    pub(crate) mapped: BTreeMap<String, (Vec<f64>, Vec<usize>)>,
    /// Torch parameters whose own initial value is part of a finding (a wrong mapping or an
    /// initialisation that differs), by torch name: the finding's id. The simulation keeps
    /// them as they are, and aligning that finding replaces them by `mapped`.
    pub(crate) own: BTreeMap<String, Id>,
}

/// The correct mapping of a match split into its torch tensors: (name, values, shape).
fn mapped_values(
    m: &ParamMatch<'_>,
    cell: Option<RnnCell>,
    flatten: Option<&Flat>,
) -> Vec<(String, Vec<f64>, Vec<usize>)> {
    let Some((_, tshape)) = torch_values(m) else {
        return Vec::new();
    };
    let Some((v, _)) = candidates(m, &tshape, cell, flatten).and_then(|c| c.correct) else {
        return Vec::new();
    };
    let shape = |p: &Param| p.tensor.shape().to_vec();
    match m.group {
        Group::One => m
            .torch
            .first()
            .filter(|p| p.tensor.len() == v.len())
            .map(|p| vec![(p.name.clone(), v, shape(p))])
            .unwrap_or_default(),
        // Keras's one bias goes to bias_ih; bias_hh stays zero.
        Group::SumOfTwo => match (m.torch.first(), m.torch.get(1)) {
            (Some(a), Some(b)) if a.tensor.len() == v.len() => vec![
                (a.name.clone(), v, shape(a)),
                (b.name.clone(), vec![0.0; b.tensor.len()], shape(b)),
            ],
            _ => Vec::new(),
        },
        Group::Rows => match (m.torch.first(), m.torch.get(1)) {
            (Some(a), Some(b)) if a.tensor.len() + b.tensor.len() == v.len() => {
                let (x, y) = v.split_at(a.tensor.len());
                vec![
                    (a.name.clone(), x.to_vec(), shape(a)),
                    (b.name.clone(), y.to_vec(), shape(b)),
                ]
            }
            _ => Vec::new(),
        },
    }
}

fn values(t: &Tensor) -> Option<Vec<f64>> {
    t.dtype()
        .is_float()
        .then(|| t.to_f64().iter().copied().collect())
}

/// Exact copies allow float32 round-off only.
const COPY: Tolerance = Tolerance::Custom {
    atol: 1e-7,
    rtol: 1e-5,
};

fn same(a: &[f64], b: &[f64]) -> bool {
    COPY.all_close(a, b)
}

/// The Keras tensor with only the axis permutations of its counterpart transform applied
/// (gate blocks still in Keras order), and the gate axis in the result.
fn permuted_only(p: &Param) -> Option<Tensor> {
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
fn reorder(t: &Tensor, axis: usize, order: &[usize]) -> Option<Tensor> {
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

fn permutations(n: usize) -> Vec<Vec<usize>> {
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

fn gate_names(order: GateOrder, perm: &[usize]) -> String {
    let g = order.gates();
    perm.iter()
        .map(|&i| g.get(i).copied().unwrap_or("?"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Rows of the Dense kernel after a Flatten: `Some((perm, keras order, torch order))` when the
/// two flatten orders differ, i.e. when the correct mapping permutes the kernel rows.
/// The row permutation of a Dense kernel after a Flatten whose order differs between the two
/// models.
#[derive(Debug, Clone)]
pub(crate) struct Flat {
    perm: Vec<usize>,
    from: DataLayout,
    to: DataLayout,
    spatial: Vec<usize>,
    channels: usize,
}

fn flatten_context(
    keras: &Model,
    torch: &Model,
    pair: &Pair<'_>,
    kshapes: &Shapes,
) -> Option<Flat> {
    if !matches!(pair.keras.op, Op::Dense { .. }) {
        return None;
    }
    let kf = source_of(keras, pair.keras.inputs.first()?)?;
    let tf = source_of(torch, pair.torch.inputs.first()?)?;
    let (Op::Flatten { order: ko, .. }, Op::Flatten { order: to, .. }) = (&kf.op, &tf.op) else {
        return None;
    };
    let mut to = *to;
    // A permute to channels-last right before torch's flatten makes its order H, W, C.
    if let Some(p) = tf.inputs.first().and_then(|v| source_of(torch, v))
        && let Op::Permute { perm } = &p.op
        && perm.len() >= 3
        && perm[perm.len() - 1] == 1
    {
        to = DataLayout::ChannelsLast;
    }
    if *ko == to {
        return None;
    }
    // Keras's flatten input: (N, *spatial, C) in channels-last.
    let shape = kshapes.get(kf.inputs.first()?)?;
    if shape.len() < 3 {
        return None;
    }
    let dims: Option<Vec<usize>> = shape[1..].iter().copied().collect();
    let dims = dims?;
    let (spatial, c) = match ko {
        DataLayout::ChannelsLast => (dims[..dims.len() - 1].to_vec(), dims[dims.len() - 1]),
        DataLayout::ChannelsFirst => (dims[1..].to_vec(), dims[0]),
    };
    if c <= 1 || spatial.iter().product::<usize>() <= 1 {
        return None;
    }
    Some(Flat {
        perm: flatten_permutation(&spatial, c, *ko, to),
        from: *ko,
        to,
        spatial,
        channels: c,
    })
}

fn order_name(l: DataLayout) -> &'static str {
    match l {
        DataLayout::ChannelsLast => "H,W,C",
        DataLayout::ChannelsFirst => "C,H,W",
    }
}

/// Candidate torch values: the correct one first, then the known wrong ones with their id.
struct Candidates {
    correct: Option<(Vec<f64>, String)>,
    wrong: Vec<(Id, String, Vec<f64>)>,
}

fn rnn_id(cell: Option<RnnCell>) -> Id {
    match cell {
        Some(RnnCell::Gru) => Id::GruLayoutResetAfter,
        Some(RnnCell::Lstm) => Id::LstmLayout,
        _ => Id::DenseLayout,
    }
}

fn candidates(
    m: &ParamMatch<'_>,
    torch_shape: &[usize],
    cell: Option<RnnCell>,
    flatten: Option<&Flat>,
) -> Option<Candidates> {
    let k = m.keras;
    let kv = values(&k.tensor)?;
    let mut c = Candidates {
        correct: None,
        wrong: Vec::new(),
    };
    let gate_layout = match &k.layout {
        ParamLayout::RnnInGates { gate_order }
        | ParamLayout::RnnGateVector { gate_order }
        | ParamLayout::GruBiasRows { gate_order } => Some(*gate_order),
        _ => None,
    };
    if let Some(from) = gate_layout.filter(|g| !matches!(g, GateOrder::Single)) {
        // Recurrent tensors: every gate-block order, the torch one being correct.
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
                    let doubled: Vec<f64> = v.iter().map(|x| 2.0 * x).collect();
                    c.wrong.push((
                        id,
                        "the Keras bias copied into both bias_ih and bias_hh (counted twice)"
                            .into(),
                        doubled,
                    ));
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
                .push((id, "reshaped instead of transposed".into(), kv.clone()));
        }
        return Some(c);
    }
    // Single-block (SimpleRNN) biases: bias_ih + bias_hh = bias.
    let (_, transform) = k.layout.counterpart();
    let mapped = transform.apply(&k.tensor).ok()?;
    let mut correct = values(&mapped)?;
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
    match &k.layout {
        ParamLayout::DenseInOut => {
            let [rows, cols] = k.tensor.shape() else {
                return None;
            };
            let (rows, cols) = (*rows, *cols);
            let permuted_rows = |perm: &[usize]| -> Vec<f64> {
                // W[o, i] = K[perm[i], o]
                let mut out = vec![0.0; rows * cols];
                for o in 0..cols {
                    for i in 0..rows {
                        out[o * rows + i] = kv[perm[i] * cols + o];
                    }
                }
                out
            };
            if let Some(Flat {
                perm, from: ko, to, ..
            }) = flatten
            {
                let plain = correct.clone();
                correct = permuted_rows(perm);
                desc = format!(
                    "rows permuted {} → {} (flatten order), then transpose",
                    order_name(*ko),
                    order_name(*to)
                );
                c.wrong.push((
                    Id::FlattenOrder,
                    format!(
                        "transposed without permuting the rows from {} to {} flatten order",
                        order_name(*ko),
                        order_name(*to)
                    ),
                    plain,
                ));
            }
            c.wrong.push((
                Id::DenseLayout,
                if rows == cols {
                    "copied without the transpose".into()
                } else {
                    "reshaped to (out, in) instead of transposed".into()
                },
                kv.clone(),
            ));
        }
        ParamLayout::ConvSpatialInOut { rank } => {
            let r = *rank;
            // The pointwise kernel of a SeparableConv belongs to the separable layout.
            let id = if k.role == ParamRole::PointwiseKernel {
                Id::DepthwiseSeparableLayout
            } else {
                Id::ConvLayout
            };
            c.wrong
                .push((id, "reshaped instead of transposed".into(), kv.clone()));
            // Spatial axes swapped: (o, i, kw, kh).
            if r == 2 {
                let t = k.tensor.permuted(&[3, 2, 1, 0]);
                if t.shape() == torch_shape {
                    c.wrong.push((
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
                c.wrong
                    .push((id, "in and out channels swapped".into(), values(&t)?));
            }
            // Spatially flipped (convolution vs cross-correlation).
            c.wrong.push((
                id,
                "kernel flipped spatially (both frameworks cross-correlate)".into(),
                flip_spatial(&correct, torch_shape, 2),
            ));
        }
        ParamLayout::ConvTransposeSpatialOutIn { rank } => {
            let r = *rank;
            c.wrong.push((
                Id::ConvTransposeLayout,
                "reshaped instead of transposed".into(),
                kv.clone(),
            ));
            let mut p: Vec<usize> = vec![r, r + 1];
            p.extend(0..r);
            let t = k.tensor.permuted(&p);
            if t.shape() == torch_shape {
                c.wrong.push((
                    Id::ConvTransposeLayout,
                    "in and out channels swapped".into(),
                    values(&t)?,
                ));
            }
            c.wrong.push((
                Id::ConvTransposeLayout,
                "kernel flipped spatially".into(),
                flip_spatial(&correct, torch_shape, 2),
            ));
        }
        ParamLayout::DepthwiseSpatialInMult { rank } => {
            // Keras (*k, C, M) → torch (C·M, 1, *k), output channel c·M + m.
            let r = *rank;
            let id = Id::DepthwiseSeparableLayout;
            let ks = k.tensor.shape();
            let (ch, mult) = (ks.get(r).copied()?, ks.get(r + 1).copied()?);
            c.wrong.push((
                id,
                format!(
                    "reshaped to {torch_shape:?} instead of transposed: the ({}, C·M) buffer \
                     reinterpreted as (C·M, 1, {})",
                    spatial_names(r),
                    spatial_names(r)
                ),
                kv.clone(),
            ));
            // The regular-conv transpose (M taken for the output axis): channel m·C + c.
            if mult > 1 && ch > 1 {
                let mut p: Vec<usize> = vec![r + 1, r];
                p.extend(0..r);
                c.wrong.push((
                    id,
                    "transposed like a regular conv kernel (channel m·C + c instead of c·M + m)"
                        .into(),
                    values(&k.tensor.permuted(&p))?,
                ));
            }
            c.wrong.push((
                id,
                "kernel flipped spatially (both frameworks cross-correlate)".into(),
                flip_spatial(&correct, torch_shape, 2),
            ));
        }
        _ => {}
    }
    if m.group == Group::SumOfTwo {
        let doubled: Vec<f64> = correct.iter().map(|x| 2.0 * x).collect();
        c.wrong.push((
            rnn_id(cell),
            "the Keras bias copied into both bias_ih and bias_hh (counted twice)".into(),
            doubled,
        ));
    }
    c.correct = Some((correct, desc));
    Some(c)
}

/// `kh, kw` (or `kw`, `kd, kh, kw`) for a kernel of spatial rank `r`.
fn spatial_names(r: usize) -> &'static str {
    match r {
        1 => "kw",
        2 => "kh, kw",
        3 => "kd, kh, kw",
        _ => "k…",
    }
}

/// Reverses every axis from `first` on of a row-major tensor of `shape`.
fn flip_spatial(v: &[f64], shape: &[usize], first: usize) -> Vec<f64> {
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

/// The torch values of a match, combined the way the Keras tensor is: one tensor as is,
/// `bias_ih + bias_hh`, or `[bias_ih; bias_hh]`.
fn torch_values(m: &ParamMatch<'_>) -> Option<(Vec<f64>, Vec<usize>)> {
    match m.group {
        Group::One => {
            let t = m.torch.first()?;
            Some((values(&t.tensor)?, t.tensor.shape().to_vec()))
        }
        Group::SumOfTwo => {
            let a = values(&m.torch.first()?.tensor)?;
            let b = values(&m.torch.get(1)?.tensor)?;
            (a.len() == b.len()).then(|| {
                let n = a.len();
                (a.iter().zip(&b).map(|(x, y)| x + y).collect(), vec![n])
            })
        }
        Group::Rows => {
            let mut a = values(&m.torch.first()?.tensor)?;
            let b = values(&m.torch.get(1)?.tensor)?;
            let n = a.len();
            a.extend(b);
            Some((a, vec![2, n]))
        }
    }
}

fn torch_names(m: &ParamMatch<'_>) -> String {
    let names: Vec<&str> = m.torch.iter().map(|p| p.name.as_str()).collect();
    match m.group {
        Group::SumOfTwo => names.join(" + "),
        _ => names.join(", "),
    }
}

fn cell_of(n: &Node) -> Option<RnnCell> {
    match &n.op {
        Op::Rnn { cell, .. } => Some(*cell),
        _ => None,
    }
}

/// Decides the relation of one match, and describes the correct mapping.
fn relate(m: &ParamMatch<'_>, cell: Option<RnnCell>, flatten: Option<&Flat>) -> (Relation, String) {
    let Some((tv, tshape)) = torch_values(m) else {
        return (Relation::Unknown, "not comparable".into());
    };
    let Some(c) = candidates(m, &tshape, cell, flatten) else {
        return (Relation::Unknown, "no layout mapping".into());
    };
    let mut desc = c
        .correct
        .as_ref()
        .map_or_else(|| "unknown".to_string(), |(_, d)| d.clone());
    desc = match m.group {
        Group::SumOfTwo => format!("{desc}; bias = bias_ih + bias_hh"),
        Group::Rows => format!("{desc}; row 0 → bias_ih, row 1 → bias_hh"),
        Group::One => desc,
    };
    if let Some((v, _)) = &c.correct
        && same(&tv, v)
    {
        let s = Stats::of(&tv);
        return (
            if s.constant() {
                Relation::EqualConstant
            } else {
                Relation::Copied
            },
            desc,
        );
    }
    let ks = values(&m.keras.tensor).map(|v| Stats::of(&v));
    // A wrong mapping of a constant tensor is indistinguishable from a copy.
    if ks.is_some_and(|s| !s.constant()) {
        for (id, how, v) in &c.wrong {
            if v.len() == tv.len() && same(&tv, v) {
                return (
                    Relation::Wrong {
                        id: *id,
                        how: how.clone(),
                    },
                    desc,
                );
            }
        }
    }
    (Relation::Independent, desc)
}

/// Fans of a Keras tensor (`compute_fans`): (fan_in, fan_out).
fn keras_fans(p: &Param) -> (f64, f64) {
    let s = p.tensor.shape();
    match s.len() {
        0 => (1.0, 1.0),
        1 => (s[0] as f64, s[0] as f64),
        2 => (s[0] as f64, s[1] as f64),
        n => {
            let rf: usize = s[..n - 2].iter().product();
            ((rf * s[n - 2]) as f64, (rf * s[n - 1]) as f64)
        }
    }
}

/// torch `_calculate_fan_in_and_fan_out(weight)[0]` of a torch tensor.
fn torch_fan_in(p: &Param) -> f64 {
    let s = p.tensor.shape();
    match s.len() {
        0 | 1 => s.first().copied().unwrap_or(1) as f64,
        _ => (s[1] * s[2..].iter().product::<usize>()) as f64,
    }
}

/// The initializers a tensor of this layer and role plausibly came from.
fn known_inits(k: &Param, node_t: &Node, t: &[&Param]) -> Vec<Known> {
    let kn = |name: &str, dist: Dist| Known {
        name: name.to_string(),
        dist,
    };
    let (fi, fo) = keras_fans(k);
    let units = match &node_t.op {
        Op::Rnn { units, .. } => Some(*units as f64),
        _ => None,
    };
    let weight_fan_in = node_t
        .params
        .iter()
        .find(|p| matches!(p.role, ParamRole::Kernel))
        .map(torch_fan_in);
    let mut v = Vec::new();
    match (k.role, units) {
        (ParamRole::Embeddings, _) => {
            v.push(kn(
                "Keras default RandomUniform(−0.05, 0.05)",
                Dist::Uniform(0.05),
            ));
            v.push(kn("torch default N(0, 1)", Dist::Normal(1.0)));
        }
        (ParamRole::RecurrentKernel, Some(h)) => {
            v.push(kn("Keras default orthogonal", Dist::Orthogonal));
            v.push(kn("torch default U(±1/√H)", Dist::Uniform(1.0 / h.sqrt())));
        }
        (ParamRole::InputKernel, Some(h)) => {
            v.push(kn(
                "Keras default glorot_uniform",
                Dist::Uniform((6.0 / (fi + fo)).sqrt()),
            ));
            v.push(kn("torch default U(±1/√H)", Dist::Uniform(1.0 / h.sqrt())));
        }
        (ParamRole::InputBias | ParamRole::Bias, Some(h)) => {
            v.push(kn("Keras default zeros", Dist::Constant(0.0)));
            if t.len() == 2 {
                v.push(kn(
                    "torch default: bias_ih + bias_hh, each U(±1/√H)",
                    Dist::Normal((2.0 / (3.0 * h)).sqrt()),
                ));
            } else {
                v.push(kn("torch default U(±1/√H)", Dist::Uniform(1.0 / h.sqrt())));
            }
        }
        (ParamRole::Kernel | ParamRole::DepthwiseKernel | ParamRole::PointwiseKernel, _) => {
            v.push(kn(
                "Keras default glorot_uniform",
                Dist::Uniform((6.0 / (fi + fo)).sqrt()),
            ));
            v.push(kn("glorot_normal", Dist::Normal((2.0 / (fi + fo)).sqrt())));
            v.push(kn("he_uniform", Dist::Uniform((6.0 / fi).sqrt())));
            v.push(kn("he_normal", Dist::Normal((2.0 / fi).sqrt())));
            v.push(kn("lecun_uniform", Dist::Uniform((3.0 / fi).sqrt())));
            if let Some(tp) = t.first() {
                let f = torch_fan_in(tp);
                v.push(kn(
                    &format!("torch default kaiming_uniform(a=√5) = U(±1/√fan_in), fan_in {f}"),
                    Dist::Uniform(1.0 / f.sqrt()),
                ));
            }
        }
        (ParamRole::Bias, None) => {
            v.push(kn("Keras default zeros", Dist::Constant(0.0)));
            if let Some(f) = weight_fan_in {
                v.push(kn(
                    &format!("torch default U(±1/√fan_in), fan_in {f}"),
                    Dist::Uniform(1.0 / f.sqrt()),
                ));
            }
        }
        (ParamRole::Gamma | ParamRole::MovingVariance, _) => {
            v.push(kn("default ones", Dist::Constant(1.0)));
        }
        (ParamRole::Beta | ParamRole::MovingMean, _) => {
            v.push(kn("default zeros", Dist::Constant(0.0)));
        }
        _ => {}
    }
    v
}

fn name_dist(s: &Stats, values: &[f64], orth: bool, known: &[Known]) -> String {
    if orth {
        return format!(
            "orthogonal (std {}) = Keras default orthogonal",
            report::sig(s.std)
        );
    }
    let d = describe(s, values);
    match known.iter().find(|k| fits(s, &k.dist, orth)) {
        Some(k) => format!("{d} = {}", k.name),
        None => d,
    }
}

/// Catalogue id of an initialisation difference in a layer of this kind.
fn init_id(op: &Op) -> Option<Id> {
    Some(match op {
        Op::Dense { .. } => Id::DenseInit,
        Op::Conv { .. } | Op::ConvTranspose { .. } => Id::ConvInit,
        Op::DepthwiseConv { .. } | Op::SeparableConv { .. } => Id::DepthwiseInit,
        Op::Embedding { .. } => Id::EmbeddingInit,
        Op::Rnn { .. } => Id::RnnInit,
        _ => return None,
    })
}

fn role_word(r: ParamRole) -> &'static str {
    match r {
        ParamRole::Kernel | ParamRole::InputKernel => "kernel",
        ParamRole::RecurrentKernel => "recurrent kernel",
        ParamRole::Bias | ParamRole::InputBias | ParamRole::RecurrentBias => "bias",
        ParamRole::Embeddings => "embeddings",
        ParamRole::DepthwiseKernel => "depthwise kernel",
        ParamRole::PointwiseKernel => "pointwise kernel",
        other => other.name(),
    }
}

fn matrix_dims(shape: &[usize]) -> (usize, usize) {
    match shape {
        [r, c] => (*r, *c),
        [r, rest @ ..] => (*r, rest.iter().product()),
        [] => (0, 0),
    }
}

/// The torch code that reproduces a Keras initializer on the torch parameter.
fn init_fix(op: &Op, m: &ParamMatch<'_>, kdesc: &str) -> (String, String) {
    let names: Vec<&str> = m.torch.iter().map(|p| p.name.as_str()).collect();
    let first = names.first().copied().unwrap_or("?");
    let module = first.rsplit_once('.').map_or(first, |(m, _)| m);
    let zeros = names
        .iter()
        .map(|n| format!("nn.init.zeros_({})", torch_ref(n)))
        .collect::<Vec<_>>()
        .join("; ");
    let units = match op {
        Op::Rnn { units, .. } => Some(*units),
        _ => None,
    };
    let torch = if kdesc.starts_with("zeros") {
        zeros
    } else if kdesc.contains("ones, ") {
        let h = units.map_or_else(|| "H".to_string(), |u| u.to_string());
        format!(
            "{zeros}; {}.data[{h}:2*{h}] = 1  # Keras unit_forget_bias",
            torch_ref(first)
        )
    } else if kdesc.contains("glorot_uniform") {
        format!("nn.init.xavier_uniform_({})", torch_ref(first))
    } else if kdesc.contains("orthogonal") {
        format!("nn.init.orthogonal_({})", torch_ref(first))
    } else if kdesc.contains("RandomUniform(−0.05, 0.05)") {
        format!("nn.init.uniform_({}, -0.05, 0.05)", torch_ref(first))
    } else {
        format!(
            "# copy the Keras initial weights into `{module}` (the layer alignment gives the exact mapping)"
        )
    };
    let keras = match (op, m.keras.role) {
        (Op::Embedding { .. }, _) => {
            "embeddings_initializer=keras.initializers.RandomNormal(0.0, 1.0)".to_string()
        }
        (Op::Rnn { units, .. }, role) => {
            let u = format!("keras.initializers.RandomUniform(-1/sqrt({units}), 1/sqrt({units}))");
            match role {
                ParamRole::RecurrentKernel => format!("recurrent_initializer={u}"),
                ParamRole::InputKernel => format!("kernel_initializer={u}"),
                _ => format!(
                    "bias_initializer={u}, unit_forget_bias=False  # torch's two biases sum to a wider distribution"
                ),
            }
        }
        (_, ParamRole::Bias) => {
            "bias_initializer=keras.initializers.RandomUniform(-1/sqrt(fan_in), 1/sqrt(fan_in))"
                .to_string()
        }
        _ => "kernel_initializer=keras.initializers.VarianceScaling(1/3, 'fan_in', 'uniform')"
            .to_string(),
    };
    (torch, keras)
}

/// Step 2 over every pair.
pub(crate) fn check(
    keras: &Model,
    torch: &Model,
    aligned: &Aligned<'_>,
    kshapes: &Shapes,
    out: &mut Findings,
) -> WeightReport {
    let mut layers = Vec::new();
    let mut mapped = BTreeMap::new();
    let mut own = BTreeMap::new();
    let mut any_copied = false;
    let mut same_dist_evidence: Vec<Evidence> = Vec::new();
    for pair in &aligned.pairs {
        let cell = cell_of(pair.keras);
        let flatten = flatten_context(keras, torch, pair, kshapes);
        let label = pair_label(&pair.keras.name, &pair.torch_name());
        let mut maps = Vec::new();
        let mut rels = Vec::new();
        for m in &pair.params {
            let (rel, desc) = relate(m, cell, flatten.as_ref());
            let torch_names_of = |m: &ParamMatch<'_>| -> Vec<String> {
                m.torch.iter().map(|p| p.name.clone()).collect()
            };
            for (name, v, shape) in mapped_values(m, cell, flatten.as_ref()) {
                mapped.insert(name, (v, shape));
            }
            if let Relation::Wrong { id, .. } = &rel {
                for n in torch_names_of(m) {
                    own.insert(n, *id);
                }
            }
            maps.push(desc);
            rels.push(rel.clone());
            match rel {
                Relation::Wrong { id, how } => {
                    any_copied = true;
                    let what = format!(
                        "{} copied with the wrong mapping: {how}",
                        role_word(m.keras.role)
                    );
                    let units = match &pair.keras.op {
                        Op::Rnn { units, .. } => Some(*units),
                        _ => None,
                    };
                    let separable = matches!(
                        m.keras.role,
                        ParamRole::DepthwiseKernel | ParamRole::PointwiseKernel
                    )
                    .then(|| separable_code(pair))
                    .flatten();
                    let fix_t = separable.unwrap_or_else(|| {
                        format!(
                            "{}  # exact mapping",
                            mapping_code(m, flatten.as_ref(), units)
                        )
                    });
                    out.add(
                        id,
                        Severity::High,
                        2.0,
                        vec![ev(
                            what,
                            format!("{} {:?}", m.keras.name, m.keras.tensor.shape()),
                            torch_names(m),
                            label.clone(),
                        )],
                        fix_t,
                        "nothing to change on this side",
                    );
                }
                Relation::Copied => any_copied = true,
                Relation::Independent => {
                    let Some(kv) = values(&m.keras.tensor) else {
                        continue;
                    };
                    let Some((tv, _)) = torch_values(m) else {
                        continue;
                    };
                    let (ks, ts) = (Stats::of(&kv), Stats::of(&tv));
                    let (kr, kc) = matrix_dims(m.keras.tensor.shape());
                    let ko = m.keras.role == ParamRole::RecurrentKernel && orthogonal(&kv, kr, kc);
                    let to =
                        m.keras.role == ParamRole::RecurrentKernel && m.group == Group::One && {
                            let (tr, tc) = matrix_dims(m.torch[0].tensor.shape());
                            orthogonal(&tv, tr, tc)
                        };
                    let known = known_inits(m.keras, pair.torch, &m.torch);
                    let kdesc = name_dist(&ks, &kv, ko, &known);
                    let tdesc = name_dist(&ts, &tv, to, &known);
                    let what = format!("{} initialisation", role_word(m.keras.role));
                    let e = ev(
                        what,
                        format!("{}: {kdesc}", m.keras.name),
                        format!("{}: {tdesc}", torch_names(m)),
                        label.clone(),
                    );
                    if same_distribution(&ks, &ts, ko, to) {
                        if !ks.constant() {
                            same_dist_evidence.push(e);
                        }
                        continue;
                    }
                    let Some(id) = init_id(&pair.keras.op) else {
                        continue;
                    };
                    let magnitude = if ks.constant() || ts.constant() {
                        1.0
                    } else {
                        (ts.std / ks.std).ln().abs().min(3.0)
                    };
                    let (fix_t, fix_k) = init_fix(&pair.keras.op, m, &kdesc);
                    out.add(id, Severity::Medium, magnitude, vec![e], fix_t, fix_k);
                    for n in torch_names_of(m) {
                        own.insert(n, id);
                    }
                }
                Relation::EqualConstant | Relation::Unknown => {}
            }
        }
        let summary = summarize(&rels);
        layers.push((summary, maps));
    }
    if !same_dist_evidence.is_empty() && !any_copied {
        same_dist_evidence.truncate(4);
        out.add(
            Id::SeedingDeterminism,
            Severity::Info,
            0.0,
            same_dist_evidence,
            "to compare like with like, copy the Keras initial weights into the torch model (the layer alignment gives each mapping)",
            "keras.utils.set_random_seed(s) fixes Keras's draws only; the frameworks' random streams never agree",
        );
    }
    WeightReport {
        layers,
        mapped,
        own,
    }
}

fn summarize(rels: &[Relation]) -> String {
    let wrong: Vec<Id> = rels
        .iter()
        .filter_map(|r| match r {
            Relation::Wrong { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    if let Some(id) = wrong.first() {
        return format!("copied under a wrong mapping ({id})");
    }
    let copied = rels.iter().filter(|r| **r == Relation::Copied).count();
    let indep = rels.iter().filter(|r| **r == Relation::Independent).count();
    match (copied, indep) {
        (0, 0) if rels.iter().all(|r| *r == Relation::EqualConstant) => "equal (constants)".into(),
        (0, 0) => "not compared".into(),
        (_, 0) => "copied (exact mapping)".into(),
        (0, _) => "independent draws".into(),
        _ => "partly copied".into(),
    }
}

/// Python for the exact mapping of a Keras SeparableConv onto its two-convolution torch port
/// (depthwise, pointwise, bias), one line per tensor.
fn separable_code(pair: &Pair<'_>) -> Option<String> {
    pair.torch_depthwise?;
    let lines: Vec<String> = pair
        .params
        .iter()
        .map(|m| {
            let note = match m.keras.role {
                ParamRole::DepthwiseKernel => {
                    "depthwise (k…, C, M) → (C·M, 1, k…), channel c·M + m"
                }
                ParamRole::PointwiseKernel => "pointwise (1…, C·M, out) → (out, C·M, 1…)",
                _ => "bias as is",
            };
            format!("{}  # {note}", mapping_code(m, None, None))
        })
        .collect();
    Some(lines.join("\n"))
}

/// Python for the exact mapping of one match (`torch.from_numpy(K.T)` and friends).
fn mapping_code(m: &ParamMatch<'_>, flatten: Option<&Flat>, units: Option<usize>) -> String {
    let k = format!("K = keras['{}']", m.keras.name);
    let t: Vec<&str> = m.torch.iter().map(|p| p.name.as_str()).collect();
    let set = |expr: &str| {
        format!(
            "{k}; {}.data = torch.from_numpy({expr})",
            torch_ref(t.first().copied().unwrap_or("?"))
        )
    };
    let h = units.map_or_else(|| "H".to_string(), |u| u.to_string());
    let swap = |v: &str| {
        format!("np.concatenate([{v}[..., {h}:2*{h}], {v}[..., :{h}], {v}[..., 2*{h}:]], axis=-1)")
    };
    let perm = |r: usize| {
        let mut p: Vec<String> = vec![(r + 1).to_string(), r.to_string()];
        p.extend((0..r).map(|i| i.to_string()));
        p.join(", ")
    };
    match (&m.keras.layout, m.group) {
        (ParamLayout::DenseInOut, _) if flatten.is_some() => {
            let (sp, c, r) = flatten.map_or((String::new(), 0, 0), |f| {
                let sp: Vec<String> = f.spatial.iter().map(usize::to_string).collect();
                (sp.join(", "), f.channels, f.spatial.len())
            });
            set(&format!(
                "K.reshape({sp}, {c}, -1).transpose({}).reshape(K.shape[1], -1)",
                perm(r)
            ))
        }
        (ParamLayout::DenseInOut, _) => set("K.T.copy()"),
        (
            ParamLayout::ConvSpatialInOut { rank }
            | ParamLayout::ConvTransposeSpatialOutIn { rank },
            _,
        ) => set(&format!("K.transpose({}).copy()", perm(*rank))),
        (ParamLayout::DepthwiseSpatialInMult { rank }, _) => {
            // (*k, C, M) → (*k, C·M) → (C·M, *k) → (C·M, 1, *k): channel c·M + m.
            let r = *rank;
            let sp: Vec<String> = m.keras.tensor.shape()[..r.min(m.keras.tensor.shape().len())]
                .iter()
                .map(usize::to_string)
                .collect();
            let mut p = vec![r.to_string()];
            p.extend((0..r).map(|i| i.to_string()));
            set(&format!(
                "K.reshape({}, -1).transpose({})[:, None].copy()",
                sp.join(", "),
                p.join(", ")
            ))
        }
        (
            ParamLayout::RnnInGates {
                gate_order: GateOrder::Zrh,
            },
            _,
        ) => set(&format!("{}.T.copy()", swap("K"))),
        (ParamLayout::GruBiasRows { .. }, _) => format!(
            "{k}; B = {}; {}.data, {}.data = torch.from_numpy(B[0]), torch.from_numpy(B[1])",
            swap("K"),
            torch_ref(t.first().copied().unwrap_or("?")),
            torch_ref(t.get(1).copied().unwrap_or("?"))
        ),
        (ParamLayout::RnnGateVector { .. }, Group::SumOfTwo) => format!(
            "{k}; {}.data = torch.from_numpy(K); {}.data.zero_()",
            torch_ref(t.first().copied().unwrap_or("?")),
            torch_ref(t.get(1).copied().unwrap_or("?"))
        ),
        (ParamLayout::RnnInGates { .. }, _) => set("K.T.copy()"),
        _ => set("K"),
    }
}

#[cfg(test)]
mod tests {
    use model_ir::{Activation, DataLayout, Framework, Op, Padding, ParamLayout, ParamRole};
    use report::Severity;

    use crate::testkit::*;

    /// Runs the diagnosis and returns the ids of the weight step (layouts and inits).
    #[track_caller]
    fn check(keras: model_ir::Model, torch: model_ir::Model, expect: &[&str]) {
        let found: Vec<String> = ids(keras, torch)
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| {
                id.ends_with("-layout")
                    || id.ends_with("-init")
                    || matches!(
                        id.as_str(),
                        "flatten-order" | "gru-layout-reset-after" | "seeding-determinism"
                    )
            })
            .collect();
        assert_eq!(found, expect);
    }

    #[test]
    fn copied_dense_weights_are_fine() {
        let (k, t) = faithful_mlp();
        check(k, t, &[]);
    }

    #[test]
    fn dense_kernel_reshaped_is_dense_layout() {
        let (k, mut t) = faithful_mlp();
        let kk = k.nodes[0].params[0].tensor.clone();
        t.nodes[0].params[0].tensor = kk.reshaped(&[5, 6]).unwrap();
        check(k, t, &["dense-layout"]);
    }

    #[test]
    fn zero_bias_vs_uniform_bias_is_dense_init() {
        let (k, mut t) = faithful_mlp();
        t.nodes[0].params[1].tensor = tensor(&[5], uniform(5, 0.4, 9));
        let d = run(k, t);
        let f = d
            .findings
            .iter()
            .find(|f| f.id == "dense-init")
            .expect("dense-init");
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.evidence[0].what.contains("bias"));
        assert!(f.evidence[0].keras.contains("zeros"));
        assert_eq!(f.fix.torch, "nn.init.zeros_(model.fc1.bias)");
    }

    #[test]
    fn independent_draws_of_one_distribution_are_seeding_only() {
        let (mut k, mut t) = faithful_mlp();
        // Same glorot bound, other draws (large enough tensors for the test to have power).
        let (i, h) = (64, 128);
        let b = (6.0f32 / (i + h) as f32).sqrt();
        k.nodes[0].params[0].tensor = tensor(&[i, h], uniform(i * h, b, 3));
        k.nodes[0].params[1].tensor = tensor(&[h], vec![0.0; h]);
        k.nodes[1].params[0].tensor = tensor(&[h, 3], uniform(h * 3, (6.0f32 / 131.0).sqrt(), 4));
        k.inputs[0].shape = vec![None, Some(i)];
        t.nodes[0].params[0].tensor = tensor(&[h, i], uniform(i * h, b, 5));
        t.nodes[0].params[1].tensor = tensor(&[h], vec![0.0; h]);
        t.nodes[2].params[0].tensor = tensor(&[3, h], uniform(h * 3, (6.0f32 / 131.0).sqrt(), 6));
        t.inputs[0].shape = vec![None, Some(i)];
        check(k, t, &["seeding-determinism"]);
    }

    fn conv_pair(wrong: bool) -> (model_ir::Model, model_ir::Model) {
        let kk = tensor(&[3, 3, 2, 4], uniform(72, 0.3, 7));
        let tw = if wrong {
            kk.reshaped(&[4, 2, 3, 3]).unwrap()
        } else {
            kk.permuted(&[3, 2, 0, 1])
        };
        let k = model(
            Framework::Keras,
            &[8, 8, 2],
            vec![node(
                Framework::Keras,
                "conv",
                conv_op(4, 3, 1, Padding::SameUpper, DataLayout::ChannelsLast),
                "x",
                vec![
                    param(
                        "conv/kernel",
                        ParamRole::Kernel,
                        ParamLayout::ConvSpatialInOut { rank: 2 },
                        kk,
                    ),
                    param(
                        "conv/bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        tensor(&[4], vec![0.0; 4]),
                    ),
                ],
            )],
        );
        let t = model(
            Framework::Torch,
            &[2, 8, 8],
            vec![node(
                Framework::Torch,
                "conv",
                conv_op(
                    4,
                    3,
                    1,
                    Padding::symmetric(&[1, 1]),
                    DataLayout::ChannelsFirst,
                ),
                "x",
                vec![
                    param(
                        "conv.weight",
                        ParamRole::Kernel,
                        ParamLayout::ConvOutInSpatial { rank: 2 },
                        tw,
                    ),
                    param(
                        "conv.bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        tensor(&[4], vec![0.0; 4]),
                    ),
                ],
            )],
        );
        (k, t)
    }

    #[test]
    fn conv_kernels() {
        let (k, t) = conv_pair(false);
        check(k, t, &[]);
        let (k, t) = conv_pair(true);
        check(k, t, &["conv-layout"]);
    }

    fn flatten_pair(permute_rows: bool) -> (model_ir::Model, model_ir::Model) {
        // Feature map 2×2×3 (H, W, C) → flatten → Dense(12 → 2).
        let kk = tensor(&[12, 2], uniform(24, 0.5, 11));
        let perm = model_ir::layout::flatten_permutation(
            &[2, 2],
            3,
            DataLayout::ChannelsLast,
            DataLayout::ChannelsFirst,
        );
        let rows = if permute_rows {
            kk.select(0, &perm)
        } else {
            kk.clone()
        };
        let tw = rows.permuted(&[1, 0]);
        let flat = |fw, order| {
            node(
                fw,
                "flatten",
                Op::Flatten {
                    start_axis: 1,
                    order,
                },
                "x",
                vec![],
            )
        };
        let k = model(
            Framework::Keras,
            &[2, 2, 3],
            vec![
                flat(Framework::Keras, DataLayout::ChannelsLast),
                keras_dense("fc", "flatten", kk, vec![0.0; 2], Activation::Linear),
            ],
        );
        let t = model(
            Framework::Torch,
            &[3, 2, 2],
            vec![
                flat(Framework::Torch, DataLayout::ChannelsFirst),
                torch_dense("fc", "flatten", tw, vec![0.0; 2]),
            ],
        );
        (k, t)
    }

    #[test]
    fn dense_after_flatten() {
        let (k, t) = flatten_pair(true);
        check(k, t, &[]);
        let (k, t) = flatten_pair(false);
        check(k, t, &["flatten-order"]);
    }

    /// How the torch port of a SeparableConv copies the Keras kernels.
    #[derive(Clone, Copy, PartialEq)]
    enum SepCopy {
        /// Depthwise `K.reshape(kh, kw, C*M).transpose(2, 0, 1)[:, None]`, pointwise
        /// `P.transpose(3, 2, 0, 1)`.
        Faithful,
        /// Depthwise `K.reshape(C*M, 1, kh, kw)` (the plant of the bundled case).
        DepthwiseReshaped,
        /// Depthwise transposed like a regular conv kernel: channel `m·C + c`.
        DepthwiseMultMajor,
        /// Pointwise `P.reshape(out, C*M, 1, 1)`.
        PointwiseReshaped,
    }

    /// Keras `SeparableConv2D(f, 3, depth_multiplier=M)` on a 6×6×C input and its usual torch
    /// port `Conv2d(C, C*M, 3, groups=C, bias=False) → Conv2d(C*M, f, 1)`; the torch
    /// tensors are built index by index here (not with the code under test).
    fn separable_pair(c: usize, mult: usize, how: SepCopy) -> (model_ir::Model, model_ir::Model) {
        let (k, f) = (3, 4);
        let cm = c * mult;
        let dk = tensor(&[k, k, c, mult], uniform(k * k * cm, 0.4, 31));
        let pk = tensor(&[1, 1, cm, f], uniform(cm * f, 0.5, 32));
        let bias = uniform(f, 0.2, 33);
        let (dv, pv) = (dk.to_f64(), pk.to_f64());
        let (dv, pv): (Vec<f64>, Vec<f64>) =
            (dv.iter().copied().collect(), pv.iter().copied().collect());
        // Keras depthwise index (i, j, ch, m); pointwise (0, 0, q, o).
        let kd = |i: usize, j: usize, ch: usize, m: usize| dv[((i * k + j) * c + ch) * mult + m];
        let mut tw = vec![0.0f32; cm * k * k];
        for ch in 0..c {
            for m in 0..mult {
                for i in 0..k {
                    for j in 0..k {
                        let o = match how {
                            SepCopy::DepthwiseMultMajor => m * c + ch,
                            _ => ch * mult + m,
                        };
                        tw[(o * k + i) * k + j] = kd(i, j, ch, m) as f32;
                    }
                }
            }
        }
        if how == SepCopy::DepthwiseReshaped {
            tw = dv.iter().map(|&x| x as f32).collect();
        }
        let mut tp = vec![0.0f32; f * cm];
        for o in 0..f {
            for q in 0..cm {
                tp[o * cm + q] = pv[q * f + o] as f32;
            }
        }
        if how == SepCopy::PointwiseReshaped {
            tp = pv.iter().map(|&x| x as f32).collect();
        }
        let keras = model(
            Framework::Keras,
            &[6, 6, c],
            vec![node(
                Framework::Keras,
                "sep",
                Op::SeparableConv {
                    rank: 2,
                    filters: f,
                    depth_multiplier: mult,
                    kernel_size: vec![k, k],
                    strides: vec![1, 1],
                    dilation: vec![1, 1],
                    padding: Padding::Valid,
                    layout: DataLayout::ChannelsLast,
                    use_bias: true,
                    activation: Activation::Linear,
                },
                "x",
                vec![
                    param(
                        "sep/depthwise_kernel",
                        ParamRole::DepthwiseKernel,
                        ParamLayout::DepthwiseSpatialInMult { rank: 2 },
                        dk,
                    ),
                    param(
                        "sep/pointwise_kernel",
                        ParamRole::PointwiseKernel,
                        ParamLayout::ConvSpatialInOut { rank: 2 },
                        pk,
                    ),
                    param(
                        "sep/bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        tensor(&[f], bias.clone()),
                    ),
                ],
            )],
        );
        let torch = model(
            Framework::Torch,
            &[c, 6, 6],
            vec![
                node(
                    Framework::Torch,
                    "sep_dw",
                    Op::DepthwiseConv {
                        rank: 2,
                        depth_multiplier: mult,
                        kernel_size: vec![k, k],
                        strides: vec![1, 1],
                        dilation: vec![1, 1],
                        padding: Padding::Valid,
                        layout: DataLayout::ChannelsFirst,
                        use_bias: false,
                        activation: Activation::Linear,
                    },
                    "x",
                    vec![param(
                        "sep_dw.weight",
                        ParamRole::Kernel,
                        ParamLayout::DepthwiseOutOneSpatial { rank: 2 },
                        tensor(&[cm, 1, k, k], tw),
                    )],
                ),
                node(
                    Framework::Torch,
                    "sep_pw",
                    conv_op(f, 1, 1, Padding::Valid, DataLayout::ChannelsFirst),
                    "sep_dw",
                    vec![
                        param(
                            "sep_pw.weight",
                            ParamRole::Kernel,
                            ParamLayout::ConvOutInSpatial { rank: 2 },
                            tensor(&[f, cm, 1, 1], tp),
                        ),
                        param(
                            "sep_pw.bias",
                            ParamRole::Bias,
                            ParamLayout::Vector,
                            tensor(&[f], bias),
                        ),
                    ],
                ),
            ],
        );
        (keras, torch)
    }

    #[test]
    fn faithful_separable_port_is_one_copied_pair() {
        for mult in [1, 2] {
            let (k, t) = separable_pair(3, mult, SepCopy::Faithful);
            let d = run(k.clone(), t.clone());
            assert_eq!(d.alignment.pairs.len(), 1, "mult {mult}");
            let p = &d.alignment.pairs[0];
            assert_eq!(
                (p.keras.as_str(), p.torch.as_str()),
                ("sep", "sep_dw + sep_pw")
            );
            assert_eq!(p.weights, "copied (exact mapping)", "mult {mult}");
            assert!(d.alignment.keras_only.is_empty() && d.alignment.torch_only.is_empty());
            assert!(
                d.findings
                    .iter()
                    .all(|f| f.id != "architecture-mismatch" && f.id != "same-padding-asymmetric"),
                "{:?}",
                d.findings
            );
            check(k, t, &[]);
        }
    }

    #[test]
    fn separable_kernels_copied_wrongly_are_depthwise_separable_layout() {
        for (mult, how) in [
            (1, SepCopy::DepthwiseReshaped),
            (2, SepCopy::DepthwiseReshaped),
            (2, SepCopy::DepthwiseMultMajor),
            (2, SepCopy::PointwiseReshaped),
        ] {
            let (k, t) = separable_pair(3, mult, how);
            check(k.clone(), t.clone(), &["depthwise-separable-layout"]);
            let d = run(k, t);
            let f = d
                .findings
                .iter()
                .find(|f| f.id == "depthwise-separable-layout")
                .expect("finding");
            assert_eq!(f.severity, Severity::High);
            // The fix maps both halves exactly.
            assert!(
                f.fix.torch.contains(
                    "model.sep_dw.weight.data = torch.from_numpy(K.reshape(3, 3, -1).transpose(2, 0, 1)[:, None].copy())"
                ),
                "{}",
                f.fix.torch
            );
            assert!(
                f.fix.torch.contains(
                    "model.sep_pw.weight.data = torch.from_numpy(K.transpose(3, 2, 0, 1).copy())"
                ),
                "{}",
                f.fix.torch
            );
            let e = &f.evidence[0];
            let part = if how == SepCopy::PointwiseReshaped {
                "pointwise"
            } else {
                "depthwise"
            };
            assert!(
                e.what
                    .starts_with(&format!("{part} kernel copied with the wrong mapping"))
            );
            assert_eq!(e.layer.as_deref(), Some("sep ↔ sep_dw + sep_pw"));
        }
    }

    /// The correct mapping (`WeightReport::mapped`) of a SeparableConv with depth multiplier 2
    /// makes the two-convolution torch port compute what Keras computes, and the wrong
    /// torch tensor is the one the finding owns.
    #[test]
    fn separable_mapping_reproduces_keras_output() {
        use engine::{DropoutMasks, Mode, ParamStore, Program, forward};
        use ndarray::{ArrayD, IxDyn};

        let (c, mult) = (3, 2);
        let (k, t) = separable_pair(c, mult, SepCopy::DepthwiseReshaped);
        let aligned = crate::align::align(&k, &t);
        let kshapes = crate::graph::infer_shapes(&k);
        let mut out = crate::findings::Findings::default();
        let w = super::check(&k, &t, &aligned, &kshapes, &mut out);
        assert_eq!(
            w.own.get("sep_dw.weight").copied(),
            Some(catalogue::Id::DepthwiseSeparableLayout)
        );
        assert_eq!(w.own.len(), 1, "{:?}", w.own);
        for n in ["sep_dw.weight", "sep_pw.weight", "sep_pw.bias"] {
            assert!(w.mapped.contains_key(n), "{n} not mapped");
        }
        let xk: Vec<f32> = uniform(2 * 6 * 6 * c, 1.0, 41);
        let xk = ArrayD::from_shape_vec(IxDyn(&[2, 6, 6, c]), xk).unwrap();
        let xt = xk
            .clone()
            .permuted_axes(IxDyn(&[0, 3, 1, 2]))
            .as_standard_layout()
            .to_owned();
        let run = |m: &model_ir::Model, x: ArrayD<f32>, mapped: bool| -> ArrayD<f32> {
            let p = Program::new(m).expect("program");
            let mut s = ParamStore::<f32>::from_model(m);
            if mapped {
                for (name, (v, shape)) in &w.mapped {
                    let a =
                        ArrayD::from_shape_vec(IxDyn(shape), v.iter().map(|&x| x as f32).collect())
                            .unwrap();
                    s.values.insert(name.clone(), a);
                }
            }
            let f = forward(&p, &s, &[x], Mode::Inference, &DropoutMasks::new()).expect("runs");
            f.outputs[0].clone()
        };
        let yk = run(&k, xk, false);
        let yk = yk.permuted_axes(IxDyn(&[0, 3, 1, 2]));
        let max = |a: &ArrayD<f32>| {
            a.iter()
                .zip(yk.iter())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let yt = run(&t, xt.clone(), true);
        assert_eq!(yt.shape(), yk.shape());
        assert!(max(&yt) < 1e-5, "mapped port differs by {}", max(&yt));
        // The planted port's own weights do not.
        assert!(max(&run(&t, xt, false)) > 1e-2);
    }

    #[test]
    fn recurrent_layouts() {
        let (k, t) = rnn_pair(true, false);
        check(k, t, &[]);
        let (k, t) = rnn_pair(false, false);
        check(k, t, &["gru-layout-reset-after"]);
        let (k, t) = rnn_pair(true, true);
        check(k, t, &[]);
        let (k, t) = rnn_pair(false, true);
        check(k, t, &["lstm-layout"]);
    }
}
