//! The typed training conventions: the Keras backend and the losses of both frameworks.
// Arguments are carried through unchanged, so they compare exactly.
#![allow(clippy::float_cmp)]

use model_ir::{
    Framework, KerasBackend, KerasLoss, KerasReduction, LossError, LossFamily, LossSpec, TorchLoss,
    TorchReduction, TrainingConfig, TypedLoss,
};
use serde_json::{Value, json};

fn keras(name: &str, config: Value) -> Result<KerasLoss, LossError> {
    KerasLoss::parse(name, &config)
}

fn torch(name: &str, config: Value) -> Result<TorchLoss, LossError> {
    TorchLoss::parse(name, &config)
}

#[track_caller]
fn keras_err(name: &str, config: Value, message: &str) {
    assert_eq!(keras(name, config).unwrap_err().to_string(), message);
}

#[track_caller]
fn torch_err(name: &str, config: Value, message: &str) {
    assert_eq!(torch(name, config).unwrap_err().to_string(), message);
}

#[test]
fn backend_names_round_trip() {
    for (b, name) in [
        (KerasBackend::TensorFlow, "tensorflow"),
        (KerasBackend::Jax, "jax"),
        (KerasBackend::Torch, "torch"),
        (KerasBackend::Numpy, "numpy"),
    ] {
        assert_eq!(b.name(), name);
        assert_eq!(b.to_string(), name);
        assert_eq!(KerasBackend::parse(name), Some(b));
        assert_eq!(serde_json::to_value(b).unwrap(), json!(name));
    }
    assert_eq!(KerasBackend::parse("TensorFlow"), None);
    assert_eq!(KerasBackend::parse("mlx"), None);
    assert_eq!(KerasBackend::default(), KerasBackend::TensorFlow);
    let keras = TrainingConfig::defaults(Framework::Keras);
    assert_eq!(keras.backend, Some(KerasBackend::TensorFlow));
    assert_eq!(
        serde_json::to_value(&keras).unwrap()["backend"],
        json!("tensorflow")
    );
    let torch = TrainingConfig::defaults(Framework::Torch);
    assert_eq!(
        serde_json::to_value(&torch).unwrap()["backend"],
        Value::Null
    );
}

#[test]
fn a_loss_spec_serializes_as_the_bundle_has_it() {
    let spec = LossSpec::new(
        Framework::Keras,
        "CategoricalCrossentropy".into(),
        json!({"from_logits": true}),
    );
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({"class_name": "CategoricalCrossentropy", "config": {"from_logits": true}})
    );
    assert_eq!(spec.typed.framework(), Framework::Keras);
    assert_eq!(spec.typed.error(), None);
    let bad = LossSpec::new(Framework::Torch, "CTCLoss".into(), json!({}));
    assert_eq!(
        bad.typed.error().map(ToString::to_string).as_deref(),
        Some("`CTCLoss`: the torch loss `CTCLoss` is not implemented")
    );
}

#[test]
fn keras_crossentropies_carry_their_arguments() {
    let cfg = json!({"from_logits": true, "label_smoothing": 0.2, "axis": 1,
        "reduction": "sum"});
    for name in ["categorical_crossentropy", "CategoricalCrossentropy"] {
        let l = keras(name, cfg.clone()).unwrap();
        assert_eq!(
            l,
            KerasLoss::CategoricalCrossentropy {
                from_logits: true,
                label_smoothing: 0.2,
                axis: 1,
                reduction: KerasReduction::Sum,
            }
        );
        assert!(l.from_logits());
        assert_eq!(l.label_smoothing(), 0.2);
        assert_eq!(l.reduction(), KerasReduction::Sum);
        assert_eq!(l.family(), LossFamily::CrossEntropy);
    }
    assert_eq!(
        keras("categorical_crossentropy", json!({})).unwrap(),
        KerasLoss::CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
            axis: -1,
            reduction: KerasReduction::SumOverBatchSize,
        }
    );
    for name in [
        "sparse_categorical_crossentropy",
        "SparseCategoricalCrossentropy",
    ] {
        let l = keras(
            name,
            json!({"from_logits": true, "ignore_class": 3, "axis": -1,
                "reduction": "mean_with_sample_weight"}),
        )
        .unwrap();
        assert_eq!(
            l,
            KerasLoss::SparseCategoricalCrossentropy {
                from_logits: true,
                ignore_class: Some(3),
                reduction: KerasReduction::MeanWithSampleWeight,
            }
        );
        assert_eq!(l.family(), LossFamily::CrossEntropy);
        assert!(l.from_logits());
    }
    for name in ["binary_crossentropy", "BinaryCrossentropy"] {
        let l = keras(
            name,
            json!({"from_logits": true, "label_smoothing": 0.1, "reduction": "none"}),
        )
        .unwrap();
        assert_eq!(
            l,
            KerasLoss::BinaryCrossentropy {
                from_logits: true,
                label_smoothing: 0.1,
                reduction: KerasReduction::None,
            }
        );
        assert_eq!(l.family(), LossFamily::Binary);
    }
}

