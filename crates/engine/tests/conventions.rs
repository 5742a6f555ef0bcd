//! The conventions that make Keras and PyTorch differ, checked with known numbers, and the
//! equivalences the catalogue states (same numbers under the correct weight mapping).

mod common;

use std::collections::BTreeMap;

use common::{Builder, assert_close, assert_near, param};
use engine::{DropoutMasks, EngineError, Mode, OutputGrad, ParamStore, Program, backward, forward};
use model_ir::{
    Activation, DataLayout, Framework, GateOrder, GruReset, HardSigmoid, Interpolation, Model,
    MomentumForm, Op, Padding, ParamLayout, ParamRole, PoolKind, RnnBias, RnnCell, RnnDirection,
    VarianceEstimate,
};
use ndarray::{ArrayD, IxDyn, arr1, arr2};

/// Runs a model forward in f64; returns the outputs and the running-statistic updates.
fn run(
    model: &Model,
    inputs: &[ArrayD<f64>],
    mode: Mode,
) -> (Vec<ArrayD<f64>>, BTreeMap<String, ArrayD<f64>>) {
    let program = Program::new(model).unwrap();
    let params = ParamStore::<f64>::from_model(model);
    let out = forward(&program, &params, inputs, mode, &DropoutMasks::new()).unwrap();
    (out.outputs, out.stats.values)
}

/// One node on one input.
fn single(op: Op, sample: &[usize], params: Vec<model_ir::Param>) -> Model {
    let mut b = Builder::new(Framework::Keras);
    let x = b.input("x", sample);
    let y = b.add("op", op, &[&x], params);
    b.output(&y);
    b.finish()
}

fn ones(shape: &[usize]) -> ArrayD<f64> {
    ArrayD::from_elem(IxDyn(shape), 1.0)
}

fn conv1d(padding: Padding, k: usize, s: usize) -> Op {
    Op::Conv {
        rank: 1,
        filters: 1,
        kernel_size: vec![k],
        strides: vec![s],
        dilation: vec![1],
        groups: 1,
        padding,
        layout: DataLayout::ChannelsLast,
        use_bias: false,
        activation: Activation::Linear,
    }
}

#[test]
fn tf_same_padding_with_stride_two_pads_at_the_end() {
    let x = arr1(&[1.0, 2.0, 3.0, 4.0])
        .into_shape_with_order(IxDyn(&[1, 4, 1]))
        .unwrap();
    let k = || {
        param(
            "k",
            ParamRole::Kernel,
            ParamLayout::ConvSpatialInOut { rank: 1 },
            ones(&[3, 1, 1]),
            true,
        )
    };
    // SAME (TF): out 2, pads (0, 1): windows [1,2,3], [3,4,0].
    let (y, _) = run(
        &single(conv1d(Padding::SameUpper, 3, 2), &[4, 1], vec![k()]),
        std::slice::from_ref(&x),
        Mode::Inference,
    );
    assert_close(&y[0], &[6.0, 7.0], 0.0, 0.0);
    // The usual symmetric port (padding=1): windows [0,1,2], [2,3,4].
    let (y, _) = run(
        &single(conv1d(Padding::symmetric(&[1]), 3, 2), &[4, 1], vec![k()]),
        std::slice::from_ref(&x),
        Mode::Inference,
    );
    assert_close(&y[0], &[3.0, 9.0], 0.0, 0.0);
    // SAME_LOWER puts the extra element first, like the symmetric port here.
    let (y, _) = run(
        &single(conv1d(Padding::SameLower, 3, 2), &[4, 1], vec![k()]),
        std::slice::from_ref(&x),
        Mode::Inference,
    );
    assert_close(&y[0], &[3.0, 9.0], 0.0, 0.0);
    // Causal: (k−1) zeros at the start, stride 1.
    let (y, _) = run(
        &single(conv1d(Padding::Causal, 3, 1), &[4, 1], vec![k()]),
        &[x],
        Mode::Inference,
    );
    assert_close(&y[0], &[1.0, 3.0, 6.0, 9.0], 0.0, 0.0);
}

