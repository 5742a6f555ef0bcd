//! Equivalence mapping: rendered code, catalogue reasons, and numerical agreement of each
//! exact mapping on the committed gradient sequence (f64, ≤ 1e-6 normalized).

mod common;

use catalogue::Id;
use optim::Variable;
use optim::equiv::{
    keras_to_torch, torch_groups_for_exclusion, torch_to_keras, torch_to_keras_scheduled,
};
use optim::keras;
use optim::torch::{self, GradClip, Scheduler, SchedulerConfig};
use serde_json::{Value, json};

/// The inputs the mappings are checked on: `keras_adam_default`'s (w 4×3, b 5), or with
/// `ADAFACTOR` set `keras_adafactor_default`'s (plus the rank-3 k, so factoring is used).
struct Inputs {
    vars: Vec<Variable>,
    init: Vec<Vec<f64>>,
    grads: Vec<Vec<Vec<f64>>>,
}

fn inputs(adafactor: bool) -> Inputs {
    let t = common::load_named(if adafactor {
        "keras_adafactor_default"
    } else {
        "keras_adam_default"
    });
    let c = |v: &Vec<Vec<f32>>| {
        v.iter()
            .map(|x| x.iter().map(|&y| f64::from(y)).collect())
            .collect::<Vec<Vec<f64>>>()
    };
    Inputs {
        vars: t.variables(),
        init: c(&t.init),
        grads: t.grads.iter().map(c).collect(),
    }
}

fn is_adafactor_k(cfg: &keras::Config) -> bool {
    matches!(cfg.kind, keras::Kind::Adafactor { .. })
}

fn is_adafactor_t(cfg: &torch::Config) -> bool {
    matches!(cfg.kind, torch::Kind::Adafactor { .. })
}

fn run_keras(cfg: keras::Config) -> Vec<Vec<Vec<f64>>> {
    let inp = inputs(is_adafactor_k(&cfg));
    let mut p = inp.init;
    let mut o = keras::Optimizer::<f64>::build(cfg, &inp.vars);
    inp.grads
        .into_iter()
        .map(|mut g| {
            o.apply(&mut g, &mut p);
            p.clone()
        })
        .collect()
}

fn run_torch(cfg: torch::Config, clip: Option<GradClip>) -> Vec<Vec<Vec<f64>>> {
    let n = inputs(is_adafactor_t(&cfg)).vars.len();
    run_torch_groups(vec![(cfg, (0..n).collect())], clip, None)
}

/// Torch with parameter groups and an optional scheduler (stepped as its config says).
fn run_torch_groups(
    groups: Vec<(torch::Config, Vec<usize>)>,
    clip: Option<GradClip>,
    sched: Option<&SchedulerConfig>,
) -> Vec<Vec<Vec<f64>>> {
    let inp = inputs(is_adafactor_t(&groups[0].0));
    let mut p = inp.init;
    let mut o = torch::ParamGroups::<f64>::build(groups, &inp.vars);
    let mut s = sched.map(|c| {
        (
            Scheduler::new(&c.kind, &mut o.configs_mut()).unwrap_or_else(|e| panic!("{e}")),
            c,
        )
    });
    inp.grads
        .into_iter()
        .enumerate()
        .map(|(i, mut g)| {
            if let Some(c) = &clip {
                torch::apply_grad_clip(c, &mut g);
            }
            o.step(&mut g, &mut p);
            if let Some((s, c)) = &mut s
                && c.steps_after(i as u64 + 1) == Some(true)
            {
                s.step(&mut o.configs_mut());
            }
            p.clone()
        })
        .collect()
}

fn distance(a: &[Vec<Vec<f64>>], b: &[Vec<Vec<f64>>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let num = x
                .iter()
                .flatten()
                .zip(y.iter().flatten())
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max);
            let den = y
                .iter()
                .flatten()
                .map(|q| q.abs())
                .fold(0.0, f64::max)
                .max(1e-12);
            num / den
        })
        .fold(0.0, f64::max)
}

