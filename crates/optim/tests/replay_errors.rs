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

/// A one-step Keras SGD(0.1) file over `w` (3 × 2) whose gradient is the slices
/// `[1, 2]`, `[3, 4]`, both at row 0, plus `extra` float tensors and the `ints` tensors.
#[track_caller]
fn check_sliced(
    framework: &str,
    extra: &[(&str, Vec<usize>, Vec<f32>)],
    ints: &[(&str, Vec<usize>, Vec<i64>)],
    expected: Result<f64, &str>,
) {
    let optimizer = match framework {
        "keras" => r#"{"class_name": "SGD", "config": {"learning_rate": 0.1}}"#,
        _ => r#"{"class_name": "SGD", "defaults": {"lr": 0.1}}"#,
    };
    let m = meta(&[
        ("framework", framework),
        ("framework_version", "3.15.1"),
        ("optimizer", optimizer),
        ("steps", "1"),
        ("param_order", r#"["w"]"#),
    ]);
    let mut t: BTreeMap<String, (Vec<usize>, Vec<f32>)> = [
        ("init.w", vec![1.0; 6]),
        ("grad.1.w", vec![4.0, 6.0, 0.0, 0.0, 0.0, 0.0]),
        // Scatter-subtracted slice by slice: 1 − 0.1 − 0.3, 1 − 0.2 − 0.4.
        ("param.1.w", vec![0.6, 0.4, 1.0, 1.0, 1.0, 1.0]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), (vec![3, 2], v)))
    .collect();
    for (k, s, v) in extra {
        t.insert(k.to_string(), (s.clone(), v.clone()));
    }
    let ints: BTreeMap<String, (Vec<usize>, Vec<i64>)> = ints
        .iter()
        .map(|(k, s, v)| (k.to_string(), (s.clone(), v.clone())))
        .collect();
    let got = Trajectory::from_all_parts(&m, &t, &ints)
        .and_then(|tr| replay(&tr, None, Precision::F64))
        .map(|o| o.worst)
        .map_err(|e| e.to_string());
    match (got, expected) {
        (Ok(g), Ok(e)) => assert!((g - e).abs() <= 1e-7, "{g} vs {e}"),
        (Err(g), Err(e)) => assert_eq!(g, e),
        (g, e) => panic!("got {g:?}, expected {e:?}"),
    }
}

#[test]
fn slices_are_checked() {
    let values = || ("slices.1.w.values", vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]);
    let indices = |v: Vec<i64>| ("slices.1.w.indices", vec![v.len()], v);
    check_sliced("keras", &[values()], &[indices(vec![0, 0])], Ok(0.0));
    check_sliced(
        "keras",
        &[values()],
        &[],
        Err("missing tensor `slices.1.w.indices`"),
    );
    check_sliced(
        "keras",
        &[],
        &[indices(vec![0, 0])],
        Err("missing tensor `slices.1.w.values`"),
    );
    check_sliced(
        "keras",
        &[values()],
        &[indices(vec![0, 3])],
        Err("tensor `slices.1.w.indices`: an index is outside 0..3"),
    );
    check_sliced(
        "keras",
        &[values()],
        &[indices(vec![0, 0, 1])],
        Err("tensor `slices.1.w.values` has shape [2, 2], expected [3, 2]"),
    );
    check_sliced(
        "keras",
        &[values(), ("slices.1.w.indices", vec![2], vec![0.0, 0.0])],
        &[],
        Err("tensor `slices.1.w.indices`: indices must be an integer tensor"),
    );
    check_sliced(
        "keras",
        &[("slices.2.w.values", vec![2, 2], vec![1.0; 4])],
        &[("slices.2.w.indices", vec![2], vec![0, 0])],
        Err("tensor `slices.2.w.values`: expected slices.<t>.<param>.values, t in 1..=1"),
    );
    check_sliced(
        "keras",
        &[("slices.1.q.values", vec![2, 2], vec![1.0; 4])],
        &[("slices.1.q.indices", vec![2], vec![0, 0])],
        Err("tensor `slices.1.q.values`: `q` is not in param_order"),
    );
    check_sliced(
        "torch",
        &[values()],
        &[indices(vec![0, 0])],
        Err("tensor `slices.1.w.values`: only keras files carry slices"),
    );
}
