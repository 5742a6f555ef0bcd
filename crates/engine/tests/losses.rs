//! Loss gradients against finite differences (f64, ≤ 1e-6 relative) for every loss and
//! reduction, and the framework conventions that make Keras and torch losses differ.

mod common;

use common::{Rng, assert_near};
use engine::OutputGrad;
use engine::loss::{self, KerasBackend, KerasReduction, Loss, Regularizer, TorchReduction};
use ndarray::{ArrayD, IxDyn, arr1, arr2};

/// The reduced loss at `pred` (or at `logits` when given).
fn value(
    l: &Loss,
    pred: &ArrayD<f64>,
    target: &ArrayD<f64>,
    sw: Option<&ArrayD<f64>>,
    logits: Option<&ArrayD<f64>>,
) -> f64 {
    loss::compute(l, pred, target, sw, logits).unwrap().value
}

/// Checks the analytic gradient of `l` against central differences. With `logits`, the
/// gradient is w.r.t. the logits (the prediction is recomputed as their softmax/sigmoid).
#[track_caller]
fn check(
    l: &Loss,
    pred: &ArrayD<f64>,
    target: &ArrayD<f64>,
    sw: Option<&ArrayD<f64>>,
    logits: Option<&ArrayD<f64>>,
) {
    let out = loss::compute(l, pred, target, sw, logits).unwrap();
    let (g, at) = match (&out.grad, logits) {
        (OutputGrad::Value(g), None) => (g.clone(), pred.clone()),
        (OutputGrad::Logits(g), Some(z)) => (g.clone(), z.clone()),
        (other, _) => panic!("unexpected gradient kind {other:?}"),
    };
    let h = 1e-6;
    let mut fd = ArrayD::zeros(at.raw_dim());
    for i in 0..at.len() {
        let mut up = at.clone();
        up.as_slice_mut().unwrap()[i] += h;
        let mut down = at.clone();
        down.as_slice_mut().unwrap()[i] -= h;
        let (vu, vd) = if logits.is_some() {
            (
                value(l, pred, target, sw, Some(&up)),
                value(l, pred, target, sw, Some(&down)),
            )
        } else {
            (
                value(l, &up, target, sw, None),
                value(l, &down, target, sw, None),
            )
        };
        fd.as_slice_mut().unwrap()[i] = (vu - vd) / (2.0 * h);
    }
    let scale = fd
        .iter()
        .chain(g.iter())
        .fold(1e-12f64, |a, v| a.max(v.abs()));
    let diff = g
        .iter()
        .zip(fd.iter())
        .fold(0.0f64, |a, (x, y)| a.max((x - y).abs()));
    assert!(
        diff / scale <= 1e-6,
        "{}: relative gradient error {:e}\nanalytic {g:?}\nfd {fd:?}",
        l.name(),
        diff / scale
    );
}

fn softmax_rows(z: &ArrayD<f64>) -> ArrayD<f64> {
    let mut p = z.mapv(f64::exp);
    for mut row in p.rows_mut() {
        let s = row.sum();
        row.mapv_inplace(|v| v / s);
    }
    p
}

fn one_hot(ids: &[usize], c: usize) -> ArrayD<f64> {
    let mut y = ArrayD::zeros(IxDyn(&[ids.len(), c]));
    for (i, &k) in ids.iter().enumerate() {
        y[[i, k]] = 1.0;
    }
    y
}

const SBS: KerasReduction = KerasReduction::SumOverBatchSize;

fn kcce(
    from_logits: bool,
    smoothing: f64,
    backend: KerasBackend,
    reduction: KerasReduction,
) -> Loss {
    Loss::KerasCategoricalCrossentropy {
        from_logits,
        label_smoothing: smoothing,
        axis: -1,
        backend,
        reduction,
    }
}

#[test]
fn keras_categorical_crossentropy_gradients() {
    let mut rng = Rng::new(1);
    let z = rng.array(&[4, 3], -2.0, 2.0);
    let p = softmax_rows(&z);
    let y = one_hot(&[0, 2, 1, 2], 3);
    let sw = arr1(&[1.0, 3.0, 0.5, 2.0]).into_dyn();
    for backend in [KerasBackend::TensorFlow, KerasBackend::Torch] {
        for red in [
            SBS,
            KerasReduction::Sum,
            KerasReduction::None,
            KerasReduction::MeanWithSampleWeight,
        ] {
            check(&kcce(false, 0.1, backend, red), &p, &y, Some(&sw), None);
        }
        check(&kcce(true, 0.0, backend, SBS), &z, &y, None, None);
    }
    // Unnormalized "probabilities" exercise the renormalization.
    let q = rng.array(&[3, 4], 0.1, 1.0);
    check(
        &kcce(false, 0.0, KerasBackend::Jax, SBS),
        &q,
        &one_hot(&[1, 3, 0], 4),
        None,
        None,
    );
    // The TF-backend shortcut differentiates w.r.t. the logits.
    check(
        &kcce(false, 0.0, KerasBackend::TensorFlow, SBS),
        &p,
        &y,
        None,
        Some(&z),
    );
}

