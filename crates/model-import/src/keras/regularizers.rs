//! Keras weight regularizers (`kernel_regularizer`, `bias_regularizer`, ...) → the
//! [`WeightRegularizer`] of each variable they are attached to, which [`super::graph`] files
//! under the parameter's IR name in `TrainingConfig::regularizers`.
//!
//! Forms (`keras/src/regularizers/__init__.py` `get`, `regularizers.py`):
//! - a serialized object `{"module": "keras.regularizers", "class_name": "L2", "config":
//!   {"l2": 0.01}}`: `L1(l1=0.01)`, `L2(l2=0.01)`, `L1L2(l1=0.0, l2=0.0)`, a `null` factor
//!   taking that default; the class may also be spelled `l1`, `l2`, `l1l2`;
//! - a string, looked up in the same table and constructed with the defaults: `"l1"`,
//!   `"l2"` (0.01) and `"l1l2"` / `"L1L2"` (0 and 0). `"l1_l2"` is not in Keras 3's table
//!   (the `L1L2` docstring says it means 0.01 and 0.01, but `get` raises `ValueError`), so it
//!   is an error here too.
//!
//! Any other class (`OrthogonalRegularizer`, custom ones) is `Unsupported`. Keras penalizes
//! only `trainable_weights` (`Layer._get_regularization_losses`), so a regularizer on a
//! frozen variable is dropped with a note. `activity_regularizer` penalizes the layer's output,
//! which the engine does not model: a note.

use model_ir::WeightRegularizer;
use serde_json::Value;

use super::config::{Cfg, show};
use super::layers::VarGroup;
use crate::error::ErrorKind;

/// A regularizer attached to one variable, with what the notes say about it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Attached {
    pub(super) value: WeightRegularizer,
    /// `layer `dense` (Dense): kernel_regularizer L2({"l2":0.01})`.
    pub(super) describe: String,
}

/// The Keras variable (`VarSpec::name`) a `*_regularizer` argument of `class` applies to.
fn variable_of(class: &str, key: &str) -> Option<&'static str> {
    Some(match key {
        "kernel_regularizer" => "kernel",
        // DepthwiseConv stores its depthwise kernel as `kernel`; SeparableConv as
        // `depthwise_kernel`.
        "depthwise_regularizer" if class.starts_with("DepthwiseConv") => "kernel",
        "depthwise_regularizer" => "depthwise_kernel",
        "pointwise_regularizer" => "pointwise_kernel",
        "recurrent_regularizer" => "recurrent_kernel",
        "bias_regularizer" => "bias",
        "gamma_regularizer" => "gamma",
        "beta_regularizer" => "beta",
        "embeddings_regularizer" => "embeddings",
        _ => return None,
    })
}

/// How the notes show a regularizer: `L2({"l2":0.01})`, `L1L2`, `"l2"`.
fn what(v: &Value) -> String {
    v.get("class_name")
        .and_then(Value::as_str)
        .map(|cls| match v.get("config") {
            Some(cfg) if cfg.as_object().is_some_and(|m| !m.is_empty()) => {
                format!("{cls}({})", show(cfg))
            }
            _ => cls.to_string(),
        })
        .unwrap_or_else(|| show(v))
}

/// Parses one serialized regularizer (`key` names the argument, for errors).
pub(super) fn parse(c: &Cfg<'_>, key: &str, v: &Value) -> Result<WeightRegularizer, ErrorKind> {
    let unsupported = |class: &str| {
        c.unsupported(format!(
            "{key} {class} (only L1, L2 and L1L2 regularizers are supported)"
        ))
    };
    let (class, cfg) = match v {
        Value::String(s) => (s.as_str(), None),
        Value::Object(m) => {
            let class = m
                .get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| c.malformed(format!("{key} {} has no class_name", show(v))))?;
            let cfg = match m.get("config") {
                None | Some(Value::Null) => None,
                Some(Value::Object(cfg)) => Some(cfg),
                Some(other) => {
                    return Err(c.malformed(format!("{key} config {}", show(other))));
                }
            };
            (class, cfg)
        }
        other => return Err(c.malformed(format!("{key} is {}", show(other)))),
    };
    // `ALL_OBJECTS_DICT`: the class names and their snake_case forms.
    let (l1_default, l2_default, keys): (f64, f64, &[&str]) = match class {
        "L1" | "l1" => (0.01, 0.0, &["l1"]),
        "L2" | "l2" => (0.0, 0.01, &["l2"]),
        "L1L2" | "l1l2" => (0.0, 0.0, &["l1", "l2"]),
        "l1_l2" => {
            return Err(c.malformed(format!(
                "{key} \"l1_l2\" (Keras 3 cannot interpret it: the string for L1L2 is \"l1l2\")"
            )));
        }
        other => return Err(unsupported(other)),
    };
    let factor = |name: &str, default: f64| -> Result<f64, ErrorKind> {
        let Some(x) = cfg.and_then(|m| m.get(name)).filter(|x| !x.is_null()) else {
            return Ok(default);
        };
        // `validate_float_arg`: a non-negative finite number.
        x.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| {
                c.malformed(format!(
                    "{key} {class}: `{name}` is {}, expected a non-negative number",
                    show(x)
                ))
            })
    };
    let l1 = if keys.contains(&"l1") {
        factor("l1", l1_default)?
    } else {
        0.0
    };
    let l2 = if keys.contains(&"l2") {
        factor("l2", l2_default)?
    } else {
        0.0
    };
    if let Some(extra) = cfg.and_then(|m| m.keys().find(|k| !keys.contains(&k.as_str()))) {
        return Err(c.malformed(format!("{key} {class}: unknown argument `{extra}`")));
    }
    Ok(WeightRegularizer { l1, l2 })
}

