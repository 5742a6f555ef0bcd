//! LSTM, GRU and RNN nodes: one IR `Rnn` layer each, carrying torch's own tensors.
//!
//! torch's training-mode export builds W, R and B with `Slice`/`Concat` subgraphs over
//! `<module>.weight_ih_l<k>`, `weight_hh_l<k>`, `bias_ih_l<k>`, `bias_hh_l<k>` (and the
//! `_reverse` ones) that reorder the gate blocks from torch's order (LSTM `i,f,g,o`, GRU
//! `r,z,n`) into ONNX's (`i,o,f,c`, `z,r,h`). Constant evaluation has already computed W/R/B;
//! here the originals are found among the initializers they were computed from, and kept only
//! if re-applying the gate reorder to them reproduces W/R/B exactly. A constant-folded export
//! has W/R/B as plain initializers in ONNX layout: those are converted to torch layout and
//! named after the module, with a note.
//!
//! torch runs the ONNX layer time-major and puts `Transpose(1, 0, 2)` around it for
//! `batch_first=True`; the IR layer is marked batch-first and the transposes are absorbed.
//! Its outputs are `(sequence, h, c)`: the sequence as torch returns it
//! (`(batch, time, directions·hidden)` when batch-first, else time-major) and `h`/`c` as
//! `(directions, batch, hidden)`, torch's `h_n`/`c_n` for one layer.

use model_ir::{
    Activation, BidiMerge, GateOrder, GruReset, Op, Param, ParamLayout, ParamRole, RnnBias,
    RnnCell, RnnDirection, Tensor,
};

use super::{Alias, Lifter, R, Registry};
use crate::onnx::naming::param_module;
use crate::onnx::value::{Val, concat, int_vec};

/// The torch and ONNX gate orders of a cell.
fn orders(cell: RnnCell) -> (GateOrder, GateOrder) {
    match cell {
        RnnCell::Lstm => (GateOrder::Ifco, GateOrder::Iofc),
        RnnCell::Gru => (GateOrder::Rzn, GateOrder::Zrh),
        RnnCell::SimpleRnn => (GateOrder::Single, GateOrder::Single),
    }
}

/// Reorders the gate blocks along axis 0 of `t` from `from` to `to`.
fn reorder(t: &Tensor, from: GateOrder, to: GateOrder) -> Option<Tensor> {
    let perm = from.permutation_to(to)?;
    let len = *t.shape().first()?;
    let g = perm.len();
    if g == 0 || len % g != 0 {
        return None;
    }
    let h = len / g;
    let idx: Vec<usize> = perm.iter().flat_map(|&b| b * h..(b + 1) * h).collect();
    Some(t.select(0, &idx))
}

/// `t` with a new leading axis of length 1.
fn lead(t: &Tensor) -> Option<Tensor> {
    let mut s = vec![1];
    s.extend_from_slice(t.shape());
    t.reshaped(&s)
}

/// Direction `d` of a `(directions, ...)` tensor.
fn dir(t: &Tensor, d: usize) -> Option<Tensor> {
    let picked = t.select(0, &[d]);
    picked.reshaped(&t.shape()[1..])
}

struct Spec {
    cell: RnnCell,
    dirs: usize,
    hidden: usize,
    has_bias: bool,
}

pub(super) fn register(reg: &mut Registry) {
    reg.add(
        &["LSTM", "GRU", "RNN"],
        &[
            "activations",
            "clip",
            "direction",
            "hidden_size",
            "input_forget",
            "layout",
            "linear_before_reset",
        ],
        lift_rnn,
    );
}

