//! Gradient checks: activations.

use crate::{act, check_unary_op, no_params};
use model_ir::{Activation, HardSigmoid};

#[test]
fn activation_relu_variants() {
    check_unary_op(act(Activation::RELU), &[3, 5], no_params, -1.0, 1.0);
    let r = Activation::Relu {
        negative_slope: 0.1,
        max_value: Some(0.6),
        threshold: 0.2,
    };
    check_unary_op(act(r), &[4, 5], no_params, -1.0, 1.0);
    let r = Activation::Relu {
        negative_slope: 0.0,
        max_value: Some(0.5),
        threshold: 0.0,
    };
    check_unary_op(act(r), &[4, 5], no_params, -1.0, 1.0);
}

#[test]
fn activation_elementwise_family() {
    for f in [
        Activation::LeakyRelu { slope: 0.3 },
        Activation::Elu { alpha: 1.3 },
        Activation::Selu,
        Activation::Gelu { approximate: false },
        Activation::Gelu { approximate: true },
        Activation::Sigmoid,
        Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH),
        Activation::HardSigmoid(HardSigmoid::LEGACY),
        Activation::HardSwish,
        Activation::Tanh,
        Activation::Softplus {
            beta: 2.0,
            threshold: Some(20.0),
        },
        Activation::Softplus {
            beta: 1.0,
            threshold: None,
        },
        Activation::Softsign,
        Activation::Silu,
        Activation::Mish,
        Activation::Exponential,
        Activation::Relu6,
        Activation::LogSigmoid,
        Activation::TanhShrink,
        Activation::Linear,
    ] {
        check_unary_op(act(f), &[3, 4], no_params, -4.0, 4.0);
    }
}

#[test]
fn activation_softmax_and_log_softmax_on_any_axis() {
    check_unary_op(
        act(Activation::Softmax { axis: -1 }),
        &[3, 5],
        no_params,
        -2.0,
        2.0,
    );
    check_unary_op(
        act(Activation::Softmax { axis: 1 }),
        &[2, 3, 4],
        no_params,
        -2.0,
        2.0,
    );
    check_unary_op(
        act(Activation::LogSoftmax { axis: -1 }),
        &[3, 5],
        no_params,
        -2.0,
        2.0,
    );
    check_unary_op(
        act(Activation::LogSoftmax { axis: 0 }),
        &[3, 2],
        no_params,
        -2.0,
        2.0,
    );
}
