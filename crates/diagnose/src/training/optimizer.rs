//! The optimizer comparison: class and hyper-parameters through `optim::equiv`, gradient
//! clipping, EMA, learning-rate schedules, weight decay, parameter groups and epsilon placement.

use super::regularizer::regularization_ported;
use super::*;

/// Field-by-field differences of two torch configurations of the same class:
/// `(field, wanted, actual)`.
fn kind_diffs(want: &topt::Kind, got: &topt::Kind) -> Vec<(String, String, String)> {
    use topt::Kind as T;
    let mut d = Vec::new();
    let mut f = |name: &str, a: f64, b: f64| {
        if differs(a, b) {
            d.push((name.to_string(), num(a), num(b)));
        }
    };
    match (want, got) {
        (
            T::Sgd {
                momentum: a,
                dampening: ad,
                nesterov: an,
            },
            T::Sgd {
                momentum: b,
                dampening: bd,
                nesterov: bn,
            },
        ) => {
            f("momentum", *a, *b);
            f("dampening", *ad, *bd);
            if an != bn {
                d.push(("nesterov".into(), an.to_string(), bn.to_string()));
            }
        }
        (
            T::Adam {
                betas: a,
                amsgrad: aa,
                ..
            },
            T::Adam {
                betas: b,
                amsgrad: ba,
                ..
            },
        )
        | (
            T::AdamW {
                betas: a,
                amsgrad: aa,
                ..
            },
            T::AdamW {
                betas: b,
                amsgrad: ba,
                ..
            },
        ) => {
            f("beta1", a.0, b.0);
            f("beta2", a.1, b.1);
            if aa != ba {
                d.push(("amsgrad".into(), aa.to_string(), ba.to_string()));
            }
        }
        (
            T::RmsProp {
                alpha: a,
                momentum: am,
                centered: ac,
                ..
            },
            T::RmsProp {
                alpha: b,
                momentum: bm,
                centered: bc,
                ..
            },
        ) => {
            f("alpha (Keras rho)", *a, *b);
            f("momentum", *am, *bm);
            if ac != bc {
                d.push(("centered".into(), ac.to_string(), bc.to_string()));
            }
        }
        (
            T::Adagrad {
                lr_decay: a,
                initial_accumulator_value: ai,
                ..
            },
            T::Adagrad {
                lr_decay: b,
                initial_accumulator_value: bi,
                ..
            },
        ) => {
            f("lr_decay", *a, *b);
            f("initial_accumulator_value", *ai, *bi);
        }
        (T::Adadelta { rho: a, eps: ae }, T::Adadelta { rho: b, eps: be }) => {
            f("rho", *a, *b);
            f("eps", *ae, *be);
        }
        (T::Adamax { betas: a, .. }, T::Adamax { betas: b, .. }) => {
            f("beta1", a.0, b.0);
            f("beta2", a.1, b.1);
        }
        (
            T::NAdam {
                betas: a,
                eps: ae,
                momentum_decay: am,
                ..
            },
            T::NAdam {
                betas: b,
                eps: be,
                momentum_decay: bm,
                ..
            },
        ) => {
            f("beta1", a.0, b.0);
            f("beta2", a.1, b.1);
            f("eps", *ae, *be);
            f("momentum_decay", *am, *bm);
        }
        _ => d.push((
            "class".into(),
            want.class_name().into(),
            got.class_name().into(),
        )),
    }
    d
}

struct Opt {
    keras: kopt::Config,
    torch: topt::Config,
}

/// One differing hyper-parameter in the title of the class's finding:
/// "RMSprop differs: learning rate (Keras 0.001, torch 0.01), ...".
fn title_item(out: &mut Findings, id: Id, kclass: &str, item: String) {
    out.title_item(id, format!("{kclass} differs"), item);
}

