//! Configurations rendered as the Python a user would write on each side.

use super::*;

/// A Python argument list being rendered: `name=value` items, in order.
#[derive(Default)]
struct Args(Vec<String>);

impl Args {
    fn push(&mut self, item: impl Into<String>) {
        self.0.push(item.into());
    }

    /// `name=value`.
    fn val(&mut self, name: &str, v: f64) {
        self.push(format!("{name}={}", py(v)));
    }

    /// `name=value` unless `v` is the `default` (always without one).
    fn num_or(&mut self, name: &str, v: f64, default: Option<f64>) {
        if default.is_none_or(|d| differs(v, d)) {
            self.val(name, v);
        }
    }

    /// `name=value` unless `v` is the `default`.
    fn num(&mut self, name: &str, v: f64, default: f64) {
        self.num_or(name, v, Some(default));
    }

    /// `name=value` when there is a value.
    fn opt(&mut self, name: &str, v: Option<f64>) {
        if let Some(v) = v {
            self.val(name, v);
        }
    }

    /// `name=True` when `on`.
    fn flag(&mut self, name: &str, on: bool) {
        if on {
            self.push(format!("{name}=True"));
        }
    }

    fn join(&self) -> String {
        self.0.join(", ")
    }
}

/// `torch.optim.X(params, lr=..., <arguments that differ from torch's defaults>)`.
pub fn render_torch(c: &torch::Config) -> String {
    use torch::Kind as T;
    let d = torch::Config::default_for(c.kind.class_name()).ok();
    let dk = d.as_ref().map(|d| &d.kind);
    let mut args = Args::default();
    args.val("lr", c.lr);
    let mut eps_arg = None;
    let betas_of = |k: Option<&T>| match k {
        Some(
            T::Adam { betas, .. }
            | T::AdamW { betas, .. }
            | T::Adamax { betas, .. }
            | T::NAdam { betas, .. }
            | T::RAdam { betas, .. },
        ) => Some(*betas),
        _ => None,
    };
    let mut flags = Args::default();
    match c.kind {
        T::Sgd {
            momentum,
            dampening,
            nesterov,
        } => {
            args.num("momentum", momentum, 0.0);
            args.num("dampening", dampening, 0.0);
            flags.flag("nesterov", nesterov);
        }
        T::Adam {
            eps,
            amsgrad,
            decoupled_weight_decay,
            ..
        } => {
            args.num("eps", eps, 1e-8);
            flags.flag("amsgrad", amsgrad);
            flags.flag("decoupled_weight_decay", decoupled_weight_decay);
        }
        T::AdamW { eps, amsgrad, .. } => {
            args.num("eps", eps, 1e-8);
            flags.flag("amsgrad", amsgrad);
        }
        T::RmsProp {
            alpha,
            eps,
            momentum,
            centered,
        } => {
            args.num("alpha", alpha, 0.99);
            args.num("eps", eps, 1e-8);
            args.num("momentum", momentum, 0.0);
            flags.flag("centered", centered);
        }
        T::Adagrad {
            lr_decay,
            initial_accumulator_value,
            eps,
        } => {
            args.num("lr_decay", lr_decay, 0.0);
            args.num("initial_accumulator_value", initial_accumulator_value, 0.0);
            args.num("eps", eps, 1e-10);
        }
        T::Adadelta { rho, eps } => {
            args.num("rho", rho, 0.9);
            args.num("eps", eps, 1e-6);
        }
        T::Adamax { eps, .. } => args.num("eps", eps, 1e-8),
        T::NAdam {
            eps,
            momentum_decay,
            decoupled_weight_decay,
            ..
        } => {
            args.num("eps", eps, 1e-8);
            args.num("momentum_decay", momentum_decay, 4e-3);
            flags.flag("decoupled_weight_decay", decoupled_weight_decay);
        }
        T::RAdam {
            eps,
            decoupled_weight_decay,
            ..
        } => {
            args.num("eps", eps, 1e-8);
            flags.flag("decoupled_weight_decay", decoupled_weight_decay);
        }
        T::Adafactor {
            beta2_decay,
            eps: (eps1, eps2),
            d,
        } => {
            args.num("beta2_decay", beta2_decay, -0.8);
            if eps1.is_some() || differs(eps2, 1e-3) {
                let e1 = eps1.map_or("None".to_string(), py);
                eps_arg = Some(format!("eps=({e1}, {})", py(eps2)));
            }
            args.num("d", d, 1.0);
        }
    }
    args.num_or(
        "weight_decay",
        c.weight_decay,
        d.as_ref().map(|d| d.weight_decay),
    );
    if let Some(b) = betas_of(Some(&c.kind))
        && betas_of(dk).is_none_or(|db| differs(b.0, db.0) || differs(b.1, db.1))
    {
        args.0
            .insert(1, format!("betas=({}, {})", py(b.0), py(b.1)));
    }
    if let Some(e) = eps_arg {
        args.0.insert(1, e);
    }
    flags.flag("maximize", c.maximize);
    args.0.extend(flags.0);
    format!(
        "torch.optim.{}(params, {})",
        c.kind.class_name(),
        args.join()
    )
}

