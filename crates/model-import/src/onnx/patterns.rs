//! Multi-node patterns that torch exports for one layer, found before lifting.
//!
//! Observed with torch 2.15 at opset 17 (see `models/zoo/torch/gen_torch.py`):
//!
//! * GELU (exact): `Div(x, √2) → Erf → Add(1) → Mul(x, ·) → Mul(·, 0.5)`;
//! * GELU (tanh): `Mul(x, x) → Mul(x, ·) → Mul(0.044715, ·) → Add(x, ·) → Mul(√(2/π), ·) →
//!   Tanh → Add(1, ·) → Mul(x, ·) → Mul(0.5, ·)`;
//! * SiLU `Sigmoid → Mul(x, ·)`, Mish `Softplus → Tanh → Mul(x, ·)`, LogSigmoid
//!   `Sigmoid → Log`, Tanhshrink `Tanh → Sub(x, ·)`, Softsign `Abs → Add(1) → Div(x, ·)`,
//!   Hardswish below opset 14 `HardSigmoid(1/6) → Mul(x, ·)`;
//! * LayerNorm below opset 17: `ReduceMean → Sub → Pow(2) → ReduceMean → Add(eps) → Sqrt →
//!   Div → Mul(weight) → Add(bias)`;
//! * GroupNorm: `Reshape(x, [0, G, -1]) → InstanceNormalization(ones, zeros) →
//!   Reshape(·, Shape(x)) → Mul(Unsqueeze(weight)) → Add(Unsqueeze(bias))`.
//!
//! The operand orders vary between torch versions, so every binary step accepts either order.
//! A pattern matches only when its intermediate values are read by nothing outside it.

use std::collections::BTreeSet;

use model_ir::Activation;

use super::graph::Graph;
use super::lift::approx;
use super::value::{Dim, Val, int_vec, is_one};

/// One layer found as several ONNX nodes.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// Node indices, ascending.
    pub(crate) nodes: Vec<usize>,
    /// The runtime value the layer reads.
    pub(crate) input: String,
    /// The value the layer produces.
    pub(crate) output: String,
    pub(crate) kind: GroupKind,
}

#[derive(Debug, Clone)]
pub(crate) enum GroupKind {
    Act(Activation),
    LayerNorm {
        axes: Vec<i64>,
        epsilon: f64,
        weight: Option<String>,
        bias: Option<String>,
    },
    GroupNorm {
        groups: usize,
        epsilon: f64,
        weight: Option<String>,
        bias: Option<String>,
    },
}

/// Finds every pattern; a node belongs to at most one.
pub(crate) fn find(g: &Graph) -> Vec<Group> {
    let mut taken = BTreeSet::new();
    let mut out = Vec::new();
    for i in 0..g.nodes.len() {
        if taken.contains(&i) {
            continue;
        }
        let m = M { g };
        let found = match g.op(i) {
            "Erf" => m.gelu_erf(i),
            "Tanh" => m.gelu_tanh(i).or_else(|| m.tanhshrink(i)),
            "Softplus" => m.mish(i),
            "Sigmoid" => m.silu(i).or_else(|| m.log_sigmoid(i)),
            "Abs" => m.softsign(i),
            "HardSigmoid" => m.hard_swish(i),
            "ReduceMean" => m.layer_norm(i),
            "InstanceNormalization" => m.group_norm(i),
            _ => None,
        };
        if let Some(mut grp) = found {
            grp.nodes.sort_unstable();
            grp.nodes.dedup();
            if grp.nodes.iter().any(|n| taken.contains(n)) || !m.closed(&grp) {
                continue;
            }
            taken.extend(grp.nodes.iter().copied());
            out.push(grp);
        }
    }
    out
}

struct M<'a> {
    g: &'a Graph,
}

