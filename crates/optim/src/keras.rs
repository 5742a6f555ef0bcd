//! Keras 3 optimizers, transcribed from `keras/src/optimizers/*.py` (Keras 3.15), with the
//! base-optimizer pipeline of `keras/src/optimizers/base_optimizer.py` (`apply`,
//! `_backend_apply_gradients`).
//!
//! One [`Optimizer::apply`] is one `optimizer.apply(grads, variables)`, in Keras's order:
//! 1. unscale by `loss_scale_factor` (g ← g / s);
//! 2. with `gradient_accumulation_steps` = k: unless (n + 1) % k = 0, where n is the raw call
//!    count `_iterations`, only accumulate A ← g + A and go to 6; otherwise g ← (g + A)/k,
//!    A ← 0, and continue;
//! 3. clip (`_clip_gradients`): `clipnorm` c **per variable** g ← g·c / max(‖g‖₂, c);
//!    else `global_clipnorm` c: N = √Σ‖gᵢ‖², gᵢ ← gᵢ·c·min(1/N, 1/c); else `clipvalue`
//!    g ← clip(g, −c, c) (catalogue 11);
//! 4. decoupled weight decay with the current (scheduled) η: θ ← θ − (θ·λ)·η (catalogue 2),
//!    skipped for the variables `exclude_from_weight_decay` names ([`Exclusion`]);
//! 5. `update_step` with `iterations` = t − 1 (the formulas are on [`Kind`]'s variants);
//! 6. EMA (`_update_model_variables_moving_average`), on **every** call: a ← μₑ·a + (1 − μₑ)·θ
//!    with μₑ = 0 while `iterations` = 0, and θ ← a when (`iterations` + 1) %
//!    `ema_overwrite_frequency` = 0 (catalogue 12);
//! 7. `_iterations += 1`.
//!
//! `iterations` is `_iterations // k` with accumulation (the property in `base_optimizer.py`):
//! bias corrections, Nadam's μ schedule, Adafactor's step and EMA see the update count, while
//! learning-rate schedules and weight decay's η see the raw call count (catalogue 14).
//!
//! [`Optimizer::apply_with_slices`] takes some gradients as TensorFlow `IndexedSlices` (an
//! `Embedding` table's, one slice per lookup) and applies what TensorFlow does with them op by
//! op (`keras/sparse.rs`: e.g. Adam's second moment gets Σgₖ² per row, not (Σgₖ)²).
//!
//! Scalars follow the TensorFlow backend's dtypes: the learning rate is a float32 variable,
//! Python-float hyper-parameters are cast to the variable dtype where they meet a tensor
//! (so `1 - self.beta_1` is computed in f64 first), and bias-correction powers are float32
//! tensors (`ops.power(cast(β), cast(t))`).

mod kind;
mod pattern;
pub mod schedules;
mod sparse;

use serde_json::Value;

use crate::config::{ConfigError, Fields, split};
use crate::real::Real;
use crate::variable::Variable;
use pattern::Pattern;
pub use schedules::Schedule;
use sparse::Sparse;

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
    /// `keras/src/optimizers/adafactor.py`, with t = `iterations` + 1:
    /// ρ_t = min(η, 1/√t); α_t = max(ε₂, RMS(θ))·ρ_t (θ after the base optimizer's weight
    /// decay); G = g² + ε₁; β̂_t = 1 − t^τ (τ = `beta_2_decay`). Rank ≥ 2 (the last two axes
    /// factored, leading axes batched): r ← β̂r + (1−β̂)·mean_cols(G),
    /// c ← β̂c + (1−β̂)·mean_rows(G), v = (r/mean(r))·c; otherwise v ← β̂v + (1−β̂)G.
    /// u = g/√v; û = u / max(1, RMS(u)/d); θ ← θ − α_t·û.
    /// Defaults η=1e-3, τ=−0.8, ε₁=1e-30, ε₂=1e-3, d=1.0 (catalogue 62). `relative_step`
    /// changes nothing in Keras 3: ρ_t takes the minimum with 1/√t either way.
    Adafactor {
        beta_2_decay: f64,
        epsilon_1: f64,
        epsilon_2: f64,
        clip_threshold: f64,
        relative_step: bool,
    },
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
            Kind::Adafactor { .. } => "Adafactor",
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
    /// `gradient_accumulation_steps` k ≥ 2 (`None` = off).
    pub gradient_accumulation_steps: Option<u64>,
    /// What `optimizer.exclude_from_weight_decay(...)` was called with. Keras does not
    /// serialize it, so [`Config::parse`] leaves it `None`.
    pub exclude_from_weight_decay: Option<Exclusion>,
    /// The Keras backend. Only `exclude_from_weight_decay` depends on it (see
    /// [`weight_decay_name`]); not serialized, so [`Config::parse`] takes Keras's
    /// default, TensorFlow.
    pub backend: Backend,
}

