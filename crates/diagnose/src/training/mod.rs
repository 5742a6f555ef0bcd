//! Step 3b: the training configuration: optimizer, clipping, schedules, loss, regularizers,
//! and the data loop.
//!
//! The optimizer is compared through `optim::equiv`: the exact torch equivalent of the Keras
//! optimizer (with Adam/RMSprop/Adagrad/Adamax epsilons set aside, since no constant torch
//! epsilon reproduces their placement) is compared field by field with the torch optimizer;
//! an equivalent that does not exist gives the catalogue ids `optim` names.

use std::collections::BTreeMap;

use catalogue::Id;
use model_import::Bundle;
use model_ir::{GradClip, LossFamily as Family, Model, ParamRole, TrainingConfig};
use optim::equiv;
use optim::keras::{self as kopt, LearningRate};
use optim::torch::{self as topt, SchedulerConfig};
use report::{NotChecked, Severity, Tolerance, sig};

use crate::align::Aligned;
use crate::findings::{Findings, ev, pair_label, torch_ref};
use crate::graph::{Shapes, infer_shapes, show_shape};

/// Training hyper-parameters (optimizer, schedule, loss) compared for equality: Keras stores
/// float32 values (0.001 is 0.0010000000474974513), so allow float32 round-off.
const TRAINING_HP_TOL: Tolerance = Tolerance::Custom {
    atol: 1e-12,
    rtol: 1e-6,
};

fn differs(a: f64, b: f64) -> bool {
    !TRAINING_HP_TOL.close(b, a)
}

pub(crate) fn num(x: f64) -> String {
    sig(x)
}

mod data;
mod loss;
mod optimizer;
mod regularizer;

use data::data_loop;
use loss::loss;
use optimizer::optimizer;
use regularizer::regularization;
pub(crate) use regularizer::{Regularizer, regularizers};

/// Catalogue id for a hyper-parameter (learning rate, moments, epsilon) that differs in an
/// optimizer class whose defaults differ between the frameworks.
fn class_id(class: &str) -> Id {
    match class {
        "SGD" => Id::SgdDefaultLr,
        "RMSprop" => Id::RmspropEpsAndRho,
        "Adagrad" => Id::AdagradInitEps,
        "Adadelta" => Id::AdadeltaDefaults,
        "Adamax" => Id::AdamaxEpsPlacement,
        "Nadam" | "NAdam" => Id::NadamMomentumSchedule,
        _ => Id::OptimizerMismatch,
    }
}

fn ratio_severity(a: f64, b: f64) -> (Severity, f64) {
    let r = if a > 0.0 && b > 0.0 {
        (a / b).ln().abs()
    } else {
        3.0
    };
    let sev = if r > 1.0 {
        Severity::High
    } else {
        Severity::Medium
    };
    (sev, r)
}

fn cfg_f64(v: &serde_json::Value, k: &str) -> Option<f64> {
    v.get(k).and_then(serde_json::Value::as_f64)
}

fn cfg_str<'a>(v: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(serde_json::Value::as_str)
}

