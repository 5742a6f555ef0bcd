//! Replaying a golden trajectory (a real framework's parameters after each step for a known
//! gradient sequence) through the emulators, and the error measure.
//!
//! The file format is not known here: callers hand over the metadata strings and the named
//! float32 tensors (`init.<p>`, `grad.<t>.<p>`, `param.<t>.<p>`, with their shapes) of a
//! trajectory file; see `models/trajectories/README.md` for the metadata and how the files
//! are made.
//!
//! Optional metadata beyond the original format: Keras `exclude_from_weight_decay`
//! (`{"var_names", "var_list"}`), torch `param_groups` (`[{"params": [names], <overrides>}]`)
//! and `scheduler` (`{"class_name", "config", "interval", "steps_per_epoch"}`). Optional
//! tensors: Keras `slices.<t>.<p>.indices` (integers) and `slices.<t>.<p>.values`, the
//! `tf.IndexedSlices` gradient of `p` at step t (`grad.<t>.<p>` is its dense sum), replayed
//! through [`keras::Optimizer::apply_with_slices`]. Files without them replay as before.

use std::collections::BTreeMap;

use model_ir::Framework;
use serde_json::Value;

use crate::config::ConfigError;
use crate::equiv::{self, NoEquivalent};
use crate::keras;
use crate::real::{Precision, Real};
use crate::torch::{self, GradClip, Scheduler, SchedulerConfig};
use crate::variable::Variable;

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
    #[error("tensor `{name}` has shape {got:?}, expected {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("tensor `{name}`: {reason}")]
    BadTensor { name: String, reason: String },
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
    /// Keras only: the arguments of `optimizer.exclude_from_weight_decay`.
    pub exclude_from_weight_decay: Option<keras::Exclusion>,
    /// Keras only: the backend the file was made on (metadata `backend`, default
    /// `tensorflow`).
    pub keras_backend: keras::Backend,
    /// torch only: parameter groups with per-group overrides (`None` = one group).
    pub param_groups: Option<Vec<model_ir::ParamGroup>>,
    /// torch only: the learning-rate scheduler and how often it was stepped.
    pub scheduler: Option<SchedulerConfig>,
    pub param_order: Vec<String>,
    /// Shape of each parameter (`[n]` when the caller had only flat data).
    pub shapes: Vec<Vec<usize>>,
    pub init: Vec<Vec<f32>>,
    pub grads: Vec<Vec<Vec<f32>>>,
    pub params: Vec<Vec<Vec<f32>>>,
    /// Keras only: `slices[t-1][i]`, parameter i's gradient at step t as TensorFlow
    /// `IndexedSlices` (`grads[t-1][i]` is their dense sum); empty when the file has none.
    pub slices: Vec<Vec<Option<SliceGrad>>>,
}

/// A gradient given as `tf.IndexedSlices` (see [`keras::IndexedSlices`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SliceGrad {
    pub indices: Vec<usize>,
    /// `indices.len()` rows of the parameter's row size, row-major.
    pub values: Vec<f32>,
}

impl Trajectory {
    /// Assemble from the file's string metadata and its tensors (flattened, float32), every
    /// tensor taken as rank 1. Adafactor factors rank ≥ 2 parameters, so files that need
    /// their shapes go through [`Trajectory::from_shaped_parts`].
    pub fn from_parts(
        meta: &BTreeMap<String, String>,
        tensors: &BTreeMap<String, Vec<f32>>,
    ) -> Result<Trajectory, ReplayError> {
        let shaped = tensors
            .iter()
            .map(|(k, v)| (k.clone(), (vec![v.len()], v.clone())))
            .collect();
        Trajectory::from_shaped_parts(meta, &shaped)
    }

    /// Assemble from the file's string metadata and its tensors as (shape, row-major
    /// float32 data), for files without integer tensors.
    pub fn from_shaped_parts(
        meta: &BTreeMap<String, String>,
        tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    ) -> Result<Trajectory, ReplayError> {
        Trajectory::from_all_parts(meta, tensors, &BTreeMap::new())
    }

