//! Keras 3 optimizers, transcribed from `keras/src/optimizers/*.py` (Keras 3.15), with the
//! base-optimizer pipeline of `keras/src/optimizers/base_optimizer.py` (`apply`,
//! `_backend_apply_gradients`).
//!
//! One [`Optimizer::apply`] is one `optimizer.apply(grads, variables)`, in Keras's order:
//! 1. unscale by `loss_scale_factor` (g ← g / s);
//! 2. clip (`_clip_gradients`): `clipnorm` c **per variable** g ← g·c / max(‖g‖₂, c);
//!    else `global_clipnorm` c: N = √Σ‖gᵢ‖², gᵢ ← gᵢ·c·min(1/N, 1/c); else `clipvalue`
//!    g ← clip(g, −c, c) (catalogue 11);
//! 3. decoupled weight decay with the current (scheduled) η: θ ← θ − (θ·λ)·η (catalogue 2);
//! 4. `update_step` with `iterations` = t − 1 (the formulas are on [`Kind`]'s variants);
//! 5. EMA (`_update_model_variables_moving_average`): a ← μₑ·a + (1 − μₑ)·θ with μₑ = 0 on
//!    the first update, and θ ← a when t % `ema_overwrite_frequency` = 0 (catalogue 12);
//! 6. `iterations += 1`.
//!
//! Scalars follow the TensorFlow backend's dtypes: the learning rate is a float32 variable,
//! Python-float hyper-parameters are cast to the variable dtype where they meet a tensor
//! (so `1 - self.beta_1` is computed in f64 first), and bias-correction powers are float32
//! tensors (`ops.power(cast(β), cast(t))`).

pub mod schedules;

use serde_json::Value;

use crate::config::{ConfigError, Fields, split};
use crate::real::Real;
pub use schedules::Schedule;

/// A learning rate: a constant or a schedule evaluated at `iterations`.
#[derive(Debug, Clone, PartialEq)]
pub enum LearningRate {
    Constant(f64),
    Schedule(Schedule),
}

impl LearningRate {
    /// The learning rate at raw iteration `step` (update t uses step t − 1).
    pub fn at<T: Real>(&self, step: u64) -> T {
        match self {
            LearningRate::Constant(x) => T::of(*x),
            LearningRate::Schedule(s) => s.value(step),
        }
    }
}

