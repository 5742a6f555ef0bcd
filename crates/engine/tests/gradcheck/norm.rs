//! Gradient checks: normalization.

use crate::common::{Builder, Check, param};
use crate::{check_unary_op, check_with};
use engine::Mode;
use model_ir::{MomentumForm, Op, ParamLayout, ParamRole, VarianceEstimate};

fn bn(
    axis: i64,
    momentum: MomentumForm,
    var: VarianceEstimate,
    trainable: bool,
    affine: bool,
) -> Op {
    Op::BatchNorm {
        axis,
        epsilon: 1e-3,
        momentum,
        running_variance: var,
        center: affine,
        scale: affine,
        trainable,
        track_running_stats: true,
        training_mode: None,
    }
}

fn bn_params(b: &mut Builder, c: usize, affine: bool) -> Vec<model_ir::Param> {
    let mut v = Vec::new();
    if affine {
        v.push(b.param("gamma", ParamRole::Gamma, ParamLayout::Vector, &[c]));
        v.push(b.param("beta", ParamRole::Beta, ParamLayout::Vector, &[c]));
    }
    let mean = b.rng.array(&[c], -0.5, 0.5);
    let var = b.rng.array(&[c], 0.5, 1.5);
    v.push(param(
        "mean",
        ParamRole::MovingMean,
        ParamLayout::Vector,
        mean,
        false,
    ));
    v.push(param(
        "var",
        ParamRole::MovingVariance,
        ParamLayout::Vector,
        var,
        false,
    ));
    v
}

#[test]
fn batch_norm_inference_and_training() {
    let train = Check {
        mode: Mode::Training,
        ..Check::default()
    };
    let keras = bn(
        -1,
        MomentumForm::KeepOld(0.99),
        VarianceEstimate::Biased,
        true,
        true,
    );
    check_unary_op(keras.clone(), &[4, 3], |b| bn_params(b, 3, true), -1.0, 1.0);
    check_with(
        keras,
        &[3, 2, 2, 3],
        |b| bn_params(b, 3, true),
        -1.0,
        1.0,
        train.clone(),
    );
    let torch = bn(
        1,
        MomentumForm::TakeNew(0.1),
        VarianceEstimate::Unbiased,
        true,
        true,
    );
    check_with(
        torch,
        &[2, 3, 2, 2],
        |b| bn_params(b, 3, true),
        -1.0,
        1.0,
        train.clone(),
    );
    let plain = bn(
        -1,
        MomentumForm::KeepOld(0.9),
        VarianceEstimate::Biased,
        true,
        false,
    );
    check_with(
        plain,
        &[5, 2],
        |b| bn_params(b, 2, false),
        -1.0,
        1.0,
        train.clone(),
    );
    // Keras trainable=False: inference semantics inside training.
    let frozen = bn(
        -1,
        MomentumForm::KeepOld(0.99),
        VarianceEstimate::Biased,
        false,
        true,
    );
    check_with(frozen, &[4, 3], |b| bn_params(b, 3, true), -1.0, 1.0, train);
}

#[test]
fn layer_norm_axes_and_rms_scaling() {
    let ln = |axes: Vec<i64>, rms: bool| Op::LayerNorm {
        axes,
        epsilon: 1e-3,
        center: true,
        scale: true,
        rms_scaling: rms,
    };
    check_unary_op(
        ln(vec![-1], false),
        &[3, 4],
        |b| {
            vec![
                b.param("g", ParamRole::Gamma, ParamLayout::Vector, &[4]),
                b.param("b", ParamRole::Beta, ParamLayout::Vector, &[4]),
            ]
        },
        -1.0,
        1.0,
    );
    check_unary_op(
        ln(vec![-2, -1], false),
        &[2, 3, 4],
        |b| {
            vec![
                b.param("g", ParamRole::Gamma, ParamLayout::AsIs, &[3, 4]),
                b.param("b", ParamRole::Beta, ParamLayout::AsIs, &[3, 4]),
            ]
        },
        -1.0,
        1.0,
    );
    check_unary_op(
        ln(vec![-1], true),
        &[3, 5],
        |b| vec![b.param("g", ParamRole::Gamma, ParamLayout::Vector, &[5])],
        -1.0,
        1.0,
    );
}

#[test]
fn group_norm_both_layouts() {
    let gn = |axis| Op::GroupNorm {
        groups: 2,
        axis,
        epsilon: 1e-5,
        center: true,
        scale: true,
    };
    let ps = |b: &mut Builder| {
        vec![
            b.param("g", ParamRole::Gamma, ParamLayout::Vector, &[4]),
            b.param("b", ParamRole::Beta, ParamLayout::Vector, &[4]),
        ]
    };
    check_unary_op(gn(-1), &[2, 3, 4], ps, -1.0, 1.0);
    check_unary_op(gn(1), &[2, 4, 3, 2], ps, -1.0, 1.0);
}