/// Attaches the layer's weight regularizers to its variables in `groups` (all built from
/// this config) and notes the activity regularizer and arguments with no variable to act on.
pub(super) fn attach(
    c: &Cfg<'_>,
    groups: &mut [VarGroup],
    notes: &mut Vec<String>,
) -> Result<(), ErrorKind> {
    for (key, v) in c.map {
        if !key.ends_with("_regularizer") || v.is_null() {
            continue;
        }
        let describe = format!("layer `{}` ({}): {key} {}", c.layer, c.class, what(v));
        if key == "activity_regularizer" {
            notes.push(format!(
                "{describe} adds a penalty on the layer's output to the loss; the engine does not model it"
            ));
            continue;
        }
        let Some(var) = variable_of(c.class, key) else {
            return Err(c.unsupported(format!(
                "{key} {} (no variable of the layer is known to take it)",
                what(v)
            )));
        };
        let value = parse(c, key, v)?;
        let mut found = false;
        for spec in groups.iter_mut().flat_map(|g| g.vars.iter_mut()) {
            if spec.name == var {
                spec.regularizer = Some(Attached {
                    value,
                    describe: describe.clone(),
                });
                found = true;
            }
        }
        if !found {
            notes.push(format!(
                "{describe}: the layer has no `{var}` variable; Keras ignores it"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(v: Value, expected: Result<(f64, f64), &str>) {
        let map = serde_json::Map::new();
        let c = Cfg::new(&map, "d", "Dense");
        let got = parse(&c, "kernel_regularizer", &v)
            .map(|r| (r.l1, r.l2))
            .map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(str::to_string), "{v}");
    }

    #[test]
    fn serialized_objects() {
        let obj = |class: &str, cfg: Value| json!({"module": "keras.regularizers", "class_name": class, "config": cfg, "registered_name": null});
        check(obj("L2", json!({"l2": 0.001})), Ok((0.0, 0.001)));
        check(obj("L1", json!({"l1": 0.5})), Ok((0.5, 0.0)));
        check(obj("L1L2", json!({"l1": 0.1, "l2": 0.2})), Ok((0.1, 0.2)));
        check(obj("L1L2", json!({"l2": 0.2})), Ok((0.0, 0.2)));
        check(obj("L2", json!({"l2": null})), Ok((0.0, 0.01)));
        check(obj("L1", json!({})), Ok((0.01, 0.0)));
        check(
            json!({"class_name": "l2", "config": {"l2": 0.3}}),
            Ok((0.0, 0.3)),
        );
    }

    #[test]
    fn strings_take_the_constructor_defaults() {
        check(json!("l2"), Ok((0.0, 0.01)));
        check(json!("L1"), Ok((0.01, 0.0)));
        check(json!("l1l2"), Ok((0.0, 0.0)));
        check(json!("L1L2"), Ok((0.0, 0.0)));
    }

    #[test]
    fn rejected() {
        check(
            json!({"class_name": "OrthogonalRegularizer", "config": {"factor": 0.01, "mode": "rows"}}),
            Err(
                "unsupported: layer `d` (Dense): kernel_regularizer OrthogonalRegularizer (only L1, L2 and L1L2 regularizers are supported)",
            ),
        );
        check(
            json!("l1_l2"),
            Err(
                "malformed: layer `d` (Dense): kernel_regularizer \"l1_l2\" (Keras 3 cannot interpret it: the string for L1L2 is \"l1l2\")",
            ),
        );
        check(
            json!({"class_name": "L2", "config": {"l2": -1.0}}),
            Err(
                "malformed: layer `d` (Dense): kernel_regularizer L2: `l2` is -1.0, expected a non-negative number",
            ),
        );
        check(
            json!({"class_name": "L2", "config": {"l1": 0.1}}),
            Err("malformed: layer `d` (Dense): kernel_regularizer L2: unknown argument `l1`"),
        );
    }
}
