//! PyTorch 2 optimizers, transcribed from the single-tensor (`foreach=False`,
//! non-capturable, non-fused) paths of `torch/optim/*.py` (torch 2.15), plus
//! `clip_grad_norm_` / `clip_grad_value_` from `torch/nn/utils/clip_grad.py`.
//!
//! One [`Optimizer::step`] is one `opt.step()` for one parameter group; [`ParamGroups`] holds
//! several groups with per-group hyper-parameters (`torch/optim/optimizer.py`,
//! `add_param_group`), and [`lr_scheduler`] the schedulers that change them. Order
//! inside a step (catalogue, emulator note 3): `step += 1`; `maximize` negates g; coupled
//! weight decay g ← g + λθ **or** decoupled θ ← θ·(1 − ηλ); moment updates; parameter
//! update. Python-float scalars (`beta1 ** step`, `lr / bias_correction1`, ...) are computed
//! in f64 and cast to the tensor dtype where they meet a tensor; tensor ops follow ATen's
//! CPU kernels: `lerp_` (w < 0.5: a + w·(b − a)), `addcmul_` (a + (v·b)·c),
//! `addcdiv_` (a + (v·b)/c), `add_(x, alpha)` (a + α·x).

mod kind;
pub mod lr_scheduler;

use serde_json::{Map, Value};

use crate::config::{ConfigError, Fields, split};
use crate::real::Real;
use crate::variable::Variable;

pub use lr_scheduler::{Scheduler, SchedulerConfig, SchedulerKind};
pub use model_ir::GradClip;

/// The per-class part of a torch optimizer. Defaults are torch 2.15's `opt.defaults`.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `torch/optim/sgd.py` `_single_tensor_sgd`: b ← g on the first step, else
    /// b ← μb + (1−τ)g; Nesterov g ← g + μb, else g ← b; θ ← θ − η·g.
    /// Defaults η=1e-3, μ=0, τ=0 (catalogue 4, 5).
    Sgd {
        momentum: f64,
        dampening: f64,
        nesterov: bool,
    },
    /// `torch/optim/adam.py` `_single_tensor_adam`: m.lerp_(g, 1−β1);
    /// v ← β2·v + (1−β2)·g²; AMSGrad v̂ ← max(v̂, v);
    /// θ ← θ − (η/(1−β1^t))·m/(√v̂/√(1−β2^t) + ε). Defaults η=1e-3, β=(0.9, 0.999),
    /// ε=1e-8, weight decay coupled unless `decoupled_weight_decay` (catalogue 1, 2).
    Adam {
        betas: (f64, f64),
        eps: f64,
        amsgrad: bool,
        decoupled_weight_decay: bool,
    },
    /// `torch/optim/adamw.py`: Adam with `decoupled_weight_decay=True`, λ=1e-2 by default
    /// (catalogue 3).
    AdamW {
        betas: (f64, f64),
        eps: f64,
        amsgrad: bool,
    },
    /// `torch/optim/rmsprop.py`: v ← αv + (1−α)g²; centered ḡ.lerp_(g, 1−α),
    /// A = √(v − ḡ²) + ε, else A = √v + ε; momentum b ← μb + g/A, θ ← θ − η·b, else
    /// θ ← θ − η·g/A. Defaults η=1e-2, α=0.99, ε=1e-8 outside the root (catalogue 6).
    RmsProp {
        alpha: f64,
        eps: f64,
        momentum: f64,
        centered: bool,
    },
    /// `torch/optim/adagrad.py`: a₀ = `initial_accumulator_value`; a ← a + g²;
    /// θ ← θ − [η/(1 + (t−1)·lr_decay)]·g/(√a + ε). Defaults η=1e-2, a₀=0, ε=1e-10
    /// (catalogue 7).
    Adagrad {
        lr_decay: f64,
        initial_accumulator_value: f64,
        eps: f64,
    },
    /// `torch/optim/adadelta.py`: E_g ← ρE_g + (1−ρ)g²; Δ = √(E_Δ+ε)/√(E_g+ε)·g;
    /// E_Δ ← ρE_Δ + (1−ρ)Δ²; θ ← θ − η·Δ. Defaults η=1.0, ρ=0.9, ε=1e-6 (catalogue 8).
    Adadelta { rho: f64, eps: f64 },
    /// `torch/optim/adamax.py`: m.lerp_(g, 1−β1); u ← max(β2·u, |g| + ε);
    /// θ ← θ − (η/(1−β1^t))·m/u. Defaults η=2e-3, β=(0.9, 0.999), ε=1e-8 (catalogue 10).
    Adamax { betas: (f64, f64), eps: f64 },
    /// `torch/optim/nadam.py`: μ_t = β1(1 − ½·0.96^(tψ)); Π_t = Π_{t−1}μ_t (a float32
    /// scalar tensor); m, v as Adam; A = √(v/(1−β2^t)) + ε;
    /// θ ← θ − η(1−μ_t)/(1−Π_t)·g/A − η·μ_{t+1}/(1−Π_t·μ_{t+1})·m/A.
    /// Defaults η=2e-3, ε=1e-8, ψ=4e-3 (catalogue 9).
    NAdam {
        betas: (f64, f64),
        eps: f64,
        momentum_decay: f64,
        decoupled_weight_decay: bool,
    },
    /// `torch/optim/radam.py`: m, v as Adam; ρ∞ = 2/(1−β2) − 1;
    /// ρ_t = ρ∞ − 2tβ2^t/(1−β2^t); if ρ_t > 5:
    /// θ ← θ − (m/(1−β1^t))·η·√(1−β2^t)/(√v + ε)·r_t with
    /// r_t = √((ρ_t−4)(ρ_t−2)ρ∞/((ρ∞−4)(ρ∞−2)ρ_t)), else θ ← θ − η·m/(1−β1^t).
    /// Defaults η=1e-3, β=(0.9, 0.999), ε=1e-8 (catalogue 62: no Keras counterpart).
    RAdam {
        betas: (f64, f64),
        eps: f64,
        decoupled_weight_decay: bool,
    },
    /// `torch/optim/_adafactor.py` `_single_tensor_adafactor` (exported as
    /// `torch.optim.Adafactor`): β̂ = t^τ (τ = `beta2_decay`, the lerp weight);
    /// ρ_t = min(η, 1/√t); α = max(ε₂, ‖θ‖₂/√n)·ρ_t with θ **before** weight decay;
    /// θ ← θ(1 − ηλ). Rank ≥ 2 (the last two axes factored, leading axes batched):
    /// R.lerp_(‖g_row‖²/cols, β̂), C.lerp_(‖g_col‖²/rows, β̂), V = R·C/max(mean(R), ε₁);
    /// otherwise V.lerp_(g², β̂). U = g/√max(V, ε₁²); θ ← θ − α/max(1, ‖U‖₂/(√n·d))·U.
    /// ε₁ = `None` means `finfo(float32).eps` (the trajectories are float32, so also in f64
    /// mode). Defaults η=1e-2, τ=−0.8, ε=(None, 1e-3), d=1.0, λ=0 (catalogue 62: Keras puts
    /// ε₁ inside the factored moments and computes α after weight decay).
    Adafactor {
        beta2_decay: f64,
        eps: (Option<f64>, f64),
        d: f64,
    },
}

