//! Keras 3 learning-rate schedules, evaluated per optimizer step at `iterations` (= t − 1
//! during update t) in the dtype of `initial_learning_rate` (float32 in Keras).
//!
//! Source: `keras/src/optimizers/schedules/learning_rate_schedule.py` (each class's
//! `__call__`), called from `BaseOptimizer._get_current_learning_rate`
//! (`keras/src/optimizers/base_optimizer.py`). Catalogue entries 14 and 15.

use serde_json::Value;

use crate::config::{ConfigError, Fields, split};
use crate::real::Real;

/// A serialized `keras.optimizers.schedules.*` object.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// η = η0 · rate^(step/decay_steps), the exponent floored if `staircase`.
    ExponentialDecay {
        initial_learning_rate: f64,
        decay_steps: f64,
        decay_rate: f64,
        staircase: bool,
    },
    /// η = `values[i]` for `boundaries[i−1] < step ≤ boundaries[i]`.
    PiecewiseConstantDecay {
        boundaries: Vec<f64>,
        values: Vec<f64>,
    },
    /// η = (η0 − η_end)·(1 − s/D)^power + η_end, with s = min(step, D), or with
    /// D ← D·ceil(step/D) when `cycle` (multiplier 1 at step 0).
    PolynomialDecay {
        initial_learning_rate: f64,
        decay_steps: f64,
        end_learning_rate: f64,
        power: f64,
        cycle: bool,
    },
    /// η = η0 / (1 + rate · step/decay_steps), the ratio floored if `staircase`.
    InverseTimeDecay {
        initial_learning_rate: f64,
        decay_steps: f64,
        decay_rate: f64,
        staircase: bool,
    },
    /// Without warm-up: s = min(step, D); η = η0·[(1−α)·½(1+cos(π s/D)) + α].
    /// With warm-up (`warmup_target` set): s = min(step, D + W); for s < W,
    /// η = (target − η0)·s/W + η0; otherwise the cosine from `target` at s − W.
    CosineDecay {
        initial_learning_rate: f64,
        decay_steps: f64,
        alpha: f64,
        warmup_target: Option<f64>,
        warmup_steps: f64,
    },
    /// SGDR: restart i has length D·t_mul^i and peak η0·m_mul^i;
    /// η = η0·[(1−α)·½·m_mul^i·(1+cos(π f)) + α] with f the fraction of the current period.
    CosineDecayRestarts {
        initial_learning_rate: f64,
        first_decay_steps: f64,
        t_mul: f64,
        m_mul: f64,
        alpha: f64,
    },
}

const SUPPORTED: &str = "ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, \
                         InverseTimeDecay, CosineDecay, CosineDecayRestarts";

impl Schedule {
    /// Parse `{"module": "keras.optimizers.schedules", "class_name": ..., "config": {...}}`.
    pub fn parse(v: &Value) -> Result<Schedule, ConfigError> {
        let (class, cfg) = split("keras", "config", v)?;
        let mut f = Fields::new("keras", class, cfg);
        f.ignore(&["name"]);
        let s = match class {
            "ExponentialDecay" => Schedule::ExponentialDecay {
                initial_learning_rate: f.req_f64("initial_learning_rate")?,
                decay_steps: f.req_f64("decay_steps")?,
                decay_rate: f.req_f64("decay_rate")?,
                staircase: f.bool_or("staircase", false)?,
            },
            "PiecewiseConstantDecay" => {
                let boundaries = f.f64_list("boundaries")?;
                let values = f.f64_list("values")?;
                if values.len() != boundaries.len() + 1 {
                    return Err(ConfigError::BadValue {
                        framework: "keras",
                        class: class.into(),
                        field: "values".into(),
                        expected: "one more entry than `boundaries`",
                        got: format!(
                            "{} values for {} boundaries",
                            values.len(),
                            boundaries.len()
                        ),
                    });
                }
                Schedule::PiecewiseConstantDecay { boundaries, values }
            }
            "PolynomialDecay" => Schedule::PolynomialDecay {
                initial_learning_rate: f.req_f64("initial_learning_rate")?,
                decay_steps: f.req_f64("decay_steps")?,
                end_learning_rate: f.f64_or("end_learning_rate", 1e-4)?,
                power: f.f64_or("power", 1.0)?,
                cycle: f.bool_or("cycle", false)?,
            },
            "InverseTimeDecay" => Schedule::InverseTimeDecay {
                initial_learning_rate: f.req_f64("initial_learning_rate")?,
                decay_steps: f.req_f64("decay_steps")?,
                decay_rate: f.req_f64("decay_rate")?,
                staircase: f.bool_or("staircase", false)?,
            },
            "CosineDecay" => Schedule::CosineDecay {
                initial_learning_rate: f.req_f64("initial_learning_rate")?,
                decay_steps: f.req_f64("decay_steps")?,
                alpha: f.f64_or("alpha", 0.0)?,
                warmup_target: f.opt_f64("warmup_target")?,
                warmup_steps: f.f64_or("warmup_steps", 0.0)?,
            },
            "CosineDecayRestarts" => Schedule::CosineDecayRestarts {
                initial_learning_rate: f.req_f64("initial_learning_rate")?,
                first_decay_steps: f.req_f64("first_decay_steps")?,
                t_mul: f.f64_or("t_mul", 2.0)?,
                m_mul: f.f64_or("m_mul", 1.0)?,
                alpha: f.f64_or("alpha", 0.0)?,
            },
            other => {
                return Err(ConfigError::UnknownClass {
                    framework: "keras",
                    class: other.into(),
                    supported: SUPPORTED,
                });
            }
        };
        f.finish()?;
        Ok(s)
    }