/// A Keras 3 backend (the IR's).
pub use model_ir::KerasBackend as Backend;

/// The string `exclude_from_weight_decay` patterns are searched in, for the variable at
/// `path` (`variable.path`, e.g. `dense/bias`) on `backend`. `_use_weight_decay` reads
/// `variable.name`, but the TensorFlow backend's `_apply_weight_decay` passes the
/// underlying `tf.Variable`, whose name is the path plus `:0` (`dense/bias:0`); the other
/// backends pass the Keras variable, whose name is the last path component (`bias`). So
/// `"^bias$"` excludes nothing on TensorFlow (`keras/src/backend/tensorflow/optimizer.py`).
/// (numpy cannot train; it is given the Keras variable name.)
pub fn weight_decay_name(backend: Backend, path: &str) -> String {
    match backend {
        Backend::TensorFlow => format!("{path}:0"),
        Backend::Jax | Backend::Torch | Backend::Numpy => {
            path.rsplit('/').next().unwrap_or(path).to_string()
        }
    }
}

/// Class names [`Config::parse`] accepts.
pub const SUPPORTED: &str =
    "SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion, Adafactor";

/// The arguments of `optimizer.exclude_from_weight_decay(var_list, var_names)`: a variable
/// gets no weight decay if it is in `var_list` (here by path) or if `re.search` finds any
/// of the `var_names` patterns in its name as the backend spells it
/// ([`weight_decay_name`]; `keras/src/optimizers/base_optimizer.py`,
/// `_use_weight_decay`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exclusion {
    /// Python regular expressions, searched anywhere in `variable.name`.
    pub var_names: Vec<String>,
    /// Variable paths (Keras takes the variables themselves).
    pub var_list: Vec<String>,
}

impl Exclusion {
    /// Parse `{"var_names": [...], "var_list": [...]}` (both optional), checking that every
    /// pattern compiles.
    pub fn parse(v: &Value) -> Result<Exclusion, ConfigError> {
        const FIELD: &str = "exclude_from_weight_decay";
        let obj = v.as_object().ok_or(ConfigError::Shape {
            framework: "keras",
            body: "exclude_from_weight_decay",
        })?;
        let mut f = Fields::new("keras", FIELD, obj);
        let strings = |f: &mut Fields<'_>, key: &'static str| -> Result<Vec<String>, ConfigError> {
            match f.raw(key) {
                None => Ok(Vec::new()),
                Some(v) => v
                    .as_array()
                    .and_then(|a| {
                        a.iter()
                            .map(|x| x.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                    })
                    .ok_or_else(|| f.bad(key, "a list of strings", v)),
            }
        };
        let e = Exclusion {
            var_names: strings(&mut f, "var_names")?,
            var_list: strings(&mut f, "var_list")?,
        };
        f.finish()?;
        for p in &e.var_names {
            Pattern::new(p).map_err(|reason| ConfigError::BadValue {
                framework: "keras",
                class: FIELD.into(),
                field: "var_names".into(),
                expected: "Python regular expressions this emulator supports",
                got: format!("{p:?} ({reason})"),
            })?;
        }
        Ok(e)
    }

    /// Whether the variable at `path` is excluded from weight decay on `backend`.
    ///
    /// Panics if a pattern does not compile ([`Exclusion::parse`] checks that).
    pub fn excludes(&self, path: &str, backend: Backend) -> bool {
        let name = weight_decay_name(backend, path);
        self.var_list.iter().any(|n| n == path)
            || self.var_names.iter().any(|p| {
                Pattern::new(p)
                    .unwrap_or_else(|e| panic!("exclude_from_weight_decay pattern {p:?}: {e}"))
                    .search(&name)
            })
    }
}

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
            "Adafactor" => Kind::Adafactor {
                beta_2_decay: f.f64_or("beta_2_decay", -0.8)?,
                epsilon_1: f.f64_or("epsilon_1", 1e-30)?,
                epsilon_2: f.f64_or("epsilon_2", 1e-3)?,
                clip_threshold: f.f64_or("clip_threshold", 1.0)?,
                relative_step: f.bool_or("relative_step", true)?,
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
        // `if gradient_accumulation_steps:` is falsy for 0; Keras refuses 1.
        let gradient_accumulation_steps = match f.opt_u64("gradient_accumulation_steps")? {
            None | Some(0) => None,
            Some(1) => {
                return Err(f.bad(
                    "gradient_accumulation_steps",
                    "an integer >= 2",
                    &serde_json::json!(1),
                ));
            }
            Some(k) => Some(k),
        };
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
            gradient_accumulation_steps,
            exclude_from_weight_decay: None,
            backend: Backend::default(),
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
    /// `_accumulated_gradients` (empty without accumulation).
    acc: Vec<T>,
    /// Adafactor's (batch, rows, cols) for a rank ≥ 2 variable.
    factored: Option<(usize, usize, usize)>,
    /// `_use_weight_decay(variable)`.
    decay: bool,
    /// Length of the first axis (what `IndexedSlices` index).
    rows: usize,
}

/// A variable's gradient as TensorFlow's `tf.IndexedSlices`, what `tape.gradient` returns for
/// an `Embedding` table (any `gather` of a variable): slice `k`, row `k` of `values`, belongs
/// to row `indices[k]` of the variable's first axis. One slice per lookup: a row looked up
/// twice has two slices. See [`Optimizer::apply_with_slices`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexedSlices<'a, T> {
    pub indices: &'a [usize],
    /// `indices.len()` rows of the variable's row size (its size / first axis), row-major.
    pub values: &'a [T],
}

