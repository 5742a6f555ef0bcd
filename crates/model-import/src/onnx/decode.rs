//! Decoding: protobuf bytes into the prost types, `TensorProto` into [`model_ir::Tensor`],
//! and typed access to node attributes.
//!
//! Every declared size is checked against the bytes actually present before anything is
//! allocated for it: a tensor's `product(dims) · element size` must match its `raw_data` (or
//! the length of its typed field), with overflow-checked arithmetic.

use half::{bf16, f16};
use model_ir::{DType, Tensor};
use ndarray::{ArrayD, IxDyn};
use onnx_proto::Message;
use onnx_proto::onnx::{AttributeProto, ModelProto, NodeProto, TensorProto};

use crate::error::ErrorKind;

/// Decodes a whole model. A structure that runs past the end of the bytes is `Truncated`;
/// anything else prost rejects is `Malformed`.
pub(crate) fn decode_model(bytes: &[u8]) -> Result<ModelProto, ErrorKind> {
    ModelProto::decode(bytes).map_err(|e| match top_level_truncation(bytes) {
        Some(what) => ErrorKind::Truncated(format!("not a complete ONNX protobuf: {what}")),
        None => ErrorKind::Malformed(format!("not an ONNX protobuf: {e}")),
    })
}

/// Walks the top-level fields of a protobuf message and reports the first one that extends
/// past the end of `bytes` (nested messages are length-delimited, so a cut anywhere inside
/// one shows up here as a length that runs past the end).
fn top_level_truncation(bytes: &[u8]) -> Option<String> {
    let mut pos = 0usize;
    while pos < bytes.len() {
        let (key, next) = match read_varint(bytes, pos) {
            Varint::Value(v, next) => (v, next),
            Varint::Eof => return Some(format!("a field key at byte {pos} is cut off")),
            Varint::TooLong => return None,
        };
        pos = next;
        let field = key >> 3;
        match key & 7 {
            0 => match read_varint(bytes, pos) {
                Varint::Value(_, next) => pos = next,
                Varint::Eof => {
                    return Some(format!(
                        "the value of field {field} at byte {pos} is cut off"
                    ));
                }
                Varint::TooLong => return None,
            },
            1 | 5 => {
                let width = if key & 7 == 1 { 8 } else { 4 };
                if bytes.len() - pos < width {
                    return Some(format!(
                        "the value of field {field} at byte {pos} is cut off"
                    ));
                }
                pos += width;
            }
            2 => {
                let (len, next) = match read_varint(bytes, pos) {
                    Varint::Value(v, next) => (v, next),
                    Varint::Eof => {
                        return Some(format!(
                            "the length of field {field} at byte {pos} is cut off"
                        ));
                    }
                    Varint::TooLong => return None,
                };
                let remaining = (bytes.len() - next) as u64;
                if len > remaining {
                    return Some(format!(
                        "field {field} at byte {pos} declares {len} bytes but only {remaining} follow"
                    ));
                }
                pos = next + len as usize;
            }
            _ => return None,
        }
    }
    None
}

enum Varint {
    Value(u64, usize),
    Eof,
    TooLong,
}

fn read_varint(bytes: &[u8], start: usize) -> Varint {
    let mut value = 0u64;
    for i in 0..10 {
        let Some(&b) = bytes.get(start + i) else {
            return Varint::Eof;
        };
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Varint::Value(value, start + i + 1);
        }
    }
    Varint::TooLong
}

/// The name ONNX gives a `TensorProto.DataType` code.
pub(crate) fn onnx_type_name(code: i32) -> String {
    let name = match code {
        0 => "UNDEFINED",
        1 => "FLOAT",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "STRING",
        9 => "BOOL",
        10 => "FLOAT16",
        11 => "DOUBLE",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        16 => "BFLOAT16",
        17 => "FLOAT8E4M3FN",
        18 => "FLOAT8E4M3FNUZ",
        19 => "FLOAT8E5M2",
        20 => "FLOAT8E5M2FNUZ",
        21 => "UINT4",
        22 => "INT4",
        23 => "FLOAT4E2M1",
        _ => return format!("code {code}"),
    };
    name.to_string()
}

