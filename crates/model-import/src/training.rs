//! Bundle training configs: Keras `fit.json` and PyTorch `train.json`.
//!
//! `fit.json`: every field optional with Keras `fit`'s default
//! (`{"batch_size": 32, "epochs": 5, "shuffle": true, "validation_split": 0.0,
//! "class_weight": null, "backend": "tensorflow"}`).
//! `train.json`: `{"optimizer": {"class_name", "defaults"}, "param_groups", "loss":
//! {"class_name", "config"}, "grad_clip", "scheduler", "batch_size", "epochs", "shuffle",
//! "drop_last", "spatial_dropout"}`. Unknown keys are errors: a typo must not silently become a
//! default. `spatial_dropout` ([`parse_spatial_dropout`]) lists the `nn.Dropout1d/2d/3d`
//! modules the exporter wrote into model.onnx as no-op `Dropout` nodes (torch cannot export
//! them in training mode).

use std::collections::BTreeMap;
use std::path::Path;

use model_ir::{
    Framework, GradClip, KerasBackend, LossSpec, OptimizerSpec, ParamGroup, SchedulerSpec,
    StepInterval, TrainingConfig,
};
use serde_json::{Map, Value};

use crate::error::{ErrorKind, ImportError};

fn json_err(path: &Path, msg: impl Into<String>) -> ImportError {
    ImportError::new(path, ErrorKind::Json(msg.into()))
}

fn parse_object(bytes: &[u8], path: &Path) -> Result<Map<String, Value>, ImportError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| json_err(path, e.to_string()))?;
    match v {
        Value::Object(m) => Ok(m),
        other => Err(json_err(
            path,
            format!(
                "expected an object at the top level, found {}",
                type_name(&other)
            ),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_keys(m: &Map<String, Value>, known: &[&str], path: &Path) -> Result<(), ImportError> {
    for k in m.keys() {
        if !known.contains(&k.as_str()) {
            return Err(json_err(
                path,
                format!("unknown key `{k}` (expected one of: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn get_usize(m: &Map<String, Value>, key: &str, path: &Path) -> Result<Option<usize>, ImportError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v > 0 && v <= u32::MAX as u64 => Ok(Some(v as usize)),
            _ => Err(json_err(
                path,
                format!("`{key}` must be a positive integer, found {n}"),
            )),
        },
        Some(v) => Err(json_err(
            path,
            format!("`{key}` must be a positive integer, found {}", type_name(v)),
        )),
    }
}

fn get_bool(m: &Map<String, Value>, key: &str, path: &Path) -> Result<Option<bool>, ImportError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(json_err(
            path,
            format!("`{key}` must be true or false, found {}", type_name(v)),
        )),
    }
}

fn get_f64(m: &Map<String, Value>, key: &str, path: &Path) -> Result<Option<f64>, ImportError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| json_err(path, format!("`{key}` must be a finite number"))),
        Some(v) => Err(json_err(
            path,
            format!("`{key}` must be a number, found {}", type_name(v)),
        )),
    }
}

fn get_string(
    m: &Map<String, Value>,
    key: &str,
    path: &Path,
) -> Result<Option<String>, ImportError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(json_err(
            path,
            format!("`{key}` must be a string, found {}", type_name(v)),
        )),
    }
}