/// The per-class part of a Keras optimizer. Defaults are Keras 3's (see [`Config::default_for`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `keras/src/optimizers/sgd.py`: v ← μv − η·g; θ ← θ + v;
    /// Nesterov θ ← θ + μv − η·g; without momentum θ ← θ − η·g. Defaults η=0.01, μ=0.
    Sgd { momentum: f64, nesterov: bool },
    /// `keras/src/optimizers/adam.py`: m ← m + (g−m)(1−β1); v ← v + (g²−v)(1−β2);
    /// α = η·√(1−β2^t)/(1−β1^t); AMSGrad v̂ ← max(v̂, v); θ ← θ − m·α/(√v̂ + ε̂).
    /// Defaults η=1e-3, β1=0.9, β2=0.999, ε̂=1e-7 (catalogue 1).
    Adam {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        amsgrad: bool,
    },
    /// `keras/src/optimizers/adamw.py`: the Adam step with decoupled weight decay λ=0.004 by
    /// default (catalogue 3).
    AdamW {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
        amsgrad: bool,
    },
    /// `keras/src/optimizers/rmsprop.py`: v ← ρv + (1−ρ)g²; centered ḡ ← ρḡ + (1−ρ)g and
    /// D = v − ḡ² + ε, else D = v + ε; inc = η·g/√D; momentum b ← μb + inc, θ ← θ − b,
    /// else θ ← θ − inc. Defaults η=1e-3, ρ=0.9, μ=0, ε=1e-7 inside the root (catalogue 6).
    RmsProp {
        rho: f64,
        momentum: f64,
        epsilon: f64,
        centered: bool,
    },
    /// `keras/src/optimizers/adagrad.py`: a₀ = 0.1; a ← a + g²; θ ← θ − η·g/√(a + ε).
    /// Defaults η=1e-3, ε=1e-7 (catalogue 7).
    Adagrad {
        initial_accumulator_value: f64,
        epsilon: f64,
    },
    /// `keras/src/optimizers/adadelta.py`: E_g ← ρE_g + (1−ρ)g²;
    /// Δ = −√(E_Δ+ε)·g/√(E_g+ε); E_Δ ← ρE_Δ + (1−ρ)Δ²; θ ← θ + η·Δ.
    /// Defaults η=1e-3, ρ=0.95, ε=1e-7 (catalogue 8).
    Adadelta { rho: f64, epsilon: f64 },
    /// `keras/src/optimizers/adamax.py`: m ← m + (g−m)(1−β1); u ← max(β2·u, |g|);
    /// θ ← θ − η·m/((1−β1^t)(u + ε)). Defaults η=1e-3, β1=0.9, β2=0.999, ε=1e-7 (catalogue 10).
    Adamax {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
    },
    /// `keras/src/optimizers/nadam.py`: μ_t = β1(1 − ½·0.96^t), Π_t = Π_{t−1}·μ_t (updated in
    /// `_backend_update_step` before the variables);
    /// m̂ = μ_{t+1}·m/(1 − Π_t·μ_{t+1}) + (1−μ_t)·g/(1 − Π_t); v̂ = v/(1−β2^t);
    /// θ ← θ − m̂·η/(√v̂ + ε). Defaults η=1e-3, β1=0.9, β2=0.999, ε=1e-7 (catalogue 9).
    Nadam {
        beta_1: f64,
        beta_2: f64,
        epsilon: f64,
    },
    /// `keras/src/optimizers/lion.py`: θ ← θ − η·sign(β1·m + (1−β1)·g);
    /// m ← β2·m + (1−β2)·g. Defaults η=1e-3, β1=0.9, β2=0.99 (catalogue 62: no torch core
    /// counterpart).
    Lion { beta_1: f64, beta_2: f64 },
}

impl Kind {
    /// The Keras class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            Kind::Sgd { .. } => "SGD",
            Kind::Adam { .. } => "Adam",
            Kind::AdamW { .. } => "AdamW",
            Kind::RmsProp { .. } => "RMSprop",
            Kind::Adagrad { .. } => "Adagrad",
            Kind::Adadelta { .. } => "Adadelta",
            Kind::Adamax { .. } => "Adamax",
            Kind::Nadam { .. } => "Nadam",
            Kind::Lion { .. } => "Lion",
        }
    }
}

/// A Keras 3 optimizer configuration: the class part plus the base-optimizer arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub kind: Kind,
    pub learning_rate: LearningRate,
    /// Decoupled weight decay λ (`None` = off; AdamW defaults to 0.004).
    pub weight_decay: Option<f64>,
    pub clipnorm: Option<f64>,
    pub global_clipnorm: Option<f64>,
    pub clipvalue: Option<f64>,
    pub use_ema: bool,
    pub ema_momentum: f64,
    pub ema_overwrite_frequency: Option<u64>,
    pub loss_scale_factor: Option<f64>,
}

/// Class names [`Config::parse`] accepts.
pub const SUPPORTED: &str = "SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion";

impl Config {
    /// Keras 3's constructor defaults for `class_name` (`keras/src/optimizers/<name>.py`).
    pub fn default_for(class_name: &str) -> Result<Config, ConfigError> {
        Config::parse(&serde_json::json!({"class_name": class_name, "config": {}}))
    }