#[test]
fn keras_sparse_categorical_crossentropy_gradients() {
    let mut rng = Rng::new(2);
    let z = rng.array(&[5, 4], -2.0, 2.0);
    let p = softmax_rows(&z).mapv(|v| v * 1.1);
    let ids = arr1(&[0.0, 3.0, 1.0, 1.0, 2.0]).into_dyn();
    let scce = |from_logits, ignore_class, backend| Loss::KerasSparseCategoricalCrossentropy {
        from_logits,
        ignore_class,
        backend,
        reduction: SBS,
    };
    for backend in [KerasBackend::TensorFlow, KerasBackend::Torch] {
        check(&scce(false, None, backend), &p, &ids, None, None);
        check(&scce(false, Some(1), backend), &p, &ids, None, None);
        check(&scce(true, Some(3), backend), &z, &ids, None, None);
    }
    check(
        &scce(false, None, KerasBackend::TensorFlow),
        &p,
        &ids,
        None,
        Some(&z),
    );
    // (N, 1) targets are squeezed.
    let ids2 = ids.clone().into_shape_with_order(IxDyn(&[5, 1])).unwrap();
    let a = value(&scce(true, None, KerasBackend::Torch), &z, &ids, None, None);
    let b = value(
        &scce(true, None, KerasBackend::Torch),
        &z,
        &ids2,
        None,
        None,
    );
    assert_near(a, b, 1e-15);
}

#[test]
fn keras_binary_crossentropy_and_regression_gradients() {
    let mut rng = Rng::new(3);
    let z = rng.array(&[4, 3], -3.0, 3.0);
    let p = z.mapv(|v| 1.0 / (1.0 + (-v).exp()));
    let y = rng.array(&[4, 3], 0.0, 1.0).mapv(|v| v.round());
    let bce = |from_logits, backend| Loss::KerasBinaryCrossentropy {
        from_logits,
        label_smoothing: 0.2,
        backend,
        reduction: SBS,
    };
    check(&bce(false, KerasBackend::Torch), &p, &y, None, None);
    check(&bce(true, KerasBackend::Torch), &z, &y, None, None);
    check(
        &bce(false, KerasBackend::TensorFlow),
        &p,
        &y,
        None,
        Some(&z),
    );
    let t = rng.array(&[4, 3], -1.0, 1.0);
    let sw = arr1(&[0.5, 1.0, 2.0, 0.0]).into_dyn();
    for l in [
        Loss::KerasMeanSquaredError { reduction: SBS },
        Loss::KerasMeanAbsoluteError { reduction: SBS },
        Loss::KerasHuber {
            delta: 0.5,
            reduction: SBS,
        },
    ] {
        check(&l, &z, &t, Some(&sw), None);
    }
    let py = softmax_rows(&rng.array(&[4, 3], -1.0, 1.0));
    check(
        &Loss::KerasKlDivergence { reduction: SBS },
        &p,
        &py,
        None,
        None,
    );
}