    /// The learning rate Keras uses at raw iteration count `step` (update t uses step t − 1),
    /// computed in `T` in the schedule's operation order.
    pub fn value<T: Real>(&self, step: u64) -> T {
        let c = T::of;
        let s = c(step as f64);
        let one = c(1.0);
        match *self {
            Schedule::ExponentialDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut p = s / c(decay_steps);
                if staircase {
                    p = p.floor();
                }
                c(initial_learning_rate) * c(decay_rate).powf(p)
            }
            Schedule::PiecewiseConstantDecay {
                ref boundaries,
                ref values,
            } => {
                let st = step as f64;
                let i = boundaries.iter().take_while(|&&b| st > b).count();
                c(values[i])
            }
            Schedule::PolynomialDecay {
                initial_learning_rate,
                decay_steps,
                end_learning_rate,
                power,
                cycle,
            } => {
                let lr0 = c(initial_learning_rate);
                let end = c(end_learning_rate);
                let mut ds = c(decay_steps);
                let mut gs = s;
                if cycle {
                    let mult = if step == 0 {
                        one
                    } else {
                        (gs / c(decay_steps)).ceil()
                    };
                    ds = ds * mult;
                } else {
                    gs = gs.minimum(ds);
                }
                let p = gs / ds;
                (lr0 - end) * (one - p).powf(c(power)) + end
            }
            Schedule::InverseTimeDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut p = s / c(decay_steps);
                if staircase {
                    p = p.floor();
                }
                c(initial_learning_rate) / (one + c(decay_rate) * p)
            }
            Schedule::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
                warmup_target,
                warmup_steps,
            } => {
                let lr0 = c(initial_learning_rate);
                let ds = c(decay_steps);
                let decay = |st: T, from: T| {
                    let frac = st / ds;
                    let cd = c(0.5) * (one + (c(std::f64::consts::PI) * frac).cos());
                    from * (c(1.0 - alpha) * cd + c(alpha))
                };
                match warmup_target {
                    None => decay(s.minimum(ds), lr0),
                    Some(target) => {
                        let target = c(target);
                        let ws = c(warmup_steps);
                        let gs = s.minimum(ds + ws);
                        if gs < ws {
                            (target - lr0) * (gs / ws) + lr0
                        } else {
                            decay(gs - ws, target)
                        }
                    }
                }
            }
            Schedule::CosineDecayRestarts {
                initial_learning_rate,
                first_decay_steps,
                t_mul,
                m_mul,
                alpha,
            } => {
                let tm = c(t_mul);
                let a = c(alpha);
                let mut frac = s / c(first_decay_steps);
                let i_restart;
                if (t_mul - 1.0).abs() < f64::EPSILON {
                    i_restart = frac.floor();
                    frac = frac - i_restart;
                } else {
                    i_restart = ((one - frac * (one - tm)).ln() / tm.ln()).floor();
                    let sum_r = (one - tm.powf(i_restart)) / (one - tm);
                    frac = (frac - sum_r) / tm.powf(i_restart);
                }
                let m_fac = c(m_mul).powf(i_restart);
                let cd = c(0.5) * m_fac * (one + (c(std::f64::consts::PI) * frac).cos());
                let decayed = (one - a) * cd + a;
                c(initial_learning_rate) * decayed
            }
        }
    }
}