impl Kind {
    /// The torch class name.
    pub fn class_name(&self) -> &'static str {
        match self {
            Kind::Sgd { .. } => "SGD",
            Kind::Adam { .. } => "Adam",
            Kind::AdamW { .. } => "AdamW",
            Kind::RmsProp { .. } => "RMSprop",
            Kind::Adagrad { .. } => "Adagrad",
            Kind::Adadelta { .. } => "Adadelta",
            Kind::Adamax { .. } => "Adamax",
            Kind::NAdam { .. } => "NAdam",
            Kind::RAdam { .. } => "RAdam",
            Kind::Adafactor { .. } => "Adafactor",
        }
    }

    /// `"betas" in optimizer.defaults` (what `OneCycleLR` cycles with `cycle_momentum`).
    pub fn has_betas(&self) -> bool {
        matches!(
            self,
            Kind::Adam { .. }
                | Kind::AdamW { .. }
                | Kind::Adamax { .. }
                | Kind::NAdam { .. }
                | Kind::RAdam { .. }
        )
    }

    /// `"momentum" in optimizer.defaults`.
    pub fn has_momentum(&self) -> bool {
        matches!(self, Kind::Sgd { .. } | Kind::RmsProp { .. })
    }

    /// `group["betas"][0]` or `group["momentum"]`, whichever the class has.
    pub(crate) fn momentum_mut(&mut self) -> Option<&mut f64> {
        match self {
            Kind::Adam { betas, .. }
            | Kind::AdamW { betas, .. }
            | Kind::Adamax { betas, .. }
            | Kind::NAdam { betas, .. }
            | Kind::RAdam { betas, .. } => Some(&mut betas.0),
            Kind::Sgd { momentum, .. } | Kind::RmsProp { momentum, .. } => Some(momentum),
            _ => None,
        }
    }
}

/// A torch optimizer configuration (one parameter group).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub kind: Kind,
    /// `lr`; a scheduler (or `--as` replay) may change it between steps.
    pub lr: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

/// Class names [`Config::parse`] accepts.
pub const SUPPORTED: &str =
    "SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam, Adafactor";

impl Config {
    /// torch's constructor defaults for `class_name`.
    pub fn default_for(class_name: &str) -> Result<Config, ConfigError> {
        Config::parse(&serde_json::json!({"class_name": class_name, "defaults": {}}))
    }