/// Applies a Keras `fit.json` over `base` (normally the config from the model's compile_config).
pub fn parse_fit_json(
    bytes: &[u8],
    path: &Path,
    base: TrainingConfig,
) -> Result<TrainingConfig, ImportError> {
    let m = parse_object(bytes, path)?;
    check_keys(
        &m,
        &[
            "batch_size",
            "epochs",
            "shuffle",
            "validation_split",
            "class_weight",
            "backend",
            "framework_version",
        ],
        path,
    )?;
    let mut cfg = base;
    if let Some(v) = get_usize(&m, "batch_size", path)? {
        cfg.batch_size = v;
    }
    if let Some(v) = get_usize(&m, "epochs", path)? {
        cfg.epochs = v;
    }
    if let Some(v) = get_bool(&m, "shuffle", path)? {
        cfg.shuffle = v;
    }
    if let Some(v) = get_f64(&m, "validation_split", path)? {
        if !(0.0..1.0).contains(&v) {
            return Err(json_err(
                path,
                format!("`validation_split` must be in [0, 1), found {v}"),
            ));
        }
        cfg.validation_split = v;
    }
    match m.get("class_weight") {
        None | Some(Value::Null) => {}
        Some(Value::Object(w)) => {
            let mut out = BTreeMap::new();
            for (k, v) in w {
                let f = v.as_f64().filter(|f| f.is_finite()).ok_or_else(|| {
                    json_err(path, format!("`class_weight[{k}]` must be a number"))
                })?;
                out.insert(k.clone(), f);
            }
            cfg.class_weight = Some(out);
        }
        Some(v) => {
            return Err(json_err(
                path,
                format!(
                    "`class_weight` must be an object or null, found {}",
                    type_name(v)
                ),
            ));
        }
    }
    if let Some(b) = get_string(&m, "backend", path)? {
        let backend = KerasBackend::parse(&b)
            .ok_or_else(|| json_err(path, format!("unknown Keras backend `{b}`")))?;
        cfg.backend = Some(backend);
    }
    if let Some(v) = get_string(&m, "framework_version", path)? {
        cfg.framework_version = Some(v);
    }
    Ok(cfg)
}

fn class_and_object(
    v: &Value,
    key: &str,
    object_key: &str,
    path: &Path,
) -> Result<(String, Value), ImportError> {
    let m = v.as_object().ok_or_else(|| {
        json_err(
            path,
            format!("`{key}` must be an object with `class_name` and `{object_key}`"),
        )
    })?;
    let class = m
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| json_err(path, format!("`{key}.class_name` must be a string")))?;
    let obj = match m.get(object_key) {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(o @ Value::Object(_)) => o.clone(),
        Some(other) => {
            return Err(json_err(
                path,
                format!(
                    "`{key}.{object_key}` must be an object, found {}",
                    type_name(other)
                ),
            ));
        }
    };
    Ok((class.to_string(), obj))
}