/// A running Keras optimizer over a fixed list of variables (flattened, in order).
#[derive(Debug, Clone)]
pub struct Optimizer<T: Real> {
    pub config: Config,
    /// `optimizer._iterations`: the number of completed `apply` calls (with gradient
    /// accumulation, micro-steps included; see [`Optimizer::update_iterations`]).
    pub iterations: u64,
    slots: Vec<Slots<T>>,
    /// Nadam's `_u_product` (float32 variable in Keras).
    u_product: T,
}

impl<T: Real> Optimizer<T> {
    /// Build the optimizer for unnamed rank-1 variables of the given element counts. Adafactor
    /// factors rank ≥ 2 variables and `exclude_from_weight_decay` matches names: use
    /// [`Optimizer::build`] for those.
    pub fn new(config: Config, sizes: &[usize]) -> Optimizer<T> {
        let vars: Vec<Variable> = sizes.iter().map(|&n| Variable::flat(n)).collect();
        Optimizer::build(config, &vars)
    }

    /// `optimizer.build(variables)`.
    pub fn build(config: Config, vars: &[Variable]) -> Optimizer<T> {
        let init = match config.kind {
            Kind::Adagrad {
                initial_accumulator_value,
                ..
            } => T::of(initial_accumulator_value),
            _ => T::default(),
        };
        let adafactor = matches!(config.kind, Kind::Adafactor { .. });
        let accumulate = config.gradient_accumulation_steps.is_some();
        let slots = vars
            .iter()
            .map(|v| {
                let n = v.numel();
                let factored = if adafactor { v.factored() } else { None };
                let (nb, nc) = match factored {
                    Some((batch, rows, cols)) => (batch * rows, batch * cols),
                    None => (n, n),
                };
                Slots {
                    a: vec![init; n],
                    b: vec![T::default(); nb],
                    c: vec![T::default(); nc],
                    ema: vec![T::default(); n],
                    acc: vec![T::default(); if accumulate { n } else { 0 }],
                    factored,
                    decay: !config
                        .exclude_from_weight_decay
                        .as_ref()
                        .is_some_and(|e| e.excludes(&v.name, config.backend)),
                    rows: v.shape.first().copied().unwrap_or(1),
                }
            })
            .collect();
        Optimizer {
            config,
            iterations: 0,
            slots,
            u_product: T::of(1.0),
        }
    }

    /// The `iterations` property: `_iterations // gradient_accumulation_steps`, the number of
    /// completed updates.
    pub fn update_iterations(&self) -> u64 {
        match self.config.gradient_accumulation_steps {
            Some(k) => self.iterations / k,
            None => self.iterations,
        }
    }

    /// The learning rate the next `apply` uses (`_get_current_learning_rate`, evaluated at
    /// the raw `_iterations`).
    pub fn current_learning_rate(&self) -> T {
        self.config.learning_rate.at(self.iterations)
    }

