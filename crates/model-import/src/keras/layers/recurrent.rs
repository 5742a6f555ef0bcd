//! Recurrent layers: `SimpleRNN`, `LSTM`, `GRU` and their `Bidirectional` wrapper.

use model_ir::{
    Activation, BidiMerge, GateOrder, GruReset, Op, ParamLayout, ParamRole, RnnBias, RnnCell,
    RnnDirection,
};
use serde_json::Value;

use super::{Converted, VarGroup, VarSpec, last_dim, training_only_notes, var};
use crate::error::ErrorKind;
use crate::keras::activations;
use crate::keras::config::{Cfg, show};
use crate::keras::regularizers;

/// `SimpleRNN`, `LSTM`, `GRU`: the cell's variables live in the `cell` group.
pub(super) fn recurrent(
    c: &Cfg<'_>,
    input: Option<&[Option<usize>]>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let rnn = rnn(c, last_dim(input), notes)?;
    let outputs = 1 + if rnn.return_state { rnn.states } else { 0 };
    Ok(Converted {
        op: rnn.op(RnnDirection::Forward),
        groups: vec![VarGroup {
            sub: "cell".into(),
            prefix: String::new(),
            vars: rnn.vars,
        }],
        outputs,
        arity: (1, 1),
        transpose_first: None,
    })
}

/// A recurrent layer's attributes and variables.
struct Rnn {
    cell: RnnCell,
    units: usize,
    activation: Activation,
    recurrent_activation: Option<Activation>,
    gate_order: GateOrder,
    bias: RnnBias,
    gru_reset: Option<GruReset>,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
    unit_forget_bias: bool,
    dropout: f64,
    recurrent_dropout: f64,
    /// Number of state tensors (LSTM: h and c).
    states: usize,
    vars: Vec<VarSpec>,
}

impl Rnn {
    fn op(&self, direction: RnnDirection) -> Op {
        Op::Rnn {
            cell: self.cell,
            units: self.units,
            activation: self.activation.clone(),
            recurrent_activation: self.recurrent_activation.clone(),
            gate_order: self.gate_order,
            bias: self.bias,
            gru_reset: self.gru_reset,
            direction,
            return_sequences: self.return_sequences,
            return_state: self.return_state,
            go_backwards: self.go_backwards,
            batch_first: true,
            unit_forget_bias: self.unit_forget_bias,
            dropout: self.dropout,
            recurrent_dropout: self.recurrent_dropout,
        }
    }

    /// The attributes that must agree between the two directions of a Bidirectional layer.
    fn signature(&self) -> String {
        format!(
            "{:?} {} {:?} {:?} {:?} {:?} {} {} {} {} {}",
            self.cell,
            self.units,
            self.activation,
            self.recurrent_activation,
            self.bias,
            self.gru_reset,
            self.return_sequences,
            self.return_state,
            self.unit_forget_bias,
            self.dropout,
            self.recurrent_dropout
        )
    }
}

fn rnn(c: &Cfg<'_>, features: Option<usize>, notes: &mut Vec<String>) -> Result<Rnn, ErrorKind> {
    let cell = match c.class {
        "SimpleRNN" => RnnCell::SimpleRnn,
        "LSTM" => RnnCell::Lstm,
        "GRU" => RnnCell::Gru,
        _ => {
            return Err(ErrorKind::UnsupportedLayer {
                name: c.layer.to_string(),
                class: c.class.to_string(),
            });
        }
    };
    if c.get("stateful").and_then(Value::as_bool) == Some(true) {
        notes.push(format!(
            "layer `{}` ({}): stateful=True carries the state across batches; the IR starts every batch from zeros",
            c.layer, c.class
        ));
    }
    if c.get("time_major").and_then(Value::as_bool) == Some(true) {
        return Err(c.unsupported("time_major=True"));
    }
    let units = c.usize("units")?;
    let activation = match c.get("activation") {
        Some(v) => activations::from_value(Some(v), c.layer)?,
        None => {
            notes.push(format!(
                "layer `{}` ({}): `activation` is absent from config.json; using the Keras default \"tanh\"",
                c.layer, c.class
            ));
            Activation::Tanh
        }
    };
    let recurrent_activation = match cell {
        RnnCell::SimpleRnn => None,
        _ => Some(match c.get("recurrent_activation") {
            Some(v) => activations::from_value(Some(v), c.layer)?,
            None => {
                notes.push(format!(
                    "layer `{}` ({}): `recurrent_activation` is absent from config.json; using the Keras default \"sigmoid\"",
                    c.layer, c.class
                ));
                Activation::Sigmoid
            }
        }),
    };
    let use_bias = c.bool_or("use_bias", true, notes)?;
    let reset_after = match cell {
        RnnCell::Gru => Some(c.bool_or("reset_after", true, notes)?),
        _ => None,
    };
    let (gate_order, gates) = match cell {
        RnnCell::SimpleRnn => (GateOrder::Single, 1),
        RnnCell::Lstm => (GateOrder::Ifco, 4),
        RnnCell::Gru => (GateOrder::Zrh, 3),
    };
    let bias = match (use_bias, reset_after) {
        (false, _) => RnnBias::None,
        (true, Some(true)) => RnnBias::KerasInputRecurrentRows,
        (true, _) => RnnBias::Single,
    };
    let gh = units * gates;
    let mut vars = vec![
        var(
            "kernel",
            ParamRole::InputKernel,
            ParamLayout::RnnInGates { gate_order },
            vec![features, Some(gh)],
            true,
        ),
        var(
            "recurrent_kernel",
            ParamRole::RecurrentKernel,
            ParamLayout::RnnInGates { gate_order },
            vec![Some(units), Some(gh)],
            true,
        ),
    ];
    match bias {
        RnnBias::Single => vars.push(var(
            "bias",
            ParamRole::InputBias,
            ParamLayout::RnnGateVector { gate_order },
            vec![Some(gh)],
            true,
        )),
        RnnBias::KerasInputRecurrentRows => vars.push(var(
            "bias",
            ParamRole::Bias,
            ParamLayout::GruBiasRows { gate_order },
            vec![Some(2), Some(gh)],
            true,
        )),
        _ => {}
    }
    Ok(Rnn {
        cell,
        units,
        activation,
        recurrent_activation,
        gate_order,
        bias,
        gru_reset: reset_after.map(|r| {
            if r {
                GruReset::AfterMatmul
            } else {
                GruReset::BeforeMatmul
            }
        }),
        return_sequences: c.bool_or("return_sequences", false, notes)?,
        return_state: c.bool_or("return_state", false, notes)?,
        go_backwards: c.bool_or("go_backwards", false, notes)?,
        unit_forget_bias: cell == RnnCell::Lstm && c.bool_or("unit_forget_bias", true, notes)?,
        dropout: c.f64_or("dropout", 0.0, notes)?,
        recurrent_dropout: c.f64_or("recurrent_dropout", 0.0, notes)?,
        states: if cell == RnnCell::Lstm { 2 } else { 1 },
        vars,
    })
}

