//! Import errors: one line, naming the file and what is wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A file could not be imported. Displays as `<path>: <what is wrong>` on one line.
#[derive(Debug)]
pub struct ImportError {
    /// The file (or archive member, as `archive.keras!config.json`) the problem is in.
    pub path: PathBuf,
    pub kind: ErrorKind,
}

/// The class of problem, so callers and tests can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io(String),
    /// The file ends before a structure it declares.
    Truncated(String),
    /// The bytes are not what the format requires (bad magic, bad checksum, bad varint, ...).
    Malformed(String),
    /// A declared size, count or shape is beyond what the file can hold or than we accept.
    TooLarge(String),
    /// Valid JSON was expected.
    Json(String),
    /// A required archive member, group, tensor or field is absent.
    Missing(String),
    /// A tensor's shape disagrees with what the configuration implies.
    ShapeMismatch {
        what: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    /// A Keras layer class parallax cannot read.
    UnsupportedLayer { name: String, class: String },
    /// An ONNX op (or op pattern) parallax cannot lift.
    UnsupportedOp { node: String, op_type: String },
    /// Something valid that parallax does not handle (external data, a dtype, an option).
    Unsupported(String),
}

impl ImportError {
    pub fn new(path: impl Into<PathBuf>, kind: ErrorKind) -> ImportError {
        ImportError {
            path: path.into(),
            kind,
        }
    }

    /// The same error located in an archive member (`model.keras!config.json`).
    pub fn in_member(path: &Path, member: &str, kind: ErrorKind) -> ImportError {
        let mut p = path.as_os_str().to_owned();
        p.push("!");
        p.push(member);
        ImportError::new(PathBuf::from(p), kind)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Io(m) => write!(f, "cannot read: {m}"),
            ErrorKind::Truncated(m) => write!(f, "truncated: {m}"),
            ErrorKind::Malformed(m) => write!(f, "malformed: {m}"),
            ErrorKind::TooLarge(m) => write!(f, "too large: {m}"),
            ErrorKind::Json(m) => write!(f, "invalid JSON: {m}"),
            ErrorKind::Missing(m) => write!(f, "missing {m}"),
            ErrorKind::ShapeMismatch {
                what,
                expected,
                found,
            } => write!(
                f,
                "shape mismatch for {what}: expected {expected:?}, found {found:?}"
            ),
            ErrorKind::UnsupportedLayer { name, class } => {
                write!(f, "unsupported layer `{name}` of class {class}")
            }
            ErrorKind::UnsupportedOp { node, op_type } => {
                write!(f, "unsupported op {op_type} at node `{node}`")
            }
            ErrorKind::Unsupported(m) => write!(f, "unsupported: {m}"),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever the message contains.
        let msg = self.kind.to_string().replace(['\n', '\r'], " ");
        write!(f, "{}: {}", self.path.display(), msg)
    }
}

impl std::error::Error for ImportError {}

/// Reads a whole file into memory; the allocation is the file's real size.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, ImportError> {
    std::fs::read(path).map_err(|e| ImportError::new(path, ErrorKind::Io(e.to_string())))
}
