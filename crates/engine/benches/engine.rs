//! Criterion benchmarks: the seed MLP (64→128→10, batch 32) training step, a small CNN
//! training step (two 3×3 conv + BN + pool, dense; 28×28×1, batch 64), and f32 GEMM 512³.
//! Numbers and the comparison with PyTorch / numpy are recorded in the crate's report.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use engine::loss::{self, KerasBackend, KerasReduction, Loss, TorchReduction};
use engine::{DropoutMasks, Mode, ParamStore, Program, backward, forward};
use model_ir::{
    Activation, DType, DataLayout, Framework, Model, MomentumForm, Node, Op, Origin, Padding,
    Param, ParamLayout, ParamRole, PoolKind, Tensor, ValueInfo, VarianceEstimate,
};
use ndarray::{Array2, ArrayD, IxDyn};

/// Deterministic values in [-0.5, 0.5).
fn values(shape: &[usize], seed: u64) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("shape")
}

fn p(name: &str, role: ParamRole, layout: ParamLayout, shape: &[usize], trainable: bool) -> Param {
    let v = match role {
        ParamRole::MovingVariance | ParamRole::Gamma => ArrayD::from_elem(IxDyn(shape), 1.0),
        ParamRole::MovingMean | ParamRole::Beta => ArrayD::zeros(IxDyn(shape)),
        _ => values(shape, name.len() as u64 + 3).mapv(|v| v * 0.2),
    };
    Param {
        name: name.into(),
        role,
        layout,
        tensor: Tensor::F32(v),
        trainable,
    }
}

fn node(name: &str, op: Op, input: &str, params: Vec<Param>) -> Node {
    Node {
        name: name.into(),
        op,
        inputs: vec![input.into()],
        outputs: vec![name.into()],
        params,
        origin: Origin {
            framework: Framework::Torch,
            name: name.into(),
            class: String::new(),
        },
    }
}

fn model(framework: Framework, input: &[Option<usize>], nodes: Vec<Node>) -> Model {
    let mut m = Model::new(framework, "bench");
    m.inputs.push(ValueInfo {
        name: "x".into(),
        shape: input.to_vec(),
        dtype: DType::F32,
    });
    m.outputs
        .push(nodes.last().map(|n| n.name.clone()).unwrap_or_default());
    m.nodes = nodes;
    m
}

/// The seed MLP: Dense(128, relu) → Dense(10, softmax), Keras layout.
fn seed_mlp() -> Model {
    let dense = |units, activation| Op::Dense {
        units,
        use_bias: true,
        activation,
    };
    model(
        Framework::Keras,
        &[None, Some(64)],
        vec![
            node(
                "dense",
                dense(128, Activation::RELU),
                "x",
                vec![
                    p(
                        "dense/kernel",
                        ParamRole::Kernel,
                        ParamLayout::DenseInOut,
                        &[64, 128],
                        true,
                    ),
                    p(
                        "dense/bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        &[128],
                        true,
                    ),
                ],
            ),
            node(
                "dense_1",
                dense(10, Activation::Softmax { axis: -1 }),
                "dense",
                vec![
                    p(
                        "dense_1/kernel",
                        ParamRole::Kernel,
                        ParamLayout::DenseInOut,
                        &[128, 10],
                        true,
                    ),
                    p(
                        "dense_1/bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        &[10],
                        true,
                    ),
                ],
            ),
        ],
    )
}