/// A wrapped layer's `{"class_name", "config"}` as a [`Cfg`].
fn inner<'a>(c: &Cfg<'a>, key: &'static str) -> Result<Option<Cfg<'a>>, ErrorKind> {
    let Some(v) = c.get(key).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let class = v
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| c.malformed(format!("`{key}` has no class_name")))?;
    let map = v
        .get("config")
        .and_then(Value::as_object)
        .ok_or_else(|| c.malformed(format!("`{key}` has no config object")))?;
    let name = map.get("name").and_then(Value::as_str).unwrap_or(key);
    Ok(Some(Cfg::new(map, name, class)))
}

pub(super) fn bidirectional(
    c: &Cfg<'_>,
    features: Option<usize>,
    notes: &mut Vec<String>,
) -> Result<Converted, ErrorKind> {
    let fwd_cfg = inner(c, "layer")?.ok_or_else(|| {
        ErrorKind::Missing(format!(
            "field `layer` in the config of layer `{}` (Bidirectional)",
            c.layer
        ))
    })?;
    super::gate::check(&fwd_cfg)?;
    training_only_notes(&fwd_cfg, notes);
    let fwd = rnn(&fwd_cfg, features, notes)?;
    let bwd_cfg = inner(c, "backward_layer")?;
    let (bwd_name, bwd) = match &bwd_cfg {
        Some(b) => {
            super::gate::check(b)?;
            training_only_notes(b, notes);
            (b.layer.to_string(), Some(rnn(b, features, notes)?))
        }
        // Keras names the generated backward copy `backward_<inner name>`.
        None => (
            format!("backward_{}", fwd_cfg.layer.trim_start_matches("forward_")),
            None,
        ),
    };
    if let Some(b) = &bwd
        && (b.signature() != fwd.signature() || b.go_backwards == fwd.go_backwards)
    {
        return Err(c.unsupported(
            "a backward_layer whose configuration differs from the forward layer's (other than go_backwards)",
        ));
    }
    let merge = match c.get("merge_mode") {
        None => {
            notes.push(format!(
                "layer `{}` (Bidirectional): `merge_mode` is absent from config.json; using the Keras default \"concat\"",
                c.layer
            ));
            BidiMerge::Concat
        }
        Some(Value::Null) => BidiMerge::None,
        Some(v) => match v.as_str() {
            Some("concat") => BidiMerge::Concat,
            Some("sum") => BidiMerge::Sum,
            Some("mul") => BidiMerge::Mul,
            Some("ave") => BidiMerge::Ave,
            _ => return Err(c.malformed(format!("merge_mode {}", show(v)))),
        },
    };
    let main = if merge == BidiMerge::None { 2 } else { 1 };
    let outputs = main + if fwd.return_state { 2 * fwd.states } else { 0 };
    let mut fwd_group = VarGroup {
        sub: "forward_layer/cell".into(),
        prefix: format!("{}/", fwd_cfg.layer),
        vars: fwd.vars.clone(),
    };
    let mut bwd_group = VarGroup {
        sub: "backward_layer/cell".into(),
        prefix: format!("{bwd_name}/"),
        vars: bwd
            .as_ref()
            .map_or_else(|| fwd.vars.clone(), |b| b.vars.clone()),
    };
    // Without a backward_layer config, Keras builds the backward copy from the forward
    // layer's config, regularizers included.
    match &bwd_cfg {
        Some(b) => {
            regularizers::attach(&fwd_cfg, std::slice::from_mut(&mut fwd_group), notes)?;
            regularizers::attach(b, std::slice::from_mut(&mut bwd_group), notes)?;
            crate::keras::initializers::attach(
                &fwd_cfg,
                std::slice::from_mut(&mut fwd_group),
                notes,
            )?;
            crate::keras::initializers::attach(b, std::slice::from_mut(&mut bwd_group), notes)?;
        }
        None => {
            let mut both = [fwd_group, bwd_group];
            regularizers::attach(&fwd_cfg, &mut both, notes)?;
            crate::keras::initializers::attach(&fwd_cfg, &mut both, notes)?;
            [fwd_group, bwd_group] = both;
        }
    }
    Ok(Converted {
        op: fwd.op(RnnDirection::Bidirectional(merge)),
        groups: vec![fwd_group, bwd_group],
        outputs,
        arity: (1, 1),
        transpose_first: None,
    })
}