    /// Parse `keras.optimizers.serialize(opt)` / a `.keras` compile_config optimizer:
    /// `{"class_name", "config"}` (`module` and `registered_name` tolerated). Missing or
    /// `null` fields take Keras's default; unknown fields are errors.
    pub fn parse(v: &Value) -> Result<Config, ConfigError> {
        let (class, cfg) = split("keras", "config", v)?;
        let mut f = Fields::new("keras", class, cfg);
        let kind = match class {
            "SGD" => Kind::Sgd {
                momentum: f.f64_or("momentum", 0.0)?,
                nesterov: f.bool_or("nesterov", false)?,
            },
            "Adam" | "AdamW" => {
                let (beta_1, beta_2) = (f.f64_or("beta_1", 0.9)?, f.f64_or("beta_2", 0.999)?);
                let epsilon = f.f64_or("epsilon", 1e-7)?;
                let amsgrad = f.bool_or("amsgrad", false)?;
                if class == "Adam" {
                    Kind::Adam {
                        beta_1,
                        beta_2,
                        epsilon,
                        amsgrad,
                    }
                } else {
                    Kind::AdamW {
                        beta_1,
                        beta_2,
                        epsilon,
                        amsgrad,
                    }
                }
            }
            "RMSprop" => Kind::RmsProp {
                rho: f.f64_or("rho", 0.9)?,
                momentum: f.f64_or("momentum", 0.0)?,
                epsilon: f.f64_or("epsilon", 1e-7)?,
                centered: f.bool_or("centered", false)?,
            },
            "Adagrad" => Kind::Adagrad {
                initial_accumulator_value: f.f64_or("initial_accumulator_value", 0.1)?,
                epsilon: f.f64_or("epsilon", 1e-7)?,
            },
            "Adadelta" => Kind::Adadelta {
                rho: f.f64_or("rho", 0.95)?,
                epsilon: f.f64_or("epsilon", 1e-7)?,
            },
            "Adamax" => Kind::Adamax {
                beta_1: f.f64_or("beta_1", 0.9)?,
                beta_2: f.f64_or("beta_2", 0.999)?,
                epsilon: f.f64_or("epsilon", 1e-7)?,
            },
            "Nadam" => Kind::Nadam {
                beta_1: f.f64_or("beta_1", 0.9)?,
                beta_2: f.f64_or("beta_2", 0.999)?,
                epsilon: f.f64_or("epsilon", 1e-7)?,
            },
            "Lion" => Kind::Lion {
                beta_1: f.f64_or("beta_1", 0.9)?,
                beta_2: f.f64_or("beta_2", 0.99)?,
            },
            other => {
                return Err(ConfigError::UnknownClass {
                    framework: "keras",
                    class: other.into(),
                    supported: SUPPORTED,
                });
            }
        };
        let default_lr = if class == "SGD" { 0.01 } else { 1e-3 };
        let learning_rate = match f.raw("learning_rate") {
            None => LearningRate::Constant(default_lr),
            Some(v) if v.is_number() => LearningRate::Constant(v.as_f64().unwrap_or(default_lr)),
            Some(v) if v.is_object() => LearningRate::Schedule(Schedule::parse(v)?),
            Some(v) => return Err(f.bad("learning_rate", "a number or a serialized schedule", v)),
        };
        let weight_decay = match f.opt_f64("weight_decay")? {
            Some(x) => Some(x),
            None if class == "AdamW" => Some(0.004),
            None => None,
        };
        let clipnorm = f.opt_f64("clipnorm")?;
        let global_clipnorm = f.opt_f64("global_clipnorm")?;
        let clipvalue = f.opt_f64("clipvalue")?;
        let set = [clipnorm, global_clipnorm, clipvalue]
            .iter()
            .filter(|c| c.is_some())
            .count();
        if set > 1 {
            return Err(f.unsupported(
                "clipnorm",
                &serde_json::json!([clipnorm, global_clipnorm, clipvalue]),
                "Keras allows only one of clipnorm, global_clipnorm and clipvalue",
            ));
        }
        let use_ema = f.bool_or("use_ema", false)?;
        let ema_momentum = f.f64_or("ema_momentum", 0.99)?;
        let ema_overwrite_frequency = f.opt_u64("ema_overwrite_frequency")?;
        let loss_scale_factor = f.opt_f64("loss_scale_factor")?;
        if let Some(v) = f.raw("gradient_accumulation_steps") {
            return Err(f.unsupported(
                "gradient_accumulation_steps",
                v,
                "gradient accumulation is not emulated",
            ));
        }
        if let Some(v) = f.raw("decay") {
            // Keras 3 warns and ignores `decay` (catalogue 13); accept only the no-op values.
            if v.as_f64().is_some_and(|d| d.abs() > 0.0) {
                return Err(f.unsupported("decay", v, "Keras 3 ignores it; catalogue 13"));
            }
        }
        f.ignore(&["name", "is_legacy_optimizer"]);
        f.finish()?;
        Ok(Config {
            kind,
            learning_rate,
            weight_decay,
            clipnorm: clipnorm.filter(|c| *c > 0.0),
            global_clipnorm: global_clipnorm.filter(|c| *c > 0.0),
            clipvalue: clipvalue.filter(|c| *c > 0.0),
            use_ema,
            ema_momentum,
            ema_overwrite_frequency: ema_overwrite_frequency.filter(|f| *f > 0),
            loss_scale_factor,
        })
    }

