//! safetensors files: PyTorch `state_dict` exports, Keras-named weight files, bundle inputs.
//!
//! The header is validated by the `safetensors` crate (header length, offsets inside the
//! buffer, no overlaps); tensor data is converted straight from the borrowed bytes into
//! [`model_ir::Tensor`] with one copy.

use std::collections::BTreeMap;
use std::path::Path;

use half::{bf16, f16};
use model_ir::Tensor;
use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};

use crate::error::{ErrorKind, ImportError, read_file};

/// The tensors and string metadata of one safetensors file, sorted by name.
#[derive(Debug, Clone, Default)]
pub struct TensorFile {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// The tensor with this name.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }
}

/// Reads a safetensors file.
pub fn load_safetensors(path: &Path) -> Result<TensorFile, ImportError> {
    let bytes = read_file(path)?;
    parse_safetensors(&bytes, path)
}

/// Parses safetensors bytes; `path` names the file in errors.
pub fn parse_safetensors(bytes: &[u8], path: &Path) -> Result<TensorFile, ImportError> {
    if bytes.len() < 8 {
        return Err(ImportError::new(
            path,
            ErrorKind::Truncated(format!(
                "{} bytes, a safetensors file starts with an 8-byte header length",
                bytes.len()
            )),
        ));
    }
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| classify(path, e, bytes))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| classify(path, e, bytes))?;
    let mut out = TensorFile::default();
    if let Some(m) = meta.metadata() {
        for (k, v) in m {
            out.metadata.insert(k.clone(), v.clone());
        }
    }
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let t = convert(view.dtype(), &shape, view.data()).map_err(|msg| {
            ImportError::new(
                path,
                ErrorKind::Unsupported(format!("tensor `{name}`: {msg}")),
            )
        })?;
        out.tensors.insert(name, t);
    }
    Ok(out)
}

fn classify(path: &Path, e: safetensors::SafeTensorError, bytes: &[u8]) -> ImportError {
    use safetensors::SafeTensorError as E;
    let kind = match &e {
        E::HeaderTooLarge => ErrorKind::TooLarge(format!("safetensors header: {e}")),
        E::HeaderTooSmall => ErrorKind::Truncated(format!("safetensors header: {e}")),
        E::InvalidHeaderLength => ErrorKind::Truncated(format!(
            "the header length exceeds the {}-byte file",
            bytes.len()
        )),
        E::InvalidHeader(_) | E::InvalidHeaderDeserialization(_) | E::JsonError(_) => {
            ErrorKind::Malformed(format!("safetensors header: {e}"))
        }
        E::MetadataIncompleteBuffer | E::InvalidOffset(_) => {
            ErrorKind::Truncated(format!("tensor data ends early: {e}"))
        }
        E::ValidationOverflow => ErrorKind::TooLarge(e.to_string()),
        _ => ErrorKind::Malformed(e.to_string()),
    };
    ImportError::new(path, kind)
}

fn convert(dtype: Dtype, shape: &[usize], data: &[u8]) -> Result<Tensor, String> {
    fn arr<T, const N: usize>(
        shape: &[usize],
        data: &[u8],
        f: impl Fn([u8; N]) -> T,
    ) -> Result<ArrayD<T>, String> {
        let v: Vec<T> = data
            .chunks_exact(N)
            .map(|c| {
                let mut b = [0u8; N];
                b.copy_from_slice(c);
                f(b)
            })
            .collect();
        ArrayD::from_shape_vec(IxDyn(shape), v).map_err(|e| e.to_string())
    }
    Ok(match dtype {
        Dtype::F32 => Tensor::F32(arr(shape, data, f32::from_le_bytes)?),
        Dtype::F64 => Tensor::F64(arr(shape, data, f64::from_le_bytes)?),
        Dtype::F16 => Tensor::F16(arr(shape, data, |b| f16::from_bits(u16::from_le_bytes(b)))?),
        Dtype::BF16 => Tensor::BF16(arr(shape, data, |b| {
            bf16::from_bits(u16::from_le_bytes(b))
        })?),
        Dtype::I64 => Tensor::I64(arr(shape, data, i64::from_le_bytes)?),
        Dtype::I32 => Tensor::I32(arr(shape, data, i32::from_le_bytes)?),
        Dtype::U8 => Tensor::U8(arr(shape, data, |b: [u8; 1]| b[0])?),
        Dtype::I8 => Tensor::I32(arr(shape, data, |b: [u8; 1]| i32::from(b[0] as i8))?),
        Dtype::I16 => Tensor::I32(arr(shape, data, |b| i32::from(i16::from_le_bytes(b)))?),
        Dtype::BOOL => Tensor::Bool(arr(shape, data, |b: [u8; 1]| b[0] != 0)?),
        other => return Err(format!("dtype {other:?} is not supported")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend_from_slice(header.as_bytes());
        v.extend_from_slice(data);
        v
    }

    #[track_caller]
    fn check_err(bytes: &[u8], want: fn(&ErrorKind) -> bool) {
        let err = parse_safetensors(bytes, Path::new("t.safetensors")).unwrap_err();
        assert!(want(&err.kind), "unexpected error: {err}");
        assert!(err.to_string().starts_with("t.safetensors: "), "{err}");
    }

    #[test]
    fn reads_f32_and_metadata() {
        let h = r#"{"__metadata__":{"framework":"torch"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let mut d = 1.5f32.to_le_bytes().to_vec();
        d.extend(2.5f32.to_le_bytes());
        let f = parse_safetensors(&file(h, &d), Path::new("t.safetensors")).unwrap();
        assert_eq!(f.metadata["framework"], "torch");
        let w = f.get("w").unwrap().to_f32();
        assert!((w[[1]] - 2.5).abs() < 1e-6);
    }

    #[test]
    fn bad_inputs_are_errors() {
        check_err(&[1, 2, 3], |k| matches!(k, ErrorKind::Truncated(_)));
        // Header length larger than the file.
        check_err(&file("{}", &[])[..8], |k| {
            matches!(k, ErrorKind::Truncated(_))
        });
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(b"{}");
        check_err(&huge, |k| {
            matches!(k, ErrorKind::TooLarge(_) | ErrorKind::Truncated(_))
        });
        check_err(&file("not json", &[]), |k| {
            matches!(k, ErrorKind::Malformed(_))
        });
        // Data shorter than the offsets declare.
        let h = r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
        check_err(&file(h, &[0; 8]), |k| {
            matches!(k, ErrorKind::Truncated(_) | ErrorKind::Malformed(_))
        });
        // Shape disagreeing with the byte count.
        let h = r#"{"w":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,8]}}"#;
        check_err(&file(h, &[0; 8]), |k| {
            matches!(k, ErrorKind::Malformed(_) | ErrorKind::TooLarge(_))
        });
    }
}
