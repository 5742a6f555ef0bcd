//! The Keras side's initializer read from its config, the torch side's fitted with a
//! confidence, and the torch code that reproduces a Keras initializer.
//!
//! Keras records every variable's initializer in the layer config (`Model::initializers`):
//! that is the Keras side's initializer, never a fit. torch records none, so the torch tensor
//! is fitted to the initializers that plausibly made it (torch's defaults, the `nn.init`
//! functions with their usual arguments, and the Keras config's own distribution): every
//! candidate the Kolmogorov–Smirnov test keeps (D·√n ≤ 1.63, the 1% level) is ranked by
//! log-likelihood; the best is named with its KS statistic and its log-likelihood ratio over
//! the runner-up, and two candidates within ln 100 of each other (the same law under two names
//! included) make the torch initializer "unknown". Formulas: `keras/src/initializers/
//! random_initializers.py` (`VarianceScaling`: `scale / max(1, fan)`, truncated normal with
//! σ = √scale / 0.87962566103423978 cut at ±2σ, uniform on ±√(3·scale); `compute_fans`),
//! `torch/nn/init.py` (`kaiming_uniform_(a=√5)` = U(±1/√fan_in) for Linear and Conv weights,
//! `_calculate_fan_in_and_fan_out`, `orthogonal_` over `(size(0), numel / size(0))`).

use model_ir::{FanMode, InitKind, Initializer, Node, Op, Param, ParamRole, ScalingDist};
use report::sig;

use super::init::{keras_fans, matrix_dims, torch_fan_in};
use crate::findings::torch_ref;
use crate::stats::{Candidate, Fit, KS_REJECT, LN_RATIO_EQUAL, Law, Stats, describe, fit};

/// `1 / 0.87962566103423978`: Keras's stddev correction of the ±2σ truncated normal.
const TRUNC_CORRECTION: f64 = 0.879_625_661_034_239_8;

/// The law a Keras initializer draws a variable of `p`'s shape from; `None` where it is not
/// a distribution over independent entries or a known structure (`Identity`, unknown).
pub(super) fn keras_law(init: &Initializer, p: &Param) -> Option<Law> {
    let (fi, fo) = keras_fans(p);
    Some(match &init.kind {
        InitKind::Zeros => Law::Constant(0.0),
        InitKind::Ones => Law::Constant(1.0),
        InitKind::Constant { value } => Law::Constant(*value),
        InitKind::RandomNormal { mean, stddev } => Law::Normal {
            mean: *mean,
            std: *stddev,
        },
        InitKind::TruncatedNormal { mean, stddev } => Law::TruncNormal {
            mean: *mean,
            std: *stddev,
            lo: mean - 2.0 * stddev,
            hi: mean + 2.0 * stddev,
        },
        InitKind::RandomUniform { minval, maxval } => Law::Uniform {
            lo: *minval,
            hi: *maxval,
        },
        InitKind::VarianceScaling {
            scale,
            mode,
            distribution,
        } => {
            let fan = match mode {
                FanMode::FanIn => fi,
                FanMode::FanOut => fo,
                FanMode::FanAvg => (fi + fo) / 2.0,
            };
            let s = scale / fan.max(1.0);
            match distribution {
                ScalingDist::Uniform => {
                    let l = (3.0 * s).sqrt();
                    Law::Uniform { lo: -l, hi: l }
                }
                ScalingDist::UntruncatedNormal => Law::Normal {
                    mean: 0.0,
                    std: s.sqrt(),
                },
                ScalingDist::TruncatedNormal => {
                    let std = s.sqrt() / TRUNC_CORRECTION;
                    Law::TruncNormal {
                        mean: 0.0,
                        std,
                        lo: -2.0 * std,
                        hi: 2.0 * std,
                    }
                }
            }
        }
        InitKind::Orthogonal { gain } => Law::Orthogonal { gain: *gain },
        InitKind::Identity { .. } | InitKind::Unknown => return None,
    })
}

fn sym_uniform(b: f64) -> Law {
    Law::Uniform { lo: -b, hi: b }
}

fn normal_law(mean: f64, std: f64) -> Law {
    Law::Normal { mean, std }
}

