//! Gradient checks: recurrent.

use crate::common::{Builder, Check, assert_grads};
use model_ir::{
    Activation, BidiMerge, Framework, GateOrder, GruReset, HardSigmoid, Op, ParamLayout, ParamRole,
    RnnBias, RnnCell, RnnDirection,
};

/// What an RNN gradient check varies.
#[derive(Clone)]
struct RnnCase {
    cell: RnnCell,
    order: GateOrder,
    bias: RnnBias,
    reset: Option<GruReset>,
    direction: RnnDirection,
    torch: bool,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
    batch_first: bool,
    recurrent: Activation,
    outputs: usize,
    /// Store the reverse direction under the forward roles, after the forward direction, and
    /// the Keras GRU rows under `Bias` (what the importers write).
    shared_roles: bool,
    /// Candidate activation (tanh unless an ONNX `activations` list says otherwise).
    activation: Activation,
    /// ONNX LSTM peepholes `P` `(dirs, 3H)`.
    peephole: bool,
    /// ONNX constant `initial_h` (and `initial_c` for an LSTM) `(dirs, N, H)`.
    initial: bool,
    /// ONNX constant `sequence_lens` (one per batch entry).
    lens: Option<Vec<i64>>,
}

fn keras_lstm() -> RnnCase {
    RnnCase {
        cell: RnnCell::Lstm,
        order: GateOrder::Ifco,
        bias: RnnBias::Single,
        reset: None,
        direction: RnnDirection::Forward,
        torch: false,
        return_sequences: true,
        return_state: false,
        go_backwards: false,
        batch_first: true,
        recurrent: Activation::Sigmoid,
        outputs: 1,
        shared_roles: false,
        activation: Activation::Tanh,
        peephole: false,
        initial: false,
        lens: None,
    }
}

/// One direction's parameters in the case's layout.
fn rnn_params(
    b: &mut Builder,
    c: &RnnCase,
    reverse: bool,
    fin: usize,
    h: usize,
) -> Vec<model_ir::Param> {
    let gh = c.cell.gates() * h;
    let roles = if reverse && !c.shared_roles {
        [
            ParamRole::ReverseInputKernel,
            ParamRole::ReverseRecurrentKernel,
            ParamRole::ReverseInputBias,
            ParamRole::ReverseRecurrentBias,
        ]
    } else {
        [
            ParamRole::InputKernel,
            ParamRole::RecurrentKernel,
            ParamRole::InputBias,
            ParamRole::RecurrentBias,
        ]
    };
    let tag = if reverse { "_rev" } else { "" };
    let g = c.order;
    let mut v = if c.torch {
        vec![
            b.param(
                &format!("w_ih{tag}"),
                roles[0],
                ParamLayout::RnnGatesIn { gate_order: g },
                &[gh, fin],
            ),
            b.param(
                &format!("w_hh{tag}"),
                roles[1],
                ParamLayout::RnnGatesIn { gate_order: g },
                &[gh, h],
            ),
        ]
    } else {
        vec![
            b.param(
                &format!("kernel{tag}"),
                roles[0],
                ParamLayout::RnnInGates { gate_order: g },
                &[fin, gh],
            ),
            b.param(
                &format!("recurrent{tag}"),
                roles[1],
                ParamLayout::RnnInGates { gate_order: g },
                &[h, gh],
            ),
        ]
    };
    match c.bias {
        RnnBias::None => {}
        RnnBias::Single => v.push(b.param(
            &format!("bias{tag}"),
            roles[2],
            ParamLayout::RnnGateVector { gate_order: g },
            &[gh],
        )),
        RnnBias::KerasInputRecurrentRows => v.push(b.param(
            &format!("bias{tag}"),
            if c.shared_roles {
                ParamRole::Bias
            } else {
                roles[2]
            },
            ParamLayout::GruBiasRows { gate_order: g },
            &[2, gh],
        )),
        RnnBias::InputAndRecurrent => {
            v.push(b.param(
                &format!("b_ih{tag}"),
                roles[2],
                ParamLayout::RnnGateVector { gate_order: g },
                &[gh],
            ));
            v.push(b.param(
                &format!("b_hh{tag}"),
                roles[3],
                ParamLayout::RnnGateVector { gate_order: g },
                &[gh],
            ));
        }
    }
    v
}

