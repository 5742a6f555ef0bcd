//! Tensors: f32/f64 for compute, f16/bf16 storage through `half`, i64/i32 for indices.

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};
use serde::Serialize;

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    U8,
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 | DType::Bool => 1,
        }
    }

    /// Whether the type holds floating-point values.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }

    /// Lower-case name as printed in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::U8 => "u8",
            DType::Bool => "bool",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A dense n-dimensional tensor in its storage type.
///
/// Parameters keep the dtype the framework saved them in; compute converts to f32 or f64
/// with [`Tensor::to_f32`] / [`Tensor::to_f64`].
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
    F16(ArrayD<f16>),
    BF16(ArrayD<bf16>),
    I64(ArrayD<i64>),
    I32(ArrayD<i32>),
    U8(ArrayD<u8>),
    Bool(ArrayD<bool>),
}

macro_rules! each {
    ($t:expr, $a:ident => $e:expr) => {
        match $t {
            Tensor::F32($a) => $e,
            Tensor::F64($a) => $e,
            Tensor::F16($a) => $e,
            Tensor::BF16($a) => $e,
            Tensor::I64($a) => $e,
            Tensor::I32($a) => $e,
            Tensor::U8($a) => $e,
            Tensor::Bool($a) => $e,
        }
    };
}

impl Tensor {
    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::F64(_) => DType::F64,
            Tensor::F16(_) => DType::F16,
            Tensor::BF16(_) => DType::BF16,
            Tensor::I64(_) => DType::I64,
            Tensor::I32(_) => DType::I32,
            Tensor::U8(_) => DType::U8,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    pub fn shape(&self) -> &[usize] {
        each!(self, a => a.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        each!(self, a => a.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the data in bytes.
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().size()
    }

    /// Values widened (or narrowed) to f32, in logical row-major order.
    pub fn to_f32(&self) -> ArrayD<f32> {
        match self {
            Tensor::F32(a) => a.clone(),
            Tensor::F64(a) => a.mapv(|v| v as f32),
            Tensor::F16(a) => a.mapv(f32::from),
            Tensor::BF16(a) => a.mapv(f32::from),
            Tensor::I64(a) => a.mapv(|v| v as f32),
            Tensor::I32(a) => a.mapv(|v| v as f32),
            Tensor::U8(a) => a.mapv(f32::from),
            Tensor::Bool(a) => a.mapv(|v| if v { 1.0 } else { 0.0 }),
        }
    }

    /// Values converted to f64, in logical row-major order.
    pub fn to_f64(&self) -> ArrayD<f64> {
        match self {
            Tensor::F32(a) => a.mapv(f64::from),
            Tensor::F64(a) => a.clone(),
            Tensor::F16(a) => a.mapv(f64::from),
            Tensor::BF16(a) => a.mapv(f64::from),
            Tensor::I64(a) => a.mapv(|v| v as f64),
            Tensor::I32(a) => a.mapv(f64::from),
            Tensor::U8(a) => a.mapv(f64::from),
            Tensor::Bool(a) => a.mapv(|v| if v { 1.0 } else { 0.0 }),
        }
    }

    /// Integer values as i64 (floats are truncated), for indices and shapes.
    pub fn to_i64(&self) -> ArrayD<i64> {
        match self {
            Tensor::I64(a) => a.clone(),
            Tensor::I32(a) => a.mapv(i64::from),
            Tensor::U8(a) => a.mapv(i64::from),
            Tensor::Bool(a) => a.mapv(i64::from),
            other => other.to_f64().mapv(|v| v as i64),
        }
    }

    /// The same values with axes permuted (`perm[i]` = source axis of result axis i).
    ///
    /// Panics if `perm` is not a permutation of the tensor's axes; callers validate first.
    pub fn permuted(&self, perm: &[usize]) -> Tensor {
        fn p<T: Clone>(a: &ArrayD<T>, perm: &[usize]) -> ArrayD<T> {
            a.view()
                .permuted_axes(IxDyn(perm))
                .as_standard_layout()
                .into_owned()
        }
        match self {
            Tensor::F32(a) => Tensor::F32(p(a, perm)),
            Tensor::F64(a) => Tensor::F64(p(a, perm)),
            Tensor::F16(a) => Tensor::F16(p(a, perm)),
            Tensor::BF16(a) => Tensor::BF16(p(a, perm)),
            Tensor::I64(a) => Tensor::I64(p(a, perm)),
            Tensor::I32(a) => Tensor::I32(p(a, perm)),
            Tensor::U8(a) => Tensor::U8(p(a, perm)),
            Tensor::Bool(a) => Tensor::Bool(p(a, perm)),
        }
    }

    /// The same values in row-major order under a new shape with the same element count.
    ///
    /// Returns `None` when the element counts differ.
    pub fn reshaped(&self, shape: &[usize]) -> Option<Tensor> {
        fn r<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> Option<ArrayD<T>> {
            let v: Vec<T> = a.iter().cloned().collect();
            ArrayD::from_shape_vec(IxDyn(shape), v).ok()
        }
        Some(match self {
            Tensor::F32(a) => Tensor::F32(r(a, shape)?),
            Tensor::F64(a) => Tensor::F64(r(a, shape)?),
            Tensor::F16(a) => Tensor::F16(r(a, shape)?),
            Tensor::BF16(a) => Tensor::BF16(r(a, shape)?),
            Tensor::I64(a) => Tensor::I64(r(a, shape)?),
            Tensor::I32(a) => Tensor::I32(r(a, shape)?),
            Tensor::U8(a) => Tensor::U8(r(a, shape)?),
            Tensor::Bool(a) => Tensor::Bool(r(a, shape)?),
        })
    }

    /// Builds an f32 tensor from a shape and row-major values; `None` if they disagree.
    pub fn from_f32(shape: &[usize], values: Vec<f32>) -> Option<Tensor> {
        ArrayD::from_shape_vec(IxDyn(shape), values)
            .ok()
            .map(Tensor::F32)
    }
}

impl Tensor {
    /// Gathers `indices` along `axis` (like `ndarray::ArrayBase::select`).
    ///
    /// Panics if `axis` or an index is out of range; callers validate first.
    pub fn select(&self, axis: usize, indices: &[usize]) -> Tensor {
        let ax = ndarray::Axis(axis);
        match self {
            Tensor::F32(a) => Tensor::F32(a.select(ax, indices)),
            Tensor::F64(a) => Tensor::F64(a.select(ax, indices)),
            Tensor::F16(a) => Tensor::F16(a.select(ax, indices)),
            Tensor::BF16(a) => Tensor::BF16(a.select(ax, indices)),
            Tensor::I64(a) => Tensor::I64(a.select(ax, indices)),
            Tensor::I32(a) => Tensor::I32(a.select(ax, indices)),
            Tensor::U8(a) => Tensor::U8(a.select(ax, indices)),
            Tensor::Bool(a) => Tensor::Bool(a.select(ax, indices)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_and_select() {
        let t = Tensor::from_f32(&[2, 3], vec![0., 1., 2., 3., 4., 5.]).unwrap();
        let p = t.permuted(&[1, 0]);
        assert_eq!(p.shape(), &[3, 2]);
        assert_eq!(
            p.to_f32().iter().copied().collect::<Vec<_>>(),
            vec![0., 3., 1., 4., 2., 5.]
        );
        let s = t.select(1, &[2, 0]);
        assert_eq!(
            s.to_f32().iter().copied().collect::<Vec<_>>(),
            vec![2., 0., 5., 3.]
        );
        assert!(t.reshaped(&[4]).is_none());
        assert_eq!(t.reshaped(&[3, 2]).unwrap().shape(), &[3, 2]);
    }

    #[test]
    fn half_storage_widens() {
        let t = Tensor::F16(ArrayD::from_elem(IxDyn(&[2]), f16::from_f32(0.5)));
        assert_eq!(t.dtype(), DType::F16);
        assert_eq!(t.nbytes(), 4);
        assert!((t.to_f64()[[0]] - 0.5).abs() < 1e-12);
    }
}