/// `torch.nn.utils.clip_grad_norm_(params, ...)` / `clip_grad_value_`.
pub fn render_clip(c: &GradClip) -> String {
    match *c {
        GradClip::Norm {
            max_norm,
            norm_type,
        } => {
            format!(
                "torch.nn.utils.clip_grad_norm_(params, max_norm={}, norm_type={})",
                py(max_norm),
                py(norm_type)
            )
        }
        GradClip::Value { clip_value } => format!(
            "torch.nn.utils.clip_grad_value_(params, clip_value={})",
            py(clip_value)
        ),
    }
}

/// `keras.optimizers.X(learning_rate=..., <arguments that differ from Keras's defaults>)`.
pub fn render_keras(c: &keras::Config) -> String {
    use keras::Kind as K;
    let mut args = Args::default();
    match &c.learning_rate {
        LearningRate::Constant(x) => args.val("learning_rate", *x),
        LearningRate::Schedule(s) => args.push(format!("learning_rate={}", render_schedule(s))),
    }
    let mut flags = Args::default();
    match c.kind {
        K::Sgd { momentum, nesterov } => {
            args.num("momentum", momentum, 0.0);
            flags.flag("nesterov", nesterov);
        }
        K::Adam {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        }
        | K::AdamW {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        } => {
            args.num("beta_1", beta_1, 0.9);
            args.num("beta_2", beta_2, 0.999);
            args.num("epsilon", epsilon, 1e-7);
            flags.flag("amsgrad", amsgrad);
        }
        K::RmsProp {
            rho,
            momentum,
            epsilon,
            centered,
        } => {
            args.num("rho", rho, 0.9);
            args.num("momentum", momentum, 0.0);
            args.num("epsilon", epsilon, 1e-7);
            flags.flag("centered", centered);
        }
        K::Adagrad {
            initial_accumulator_value,
            epsilon,
        } => {
            args.num("initial_accumulator_value", initial_accumulator_value, 0.1);
            args.num("epsilon", epsilon, 1e-7);
        }
        K::Adadelta { rho, epsilon } => {
            args.num("rho", rho, 0.95);
            args.num("epsilon", epsilon, 1e-7);
        }
        K::Adamax {
            beta_1,
            beta_2,
            epsilon,
        }
        | K::Nadam {
            beta_1,
            beta_2,
            epsilon,
        } => {
            args.num("beta_1", beta_1, 0.9);
            args.num("beta_2", beta_2, 0.999);
            args.num("epsilon", epsilon, 1e-7);
        }
        K::Lion { beta_1, beta_2 } => {
            args.num("beta_1", beta_1, 0.9);
            args.num("beta_2", beta_2, 0.99);
        }
        K::Adafactor {
            beta_2_decay,
            epsilon_1,
            epsilon_2,
            clip_threshold,
            relative_step,
        } => {
            args.num("beta_2_decay", beta_2_decay, -0.8);
            args.num("epsilon_1", epsilon_1, 1e-30);
            args.num("epsilon_2", epsilon_2, 1e-3);
            args.num("clip_threshold", clip_threshold, 1.0);
            if !relative_step {
                flags.push("relative_step=False");
            }
        }
    }
    let default_wd = if matches!(c.kind, K::AdamW { .. }) {
        0.004
    } else {
        0.0
    };
    args.num("weight_decay", c.weight_decay.unwrap_or(0.0), default_wd);
    args.opt("clipnorm", c.clipnorm);
    args.opt("global_clipnorm", c.global_clipnorm);
    args.opt("clipvalue", c.clipvalue);
    if let Some(n) = c.gradient_accumulation_steps {
        args.push(format!("gradient_accumulation_steps={n}"));
    }
    args.0.extend(flags.0);
    format!("keras.optimizers.{}({})", c.kind.class_name(), args.join())
}

