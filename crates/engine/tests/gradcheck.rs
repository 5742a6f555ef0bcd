//! Finite-difference gradient checks (f64, ≤ 1e-6 relative) of every op's backward pass, one
//! model per op and convention variant; each also checks the f32 path against f64.

mod common;

use common::{Builder, Check, assert_grads, param};
use engine::Mode;
use model_ir::{
    Activation, BidiMerge, BinaryOp, DataLayout, Framework, GateOrder, GruReset, HardSigmoid,
    Interpolation, MergeOp, MomentumForm, Op, PadMode, Padding, ParamLayout, ParamRole, PoolKind,
    ReduceKind, RnnBias, RnnCell, RnnDirection, UnaryOp, VarianceEstimate,
};

/// Input → one op (with its params) → output, checked at a random input of `shape`
/// (`lo..hi`).
#[track_caller]
fn check_unary_op(
    op: Op,
    shape: &[usize],
    params: impl FnOnce(&mut Builder) -> Vec<model_ir::Param>,
    lo: f64,
    hi: f64,
) {
    check_with(op, shape, params, lo, hi, Check::default());
}

#[track_caller]
fn check_with(
    op: Op,
    shape: &[usize],
    params: impl FnOnce(&mut Builder) -> Vec<model_ir::Param>,
    lo: f64,
    hi: f64,
    check: Check,
) {
    let mut b = Builder::new(Framework::Keras);
    let x = b.input("x", &shape[1..]);
    let ps = params(&mut b);
    let y = b.add("op", op, &[&x], ps);
    b.output(&y);
    let x = b.rng.array(shape, lo, hi);
    let model = b.finish();
    assert_grads(&model, &[x], &check);
}

fn act(function: Activation) -> Op {
    Op::Activation { function }
}

fn no_params(_: &mut Builder) -> Vec<model_ir::Param> {
    Vec::new()
}

// ---- activations -------------------------------------------------------------------------

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

// ---- dense ---------------------------------------------------------------------------------