fn avg_pool(padding: Padding, count_include_pad: bool, ceil_mode: bool, k: usize, s: usize) -> Op {
    Op::Pool {
        pool: PoolKind::Avg,
        rank: 1,
        pool_size: vec![k],
        strides: vec![s],
        dilation: vec![],
        padding,
        layout: DataLayout::ChannelsLast,
        count_include_pad,
        ceil_mode,
    }
}

#[test]
fn average_pooling_excludes_or_counts_padding() {
    let x = arr1(&[1.0, 2.0, 3.0, 4.0])
        .into_shape_with_order(IxDyn(&[1, 4, 1]))
        .unwrap();
    // Keras/TF 'same': the padded position is not counted.
    let (y, _) = run(
        &single(
            avg_pool(Padding::SameUpper, false, false, 3, 2),
            &[4, 1],
            vec![],
        ),
        std::slice::from_ref(&x),
        Mode::Inference,
    );
    assert_close(&y[0], &[2.0, 3.5], 0.0, 1e-15);
    // torch count_include_pad=True with the same (0, 1) pads counts it.
    let pads = Padding::Explicit {
        begin: vec![0],
        end: vec![1],
    };
    let (y, _) = run(
        &single(avg_pool(pads, true, false, 3, 2), &[4, 1], vec![]),
        std::slice::from_ref(&x),
        Mode::Inference,
    );
    assert_close(&y[0], &[2.0, 7.0 / 3.0], 0.0, 1e-15);
    // torch ceil_mode: a last window starting inside the input is kept; its divisor stops at
    // the padded edge: windows [1,2], [3,4], [5] → out 3 for n = 5, k = 2, s = 2.
    let x5 = arr1(&[1.0, 2.0, 3.0, 4.0, 5.0])
        .into_shape_with_order(IxDyn(&[1, 5, 1]))
        .unwrap();
    let (y, _) = run(
        &single(avg_pool(Padding::Valid, true, true, 2, 2), &[5, 1], vec![]),
        &[x5],
        Mode::Inference,
    );
    assert_close(&y[0], &[1.5, 3.5, 5.0], 0.0, 1e-15);
}

fn up_1d(interpolation: Interpolation) -> Op {
    Op::UpSampling {
        rank: 1,
        size: vec![2],
        interpolation,
        layout: DataLayout::ChannelsLast,
    }
}

#[test]
fn bilinear_upsampling_half_pixel_vs_align_corners() {
    let up = |values: &[f64], interpolation| {
        let n = values.len();
        let x = arr1(values)
            .into_shape_with_order(IxDyn(&[1, n, 1]))
            .unwrap();
        let (y, _) = run(
            &single(up_1d(interpolation), &[n, 1], vec![]),
            &[x],
            Mode::Inference,
        );
        y.into_iter().next().unwrap()
    };
    // 2 → 4 on [0, 1]. Keras/TF2 and torch align_corners=False: half-pixel centres,
    // src = (j + ½)/2 − ½ clamped at 0 → 0, ¼, ¾, 1¼ (clamped to the last input).
    assert_close(
        &up(&[0.0, 1.0], Interpolation::Bilinear),
        &[0.0, 0.25, 0.75, 1.0],
        1e-15,
        0.0,
    );
    // torch align_corners=True: src = j·(2 − 1)/(4 − 1).
    assert_close(
        &up(&[0.0, 1.0], Interpolation::BilinearAlignCorners),
        &[0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0],
        1e-15,
        0.0,
    );
    assert_close(
        &up(&[0.0, 1.0], Interpolation::Nearest),
        &[0.0, 0.0, 1.0, 1.0],
        0.0,
        0.0,
    );
    // 3 → 6 on [0, 1, 2] (the output is the source coordinate itself).
    assert_close(
        &up(&[0.0, 1.0, 2.0], Interpolation::Bilinear),
        &[0.0, 0.25, 0.75, 1.25, 1.75, 2.0],
        1e-15,
        0.0,
    );
    assert_close(
        &up(&[0.0, 1.0, 2.0], Interpolation::BilinearAlignCorners),
        &[0.0, 0.4, 0.8, 1.2, 1.6, 2.0],
        1e-15,
        0.0,
    );
}

