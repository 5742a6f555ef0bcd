//! Explicit tolerances for every float comparison (STYLE rule 8): never `==` on floats.

use serde::Serialize;

/// How close two floats must be to count as equal: |a − b| ≤ atol + rtol·|b|.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Tolerance {
    /// Bit-identical (with 0 = −0 and NaN = NaN).
    Exact,
    /// float32 round-off of a few operations: atol 1e-6, rtol 1e-5.
    Close,
    /// Accumulated float32 round-off: atol 1e-4, rtol 1e-3.
    Approximate,
    Custom {
        atol: f64,
        rtol: f64,
    },
    /// At most `n` float32 units in the last place apart.
    Ulp(u32),
}

impl Tolerance {
    /// `(atol, rtol)` of the absolute/relative forms (`Exact` and `Ulp` give zeros).
    pub fn atol_rtol(self) -> (f64, f64) {
        match self {
            Tolerance::Exact | Tolerance::Ulp(_) => (0.0, 0.0),
            Tolerance::Close => (1e-6, 1e-5),
            Tolerance::Approximate => (1e-4, 1e-3),
            Tolerance::Custom { atol, rtol } => (atol, rtol),
        }
    }

    /// Whether `a` and `b` (the reference) are equal within the tolerance.
    pub fn close(self, a: f64, b: f64) -> bool {
        if a.is_nan() || b.is_nan() {
            return a.is_nan() && b.is_nan();
        }
        match self {
            Tolerance::Exact => a.total_cmp(&b).is_eq() || (a.abs() + b.abs()) <= 0.0,
            Tolerance::Ulp(n) => {
                let (x, y) = (a as f32, b as f32);
                if x.is_sign_negative() != y.is_sign_negative() {
                    return (x.abs() + y.abs()) <= 0.0;
                }
                x.to_bits().abs_diff(y.to_bits()) <= n
            }
            _ => {
                if a.is_infinite() || b.is_infinite() {
                    return a.total_cmp(&b).is_eq();
                }
                let (atol, rtol) = self.atol_rtol();
                (a - b).abs() <= atol + rtol * b.abs()
            }
        }
    }

    /// Whether two equally long sequences are element-wise close (false on a length mismatch).
    pub fn all_close(self, a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| self.close(*x, *y))
    }
}

#[cfg(test)]
mod tests {
    use super::Tolerance;

    #[test]
    fn tolerances() {
        assert!(Tolerance::Exact.close(1.5, 1.5));
        assert!(Tolerance::Exact.close(0.0, -0.0));
        assert!(!Tolerance::Exact.close(1.5, 1.5 + 1e-12));
        assert!(Tolerance::Close.close(1.0 + 5e-6, 1.0));
        assert!(!Tolerance::Close.close(1.0 + 5e-5, 1.0));
        assert!(Tolerance::Approximate.close(1.0005, 1.0));
        assert!(
            Tolerance::Custom {
                atol: 0.1,
                rtol: 0.0
            }
            .close(0.05, 0.0)
        );
        assert!(Tolerance::Ulp(1).close(f64::from(1.0f32), f64::from(1.0f32 + f32::EPSILON)));
        assert!(!Tolerance::Ulp(0).close(1.0, 1.0 + 1e-6));
        assert!(Tolerance::Close.all_close(&[1.0, 2.0], &[1.0, 2.0]));
        assert!(!Tolerance::Close.all_close(&[1.0], &[1.0, 2.0]));
        assert!(Tolerance::Close.close(f64::NAN, f64::NAN));
    }
}
