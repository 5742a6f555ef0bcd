//! The loss comparison: family, output activation vs `from_logits`, per-family conventions,
//! reduction and target shape.

use super::*;

fn act_name(a: Option<&model_ir::Activation>) -> String {
    a.map_or_else(|| "linear (logits)".to_string(), |a| a.describe())
}

pub(super) fn loss(
    kb: &Bundle,
    tb: &Bundle,
    tshapes: &Shapes,
    out: &mut Findings,
    not_checked: &mut Vec<NotChecked>,
) {
    let (Some(kt), Some(tt)) = (&kb.model.training, &tb.model.training) else {
        return;
    };
    let (Some(kl), Some(tl)) = (&kt.loss, &tt.loss) else {
        not_checked.push(NotChecked {
            what: "loss".into(),
            reason: "one of the bundles records no loss".into(),
        });
        return;
    };
    if kl.class_name == "per_output" {
        not_checked.push(NotChecked {
            what: "loss".into(),
            reason:
                "the Keras model has one loss per output; only single-output losses are compared"
                    .into(),
        });
        return;
    }
    let kf = kl.family();
    let tf = tl.family();
    // The activation each model's output ends in, through shape-only ops; when a shape-only
    // op moves the softmax axis, what the loss receives cannot be told: refuse, don't guess.
    let ends = [
        ("Keras", crate::graph::output_end(&kb.model)),
        ("torch", crate::graph::output_end(&tb.model)),
    ];
    let mut acts: Vec<Option<model_ir::Activation>> = Vec::new();
    let mut undecided = false;
    for (side, end) in ends {
        match end {
            Some(crate::graph::OutputEnd::Known { activation, .. }) => acts.push(activation),
            Some(crate::graph::OutputEnd::Undecided { node, reason }) => {
                not_checked.push(NotChecked {
                    what: format!(
                        "{side} output activation (`{}`) against the loss",
                        node.name
                    ),
                    reason,
                });
                undecided = true;
                acts.push(None);
            }
            None => acts.push(None),
        }
    }
    let kact = acts[0].as_ref();
    let tact = acts[1].as_ref();
    let layer_of = |m: &Model| crate::graph::output_source(m).map(|n| n.name.clone());
    let knode = layer_of(&kb.model);
    let tnode = layer_of(&tb.model);
    let from_logits = kl
        .config
        .get("from_logits")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let keras_loss_desc = if from_logits {
        format!("{}(from_logits=True)", kl.class_name)
    } else {
        kl.class_name.clone()
    };
    let backend = kt.backend.unwrap_or_default().name();
    let layer = knode
        .as_deref()
        .zip(tnode.as_deref())
        .and_then(|(k, t)| pair_label(k, t));

    if kf != tf || kf == Family::Other {
        out.set_title(
            Id::LossMismatch,
            format!(
                "the two sides train on different losses: Keras {keras_loss_desc}, torch {}",
                tl.class_name
            ),
        );
        out.add(
            Id::LossMismatch,
            Severity::High,
            2.0,
            vec![ev("loss", keras_loss_desc, tl.class_name.clone(), None)],
            "use the torch loss that matches the Keras one",
            "nothing to change on this side",
        );
        return;
    }
    let s = Sides {
        kt,
        kl,
        tl,
        kact,
        tact,
        keras_loss_desc,
        from_logits,
        backend,
        layer,
    };
    match kf {
        // Both compare the output activation with the loss: not when it is undecided.
        Family::CrossEntropy | Family::Binary if undecided => {}
        Family::CrossEntropy => crossentropy(&s, out),
        Family::Binary => binary(&s, out),
        Family::Kld => kld(&s, out),
        Family::Poisson => poisson(&s, out),
        Family::Cosine => cosine(&s, out),
        Family::Mse | Family::Mae | Family::Huber | Family::Hinge | Family::Other => {}
    }
    // Reduction.
    let kr = cfg_str(&kl.config, "reduction").unwrap_or("sum_over_batch_size");
    let tr = cfg_str(&tl.config, "reduction").unwrap_or("mean");
    let k_mean = matches!(kr, "sum_over_batch_size" | "auto" | "mean");
    let t_mean = tr == "mean" || tr == "batchmean";
    if k_mean != t_mean || (kr == "sum" && tr == "sum" && !matches!(kf, Family::CrossEntropy)) {
        out.set_title(
            Id::LossPerSampleMeanAndSum,
            format!("loss reduction differs: Keras reduction='{kr}', torch reduction='{tr}'"),
        );
        out.add(
            Id::LossPerSampleMeanAndSum,
            Severity::Medium,
            1.0,
            vec![ev("loss reduction", kr, tr, None)],
            "reduction='none', then .mean(-1) per sample, then the Keras reduction",
            "nothing to change on this side",
        );
    }
    // Target shape against the output shape (element-wise losses broadcast in torch).
    if matches!(
        kf,
        Family::Mse | Family::Mae | Family::Huber | Family::Binary
    ) && let Some(y) = tb.inputs.as_ref().and_then(|f| f.get("y"))
        && let Some(o) = tb.model.outputs.first().and_then(|o| tshapes.get(o))
    {
        let ys = y.shape();
        if ys.len() + 1 == o.len() && o.last() == Some(&Some(1)) {
            out.set_title(
                Id::TargetShapeBroadcast,
                format!(
                    "torch target {ys:?} broadcasts against the output {} to (N, N)",
                    show_shape(o)
                ),
            );
            out.add(
                Id::TargetShapeBroadcast,
                Severity::High,
                3.0,
                vec![ev(
                    "target vs output shape",
                    "Keras squeezes/expands the last axis to match",
                    format!(
                        "y {ys:?} against output {}: broadcasts to (N, N)",
                        show_shape(o)
                    ),
                    None,
                )],
                "loss_fn(output, y.view_as(output))",
                "nothing to change on this side",
            );
        }
    }
}