/// A Python list of numbers, whole numbers without `.0` (as Keras boundaries are written).
fn py_list(v: &[f64], whole_as_int: bool) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|&x| match integral(x.abs()) {
            Some(n) if whole_as_int => format!("{}{n}", if x < 0.0 { "-" } else { "" }),
            _ => py(x),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// `keras.optimizers.schedules.X(...)` with the arguments that are required or differ from
/// Keras's defaults.
pub fn render_schedule(s: &Schedule) -> String {
    let mut args = Args::default();
    let name = match *s {
        Schedule::ExponentialDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        }
        | Schedule::InverseTimeDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        } => {
            args.push(py(initial_learning_rate));
            args.val("decay_steps", decay_steps);
            args.val("decay_rate", decay_rate);
            args.flag("staircase", staircase);
            if matches!(s, Schedule::ExponentialDecay { .. }) {
                "ExponentialDecay"
            } else {
                "InverseTimeDecay"
            }
        }
        Schedule::PiecewiseConstantDecay {
            ref boundaries,
            ref values,
        } => {
            args.push(format!("boundaries={}", py_list(boundaries, true)));
            args.push(format!("values={}", py_list(values, false)));
            "PiecewiseConstantDecay"
        }
        Schedule::PolynomialDecay {
            initial_learning_rate,
            decay_steps,
            end_learning_rate,
            power,
            cycle,
        } => {
            args.push(py(initial_learning_rate));
            args.val("decay_steps", decay_steps);
            args.val("end_learning_rate", end_learning_rate);
            args.num("power", power, 1.0);
            args.flag("cycle", cycle);
            "PolynomialDecay"
        }
        Schedule::CosineDecay {
            initial_learning_rate,
            decay_steps,
            alpha,
            warmup_target,
            warmup_steps,
        } => {
            args.push(py(initial_learning_rate));
            args.val("decay_steps", decay_steps);
            args.num("alpha", alpha, 0.0);
            args.opt("warmup_target", warmup_target);
            args.num("warmup_steps", warmup_steps, 0.0);
            "CosineDecay"
        }
        Schedule::CosineDecayRestarts {
            initial_learning_rate,
            first_decay_steps,
            t_mul,
            m_mul,
            alpha,
        } => {
            args.push(py(initial_learning_rate));
            args.val("first_decay_steps", first_decay_steps);
            args.num("t_mul", t_mul, 2.0);
            args.num("m_mul", m_mul, 1.0);
            args.num("alpha", alpha, 0.0);
            "CosineDecayRestarts"
        }
    };
    format!("keras.optimizers.schedules.{name}({})", args.join())
}