impl M<'_> {
    fn op_is(&self, i: usize, op: &str) -> bool {
        self.g.op(i) == op
    }

    fn in0(&self, i: usize) -> Option<String> {
        self.g.input(i, 0).map(str::to_string)
    }

    fn out0(&self, i: usize) -> Option<String> {
        self.g.output(i, 0).map(str::to_string)
    }

    /// The sole consumer of node `i`'s first output, if it has operator `op`.
    fn next(&self, i: usize, op: &str) -> Option<usize> {
        let n = self.g.sole_consumer(&self.out0(i)?)?;
        self.op_is(n, op).then_some(n)
    }

    /// For a two-input node, the operand that is not `v`.
    fn other(&self, i: usize, v: &str) -> Option<String> {
        let (a, b) = (self.g.input(i, 0)?, self.g.input(i, 1)?);
        if a == v {
            Some(b.to_string())
        } else if b == v {
            Some(a.to_string())
        } else {
            None
        }
    }

    fn is_const(&self, v: &str, target: f64) -> bool {
        self.g.scalar(v).is_some_and(|c| approx(c, target))
    }

    /// Every value made inside the group, except its output, is read only inside it.
    fn closed(&self, grp: &Group) -> bool {
        grp.nodes.iter().all(|&n| {
            self.g.nodes[n]
                .output
                .iter()
                .filter(|o| !o.is_empty() && **o != grp.output)
                .all(|o| {
                    !self.g.is_output(o)
                        && self.g.consumers(o).iter().all(|c| grp.nodes.contains(c))
                })
        })
    }

    /// `... → Add(1, t) → {Mul(x, ·) → Mul(·, 0.5) | Mul(·, 0.5) → Mul(x, ·) | Mul(Mul(x, 0.5), ·)}`,
    /// starting from the node producing `t`; returns the nodes and the final output.
    fn half_x_times_one_plus(&self, t_node: usize, x: &str) -> Option<(Vec<usize>, String)> {
        let add = self.next(t_node, "Add")?;
        let t = self.out0(t_node)?;
        if !self.is_const(&self.other(add, &t)?, 1.0) {
            return None;
        }
        let one_plus = self.out0(add)?;
        let m1 = self.next(add, "Mul")?;
        let o = self.other(m1, &one_plus)?;
        if o == x {
            let m2 = self.next(m1, "Mul")?;
            if self.is_const(&self.other(m2, &self.out0(m1)?)?, 0.5) {
                return Some((vec![add, m1, m2], self.out0(m2)?));
            }
            return None;
        }
        if self.is_const(&o, 0.5) {
            let m2 = self.next(m1, "Mul")?;
            if self.other(m2, &self.out0(m1)?)? == x {
                return Some((vec![add, m1, m2], self.out0(m2)?));
            }
            return None;
        }
        let h = self.g.producer(&o)?;
        if self.op_is(h, "Mul") && self.is_const(&self.other(h, x)?, 0.5) {
            return Some((vec![h, add, m1], self.out0(m1)?));
        }
        None
    }

    fn act(&self, nodes: Vec<usize>, input: String, output: String, f: Activation) -> Group {
        Group {
            nodes,
            input,
            output,
            kind: GroupKind::Act(f),
        }
    }

    fn gelu_erf(&self, e: usize) -> Option<Group> {
        let scaled = self.in0(e)?;
        let p = self.g.producer(&scaled)?;
        if self.g.sole_consumer(&scaled) != Some(e) {
            return None;
        }
        let x = self.in0(p)?;
        let c = self.g.input(p, 1)?;
        let ok = match self.g.op(p) {
            "Div" => self.is_const(c, std::f64::consts::SQRT_2),
            "Mul" => self.is_const(c, std::f64::consts::FRAC_1_SQRT_2),
            _ => false,
        };
        if !ok || !self.g.is_runtime(&x) {
            return None;
        }
        let (tail, out) = self.half_x_times_one_plus(e, &x)?;
        let mut nodes = vec![p, e];
        nodes.extend(tail);
        Some(self.act(nodes, x, out, Activation::Gelu { approximate: false }))
    }

    fn gelu_tanh(&self, t: usize) -> Option<Group> {
        let inner = self.in0(t)?;
        let pm = self.g.producer(&inner)?;
        if !self.op_is(pm, "Mul") {
            return None;
        }
        let (a, b) = (self.g.input(pm, 0)?, self.g.input(pm, 1)?);
        let s = if self.is_const(a, (2.0 / std::f64::consts::PI).sqrt()) {
            b
        } else if self.is_const(b, (2.0 / std::f64::consts::PI).sqrt()) {
            a
        } else {
            return None;
        };
        let ps = self.g.producer(s)?;
        if !self.op_is(ps, "Add") {
            return None;
        }
        // One operand of the Add is x, the other 0.044715·x³.
        for k in 0..2 {
            let x = self.g.input(ps, k)?.to_string();
            let q = self.g.input(ps, 1 - k)?;
            let Some(pq) = self.g.producer(q) else {
                continue;
            };
            if !self.op_is(pq, "Mul") {
                continue;
            }
            let Some(cube) = self.other_const(pq, 0.044715) else {
                continue;
            };
            let Some(cube_nodes) = self.cube_of(&cube, &x) else {
                continue;
            };
            let (tail, out) = self.half_x_times_one_plus(t, &x)?;
            let mut nodes = cube_nodes;
            nodes.extend([pq, ps, pm, t]);
            nodes.extend(tail);
            return Some(self.act(nodes, x, out, Activation::Gelu { approximate: true }));
        }
        None
    }

    /// For a Mul with a constant operand ≈ `c`, the other operand.
    fn other_const(&self, i: usize, c: f64) -> Option<String> {
        let (a, b) = (self.g.input(i, 0)?, self.g.input(i, 1)?);
        if self.is_const(a, c) {
            Some(b.to_string())
        } else if self.is_const(b, c) {
            Some(a.to_string())
        } else {
            None
        }
    }

    /// Nodes computing `x³` as `Pow(x, 3)`, `Mul(x, Mul(x, x))` or `Mul(Mul(x, x), x)`.
    fn cube_of(&self, v: &str, x: &str) -> Option<Vec<usize>> {
        let p = self.g.producer(v)?;
        match self.g.op(p) {
            "Pow" if self.g.input(p, 0) == Some(x) && self.is_const(self.g.input(p, 1)?, 3.0) => {
                Some(vec![p])
            }
            "Mul" => {
                let sq = self.other(p, x)?;
                let ps = self.g.producer(&sq)?;
                (self.op_is(ps, "Mul")
                    && self.g.input(ps, 0) == Some(x)
                    && self.g.input(ps, 1) == Some(x))
                .then(|| vec![ps, p])
            }
            _ => None,
        }
    }

    fn mish(&self, sp: usize) -> Option<Group> {
        let x = self.in0(sp)?;
        let t = self.next(sp, "Tanh")?;
        let m = self.next(t, "Mul")?;
        (self.other(m, &self.out0(t)?)? == x).then(|| {
            self.act(
                vec![sp, t, m],
                x,
                self.out0(m).unwrap_or_default(),
                Activation::Mish,
            )
        })
    }

    fn silu(&self, s: usize) -> Option<Group> {
        let x = self.in0(s)?;
        let m = self.next(s, "Mul")?;
        (self.other(m, &self.out0(s)?)? == x).then(|| {
            self.act(
                vec![s, m],
                x,
                self.out0(m).unwrap_or_default(),
                Activation::Silu,
            )
        })
    }

    fn log_sigmoid(&self, s: usize) -> Option<Group> {
        let x = self.in0(s)?;
        let l = self.next(s, "Log")?;
        Some(self.act(vec![s, l], x, self.out0(l)?, Activation::LogSigmoid))
    }

    fn tanhshrink(&self, t: usize) -> Option<Group> {
        let x = self.in0(t)?;
        let sub = self.next(t, "Sub")?;
        (self.g.input(sub, 0) == Some(x.as_str()) && self.g.input(sub, 1) == self.g.output(t, 0))
            .then(|| {
                self.act(
                    vec![t, sub],
                    x,
                    self.out0(sub).unwrap_or_default(),
                    Activation::TanhShrink,
                )
            })
    }

    fn softsign(&self, a: usize) -> Option<Group> {
        let x = self.in0(a)?;
        let add = self.next(a, "Add")?;
        if !self.is_const(&self.other(add, &self.out0(a)?)?, 1.0) {
            return None;
        }
        let div = self.next(add, "Div")?;
        (self.g.input(div, 0) == Some(x.as_str()) && self.g.input(div, 1) == self.g.output(add, 0))
            .then(|| {
                self.act(
                    vec![a, add, div],
                    x,
                    self.out0(div).unwrap_or_default(),
                    Activation::Softsign,
                )
            })
    }

    fn hard_swish(&self, h: usize) -> Option<Group> {
        let x = self.in0(h)?;
        let a = super::decode::Attrs::new(&self.g.nodes[h]);
        let alpha = a.float_or("alpha", 0.2).ok()?;
        let beta = a.float_or("beta", 0.5).ok()?;
        if !approx(alpha, 1.0 / 6.0) || !approx(beta, 0.5) {
            return None;
        }
        let m = self.next(h, "Mul")?;
        (self.other(m, &self.out0(h)?)? == x).then(|| {
            self.act(
                vec![h, m],
                x,
                self.out0(m).unwrap_or_default(),
                Activation::HardSwish,
            )
        })
    }

    fn reduce_axes(&self, i: usize) -> Option<Vec<i64>> {
        let a = super::decode::Attrs::new(&self.g.nodes[i]);
        if a.int_or("keepdims", 1).ok()? != 1 {
            return None;
        }
        match a.ints("axes").ok()? {
            Some(ax) => Some(ax),
            None => self
                .g
                .input(i, 1)
                .and_then(|v| self.g.konst(v))
                .and_then(int_vec),
        }
    }

    fn layer_norm(&self, r1: usize) -> Option<Group> {
        let x = self.in0(r1)?;
        let rank = self.g.shape(&x)?.len();
        let axes = self.reduce_axes(r1)?;
        let mut norm: Vec<i64> = axes
            .iter()
            .map(|&a| if a < 0 { a + rank as i64 } else { a })
            .collect();
        norm.sort_unstable();
        let first = *norm.first()?;
        if first < 1 || first >= rank as i64 || norm != (first..rank as i64).collect::<Vec<_>>() {
            return None;
        }
        let mean = self.out0(r1)?;
        let sub = self.next(r1, "Sub")?;
        if self.g.input(sub, 0) != Some(x.as_str()) || self.g.input(sub, 1) != Some(mean.as_str()) {
            return None;
        }
        let d = self.out0(sub)?;
        let readers = self.g.consumers(&d);
        if readers.len() != 2 || self.g.is_output(&d) {
            return None;
        }
        let pow = *readers.iter().find(|&&n| self.op_is(n, "Pow"))?;
        let div = *readers.iter().find(|&&n| self.op_is(n, "Div"))?;
        if self.g.input(pow, 0) != Some(d.as_str()) || !self.is_const(self.g.input(pow, 1)?, 2.0) {
            return None;
        }
        let r2 = self.next(pow, "ReduceMean")?;
        if self.reduce_axes(r2)? != axes {
            return None;
        }
        let add = self.next(r2, "Add")?;
        let epsilon = self.g.scalar(&self.other(add, &self.out0(r2)?)?)?;
        let sqrt = self.next(add, "Sqrt")?;
        if self.g.sole_consumer(&self.out0(sqrt)?) != Some(div)
            || self.g.input(div, 0) != Some(d.as_str())
            || self.g.input(div, 1) != self.g.output(sqrt, 0)
        {
            return None;
        }
        let mut nodes = vec![r1, sub, pow, r2, add, sqrt, div];
        let mut out = self.out0(div)?;
        let normalized: Vec<Dim> = self.g.shape(&x)?[first as usize..].to_vec();
        let fits = |v: &str| -> bool {
            self.g.konst(v).is_some_and(|t| {
                let s: Vec<Dim> = t.shape().iter().map(|&n| Dim::Known(n as i64)).collect();
                s == normalized
            })
        };
        let mut weight = None;
        let mut bias = None;
        if let Some(m) = self.next(div, "Mul") {
            let w = self.other(m, &out)?;
            if fits(&w) {
                weight = Some(w);
                nodes.push(m);
                out = self.out0(m)?;
                if let Some(a) = self.next(m, "Add") {
                    let b = self.other(a, &out)?;
                    if fits(&b) {
                        bias = Some(b);
                        nodes.push(a);
                        out = self.out0(a)?;
                    }
                }
            }
        }
        let axes = (first..rank as i64).map(|a| a - rank as i64).collect();
        Some(Group {
            nodes,
            input: x,
            output: out,
            kind: GroupKind::LayerNorm {
                axes,
                epsilon,
                weight,
                bias,
            },
        })
    }

    fn group_norm(&self, n: usize) -> Option<Group> {
        let r1 = self.g.producer(&self.in0(n)?)?;
        if !self.op_is(r1, "Reshape") || self.g.sole_consumer(&self.out0(r1)?) != Some(n) {
            return None;
        }
        let x = self.in0(r1)?;
        let target = self.g.konst(self.g.input(r1, 1)?).and_then(int_vec)?;
        let [0, groups, -1] = target.as_slice() else {
            return None;
        };
        let groups = usize::try_from(*groups).ok()?;
        let ones = self.g.konst(self.g.input(n, 1)?)?;
        let zeros = self.g.konst(self.g.input(n, 2)?)?;
        if ones.len() != groups || zeros.len() != groups {
            return None;
        }
        if !ones.to_f64().iter().all(|&v| is_one(v)) || !zeros.to_f64().iter().all(|&v| v == 0.0) {
            return None;
        }
        let epsilon = super::decode::Attrs::new(&self.g.nodes[n])
            .float_or("epsilon", 1e-5)
            .ok()?;
        let r2 = self.next(n, "Reshape")?;
        let back = self.g.val(self.g.input(r2, 1)?)?;
        let xs = self.g.shape(&x)?;
        let same = match back {
            Val::Shape { dims, .. } => *dims == xs,
            Val::Const(t) => int_vec(t).is_some_and(|v| {
                v.iter().zip(&xs).all(|(a, b)| b.known() == Some(*a)) && v.len() == xs.len()
            }),
            _ => false,
        };
        if !same {
            return None;
        }
        let channels = xs.get(1)?.known()?;
        let per_channel = |v: &str| -> bool {
            self.g.konst(v).is_some_and(|t| {
                t.len() == channels as usize
                    && t.shape().first() == Some(&(channels as usize))
                    && t.shape().iter().skip(1).all(|&d| d == 1)
            })
        };
        let mut nodes = vec![r1, n, r2];
        let mut out = self.out0(r2)?;
        let mut weight = None;
        let mut bias = None;
        if let Some(m) = self.next(r2, "Mul") {
            let w = self.other(m, &out)?;
            if per_channel(&w) {
                weight = Some(w);
                nodes.push(m);
                out = self.out0(m)?;
                if let Some(a) = self.next(m, "Add") {
                    let b = self.other(a, &out)?;
                    if per_channel(&b) {
                        bias = Some(b);
                        nodes.push(a);
                        out = self.out0(a)?;
                    }
                }
            }
        }
        Some(Group {
            nodes,
            input: x,
            output: out,
            kind: GroupKind::GroupNorm {
                groups,
                epsilon,
                weight,
                bias,
            },
        })
    }
}
