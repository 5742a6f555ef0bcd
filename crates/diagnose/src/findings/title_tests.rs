//! Every finding title a detector builds from configuration states that pair's own values and
//! only the parts that differ: each pair below uses values that are not the frameworks'
//! defaults, and the title (and the verdict sentence that quotes the most serious one) must
//! show them and must not show a default or a part that does not differ.

use model_ir::{Activation, Framework, HardSigmoid, Model, MomentumForm, Op, VarianceEstimate};
use report::{Severity, sig};
use serde_json::{Value, json};

use crate::testkit::*;

/// One row: the pair, the id, strings the title must contain and strings it must not.
struct Row {
    name: &'static str,
    pair: (Model, Model),
    id: &'static str,
    has: Vec<String>,
    not: Vec<&'static str>,
}

fn with_opt(kopt: (&str, Value), topt: (&str, Value)) -> (Model, Model) {
    let (mut k, mut t) = faithful_mlp();
    train(
        &mut k,
        kopt.0,
        kopt.1,
        "categorical_crossentropy",
        json!({}),
    );
    train(&mut t, topt.0, topt.1, "CrossEntropyLoss", json!({}));
    (k, t)
}

fn with_torch_loss(loss: &str, cfg: Value) -> (Model, Model) {
    let (k, mut t) = faithful_mlp();
    let o = t.training.as_ref().unwrap().optimizer.clone().unwrap();
    train(&mut t, &o.class_name, o.config, loss, cfg);
    (k, t)
}

fn act_pair(ka: Activation, ta: Activation) -> (Model, Model) {
    let (mut k, mut t) = faithful_mlp();
    if let Op::Dense { activation, .. } = &mut k.nodes[0].op {
        *activation = ka;
    }
    t.nodes[1].op = Op::Activation { function: ta };
    (k, t)
}

fn norm_node(fw: Framework, op: Op, roles: &[(model_ir::ParamRole, f32, &str)]) -> model_ir::Node {
    node(
        fw,
        "norm",
        op,
        "x",
        roles
            .iter()
            .map(|(r, v, n)| {
                let name = match fw {
                    Framework::Keras => format!("norm/{n}"),
                    Framework::Torch => format!("norm.{n}"),
                };
                param(
                    &name,
                    *r,
                    model_ir::ParamLayout::Vector,
                    tensor(&[4], vec![*v; 4]),
                )
            })
            .collect(),
    )
}

fn bn_pair(
    (ke, km, kv): (f64, MomentumForm, VarianceEstimate),
    (te, tm, tv): (f64, MomentumForm, VarianceEstimate),
) -> (Model, Model) {
    use model_ir::ParamRole as R;
    let roles = [
        (R::Gamma, 1.0f32, "gamma"),
        (R::Beta, 0.0, "beta"),
        (R::MovingMean, 0.0, "moving_mean"),
        (R::MovingVariance, 1.0, "moving_variance"),
    ];
    let op = |eps, m, var| Op::BatchNorm {
        axis: -1,
        epsilon: eps,
        momentum: m,
        running_variance: var,
        center: true,
        scale: true,
        trainable: true,
        track_running_stats: true,
        training_mode: None,
    };
    (
        model(
            Framework::Keras,
            &[4],
            vec![norm_node(Framework::Keras, op(ke, km, kv), &roles)],
        ),
        model(
            Framework::Torch,
            &[4],
            vec![norm_node(Framework::Torch, op(te, tm, tv), &roles)],
        ),
    )
}

fn ln_pair(ke: f64, te: f64) -> (Model, Model) {
    use model_ir::ParamRole as R;
    let roles = [(R::Gamma, 1.0f32, "gamma"), (R::Beta, 0.0, "beta")];
    let op = |eps| Op::LayerNorm {
        axes: vec![-1],
        epsilon: eps,
        center: true,
        scale: true,
        rms_scaling: false,
    };
    (
        model(
            Framework::Keras,
            &[4],
            vec![norm_node(Framework::Keras, op(ke), &roles)],
        ),
        model(
            Framework::Torch,
            &[4],
            vec![norm_node(Framework::Torch, op(te), &roles)],
        ),
    )
}

