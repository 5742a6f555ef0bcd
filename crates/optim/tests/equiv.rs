//! Equivalence mapping: rendered code, catalogue reasons, and numerical agreement of each
//! exact mapping on the committed gradient sequence (f64, ≤ 1e-6 normalized).

mod common;

use optim::equiv::{keras_to_torch, torch_to_keras};
use optim::keras;
use optim::torch::{self, GradClip};
use serde_json::{Value, json};

fn grads() -> (Vec<Vec<f64>>, Vec<Vec<Vec<f64>>>) {
    let t = common::load_named("keras_adam_default");
    let c = |v: &Vec<Vec<f32>>| {
        v.iter()
            .map(|x| x.iter().map(|&y| f64::from(y)).collect())
            .collect::<Vec<Vec<f64>>>()
    };
    (c(&t.init), t.grads.iter().map(c).collect())
}

fn run_keras(cfg: keras::Config) -> Vec<Vec<Vec<f64>>> {
    let (mut p, gs) = grads();
    let mut o = keras::Optimizer::<f64>::new(cfg, &p.iter().map(Vec::len).collect::<Vec<_>>());
    gs.into_iter()
        .map(|mut g| {
            o.apply(&mut g, &mut p);
            p.clone()
        })
        .collect()
}

fn run_torch(cfg: torch::Config, clip: Option<GradClip>) -> Vec<Vec<Vec<f64>>> {
    let (mut p, gs) = grads();
    let mut o = torch::Optimizer::<f64>::new(cfg, &p.iter().map(Vec::len).collect::<Vec<_>>());
    gs.into_iter()
        .map(|mut g| {
            if let Some(c) = &clip {
                torch::apply_grad_clip(c, &mut g);
            }
            o.step(&mut g, &mut p);
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
    let t = keras_to_torch(&k).unwrap_or_else(|e| panic!("{e}"));
    let full = match &t.clip_code {
        Some(c) => format!("{}; {c}", t.code),
        None => t.code.clone(),
    };
    assert_eq!(full, code);
    let d = distance(&run_torch(t.config, t.grad_clip), &run_keras(k));
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
}
