//! `torch.optim.lr_scheduler` (torch 2.15, `torch/optim/lr_scheduler.py`): StepLR,
//! MultiStepLR, ExponentialLR, CosineAnnealingLR, CosineAnnealingWarmRestarts, LinearLR and
//! OneCycleLR, computed as `scheduler.step()` (without an epoch argument) computes them.
//!
//! The chainable schedulers update each group's *current* `lr` recursively in `get_lr`
//! (StepLR multiplies by γ at every multiple of `step_size`, CosineAnnealingLR by a ratio of
//! cosines), which rounds differently from their `_get_closed_form_lr`; this module follows
//! `get_lr` operation for operation, in Python floats (f64). Constructing a scheduler runs
//! its initial `step()` (`_initial_step`, with `_is_initial` set), which already changes
//! the learning rate for LinearLR (× `start_factor`) and OneCycleLR (`max_lr/div_factor`).
//!
//! Whether `step()` runs after every optimizer step or once per epoch is the training loop's
//! choice ([`SchedulerConfig::interval`]; catalogue 14).

use model_ir::StepInterval;
use serde_json::Value;

use super::Config;
use crate::config::{ConfigError, Fields, split};

/// Scheduler classes [`SchedulerKind::parse`] accepts.
pub const SUPPORTED: &str = "StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, \
                             CosineAnnealingWarmRestarts, LinearLR, OneCycleLR";

/// A scheduler class with its constructor arguments (torch defaults filled in).
#[derive(Debug, Clone, PartialEq)]
pub enum SchedulerKind {
    /// η ← η·γ when `last_epoch` is a non-zero multiple of `step_size`. Default γ = 0.1.
    StepLR { step_size: u64, gamma: f64 },
    /// η ← η·γ^n when `last_epoch` appears n times in `milestones`. Default γ = 0.1.
    MultiStepLR { milestones: Vec<u64>, gamma: f64 },
    /// η ← η·γ after the initial step.
    ExponentialLR { gamma: f64 },
    /// η ← (1 + cos(π e/T))/(1 + cos(π(e−1)/T))·(η − η_min) + η_min, and
    /// η ← η + (η₀ − η_min)(1 − cos(π/T))/2 when (e − 1 − T) mod 2T = 0; periodic past T
    /// (catalogue 15). Default η_min = 0.
    CosineAnnealingLR { t_max: f64, eta_min: f64 },
    /// η = η_min + (η₀ − η_min)(1 + cos(π T_cur/T_i))/2; T_cur += 1 per step and wraps to
    /// T_cur − T_i, with T_i ← T_i·T_mult. Defaults T_mult = 1, η_min = 0.
    CosineAnnealingWarmRestarts { t_0: u64, t_mult: u64, eta_min: f64 },
    /// η ← η·s at e = 0; η ← η·(1 + (f − s)/(N·s + (e − 1)(f − s))) for 0 < e ≤ N.
    /// Defaults s = 1/3, f = 1, N = 5.
    LinearLR {
        start_factor: f64,
        end_factor: f64,
        total_iters: u64,
    },
    /// See [`OneCycle`].
    OneCycleLR(OneCycle),
}

/// `OneCycleLR`: phases (two, or three with `three_phase`) from `initial_lr = max_lr /
/// div_factor` up to `max_lr` and down to `min_lr = initial_lr / final_div_factor`,
/// annealed by `end + (start − end)/2·(cos(π·pct) + 1)` or linearly; momentum (`betas[0]`
/// or `momentum`) cycled inversely between `max_momentum` and `base_momentum`.
#[derive(Debug, Clone, PartialEq)]
pub struct OneCycle {
    /// One value for every group, or one per group.
    pub max_lr: Vec<f64>,
    pub total_steps: u64,
    pub pct_start: f64,
    /// `anneal_strategy == "cos"` (else `"linear"`).
    pub anneal_cos: bool,
    pub cycle_momentum: bool,
    pub base_momentum: Vec<f64>,
    pub max_momentum: Vec<f64>,
    pub div_factor: f64,
    pub final_div_factor: f64,
    pub three_phase: bool,
}