fn bn_model(momentum: MomentumForm, var: VarianceEstimate, trainable: bool, count: bool) -> Model {
    let op = Op::BatchNorm {
        axis: -1,
        epsilon: 1e-3,
        momentum,
        running_variance: var,
        center: true,
        scale: true,
        trainable,
        track_running_stats: true,
        training_mode: None,
    };
    let mut ps = vec![
        param(
            "bn/gamma",
            ParamRole::Gamma,
            ParamLayout::Vector,
            ones(&[1]),
            trainable,
        ),
        param(
            "bn/beta",
            ParamRole::Beta,
            ParamLayout::Vector,
            ArrayD::zeros(IxDyn(&[1])),
            trainable,
        ),
        param(
            "bn/moving_mean",
            ParamRole::MovingMean,
            ParamLayout::Vector,
            ArrayD::zeros(IxDyn(&[1])),
            false,
        ),
        param(
            "bn/moving_variance",
            ParamRole::MovingVariance,
            ParamLayout::Vector,
            ones(&[1]),
            false,
        ),
    ];
    if count {
        ps.push(param(
            "bn.num_batches_tracked",
            ParamRole::NumBatchesTracked,
            ParamLayout::AsIs,
            ArrayD::zeros(IxDyn(&[])),
            false,
        ));
    }
    single(op, &[1], ps)
}

#[test]
fn batch_norm_running_variance_biased_vs_unbiased_after_one_step() {
    let x = arr2(&[[1.0], [2.0], [3.0], [4.0]]).into_dyn();
    // Batch mean 2.5, biased variance 1.25, unbiased 5/3.
    let (y, stats) = run(
        &bn_model(
            MomentumForm::KeepOld(0.99),
            VarianceEstimate::Biased,
            true,
            false,
        ),
        std::slice::from_ref(&x),
        Mode::Training,
    );
    assert_near(stats["bn/moving_mean"][[0]], 0.99 * 0.0 + 0.01 * 2.5, 1e-15);
    assert_near(
        stats["bn/moving_variance"][[0]],
        0.99 * 1.0 + 0.01 * 1.25,
        1e-15,
    );
    // Normalization uses the biased variance in both frameworks.
    let inv = 1.0 / (1.25f64 + 1e-3).sqrt();
    assert_close(
        &y[0],
        &[-1.5 * inv, -0.5 * inv, 0.5 * inv, 1.5 * inv],
        1e-15,
        0.0,
    );
    let (y2, stats) = run(
        &bn_model(
            MomentumForm::TakeNew(0.1),
            VarianceEstimate::Unbiased,
            true,
            true,
        ),
        std::slice::from_ref(&x),
        Mode::Training,
    );
    assert_near(stats["bn/moving_mean"][[0]], 0.25, 1e-15);
    assert_near(
        stats["bn/moving_variance"][[0]],
        0.9 + 0.1 * 5.0 / 3.0,
        1e-15,
    );
    assert_near(stats["bn.num_batches_tracked"][[]], 1.0, 0.0);
    assert_close(&y2[0], y[0].as_slice().unwrap(), 1e-15, 0.0);
    // momentum=None: cumulative average, weight 1/num_batches_tracked = 1 on the first batch.
    let (_, stats) = run(
        &bn_model(
            MomentumForm::CumulativeAverage,
            VarianceEstimate::Unbiased,
            true,
            true,
        ),
        std::slice::from_ref(&x),
        Mode::Training,
    );
    assert_near(stats["bn/moving_variance"][[0]], 5.0 / 3.0, 1e-15);
    // Inference mode updates nothing and uses the running statistics.
    let (y, stats) = run(
        &bn_model(
            MomentumForm::KeepOld(0.99),
            VarianceEstimate::Biased,
            true,
            false,
        ),
        std::slice::from_ref(&x),
        Mode::Inference,
    );
    assert!(stats.is_empty());
    assert_close(
        &y[0],
        &[
            1.0 / 1.001f64.sqrt(),
            2.0 / 1.001f64.sqrt(),
            3.0 / 1.001f64.sqrt(),
            4.0 / 1.001f64.sqrt(),
        ],
        1e-15,
        0.0,
    );
}

