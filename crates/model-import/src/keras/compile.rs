//! `compile_config` (optimizer, loss) → [`TrainingConfig`].
//!
//! The optimizer's `config` object is kept verbatim (`learning_rate` may be a serialized
//! schedule; `clipnorm`, `clipvalue`, `global_clipnorm` stay inside it, as in Keras), so
//! `optim` can read it with Keras's own defaults. A loss is a name (`"mse"`), a serialized
//! loss object (`class_name` + `config` with `from_logits`, `label_smoothing`, `reduction`),
//! or a serialized function; a list or dict of losses (one per output) becomes
//! `LossSpec { class_name: "per_output", config: {"losses": ..., "loss_weights": ...} }`
//! (whose typed reading is an error: the engine builds single losses only).
//!
//! A model saved without `compile` (no or empty `compile_config`) still gets a
//! `TrainingConfig` with the Keras `fit` defaults and the Keras version, with `optimizer` and
//! `loss` set to `None` and a note.

use model_ir::{Framework, LossSpec, OptimizerSpec, TrainingConfig};
use serde_json::{Map, Value, json};

use super::config::show;
use crate::error::ErrorKind;

/// Builds the training configuration from the top-level config object.
pub(super) fn training(
    root: &Map<String, Value>,
    keras_version: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<TrainingConfig, ErrorKind> {
    let mut t = TrainingConfig::defaults(Framework::Keras);
    t.framework_version = keras_version.map(str::to_string);
    notes.push(
        "the .keras archive does not record the Keras backend; the training defaults assume tensorflow"
            .into(),
    );
    let cc = match root.get("compile_config") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) if m.is_empty() => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            return Err(ErrorKind::Malformed(format!(
                "compile_config is {}, expected an object",
                show(other)
            )));
        }
    };
    let Some(cc) = cc else {
        notes.push("the model was saved without compile(): no optimizer or loss".into());
        return Ok(t);
    };
    t.optimizer = match cc.get("optimizer") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(OptimizerSpec {
            class_name: name.clone(),
            config: Value::Object(Map::new()),
        }),
        Some(Value::Object(m)) => {
            let class_name = m
                .get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| ErrorKind::Missing("compile_config.optimizer.class_name".into()))?;
            Some(OptimizerSpec {
                class_name: class_name.to_string(),
                config: m
                    .get("config")
                    .cloned()
                    .unwrap_or(Value::Object(Map::new())),
            })
        }
        Some(other) => {
            return Err(ErrorKind::Malformed(format!(
                "compile_config.optimizer is {}",
                show(other)
            )));
        }
    };
    let loss_weights = cc.get("loss_weights").filter(|v| !v.is_null());
    t.loss = match cc.get("loss") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::Array(_) | Value::Object(_))) if !is_serialized_object(v) => {
            notes.push(format!(
                "one loss per output: {}{}",
                show(v),
                loss_weights.map_or(String::new(), |w| format!(" with loss_weights {}", show(w)))
            ));
            Some(LossSpec::new(
                Framework::Keras,
                "per_output".into(),
                json!({ "losses": v, "loss_weights": loss_weights }),
            ))
        }
        Some(v) => {
            if let Some(w) = loss_weights {
                notes.push(format!("the loss is scaled by loss_weights {}", show(w)));
            }
            Some(single_loss(v)?)
        }
    };
    if cc.get("jit_compile").and_then(Value::as_bool) == Some(true) {
        notes.push(
            "compiled with jit_compile=True (XLA may fuse and reorder float operations)".into(),
        );
    }
    Ok(t)
}

/// Whether a value is one serialized Keras object (`{"class_name": ..., "config": ...}`).
fn is_serialized_object(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.contains_key("class_name"))
}

fn single_loss(v: &Value) -> Result<LossSpec, ErrorKind> {
    match v {
        Value::String(name) => Ok(LossSpec::new(
            Framework::Keras,
            name.clone(),
            Value::Object(Map::new()),
        )),
        Value::Object(m) => {
            let class_name = m
                .get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| ErrorKind::Missing("compile_config.loss.class_name".into()))?;
            match (class_name, m.get("config")) {
                // A plain function: {"class_name": "function", "config": "mean_squared_error"}.
                ("function", Some(Value::String(f))) => Ok(LossSpec::new(
                    Framework::Keras,
                    f.clone(),
                    Value::Object(Map::new()),
                )),
                (_, cfg) => Ok(LossSpec::new(
                    Framework::Keras,
                    class_name.to_string(),
                    cfg.cloned().unwrap_or(Value::Object(Map::new())),
                )),
            }
        }
        other => Err(ErrorKind::Malformed(format!(
            "compile_config.loss is {}",
            show(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use model_ir::{KerasLoss, KerasReduction, TypedLoss};

    use super::*;

    fn loss_of(loss: Value) -> LossSpec {
        let root = json!({"compile_config": {"optimizer": "adam", "loss": loss}});
        let mut notes = Vec::new();
        training(root.as_object().unwrap(), Some("3.10.0"), &mut notes)
            .unwrap()
            .loss
            .unwrap()
    }

    #[test]
    fn the_loss_is_typed_once() {
        let l = loss_of(
            json!({"module": "keras.losses", "class_name": "CategoricalCrossentropy",
            "config": {"from_logits": true, "label_smoothing": 0.1, "reduction": "sum"}}),
        );
        assert_eq!(l.class_name, "CategoricalCrossentropy");
        assert_eq!(
            l.typed,
            TypedLoss::Keras(Ok(KerasLoss::CategoricalCrossentropy {
                from_logits: true,
                label_smoothing: 0.1,
                axis: -1,
                reduction: KerasReduction::Sum,
            }))
        );
        let l = loss_of(json!("mse"));
        assert_eq!(
            l.typed,
            TypedLoss::Keras(Ok(KerasLoss::MeanSquaredError {
                reduction: KerasReduction::SumOverBatchSize
            }))
        );
        let l = loss_of(json!({"class_name": "function", "config": "huber"}));
        assert_eq!(l.class_name, "huber");
        assert!(matches!(
            l.typed,
            TypedLoss::Keras(Ok(KerasLoss::Huber { delta: 1.0, .. }))
        ));
        let l = loss_of(json!(["mse", "mae"]));
        assert_eq!(l.class_name, "per_output");
        assert_eq!(
            l.typed.error().map(ToString::to_string).as_deref(),
            Some("`per_output`: the Keras loss `per_output` is not implemented")
        );
    }
}
