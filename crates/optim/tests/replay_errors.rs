//! Malformed trajectories are one-line errors naming what is wrong.

use std::collections::BTreeMap;

use optim::Precision;
use optim::replay::{Trajectory, replay};

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn good_meta() -> BTreeMap<String, String> {
    meta(&[
        ("framework", "torch"),
        ("framework_version", "2.15.0"),
        (
            "optimizer",
            r#"{"class_name": "SGD", "defaults": {"lr": 0.1}}"#,
        ),
        ("steps", "1"),
        ("param_order", r#"["w"]"#),
    ])
}

fn tensors(pairs: &[(&str, Vec<f32>)]) -> BTreeMap<String, Vec<f32>> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[track_caller]
fn check(
    meta: BTreeMap<String, String>,
    t: BTreeMap<String, Vec<f32>>,
    expected: Result<f64, &str>,
) {
    let got = Trajectory::from_parts(&meta, &t)
        .and_then(|tr| replay(&tr, None, Precision::F64))
        .map(|o| o.worst)
        .map_err(|e| e.to_string());
    match (got, expected) {
        // The file holds float32 values; the f64 replay is within their rounding.
        (Ok(g), Ok(e)) => assert!((g - e).abs() <= 1e-7, "{g} vs {e}"),
        (Err(g), Err(e)) => assert_eq!(g, e),
        (g, e) => panic!("got {g:?}, expected {e:?}"),
    }
}

#[test]
fn well_formed_sgd_step() {
    // θ = 1 − 0.1·2 = 0.8; the file says 0.8 exactly.
    let t = tensors(&[
        ("init.w", vec![1.0]),
        ("grad.1.w", vec![2.0]),
        ("param.1.w", vec![0.8]),
    ]);
    check(good_meta(), t, Ok(0.0));
}

#[test]
fn malformed() {
    let t = tensors(&[
        ("init.w", vec![1.0]),
        ("grad.1.w", vec![2.0]),
        ("param.1.w", vec![0.8]),
    ]);
    let mut m = good_meta();
    m.remove("framework");
    check(m, t.clone(), Err("missing metadata `framework`"));
    let mut m = good_meta();
    m.insert("framework".into(), "jax".into());
    check(
        m,
        t.clone(),
        Err("metadata `framework`: `jax` is not keras or torch"),
    );
    let mut m = good_meta();
    m.insert("steps".into(), "2".into());
    check(m, t.clone(), Err("missing tensor `grad.2.w`"));
    let mut m = good_meta();
    m.insert(
        "optimizer".into(),
        r#"{"class_name": "SGD", "defaults": {"lr": 0.1, "betas": [0.9, 0.99]}}"#.into(),
    );
    check(m, t.clone(), Err("torch SGD: unknown field `betas`"));
    let bad = tensors(&[
        ("init.w", vec![1.0]),
        ("grad.1.w", vec![2.0, 1.0]),
        ("param.1.w", vec![0.8]),
    ]);
    check(
        good_meta(),
        bad,
        Err("tensor `grad.1.w` has 2 elements, expected 1"),
    );
}