#[test]
fn keras_regression_losses_carry_their_arguments() {
    let sum = json!({"reduction": "sum"});
    for name in ["mean_squared_error", "mse", "MSE", "MeanSquaredError"] {
        let l = keras(name, sum.clone()).unwrap();
        assert_eq!(
            l,
            KerasLoss::MeanSquaredError {
                reduction: KerasReduction::Sum
            }
        );
        assert_eq!(l.family(), LossFamily::Mse);
        assert!(!l.from_logits());
    }
    for name in ["mean_absolute_error", "mae", "MAE", "MeanAbsoluteError"] {
        let l = keras(name, sum.clone()).unwrap();
        assert_eq!(
            l,
            KerasLoss::MeanAbsoluteError {
                reduction: KerasReduction::Sum
            }
        );
        assert_eq!(l.family(), LossFamily::Mae);
    }
    for name in ["huber", "Huber"] {
        let l = keras(name, json!({"delta": 2.5, "reduction": null})).unwrap();
        assert_eq!(
            l,
            KerasLoss::Huber {
                delta: 2.5,
                reduction: KerasReduction::None
            }
        );
        assert_eq!(l.family(), LossFamily::Huber);
    }
    assert_eq!(
        keras("huber", json!({})).unwrap(),
        KerasLoss::Huber {
            delta: 1.0,
            reduction: KerasReduction::SumOverBatchSize
        }
    );
    for name in ["kl_divergence", "kld", "KLD", "KLDivergence"] {
        let l = keras(name, json!({"reduction": "auto"})).unwrap();
        assert_eq!(
            l,
            KerasLoss::KlDivergence {
                reduction: KerasReduction::SumOverBatchSize
            }
        );
        assert_eq!(l.family(), LossFamily::Kld);
    }
    // A config that is not an object reads as no arguments.
    assert_eq!(
        keras("mse", json!("whatever")).unwrap(),
        KerasLoss::MeanSquaredError {
            reduction: KerasReduction::SumOverBatchSize
        }
    );
}

#[test]
fn keras_losses_that_cannot_be_typed() {
    keras_err(
        "poisson",
        json!({}),
        "`poisson`: the Keras loss `poisson` is not implemented",
    );
    keras_err(
        "per_output",
        json!({"losses": ["mse", "mae"], "loss_weights": null}),
        "`per_output`: the Keras loss `per_output` is not implemented",
    );
    // The reduction is read before the class.
    keras_err(
        "poisson",
        json!({"reduction": "avg"}),
        "`poisson`: reduction \"avg\"",
    );
    keras_err("mse", json!({"reduction": 3}), "`mse`: reduction 3");
    keras_err(
        "categorical_crossentropy",
        json!({"from_logits": "yes", "label_smoothing": "a"}),
        "`categorical_crossentropy`: `from_logits` is not a boolean",
    );
    keras_err(
        "CategoricalCrossentropy",
        json!({"label_smoothing": "a"}),
        "`CategoricalCrossentropy`: `label_smoothing` is not a number",
    );
    keras_err(
        "CategoricalCrossentropy",
        json!({"axis": 1.5}),
        "`CategoricalCrossentropy`: `axis` is not an integer",
    );
    keras_err(
        "sparse_categorical_crossentropy",
        json!({"axis": 1, "from_logits": "yes"}),
        "`sparse_categorical_crossentropy`: only axis=-1 is supported",
    );
    keras_err(
        "BinaryCrossentropy",
        json!({"axis": 0}),
        "`BinaryCrossentropy`: only axis=-1 is supported",
    );
    keras_err(
        "SparseCategoricalCrossentropy",
        json!({"ignore_class": "x"}),
        "`SparseCategoricalCrossentropy`: `ignore_class` is not an integer",
    );
}

