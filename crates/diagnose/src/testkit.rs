//! Test helpers: small models built in code (Keras and torch sides of a Dense/Conv/RNN
//! network with their native layouts and roles), deterministic random values, and a runner
//! that returns the ids found.

use model_import::Bundle;
use model_ir::{
    Activation, DType, DataLayout, Framework, GateOrder, GruReset, LossSpec, Model, Node, Op,
    OptimizerSpec, Origin, Padding, Param, ParamLayout, ParamRole, RnnBias, RnnCell, RnnDirection,
    Tensor, TrainingConfig, ValueInfo,
};
use report::{Diagnosis, Severity};

/// Deterministic uniform values in (−b, b).
pub(crate) fn uniform(n: usize, b: f32, seed: u64) -> Vec<f32> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed.wrapping_mul(0xD1B5_4A32_D192_ED03);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32 * b
        })
        .collect()
}

pub(crate) fn tensor(shape: &[usize], v: Vec<f32>) -> Tensor {
    Tensor::from_f32(shape, v).expect("shape matches values")
}

pub(crate) fn param(name: &str, role: ParamRole, layout: ParamLayout, t: Tensor) -> Param {
    Param {
        name: name.into(),
        role,
        layout,
        tensor: t,
        trainable: true,
    }
}

pub(crate) fn node(fw: Framework, name: &str, op: Op, input: &str, params: Vec<Param>) -> Node {
    Node {
        name: name.into(),
        op,
        inputs: vec![input.into()],
        outputs: vec![name.into()],
        params,
        origin: Origin {
            framework: fw,
            name: name.into(),
            class: String::new(),
        },
    }
}

pub(crate) fn dense_op(units: usize, activation: Activation) -> Op {
    Op::Dense {
        units,
        use_bias: true,
        activation,
    }
}

/// Keras Dense: kernel (in, out), bias.
pub(crate) fn keras_dense(
    name: &str,
    input: &str,
    kernel: Tensor,
    bias: Vec<f32>,
    act: Activation,
) -> Node {
    let units = kernel.shape()[1];
    node(
        Framework::Keras,
        name,
        dense_op(units, act),
        input,
        vec![
            param(
                &format!("{name}/kernel"),
                ParamRole::Kernel,
                ParamLayout::DenseInOut,
                kernel,
            ),
            param(
                &format!("{name}/bias"),
                ParamRole::Bias,
                ParamLayout::Vector,
                tensor(&[units], bias),
            ),
        ],
    )
}

/// torch Linear: weight (out, in), bias.
pub(crate) fn torch_dense(name: &str, input: &str, weight: Tensor, bias: Vec<f32>) -> Node {
    let units = weight.shape()[0];
    node(
        Framework::Torch,
        name,
        dense_op(units, Activation::Linear),
        input,
        vec![
            param(
                &format!("{name}.weight"),
                ParamRole::Kernel,
                ParamLayout::DenseOutIn,
                weight,
            ),
            param(
                &format!("{name}.bias"),
                ParamRole::Bias,
                ParamLayout::Vector,
                tensor(&[units], bias),
            ),
        ],
    )
}

pub(crate) fn act(fw: Framework, name: &str, input: &str, a: Activation) -> Node {
    node(fw, name, Op::Activation { function: a }, input, vec![])
}

pub(crate) fn conv_op(
    filters: usize,
    k: usize,
    stride: usize,
    padding: Padding,
    layout: DataLayout,
) -> Op {
    Op::Conv {
        rank: 2,
        filters,
        kernel_size: vec![k, k],
        strides: vec![stride, stride],
        dilation: vec![1, 1],
        groups: 1,
        padding,
        layout,
        use_bias: true,
        activation: Activation::Linear,
    }
}

