//! Criterion benchmarks for README's benchmark section (issue 4, "Performance"):
//! 1. the seed MLP (64→128→10, batch 32): forward + loss + backward, and the whole training step
//!    through [`engine::train`] with the `optim` Adam emulator;
//! 2. a small CNN (two 3×3 conv + BN + ReLU + 2×2 max pool, dense; 28×28×1, batch 64): the same
//!    two measurements;
//! 3. f32 GEMM 512³ through ndarray/matrixmultiply (the engine's kernel);
//! 4. forward of torchvision `mobilenet_v2(width_mult=0.35)`, 32×32, batch 8, from its ONNX
//!    export (`models/bench/mobilenet_v2_035.onnx`, written by `models/bench/bench_torch.py`):
//!    model-import → engine, against tract (`oracle_tract::compile` + `Compiled::run`).
//!
//! The PyTorch / numpy / ONNX Runtime baselines come from `models/bench/bench_torch.py`
//! (`models/bench/baseline.json`). Run: `cargo bench -p engine --bench engine`.

use std::hint::black_box;

use std::collections::BTreeMap;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::loss::{self, KerasBackend, KerasReduction, Loss, TorchReduction};
use engine::{
    Batch, DropoutMasks, Grads, Mode, ParamStore, Program, TrainConfig, backward, forward, train,
};
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

/// An Adam emulator over a program's trainable parameters: copies gradients and parameters into
/// the optimizer's flat buffers, steps, and writes the parameters back (what a caller of
/// [`engine::train`] does).
struct Adam {
    names: Vec<String>,
    g: Vec<Vec<f32>>,
    p: Vec<Vec<f32>>,
    keras: Option<optim::keras::Optimizer<f32>>,
    torch: Option<optim::torch::Optimizer<f32>>,
}

impl Adam {
    fn new(program: &Program, params: &ParamStore<f32>, framework: Framework) -> Adam {
        let names = program.trainable().to_vec();
        let sizes: Vec<usize> = names
            .iter()
            .map(|n| params.get(n).expect("trainable parameter").len())
            .collect();
        let (keras, torch) = match framework {
            Framework::Keras => {
                let cfg = optim::keras::Config::default_for("Adam").expect("Keras Adam");
                (Some(optim::keras::Optimizer::new(cfg, &sizes)), None)
            }
            _ => {
                let cfg = optim::torch::Config::default_for("Adam").expect("torch Adam");
                (None, Some(optim::torch::Optimizer::new(cfg, &sizes)))
            }
        };
        Adam {
            names,
            g: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            p: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            keras,
            torch,
        }
    }

    fn step(&mut self, params: &mut ParamStore<f32>, grads: &Grads<f32>) {
        for (i, n) in self.names.iter().enumerate() {
            let g = &grads.params[n];
            self.g[i]
                .iter_mut()
                .zip(g.iter())
                .for_each(|(d, &s)| *d = s);
            let p = params.get(n).expect("parameter");
            self.p[i]
                .iter_mut()
                .zip(p.iter())
                .for_each(|(d, &s)| *d = s);
        }
        if let Some(o) = &mut self.keras {
            o.apply(&mut self.g, &mut self.p);
        }
        if let Some(o) = &mut self.torch {
            o.step(&mut self.g, &mut self.p);
        }
        for (i, n) in self.names.iter().enumerate() {
            let p = params.get_mut(n).expect("parameter");
            p.iter_mut().zip(&self.p[i]).for_each(|(d, &s)| *d = s);
        }
    }
}

/// Registers `{name}_fwd_bwd_f32` (forward + loss + backward) and `{name}_train_step_adam_f32`
/// (one [`engine::train`] step: the same plus running statistics, the norms it records and
/// the Adam step).
fn bench_training(
    c: &mut Criterion,
    name: &str,
    m: &Model,
    x: ArrayD<f32>,
    y: ArrayD<f32>,
    l: Loss,
) {
    let program = Program::new(m).expect("model compiles");
    let params = ParamStore::<f32>::from_model(m);
    let xs = vec![x];
    c.bench_function(&format!("{name}_fwd_bwd_f32"), |b| {
        b.iter(|| black_box(step(&program, &params, &xs, &y, &l)))
    });
    let mut params = params;
    let mut adam = Adam::new(&program, &params, m.framework);
    let batches = vec![Batch {
        inputs: xs,
        target: y,
        sample_weight: None,
        masks: DropoutMasks::new(),
    }];
    let config = TrainConfig::new(1, l);
    c.bench_function(&format!("{name}_train_step_adam_f32"), |b| {
        b.iter(|| {
            let r = train(&program, &mut params, &batches, &config, |_, p, g| {
                adam.step(p, g)
            })
            .expect("train step");
            black_box(r.steps[0].loss)
        })
    });
}

