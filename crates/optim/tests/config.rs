//! Parsing the frameworks' own optimizer serializations: defaults for missing fields, one-line
//! errors for unknown fields, unsupported classes and malformed values; schedule values.

use optim::keras::{self, Kind as K, LearningRate, Schedule};
use optim::torch::{self, Kind as T};
use serde_json::json;

/// Parse a Keras config and compare with the expected value or error message.
#[track_caller]
fn check_keras(input: serde_json::Value, expected: Result<keras::Config, &str>) {
    let got = keras::Config::parse(&input).map_err(|e| e.to_string());
    match (got, expected) {
        (Ok(g), Ok(e)) => assert_eq!(g, e),
        (Err(g), Err(e)) => {
            assert_eq!(g, e);
            assert!(!g.contains('\n'), "multi-line error: {g}");
        }
        (g, e) => panic!("got {g:?}, expected {e:?}"),
    }
}

#[track_caller]
fn check_torch(input: serde_json::Value, expected: Result<torch::Config, &str>) {
    let got = torch::Config::parse(&input).map_err(|e| e.to_string());
    match (got, expected) {
        (Ok(g), Ok(e)) => assert_eq!(g, e),
        (Err(g), Err(e)) => assert_eq!(g, e),
        (g, e) => panic!("got {g:?}, expected {e:?}"),
    }
}

fn keras_base(kind: K, lr: f64) -> keras::Config {
    keras::Config {
        kind,
        learning_rate: LearningRate::Constant(lr),
        weight_decay: None,
        clipnorm: None,
        global_clipnorm: None,
        clipvalue: None,
        use_ema: false,
        ema_momentum: 0.99,
        ema_overwrite_frequency: None,
        loss_scale_factor: None,
        gradient_accumulation_steps: None,
        exclude_from_weight_decay: None,
        backend: keras::Backend::TensorFlow,
    }
}

#[test]
fn keras_missing_fields_take_keras_defaults() {
    check_keras(
        json!({"class_name": "Adadelta", "config": {}}),
        Ok(keras_base(
            K::Adadelta {
                rho: 0.95,
                epsilon: 1e-7,
            },
            1e-3,
        )),
    );
    check_keras(
        json!({"class_name": "SGD", "config": {"name": "SGD"}}),
        Ok(keras_base(
            K::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
            0.01,
        )),
    );
    check_keras(
        json!({"class_name": "Adagrad", "config": {"learning_rate": 0.5, "clipnorm": null}}),
        Ok(keras_base(
            K::Adagrad {
                initial_accumulator_value: 0.1,
                epsilon: 1e-7,
            },
            0.5,
        )),
    );
    let mut adamw = keras_base(
        K::AdamW {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
        },
        1e-3,
    );
    adamw.weight_decay = Some(0.004);
    check_keras(
        json!({"module": "keras.optimizers", "class_name": "AdamW", "config": {}, "registered_name": null}),
        Ok(adamw),
    );
}