fn clipping(k: &kopt::Config, clip: Option<&GradClip>, out: &mut Findings) {
    let id = Id::ClipnormPerTensorVsGlobal;
    let show_t = |c: Option<&GradClip>| match c {
        None => "no clipping".to_string(),
        Some(c) => equiv::render_clip(c),
    };
    let keras_desc = if let Some(c) = k.clipnorm {
        format!("clipnorm={} (each tensor separately)", num(c))
    } else if let Some(c) = k.global_clipnorm {
        format!("global_clipnorm={}", num(c))
    } else if let Some(c) = k.clipvalue {
        format!("clipvalue={}", num(c))
    } else {
        "no clipping".to_string()
    };
    let (sev, why, fix_t) = match (k.clipnorm, k.global_clipnorm, k.clipvalue, clip) {
        (None, None, None, None) => return,
        (Some(c), _, _, _) => (
            Severity::Medium,
            "per-tensor vs global gradient norm",
            format!(
                "for p in model.parameters(): torch.nn.utils.clip_grad_norm_([p], max_norm={})",
                num(c)
            ),
        ),
        (
            None,
            Some(c),
            _,
            Some(GradClip::Norm {
                max_norm,
                norm_type,
            }),
        ) if !differs(c, *max_norm) && !differs(2.0, *norm_type) => (
            Severity::Info,
            "torch divides by (N + 1e-6), Keras by N",
            format!(
                "torch.nn.utils.clip_grad_norm_(params, max_norm={})",
                num(c)
            ),
        ),
        (None, Some(c), _, _) => (
            Severity::Medium,
            "global norm clipping differs",
            format!(
                "torch.nn.utils.clip_grad_norm_(params, max_norm={})",
                num(c)
            ),
        ),
        (None, None, Some(c), Some(GradClip::Value { clip_value })) if !differs(c, *clip_value) => {
            return;
        }
        (None, None, Some(c), _) => (
            Severity::Medium,
            "value clipping differs",
            format!(
                "torch.nn.utils.clip_grad_value_(params, clip_value={})",
                num(c)
            ),
        ),
        (None, None, None, Some(_)) => (
            Severity::Medium,
            "torch clips, Keras does not",
            "remove the clip_grad_* call".to_string(),
        ),
    };
    let fix_k = match clip {
        Some(GradClip::Norm { max_norm, .. }) => format!(
            "keras.optimizers.{}(..., global_clipnorm={})",
            k.kind.class_name(),
            num(*max_norm)
        ),
        Some(GradClip::Value { clip_value }) => format!(
            "keras.optimizers.{}(..., clipvalue={})",
            k.kind.class_name(),
            num(*clip_value)
        ),
        None => "remove the clipping argument".to_string(),
    };
    out.set_title(
        id,
        format!(
            "gradient clipping differs ({why}): Keras {keras_desc}, torch {}",
            show_t(clip)
        ),
    );
    out.add(
        id,
        sev,
        1.0,
        vec![ev(
            format!("gradient clipping ({why})"),
            keras_desc,
            show_t(clip),
            None,
        )],
        fix_t,
        fix_k,
    );
}