/// Keras config → torch equivalent: the rendered code and the numerical agreement.
#[track_caller]
fn check_k2t(keras_cfg: Value, code: &str) {
    let k = keras::Config::parse(&keras_cfg).unwrap_or_else(|e| panic!("{e}"));
    check_k2t_config(k, code);
}

#[track_caller]
fn check_k2t_config(k: keras::Config, code: &str) {
    let t = keras_to_torch(&k).unwrap_or_else(|e| panic!("{e}"));
    let mut full = t.code.clone();
    for extra in [&t.clip_code, &t.scheduler_code].into_iter().flatten() {
        full = format!("{full}; {extra}");
    }
    assert_eq!(full, code);
    let inp = inputs(is_adafactor_k(&k));
    let names: Vec<String> = inp.vars.iter().map(|v| v.name.clone()).collect();
    let groups = match &t.exclude_from_weight_decay {
        Some(e) => torch_groups_for_exclusion(&t.config, e, k.backend, &names),
        None => vec![(t.config.clone(), (0..names.len()).collect())],
    };
    let d = distance(
        &run_torch_groups(groups, t.grad_clip, t.scheduler.as_ref()),
        &run_keras(k),
    );
    assert!(d <= 1e-6, "{code}: {d:.3e}");
}

#[track_caller]
fn check_k2t_none(keras_cfg: Value, message: &str) {
    let k = keras::Config::parse(&keras_cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        keras_to_torch(&k)
            .map(|t| t.code)
            .map_err(|e| e.to_string()),
        Err(message.to_string())
    );
}

