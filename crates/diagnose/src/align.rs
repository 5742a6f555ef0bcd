//! Step 1: pairing the layers of the two models.
//!
//! Layers with parameters are paired by graph order (a longest common subsequence), kind and
//! parameter shapes modulo each framework's layout ([`ParamLayout::counterpart`]); equal
//! names break ties. Inside a pair, parameters are paired by role; the RNN biases that Keras
//! stores as one tensor and torch as two are paired as a group.
//!
//! A Keras SeparableConv has no single torch layer: its usual port is a depthwise convolution
//! (`Conv2d(C, C·M, k, groups=C, bias=False)`) whose output goes straight into a 1×1
//! convolution (`Conv2d(C·M, filters, 1)`). Such a two-node chain is paired with the one
//! Keras node (depthwise kernel ↔ the grouped conv's weight, pointwise kernel and bias ↔ the
//! 1×1 conv's).

use model_ir::{Model, Node, Op, Param, ParamLayout, ParamRole};

/// Two layers computing the same thing.
#[derive(Debug)]
pub(crate) struct Pair<'a> {
    pub(crate) keras: &'a Node,
    /// The torch layer whose output is the pair's output (for a separable port, the 1×1
    /// pointwise convolution).
    pub(crate) torch: &'a Node,
    /// For a Keras SeparableConv ported as two convolutions: the torch depthwise one, which
    /// feeds `torch`.
    pub(crate) torch_depthwise: Option<&'a Node>,
    pub(crate) params: Vec<ParamMatch<'a>>,
    /// Torch parameters of the layer with no Keras counterpart.
    pub(crate) torch_unpaired: Vec<&'a Param>,
}

impl<'a> Pair<'a> {
    /// The torch node holding the pair's spatial window (kernel size, strides, padding): the
    /// depthwise convolution of a separable port, `torch` otherwise.
    pub(crate) fn torch_window(&self) -> &'a Node {
        self.torch_depthwise.unwrap_or(self.torch)
    }

    /// Every torch node of the pair, in graph order.
    pub(crate) fn torch_nodes(&self) -> Vec<&'a Node> {
        self.torch_depthwise
            .into_iter()
            .chain(std::iter::once(self.torch))
            .collect()
    }

    /// The torch name(s) of the pair (`conv_dw + conv_pw` for a separable port).
    pub(crate) fn torch_name(&self) -> String {
        self.torch_nodes()
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

/// A Keras parameter and the torch parameter(s) that hold the same quantity.
#[derive(Debug)]
pub(crate) struct ParamMatch<'a> {
    pub(crate) keras: &'a Param,
    pub(crate) torch: Vec<&'a Param>,
    pub(crate) group: Group,
}

/// How the torch tensors of a match relate to the Keras one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// One torch tensor: the Keras tensor under the layout counterpart.
    One,
    /// Keras single RNN bias = torch `bias_ih + bias_hh`.
    SumOfTwo,
    /// Keras GRU `(2, 3H)` bias = torch `[bias_ih; bias_hh]` rows.
    Rows,
}

/// The pairing of two models.
#[derive(Debug)]
pub(crate) struct Aligned<'a> {
    pub(crate) pairs: Vec<Pair<'a>>,
    pub(crate) keras_only: Vec<&'a Node>,
    pub(crate) torch_only: Vec<&'a Node>,
}

/// Layers that take part in the alignment: those with parameters, except stored constants
/// and preprocessing statistics, which are compared separately.
fn weighted(m: &Model) -> Vec<&Node> {
    m.nodes
        .iter()
        .filter(|n| {
            !n.params.is_empty()
                && !matches!(
                    n.op,
                    Op::ConstantBinary { .. } | Op::Normalization { .. } | Op::Input { .. }
                )
        })
        .collect()
}

/// Kind key: layers of different keys are never paired.
fn kind_key(op: &Op) -> String {
    match op {
        Op::Rnn { cell, .. } => format!("rnn:{cell:?}"),
        Op::SeparableConv { .. } => "separable_conv".into(),
        other => other.kind().to_string(),
    }
}

/// The shape a Keras tensor has in the layout of `target` (`None` when the layouts are not
/// counterparts).
pub(crate) fn shape_in(p: &Param, target: &ParamLayout) -> Option<Vec<usize>> {
    let shape = p.tensor.shape().to_vec();
    if &p.layout == target || p.layout == ParamLayout::AsIs {
        return Some(shape);
    }
    let (to, t) = p.layout.counterpart();
    if &to != target && !matches!(p.layout, ParamLayout::DepthwiseSpatialInMult { .. }) {
        return None;
    }
    let mut s = shape;
    for step in &t.steps {
        if let model_ir::Step::Permute { perm } = step {
            if perm.len() != s.len() {
                return None;
            }
            s = perm.iter().map(|&i| s[i]).collect();
        }
    }
    Some(s)
}

