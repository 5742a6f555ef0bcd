//! The optimizer-agnostic training loop: what it records, that it applies running statistics,
//! and that regularizer gradients reach the step function.

mod common;

use std::collections::BTreeMap;

use common::{Builder, assert_near, param};
use engine::loss::{KerasBackend, KerasReduction, Loss, Regularizer};
use engine::{
    Batch, DropoutMasks, Mode, OutputGrad, ParamStore, Program, TrainConfig, backward, forward,
    train,
};
use model_ir::{
    Activation, Framework, Model, MomentumForm, Op, ParamLayout, ParamRole, VarianceEstimate,
};
use ndarray::{ArrayD, IxDyn};

/// Dense(5, relu) → BatchNorm → Dense(3, softmax), Keras-style.
fn mlp() -> Model {
    let mut b = Builder::new(Framework::Keras);
    let x = b.input("x", &[4]);
    let k1 = b.param(
        "d1/kernel",
        ParamRole::Kernel,
        ParamLayout::DenseInOut,
        &[4, 5],
    );
    let b1 = b.param("d1/bias", ParamRole::Bias, ParamLayout::Vector, &[5]);
    let h = b.add(
        "d1",
        Op::Dense {
            units: 5,
            use_bias: true,
            activation: Activation::RELU,
        },
        &[&x],
        vec![k1, b1],
    );
    let bn = Op::BatchNorm {
        axis: -1,
        epsilon: 1e-3,
        momentum: MomentumForm::KeepOld(0.99),
        running_variance: VarianceEstimate::Biased,
        center: true,
        scale: true,
        trainable: true,
        track_running_stats: true,
        training_mode: None,
    };
    let ones = ArrayD::from_elem(IxDyn(&[5]), 1.0);
    let zeros = ArrayD::zeros(IxDyn(&[5]));
    let bnp = vec![
        param(
            "bn/gamma",
            ParamRole::Gamma,
            ParamLayout::Vector,
            ones.clone(),
            true,
        ),
        param(
            "bn/beta",
            ParamRole::Beta,
            ParamLayout::Vector,
            zeros.clone(),
            true,
        ),
        param(
            "bn/moving_mean",
            ParamRole::MovingMean,
            ParamLayout::Vector,
            zeros,
            false,
        ),
        param(
            "bn/moving_variance",
            ParamRole::MovingVariance,
            ParamLayout::Vector,
            ones,
            false,
        ),
    ];
    let n = b.add("bn", bn, &[&h], bnp);
    let k2 = b.param(
        "d2/kernel",
        ParamRole::Kernel,
        ParamLayout::DenseInOut,
        &[5, 3],
    );
    let b2 = b.param("d2/bias", ParamRole::Bias, ParamLayout::Vector, &[3]);
    let y = b.add(
        "d2",
        Op::Dense {
            units: 3,
            use_bias: true,
            activation: Activation::Softmax { axis: -1 },
        },
        &[&n],
        vec![k2, b2],
    );
    b.output(&y);
    b.finish()
}

fn batches() -> Vec<Batch<f64>> {
    let mut rng = common::Rng::new(21);
    (0..2)
        .map(|_| {
            let x = rng.array(&[8, 4], -1.0, 1.0);
            let ids = rng.ids(&[8], 3);
            let mut y = ArrayD::zeros(IxDyn(&[8, 3]));
            for (i, &c) in ids.iter().enumerate() {
                y[[i, c as usize]] = 1.0;
            }
            Batch {
                inputs: vec![x],
                target: y,
                sample_weight: None,
                masks: DropoutMasks::new(),
            }
        })
        .collect()
}

fn cce(backend: KerasBackend) -> Loss {
    Loss::KerasCategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
        axis: -1,
        backend,
        reduction: KerasReduction::SumOverBatchSize,
    }
}

/// Plain SGD, the stand-in for an `optim` emulator.
fn sgd(lr: f64) -> impl FnMut(usize, &mut ParamStore<f64>, &engine::Grads<f64>) {
    move |_, params, grads| {
        for (name, g) in &grads.params {
            let p = params.get_mut(name).unwrap();
            p.scaled_add(-lr, g);
        }
    }
}

