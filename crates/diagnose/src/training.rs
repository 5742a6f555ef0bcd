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
use crate::graph::{Shapes, infer_shapes, output_activation, show_shape};

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

/// An L1/L2 weight regularizer of one Keras variable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Regularizer {
    pub(crate) layer: String,
    /// The variable: `kernel`, `bias`, `depthwise_kernel`, ...
    pub(crate) target: String,
    pub(crate) l1: f64,
    pub(crate) l2: f64,
}

/// The Keras weight regularizers the importer put in the training configuration
/// (`TrainingConfig::regularizers`, by parameter name: only trainable variables, whose
/// penalty Keras adds to the loss), in graph order.
pub(crate) fn regularizers(m: &Model) -> Vec<Regularizer> {
    let Some(t) = &m.training else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in &m.nodes {
        for p in &n.params {
            let Some(r) = t.regularizers.get(&p.name) else {
                continue;
            };
            let leaf = p.name.rsplit('/').next().unwrap_or(&p.name);
            out.push(Regularizer {
                layer: n.name.clone(),
                target: leaf.to_string(),
                l1: r.l1,
                l2: r.l2,
            });
        }
    }
    out
}

/// The weight decay torch applies to each parameter: the group override or the default.
fn torch_weight_decay(t: &TrainingConfig) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for g in t.param_groups.iter().flatten() {
        if let Some(wd) = g
            .overrides
            .get("weight_decay")
            .and_then(serde_json::Value::as_f64)
        {
            for p in &g.params {
                m.insert(p.clone(), wd);
            }
        }
    }
    m
}

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

/// Whether weight decay is owned by the regularizer check (Keras L2 regularizers, or torch
/// parameter groups with their own weight decay).
fn regularization_ported(regs: &[Regularizer], _t: &TrainingConfig) -> bool {
    !regs.is_empty()
}