#[test]
fn keras_frozen_batch_norm_runs_in_inference_mode_during_training() {
    let x = arr2(&[[1.0], [2.0], [3.0], [4.0]]).into_dyn();
    let frozen = bn_model(
        MomentumForm::KeepOld(0.99),
        VarianceEstimate::Biased,
        false,
        false,
    );
    let (train, stats) = run(&frozen, std::slice::from_ref(&x), Mode::Training);
    let (infer, _) = run(&frozen, &[x], Mode::Inference);
    assert!(
        stats.is_empty(),
        "a frozen BatchNormalization does not update its statistics"
    );
    assert_close(&train[0], infer[0].as_slice().unwrap(), 0.0, 0.0);
}

#[test]
fn torch_unbiased_running_variance_needs_two_values() {
    let model = bn_model(
        MomentumForm::TakeNew(0.1),
        VarianceEstimate::Unbiased,
        true,
        true,
    );
    let program = Program::new(&model).unwrap();
    let params = ParamStore::<f64>::from_model(&model);
    let err = forward(
        &program,
        &params,
        &[arr2(&[[1.0]]).into_dyn()],
        Mode::Training,
        &DropoutMasks::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("node `op` (batch_norm): expected more than 1 value per channel"),
        "{err}"
    );
}

#[test]
fn flatten_element_order_follows_the_ir() {
    // A channels-first (C=2, H=1, W=2) map: values c·10 + w.
    let x = arr1(&[0.0, 1.0, 10.0, 11.0])
        .into_shape_with_order(IxDyn(&[1, 2, 1, 2]))
        .unwrap();
    let mut b = Builder::new(Framework::Keras);
    let xin = b.input("x", &[2, 1, 2]);
    let pool = Op::Pool {
        pool: PoolKind::Max,
        rank: 2,
        pool_size: vec![1, 1],
        strides: vec![1, 1],
        dilation: vec![],
        padding: Padding::Valid,
        layout: DataLayout::ChannelsFirst,
        count_include_pad: false,
        ceil_mode: false,
    };
    let p = b.add("pool", pool, &[&xin], vec![]);
    let keras = b.add(
        "keras_flatten",
        Op::Flatten {
            start_axis: 1,
            order: DataLayout::ChannelsLast,
        },
        &[&p],
        vec![],
    );
    let torch = b.add(
        "torch_flatten",
        Op::Flatten {
            start_axis: 1,
            order: DataLayout::ChannelsFirst,
        },
        &[&p],
        vec![],
    );
    b.output(&keras);
    b.output(&torch);
    let (y, _) = run(&b.finish(), &[x], Mode::Inference);
    assert_close(&y[0], &[0.0, 10.0, 1.0, 11.0], 0.0, 0.0); // H, W, C
    assert_close(&y[1], &[0.0, 1.0, 10.0, 11.0], 0.0, 0.0); // C, H, W
}

#[test]
fn activation_definitions() {
    let x = arr1(&[-1.0, 1.0, 2.5])
        .into_shape_with_order(IxDyn(&[1, 3]))
        .unwrap();
    let eval = |f: Activation| {
        run(
            &single(Op::Activation { function: f }, &[3], vec![]),
            std::slice::from_ref(&x),
            Mode::Inference,
        )
        .0
        .remove(0)
    };
    // Keras 3 / torch: relu6(x+3)/6; tf.keras 2: clip(0.2x + 0.5).
    assert_close(
        &eval(Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH)),
        &[1.0 / 3.0, 2.0 / 3.0, 11.0 / 12.0],
        1e-15,
        0.0,
    );
    assert_close(
        &eval(Activation::HardSigmoid(HardSigmoid::LEGACY)),
        &[0.3, 0.7, 1.0],
        1e-15,
        0.0,
    );
    assert_close(
        &eval(Activation::Gelu { approximate: false }),
        &[-0.15865525393145707, 0.8413447460685429, 2.4844758366855597],
        1e-14,
        0.0,
    );
    assert_close(
        &eval(Activation::Gelu { approximate: true }),
        &[-0.15880800939172324, 0.8411919906082768, 2.484915733910001],
        1e-14,
        0.0,
    );
    // Keras LeakyReLU layer 0.3 vs torch 0.01.
    assert_close(
        &eval(Activation::LeakyRelu { slope: 0.3 }),
        &[-0.3, 1.0, 2.5],
        1e-15,
        0.0,
    );
    assert_close(
        &eval(Activation::LeakyRelu { slope: 0.01 }),
        &[-0.01, 1.0, 2.5],
        1e-15,
        0.0,
    );
    // Keras relu(x, negative_slope=0.1, max_value=2, threshold=0.5).
    let r = Activation::Relu {
        negative_slope: 0.1,
        max_value: Some(2.0),
        threshold: 0.5,
    };
    assert_close(&eval(r), &[-0.15, 1.0, 2.0], 1e-15, 0.0);
}