fn rows() -> Vec<Row> {
    let keep = |m| MomentumForm::KeepOld(m);
    let take = |m| MomentumForm::TakeNew(m);
    let biased = VarianceEstimate::Biased;
    let mut v = vec![
        Row {
            name: "BatchNorm epsilon 0.002 vs 0.8",
            pair: bn_pair((0.002, keep(0.7), biased), (0.8, take(0.3), biased)),
            id: "bn-epsilon",
            has: vec![format!("Keras {}, torch {}", sig(0.002), sig(0.8))],
            not: vec!["1e-3", "0.001", "1e-5", "1e-05"],
        },
        Row {
            name: "BatchNorm momentum keep 0.7 vs torch momentum 0.4",
            pair: bn_pair((0.002, keep(0.7), biased), (0.002, take(0.4), biased)),
            id: "bn-momentum-convention",
            has: vec![sig(0.3), sig(0.4)],
            not: vec!["0.99", "epsilon"],
        },
        Row {
            name: "BatchNorm running variance",
            pair: bn_pair(
                (0.002, keep(0.7), biased),
                (0.002, take(0.3), VarianceEstimate::Unbiased),
            ),
            id: "bn-running-var-bias",
            has: vec!["Keras biased".into(), "torch unbiased".into()],
            not: vec!["epsilon", "momentum"],
        },
        Row {
            name: "LayerNorm epsilon 0.002 vs 0.3",
            pair: ln_pair(0.002, 0.3),
            id: "layernorm-eps-axis",
            has: vec![format!(
                "epsilon (Keras {}, torch {})",
                sig(0.002),
                sig(0.3)
            )],
            not: vec!["axes", "1e-5", "1e-05", "0.001"],
        },
        Row {
            name: "RMSprop: only the epsilon placement differs",
            pair: with_opt(
                (
                    "RMSprop",
                    json!({"learning_rate": 0.003, "rho": 0.8, "epsilon": 1e-6}),
                ),
                ("RMSprop", json!({"lr": 0.003, "alpha": 0.8, "eps": 1e-6})),
            ),
            id: "rmsprop-eps-and-rho",
            has: vec![format!("epsilon placement ({} on both sides)", sig(1e-6))],
            not: vec!["rho", "alpha", "learning rate", "1e-07", "1e-08"],
        },
        Row {
            name: "RMSprop: learning rate 0.003 vs 0.02",
            pair: with_opt(
                (
                    "RMSprop",
                    json!({"learning_rate": 0.003, "rho": 0.8, "epsilon": 0.0}),
                ),
                ("RMSprop", json!({"lr": 0.02, "alpha": 0.8, "eps": 0.0})),
            ),
            id: "rmsprop-eps-and-rho",
            has: vec![format!(
                "learning rate (Keras {}, torch {})",
                sig(0.003),
                sig(0.02)
            )],
            not: vec!["rho", "alpha", "epsilon", "0.001"],
        },
        Row {
            name: "SGD learning rate 0.05 vs 0.2",
            pair: with_opt(
                ("SGD", json!({"learning_rate": 0.05})),
                ("SGD", json!({"lr": 0.2})),
            ),
            id: "sgd-default-lr",
            has: vec![format!(
                "learning rate (Keras {}, torch {})",
                sig(0.05),
                sig(0.2)
            )],
            not: vec!["0.01", "0.001", "momentum"],
        },
        Row {
            name: "AdamW weight decay 0.03 vs 0.07",
            pair: with_opt(
                ("AdamW", json!({"weight_decay": 0.03, "epsilon": 0.0})),
                ("AdamW", json!({"weight_decay": 0.07, "eps": 0.0})),
            ),
            id: "adamw-default-decay",
            has: vec![sig(0.03), sig(0.07)],
            not: vec!["0.004", "0.01 "],
        },
        Row {
            name: "Adamax learning rate 0.004 vs 0.03",
            pair: with_opt(
                ("Adamax", json!({"learning_rate": 0.004, "epsilon": 0.0})),
                ("Adamax", json!({"lr": 0.03, "eps": 0.0})),
            ),
            id: "adamax-eps-placement",
            has: vec![format!(
                "learning rate (Keras {}, torch {})",
                sig(0.004),
                sig(0.03)
            )],
            not: vec!["epsilon", "0.002"],
        },
        Row {
            name: "gradient clipping",
            pair: with_opt(
                ("SGD", json!({"learning_rate": 0.05, "clipnorm": 2.5})),
                ("SGD", json!({"lr": 0.05})),
            ),
            id: "clipnorm-per-tensor-vs-global",
            has: vec![format!("clipnorm={}", sig(2.5)), "no clipping".into()],
            not: vec!["global_clipnorm"],
        },
        Row {
            name: "EMA momentum 0.95",
            pair: with_opt(
                (
                    "SGD",
                    json!({"learning_rate": 0.05, "use_ema": true, "ema_momentum": 0.95}),
                ),
                ("SGD", json!({"lr": 0.05})),
            ),
            id: "ema-weights",
            has: vec![sig(0.95)],
            not: vec!["0.99"],
        },
        Row {
            name: "optimizer class",
            pair: with_opt(
                ("SGD", json!({"learning_rate": 0.05})),
                ("Adagrad", json!({"lr": 0.05})),
            ),
            id: "optimizer-mismatch",
            has: vec!["Keras SGD".into(), "torch Adagrad".into()],
            not: vec!["hyper-parameters"],
        },
        Row {
            name: "LeakyReLU slope 0.15 vs 0.25",
            pair: act_pair(
                Activation::LeakyRelu { slope: 0.15 },
                Activation::LeakyRelu { slope: 0.25 },
            ),
            id: "leaky-relu-slope",
            has: vec![format!("Keras {}, torch {}", sig(0.15), sig(0.25))],
            not: vec!["0.3", "0.2,", "0.01"],
        },
        Row {
            name: "hard_sigmoid definitions",
            pair: act_pair(
                Activation::HardSigmoid(HardSigmoid::LEGACY),
                Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH),
            ),
            id: "hard-sigmoid-definition",
            has: vec![
                Activation::HardSigmoid(HardSigmoid::LEGACY).describe(),
                Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH).describe(),
            ],
            not: vec![],
        },
        Row {
            name: "GELU forms",
            pair: act_pair(
                Activation::Gelu { approximate: true },
                Activation::Gelu { approximate: false },
            ),
            id: "gelu-approximate",
            has: vec!["Keras tanh approximation, torch exact (erf)".into()],
            not: vec![],
        },
        Row {
            name: "label smoothing 0 vs 0.15",
            pair: with_torch_loss("CrossEntropyLoss", json!({"label_smoothing": 0.15})),
            id: "label-smoothing",
            has: vec![format!("Keras {}, torch {}", sig(0.0), sig(0.15))],
            not: vec!["0.1)"],
        },
        Row {
            name: "loss reduction sum",
            pair: with_torch_loss("CrossEntropyLoss", json!({"reduction": "sum"})),
            id: "loss-per-sample-mean-and-sum",
            has: vec![
                "reduction='sum_over_batch_size'".into(),
                "reduction='sum'".into(),
            ],
            not: vec!["mean'"],
        },
        Row {
            name: "different losses",
            pair: with_torch_loss("L1Loss", json!({})),
            id: "loss-mismatch",
            has: vec![
                "Keras categorical_crossentropy".into(),
                "torch L1Loss".into(),
            ],
            not: vec!["MSE"],
        },
        Row {
            name: "double softmax",
            pair: {
                let (k, mut t) = faithful_mlp();
                t.nodes.push(act(
                    Framework::Torch,
                    "softmax",
                    "fc2",
                    Activation::Softmax { axis: 1 },
                ));
                t.outputs = vec!["softmax".into()];
                (k, t)
            },
            id: "double-softmax",
            has: vec![Activation::Softmax { axis: 1 }.describe()],
            not: vec!["sigmoid"],
        },
        Row {
            name: "batch size 7 vs 3, neither shuffles",
            pair: {
                let (mut k, mut t) = faithful_mlp();
                let kt = k.training.as_mut().unwrap();
                kt.batch_size = 7;
                kt.shuffle = false;
                let tt = t.training.as_mut().unwrap();
                tt.batch_size = 3;
                tt.shuffle = false;
                tt.epochs = kt.epochs;
                tt.drop_last = kt.drop_last;
                (k, t)
            },
            id: "fit-batch-shuffle-defaults",
            has: vec!["batch size (Keras 7, torch 3)".into()],
            not: vec!["shuffl", "epochs", "batch order", "32"],
        },
    ];
    // L2 regularizer λ = 0.003 ported as weight_decay = λ (half the gradient).
    let (mut k, mut t) = with_opt(
        ("SGD", json!({"learning_rate": 0.05})),
        ("SGD", json!({"lr": 0.05})),
    );
    k.training.as_mut().unwrap().regularizers.insert(
        "d1/kernel".into(),
        model_ir::WeightRegularizer { l1: 0.0, l2: 0.003 },
    );
    t.training.as_mut().unwrap().param_groups = Some(vec![model_ir::ParamGroup {
        params: vec!["fc1.weight".into()],
        overrides: json!({"weight_decay": 0.003}).as_object().unwrap().clone(),
    }]);
    v.push(Row {
        name: "L2 0.003 vs weight_decay 0.003",
        pair: (k, t),
        id: "l2-regularizer-factor-two",
        has: vec![
            format!("l2={}", sig(0.003)),
            format!("gradient {}·w", sig(0.006)),
            format!("weight_decay={}", sig(0.003)),
        ],
        not: vec!["λ′"],
    });
    v
}