struct Opt {
    keras: kopt::Config,
    torch: topt::Config,
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
                        let is_cos = matches!(s, kopt::Schedule::CosineDecay { .. })
                            || t.as_ref().is_some_and(|t| {
                                matches!(t.kind, topt::SchedulerKind::CosineAnnealingLR { .. })
                            });
                        out.add(
                            if is_cos {
                                Id::CosineDecaySemantics
                            } else {
                                Id::LrScheduleGranularity
                            },
                            Severity::Medium,
                            1.0,
                            vec![ev(
                                "learning-rate schedule",
                                format!("{kdesc} (evaluated every batch)"),
                                t.as_ref()
                                    .map_or_else(|| "constant".to_string(), describe_sched),
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

fn optimizer(
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
            return;
        }
    };
    let mut tc = match topt::Config::from_spec(ts) {
        Ok(c) => c,
        Err(e) => {
            not_checked.push(NotChecked {
                what: "optimizer".into(),
                reason: format!("the torch optimizer is not understood: {e}"),
            });
            return;
        }
    };
    tc.normalize_adamw();
    let mut o = Opt {
        keras: kc.clone(),
        torch: tc.clone(),
    };
    let keras_code = equiv::render_keras(&kc);
    let tsched = torch
        .scheduler
        .as_ref()
        .and_then(|s| SchedulerConfig::from_spec(s, None).ok());
    let keras_fix =
        match equiv::torch_to_keras_scheduled(&tc, torch.grad_clip.as_ref(), tsched.as_ref()) {
            Ok(e) => e.code,
            Err(e) => format!(
                "# no exact Keras equivalent of the torch optimizer: {}",
                e.reason
            ),
        };
    let torch_code = equiv::render_torch(&tc);

    // Classes without a counterpart.
    let lone = matches!(o.keras.kind, kopt::Kind::Lion { .. })
        || matches!(
            o.torch.kind,
            topt::Kind::RAdam { .. } | topt::Kind::Adafactor { .. }
        )
        || ks.class_name == "Adafactor";
    if lone {
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
        return;
    }

    clipping(&o.keras, torch.grad_clip.as_ref(), out);
    o.keras.clipnorm = None;
    o.keras.global_clipnorm = None;
    o.keras.clipvalue = None;
    if o.keras.use_ema {
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
    schedules(&mut o, torch, out);

    // Epsilons whose placement differs: compared on their own.
    // Epsilon-like fields that no constant torch value maps exactly: compared on their own.
    let ke = o
        .keras
        .kind
        .epsilon_mut()
        .map(|e| std::mem::replace(e, 0.0));
    let te = o.torch.kind.eps_mut().map(|e| std::mem::replace(e, 0.0));
    let eq = match equiv::keras_to_torch(&o.keras) {
        Ok(eq) => eq,
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
                out.add(
                    Id::OptimizerMismatch,
                    Severity::Medium,
                    1.0,
                    vec![ev(
                        format!("optimizer ({})", e.reason),
                        keras_code,
                        torch_code,
                        None,
                    )],
                    format!("no exact torch.optim equivalent: {}", e.reason),
                    keras_fix.clone(),
                );
            }
            return;
        }
    };
    let mut want = eq.config.clone();
    want.normalize_adamw();
    // Keras stores float32 hyper-parameters (0.03 is 0.029999999329447743): show them as typed.
    want.lr = as_typed(want.lr);
    want.weight_decay = as_typed(want.weight_decay);
    let got = &o.torch;
    let exact_code = {
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
    };
    let wclass = want.kind.class_name();
    let gclass = got.kind.class_name();
    let wd_owned = regularization_ported(regs, torch);

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
            return;
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
    // Learning rate.
    if differs(want.lr, got.lr) {
        let (sev, r) = ratio_severity(want.lr, got.lr);
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

/// L1/L2 regularizers vs torch weight decay (`l2-regularizer-factor-two`).
fn regularization(
    torch_cfg: &TrainingConfig,
    aligned: &Aligned<'_>,
    regs: &[Regularizer],
    out: &mut Findings,
) {
    let id = Id::L2RegularizerFactorTwo;
    let base = torch_cfg
        .optimizer
        .as_ref()
        .and_then(|o| topt::Config::from_spec(o).ok());
    let Some(mut base) = base else { return };
    base.normalize_adamw();
    let decoupled = matches!(base.kind, topt::Kind::AdamW { .. });
    let overrides = torch_weight_decay(torch_cfg);
    let wd_of = |name: &str| overrides.get(name).copied().unwrap_or(base.weight_decay);
    if regs.is_empty() {
        // Parameter groups with their own decay, and no Keras regularizer they could port.
        let odd: Vec<String> = overrides
            .iter()
            .filter(|(_, wd)| differs(**wd, base.weight_decay))
            .map(|(n, wd)| format!("{n}: {}", num(*wd)))
            .collect();
        if !odd.is_empty() {
            out.add(
                Id::OptimizerMismatch,
                Severity::Medium,
                1.0,
                vec![ev(
                    "per-parameter weight decay",
                    "one setting for every variable (no regularizers)",
                    odd.join(", "),
                    None,
                )],
                "one parameter group, as in Keras",
                "kernel_regularizer=keras.regularizers.L2(weight_decay / 2) on those layers, if the decay is meant",
            );
        }
        return;
    }
    let mut regularized = Vec::new();
    for r in regs {
        let Some(pair) = aligned.pairs.iter().find(|p| p.keras.name == r.layer) else {
            continue;
        };
        let role = match r.target.as_str() {
            "kernel" => ParamRole::Kernel,
            "bias" => ParamRole::Bias,
            _ => {
                out.add(
                    id,
                    Severity::Medium,
                    1.0,
                    vec![ev(
                        format!("{}_regularizer", r.target),
                        format!("l1={}, l2={}", num(r.l1), num(r.l2)),
                        "no counterpart",
                        pair_label(&pair.keras.name, &pair.torch.name),
                    )],
                    "add the penalty to the torch loss by hand",
                    "nothing to change on this side",
                );
                continue;
            }
        };
        let Some(tp) = pair
            .params
            .iter()
            .find(|m| m.keras.role == role)
            .and_then(|m| m.torch.first())
        else {
            continue;
        };
        regularized.push(tp.name.clone());
        let wd = wd_of(&tp.name);
        let label = pair_label(&pair.keras.name, &pair.torch.name);
        let fix_t = format!(
            "torch.optim.{}([{{'params': [{}], 'weight_decay': {}}}, {{'params': <the rest>, 'weight_decay': 0}}], ...)  # coupled (not AdamW); or loss += {} * {}.pow(2).sum()",
            if decoupled {
                "Adam"
            } else {
                base.kind.class_name()
            },
            torch_ref(&tp.name),
            num(2.0 * r.l2),
            num(r.l2),
            torch_ref(&tp.name)
        );
        if r.l1 > 0.0 {
            out.add(
                id,
                Severity::Medium,
                1.0,
                vec![ev(
                    format!("{} L1 penalty", r.target),
                    format!("l1={}", num(r.l1)),
                    "no L1 term",
                    label.clone(),
                )],
                format!(
                    "loss += {} * {}.abs().sum()",
                    num(r.l1),
                    torch_ref(&tp.name)
                ),
                "nothing to change on this side",
            );
        }
        if r.l2 <= 0.0 {
            continue;
        }
        let want = 2.0 * r.l2;
        if !differs(want, wd) {
            if decoupled {
                out.add(
                    Id::AdamWeightDecayCoupling,
                    Severity::Medium,
                    1.0,
                    vec![ev(
                        format!("L2 on {}", tp.name),
                        format!("l2={} in the loss (gradient 2λw)", num(r.l2)),
                        format!("decoupled weight_decay={}", num(wd)),
                        label,
                    )],
                    "use torch.optim.Adam (coupled weight_decay) for the L2 term",
                    "nothing to change on this side",
                );
            }
            continue;
        }
        let why = if wd.abs() <= 0.0 {
            "the regularizer is not ported".to_string()
        } else if !differs(r.l2, wd) {
            "weight_decay = λ: half the Keras gradient 2λw".to_string()
        } else {
            format!("weight_decay {} ≠ 2λ = {}", num(wd), num(want))
        };
        out.add(
            id,
            Severity::Medium,
            1.0,
            vec![ev(
                format!("L2 on {} ({why})", r.layer),
                format!("l2({}): loss += λ·Σw², gradient {}·w", num(r.l2), num(want)),
                format!("weight_decay={} on {}", num(wd), tp.name),
                label,
            )],
            fix_t,
            format!(
                "kernel_regularizer=keras.regularizers.L2({})",
                num(wd / 2.0)
            ),
        );
    }
    if !regs.is_empty() {
        // Decay on parameters Keras does not regularize (biases, BatchNorm).
        let extra: Vec<String> = keras_unregularized_torch_params(aligned, &regularized)
            .into_iter()
            .filter(|n| wd_of(n) > 0.0)
            .collect();
        if !extra.is_empty() {
            out.add(
                id,
                Severity::Low,
                0.5,
                vec![ev(
                    "weight decay on parameters Keras does not regularize",
                    "none",
                    format!(
                        "{} (weight_decay={})",
                        extra.join(", "),
                        num(wd_of(&extra[0]))
                    ),
                    None,
                )],
                "put those parameters in a group with weight_decay=0",
                "nothing to change on this side",
            );
        }
    }
}

fn keras_unregularized_torch_params(aligned: &Aligned<'_>, regularized: &[String]) -> Vec<String> {
    aligned
        .pairs
        .iter()
        .flat_map(|p| p.params.iter().flat_map(|m| m.torch.iter()))
        .filter(|p| p.trainable && !regularized.contains(&p.name))
        .map(|p| p.name.clone())
        .collect()
}

fn cfg_f64(v: &serde_json::Value, k: &str) -> Option<f64> {
    v.get(k).and_then(serde_json::Value::as_f64)
}

fn cfg_str<'a>(v: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(serde_json::Value::as_str)
}

fn act_name(a: Option<&model_ir::Activation>) -> String {
    a.map_or_else(|| "linear (logits)".to_string(), |a| a.describe())
}

#[allow(clippy::too_many_lines)]
fn loss(
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
    let kf = Family::of_keras_name(&kl.class_name);
    let tf = Family::of_torch_name(&tl.class_name);
    let kout = output_activation(&kb.model);
    let tout = output_activation(&tb.model);
    let kact = kout.as_ref().and_then(|(_, a)| *a);
    let tact = tout.as_ref().and_then(|(_, a)| *a);
    let layer_of = |m: &Model| {
        m.outputs
            .first()
            .and_then(|o| crate::graph::source_of(m, o))
            .map(|n| n.name.clone())
    };
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
    let is_softmax =
        |a: Option<&model_ir::Activation>| matches!(a, Some(model_ir::Activation::Softmax { .. }));
    let is_sigmoid =
        |a: Option<&model_ir::Activation>| matches!(a, Some(model_ir::Activation::Sigmoid));
    let is_logsoftmax = |a: Option<&model_ir::Activation>| {
        matches!(a, Some(model_ir::Activation::LogSoftmax { .. }))
    };
    let backend = kt.backend.unwrap_or_default().name();
    let layer = knode
        .as_deref()
        .zip(tnode.as_deref())
        .and_then(|(k, t)| pair_label(k, t));

    if kf != tf || kf == Family::Other {
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
    match kf {
        Family::CrossEntropy => {
            // Torch side.
            match tl.class_name.as_str() {
                "CrossEntropyLoss" if is_softmax(tact) => out.add(
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
                ),
                "NLLLoss" if !is_logsoftmax(tact) => out.add(
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
                ),
                _ => {}
            }
            // Keras side.
            if from_logits && is_softmax(kact) {
                out.add(
                    Id::DoubleSoftmax,
                    Severity::High,
                    3.0,
                    vec![ev(
                        "Keras model output fed to the loss",
                        format!("{} → {keras_loss_desc} (applies softmax again)", act_name(kact)),
                        format!("{} → {}", act_name(tact), tl.class_name),
                        layer.clone(),
                    )],
                    "nothing to change on this side",
                    "from_logits=False (the model already outputs probabilities), or a linear output layer",
                );
            } else if !from_logits && kact.is_none() {
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
            } else if !from_logits
                && is_softmax(kact)
                && backend != "tensorflow"
                && !is_softmax(tact)
            {
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
        Family::Binary => {
            let t_logits = tl.class_name == "BCEWithLogitsLoss";
            if t_logits && is_sigmoid(tact) {
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
            if tl.config.get("pos_weight").is_some_and(|w| !w.is_null())
                || kt.class_weight.is_some()
            {
                out.add(
                    Id::LossReductionWeights,
                    Severity::Medium,
                    1.0,
                    vec![ev(
                        "class weights",
                        format!("{:?}", kt.class_weight),
                        format!("pos_weight {}", tl.config.get("pos_weight").map_or("none".into(), |v| v.to_string())),
                        None,
                    )],
                    "weight the per-sample losses exactly as Keras's class_weight does, divided by N",
                    "nothing to change on this side",
                );
            }
        }
        Family::Kld => {
            if cfg_str(&tl.config, "reduction").unwrap_or("mean") != "batchmean" {
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
        Family::Poisson => {
            if tl
                .config
                .get("log_input")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(true)
            {
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
        Family::Cosine => {
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
        Family::Mse | Family::Mae | Family::Huber | Family::Hinge | Family::Other => {}
    }
    // Reduction.
    let kr = cfg_str(&kl.config, "reduction").unwrap_or("sum_over_batch_size");
    let tr = cfg_str(&tl.config, "reduction").unwrap_or("mean");
    let k_mean = matches!(kr, "sum_over_batch_size" | "auto" | "mean");
    let t_mean = tr == "mean" || tr == "batchmean";
    if k_mean != t_mean || (kr == "sum" && tr == "sum" && !matches!(kf, Family::CrossEntropy)) {
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

/// Batching and shuffling; `validation_split` from the config alone when the bundles carry no
/// inputs to tell which rows each side trains on (step 4 decides it from the rows otherwise).
fn data_loop(kt: &TrainingConfig, tt: &TrainingConfig, rows_known: bool, out: &mut Findings) {
    let id = Id::FitBatchShuffleDefaults;
    let mut ev_list = Vec::new();
    let mut sev = Severity::Low;
    let mut mag: f64 = 0.0;
    if kt.batch_size != tt.batch_size {
        let r = (kt.batch_size as f64 / tt.batch_size as f64).ln().abs();
        sev = sev.min(if r > 1.0 {
            Severity::High
        } else {
            Severity::Medium
        });
        mag = mag.max(r);
        ev_list.push(ev(
            "batch size",
            kt.batch_size.to_string(),
            tt.batch_size.to_string(),
            None,
        ));
    }
    if kt.shuffle != tt.shuffle {
        sev = sev.min(Severity::Medium);
        mag = mag.max(1.0);
        ev_list.push(ev(
            "shuffle every epoch",
            kt.shuffle.to_string(),
            tt.shuffle.to_string(),
            None,
        ));
    }
    if kt.epochs != tt.epochs {
        sev = sev.min(Severity::Medium);
        mag = mag.max((kt.epochs as f64 / tt.epochs.max(1) as f64).ln().abs());
        ev_list.push(ev(
            "epochs",
            kt.epochs.to_string(),
            tt.epochs.to_string(),
            None,
        ));
    }
    if tt.drop_last != kt.drop_last {
        ev_list.push(ev(
            "last partial batch",
            "kept",
            if tt.drop_last {
                "dropped (drop_last=True)"
            } else {
                "kept"
            },
            None,
        ));
    }
    if !ev_list.is_empty() {
        out.add(
            id,
            sev,
            mag,
            ev_list,
            format!(
                "DataLoader(dataset, batch_size={}, shuffle={}, drop_last=False); train {} epochs",
                kt.batch_size,
                if kt.shuffle { "True" } else { "False" },
                kt.epochs
            ),
            format!(
                "model.fit(x, y, batch_size={}, shuffle={}, epochs={})",
                tt.batch_size,
                if tt.shuffle { "True" } else { "False" },
                tt.epochs
            ),
        );
    }
    if kt.validation_split > 0.0 && !rows_known {
        out.add(
            Id::ValidationSplitTail,
            Severity::Low,
            kt.validation_split,
            vec![ev(
                "validation split",
                format!(
                    "validation_split={}: the last {}% of the samples, taken before shuffling",
                    num(kt.validation_split),
                    num(kt.validation_split * 100.0)
                ),
                "not decidable: the bundles carry no inputs.safetensors to show which rows each side trains on",
                None,
            )],
            format!(
                "n = len(x); split = int(n * (1 - {})); train, val = x[:split], x[split:]",
                num(kt.validation_split)
            ),
            "shuffle the arrays before fit, or pass validation_data explicitly",
        );
    }
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

    #[test]
    fn regularizers_come_from_the_training_config() {
        use crate::testkit::{model, node, param, tensor};
        use model_ir::{Framework, ParamLayout, ParamRole, TrainingConfig, WeightRegularizer};
        let mut m = model(
            Framework::Keras,
            &[2],
            vec![node(
                Framework::Keras,
                "branch_a",
                model_ir::Op::Dense {
                    units: 2,
                    use_bias: true,
                    activation: model_ir::Activation::Linear,
                },
                "x",
                vec![
                    param(
                        "branch_a/kernel",
                        ParamRole::Kernel,
                        ParamLayout::DenseInOut,
                        tensor(&[2, 2], vec![1.0; 4]),
                    ),
                    param(
                        "branch_a/bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        tensor(&[2], vec![0.0; 2]),
                    ),
                ],
            )],
        );
        let mut t = TrainingConfig::defaults(Framework::Keras);
        t.regularizers.insert(
            "branch_a/kernel".into(),
            WeightRegularizer { l1: 0.0, l2: 0.001 },
        );
        m.training = Some(t);
        let r = regularizers(&m);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].layer, "branch_a");
        assert_eq!(r[0].target, "kernel");
        assert!((r[0].l2 - 0.001).abs() < 1e-12);
    }

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