    /// Parse `{"class_name": ..., "defaults": opt.defaults}` (tuples as lists). Missing or
    /// `null` fields take torch's default; unknown fields are errors.
    pub fn parse(v: &Value) -> Result<Config, ConfigError> {
        let (class, cfg) = split("torch", "defaults", v)?;
        let mut f = Fields::new("torch", class, cfg);
        let betas = |f: &mut Fields<'_>| -> Result<(f64, f64), ConfigError> {
            match f.raw("betas") {
                None => Ok((0.9, 0.999)),
                Some(v) => match v
                    .as_array()
                    .map(|a| a.iter().map(Value::as_f64).collect::<Vec<_>>())
                {
                    Some(b) if b.len() == 2 && b.iter().all(Option::is_some) => {
                        Ok((b[0].unwrap_or(0.9), b[1].unwrap_or(0.999)))
                    }
                    _ => Err(f.bad("betas", "a list of two numbers", v)),
                },
            }
        };
        let (kind, default_lr, default_wd) = match class {
            "SGD" => (
                Kind::Sgd {
                    momentum: f.f64_or("momentum", 0.0)?,
                    dampening: f.f64_or("dampening", 0.0)?,
                    nesterov: f.bool_or("nesterov", false)?,
                },
                1e-3,
                0.0,
            ),
            "Adam" => (
                Kind::Adam {
                    betas: betas(&mut f)?,
                    eps: f.f64_or("eps", 1e-8)?,
                    amsgrad: f.bool_or("amsgrad", false)?,
                    decoupled_weight_decay: f.bool_or("decoupled_weight_decay", false)?,
                },
                1e-3,
                0.0,
            ),
            "AdamW" => {
                if let Some(v) = f.raw("decoupled_weight_decay")
                    && !v.as_bool().unwrap_or(false)
                {
                    return Err(f.bad("decoupled_weight_decay", "true for AdamW", v));
                }
                (
                    Kind::AdamW {
                        betas: betas(&mut f)?,
                        eps: f.f64_or("eps", 1e-8)?,
                        amsgrad: f.bool_or("amsgrad", false)?,
                    },
                    1e-3,
                    1e-2,
                )
            }
            "RMSprop" => (
                Kind::RmsProp {
                    alpha: f.f64_or("alpha", 0.99)?,
                    eps: f.f64_or("eps", 1e-8)?,
                    momentum: f.f64_or("momentum", 0.0)?,
                    centered: f.bool_or("centered", false)?,
                },
                1e-2,
                0.0,
            ),
            "Adagrad" => (
                Kind::Adagrad {
                    lr_decay: f.f64_or("lr_decay", 0.0)?,
                    initial_accumulator_value: f.f64_or("initial_accumulator_value", 0.0)?,
                    eps: f.f64_or("eps", 1e-10)?,
                },
                1e-2,
                0.0,
            ),
            "Adadelta" => (
                Kind::Adadelta {
                    rho: f.f64_or("rho", 0.9)?,
                    eps: f.f64_or("eps", 1e-6)?,
                },
                1.0,
                0.0,
            ),
            "Adamax" => (
                Kind::Adamax {
                    betas: betas(&mut f)?,
                    eps: f.f64_or("eps", 1e-8)?,
                },
                2e-3,
                0.0,
            ),
            "NAdam" => (
                Kind::NAdam {
                    betas: betas(&mut f)?,
                    eps: f.f64_or("eps", 1e-8)?,
                    momentum_decay: f.f64_or("momentum_decay", 4e-3)?,
                    decoupled_weight_decay: f.bool_or("decoupled_weight_decay", false)?,
                },
                2e-3,
                0.0,
            ),
            "RAdam" => (
                Kind::RAdam {
                    betas: betas(&mut f)?,
                    eps: f.f64_or("eps", 1e-8)?,
                    decoupled_weight_decay: f.bool_or("decoupled_weight_decay", false)?,
                },
                1e-3,
                0.0,
            ),
            "Adafactor" => {
                let eps = match f.raw("eps") {
                    None => (None, 1e-3),
                    Some(v) => match v.as_array().map(Vec::as_slice) {
                        Some([e1, e2]) if (e1.is_null() || e1.is_number()) && e2.is_number() => {
                            (e1.as_f64(), e2.as_f64().unwrap_or(1e-3))
                        }
                        _ => return Err(f.bad("eps", "a list [eps1 or null, eps2]", v)),
                    },
                };
                (
                    Kind::Adafactor {
                        beta2_decay: f.f64_or("beta2_decay", -0.8)?,
                        eps,
                        d: f.f64_or("d", 1.0)?,
                    },
                    1e-2,
                    0.0,
                )
            }
            other => {
                return Err(ConfigError::UnknownClass {
                    framework: "torch",
                    class: other.into(),
                    supported: SUPPORTED,
                });
            }
        };
        let lr = f.f64_or("lr", default_lr)?;
        let weight_decay = f.f64_or("weight_decay", default_wd)?;
        let maximize = f.bool_or("maximize", false)?;
        // Implementation switches. `foreach`/`differentiable`/`capturable` compute the same
        // update (ulp-level differences); `fused` is a different kernel and is refused.
        f.ignore(&["foreach", "differentiable", "capturable"]);
        if let Some(v) = f.raw("fused")
            && v.as_bool().unwrap_or(false)
        {
            return Err(f.unsupported("fused", v, "the fused kernel is not emulated"));
        }
        f.finish()?;
        Ok(Config {
            kind,
            lr,
            weight_decay,
            maximize,
        })
    }

    /// Parse a [`model_ir::OptimizerSpec`] carrying torch `defaults`.
    pub fn from_spec(spec: &model_ir::OptimizerSpec) -> Result<Config, ConfigError> {
        Config::parse(&serde_json::json!({"class_name": spec.class_name, "defaults": spec.config}))
    }
}