fn lift_rnn(l: &mut Lifter<'_>, i: usize) -> R<()> {
    let g = l.g;
    let op = g.op(i).to_string();
    let cell = match op.as_str() {
        "LSTM" => RnnCell::Lstm,
        "GRU" => RnnCell::Gru,
        _ => RnnCell::SimpleRnn,
    };
    let a = l.attrs(i);
    let hidden = a
        .int("hidden_size")?
        .and_then(|h| usize::try_from(h).ok())
        .filter(|&h| h > 0)
        .ok_or_else(|| l.malformed(i, "hidden_size missing"))?;
    let direction = match a.string("direction")?.as_deref() {
        None | Some("forward") => RnnDirection::Forward,
        Some("reverse") => RnnDirection::Reverse,
        Some("bidirectional") => RnnDirection::Bidirectional(BidiMerge::Concat),
        Some(other) => return Err(l.malformed(i, format!("direction {other}"))),
    };
    let dirs = if matches!(direction, RnnDirection::Bidirectional(_)) {
        2
    } else {
        1
    };
    if let Some(acts) = a.strings_lower("activations")? {
        let default: &[&str] = match cell {
            RnnCell::Lstm => &["sigmoid", "tanh", "tanh"],
            RnnCell::Gru => &["sigmoid", "tanh"],
            RnnCell::SimpleRnn => &["tanh"],
        };
        let want: Vec<&str> = (0..dirs).flat_map(|_| default.iter().copied()).collect();
        if acts != want {
            return Err(l.unsupported(
                i,
                format!("activations {acts:?} (only the defaults {default:?} lift)"),
            ));
        }
    }
    if a.float("clip")?.is_some() {
        return Err(l.unsupported(i, "cell clipping (clip)"));
    }
    if a.int_or("input_forget", 0)? != 0 {
        return Err(l.unsupported(i, "coupled input and forget gates (input_forget=1)"));
    }
    let layout = a.int_or("layout", 0)?;
    let lbr = a.int_or("linear_before_reset", 0)? != 0;
    for (k, what) in [(4, "sequence_lens"), (7, "peepholes (P)")] {
        if g.input(i, k).is_some() {
            return Err(l.unsupported(i, format!("input {what}")));
        }
    }
    for (k, what) in [(5, "initial_h"), (6, "initial_c")] {
        if let Some(v) = g.input(i, k) {
            let zero = match g.val(v) {
                Some(Val::Zeros { .. }) => true,
                Some(Val::Const(t)) => t.to_f64().iter().all(|&x| x == 0.0),
                _ => false,
            };
            if !zero {
                return Err(l.unsupported(
                    i,
                    format!("a non-zero {what} (only zero initial states lift)"),
                ));
            }
        }
    }

    // Input: a deferred (batch-first) swap means the IR layer reads the batch-first tensor.
    let xv = g
        .input(i, 0)
        .ok_or_else(|| l.malformed(i, "input X missing"))?
        .to_string();
    let (x, batch_first) = match l.alias.get(&xv).cloned() {
        Some(Alias::Swap01(u)) if layout == 0 => (l.resolve(&u, &g.name(i))?, true),
        _ => (l.rt(i, 0)?, layout == 1),
    };

    let spec = Spec {
        cell,
        dirs,
        hidden,
        has_bias: g.input(i, 3).is_some(),
    };
    let w = l.konst(i, 1)?.clone();
    let r = l.konst(i, 2)?.clone();
    let b = l.opt_konst(i, 3)?.cloned();
    let gates = cell.gates();
    let gh = gates
        .checked_mul(hidden)
        .filter(|g| g.checked_mul(2).is_some())
        .ok_or_else(|| l.malformed(i, format!("hidden_size {hidden}")))?;
    if w.shape().len() != 3
        || w.shape()[0] != dirs
        || w.shape()[1] != gh
        || r.shape() != [dirs, gh, hidden]
    {
        return Err(l.malformed(
            i,
            format!(
                "W {:?} / R {:?} do not fit {dirs} direction(s) of {gates} gates × {hidden}",
                w.shape(),
                r.shape()
            ),
        ));
    }
    if b.as_ref().is_some_and(|b| b.shape() != [dirs, 2 * gh]) {
        return Err(l.malformed(
            i,
            format!(
                "B {:?} does not fit {dirs} × {}",
                b.as_ref().map(|b| b.shape().to_vec()),
                2 * gh
            ),
        ));
    }

    let traced = traced_params(l, i, &spec, &w, &r, b.as_ref());
    let (module, layer, params) = match traced {
        Some(t) => t,
        None => converted_params(l, i, &spec, &w, &r, b.as_ref())?,
    };
    let multi = layer > 0
        || g.initializers
            .iter()
            .any(|n| *n == format!("{module}.weight_ih_l1"));
    let base = if multi {
        format!("{module}.l{layer}")
    } else {
        module.clone()
    };

    // Outputs: the sequence (after torch's Squeeze / Transpose+Reshape), h and c.
    let name = g.name(i);
    let y = g
        .output(i, 0)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{name}.sequence"));
    let yh = g
        .output(i, 1)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{name}.h"));
    let yc = g
        .output(i, 2)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{name}.c"));
    let seq = sequence_value(l, i, &y, dirs, layout)?;
    let mut outputs = vec![y.clone(), yh];
    if cell == RnnCell::Lstm {
        outputs.push(yc);
    }
    let op_ir = Op::Rnn {
        cell,
        units: hidden,
        activation: Activation::Tanh,
        recurrent_activation: (cell != RnnCell::SimpleRnn).then_some(Activation::Sigmoid),
        gate_order: orders(cell).0,
        bias: if spec.has_bias {
            RnnBias::InputAndRecurrent
        } else {
            RnnBias::None
        },
        gru_reset: (cell == RnnCell::Gru).then_some(if lbr {
            GruReset::AfterMatmul
        } else {
            GruReset::BeforeMatmul
        }),
        direction,
        return_sequences: true,
        return_state: true,
        go_backwards: false,
        batch_first,
        unit_forget_bias: false,
        dropout: 0.0,
        recurrent_dropout: 0.0,
    };
    l.emit_named(i, &base, op_ir, vec![x], outputs, params, &op)?;
    if let Some(seq) = seq {
        let alias = if batch_first && layout == 0 {
            Alias::Swap01(y)
        } else {
            Alias::Same(y)
        };
        l.alias.insert(seq, alias);
    }
    Ok(())
}

