//! Typed access to one layer's `config` object in `config.json`, with errors that name the
//! layer and the field.
//!
//! Keras 3 writes every constructor argument with its default filled in. When a field that
//! changes numerics is absent (an older or hand-edited file), the getters with a default use
//! Keras's own constructor default, as `from_config` would, and record a note saying so.

use serde_json::{Map, Value};

use crate::error::ErrorKind;

/// One layer's configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cfg<'a> {
    pub(super) map: &'a Map<String, Value>,
    /// The layer's name, for messages.
    pub(super) layer: &'a str,
    /// The layer's class, for messages.
    pub(super) class: &'a str,
}

/// Short JSON rendering of a value for messages (at most ~80 characters).
pub(super) fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        let cut: String = s.chars().take(77).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl<'a> Cfg<'a> {
    pub(super) fn new(map: &'a Map<String, Value>, layer: &'a str, class: &'a str) -> Cfg<'a> {
        Cfg { map, layer, class }
    }

    fn bad(&self, key: &str, v: &Value, want: &str) -> ErrorKind {
        ErrorKind::Malformed(format!(
            "layer `{}` ({}): `{key}` is {}, expected {want}",
            self.layer,
            self.class,
            show(v)
        ))
    }

    fn missing(&self, key: &str) -> ErrorKind {
        ErrorKind::Missing(format!(
            "field `{key}` in the config of layer `{}` ({})",
            self.layer, self.class
        ))
    }

    /// The raw value, `None` when absent (a JSON `null` is returned as `Some(Null)`).
    pub(super) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// The value, or a `Missing` error.
    pub(super) fn req(&self, key: &str) -> Result<&'a Value, ErrorKind> {
        self.map.get(key).ok_or_else(|| self.missing(key))
    }

    /// Records that `key` was absent and the Keras default was used.
    fn defaulted(&self, key: &str, default: &str, notes: &mut Vec<String>) {
        notes.push(format!(
            "layer `{}` ({}): `{key}` is absent from config.json; using the Keras default {default}",
            self.layer, self.class
        ));
    }

    fn as_usize(&self, key: &str, v: &Value) -> Result<usize, ErrorKind> {
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| self.bad(key, v, "a non-negative integer"))
    }

    pub(super) fn usize(&self, key: &str) -> Result<usize, ErrorKind> {
        let v = self.req(key)?;
        self.as_usize(key, v)
    }

    pub(super) fn usize_or(
        &self,
        key: &str,
        default: usize,
        notes: &mut Vec<String>,
    ) -> Result<usize, ErrorKind> {
        match self.get(key) {
            None => {
                self.defaulted(key, &default.to_string(), notes);
                Ok(default)
            }
            Some(v) => self.as_usize(key, v),
        }
    }

    pub(super) fn i64_or(
        &self,
        key: &str,
        default: i64,
        notes: &mut Vec<String>,
    ) -> Result<i64, ErrorKind> {
        match self.get(key) {
            None => {
                self.defaulted(key, &default.to_string(), notes);
                Ok(default)
            }
            Some(v) => v.as_i64().ok_or_else(|| self.bad(key, v, "an integer")),
        }
    }

    pub(super) fn f64(&self, key: &str) -> Result<f64, ErrorKind> {
        let v = self.req(key)?;
        v.as_f64().ok_or_else(|| self.bad(key, v, "a number"))
    }

    pub(super) fn f64_or(
        &self,
        key: &str,
        default: f64,
        notes: &mut Vec<String>,
    ) -> Result<f64, ErrorKind> {
        match self.get(key) {
            None => {
                self.defaulted(key, &default.to_string(), notes);
                Ok(default)
            }
            Some(v) => v.as_f64().ok_or_else(|| self.bad(key, v, "a number")),
        }
    }

    /// A number or `null`.
    pub(super) fn opt_f64(&self, key: &str) -> Result<Option<f64>, ErrorKind> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.bad(key, v, "a number or null")),
        }
    }

    pub(super) fn bool_or(
        &self,
        key: &str,
        default: bool,
        notes: &mut Vec<String>,
    ) -> Result<bool, ErrorKind> {
        match self.get(key) {
            None => {
                self.defaulted(key, &default.to_string(), notes);
                Ok(default)
            }
            Some(v) => v.as_bool().ok_or_else(|| self.bad(key, v, "true or false")),
        }
    }

    pub(super) fn str(&self, key: &str) -> Result<&'a str, ErrorKind> {
        let v = self.req(key)?;
        v.as_str().ok_or_else(|| self.bad(key, v, "a string"))
    }

    /// An integer or a list of `rank` integers (Keras `kernel_size=3` or `(3, 3)`).
    pub(super) fn tuple(&self, key: &str, rank: usize) -> Result<Vec<usize>, ErrorKind> {
        let v = self.req(key)?;
        self.tuple_of(key, v, rank)
    }

    pub(super) fn tuple_of(
        &self,
        key: &str,
        v: &Value,
        rank: usize,
    ) -> Result<Vec<usize>, ErrorKind> {
        let want = || format!("an integer or a list of {rank} integers");
        match v {
            Value::Array(items) => {
                if items.len() != rank {
                    return Err(self.bad(key, v, &want()));
                }
                items
                    .iter()
                    .map(|x| self.as_usize(key, x).map_err(|_| self.bad(key, v, &want())))
                    .collect()
            }
            other => Ok(vec![
                self.as_usize(key, other).map_err(|_| self.bad(
                    key,
                    v,
                    &want()
                ))?;
                rank
            ]),
        }
    }

    /// Like [`Cfg::tuple`], with a default for an absent key or `null`.
    pub(super) fn tuple_or(
        &self,
        key: &str,
        rank: usize,
        default: usize,
        notes: &mut Vec<String>,
    ) -> Result<Vec<usize>, ErrorKind> {
        match self.get(key) {
            None => {
                self.defaulted(key, &default.to_string(), notes);
                Ok(vec![default; rank])
            }
            Some(Value::Null) => Ok(vec![default; rank]),
            Some(v) => self.tuple_of(key, v, rank),
        }
    }

    /// An integer or a list of integers (axes).
    pub(super) fn axes(&self, key: &str) -> Result<Vec<i64>, ErrorKind> {
        let v = self.req(key)?;
        match v {
            Value::Array(items) => items
                .iter()
                .map(|x| {
                    x.as_i64()
                        .ok_or_else(|| self.bad(key, v, "an integer or a list of integers"))
                })
                .collect(),
            Value::Null => Ok(Vec::new()),
            other => Ok(vec![other.as_i64().ok_or_else(|| {
                self.bad(key, v, "an integer or a list of integers")
            })?]),
        }
    }

    /// An error for a value this importer does not handle.
    pub(super) fn unsupported(&self, what: impl std::fmt::Display) -> ErrorKind {
        ErrorKind::Unsupported(format!("layer `{}` ({}): {what}", self.layer, self.class))
    }

    pub(super) fn malformed(&self, what: impl std::fmt::Display) -> ErrorKind {
        ErrorKind::Malformed(format!("layer `{}` ({}): {what}", self.layer, self.class))
    }
}

/// A `batch_shape`-style list: integers or `null` (dynamic).
pub(super) fn shape_of(v: &Value) -> Option<Vec<Option<usize>>> {
    v.as_array()?
        .iter()
        .map(|d| match d {
            Value::Null => Some(None),
            other => other
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some),
        })
        .collect()
}