    /// Assemble from the file's string metadata, its float32 tensors and its integer
    /// tensors (the `slices.<t>.<p>.indices`), each as (shape, row-major data).
    pub fn from_all_parts(
        meta: &BTreeMap<String, String>,
        tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
        int_tensors: &BTreeMap<String, (Vec<usize>, Vec<i64>)>,
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
        let only = |key: &'static str, fw: Framework| -> Result<Option<Value>, ReplayError> {
            match meta.get(key) {
                None => Ok(None),
                Some(_) if fw != framework => Err(ReplayError::BadMetadata {
                    key,
                    reason: format!("only {} files carry it", fw.name()),
                }),
                Some(s) => json(key, s).map(Some),
            }
        };
        let grad_clip = only("grad_clip", Framework::Torch)?
            .map(|v| torch::parse_grad_clip(&v))
            .transpose()?;
        let exclude_from_weight_decay = only("exclude_from_weight_decay", Framework::Keras)?
            .map(|v| keras::Exclusion::parse(&v))
            .transpose()?;
        let keras_backend = match meta.get("backend") {
            None => keras::Backend::TensorFlow,
            Some(_) if framework != Framework::Keras => {
                return Err(ReplayError::BadMetadata {
                    key: "backend",
                    reason: "only keras files carry it".into(),
                });
            }
            // A golden file comes from training, which numpy (inference only) cannot do.
            Some(b) => keras::Backend::parse(b)
                .filter(|b| *b != keras::Backend::Numpy)
                .ok_or_else(|| ReplayError::BadMetadata {
                    key: "backend",
                    reason: format!("`{b}` is not tensorflow, jax or torch"),
                })?,
        };
        let param_groups = only("param_groups", Framework::Torch)?
            .map(|v| torch::parse_param_groups(&v))
            .transpose()?;
        let scheduler = only("scheduler", Framework::Torch)?
            .map(|v| SchedulerConfig::parse(&v))
            .transpose()?;
        if let Some(s) = &scheduler {
            if s.steps_after(1).is_none() {
                return Err(ReplayError::BadMetadata {
                    key: "scheduler",
                    reason: "interval \"epoch\" needs steps_per_epoch".into(),
                });
            }
            if let torch::SchedulerKind::OneCycleLR(oc) = &s.kind {
                let calls = (1..=steps as u64)
                    .filter(|&t| s.steps_after(t) == Some(true))
                    .count() as u64;
                if calls > oc.total_steps {
                    return Err(ReplayError::BadMetadata {
                        key: "scheduler",
                        reason: format!(
                            "OneCycleLR: tried to step {calls} times; total_steps is {}",
                            oc.total_steps
                        ),
                    });
                }
            }
        }
        let tensor = |name: String,
                      expected: Option<&Vec<usize>>|
         -> Result<(Vec<usize>, Vec<f32>), ReplayError> {
            let (shape, v) = tensors
                .get(&name)
                .ok_or_else(|| ReplayError::MissingTensor(name.clone()))?;
            if let Some(want) = expected {
                let n: usize = want.iter().product();
                if v.len() != n {
                    return Err(ReplayError::Size {
                        name,
                        expected: n,
                        got: v.len(),
                    });
                }
                if shape != want {
                    return Err(ReplayError::Shape {
                        name,
                        expected: want.clone(),
                        got: shape.clone(),
                    });
                }
            } else if shape.iter().product::<usize>() != v.len() {
                return Err(ReplayError::Size {
                    name,
                    expected: shape.iter().product(),
                    got: v.len(),
                });
            }
            Ok((shape.clone(), v.clone()))
        };
        let mut shapes = Vec::with_capacity(param_order.len());
        let mut init = Vec::with_capacity(param_order.len());
        for p in &param_order {
            let (shape, v) = tensor(format!("init.{p}"), None)?;
            shapes.push(shape);
            init.push(v);
        }
        let mut grads = Vec::with_capacity(steps);
        let mut params = Vec::with_capacity(steps);
        for t in 1..=steps {
            let mut g = Vec::new();
            let mut q = Vec::new();
            for (p, shape) in param_order.iter().zip(&shapes) {
                g.push(tensor(format!("grad.{t}.{p}"), Some(shape))?.1);
                q.push(tensor(format!("param.{t}.{p}"), Some(shape))?.1);
            }
            grads.push(g);
            params.push(q);
        }
        let slices = read_slices(
            framework,
            &param_order,
            &shapes,
            steps,
            tensors,
            int_tensors,
        )?;
        Ok(Trajectory {
            framework,
            framework_version,
            optimizer,
            grad_clip,
            exclude_from_weight_decay,
            keras_backend,
            param_groups,
            scheduler,
            param_order,
            shapes,
            init,
            grads,
            params,
            slices,
        })
    }

    /// The parameters as [`Variable`]s (name and shape).
    pub fn variables(&self) -> Vec<Variable> {
        self.param_order
            .iter()
            .zip(&self.shapes)
            .map(|(n, s)| Variable::new(n.clone(), s))
            .collect()
    }
}

