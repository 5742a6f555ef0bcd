//! Keras weight initializers (`kernel_initializer`, `gamma_initializer`, ...) and weight
//! constraints (`kernel_constraint`, ...) → the [`Initializer`] and [`Constraint`] of each
//! variable they belong to; [`super::graph`] files them under the parameter's IR name
//! (`Model::initializers`, `TrainingConfig::constraints`).
//!
//! Forms (`keras/src/initializers/__init__.py` and `keras/src/constraints/__init__.py` `get`):
//! a serialized object `{"class_name": "Orthogonal", "config": {"gain": 1.414, "seed": 1}}`
//! (Keras 3 also spells the class `OrthogonalInitializer`, `IdentityInitializer`) or a string
//! (`"glorot_uniform"`, `"max_norm"`) constructed with the class's defaults. The classes and
//! their defaults (`initializers/random_initializers.py`, `constant_initializers.py`):
//! `RandomNormal(0, 0.05)`, `RandomUniform(-0.05, 0.05)`, `TruncatedNormal(0, 0.05)`,
//! `Constant(0)`, `VarianceScaling(1, "fan_in", "truncated_normal")` and the classes built on it
//! (`Glorot*` scale 1 fan_avg, `He*` scale 2 fan_in, `Lecun*` scale 1 fan_in; `*Normal` means
//! truncated normal), `Orthogonal(gain=1)`, `Identity(gain=1)`; Keras 2's `"normal"`
//! distribution is the truncated normal. Constraints (`constraints.py`): `MaxNorm(2, axis=0)`,
//! `NonNeg`, `UnitNorm(axis=0)`, `MinMaxNorm(0, 1, rate=1, axis=0)`; a negative axis counts
//! from the variable's last axis, `axis: null` takes the norm over every axis.
//!
//! An initializer class this reader does not know is kept as `Unknown` with its name; an
//! unknown constraint class too (the simulation refuses to train such a model: it cannot apply
//! the projection exactly).

use model_ir::{Constraint, FanMode, InitKind, Initializer, ScalingDist};
use serde_json::{Map, Value};

use super::config::{Cfg, show};
use super::layers::VarGroup;
use crate::error::ErrorKind;

/// The Keras variable (`VarSpec::name`) an argument `<what>_initializer` /
/// `<what>_constraint` of `class` applies to.
fn variable_of(class: &str, what: &str) -> Option<&'static str> {
    Some(match what {
        "kernel" => "kernel",
        "depthwise" if class.starts_with("DepthwiseConv") => "kernel",
        "depthwise" => "depthwise_kernel",
        "pointwise" => "pointwise_kernel",
        "recurrent" => "recurrent_kernel",
        "bias" => "bias",
        "gamma" => "gamma",
        "beta" => "beta",
        "moving_mean" => "moving_mean",
        "moving_variance" => "moving_variance",
        "embeddings" => "embeddings",
        _ => return None,
    })
}

/// A serialized object's class name and config (`None` for a string or a null config).
type ClassConfig<'a> = (&'a str, Option<&'a Map<String, Value>>);

/// Class name and config object of a serialized Keras object or string.
fn class_and_config<'a>(
    c: &Cfg<'_>,
    key: &str,
    v: &'a Value,
) -> Result<ClassConfig<'a>, ErrorKind> {
    match v {
        Value::String(s) => Ok((s.as_str(), None)),
        Value::Object(m) => {
            let class = m
                .get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| c.malformed(format!("{key} {} has no class_name", show(v))))?;
            match m.get("config") {
                None | Some(Value::Null) => Ok((class, None)),
                Some(Value::Object(cfg)) => Ok((class, Some(cfg))),
                Some(other) => Err(c.malformed(format!("{key} config {}", show(other)))),
            }
        }
        other => Err(c.malformed(format!("{key} is {}", show(other)))),
    }
}

