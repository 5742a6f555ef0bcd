//! Reading the frameworks' own optimizer serializations: field access with the framework's
//! default for a missing (or `null`) field and a one-line error for anything else.

use serde_json::{Map, Value};

/// A configuration the emulators cannot take. Every message is one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{framework} optimizer: expected a JSON object with `class_name` and `{body}`")]
    Shape {
        framework: &'static str,
        body: &'static str,
    },
    #[error("{framework} optimizer class `{class}` is not supported (supported: {supported})")]
    UnknownClass {
        framework: &'static str,
        class: String,
        supported: &'static str,
    },
    #[error("{framework} {class}: unknown field `{field}`")]
    UnknownField {
        framework: &'static str,
        class: String,
        field: String,
    },
    #[error("{framework} {class}: field `{field}` must be {expected}, got {got}")]
    BadValue {
        framework: &'static str,
        class: String,
        field: String,
        expected: &'static str,
        got: String,
    },
    #[error("{framework} {class}: `{field}` = {value} is not emulated ({reason})")]
    Unsupported {
        framework: &'static str,
        class: String,
        field: String,
        value: String,
        reason: &'static str,
    },
}

/// Field reader over one config object: remembers which keys were read so unknown keys can
/// be reported.
pub(crate) struct Fields<'a> {
    pub(crate) framework: &'static str,
    pub(crate) class: String,
    map: &'a Map<String, Value>,
    known: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(framework: &'static str, class: &str, map: &'a Map<String, Value>) -> Self {
        Fields {
            framework,
            class: class.to_string(),
            map,
            known: Vec::new(),
        }
    }

    /// The raw value, `None` when missing or `null`.
    pub(crate) fn raw(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(crate) fn bad(&self, key: &str, expected: &'static str, v: &Value) -> ConfigError {
        ConfigError::BadValue {
            framework: self.framework,
            class: self.class.clone(),
            field: key.to_string(),
            expected,
            got: v.to_string(),
        }
    }

    pub(crate) fn unsupported(&self, key: &str, v: &Value, reason: &'static str) -> ConfigError {
        ConfigError::Unsupported {
            framework: self.framework,
            class: self.class.clone(),
            field: key.to_string(),
            value: v.to_string(),
            reason,
        }
    }

    pub(crate) fn opt_f64(&mut self, key: &'static str) -> Result<Option<f64>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) => Ok(Some(x)),
                None => Err(self.bad(key, "a number", v)),
            },
        }
    }

    pub(crate) fn f64_or(&mut self, key: &'static str, default: f64) -> Result<f64, ConfigError> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }

    pub(crate) fn bool_or(
        &mut self,
        key: &'static str,
        default: bool,
    ) -> Result<bool, ConfigError> {
        match self.raw(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.bad(key, "a boolean", v)),
        }
    }

    pub(crate) fn opt_u64(&mut self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(x) => Ok(Some(x)),
                None => match v.as_f64() {
                    Some(x) if x >= 0.0 && x.fract().abs() < f64::EPSILON => Ok(Some(x as u64)),
                    _ => Err(self.bad(key, "a non-negative integer", v)),
                },
            },
        }
    }

    /// Keys that are accepted and have no effect on the arithmetic (names, implementation
    /// switches that compute the same update).
    pub(crate) fn ignore(&mut self, keys: &[&'static str]) {
        self.known.extend_from_slice(keys);
    }

    /// Error on the first key that was never read.
    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        for k in self.map.keys() {
            if !self.known.contains(&k.as_str()) {
                return Err(ConfigError::UnknownField {
                    framework: self.framework,
                    class: self.class,
                    field: k.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Split `{"class_name": ..., <body>: {...}}`, tolerating Keras's `module` and
/// `registered_name` keys.
pub(crate) fn split<'a>(
    framework: &'static str,
    body: &'static str,
    v: &'a Value,
) -> Result<(&'a str, &'a Map<String, Value>), ConfigError> {
    let shape = || ConfigError::Shape { framework, body };
    let obj = v.as_object().ok_or_else(shape)?;
    let class = obj
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(shape)?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "class_name" | "module" | "registered_name") && k != body {
            return Err(ConfigError::UnknownField {
                framework,
                class: class.to_string(),
                field: k.clone(),
            });
        }
    }
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let cfg = match obj.get(body) {
        None | Some(Value::Null) => EMPTY.get_or_init(Map::new),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(shape()),
    };
    Ok((class, cfg))
}

/// Render a float the way Python's `repr` would for typical hyper-parameters. A value that
/// is exactly a float32 (Keras serializes its float32 learning-rate variable) is printed by
/// its shortest float32 form: 0.0010000000474974513 → 0.001.
pub(crate) fn py(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 {
            "math.inf".into()
        } else {
            "-math.inf".into()
        };
    }
    if x.is_nan() {
        return "math.nan".into();
    }
    let as32 = x as f32;
    let x = if f64::from(as32).to_bits() == x.to_bits() {
        format!("{as32}").parse::<f64>().unwrap_or(x)
    } else {
        x
    };
    if x.trunc().to_bits() == x.to_bits() && x.abs() < 1e16 {
        return format!("{x:.1}");
    }
    if x.abs() < 1e-4 || x.abs() >= 1e16 {
        // Python uses exponent form below 1e-4: 1e-07, 1e-08.
        let e = format!("{x:e}");
        if let Some((m, exp)) = e.split_once('e') {
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { "-" } else { "+" };
            return format!("{m}e{sign}{:02}", exp.abs());
        }
    }
    format!("{x}")
}

impl Fields<'_> {
    /// A field the framework's constructor requires (no default).
    pub(crate) fn req_f64(&mut self, key: &'static str) -> Result<f64, ConfigError> {
        match self.opt_f64(key)? {
            Some(x) => Ok(x),
            None => Err(ConfigError::BadValue {
                framework: self.framework,
                class: self.class.clone(),
                field: key.to_string(),
                expected: "a number (required)",
                got: "nothing".into(),
            }),
        }
    }

    pub(crate) fn f64_list(&mut self, key: &'static str) -> Result<Vec<f64>, ConfigError> {
        let Some(v) = self.raw(key) else {
            return Err(ConfigError::BadValue {
                framework: self.framework,
                class: self.class.clone(),
                field: key.to_string(),
                expected: "a list of numbers (required)",
                got: "nothing".into(),
            });
        };
        let items = v
            .as_array()
            .ok_or_else(|| self.bad(key, "a list of numbers", v))?;
        items
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| self.bad(key, "a list of numbers", v))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::py;

    #[track_caller]
    fn check(x: f64, expected: &str) {
        assert_eq!(py(x), expected);
    }

    #[test]
    fn python_repr() {
        check(1e-7, "1e-07");
        check(1e-8, "1e-08");
        check(0.001, "0.001");
        check(f64::from(0.001f32), "0.001");
        check(1.0, "1.0");
        check(0.95, "0.95");
        check(f64::INFINITY, "math.inf");
        check(1e-30, "1e-30");
        check(20.0, "20.0");
    }
}