/// The `slices.<t>.<p>.values` / `.indices` pairs, checked against the parameter shapes.
fn read_slices(
    framework: Framework,
    param_order: &[String],
    shapes: &[Vec<usize>],
    steps: usize,
    tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    int_tensors: &BTreeMap<String, (Vec<usize>, Vec<i64>)>,
) -> Result<Vec<Vec<Option<SliceGrad>>>, ReplayError> {
    let bad = |name: &str, reason: String| ReplayError::BadTensor {
        name: name.to_string(),
        reason,
    };
    let names: Vec<&String> = tensors
        .keys()
        .chain(int_tensors.keys())
        .filter(|k| k.starts_with("slices."))
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    if framework != Framework::Keras {
        return Err(bad(names[0], "only keras files carry slices".into()));
    }
    let mut out = vec![vec![None; param_order.len()]; steps];
    for name in names {
        let Some(stem) = name.strip_suffix(".values") else {
            if name.ends_with(".indices") {
                if !int_tensors.contains_key(name.as_str()) {
                    return Err(bad(name, "indices must be an integer tensor".into()));
                }
                let values = format!("{}.values", name.trim_end_matches(".indices"));
                if !tensors.contains_key(&values) {
                    return Err(ReplayError::MissingTensor(values));
                }
                continue;
            }
            return Err(bad(
                name,
                "expected slices.<t>.<param>.values or .indices".into(),
            ));
        };
        let parsed = stem
            .strip_prefix("slices.")
            .and_then(|r| r.split_once('.'))
            .and_then(|(t, p)| Some((t.parse::<usize>().ok()?, p)));
        let Some((t, p)) = parsed.filter(|(t, _)| (1..=steps).contains(t)) else {
            return Err(bad(
                name,
                format!("expected slices.<t>.<param>.values, t in 1..={steps}"),
            ));
        };
        let Some(i) = param_order.iter().position(|q| q == p) else {
            return Err(bad(name, format!("`{p}` is not in param_order")));
        };
        let (vshape, values) = tensors
            .get(name.as_str())
            .ok_or_else(|| bad(name, "values must be a float32 tensor".into()))?;
        let iname = format!("{stem}.indices");
        let (ishape, indices) = int_tensors
            .get(&iname)
            .ok_or_else(|| ReplayError::MissingTensor(iname.clone()))?;
        let rows = shapes[i].first().copied().unwrap_or(1);
        let numel: usize = shapes[i].iter().product();
        let row = numel.checked_div(rows).unwrap_or(0);
        let n = indices.len();
        if ishape.len() != 1 {
            return Err(ReplayError::Shape {
                name: iname,
                expected: vec![n],
                got: ishape.clone(),
            });
        }
        if vshape.as_slice() != [n, row] {
            return Err(ReplayError::Shape {
                name: name.clone(),
                expected: vec![n, row],
                got: vshape.clone(),
            });
        }
        let indices = indices
            .iter()
            .map(|&r| usize::try_from(r).ok().filter(|&r| r < rows))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad(&iname, format!("an index is outside 0..{rows}")))?;
        out[t - 1][i] = Some(SliceGrad {
            indices,
            values: values.clone(),
        });
    }
    Ok(out)
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

/// A torch scheduler driving the learning rate of a Keras emulator (`--as keras`): the
/// scheduler runs on the torch group configs, and Keras gets group 0's `lr` as a constant
/// before each step (what a port that copies the learning rate does; OneCycleLR's momentum
/// cycling is not carried over).
struct TorchLr {
    scheduler: Scheduler,
    config: SchedulerConfig,
    groups: Vec<torch::Config>,
}

enum Emulator<T: Real> {
    Keras {
        opt: keras::Optimizer<T>,
        torch_lr: Option<TorchLr>,
    },
    Torch {
        opt: torch::ParamGroups<T>,
        clip: Option<GradClip>,
        per_param_clipnorm: Option<f64>,
        /// `--as torch` for a Keras file: the Keras learning rate per step.
        keras_lr: Option<keras::LearningRate>,
        scheduler: Option<(Scheduler, SchedulerConfig)>,
    },
}