/// Finds the value torch reads the output sequence from, claiming the nodes that reshape the
/// raw `Y` into it: `Squeeze(Y, [1])` for one direction, `Transpose(0, 2, 1, 3) →
/// Reshape(0, 0, -1)` for two.
fn sequence_value(
    l: &mut Lifter<'_>,
    i: usize,
    y: &str,
    dirs: usize,
    layout: i64,
) -> R<Option<String>> {
    let g = l.g;
    if g.consumers(y).is_empty() && !g.is_output(y) {
        return Ok(None);
    }
    let bad = |c: Option<usize>| {
        let (node, op) = match c {
            Some(c) => (
                g.name(c),
                format!("{} of the raw {} output Y", g.op(c), g.op(i)),
            ),
            None => (g.name(i), format!("{} output Y read directly", g.op(i))),
        };
        crate::error::ErrorKind::UnsupportedOp { node, op_type: op }
    };
    let Some(c) = g.sole_consumer(y) else {
        return Err(bad(g.consumers(y).first().copied()));
    };
    let dir_axis = if layout == 1 { 2 } else { 1 };
    if dirs == 1 {
        let axes = match (g.op(c), l.attrs(c).ints("axes")?) {
            ("Squeeze", Some(a)) => Some(a),
            ("Squeeze", None) => g.input(c, 1).and_then(|v| g.konst(v)).and_then(int_vec),
            _ => None,
        };
        if axes.as_deref() != Some(&[dir_axis]) && axes.as_deref() != Some(&[dir_axis - 4]) {
            return Err(bad(Some(c)));
        }
        l.claimed.insert(c);
        return Ok(g.output(c, 0).map(str::to_string));
    }
    // Two directions: (T, 2, B, H) → Transpose(0, 2, 1, 3) → (T, B, 2, H) → Reshape → (T, B, 2H).
    let mut cur = c;
    if layout == 0 {
        if g.op(c) != "Transpose" || l.attrs(c).ints("perm")?.as_deref() != Some(&[0, 2, 1, 3]) {
            return Err(bad(Some(c)));
        }
        let t_out = g.output(c, 0).unwrap_or_default();
        cur = g.sole_consumer(t_out).ok_or_else(|| bad(Some(c)))?;
    }
    if g.op(cur) != "Reshape" {
        return Err(bad(Some(cur)));
    }
    let out = g.output(cur, 0).unwrap_or_default().to_string();
    let ok = match (g.shape(g.input(cur, 0).unwrap_or_default()), g.shape(&out)) {
        (Some(a), Some(b)) => a.len() == 4 && b.len() == 3 && a[0] == b[0] && a[1] == b[1],
        _ => false,
    };
    if !ok {
        return Err(bad(Some(cur)));
    }
    l.claimed.insert(c);
    l.claimed.insert(cur);
    Ok(Some(out))
}