/// Maps an ONNX element type to the IR's; `what` names the tensor or value in messages.
pub(crate) fn dtype_of(code: i32, what: &str) -> Result<DType, ErrorKind> {
    Ok(match code {
        1 => DType::F32,
        2 => DType::U8,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::Bool,
        10 => DType::F16,
        11 => DType::F64,
        16 => DType::BF16,
        3..=23 => {
            return Err(ErrorKind::Unsupported(format!(
                "{what} has element type {}",
                onnx_type_name(code)
            )));
        }
        _ => {
            return Err(ErrorKind::Malformed(format!(
                "{what} has data type {code}, which ONNX does not define"
            )));
        }
    })
}

/// Converts a `TensorProto` into a tensor, checking every declared size against the data.
///
/// `file_len` is the size of the whole file: no tensor can hold more elements than that.
pub(crate) fn tensor_from_proto(
    t: &TensorProto,
    what: &str,
    file_len: usize,
) -> Result<Tensor, ErrorKind> {
    if t.data_location == Some(1) || !t.external_data.is_empty() {
        let location = t
            .external_data
            .iter()
            .find(|e| e.key.as_deref() == Some("location"))
            .and_then(|e| e.value.clone())
            .unwrap_or_else(|| "an unnamed file".into());
        return Err(ErrorKind::Unsupported(format!(
            "external data: {what} is stored outside the model, in {location}; \
             export with the weights inside the file (external_data=False)"
        )));
    }
    if t.segment.is_some() {
        return Err(ErrorKind::Unsupported(format!(
            "{what} is a segment of a split tensor"
        )));
    }
    let mut dims = Vec::with_capacity(t.dims.len());
    let mut count: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d)
            .map_err(|_| ErrorKind::Malformed(format!("{what} has a negative dimension {d}")))?;
        count = count.checked_mul(d).ok_or_else(|| {
            ErrorKind::TooLarge(format!(
                "{what} declares dims {:?}: the element count overflows",
                t.dims
            ))
        })?;
        dims.push(d);
    }
    let code = t.data_type.unwrap_or(0);
    let dtype = dtype_of(code, what)?;
    let nbytes = count.checked_mul(dtype.size()).ok_or_else(|| {
        ErrorKind::TooLarge(format!(
            "{what} declares dims {:?}: the byte size overflows",
            t.dims
        ))
    })?;
    if count > file_len {
        return Err(ErrorKind::TooLarge(format!(
            "{what} declares dims {:?} ({count} elements, {nbytes} bytes), more than the whole file ({file_len} bytes) can hold",
            t.dims
        )));
    }
    if let Some(raw) = t
        .raw_data
        .as_deref()
        .filter(|r| !r.is_empty() || count == 0)
    {
        if raw.len() != nbytes {
            return Err(ErrorKind::Malformed(format!(
                "{what}: raw_data holds {} bytes, but dims {:?} of {} need {nbytes}",
                raw.len(),
                t.dims,
                onnx_type_name(code)
            )));
        }
        return from_raw(dtype, &dims, raw, what);
    }
    from_typed(t, dtype, &dims, count, what)
}

fn build<T>(dims: &[usize], v: Vec<T>, what: &str) -> Result<ArrayD<T>, ErrorKind> {
    ArrayD::from_shape_vec(IxDyn(dims), v).map_err(|e| ErrorKind::Malformed(format!("{what}: {e}")))
}

