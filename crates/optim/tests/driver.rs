//! `optim::driver::Driver` against a direct use of the optimizers (the code the driver
//! replaced in the engine fixtures and the diagnosis simulation): bit for bit in float32.

use model_ir::{
    Framework, GradClip, KerasBackend, OptimizerSpec, ParamGroup, SchedulerSpec, StepInterval,
    TrainingConfig,
};
use optim::driver::{Driver, DriverError, Grads, steps_per_epoch, torch_param_groups};
use optim::keras::{self, IndexedSlices};
use optim::{Variable, torch};
use serde_json::json;

fn vars() -> Vec<Variable> {
    vec![
        Variable::new("embedding/embeddings", &[4, 3]),
        Variable::new("dense/kernel", &[3, 2]),
        Variable::new("dense/bias", &[2]),
    ]
}

/// A deterministic pseudo-random value in [-1, 1).
fn noise(seed: &mut u64) -> f32 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

fn init(vars: &[Variable], seed: &mut u64) -> Vec<Vec<f32>> {
    vars.iter()
        .map(|v| (0..v.numel()).map(|_| noise(seed)).collect())
        .collect()
}

/// Step `t`'s gradient: the embedding's as slices (rows looked up, one twice) and their dense
/// sum, the others dense.
struct Step {
    dense: Vec<Vec<f32>>,
    indices: Vec<usize>,
    values: Vec<f32>,
}

fn steps(vars: &[Variable], n: usize) -> Vec<Step> {
    let mut seed = 7;
    (0..n)
        .map(|t| {
            let indices = vec![t % 4, (t + 2) % 4, t % 4];
            let values: Vec<f32> = (0..indices.len() * 3).map(|_| noise(&mut seed)).collect();
            let mut dense: Vec<Vec<f32>> = vars
                .iter()
                .map(|v| (0..v.numel()).map(|_| noise(&mut seed)).collect())
                .collect();
            dense[0] = vec![0.0; 12];
            for (k, &r) in indices.iter().enumerate() {
                for j in 0..3 {
                    dense[0][r * 3 + j] += values[k * 3 + j];
                }
            }
            Step {
                dense,
                indices,
                values,
            }
        })
        .collect()
}

fn bits(p: &[Vec<f32>]) -> Vec<Vec<u32>> {
    p.iter()
        .map(|v| v.iter().map(|x| x.to_bits()).collect())
        .collect()
}

fn training(framework: Framework, class_name: &str, config: serde_json::Value) -> TrainingConfig {
    let mut t = TrainingConfig::defaults(framework);
    t.optimizer = Some(OptimizerSpec {
        class_name: class_name.into(),
        config,
    });
    t
}

/// The driver over `n` steps, handing it the slices when `sliced`.
fn run_driver(mut d: Driver<f32>, n: usize, sliced: bool) -> Vec<Vec<f32>> {
    let v = vars();
    let mut p = init(&v, &mut 1);
    for s in steps(&v, n) {
        let mut g = s.dense.clone();
        let slices = [
            Some(IndexedSlices {
                indices: &s.indices,
                values: &s.values,
            }),
            None,
            None,
        ];
        let grads = if sliced {
            Grads::with_slices(&mut g, &slices)
        } else {
            Grads::dense(&mut g)
        };
        d.step(grads, &mut p);
    }
    p
}

fn keras_adam() -> serde_json::Value {
    json!({
        "learning_rate": {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
            "config": {"initial_learning_rate": 0.01, "decay_steps": 2, "decay_rate": 0.5}},
        "clipnorm": 0.5,
        "use_ema": true,
        "ema_momentum": 0.9,
        "weight_decay": 0.01,
    })
}

/// Keras, direct: `optimizer.apply` (with slices when `sliced`).
fn run_keras_direct(config: keras::Config, n: usize, sliced: bool) -> Vec<Vec<f32>> {
    let v = vars();
    let mut opt = keras::Optimizer::<f32>::build(config, &v);
    let mut p = init(&v, &mut 1);
    for s in steps(&v, n) {
        let mut g = s.dense.clone();
        if sliced {
            let slices = [
                Some(IndexedSlices {
                    indices: &s.indices,
                    values: &s.values,
                }),
                None,
                None,
            ];
            opt.apply_with_slices(&mut g, &slices, &mut p);
        } else {
            opt.apply(&mut g, &mut p);
        }
    }
    p
}