/// What the per-family checks read of the two losses and the outputs they score.
struct Sides<'a> {
    /// The Keras training configuration (`class_weight`).
    kt: &'a TrainingConfig,
    kl: &'a model_ir::LossSpec,
    tl: &'a model_ir::LossSpec,
    /// The activation ending each model's output (`None`: logits).
    kact: Option<&'a model_ir::Activation>,
    tact: Option<&'a model_ir::Activation>,
    /// The Keras loss as written (`from_logits=True` shown).
    keras_loss_desc: String,
    from_logits: bool,
    /// The Keras backend's name.
    backend: &'static str,
    /// The output layer pair's label.
    layer: Option<String>,
}

fn is_softmax(a: Option<&model_ir::Activation>) -> bool {
    matches!(a, Some(model_ir::Activation::Softmax { .. }))
}

fn is_sigmoid(a: Option<&model_ir::Activation>) -> bool {
    matches!(a, Some(model_ir::Activation::Sigmoid))
}

fn is_logsoftmax(a: Option<&model_ir::Activation>) -> bool {
    matches!(a, Some(model_ir::Activation::LogSoftmax { .. }))
}

/// Categorical crossentropy: the torch loss against the output activation and `from_logits`.
fn crossentropy(s: &Sides<'_>, out: &mut Findings) {
    let kt = s.kt;
    let kl = s.kl;
    let tl = s.tl;
    let kact = s.kact;
    let tact = s.tact;
    let keras_loss_desc = &s.keras_loss_desc;
    let from_logits = s.from_logits;
    let backend = s.backend;
    let layer = &s.layer;
    // Torch side.
    match tl.class_name.as_str() {
        "CrossEntropyLoss" if is_softmax(tact) => {
            out.set_title(
                Id::DoubleSoftmax,
                format!(
                    "softmax applied twice: the torch model ends in {} and CrossEntropyLoss applies log_softmax again",
                    act_name(tact)
                ),
            );
            out.add(
            Id::DoubleSoftmax,
            Severity::High,
            3.0,
            vec![ev(
                "model output fed to the loss",
                format!("{} → {keras_loss_desc}", act_name(kact)),
                format!(
                    "{} → CrossEntropyLoss (applies log_softmax again)",
                    act_name(tact)
                ),
                layer.clone(),
            )],
            "remove torch.softmax from forward(); CrossEntropyLoss applies log_softmax itself\nprobs = torch.softmax(model(x), dim=1)  # at inference only",
            "nothing to change on this side: Dense(C, activation='softmax') with a from_logits=False loss is correct",
        );
        }
        "NLLLoss" if !is_logsoftmax(tact) => {
            out.set_title(
                Id::LossMismatch,
                format!(
                    "torch {} output fed to NLLLoss, which expects log-probabilities",
                    act_name(tact)
                ),
            );
            out.add(
                Id::LossMismatch,
                Severity::High,
                2.0,
                vec![ev(
                    "model output fed to NLLLoss (expects log-probabilities)",
                    act_name(kact),
                    act_name(tact),
                    layer.clone(),
                )],
                "end forward with log_softmax(dim=1), or use CrossEntropyLoss on logits",
                "nothing to change on this side",
            );
        }
        _ => {}
    }
    // Keras side.
    if from_logits && is_softmax(kact) {
        out.set_title(
            Id::DoubleSoftmax,
            format!(
                "softmax applied twice: the Keras model ends in {} and {keras_loss_desc} applies softmax again",
                act_name(kact)
            ),
        );
        out.add(
            Id::DoubleSoftmax,
            Severity::High,
            3.0,
            vec![ev(
                "Keras model output fed to the loss",
                format!(
                    "{} → {keras_loss_desc} (applies softmax again)",
                    act_name(kact)
                ),
                format!("{} → {}", act_name(tact), tl.class_name),
                layer.clone(),
            )],
            "nothing to change on this side",
            "from_logits=False (the model already outputs probabilities), or a linear output layer",
        );
    } else if !from_logits && kact.is_none() {
        out.set_title(
            Id::LossMismatch,
            format!(
                "Keras {} output fed to {keras_loss_desc}, which expects probabilities",
                act_name(kact)
            ),
        );
        out.add(
            Id::LossMismatch,
            Severity::High,
            2.0,
            vec![ev(
                "Keras model output fed to a probability loss",
                format!("{} → {keras_loss_desc}", act_name(kact)),
                format!("{} → {}", act_name(tact), tl.class_name),
                layer.clone(),
            )],
            "nothing to change on this side",
            "from_logits=True",
        );
    } else if !from_logits && is_softmax(kact) && backend != "tensorflow" && !is_softmax(tact) {
        out.set_title(
            Id::CceProbabilityClipping,
            format!(
                "Keras (backend `{backend}`) clips the probabilities in {keras_loss_desc}; torch {} works on exact logits",
                tl.class_name
            ),
        );
        out.add(
            Id::CceProbabilityClipping,
            Severity::Low,
            0.5,
            vec![ev(
                format!("cross-entropy on probabilities (Keras backend `{backend}`)"),
                "p clipped to [1e-7, 1 − 1e-7]: loss capped at 16.1, no gradient beyond",
                "exact log_softmax of the logits",
                layer.clone(),
            )],
            "CrossEntropyLoss on torch.log(softmax(z).clamp(1e-7, 1 - 1e-7)) via NLLLoss to emulate the clip",
            "a linear output and from_logits=True",
        );
    }
    // Label smoothing.
    let ks = cfg_f64(&kl.config, "label_smoothing").unwrap_or(0.0);
    let ts = cfg_f64(&tl.config, "label_smoothing").unwrap_or(0.0);
    if differs(ks, ts) && (ks > 0.0 || ts > 0.0) {
        out.set_title(
            Id::LabelSmoothing,
            format!(
                "label smoothing differs (Keras {}, torch {})",
                num(ks),
                num(ts)
            ),
        );
        let sparse = kl.class_name.to_ascii_lowercase().contains("sparse");
        out.add(
            Id::LabelSmoothing,
            Severity::Medium,
            (ks - ts).abs() * 10.0,
            vec![ev("label smoothing", num(ks), num(ts), None)],
            format!("nn.CrossEntropyLoss(label_smoothing={})", num(ks)),
            if sparse && ts > 0.0 {
                format!(
                    "SparseCategoricalCrossentropy has no label_smoothing: one-hot the labels and use CategoricalCrossentropy(label_smoothing={})",
                    num(ts)
                )
            } else {
                format!("CategoricalCrossentropy(label_smoothing={})", num(ts))
            },
        );
    }
    // Class weights.
    let tw = tl.config.get("weight").is_some_and(|w| !w.is_null());
    if tw || kt.class_weight.is_some() {
        out.set_title(
            Id::LossReductionWeights,
            format!(
                "class weights are normalised differently: Keras {}, torch {}",
                if kt.class_weight.is_some() {
                    "class_weight, Σ wᵢℓᵢ / N"
                } else {
                    "no class_weight"
                },
                if tw {
                    "CrossEntropyLoss(weight=w), Σ wᵢℓᵢ / Σ wᵢ"
                } else {
                    "no weight"
                }
            ),
        );
        out.add(
            Id::LossReductionWeights,
            Severity::Medium,
            1.0,
            vec![ev(
                "class weights and the mean's denominator",
                kt.class_weight.as_ref().map_or_else(
                    || "none".to_string(),
                    |w| format!("class_weight {w:?}: Σ wᵢℓᵢ / N"),
                ),
                if tw {
                    "CrossEntropyLoss(weight=w): Σ wᵢℓᵢ / Σ wᵢ".to_string()
                } else {
                    "none".to_string()
                },
                None,
            )],
            "(F.cross_entropy(z, y, reduction='none') * w[y]).sum() / y.numel()",
            "reduction='mean_with_sample_weight'",
        );
    }
}

