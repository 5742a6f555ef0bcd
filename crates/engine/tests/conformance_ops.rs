//! Finite-difference checks (f64, ≤ 1e-6 relative) of the ops added for the ONNX conformance
//! suite: `MergeOp::Power` (ONNX `Pow` of two computed values), `BinaryOp::Maximum` /
//! `BinaryOp::Minimum` (general `Clip`), and the PReLU lowering
//! `relu(x) − slope·relu(−x)` with a trainable per-channel slope.

mod common;

use common::{Builder, Check, assert_grads, param};
use model_ir::{Activation, BinaryOp, Framework, MergeOp, Op, ParamLayout, ParamRole, UnaryOp};

#[test]
fn merge_power_of_two_computed_values() {
    let mut b = Builder::new(Framework::Torch);
    let x = b.input("x", &[3]);
    let z = b.input("z", &[3]);
    let y = b.add("pow", Op::Merge { op: MergeOp::Power }, &[&x, &z], vec![]);
    b.output(&y);
    let xa = b.rng.array(&[2, 3], 0.5, 1.5);
    let za = b.rng.array(&[1, 3], -1.5, 1.5);
    let model = b.finish();
    assert_grads(&model, &[xa, za], &Check::default());
}

#[test]
fn clip_bounds_both_orders() {
    for op in [BinaryOp::Maximum, BinaryOp::Minimum] {
        for constant_first in [false, true] {
            let mut b = Builder::new(Framework::Torch);
            let x = b.input("x", &[4]);
            // The bound is 0.5; x avoids a band around it (no kink within the finite-difference step).
            let k = ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), 0.5);
            let p = param("k", ParamRole::Constant, ParamLayout::AsIs, k, false);
            let y = b.add(
                "clip",
                Op::ConstantBinary { op, constant_first },
                &[&x],
                vec![p],
            );
            b.output(&y);
            let xa = b
                .rng
                .array(&[3, 4], 0.0, 1.0)
                .mapv(|v| if (v - 0.5).abs() < 0.1 { v + 0.3 } else { v });
            let model = b.finish();
            assert_grads(&model, &[xa], &Check::default());
        }
    }
}

#[test]
fn prelu_lowering_per_channel_slope() {
    let mut b = Builder::new(Framework::Torch);
    let x = b.input("x", &[3, 4]);
    let pos = b.add(
        "pos",
        Op::Activation {
            function: Activation::RELU,
        },
        &[&x],
        vec![],
    );
    let neg = b.add("negx", Op::Unary { op: UnaryOp::Neg }, &[&x], vec![]);
    let negr = b.add(
        "neg",
        Op::Activation {
            function: Activation::RELU,
        },
        &[&neg],
        vec![],
    );
    let slope = b.rng.array(&[3, 1], 0.1, 0.4);
    let p = param(
        "prelu.weight",
        ParamRole::Constant,
        ParamLayout::AsIs,
        slope,
        true,
    );
    let scaled = b.add(
        "scaled",
        Op::ConstantBinary {
            op: BinaryOp::Mul,
            constant_first: false,
        },
        &[&negr],
        vec![p],
    );
    let y = b.add(
        "prelu",
        Op::Merge {
            op: MergeOp::Subtract,
        },
        &[&pos, &scaled],
        vec![],
    );
    b.output(&y);
    let xa = b
        .rng
        .array(&[2, 3, 4], -1.0, 1.0)
        .mapv(|v: f64| if v.abs() < 0.05 { v + 0.1 } else { v });
    let model = b.finish();
    assert_grads(&model, &[xa], &Check::default());
}