fn from_raw(dtype: DType, dims: &[usize], raw: &[u8], what: &str) -> Result<Tensor, ErrorKind> {
    macro_rules! le {
        ($t:ty, $n:expr) => {
            raw.chunks_exact($n)
                .map(|c| {
                    let mut b = [0u8; $n];
                    b.copy_from_slice(c);
                    <$t>::from_le_bytes(b)
                })
                .collect::<Vec<$t>>()
        };
    }
    Ok(match dtype {
        DType::F32 => Tensor::F32(build(dims, le!(f32, 4), what)?),
        DType::F64 => Tensor::F64(build(dims, le!(f64, 8), what)?),
        DType::I64 => Tensor::I64(build(dims, le!(i64, 8), what)?),
        DType::I32 => Tensor::I32(build(dims, le!(i32, 4), what)?),
        DType::F16 => Tensor::F16(build(
            dims,
            le!(u16, 2).into_iter().map(f16::from_bits).collect(),
            what,
        )?),
        DType::BF16 => Tensor::BF16(build(
            dims,
            le!(u16, 2).into_iter().map(bf16::from_bits).collect(),
            what,
        )?),
        DType::U8 => Tensor::U8(build(dims, raw.to_vec(), what)?),
        DType::Bool => Tensor::Bool(build(dims, raw.iter().map(|&b| b != 0).collect(), what)?),
    })
}

fn from_typed(
    t: &TensorProto,
    dtype: DType,
    dims: &[usize],
    count: usize,
    what: &str,
) -> Result<Tensor, ErrorKind> {
    let check = |field: &str, len: usize| {
        if len == count {
            Ok(())
        } else if len == 0 {
            Err(ErrorKind::Malformed(format!(
                "{what} declares dims {dims:?} but holds no data (no raw_data, empty {field})"
            )))
        } else {
            Err(ErrorKind::Malformed(format!(
                "{what}: {field} holds {len} values, but dims {dims:?} need {count}"
            )))
        }
    };
    let narrow = |v: i32, lo: i32, hi: i32| -> Result<i32, ErrorKind> {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            Err(ErrorKind::Malformed(format!(
                "{what}: int32_data value {v} is out of range for {dtype}"
            )))
        }
    };
    Ok(match dtype {
        DType::F32 => {
            check("float_data", t.float_data.len())?;
            Tensor::F32(build(dims, t.float_data.clone(), what)?)
        }
        DType::F64 => {
            check("double_data", t.double_data.len())?;
            Tensor::F64(build(dims, t.double_data.clone(), what)?)
        }
        DType::I64 => {
            check("int64_data", t.int64_data.len())?;
            Tensor::I64(build(dims, t.int64_data.clone(), what)?)
        }
        DType::I32 => {
            check("int32_data", t.int32_data.len())?;
            Tensor::I32(build(dims, t.int32_data.clone(), what)?)
        }
        DType::F16 | DType::BF16 => {
            check("int32_data", t.int32_data.len())?;
            let bits = t
                .int32_data
                .iter()
                .map(|&v| narrow(v, 0, 0xffff).map(|v| v as u16))
                .collect::<Result<Vec<u16>, _>>()?;
            if dtype == DType::F16 {
                Tensor::F16(build(
                    dims,
                    bits.into_iter().map(f16::from_bits).collect(),
                    what,
                )?)
            } else {
                Tensor::BF16(build(
                    dims,
                    bits.into_iter().map(bf16::from_bits).collect(),
                    what,
                )?)
            }
        }
        DType::U8 => {
            check("int32_data", t.int32_data.len())?;
            let v = t
                .int32_data
                .iter()
                .map(|&v| narrow(v, 0, 255).map(|v| v as u8))
                .collect::<Result<Vec<u8>, _>>()?;
            Tensor::U8(build(dims, v, what)?)
        }
        DType::Bool => {
            check("int32_data", t.int32_data.len())?;
            let v = t
                .int32_data
                .iter()
                .map(|&v| narrow(v, 0, 1).map(|v| v != 0))
                .collect::<Result<Vec<bool>, _>>()?;
            Tensor::Bool(build(dims, v, what)?)
        }
    })
}

/// Reads an f32 attribute or initializer value as the shortest decimal that round-trips it,
/// so `0.9f32` becomes `0.9` rather than `0.8999999761581421`.
pub(crate) fn f32_to_f64(v: f32) -> f64 {
    if !v.is_finite() {
        return f64::from(v);
    }
    format!("{v}").parse().unwrap_or(f64::from(v))
}

/// Typed access to a node's attributes, with errors that name the node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attrs<'a> {
    node: &'a NodeProto,
}

