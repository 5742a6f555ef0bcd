//! Replaying a golden trajectory (a real framework's parameters after each step for a known
//! gradient sequence) through the emulators, and the error measure.
//!
//! The file format is not known here: callers hand over the metadata strings and the named
//! float32 tensors (`init.<p>`, `grad.<t>.<p>`, `param.<t>.<p>`) of a trajectory file; see
//! `models/trajectories/` for how the files are made.

use std::collections::BTreeMap;

use model_ir::Framework;
use serde_json::Value;

use crate::config::ConfigError;
use crate::equiv::{self, NoEquivalent};
use crate::keras;
use crate::real::{Precision, Real};
use crate::torch::{self, GradClip};

/// Pass threshold on the normalized error.
pub const PASS_THRESHOLD: f64 = 1e-6;

/// A trajectory file that cannot be replayed. One line each.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error("missing metadata `{0}`")]
    MissingMetadata(&'static str),
    #[error("metadata `{key}`: {reason}")]
    BadMetadata { key: &'static str, reason: String },
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    #[error("tensor `{name}` has {got} elements, expected {expected}")]
    Size {
        name: String,
        expected: usize,
        got: usize,
    },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    NoCounterpart(#[from] NoEquivalent),
}

/// A golden trajectory in memory: `grads[t-1][i]` fed at step t, `params[t-1][i]` after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    pub framework: Framework,
    pub framework_version: String,
    /// Keras `serialize(opt)` or torch `{"class_name", "defaults"}`.
    pub optimizer: Value,
    /// torch only: clipping applied over all parameters before every step.
    pub grad_clip: Option<GradClip>,
    pub param_order: Vec<String>,
    pub init: Vec<Vec<f32>>,
    pub grads: Vec<Vec<Vec<f32>>>,
    pub params: Vec<Vec<Vec<f32>>>,
}

impl Trajectory {
    /// Assemble from the file's string metadata and its tensors (flattened, float32).
    pub fn from_parts(
        meta: &BTreeMap<String, String>,
        tensors: &BTreeMap<String, Vec<f32>>,
    ) -> Result<Trajectory, ReplayError> {
        let get = |k: &'static str| meta.get(k).ok_or(ReplayError::MissingMetadata(k));
        let json = |k: &'static str, s: &str| {
            serde_json::from_str::<Value>(s).map_err(|e| ReplayError::BadMetadata {
                key: k,
                reason: e.to_string(),
            })
        };
        let framework = match get("framework")?.as_str() {
            "keras" => Framework::Keras,
            "torch" => Framework::Torch,
            other => {
                return Err(ReplayError::BadMetadata {
                    key: "framework",
                    reason: format!("`{other}` is not keras or torch"),
                });
            }
        };
        let framework_version = get("framework_version")?.clone();
        let optimizer = json("optimizer", get("optimizer")?)?;
        let steps: usize = get("steps")?
            .parse()
            .map_err(|e| ReplayError::BadMetadata {
                key: "steps",
                reason: format!("{e}"),
            })?;
        let param_order: Vec<String> =
            serde_json::from_value(json("param_order", get("param_order")?)?).map_err(|e| {
                ReplayError::BadMetadata {
                    key: "param_order",
                    reason: e.to_string(),
                }
            })?;
        if param_order.is_empty() {
            return Err(ReplayError::BadMetadata {
                key: "param_order",
                reason: "empty".into(),
            });
        }
        let grad_clip = match meta.get("grad_clip") {
            None => None,
            Some(s) => Some(torch::parse_grad_clip(&json("grad_clip", s)?)?),
        };
        let tensor = |name: String, expected: Option<usize>| -> Result<Vec<f32>, ReplayError> {
            let v = tensors
                .get(&name)
                .ok_or_else(|| ReplayError::MissingTensor(name.clone()))?;
            if let Some(n) = expected
                && v.len() != n
            {
                return Err(ReplayError::Size {
                    name,
                    expected: n,
                    got: v.len(),
                });
            }
            Ok(v.clone())
        };
        let init = param_order
            .iter()
            .map(|p| tensor(format!("init.{p}"), None))
            .collect::<Result<Vec<_>, _>>()?;
        let mut grads = Vec::with_capacity(steps);
        let mut params = Vec::with_capacity(steps);
        for t in 1..=steps {
            let mut g = Vec::new();
            let mut q = Vec::new();
            for (p, i0) in param_order.iter().zip(&init) {
                g.push(tensor(format!("grad.{t}.{p}"), Some(i0.len()))?);
                q.push(tensor(format!("param.{t}.{p}"), Some(i0.len()))?);
            }
            grads.push(g);
            params.push(q);
        }
        Ok(Trajectory {
            framework,
            framework_version,
            optimizer,
            grad_clip,
            param_order,
            init,
            grads,
            params,
        })
    }
}

/// The result of one replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The framework that made the file.
    pub framework: Framework,
    /// The framework whose emulator was used.
    pub emulated_as: Framework,
    /// Optimizer class name from the file.
    pub class_name: String,
    pub steps: usize,
    /// max over t of max|emulated_t − real_t| / max(max|real_t|, 1e-12).
    pub worst: f64,
    /// The step where `worst` occurred (1-based; 0 when there are no steps).
    pub worst_step: usize,
    pub passed: bool,
}