#[track_caller]
fn check_rnn(c: RnnCase) {
    let (n, t, fin, h) = (2, 3, 3, 2);
    let mut b = Builder::seeded(
        if c.torch {
            Framework::Torch
        } else {
            Framework::Keras
        },
        11,
    );
    let shape = if c.batch_first { [t, fin] } else { [n, fin] };
    let x = b.input("x", &shape);
    let mut ps = rnn_params(&mut b, &c, false, fin, h);
    let ndir = if matches!(c.direction, RnnDirection::Bidirectional(_)) {
        ps.extend(rnn_params(&mut b, &c, true, fin, h));
        2
    } else {
        1
    };
    if c.peephole {
        ps.push(b.param("p", ParamRole::Peephole, ParamLayout::AsIs, &[ndir, 3 * h]));
    }
    if c.initial {
        ps.push(b.param(
            "h0",
            ParamRole::InitialHidden,
            ParamLayout::AsIs,
            &[ndir, n, h],
        ));
        if c.cell == RnnCell::Lstm {
            ps.push(b.param(
                "c0",
                ParamRole::InitialCell,
                ParamLayout::AsIs,
                &[ndir, n, h],
            ));
        }
    }
    if let Some(lens) = &c.lens {
        ps.push(model_ir::Param {
            name: "lens".into(),
            role: ParamRole::SequenceLengths,
            layout: ParamLayout::AsIs,
            tensor: model_ir::Tensor::I64(ndarray::Array1::from(lens.clone()).into_dyn()),
            trainable: false,
        });
    }
    let op = Op::Rnn {
        cell: c.cell,
        units: h,
        activation: c.activation.clone(),
        recurrent_activation: (c.cell != RnnCell::SimpleRnn).then(|| c.recurrent.clone()),
        gate_order: c.order,
        bias: c.bias,
        gru_reset: c.reset,
        direction: c.direction,
        return_sequences: c.return_sequences,
        return_state: c.return_state,
        go_backwards: c.go_backwards,
        batch_first: c.batch_first,
        unit_forget_bias: false,
        dropout: 0.0,
        recurrent_dropout: 0.0,
    };
    let outs = b.add_n("rnn", op, &[&x], c.outputs, ps);
    for o in &outs {
        b.output(o);
    }
    let xs = if c.batch_first {
        [n, t, fin]
    } else {
        [t, n, fin]
    };
    let xin = b.rng.array(&xs, -1.0, 1.0);
    let model = b.finish();
    assert_grads(&model, &[xin], &Check::default());
}

#[test]
fn rnn_simple_and_lstm_keras() {
    check_rnn(RnnCase {
        cell: RnnCell::SimpleRnn,
        order: GateOrder::Single,
        ..keras_lstm()
    });
    check_rnn(keras_lstm());
    check_rnn(RnnCase {
        return_sequences: false,
        return_state: true,
        outputs: 3,
        recurrent: Activation::HardSigmoid(HardSigmoid::LEGACY),
        ..keras_lstm()
    });
    check_rnn(RnnCase {
        go_backwards: true,
        ..keras_lstm()
    });
}

#[test]
fn rnn_lstm_torch_layout_and_onnx_gate_order() {
    let torch = RnnCase {
        torch: true,
        bias: RnnBias::InputAndRecurrent,
        batch_first: false,
        return_state: true,
        outputs: 3,
        ..keras_lstm()
    };
    check_rnn(torch.clone());
    check_rnn(RnnCase {
        order: GateOrder::Iofc,
        direction: RnnDirection::Reverse,
        ..torch
    });
}

#[test]
fn rnn_gru_reset_after_and_before() {
    let keras_gru = RnnCase {
        cell: RnnCell::Gru,
        order: GateOrder::Zrh,
        bias: RnnBias::KerasInputRecurrentRows,
        reset: Some(GruReset::AfterMatmul),
        ..keras_lstm()
    };
    check_rnn(keras_gru.clone());
    check_rnn(RnnCase {
        torch: true,
        order: GateOrder::Rzn,
        bias: RnnBias::InputAndRecurrent,
        ..keras_gru.clone()
    });
    check_rnn(RnnCase {
        bias: RnnBias::Single,
        reset: Some(GruReset::BeforeMatmul),
        ..keras_gru.clone()
    });
    check_rnn(RnnCase {
        bias: RnnBias::InputAndRecurrent,
        reset: Some(GruReset::BeforeMatmul),
        torch: true,
        ..keras_gru
    });
}

#[test]
fn rnn_bidirectional_with_the_importers_role_convention() {
    check_rnn(RnnCase {
        cell: RnnCell::Gru,
        order: GateOrder::Zrh,
        bias: RnnBias::KerasInputRecurrentRows,
        reset: Some(GruReset::AfterMatmul),
        direction: RnnDirection::Bidirectional(BidiMerge::Concat),
        shared_roles: true,
        ..keras_lstm()
    });
    check_rnn(RnnCase {
        torch: true,
        bias: RnnBias::InputAndRecurrent,
        batch_first: false,
        direction: RnnDirection::Bidirectional(BidiMerge::Concat),
        return_state: true,
        outputs: 3,
        shared_roles: true,
        ..keras_lstm()
    });
}