#[test]
fn dropout_scales_kept_units_and_shares_masks() {
    let model = single(
        Op::Dropout {
            rate: 0.5,
            spatial: None,
        },
        &[4],
        vec![],
    );
    let program = Program::new(&model).unwrap();
    let params = ParamStore::<f64>::from_model(&model);
    let x = arr2(&[[1.0, 2.0, 3.0, 4.0]]).into_dyn();
    let mut masks = DropoutMasks::new();
    masks.insert("op".into(), arr2(&[[1.0, 0.0, 1.0, 0.0]]).into_dyn());
    let y = forward(
        &program,
        &params,
        std::slice::from_ref(&x),
        Mode::Training,
        &masks,
    )
    .unwrap()
    .outputs;
    assert_close(&y[0], &[2.0, 0.0, 6.0, 0.0], 0.0, 0.0);
    let y = forward(
        &program,
        &params,
        std::slice::from_ref(&x),
        Mode::Inference,
        &masks,
    )
    .unwrap()
    .outputs;
    assert_close(&y[0], &[1.0, 2.0, 3.0, 4.0], 0.0, 0.0);
    masks.insert("nope".into(), ones(&[1, 4]));
    let err = forward(&program, &params, &[x], Mode::Training, &masks).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dropout mask for `nope`: no Dropout node has that name"
    );
}

#[test]
fn embedding_padding_idx_row_gets_no_gradient() {
    let mut b = Builder::new(Framework::Torch);
    let x = b.input("ids", &[3]);
    let t = b.param(
        "emb.weight",
        ParamRole::Embeddings,
        ParamLayout::Embedding,
        &[4, 2],
    );
    let op = Op::Embedding {
        input_dim: 4,
        output_dim: 2,
        mask_zero: false,
        padding_idx: Some(0),
    };
    let y = b.add("emb", op, &[&x], vec![t]);
    b.output(&y);
    let model = b.finish();
    let program = Program::new(&model).unwrap();
    let params = ParamStore::<f64>::from_model(&model);
    let ids = arr2(&[[0.0, 2.0, 2.0]]).into_dyn();
    let out = forward(
        &program,
        &params,
        &[ids],
        Mode::Training,
        &DropoutMasks::new(),
    )
    .unwrap();
    let g = backward(&out.tape, &[OutputGrad::Value(ones(&[1, 3, 2]))]).unwrap();
    assert_close(
        &g.params["emb.weight"],
        &[0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0],
        0.0,
        0.0,
    );
}

// ---- equivalences under the catalogue's weight mappings ----------------------------------

/// Applies the IR's layout counterpart transform to an f64 array.
fn to_other(layout: &ParamLayout, a: &ArrayD<f64>) -> (ParamLayout, ArrayD<f64>) {
    let (to, t) = layout.counterpart();
    let out = t.apply(&model_ir::Tensor::F64(a.clone())).unwrap().to_f64();
    (to, out)
}