enum Emulator<T: Real> {
    Keras(keras::Optimizer<T>),
    Torch {
        opt: torch::Optimizer<T>,
        clip: Option<GradClip>,
        per_param_clipnorm: Option<f64>,
        /// `--as torch` for a Keras file: the Keras learning rate per step.
        lr: Option<keras::LearningRate>,
    },
}

impl<T: Real> Emulator<T> {
    fn step(&mut self, grads: &mut [Vec<T>], params: &mut [Vec<T>]) {
        match self {
            Emulator::Keras(o) => o.apply(grads, params),
            Emulator::Torch {
                opt,
                clip,
                per_param_clipnorm,
                lr,
            } => {
                if let Some(lr) = lr {
                    opt.config.lr = lr.at::<f64>(opt.step_count);
                }
                if let Some(c) = per_param_clipnorm {
                    for g in grads.iter_mut() {
                        torch::clip_grad_norm(std::slice::from_mut(g), *c, 2.0);
                    }
                }
                if let Some(c) = clip {
                    torch::apply_grad_clip(c, grads);
                }
                opt.step(grads, params);
            }
        }
    }
}

/// Replay `traj` with the emulator of its own framework, or (`as_framework`) with the other
/// framework's optimizer of the same class name, hyper-parameters mapped by name.
pub fn replay(
    traj: &Trajectory,
    as_framework: Option<Framework>,
    precision: Precision,
) -> Result<Outcome, ReplayError> {
    match precision {
        Precision::F32 => replay_in::<f32>(traj, as_framework),
        Precision::F64 => replay_in::<f64>(traj, as_framework),
    }
}

fn replay_in<T: Real>(
    traj: &Trajectory,
    as_framework: Option<Framework>,
) -> Result<Outcome, ReplayError> {
    let sizes: Vec<usize> = traj.init.iter().map(Vec::len).collect();
    let target = as_framework.unwrap_or(traj.framework);
    let (class_name, mut emu) = match traj.framework {
        Framework::Keras => {
            if traj.grad_clip.is_some() {
                return Err(ReplayError::BadMetadata {
                    key: "grad_clip",
                    reason: "Keras clipping belongs in the optimizer config".into(),
                });
            }
            let k = keras::Config::parse(&traj.optimizer)?;
            let name = k.kind.class_name().to_string();
            let emu = match target {
                Framework::Keras => Emulator::Keras(keras::Optimizer::new(k, &sizes)),
                Framework::Torch => {
                    let m = equiv::torch_by_name(&k)?;
                    Emulator::Torch {
                        opt: torch::Optimizer::new(m.config, &sizes),
                        clip: m.grad_clip,
                        per_param_clipnorm: m.per_param_clipnorm,
                        lr: Some(k.learning_rate),
                    }
                }
            };
            (name, emu)
        }
        Framework::Torch => {
            let t = torch::Config::parse(&traj.optimizer)?;
            let name = t.kind.class_name().to_string();
            let emu = match target {
                Framework::Torch => Emulator::Torch {
                    opt: torch::Optimizer::new(t, &sizes),
                    clip: traj.grad_clip,
                    per_param_clipnorm: None,
                    lr: None,
                },
                Framework::Keras => Emulator::Keras(keras::Optimizer::new(
                    equiv::keras_by_name(&t, traj.grad_clip.as_ref())?,
                    &sizes,
                )),
            };
            (name, emu)
        }
    };
    let conv = |v: &Vec<Vec<f32>>| -> Vec<Vec<T>> {
        v.iter()
            .map(|x| x.iter().map(|&y| T::of(f64::from(y))).collect())
            .collect()
    };
    let mut params = conv(&traj.init);
    let mut worst = 0.0f64;
    let mut worst_step = 0;
    for (t, (g, real)) in traj.grads.iter().zip(&traj.params).enumerate() {
        let mut g = conv(g);
        emu.step(&mut g, &mut params);
        let mut num = 0.0f64;
        let mut den = 0.0f64;
        for (e, r) in params.iter().flatten().zip(real.iter().flatten()) {
            let r = f64::from(*r);
            let d = (e.to_f64() - r).abs();
            // NaN anywhere is a failure, not a silently ignored coordinate.
            num = if d.is_nan() || num.is_nan() {
                f64::NAN
            } else {
                num.max(d)
            };
            den = den.max(r.abs());
        }
        let err = num / den.max(1e-12);
        if err.is_nan() {
            worst = f64::NAN;
            worst_step = t + 1;
            break;
        }
        if err > worst || worst_step == 0 {
            worst = err;
            worst_step = t + 1;
        }
    }
    Ok(Outcome {
        framework: traj.framework,
        emulated_as: target,
        class_name,
        steps: traj.grads.len(),
        worst,
        worst_step,
        passed: worst <= PASS_THRESHOLD,
    })
}