/// Parse the trajectory / train.json `grad_clip` object: `{"max_norm", "norm_type"}`
/// (`norm_type` a number or `"inf"`, default 2) or `{"clip_value"}`.
pub fn parse_grad_clip(v: &Value) -> Result<GradClip, ConfigError> {
    let obj = v.as_object().ok_or(ConfigError::Shape {
        framework: "torch",
        body: "grad_clip",
    })?;
    let mut f = Fields::new("torch", "grad_clip", obj);
    let clip = if let Some(mn) = f.opt_f64("max_norm")? {
        let norm_type = match f.raw("norm_type") {
            None => 2.0,
            Some(Value::String(s)) if matches!(s.as_str(), "inf" | "Infinity" | "math.inf") => {
                f64::INFINITY
            }
            Some(v) => v
                .as_f64()
                .ok_or_else(|| f.bad("norm_type", "a number or \"inf\"", v))?,
        };
        GradClip::Norm {
            max_norm: mn,
            norm_type,
        }
    } else {
        GradClip::Value {
            clip_value: f.req_f64("clip_value")?,
        }
    };
    f.finish()?;
    Ok(clip)
}

/// `torch.linalg.vector_norm(x, p)` in the tensor dtype.
fn vector_norm<T: Real>(x: impl Iterator<Item = T>, p: f64) -> T {
    if p.is_infinite() {
        x.fold(T::default(), |a, v| a.maximum(v.abs()))
    } else if (p - 1.0).abs() < f64::EPSILON {
        x.fold(T::default(), |a, v| a + v.abs())
    } else if (p - 2.0).abs() < f64::EPSILON {
        x.fold(T::default(), |a, v| a + v * v).sqrt()
    } else {
        let s = x.fold(T::default(), |a, v| a + v.abs().powf(T::of(p)));
        s.powf(T::of(1.0 / p))
    }
}

/// `clip_grad_norm_(params, max_norm, norm_type)`: N = ‖(‖g₁‖_p, …, ‖g_k‖_p)‖_p;
/// coef = min(max_norm/(N + 1e-6), 1); gᵢ ← coef·gᵢ. Returns N
/// (`torch/nn/utils/clip_grad.py`, `_get_total_norm` and `_clip_grads_with_norm_`).
pub fn clip_grad_norm<T: Real>(grads: &mut [Vec<T>], max_norm: f64, norm_type: f64) -> T {
    let norms: Vec<T> = grads
        .iter()
        .map(|g| vector_norm(g.iter().copied(), norm_type))
        .collect();
    let total = vector_norm(norms.into_iter(), norm_type);
    let coef = T::of(max_norm) / (total + T::of(1e-6));
    let coef = coef.minimum(T::of(1.0));
    for x in grads.iter_mut().flatten() {
        *x = *x * coef;
    }
    total
}

/// `clip_grad_value_(params, clip_value)`: g ← clamp(g, −c, c).
pub fn clip_grad_value<T: Real>(grads: &mut [Vec<T>], clip_value: f64) {
    let c = T::of(clip_value);
    for x in grads.iter_mut().flatten() {
        *x = x.maximum(-c).minimum(c);
    }
}

/// Apply a training-loop [`GradClip`] over all parameters.
pub fn apply_grad_clip<T: Real>(clip: &GradClip, grads: &mut [Vec<T>]) {
    match *clip {
        GradClip::Norm {
            max_norm,
            norm_type,
        } => {
            clip_grad_norm(grads, max_norm, norm_type);
        }
        GradClip::Value { clip_value } => clip_grad_value(grads, clip_value),
    }
}

#[derive(Debug, Clone)]
struct State<T> {
    a: Vec<T>,
    b: Vec<T>,
    c: Vec<T>,
    /// SGD: whether the momentum buffer exists yet.
    started: bool,
    /// NAdam `mu_product` (a `_get_scalar_dtype()` tensor: float32 by default).
    mu_product: T,
    /// Adafactor's (batch, rows, cols) for a rank ≥ 2 parameter.
    factored: Option<(usize, usize, usize)>,
}