/// The initializers the torch tensor `t` (of `k`'s pair, in layer `node_t`) plausibly came
/// from, torch's default first; `keras` (the Keras config's law) is added unless one of them
/// is that law already.
pub(super) fn torch_candidates(
    k: &Param,
    node_t: &Node,
    t: &Param,
    values: &[f64],
    keras: Option<(&Initializer, &Law)>,
) -> Vec<Candidate> {
    let c = |name: &str, law: Law| Candidate {
        name: name.to_string(),
        law,
    };
    let s = t.tensor.shape();
    let fi = torch_fan_in(t);
    let rf: usize = s.get(2..).map_or(1, |r| r.iter().product());
    let fo = (s.first().copied().unwrap_or(1) * rf) as f64;
    let units = match &node_t.op {
        Op::Rnn { units, .. } => Some(*units as f64),
        _ => None,
    };
    let weight_fan_in = node_t
        .params
        .iter()
        .find(|p| matches!(p.role, ParamRole::Kernel))
        .map(torch_fan_in);
    let (rows, cols) = matrix_dims(s);
    // An orthogonal matrix's gain: its Frobenius norm over √(shorter side).
    let gain = (values.iter().map(|x| x * x).sum::<f64>() / rows.min(cols).max(1) as f64).sqrt();
    let mut v = Vec::new();
    match (k.role, units) {
        (ParamRole::RecurrentKernel | ParamRole::InputKernel, Some(h)) => {
            v.push(c(
                "torch default U(±1/√hidden_size)",
                sym_uniform(1.0 / h.sqrt()),
            ));
            v.push(c(
                &format!("orthogonal_(gain={})", sig(gain)),
                Law::Orthogonal { gain },
            ));
            v.push(c("xavier_uniform_", sym_uniform((6.0 / (fi + fo)).sqrt())));
        }
        (ParamRole::Bias | ParamRole::InputBias | ParamRole::RecurrentBias, Some(h)) => {
            v.push(c(
                "torch default U(±1/√hidden_size)",
                sym_uniform(1.0 / h.sqrt()),
            ));
            v.push(c("zeros_", Law::Constant(0.0)));
        }
        (ParamRole::Kernel | ParamRole::DepthwiseKernel | ParamRole::PointwiseKernel, _) => {
            v.push(c(
                &format!("torch default kaiming_uniform_(a=√5) = U(±1/√fan_in), fan_in {fi}"),
                sym_uniform(1.0 / fi.sqrt()),
            ));
            v.push(c("xavier_uniform_", sym_uniform((6.0 / (fi + fo)).sqrt())));
            v.push(c(
                "xavier_normal_",
                normal_law(0.0, (2.0 / (fi + fo)).sqrt()),
            ));
            v.push(c(
                "kaiming_uniform_(nonlinearity='relu')",
                sym_uniform((6.0 / fi).sqrt()),
            ));
            v.push(c(
                "kaiming_normal_(nonlinearity='relu')",
                normal_law(0.0, (2.0 / fi).sqrt()),
            ));
            v.push(c("normal_(0, 0.02)", normal_law(0.0, 0.02)));
            v.push(c(
                &format!("orthogonal_(gain={})", sig(gain)),
                Law::Orthogonal { gain },
            ));
            v.push(c("zeros_", Law::Constant(0.0)));
        }
        (ParamRole::Bias, None) => {
            if let Some(f) = weight_fan_in {
                v.push(c(
                    &format!("torch default U(±1/√fan_in), fan_in {f}"),
                    sym_uniform(1.0 / f.sqrt()),
                ));
            }
            v.push(c("zeros_", Law::Constant(0.0)));
        }
        (ParamRole::Embeddings, _) => {
            v.push(c("torch default normal_(0, 1)", normal_law(0.0, 1.0)));
            v.push(c("uniform_(-0.05, 0.05)", sym_uniform(0.05)));
            v.push(c("normal_(0, 0.02)", normal_law(0.0, 0.02)));
        }
        (ParamRole::Gamma, _) => {
            v.push(c("torch default ones_", Law::Constant(1.0)));
            v.push(c("normal_(1, 0.02)", normal_law(1.0, 0.02)));
            v.push(c("uniform_(0, 1)", Law::Uniform { lo: 0.0, hi: 1.0 }));
        }
        (ParamRole::Beta, _) => {
            v.push(c("torch default zeros_", Law::Constant(0.0)));
        }
        _ => {}
    }
    // A constant tensor is named by its value.
    let st = Stats::of(values);
    if st.constant() && !v.iter().any(|c| c.law.same(&Law::Constant(st.mean))) {
        v.push(c(
            &format!("constant_({})", sig(st.mean)),
            Law::Constant(st.mean),
        ));
    }
    if let Some((init, law)) = keras
        && !v.iter().any(|c| c.law.same(law))
    {
        v.push(c(
            &format!("{} as Keras draws it ({})", init.display(), law.show()),
            law.clone(),
        ));
    }
    v
}