    /// Parse a [`model_ir::OptimizerSpec`] carrying a Keras `config`.
    pub fn from_spec(spec: &model_ir::OptimizerSpec) -> Result<Config, ConfigError> {
        Config::parse(&serde_json::json!({"class_name": spec.class_name, "config": spec.config}))
    }
}

/// Per-variable optimizer slots.
#[derive(Debug, Clone)]
struct Slots<T> {
    a: Vec<T>,
    b: Vec<T>,
    c: Vec<T>,
    ema: Vec<T>,
}

/// A running Keras optimizer over a fixed list of variables (flattened, in order).
#[derive(Debug, Clone)]
pub struct Optimizer<T: Real> {
    pub config: Config,
    /// `optimizer.iterations`: the number of completed `apply` calls.
    pub iterations: u64,
    slots: Vec<Slots<T>>,
    /// Nadam's `_u_product` (float32 variable in Keras).
    u_product: T,
}

impl<T: Real> Optimizer<T> {
    /// Build the optimizer for variables of the given element counts (`optimizer.build`).
    pub fn new(config: Config, sizes: &[usize]) -> Optimizer<T> {
        let init = match config.kind {
            Kind::Adagrad {
                initial_accumulator_value,
                ..
            } => T::of(initial_accumulator_value),
            _ => T::default(),
        };
        let slots = sizes
            .iter()
            .map(|&n| Slots {
                a: vec![init; n],
                b: vec![T::default(); n],
                c: vec![T::default(); n],
                ema: vec![T::default(); n],
            })
            .collect();
        Optimizer {
            config,
            iterations: 0,
            slots,
            u_product: T::of(1.0),
        }
    }

    /// The learning rate the next `apply` uses (`_get_current_learning_rate`).
    pub fn current_learning_rate(&self) -> T {
        self.config.learning_rate.at(self.iterations)
    }

    /// One `optimizer.apply(grads, variables)`. `grads` is consumed as scratch space.
    pub fn apply(&mut self, grads: &mut [Vec<T>], vars: &mut [Vec<T>]) {
        assert_eq!(grads.len(), self.slots.len(), "keras apply: gradient count");
        assert_eq!(vars.len(), self.slots.len(), "keras apply: variable count");
        let c = T::of;
        let cfg = &self.config;
        if let Some(s) = cfg.loss_scale_factor {
            for g in grads.iter_mut().flatten() {
                *g = *g / c(s);
            }
        }
        clip(cfg, grads);
        let lr = self.current_learning_rate();
        if let Some(wd) = cfg.weight_decay {
            for th in vars.iter_mut().flatten() {
                *th = *th - *th * c(wd) * lr;
            }
        }
        let t = self.iterations + 1;
        if let Kind::Nadam { beta_1, .. } = cfg.kind {
            self.u_product =
                self.u_product * c(beta_1) * (c(1.0) - c(0.5) * c(0.96).powf(c(t as f64)));
        }
        for ((g, th), s) in grads.iter().zip(vars.iter_mut()).zip(self.slots.iter_mut()) {
            assert_eq!(
                g.len(),
                th.len(),
                "keras apply: gradient and variable sizes"
            );
            update_step(&cfg.kind, t, lr, self.u_product, g, th, s);
        }
        if cfg.use_ema {
            let mom = if self.iterations == 0 {
                c(0.0)
            } else {
                c(cfg.ema_momentum)
            };
            for (th, s) in vars.iter_mut().zip(self.slots.iter_mut()) {
                for (a, x) in s.ema.iter_mut().zip(th.iter()) {
                    *a = mom * *a + (c(1.0) - mom) * *x;
                }
            }
            if let Some(freq) = cfg.ema_overwrite_frequency
                && t.is_multiple_of(freq)
            {
                for (th, s) in vars.iter_mut().zip(self.slots.iter()) {
                    th.copy_from_slice(&s.ema);
                }
            }
        }
        self.iterations += 1;
    }

