//! The epsilon facts on the optimizer kinds (`keras::Kind::epsilon_mut`,
//! `torch::Kind::eps_mut`, the Adafactor ε₁ accessors) and `torch::Config::normalize_adamw`.

use optim::{keras, torch};

const PLACED_DIFFERENTLY: [&str; 5] = ["Adam", "AdamW", "RMSprop", "Adagrad", "Adamax"];

#[test]
fn keras_epsilons_by_class() {
    for class in keras::SUPPORTED.split(", ") {
        let mut c = keras::Config::default_for(class).unwrap();
        let want = PLACED_DIFFERENTLY.contains(&class);
        assert_eq!(c.kind.epsilon_mut().is_some(), want, "{class}");
        assert_eq!(
            c.kind.epsilon_1_mut().is_some(),
            class == "Adafactor",
            "{class}"
        );
    }
    let mut c = keras::Config::default_for("RMSprop").unwrap();
    *c.kind.epsilon_mut().unwrap() = 0.5;
    assert!(
        matches!(c.kind, keras::Kind::RmsProp { epsilon, .. } if epsilon.to_bits() == 0.5f64.to_bits())
    );
    let mut c = keras::Config::default_for("Adafactor").unwrap();
    *c.kind.epsilon_1_mut().unwrap() = 0.0;
    assert!(
        matches!(c.kind, keras::Kind::Adafactor { epsilon_1, epsilon_2, .. }
        if epsilon_1.to_bits() == 0 && epsilon_2.to_bits() == 1e-3f64.to_bits())
    );
}

#[test]
fn torch_epsilons_by_class() {
    for class in torch::SUPPORTED.split(", ") {
        let mut c = torch::Config::default_for(class).unwrap();
        let want = PLACED_DIFFERENTLY.contains(&class);
        assert_eq!(c.kind.eps_mut().is_some(), want, "{class}");
        assert_eq!(c.kind.eps1_mut().is_some(), class == "Adafactor", "{class}");
    }
    let mut c = torch::Config::default_for("Adamax").unwrap();
    *c.kind.eps_mut().unwrap() = 0.25;
    assert!(
        matches!(c.kind, torch::Kind::Adamax { eps, .. } if eps.to_bits() == 0.25f64.to_bits())
    );
    let mut c = torch::Config::default_for("Adafactor").unwrap();
    assert_eq!(c.kind.eps1_mut().map(|e| *e), Some(None));
    *c.kind.eps1_mut().unwrap() = Some(0.0);
    assert!(
        matches!(c.kind, torch::Kind::Adafactor { eps: (Some(e1), e2), .. }
        if e1.to_bits() == 0 && e2.to_bits() == 1e-3f64.to_bits())
    );
}

#[test]
fn decoupled_adam_normalizes_to_adamw() {
    let parse = |v: serde_json::Value| torch::Config::parse(&v).unwrap();
    let mut adam = parse(serde_json::json!({"class_name": "Adam", "defaults": {
        "lr": 0.01, "betas": [0.8, 0.95], "eps": 1e-6, "amsgrad": true,
        "weight_decay": 0.1, "decoupled_weight_decay": true}}));
    adam.normalize_adamw();
    let adamw = parse(serde_json::json!({"class_name": "AdamW", "defaults": {
        "lr": 0.01, "betas": [0.8, 0.95], "eps": 1e-6, "amsgrad": true, "weight_decay": 0.1}}));
    assert_eq!(adam, adamw);
    for v in [
        serde_json::json!({"class_name": "Adam", "defaults": {"weight_decay": 0.1}}),
        serde_json::json!({"class_name": "AdamW", "defaults": {}}),
        serde_json::json!({"class_name": "NAdam", "defaults": {"decoupled_weight_decay": true}}),
    ] {
        let before = parse(v);
        let mut after = before.clone();
        after.normalize_adamw();
        assert_eq!(after, before);
    }
}