/// Step 3b.
pub(crate) fn check(
    kb: &Bundle,
    tb: &Bundle,
    aligned: &Aligned<'_>,
    out: &mut Findings,
    not_checked: &mut Vec<NotChecked>,
) {
    let (Some(kt), Some(tt)) = (&kb.model.training, &tb.model.training) else {
        not_checked.push(NotChecked {
            what: "training configuration".into(),
            reason: "one of the bundles carries no training configuration".into(),
        });
        return;
    };
    let regs = regularizers(&kb.model);
    // Torch's second recurrent bias where Keras keeps one: frozen (lr 0), bias_ih + bias_hh
    // trains exactly like Keras's single bias (bias_hh is a constant offset of the start).
    let mut frozen_ok: Vec<String> = aligned
        .pairs
        .iter()
        .flat_map(|p| p.params.iter())
        .filter(|m| m.group == crate::align::Group::SumOfTwo)
        .filter_map(|m| m.torch.get(1))
        .map(|p| p.name.clone())
        .collect();
    // Parameters Keras does not train (a `trainable=False` layer, e.g. a frozen
    // BatchNormalization's gamma and beta): a torch group with lr 0 is their exact port.
    frozen_ok.extend(
        aligned
            .pairs
            .iter()
            .filter(|p| {
                matches!(
                    p.keras.op,
                    model_ir::Op::BatchNorm {
                        trainable: false,
                        ..
                    }
                )
            })
            .flat_map(|p| p.params.iter())
            .chain(
                aligned
                    .pairs
                    .iter()
                    .flat_map(|p| p.params.iter())
                    .filter(|m| !m.keras.trainable),
            )
            .flat_map(|m| m.torch.iter().map(|p| p.name.clone())),
    );
    optimizer(kt, tt, &regs, &frozen_ok, out, not_checked);
    regularization(tt, aligned, &regs, out);
    let tshapes = infer_shapes(&tb.model);
    loss(kb, tb, &tshapes, out, not_checked);
    data_loop(kt, tt, kb.inputs.is_some() && tb.inputs.is_some(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testkit::{faithful_mlp, ids, train};
    use report::Severity;
    use serde_json::json;

    /// Ids found when the torch side of the faithful MLP gets `opt`/`loss` and the Keras side
    /// `kopt`/`kloss` (`None` keeps the faithful setting).
    #[track_caller]
    fn check(
        kopt: Option<(&str, serde_json::Value)>,
        topt: Option<(&str, serde_json::Value)>,
        loss: Option<(&str, serde_json::Value)>,
        expect: &[(&str, Severity)],
    ) {
        let (mut k, mut t) = faithful_mlp();
        if let Some((c, cfg)) = kopt {
            train(&mut k, c, cfg, "categorical_crossentropy", json!({}));
        }
        if let Some((c, cfg)) = topt {
            let l = loss.clone().unwrap_or(("CrossEntropyLoss", json!({})));
            train(&mut t, c, cfg, l.0, l.1);
        } else if let Some((l, lc)) = loss {
            let o = t
                .training
                .as_ref()
                .and_then(|x| x.optimizer.clone())
                .unwrap();
            train(&mut t, &o.class_name, o.config, l, lc);
        }
        let found = ids(k, t);
        let want: Vec<(String, Severity)> =
            expect.iter().map(|(i, s)| (i.to_string(), *s)).collect();
        assert_eq!(found, want);
    }

    #[test]
    fn adam_epsilon() {
        let keras_default = Some(("Adam", json!({"learning_rate": 0.001})));
        check(
            keras_default.clone(),
            Some(("Adam", json!({"lr": 0.001}))),
            None,
            &[("adam-epsilon-hat", Severity::Low)],
        );
        check(
            keras_default,
            Some(("Adam", json!({"lr": 0.001, "eps": 1e-7}))),
            None,
            &[("adam-epsilon-hat", Severity::Info)],
        );
    }

    #[test]
    fn optimizer_defaults() {
        check(
            Some(("SGD", json!({}))),
            Some(("SGD", json!({}))),
            None,
            &[("sgd-default-lr", Severity::High)],
        );
        check(
            Some(("SGD", json!({"learning_rate": 0.05, "momentum": 0.9}))),
            Some(("SGD", json!({"lr": 0.05, "momentum": 0.9}))),
            None,
            &[],
        );
        check(
            Some(("AdamW", json!({"epsilon": 0.0}))),
            Some(("AdamW", json!({"eps": 0.0}))),
            None,
            &[("adamw-default-decay", Severity::Medium)],
        );
        check(
            Some(("Adam", json!({"epsilon": 0.0, "weight_decay": 0.05}))),
            Some(("Adam", json!({"eps": 0.0, "weight_decay": 0.05}))),
            None,
            &[("adam-weight-decay-coupling", Severity::Medium)],
        );
        check(
            Some(("Adadelta", json!({}))),
            Some(("Adadelta", json!({}))),
            None,
            &[("adadelta-defaults", Severity::High)],
        );
        check(
            Some(("Adadelta", json!({"learning_rate": 1.0}))),
            Some(("Adadelta", json!({"rho": 0.95, "eps": 1e-7}))),
            None,
            &[],
        );
        check(
            Some(("Nadam", json!({}))),
            Some(("NAdam", json!({"lr": 0.001, "eps": 1e-7}))),
            None,
            &[("nadam-momentum-schedule", Severity::High)],
        );
        check(
            Some(("SGD", json!({"learning_rate": 0.1, "clipnorm": 1.0}))),
            Some(("SGD", json!({"lr": 0.1}))),
            None,
            &[("clipnorm-per-tensor-vs-global", Severity::Medium)],
        );
    }

    #[test]
    fn losses() {
        // The faithful MLP outputs softmax on the Keras side and logits on the torch side.
        let (k, mut t) = faithful_mlp();
        t.nodes.push(crate::testkit::act(
            model_ir::Framework::Torch,
            "softmax",
            "fc2",
            model_ir::Activation::Softmax { axis: 1 },
        ));
        t.outputs = vec!["softmax".into()];
        assert_eq!(
            ids(k, t),
            vec![("double-softmax".to_string(), Severity::High)]
        );
        check(
            None,
            None,
            Some(("CrossEntropyLoss", json!({"label_smoothing": 0.1}))),
            &[("label-smoothing", Severity::Medium)],
        );
        check(
            None,
            None,
            Some(("MSELoss", json!({}))),
            &[("loss-mismatch", Severity::High)],
        );
    }

    #[test]
    fn l2_regularizer_vs_weight_decay() {
        let run = |wd: f64| {
            let (mut k, mut t) = faithful_mlp();
            train(
                &mut k,
                "SGD",
                json!({"learning_rate": 0.01}),
                "categorical_crossentropy",
                json!({}),
            );
            k.training.as_mut().unwrap().regularizers.insert(
                "d1/kernel".into(),
                model_ir::WeightRegularizer { l1: 0.0, l2: 0.001 },
            );
            train(
                &mut t,
                "SGD",
                json!({"lr": 0.01}),
                "CrossEntropyLoss",
                json!({}),
            );
            t.training.as_mut().unwrap().param_groups = Some(vec![model_ir::ParamGroup {
                params: vec!["fc1.weight".into()],
                overrides: json!({"weight_decay": wd}).as_object().unwrap().clone(),
            }]);
            ids(k, t)
        };
        assert_eq!(run(0.002), vec![]);
        assert_eq!(
            run(0.001),
            vec![("l2-regularizer-factor-two".to_string(), Severity::Medium)]
        );
    }

    #[test]
    fn frozen_bias_hh_group_is_the_exact_lstm_port() {
        let run = |frozen: &str| {
            let (mut k, mut t) = crate::testkit::rnn_pair(true, true);
            train(
                &mut k,
                "SGD",
                json!({"learning_rate": 0.1}),
                "mse",
                json!({}),
            );
            train(&mut t, "SGD", json!({"lr": 0.1}), "MSELoss", json!({}));
            t.training.as_mut().unwrap().param_groups = Some(vec![model_ir::ParamGroup {
                params: vec![frozen.into()],
                overrides: json!({"lr": 0.0}).as_object().unwrap().clone(),
            }]);
            ids(k, t)
        };
        assert_eq!(run("rnn.bias_hh_l0"), vec![]);
        assert_eq!(
            run("rnn.weight_ih_l0"),
            vec![("sgd-default-lr".to_string(), Severity::High)]
        );
    }

    #[test]
    fn batch_size_and_shuffle() {
        let (k, mut t) = faithful_mlp();
        let tt = t.training.as_mut().unwrap();
        tt.batch_size = 1;
        tt.shuffle = false;
        assert_eq!(
            ids(k, t),
            vec![("fit-batch-shuffle-defaults".to_string(), Severity::High)]
        );
    }

    #[test]
    fn families() {
        assert_eq!(
            Family::of_keras_name("sparse_categorical_crossentropy"),
            Family::CrossEntropy
        );
        assert_eq!(
            Family::of_keras_name("CategoricalCrossentropy"),
            Family::CrossEntropy
        );
        assert_eq!(Family::of_keras_name("mse"), Family::Mse);
        assert_eq!(Family::of_torch_name("BCEWithLogitsLoss"), Family::Binary);
    }
}