/// Two 3×3 conv (8, 16 filters) + BN + ReLU + 2×2 max pool, then Dense(10): torch NCHW.
fn small_cnn() -> Model {
    let conv = |filters| Op::Conv {
        rank: 2,
        filters,
        kernel_size: vec![3, 3],
        strides: vec![1, 1],
        dilation: vec![1, 1],
        groups: 1,
        padding: Padding::symmetric(&[1, 1]),
        layout: DataLayout::ChannelsFirst,
        use_bias: true,
        activation: Activation::Linear,
    };
    let bn = Op::BatchNorm {
        axis: 1,
        epsilon: 1e-5,
        momentum: MomentumForm::TakeNew(0.1),
        running_variance: VarianceEstimate::Unbiased,
        center: true,
        scale: true,
        trainable: true,
        track_running_stats: true,
        training_mode: Some(true),
    };
    let bn_params = |n: &str, c: usize| {
        vec![
            p(
                &format!("{n}.weight"),
                ParamRole::Gamma,
                ParamLayout::Vector,
                &[c],
                true,
            ),
            p(
                &format!("{n}.bias"),
                ParamRole::Beta,
                ParamLayout::Vector,
                &[c],
                true,
            ),
            p(
                &format!("{n}.running_mean"),
                ParamRole::MovingMean,
                ParamLayout::Vector,
                &[c],
                false,
            ),
            p(
                &format!("{n}.running_var"),
                ParamRole::MovingVariance,
                ParamLayout::Vector,
                &[c],
                false,
            ),
        ]
    };
    let relu = Op::Activation {
        function: Activation::RELU,
    };
    let pool = Op::Pool {
        pool: PoolKind::Max,
        rank: 2,
        pool_size: vec![2, 2],
        strides: vec![2, 2],
        dilation: vec![],
        padding: Padding::Valid,
        layout: DataLayout::ChannelsFirst,
        count_include_pad: false,
        ceil_mode: false,
    };
    let conv_params = |n: &str, i: usize, o: usize| {
        vec![
            p(
                &format!("{n}.weight"),
                ParamRole::Kernel,
                ParamLayout::ConvOutInSpatial { rank: 2 },
                &[o, i, 3, 3],
                true,
            ),
            p(
                &format!("{n}.bias"),
                ParamRole::Bias,
                ParamLayout::Vector,
                &[o],
                true,
            ),
        ]
    };
    model(
        Framework::Torch,
        &[None, Some(1), Some(28), Some(28)],
        vec![
            node("conv1", conv(8), "x", conv_params("conv1", 1, 8)),
            node("bn1", bn.clone(), "conv1", bn_params("bn1", 8)),
            node("relu1", relu.clone(), "bn1", vec![]),
            node("pool1", pool.clone(), "relu1", vec![]),
            node("conv2", conv(16), "pool1", conv_params("conv2", 8, 16)),
            node("bn2", bn, "conv2", bn_params("bn2", 16)),
            node("relu2", relu, "bn2", vec![]),
            node("pool2", pool, "relu2", vec![]),
            node(
                "flatten",
                Op::Flatten {
                    start_axis: 1,
                    order: DataLayout::ChannelsFirst,
                },
                "pool2",
                vec![],
            ),
            node(
                "fc",
                Op::Dense {
                    units: 10,
                    use_bias: true,
                    activation: Activation::Linear,
                },
                "flatten",
                vec![
                    p(
                        "fc.weight",
                        ParamRole::Kernel,
                        ParamLayout::DenseOutIn,
                        &[10, 784],
                        true,
                    ),
                    p("fc.bias", ParamRole::Bias, ParamLayout::Vector, &[10], true),
                ],
            ),
        ],
    )
}

/// Forward (training mode), loss, backward: what one training step costs before the optimizer.
fn step(
    program: &Program,
    params: &ParamStore<f32>,
    x: &[ArrayD<f32>],
    y: &ArrayD<f32>,
    l: &Loss,
) -> f32 {
    let masks = DropoutMasks::new();
    let fwd = forward(program, params, x, Mode::Training, &masks).expect("forward");
    let logits = fwd.tape.output_logits(0).map(|(_, z)| z);
    let out = loss::compute(l, &fwd.outputs[0], y, None, logits).expect("loss");
    let g = backward(&fwd.tape, &[out.grad]).expect("backward");
    out.value + g.params.len() as f32
}

fn benches(c: &mut Criterion) {
    let mlp = seed_mlp();
    let program = Program::new(&mlp).expect("seed MLP compiles");
    let params = ParamStore::<f32>::from_model(&mlp);
    let x = vec![values(&[32, 64], 1)];
    let mut y = ArrayD::zeros(IxDyn(&[32, 10]));
    for i in 0..32 {
        y[[i, i % 10]] = 1.0;
    }
    let cce = Loss::KerasCategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
        axis: -1,
        backend: KerasBackend::TensorFlow,
        reduction: KerasReduction::SumOverBatchSize,
    };
    c.bench_function("seed_mlp_train_step_f32", |b| {
        b.iter(|| black_box(step(&program, &params, &x, &y, &cce)))
    });

    let cnn = small_cnn();
    let program = Program::new(&cnn).expect("small CNN compiles");
    let params = ParamStore::<f32>::from_model(&cnn);
    let x = vec![values(&[64, 1, 28, 28], 2)];
    let y = ArrayD::from_shape_fn(IxDyn(&[64]), |i| (i[0] % 10) as f32);
    let ce = Loss::TorchCrossEntropy {
        weight: None,
        ignore_index: -100,
        label_smoothing: 0.0,
        reduction: TorchReduction::Mean,
    };
    c.bench_function("small_cnn_train_step_f32", |b| {
        b.iter(|| black_box(step(&program, &params, &x, &y, &ce)))
    });

    let a = values(&[512, 512], 3)
        .into_dimensionality::<ndarray::Ix2>()
        .expect("2-D");
    let bm = values(&[512, 512], 4)
        .into_dimensionality::<ndarray::Ix2>()
        .expect("2-D");
    let mut out = Array2::<f32>::zeros((512, 512));
    c.bench_function("gemm_512_f32_ndarray", |b| {
        b.iter(|| {
            ndarray::linalg::general_mat_mul(1.0, &a, &bm, 0.0, &mut out);
            black_box(out[[0, 0]])
        })
    });
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