#[test]
fn dense_and_conv_layouts_compute_the_same_function() {
    let mut rng = common::Rng::new(5);
    // Dense: Keras (in, out) vs torch (out, in).
    let k = rng.array(&[4, 3], -1.0, 1.0);
    let (tl, w) = to_other(&ParamLayout::DenseInOut, &k);
    let dense = |p: model_ir::Param| {
        single(
            Op::Dense {
                units: 3,
                use_bias: false,
                activation: Activation::Linear,
            },
            &[4],
            vec![p],
        )
    };
    let x = rng.array(&[2, 4], -1.0, 1.0);
    let (a, _) = run(
        &dense(param(
            "k",
            ParamRole::Kernel,
            ParamLayout::DenseInOut,
            k,
            true,
        )),
        std::slice::from_ref(&x),
        Mode::Inference,
    );
    let (b, _) = run(
        &dense(param("w", ParamRole::Kernel, tl, w, true)),
        &[x],
        Mode::Inference,
    );
    assert_close(&a[0], b[0].as_slice().unwrap(), 1e-14, 0.0);
    // Conv: Keras NHWC + HWIO vs torch NCHW + OIHW, TF 'same' with stride 2.
    let k = rng.array(&[3, 3, 2, 4], -1.0, 1.0);
    let (tl, w) = to_other(&ParamLayout::ConvSpatialInOut { rank: 2 }, &k);
    let conv = |layout, p| {
        let op = Op::Conv {
            rank: 2,
            filters: 4,
            kernel_size: vec![3, 3],
            strides: vec![2, 2],
            dilation: vec![1, 1],
            groups: 1,
            padding: Padding::SameUpper,
            layout,
            use_bias: false,
            activation: Activation::Linear,
        };
        let sample = if layout == DataLayout::ChannelsLast {
            [6, 6, 2]
        } else {
            [2, 6, 6]
        };
        single(op, &sample, vec![p])
    };
    let x = rng.array(&[1, 6, 6, 2], -1.0, 1.0);
    let xf = x
        .view()
        .permuted_axes(IxDyn(&[0, 3, 1, 2]))
        .as_standard_layout()
        .into_owned();
    let (a, _) = run(
        &conv(
            DataLayout::ChannelsLast,
            param(
                "k",
                ParamRole::Kernel,
                ParamLayout::ConvSpatialInOut { rank: 2 },
                k,
                true,
            ),
        ),
        &[x],
        Mode::Inference,
    );
    let (b, _) = run(
        &conv(
            DataLayout::ChannelsFirst,
            param("w", ParamRole::Kernel, tl, w, true),
        ),
        &[xf],
        Mode::Inference,
    );
    let bl = b[0]
        .view()
        .permuted_axes(IxDyn(&[0, 2, 3, 1]))
        .as_standard_layout()
        .into_owned();
    assert_close(&a[0], bl.as_slice().unwrap(), 1e-14, 0.0);
}

fn gru(order: GateOrder, bias: RnnBias, torch: bool, params: Vec<model_ir::Param>) -> Model {
    let mut b = Builder::new(if torch {
        Framework::Torch
    } else {
        Framework::Keras
    });
    let x = b.input("x", &[4, 3]);
    let op = Op::Rnn {
        cell: RnnCell::Gru,
        units: 2,
        activation: Activation::Tanh,
        recurrent_activation: Some(Activation::Sigmoid),
        gate_order: order,
        bias,
        gru_reset: Some(GruReset::AfterMatmul),
        direction: RnnDirection::Forward,
        return_sequences: true,
        return_state: false,
        go_backwards: false,
        batch_first: true,
        unit_forget_bias: false,
        dropout: 0.0,
        recurrent_dropout: 0.0,
    };
    let y = b.add("gru", op, &[&x], params);
    b.output(&y);
    b.finish()
}

#[test]
fn gru_keras_zrh_equals_torch_rzn_after_the_gate_swap() {
    let mut rng = common::Rng::new(9);
    let (k, r, bias) = (
        rng.array(&[3, 6], -1.0, 1.0),
        rng.array(&[2, 6], -1.0, 1.0),
        rng.array(&[2, 6], -1.0, 1.0),
    );
    let keras_layout = ParamLayout::RnnInGates {
        gate_order: GateOrder::Zrh,
    };
    let bias_layout = ParamLayout::GruBiasRows {
        gate_order: GateOrder::Zrh,
    };
    let keras = gru(
        GateOrder::Zrh,
        RnnBias::KerasInputRecurrentRows,
        false,
        vec![
            param(
                "gru/kernel",
                ParamRole::InputKernel,
                keras_layout.clone(),
                k.clone(),
                true,
            ),
            param(
                "gru/recurrent_kernel",
                ParamRole::RecurrentKernel,
                keras_layout.clone(),
                r.clone(),
                true,
            ),
            param(
                "gru/bias",
                ParamRole::InputBias,
                bias_layout.clone(),
                bias.clone(),
                true,
            ),
        ],
    );
    let (l1, w_ih) = to_other(&keras_layout, &k);
    let (_, w_hh) = to_other(&keras_layout, &r);
    let (_, b2) = to_other(&bias_layout, &bias);
    let vec_l = ParamLayout::RnnGateVector {
        gate_order: GateOrder::Rzn,
    };
    let torch = gru(
        GateOrder::Rzn,
        RnnBias::InputAndRecurrent,
        true,
        vec![
            param(
                "gru.weight_ih_l0",
                ParamRole::InputKernel,
                l1.clone(),
                w_ih,
                true,
            ),
            param(
                "gru.weight_hh_l0",
                ParamRole::RecurrentKernel,
                l1,
                w_hh,
                true,
            ),
            param(
                "gru.bias_ih_l0",
                ParamRole::InputBias,
                vec_l.clone(),
                b2.index_axis(ndarray::Axis(0), 0).to_owned(),
                true,
            ),
            param(
                "gru.bias_hh_l0",
                ParamRole::RecurrentBias,
                vec_l,
                b2.index_axis(ndarray::Axis(0), 1).to_owned(),
                true,
            ),
        ],
    );
    let x = rng.array(&[2, 4, 3], -1.0, 1.0);
    let (a, _) = run(&keras, std::slice::from_ref(&x), Mode::Inference);
    let (b, _) = run(&torch, &[x], Mode::Inference);
    assert_close(&a[0], b[0].as_slice().unwrap(), 1e-14, 0.0);
}