fn dense(units: usize, use_bias: bool, activation: Activation) -> Op {
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

// ---- convolutions -------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn conv(
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

// ---- normalization ------------------------------------------------------------------------

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

// ---- dropout and shape ops ----------------------------------------------------------------

#[test]
fn dropout_with_shared_mask_and_without() {
    let op = Op::Dropout {
        rate: 0.25,
        spatial: None,
    };
    let mut rng = common::Rng::new(3);
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

// ---- pooling, padding, upsampling ----------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn pool(
    kind: PoolKind,
    k: &[usize],
    s: &[usize],
    padding: Padding,
    layout: DataLayout,
    cip: bool,
    ceil: bool,
) -> Op {
    Op::Pool {
        pool: kind,
        rank: k.len(),
        pool_size: k.to_vec(),
        strides: s.to_vec(),
        dilation: vec![],
        padding,
        layout,
        count_include_pad: cip,
        ceil_mode: ceil,
    }
}

#[test]
fn pooling_variants() {
    let cl = DataLayout::ChannelsLast;
    let cf = DataLayout::ChannelsFirst;
    for kind in [PoolKind::Max, PoolKind::Avg] {
        check_unary_op(
            pool(kind, &[2, 2], &[], Padding::Valid, cl, false, false),
            &[2, 4, 5, 3],
            no_params,
            -1.0,
            1.0,
        );
        check_unary_op(
            pool(kind, &[3, 3], &[2, 2], Padding::SameUpper, cl, false, false),
            &[2, 5, 6, 2],
            no_params,
            -1.0,
            1.0,
        );
        check_unary_op(
            pool(
                kind,
                &[3, 3],
                &[2, 2],
                Padding::symmetric(&[1, 1]),
                cf,
                true,
                true,
            ),
            &[2, 2, 6, 5],
            no_params,
            -1.0,
            1.0,
        );
        check_unary_op(
            pool(kind, &[3], &[2], Padding::symmetric(&[1]), cf, false, true),
            &[2, 3, 6],
            no_params,
            -1.0,
            1.0,
        );
    }
    let dilated = Op::Pool {
        pool: PoolKind::Max,
        rank: 2,
        pool_size: vec![2, 2],
        strides: vec![1, 1],
        dilation: vec![2, 2],
        padding: Padding::Valid,
        layout: cf,
        count_include_pad: false,
        ceil_mode: false,
    };
    check_unary_op(dilated, &[1, 2, 5, 5], no_params, -1.0, 1.0);
}

#[test]
fn global_pooling() {
    for kind in [PoolKind::Max, PoolKind::Avg] {
        for (layout, keepdims) in [
            (DataLayout::ChannelsLast, false),
            (DataLayout::ChannelsFirst, true),
        ] {
            let op = Op::GlobalPool {
                pool: kind,
                rank: 2,
                layout,
                keepdims,
            };
            check_unary_op(op, &[2, 3, 4, 2], no_params, -1.0, 1.0);
        }
    }
}

#[test]
fn padding_modes() {
    for mode in [PadMode::Constant(0.5), PadMode::Reflect, PadMode::Edge] {
        let op = Op::Pad {
            rank: 2,
            begin: vec![1, 2],
            end: vec![2, 1],
            layout: DataLayout::ChannelsFirst,
            mode,
        };
        check_unary_op(op, &[2, 2, 3, 4], no_params, -1.0, 1.0);
    }
}

#[test]
fn upsampling_nearest_and_bilinear() {
    for interpolation in [
        Interpolation::Nearest,
        Interpolation::Bilinear,
        Interpolation::BilinearAlignCorners,
    ] {
        let op = Op::UpSampling {
            rank: 2,
            size: vec![2, 3],
            interpolation,
            layout: DataLayout::ChannelsLast,
        };
        check_unary_op(op, &[2, 3, 2, 2], no_params, -1.0, 1.0);
    }
}

#[test]
fn upsampling_bilinear_align_corners_edge_sizes() {
    // A length-1 axis (all outputs read input 0) next to a length-4 axis, channels first.
    let op = Op::UpSampling {
        rank: 2,
        size: vec![3, 2],
        interpolation: Interpolation::BilinearAlignCorners,
        layout: DataLayout::ChannelsFirst,
    };
    check_unary_op(op, &[2, 2, 1, 4], no_params, -1.0, 1.0);
    let op = Op::UpSampling {
        rank: 1,
        size: vec![1],
        interpolation: Interpolation::BilinearAlignCorners,
        layout: DataLayout::ChannelsLast,
    };
    check_unary_op(op, &[2, 1, 3], no_params, -1.0, 1.0);
}

// ---- embedding -----------------------------------------------------------------------------

#[test]
fn embedding_scatter_add_and_padding_idx() {
    for padding_idx in [None, Some(1)] {
        let mut b = Builder::new(Framework::Torch);
        let x = b.input("ids", &[4]);
        let t = b.param(
            "emb",
            ParamRole::Embeddings,
            ParamLayout::Embedding,
            &[5, 3],
        );
        let e = b.add(
            "emb",
            Op::Embedding {
                input_dim: 5,
                output_dim: 3,
                mask_zero: false,
                padding_idx,
            },
            &[&x],
            vec![t],
        );
        let y = b.add("act", act(Activation::Tanh), &[&e], vec![]);
        b.output(&y);
        // The padding row gets no gradient by design (torch), so FD would disagree there:
        // keep it out of the ids here; `conventions.rs` checks that it stays at zero.
        let ids = b.rng.ids(&[3, 4], 5).mapv(|i| {
            if Some(i as i64) == padding_idx {
                2.0
            } else {
                i
            }
        });
        let model = b.finish();
        let check = Check {
            skip_inputs: vec![0],
            ..Check::default()
        };
        assert_grads(&model, &[ids], &check);
    }
}

// ---- recurrent -----------------------------------------------------------------------------

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
    if matches!(c.direction, RnnDirection::Bidirectional(_)) {
        ps.extend(rnn_params(&mut b, &c, true, fin, h));
    }
    let op = Op::Rnn {
        cell: c.cell,
        units: h,
        activation: Activation::Tanh,
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

// ---- element-wise and merges ---------------------------------------------------------------

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