#[test]
fn torch_cross_entropy_and_nll_gradients() {
    let mut rng = Rng::new(4);
    let z = rng.array(&[5, 4], -2.0, 2.0);
    let ids = arr1(&[0.0, 3.0, -100.0, 1.0, 2.0]).into_dyn();
    let ce = |weight: Option<Vec<f64>>, smoothing, reduction| Loss::TorchCrossEntropy {
        weight,
        ignore_index: -100,
        label_smoothing: smoothing,
        reduction,
    };
    let w = Some(vec![1.0, 2.0, 0.5, 3.0]);
    for red in [
        TorchReduction::Mean,
        TorchReduction::Sum,
        TorchReduction::None,
    ] {
        check(&ce(None, 0.0, red), &z, &ids, None, None);
        check(&ce(w.clone(), 0.1, red), &z, &ids, None, None);
    }
    // Probability targets and a spatial (N, C, d) input.
    let py = softmax_rows(&rng.array(&[5, 4], -1.0, 1.0));
    check(
        &ce(w.clone(), 0.2, TorchReduction::Mean),
        &z,
        &py,
        None,
        None,
    );
    let z3 = rng.array(&[2, 3, 4], -2.0, 2.0);
    let ids3 = arr2(&[[0.0, 2.0, 1.0, 1.0], [2.0, 0.0, 0.0, 1.0]]).into_dyn();
    check(
        &ce(Some(vec![1.0, 0.5, 2.0]), 0.1, TorchReduction::Mean),
        &z3,
        &ids3,
        None,
        None,
    );
    let logp = z.mapv(|v| v - 1.0);
    let nll = Loss::TorchNll {
        weight: w,
        ignore_index: -100,
        reduction: TorchReduction::Mean,
    };
    check(&nll, &logp, &ids, None, None);
    // Sample weights: the weighted-mean idiom.
    let sw = arr1(&[1.0, 2.0, 1.0, 0.5, 1.5]).into_dyn();
    check(
        &ce(None, 0.0, TorchReduction::Mean),
        &z,
        &ids,
        Some(&sw),
        None,
    );
}

#[test]
fn torch_elementwise_losses_gradients() {
    let mut rng = Rng::new(5);
    let z = rng.array(&[3, 4], -2.0, 2.0);
    let p = z.mapv(|v| 1.0 / (1.0 + (-v).exp()));
    let y = rng.array(&[3, 4], 0.0, 1.0);
    let t = rng.array(&[3, 4], -2.0, 2.0);
    for red in [
        TorchReduction::Mean,
        TorchReduction::Sum,
        TorchReduction::None,
    ] {
        check(
            &Loss::TorchBce {
                weight: Some(vec![1.0, 2.0, 0.5, 1.0]),
                reduction: red,
            },
            &p,
            &y,
            None,
            None,
        );
        check(
            &Loss::TorchBceWithLogits {
                weight: None,
                pos_weight: Some(vec![2.0, 1.0, 0.5, 3.0]),
                reduction: red,
            },
            &z,
            &y,
            None,
            None,
        );
        check(&Loss::TorchMse { reduction: red }, &z, &t, None, None);
        check(&Loss::TorchL1 { reduction: red }, &z, &t, None, None);
        check(
            &Loss::TorchHuber {
                delta: 0.7,
                reduction: red,
            },
            &z,
            &t,
            None,
            None,
        );
        check(
            &Loss::TorchSmoothL1 {
                beta: 0.7,
                reduction: red,
            },
            &z,
            &t,
            None,
            None,
        );
    }
    let logq = softmax_rows(&z).mapv(f64::ln);
    let py = softmax_rows(&t);
    for red in [
        TorchReduction::Mean,
        TorchReduction::BatchMean,
        TorchReduction::Sum,
    ] {
        check(
            &Loss::TorchKlDiv {
                log_target: false,
                reduction: red,
            },
            &logq,
            &py,
            None,
            None,
        );
        check(
            &Loss::TorchKlDiv {
                log_target: true,
                reduction: red,
            },
            &logq,
            &py.mapv(f64::ln),
            None,
            None,
        );
    }
}

#[test]
fn saturated_softmax_keras_clips_torch_does_not() {
    // Logits ×30 on the wrong class: p_true ≈ 9e-14 < ε.
    let z = arr2(&[[30.0, 0.0, 0.0]]).into_dyn();
    let p = softmax_rows(&z);
    let y = one_hot(&[1], 3);
    let clipped = loss::compute(
        &kcce(false, 0.0, KerasBackend::Torch, SBS),
        &p,
        &y,
        None,
        None,
    )
    .unwrap();
    assert_near(clipped.value, -(1e-7f64).ln(), 1e-9); // 16.118
    match clipped.grad {
        OutputGrad::Value(g) => assert!(
            g.iter().all(|v| v.abs() < 1e-12),
            "clipped gradient is zero: {g:?}"
        ),
        other => panic!("{other:?}"),
    }
    let exact = 30.0 + (1.0 + 2.0 * (-30.0f64).exp()).ln();
    let tf = loss::compute(
        &kcce(false, 0.0, KerasBackend::TensorFlow, SBS),
        &p,
        &y,
        None,
        Some(&z),
    )
    .unwrap();
    assert_near(tf.value, exact, 1e-9);
    let torch = Loss::TorchCrossEntropy {
        weight: None,
        ignore_index: -100,
        label_smoothing: 0.0,
        reduction: TorchReduction::Mean,
    };
    assert_near(
        value(&torch, &z, &arr1(&[1.0]).into_dyn(), None, None),
        exact,
        1e-9,
    );
}