    /// One `optimizer.apply(grads, variables)`. `grads` is consumed as scratch space.
    pub fn apply(&mut self, grads: &mut [Vec<T>], vars: &mut [Vec<T>]) {
        let none = vec![None; grads.len()];
        self.apply_sparse(grads, none, vars);
    }

    /// One `optimizer.apply(grads, variables)` on the TensorFlow backend where some gradients
    /// are `tf.IndexedSlices` (`slices[i]`, `None` for a dense gradient); `grads[i]` is still
    /// every variable's dense gradient, for a sliced one the slices summed per row in order
    /// (`tf.convert_to_tensor` of the slices). `grads` is consumed as scratch space.
    ///
    /// Keras runs the dense `update_step` code on the slices, and TensorFlow decides per op
    /// whether it acts per slice or densifies first, so a row looked up k times feeds Adam's
    /// second moment Σgₖ² rather than (Σgₖ)²; the formulas per optimizer are in
    /// `keras/sparse.rs`. Clipping: `clipnorm` takes the slices' norm and `clipvalue` clips
    /// each slice; `global_clipnorm` returns dense gradients (the update is then the dense
    /// one); with `gradient_accumulation_steps` the slices are densified on arrival, so the
    /// whole run is dense. Pass slices only when the whole gradient is the slices (in
    /// TensorFlow, a dense term such as a regularizer's makes the table's gradient dense).
    ///
    /// Panics if a slice's index or size does not fit its variable, or if
    /// `loss_scale_factor` is set and a gradient is sliced (Keras raises a `TypeError`:
    /// `IndexedSlices / float`).
    pub fn apply_with_slices(
        &mut self,
        grads: &mut [Vec<T>],
        slices: &[Option<IndexedSlices<'_, T>>],
        vars: &mut [Vec<T>],
    ) {
        assert_eq!(
            slices.len(),
            self.slots.len(),
            "keras apply: one slices entry per variable"
        );
        let sparse = slices
            .iter()
            .zip(&self.slots)
            .enumerate()
            .map(|(i, (sl, s))| {
                sl.map(|sl| {
                    let n = s.a.len();
                    let row = n.checked_div(s.rows).unwrap_or(0);
                    assert_eq!(
                        sl.values.len(),
                        sl.indices.len() * row,
                        "keras apply: variable {i}: {} slices of {row} elements need {} values",
                        sl.indices.len(),
                        sl.indices.len() * row
                    );
                    if let Some(&r) = sl.indices.iter().find(|&&r| r >= s.rows) {
                        panic!(
                            "keras apply: variable {i}: slice index {r} out of range for {} rows",
                            s.rows
                        );
                    }
                    Sparse {
                        indices: sl.indices.to_vec(),
                        values: sl.values.to_vec(),
                        row,
                    }
                })
            })
            .collect();
        self.apply_sparse(grads, sparse, vars);
    }

    fn apply_sparse(
        &mut self,
        grads: &mut [Vec<T>],
        mut sparse: Vec<Option<Sparse<T>>>,
        vars: &mut [Vec<T>],
    ) {
        assert_eq!(grads.len(), self.slots.len(), "keras apply: gradient count");
        assert_eq!(vars.len(), self.slots.len(), "keras apply: variable count");
        for (g, s) in grads.iter().zip(&self.slots) {
            assert_eq!(
                g.len(),
                s.a.len(),
                "keras apply: gradient and variable sizes"
            );
        }
        let c = T::of;
        if let Some(s) = self.config.loss_scale_factor {
            assert!(
                sparse.iter().all(Option::is_none),
                "keras apply: loss_scale_factor with IndexedSlices gradients (Keras raises \
                 TypeError: unsupported operand type(s) for /: 'IndexedSlices' and 'float')"
            );
            for g in grads.iter_mut().flatten() {
                *g = *g / c(s);
            }
        }
        let update = match self.config.gradient_accumulation_steps {
            None => true,
            Some(k) => {
                // `g + acc_g` densifies the slices (`Variable.__radd__`).
                sparse.iter_mut().for_each(|s| *s = None);
                let update = (self.iterations + 1).is_multiple_of(k);
                for (g, s) in grads.iter_mut().zip(self.slots.iter_mut()) {
                    for (x, a) in g.iter_mut().zip(s.acc.iter_mut()) {
                        if update {
                            // `(g + acc_g) / steps`, then the accumulator is reset.
                            *x = (*x + *a) / c(k as f64);
                            *a = T::default();
                        } else {
                            *a = *x + *a;
                        }
                    }
                }
                update
            }
        };
        if update {
            self.update(grads, &mut sparse, vars);
        }
        let cfg = &self.config;
        if cfg.use_ema {
            let it = self.update_iterations();
            let mom = if it == 0 { c(0.0) } else { c(cfg.ema_momentum) };
            for (th, s) in vars.iter_mut().zip(self.slots.iter_mut()) {
                for (a, x) in s.ema.iter_mut().zip(th.iter()) {
                    *a = mom * *a + (c(1.0) - mom) * *x;
                }
            }
            if let Some(freq) = cfg.ema_overwrite_frequency
                && (it + 1).is_multiple_of(freq)
            {
                for (th, s) in vars.iter_mut().zip(self.slots.iter()) {
                    th.copy_from_slice(&s.ema);
                }
            }
        }
        self.iterations += 1;
    }

    /// Clipping, weight decay and `_backend_update_step` (the update half of
    /// `_backend_apply_gradients`).
    fn update(
        &mut self,
        grads: &mut [Vec<T>],
        sparse: &mut [Option<Sparse<T>>],
        vars: &mut [Vec<T>],
    ) {
        let c = T::of;
        let cfg = &self.config;
        clip(cfg, grads, sparse);
        let lr = self.current_learning_rate();
        if let Some(wd) = cfg.weight_decay {
            for (th, s) in vars.iter_mut().zip(&self.slots) {
                if s.decay {
                    for x in th.iter_mut() {
                        *x = *x - *x * c(wd) * lr;
                    }
                }
            }
        }
        let t = self.update_iterations() + 1;
        if let Kind::Nadam { beta_1, .. } = cfg.kind {
            self.u_product =
                self.u_product * c(beta_1) * (c(1.0) - c(0.5) * c(0.96).powf(c(t as f64)));
        }
        for (((g, sp), th), s) in grads
            .iter()
            .zip(sparse.iter())
            .zip(vars.iter_mut())
            .zip(self.slots.iter_mut())
        {
            match sp {
                None => update_step(&cfg.kind, t, lr, self.u_product, g, th, s),
                Some(sp) => sparse::update_step(&cfg.kind, (t, lr, self.u_product), g, sp, th, s),
            }
        }
    }

    /// The EMA averages (`_model_variables_moving_average`), when `use_ema`.
    pub fn ema_values(&self) -> Option<Vec<Vec<T>>> {
        self.config
            .use_ema
            .then(|| self.slots.iter().map(|s| s.ema.clone()).collect())
    }
}

/// `BaseOptimizer._clip_gradients` (and `_clip_by_norm`, `clip_by_global_norm`). Sliced
/// gradients: `tf.clip_by_norm` / `tf.clip_by_value` act on the slices (the dense sum is
/// re-formed from them); the global norm counts Σgₖ² and `g * scale` returns dense gradients.
fn clip<T: Real>(cfg: &Config, grads: &mut [Vec<T>], sparse: &mut [Option<Sparse<T>>]) {
    let c = T::of;
    if let Some(cn) = cfg.clipnorm {
        for (g, sp) in grads.iter_mut().zip(sparse.iter_mut()) {
            let l2sum = match sp {
                Some(sp) => sp.sum_of_squares(),
                None => g.iter().fold(T::default(), |acc, &x| acc + x * x),
            };
            let norm = if l2sum > T::default() {
                l2sum.sqrt()
            } else {
                l2sum
            };
            let den = norm.maximum(c(cn));
            match sp {
                Some(sp) => {
                    for x in sp.values.iter_mut() {
                        *x = *x * c(cn) / den;
                    }
                    *g = sp.densify(g.len(), |x| x);
                }
                None => {
                    for x in g.iter_mut() {
                        *x = *x * c(cn) / den;
                    }
                }
            }
        }
    } else if let Some(gn) = cfg.global_clipnorm {
        let sq = grads
            .iter()
            .zip(sparse.iter())
            .map(|(g, sp)| match sp {
                Some(sp) => sp.sum_of_squares(),
                None => g.iter().fold(T::default(), |acc, &x| acc + x * x),
            })
            .fold(T::default(), |a, b| a + b);
        let n = sq.sqrt();
        let scale = c(gn) * (c(1.0) / n).minimum(c(1.0 / gn));
        // Keras adds (N − N): 0 for a finite norm, NaN for inf/NaN.
        #[allow(clippy::eq_op)]
        let scale = scale + (n - n);
        for x in grads.iter_mut().flatten() {
            *x = *x * scale;
        }
        sparse.iter_mut().for_each(|s| *s = None);
    } else if let Some(cv) = cfg.clipvalue {
        for (g, sp) in grads.iter_mut().zip(sparse.iter_mut()) {
            match sp {
                Some(sp) => {
                    for x in sp.values.iter_mut() {
                        *x = x.maximum(c(-cv)).minimum(c(cv));
                    }
                    *g = sp.densify(g.len(), |x| x);
                }
                None => {
                    for x in g.iter_mut() {
                        *x = x.maximum(c(-cv)).minimum(c(cv));
                    }
                }
            }
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
        Kind::Adafactor {
            beta_2_decay,
            epsilon_1,
            epsilon_2,
            clip_threshold,
            ..
        } => adafactor(
            t,
            lr,
            (beta_2_decay, epsilon_1, epsilon_2, clip_threshold),
            g,
            th,
            s,
        ),
    }
}

/// `ops.mean` over a strided slice.
fn mean<T: Real>(x: impl Iterator<Item = T>, n: usize) -> T {
    x.fold(T::default(), |a, v| a + v) / T::of(n as f64)
}

/// `Adafactor._rms`: √(mean(x²)).
fn rms<T: Real>(x: &[T]) -> T {
    mean(x.iter().map(|&v| v * v), x.len()).sqrt()
}

/// `Adafactor.update_step` (`keras/src/optimizers/adafactor.py`); slots: `a` = v, `b` = r
/// (batch × rows), `c` = c (batch × cols).
fn adafactor<T: Real>(
    t: u64,
    lr: T,
    (beta_2_decay, epsilon_1, epsilon_2, clip_threshold): (f64, f64, f64, f64),
    g: &[T],
    th: &mut [T],
    s: &mut Slots<T>,
) {
    let c = T::of;
    let one = c(1.0);
    let tt = c(t as f64);
    let rho_t = lr.minimum(one / tt.sqrt());
    let alpha_t = c(epsilon_2).maximum(rms(th)) * rho_t;
    let regulated: Vec<T> = g.iter().map(|&x| x * x + c(epsilon_1)).collect();
    let beta_2_t = one - tt.powf(c(beta_2_decay));
    adafactor_second_moment(beta_2_t, &regulated, s);
    let u: Vec<T> = g.iter().zip(&s.a).map(|(&x, &v)| x / v.sqrt()).collect();
    let den = one.maximum(rms(&u) / c(clip_threshold));
    for (x, &ui) in th.iter_mut().zip(&u) {
        *x = *x - alpha_t * (ui / den);
    }
}

/// Adafactor's second-moment update from the regulated squared gradient G = g² + ε₁
/// (`a` = v; factored: `b` = r, `c` = c, then v = (r/mean(r))·c).
fn adafactor_second_moment<T: Real>(beta_2_t: T, regulated: &[T], s: &mut Slots<T>) {
    let one = T::of(1.0);
    match s.factored {
        Some((batch, rows, cols)) => {
            for b in 0..batch {
                let base = b * rows * cols;
                for i in 0..rows {
                    let row = &regulated[base + i * cols..base + (i + 1) * cols];
                    let r = &mut s.b[b * rows + i];
                    *r = beta_2_t * *r + (one - beta_2_t) * mean(row.iter().copied(), cols);
                }
                for j in 0..cols {
                    let col = (0..rows).map(|i| regulated[base + i * cols + j]);
                    let cv = &mut s.c[b * cols + j];
                    *cv = beta_2_t * *cv + (one - beta_2_t) * mean(col, rows);
                }
                let r = &s.b[b * rows..(b + 1) * rows];
                let r_mean = mean(r.iter().copied(), rows);
                let c_b = &s.c[b * cols..(b + 1) * cols];
                for (i, &ri) in r.iter().enumerate() {
                    let row = &mut s.a[base + i * cols..base + (i + 1) * cols];
                    for (v, &cj) in row.iter_mut().zip(c_b) {
                        *v = (ri / r_mean) * cj;
                    }
                }
            }
        }
        None => {
            for (v, &gs) in s.a.iter_mut().zip(regulated) {
                *v = beta_2_t * *v + (one - beta_2_t) * gs;
            }
        }
    }
}