#[test]
fn keras_serialized_schedule() {
    let mut want = keras_base(
        K::Lion {
            beta_1: 0.9,
            beta_2: 0.99,
        },
        0.0,
    );
    want.learning_rate = LearningRate::Schedule(Schedule::ExponentialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10.0,
        decay_rate: 0.5,
        staircase: false,
    });
    check_keras(
        json!({"class_name": "Lion", "config": {"learning_rate": {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
            "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5, "name": "ExponentialDecay"}, "registered_name": null}}}),
        Ok(want),
    );
}

#[test]
fn keras_errors() {
    check_keras(
        json!({"class_name": "Adam", "config": {"beta1": 0.9}}),
        Err("keras Adam: unknown field `beta1`"),
    );
    check_keras(
        json!({"class_name": "Ftrl", "config": {}}),
        Err(
            "keras optimizer class `Ftrl` is not supported (supported: SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion, Adafactor)",
        ),
    );
    check_keras(
        json!({"class_name": "Adam", "config": {"amsgrad": 1}}),
        Err("keras Adam: field `amsgrad` must be a boolean, got 1"),
    );
    check_keras(
        json!({"config": {}}),
        Err("keras optimizer: expected a JSON object with `class_name` and `config`"),
    );
    check_keras(
        json!({"class_name": "SGD", "config": {"gradient_accumulation_steps": 1}}),
        Err("keras SGD: field `gradient_accumulation_steps` must be an integer >= 2, got 1"),
    );
    check_keras(
        json!({"class_name": "SGD", "config": {"learning_rate": {"class_name": "OneCycle", "config": {}}}}),
        Err(
            "keras optimizer class `OneCycle` is not supported (supported: ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay, CosineDecay, CosineDecayRestarts)",
        ),
    );
    check_keras(
        json!({"class_name": "SGD", "config": {"learning_rate": {"class_name": "ExponentialDecay", "config": {"decay_steps": 1, "decay_rate": 0.5}}}}),
        Err(
            "keras ExponentialDecay: field `initial_learning_rate` must be a number (required), got nothing",
        ),
    );
    check_keras(
        json!({"class_name": "SGD", "config": {"clipnorm": 1.0, "clipvalue": 1.0}}),
        Err(
            "keras SGD: `clipnorm` = [1.0,null,1.0] is not emulated (Keras allows only one of clipnorm, global_clipnorm and clipvalue)",
        ),
    );
}

#[test]
fn torch_defaults_and_errors() {
    check_torch(
        json!({"class_name": "NAdam", "defaults": {}}),
        Ok(torch::Config {
            kind: T::NAdam {
                betas: (0.9, 0.999),
                eps: 1e-8,
                momentum_decay: 4e-3,
                decoupled_weight_decay: false,
            },
            lr: 2e-3,
            weight_decay: 0.0,
            maximize: false,
        }),
    );
    check_torch(
        json!({"class_name": "AdamW", "defaults": {"foreach": null, "fused": null, "capturable": false}}),
        Ok(torch::Config {
            kind: T::AdamW {
                betas: (0.9, 0.999),
                eps: 1e-8,
                amsgrad: false,
            },
            lr: 1e-3,
            weight_decay: 1e-2,
            maximize: false,
        }),
    );
    check_torch(
        json!({"class_name": "Adagrad", "defaults": {}}),
        Ok(torch::Config {
            kind: T::Adagrad {
                lr_decay: 0.0,
                initial_accumulator_value: 0.0,
                eps: 1e-10,
            },
            lr: 1e-2,
            weight_decay: 0.0,
            maximize: false,
        }),
    );
    check_torch(
        json!({"class_name": "Adam", "defaults": {"betas": [0.9]}}),
        Err("torch Adam: field `betas` must be a list of two numbers, got [0.9]"),
    );
    check_torch(
        json!({"class_name": "Adam", "defaults": {"lr": 0.1, "momentum": 0.9}}),
        Err("torch Adam: unknown field `momentum`"),
    );
    check_torch(
        json!({"class_name": "LBFGS", "defaults": {}}),
        Err(
            "torch optimizer class `LBFGS` is not supported (supported: SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam, Adafactor)",
        ),
    );
    check_torch(
        json!({"class_name": "Adam", "defaults": {"fused": true}}),
        Err("torch Adam: `fused` = true is not emulated (the fused kernel is not emulated)"),
    );
}

#[test]
fn torch_grad_clip() {
    let inf = torch::parse_grad_clip(&json!({"max_norm": 1.0, "norm_type": "inf"}));
    assert!(matches!(inf, Ok(torch::GradClip::Norm { norm_type, .. }) if norm_type.is_infinite()));
    assert_eq!(
        torch::parse_grad_clip(&json!({"max_norm": 1.0, "clip": 2})).map_err(|e| e.to_string()),
        Err("torch grad_clip: unknown field `clip`".to_string())
    );
}

/// Schedule value at a step, compared to a hand-computed float64 value.
#[track_caller]
fn check_schedule(s: &Schedule, step: u64, expected: f64) {
    let got: f64 = s.value(step);
    assert!(
        (got - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "step {step}: {got} vs {expected}"
    );
}

#[test]
fn schedules() {
    let pw = Schedule::PiecewiseConstantDecay {
        boundaries: vec![20.0, 40.0],
        values: vec![0.05, 0.01, 0.002],
    };
    check_schedule(&pw, 20, 0.05);
    check_schedule(&pw, 21, 0.01);
    check_schedule(&pw, 41, 0.002);
    let cos = Schedule::CosineDecay {
        initial_learning_rate: 1.0,
        decay_steps: 10.0,
        alpha: 0.1,
        warmup_target: None,
        warmup_steps: 0.0,
    };
    check_schedule(&cos, 5, 0.55);
    // Clamped after decay_steps (catalogue 15), not periodic like CosineAnnealingLR.
    check_schedule(&cos, 13, 0.1);
    let warm = Schedule::CosineDecay {
        initial_learning_rate: 0.0,
        decay_steps: 10.0,
        alpha: 0.0,
        warmup_target: Some(1.0),
        warmup_steps: 4.0,
    };
    check_schedule(&warm, 2, 0.5);
    check_schedule(&warm, 4, 1.0);
    let exp = Schedule::ExponentialDecay {
        initial_learning_rate: 0.1,
        decay_steps: 10.0,
        decay_rate: 0.5,
        staircase: true,
    };
    check_schedule(&exp, 19, 0.05);
    let inv = Schedule::InverseTimeDecay {
        initial_learning_rate: 1.0,
        decay_steps: 2.0,
        decay_rate: 0.5,
        staircase: false,
    };
    check_schedule(&inv, 4, 0.5);
    let poly = Schedule::PolynomialDecay {
        initial_learning_rate: 1.0,
        decay_steps: 10.0,
        end_learning_rate: 0.0,
        power: 2.0,
        cycle: false,
    };
    check_schedule(&poly, 5, 0.25);
    check_schedule(&poly, 50, 0.0);
    let sgdr = Schedule::CosineDecayRestarts {
        initial_learning_rate: 1.0,
        first_decay_steps: 4.0,
        t_mul: 2.0,
        m_mul: 0.5,
        alpha: 0.0,
    };
    check_schedule(&sgdr, 4, 0.5); // restart 1 begins at step 4 with peak 0.5
    check_schedule(&sgdr, 8, 0.25); // halfway through the 8-step second period
}

#[test]
fn adafactor_defaults() {
    let mut want = keras_base(
        K::Adafactor {
            beta_2_decay: -0.8,
            epsilon_1: 1e-30,
            epsilon_2: 1e-3,
            clip_threshold: 1.0,
            relative_step: true,
        },
        1e-3,
    );
    check_keras(
        json!({"class_name": "Adafactor", "config": {"gradient_accumulation_steps": null}}),
        Ok(want.clone()),
    );
    want.gradient_accumulation_steps = Some(3);
    check_keras(
        json!({"class_name": "Adafactor", "config": {"gradient_accumulation_steps": 3}}),
        Ok(want),
    );
    check_torch(
        json!({"class_name": "Adafactor", "defaults": {"lr": 0.01, "beta2_decay": -0.8, "eps": [null, 0.001], "d": 1.0, "weight_decay": 0.0, "foreach": false, "maximize": false}}),
        Ok(torch::Config {
            kind: T::Adafactor {
                beta2_decay: -0.8,
                eps: (None, 1e-3),
                d: 1.0,
            },
            lr: 1e-2,
            weight_decay: 0.0,
            maximize: false,
        }),
    );
    check_torch(
        json!({"class_name": "Adafactor", "defaults": {"eps": [1e-3]}}),
        Err("torch Adafactor: field `eps` must be a list [eps1 or null, eps2], got [0.001]"),
    );
}

#[test]
fn exclusion_parse() {
    let parse = |v: serde_json::Value| keras::Exclusion::parse(&v).map_err(|e| e.to_string());
    assert_eq!(
        parse(json!({"var_names": ["bias", "norm"], "var_list": ["dense/kernel"]})),
        Ok(keras::Exclusion {
            var_names: vec!["bias".into(), "norm".into()],
            var_list: vec!["dense/kernel".into()],
        })
    );
    assert_eq!(
        parse(json!({"var_name": ["bias"]})),
        Err("keras exclude_from_weight_decay: unknown field `var_name`".to_string())
    );
    assert_eq!(
        parse(json!({"var_names": "bias"})),
        Err("keras exclude_from_weight_decay: field `var_names` must be a list of strings, got \"bias\"".to_string())
    );
}