#[test]
fn keras_tensorflow_hands_the_optimizer_the_slices() {
    let mut t = training(Framework::Keras, "Adam", keras_adam());
    t.backend = Some(KerasBackend::TensorFlow);
    let d = Driver::<f32>::from_training(&t, &vars(), None).unwrap();
    let config = keras::Config::from_spec(t.optimizer.as_ref().unwrap()).unwrap();
    let sparse = run_keras_direct(config.clone(), 6, true);
    assert_eq!(bits(&run_driver(d, 6, true)), bits(&sparse));
    // The slices matter here: a row looked up twice.
    assert_ne!(bits(&sparse), bits(&run_keras_direct(config, 6, false)));
}

#[test]
fn keras_without_slices_is_the_dense_apply() {
    for backend in [None, Some(KerasBackend::TensorFlow)] {
        let mut t = training(Framework::Keras, "Adam", keras_adam());
        t.backend = backend;
        let d = Driver::<f32>::from_training(&t, &vars(), None).unwrap();
        let config = keras::Config::from_spec(t.optimizer.as_ref().unwrap()).unwrap();
        assert_eq!(
            bits(&run_driver(d, 6, false)),
            bits(&run_keras_direct(config, 6, false))
        );
    }
}

#[test]
fn keras_jax_and_torch_backends_take_dense_gradients() {
    for backend in [KerasBackend::Jax, KerasBackend::Torch] {
        let mut t = training(Framework::Keras, "Adam", keras_adam());
        t.backend = Some(backend);
        let d = Driver::<f32>::from_training(&t, &vars(), None).unwrap();
        let config = keras::Config::from_spec(t.optimizer.as_ref().unwrap()).unwrap();
        assert_eq!(
            bits(&run_driver(d, 6, true)),
            bits(&run_keras_direct(config, 6, false)),
            "{backend}"
        );
    }
}

#[test]
fn keras_gradient_accumulation_and_loss_scaling() {
    let t = training(
        Framework::Keras,
        "SGD",
        json!({"learning_rate": 0.1, "momentum": 0.9, "gradient_accumulation_steps": 2,
               "loss_scale_factor": 4.0, "global_clipnorm": 1.0}),
    );
    let d = Driver::<f32>::from_training(&t, &vars(), None).unwrap();
    let config = keras::Config::from_spec(t.optimizer.as_ref().unwrap()).unwrap();
    assert_eq!(
        bits(&run_driver(d, 7, false)),
        bits(&run_keras_direct(config, 7, false))
    );
}

/// Torch, direct, as the simulation did it: clip, step, scheduler after step `t` when its
/// config says so.
fn run_torch_direct(
    groups: Vec<(torch::Config, Vec<usize>)>,
    clip: Option<GradClip>,
    scheduler: Option<&SchedulerSpec>,
    steps_per_epoch: Option<u64>,
    n: usize,
) -> Vec<Vec<f32>> {
    let v = vars();
    let mut pg = torch::ParamGroups::<f32>::build(groups, &v);
    let mut sch = scheduler.map(|spec| {
        let cfg = torch::SchedulerConfig::from_spec(spec, steps_per_epoch).unwrap();
        let s = torch::Scheduler::new(&cfg.kind, &mut pg.configs_mut()).unwrap();
        (s, cfg)
    });
    let mut p = init(&v, &mut 1);
    for (i, s) in steps(&v, n).into_iter().enumerate() {
        let mut g = s.dense;
        if let Some(c) = &clip {
            torch::apply_grad_clip(c, &mut g);
        }
        pg.step(&mut g, &mut p);
        if let Some((s, cfg)) = &mut sch
            && cfg.steps_after(i as u64 + 1) == Some(true)
        {
            s.step(&mut pg.configs_mut());
        }
    }
    p
}

fn torch_training(
    interval: StepInterval,
    scheduler: &str,
    config: serde_json::Value,
) -> TrainingConfig {
    let mut t = training(
        Framework::Torch,
        "Adam",
        json!({"lr": 0.01, "betas": [0.9, 0.99], "weight_decay": 0.001}),
    );
    t.param_groups = Some(vec![
        ParamGroup {
            params: vec!["dense/kernel".into()],
            overrides: json!({"lr": 0.05, "name": "head"})
                .as_object()
                .unwrap()
                .clone(),
        },
        ParamGroup {
            params: vec!["embedding/embeddings".into(), "dense/bias".into()],
            overrides: json!({"weight_decay": 0.0}).as_object().unwrap().clone(),
        },
    ]);
    t.grad_clip = Some(GradClip::Norm {
        max_norm: 0.75,
        norm_type: 2.0,
    });
    t.scheduler = Some(SchedulerSpec {
        class_name: scheduler.into(),
        config,
        interval,
    });
    t
}