fn training(c: &mut Criterion) {
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
    bench_training(c, "seed_mlp", &seed_mlp(), values(&[32, 64], 1), y, cce);

    let y = ArrayD::from_shape_fn(IxDyn(&[64]), |i| (i[0] % 10) as f32);
    let ce = Loss::TorchCrossEntropy {
        weight: None,
        ignore_index: -100,
        label_smoothing: 0.0,
        reduction: TorchReduction::Mean,
    };
    bench_training(
        c,
        "small_cnn",
        &small_cnn(),
        values(&[64, 1, 28, 28], 2),
        y,
        ce,
    );
}

fn gemm(c: &mut Criterion) {
    let a = values(&[512, 512], 3)
        .into_dimensionality::<ndarray::Ix2>()
        .expect("2-D");
    let bm = values(&[512, 512], 4)
        .into_dimensionality::<ndarray::Ix2>()
        .expect("2-D");
    let mut out = Array2::<f32>::zeros((512, 512));
    let mut g = c.benchmark_group("gemm_512");
    // Elements = floating-point operations: criterion's "elem/s" reads as FLOP/s.
    g.throughput(Throughput::Elements(2 * 512 * 512 * 512));
    g.bench_function("f32_ndarray", |b| {
        b.iter(|| {
            ndarray::linalg::general_mat_mul(1.0, &a, &bm, 0.0, &mut out);
            black_box(out[[0, 0]])
        })
    });
    g.finish();
}

/// The ONNX export written by `models/bench/bench_torch.py`.
fn mobilenet_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/bench/mobilenet_v2_035.onnx")
}

fn mobilenet(c: &mut Criterion) {
    let path = mobilenet_path();
    if !path.exists() {
        eprintln!(
            "mobilenet_v2_035: {} is missing; run models/bench/bench_torch.py --only mobilenet",
            path.display()
        );
        return;
    }
    let x = values(&[8, 3, 32, 32], 5);
    let mut g = c.benchmark_group("mobilenet_v2_035_b8_32x32");
    g.sample_size(30);

    let oracle_inputs = BTreeMap::from([("input".to_string(), Tensor::F32(x.clone()))]);
    let tract_out = match oracle_tract::compile(&path, &oracle_inputs) {
        Ok(plan) => {
            let out = plan.run(&oracle_inputs).expect("tract run");
            g.bench_function("tract", |b| {
                b.iter(|| black_box(plan.run(&oracle_inputs).expect("tract run").len()))
            });
            out.into_values().next()
        }
        Err(e) => {
            eprintln!("mobilenet_v2_035: tract: {e}");
            None
        }
    };

    let engine = model_import::load_onnx(&path)
        .map_err(|e| e.to_string())
        .and_then(|m| {
            let p = Program::new(&m).map_err(|e| e.to_string())?;
            Ok((p, ParamStore::<f32>::from_model(&m)))
        });
    match engine {
        Ok((program, params)) => {
            let masks = DropoutMasks::new();
            let xs = vec![x];
            let run = || forward(&program, &params, &xs, Mode::Inference, &masks);
            match run() {
                Ok(fwd) => {
                    if let Some(Tensor::F32(t)) = &tract_out {
                        let diff = fwd.outputs[0]
                            .iter()
                            .zip(t.iter())
                            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                        let scale = t.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                        eprintln!(
                            "mobilenet_v2_035: engine vs tract max |diff| {diff:e} (max |tract| {scale:e})"
                        );
                    }
                    g.bench_function("engine", |b| {
                        b.iter(|| black_box(run().expect("forward").outputs.len()))
                    });
                }
                Err(e) => eprintln!("mobilenet_v2_035: engine forward: {e}"),
            }
        }
        Err(e) => eprintln!("mobilenet_v2_035: engine: {e}"),
    }
    g.finish();
}

criterion_group!(engine_benches, training, gemm, mobilenet);
criterion_main!(engine_benches);