#[test]
fn keras_same_conv_transpose_equals_a_cropped_torch_one() {
    // Catalogue `conv-transpose-same-crop`: k = 3, s = 2, n = 3: Keras 'same' output 6 equals the
    // torch padding=0 output (7) sliced [c/2, c/2 + 6) with c = k − s = 1.
    let mut rng = common::Rng::new(13);
    let k = rng.array(&[3, 1, 1], -1.0, 1.0);
    let op = |padding| Op::ConvTranspose {
        rank: 1,
        filters: 1,
        kernel_size: vec![3],
        strides: vec![2],
        dilation: vec![1],
        groups: 1,
        padding,
        output_padding: None,
        layout: DataLayout::ChannelsLast,
        use_bias: false,
        activation: Activation::Linear,
    };
    let p = || {
        param(
            "k",
            ParamRole::Kernel,
            ParamLayout::ConvTransposeSpatialOutIn { rank: 1 },
            k.clone(),
            true,
        )
    };
    let x = rng.array(&[1, 3, 1], -1.0, 1.0);
    let (same, _) = run(
        &single(op(Padding::SameUpper), &[3, 1], vec![p()]),
        std::slice::from_ref(&x),
        Mode::Inference,
    );
    let (full, _) = run(
        &single(op(Padding::symmetric(&[0])), &[3, 1], vec![p()]),
        &[x],
        Mode::Inference,
    );
    assert_eq!(same[0].shape(), &[1, 6, 1]);
    assert_eq!(full[0].shape(), &[1, 7, 1]);
    let cropped: Vec<f64> = full[0].iter().copied().take(6).collect();
    assert_close(&same[0], &cropped, 1e-15, 0.0);
}

// ---- errors ----------------------------------------------------------------------------------

