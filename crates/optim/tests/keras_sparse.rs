//! `keras::Optimizer::apply_with_slices`: TensorFlow `IndexedSlices` gradients. Slices on
//! distinct rows in increasing order are the dense update bit for bit; a row looked up
//! twice gets each optimizer's per-slice treatment (golden trajectories against real Keras:
//! `models/trajectories/keras_*_sparse*.safetensors`, in `trajectories.rs`).

use optim::Real;
use optim::keras::{Config, IndexedSlices, Optimizer};
use serde_json::{Value, json};

/// The table (4 × 2) before the first step.
const INIT: [f64; 8] = [0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 1.0, -2.0];

type Step<'a> = &'a [(usize, [f64; 2])];

/// `steps.len()` applications of `optimizer` (`{"class_name", "config"}`) to the table; each
/// step's gradient is the slices `(row, [g0, g1])`, passed as `IndexedSlices` with their dense
/// sum when `sliced`, as the dense sum alone otherwise. The only caller of the API.
fn run<T: Real>(optimizer: &Value, steps: &[Step<'_>], sliced: bool) -> Vec<T> {
    let config = Config::parse(optimizer).expect("optimizer config");
    let mut opt = Optimizer::<T>::build(config, &[optim::Variable::new("e", &[4, 2])]);
    let mut vars = vec![INIT.iter().map(|&x| T::of(x)).collect::<Vec<T>>()];
    for step in steps {
        let indices: Vec<usize> = step.iter().map(|(r, _)| *r).collect();
        let values: Vec<T> = step.iter().flat_map(|(_, g)| g.map(T::of)).collect();
        let mut dense = vec![T::default(); 8];
        for (k, &r) in indices.iter().enumerate() {
            for j in 0..2 {
                dense[r * 2 + j] = dense[r * 2 + j] + values[k * 2 + j];
            }
        }
        let mut grads = vec![dense];
        if sliced {
            let slices = [Some(IndexedSlices {
                indices: &indices,
                values: &values,
            })];
            opt.apply_with_slices(&mut grads, &slices, &mut vars);
        } else {
            opt.apply(&mut grads, &mut vars);
        }
    }
    vars.remove(0)
}

/// Slices on distinct rows, in increasing order, with rows 1 and 3 (and 0 in the last step)
/// never looked up: the f32 update equals the dense one bit for bit.
#[track_caller]
fn check_dense_equivalent(optimizer: Value) {
    let steps: [Step<'_>; 3] = [
        &[(0, [0.3, -1.2]), (2, [2.5, 0.01])],
        &[(0, [-0.7, 0.4]), (2, [1e-4, -3.0])],
        &[(2, [0.2, 0.9])],
    ];
    let sparse = run::<f32>(&optimizer, &steps, true);
    let dense = run::<f32>(&optimizer, &steps, false);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&sparse),
        bits(&dense),
        "{optimizer}: {sparse:?} vs {dense:?}"
    );
}

/// One step of `optimizer` in f64 with `step`'s slices; the table must be `expected` (to
/// 1e-12).
#[track_caller]
fn check(optimizer: Value, steps: &[Step<'_>], expected: [f64; 8]) {
    let got = run::<f64>(&optimizer, steps, true);
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= 1e-12,
            "{optimizer} [{i}]: {g} vs {e}\n{got:?}"
        );
    }
}

fn keras(class: &str, config: Value) -> Value {
    json!({"class_name": class, "config": config})
}

#[test]
fn distinct_rows_are_the_dense_update() {
    for (class, config) in [
        ("SGD", json!({})),
        ("SGD", json!({"momentum": 0.9, "nesterov": true})),
        ("Adam", json!({"learning_rate": 0.01, "amsgrad": true})),
        ("AdamW", json!({"clipnorm": 1.0})),
        ("RMSprop", json!({})),
        ("RMSprop", json!({"centered": true, "momentum": 0.5})),
        ("Adagrad", json!({"clipvalue": 0.5})),
        ("Adadelta", json!({"learning_rate": 1.0})),
        ("Adamax", json!({})),
        ("Nadam", json!({"global_clipnorm": 1.0})),
        ("Lion", json!({"weight_decay": 0.1})),
        ("Adafactor", json!({"learning_rate": 0.1})),
    ] {
        check_dense_equivalent(keras(class, config));
    }
}

/// Row 0 is looked up twice with [1, 2] and [3, −4]: G = [4, −2], Σg² = [10, 20], Σ|g| = [4, 6].
const TWICE: Step<'static> = &[(0, [1.0, 2.0]), (0, [3.0, -4.0]), (2, [0.5, 0.5])];

/// Row 0 and row 2 after one step that moves them by `d0` and `d2`.
fn moved(d0: [f64; 2], d2: [f64; 2]) -> [f64; 8] {
    let mut t = INIT;
    for j in 0..2 {
        t[j] += d0[j];
        t[4 + j] += d2[j];
    }
    t
}

