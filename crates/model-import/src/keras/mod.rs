//! Keras 3 `.keras` archives (placeholder until the importer lands).

use std::path::Path;

use model_ir::Model;

use crate::error::{ErrorKind, ImportError};

/// Imports a `.keras` archive held in memory.
pub(crate) fn import_keras(_bytes: &[u8], path: &Path) -> Result<Model, ImportError> {
    Err(ImportError::new(
        path,
        ErrorKind::Unsupported("keras import not built yet".into()),
    ))
}