pub(crate) fn rnn_op(cell: RnnCell, units: usize, fw: Framework) -> Op {
    let (gate_order, bias) = match (cell, fw) {
        (RnnCell::Gru, Framework::Keras) => (GateOrder::Zrh, RnnBias::KerasInputRecurrentRows),
        (RnnCell::Gru, Framework::Torch) => (GateOrder::Rzn, RnnBias::InputAndRecurrent),
        (RnnCell::Lstm, Framework::Keras) => (GateOrder::Ifco, RnnBias::Single),
        (RnnCell::Lstm, Framework::Torch) => (GateOrder::Ifco, RnnBias::InputAndRecurrent),
        (RnnCell::SimpleRnn, _) => (GateOrder::Single, RnnBias::Single),
    };
    Op::Rnn {
        cell,
        units,
        activation: Activation::Tanh,
        recurrent_activation: Some(Activation::Sigmoid),
        gate_order,
        bias,
        gru_reset: (cell == RnnCell::Gru).then_some(GruReset::AfterMatmul),
        direction: RnnDirection::Forward,
        return_sequences: false,
        return_state: false,
        go_backwards: false,
        batch_first: true,
        unit_forget_bias: true,
        dropout: 0.0,
        recurrent_dropout: 0.0,
    }
}

/// A model with one input of `shape` (batch dimension included as `None`), the nodes, and
/// the output of the last node.
pub(crate) fn model(fw: Framework, input_shape: &[usize], nodes: Vec<Node>) -> Model {
    let mut m = Model::new(fw, "m");
    let mut shape = vec![None];
    shape.extend(input_shape.iter().map(|d| Some(*d)));
    m.inputs.push(ValueInfo {
        name: "x".into(),
        shape,
        dtype: DType::F32,
    });
    if let Some(last) = nodes.last() {
        m.outputs = last.outputs.clone();
    }
    m.nodes = nodes;
    m.training = Some(TrainingConfig::defaults(fw));
    m
}

/// Sets the optimizer (`class_name`, config JSON) and loss of a model.
pub(crate) fn train(
    m: &mut Model,
    opt: &str,
    cfg: serde_json::Value,
    loss: &str,
    loss_cfg: serde_json::Value,
) {
    let t = m
        .training
        .get_or_insert_with(|| TrainingConfig::defaults(m.framework));
    t.optimizer = Some(OptimizerSpec {
        class_name: opt.into(),
        config: cfg,
    });
    t.loss = Some(LossSpec::new(m.framework, loss.into(), loss_cfg));
}

pub(crate) fn bundle(m: Model) -> Bundle {
    Bundle {
        dir: std::path::PathBuf::from(m.framework.name()),
        model: m,
        inputs: None,
        state_dict: None,
    }
}

pub(crate) fn run(keras: Model, torch: Model) -> Diagnosis {
    crate::diagnose(&bundle(keras), &bundle(torch), &crate::Options::default())
        .expect("diagnosis runs")
}

/// Ids found, with their severity.
pub(crate) fn ids(keras: Model, torch: Model) -> Vec<(String, Severity)> {
    run(keras, torch)
        .findings
        .into_iter()
        .map(|f| (f.id, f.severity))
        .collect()
}

/// The Keras and torch sides of `Dense(in→hidden, relu) → Dense(hidden→out, softmax)` with
/// copied weights, Adam on both sides with Keras's epsilon mapped exactly (ε = 0), and
/// matching losses: a faithful port.
pub(crate) fn faithful_mlp() -> (Model, Model) {
    let (i, h, o) = (6, 5, 3);
    let k1 = tensor(&[i, h], uniform(i * h, 0.6, 1));
    let k2 = tensor(&[h, o], uniform(h * o, 0.6, 2));
    let t1 = k1.permuted(&[1, 0]);
    let t2 = k2.permuted(&[1, 0]);
    let mut keras = model(
        Framework::Keras,
        &[i],
        vec![
            keras_dense("d1", "x", k1, vec![0.0; h], Activation::RELU),
            keras_dense(
                "d2",
                "d1",
                k2,
                vec![0.0; o],
                Activation::Softmax { axis: -1 },
            ),
        ],
    );
    let mut torch = model(
        Framework::Torch,
        &[i],
        vec![
            torch_dense("fc1", "x", t1, vec![0.0; h]),
            act(Framework::Torch, "relu", "fc1", Activation::RELU),
            torch_dense("fc2", "relu", t2, vec![0.0; o]),
        ],
    );
    train(
        &mut keras,
        "Adam",
        serde_json::json!({"learning_rate": 0.001, "epsilon": 0.0}),
        "categorical_crossentropy",
        serde_json::json!({}),
    );
    train(
        &mut torch,
        "Adam",
        serde_json::json!({"lr": 0.001, "eps": 0.0}),
        "CrossEntropyLoss",
        serde_json::json!({"reduction": "mean", "label_smoothing": 0.0}),
    );
    (keras, torch)
}