const T_FLOAT: i32 = 1;
const T_INT: i32 = 2;
const T_STRING: i32 = 3;
const T_TENSOR: i32 = 4;
const T_FLOATS: i32 = 6;
const T_INTS: i32 = 7;
const T_STRINGS: i32 = 8;

impl<'a> Attrs<'a> {
    pub(crate) fn new(node: &'a NodeProto) -> Attrs<'a> {
        Attrs { node }
    }

    fn node_name(&self) -> &str {
        self.node.name.as_deref().unwrap_or("")
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
    }

    /// Names of every attribute present.
    pub(crate) fn names(&self) -> Vec<&'a str> {
        self.node
            .attribute
            .iter()
            .filter_map(|a| a.name.as_deref())
            .collect()
    }

    fn typed(&self, name: &str, want: i32) -> Result<Option<&'a AttributeProto>, ErrorKind> {
        let Some(a) = self.get(name) else {
            return Ok(None);
        };
        if a.ref_attr_name.is_some() {
            return Err(ErrorKind::Unsupported(format!(
                "attribute `{name}` of node `{}` refers to a function attribute",
                self.node_name()
            )));
        }
        match a.r#type {
            Some(t) if t != want => Err(ErrorKind::Malformed(format!(
                "attribute `{name}` of node `{}` has type {t}, expected {want}",
                self.node_name()
            ))),
            _ => Ok(Some(a)),
        }
    }

    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, ErrorKind> {
        Ok(self.typed(name, T_INT)?.map(|a| a.i.unwrap_or(0)))
    }

    pub(crate) fn int_or(&self, name: &str, default: i64) -> Result<i64, ErrorKind> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    pub(crate) fn float(&self, name: &str) -> Result<Option<f64>, ErrorKind> {
        Ok(self
            .typed(name, T_FLOAT)?
            .map(|a| f32_to_f64(a.f.unwrap_or(0.0))))
    }

    pub(crate) fn float_or(&self, name: &str, default: f64) -> Result<f64, ErrorKind> {
        Ok(self.float(name)?.unwrap_or(default))
    }

    pub(crate) fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, ErrorKind> {
        Ok(self.typed(name, T_INTS)?.map(|a| a.ints.clone()))
    }

    pub(crate) fn floats(&self, name: &str) -> Result<Option<Vec<f64>>, ErrorKind> {
        Ok(self
            .typed(name, T_FLOATS)?
            .map(|a| a.floats.iter().map(|&v| f32_to_f64(v)).collect()))
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, ErrorKind> {
        Ok(self
            .typed(name, T_STRING)?
            .map(|a| String::from_utf8_lossy(a.s.as_deref().unwrap_or_default()).into_owned()))
    }

    /// A STRINGS attribute, lower-cased (activation names).
    pub(crate) fn strings_lower(&self, name: &str) -> Result<Option<Vec<String>>, ErrorKind> {
        Ok(self.typed(name, T_STRINGS)?.map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
                .collect()
        }))
    }

    pub(crate) fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, ErrorKind> {
        match self.typed(name, T_TENSOR)? {
            Some(a) => match &a.t {
                Some(t) => Ok(Some(t)),
                None => Err(ErrorKind::Malformed(format!(
                    "attribute `{name}` of node `{}` holds no tensor",
                    self.node_name()
                ))),
            },
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(dims: &[i64], code: i32) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(code),
            name: Some("t".into()),
            ..Default::default()
        }
    }

    #[track_caller]
    fn check(t: &TensorProto, expected: Result<&[f64], &str>) {
        let got = tensor_from_proto(t, "tensor `t`", 1 << 20);
        match (got, expected) {
            (Ok(t), Ok(values)) => {
                let v: Vec<f64> = t.to_f64().iter().copied().collect();
                assert_eq!(v, values);
            }
            (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{e}"),
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn typed_fields() {
        let mut t = proto(&[2], 1);
        t.float_data = vec![1.5, -2.0];
        check(&t, Ok(&[1.5, -2.0]));
        let mut t = proto(&[2], 11);
        t.double_data = vec![0.25, 3.0];
        check(&t, Ok(&[0.25, 3.0]));
        let mut t = proto(&[3], 7);
        t.int64_data = vec![1, -1, 7];
        check(&t, Ok(&[1.0, -1.0, 7.0]));
        let mut t = proto(&[2], 10);
        t.int32_data = vec![
            i32::from(f16::from_f32(0.5).to_bits()),
            i32::from(f16::from_f32(-2.0).to_bits()),
        ];
        check(&t, Ok(&[0.5, -2.0]));
        let mut t = proto(&[1], 16);
        t.int32_data = vec![i32::from(bf16::from_f32(3.0).to_bits())];
        check(&t, Ok(&[3.0]));
        let mut t = proto(&[2], 9);
        t.int32_data = vec![1, 0];
        check(&t, Ok(&[1.0, 0.0]));
        let mut t = proto(&[2], 2);
        t.int32_data = vec![255, 3];
        check(&t, Ok(&[255.0, 3.0]));
        let mut t = proto(&[1], 2);
        t.int32_data = vec![256];
        check(&t, Err("out of range"));
        let mut t = proto(&[], 6);
        t.int32_data = vec![-4];
        check(&t, Ok(&[-4.0]));
    }

    #[test]
    fn raw_data_is_little_endian() {
        let mut t = proto(&[2], 1);
        t.raw_data = Some([1.0f32.to_le_bytes(), 2.5f32.to_le_bytes()].concat());
        check(&t, Ok(&[1.0, 2.5]));
        let mut t = proto(&[1], 7);
        t.raw_data = Some((-3i64).to_le_bytes().to_vec());
        check(&t, Ok(&[-3.0]));
        let mut t = proto(&[2], 10);
        t.raw_data = Some(
            [
                f16::from_f32(1.0).to_le_bytes(),
                f16::from_f32(-0.5).to_le_bytes(),
            ]
            .concat(),
        );
        check(&t, Ok(&[1.0, -0.5]));
        let mut t = proto(&[1], 11);
        t.raw_data = Some(0.125f64.to_le_bytes().to_vec());
        check(&t, Ok(&[0.125]));
        let mut t = proto(&[3], 1);
        t.raw_data = Some(vec![0; 8]);
        check(&t, Err("raw_data holds 8 bytes"));
    }

    #[test]
    fn sizes_are_checked_before_allocating() {
        check(
            &proto(&[1 << 20, 1 << 20], 1),
            Err("more than the whole file"),
        );
        check(&proto(&[i64::MAX, i64::MAX], 1), Err("overflows"));
        check(&proto(&[-1], 1), Err("negative dimension"));
        check(&proto(&[2], 1), Err("holds no data"));
        check(&proto(&[2], 8), Err("element type STRING"));
        check(&proto(&[2], 99), Err("ONNX does not define"));
        let mut t = proto(&[0], 1);
        t.raw_data = Some(Vec::new());
        check(&t, Ok(&[]));
    }

    #[test]
    fn float_attributes_read_as_written() {
        assert_eq!(f32_to_f64(0.9).to_bits(), 0.9f64.to_bits());
        assert_eq!(f32_to_f64(1e-5).to_bits(), 1e-5f64.to_bits());
        assert_eq!(f32_to_f64(1.0 / 6.0).to_bits(), 0.16666667f64.to_bits());
    }

    #[test]
    fn truncation_is_told_apart_from_garbage() {
        // field 7 (graph), length 10, but only 2 bytes follow
        assert!(top_level_truncation(&[0x3a, 10, 0, 0]).is_some());
        // a varint key cut off
        assert!(top_level_truncation(&[0x80]).is_some());
        // an 11-byte varint is not a truncation
        assert!(top_level_truncation(&[0xff; 11]).is_none());
        assert!(matches!(
            decode_model(&[0xff; 11]),
            Err(ErrorKind::Malformed(_))
        ));
        assert!(matches!(
            decode_model(&[0x3a, 10, 0, 0]),
            Err(ErrorKind::Truncated(_))
        ));
    }
}