/// A float argument (`null` or absent: `default`).
fn float(
    c: &Cfg<'_>,
    key: &str,
    cfg: Option<&Map<String, Value>>,
    name: &str,
    default: f64,
) -> Result<f64, ErrorKind> {
    match cfg.and_then(|m| m.get(name)).filter(|x| !x.is_null()) {
        None => Ok(default),
        Some(x) => x.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
            c.malformed(format!("{key}: `{name}` is {}, expected a number", show(x)))
        }),
    }
}

/// Parses one serialized initializer.
pub(super) fn parse_initializer(
    c: &Cfg<'_>,
    key: &str,
    v: &Value,
) -> Result<Initializer, ErrorKind> {
    let (class, cfg) = class_and_config(c, key, v)?;
    let f = |name: &str, default: f64| float(c, key, cfg, name, default);
    let vs = |scale: f64, mode: FanMode, distribution: ScalingDist| InitKind::VarianceScaling {
        scale,
        mode,
        distribution,
    };
    use FanMode::*;
    use ScalingDist::*;
    // Keras 3's `input_axes` / `output_axes` change which axes count as fans: not read here.
    let custom_axes = ["input_axes", "output_axes"]
        .iter()
        .any(|k| cfg.and_then(|m| m.get(*k)).is_some_and(|v| !v.is_null()));
    let kind = match class {
        "Zeros" | "zeros" => InitKind::Zeros,
        "Ones" | "ones" => InitKind::Ones,
        "Constant" | "constant" => InitKind::Constant {
            value: f("value", 0.0)?,
        },
        "RandomNormal" | "random_normal" | "normal" => InitKind::RandomNormal {
            mean: f("mean", 0.0)?,
            stddev: f("stddev", 0.05)?,
        },
        "TruncatedNormal" | "truncated_normal" => InitKind::TruncatedNormal {
            mean: f("mean", 0.0)?,
            stddev: f("stddev", 0.05)?,
        },
        "RandomUniform" | "random_uniform" | "uniform" => InitKind::RandomUniform {
            minval: f("minval", -0.05)?,
            maxval: f("maxval", 0.05)?,
        },
        _ if custom_axes => InitKind::Unknown,
        "GlorotUniform" | "glorot_uniform" => vs(1.0, FanAvg, Uniform),
        "GlorotNormal" | "glorot_normal" => vs(1.0, FanAvg, TruncatedNormal),
        "HeUniform" | "he_uniform" => vs(2.0, FanIn, Uniform),
        "HeNormal" | "he_normal" => vs(2.0, FanIn, TruncatedNormal),
        "LecunUniform" | "lecun_uniform" => vs(1.0, FanIn, Uniform),
        "LecunNormal" | "lecun_normal" => vs(1.0, FanIn, TruncatedNormal),
        "VarianceScaling" | "variance_scaling" => {
            let text = |name: &str, default: &'static str| -> Result<String, ErrorKind> {
                match cfg.and_then(|m| m.get(name)).filter(|x| !x.is_null()) {
                    None => Ok(default.to_string()),
                    Some(Value::String(s)) => Ok(s.to_lowercase()),
                    Some(x) => Err(c.malformed(format!("{key}: `{name}` is {}", show(x)))),
                }
            };
            let mode = match text("mode", "fan_in")?.as_str() {
                "fan_in" => FanIn,
                "fan_out" => FanOut,
                "fan_avg" => FanAvg,
                other => return Err(c.malformed(format!("{key}: mode \"{other}\""))),
            };
            let distribution = match text("distribution", "truncated_normal")?.as_str() {
                // Keras 2's "normal" is the truncated normal.
                "truncated_normal" | "normal" => TruncatedNormal,
                "untruncated_normal" => UntruncatedNormal,
                "uniform" => Uniform,
                other => return Err(c.malformed(format!("{key}: distribution \"{other}\""))),
            };
            let scale = f("scale", 1.0)?;
            if scale <= 0.0 {
                return Err(c.malformed(format!("{key}: scale {scale} is not positive")));
            }
            vs(scale, mode, distribution)
        }
        "Orthogonal" | "OrthogonalInitializer" | "orthogonal" => InitKind::Orthogonal {
            gain: f("gain", 1.0)?,
        },
        "Identity" | "IdentityInitializer" | "identity" => InitKind::Identity {
            gain: f("gain", 1.0)?,
        },
        _ => InitKind::Unknown,
    };
    let seed = cfg.and_then(|m| m.get("seed")).and_then(Value::as_i64);
    let class = match class {
        "OrthogonalInitializer" => "Orthogonal",
        "IdentityInitializer" => "Identity",
        other => other,
    };
    Ok(Initializer {
        class: class.to_string(),
        kind,
        seed,
    })
}