/// A running torch optimizer over a fixed list of parameters (flattened, in order), all in
/// one parameter group.
#[derive(Debug, Clone)]
pub struct Optimizer<T: Real> {
    pub config: Config,
    /// `state[p]["step"]` (the same for every parameter here).
    pub step_count: u64,
    state: Vec<State<T>>,
}

impl<T: Real> Optimizer<T> {
    /// Create the optimizer for rank-1 parameters of the given element counts. Adafactor
    /// factors rank ≥ 2 parameters: use [`Optimizer::build`] for those.
    pub fn new(config: Config, sizes: &[usize]) -> Optimizer<T> {
        let vars: Vec<Variable> = sizes.iter().map(|&n| Variable::flat(n)).collect();
        Optimizer::build(config, &vars)
    }

    /// Create the optimizer for parameters of the given shapes.
    pub fn build(config: Config, params: &[Variable]) -> Optimizer<T> {
        let init = match config.kind {
            Kind::Adagrad {
                initial_accumulator_value,
                ..
            } => T::of(initial_accumulator_value),
            _ => T::default(),
        };
        let adafactor = matches!(config.kind, Kind::Adafactor { .. });
        let state = params
            .iter()
            .map(|v| {
                let n = v.numel();
                let factored = if adafactor { v.factored() } else { None };
                let (nb, nc) = match factored {
                    Some((batch, rows, cols)) => (batch * rows, batch * cols),
                    None => (n, n),
                };
                State {
                    a: vec![init; n],
                    b: vec![T::default(); nb],
                    c: vec![T::default(); nc],
                    started: false,
                    mu_product: T::of(1.0),
                    factored,
                }
            })
            .collect();
        Optimizer {
            config,
            step_count: 0,
            state,
        }
    }

    /// One `opt.step()` with `p.grad = grads[i]`. `grads` is consumed as scratch space.
    pub fn step(&mut self, grads: &mut [Vec<T>], params: &mut [Vec<T>]) {
        assert_eq!(grads.len(), self.state.len(), "torch step: gradient count");
        assert_eq!(
            params.len(),
            self.state.len(),
            "torch step: parameter count"
        );
        self.step_count += 1;
        let t = self.step_count;
        for ((g, p), s) in grads
            .iter_mut()
            .zip(params.iter_mut())
            .zip(self.state.iter_mut())
        {
            assert_eq!(g.len(), p.len(), "torch step: gradient and parameter sizes");
            assert_eq!(p.len(), s.a.len(), "torch step: parameter size changed");
            single_tensor_step(&self.config, t, g, p, s);
        }
    }
}

/// One parameter group: the indices of its parameters in the full list, and its optimizer.
#[derive(Debug, Clone)]
pub struct Group<T: Real> {
    pub params: Vec<usize>,
    pub opt: Optimizer<T>,
}

/// `torch.optim.X([{"params": [...], **overrides}, ...], **defaults)`: one `step()` steps
/// every group in order with its own hyper-parameters. Parameters in no group are not
/// updated (as in torch).
#[derive(Debug, Clone)]
pub struct ParamGroups<T: Real> {
    pub groups: Vec<Group<T>>,
    n_params: usize,
}

impl<T: Real> ParamGroups<T> {
    /// Every parameter in one group (`torch.optim.X(params, **defaults)`).
    pub fn single(config: Config, params: &[Variable]) -> ParamGroups<T> {
        ParamGroups::build(vec![(config, (0..params.len()).collect())], params)
    }

    /// Groups of `(config, parameter indices)`, e.g. from [`resolve_param_groups`].
    ///
    /// Panics if an index is out of range or in two groups ([`resolve_param_groups`] checks).
    pub fn build(groups: Vec<(Config, Vec<usize>)>, params: &[Variable]) -> ParamGroups<T> {
        let mut seen = vec![false; params.len()];
        let groups = groups
            .into_iter()
            .map(|(config, members)| {
                for &i in &members {
                    assert!(i < params.len(), "param group index {i} out of range");
                    assert!(!seen[i], "parameter {i} appears in more than one group");
                    seen[i] = true;
                }
                let vars: Vec<Variable> = members.iter().map(|&i| params[i].clone()).collect();
                Group {
                    params: members,
                    opt: Optimizer::build(config, &vars),
                }
            })
            .collect();
        ParamGroups {
            groups,
            n_params: params.len(),
        }
    }

    /// One `opt.step()` over all groups. `grads` is consumed as scratch space.
    pub fn step(&mut self, grads: &mut [Vec<T>], params: &mut [Vec<T>]) {
        assert_eq!(grads.len(), self.n_params, "torch step: gradient count");
        assert_eq!(params.len(), self.n_params, "torch step: parameter count");
        for group in &mut self.groups {
            let mut g: Vec<Vec<T>> = group
                .params
                .iter()
                .map(|&i| std::mem::take(&mut grads[i]))
                .collect();
            let mut p: Vec<Vec<T>> = group
                .params
                .iter()
                .map(|&i| std::mem::take(&mut params[i]))
                .collect();
            group.opt.step(&mut g, &mut p);
            for ((&i, gi), pi) in group.params.iter().zip(g).zip(p) {
                grads[i] = gi;
                params[i] = pi;
            }
        }
    }