#[test]
fn binary_crossentropy_clip_vs_log_clamp() {
    // Catalogue `bce-clipping`: p = [0, 1, 0.3], y = [1, 1, 0].
    let p = arr2(&[[0.0, 1.0, 0.3]]).into_dyn();
    let y = arr2(&[[1.0, 1.0, 0.0]]).into_dyn();
    let keras = Loss::KerasBinaryCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
        backend: KerasBackend::Torch,
        reduction: SBS,
    };
    let torch = Loss::TorchBce {
        weight: None,
        reduction: TorchReduction::Mean,
    };
    assert_near(value(&keras, &p, &y, None, None), 5.4916, 1e-4);
    assert_near(value(&torch, &p, &y, None, None), 33.4522, 1e-4);
    let p = arr2(&[[1e-9]]).into_dyn();
    let y = arr2(&[[1.0]]).into_dyn();
    let gk = match loss::compute(&keras, &p, &y, None, None).unwrap().grad {
        OutputGrad::Value(g) => g[[0, 0]],
        other => panic!("{other:?}"),
    };
    let gt = match loss::compute(&torch, &p, &y, None, None).unwrap().grad {
        OutputGrad::Value(g) => g[[0, 0]],
        other => panic!("{other:?}"),
    };
    assert_near(gk, 0.0, 0.0);
    assert_near(gt / -1e9, 1.0, 1e-6);
}

#[test]
fn keras_sum_over_batch_size_vs_torch_weighted_mean() {
    // Per-sample losses l = [1, 2, 3, 4] (MSE of one value each), weights w = [3, 1, 1, 1].
    let pred = arr2(&[[1.0], [2.0f64.sqrt()], [3.0f64.sqrt()], [2.0]]).into_dyn();
    let target = ArrayD::zeros(IxDyn(&[4, 1]));
    let w = arr1(&[3.0, 1.0, 1.0, 1.0]).into_dyn();
    let keras = value(
        &Loss::KerasMeanSquaredError { reduction: SBS },
        &pred,
        &target,
        Some(&w),
        None,
    );
    assert_near(keras, (3.0 + 2.0 + 3.0 + 4.0) / 4.0, 1e-12);
    let keras_msw = value(
        &Loss::KerasMeanSquaredError {
            reduction: KerasReduction::MeanWithSampleWeight,
        },
        &pred,
        &target,
        Some(&w),
        None,
    );
    assert_near(keras_msw, 12.0 / 6.0, 1e-12);
    let torch = value(
        &Loss::TorchMse {
            reduction: TorchReduction::Mean,
        },
        &pred,
        &target,
        Some(&w),
        None,
    );
    assert_near(torch, 12.0 / 6.0, 1e-12);
}

#[test]
fn torch_cross_entropy_class_weights_divide_by_their_sum() {
    // Two samples, classes 0 and 1, weights [1, 3]: mean = (l0 + 3 l1) / 4.
    let z = arr2(&[[2.0, 0.0], [0.0, 1.0]]).into_dyn();
    let ids = arr1(&[0.0, 1.0]).into_dyn();
    let l0 = -(2.0f64.exp() / (2.0f64.exp() + 1.0)).ln();
    let l1 = -(1.0f64.exp() / (1.0f64.exp() + 1.0)).ln();
    let ce = Loss::TorchCrossEntropy {
        weight: Some(vec![1.0, 3.0]),
        ignore_index: -100,
        label_smoothing: 0.0,
        reduction: TorchReduction::Mean,
    };
    assert_near(
        value(&ce, &z, &ids, None, None),
        (l0 + 3.0 * l1) / 4.0,
        1e-12,
    );
    // Label smoothing α: (1−α)·nll + α/C·Σ_c w_c(−log p_c) / Σ w_y.
    let ce = Loss::TorchCrossEntropy {
        weight: Some(vec![1.0, 3.0]),
        ignore_index: -100,
        label_smoothing: 0.2,
        reduction: TorchReduction::Mean,
    };
    let lp = |z: [f64; 2]| {
        let m = (z[0].exp() + z[1].exp()).ln();
        [z[0] - m, z[1] - m]
    };
    let (a, b) = (lp([2.0, 0.0]), lp([0.0, 1.0]));
    let smooth = -(a[0] + 3.0 * a[1]) - (b[0] + 3.0 * b[1]);
    let expect = 0.8 * (l0 + 3.0 * l1) / 4.0 + 0.1 * smooth / 4.0;
    assert_near(value(&ce, &z, &ids, None, None), expect, 1e-12);
    // ignore_index drops the sample from both sums.
    let ce = Loss::TorchCrossEntropy {
        weight: Some(vec![1.0, 3.0]),
        ignore_index: 1,
        label_smoothing: 0.0,
        reduction: TorchReduction::Mean,
    };
    assert_near(value(&ce, &z, &ids, None, None), l0, 1e-12);
}

