//! Bundles: the directory a user hands parallax for each side of a port.
//!
//! Keras bundle: `model.keras` (required), `fit.json`, `inputs.safetensors` (optional).
//! PyTorch bundle: `model.onnx` and `train.json` (required), `state_dict.safetensors`,
//! `inputs.safetensors` (optional).

use std::path::{Path, PathBuf};

use model_ir::{DataLayout, Framework, Model, Op, TrainingConfig};

use crate::error::{ErrorKind, ImportError, read_file};
use crate::safetensors_io::{TensorFile, load_safetensors};
use crate::training::{
    SpatialDropoutRecord, parse_fit_json, parse_spatial_dropout, parse_train_json,
};

/// A model with everything its bundle provides.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory (or the model file's directory when a bare model file was given).
    pub dir: PathBuf,
    pub model: Model,
    /// `inputs.safetensors`: `x` / `x.<input>` and `y` as this side feeds its model.
    pub inputs: Option<TensorFile>,
    /// `state_dict.safetensors` of a PyTorch bundle.
    pub state_dict: Option<TensorFile>,
}

/// What a path given on the command line holds.
#[derive(Debug, Clone)]
pub enum Loaded {
    Model(Box<Bundle>),
    /// A bare safetensors file (state_dict, Keras-named weights, inputs).
    Tensors {
        path: PathBuf,
        file: TensorFile,
    },
}

/// Loads a bundle directory, a `.keras` / `.onnx` model file, or a `.safetensors` file.
pub fn load_path(path: &Path) -> Result<Loaded, ImportError> {
    if path.is_dir() {
        return load_bundle(path).map(|b| Loaded::Model(Box::new(b)));
    }
    if !path.exists() {
        return Err(ImportError::new(
            path,
            ErrorKind::Io("no such file or directory".into()),
        ));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    match ext.as_str() {
        "keras" => Ok(Loaded::Model(Box::new(Bundle {
            dir,
            model: crate::load_keras(path)?,
            inputs: None,
            state_dict: None,
        }))),
        "onnx" => Ok(Loaded::Model(Box::new(Bundle {
            dir,
            model: crate::load_onnx(path)?,
            inputs: None,
            state_dict: None,
        }))),
        "safetensors" => Ok(Loaded::Tensors {
            path: path.to_path_buf(),
            file: load_safetensors(path)?,
        }),
        _ => Err(ImportError::new(
            path,
            ErrorKind::Unsupported(
                "expected a bundle directory or a .keras, .onnx or .safetensors file".into(),
            ),
        )),
    }
}

/// Loads a Keras or PyTorch bundle directory.
pub fn load_bundle(dir: &Path) -> Result<Bundle, ImportError> {
    let keras = dir.join("model.keras");
    let onnx = dir.join("model.onnx");
    match (keras.is_file(), onnx.is_file()) {
        (true, true) => Err(ImportError::new(
            dir,
            ErrorKind::Malformed(
                "holds both model.keras and model.onnx; a bundle is one side of a port".into(),
            ),
        )),
        (true, false) => load_keras_bundle(dir, &keras),
        (false, true) => load_torch_bundle(dir, &onnx),
        (false, false) => Err(ImportError::new(
            dir,
            ErrorKind::Missing("model.keras or model.onnx: this is not a bundle directory".into()),
        )),
    }
}

fn optional(path: PathBuf) -> Option<PathBuf> {
    path.is_file().then_some(path)
}

fn load_keras_bundle(dir: &Path, model_path: &Path) -> Result<Bundle, ImportError> {
    let mut model = crate::load_keras(model_path)?;
    let base = model
        .training
        .take()
        .unwrap_or_else(|| TrainingConfig::defaults(Framework::Keras));
    model.training = Some(match optional(dir.join("fit.json")) {
        Some(p) => {
            let cfg = parse_fit_json(&read_file(&p)?, &p, base)?;
            if let Some(b) = &cfg.backend {
                model
                    .notes
                    .retain(|n| !n.contains("does not record the Keras backend"));
                model
                    .notes
                    .push(format!("Keras backend `{b}` (from fit.json)"));
            }
            cfg
        }
        None => {
            model.notes.push(
                "no fit.json: Keras fit defaults assumed (batch 32, shuffle, tensorflow backend)"
                    .into(),
            );
            base
        }
    });
    let inputs = load_inputs(dir, &model)?;
    Ok(Bundle {
        dir: dir.to_path_buf(),
        model,
        inputs,
        state_dict: None,
    })
}

fn load_torch_bundle(dir: &Path, model_path: &Path) -> Result<Bundle, ImportError> {
    let mut model = crate::load_onnx(model_path)?;
    let train = dir.join("train.json");
    if !train.is_file() {
        return Err(ImportError::new(
            dir,
            ErrorKind::Missing("train.json: a PyTorch bundle needs its optimizer and loss".into()),
        ));
    }
    let train_bytes = read_file(&train)?;
    model.training = Some(parse_train_json(&train_bytes, &train)?);
    let spatial = parse_spatial_dropout(&train_bytes, &train)?;
    restore_spatial_dropout(&mut model, &spatial, &train)?;
    let state_dict = match optional(dir.join("state_dict.safetensors")) {
        Some(p) => {
            let sd = load_safetensors(&p)?;
            cross_check_state_dict(&mut model, &sd, &p)?;
            Some(sd)
        }
        None => None,
    };
    let inputs = load_inputs(dir, &model)?;
    Ok(Bundle {
        dir: dir.to_path_buf(),
        model,
        inputs,
        state_dict,
    })
}

/// Puts back the `nn.Dropout1d/2d/3d` modules the exporter wrote as no-op `Dropout` nodes:
/// each record's node becomes a channel-wise dropout of the recorded rate, at its place.
fn restore_spatial_dropout(
    model: &mut Model,
    records: &[SpatialDropoutRecord],
    path: &Path,
) -> Result<(), ImportError> {
    let err = |i: usize, msg: String| {
        ImportError::new(
            path,
            ErrorKind::Json(format!("`spatial_dropout[{i}]`: {msg}")),
        )
    };
    for (i, r) in records.iter().enumerate() {
        let mut found = model
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.origin.name == r.node);
        let (k, other) = (found.next(), found.next());
        let Some((k, node)) = k else {
            return Err(err(
                i,
                format!(
                    "model.onnx has no node `{}` (the no-op exported for module `{}`)",
                    r.node, r.module
                ),
            ));
        };
        if other.is_some() {
            return Err(err(i, format!("model.onnx has several nodes `{}`", r.node)));
        }
        let Op::Dropout { rate, spatial } = &node.op else {
            return Err(err(
                i,
                format!(
                    "node `{}` of module `{}` is {}, not the no-op Dropout the exporter writes",
                    r.node, r.module, node.origin.class
                ),
            ));
        };
        if spatial.is_some() || (rate - r.p).abs() > 1e-6 {
            return Err(err(
                i,
                format!(
                    "node `{}` drops with rate {rate}, train.json says p = {} for module `{}`",
                    r.node, r.p, r.module
                ),
            ));
        }
        let name = node.name.clone();
        model.nodes[k].op = Op::Dropout {
            rate: r.p,
            spatial: Some(DataLayout::ChannelsFirst),
        };
        let noop = format!("{name}: Dropout exported with training_mode=false");
        model.notes.retain(|n| !n.starts_with(&noop));
        model.notes.push(format!(
            "{name}: nn.{}(p={}) (module `{}`), exported as a no-op, restored from train.json `spatial_dropout` as channel-wise dropout",
            r.class_name, r.p, r.module
        ));
    }
    Ok(())
}