fn schedules(o: &mut Opt, tcfg: &TrainingConfig, out: &mut Findings) {
    let tsched = tcfg
        .scheduler
        .as_ref()
        .map(|s| SchedulerConfig::from_spec(s, None));
    let tsched = match tsched {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            out.set_title(
                Id::LrScheduleGranularity,
                format!(
                    "the torch learning-rate schedule {} is not understood",
                    tcfg.scheduler
                        .as_ref()
                        .map_or("", |s| s.class_name.as_str())
                ),
            );
            out.add(
                Id::LrScheduleGranularity,
                Severity::Medium,
                1.0,
                vec![ev(
                    "learning-rate schedule",
                    "",
                    format!(
                        "{} (not understood: {e})",
                        tcfg.scheduler
                            .as_ref()
                            .map_or("", |s| s.class_name.as_str())
                    ),
                    None,
                )],
                "",
                "",
            );
            None
        }
        None => None,
    };
    let momentum = match o.keras.kind {
        kopt::Kind::Sgd { momentum, .. } | kopt::Kind::RmsProp { momentum, .. } => momentum,
        _ => 0.0,
    };
    let kschedule = match &o.keras.learning_rate {
        LearningRate::Schedule(s) => Some(s.clone()),
        LearningRate::Constant(_) => None,
    };
    if (kschedule.is_some() || tsched.is_some()) && momentum > 0.0 {
        out.set_title(
            Id::SgdMomentumLrInBuffer,
            format!(
                "{} momentum {} folds the learning rate in differently under a schedule",
                o.keras.kind.class_name(),
                num(momentum)
            ),
        );
        out.add(
            Id::SgdMomentumLrInBuffer,
            Severity::Medium,
            1.0,
            vec![ev(
                "momentum under a changing learning rate",
                format!("v ← μv − η_t·g (μ = {})", num(momentum)),
                "b ← μb + g; θ ← θ − η_t·b",
                None,
            )],
            "no flag: emulate Keras's buffer (v = μv − lr·g; p += v) in a custom step",
            "no flag: keep the learning rate constant, or accept the difference",
        );
    }
    match (&kschedule, &tsched) {
        (None, None) => {}
        (Some(s), t) => {
            let kdesc = equiv::render_schedule(s);
            match equiv::keras_schedule_to_torch(s) {
                Ok((_, want)) => {
                    let ok = t.as_ref().is_some_and(|t| {
                        t.interval == want.interval
                            && equiv::render_scheduler(t) == equiv::render_scheduler(&want)
                    });
                    if !ok {
                        let tdesc = t
                            .as_ref()
                            .map_or_else(|| "constant".to_string(), describe_sched);
                        let is_cos = matches!(s, kopt::Schedule::CosineDecay { .. })
                            || t.as_ref().is_some_and(|t| {
                                matches!(t.kind, topt::SchedulerKind::CosineAnnealingLR { .. })
                            });
                        let id = if is_cos {
                            Id::CosineDecaySemantics
                        } else {
                            Id::LrScheduleGranularity
                        };
                        out.set_title(
                            id,
                            format!(
                                "learning-rate schedule differs: Keras {kdesc} every batch, torch {tdesc}"
                            ),
                        );
                        out.add(
                            id,
                            Severity::Medium,
                            1.0,
                            vec![ev(
                                "learning-rate schedule",
                                format!("{kdesc} (evaluated every batch)"),
                                tdesc,
                                None,
                            )],
                            format!(
                                "{}  # scheduler.step() after every optimizer.step()",
                                equiv::render_scheduler(&want)
                            ),
                            "nothing to change on this side",
                        );
                    }
                }
                Err(e) => {
                    for &id in &e.catalogue {
                        if id != Id::SgdMomentumLrInBuffer {
                            out.set_title(
                                id,
                                format!(
                                    "learning-rate schedule has no exact torch equivalent ({}): Keras {kdesc}, torch {}",
                                    e.reason,
                                    t.as_ref().map_or_else(|| "constant".to_string(), describe_sched)
                                ),
                            );
                            out.add(
                                id,
                                Severity::Medium,
                                1.0,
                                vec![ev(
                                    format!("learning-rate schedule ({})", e.reason),
                                    kdesc.clone(),
                                    t.as_ref().map_or_else(|| "constant".to_string(), describe_sched),
                                    None,
                                )],
                                "LambdaLR(optimizer, lambda s: <the Keras schedule at s> / lr), stepped after every optimizer.step()",
                                "nothing to change on this side",
                            );
                        }
                    }
                }
            }
            // Compare the rest at the schedule's initial learning rate.
            o.keras.learning_rate = LearningRate::Constant(s.value::<f64>(0));
        }
        (None, Some(t)) => {
            let (id, why) = if matches!(t.kind, topt::SchedulerKind::CosineAnnealingLR { .. }) {
                (
                    Id::CosineDecaySemantics,
                    "torch anneals the learning rate, Keras keeps it constant",
                )
            } else {
                (
                    Id::LrScheduleGranularity,
                    "torch changes the learning rate, Keras keeps it constant",
                )
            };
            out.set_title(
                id,
                format!(
                    "learning-rate schedule differs: Keras constant, torch {}",
                    describe_sched(t)
                ),
            );
            out.add(
                id,
                Severity::Medium,
                1.0,
                vec![ev(
                    format!("learning-rate schedule ({why})"),
                    "constant",
                    describe_sched(t),
                    None,
                )],
                "remove the scheduler",
                match equiv::torch_scheduler_to_keras(o.torch.lr, t) {
                    Ok(s) => format!("learning_rate={}", equiv::render_schedule(&s)),
                    Err(e) => format!("no exact Keras schedule: {}", e.reason),
                },
            );
        }
    }
}