#[test]
fn adam_second_moment_is_the_sum_of_squared_slices() {
    // m = 0.1·G, v = 0.001·Σg², α = η·√(1−β2)/(1−β1); θ −= α·m/(√v + ε̂).
    let lr = 1e-3;
    let alpha = lr * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9);
    let step = |g: f64, sq: f64| -alpha * (0.1 * g) / ((0.001f64 * sq).sqrt() + 1e-7);
    check(
        keras("Adam", json!({})),
        &[TWICE],
        moved(
            [step(4.0, 10.0), step(-2.0, 20.0)],
            [step(0.5, 0.25), step(0.5, 0.25)],
        ),
    );
}

#[test]
fn adamax_infinity_norm_is_the_sum_of_absolute_slices() {
    // m = 0.1·G, u = max(0, Σ|g|); θ −= η·m/((1−β1)(u + ε̂)).
    let lr = 1e-3;
    let step = |g: f64, u: f64| -lr * (0.1 * g) / ((1.0 - 0.9) * (u + 1e-7));
    check(
        keras("Adamax", json!({})),
        &[TWICE],
        moved(
            [step(4.0, 4.0), step(-2.0, 6.0)],
            [step(0.5, 0.5), step(0.5, 0.5)],
        ),
    );
}

#[test]
fn adagrad_accumulates_squared_slices_and_steps_per_slice() {
    // a = 0.1 + Σg²; θ −= η·gₖ/√(a + ε) for each slice.
    let lr = 1e-3;
    let inc = |g: f64, a: f64| lr * g / (a + 1e-7).sqrt();
    check(
        keras("Adagrad", json!({})),
        &[TWICE],
        moved(
            [
                -inc(1.0, 10.1) - inc(3.0, 10.1),
                -inc(2.0, 20.1) - inc(-4.0, 20.1),
            ],
            [-inc(0.5, 0.35), -inc(0.5, 0.35)],
        ),
    );
}

#[test]
fn clipnorm_takes_the_norm_of_the_slices() {
    // ‖slices‖ = √(1 + 4 + 9 + 16 + 0.25 + 0.25) = √30.5, not ‖G‖ = √20.5; SGD θ −= η·g·c/‖·‖.
    let lr = 1e-2;
    let s = 1.0 / 30.5f64.sqrt();
    check(
        keras("SGD", json!({"clipnorm": 1.0})),
        &[TWICE],
        moved(
            [-lr * s - lr * 3.0 * s, -lr * 2.0 * s + lr * 4.0 * s],
            [-lr * 0.5 * s, -lr * 0.5 * s],
        ),
    );
}

#[test]
fn global_clipnorm_counts_squared_slices_then_steps_densely() {
    // N = √30.5 (the slices), then g·scale is dense: Adam's v sees (G·scale)².
    let lr = 1e-3;
    let s = 1.0 / 30.5f64.sqrt();
    let alpha = lr * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9);
    let step = |g: f64| -alpha * (0.1 * g) / ((0.001 * g * g).sqrt() + 1e-7);
    check(
        keras("Adam", json!({"global_clipnorm": 1.0})),
        &[TWICE],
        moved(
            [step(4.0 * s), step(-2.0 * s)],
            [step(0.5 * s), step(0.5 * s)],
        ),
    );
}

#[test]
fn rows_left_out_still_move_under_adam_but_not_adagrad() {
    let steps: [Step<'_>; 2] = [TWICE, &[(2, [1.0, 1.0])]];
    let after = |class: &str| {
        (
            run::<f64>(&keras(class, json!({})), &steps[..1], true),
            run::<f64>(&keras(class, json!({})), &steps, true),
        )
    };
    let (one, two) = after("Adam");
    assert!((one[0] - two[0]).abs() > 1e-5, "Adam: {one:?} → {two:?}");
    let (one, two) = after("Adagrad");
    assert_eq!(
        one[0].to_bits(),
        two[0].to_bits(),
        "Adagrad: {one:?} → {two:?}"
    );
}

#[test]
fn accumulation_densifies_the_slices() {
    let steps: [Step<'_>; 4] = [TWICE, TWICE, &[(1, [0.1, 0.2])], TWICE];
    let optimizer = keras("Adam", json!({"gradient_accumulation_steps": 2}));
    let sparse = run::<f64>(&optimizer, &steps, true);
    let dense = run::<f64>(&optimizer, &steps, false);
    for (s, d) in sparse.iter().zip(&dense) {
        assert_eq!(s.to_bits(), d.to_bits(), "{sparse:?} vs {dense:?}");
    }
}

#[test]
fn loss_scale_factor_with_slices_is_a_keras_type_error() {
    let optimizer = keras("Adam", json!({"loss_scale_factor": 2.0}));
    let r = std::panic::catch_unwind(|| run::<f64>(&optimizer, &[TWICE], true));
    assert!(
        r.is_err(),
        "Keras raises TypeError for IndexedSlices / float"
    );
}