/// Every IR parameter named like a state_dict entry must have that entry's shape; values
/// that differ are reported in the notes (the ONNX file and the state_dict disagree).
fn cross_check_state_dict(
    model: &mut Model,
    sd: &TensorFile,
    path: &Path,
) -> Result<(), ImportError> {
    let mut matched = 0usize;
    let mut notes = Vec::new();
    for (_, p) in model.params() {
        let Some(t) = sd.get(&p.name) else { continue };
        matched += 1;
        if t.shape() != p.tensor.shape() {
            return Err(ImportError::new(
                path,
                ErrorKind::ShapeMismatch {
                    what: format!("`{}` (model.onnx vs state_dict)", p.name),
                    expected: p.tensor.shape().to_vec(),
                    found: t.shape().to_vec(),
                },
            ));
        }
        if p.tensor.dtype().is_float() && t.dtype().is_float() {
            let a = p.tensor.to_f64();
            let b = t.to_f64();
            let diff = a
                .iter()
                .zip(b.iter())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f64, f64::max);
            if diff > 0.0 {
                notes.push(format!(
                    "state_dict `{}` differs from the ONNX initializer (max |diff| {diff:.3e}); the ONNX values are used",
                    p.name
                ));
            }
        }
    }
    let unmatched: Vec<&String> = sd
        .tensors
        .keys()
        .filter(|k| !k.ends_with("num_batches_tracked") && model.param(k).is_none())
        .collect();
    if !unmatched.is_empty() {
        let shown: Vec<&str> = unmatched.iter().take(5).map(|s| s.as_str()).collect();
        notes.push(format!(
            "{} state_dict tensor(s) have no parameter of that name in model.onnx ({}{}); matched {matched}",
            unmatched.len(),
            shown.join(", "),
            if unmatched.len() > 5 { ", ..." } else { "" }
        ));
    }
    model.notes.extend(notes);
    Ok(())
}

fn load_inputs(dir: &Path, model: &Model) -> Result<Option<TensorFile>, ImportError> {
    let Some(p) = optional(dir.join("inputs.safetensors")) else {
        return Ok(None);
    };
    let f = load_safetensors(&p)?;
    for (i, input) in model.inputs.iter().enumerate() {
        let name = format!("x.{}", input.name);
        let t = if model.inputs.len() == 1 && f.get("x").is_some() {
            f.get("x")
        } else {
            f.get(&name)
        };
        let Some(t) = t else {
            return Err(ImportError::new(
                &p,
                ErrorKind::Missing(if model.inputs.len() == 1 {
                    "tensor `x` for the model's input".to_string()
                } else {
                    format!("tensor `{name}` for model input {i}")
                }),
            ));
        };
        let want = &input.shape;
        let ok = t.shape().len() == want.len()
            && t.shape()
                .iter()
                .zip(want)
                .skip(1)
                .all(|(a, b)| b.is_none_or(|b| b == *a));
        if !ok {
            return Err(ImportError::new(
                &p,
                ErrorKind::ShapeMismatch {
                    what: format!("input `{}` (model expects {:?})", input.name, want),
                    expected: want.iter().map(|d| d.unwrap_or(0)).collect(),
                    found: t.shape().to_vec(),
                },
            ));
        }
    }
    Ok(Some(f))
}
