//! Keras weight constraints through [`optim::driver::Driver`] against real Keras:
//! `models/constraints/keras_constraints.json` (made by `models/constraints/gen_keras.py`
//! with Keras 3.15.1 on TensorFlow) holds, for MaxNorm, UnitNorm, NonNeg and MinMaxNorm on a
//! Dense kernel (4, 3) and a Conv2D kernel (3, 3, 2, 4), with SGD (momentum 0.9) and Adam,
//! the kernel after each of 4 `optimizer.apply` calls with fixed gradients. The driver built
//! from the training configuration (optimizer + constraints) must reproduce every value
//! within 2e-6 (float32: TensorFlow sums the squares in its own order).

use std::collections::BTreeMap;

use model_ir::{Constraint, Framework, OptimizerSpec, TrainingConfig};
use optim::Variable;
use optim::driver::{Driver, Grads};
use serde_json::Value;

const TOL: f64 = 2e-6;

fn doc() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/constraints/keras_constraints.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN) as f32)
                .collect()
        })
        .unwrap_or_default()
}

fn typed(v: &Value) -> Constraint {
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let axes: Vec<usize> = v["axes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().map(|x| x as usize))
                .collect()
        })
        .unwrap_or_default();
    match v["kind"].as_str() {
        Some("max_norm") => Constraint::MaxNorm {
            max_value: f("max_value"),
            axes,
        },
        Some("unit_norm") => Constraint::UnitNorm { axes },
        Some("non_neg") => Constraint::NonNeg,
        Some("min_max_norm") => Constraint::MinMaxNorm {
            min_value: f("min_value"),
            max_value: f("max_value"),
            rate: f("rate"),
            axes,
        },
        other => panic!("unknown kind {other:?}"),
    }
}

#[test]
fn driver_reproduces_keras_constraints() {
    let doc = doc();
    let cases = doc["cases"].as_array().cloned().unwrap_or_default();
    assert_eq!(cases.len(), 16);
    let mut worst: f64 = 0.0;
    for case in &cases {
        let name = case["name"].as_str().unwrap_or("?");
        let var = case["variable"].as_str().unwrap_or("w").to_string();
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_u64().map(|x| x as usize))
                    .collect()
            })
            .unwrap_or_default();
        let mut t = TrainingConfig::defaults(Framework::Keras);
        t.optimizer = Some(OptimizerSpec {
            class_name: case["optimizer"]["class_name"]
                .as_str()
                .unwrap_or("")
                .into(),
            config: case["optimizer"]["config"].clone(),
        });
        t.constraints = BTreeMap::from([(var.clone(), typed(&case["typed"]))]);
        let vars = [Variable::new(var, &shape)];
        let mut d =
            Driver::<f32>::from_training(&t, &vars, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Without the constraint the trajectory departs from Keras's (the test can fail).
        let mut t0 = t.clone();
        t0.constraints.clear();
        let mut plain = Driver::<f32>::from_training(&t0, &vars, None).unwrap();
        let mut params = vec![floats(&case["init"])];
        let mut unconstrained = params.clone();
        let mut plain_diff: f64 = 0.0;
        let grads = case["grads"].as_array().cloned().unwrap_or_default();
        let values = case["values"].as_array().cloned().unwrap_or_default();
        for (step, (g, want)) in grads.iter().zip(&values).enumerate() {
            let mut gs = vec![floats(g)];
            d.step(Grads::dense(&mut gs), &mut params);
            let mut gs = vec![floats(g)];
            plain.step(Grads::dense(&mut gs), &mut unconstrained);
            let want = floats(want);
            for (i, (a, b)) in params[0].iter().zip(&want).enumerate() {
                let e = (f64::from(*a) - f64::from(*b)).abs();
                worst = worst.max(e);
                assert!(e <= TOL, "{name} step {}: [{i}] {a} vs Keras {b}", step + 1);
            }
            for (a, b) in unconstrained[0].iter().zip(&want) {
                plain_diff = plain_diff.max((f64::from(*a) - f64::from(*b)).abs());
            }
        }
        assert!(plain_diff > 1e-3, "{name}: the constraint changes nothing");
    }
    eprintln!("worst |driver − Keras| over every case and step: {worst:e}");
}

#[test]
fn unknown_constraint_is_refused() {
    let mut t = TrainingConfig::defaults(Framework::Keras);
    t.optimizer = Some(OptimizerSpec {
        class_name: "SGD".into(),
        config: serde_json::json!({"learning_rate": 0.1}),
    });
    t.constraints = BTreeMap::from([(
        "w".to_string(),
        Constraint::Unknown {
            class: "Clip".into(),
        },
    )]);
    let e = Driver::<f32>::from_training(&t, &[Variable::new("w", &[2])], None).unwrap_err();
    assert!(e.to_string().contains("Clip"), "{e}");
}