    /// Each group's hyper-parameters, in group order (what a scheduler changes).
    pub fn configs_mut(&mut self) -> Vec<&mut Config> {
        self.groups.iter_mut().map(|g| &mut g.opt.config).collect()
    }
}

/// Resolve `train.json` / trajectory parameter groups (`[{"params": [names], <overrides>}]`)
/// against the parameter names: each group's config is the optimizer's `defaults` with the
/// group's overrides on top, parsed with torch's defaults for anything still missing.
/// `name` / `param_names` labels are ignored; unknown names and a parameter listed twice are
/// errors, as in torch.
pub fn resolve_param_groups(
    optimizer: &Value,
    groups: &[model_ir::ParamGroup],
    names: &[String],
) -> Result<Vec<(Config, Vec<usize>)>, ConfigError> {
    let (class, defaults) = split("torch", "defaults", optimizer)?;
    let bad = |field: String, expected: &'static str, got: String| ConfigError::BadValue {
        framework: "torch",
        class: "param_groups".into(),
        field,
        expected,
        got,
    };
    let mut seen = vec![false; names.len()];
    let mut out = Vec::with_capacity(groups.len());
    for (gi, g) in groups.iter().enumerate() {
        let mut merged: Map<String, Value> = defaults.clone();
        for (k, v) in &g.overrides {
            if !matches!(k.as_str(), "name" | "param_names") {
                merged.insert(k.clone(), v.clone());
            }
        }
        let config = Config::parse(&serde_json::json!({"class_name": class, "defaults": merged}))?;
        let mut members = Vec::with_capacity(g.params.len());
        for p in &g.params {
            let i = names.iter().position(|n| n == p).ok_or_else(|| {
                bad(
                    format!("param_groups[{gi}].params"),
                    "names from the parameter list",
                    format!("{p:?}"),
                )
            })?;
            if seen[i] {
                return Err(bad(
                    format!("param_groups[{gi}].params"),
                    "parameters that appear in only one group",
                    format!("{p:?} again"),
                ));
            }
            seen[i] = true;
            members.push(i);
        }
        out.push((config, members));
    }
    Ok(out)
}

/// Parse `[{"params": [names], <overrides>}, ...]` (the `train.json` form) into
/// [`model_ir::ParamGroup`]s.
pub fn parse_param_groups(v: &Value) -> Result<Vec<model_ir::ParamGroup>, ConfigError> {
    let shape = ConfigError::Shape {
        framework: "torch",
        body: "param_groups",
    };
    let groups = v.as_array().ok_or(shape.clone())?;
    groups
        .iter()
        .map(|g| {
            let obj = g.as_object().ok_or(shape.clone())?;
            let params = obj
                .get("params")
                .and_then(Value::as_array)
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or(shape.clone())?;
            let mut overrides = obj.clone();
            overrides.remove("params");
            Ok(model_ir::ParamGroup { params, overrides })
        })
        .collect()
}

/// Coupled (g ← g + λθ) or decoupled (θ ← θ·(1 − ηλ)) weight decay.
fn weight_decay<T: Real>(cfg: &Config, decoupled: bool, g: &mut [T], p: &mut [T]) {
    let wd = cfg.weight_decay;
    if wd.abs() > 0.0 {
        if decoupled {
            let f = T::of(1.0 - cfg.lr * wd);
            for x in p.iter_mut() {
                *x = *x * f;
            }
        } else {
            for (gi, &x) in g.iter_mut().zip(p.iter()) {
                *gi = *gi + T::of(wd) * x;
            }
        }
    }
}

/// ATen's CPU `lerp` with a scalar weight.
#[inline]
fn lerp<T: Real>(a: T, b: T, w: f64) -> T {
    let wt = T::of(w);
    if w < 0.5 {
        a + wt * (b - a)
    } else {
        b - (b - a) * (T::of(1.0) - wt)
    }
}

