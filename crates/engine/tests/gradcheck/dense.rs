//! Gradient checks: dense.

use crate::check_unary_op;
use model_ir::{Activation, Op, ParamLayout, ParamRole};

pub(crate) fn dense(units: usize, use_bias: bool, activation: Activation) -> Op {
    Op::Dense {
        units,
        use_bias,
        activation,
    }
}

#[test]
fn dense_keras_and_torch_layouts() {
    check_unary_op(
        dense(3, true, Activation::Tanh),
        &[4, 5],
        |b| {
            vec![
                b.param("k", ParamRole::Kernel, ParamLayout::DenseInOut, &[5, 3]),
                b.param("b", ParamRole::Bias, ParamLayout::Vector, &[3]),
            ]
        },
        -1.0,
        1.0,
    );
    check_unary_op(
        dense(3, true, Activation::Softmax { axis: -1 }),
        &[2, 3, 5],
        |b| {
            vec![
                b.param("w", ParamRole::Kernel, ParamLayout::DenseOutIn, &[3, 5]),
                b.param("b", ParamRole::Bias, ParamLayout::Vector, &[3]),
            ]
        },
        -1.0,
        1.0,
    );
    check_unary_op(
        dense(2, false, Activation::Linear),
        &[3, 4],
        |b| vec![b.param("k", ParamRole::Kernel, ParamLayout::DenseInOut, &[4, 2])],
        -1.0,
        1.0,
    );
}