/// The torch side's fitted initializer: its description for the evidence and, when one law
/// is identified (or several tie), those laws.
pub(super) struct TorchFit {
    pub(super) text: String,
    /// The identified law (one), or the tied laws (two); empty when nothing fits.
    pub(super) laws: Vec<Law>,
    /// The identified initializer's name (`None` when unknown).
    pub(super) name: Option<String>,
}

/// Fits the torch values to `cands` and describes the result with its confidence.
pub(super) fn torch_fit(values: &[f64], shape: &[usize], cands: &[Candidate]) -> TorchFit {
    let (rows, cols) = matrix_dims(shape);
    let st = Stats::of(values);
    match fit(values, rows, cols, cands) {
        Fit::Exact { best } => {
            let c = &cands[best];
            let what = match c.law {
                Law::Orthogonal { .. } => "orthonormal rows or columns × gain",
                _ => "every value",
            };
            TorchFit {
                text: format!("{} (exact: {what})", c.name),
                laws: vec![c.law.clone()],
                name: Some(c.name.clone()),
            }
        }
        Fit::Best {
            best,
            ks,
            runner_up,
        } => {
            let c = &cands[best];
            let conf = match runner_up {
                Some((r, ln)) => format!(
                    "log-likelihood ratio {} over the runner-up {} ({})",
                    sig(ln),
                    cands[r].name,
                    cands[r].law.show()
                ),
                None => "every other candidate excludes some of the values".to_string(),
            };
            TorchFit {
                text: format!(
                    "{} = {} (fitted: KS D·√n {} ≤ {KS_REJECT}; {conf})",
                    c.name,
                    c.law.show(),
                    sig(ks)
                ),
                laws: vec![c.law.clone()],
                name: Some(c.name.clone()),
            }
        }
        Fit::Tie { a, b, ln_ratio } => {
            let (ca, cb) = (&cands[a], &cands[b]);
            let why = if ca.law.same(&cb.law) {
                format!("the same law {} here", ca.law.show())
            } else {
                format!(
                    "log-likelihood ratio {} < ln 100 = {}",
                    sig(ln_ratio),
                    sig(LN_RATIO_EQUAL)
                )
            };
            TorchFit {
                text: format!(
                    "unknown: {}; {} and {} fit equally ({why})",
                    describe(&st, values),
                    ca.name,
                    cb.name
                ),
                laws: vec![ca.law.clone(), cb.law.clone()],
                name: None,
            }
        }
        Fit::None => TorchFit {
            text: format!(
                "{}; no known initializer fits (KS test at the 1% level)",
                describe(&st, values)
            ),
            laws: vec![],
            name: None,
        },
    }
}