/// A scheduler and how the training loop steps it: the trajectory metadata / `train.json`
/// `{"class_name", "config", "interval": "epoch" | "step", "steps_per_epoch"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    pub kind: SchedulerKind,
    pub interval: StepInterval,
    /// Optimizer steps per epoch; needed to replay an `Epoch` interval.
    pub steps_per_epoch: Option<u64>,
}

impl SchedulerConfig {
    /// Parse `{"class_name", "config", "interval", "steps_per_epoch"}`; `interval` defaults to
    /// `"epoch"` as in `train.json`.
    pub fn parse(v: &Value) -> Result<SchedulerConfig, ConfigError> {
        let obj = v.as_object().ok_or(ConfigError::Shape {
            framework: "torch",
            body: "config",
        })?;
        let mut inner = obj.clone();
        let interval = inner.remove("interval");
        inner.remove("steps_per_epoch");
        let kind = SchedulerKind::parse(&Value::Object(inner))?;
        let mut f = Fields::new("torch", kind.class_name(), obj);
        let interval = match interval {
            None | Some(Value::Null) => StepInterval::Epoch,
            Some(Value::String(s)) if s == "epoch" => StepInterval::Epoch,
            Some(Value::String(s)) if s == "step" => StepInterval::Step,
            Some(v) => return Err(f.bad("interval", "\"epoch\" or \"step\"", &v)),
        };
        let steps_per_epoch = f.opt_u64("steps_per_epoch")?;
        if steps_per_epoch == Some(0) {
            return Err(f.bad(
                "steps_per_epoch",
                "a positive integer",
                &serde_json::json!(0),
            ));
        }
        Ok(SchedulerConfig {
            kind,
            interval,
            steps_per_epoch,
        })
    }

    /// From a `train.json` [`model_ir::SchedulerSpec`] plus the loop's steps per epoch.
    pub fn from_spec(
        spec: &model_ir::SchedulerSpec,
        steps_per_epoch: Option<u64>,
    ) -> Result<SchedulerConfig, ConfigError> {
        Ok(SchedulerConfig {
            kind: SchedulerKind::parse(
                &serde_json::json!({"class_name": spec.class_name, "config": spec.config}),
            )?,
            interval: spec.interval,
            steps_per_epoch,
        })
    }

    /// Whether `scheduler.step()` runs after optimizer step `t` (1-based): after every step,
    /// or after every `steps_per_epoch`-th. `None` when the interval is `Epoch` and the steps
    /// per epoch are unknown.
    pub fn steps_after(&self, t: u64) -> Option<bool> {
        match self.interval {
            StepInterval::Step => Some(true),
            StepInterval::Epoch => self.steps_per_epoch.map(|k| t.is_multiple_of(k)),
        }
    }
}

