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

/// A distribution an initializer draws every entry from independently (or, for
/// `Orthogonal`, a matrix with orthonormal rows or columns scaled by `gain`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Law {
    Constant(f64),
    Uniform {
        lo: f64,
        hi: f64,
    },
    Normal {
        mean: f64,
        std: f64,
    },
    /// Normal restricted to `[lo, hi]`, renormalised.
    TruncNormal {
        mean: f64,
        std: f64,
        lo: f64,
        hi: f64,
    },
    Orthogonal {
        gain: f64,
    },
}

/// Float32 storage: a value drawn inside a bound may round just outside it.
fn slack(b: f64) -> f64 {
    1e-6 * b.abs().max(1e-30)
}

/// `erf` (Numerical Recipes `erfcc`, fractional error below 1.2e-7).
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { 1.0 - r } else { r - 1.0 }
}

/// Standard normal CDF.
fn phi(x: f64) -> f64 {
    0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

impl Law {
    /// Log-likelihood of `v` (row-major, `rows × cols` for orthogonality); `−∞` where a value
    /// is impossible, `+∞` for an exact structural match (a constant, an orthogonal matrix).
    pub(crate) fn loglik(&self, v: &[f64], rows: usize, cols: usize) -> f64 {
        let n = v.len() as f64;
        match *self {
            Law::Constant(c) => {
                if v.iter().all(|x| (x - c).abs() <= 1e-6 * (1.0 + c.abs())) {
                    f64::INFINITY
                } else {
                    f64::NEG_INFINITY
                }
            }
            Law::Uniform { lo, hi } => {
                let s = slack(hi - lo);
                if hi > lo && v.iter().all(|x| *x >= lo - s && *x <= hi + s) {
                    -n * (hi - lo).ln()
                } else {
                    f64::NEG_INFINITY
                }
            }
            Law::Normal { mean, std } => {
                if std <= 0.0 {
                    return f64::NEG_INFINITY;
                }
                -n * (LN_SQRT_2PI + std.ln())
                    - v.iter().map(|x| ((x - mean) / std).powi(2)).sum::<f64>() / 2.0
            }
            Law::TruncNormal { mean, std, lo, hi } => {
                let s = slack(hi - lo);
                if std <= 0.0 || v.iter().any(|x| *x < lo - s || *x > hi + s) {
                    return f64::NEG_INFINITY;
                }
                let mass = phi((hi - mean) / std) - phi((lo - mean) / std);
                Law::Normal { mean, std }.loglik(v, rows, cols) - n * mass.ln()
            }
            Law::Orthogonal { gain } => {
                if gain > 0.0 {
                    let scaled: Vec<f64> = v.iter().map(|x| x / gain).collect();
                    if orthogonal(&scaled, rows, cols) {
                        return f64::INFINITY;
                    }
                }
                f64::NEG_INFINITY
            }
        }
    }

    /// The CDF at `x` (`None` for the structural laws).
    fn cdf(&self, x: f64) -> Option<f64> {
        Some(match *self {
            Law::Uniform { lo, hi } => ((x - lo) / (hi - lo)).clamp(0.0, 1.0),
            Law::Normal { mean, std } => phi((x - mean) / std),
            Law::TruncNormal { mean, std, lo, hi } => {
                let (a, b) = (phi((lo - mean) / std), phi((hi - mean) / std));
                ((phi((x.clamp(lo, hi) - mean) / std) - a) / (b - a)).clamp(0.0, 1.0)
            }
            Law::Constant(_) | Law::Orthogonal { .. } => return None,
        })
    }

    /// Kolmogorov–Smirnov `D·√n` of `v` against this law (`None` for the structural laws).
    pub(crate) fn ks(&self, v: &[f64]) -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let mut s: Vec<f64> = v.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        let mut d: f64 = 0.0;
        for (i, x) in s.iter().enumerate() {
            let f = self.cdf(*x)?;
            d = d
                .max((f - i as f64 / n).abs())
                .max(((i + 1) as f64 / n - f).abs());
        }
        Some(d * n.sqrt())
    }

    /// Whether two laws are the same distribution (parameters within float round-off).
    pub(crate) fn same(&self, o: &Law) -> bool {
        let c = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
        match (self, o) {
            (Law::Constant(a), Law::Constant(b)) => c(*a, *b),
            (Law::Uniform { lo, hi }, Law::Uniform { lo: l, hi: h }) => c(*lo, *l) && c(*hi, *h),
            (Law::Normal { mean, std }, Law::Normal { mean: m, std: s }) => {
                c(*mean, *m) && c(*std, *s)
            }
            (
                Law::TruncNormal { mean, std, lo, hi },
                Law::TruncNormal {
                    mean: m,
                    std: s,
                    lo: l,
                    hi: h,
                },
            ) => c(*mean, *m) && c(*std, *s) && c(*lo, *l) && c(*hi, *h),
            // A gain estimated from float32 values: orthogonality itself is tested to 1e-3.
            (Law::Orthogonal { gain }, Law::Orthogonal { gain: g }) => {
                (gain - g).abs() <= 1e-3 * gain.abs().max(g.abs())
            }
            _ => false,
        }
    }

    /// `U(−0.125, 0.125)`, `N(1, 0.02)`, `N(0, 0.05) truncated to ±2σ`.
    pub(crate) fn show(&self) -> String {
        match *self {
            Law::Constant(c) => match c {
                c if c.abs() < 1e-12 => "zeros".into(),
                c if (c - 1.0).abs() < 1e-12 => "ones".into(),
                c => format!("constant {}", sig(c)),
            },
            Law::Uniform { lo, hi } if (lo + hi).abs() <= 1e-12 * hi.abs() => {
                format!("U(±{})", sig(hi))
            }
            Law::Uniform { lo, hi } => format!("U({}, {})", sig(lo), sig(hi)),
            Law::Normal { mean, std } => format!("N({}, {})", sig(mean), sig(std)),
            Law::TruncNormal { mean, std, .. } => {
                format!("N({}, {}) truncated to ±2σ", sig(mean), sig(std))
            }
            Law::Orthogonal { gain } => format!("orthogonal × {}", sig(gain)),
        }
    }
}