/// Binary crossentropy: sigmoid outputs, logits and the Keras clip.
fn binary(s: &Sides<'_>, out: &mut Findings) {
    let kt = s.kt;
    let kl = s.kl;
    let tl = s.tl;
    let kact = s.kact;
    let tact = s.tact;
    let keras_loss_desc = &s.keras_loss_desc;
    let from_logits = s.from_logits;
    let backend = s.backend;
    let layer = &s.layer;
    let t_logits = tl.class_name == "BCEWithLogitsLoss";
    if t_logits && is_sigmoid(tact) {
        out.set_title(
            Id::DoubleSoftmax,
            format!(
                "sigmoid applied twice: the torch model ends in {} and BCEWithLogitsLoss applies sigmoid again",
                act_name(tact)
            ),
        );
        out.add(
            Id::DoubleSoftmax,
            Severity::High,
            3.0,
            vec![ev(
                "model output fed to the loss",
                format!("{} → {keras_loss_desc}", act_name(kact)),
                format!(
                    "{} → BCEWithLogitsLoss (applies sigmoid again)",
                    act_name(tact)
                ),
                layer.clone(),
            )],
            "remove torch.sigmoid from forward; BCEWithLogitsLoss applies it",
            "nothing to change on this side",
        );
    } else if !t_logits {
        // torch BCELoss on probabilities: log clamped at −100, non-zero gradient.
        let keras_exact = from_logits || (backend == "tensorflow" && is_sigmoid(kact));
        out.set_title(
            Id::BceClipping,
            format!(
                "binary cross-entropy clips differently: Keras {keras_loss_desc} {} (backend `{backend}`), torch {} on probabilities (log clamped at −100)",
                if keras_exact {
                    "exact"
                } else {
                    "clips p to [1e-7, 1 − 1e-7]"
                },
                tl.class_name
            ),
        );
        out.add(
            Id::BceClipping,
            if keras_exact { Severity::Medium } else { Severity::Low },
            1.0,
            vec![ev(
                "binary cross-entropy on probabilities",
                if keras_exact {
                    "exact, computed from the logits".to_string()
                } else {
                    "p clipped to [1e-7, 1 − 1e-7]: at most 16.1 per element, zero gradient beyond".to_string()
                },
                "BCELoss: log clamped at −100, gradient (p − y)/max(p(1 − p), 1e-12)".to_string(),
                layer.clone(),
            )],
            "return logits from forward and use nn.BCEWithLogitsLoss() (or F.binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), y) to copy Keras's clip)",
            "nothing to change on this side",
        );
    } else if !from_logits && is_sigmoid(kact) && backend != "tensorflow" {
        out.set_title(
            Id::BceClipping,
            format!(
                "binary cross-entropy clips differently: Keras {keras_loss_desc} clips p to [1e-7, 1 − 1e-7] (backend `{backend}`), torch BCEWithLogitsLoss is exact on logits"
            ),
        );
        out.add(
            Id::BceClipping,
            Severity::Low,
            0.5,
            vec![ev(
                format!("binary cross-entropy (Keras backend `{backend}`)"),
                "p clipped to [1e-7, 1 − 1e-7]",
                "exact on logits (BCEWithLogitsLoss)",
                layer.clone(),
            )],
            "F.binary_cross_entropy(torch.sigmoid(z).clamp(1e-7, 1 - 1e-7), y) to copy Keras's clip",
            "a linear output and from_logits=True",
        );
    }
    let ks = cfg_f64(&kl.config, "label_smoothing").unwrap_or(0.0);
    if ks > 0.0 {
        out.set_title(
            Id::LabelSmoothing,
            format!(
                "label smoothing differs (Keras {}, torch {} has none)",
                num(ks),
                tl.class_name
            ),
        );
        out.add(
            Id::LabelSmoothing,
            Severity::Medium,
            ks * 10.0,
            vec![ev(
                "label smoothing",
                num(ks),
                "none (torch BCE losses have no smoothing)",
                None,
            )],
            format!("y = y * (1 - {0}) + {0} / 2 before the loss", num(ks)),
            "label_smoothing=0",
        );
    }
    if tl.config.get("pos_weight").is_some_and(|w| !w.is_null()) || kt.class_weight.is_some() {
        out.set_title(
            Id::LossReductionWeights,
            format!(
                "class weights are applied differently: Keras {}, torch {}",
                if kt.class_weight.is_some() {
                    "class_weight"
                } else {
                    "no class_weight"
                },
                tl.config
                    .get("pos_weight")
                    .filter(|w| !w.is_null())
                    .map_or("no pos_weight".into(), |v| format!("pos_weight {v}"))
            ),
        );
        out.add(
            Id::LossReductionWeights,
            Severity::Medium,
            1.0,
            vec![ev(
                "class weights",
                format!("{:?}", kt.class_weight),
                format!(
                    "pos_weight {}",
                    tl.config
                        .get("pos_weight")
                        .map_or("none".into(), |v| v.to_string())
                ),
                None,
            )],
            "weight the per-sample losses exactly as Keras's class_weight does, divided by N",
            "nothing to change on this side",
        );
    }
}

