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
//!
//! Any other reader of `Y` (a graph output, ONNX's own node tests) gets the raw ONNX form
//! rebuilt by IR nodes: `Reshape` to `(·, ·, directions, hidden)` and `Permute` to
//! `(T, directions, N, hidden)` (layout 0) or `(N, T, directions, hidden)` (layout 1); with
//! layout 1, `Y_h` / `Y_c` are permuted to `(N, directions, hidden)` and constant initial
//! states read from that form. Constant `initial_h` / `initial_c` (non-zero), peepholes `P`
//! and `sequence_lens` (unless every length is the full sequence) become parameters the
//! engine computes with; computed ones are refused. `activations` (with `activation_alpha` /
//! `activation_beta`, handed out in order to the functions that read them, as ONNX Runtime
//! does) lift when the engine has the function, both directions agree and an LSTM's `g` and
//! `h` are the same function; `clip` and `input_forget=1` are refused.

use model_ir::{
    Activation, BidiMerge, GateOrder, GruReset, HardSigmoid, Op, Param, ParamLayout, ParamRole,
    RnnBias, RnnCell, RnnDirection, Tensor,
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
    // `clip` is not computed (the engine has no cell clipping): the gate refuses it, as it
    // refuses `input_forget=1` (coupled input and forget gates).
    reg.add(
        &["LSTM"],
        &[
            "activation_alpha",
            "activation_beta",
            "activations",
            "direction",
            "hidden_size",
            "input_forget=0",
            "layout",
        ],
        lift_rnn,
    );
    reg.add(
        &["GRU"],
        &[
            "activation_alpha",
            "activation_beta",
            "activations",
            "direction",
            "hidden_size",
            "layout",
            "linear_before_reset",
        ],
        lift_rnn,
    );
    reg.add(
        &["RNN"],
        &[
            "activation_alpha",
            "activation_beta",
            "activations",
            "direction",
            "hidden_size",
            "layout",
        ],
        lift_rnn,
    );
}

/// Whether ONNX activation `name` (lower case) reads an `activation_alpha` / `activation_beta`
/// value. ONNX Runtime hands the lists out in order to the functions that read them.
fn reads_alpha_beta(name: &str) -> (bool, bool) {
    match name {
        "leakyrelu" | "thresholdedrelu" | "elu" => (true, false),
        "hardsigmoid" | "affine" | "scaledtanh" => (true, true),
        _ => (false, false),
    }
}

/// The engine activation computing ONNX activation `name` with its alpha/beta (`None` = the
/// ONNX default), or `None` when the engine has no exact counterpart.
fn onnx_activation(name: &str, alpha: Option<f64>, beta: Option<f64>) -> Option<Activation> {
    Some(match name {
        "sigmoid" => Activation::Sigmoid,
        "tanh" => Activation::Tanh,
        "relu" => Activation::RELU,
        "softsign" => Activation::Softsign,
        "softplus" => Activation::Softplus {
            beta: 1.0,
            threshold: None,
        },
        "leakyrelu" => Activation::LeakyRelu {
            slope: alpha.unwrap_or(0.01),
        },
        "elu" => Activation::Elu {
            alpha: alpha.unwrap_or(1.0),
        },
        "hardsigmoid" => Activation::HardSigmoid(HardSigmoid {
            slope: alpha.unwrap_or(0.2),
            offset: beta.unwrap_or(0.5),
        }),
        _ => return None,
    })
}

