//! Summary statistics of a tensor and the tests that compare two weight distributions or
//! name the initializer a tensor was drawn from.

use report::{Tolerance, sig};

/// Moments and range of a set of values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) n: usize,
    pub(crate) mean: f64,
    /// Population standard deviation.
    pub(crate) std: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// Kurtosis (4th standardized moment; uniform 1.8, normal 3).
    pub(crate) kurtosis: f64,
}

impl Stats {
    pub(crate) fn of(v: &[f64]) -> Stats {
        let n = v.len().max(1);
        let mean = v.iter().sum::<f64>() / n as f64;
        let m2 = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let m4 = v.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n as f64;
        let (min, max) = v
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(*x), b.max(*x))
            });
        Stats {
            n: v.len(),
            mean,
            std: m2.sqrt(),
            min: if v.is_empty() { 0.0 } else { min },
            max: if v.is_empty() { 0.0 } else { max },
            kurtosis: if m2 > 0.0 { m4 / (m2 * m2) } else { 0.0 },
        }
    }

    pub(crate) fn absmax(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }

    /// All values equal (within float32 round-off of the mean).
    pub(crate) fn constant(&self) -> bool {
        self.std <= 1e-7 * (1.0 + self.mean.abs())
    }

    /// Uniform-looking: flat (kurtosis near 1.8) and the range is √3 standard deviations.
    pub(crate) fn uniformish(&self) -> bool {
        if self.constant() {
            return false;
        }
        let centred = self.mean.abs() < 0.2 * self.absmax();
        let ratio = self.absmax() / (self.std * 3f64.sqrt());
        let flat = self.n < 40 || self.kurtosis < 2.3;
        centred && flat && (0.75..1.15).contains(&ratio)
    }
}

/// A distribution a tensor may have been drawn from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Dist {
    Constant(f64),
    Uniform(f64),
    /// Normal with this standard deviation (truncated normals count too).
    Normal(f64),
    /// Orthogonal rows or columns (unit norm): entry std ≈ 1/√(longer side).
    Orthogonal,
}

/// A known initializer: name, framework, distribution.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub(crate) name: String,
    pub(crate) dist: Dist,
}

/// Whether a tensor with these statistics (and, for orthogonality, these values and
/// matrix shape) fits `dist`.
pub(crate) fn fits(s: &Stats, dist: &Dist, orthogonal: bool) -> bool {
    match dist {
        Dist::Constant(c) => {
            s.constant()
                && Tolerance::Custom {
                    atol: 1e-6,
                    rtol: 1e-5,
                }
                .close(s.mean, *c)
        }
        Dist::Uniform(b) => {
            if s.constant() || *b <= 0.0 {
                return false;
            }
            // The sample maximum of n draws falls short of b by about b/n.
            let lo = 1.0 - (4.0 / s.n.max(1) as f64).max(0.08);
            let r = s.absmax() / b;
            s.uniformish() && r > lo && r < 1.0005
        }
        Dist::Normal(sd) => {
            if s.constant() || *sd <= 0.0 {
                return false;
            }
            let tol = (3.0 / (s.n.max(1) as f64).sqrt()).max(0.08);
            let flat = s.n >= 200 && s.kurtosis < 2.2;
            (s.std / sd - 1.0).abs() < tol && !flat && s.mean.abs() < 0.2 * s.std + 1e-12
        }
        Dist::Orthogonal => orthogonal,
    }
}

/// Whether a matrix (rows × cols, row-major) has orthonormal rows or columns within 1e-3.
pub(crate) fn orthogonal(v: &[f64], rows: usize, cols: usize) -> bool {
    if rows * cols != v.len() || rows == 0 || cols == 0 {
        return false;
    }
    let (short, long, by_rows) = if rows <= cols {
        (rows, cols, true)
    } else {
        (cols, rows, false)
    };
    let at = |i: usize, k: usize| {
        if by_rows {
            v[i * cols + k]
        } else {
            v[k * cols + i]
        }
    };
    for i in 0..short {
        for j in i..short {
            let dot: f64 = (0..long).map(|k| at(i, k) * at(j, k)).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            if (dot - want).abs() > 1e-3 {
                return false;
            }
        }
    }
    true
}