/// A GRU (or LSTM) layer and its port: gates reordered correctly or not (for the LSTM,
/// "not" means the Keras bias copied into both torch biases).
pub(crate) fn rnn_pair(correct: bool, lstm: bool) -> (model_ir::Model, model_ir::Model) {
    let (f, h) = (3, 2);
    let cell = if lstm { RnnCell::Lstm } else { RnnCell::Gru };
    let g = if lstm { 4 } else { 3 };
    let (korder, torder) = if lstm {
        (model_ir::GateOrder::Ifco, model_ir::GateOrder::Ifco)
    } else {
        (model_ir::GateOrder::Zrh, model_ir::GateOrder::Rzn)
    };
    let kk = tensor(&[f, g * h], uniform(f * g * h, 0.5, 21));
    let kr = tensor(&[h, g * h], uniform(h * g * h, 0.5, 22));
    let kb = if lstm {
        tensor(&[g * h], uniform(g * h, 0.5, 23))
    } else {
        tensor(&[2, g * h], uniform(2 * g * h, 0.5, 23))
    };
    let swap = |t: &model_ir::Tensor, axis: usize| -> model_ir::Tensor {
        if lstm || !correct {
            return t.clone();
        }
        let s = t.shape()[axis] / 3;
        let idx: Vec<usize> = (s..2 * s).chain(0..s).chain(2 * s..3 * s).collect();
        t.select(axis, &idx)
    };
    let keras_bias = if lstm {
        param(
            "rnn/bias",
            ParamRole::InputBias,
            ParamLayout::RnnGateVector { gate_order: korder },
            kb.clone(),
        )
    } else {
        param(
            "rnn/bias",
            ParamRole::Bias,
            ParamLayout::GruBiasRows { gate_order: korder },
            kb.clone(),
        )
    };
    let k = model(
        Framework::Keras,
        &[5, f],
        vec![node(
            Framework::Keras,
            "rnn",
            rnn_op(cell, h, Framework::Keras),
            "x",
            vec![
                param(
                    "rnn/kernel",
                    ParamRole::InputKernel,
                    ParamLayout::RnnInGates { gate_order: korder },
                    kk.clone(),
                ),
                param(
                    "rnn/recurrent_kernel",
                    ParamRole::RecurrentKernel,
                    ParamLayout::RnnInGates { gate_order: korder },
                    kr.clone(),
                ),
                keras_bias,
            ],
        )],
    );
    let (bih, bhh) = if lstm {
        let zeros = tensor(&[g * h], vec![0.0; g * h]);
        if correct {
            (kb.clone(), zeros)
        } else {
            (kb.clone(), kb.clone())
        }
    } else {
        let rows = swap(&kb, 1);
        (
            rows.select(0, &[0]).reshaped(&[g * h]).unwrap(),
            rows.select(0, &[1]).reshaped(&[g * h]).unwrap(),
        )
    };
    let t = model(
        Framework::Torch,
        &[5, f],
        vec![node(
            Framework::Torch,
            "rnn",
            rnn_op(cell, h, Framework::Torch),
            "x",
            vec![
                param(
                    "rnn.weight_ih_l0",
                    ParamRole::InputKernel,
                    ParamLayout::RnnGatesIn { gate_order: torder },
                    swap(&kk, 1).permuted(&[1, 0]),
                ),
                param(
                    "rnn.weight_hh_l0",
                    ParamRole::RecurrentKernel,
                    ParamLayout::RnnGatesIn { gate_order: torder },
                    swap(&kr, 1).permuted(&[1, 0]),
                ),
                param(
                    "rnn.bias_ih_l0",
                    ParamRole::InputBias,
                    ParamLayout::RnnGateVector { gate_order: torder },
                    bih,
                ),
                param(
                    "rnn.bias_hh_l0",
                    ParamRole::RecurrentBias,
                    ParamLayout::RnnGateVector { gate_order: torder },
                    bhh,
                ),
            ],
        )],
    );
    (k, t)
}

#[test]
fn the_faithful_mlp_has_no_findings() {
    let (k, t) = faithful_mlp();
    let d = run(k, t);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert_eq!(d.alignment.pairs.len(), 2);
    assert!(
        d.alignment
            .pairs
            .iter()
            .all(|p| p.weights == "copied (exact mapping)")
    );
    assert!(d.verdict.starts_with("No difference"));
}