#[test]
fn rnn_bidirectional_merges() {
    for merge in [
        BidiMerge::Concat,
        BidiMerge::Sum,
        BidiMerge::Mul,
        BidiMerge::Ave,
    ] {
        check_rnn(RnnCase {
            direction: RnnDirection::Bidirectional(merge),
            ..keras_lstm()
        });
    }
    check_rnn(RnnCase {
        direction: RnnDirection::Bidirectional(BidiMerge::None),
        return_sequences: false,
        return_state: true,
        outputs: 6,
        ..keras_lstm()
    });
    check_rnn(RnnCase {
        cell: RnnCell::Gru,
        order: GateOrder::Rzn,
        bias: RnnBias::InputAndRecurrent,
        reset: Some(GruReset::AfterMatmul),
        torch: true,
        batch_first: false,
        direction: RnnDirection::Bidirectional(BidiMerge::Concat),
        return_state: true,
        outputs: 2,
        ..keras_lstm()
    });
}

/// What the ONNX importer builds: torch-layout kernels in ONNX gate order, states stacked
/// over directions.
fn onnx_lstm() -> RnnCase {
    RnnCase {
        torch: true,
        bias: RnnBias::InputAndRecurrent,
        batch_first: false,
        return_state: true,
        outputs: 3,
        ..keras_lstm()
    }
}

#[test]
fn rnn_onnx_lstm_peepholes_and_initial_states() {
    let peep = RnnCase {
        order: GateOrder::Iofc,
        peephole: true,
        initial: true,
        ..onnx_lstm()
    };
    check_rnn(peep.clone());
    check_rnn(RnnCase {
        direction: RnnDirection::Reverse,
        batch_first: true,
        ..peep.clone()
    });
    check_rnn(RnnCase {
        direction: RnnDirection::Bidirectional(BidiMerge::Concat),
        shared_roles: true,
        ..peep.clone()
    });
    check_rnn(RnnCase {
        initial: false,
        ..peep
    });
}

#[test]
fn rnn_onnx_initial_states_and_activations() {
    for reset in [GruReset::AfterMatmul, GruReset::BeforeMatmul] {
        check_rnn(RnnCase {
            cell: RnnCell::Gru,
            order: GateOrder::Zrh,
            reset: Some(reset),
            outputs: 2,
            initial: true,
            ..onnx_lstm()
        });
    }
    check_rnn(RnnCase {
        cell: RnnCell::SimpleRnn,
        order: GateOrder::Single,
        outputs: 2,
        initial: true,
        activation: Activation::Softsign,
        direction: RnnDirection::Bidirectional(BidiMerge::Concat),
        shared_roles: true,
        ..onnx_lstm()
    });
    // ONNX `activations = [HardSigmoid(0.3, 0.4), Elu(0.5), Elu(0.5)]`, with peepholes.
    check_rnn(RnnCase {
        order: GateOrder::Iofc,
        recurrent: Activation::HardSigmoid(HardSigmoid {
            slope: 0.3,
            offset: 0.4,
        }),
        activation: Activation::Elu { alpha: 0.5 },
        peephole: true,
        initial: true,
        ..onnx_lstm()
    });
}

#[test]
fn rnn_onnx_sequence_lengths() {
    // Batch of 2, 3 steps: one full sequence, one of a single step.
    let lens = Some(vec![3, 1]);
    for direction in [
        RnnDirection::Forward,
        RnnDirection::Reverse,
        RnnDirection::Bidirectional(BidiMerge::Concat),
    ] {
        check_rnn(RnnCase {
            order: GateOrder::Iofc,
            peephole: true,
            initial: true,
            lens: lens.clone(),
            direction,
            shared_roles: true,
            ..onnx_lstm()
        });
    }
    for reset in [GruReset::AfterMatmul, GruReset::BeforeMatmul] {
        check_rnn(RnnCase {
            cell: RnnCell::Gru,
            order: GateOrder::Zrh,
            reset: Some(reset),
            outputs: 2,
            initial: true,
            lens: Some(vec![2, 3]),
            direction: RnnDirection::Reverse,
            ..onnx_lstm()
        });
    }
    check_rnn(RnnCase {
        cell: RnnCell::SimpleRnn,
        order: GateOrder::Single,
        outputs: 2,
        lens: Some(vec![1, 2]),
        batch_first: true,
        ..onnx_lstm()
    });
}