/// Kullback-Leibler divergence.
fn kld(s: &Sides<'_>, out: &mut Findings) {
    let tl = s.tl;
    let r = cfg_str(&tl.config, "reduction").unwrap_or("mean");
    if r != "batchmean" {
        out.set_title(
            Id::KldPoissonCosine,
            format!(
                "KL divergence reduction differs: Keras sums over classes and means over the batch, torch {} reduction='{r}'",
                tl.class_name
            ),
        );
        out.add(
            Id::KldPoissonCosine,
            Severity::Medium,
            1.0,
            vec![ev(
                "KL divergence reduction",
                "Σ over classes, mean over the batch",
                "reduction='mean': divides by N·C as well",
                None,
            )],
            "nn.KLDivLoss(reduction='batchmean') on log-probabilities",
            "nothing to change on this side",
        );
    }
}

/// Poisson.
fn poisson(s: &Sides<'_>, out: &mut Findings) {
    let tl = s.tl;
    if tl
        .config
        .get("log_input")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true)
    {
        out.set_title(
            Id::KldPoissonCosine,
            format!(
                "Poisson loss input differs: Keras {} takes rates, torch {} log_input=True takes log-rates",
                s.kl.class_name, tl.class_name
            ),
        );
        out.add(
            Id::KldPoissonCosine,
            Severity::High,
            1.0,
            vec![ev(
                "Poisson loss input",
                "rates ŷ: ŷ − y·log(ŷ + 1e-7)",
                "log_input=True: expects log-rates, exp(x) − y·x",
                None,
            )],
            "nn.PoissonNLLLoss(log_input=False, eps=1e-7)",
            "nothing to change on this side",
        );
    }
}

/// Cosine similarity.
fn cosine(s: &Sides<'_>, out: &mut Findings) {
    let tl = s.tl;
    out.set_title(
        Id::KldPoissonCosine,
        format!(
            "cosine loss conventions differ: Keras {} minimises −cos, torch {}",
            s.kl.class_name, tl.class_name
        ),
    );
    out.add(
        Id::KldPoissonCosine,
        Severity::Low,
        0.5,
        vec![ev(
            "cosine loss",
            "−cos (minimized)",
            format!("{} (1 − cos or +cos)", tl.class_name),
            None,
        )],
        "loss = -F.cosine_similarity(a, b).mean()",
        "nothing to change on this side",
    );
}
