//! ONNX models exported by PyTorch (placeholder until the importer lands).

use std::path::Path;

use model_ir::Model;

use crate::error::{ErrorKind, ImportError};

/// Imports an ONNX model held in memory.
pub(crate) fn import_onnx(_bytes: &[u8], path: &Path) -> Result<Model, ImportError> {
    Err(ImportError::new(
        path,
        ErrorKind::Unsupported("onnx import not built yet".into()),
    ))
}