    /// The EMA averages (`_model_variables_moving_average`), when `use_ema`.
    pub fn ema_values(&self) -> Option<Vec<Vec<T>>> {
        self.config
            .use_ema
            .then(|| self.slots.iter().map(|s| s.ema.clone()).collect())
    }
}

/// `BaseOptimizer._clip_gradients` (and `_clip_by_norm`, `clip_by_global_norm`).
fn clip<T: Real>(cfg: &Config, grads: &mut [Vec<T>]) {
    let c = T::of;
    if let Some(cn) = cfg.clipnorm {
        for g in grads.iter_mut() {
            let l2sum = g.iter().fold(T::default(), |acc, &x| acc + x * x);
            let norm = if l2sum > T::default() {
                l2sum.sqrt()
            } else {
                l2sum
            };
            let den = norm.maximum(c(cn));
            for x in g.iter_mut() {
                *x = *x * c(cn) / den;
            }
        }
    } else if let Some(gn) = cfg.global_clipnorm {
        let sq = grads
            .iter()
            .map(|g| g.iter().fold(T::default(), |acc, &x| acc + x * x))
            .fold(T::default(), |a, b| a + b);
        let n = sq.sqrt();
        let scale = c(gn) * (c(1.0) / n).minimum(c(1.0 / gn));
        // Keras adds (N − N): 0 for a finite norm, NaN for inf/NaN.
        #[allow(clippy::eq_op)]
        let scale = scale + (n - n);
        for x in grads.iter_mut().flatten() {
            *x = *x * scale;
        }
    } else if let Some(cv) = cfg.clipvalue {
        for x in grads.iter_mut().flatten() {
            *x = x.maximum(c(-cv)).minimum(c(cv));
        }
    }
}