/// A constraint's axis argument resolved against a variable of `rank` axes.
fn axes_of(
    c: &Cfg<'_>,
    key: &str,
    cfg: Option<&Map<String, Value>>,
    rank: usize,
) -> Result<Vec<usize>, ErrorKind> {
    let resolve = |a: i64| -> Result<usize, ErrorKind> {
        let r = rank as i64;
        let x = if a < 0 { r + a } else { a };
        if (0..r).contains(&x) {
            Ok(x as usize)
        } else {
            Err(c.malformed(format!(
                "{key}: axis {a} is out of range for a variable of rank {rank}"
            )))
        }
    };
    let mut axes = match cfg.and_then(|m| m.get("axis")) {
        // Absent: the class default 0.
        None => vec![resolve(0)?],
        Some(Value::Null) => (0..rank).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|x| {
                x.as_i64()
                    .ok_or_else(|| c.malformed(format!("{key}: axis {}", show(x))))
                    .and_then(resolve)
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(x) => vec![
            x.as_i64()
                .ok_or_else(|| c.malformed(format!("{key}: axis {}", show(x))))
                .and_then(resolve)?,
        ],
    };
    axes.sort_unstable();
    axes.dedup();
    Ok(axes)
}

/// Parses one serialized constraint for a variable of `rank` axes.
pub(super) fn parse_constraint(
    c: &Cfg<'_>,
    key: &str,
    v: &Value,
    rank: usize,
) -> Result<Constraint, ErrorKind> {
    let (class, cfg) = class_and_config(c, key, v)?;
    let f = |name: &str, default: f64| float(c, key, cfg, name, default);
    Ok(match class {
        "MaxNorm" | "max_norm" => Constraint::MaxNorm {
            max_value: f("max_value", 2.0)?,
            axes: axes_of(c, key, cfg, rank)?,
        },
        "UnitNorm" | "unit_norm" => Constraint::UnitNorm {
            axes: axes_of(c, key, cfg, rank)?,
        },
        "NonNeg" | "non_neg" => Constraint::NonNeg,
        "MinMaxNorm" | "min_max_norm" => Constraint::MinMaxNorm {
            min_value: f("min_value", 0.0)?,
            max_value: f("max_value", 1.0)?,
            rate: f("rate", 1.0)?,
            axes: axes_of(c, key, cfg, rank)?,
        },
        other => Constraint::Unknown {
            class: other.to_string(),
        },
    })
}

/// Attaches the layer's initializers and constraints to its variables in `groups` (all built
/// from this config). LSTM's `unit_forget_bias=True` overrides `bias_initializer` (ones in the
/// forget block), so that bias records no initializer.
pub(super) fn attach(
    c: &Cfg<'_>,
    groups: &mut [VarGroup],
    notes: &mut Vec<String>,
) -> Result<(), ErrorKind> {
    let forget_bias = c.get("unit_forget_bias").and_then(Value::as_bool) == Some(true);
    for (key, v) in c.map {
        if v.is_null() {
            continue;
        }
        let (what, is_init) = if let Some(w) = key.strip_suffix("_initializer") {
            (w, true)
        } else if let Some(w) = key.strip_suffix("_constraint") {
            (w, false)
        } else {
            continue;
        };
        let Some(var) = variable_of(c.class, what) else {
            if !is_init {
                return Err(c.unsupported(format!(
                    "{key} {} (no variable of the layer is known to take it)",
                    show(v)
                )));
            }
            continue;
        };
        if is_init && var == "bias" && forget_bias {
            continue;
        }
        let mut found = false;
        for spec in groups.iter_mut().flat_map(|g| g.vars.iter_mut()) {
            if spec.name != var {
                continue;
            }
            found = true;
            if is_init {
                spec.initializer = Some(parse_initializer(c, key, v)?);
            } else {
                let k = parse_constraint(c, key, v, spec.shape.len())?;
                notes.push(format!(
                    "layer `{}` ({}): {key} {} is applied to `{var}` after every optimizer step",
                    c.layer,
                    c.class,
                    k.display()
                ));
                spec.constraint = Some(k);
            }
        }
        if !found && !is_init {
            notes.push(format!(
                "layer `{}` ({}): {key} {}: the layer has no `{var}` variable; Keras ignores it",
                c.layer,
                c.class,
                show(v)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn initializers_with_arguments_and_defaults() {
        let map = serde_json::Map::new();
        let c = Cfg::new(&map, "d", "Dense");
        let o = parse_initializer(
            &c,
            "kernel_initializer",
            &json!({"module": "keras.initializers", "class_name": "OrthogonalInitializer", "config": {"gain": 1.414, "seed": 7}}),
        )
        .unwrap();
        assert_eq!(o.kind, InitKind::Orthogonal { gain: 1.414 });
        assert_eq!(o.seed, Some(7));
        assert_eq!(o.display(), "Orthogonal(gain=1.414)");
        let h = parse_initializer(&c, "kernel_initializer", &json!("he_normal")).unwrap();
        assert_eq!(
            h.kind,
            InitKind::VarianceScaling {
                scale: 2.0,
                mode: FanMode::FanIn,
                distribution: ScalingDist::TruncatedNormal
            }
        );
        let n = parse_initializer(
            &c,
            "gamma_initializer",
            &json!({"class_name": "RandomNormal", "config": {"mean": 1.0, "stddev": 0.02}}),
        )
        .unwrap();
        assert_eq!(
            n.kind,
            InitKind::RandomNormal {
                mean: 1.0,
                stddev: 0.02
            }
        );
        let u =
            parse_initializer(&c, "kernel_initializer", &json!({"class_name": "MyInit"})).unwrap();
        assert_eq!(u.kind, InitKind::Unknown);
        assert!(u.display().starts_with("MyInit"));
    }

    #[test]
    fn constraints_resolve_axes() {
        let map = serde_json::Map::new();
        let c = Cfg::new(&map, "conv", "Conv2D");
        let k = parse_constraint(
            &c,
            "kernel_constraint",
            &json!({"class_name": "MaxNorm", "config": {"max_value": 3.0, "axis": [0, 1, -2]}}),
            4,
        )
        .unwrap();
        assert_eq!(
            k,
            Constraint::MaxNorm {
                max_value: 3.0,
                axes: vec![0, 1, 2]
            }
        );
        let d = parse_constraint(&c, "kernel_constraint", &json!("max_norm"), 2).unwrap();
        assert_eq!(
            d,
            Constraint::MaxNorm {
                max_value: 2.0,
                axes: vec![0]
            }
        );
        assert!(
            parse_constraint(
                &c,
                "kernel_constraint",
                &json!({"class_name": "UnitNorm", "config": {"axis": 5}}),
                2
            )
            .is_err()
        );
        assert_eq!(
            parse_constraint(&c, "kernel_constraint", &json!({"class_name": "Clip"}), 2).unwrap(),
            Constraint::Unknown {
                class: "Clip".into()
            }
        );
    }
}