fn describe_sched(t: &SchedulerConfig) -> String {
    format!(
        "{} stepped per {}",
        equiv::render_scheduler(t),
        match t.interval {
            model_ir::StepInterval::Epoch => "epoch",
            model_ir::StepInterval::Step => "batch",
        }
    )
}

/// The Keras and torch optimizers compared: class and hyper-parameters through
/// `optim::equiv`, then clipping, EMA, schedules, weight decay, parameter groups and the
/// epsilon placement, each on its own.
pub(super) fn optimizer(
    keras: &TrainingConfig,
    torch: &TrainingConfig,
    regs: &[Regularizer],
    frozen_ok: &[String],
    out: &mut Findings,
    not_checked: &mut Vec<NotChecked>,
) {
    let (Some(ks), Some(ts)) = (&keras.optimizer, &torch.optimizer) else {
        not_checked.push(NotChecked {
            what: "optimizer".into(),
            reason: "one of the bundles records no optimizer".into(),
        });
        return;
    };
    let Some((kc, tc)) = parse(ks, ts, out, not_checked) else {
        return;
    };
    let mut o = Opt {
        keras: kc.clone(),
        torch: tc.clone(),
    };
    let mut c = codes(&kc, &tc, torch);

    if no_counterpart(&o, &ks.class_name, &c, out) {
        return;
    }

    clipping(&o.keras, torch.grad_clip.as_ref(), out);
    o.keras.clipnorm = None;
    o.keras.global_clipnorm = None;
    o.keras.clipvalue = None;
    ema(&mut o, out);
    schedules(&mut o, torch, out);

    // Epsilons whose placement differs: compared on their own.
    // Epsilon-like fields that no constant torch value maps exactly: compared on their own.
    let ke = o
        .keras
        .kind
        .epsilon_mut()
        .map(|e| std::mem::replace(e, 0.0));
    let te = o.torch.kind.eps_mut().map(|e| std::mem::replace(e, 0.0));
    let Some(mut want) = equivalent(&o, &c, out) else {
        return;
    };
    want.normalize_adamw();
    // Keras stores float32 hyper-parameters (0.03 is 0.029999999329447743): show them as typed.
    want.lr = as_typed(want.lr);
    want.weight_decay = as_typed(want.weight_decay);
    let got = &o.torch;
    c.exact_code = exact_code(&want, &kc, ke);
    let wd_owned = regularization_ported(regs, torch);

    if !class_and_weight_decay(&kc, ts, &want, got, wd_owned, &c, out) {
        return;
    }
    learning_rates(kc.kind.class_name(), torch, &want, got, frozen_ok, &c, out);
    epsilon_placement(&kc, ke, te, &c, out);
}

/// The code each side's fix quotes.
struct Codes {
    /// The Keras optimizer as code.
    keras_code: String,
    /// The torch optimizer as code.
    torch_code: String,
    /// The Keras equivalent of the torch optimizer (the fix on the Keras side).
    keras_fix: String,
    /// The exact torch equivalent of the Keras optimizer (the fix on the torch side).
    exact_code: String,
}

/// Both optimizers as configurations (torch's AdamW normalized); `None` after recording why
/// not (a legacy `decay` argument is a finding).
fn parse(
    ks: &model_ir::OptimizerSpec,
    ts: &model_ir::OptimizerSpec,
    out: &mut Findings,
    not_checked: &mut Vec<NotChecked>,
) -> Option<(kopt::Config, topt::Config)> {
    let kc = match kopt::Config::from_spec(ks) {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            if msg.contains("`decay`") {
                out.add(
                    Id::LegacyDecayKwarg,
                    Severity::Medium,
                    1.0,
                    vec![ev("optimizer `decay` argument", msg, "no such argument", None)],
                    "LambdaLR(optimizer, lambda s: 1/(1 + decay*s)), stepped every batch (tf.keras legacy behaviour); or nothing, if the model was trained with Keras 3 (which ignores it)",
                    "learning_rate=keras.optimizers.schedules.InverseTimeDecay(lr, 1, decay)",
                );
            } else {
                not_checked.push(NotChecked {
                    what: "optimizer".into(),
                    reason: format!("the Keras optimizer is not understood: {msg}"),
                });
            }
            return None;
        }
    };
    let mut tc = match topt::Config::from_spec(ts) {
        Ok(c) => c,
        Err(e) => {
            not_checked.push(NotChecked {
                what: "optimizer".into(),
                reason: format!("the torch optimizer is not understood: {e}"),
            });
            return None;
        }
    };
    tc.normalize_adamw();
    Some((kc, tc))
}