#[test]
fn keras_ignore_class_divides_by_valid_count() {
    let z = arr2(&[[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).into_dyn();
    let ids = arr1(&[0.0, 1.0, 1.0]).into_dyn();
    let l = Loss::KerasSparseCategoricalCrossentropy {
        from_logits: true,
        ignore_class: Some(0),
        backend: KerasBackend::Torch,
        reduction: SBS,
    };
    let l1 = -(1.0f64.exp() / (1.0f64.exp() + 1.0)).ln();
    let l2 = 2.0f64.ln();
    assert_near(value(&l, &z, &ids, None, None), (l1 + l2) / 2.0, 1e-12);
}

#[test]
fn l2_regularizer_is_lambda_sum_of_squares() {
    let w = arr1(&[1.0, -2.0, 3.0]).into_dyn();
    let (v, g) = Regularizer::l2(0.01).penalty(&w);
    assert_near(v, 0.01 * 14.0, 1e-15);
    common::assert_close(&g, &[0.02, -0.04, 0.06], 1e-15, 0.0);
    let (v, g) = Regularizer::l1_l2(0.1, 0.01).penalty(&w);
    assert_near(v, 0.1 * 6.0 + 0.01 * 14.0, 1e-15);
    common::assert_close(&g, &[0.12, -0.14, 0.16], 1e-15, 0.0);
}

#[test]
fn mismatched_shapes_are_errors() {
    let a = ArrayD::<f64>::zeros(IxDyn(&[2, 3]));
    let b = ArrayD::zeros(IxDyn(&[3, 2]));
    let err = loss::compute(
        &Loss::TorchMse {
            reduction: TorchReduction::Mean,
        },
        &a,
        &b,
        None,
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "loss torch MSELoss: prediction [2, 3] and target [3, 2] differ in shape"
    );
}

#[test]
fn losses_from_the_frameworks_serializations() {
    use model_ir::{Framework, LossSpec};
    let spec = |framework: Framework, name: &str, config: &str| {
        LossSpec::new(
            framework,
            name.into(),
            serde_json::from_str(config).unwrap(),
        )
    };
    let tf = KerasBackend::TensorFlow;
    assert_eq!(
        Loss::from_spec(
            &spec(Framework::Keras, "categorical_crossentropy", "{}"),
            tf
        )
        .unwrap(),
        kcce(false, 0.0, tf, SBS)
    );
    assert_eq!(
        Loss::from_spec(
            &spec(
                Framework::Keras,
                "SparseCategoricalCrossentropy",
                r#"{"from_logits": true, "ignore_class": 3, "reduction": "sum"}"#
            ),
            KerasBackend::Jax
        )
        .unwrap(),
        Loss::KerasSparseCategoricalCrossentropy {
            from_logits: true,
            ignore_class: Some(3),
            backend: KerasBackend::Jax,
            reduction: KerasReduction::Sum,
        }
    );
    let ce = r#"{"weight": [1.0, 2.0], "ignore_index": -100, "reduction": "mean", "label_smoothing": 0.1}"#;
    assert_eq!(
        Loss::from_spec(&spec(Framework::Torch, "CrossEntropyLoss", ce), tf).unwrap(),
        Loss::TorchCrossEntropy {
            weight: Some(vec![1.0, 2.0]),
            ignore_index: -100,
            label_smoothing: 0.1,
            reduction: TorchReduction::Mean,
        }
    );
    let err = Loss::from_spec(&spec(Framework::Torch, "CTCLoss", "{}"), tf).unwrap_err();
    assert_eq!(
        err.to_string(),
        "loss spec: `CTCLoss`: the torch loss `CTCLoss` is not implemented"
    );
}
