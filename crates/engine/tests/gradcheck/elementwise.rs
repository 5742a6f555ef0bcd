//! Gradient checks: element-wise and merges.

use crate::common::{Builder, Check, assert_grads, param};
use crate::dense::dense;
use crate::{act, check_unary_op, no_params};
use model_ir::{
    Activation, BinaryOp, Framework, MergeOp, Op, ParamLayout, ParamRole, ReduceKind, UnaryOp,
};

#[test]
fn merges_with_broadcasting() {
    for op in [
        MergeOp::Add,
        MergeOp::Subtract,
        MergeOp::Multiply,
        MergeOp::Divide,
        MergeOp::Average,
        MergeOp::Maximum,
        MergeOp::Minimum,
        MergeOp::Concatenate(-1),
    ] {
        let mut b = Builder::new(Framework::Keras);
        let x = b.input("x", &[3]);
        let z = b.input("z", &[3]);
        let y = b.add("m", Op::Merge { op }, &[&x, &z], vec![]);
        b.output(&y);
        let xa = b.rng.array(&[2, 3], 0.5, 1.5);
        let za = if matches!(op, MergeOp::Concatenate(_)) {
            b.rng.array(&[2, 3], 0.5, 1.5)
        } else {
            b.rng.array(&[1, 3], 0.5, 1.5)
        };
        let model = b.finish();
        assert_grads(&model, &[xa, za], &Check::default());
    }
}

#[test]
fn constant_binary_ops_both_operand_orders() {
    for op in [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
    ] {
        for constant_first in [false, true] {
            check_unary_op(
                Op::ConstantBinary { op, constant_first },
                &[2, 3],
                |b| {
                    let v = b.rng.array(&[3], 0.5, 1.5);
                    vec![param("k", ParamRole::Constant, ParamLayout::AsIs, v, true)]
                },
                0.5,
                1.5,
            );
        }
    }
}

#[test]
fn unary_math() {
    for op in [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sqrt,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Reciprocal,
        UnaryOp::Erf,
        UnaryOp::Ones,
    ] {
        check_unary_op(Op::Unary { op }, &[2, 3], no_params, 0.3, 1.5);
    }
}

#[test]
fn rescaling_normalization_reduce() {
    check_unary_op(
        Op::Rescaling {
            scale: 1.0 / 255.0,
            offset: -0.5,
        },
        &[2, 3],
        no_params,
        -1.0,
        1.0,
    );
    for invert in [false, true] {
        check_unary_op(
            Op::Normalization {
                axes: vec![-1],
                invert,
                epsilon: 1e-7,
            },
            &[2, 3],
            |b| {
                let m = b.rng.array(&[3], -1.0, 1.0);
                let v = b.rng.array(&[3], 0.5, 2.0);
                vec![
                    param("mean", ParamRole::Mean, ParamLayout::AsIs, m, false),
                    param("var", ParamRole::Variance, ParamLayout::AsIs, v, false),
                ]
            },
            -1.0,
            1.0,
        );
    }
    for reduce in [
        ReduceKind::Mean,
        ReduceKind::Sum,
        ReduceKind::Max,
        ReduceKind::Min,
    ] {
        for keepdims in [false, true] {
            check_unary_op(
                Op::Reduce {
                    reduce,
                    axes: vec![1, -1],
                    keepdims,
                },
                &[2, 3, 4],
                no_params,
                -1.0,
                1.0,
            );
        }
    }
}

#[test]
fn deeper_graph_with_shared_values() {
    // A value consumed twice (residual) accumulates both gradients.
    let mut b = Builder::new(Framework::Keras);
    let x = b.input("x", &[4]);
    let k = b.param("k", ParamRole::Kernel, ParamLayout::DenseInOut, &[4, 4]);
    let h = b.add(
        "d",
        dense(4, false, Activation::Gelu { approximate: false }),
        &[&x],
        vec![k],
    );
    let s = b.add("add", Op::Merge { op: MergeOp::Add }, &[&x, &h], vec![]);
    let y = b.add("sm", act(Activation::Softmax { axis: -1 }), &[&s], vec![]);
    b.output(&y);
    b.output(&h);
    let xin = b.rng.array(&[3, 4], -1.0, 1.0);
    let model = b.finish();
    assert_grads(&model, &[xin], &Check::default());
}
