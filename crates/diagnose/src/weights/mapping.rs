//! Relating one paired parameter: the correct mapping split into torch tensors, the Flatten
//! context of a Dense, the relation the candidates establish, and the Python for the mapping.

use model_ir::{
    DataLayout, GateOrder, Model, Node, Op, Param, ParamLayout, ParamRole, RnnCell,
    layout::flatten_permutation,
};

use super::candidates::{candidates, same, values};
use super::{Flat, Relation};
use crate::align::{Group, Pair, ParamMatch};
use crate::findings::torch_ref;
use crate::graph::{Shapes, source_of};
use crate::stats::Stats;

/// The correct mapping of a match split into its torch tensors: (name, values, shape).
pub(super) fn mapped_values(
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

pub(super) fn flatten_context(
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

/// The torch values of a match, combined the way the Keras tensor is: one tensor as is,
/// `bias_ih + bias_hh`, or `[bias_ih; bias_hh]`.
pub(super) fn torch_values(m: &ParamMatch<'_>) -> Option<(Vec<f64>, Vec<usize>)> {
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

pub(super) fn torch_names(m: &ParamMatch<'_>) -> String {
    let names: Vec<&str> = m.torch.iter().map(|p| p.name.as_str()).collect();
    match m.group {
        Group::SumOfTwo => names.join(" + "),
        _ => names.join(", "),
    }
}

pub(super) fn cell_of(n: &Node) -> Option<RnnCell> {
    match &n.op {
        Op::Rnn { cell, .. } => Some(*cell),
        _ => None,
    }
}

/// Decides the relation of one match, and describes the correct mapping.
pub(super) fn relate(
    m: &ParamMatch<'_>,
    cell: Option<RnnCell>,
    flatten: Option<&Flat>,
) -> (Relation, String) {
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

/// Python for the exact mapping of a Keras SeparableConv onto its two-convolution torch port
/// (depthwise, pointwise, bias), one line per tensor.
pub(super) fn separable_code(pair: &Pair<'_>) -> Option<String> {
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
pub(super) fn mapping_code(
    m: &ParamMatch<'_>,
    flatten: Option<&Flat>,
    units: Option<usize>,
) -> String {
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