/// A number for Python code: enough digits to reproduce the bound.
fn py(x: f64) -> String {
    let s = format!("{x:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// The torch code that draws `tname` (the torch counterpart of Keras parameter `k`) as the
/// Keras initializer does; `None` for an initializer it cannot reproduce (unknown, identity
/// of a non-matrix).
pub(super) fn torch_code(init: &Initializer, k: &Param, tname: &str) -> Option<String> {
    let w = torch_ref(tname);
    let law = keras_law(init, k);
    Some(match (&init.kind, law) {
        (InitKind::Zeros, _) => format!("nn.init.zeros_({w})"),
        (InitKind::Ones, _) => format!("nn.init.ones_({w})"),
        (InitKind::Constant { value }, _) => format!("nn.init.constant_({w}, {})", py(*value)),
        (InitKind::RandomNormal { mean, stddev }, _) => {
            format!(
                "nn.init.normal_({w}, mean={}, std={})",
                py(*mean),
                py(*stddev)
            )
        }
        (InitKind::RandomUniform { minval, maxval }, _) => {
            format!("nn.init.uniform_({w}, {}, {})", py(*minval), py(*maxval))
        }
        (InitKind::Orthogonal { gain }, _) => {
            format!("nn.init.orthogonal_({w}, gain={})", py(*gain))
        }
        (InitKind::Identity { gain }, _) if k.tensor.shape().len() == 2 => format!(
            "with torch.no_grad(): nn.init.eye_({w}); {w}.mul_({})  # Keras Identity(gain) of the transposed kernel",
            py(*gain)
        ),
        (
            InitKind::TruncatedNormal { .. } | InitKind::VarianceScaling { .. },
            Some(Law::TruncNormal { mean, std, lo, hi }),
        ) => format!(
            "nn.init.trunc_normal_({w}, mean={}, std={}, a={}, b={})  # {} (±2σ)",
            py(mean),
            py(std),
            py(lo),
            py(hi),
            init.display()
        ),
        (InitKind::VarianceScaling { .. }, Some(Law::Uniform { lo, hi })) => format!(
            "nn.init.uniform_({w}, {}, {})  # {}",
            py(lo),
            py(hi),
            init.display()
        ),
        (InitKind::VarianceScaling { .. }, Some(Law::Normal { mean, std })) => format!(
            "nn.init.normal_({w}, mean={}, std={})  # {}",
            py(mean),
            py(std),
            init.display()
        ),
        _ => return None,
    })
}

/// The Keras argument that makes Keras draw what torch's identified initializer draws
/// (`None` when torch's is unknown or has no Keras form).
pub(super) fn keras_arg(role_arg: &str, law: &Law) -> Option<String> {
    Some(match *law {
        Law::Constant(c) if c.abs() < 1e-12 => format!("{role_arg}=\"zeros\""),
        Law::Constant(c) if (c - 1.0).abs() < 1e-12 => format!("{role_arg}=\"ones\""),
        Law::Constant(c) => format!("{role_arg}=keras.initializers.Constant({})", py(c)),
        Law::Uniform { lo, hi } => format!(
            "{role_arg}=keras.initializers.RandomUniform({}, {})",
            py(lo),
            py(hi)
        ),
        Law::Normal { mean, std } => format!(
            "{role_arg}=keras.initializers.RandomNormal({}, {})",
            py(mean),
            py(std)
        ),
        Law::TruncNormal { .. } => return None,
        Law::Orthogonal { gain } => {
            format!(
                "{role_arg}=keras.initializers.Orthogonal(gain={})",
                py(gain)
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use model_ir::{
        Activation, Framework, InitKind, Initializer, MomentumForm, Op, ParamLayout, ParamRole,
        VarianceEstimate,
    };

    use super::*;
    use crate::testkit::*;

    /// Deterministic N(mean, std) values (Box–Muller on the testkit's uniform stream).
    fn gaussian(n: usize, mean: f32, std: f32, seed: u64) -> Vec<f32> {
        let u = uniform(2 * n, 1.0, seed);
        (0..n)
            .map(|i| {
                let a = ((u[2 * i] as f64 + 1.0) / 2.0).max(1e-12);
                let b = (u[2 * i + 1] as f64 + 1.0) / 2.0;
                let z = (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos();
                mean + std * z as f32
            })
            .collect()
    }

    /// A `rows × cols` matrix with orthonormal columns (rows ≥ cols) times `gain`.
    fn orthogonal(rows: usize, cols: usize, gain: f32, seed: u64) -> Vec<f32> {
        let g = gaussian(rows * cols, 0.0, 1.0, seed);
        let mut q: Vec<Vec<f64>> = Vec::new();
        for j in 0..cols {
            let mut v: Vec<f64> = (0..rows).map(|i| g[i * cols + j] as f64).collect();
            for u in &q {
                let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
            }
            let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            v.iter_mut().for_each(|x| *x /= n);
            q.push(v);
        }
        let mut out = vec![0.0f32; rows * cols];
        for (j, col) in q.iter().enumerate() {
            for (i, x) in col.iter().enumerate() {
                out[i * cols + j] = (*x as f32) * gain;
            }
        }
        out
    }

    fn init(class: &str, kind: InitKind) -> Initializer {
        Initializer {
            class: class.into(),
            kind,
            seed: None,
        }
    }

    /// Keras Dense(64 → 32) with an `Orthogonal(gain=1.414)` kernel (as its config says) and
    /// its torch port left at torch's default initialisation.
    fn orthogonal_pair() -> (model_ir::Model, model_ir::Model) {
        let (i, o) = (64, 32);
        let k = tensor(&[i, o], orthogonal(i, o, 1.414, 5));
        let mut keras = model(
            Framework::Keras,
            &[i],
            vec![keras_dense("d1", "x", k, vec![0.0; o], Activation::Linear)],
        );
        keras.initializers.insert(
            "d1/kernel".into(),
            init("Orthogonal", InitKind::Orthogonal { gain: 1.414 }),
        );
        keras
            .initializers
            .insert("d1/bias".into(), init("Zeros", InitKind::Zeros));
        let w = tensor(&[o, i], uniform(i * o, 1.0 / (i as f32).sqrt(), 6));
        let torch = model(
            Framework::Torch,
            &[i],
            vec![torch_dense("fc1", "x", w, vec![0.0; o])],
        );
        (keras, torch)
    }

    #[test]
    fn keras_side_is_its_config_and_torch_side_a_fit_with_confidence() {
        let (k, t) = orthogonal_pair();
        let d = run(k, t);
        let f = d
            .findings
            .iter()
            .find(|f| f.id == "dense-init")
            .expect("dense-init");
        let e = &f.evidence[0];
        assert!(e.keras.contains("Orthogonal(gain=1.414)"), "{}", e.keras);
        for wrong in ["glorot", "he_", "lecun", "fitted"] {
            assert!(!e.keras.contains(wrong), "{}", e.keras);
        }
        assert!(
            e.torch.starts_with(
                "fc1.weight: torch default kaiming_uniform_(a=√5) = U(±1/√fan_in), fan_in 64 = U(±0.125) (fitted"
            ),
            "{}",
            e.torch
        );
        assert!(e.torch.contains("KS D·√n"), "{}", e.torch);
        assert!(
            e.torch.contains("log-likelihood ratio") && e.torch.contains("over the runner-up"),
            "{}",
            e.torch
        );
        assert_eq!(
            f.fix.torch,
            "nn.init.orthogonal_(model.fc1.weight, gain=1.414)"
        );
        assert!(f.title.contains("Orthogonal(gain=1.414)"), "{}", f.title);
        assert!(f.title.contains("kaiming_uniform_(a=√5)"), "{}", f.title);
    }

    #[test]
    fn torch_copy_of_keras_weights_needs_no_fit() {
        let (k, mut t) = orthogonal_pair();
        t.nodes[0].params[0].tensor = k.nodes[0].params[0].tensor.permuted(&[1, 0]);
        let d = run(k, t);
        assert!(d.findings.iter().all(|f| f.id != "dense-init"));
        assert_eq!(d.alignment.pairs[0].weights, "copied (exact mapping)");
    }

    #[test]
    fn keras_config_that_is_torch_default_is_not_flagged() {
        // VarianceScaling(1/3, fan_in, uniform) draws U(±1/√fan_in): torch's Linear default.
        let (mut k, t) = orthogonal_pair();
        let kk = tensor(&[64, 32], uniform(64 * 32, 0.125, 9));
        k.nodes[0].params[0].tensor = kk;
        k.initializers.insert(
            "d1/kernel".into(),
            init(
                "VarianceScaling",
                InitKind::VarianceScaling {
                    scale: 1.0 / 3.0,
                    mode: FanMode::FanIn,
                    distribution: ScalingDist::Uniform,
                },
            ),
        );
        let d = run(k, t);
        assert!(
            d.findings.iter().all(|f| f.id != "dense-init"),
            "{:?}",
            d.findings
        );
        let s = d
            .findings
            .iter()
            .find(|f| f.id == "seeding-determinism")
            .expect("same distribution, other draws");
        assert!(s.evidence[0].torch.contains("kaiming_uniform_(a=√5)"));
    }

    #[test]
    fn indistinguishable_candidates_give_unknown() {
        // Dense(16 → 16): xavier_normal_ is N(0, 0.25); a Keras RandomNormal(0, 0.26) config
        // is a second candidate no 256 draws can tell apart from it.
        let (i, o) = (16, 16);
        let k = param(
            "d/kernel",
            ParamRole::Kernel,
            ParamLayout::DenseInOut,
            tensor(&[i, o], gaussian(i * o, 0.0, 0.26, 1)),
        );
        let t = param(
            "fc.weight",
            ParamRole::Kernel,
            ParamLayout::DenseOutIn,
            tensor(&[o, i], gaussian(i * o, 0.0, 0.25, 2)),
        );
        let node_t = torch_dense("fc", "x", t.tensor.clone(), vec![0.0; o]);
        let ki = init(
            "RandomNormal",
            InitKind::RandomNormal {
                mean: 0.0,
                stddev: 0.26,
            },
        );
        let kl = keras_law(&ki, &k).unwrap();
        let tv: Vec<f64> = t.tensor.to_f64().iter().copied().collect();
        let cands = torch_candidates(&k, &node_t, &t, &tv, Some((&ki, &kl)));
        let f = torch_fit(&tv, t.tensor.shape(), &cands);
        assert!(f.text.starts_with("unknown: "), "{}", f.text);
        assert!(f.text.contains("xavier_normal_"), "{}", f.text);
        assert!(
            f.text.contains("RandomNormal(mean=0, stddev=0.26)"),
            "{}",
            f.text
        );
        assert!(f.name.is_none());
        // Against the two uniform candidates only (U(±0.25), U(±0.433)): nothing fits.
        let f = torch_fit(&tv, t.tensor.shape(), &cands[..2]);
        assert!(f.text.contains("no known initializer fits"), "{}", f.text);
        assert!(f.laws.is_empty());
    }

    fn bn(fw: Framework, gamma: Vec<f32>) -> model_ir::Node {
        let c = gamma.len();
        let sep = if fw == Framework::Keras { "/" } else { "." };
        let names = if fw == Framework::Keras {
            ["gamma", "beta", "moving_mean", "moving_variance"]
        } else {
            ["weight", "bias", "running_mean", "running_var"]
        };
        let roles = [
            ParamRole::Gamma,
            ParamRole::Beta,
            ParamRole::MovingMean,
            ParamRole::MovingVariance,
        ];
        let vals = [gamma, vec![0.0; c], vec![0.0; c], vec![1.0; c]];
        node(
            fw,
            "bn",
            Op::BatchNorm {
                axis: if fw == Framework::Keras { -1 } else { 1 },
                epsilon: 1e-3,
                momentum: if fw == Framework::Keras {
                    MomentumForm::KeepOld(0.99)
                } else {
                    MomentumForm::TakeNew(0.01)
                },
                running_variance: VarianceEstimate::Biased,
                center: true,
                scale: true,
                trainable: true,
                track_running_stats: true,
                training_mode: None,
            },
            "x",
            names
                .iter()
                .zip(roles)
                .zip(vals)
                .map(|((n, r), v)| {
                    param(
                        &format!("bn{sep}{n}"),
                        r,
                        ParamLayout::Vector,
                        tensor(&[c], v),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn bn_gamma_from_a_gan_initialiser() {
        let c = 64;
        let mut k = model(
            Framework::Keras,
            &[c],
            vec![bn(Framework::Keras, gaussian(c, 1.0, 0.02, 3))],
        );
        k.initializers.insert(
            "bn/gamma".into(),
            init(
                "RandomNormal",
                InitKind::RandomNormal {
                    mean: 1.0,
                    stddev: 0.02,
                },
            ),
        );
        k.initializers
            .insert("bn/beta".into(), init("Zeros", InitKind::Zeros));
        let t = model(
            Framework::Torch,
            &[c],
            vec![bn(Framework::Torch, vec![1.0; c])],
        );
        let d = run(k.clone(), t.clone());
        let f = d
            .findings
            .iter()
            .find(|f| f.id == "bn-affine-init")
            .expect("bn-affine-init");
        let e = &f.evidence[0];
        assert!(
            e.keras
                .contains("bn/gamma: RandomNormal(mean=1, stddev=0.02)"),
            "{}",
            e.keras
        );
        assert!(
            e.torch.contains("bn.weight: torch default ones_ (exact"),
            "{}",
            e.torch
        );
        assert_eq!(
            f.fix.torch,
            "nn.init.normal_(model.bn.weight, mean=1, std=0.02)"
        );
        assert_eq!(f.fix.keras, "gamma_initializer=\"ones\"");
        assert!(
            f.title.contains("RandomNormal(mean=1, stddev=0.02)"),
            "{}",
            f.title
        );
        assert!(f.evidence.len() == 1, "beta is zeros on both sides");
        // Both at the defaults: nothing.
        let mut k1 = model(
            Framework::Keras,
            &[c],
            vec![bn(Framework::Keras, vec![1.0; c])],
        );
        k1.initializers
            .insert("bn/gamma".into(), init("Ones", InitKind::Ones));
        let d = run(k1, t);
        assert!(d.findings.iter().all(|f| f.id != "bn-affine-init"));
        // torch drawing N(1, 0.02) too: the same initialiser, no finding.
        let t2 = model(
            Framework::Torch,
            &[c],
            vec![bn(Framework::Torch, gaussian(c, 1.0, 0.02, 4))],
        );
        let d = run(k, t2);
        assert!(
            d.findings.iter().all(|f| f.id != "bn-affine-init"),
            "{:?}",
            d.findings
        );
    }
}