fn single_tensor_step<T: Real>(cfg: &Config, t: u64, g: &mut [T], p: &mut [T], s: &mut State<T>) {
    let c = T::of;
    if cfg.maximize {
        for x in g.iter_mut() {
            *x = -*x;
        }
    }
    let lr = cfg.lr;
    let tf = t as f64;
    match cfg.kind {
        Kind::Sgd {
            momentum,
            dampening,
            nesterov,
        } => {
            weight_decay(cfg, false, g, p);
            if momentum.abs() > 0.0 {
                if s.started {
                    for (b, &gi) in s.a.iter_mut().zip(g.iter()) {
                        *b = *b * c(momentum) + c(1.0 - dampening) * gi;
                    }
                } else {
                    s.a.copy_from_slice(g);
                    s.started = true;
                }
                for (gi, &b) in g.iter_mut().zip(s.a.iter()) {
                    *gi = if nesterov { *gi + c(momentum) * b } else { b };
                }
            }
            for (x, &gi) in p.iter_mut().zip(g.iter()) {
                *x = *x + c(-lr) * gi;
            }
        }
        Kind::Adam {
            betas,
            eps,
            amsgrad,
            decoupled_weight_decay,
        } => adam(cfg, t, betas, eps, amsgrad, decoupled_weight_decay, g, p, s),
        Kind::AdamW {
            betas,
            eps,
            amsgrad,
        } => adam(cfg, t, betas, eps, amsgrad, true, g, p, s),
        Kind::RmsProp {
            alpha,
            eps,
            momentum,
            centered,
        } => {
            weight_decay(cfg, false, g, p);
            for i in 0..p.len() {
                let gi = g[i];
                s.a[i] = s.a[i] * c(alpha) + c(1.0 - alpha) * gi * gi;
                let avg = if centered {
                    s.b[i] = lerp(s.b[i], gi, 1.0 - alpha);
                    (s.a[i] + c(-1.0) * s.b[i] * s.b[i]).sqrt()
                } else {
                    s.a[i].sqrt()
                };
                let avg = avg + c(eps);
                if momentum > 0.0 {
                    s.c[i] = s.c[i] * c(momentum) + c(1.0) * gi / avg;
                    p[i] = p[i] + c(-lr) * s.c[i];
                } else {
                    p[i] = p[i] + c(-lr) * gi / avg;
                }
            }
        }
        Kind::Adagrad { lr_decay, eps, .. } => {
            weight_decay(cfg, false, g, p);
            let clr = lr / (1.0 + (tf - 1.0) * lr_decay);
            for i in 0..p.len() {
                let gi = g[i];
                s.a[i] = s.a[i] + c(1.0) * gi * gi;
                let std = s.a[i].sqrt() + c(eps);
                p[i] = p[i] + c(-clr) * gi / std;
            }
        }
        Kind::Adadelta { rho, eps } => {
            weight_decay(cfg, false, g, p);
            for i in 0..p.len() {
                let gi = g[i];
                s.a[i] = s.a[i] * c(rho) + c(1.0 - rho) * gi * gi;
                let std = (s.a[i] + c(eps)).sqrt();
                let delta = (s.b[i] + c(eps)).sqrt() / std * gi;
                s.b[i] = s.b[i] * c(rho) + c(1.0 - rho) * delta * delta;
                p[i] = p[i] + c(-lr) * delta;
            }
        }
        Kind::Adamax {
            betas: (b1, b2),
            eps,
        } => {
            weight_decay(cfg, false, g, p);
            let clr = lr / (1.0 - b1.powf(tf));
            for i in 0..p.len() {
                let gi = g[i];
                s.a[i] = lerp(s.a[i], gi, 1.0 - b1);
                s.b[i] = (s.b[i] * c(b2)).maximum(gi.abs() + c(eps));
                p[i] = p[i] + c(-clr) * s.a[i] / s.b[i];
            }
        }
        Kind::NAdam {
            betas: (b1, b2),
            eps,
            momentum_decay,
            decoupled_weight_decay,
        } => {
            let bc2 = 1.0 - b2.powf(tf);
            weight_decay(cfg, decoupled_weight_decay, g, p);
            let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(tf * momentum_decay));
            let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((tf + 1.0) * momentum_decay));
            s.mu_product = s.mu_product * c(mu);
            let mp = s.mu_product.to_f64();
            let mp_next = mp * mu_next;
            let v1 = c(-lr * (1.0 - mu) / (1.0 - mp));
            let v2 = c((-lr * mu_next) / (1.0 - mp_next));
            for i in 0..p.len() {
                let gi = g[i];
                s.a[i] = lerp(s.a[i], gi, 1.0 - b1);
                s.b[i] = s.b[i] * c(b2) + c(1.0 - b2) * gi * gi;
                let denom = (s.b[i] / c(bc2)).sqrt() + c(eps);
                p[i] = p[i] + v1 * gi / denom;
                p[i] = p[i] + v2 * s.a[i] / denom;
            }
        }
        Kind::RAdam {
            betas: (b1, b2),
            eps,
            decoupled_weight_decay,
        } => {
            weight_decay(cfg, decoupled_weight_decay, g, p);
            let bc1 = 1.0 - b1.powf(tf);
            let bc2 = 1.0 - b2.powf(tf);
            let rho_inf = 2.0 / (1.0 - b2) - 1.0;
            let rho_t = rho_inf - 2.0 * tf * b2.powf(tf) / bc2;
            let rect = if rho_t > 5.0 {
                Some(
                    ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                        / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                        .sqrt(),
                )
            } else {
                None
            };
            for i in 0..p.len() {
                let gi = g[i];
                s.a[i] = lerp(s.a[i], gi, 1.0 - b1);
                s.b[i] = s.b[i] * c(b2) + c(1.0 - b2) * gi * gi;
                let bcm = s.a[i] / c(bc1);
                let upd = match rect {
                    Some(r) => {
                        let adaptive = c(bc2.sqrt()) / (s.b[i].sqrt() + c(eps));
                        bcm * c(lr) * adaptive * c(r)
                    }
                    None => bcm * c(lr),
                };
                p[i] = p[i] + c(-1.0) * upd;
            }
        }
        Kind::Adafactor {
            beta2_decay,
            eps: (eps1, eps2),
            d,
        } => adafactor(cfg, t, (beta2_decay, eps1, eps2, d), g, p, s),
    }
}