/// The state_dict tensors W/R/B were built from, if re-applying torch's gate reorder to them
/// reproduces W/R/B exactly: `(module, layer, params)`.
fn traced_params(
    l: &Lifter<'_>,
    i: usize,
    spec: &Spec,
    w: &Tensor,
    r: &Tensor,
    b: Option<&Tensor>,
) -> Option<(String, usize, Vec<Param>)> {
    let g = l.g;
    let (torch, onnx) = orders(spec.cell);
    let wv = g.input(i, 1)?;
    // The forward weight_ih initializer names module and layer.
    let (module, layer) = g.init_ancestors(wv).iter().find_map(|n| {
        let (m, leaf) = param_module(n)?;
        let k: usize = leaf.strip_prefix("weight_ih_l")?.parse().ok()?;
        Some((m.to_string(), k))
    })?;
    let sfx = |d: usize| {
        if d == 0 {
            String::new()
        } else {
            "_reverse".to_string()
        }
    };
    let get = |leaf: &str, d: usize| -> Option<(String, Tensor)> {
        let n = format!("{module}.{leaf}_l{layer}{}", sfx(d));
        Some((n.clone(), g.konst(&n)?.clone()))
    };
    let mut params = Vec::new();
    let mut rebuilt_w = Vec::new();
    let mut rebuilt_r = Vec::new();
    let mut rebuilt_b = Vec::new();
    for d in 0..spec.dirs {
        let (wn, wt) = get("weight_ih", d)?;
        let (rn, rt) = get("weight_hh", d)?;
        rebuilt_w.push(lead(&reorder(&wt, torch, onnx)?)?);
        rebuilt_r.push(lead(&reorder(&rt, torch, onnx)?)?);
        params.push(param(
            wn,
            ParamRole::InputKernel,
            ParamLayout::RnnGatesIn { gate_order: torch },
            wt,
        ));
        params.push(param(
            rn,
            ParamRole::RecurrentKernel,
            ParamLayout::RnnGatesIn { gate_order: torch },
            rt,
        ));
        if spec.has_bias {
            let (bin, bit) = get("bias_ih", d)?;
            let (bhn, bht) = get("bias_hh", d)?;
            let both = concat(
                &[&reorder(&bit, torch, onnx)?, &reorder(&bht, torch, onnx)?],
                0,
            )
            .ok()?;
            rebuilt_b.push(lead(&both)?);
            params.push(param(
                bin,
                ParamRole::InputBias,
                ParamLayout::RnnGateVector { gate_order: torch },
                bit,
            ));
            params.push(param(
                bhn,
                ParamRole::RecurrentBias,
                ParamLayout::RnnGateVector { gate_order: torch },
                bht,
            ));
        }
    }
    let stack = |v: &[Tensor]| concat(&v.iter().collect::<Vec<_>>(), 0).ok();
    if stack(&rebuilt_w)? != *w || stack(&rebuilt_r)? != *r {
        return None;
    }
    if let Some(b) = b
        && stack(&rebuilt_b)? != *b
    {
        return None;
    }
    Some((module, layer, params))
}

fn param(name: String, role: ParamRole, layout: ParamLayout, tensor: Tensor) -> Param {
    Param {
        name,
        role,
        layout,
        tensor,
        trainable: true,
    }
}

/// W/R/B in ONNX layout converted to torch's per-direction tensors, named after the module.
fn converted_params(
    l: &mut Lifter<'_>,
    i: usize,
    spec: &Spec,
    w: &Tensor,
    r: &Tensor,
    b: Option<&Tensor>,
) -> R<(String, usize, Vec<Param>)> {
    let g = l.g;
    let (torch, onnx) = orders(spec.cell);
    let module = l.scopes.node_name(&g.nodes[i], &g.name(i));
    let counter = l.rnn_layers.entry(module.clone()).or_insert(0);
    let layer = *counter;
    *counter += 1;
    let gh = spec.cell.gates() * spec.hidden;
    let bad = || l.malformed(i, "W/R/B cannot be split into gate blocks");
    let mut params = Vec::new();
    let mut sources = Vec::new();
    for (k, t) in [(1, Some(w)), (2, Some(r)), (3, b)] {
        if let (Some(_), Some(v)) = (t, g.input(i, k)) {
            sources.push(v.to_string());
        }
    }
    for d in 0..spec.dirs {
        let sfx = if d == 0 { "" } else { "_reverse" };
        let name = |leaf: &str| format!("{module}.{leaf}_l{layer}{sfx}");
        let wd = reorder(&dir(w, d).ok_or_else(bad)?, onnx, torch).ok_or_else(bad)?;
        let rd = reorder(&dir(r, d).ok_or_else(bad)?, onnx, torch).ok_or_else(bad)?;
        params.push(param(
            name("weight_ih"),
            ParamRole::InputKernel,
            ParamLayout::RnnGatesIn { gate_order: torch },
            wd,
        ));
        params.push(param(
            name("weight_hh"),
            ParamRole::RecurrentKernel,
            ParamLayout::RnnGatesIn { gate_order: torch },
            rd,
        ));
        if let Some(b) = b {
            let bd = dir(b, d).ok_or_else(bad)?;
            let wb = bd.select(0, &(0..gh).collect::<Vec<_>>());
            let rb = bd.select(0, &(gh..2 * gh).collect::<Vec<_>>());
            let wb = reorder(&wb, onnx, torch).ok_or_else(bad)?;
            let rb = reorder(&rb, onnx, torch).ok_or_else(bad)?;
            params.push(param(
                name("bias_ih"),
                ParamRole::InputBias,
                ParamLayout::RnnGateVector { gate_order: torch },
                wb,
            ));
            params.push(param(
                name("bias_hh"),
                ParamRole::RecurrentBias,
                ParamLayout::RnnGateVector { gate_order: torch },
                rb,
            ));
        }
    }
    let names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
    l.notes.push(format!(
        "{module}: the {} weights were not traceable to state_dict tensors (W/R/B {}: ONNX layout, gate order {}), so the names were lost; converted to torch layout (gate order {}) and named {}",
        g.op(i),
        sources.join(", "),
        onnx.gates().join(","),
        torch.gates().join(","),
        names.join(", ")
    ));
    Ok((module, layer, params))
}