/// One variable's `update_step(gradient, variable, learning_rate)`; t = iterations + 1.
fn update_step<T: Real>(
    kind: &Kind,
    t: u64,
    lr: T,
    u_product: T,
    g: &[T],
    th: &mut [T],
    s: &mut Slots<T>,
) {
    let c = T::of;
    let one = c(1.0);
    let tt = c(t as f64);
    match *kind {
        Kind::Sgd { momentum, nesterov } => {
            if momentum.abs() > 0.0 {
                let mu = c(momentum);
                for ((x, &g), m) in th.iter_mut().zip(g).zip(s.a.iter_mut()) {
                    *m = *m * mu - g * lr;
                    if nesterov {
                        *x = *x + (*m * mu - g * lr);
                    } else {
                        *x = *x + *m;
                    }
                }
            } else {
                for (x, &g) in th.iter_mut().zip(g) {
                    *x = *x - g * lr;
                }
            }
        }
        Kind::Adam {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        }
        | Kind::AdamW {
            beta_1,
            beta_2,
            epsilon,
            amsgrad,
        } => {
            let b1p = c(beta_1).powf(tt);
            let b2p = c(beta_2).powf(tt);
            let alpha = lr * (one - b2p).sqrt() / (one - b1p);
            for i in 0..th.len() {
                let gi = g[i];
                s.a[i] = s.a[i] + (gi - s.a[i]) * c(1.0 - beta_1);
                s.b[i] = s.b[i] + (gi * gi - s.b[i]) * c(1.0 - beta_2);
                let v = if amsgrad {
                    s.c[i] = s.c[i].maximum(s.b[i]);
                    s.c[i]
                } else {
                    s.b[i]
                };
                th[i] = th[i] - (s.a[i] * alpha) / (v.sqrt() + c(epsilon));
            }
        }
        Kind::RmsProp {
            rho,
            momentum,
            epsilon,
            centered,
        } => {
            for i in 0..th.len() {
                let gi = g[i];
                s.a[i] = c(rho) * s.a[i] + c(1.0 - rho) * (gi * gi);
                let den = if centered {
                    s.b[i] = c(rho) * s.b[i] + c(1.0 - rho) * gi;
                    s.a[i] - s.b[i] * s.b[i] + c(epsilon)
                } else {
                    s.a[i] + c(epsilon)
                };
                let inc = (lr * gi) / den.sqrt();
                if momentum > 0.0 {
                    s.c[i] = c(momentum) * s.c[i] + inc;
                    th[i] = th[i] - s.c[i];
                } else {
                    th[i] = th[i] - inc;
                }
            }
        }
        Kind::Adagrad { epsilon, .. } => {
            for i in 0..th.len() {
                let gi = g[i];
                s.a[i] = s.a[i] + gi * gi;
                th[i] = th[i] - (lr * gi) / (s.a[i] + c(epsilon)).sqrt();
            }
        }
        Kind::Adadelta { rho, epsilon } => {
            let rms = |x: T| (x + c(epsilon)).sqrt();
            for i in 0..th.len() {
                let gi = g[i];
                s.a[i] = c(rho) * s.a[i] + c(1.0 - rho) * (gi * gi);
                let delta = -((rms(s.b[i]) * gi) / rms(s.a[i]));
                s.b[i] = c(rho) * s.b[i] + c(1.0 - rho) * (delta * delta);
                th[i] = th[i] + lr * delta;
            }
        }
        Kind::Adamax {
            beta_1,
            beta_2,
            epsilon,
        } => {
            let b1p = c(beta_1).powf(tt);
            for i in 0..th.len() {
                let gi = g[i];
                s.a[i] = s.a[i] + (gi - s.a[i]) * c(1.0 - beta_1);
                s.b[i] = (c(beta_2) * s.b[i]).maximum(gi.abs());
                th[i] = th[i] - (lr * s.a[i]) / ((one - b1p) * (s.b[i] + c(epsilon)));
            }
        }
        Kind::Nadam {
            beta_1,
            beta_2,
            epsilon,
        } => {
            let (b1, b2, decay) = (c(beta_1), c(beta_2), c(0.96));
            let half = c(0.5);
            let u_t = b1 * (one - half * decay.powf(tt));
            let u_t1 = b1 * (one - half * decay.powf(c((t + 1) as f64)));
            let up_t = u_product;
            let up_t1 = up_t * u_t1;
            let b2p = b2.powf(tt);
            for i in 0..th.len() {
                let gi = g[i];
                s.a[i] = s.a[i] + (gi - s.a[i]) * (one - b1);
                s.b[i] = s.b[i] + (gi * gi - s.b[i]) * (one - b2);
                let m_hat = (u_t1 * s.a[i]) / (one - up_t1) + ((one - u_t) * gi) / (one - up_t);
                let v_hat = s.b[i] / (one - b2p);
                th[i] = th[i] - (m_hat * lr) / (v_hat.sqrt() + c(epsilon));
            }
        }
        Kind::Lion { beta_1, beta_2 } => {
            let (b1, b2) = (c(beta_1), c(beta_2));
            for i in 0..th.len() {
                let gi = g[i];
                th[i] = th[i] - lr * (s.a[i] * b1 + gi * (one - b1)).sign();
                s.a[i] = s.a[i] * b2 + gi * (one - b2);
            }
        }
    }
}
