//! The element type the engine computes in: `f32` (what both frameworks train in) or `f64`
//! (for finite-difference checks and reference runs).

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

use model_ir::{DType, Tensor};
use ndarray::{ArrayD, LinalgScalar, ScalarOperand};

/// A floating-point compute type, implemented for `f32` and `f64`.
pub trait Float:
    num_traits::Float
    + num_traits::FloatConst
    + LinalgScalar
    + ScalarOperand
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
    + Debug
    + Display
    + Default
    + Send
    + Sync
    + 'static
{
    /// The IR dtype with the same representation.
    const DTYPE: DType;

    /// Converts an `f64` constant (rounding to nearest for `f32`).
    fn of(v: f64) -> Self;

    /// Widens to `f64`.
    fn as_f64(self) -> f64;

    /// The error function (libm `erf` / `erff`).
    fn erf(self) -> Self;

    /// Converts a stored tensor of any dtype to this type, in logical row-major order.
    fn array_from(t: &Tensor) -> ArrayD<Self>;

    /// Wraps an array as an IR tensor of this dtype.
    fn into_tensor(a: ArrayD<Self>) -> Tensor;
}

impl Float for f32 {
    const DTYPE: DType = DType::F32;

    fn of(v: f64) -> f32 {
        v as f32
    }

    fn as_f64(self) -> f64 {
        f64::from(self)
    }

    fn erf(self) -> f32 {
        libm::erff(self)
    }

    fn array_from(t: &Tensor) -> ArrayD<f32> {
        t.to_f32()
    }

    fn into_tensor(a: ArrayD<f32>) -> Tensor {
        Tensor::F32(a)
    }
}

impl Float for f64 {
    const DTYPE: DType = DType::F64;

    fn of(v: f64) -> f64 {
        v
    }

    fn as_f64(self) -> f64 {
        self
    }

    fn erf(self) -> f64 {
        libm::erf(self)
    }

    fn array_from(t: &Tensor) -> ArrayD<f64> {
        t.to_f64()
    }

    fn into_tensor(a: ArrayD<f64>) -> Tensor {
        Tensor::F64(a)
    }
}

/// Shorthand for [`Float::of`].
pub(crate) fn c<F: Float>(v: f64) -> F {
    F::of(v)
}