#[test]
fn training_records_every_step_and_the_loss_falls() {
    let model = mlp();
    let program = Program::new(&model).unwrap();
    let mut params = ParamStore::<f64>::from_model(&model);
    let mut config = TrainConfig::new(30, cce(KerasBackend::TensorFlow));
    config.record_params = true;
    let record = train(&program, &mut params, &batches(), &config, sgd(0.2)).unwrap();
    assert_eq!(record.steps.len(), 30);
    let first = &record.steps[0];
    assert_eq!(first.activation_norms.len(), 3);
    assert_eq!(first.grad_norms.len(), 6);
    assert_eq!(first.layer_grad_norms.len(), 3);
    assert!(
        first
            .params
            .as_ref()
            .unwrap()
            .contains_key("bn/moving_mean")
    );
    let (l0, l1) = (first.loss, record.steps[28].loss);
    assert!(l1 < 0.9 * l0, "loss {l0} → {l1}");
    // Running statistics moved with Keras momentum 0.99 each step.
    let mm = &params.get("bn/moving_mean").unwrap();
    assert!(mm.iter().any(|v| v.abs() > 1e-3), "{mm:?}");
}

#[test]
fn the_step_sees_the_same_gradients_as_backward_plus_the_regularizer() {
    let model = mlp();
    let program = Program::new(&model).unwrap();
    let params = ParamStore::<f64>::from_model(&model);
    let batch = &batches()[0];
    // Direct: forward, loss with the TF logits shortcut, backward.
    let fwd = forward(
        &program,
        &params,
        &batch.inputs,
        Mode::Training,
        &batch.masks,
    )
    .unwrap();
    let (_, z) = fwd.tape.output_logits(0).unwrap();
    let out = engine::loss::compute(
        &cce(KerasBackend::TensorFlow),
        &fwd.outputs[0],
        &batch.target,
        None,
        Some(z),
    )
    .unwrap();
    assert!(matches!(out.grad, OutputGrad::Logits(_)));
    let direct = backward(&fwd.tape, &[out.grad]).unwrap();
    drop(fwd);
    let mut regs = BTreeMap::new();
    regs.insert("d1/kernel".to_string(), Regularizer::l2(0.01));
    let mut config = TrainConfig::new(1, cce(KerasBackend::TensorFlow));
    config.regularizers = regs;
    let mut seen = None;
    let mut p2 = params.clone();
    let record = train(
        &program,
        &mut p2,
        std::slice::from_ref(batch),
        &config,
        |_, _, g| seen = Some(g.clone()),
    )
    .unwrap();
    let seen = seen.unwrap();
    let k = params.get("d1/kernel").unwrap();
    let want = &direct.params["d1/kernel"] + &k.mapv(|w| 0.02 * w);
    let diff = (&seen.params["d1/kernel"] - &want)
        .mapv(f64::abs)
        .iter()
        .fold(0.0f64, |a, &b| a.max(b));
    assert!(diff < 1e-15, "{diff}");
    assert_near(
        record.steps[0].regularization,
        0.01 * k.mapv(|w| w * w).sum(),
        1e-15,
    );
    assert_near(
        record.steps[0].loss,
        out.value + record.steps[0].regularization,
        1e-15,
    );
}

#[test]
fn tf_shortcut_and_clipped_probabilities_agree_when_nothing_saturates() {
    let model = mlp();
    let program = Program::new(&model).unwrap();
    let run = |backend| {
        let mut p = ParamStore::<f64>::from_model(&model);
        train(
            &program,
            &mut p,
            &batches(),
            &TrainConfig::new(3, cce(backend)),
            sgd(0.1),
        )
        .unwrap()
    };
    let (tf, torch) = (run(KerasBackend::TensorFlow), run(KerasBackend::Torch));
    for (a, b) in tf.steps.iter().zip(&torch.steps) {
        assert_near(a.loss, b.loss, 1e-12);
    }
}

#[test]
fn the_training_setup_comes_from_the_model() {
    let mut model = mlp();
    let mut t = model_ir::TrainingConfig::defaults(Framework::Keras);
    t.loss = Some(model_ir::LossSpec::new(
        Framework::Keras,
        "categorical_crossentropy".into(),
        serde_json::json!({}),
    ));
    t.backend = Some(KerasBackend::Torch);
    t.regularizers.insert(
        "d1/kernel".into(),
        model_ir::WeightRegularizer { l1: 0.0, l2: 1e-3 },
    );
    model.training = Some(t);
    let config = TrainConfig::from_model(&model, 4).unwrap();
    assert_eq!(config.loss, cce(KerasBackend::Torch));
    assert_eq!(config.regularizers["d1/kernel"], Regularizer::l2(1e-3));
    assert_eq!(config.steps, 4);
    model.training = None;
    let err = TrainConfig::from_model(&model, 4).unwrap_err();
    assert_eq!(
        err.to_string(),
        "loss spec: model `test` has no loss in its training configuration"
    );
}
