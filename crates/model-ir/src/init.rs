//! Keras weight initializers and constraints as the layer config records them, typed with
//! their arguments (`keras/src/initializers/*.py`, `keras/src/constraints/constraints.py`).
//!
//! Initializers are what the Keras side's initial weights were drawn from (filed per
//! parameter in `Model::initializers`); constraints are applied by the Keras optimizer to the
//! variable after every update (filed per parameter in `TrainingConfig::constraints`).
//! A class the importer does not know is kept with its name (`Unknown`), never guessed.

use serde::Serialize;

/// How `VarianceScaling` counts the fans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FanMode {
    FanIn,
    FanOut,
    FanAvg,
}

/// `VarianceScaling`'s distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingDist {
    /// Normal truncated at ±2σ, σ = √scale / 0.87962566103423978.
    TruncatedNormal,
    /// Normal, σ = √scale.
    UntruncatedNormal,
    /// Uniform on ±√(3·scale).
    Uniform,
}

/// A Keras initializer with every argument resolved (Keras's defaults where the config omits
/// one). `class` keeps the name the config used, for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Initializer {
    /// The class or string the config names (`Orthogonal`, `glorot_uniform`).
    pub class: String,
    pub kind: InitKind,
    /// The `seed` argument, when the config sets one.
    pub seed: Option<i64>,
}

/// The typed initializer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum InitKind {
    Zeros,
    Ones,
    Constant {
        value: f64,
    },
    RandomNormal {
        mean: f64,
        stddev: f64,
    },
    /// Normal truncated at mean ± 2·stddev.
    TruncatedNormal {
        mean: f64,
        stddev: f64,
    },
    RandomUniform {
        minval: f64,
        maxval: f64,
    },
    /// `VarianceScaling` and the classes defined through it (`GlorotUniform`, `HeNormal`,
    /// `LecunUniform`, ...): `class` says which.
    VarianceScaling {
        scale: f64,
        mode: FanMode,
        distribution: ScalingDist,
    },
    Orthogonal {
        gain: f64,
    },
    Identity {
        gain: f64,
    },
    /// A class this reader does not know (custom initializers): its name only.
    Unknown,
}

impl Initializer {
    /// `Orthogonal(gain=1.414)`, `GlorotUniform`, `RandomNormal(mean=1, stddev=0.02)`: the
    /// class with the arguments that differ from the class's own defaults.
    pub fn display(&self) -> String {
        let g = |x: f64| crate::init::num(x);
        let args: Vec<String> = match (&self.kind, self.class.as_str()) {
            (InitKind::Constant { value }, _) => vec![format!("value={}", g(*value))],
            (InitKind::RandomNormal { mean, stddev }, _)
            | (InitKind::TruncatedNormal { mean, stddev }, _) => {
                vec![
                    format!("mean={}", g(*mean)),
                    format!("stddev={}", g(*stddev)),
                ]
            }
            (InitKind::RandomUniform { minval, maxval }, _) => {
                vec![
                    format!("minval={}", g(*minval)),
                    format!("maxval={}", g(*maxval)),
                ]
            }
            (
                InitKind::VarianceScaling {
                    scale,
                    mode,
                    distribution,
                },
                "VarianceScaling" | "variance_scaling",
            ) => vec![
                format!("scale={}", g(*scale)),
                format!("mode='{}'", mode.name()),
                format!("distribution='{}'", distribution.name()),
            ],
            (InitKind::Orthogonal { gain }, _) | (InitKind::Identity { gain }, _)
                if (*gain - 1.0).abs() > 1e-12 =>
            {
                vec![format!("gain={}", g(*gain))]
            }
            _ => vec![],
        };
        let mut s = self.class.clone();
        if !args.is_empty() {
            s = format!("{s}({})", args.join(", "));
        }
        if matches!(self.kind, InitKind::Unknown) {
            s = format!("{s} (custom initializer: not read)");
        }
        s
    }
}

impl FanMode {
    pub fn name(self) -> &'static str {
        match self {
            FanMode::FanIn => "fan_in",
            FanMode::FanOut => "fan_out",
            FanMode::FanAvg => "fan_avg",
        }
    }
}