fn main_role(r: ParamRole) -> bool {
    matches!(
        r,
        ParamRole::Kernel
            | ParamRole::InputKernel
            | ParamRole::RecurrentKernel
            | ParamRole::Embeddings
            | ParamRole::Gamma
            | ParamRole::DepthwiseKernel
            | ParamRole::MovingMean
    )
}

/// Torch role that holds the Keras role.
fn torch_role(r: ParamRole) -> ParamRole {
    match r {
        ParamRole::DepthwiseKernel => ParamRole::Kernel,
        other => other,
    }
}

/// Whether two layers can be counterparts: same kind, and every main Keras parameter maps to
/// a torch parameter of the same shape (element count for depthwise kernels).
fn compatible(k: &Node, t: &Node) -> bool {
    if kind_key(&k.op) != kind_key(&t.op) {
        return false;
    }
    k.params.iter().filter(|p| main_role(p.role)).all(|p| {
        let Some(tp) = t.params.iter().find(|q| q.role == torch_role(p.role)) else {
            return false;
        };
        match shape_in(p, &tp.layout) {
            Some(s) if s == tp.tensor.shape() => true,
            _ => {
                matches!(p.layout, ParamLayout::DepthwiseSpatialInMult { .. })
                    && p.tensor.len() == tp.tensor.len()
            }
        }
    })
}

/// A torch depthwise convolution: `Op::DepthwiseConv`, or a grouped `Op::Conv` with one
/// input channel per group.
fn torch_depthwise(n: &Node) -> bool {
    match &n.op {
        Op::DepthwiseConv { .. } => true,
        Op::Conv { groups, .. } if *groups > 1 => n
            .params
            .iter()
            .find(|p| p.role == ParamRole::Kernel)
            .is_some_and(|p| p.tensor.shape().get(1) == Some(&1)),
        _ => false,
    }
}

/// A torch 1×1 convolution with unit strides and one group (the pointwise half of a
/// separable port).
fn torch_pointwise(n: &Node) -> bool {
    matches!(
        &n.op,
        Op::Conv { groups: 1, kernel_size, strides, .. }
            if kernel_size.iter().all(|&k| k == 1) && strides.iter().all(|&s| s == 1)
    )
}

/// Whether the torch nodes `dw` → `pw` are the usual port of the Keras SeparableConv `k`:
/// `dw` a depthwise convolution whose only consumer is the 1×1 convolution `pw`, with the
/// depthwise kernel `(*k, C, M)` ↔ `(C·M, 1, *k)` and the pointwise kernel
/// `(1…, C·M, out)` ↔ `(out, C·M, 1…)`.
fn separable_compatible(t: &Model, k: &Node, dw: &Node, pw: &Node) -> bool {
    let Op::SeparableConv {
        depth_multiplier, ..
    } = &k.op
    else {
        return false;
    };
    if !torch_depthwise(dw) || !torch_pointwise(pw) {
        return false;
    }
    let Some(out) = dw.outputs.first() else {
        return false;
    };
    if pw.inputs.first() != Some(out) || crate::graph::consumers(t, out).len() != 1 {
        return false;
    }
    let kernel = |n: &'_ Node, role: ParamRole| -> Option<Vec<usize>> {
        n.params
            .iter()
            .find(|p| p.role == role)
            .map(|p| p.tensor.shape().to_vec())
    };
    let (Some(kd), Some(kp), Some(td), Some(tp)) = (
        kernel(k, ParamRole::DepthwiseKernel),
        k.params
            .iter()
            .find(|p| p.role == ParamRole::PointwiseKernel),
        kernel(dw, ParamRole::Kernel),
        pw.params.iter().find(|p| p.role == ParamRole::Kernel),
    ) else {
        return false;
    };
    // (*k, C, M) vs (C·M, 1, *k).
    let r = kd.len().saturating_sub(2);
    let depthwise_ok = kd.len() >= 3
        && td.len() == kd.len()
        && kd[r + 1] == *depth_multiplier
        && td[0] == kd[r] * kd[r + 1]
        && td[1] == 1
        && td[2..] == kd[..r];
    depthwise_ok && shape_in(kp, &tp.layout).is_some_and(|s| s == tp.tensor.shape())
}

/// Parameters of a Keras SeparableConv and its two-node torch port.
fn match_separable<'a>(
    k: &'a Node,
    dw: &'a Node,
    pw: &'a Node,
) -> (Vec<ParamMatch<'a>>, Vec<&'a Param>) {
    let mut out: Vec<ParamMatch<'a>> = Vec::new();
    for p in &k.params {
        let (node, role) = match p.role {
            ParamRole::DepthwiseKernel => (dw, ParamRole::Kernel),
            ParamRole::PointwiseKernel => (pw, ParamRole::Kernel),
            ParamRole::Bias => (pw, ParamRole::Bias),
            _ => continue,
        };
        if let Some(q) = node.params.iter().find(|q| q.role == role) {
            out.push(ParamMatch {
                keras: p,
                torch: vec![q],
                group: Group::One,
            });
        }
    }
    let unpaired = dw
        .params
        .iter()
        .chain(&pw.params)
        .filter(|q| {
            q.role != ParamRole::NumBatchesTracked
                && !out.iter().any(|m| std::ptr::eq(m.torch[0], *q))
        })
        .collect();
    (out, unpaired)
}