/// The `(gate, candidate)` activations of the `activations` attribute (with
/// `activation_alpha` / `activation_beta`), or the refusal naming the attribute value the
/// engine does not compute. ONNX lists `f, g, h` (LSTM), `f, g` (GRU) or `f` (RNN) per
/// direction; the engine runs one `f` for the gates and one `g` = `h` for the candidate and
/// the cell output.
fn activations(
    l: &Lifter<'_>,
    i: usize,
    cell: RnnCell,
    dirs: usize,
) -> R<(Option<Activation>, Activation)> {
    let a = l.attrs(i);
    let per: usize = match cell {
        RnnCell::Lstm => 3,
        RnnCell::Gru => 2,
        RnnCell::SimpleRnn => 1,
    };
    let alphas = a.floats("activation_alpha")?;
    let betas = a.floats("activation_beta")?;
    let Some(names) = a.strings_lower("activations")? else {
        if alphas.is_some() || betas.is_some() {
            return Err(l.unsupported(
                i,
                format!(
                    "activation_alpha={alphas:?} / activation_beta={betas:?} without activations (the defaults read neither)"
                ),
            ));
        }
        let gate = (cell != RnnCell::SimpleRnn).then_some(Activation::Sigmoid);
        return Ok((gate, Activation::Tanh));
    };
    if names.len() != per * dirs {
        return Err(l.malformed(
            i,
            format!(
                "activations={names:?} lists {} functions, expected {per} per direction × {dirs}",
                names.len()
            ),
        ));
    }
    let n_alpha = names.iter().filter(|n| reads_alpha_beta(n).0).count();
    let n_beta = names.iter().filter(|n| reads_alpha_beta(n).1).count();
    for (what, list, want) in [
        ("activation_alpha", &alphas, n_alpha),
        ("activation_beta", &betas, n_beta),
    ] {
        if let Some(v) = list
            && v.len() != want
        {
            return Err(l.unsupported(
                i,
                format!(
                    "{what}={v:?} with activations={names:?} ({want} function(s) read it; only an exact one-per-function list lifts)"
                ),
            ));
        }
    }
    let (mut ai, mut bi) = (0, 0);
    let mut acts = Vec::new();
    for n in &names {
        let (ra, rb) = reads_alpha_beta(n);
        let alpha = if ra {
            ai += 1;
            alphas.as_ref().map(|v| v[ai - 1])
        } else {
            None
        };
        let beta = if rb {
            bi += 1;
            betas.as_ref().map(|v| v[bi - 1])
        } else {
            None
        };
        let act = onnx_activation(n, alpha, beta).ok_or_else(|| {
            l.unsupported(
                i,
                format!("activations={names:?}: {n} is not computed by parallax"),
            )
        })?;
        acts.push(act);
    }
    if dirs == 2 && acts[..per] != acts[per..] {
        return Err(l.unsupported(
            i,
            format!(
                "activations={names:?} differ between the two directions (one set is computed)"
            ),
        ));
    }
    let refuse = |why: &str| l.unsupported(i, format!("activations={names:?}: {why}"));
    match cell {
        RnnCell::SimpleRnn => Ok((None, acts[0].clone())),
        RnnCell::Gru => Ok((Some(acts[0].clone()), acts[1].clone())),
        RnnCell::Lstm => {
            if acts[1] != acts[2] {
                return Err(refuse(
                    "the cell input (g) and cell output (h) functions differ (one function is computed for both)",
                ));
            }
            Ok((Some(acts[0].clone()), acts[1].clone()))
        }
    }
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
    let (recurrent_activation, activation) = activations(l, i, cell, dirs)?;
    let layout = a.int_or("layout", 0)?;
    if layout != 0 && layout != 1 {
        return Err(l.malformed(i, format!("layout={layout} (0 or 1)")));
    }
    let lbr = a.int_or("linear_before_reset", 0)?;
    if lbr != 0 && lbr != 1 {
        return Err(l.malformed(i, format!("linear_before_reset={lbr} (0 or 1)")));
    }
    let lbr = lbr == 1;

    // Input: a deferred (batch-first) swap means the IR layer reads the batch-first tensor.
    let xv = g
        .input(i, 0)
        .ok_or_else(|| l.malformed(i, "input X missing"))?
        .to_string();
    // Time steps and batch of X, when static.
    let x_shape: Option<Vec<i64>> = g
        .shape(&xv)
        .and_then(|s| s.iter().map(|d| d.known()).collect());
    let (steps, batch) = match x_shape.as_deref() {
        Some([t, n, _]) if layout == 0 => (Some(*t), Some(*n)),
        Some([n, t, _]) => (Some(*t), Some(*n)),
        _ => (None, None),
    };
    let lens = sequence_lens(l, i, steps)?;
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
    let mut extras = extra_params(l, i, &spec, layout, batch)?;
    if let Some((t, trainable)) = lens {
        extras.push((ParamRole::SequenceLengths, "sequence_lens", t, trainable));
    }

    let traced = traced_params(l, i, &spec, &w, &r, b.as_ref());
    let (module, layer, mut params) = match traced {
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
    for (role, suffix, t, trainable) in extras {
        params.push(Param {
            name: format!("{base}.{suffix}"),
            role,
            layout: ParamLayout::AsIs,
            tensor: t,
            trainable,
        });
    }

    // Outputs. The IR layer gives the sequence as torch returns it (`(T, N, dirs·H)`, or
    // `(N, T, dirs·H)` when batch-first) and the states as `(dirs, N, H)`; torch's own
    // Squeeze / Transpose+Reshape after `Y` is absorbed, any other reader gets the raw ONNX
    // forms rebuilt by Reshape/Permute nodes.
    let name = g.name(i);
    let y = g.output(i, 0).map(str::to_string);
    let seq = match &y {
        Some(y) if !g.consumers(y).is_empty() || g.is_output(y) => {
            torch_sequence(l, i, y, dirs, layout)?
        }
        _ => None,
    };
    let seq_ir = match (&y, &seq) {
        (Some(y), Some(_)) => y.clone(),
        _ => format!("{name}.sequence"),
    };
    let mut outputs = vec![seq_ir.clone()];
    let mut permuted_states = Vec::new();
    for k in 1..if cell == RnnCell::Lstm { 3 } else { 2 } {
        let which = if k == 1 { "h" } else { "c" };
        match g.output(i, k) {
            Some(v) if layout == 1 => {
                let ir = format!("{name}.{which}_directions_first");
                outputs.push(ir.clone());
                permuted_states.push((ir, v.to_string()));
            }
            Some(v) => outputs.push(v.to_string()),
            None => outputs.push(format!("{name}.{which}")),
        }
    }
    let op_ir = Op::Rnn {
        cell,
        units: hidden,
        activation,
        recurrent_activation,
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
    match (y, seq) {
        (Some(y), Some(seq)) => {
            let alias = if batch_first && layout == 0 {
                Alias::Swap01(y)
            } else {
                Alias::Same(y)
            };
            l.alias.insert(seq, alias);
        }
        (Some(y), None) if !g.consumers(&y).is_empty() || g.is_output(&y) => {
            // (T|N, N|T, dirs·H) → (·, ·, dirs, H), then to ONNX's axis order. Axes of the
            // split IR sequence: batch-first (N, T, D, H), else (T, N, D, H).
            let perm = match (batch_first, layout) {
                (true, 0) => vec![1, 2, 0, 3],
                (false, 0) => vec![0, 2, 1, 3],
                (true, _) => vec![0, 1, 2, 3],
                (false, _) => vec![1, 0, 2, 3],
            };
            let identity = perm == [0, 1, 2, 3];
            let split = if identity {
                y.clone()
            } else {
                format!("{name}.sequence_by_direction")
            };
            l.emit_named(
                i,
                &format!("{base}.Y_split"),
                Op::Reshape {
                    target_shape: vec![-1, dirs as i64, hidden as i64],
                },
                vec![seq_ir],
                vec![split.clone()],
                Vec::new(),
                &format!("Reshape ({op} Y by direction)"),
            )?;
            if !identity {
                l.emit_named(
                    i,
                    &format!("{base}.Y"),
                    Op::Permute { perm },
                    vec![split],
                    vec![y],
                    Vec::new(),
                    &format!("Transpose ({op} Y to layout {layout})"),
                )?;
            }
        }
        _ => {}
    }
    for (ir, v) in permuted_states {
        l.emit_named(
            i,
            &format!("{base}.{v}"),
            Op::Permute {
                perm: vec![1, 0, 2],
            },
            vec![ir],
            vec![v],
            Vec::new(),
            &format!("Transpose ({op} state to layout 1)"),
        )?;
    }
    Ok(())
}

/// The constant `sequence_lens` input as an `I64` parameter tensor, or `None` when it is absent
/// or gives every batch entry all `steps` time steps (then it changes nothing). A computed one,
/// or a length outside `1..=steps`, is refused.
fn sequence_lens(l: &Lifter<'_>, i: usize, steps: Option<i64>) -> R<Option<(Tensor, bool)>> {
    let g = l.g;
    let Some(v) = g.input(i, 4) else {
        return Ok(None);
    };
    let Some(t) = g.konst(v) else {
        return Err(l.unsupported(
            i,
            format!("input sequence_lens (`{v}`) is computed at run time (only a constant lifts)"),
        ));
    };
    let lens: Vec<i64> = t.to_i64().iter().copied().collect();
    if t.shape().len() != 1 {
        return Err(l.malformed(i, format!("sequence_lens of shape {:?}", t.shape())));
    }
    if lens.iter().any(|&n| n < 1 || steps.is_some_and(|s| n > s)) {
        return Err(l.unsupported(
            i,
            format!(
                "input sequence_lens={lens:?} (only lengths from 1 to the {} time steps are computed)",
                steps.map_or("(unknown)".to_string(), |s| s.to_string())
            ),
        ));
    }
    if steps.is_some_and(|s| lens.iter().all(|&n| n == s)) {
        return Ok(None);
    }
    let n = lens.len();
    let tensor = Tensor::I64(
        ndarray::Array1::from(lens)
            .into_shape_with_order(ndarray::IxDyn(&[n]))
            .map_err(|e| l.malformed(i, format!("sequence_lens: {e}")))?,
    );
    Ok(Some((tensor, false)))
}

/// The constant `initial_h`, `initial_c` (as `(dirs, N, H)`) and peepholes `P` of node `i`:
/// `(role, name suffix, tensor, trainable)`. All-zero initial states are left out (the engine
/// starts from zero); a computed one is refused.
fn extra_params(
    l: &Lifter<'_>,
    i: usize,
    spec: &Spec,
    layout: i64,
    batch: Option<i64>,
) -> R<Vec<(ParamRole, &'static str, Tensor, bool)>> {
    let g = l.g;
    let (dirs, h) = (spec.dirs, spec.hidden);
    let mut out = Vec::new();
    for (k, role, what) in [
        (5, ParamRole::InitialHidden, "initial_h"),
        (6, ParamRole::InitialCell, "initial_c"),
    ] {
        let Some(v) = g.input(i, k) else { continue };
        if k == 6 && spec.cell != RnnCell::Lstm {
            continue;
        }
        let t = match g.val(v) {
            Some(Val::Zeros { .. }) => continue,
            Some(Val::Const(t)) => t,
            _ => {
                return Err(l.unsupported(
                    i,
                    format!(
                        "a non-zero {what} computed at run time (`{v}`; only constant initial states lift)"
                    ),
                ));
            }
        };
        let want: Vec<i64> = if layout == 1 {
            vec![batch.unwrap_or(-1), dirs as i64, h as i64]
        } else {
            vec![dirs as i64, batch.unwrap_or(-1), h as i64]
        };
        let fits = t.shape().len() == 3
            && t.shape()
                .iter()
                .zip(&want)
                .all(|(&s, &w)| w < 0 || s as i64 == w);
        if !fits {
            return Err(l.malformed(i, format!("{what} {:?} does not fit {want:?}", t.shape())));
        }
        if t.to_f64().iter().all(|&x| x == 0.0) {
            continue;
        }
        let t = if layout == 1 {
            t.permuted(&[1, 0, 2])
        } else {
            t.clone()
        };
        out.push((role, what, t, g.is_initializer(v)));
    }
    if let Some(v) = g.input(i, 7) {
        let Some(t) = g.konst(v) else {
            return Err(l.unsupported(
                i,
                format!("input P (`{v}`) is computed at run time (only a constant lifts)"),
            ));
        };
        if t.shape() != [dirs, 3 * h] {
            return Err(l.malformed(
                i,
                format!("P {:?} does not fit [{dirs}, {}]", t.shape(), 3 * h),
            ));
        }
        out.push((
            ParamRole::Peephole,
            "peephole",
            t.clone(),
            g.is_initializer(v),
        ));
    }
    Ok(out)
}

/// The value torch reads the output sequence from, claiming the nodes that reshape the raw
/// `Y` into it: `Squeeze(Y, [1])` for one direction, `Transpose(0, 2, 1, 3) →
/// Reshape(0, 0, -1)` for two. `None` when `Y` is read any other way.
fn torch_sequence(
    l: &mut Lifter<'_>,
    i: usize,
    y: &str,
    dirs: usize,
    layout: i64,
) -> R<Option<String>> {
    let g = l.g;
    let _ = i;
    let Some(c) = g.sole_consumer(y) else {
        return Ok(None);
    };
    let dir_axis = if layout == 1 { 2 } else { 1 };
    if dirs == 1 {
        let axes = match (g.op(c), l.attrs(c).ints("axes")?) {
            ("Squeeze", Some(a)) => Some(a),
            ("Squeeze", None) => g.input(c, 1).and_then(|v| g.konst(v)).and_then(int_vec),
            _ => None,
        };
        if axes.as_deref() != Some(&[dir_axis]) && axes.as_deref() != Some(&[dir_axis - 4]) {
            return Ok(None);
        }
        l.claimed.insert(c);
        return Ok(g.output(c, 0).map(str::to_string));
    }
    // Two directions: (T, 2, B, H) → Transpose(0, 2, 1, 3) → (T, B, 2, H) → Reshape → (T, B, 2H).
    let mut cur = c;
    if layout == 0 {
        if g.op(c) != "Transpose" || l.attrs(c).ints("perm")?.as_deref() != Some(&[0, 2, 1, 3]) {
            return Ok(None);
        }
        let t_out = g.output(c, 0).unwrap_or_default();
        let Some(next) = g.sole_consumer(t_out) else {
            return Ok(None);
        };
        cur = next;
    }
    if g.op(cur) != "Reshape" {
        return Ok(None);
    }
    let out = g.output(cur, 0).unwrap_or_default().to_string();
    let ok = match (g.shape(g.input(cur, 0).unwrap_or_default()), g.shape(&out)) {
        (Some(a), Some(b)) => a.len() == 4 && b.len() == 3 && a[0] == b[0] && a[1] == b[1],
        _ => false,
    };
    if !ok {
        return Ok(None);
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
