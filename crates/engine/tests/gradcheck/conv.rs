//! Gradient checks: convolutions.

use crate::common::{Builder, Check, assert_grads};
use crate::{act, check_unary_op};
use model_ir::{Activation, DataLayout, Framework, Op, Padding, ParamLayout, ParamRole};

#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    rank: usize,
    filters: usize,
    k: &[usize],
    s: &[usize],
    d: &[usize],
    groups: usize,
    padding: Padding,
    layout: DataLayout,
) -> Op {
    Op::Conv {
        rank,
        filters,
        kernel_size: k.to_vec(),
        strides: s.to_vec(),
        dilation: d.to_vec(),
        groups,
        padding,
        layout,
        use_bias: true,
        activation: Activation::Tanh,
    }
}

/// Conv with a Keras `(*k, in/g, out)` or torch `(out, in/g, *k)` kernel.
#[allow(clippy::too_many_arguments)]
#[track_caller]
fn check_conv(
    shape: &[usize],
    cin: usize,
    filters: usize,
    k: &[usize],
    s: &[usize],
    d: &[usize],
    groups: usize,
    padding: Padding,
    layout: DataLayout,
    torch: bool,
) {
    let rank = k.len();
    let kshape: Vec<usize> = if torch {
        let mut v = vec![filters, cin / groups];
        v.extend(k);
        v
    } else {
        let mut v = k.to_vec();
        v.extend([cin / groups, filters]);
        v
    };
    let layout_p = if torch {
        ParamLayout::ConvOutInSpatial { rank }
    } else {
        ParamLayout::ConvSpatialInOut { rank }
    };
    check_unary_op(
        conv(rank, filters, k, s, d, groups, padding, layout),
        shape,
        |b| {
            vec![
                b.param("k", ParamRole::Kernel, layout_p, &kshape),
                b.param("b", ParamRole::Bias, ParamLayout::Vector, &[filters]),
            ]
        },
        -1.0,
        1.0,
    );
}

#[test]
fn conv2d_padding_rules_channels_last() {
    let cl = DataLayout::ChannelsLast;
    check_conv(
        &[2, 5, 4, 3],
        3,
        2,
        &[3, 3],
        &[1, 1],
        &[1, 1],
        1,
        Padding::Valid,
        cl,
        false,
    );
    check_conv(
        &[2, 6, 5, 2],
        2,
        3,
        &[3, 3],
        &[2, 2],
        &[1, 1],
        1,
        Padding::SameUpper,
        cl,
        false,
    );
    check_conv(
        &[1, 6, 6, 2],
        2,
        2,
        &[2, 3],
        &[2, 1],
        &[1, 1],
        1,
        Padding::SameLower,
        cl,
        false,
    );
    let pads = Padding::Explicit {
        begin: vec![1, 0],
        end: vec![2, 1],
    };
    check_conv(
        &[2, 4, 4, 2],
        2,
        2,
        &[3, 2],
        &[1, 2],
        &[1, 1],
        1,
        pads,
        cl,
        false,
    );
}

#[test]
fn conv2d_channels_first_torch_kernel_groups_dilation() {
    let cf = DataLayout::ChannelsFirst;
    check_conv(
        &[2, 4, 6, 5],
        4,
        6,
        &[3, 3],
        &[1, 1],
        &[2, 1],
        2,
        Padding::symmetric(&[1, 1]),
        cf,
        true,
    );
    check_conv(
        &[1, 3, 5, 5],
        3,
        2,
        &[3, 3],
        &[2, 2],
        &[1, 1],
        1,
        Padding::SameUpper,
        cf,
        true,
    );
}

#[test]
fn conv1d_causal_and_dilated() {
    let cl = DataLayout::ChannelsLast;
    check_conv(
        &[2, 7, 3],
        3,
        2,
        &[3],
        &[1],
        &[2],
        1,
        Padding::Causal,
        cl,
        false,
    );
    check_conv(
        &[2, 3, 8],
        3,
        4,
        &[2],
        &[2],
        &[1],
        1,
        Padding::SameUpper,
        DataLayout::ChannelsFirst,
        true,
    );
}

#[test]
fn conv3d_and_input_node() {
    check_conv(
        &[1, 3, 4, 3, 2],
        2,
        2,
        &[2, 3, 2],
        &[1, 2, 1],
        &[1, 1, 2],
        1,
        Padding::SameUpper,
        DataLayout::ChannelsLast,
        false,
    );
    // A Keras InputLayer node in front of the graph, named like the graph input.
    let mut b = Builder::new(Framework::Keras);
    let x = b.input("x", &[3]);
    let input = Op::Input {
        shape: vec![None, Some(3)],
        dtype: model_ir::DType::F32,
    };
    let i = b.add(&x, input, &[], vec![]);
    let y = b.add("act", act(Activation::Silu), &[&i], vec![]);
    b.output(&y);
    let xin = b.rng.array(&[2, 3], -1.0, 1.0);
    assert_grads(&b.finish(), &[xin], &Check::default());
}

#[test]
fn conv_pointwise_fast_path() {
    check_conv(
        &[2, 3, 3, 4],
        4,
        3,
        &[1, 1],
        &[1, 1],
        &[1, 1],
        1,
        Padding::Valid,
        DataLayout::ChannelsLast,
        false,
    );
}