impl ScalingDist {
    pub fn name(self) -> &'static str {
        match self {
            ScalingDist::TruncatedNormal => "truncated_normal",
            ScalingDist::UntruncatedNormal => "untruncated_normal",
            ScalingDist::Uniform => "uniform",
        }
    }
}

/// A Keras weight constraint, applied to the variable after every optimizer update. Axes are
/// the Keras variable's own axes (non-negative, sorted).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Constraint {
    /// `w · clip(‖w‖, 0, max_value) / (ε + ‖w‖)`, norms over `axes` (keepdims).
    MaxNorm { max_value: f64, axes: Vec<usize> },
    /// `w / (ε + ‖w‖)`.
    UnitNorm { axes: Vec<usize> },
    /// `max(w, 0)`.
    NonNeg,
    /// `w · (rate·clip(‖w‖, min, max) + (1 − rate)·‖w‖) / (ε + ‖w‖)`.
    MinMaxNorm {
        min_value: f64,
        max_value: f64,
        rate: f64,
        axes: Vec<usize>,
    },
    /// A class this reader does not know: its name.
    Unknown { class: String },
}

impl Constraint {
    /// `MaxNorm(max_value=3, axis=0)`.
    pub fn display(&self) -> String {
        let g = num;
        let ax = |a: &[usize]| match a {
            [one] => format!("axis={one}"),
            many => format!(
                "axis=[{}]",
                many.iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        match self {
            Constraint::MaxNorm { max_value, axes } => {
                format!("MaxNorm(max_value={}, {})", g(*max_value), ax(axes))
            }
            Constraint::UnitNorm { axes } => format!("UnitNorm({})", ax(axes)),
            Constraint::NonNeg => "NonNeg()".into(),
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axes,
            } => format!(
                "MinMaxNorm(min_value={}, max_value={}, rate={}, {})",
                g(*min_value),
                g(*max_value),
                g(*rate),
                ax(axes)
            ),
            Constraint::Unknown { class } => format!("{class} (custom constraint: not read)"),
        }
    }

    /// The axes the norm is taken over (empty for element-wise constraints).
    pub fn axes(&self) -> &[usize] {
        match self {
            Constraint::MaxNorm { axes, .. }
            | Constraint::UnitNorm { axes }
            | Constraint::MinMaxNorm { axes, .. } => axes,
            Constraint::NonNeg | Constraint::Unknown { .. } => &[],
        }
    }

    /// The same constraint with its norm axes renamed by `map` (Keras axis → other layout's
    /// axis); `None` when an axis has no image.
    pub fn with_axes(&self, map: impl Fn(usize) -> Option<usize>) -> Option<Constraint> {
        let remap = |a: &[usize]| -> Option<Vec<usize>> {
            let mut v: Vec<usize> = a.iter().map(|&x| map(x)).collect::<Option<_>>()?;
            v.sort_unstable();
            Some(v)
        };
        Some(match self {
            Constraint::MaxNorm { max_value, axes } => Constraint::MaxNorm {
                max_value: *max_value,
                axes: remap(axes)?,
            },
            Constraint::UnitNorm { axes } => Constraint::UnitNorm { axes: remap(axes)? },
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axes,
            } => Constraint::MinMaxNorm {
                min_value: *min_value,
                max_value: *max_value,
                rate: *rate,
                axes: remap(axes)?,
            },
            other => other.clone(),
        })
    }
}

/// A number as a config shows it: `1.414`, `0.02`, `3`.
pub(crate) fn num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        let s = format!("{x:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_with_arguments() {
        let o = Initializer {
            class: "Orthogonal".into(),
            kind: InitKind::Orthogonal { gain: 1.414 },
            seed: None,
        };
        assert_eq!(o.display(), "Orthogonal(gain=1.414)");
        let n = Initializer {
            class: "RandomNormal".into(),
            kind: InitKind::RandomNormal {
                mean: 1.0,
                stddev: 0.02,
            },
            seed: Some(3),
        };
        assert_eq!(n.display(), "RandomNormal(mean=1, stddev=0.02)");
        let c = Constraint::MaxNorm {
            max_value: 3.0,
            axes: vec![0, 1, 2],
        };
        assert_eq!(c.display(), "MaxNorm(max_value=3, axis=[0, 1, 2])");
        let t = c.with_axes(|a| Some(a + 1)).unwrap();
        assert_eq!(t.axes(), &[1, 2, 3]);
    }
}