#[test]
fn errors_name_the_node_and_the_problem() {
    let emb = Op::Embedding {
        input_dim: 3,
        output_dim: 2,
        mask_zero: true,
        padding_idx: None,
    };
    let t = param(
        "e",
        ParamRole::Embeddings,
        ParamLayout::Embedding,
        ones(&[3, 2]),
        true,
    );
    let err = Program::new(&single(emb, &[4], vec![t])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `op` (embedding): unsupported: mask_zero=True (Keras mask propagation)"
    );
    let dense = Op::Dense {
        units: 3,
        use_bias: true,
        activation: Activation::Linear,
    };
    let k = param(
        "k",
        ParamRole::Kernel,
        ParamLayout::DenseInOut,
        ones(&[4, 3]),
        true,
    );
    let err = Program::new(&single(dense.clone(), &[4], vec![k.clone()])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node `op` (dense): use_bias is true but no bias is stored"
    );
    let b = param("b", ParamRole::Bias, ParamLayout::Vector, ones(&[3]), true);
    let model = single(dense, &[4], vec![k, b]);
    let program = Program::new(&model).unwrap();
    let params = ParamStore::<f64>::from_model(&model);
    let err = forward(
        &program,
        &params,
        &[ones(&[2, 5])],
        Mode::Inference,
        &DropoutMasks::new(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "input `x`: shape [2, 5] does not match the declared [?, 4]"
    );
    let err = program.infer_shapes(&[&[2, 4], &[1]]).unwrap_err();
    assert!(matches!(err, EngineError::Input { .. }), "{err}");
    let mut bad = params.clone();
    bad.insert("k", ones(&[3, 3]));
    let err = forward(
        &program,
        &bad,
        &[ones(&[2, 4])],
        Mode::Inference,
        &DropoutMasks::new(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "parameter `k`: has shape [3, 3], the model stores [4, 3]"
    );
}

#[test]
fn tf_logits_shortcut_through_a_stand_alone_softmax_equals_from_logits() {
    use engine::loss::{self, KerasBackend, KerasReduction, Loss};
    let build = |with_softmax: bool| {
        let mut b = Builder::seeded(Framework::Keras, 5);
        let x = b.input("x", &[4]);
        let k = b.param("k", ParamRole::Kernel, ParamLayout::DenseInOut, &[4, 3]);
        let dense = Op::Dense {
            units: 3,
            use_bias: false,
            activation: Activation::Linear,
        };
        let z = b.add("dense", dense, &[&x], vec![k]);
        let out = if with_softmax {
            let sm = Op::Activation {
                function: Activation::Softmax { axis: -1 },
            };
            b.add("softmax", sm, &[&z], vec![])
        } else {
            z
        };
        b.output(&out);
        b.finish()
    };
    let cce = |from_logits| Loss::KerasCategoricalCrossentropy {
        from_logits,
        label_smoothing: 0.0,
        axis: -1,
        backend: KerasBackend::TensorFlow,
        reduction: KerasReduction::SumOverBatchSize,
    };
    let x = common::Rng::new(8).array(&[2, 4], -3.0, 3.0);
    let y = arr2(&[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).into_dyn();
    let grads = |model: &Model, l: &Loss| {
        let program = Program::new(model).unwrap();
        let params = ParamStore::<f64>::from_model(model);
        let fwd = forward(
            &program,
            &params,
            std::slice::from_ref(&x),
            Mode::Training,
            &DropoutMasks::new(),
        )
        .unwrap();
        let z = fwd.tape.output_logits(0).map(|(_, z)| z);
        let out = loss::compute(l, &fwd.outputs[0], &y, None, z).unwrap();
        (
            out.value,
            backward(&fwd.tape, &[out.grad]).unwrap().params["k"].clone(),
        )
    };
    let (v1, g1) = grads(&build(true), &cce(false));
    let (v2, g2) = grads(&build(false), &cce(true));
    assert_near(v1, v2, 1e-14);
    assert_close(&g1, g2.as_slice().unwrap(), 1e-14, 0.0);
}

#[test]
fn max_pooling_indices_are_flat_positions_in_the_input() {
    // Channels-last (N=1, W=4, C=2): channel 0 = [1, 5, 2, 2], channel 1 = [9, 0, 3, 7].
    let x = arr1(&[1.0, 9.0, 5.0, 0.0, 2.0, 3.0, 2.0, 7.0])
        .into_shape_with_order(IxDyn(&[1, 4, 2]))
        .unwrap();
    let mut b = Builder::new(Framework::Torch);
    let xin = b.input("x", &[4, 2]);
    let op = Op::Pool {
        pool: PoolKind::Max,
        rank: 1,
        pool_size: vec![2],
        strides: vec![2],
        dilation: vec![1],
        padding: Padding::Valid,
        layout: DataLayout::ChannelsLast,
        count_include_pad: false,
        ceil_mode: false,
    };
    let outs = b.add_n("pool", op, &[&xin], 2, vec![]);
    b.output(&outs[0]);
    b.output(&outs[1]);
    let (y, _) = run(&b.finish(), &[x], Mode::Inference);
    assert_close(&y[0], &[5.0, 9.0, 2.0, 7.0], 0.0, 0.0);
    // Ties go to the first position: window [2, 2] of channel 0 gives element 4.
    assert_close(&y[1], &[2.0, 1.0, 4.0, 7.0], 0.0, 0.0);
}