#[test]
fn depthwise_keras_and_torch_layouts() {
    let op = |layout| Op::DepthwiseConv {
        rank: 2,
        depth_multiplier: 2,
        kernel_size: vec![3, 3],
        strides: vec![2, 2],
        dilation: vec![1, 1],
        padding: Padding::SameUpper,
        layout,
        use_bias: true,
        activation: Activation::Relu6,
    };
    check_unary_op(
        op(DataLayout::ChannelsLast),
        &[2, 5, 6, 3],
        |b| {
            vec![
                b.param(
                    "dw",
                    ParamRole::DepthwiseKernel,
                    ParamLayout::DepthwiseSpatialInMult { rank: 2 },
                    &[3, 3, 3, 2],
                ),
                b.param("b", ParamRole::Bias, ParamLayout::Vector, &[6]),
            ]
        },
        -1.0,
        1.0,
    );
    check_unary_op(
        op(DataLayout::ChannelsFirst),
        &[2, 3, 5, 4],
        |b| {
            vec![
                b.param(
                    "w",
                    ParamRole::Kernel,
                    ParamLayout::DepthwiseOutOneSpatial { rank: 2 },
                    &[6, 1, 3, 3],
                ),
                b.param("b", ParamRole::Bias, ParamLayout::Vector, &[6]),
            ]
        },
        -1.0,
        1.0,
    );
}

#[test]
fn separable_conv() {
    let op = Op::SeparableConv {
        rank: 2,
        filters: 4,
        depth_multiplier: 2,
        kernel_size: vec![3, 3],
        strides: vec![1, 1],
        dilation: vec![1, 1],
        padding: Padding::SameUpper,
        layout: DataLayout::ChannelsLast,
        use_bias: true,
        activation: Activation::Tanh,
    };
    check_unary_op(
        op,
        &[2, 4, 4, 2],
        |b| {
            vec![
                b.param(
                    "dw",
                    ParamRole::DepthwiseKernel,
                    ParamLayout::DepthwiseSpatialInMult { rank: 2 },
                    &[3, 3, 2, 2],
                ),
                b.param(
                    "pw",
                    ParamRole::PointwiseKernel,
                    ParamLayout::ConvSpatialInOut { rank: 2 },
                    &[1, 1, 4, 4],
                ),
                b.param("b", ParamRole::Bias, ParamLayout::Vector, &[4]),
            ]
        },
        -1.0,
        1.0,
    );
}

#[allow(clippy::too_many_arguments)]
fn conv_t(
    rank: usize,
    filters: usize,
    k: &[usize],
    s: &[usize],
    groups: usize,
    padding: Padding,
    op: Option<Vec<usize>>,
    layout: DataLayout,
) -> Op {
    Op::ConvTranspose {
        rank,
        filters,
        kernel_size: k.to_vec(),
        strides: s.to_vec(),
        dilation: vec![1; rank],
        groups,
        padding,
        output_padding: op,
        layout,
        use_bias: true,
        activation: Activation::Linear,
    }
}

#[test]
fn conv_transpose_keras_valid_and_same() {
    for padding in [Padding::Valid, Padding::SameUpper] {
        check_unary_op(
            conv_t(
                2,
                3,
                &[3, 3],
                &[2, 2],
                1,
                padding,
                None,
                DataLayout::ChannelsLast,
            ),
            &[2, 3, 2, 2],
            |b| {
                vec![
                    b.param(
                        "k",
                        ParamRole::Kernel,
                        ParamLayout::ConvTransposeSpatialOutIn { rank: 2 },
                        &[3, 3, 3, 2],
                    ),
                    b.param("b", ParamRole::Bias, ParamLayout::Vector, &[3]),
                ]
            },
            -1.0,
            1.0,
        );
    }
    // kernel smaller than the stride: Keras 'valid' leaves zeros at the end.
    check_unary_op(
        conv_t(
            1,
            2,
            &[2],
            &[3],
            1,
            Padding::Valid,
            None,
            DataLayout::ChannelsLast,
        ),
        &[2, 3, 2],
        |b| {
            vec![
                b.param(
                    "k",
                    ParamRole::Kernel,
                    ParamLayout::ConvTransposeSpatialOutIn { rank: 1 },
                    &[2, 2, 2],
                ),
                b.param("b", ParamRole::Bias, ParamLayout::Vector, &[2]),
            ]
        },
        -1.0,
        1.0,
    );
}

#[test]
fn conv_transpose_torch_pads_output_padding_groups() {
    let pads = Padding::Explicit {
        begin: vec![1, 0],
        end: vec![1, 0],
    };
    check_unary_op(
        conv_t(
            2,
            4,
            &[3, 2],
            &[2, 2],
            2,
            pads,
            Some(vec![1, 1]),
            DataLayout::ChannelsFirst,
        ),
        &[2, 4, 3, 2],
        |b| {
            vec![
                b.param(
                    "w",
                    ParamRole::Kernel,
                    ParamLayout::ConvTransposeInOutSpatial { rank: 2 },
                    &[4, 2, 3, 2],
                ),
                b.param("b", ParamRole::Bias, ParamLayout::Vector, &[4]),
            ]
        },
        -1.0,
        1.0,
    );
}
