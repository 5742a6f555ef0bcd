//! Gradient checks: dropout and shape ops.

use crate::common::{Builder, Check, assert_grads};
use crate::conv::conv;
use crate::dense::dense;
use crate::{check_unary_op, check_with, no_params};
use engine::Mode;
use model_ir::{Activation, DataLayout, Framework, Op, Padding, ParamLayout, ParamRole};

#[test]
fn dropout_with_shared_mask_and_without() {
    let op = Op::Dropout {
        rate: 0.25,
        spatial: None,
    };
    let mut rng = crate::common::Rng::new(3);
    let mut check = Check {
        mode: Mode::Training,
        ..Check::default()
    };
    check.masks.insert("op".into(), rng.mask(&[3, 4], 0.75));
    check_with(op.clone(), &[3, 4], no_params, -1.0, 1.0, check.clone());
    // Spatial dropout: one mask value per (sample, channel).
    check
        .masks
        .insert("op".into(), rng.mask(&[2, 1, 1, 3], 0.5));
    check_with(op.clone(), &[2, 2, 2, 3], no_params, -1.0, 1.0, check);
    check_unary_op(op, &[3, 4], no_params, -1.0, 1.0);
}

#[test]
fn flatten_reshape_permute_squeeze_unsqueeze() {
    check_unary_op(
        Op::Flatten {
            start_axis: 1,
            order: DataLayout::ChannelsLast,
        },
        &[2, 3, 2, 2],
        no_params,
        -1.0,
        1.0,
    );
    check_unary_op(
        Op::Reshape {
            target_shape: vec![-1, 2],
        },
        &[2, 3, 4],
        no_params,
        -1.0,
        1.0,
    );
    // The batch axis merged, and split again.
    check_unary_op(
        Op::ReshapeAll { shape: vec![-1] },
        &[2, 3, 4],
        no_params,
        -1.0,
        1.0,
    );
    check_unary_op(
        Op::ReshapeAll {
            shape: vec![4, 3, -1],
        },
        &[2, 3, 4],
        no_params,
        -1.0,
        1.0,
    );
    check_unary_op(
        Op::Permute {
            perm: vec![0, 2, 1],
        },
        &[2, 3, 4],
        no_params,
        -1.0,
        1.0,
    );
    check_unary_op(
        Op::Squeeze { axes: vec![2] },
        &[2, 3, 1],
        no_params,
        -1.0,
        1.0,
    );
    check_unary_op(
        Op::Unsqueeze { axes: vec![1, -1] },
        &[2, 3],
        no_params,
        -1.0,
        1.0,
    );
    check_unary_op(
        Op::Select { axis: 1, index: -1 },
        &[2, 3, 4],
        no_params,
        -1.0,
        1.0,
    );
    check_unary_op(
        Op::Slice {
            axis: -1,
            start: 1,
            end: 100,
            step: 2,
        },
        &[2, 5],
        no_params,
        -1.0,
        1.0,
    );
    check_unary_op(
        Op::Slice {
            axis: 1,
            start: -1,
            end: -100,
            step: -2,
        },
        &[2, 5],
        no_params,
        -1.0,
        1.0,
    );
    check_unary_op(Op::Identity, &[2, 3], no_params, -1.0, 1.0);
}

#[test]
fn flatten_channels_first_tensor_in_keras_order() {
    // A channels-first conv followed by a Keras Flatten: the channel axis moves last first.
    let mut b = Builder::new(Framework::Keras);
    let x = b.input("x", &[2, 4, 3]);
    let k = b.param(
        "k",
        ParamRole::Kernel,
        ParamLayout::ConvOutInSpatial { rank: 2 },
        &[3, 2, 2, 2],
    );
    let c = b.add(
        "conv",
        conv(
            2,
            3,
            &[2, 2],
            &[1, 1],
            &[1, 1],
            1,
            Padding::Valid,
            DataLayout::ChannelsFirst,
        ),
        &[&x],
        vec![k],
    );
    let f = b.add(
        "flat",
        Op::Flatten {
            start_axis: 1,
            order: DataLayout::ChannelsLast,
        },
        &[&c],
        vec![],
    );
    let d = b.param("d", ParamRole::Kernel, ParamLayout::DenseInOut, &[18, 2]);
    let y = b.add("dense", dense(2, false, Activation::Linear), &[&f], vec![d]);
    b.output(&y);
    let xin = b.rng.array(&[2, 2, 4, 3], -1.0, 1.0);
    let mut model = b.finish();
    // Drop the conv bias flag: this conv has no bias.
    if let Op::Conv { use_bias, .. } = &mut model.nodes[0].op {
        *use_bias = false;
    }
    assert_grads(&model, &[xin], &Check::default());
}