/// `torch.optim.lr_scheduler.X(optimizer, ...)  # step() after every optimizer.step()` (or
/// once per epoch), with the arguments that are required or differ from torch's defaults.
pub fn render_scheduler(s: &SchedulerConfig) -> String {
    let mut args = Args::default();
    args.push("optimizer");
    match s.kind {
        SchedulerKind::StepLR { step_size, gamma } => {
            args.push(format!("step_size={step_size}"));
            args.num("gamma", gamma, 0.1);
        }
        SchedulerKind::MultiStepLR {
            ref milestones,
            gamma,
        } => {
            let ms: Vec<String> = milestones.iter().map(u64::to_string).collect();
            args.push(format!("milestones=[{}]", ms.join(", ")));
            args.num("gamma", gamma, 0.1);
        }
        SchedulerKind::ExponentialLR { gamma } => args.val("gamma", gamma),
        SchedulerKind::CosineAnnealingLR { t_max, eta_min } => {
            args.push(format!(
                "T_max={}",
                py_list(&[t_max], true).trim_matches(['[', ']'])
            ));
            args.num("eta_min", eta_min, 0.0);
        }
        SchedulerKind::CosineAnnealingWarmRestarts {
            t_0,
            t_mult,
            eta_min,
        } => {
            args.push(format!("T_0={t_0}"));
            if t_mult != 1 {
                args.push(format!("T_mult={t_mult}"));
            }
            args.num("eta_min", eta_min, 0.0);
        }
        SchedulerKind::LinearLR {
            start_factor,
            end_factor,
            total_iters,
        } => {
            args.val("start_factor", start_factor);
            args.val("end_factor", end_factor);
            args.push(format!("total_iters={total_iters}"));
        }
        SchedulerKind::OneCycleLR(ref oc) => {
            let one_or_list = |v: &[f64]| {
                if v.len() == 1 {
                    py(v[0])
                } else {
                    py_list(v, false)
                }
            };
            args.push(format!("max_lr={}", one_or_list(&oc.max_lr)));
            args.push(format!("total_steps={}", oc.total_steps));
            args.num("pct_start", oc.pct_start, 0.3);
            if !oc.anneal_cos {
                args.push("anneal_strategy='linear'");
            }
            if !oc.cycle_momentum {
                args.push("cycle_momentum=False");
            }
            if oc.base_momentum.len() != 1 || differs(oc.base_momentum[0], 0.85) {
                args.push(format!("base_momentum={}", one_or_list(&oc.base_momentum)));
            }
            if oc.max_momentum.len() != 1 || differs(oc.max_momentum[0], 0.95) {
                args.push(format!("max_momentum={}", one_or_list(&oc.max_momentum)));
            }
            args.num("div_factor", oc.div_factor, 25.0);
            args.num("final_div_factor", oc.final_div_factor, 1e4);
            args.flag("three_phase", oc.three_phase);
        }
    }
    let when = match (s.interval, s.steps_per_epoch) {
        (StepInterval::Step, _) => "scheduler.step() after every optimizer.step()".to_string(),
        (StepInterval::Epoch, Some(k)) => {
            format!("scheduler.step() once per epoch ({k} optimizer steps)")
        }
        (StepInterval::Epoch, None) => "scheduler.step() once per epoch".to_string(),
    };
    format!(
        "torch.optim.lr_scheduler.{}({})  # {when}",
        s.kind.class_name(),
        args.join()
    )
}

/// `(var_list=[...], var_names=[...])` with the non-empty arguments.
pub(super) fn render_exclusion(e: &keras::Exclusion) -> String {
    let q = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
        format!("[{}]", items.join(", "))
    };
    let mut args = Vec::new();
    if !e.var_list.is_empty() {
        args.push(format!("var_list={}", q(&e.var_list)));
    }
    if !e.var_names.is_empty() {
        args.push(format!("var_names={}", q(&e.var_names)));
    }
    format!("({})", args.join(", "))
}