/// Short description of observed values: `zeros`, `ones`, `U(±0.125), std 0.0722`,
/// `N(0, 0.998)`, `mean 0.25, std 0.433, range [0, 1]`.
pub(crate) fn describe(s: &Stats, values: &[f64]) -> String {
    if s.n == 0 {
        return "empty".into();
    }
    if s.constant() {
        return match s.mean {
            m if m.abs() < 1e-12 => "zeros".into(),
            m if (m - 1.0).abs() < 1e-6 => "ones".into(),
            m => format!("constant {}", sig(m)),
        };
    }
    let two_valued = values
        .iter()
        .all(|v| v.abs() < 1e-12 || (v - 1.0).abs() < 1e-6);
    if two_valued {
        let ones = values.iter().filter(|v| (**v - 1.0).abs() < 1e-6).count();
        return format!("{ones} ones, {} zeros", s.n - ones);
    }
    if s.uniformish() {
        format!("U(±{}), std {}", sig(s.absmax()), sig(s.std))
    } else if s.mean.abs() < 0.2 * s.std {
        format!(
            "N(0, {}) or similar, range [{}, {}]",
            sig(s.std),
            sig(s.min),
            sig(s.max)
        )
    } else {
        format!(
            "mean {}, std {}, range [{}, {}]",
            sig(s.mean),
            sig(s.std),
            sig(s.min),
            sig(s.max)
        )
    }
}

/// Whether two independent draws look like the same distribution: equal constants, or two
/// random tensors whose standard deviations agree within sampling error (and whose shapes,
/// uniform vs bell-shaped, agree when there are enough values to tell).
pub(crate) fn same_distribution(a: &Stats, b: &Stats, orth_a: bool, orth_b: bool) -> bool {
    match (a.constant(), b.constant()) {
        (true, true) => Tolerance::Custom {
            atol: 1e-6,
            rtol: 1e-5,
        }
        .close(b.mean, a.mean),
        (true, false) | (false, true) => false,
        (false, false) => {
            if orth_a != orth_b {
                return false;
            }
            let se = (1.0 / (2.0 * a.n.max(1) as f64) + 1.0 / (2.0 * b.n.max(1) as f64)).sqrt();
            let tol = (0.1 + 3.0 * se).min(0.5);
            let r = b.std / a.std;
            let scale_ok = r.ln().abs() < (1.0 + tol).ln();
            let mean_ok =
                (a.mean - b.mean).abs() < 0.25 * a.std.max(b.std) + 4.0 * se * a.std.max(b.std);
            let shape_ok = a.n < 200 || b.n < 200 || a.uniformish() == b.uniformish();
            scale_ok && mean_ok && shape_ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic uniform(−b, b) values.
    fn uniform(n: usize, b: f64) -> Vec<f64> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x as f64 / u64::MAX as f64 * 2.0 - 1.0) * b
            })
            .collect()
    }

    #[test]
    fn uniform_is_recognised_and_named() {
        let v = uniform(8192, 0.125);
        let s = Stats::of(&v);
        assert!(s.uniformish());
        assert!(fits(&s, &Dist::Uniform(0.125), false));
        assert!(!fits(&s, &Dist::Uniform(0.25), false));
        assert!(!fits(&s, &Dist::Constant(0.0), false));
        assert!(describe(&s, &v).starts_with("U(±0.125)"));
    }

    #[test]
    fn zeros_differ_from_uniform() {
        let z = vec![0.0; 128];
        let u = uniform(128, 0.125);
        let (sz, su) = (Stats::of(&z), Stats::of(&u));
        assert_eq!(describe(&sz, &z), "zeros");
        assert!(!same_distribution(&sz, &su, false, false));
        assert!(same_distribution(
            &su,
            &Stats::of(&uniform(200, 0.125)[72..]),
            false,
            false
        ));
        assert!(!same_distribution(
            &su,
            &Stats::of(&uniform(128, 0.25)),
            false,
            false
        ));
    }

    #[test]
    fn orthogonality() {
        let id = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        assert!(orthogonal(&id, 2, 3));
        assert!(!orthogonal(&uniform(6, 1.0), 2, 3));
    }
}
