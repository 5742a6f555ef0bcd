//! Reads what Keras and PyTorch export and turns it into [`model_ir::Model`].
//!
//! Formats: Keras 3 `.keras` archives (config.json, compile_config, model.weights.h5),
//! ONNX files from `torch.onnx.export`, safetensors files, and the bundle training configs
//! (`fit.json`, `train.json`). Every file is read whole into memory (the allocation is the
//! file's real size) and parsed there; every declared size is checked against the bytes that
//! are really present. Errors name the file and the problem on one line.
//!
//! This is the only crate that knows file formats and framework parameter names.

mod bundle;
mod error;
mod hdf5;
mod keras;
mod onnx;
mod safetensors_io;
mod training;

pub use bundle::{Bundle, Loaded, load_bundle, load_path};
pub use error::{ErrorKind, ImportError};
pub use safetensors_io::{TensorFile, load_safetensors, parse_safetensors};
pub use training::{SpatialDropoutRecord, parse_fit_json, parse_spatial_dropout, parse_train_json};

use std::path::Path;

use model_ir::Model;

/// Imports a Keras 3 `.keras` archive.
pub fn load_keras(path: &Path) -> Result<Model, ImportError> {
    let bytes = error::read_file(path)?;
    keras::import_keras(&bytes, path)
}

/// Imports an ONNX model (PyTorch or Keras export).
pub fn load_onnx(path: &Path) -> Result<Model, ImportError> {
    let bytes = error::read_file(path)?;
    onnx::import_onnx(&bytes, path)
}