fn codes(kc: &kopt::Config, tc: &topt::Config, torch: &TrainingConfig) -> Codes {
    let keras_code = equiv::render_keras(kc);
    let tsched = torch
        .scheduler
        .as_ref()
        .and_then(|s| SchedulerConfig::from_spec(s, None).ok());
    let keras_fix =
        match equiv::torch_to_keras_scheduled(tc, torch.grad_clip.as_ref(), tsched.as_ref()) {
            Ok(e) => e.code,
            Err(e) => format!(
                "# no exact Keras equivalent of the torch optimizer: {}",
                e.reason
            ),
        };
    let torch_code = equiv::render_torch(tc);
    Codes {
        keras_code,
        torch_code,
        keras_fix,
        exact_code: String::new(),
    }
}

/// Classes without a counterpart in the other framework (a finding; nothing more compared).
fn no_counterpart(o: &Opt, class_name: &str, c: &Codes, out: &mut Findings) -> bool {
    let Codes {
        keras_code,
        torch_code,
        keras_fix,
        ..
    } = c;
    let lone = matches!(o.keras.kind, kopt::Kind::Lion { .. })
        || matches!(
            o.torch.kind,
            topt::Kind::RAdam { .. } | topt::Kind::Adafactor { .. }
        )
        || class_name == "Adafactor";
    if lone {
        out.set_title(
            Id::NoCounterpartOptimizers,
            format!(
                "the optimizer has no counterpart in the other framework (Keras {}, torch {})",
                o.keras.kind.class_name(),
                o.torch.kind.class_name()
            ),
        );
        out.add(
            Id::NoCounterpartOptimizers,
            Severity::High,
            2.0,
            vec![ev(
                "optimizer",
                keras_code.clone(),
                torch_code.clone(),
                None,
            )],
            "port the Keras update_step by hand (no torch.optim class computes it)",
            keras_fix.clone(),
        );
        return true;
    }
    false
}

/// Keras `use_ema`: the weights after `fit()` are the moving average.
fn ema(o: &mut Opt, out: &mut Findings) {
    if o.keras.use_ema {
        out.set_title(
            Id::EmaWeights,
            format!(
                "Keras use_ema (momentum {}) overwrites the weights with their moving average; torch keeps the raw weights",
                num(o.keras.ema_momentum)
            ),
        );
        out.add(
            Id::EmaWeights,
            Severity::Medium,
            1.0,
            vec![ev(
                "weights after fit()",
                format!("moving average (use_ema=True, ema_momentum={})", num(o.keras.ema_momentum)),
                "raw weights",
                None,
            )],
            format!(
                "ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn({})); copy ema's weights into the model after training",
                num(o.keras.ema_momentum)
            ),
            "use_ema=False",
        );
        o.keras.use_ema = false;
    }
}