impl<T: Real> Emulator<T> {
    /// Optimizer step `t` (1-based), then the scheduler if the loop steps it after `t`.
    /// `slices` (Keras files) are the step's `IndexedSlices` gradients, empty for none; the
    /// torch emulator, whose gradients are always dense, ignores them.
    fn step(
        &mut self,
        t: u64,
        grads: &mut [Vec<T>],
        slices: &[Option<(Vec<usize>, Vec<T>)>],
        params: &mut [Vec<T>],
    ) {
        match self {
            Emulator::Keras { opt, torch_lr } => {
                if let Some(d) = torch_lr {
                    opt.config.learning_rate = keras::LearningRate::Constant(d.groups[0].lr);
                }
                if slices.is_empty() {
                    opt.apply(grads, params);
                } else {
                    let views: Vec<Option<keras::IndexedSlices<'_, T>>> = slices
                        .iter()
                        .map(|s| {
                            s.as_ref()
                                .map(|(indices, values)| keras::IndexedSlices { indices, values })
                        })
                        .collect();
                    opt.apply_with_slices(grads, &views, params);
                }
                if let Some(d) = torch_lr
                    && d.config.steps_after(t) == Some(true)
                {
                    let mut cfgs: Vec<&mut torch::Config> = d.groups.iter_mut().collect();
                    d.scheduler.step(&mut cfgs);
                }
            }
            Emulator::Torch {
                opt,
                clip,
                per_param_clipnorm,
                keras_lr,
                scheduler,
            } => {
                if let Some(lr) = keras_lr {
                    let lr = lr.at::<f64>(t - 1);
                    for c in opt.configs_mut() {
                        c.lr = lr;
                    }
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
                if let Some((s, cfg)) = scheduler
                    && cfg.steps_after(t) == Some(true)
                {
                    s.step(&mut opt.configs_mut());
                }
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
    let vars = traj.variables();
    let target = as_framework.unwrap_or(traj.framework);
    let (class_name, mut emu) = match traj.framework {
        Framework::Keras => {
            let mut k = keras::Config::parse(&traj.optimizer)?;
            k.exclude_from_weight_decay = traj.exclude_from_weight_decay.clone();
            k.backend = traj.keras_backend;
            let name = k.kind.class_name().to_string();
            let emu = match target {
                Framework::Keras => Emulator::Keras {
                    opt: keras::Optimizer::build(k, &vars),
                    torch_lr: None,
                },
                Framework::Torch => {
                    let m = equiv::torch_by_name(&k)?;
                    let groups = match &m.exclude_from_weight_decay {
                        Some(e) => equiv::torch_groups_for_exclusion(
                            &m.config,
                            e,
                            k.backend,
                            &traj.param_order,
                        ),
                        None => vec![(m.config, (0..vars.len()).collect())],
                    };
                    Emulator::Torch {
                        opt: torch::ParamGroups::build(groups, &vars),
                        clip: m.grad_clip,
                        per_param_clipnorm: m.per_param_clipnorm,
                        keras_lr: Some(k.learning_rate),
                        scheduler: None,
                    }
                }
            };
            (name, emu)
        }
        Framework::Torch => {
            let groups = match &traj.param_groups {
                Some(g) => torch::resolve_param_groups(&traj.optimizer, g, &traj.param_order)?,
                None => vec![(
                    torch::Config::parse(&traj.optimizer)?,
                    (0..vars.len()).collect(),
                )],
            };
            let name = groups
                .first()
                .map(|(c, _)| c.kind.class_name().to_string())
                .unwrap_or_default();
            let emu = match target {
                Framework::Torch => {
                    let mut opt = torch::ParamGroups::build(groups, &vars);
                    let scheduler = match &traj.scheduler {
                        Some(cfg) => Some((
                            Scheduler::new(&cfg.kind, &mut opt.configs_mut())?,
                            cfg.clone(),
                        )),
                        None => None,
                    };
                    Emulator::Torch {
                        opt,
                        clip: traj.grad_clip,
                        per_param_clipnorm: None,
                        keras_lr: None,
                        scheduler,
                    }
                }
                Framework::Keras => {
                    if traj.param_groups.as_ref().is_some_and(|g| g.len() > 1) {
                        return Err(NoEquivalent {
                            target: "keras",
                            catalogue: vec![],
                            reason: "a Keras optimizer has one set of hyper-parameters, not \
                                     parameter groups"
                                .into(),
                        }
                        .into());
                    }
                    let base = &groups[0].0;
                    let mut opt_cfg = equiv::keras_by_name(base, traj.grad_clip.as_ref())?;
                    let torch_lr = match &traj.scheduler {
                        Some(cfg) => {
                            let mut g = vec![base.clone()];
                            let mut refs: Vec<&mut torch::Config> = g.iter_mut().collect();
                            let scheduler = Scheduler::new(&cfg.kind, &mut refs)?;
                            Some(TorchLr {
                                scheduler,
                                config: cfg.clone(),
                                groups: g,
                            })
                        }
                        None => None,
                    };
                    if let Some(d) = &torch_lr {
                        opt_cfg.learning_rate = keras::LearningRate::Constant(d.groups[0].lr);
                    }
                    Emulator::Keras {
                        opt: keras::Optimizer::build(opt_cfg, &vars),
                        torch_lr,
                    }
                }
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
        let slices: Vec<Option<(Vec<usize>, Vec<T>)>> = traj
            .slices
            .get(t)
            .map(|step| {
                step.iter()
                    .map(|s| {
                        s.as_ref().map(|s| {
                            let v = s.values.iter().map(|&y| T::of(f64::from(y))).collect();
                            (s.indices.clone(), v)
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        emu.step(t as u64 + 1, &mut g, &slices, &mut params);
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