impl SchedulerKind {
    /// The torch class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            SchedulerKind::StepLR { .. } => "StepLR",
            SchedulerKind::MultiStepLR { .. } => "MultiStepLR",
            SchedulerKind::ExponentialLR { .. } => "ExponentialLR",
            SchedulerKind::CosineAnnealingLR { .. } => "CosineAnnealingLR",
            SchedulerKind::CosineAnnealingWarmRestarts { .. } => "CosineAnnealingWarmRestarts",
            SchedulerKind::LinearLR { .. } => "LinearLR",
            SchedulerKind::OneCycleLR(_) => "OneCycleLR",
        }
    }

    /// Parse `{"class_name", "config": {constructor keyword arguments}}`. Missing arguments
    /// take torch's defaults; `last_epoch` other than -1 (resuming) is refused.
    pub fn parse(v: &Value) -> Result<SchedulerKind, ConfigError> {
        let (class, cfg) = split("torch", "config", v)?;
        let mut f = Fields::new("torch", class, cfg);
        if let Some(le) = f.raw("last_epoch")
            && le.as_f64().is_none_or(|x| (x + 1.0).abs() > 0.0)
        {
            return Err(f.unsupported("last_epoch", le, "resuming a scheduler is not emulated"));
        }
        let req_u64 = |f: &mut Fields<'_>, key: &'static str| -> Result<u64, ConfigError> {
            match f.opt_u64(key)? {
                Some(x) => Ok(x),
                None => Err(ConfigError::BadValue {
                    framework: "torch",
                    class: f.class.clone(),
                    field: key.into(),
                    expected: "a non-negative integer (required)",
                    got: "nothing".into(),
                }),
            }
        };
        let kind = match class {
            "StepLR" => {
                let step_size = req_u64(&mut f, "step_size")?;
                if step_size == 0 {
                    return Err(f.bad("step_size", "a positive integer", &serde_json::json!(0)));
                }
                SchedulerKind::StepLR {
                    step_size,
                    gamma: f.f64_or("gamma", 0.1)?,
                }
            }
            "MultiStepLR" => {
                let ms = f.f64_list("milestones")?;
                let milestones = ms
                    .iter()
                    .map(|&m| {
                        (m >= 0.0 && m.fract().abs() < f64::EPSILON)
                            .then_some(m as u64)
                            .ok_or_else(|| {
                                f.bad(
                                    "milestones",
                                    "a list of non-negative integers",
                                    &serde_json::json!(ms),
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                SchedulerKind::MultiStepLR {
                    milestones,
                    gamma: f.f64_or("gamma", 0.1)?,
                }
            }
            "ExponentialLR" => SchedulerKind::ExponentialLR {
                gamma: f.req_f64("gamma")?,
            },
            "CosineAnnealingLR" => SchedulerKind::CosineAnnealingLR {
                t_max: f.req_f64("T_max")?,
                eta_min: f.f64_or("eta_min", 0.0)?,
            },
            "CosineAnnealingWarmRestarts" => {
                let t_0 = req_u64(&mut f, "T_0")?;
                let t_mult = f.opt_u64("T_mult")?.unwrap_or(1);
                if t_0 == 0 || t_mult == 0 {
                    return Err(f.bad(
                        if t_0 == 0 { "T_0" } else { "T_mult" },
                        "a positive integer",
                        &serde_json::json!(0),
                    ));
                }
                SchedulerKind::CosineAnnealingWarmRestarts {
                    t_0,
                    t_mult,
                    eta_min: f.f64_or("eta_min", 0.0)?,
                }
            }
            "LinearLR" => {
                let start_factor = f.f64_or("start_factor", 1.0 / 3.0)?;
                let end_factor = f.f64_or("end_factor", 1.0)?;
                // torch's constructor checks.
                if !(start_factor > 0.0 && start_factor <= 1.0) {
                    return Err(f.bad(
                        "start_factor",
                        "greater than 0 and at most 1",
                        &serde_json::json!(start_factor),
                    ));
                }
                if !(0.0..=1.0).contains(&end_factor) {
                    return Err(f.bad(
                        "end_factor",
                        "between 0 and 1",
                        &serde_json::json!(end_factor),
                    ));
                }
                SchedulerKind::LinearLR {
                    start_factor,
                    end_factor,
                    total_iters: f.opt_u64("total_iters")?.unwrap_or(5),
                }
            }
            "OneCycleLR" => {
                let list_or = |f: &mut Fields<'_>,
                               key: &'static str,
                               default: Option<f64>|
                 -> Result<Vec<f64>, ConfigError> {
                    match f.raw(key) {
                        None => default
                            .map(|d| vec![d])
                            .ok_or_else(|| ConfigError::BadValue {
                                framework: "torch",
                                class: f.class.clone(),
                                field: key.into(),
                                expected: "a number or a list of numbers (required)",
                                got: "nothing".into(),
                            }),
                        Some(v) if v.is_number() => Ok(vec![v.as_f64().unwrap_or(0.0)]),
                        Some(v) => v
                            .as_array()
                            .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
                            .ok_or_else(|| f.bad(key, "a number or a list of numbers", v)),
                    }
                };
                let max_lr = list_or(&mut f, "max_lr", None)?;
                let total_steps = match f.opt_u64("total_steps")? {
                    Some(n) => n,
                    None => match (f.opt_u64("epochs")?, f.opt_u64("steps_per_epoch")?) {
                        (Some(e), Some(s)) => e * s,
                        _ => {
                            return Err(ConfigError::BadValue {
                                framework: "torch",
                                class: class.into(),
                                field: "total_steps".into(),
                                expected: "total_steps, or epochs and steps_per_epoch",
                                got: "nothing".into(),
                            });
                        }
                    },
                };
                if total_steps == 0 {
                    return Err(f.bad("total_steps", "a positive integer", &serde_json::json!(0)));
                }
                let anneal_cos = match f.raw("anneal_strategy") {
                    None => true,
                    Some(Value::String(s)) if s == "cos" => true,
                    Some(Value::String(s)) if s == "linear" => false,
                    Some(v) => return Err(f.bad("anneal_strategy", "\"cos\" or \"linear\"", v)),
                };
                let pct_start = f.f64_or("pct_start", 0.3)?;
                if !(0.0..=1.0).contains(&pct_start) {
                    return Err(f.bad(
                        "pct_start",
                        "a float between 0 and 1",
                        &serde_json::json!(pct_start),
                    ));
                }
                SchedulerKind::OneCycleLR(OneCycle {
                    max_lr,
                    total_steps,
                    pct_start,
                    anneal_cos,
                    cycle_momentum: f.bool_or("cycle_momentum", true)?,
                    base_momentum: list_or(&mut f, "base_momentum", Some(0.85))?,
                    max_momentum: list_or(&mut f, "max_momentum", Some(0.95))?,
                    div_factor: f.f64_or("div_factor", 25.0)?,
                    final_div_factor: f.f64_or("final_div_factor", 1e4)?,
                    three_phase: f.bool_or("three_phase", false)?,
                })
            }
            other => {
                return Err(ConfigError::UnknownClass {
                    framework: "torch",
                    class: other.into(),
                    supported: SUPPORTED,
                });
            }
        };
        f.finish()?;
        Ok(kind)
    }
}

/// OneCycleLR's per-group values (`group["initial_lr"]`, `["max_lr"]`, `["min_lr"]`,
/// `["max_momentum"]`, `["base_momentum"]`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct CycleGroup {
    initial_lr: f64,
    max_lr: f64,
    min_lr: f64,
    max_momentum: f64,
    base_momentum: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Key {
    Initial,
    Max,
    Min,
    MaxMomentum,
    BaseMomentum,
}

impl CycleGroup {
    fn get(&self, k: Key) -> f64 {
        match k {
            Key::Initial => self.initial_lr,
            Key::Max => self.max_lr,
            Key::Min => self.min_lr,
            Key::MaxMomentum => self.max_momentum,
            Key::BaseMomentum => self.base_momentum,
        }
    }
}

/// `_schedule_phases`: (end_step, start_lr, end_lr, start_momentum, end_momentum).
type Phase = (f64, Key, Key, Key, Key);

/// A running scheduler attached to an optimizer's parameter groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduler {
    pub kind: SchedulerKind,
    /// `last_epoch`: the number of `step()` calls after construction.
    pub last_epoch: u64,
    /// `base_lrs` (each group's `initial_lr`).
    pub base_lrs: Vec<f64>,
    /// CosineAnnealingWarmRestarts `T_cur`, `T_i`.
    t_cur: u64,
    t_i: u64,
    cycle: Vec<CycleGroup>,
    phases: Vec<Phase>,
}

fn per_group(name: &'static str, v: &[f64], n: usize) -> Result<Vec<f64>, ConfigError> {
    match v.len() {
        1 => Ok(vec![v[0]; n]),
        m if m == n => Ok(v.to_vec()),
        m => Err(ConfigError::BadValue {
            framework: "torch",
            class: "OneCycleLR".into(),
            field: name.into(),
            expected: "one value or one per parameter group",
            got: format!("{m} values for {n} groups"),
        }),
    }
}

impl Scheduler {
    /// `Scheduler(optimizer, **config)`: records each group's `initial_lr` and runs the initial
    /// step, which may already change the groups' `lr` (and, for OneCycleLR, momentum).
    pub fn new(kind: &SchedulerKind, groups: &mut [&mut Config]) -> Result<Scheduler, ConfigError> {
        let n = groups.len();
        let mut cycle = Vec::new();
        let mut phases = Vec::new();
        if let SchedulerKind::OneCycleLR(oc) = kind {
            let total = oc.total_steps as f64;
            let (i, mx, mn, mxm, bm) = (
                Key::Initial,
                Key::Max,
                Key::Min,
                Key::MaxMomentum,
                Key::BaseMomentum,
            );
            phases = if oc.three_phase {
                vec![
                    (oc.pct_start * total - 1.0, i, mx, mxm, bm),
                    (2.0 * oc.pct_start * total - 2.0, mx, i, bm, mxm),
                    (total - 1.0, i, mn, mxm, mxm),
                ]
            } else {
                vec![
                    (oc.pct_start * total - 1.0, i, mx, mxm, bm),
                    (total - 1.0, mx, mn, bm, mxm),
                ]
            };
            let max_lrs = per_group("max_lr", &oc.max_lr, n)?;
            let max_m = per_group("max_momentum", &oc.max_momentum, n)?;
            let base_m = per_group("base_momentum", &oc.base_momentum, n)?;
            for (gi, g) in groups.iter_mut().enumerate() {
                let initial_lr = max_lrs[gi] / oc.div_factor;
                cycle.push(CycleGroup {
                    initial_lr,
                    max_lr: max_lrs[gi],
                    min_lr: initial_lr / oc.final_div_factor,
                    max_momentum: max_m[gi],
                    base_momentum: base_m[gi],
                });
                if oc.cycle_momentum {
                    match g.kind.momentum_mut() {
                        Some(m) => *m = max_m[gi],
                        None => {
                            return Err(ConfigError::Unsupported {
                                framework: "torch",
                                class: "OneCycleLR".into(),
                                field: "cycle_momentum".into(),
                                value: "true".into(),
                                reason: "optimizer must support momentum or beta1 with `cycle_momentum` option enabled",
                            });
                        }
                    }
                }
            }
        }
        let base_lrs = if cycle.is_empty() {
            groups.iter().map(|g| g.lr).collect()
        } else {
            cycle.iter().map(|c| c.initial_lr).collect()
        };
        let t_0 = match kind {
            SchedulerKind::CosineAnnealingWarmRestarts { t_0, .. } => *t_0,
            _ => 0,
        };
        let s = Scheduler {
            kind: kind.clone(),
            last_epoch: 0,
            base_lrs,
            t_cur: 0,
            t_i: t_0,
            cycle,
            phases,
        };
        s.apply(groups, true);
        Ok(s)
    }

    /// The largest number of [`Scheduler::step`] calls torch allows (OneCycleLR raises
    /// "Tried to step N times" past `total_steps`).
    pub fn max_steps(&self) -> Option<u64> {
        match &self.kind {
            SchedulerKind::OneCycleLR(oc) => Some(oc.total_steps),
            _ => None,
        }
    }

    /// `scheduler.step()`.
    ///
    /// Panics past [`Scheduler::max_steps`].
    pub fn step(&mut self, groups: &mut [&mut Config]) {
        self.last_epoch += 1;
        if let Some(max) = self.max_steps() {
            assert!(
                self.last_epoch <= max,
                "OneCycleLR: tried to step {} times; total_steps is {max}",
                self.last_epoch
            );
        }
        if let SchedulerKind::CosineAnnealingWarmRestarts { t_mult, .. } = self.kind {
            self.t_cur += 1;
            if self.t_cur >= self.t_i {
                self.t_cur %= self.t_i;
                self.t_i *= t_mult;
            }
        }
        self.apply(groups, false);
    }

    /// `get_lr()` (with `_is_initial` = `initial`), written into the groups.
    fn apply(&self, groups: &mut [&mut Config], initial: bool) {
        assert_eq!(
            groups.len(),
            self.base_lrs.len(),
            "scheduler: parameter group count changed"
        );
        let e = self.last_epoch;
        let ef = e as f64;
        let pi = std::f64::consts::PI;
        for (gi, g) in groups.iter_mut().enumerate() {
            let lr = g.lr;
            let base = self.base_lrs[gi];
            g.lr = match self.kind {
                SchedulerKind::StepLR { step_size, gamma } => {
                    if e == 0 || !e.is_multiple_of(step_size) {
                        lr
                    } else {
                        lr * gamma
                    }
                }
                SchedulerKind::MultiStepLR {
                    ref milestones,
                    gamma,
                } => {
                    let n = milestones.iter().filter(|&&m| m == e).count();
                    if n == 0 {
                        lr
                    } else {
                        lr * gamma.powf(n as f64)
                    }
                }
                SchedulerKind::ExponentialLR { gamma } => {
                    if initial {
                        lr
                    } else {
                        lr * gamma
                    }
                }
                SchedulerKind::CosineAnnealingLR { t_max, eta_min } => {
                    if initial {
                        lr
                    } else if (ef - 1.0 - t_max).rem_euclid(2.0 * t_max) == 0.0 {
                        lr + (base - eta_min) * (1.0 - (pi / t_max).cos()) / 2.0
                    } else {
                        (1.0 + (pi * ef / t_max).cos()) / (1.0 + (pi * (ef - 1.0) / t_max).cos())
                            * (lr - eta_min)
                            + eta_min
                    }
                }
                SchedulerKind::CosineAnnealingWarmRestarts { eta_min, .. } => {
                    eta_min
                        + (base - eta_min)
                            * (1.0 + (pi * self.t_cur as f64 / self.t_i as f64).cos())
                            / 2.0
                }
                SchedulerKind::LinearLR {
                    start_factor,
                    end_factor,
                    total_iters,
                } => {
                    if e == 0 {
                        lr * start_factor
                    } else if initial || e > total_iters {
                        lr
                    } else {
                        lr * (1.0
                            + (end_factor - start_factor)
                                / (total_iters as f64 * start_factor
                                    + (ef - 1.0) * (end_factor - start_factor)))
                    }
                }
                SchedulerKind::OneCycleLR(ref oc) => {
                    let cg = &self.cycle[gi];
                    let anneal = |start: f64, end: f64, pct: f64| {
                        if oc.anneal_cos {
                            let cos_out = (pi * pct).cos() + 1.0;
                            end + (start - end) / 2.0 * cos_out
                        } else {
                            (end - start) * pct + start
                        }
                    };
                    let mut start_step = 0.0;
                    let mut out = (lr, None);
                    for (i, &(end_step, slr, elr, sm, em)) in self.phases.iter().enumerate() {
                        if ef <= end_step || i == self.phases.len() - 1 {
                            let pct = (ef - start_step) / (end_step - start_step);
                            let new_lr = anneal(cg.get(slr), cg.get(elr), pct);
                            let m = oc
                                .cycle_momentum
                                .then(|| anneal(cg.get(sm), cg.get(em), pct));
                            out = (new_lr, m);
                            break;
                        }
                        start_step = end_step;
                    }
                    if let (Some(m), Some(slot)) = (out.1, g.kind.momentum_mut()) {
                        *slot = m;
                    }
                    out.0
                }
            };
        }
    }
}