/// The exact torch equivalent of the Keras optimizer, or the findings `optim` names for its
/// absence.
fn equivalent(o: &Opt, c: &Codes, out: &mut Findings) -> Option<topt::Config> {
    let Codes {
        keras_code,
        torch_code,
        keras_fix,
        ..
    } = c;
    match equiv::keras_to_torch(&o.keras) {
        Ok(eq) => Some(eq.config),
        Err(e) => {
            let mut found = false;
            for &id in &e.catalogue {
                if matches!(
                    id,
                    Id::ClipnormPerTensorVsGlobal
                        | Id::EmaWeights
                        | Id::LrScheduleGranularity
                        | Id::CosineDecaySemantics
                        | Id::SgdMomentumLrInBuffer
                ) && out.has(id)
                {
                    found = true;
                    continue;
                }
                found = true;
                out.set_title(
                    id,
                    format!(
                        "{} has no exact torch.optim equivalent: {}",
                        o.keras.kind.class_name(),
                        e.reason
                    ),
                );
                out.add(
                    id,
                    Severity::Medium,
                    1.0,
                    vec![ev(
                        format!("optimizer ({})", e.reason),
                        keras_code.clone(),
                        torch_code.clone(),
                        None,
                    )],
                    format!("no exact torch.optim equivalent: {}", e.reason),
                    keras_fix.clone(),
                );
            }
            if !found {
                out.set_title(
                    Id::OptimizerMismatch,
                    format!(
                        "{} has no exact torch.optim equivalent: {}",
                        o.keras.kind.class_name(),
                        e.reason
                    ),
                );
                out.add(
                    Id::OptimizerMismatch,
                    Severity::Medium,
                    1.0,
                    vec![ev(
                        format!("optimizer ({})", e.reason),
                        keras_code.clone(),
                        torch_code.clone(),
                        None,
                    )],
                    format!("no exact torch.optim equivalent: {}", e.reason),
                    keras_fix.clone(),
                );
            }
            None
        }
    }
}

/// The torch code of the exact equivalent, with Keras's epsilon where torch can take it.
fn exact_code(want: &topt::Config, kc: &kopt::Config, ke: Option<f64>) -> String {
    let mut w = want.clone();
    if let (Some(k), Some(eps)) = (ke, w.kind.eps_mut()) {
        *eps = k;
    }
    let code = equiv::render_torch(&w);
    match (&kc.kind, ke) {
        (kopt::Kind::Adam { beta_2, .. } | kopt::Kind::AdamW { beta_2, .. }, Some(k))
            if k > 0.0 =>
        {
            format!(
                "{code}\nfor g in opt.param_groups: g['eps'] = {} / math.sqrt(1 - {}**t)  # before every opt.step(), t = the step about to run: Keras's epsilon-hat exactly",
                num(k),
                num(*beta_2)
            )
        }
        (_, Some(k)) if k > 0.0 => format!(
            "{code}  # closest: torch adds eps outside the square root; exact only with epsilon=0 on both sides"
        ),
        _ => code,
    }
}