fn check_torch(t: &TrainingConfig, spe: Option<u64>, n: usize) {
    let v = vars();
    let names: Vec<String> = v.iter().map(|x| x.name.clone()).collect();
    let groups = torch_param_groups(
        t.optimizer.as_ref().unwrap(),
        t.param_groups.as_deref(),
        &names,
    )
    .unwrap();
    assert_eq!(groups.len(), 2);
    let d = Driver::<f32>::from_training(t, &v, spe).unwrap();
    let want = run_torch_direct(groups, t.grad_clip, t.scheduler.as_ref(), spe, n);
    // The driver ignores slices for torch (nn.Embedding gives dense gradients).
    assert_eq!(bits(&run_driver(d, n, true)), bits(&want));
}

#[test]
fn torch_param_groups_clip_and_a_scheduler_per_epoch() {
    let t = torch_training(
        StepInterval::Epoch,
        "StepLR",
        json!({"step_size": 1, "gamma": 0.5}),
    );
    let spe = steps_per_epoch(10, 4, false);
    assert_eq!(spe, 3);
    check_torch(&t, Some(spe), 8);
    // Per epoch really differs from per step here.
    let d = Driver::<f32>::from_training(&t, &vars(), Some(spe)).unwrap();
    let mut every = t.clone();
    every.scheduler.as_mut().unwrap().interval = StepInterval::Step;
    let e = Driver::<f32>::from_training(&every, &vars(), Some(spe)).unwrap();
    assert_ne!(
        bits(&run_driver(d, 8, false)),
        bits(&run_driver(e, 8, false))
    );
}

#[test]
fn torch_scheduler_per_step() {
    let t = torch_training(StepInterval::Step, "ExponentialLR", json!({"gamma": 0.8}));
    check_torch(&t, None, 6);
}

#[test]
fn torch_single_group_without_clip_or_scheduler() {
    let t = training(
        Framework::Torch,
        "SGD",
        json!({"lr": 0.1, "momentum": 0.9, "nesterov": true}),
    );
    let v = vars();
    let d = Driver::<f32>::from_training(&t, &v, None).unwrap();
    let cfg = torch::Config::from_spec(t.optimizer.as_ref().unwrap()).unwrap();
    let want = run_torch_direct(vec![(cfg, vec![0, 1, 2])], None, None, None, 5);
    assert_eq!(bits(&run_driver(d, 5, false)), bits(&want));
    // An empty group list is the single group too.
    let mut empty = t.clone();
    empty.param_groups = Some(Vec::new());
    let d = Driver::<f32>::from_training(&empty, &v, None).unwrap();
    assert_eq!(bits(&run_driver(d, 5, false)), bits(&want));
}

#[test]
fn steps_per_epoch_follows_the_loader() {
    assert_eq!(steps_per_epoch(10, 4, false), 3);
    assert_eq!(steps_per_epoch(10, 4, true), 2);
    assert_eq!(steps_per_epoch(3, 4, true), 1);
    assert_eq!(steps_per_epoch(0, 4, false), 1);
    assert_eq!(steps_per_epoch(5, 0, false), 5);
}

#[test]
fn errors_are_one_line() {
    let t = TrainingConfig::defaults(Framework::Keras);
    let e = Driver::<f32>::from_training(&t, &vars(), None).unwrap_err();
    assert_eq!(e, DriverError::NoOptimizer { framework: "Keras" });
    assert_eq!(e.to_string(), "the Keras bundle records no optimizer");
    let t = TrainingConfig::defaults(Framework::Torch);
    let e = Driver::<f32>::from_training(&t, &vars(), None).unwrap_err();
    assert_eq!(e.to_string(), "the torch bundle records no optimizer");
    let mut t = training(Framework::Torch, "Adam", json!({}));
    t.param_groups = Some(vec![ParamGroup {
        params: vec!["nope".into()],
        overrides: serde_json::Map::new(),
    }]);
    let e = Driver::<f32>::from_training(&t, &vars(), None).unwrap_err();
    assert!(matches!(e, DriverError::Config(_)), "{e}");
}