#[test]
fn titles_state_the_pairs_values_and_only_what_differs() {
    let mut failures = Vec::new();
    for row in rows() {
        let d = run(row.pair.0, row.pair.1);
        let Some(f) = d.findings.iter().find(|f| f.id == row.id) else {
            failures.push(format!(
                "{}: no `{}` among {:?}",
                row.name,
                row.id,
                d.findings.iter().map(|f| &f.id).collect::<Vec<_>>()
            ));
            continue;
        };
        for h in &row.has {
            if !f.title.contains(h.as_str()) {
                failures.push(format!("{}: title lacks `{h}`: {}", row.name, f.title));
            }
        }
        for n in &row.not {
            if f.title.contains(n) {
                failures.push(format!("{}: title says `{n}`: {}", row.name, f.title));
            }
        }
        // The verdict quotes the title of the most serious finding.
        if d.findings
            .iter()
            .find(|g| g.severity < Severity::Info)
            .is_some_and(|g| g.id == f.id)
        {
            if !d.verdict.contains(&f.title) {
                failures.push(format!(
                    "{}: verdict does not quote the title: {}",
                    row.name, d.verdict
                ));
            }
            // (The id's own name, quoted in the verdict, may spell a part: `rmsprop-eps-and-rho`.)
            let sentence = d.verdict.replace(&format!("`{}`", f.id), "");
            for n in &row.not {
                if sentence.contains(n) {
                    failures.push(format!("{}: verdict says `{n}`: {}", row.name, d.verdict));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// No generic title (the fallback when a detector sets none) states a value.
#[test]
fn generic_titles_state_no_value() {
    for id in catalogue::Id::ALL {
        // `TF32` (a number format) and `Keras 3` (a version) are names, not values.
        let t = id.title().replace("TF32", "").replace("Keras 3", "");
        assert!(
            !t.chars().any(|c| c.is_ascii_digit()),
            "`{id}` generic title states a value: {t}"
        );
    }
}