/// Optimizer class (and, within the Adam family, the weight-decay coupling), then the
/// class's hyper-parameters and weight decay. `false` when the classes differ outright
/// (nothing more compared).
fn class_and_weight_decay(
    kc: &kopt::Config,
    ts: &model_ir::OptimizerSpec,
    want: &topt::Config,
    got: &topt::Config,
    wd_owned: bool,
    c: &Codes,
    out: &mut Findings,
) -> bool {
    let Codes {
        keras_code,
        torch_code,
        keras_fix,
        exact_code,
    } = c;
    let wclass = want.kind.class_name();
    let gclass = got.kind.class_name();
    // Class.
    if wclass != gclass {
        let adam_family = |c: &str| c == "Adam" || c == "AdamW";
        if adam_family(wclass) && adam_family(gclass) {
            let id = if kc.weight_decay.is_none()
                && gclass == "AdamW"
                && !ts
                    .config
                    .get("weight_decay")
                    .is_some_and(|v| v.as_f64().is_some_and(|w| differs(w, 0.01)))
            {
                Id::AdamwDefaultDecay
            } else {
                Id::AdamWeightDecayCoupling
            };
            out.set_title(
                id,
                format!(
                    "weight decay differs: Keras {} {}, torch {gclass}(weight_decay={}){}",
                    kc.kind.class_name(),
                    kc.weight_decay
                        .map_or("without weight decay".to_string(), |w| format!(
                            "weight_decay={} (decoupled)",
                            num(w)
                        )),
                    num(got.weight_decay),
                    if gclass == "AdamW" {
                        " (decoupled)"
                    } else {
                        " (coupled L2)"
                    }
                ),
            );
            out.add(
                id,
                Severity::Medium,
                1.5,
                vec![ev(
                    "weight decay",
                    format!(
                        "{} (decoupled: θ ← θ − η·λ·θ)",
                        kc.weight_decay
                            .map_or("none".to_string(), |w| format!("weight_decay={}", num(w)))
                    ),
                    format!(
                        "{gclass}(weight_decay={}) ({})",
                        num(got.weight_decay),
                        if gclass == "AdamW" {
                            "decoupled"
                        } else {
                            "coupled L2: g ← g + λθ, then divided by √v̂"
                        }
                    ),
                    None,
                )],
                exact_code.clone(),
                keras_fix.clone(),
            );
        } else {
            out.set_title(
                Id::OptimizerMismatch,
                format!(
                    "optimizer class differs: Keras {}, torch {gclass}",
                    kc.kind.class_name()
                ),
            );
            out.add(
                Id::OptimizerMismatch,
                Severity::High,
                2.0,
                vec![ev(
                    "optimizer class",
                    keras_code.clone(),
                    torch_code.clone(),
                    None,
                )],
                exact_code.clone(),
                keras_fix.clone(),
            );
            return false;
        }
    } else {
        for (field, w, g) in kind_diffs(&want.kind, &got.kind) {
            let id = class_id(wclass);
            let sev = if field == "momentum"
                || field.starts_with("initial")
                || field == "rho"
                || field.starts_with("alpha")
                || field == "momentum_decay"
            {
                Severity::High
            } else {
                Severity::Medium
            };
            title_item(
                out,
                id,
                kc.kind.class_name(),
                format!("{field} (Keras {w}, torch {g})"),
            );
            out.add(
                id,
                sev,
                1.0,
                vec![ev(format!("optimizer {field}"), w, g, None)],
                exact_code.clone(),
                keras_fix.clone(),
            );
        }
        if differs(want.weight_decay, got.weight_decay) && !wd_owned {
            let id = if gclass == "AdamW" {
                Id::AdamwDefaultDecay
            } else {
                Id::AdamWeightDecayCoupling
            };
            out.set_title(
                id,
                format!(
                    "{gclass} weight decay differs (Keras {} decoupled, torch {} {})",
                    num(want.weight_decay),
                    num(got.weight_decay),
                    if gclass == "AdamW" {
                        "decoupled"
                    } else {
                        "coupled"
                    }
                ),
            );
            out.add(
                id,
                Severity::Medium,
                (want.weight_decay - got.weight_decay)
                    .abs()
                    .max(1e-3)
                    .ln()
                    .abs()
                    .min(2.0),
                vec![ev(
                    "weight decay",
                    format!("{} (decoupled)", num(want.weight_decay)),
                    format!(
                        "{} ({})",
                        num(got.weight_decay),
                        if gclass == "AdamW" {
                            "decoupled"
                        } else {
                            "coupled"
                        }
                    ),
                    None,
                )],
                exact_code.clone(),
                keras_fix.clone(),
            );
        }
    }
    true
}

/// The learning rate, and that of every parameter group with its own.
fn learning_rates(
    kclass: &str,
    torch: &TrainingConfig,
    want: &topt::Config,
    got: &topt::Config,
    frozen_ok: &[String],
    c: &Codes,
    out: &mut Findings,
) {
    let Codes {
        keras_fix,
        exact_code,
        ..
    } = c;
    let wclass = want.kind.class_name();
    // Learning rate.
    if differs(want.lr, got.lr) {
        let (sev, r) = ratio_severity(want.lr, got.lr);
        title_item(
            out,
            class_id(wclass),
            kclass,
            format!(
                "learning rate (Keras {}, torch {})",
                num(want.lr),
                num(got.lr)
            ),
        );
        out.add(
            class_id(wclass),
            sev,
            r,
            vec![ev("learning rate", num(want.lr), num(got.lr), None)],
            exact_code.clone(),
            keras_fix.clone(),
        );
    }
    // Parameter groups with their own learning rate.
    for g in torch.param_groups.iter().flatten() {
        // A frozen group holding only torch parameters Keras does not have (bias_hh next to
        // Keras's single RNN bias) or does not train is the exact port.
        let frozen_extra = g.params.iter().all(|p| frozen_ok.contains(p));
        if let Some(lr) = g.overrides.get("lr").and_then(serde_json::Value::as_f64)
            && differs(want.lr, lr)
            && !(lr.abs() <= 0.0 && frozen_extra)
        {
            let (sev, r) = ratio_severity(want.lr, lr);
            title_item(
                out,
                class_id(wclass),
                kclass,
                format!(
                    "learning rate of the parameter group {} (Keras {}, torch {})",
                    g.params.join(", "),
                    num(want.lr),
                    num(lr)
                ),
            );
            out.add(
                class_id(wclass),
                sev,
                r,
                vec![ev(
                    format!(
                        "learning rate of the parameter group {}",
                        g.params.join(", ")
                    ),
                    num(want.lr),
                    num(lr),
                    None,
                )],
                exact_code.clone(),
                "Keras has one learning rate for every variable",
            );
        }
    }
}