#[test]
fn torch_losses_carry_their_arguments() {
    let ce = torch(
        "CrossEntropyLoss",
        json!({"weight": [1.0, 2.0], "ignore_index": 4, "label_smoothing": 0.1,
            "reduction": "sum"}),
    )
    .unwrap();
    assert_eq!(
        ce,
        TorchLoss::CrossEntropy {
            weight: Some(vec![1.0, 2.0]),
            ignore_index: 4,
            label_smoothing: 0.1,
            reduction: TorchReduction::Sum,
        }
    );
    assert!(ce.takes_logits());
    assert_eq!(ce.weight(), Some(&[1.0, 2.0][..]));
    assert_eq!(ce.label_smoothing(), 0.1);
    assert_eq!(ce.family(), LossFamily::CrossEntropy);
    assert_eq!(
        torch("CrossEntropyLoss", json!({})).unwrap(),
        TorchLoss::CrossEntropy {
            weight: None,
            ignore_index: -100,
            label_smoothing: 0.0,
            reduction: TorchReduction::Mean,
        }
    );
    let nll = torch(
        "NLLLoss",
        json!({"weight": 2.0, "ignore_index": 0, "reduction": "none"}),
    )
    .unwrap();
    assert_eq!(
        nll,
        TorchLoss::Nll {
            weight: Some(vec![2.0]),
            ignore_index: 0,
            reduction: TorchReduction::None,
        }
    );
    assert!(!nll.takes_logits());
    assert_eq!(nll.family(), LossFamily::CrossEntropy);
    let bce = torch("BCELoss", json!({"weight": [0.5], "reduction": "sum"})).unwrap();
    assert_eq!(
        bce,
        TorchLoss::Bce {
            weight: Some(vec![0.5]),
            reduction: TorchReduction::Sum,
        }
    );
    assert!(!bce.takes_logits());
    assert_eq!(bce.family(), LossFamily::Binary);
    let bcel = torch(
        "BCEWithLogitsLoss",
        json!({"weight": [1.0, 3.0], "pos_weight": [2.0, 4.0]}),
    )
    .unwrap();
    assert_eq!(
        bcel,
        TorchLoss::BceWithLogits {
            weight: Some(vec![1.0, 3.0]),
            pos_weight: Some(vec![2.0, 4.0]),
            reduction: TorchReduction::Mean,
        }
    );
    assert!(bcel.takes_logits());
    assert_eq!(bcel.pos_weight(), Some(&[2.0, 4.0][..]));
    assert_eq!(bcel.family(), LossFamily::Binary);
    let sum = json!({"reduction": "sum"});
    assert_eq!(
        torch("MSELoss", sum.clone()).unwrap(),
        TorchLoss::Mse {
            reduction: TorchReduction::Sum
        }
    );
    assert_eq!(
        torch("L1Loss", sum.clone()).unwrap(),
        TorchLoss::L1 {
            reduction: TorchReduction::Sum
        }
    );
    assert_eq!(
        torch("HuberLoss", json!({"delta": 0.5, "reduction": "sum"})).unwrap(),
        TorchLoss::Huber {
            delta: 0.5,
            reduction: TorchReduction::Sum
        }
    );
    assert_eq!(
        torch("SmoothL1Loss", json!({"beta": 0.25})).unwrap(),
        TorchLoss::SmoothL1 {
            beta: 0.25,
            reduction: TorchReduction::Mean
        }
    );
    let kl = torch(
        "KLDivLoss",
        json!({"log_target": true, "reduction": "batchmean"}),
    )
    .unwrap();
    assert_eq!(
        kl,
        TorchLoss::KlDiv {
            log_target: true,
            reduction: TorchReduction::BatchMean
        }
    );
    assert_eq!(kl.reduction(), TorchReduction::BatchMean);
    assert_eq!(kl.family(), LossFamily::Kld);
    // A reduction that is not a string reads as the default.
    assert_eq!(
        torch("MSELoss", json!({"reduction": 1}))
            .unwrap()
            .reduction(),
        TorchReduction::Mean
    );
}