/// Parses a PyTorch bundle's `train.json`.
pub fn parse_train_json(bytes: &[u8], path: &Path) -> Result<TrainingConfig, ImportError> {
    let m = parse_object(bytes, path)?;
    check_keys(
        &m,
        &[
            "optimizer",
            "param_groups",
            "loss",
            "grad_clip",
            "scheduler",
            "batch_size",
            "epochs",
            "shuffle",
            "drop_last",
            "framework_version",
            "spatial_dropout",
        ],
        path,
    )?;
    let mut cfg = TrainingConfig::defaults(Framework::Torch);
    let opt = m
        .get("optimizer")
        .ok_or_else(|| ImportError::new(path, ErrorKind::Missing("key `optimizer`".into())))?;
    let (class_name, config) = class_and_object(opt, "optimizer", "defaults", path)?;
    cfg.optimizer = Some(OptimizerSpec { class_name, config });
    cfg.param_groups = match m.get("param_groups") {
        None | Some(Value::Null) => None,
        Some(Value::Array(groups)) => {
            let mut out = Vec::new();
            for (i, g) in groups.iter().enumerate() {
                let gm = g.as_object().ok_or_else(|| {
                    json_err(path, format!("`param_groups[{i}]` must be an object"))
                })?;
                let params = gm
                    .get("params")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        json_err(
                            path,
                            format!("`param_groups[{i}].params` must be a list of names"),
                        )
                    })?
                    .iter()
                    .map(|p| {
                        p.as_str().map(str::to_string).ok_or_else(|| {
                            json_err(
                                path,
                                format!("`param_groups[{i}].params` must hold strings"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let mut overrides = gm.clone();
                overrides.remove("params");
                out.push(ParamGroup { params, overrides });
            }
            Some(out)
        }
        Some(v) => {
            return Err(json_err(
                path,
                format!(
                    "`param_groups` must be a list or null, found {}",
                    type_name(v)
                ),
            ));
        }
    };
    if let Some(l) = m.get("loss").filter(|v| !v.is_null()) {
        let (class_name, config) = class_and_object(l, "loss", "config", path)?;
        cfg.loss = Some(LossSpec::new(Framework::Torch, class_name, config));
    }
    cfg.grad_clip = match m.get("grad_clip") {
        None | Some(Value::Null) => None,
        Some(Value::Object(g)) => {
            if g.contains_key("max_norm") {
                check_keys(g, &["max_norm", "norm_type"], path)?;
                let max_norm = get_f64(g, "max_norm", path)?
                    .ok_or_else(|| json_err(path, "`grad_clip.max_norm` must be a number"))?;
                let norm_type = match g.get("norm_type") {
                    Some(Value::String(s)) if s == "inf" => f64::INFINITY,
                    _ => get_f64(g, "norm_type", path)?.unwrap_or(2.0),
                };
                Some(GradClip::Norm {
                    max_norm,
                    norm_type,
                })
            } else if g.contains_key("clip_value") {
                check_keys(g, &["clip_value"], path)?;
                let clip_value = get_f64(g, "clip_value", path)?
                    .ok_or_else(|| json_err(path, "`grad_clip.clip_value` must be a number"))?;
                Some(GradClip::Value { clip_value })
            } else {
                return Err(json_err(
                    path,
                    "`grad_clip` must have `max_norm` (and `norm_type`) or `clip_value`",
                ));
            }
        }
        Some(v) => {
            return Err(json_err(
                path,
                format!(
                    "`grad_clip` must be an object or null, found {}",
                    type_name(v)
                ),
            ));
        }
    };
    if let Some(s) = m.get("scheduler").filter(|v| !v.is_null()) {
        let (class_name, config) = class_and_object(s, "scheduler", "config", path)?;
        let interval = match s.get("interval").and_then(Value::as_str) {
            None | Some("epoch") => StepInterval::Epoch,
            Some("step") => StepInterval::Step,
            Some(other) => {
                return Err(json_err(
                    path,
                    format!(
                        "`scheduler.interval` must be \"epoch\" or \"step\", found \"{other}\""
                    ),
                ));
            }
        };
        cfg.scheduler = Some(SchedulerSpec {
            class_name,
            config,
            interval,
        });
    }
    if let Some(v) = get_usize(&m, "batch_size", path)? {
        cfg.batch_size = v;
    }
    if let Some(v) = get_usize(&m, "epochs", path)? {
        cfg.epochs = v;
    }
    if let Some(v) = get_bool(&m, "shuffle", path)? {
        cfg.shuffle = v;
    }
    if let Some(v) = get_bool(&m, "drop_last", path)? {
        cfg.drop_last = v;
    }
    if let Some(v) = get_string(&m, "framework_version", path)? {
        cfg.framework_version = Some(v);
    }
    Ok(cfg)
}

/// One `nn.Dropout1d/2d/3d` module of a PyTorch bundle, exported as a no-op (train.json
/// `spatial_dropout`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpatialDropoutRecord {
    /// The module's path in the model (`blocks.1`).
    pub module: String,
    /// `Dropout1d`, `Dropout2d` or `Dropout3d`.
    pub class_name: String,
    /// The drop probability.
    pub p: f64,
    /// The name of the no-op ONNX `Dropout` node that stands for it in model.onnx.
    pub node: String,
}

/// Reads train.json's optional `spatial_dropout` list (empty when the key is absent or null).
pub fn parse_spatial_dropout(
    bytes: &[u8],
    path: &Path,
) -> Result<Vec<SpatialDropoutRecord>, ImportError> {
    let m = parse_object(bytes, path)?;
    let list = match m.get("spatial_dropout") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(v) => {
            return Err(json_err(
                path,
                format!(
                    "`spatial_dropout` must be a list or null, found {}",
                    type_name(v)
                ),
            ));
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let at = format!("spatial_dropout[{i}]");
        let rm = r
            .as_object()
            .ok_or_else(|| json_err(path, format!("`{at}` must be an object")))?;
        check_keys(rm, &["module", "class_name", "p", "node"], path).map_err(|_| {
            json_err(
                path,
                format!("`{at}` has keys other than module, class_name, p, node"),
            )
        })?;
        let field = |key: &str| -> Result<String, ImportError> {
            get_string(rm, key, path)
                .map_err(|_| json_err(path, format!("`{at}.{key}` must be a string")))?
                .ok_or_else(|| json_err(path, format!("`{at}` lacks `{key}`")))
        };
        let module = field("module")?;
        let class_name = field("class_name")?;
        let node = field("node")?;
        if !matches!(class_name.as_str(), "Dropout1d" | "Dropout2d" | "Dropout3d") {
            return Err(json_err(
                path,
                format!(
                    "`{at}.class_name` must be Dropout1d, Dropout2d or Dropout3d, found `{class_name}`"
                ),
            ));
        }
        let p = get_f64(rm, "p", path)
            .map_err(|_| json_err(path, format!("`{at}.p` must be a number")))?
            .ok_or_else(|| json_err(path, format!("`{at}` lacks `p`")))?;
        if !(0.0..=1.0).contains(&p) {
            return Err(json_err(
                path,
                format!("`{at}.p` must be in [0, 1], found {p}"),
            ));
        }
        out.push(SpatialDropoutRecord {
            module,
            class_name,
            p,
            node,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_train_err(json: &str, needle: &str) {
        let err = parse_train_json(json.as_bytes(), Path::new("train.json")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("train.json: "), "{msg}");
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn train_json_full() {
        let j = r#"{"optimizer": {"class_name": "Adam", "defaults": {"lr": 0.001, "betas": [0.9, 0.999]}},
            "param_groups": [{"params": ["fc1.weight"], "weight_decay": 0.01}],
            "loss": {"class_name": "CrossEntropyLoss", "config": {"label_smoothing": 0.1}},
            "grad_clip": {"max_norm": 1.0, "norm_type": "inf"},
            "scheduler": {"class_name": "StepLR", "config": {"step_size": 3}, "interval": "step"},
            "batch_size": 64, "epochs": 2, "shuffle": false, "drop_last": true}"#;
        let c = parse_train_json(j.as_bytes(), Path::new("train.json")).unwrap();
        assert_eq!(c.optimizer.as_ref().unwrap().class_name, "Adam");
        assert_eq!(
            c.param_groups.as_ref().unwrap()[0].params,
            vec!["fc1.weight"]
        );
        assert!(
            matches!(c.grad_clip, Some(GradClip::Norm { norm_type, .. }) if norm_type.is_infinite())
        );
        assert_eq!(c.scheduler.as_ref().unwrap().interval, StepInterval::Step);
        assert_eq!(
            (c.batch_size, c.epochs, c.shuffle, c.drop_last),
            (64, 2, false, true)
        );
    }

    #[test]
    fn train_json_errors() {
        check_train_err("[1]", "expected an object");
        check_train_err("{", "invalid JSON");
        check_train_err(r#"{"loss": null}"#, "missing key `optimizer`");
        check_train_err(
            r#"{"optimizer": {"class_name": "SGD"}, "bach_size": 3}"#,
            "unknown key `bach_size`",
        );
        check_train_err(
            r#"{"optimizer": {"class_name": "SGD"}, "batch_size": -3}"#,
            "positive integer",
        );
        check_train_err(
            r#"{"optimizer": {"class_name": "SGD"}, "grad_clip": {"foo": 1}}"#,
            "max_norm",
        );
        check_train_err(r#"{"optimizer": 3}"#, "class_name");
    }

    #[track_caller]
    fn check_spatial_err(json: &str, needle: &str) {
        let err = parse_spatial_dropout(json.as_bytes(), Path::new("train.json")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("train.json: "), "{msg}");
        assert!(msg.contains(needle), "`{msg}` lacks `{needle}`");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn spatial_dropout_records() {
        let j = r#"{"optimizer": {"class_name": "SGD", "defaults": {"lr": 0.1}},
            "spatial_dropout": [{"module": "blocks.1", "class_name": "Dropout2d", "p": 0.25,
                                 "node": "/blocks/blocks.1/Dropout"}]}"#;
        parse_train_json(j.as_bytes(), Path::new("train.json")).unwrap();
        let r = parse_spatial_dropout(j.as_bytes(), Path::new("train.json")).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].module, "blocks.1");
        assert_eq!(r[0].node, "/blocks/blocks.1/Dropout");
        assert_eq!(r[0].class_name, "Dropout2d");
        assert!((r[0].p - 0.25).abs() < 1e-12);
        let none =
            parse_spatial_dropout(br#"{"optimizer": {"class_name": "SGD"}}"#, Path::new("t"));
        assert!(none.unwrap().is_empty());
    }

    #[test]
    fn spatial_dropout_errors() {
        check_spatial_err(r#"{"spatial_dropout": 3}"#, "must be a list or null");
        check_spatial_err(
            r#"{"spatial_dropout": [3]}"#,
            "`spatial_dropout[0]` must be an object",
        );
        check_spatial_err(
            r#"{"spatial_dropout": [{"module": "d", "class_name": "Dropout2d", "node": "/d/Dropout"}]}"#,
            "lacks `p`",
        );
        check_spatial_err(
            r#"{"spatial_dropout": [{"module": "d", "class_name": "Dropout", "p": 0.2, "node": "/d/Dropout"}]}"#,
            "Dropout1d, Dropout2d or Dropout3d",
        );
        check_spatial_err(
            r#"{"spatial_dropout": [{"module": "d", "class_name": "Dropout2d", "p": 1.5, "node": "/d/Dropout"}]}"#,
            "must be in [0, 1]",
        );
        check_spatial_err(
            r#"{"spatial_dropout": [{"module": 1, "class_name": "Dropout2d", "p": 0.5, "node": "/d/Dropout"}]}"#,
            "`spatial_dropout[0].module` must be a string",
        );
        check_spatial_err(
            r#"{"spatial_dropout": [{"module": "d", "class_name": "Dropout2d", "p": 0.5, "nod": "/d/Dropout"}]}"#,
            "keys other than",
        );
    }

    #[test]
    fn fit_json_defaults_and_overrides() {
        let base = TrainingConfig::defaults(Framework::Keras);
        let c = parse_fit_json(b"{}", Path::new("fit.json"), base.clone()).unwrap();
        assert_eq!(c, base);
        let c = parse_fit_json(
            br#"{"batch_size": 16, "shuffle": false, "class_weight": {"0": 2.0}, "backend": "jax"}"#,
            Path::new("fit.json"),
            base.clone(),
        )
        .unwrap();
        assert_eq!(c.batch_size, 16);
        assert_eq!(c.backend, Some(KerasBackend::Jax));
        let e = parse_fit_json(br#"{"validation_split": 1.5}"#, Path::new("fit.json"), base)
            .unwrap_err();
        assert!(e.to_string().contains("validation_split"));
    }

    #[test]
    fn fit_json_backend_is_typed_once() {
        let base = TrainingConfig::defaults(Framework::Keras);
        for b in KerasBackend::ALL {
            let json = format!(r#"{{"backend": "{}"}}"#, b.name());
            let c = parse_fit_json(json.as_bytes(), Path::new("fit.json"), base.clone()).unwrap();
            assert_eq!(c.backend, Some(b));
        }
        let e = parse_fit_json(
            br#"{"backend": "mlx"}"#,
            Path::new("fit.json"),
            base.clone(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "fit.json: invalid JSON: unknown Keras backend `mlx`"
        );
        let e = parse_fit_json(br#"{"backend": 3}"#, Path::new("fit.json"), base).unwrap_err();
        assert!(e.to_string().contains("`backend` must be a string"), "{e}");
    }

    #[test]
    fn train_json_loss_is_typed_once() {
        let j = r#"{"optimizer": {"class_name": "SGD"},
            "loss": {"class_name": "BCEWithLogitsLoss", "config": {"pos_weight": [3.0]}}}"#;
        let c = parse_train_json(j.as_bytes(), Path::new("train.json")).unwrap();
        let loss = c.loss.unwrap();
        assert_eq!(loss.class_name, "BCEWithLogitsLoss");
        assert_eq!(loss.config, serde_json::json!({"pos_weight": [3.0]}));
        assert_eq!(
            loss.typed,
            model_ir::TypedLoss::Torch(Ok(model_ir::TorchLoss::BceWithLogits {
                weight: None,
                pos_weight: Some(vec![3.0]),
                reduction: model_ir::TorchReduction::Mean,
            }))
        );
        // An unsupported loss still imports; building it is what fails.
        let j = r#"{"optimizer": {"class_name": "SGD"}, "loss": {"class_name": "CTCLoss"}}"#;
        let c = parse_train_json(j.as_bytes(), Path::new("train.json")).unwrap();
        assert_eq!(
            c.loss
                .unwrap()
                .typed
                .error()
                .map(ToString::to_string)
                .as_deref(),
            Some("`CTCLoss`: the torch loss `CTCLoss` is not implemented")
        );
    }
}