/// Epsilons whose placement differs between the frameworks, compared on their own.
fn epsilon_placement(
    kc: &kopt::Config,
    ke: Option<f64>,
    te: Option<f64>,
    c: &Codes,
    out: &mut Findings,
) {
    let Codes {
        keras_fix,
        exact_code,
        ..
    } = c;
    // Epsilon placement.
    match (ke, te) {
        (Some(k), Some(t)) if k > 0.0 || t > 0.0 => {
            let (id, same_sev, diff_sev, formula) = match kc.kind {
                kopt::Kind::Adam { .. } | kopt::Kind::AdamW { .. } => (
                    Id::AdamEpsilonHat,
                    Severity::Info,
                    Severity::Low,
                    "Keras: m̂/(√v + ε̂)·√(1−β2^t); torch: m̂/(√v̂ + ε)",
                ),
                kopt::Kind::RmsProp { .. } => (
                    Id::RmspropEpsAndRho,
                    Severity::Low,
                    Severity::Medium,
                    "Keras: g/√(v + ε); torch: g/(√v + ε)",
                ),
                kopt::Kind::Adagrad { .. } => (
                    Id::AdagradInitEps,
                    Severity::Low,
                    Severity::Medium,
                    "Keras: g/√(a + ε); torch: g/(√a + ε)",
                ),
                _ => (
                    Id::AdamaxEpsPlacement,
                    Severity::Info,
                    Severity::Low,
                    "Keras: m/((1−β1^t)(u + ε)); torch: u = max(β2·u, |g| + ε)",
                ),
            };
            let same = !differs(k, t);
            let fix_t = exact_code.clone();
            let kclass = kc.kind.class_name();
            if id == Id::AdamEpsilonHat {
                out.set_title(
                    id,
                    if same {
                        format!(
                            "{kclass}'s epsilon ({} on both sides) sits in a different place (Keras epsilon-hat)",
                            num(k)
                        )
                    } else {
                        format!(
                            "{kclass}'s epsilon differs in value and place (Keras epsilon-hat {}, torch eps {})",
                            num(k),
                            num(t)
                        )
                    },
                );
            } else {
                title_item(
                    out,
                    id,
                    kclass,
                    if same {
                        format!("epsilon placement ({} on both sides)", num(k))
                    } else {
                        format!(
                            "epsilon placement and value (Keras {}, torch {})",
                            num(k),
                            num(t)
                        )
                    },
                );
            }
            out.add(
                id,
                if same { same_sev } else { diff_sev },
                if same {
                    0.0
                } else {
                    (k.max(1e-30) / t.max(1e-30)).ln().abs().min(3.0) / 3.0
                },
                vec![ev(format!("epsilon ({formula})"), num(k), num(t), None)],
                fix_t,
                keras_fix.clone(),
            );
        }
        _ => {}
    }
}

/// A float32 value read as f64, printed the way it was typed (shortest float32 form).
fn as_typed(x: f64) -> f64 {
    let f = x as f32;
    if f.is_finite() && (f64::from(f) - x).abs() <= 1e-7 * x.abs() {
        format!("{f}").parse().unwrap_or(x)
    } else {
        x
    }
}