/// `D·√n` above this rejects a law (Kolmogorov–Smirnov at the 1% level).
pub(crate) const KS_REJECT: f64 = 1.63;
/// Two laws whose log-likelihoods differ by less than ln 100 fit the tensor equally well.
pub(crate) const LN_RATIO_EQUAL: f64 = 4.605_170_185_988_092;

/// A candidate initializer for a tensor: its name and law.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) name: String,
    pub(crate) law: Law,
}

/// Which candidate a tensor was drawn from.
#[derive(Debug, Clone)]
pub(crate) enum Fit {
    /// Exactly (a constant; an orthogonal matrix with that gain).
    Exact { best: usize },
    /// The best candidate passes the KS test and beats every other passing candidate by a
    /// log-likelihood ratio ≥ ln 100.
    Best {
        best: usize,
        ks: f64,
        /// The next most likely candidate that allows every value, and the log-likelihood
        /// ratio over it.
        runner_up: Option<(usize, f64)>,
    },
    /// Two candidates pass and fit equally well (log-likelihood ratio below ln 100; 0 when
    /// they are the same law under two names).
    Tie { a: usize, b: usize, ln_ratio: f64 },
    /// No candidate passes the KS test.
    None,
}

/// Fits `v` (a `rows × cols` matrix view) to `cands`: an exact structural match wins; else the
/// most likely candidate the KS test keeps, unless a second kept one is within ln 100 of it (a
/// tie); the runner-up quoted for the confidence is the next most likely candidate that
/// allows every value (KS-rejected ones included).
pub(crate) fn fit(v: &[f64], rows: usize, cols: usize, cands: &[Candidate]) -> Fit {
    if v.is_empty() {
        return Fit::None;
    }
    let mut finite: Vec<(usize, f64)> = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        let ll = c.law.loglik(v, rows, cols);
        if ll == f64::INFINITY {
            return Fit::Exact { best: i };
        }
        if ll.is_finite() {
            finite.push((i, ll));
        }
    }
    finite.sort_by(|a, b| b.1.total_cmp(&a.1));
    let kept: Vec<(usize, f64, f64)> = finite
        .iter()
        .filter_map(|&(i, ll)| {
            let d = cands[i].law.ks(v)?;
            (d <= KS_REJECT).then_some((i, ll, d))
        })
        .collect();
    let Some(&(best, l1, ks)) = kept.first() else {
        return Fit::None;
    };
    if let Some(&(second, l2, _)) = kept.get(1)
        && l1 - l2 < LN_RATIO_EQUAL
    {
        return Fit::Tie {
            a: best,
            b: second,
            ln_ratio: l1 - l2,
        };
    }
    let runner_up = finite
        .iter()
        .find(|&&(i, ll)| i != best && ll <= l1)
        .map(|&(i, ll)| (i, l1 - ll));
    Fit::Best {
        best,
        ks,
        runner_up,
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