fn match_params<'a>(k: &'a Node, t: &'a Node) -> (Vec<ParamMatch<'a>>, Vec<&'a Param>) {
    let mut used = vec![false; t.params.len()];
    let mut out = Vec::new();
    let cell = match &k.op {
        Op::Rnn { cell, .. } => Some(*cell),
        _ => None,
    };
    let take = |role: ParamRole, used: &mut Vec<bool>| -> Option<&'a Param> {
        let i = t
            .params
            .iter()
            .enumerate()
            .position(|(i, q)| !used[i] && q.role == role)?;
        used[i] = true;
        Some(&t.params[i])
    };
    for p in &k.params {
        if p.role == ParamRole::NumBatchesTracked {
            continue;
        }
        let rnn_bias = cell.is_some()
            && matches!(p.role, ParamRole::InputBias | ParamRole::Bias)
            && matches!(
                p.layout,
                ParamLayout::RnnGateVector { .. } | ParamLayout::GruBiasRows { .. }
            );
        if rnn_bias {
            let group = if matches!(p.layout, ParamLayout::GruBiasRows { .. }) {
                Group::Rows
            } else {
                Group::SumOfTwo
            };
            let ih = take(ParamRole::InputBias, &mut used);
            let hh = take(ParamRole::RecurrentBias, &mut used);
            let torch: Vec<&Param> = ih.into_iter().chain(hh).collect();
            if !torch.is_empty() {
                let group = if torch.len() == 2 { group } else { Group::One };
                out.push(ParamMatch {
                    keras: p,
                    torch,
                    group,
                });
            }
            continue;
        }
        if let Some(q) = take(torch_role(p.role), &mut used) {
            out.push(ParamMatch {
                keras: p,
                torch: vec![q],
                group: Group::One,
            });
        }
    }
    let unpaired = t
        .params
        .iter()
        .enumerate()
        .filter(|(i, q)| !used[*i] && q.role != ParamRole::NumBatchesTracked)
        .map(|(_, q)| q)
        .collect();
    (out, unpaired)
}

/// Pairs the layers of two models.
pub(crate) fn align<'a>(keras: &'a Model, torch: &'a Model) -> Aligned<'a> {
    let k = weighted(keras);
    let t = weighted(torch);
    let (n, m) = (k.len(), t.len());
    // Longest common subsequence over compatible layers; equal names score higher.
    let score = |i: usize, j: usize| -> u32 {
        if compatible(k[i], t[j]) {
            if k[i].name == t[j].name { 3 } else { 2 }
        } else {
            0
        }
    };
    // A Keras SeparableConv against torch's depthwise `t[j]` then pointwise `t[j + 1]`.
    let score2 = |i: usize, j: usize| -> u32 {
        if j + 1 < m && separable_compatible(torch, k[i], t[j], t[j + 1]) {
            if t[j..=j + 1].iter().any(|x| x.name == k[i].name) {
                3
            } else {
                2
            }
        } else {
            0
        }
    };
    let mut dp = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let s = score(i, j);
            let diag = if s > 0 { dp[i + 1][j + 1] + s } else { 0 };
            let s2 = score2(i, j);
            let diag2 = if s2 > 0 { dp[i + 1][j + 2] + s2 } else { 0 };
            dp[i][j] = diag.max(diag2).max(dp[i + 1][j]).max(dp[i][j + 1]);
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut pairs = Vec::new();
    let mut keras_only = Vec::new();
    let mut torch_only = Vec::new();
    while i < n && j < m {
        let s = score(i, j);
        if s > 0 && dp[i][j] == dp[i + 1][j + 1] + s {
            let (params, torch_unpaired) = match_params(k[i], t[j]);
            pairs.push(Pair {
                keras: k[i],
                torch: t[j],
                torch_depthwise: None,
                params,
                torch_unpaired,
            });
            i += 1;
            j += 1;
        } else if let s2 @ 1.. = score2(i, j)
            && dp[i][j] == dp[i + 1][j + 2] + s2
        {
            let (params, torch_unpaired) = match_separable(k[i], t[j], t[j + 1]);
            pairs.push(Pair {
                keras: k[i],
                torch: t[j + 1],
                torch_depthwise: Some(t[j]),
                params,
                torch_unpaired,
            });
            i += 1;
            j += 2;
        } else if dp[i + 1][j] >= dp[i][j + 1] {
            keras_only.push(k[i]);
            i += 1;
        } else {
            torch_only.push(t[j]);
            j += 1;
        }
    }
    keras_only.extend(&k[i..]);
    torch_only.extend(&t[j..]);
    Aligned {
        pairs,
        keras_only,
        torch_only,
    }
}