#[track_caller]
fn check_t2k(torch_cfg: Value, clip: Option<GradClip>, code: &str) {
    let t = torch::Config::parse(&torch_cfg).unwrap_or_else(|e| panic!("{e}"));
    let k = torch_to_keras(&t, clip.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(k.code, code);
    let d = distance(&run_keras(k.config), &run_torch(t, clip));
    assert!(d <= 1e-6, "{code}: {d:.3e}");
}

/// torch optimizer + scheduler (`{"class_name", "config", "interval", "steps_per_epoch"}`)
/// → Keras with a schedule.
#[track_caller]
fn check_t2k_sched(torch_cfg: Value, sched: Value, code: &str) {
    let t = torch::Config::parse(&torch_cfg).unwrap_or_else(|e| panic!("{e}"));
    let s = SchedulerConfig::parse(&sched).unwrap_or_else(|e| panic!("{e}"));
    let k = torch_to_keras_scheduled(&t, None, Some(&s)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(k.code, code);
    let n = inputs(is_adafactor_t(&t)).vars.len();
    let d = distance(
        &run_keras(k.config),
        &run_torch_groups(vec![(t, (0..n).collect())], None, Some(&s)),
    );
    assert!(d <= 1e-6, "{code}: {d:.3e}");
}

#[track_caller]
fn check_t2k_sched_none(torch_cfg: Value, sched: Value, message: &str) {
    let t = torch::Config::parse(&torch_cfg).unwrap_or_else(|e| panic!("{e}"));
    let s = SchedulerConfig::parse(&sched).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        torch_to_keras_scheduled(&t, None, Some(&s))
            .map(|k| k.code)
            .map_err(|e| e.to_string()),
        Err(message.to_string())
    );
}

#[track_caller]
fn check_t2k_none(torch_cfg: Value, message: &str) {
    let t = torch::Config::parse(&torch_cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        torch_to_keras(&t, None)
            .map(|k| k.code)
            .map_err(|e| e.to_string()),
        Err(message.to_string())
    );
}

fn k(class: &str, config: Value) -> Value {
    json!({"class_name": class, "config": config})
}

fn t(class: &str, defaults: Value) -> Value {
    json!({"class_name": class, "defaults": defaults})
}

#[test]
fn keras_to_torch_exact() {
    check_k2t(
        k("Adadelta", json!({})),
        "torch.optim.Adadelta(params, lr=0.001, rho=0.95, eps=1e-07)",
    );
    check_k2t(
        k("Nadam", json!({})),
        "torch.optim.NAdam(params, lr=0.001, eps=1e-07, momentum_decay=1.0)",
    );
    check_k2t(
        k("Nadam", json!({"weight_decay": 0.1, "learning_rate": 0.01})),
        "torch.optim.NAdam(params, lr=0.01, eps=1e-07, momentum_decay=1.0, weight_decay=0.1, decoupled_weight_decay=True)",
    );
    check_k2t(
        k("SGD", json!({"momentum": 0.9, "nesterov": true})),
        "torch.optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True)",
    );
    check_k2t(
        k("SGD", json!({"weight_decay": 0.5})),
        "torch.optim.SGD(params, lr=0.01, weight_decay=0.5)",
    );
    check_k2t(
        k("Adam", json!({"epsilon": 0.0, "amsgrad": true})),
        "torch.optim.Adam(params, lr=0.001, eps=0.0, amsgrad=True)",
    );
    check_k2t(
        k("AdamW", json!({"epsilon": 0.0})),
        "torch.optim.AdamW(params, lr=0.001, eps=0.0, weight_decay=0.004)",
    );
    check_k2t(
        k(
            "RMSprop",
            json!({"epsilon": 0.0, "centered": true, "momentum": 0.5}),
        ),
        "torch.optim.RMSprop(params, lr=0.001, alpha=0.9, eps=0.0, momentum=0.5, centered=True)",
    );
    check_k2t(
        k("Adagrad", json!({"epsilon": 0.0, "clipvalue": 0.5})),
        "torch.optim.Adagrad(params, lr=0.001, initial_accumulator_value=0.1, eps=0.0); torch.nn.utils.clip_grad_value_(params, clip_value=0.5)",
    );
    check_k2t(
        k("Adamax", json!({"epsilon": 0.0})),
        "torch.optim.Adamax(params, lr=0.001, eps=0.0)",
    );
}

#[test]
fn keras_to_torch_none() {
    check_k2t_none(
        k("Adam", json!({})),
        "no torch equivalent: Keras adds epsilon-hat 1e-07 to sqrt(v) before bias correction, i.e. torch eps_t = 1e-07/sqrt(1-beta_2^t), which changes every step (catalogue #1)",
    );
    check_k2t_none(
        k("Adadelta", json!({"clipnorm": 1.0})),
        "no torch equivalent: clipnorm clips each variable separately and without torch's +1e-6 in clip_grad_norm_ (catalogue #11)",
    );
    check_k2t_none(
        k("SGD", json!({"momentum": 0.9, "weight_decay": 0.1})),
        "no torch equivalent: decoupled weight decay with momentum: torch SGD's weight_decay is coupled and enters the buffer (catalogue #2, #4)",
    );
    check_k2t_none(
        k("Lion", json!({})),
        "no torch equivalent: torch.optim has no Lion (catalogue #62)",
    );
    check_k2t_none(
        k("RMSprop", json!({})),
        "no torch equivalent: Keras RMSprop puts epsilon inside the square root, torch outside (catalogue #6)",
    );
}

#[test]
fn no_equivalent_carries_catalogue_ids() {
    let ids = |cfg: Value| {
        let k = keras::Config::parse(&cfg).unwrap_or_else(|e| panic!("{e}"));
        keras_to_torch(&k).map(|t| t.code).unwrap_err().catalogue
    };
    assert_eq!(ids(k("Adam", json!({}))), vec![Id::AdamEpsilonHat]);
    assert_eq!(
        ids(k("SGD", json!({"momentum": 0.9, "weight_decay": 0.1}))),
        vec![Id::AdamWeightDecayCoupling, Id::SgdMomentumLrInBuffer]
    );
    assert_eq!(ids(k("Lion", json!({}))), vec![Id::NoCounterpartOptimizers]);
}

#[test]
fn torch_to_keras_exact() {
    check_t2k(
        t("Adadelta", json!({})),
        None,
        "keras.optimizers.Adadelta(learning_rate=1.0, rho=0.9, epsilon=1e-06)",
    );
    check_t2k(
        t(
            "NAdam",
            json!({"momentum_decay": 1.0, "eps": 1e-7, "lr": 1e-3}),
        ),
        None,
        "keras.optimizers.Nadam(learning_rate=0.001)",
    );
    check_t2k(
        t(
            "Adagrad",
            json!({"eps": 0.0, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
        ),
        Some(GradClip::Value { clip_value: 0.5 }),
        "keras.optimizers.Adagrad(learning_rate=keras.optimizers.schedules.InverseTimeDecay(0.01, decay_steps=1.0, decay_rate=0.01), epsilon=0.0, clipvalue=0.5)",
    );
    check_t2k(
        t(
            "Adam",
            json!({"eps": 0.0, "weight_decay": 0.1, "decoupled_weight_decay": true}),
        ),
        None,
        "keras.optimizers.AdamW(learning_rate=0.001, epsilon=0.0, weight_decay=0.1)",
    );
    check_t2k(
        t("SGD", json!({"momentum": 0.9, "lr": 0.01})),
        None,
        "keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)",
    );
    check_t2k(
        t(
            "RMSprop",
            json!({"eps": 0.0, "alpha": 0.99, "centered": true}),
        ),
        None,
        "keras.optimizers.RMSprop(learning_rate=0.01, rho=0.99, epsilon=0.0, centered=True)",
    );
}

#[test]
fn torch_to_keras_none() {
    check_t2k_none(
        t("NAdam", json!({})),
        "no keras equivalent: Keras Nadam's momentum schedule is 0.96^t (momentum_decay=1.0), not 0.96^(0.004·t) (catalogue #9)",
    );
    check_t2k_none(
        t("Adam", json!({"eps": 0.0, "weight_decay": 0.1})),
        "no keras equivalent: torch weight_decay here is coupled L2 (g + λθ); Keras weight_decay is decoupled (catalogue #2)",
    );
    check_t2k_none(
        t("RAdam", json!({})),
        "no keras equivalent: Keras has no RAdam (catalogue #62)",
    );
    check_t2k_none(
        t("SGD", json!({"momentum": 0.9, "dampening": 0.1})),
        "no keras equivalent: Keras SGD momentum has no dampening (catalogue #4)",
    );
}

/// The naive name-for-name port is measurably different where the catalogue says so.
#[test]
fn naive_adadelta_port_is_far() {
    let k = keras::Config::parse(&k("Adadelta", json!({}))).unwrap_or_else(|e| panic!("{e}"));
    let t = torch::Config::default_for("Adadelta").unwrap_or_else(|e| panic!("{e}"));
    let d = distance(&run_torch(t, None), &run_keras(k));
    assert!(d >= 1e-3, "{d:.3e}");
}

/// The real frameworks agree on the mapped pairs: Keras's own trajectory and torch's
/// trajectory for `keras_to_torch(keras config)`, same gradients, float32 both.
#[track_caller]
fn check_real_pair(keras_stem: &str, torch_stem: &str) {
    let a = common::load_named(keras_stem);
    let b = common::load_named(torch_stem);
    assert_eq!(
        a.grads, b.grads,
        "{keras_stem} and {torch_stem} must share gradients"
    );
    let k = keras::Config::parse(&a.optimizer).unwrap_or_else(|e| panic!("{e}"));
    let mapped = keras_to_torch(&k).unwrap_or_else(|e| panic!("{e}"));
    let t = torch::Config::parse(&b.optimizer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        mapped.scheduler, b.scheduler,
        "{torch_stem} does not have the mapped scheduler"
    );
    // Keras serializes its float32 learning-rate variable (0.0010000000474974513).
    assert_eq!(
        mapped.config.kind, t.kind,
        "{torch_stem} is not the mapped config"
    );
    assert!(
        (mapped.config.lr - t.lr).abs() <= 1e-7 * t.lr,
        "{torch_stem}: lr {} vs {}",
        mapped.config.lr,
        t.lr
    );
    assert_eq!(mapped.code, optim::equiv::render_torch(&t));
    let c = |v: &Vec<Vec<Vec<f32>>>| -> Vec<Vec<Vec<f64>>> {
        v.iter()
            .map(|s| {
                s.iter()
                    .map(|x| x.iter().map(|&y| f64::from(y)).collect())
                    .collect()
            })
            .collect()
    };
    let d = distance(&c(&b.params), &c(&a.params));
    eprintln!("{keras_stem} vs {torch_stem}: {d:.3e}");
    assert!(d <= 1e-6, "{keras_stem} vs {torch_stem}: {d:.3e}");
}

#[test]
fn real_frameworks_agree_on_mapped_pairs() {
    check_real_pair("keras_adadelta_default", "torch_adadelta_keras_mapped");
    check_real_pair("keras_nadam_default", "torch_nadam_keras_mapped");
    // Adafactor(epsilon_1=0) ↔ Adafactor(eps=(0.0, 1e-3)), with the rank-3 parameter.
    check_real_pair("keras_adafactor_eps0", "torch_adafactor_keras_mapped");
    // ExponentialDecay(staircase=True) per batch ↔ StepLR stepped after every step.
    check_real_pair(
        "keras_sgd_expdecay_staircase",
        "torch_sgd_steplr_keras_mapped",
    );
}

fn sched(class: &str, config: Value, interval: &str, steps_per_epoch: Option<u64>) -> Value {
    json!({"class_name": class, "config": config, "interval": interval, "steps_per_epoch": steps_per_epoch})
}

fn keras_with_schedule(class: &str, config: Value, schedule: &str, sconfig: Value) -> Value {
    let mut c = config;
    c["learning_rate"] = json!({"class_name": schedule, "config": sconfig});
    k(class, c)
}

#[test]
fn adafactor() {
    check_k2t(
        k("Adafactor", json!({"epsilon_1": 0.0})),
        "torch.optim.Adafactor(params, lr=0.001, eps=(0.0, 0.001))",
    );
    check_k2t(
        k(
            "Adafactor",
            json!({"epsilon_1": 0.0, "learning_rate": 0.05, "beta_2_decay": -0.5, "clip_threshold": 2.0, "epsilon_2": 0.01}),
        ),
        "torch.optim.Adafactor(params, lr=0.05, eps=(0.0, 0.01), beta2_decay=-0.5, d=2.0)",
    );
    check_k2t_none(
        k("Adafactor", json!({})),
        "no torch equivalent: Keras Adafactor adds epsilon_1 1e-30 to g² before factoring; torch clamps the factored estimate at eps1 instead (same only with epsilon_1=0) (catalogue #62)",
    );
    check_k2t_none(
        k("Adafactor", json!({"epsilon_1": 0.0, "weight_decay": 0.1})),
        "no torch equivalent: Keras Adafactor scales its step by RMS(θ) after the base optimizer's weight decay, torch by RMS(θ) before its own (catalogue #2, #62)",
    );
    check_t2k(
        t(
            "Adafactor",
            json!({"lr": 0.01, "eps": [0.0, 0.001], "d": 1.5}),
        ),
        None,
        "keras.optimizers.Adafactor(learning_rate=0.01, epsilon_1=0.0, clip_threshold=1.5)",
    );
    check_t2k_none(
        t("Adafactor", json!({})),
        "no keras equivalent: torch Adafactor clamps the factored estimate at eps1 (None: finfo(float32).eps); Keras adds epsilon_1 to g² before factoring (same only with eps1=0) (catalogue #62)",
    );
}

#[test]
fn keras_schedules_to_torch_schedulers() {
    check_k2t(
        keras_with_schedule(
            "SGD",
            json!({}),
            "ExponentialDecay",
            json!({"initial_learning_rate": 0.05, "decay_steps": 10, "decay_rate": 0.5, "staircase": true}),
        ),
        "torch.optim.SGD(params, lr=0.05); torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)  # scheduler.step() after every optimizer.step()",
    );
    check_k2t(
        keras_with_schedule(
            "Adam",
            json!({"epsilon": 0.0}),
            "ExponentialDecay",
            json!({"initial_learning_rate": 0.01, "decay_steps": 1, "decay_rate": 0.95}),
        ),
        "torch.optim.Adam(params, lr=0.01, eps=0.0); torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.95)  # scheduler.step() after every optimizer.step()",
    );
    check_k2t(
        keras_with_schedule(
            "Adam",
            json!({"epsilon": 0.0}),
            "ExponentialDecay",
            json!({"initial_learning_rate": 0.01, "decay_steps": 4, "decay_rate": 0.5}),
        ),
        "torch.optim.Adam(params, lr=0.01, eps=0.0); torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.8408964152537145)  # scheduler.step() after every optimizer.step()",
    );
    check_k2t(
        keras_with_schedule(
            "Adagrad",
            json!({"epsilon": 0.0}),
            "PiecewiseConstantDecay",
            json!({"boundaries": [10, 30], "values": [0.1, 0.05, 0.025]}),
        ),
        "torch.optim.Adagrad(params, lr=0.1, initial_accumulator_value=0.1, eps=0.0); torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[11, 31], gamma=0.5)  # scheduler.step() after every optimizer.step()",
    );
    check_k2t(
        keras_with_schedule(
            "Adadelta",
            json!({}),
            "PolynomialDecay",
            json!({"initial_learning_rate": 0.5, "decay_steps": 20, "end_learning_rate": 0.125}),
        ),
        "torch.optim.Adadelta(params, lr=0.5, rho=0.95, eps=1e-07); torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.25, total_iters=20)  # scheduler.step() after every optimizer.step()",
    );
    check_k2t(
        keras_with_schedule(
            "Adadelta",
            json!({}),
            "PolynomialDecay",
            json!({"initial_learning_rate": 0.01, "decay_steps": 10, "end_learning_rate": 0.04}),
        ),
        "torch.optim.Adadelta(params, lr=0.04, rho=0.95, eps=1e-07); torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.25, end_factor=1.0, total_iters=10)  # scheduler.step() after every optimizer.step()",
    );
    check_k2t(
        keras_with_schedule(
            "Nadam",
            json!({}),
            "CosineDecayRestarts",
            json!({"initial_learning_rate": 0.01, "first_decay_steps": 8, "alpha": 0.5}),
        ),
        "torch.optim.NAdam(params, lr=0.01, eps=1e-07, momentum_decay=1.0); torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=8, T_mult=2, eta_min=0.005)  # scheduler.step() after every optimizer.step()",
    );
    check_k2t_none(
        keras_with_schedule(
            "SGD",
            json!({}),
            "CosineDecay",
            json!({"initial_learning_rate": 0.1, "decay_steps": 40, "alpha": 0.1}),
        ),
        "no torch equivalent: CosineAnnealingLR(T_max=40.0, eta_min=0.1·lr) stepped per batch agrees only for the first 41.0 updates: past T_max it rises again while Keras holds alpha·lr (catalogue #15)",
    );
    check_k2t_none(
        keras_with_schedule(
            "SGD",
            json!({}),
            "InverseTimeDecay",
            json!({"initial_learning_rate": 0.1, "decay_steps": 4, "decay_rate": 0.5}),
        ),
        "no torch equivalent: torch has no inverse-time scheduler; use LambdaLR(lambda s: 1/(1 + rate·s/decay_steps)) stepped after every optimizer.step() (catalogue #14)",
    );
    check_k2t_none(
        keras_with_schedule(
            "SGD",
            json!({"momentum": 0.9}),
            "ExponentialDecay",
            json!({"initial_learning_rate": 0.05, "decay_steps": 10, "decay_rate": 0.5, "staircase": true}),
        ),
        "no torch equivalent: with momentum, Keras folds the learning rate into the buffer and torch applies it outside, which agree only while the learning rate is constant (catalogue #4, #14)",
    );
    check_k2t_none(
        keras_with_schedule(
            "SGD",
            json!({}),
            "PiecewiseConstantDecay",
            json!({"boundaries": [10, 30], "values": [0.1, 0.05, 0.01]}),
        ),
        "no torch equivalent: the values are not a constant ratio apart; MultiStepLR multiplies by one gamma (torch needs a LambdaLR stepped after every optimizer.step()) (catalogue #14)",
    );
    check_k2t_none(
        k("SGD", json!({"gradient_accumulation_steps": 4})),
        "no torch equivalent: gradient_accumulation_steps=4 averages the gradients inside the optimizer and counts schedule steps per micro-batch; torch accumulates in the training loop (catalogue #14)",
    );
}

#[test]
fn torch_schedulers_to_keras_schedules() {
    check_t2k_sched(
        t("SGD", json!({"lr": 0.05})),
        sched(
            "StepLR",
            json!({"step_size": 10, "gamma": 0.5}),
            "step",
            None,
        ),
        "keras.optimizers.SGD(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=10.0, decay_rate=0.5, staircase=True))",
    );
    check_t2k_sched(
        t("SGD", json!({"lr": 0.05})),
        sched(
            "StepLR",
            json!({"step_size": 2, "gamma": 0.5}),
            "epoch",
            Some(6),
        ),
        "keras.optimizers.SGD(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=12.0, decay_rate=0.5, staircase=True))",
    );
    check_t2k_sched(
        t("Adadelta", json!({"lr": 0.5})),
        sched("ExponentialLR", json!({"gamma": 0.9}), "epoch", Some(7)),
        "keras.optimizers.Adadelta(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=7.0, decay_rate=0.9, staircase=True), rho=0.9, epsilon=1e-06)",
    );
    check_t2k_sched(
        t("Adadelta", json!({"lr": 0.5})),
        sched("ExponentialLR", json!({"gamma": 0.9}), "step", None),
        "keras.optimizers.Adadelta(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=1.0, decay_rate=0.9), rho=0.9, epsilon=1e-06)",
    );
    check_t2k_sched(
        t("SGD", json!({"lr": 0.1})),
        sched(
            "MultiStepLR",
            json!({"milestones": [3, 5, 5], "gamma": 0.5}),
            "epoch",
            Some(4),
        ),
        "keras.optimizers.SGD(learning_rate=keras.optimizers.schedules.PiecewiseConstantDecay(boundaries=[11, 19], values=[0.1, 0.05, 0.0125]))",
    );
    check_t2k_sched(
        t(
            "NAdam",
            json!({"lr": 0.01, "eps": 1e-7, "momentum_decay": 1.0}),
        ),
        sched(
            "LinearLR",
            json!({"start_factor": 0.25, "total_iters": 12}),
            "step",
            None,
        ),
        "keras.optimizers.Nadam(learning_rate=keras.optimizers.schedules.PolynomialDecay(0.0025, decay_steps=12.0, end_learning_rate=0.01))",
    );
    check_t2k_sched(
        t("Adafactor", json!({"lr": 0.01, "eps": [0.0, 0.001]})),
        sched(
            "CosineAnnealingWarmRestarts",
            json!({"T_0": 5, "T_mult": 2, "eta_min": 0.0025}),
            "step",
            None,
        ),
        "keras.optimizers.Adafactor(learning_rate=keras.optimizers.schedules.CosineDecayRestarts(0.01, first_decay_steps=5.0, alpha=0.25), epsilon_1=0.0)",
    );
    check_t2k_sched_none(
        t("Adam", json!({"eps": 0.0})),
        sched("CosineAnnealingLR", json!({"T_max": 10}), "step", None),
        "no keras equivalent: CosineAnnealingLR is periodic past T_max=10.0 and Keras CosineDecay holds its floor (catalogue #15)",
    );
    check_t2k_sched_none(
        t("Adam", json!({"eps": 0.0})),
        sched("LinearLR", json!({}), "epoch", Some(3)),
        "no keras equivalent: LinearLR stepped once per epoch is a staircase in batches; Keras's schedule of that name is continuous (catalogue #14)",
    );
    check_t2k_sched_none(
        t("Adam", json!({"eps": 0.0})),
        sched("StepLR", json!({"step_size": 3}), "epoch", None),
        "no keras equivalent: the scheduler steps once per epoch; without steps_per_epoch there is no per-batch Keras schedule (catalogue #14)",
    );
    check_t2k_sched_none(
        t("SGD", json!({"lr": 0.1, "momentum": 0.9})),
        sched(
            "OneCycleLR",
            json!({"max_lr": 0.1, "total_steps": 60}),
            "step",
            None,
        ),
        "no keras equivalent: Keras has no one-cycle schedule and does not cycle momentum (catalogue #14)",
    );
    check_t2k_sched_none(
        t("SGD", json!({"lr": 0.1, "momentum": 0.9})),
        sched("StepLR", json!({"step_size": 3}), "step", None),
        "no keras equivalent: with momentum, Keras folds the learning rate into the buffer and torch applies it outside, which agree only while the learning rate is constant (catalogue #4, #14)",
    );
}

/// `exclude_from_weight_decay` maps to a torch parameter group with `weight_decay=0`, with the
/// patterns matched against the names the Keras backend uses.
#[test]
fn exclusion_maps_to_a_no_decay_group() {
    let mut k = keras::Config::parse(&k(
        "AdamW",
        json!({"epsilon": 0.0, "weight_decay": 0.1, "learning_rate": 0.01}),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    k.exclude_from_weight_decay = Some(keras::Exclusion {
        var_names: vec!["^b(:0)?$".into()],
        var_list: vec![],
    });
    check_k2t_config(
        k.clone(),
        "torch.optim.AdamW(params, lr=0.01, eps=0.0, weight_decay=0.1)  # with the parameters exclude_from_weight_decay(var_names=[\"^b(:0)?$\"]) matches in a group with weight_decay=0.0",
    );
    let names = vec!["w".to_string(), "b".to_string()];
    let t = keras_to_torch(&k).unwrap_or_else(|e| panic!("{e}"));
    let groups = |backend| {
        torch_groups_for_exclusion(
            &t.config,
            &k.exclude_from_weight_decay.clone().unwrap_or_default(),
            backend,
            &names,
        )
        .into_iter()
        .map(|(c, m)| (c.weight_decay, m))
        .collect::<Vec<_>>()
    };
    assert_eq!(
        groups(keras::Backend::TensorFlow),
        vec![(0.1, vec![0]), (0.0, vec![1])]
    );
    // "^b$" finds nothing in TensorFlow's "b:0", but matches "b" on jax and torch.
    let short = keras::Exclusion {
        var_names: vec!["^b$".into()],
        var_list: vec![],
    };
    assert!(!short.excludes("b", keras::Backend::TensorFlow));
    assert!(short.excludes("b", keras::Backend::Jax));
    assert!(short.excludes("dense/b", keras::Backend::Torch));
    assert!(!short.excludes("dense/b", keras::Backend::TensorFlow));
}
