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

fn sgd_tensors() -> BTreeMap<String, Vec<f32>> {
    tensors(&[
        ("init.w", vec![1.0]),
        ("grad.1.w", vec![2.0]),
        ("param.1.w", vec![0.8]),
    ])
}

#[test]
fn malformed_training_loop_metadata() {
    let t = sgd_tensors();
    let with = |k: &str, v: &str| {
        let mut m = good_meta();
        m.insert(k.into(), v.into());
        m
    };
    check(
        with("exclude_from_weight_decay", r#"{"var_names": ["bias"]}"#),
        t.clone(),
        Err("metadata `exclude_from_weight_decay`: only keras files carry it"),
    );
    check(
        with("backend", "jax"),
        t.clone(),
        Err("metadata `backend`: only keras files carry it"),
    );
    check(
        with(
            "scheduler",
            r#"{"class_name": "StepLR", "config": {"step_size": 2}, "interval": "epoch"}"#,
        ),
        t.clone(),
        Err("metadata `scheduler`: interval \"epoch\" needs steps_per_epoch"),
    );
    check(
        with(
            "scheduler",
            r#"{"class_name": "OneCycleLR", "config": {"max_lr": 0.1, "total_steps": 1}, "interval": "step"}"#,
        ),
        t.clone(),
        // One scheduler step after the one optimizer step is allowed (last_epoch =
        // total_steps). With total_steps = 1 the first phase ends at step −0.7, so step 0 is
        // already at min_lr = 0.1/25/1e4: θ = 1 − 4e-7·2, far from the file's 0.8.
        Ok(0.249_998_98),
    );
    check(
        with("param_groups", r#"[{"params": ["v"], "lr": 0.5}]"#),
        t.clone(),
        Err(
            "torch param_groups: field `param_groups[0].params` must be names from the parameter list, got \"v\"",
        ),
    );
    check(
        with(
            "param_groups",
            r#"[{"params": ["w"]}, {"params": ["w"], "lr": 0.5}]"#,
        ),
        t.clone(),
        Err(
            "torch param_groups: field `param_groups[1].params` must be parameters that appear in only one group, got \"w\" again",
        ),
    );
    check(
        with(
            "param_groups",
            r#"[{"params": ["w"], "betas": [0.9, 0.99]}]"#,
        ),
        t.clone(),
        Err("torch SGD: unknown field `betas`"),
    );
    // lr 0.5 for the group: θ = 1 − 0.5·2 = 0 ≠ 0.8.
    check(
        with(
            "param_groups",
            r#"[{"params": ["w"], "lr": 0.5, "name": "all"}]"#,
        ),
        t.clone(),
        Ok(1.0),
    );
    let mut keras = good_meta();
    keras.insert("framework".into(), "keras".into());
    keras.insert(
        "optimizer".into(),
        r#"{"class_name": "SGD", "config": {"learning_rate": 0.1, "weight_decay": 0.5}}"#.into(),
    );
    keras.insert(
        "exclude_from_weight_decay".into(),
        r#"{"var_names": ["(?i)w"]}"#.into(),
    );
    check(
        keras.clone(),
        t.clone(),
        Err(
            "keras exclude_from_weight_decay: field `var_names` must be Python regular expressions this emulator supports, got \"(?i)w\" (group extensions (?...) other than (?:...) are not emulated)",
        ),
    );
    // Excluded: θ = 1 − 0.1·2 = 0.8, no decay.
    keras.insert(
        "exclude_from_weight_decay".into(),
        r#"{"var_names": ["^w:0$"]}"#.into(),
    );
    check(keras, t, Ok(0.0));
}

#[test]
fn shapes_are_checked() {
    let shaped =
        |pairs: &[(&str, Vec<usize>, Vec<f32>)]| -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
            pairs
                .iter()
                .map(|(k, s, v)| (k.to_string(), (s.clone(), v.clone())))
                .collect()
        };
    let t = shaped(&[
        ("init.w", vec![2, 1], vec![1.0, 1.0]),
        ("grad.1.w", vec![1, 2], vec![2.0, 2.0]),
        ("param.1.w", vec![2, 1], vec![0.8, 0.8]),
    ]);
    assert_eq!(
        Trajectory::from_shaped_parts(&good_meta(), &t)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err("tensor `grad.1.w` has shape [1, 2], expected [2, 1]".to_string())
    );
}