/// `_single_tensor_adafactor`; state: `a` = variance (rank < 2), `b` = row_var
/// (batch × rows), `c` = col_var (batch × cols). `g` is already negated for `maximize`.
fn adafactor<T: Real>(
    cfg: &Config,
    t: u64,
    (beta2_decay, eps1, eps2, d): (f64, Option<f64>, f64, f64),
    g: &[T],
    p: &mut [T],
    s: &mut State<T>,
) {
    let c = T::of;
    let lr = cfg.lr;
    let eps1 = eps1.unwrap_or(f64::from(f32::EPSILON));
    let step = t as f64;
    let one_minus_beta2_t = step.powf(beta2_decay);
    let rho_t = lr.min(1.0 / step.powf(0.5));
    let numel_sqrt = (p.len() as f64).powf(0.5);
    let alpha = eps2.max(vector_norm(p.iter().copied(), 2.0).to_f64() / numel_sqrt) * rho_t;
    if cfg.weight_decay.abs() > 0.0 {
        let f = c(1.0 - lr * cfg.weight_decay);
        for x in p.iter_mut() {
            *x = *x * f;
        }
    }
    let var_estimate: Vec<T> = match s.factored {
        Some((batch, rows, cols)) => {
            let mut v = vec![T::default(); p.len()];
            for b in 0..batch {
                let base = b * rows * cols;
                for i in 0..rows {
                    let row = &g[base + i * cols..base + (i + 1) * cols];
                    let norm = vector_norm(row.iter().copied(), 2.0);
                    let r = &mut s.b[b * rows + i];
                    *r = lerp(*r, norm * norm / c(cols as f64), one_minus_beta2_t);
                }
                for j in 0..cols {
                    let norm = vector_norm((0..rows).map(|i| g[base + i * cols + j]), 2.0);
                    let cv = &mut s.c[b * cols + j];
                    *cv = lerp(*cv, norm * norm / c(rows as f64), one_minus_beta2_t);
                }
                let r = &s.b[b * rows..(b + 1) * rows];
                let r_mean =
                    (r.iter().fold(T::default(), |a, &x| a + x) / c(rows as f64)).maximum(c(eps1));
                let c_b = &s.c[b * cols..(b + 1) * cols];
                for (i, &ri) in r.iter().enumerate() {
                    let row = &mut v[base + i * cols..base + (i + 1) * cols];
                    for (x, &cj) in row.iter_mut().zip(c_b) {
                        *x = ri * cj / r_mean;
                    }
                }
            }
            v
        }
        None => {
            for (v, &gi) in s.a.iter_mut().zip(g) {
                *v = lerp(*v, gi * gi, one_minus_beta2_t);
            }
            s.a.clone()
        }
    };
    let update: Vec<T> = var_estimate
        .iter()
        .zip(g)
        .map(|(&v, &gi)| c(1.0) / v.maximum(c(eps1 * eps1)).sqrt() * gi)
        .collect();
    let denom = 1.0f64.max(vector_norm(update.iter().copied(), 2.0).to_f64() / (numel_sqrt * d));
    let a = c(-alpha / denom);
    for (x, &u) in p.iter_mut().zip(&update) {
        *x = *x + a * u;
    }
}

#[allow(clippy::too_many_arguments)]
fn adam<T: Real>(
    cfg: &Config,
    t: u64,
    (b1, b2): (f64, f64),
    eps: f64,
    amsgrad: bool,
    decoupled: bool,
    g: &mut [T],
    p: &mut [T],
    s: &mut State<T>,
) {
    let c = T::of;
    weight_decay(cfg, decoupled, g, p);
    let tf = t as f64;
    let bc1 = 1.0 - b1.powf(tf);
    let bc2 = 1.0 - b2.powf(tf);
    let step_size = cfg.lr / bc1;
    let bc2_sqrt = bc2.sqrt();
    for i in 0..p.len() {
        let gi = g[i];
        s.a[i] = lerp(s.a[i], gi, 1.0 - b1);
        s.b[i] = s.b[i] * c(b2) + c(1.0 - b2) * gi * gi;
        let v = if amsgrad {
            s.c[i] = s.c[i].maximum(s.b[i]);
            s.c[i]
        } else {
            s.b[i]
        };
        let denom = v.sqrt() / c(bc2_sqrt) + c(eps);
        p[i] = p[i] + c(-step_size) * s.a[i] / denom;
    }
}
