//! Keras 3 `.keras` archives → [`Model`].
//!
//! The archive is a zip ([`zip`], read in memory) with `metadata.json` (Keras version),
//! `config.json` (the model: Sequential or Functional, nested models inlined, see [`graph`];
//! each layer's conventions read by [`layers`]; `compile_config` read by [`compile`]) and
//! `model.weights.h5` (read by the crate's pure-Rust HDF5 reader; groups named by Keras's
//! saving names, see [`naming`]).
//!
//! Errors name the archive member they are in (`model.keras!config.json: ...`); problems
//! with the zip itself name the archive.
//!
//! The model: `name` is the Keras model name; `producer` is `keras <keras_version>`;
//! `training` is always `Some` (see [`compile`]), with the layers' weight regularizers in
//! `regularizers` by parameter name ([`regularizers`]); `notes` list saving-name renames,
//! defaults taken for absent config fields, the regularizers, and attributes that change
//! training numerics but are not in the IR (activity regularizers, constraints, dtype
//! policies, ...).

mod activations;
mod compile;
mod config;
mod graph;
mod initializers;
mod layers;
mod naming;
mod regularizers;
mod zip;

use std::path::Path;

use model_ir::{Framework, Model};
use serde_json::Value;

use crate::error::{ErrorKind, ImportError};

const CONFIG: &str = "config.json";
const METADATA: &str = "metadata.json";
const WEIGHTS: &str = "model.weights.h5";

/// The `model.weights.h5` member of an archive, for the HDF5 reader's own tests.
#[cfg(test)]
pub(crate) fn zip_for_tests(bytes: &[u8]) -> Vec<u8> {
    let archive = zip::Archive::parse(bytes).expect("zip");
    archive
        .read(WEIGHTS)
        .expect("member")
        .expect("read")
        .into_owned()
}

/// Imports a `.keras` archive held in memory.
pub(crate) fn import_keras(bytes: &[u8], path: &Path) -> Result<Model, ImportError> {
    let archive = zip::Archive::parse(bytes).map_err(|k| ImportError::new(path, k))?;
    let member = |name: &str| match archive.read(name) {
        None => Err(ImportError::new(
            path,
            ErrorKind::Missing(format!(
                "archive member `{name}` (not a Keras 3 .keras file?)"
            )),
        )),
        Some(r) => r.map_err(|k| ImportError::in_member(path, name, k)),
    };
    let config_bytes = member(CONFIG)?;
    let root: Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| ImportError::in_member(path, CONFIG, ErrorKind::Json(e.to_string())))?;
    let Some(root_map) = root.as_object() else {
        return Err(ImportError::in_member(
            path,
            CONFIG,
            ErrorKind::Malformed("the top level is not a JSON object".into()),
        ));
    };

    let mut notes = Vec::new();
    let keras_version = match archive.read(METADATA) {
        None => {
            notes.push("the archive has no metadata.json: Keras version unknown".into());
            None
        }
        Some(r) => {
            let raw = r.map_err(|k| ImportError::in_member(path, METADATA, k))?;
            let meta: Value = serde_json::from_slice(&raw).map_err(|e| {
                ImportError::in_member(path, METADATA, ErrorKind::Json(e.to_string()))
            })?;
            meta.get("keras_version")
                .and_then(Value::as_str)
                .map(str::to_string)
        }
    };

    let weights_bytes = member(WEIGHTS)?;
    let h5 =
        crate::hdf5::read(&weights_bytes).map_err(|k| ImportError::in_member(path, WEIGHTS, k))?;

    let built = graph::build(&root, &h5).map_err(|f| {
        let m = match f.member {
            graph::Member::Config => CONFIG,
            graph::Member::Weights => WEIGHTS,
        };
        ImportError::in_member(path, m, f.kind)
    })?;
    let mut training = compile::training(root_map, keras_version.as_deref(), &mut notes)
        .map_err(|k| ImportError::in_member(path, CONFIG, k))?;
    training.regularizers = built.regularizers;
    training.constraints = built.constraints;

    let name = root
        .get("config")
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("model")
        .to_string();
    let mut model = Model::new(Framework::Keras, name);
    model.inputs = built.inputs;
    model.outputs = built.outputs;
    model.nodes = built.nodes;
    model.initializers = built.initializers;
    model.training = Some(training);
    model.producer = Some(match &keras_version {
        Some(v) => format!("keras {v}"),
        None => "keras".into(),
    });
    notes.extend(built.notes);
    model.notes = notes;
    model.validate().map_err(|e| {
        ImportError::in_member(
            path,
            CONFIG,
            ErrorKind::Malformed(format!("the imported graph is invalid: {e}")),
        )
    })?;
    Ok(model)
}