#[test]
fn torch_losses_that_cannot_be_typed() {
    torch_err(
        "CTCLoss",
        json!({}),
        "`CTCLoss`: the torch loss `CTCLoss` is not implemented",
    );
    torch_err(
        "MSELoss",
        json!({"size_average": true, "reduction": "avg"}),
        "`MSELoss`: the legacy size_average/reduce arguments",
    );
    torch_err(
        "L1Loss",
        json!({"reduce": false}),
        "`L1Loss`: the legacy size_average/reduce arguments",
    );
    torch_err(
        "PoissonNLLLoss",
        json!({"reduction": "avg"}),
        "`PoissonNLLLoss`: reduction `avg`",
    );
    torch_err(
        "CrossEntropyLoss",
        json!({"weight": [1, "a"], "ignore_index": "x"}),
        "`CrossEntropyLoss`: `weight` holds a non-number",
    );
    torch_err(
        "BCELoss",
        json!({"weight": "a"}),
        "`BCELoss`: `weight` is not a list of numbers",
    );
    torch_err(
        "NLLLoss",
        json!({"ignore_index": 1.5}),
        "`NLLLoss`: `ignore_index` is not an integer",
    );
    torch_err(
        "BCEWithLogitsLoss",
        json!({"pos_weight": {}}),
        "`BCEWithLogitsLoss`: `pos_weight` is not a list of numbers",
    );
    torch_err(
        "KLDivLoss",
        json!({"log_target": 1}),
        "`KLDivLoss`: `log_target` is not a boolean",
    );
    torch_err(
        "SmoothL1Loss",
        json!({"beta": "1"}),
        "`SmoothL1Loss`: `beta` is not a number",
    );
}

#[test]
fn the_family_of_a_typed_loss_is_the_family_of_its_name() {
    let keras_names = [
        "categorical_crossentropy",
        "CategoricalCrossentropy",
        "sparse_categorical_crossentropy",
        "SparseCategoricalCrossentropy",
        "binary_crossentropy",
        "BinaryCrossentropy",
        "mean_squared_error",
        "mse",
        "MSE",
        "MeanSquaredError",
        "mean_absolute_error",
        "mae",
        "MAE",
        "MeanAbsoluteError",
        "huber",
        "Huber",
        "kl_divergence",
        "kld",
        "KLD",
        "KLDivergence",
    ];
    for name in keras_names {
        let spec = LossSpec::new(Framework::Keras, name.into(), json!({}));
        let TypedLoss::Keras(Ok(l)) = &spec.typed else {
            panic!("{name} is not typed");
        };
        assert_eq!(l.family(), LossFamily::of_keras_name(name), "{name}");
        assert_eq!(spec.family(), l.family());
    }
    let torch_names = [
        "CrossEntropyLoss",
        "NLLLoss",
        "BCELoss",
        "BCEWithLogitsLoss",
        "MSELoss",
        "L1Loss",
        "HuberLoss",
        "SmoothL1Loss",
        "KLDivLoss",
    ];
    for name in torch_names {
        let spec = LossSpec::new(Framework::Torch, name.into(), json!({}));
        let TypedLoss::Torch(Ok(l)) = &spec.typed else {
            panic!("{name} is not typed");
        };
        assert_eq!(l.family(), LossFamily::of_torch_name(name), "{name}");
        assert_eq!(spec.family(), l.family());
    }
    // Untyped losses still have a family by name.
    for (name, family) in [
        ("Poisson", LossFamily::Poisson),
        ("categoricalcrossentropy", LossFamily::CrossEntropy),
        ("kullback_leibler_divergence", LossFamily::Kld),
        ("squared_hinge", LossFamily::Hinge),
        ("cosine_similarity", LossFamily::Cosine),
        ("huber_loss", LossFamily::Huber),
        ("log_cosh", LossFamily::Other),
    ] {
        let spec = LossSpec::new(Framework::Keras, name.into(), json!({}));
        assert!(spec.typed.error().is_some(), "{name}");
        assert_eq!(spec.family(), family, "{name}");
    }
    let bad_args = LossSpec::new(
        Framework::Torch,
        "CrossEntropyLoss".into(),
        json!({"weight": "a"}),
    );
    assert!(bad_args.typed.error().is_some());
    assert_eq!(bad_args.family(), LossFamily::CrossEntropy);
    for (name, family) in [
        ("PoissonNLLLoss", LossFamily::Poisson),
        ("CosineEmbeddingLoss", LossFamily::Cosine),
        ("MultiMarginLoss", LossFamily::Hinge),
        ("CTCLoss", LossFamily::Other),
    ] {
        let spec = LossSpec::new(Framework::Torch, name.into(), json!({}));
        assert_eq!(spec.family(), family, "{name}");
    }
}
