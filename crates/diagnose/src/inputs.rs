//! Step 4: what each side feeds its model (`inputs.safetensors`), after the layout change.
//!
//! The Keras `x` is permuted to channels-first when the torch model is channels-first
//! (NHWC → NCHW). Then, in this order:
//! - equal within float32 round-off: nothing to report;
//! - the Keras array reshaped (not transposed) to the torch shape: `channels-last`;
//! - the same rows in another order: `input-mismatch` (reordered samples);
//! - **`std-ddof`**: per feature j (every non-batch position), the least-squares fit
//!   torch ≈ a_j·keras + b_j explains more than 99.99 % of the variance of every
//!   non-constant feature, the offsets b_j vanish (|b_j| < 1e-3·std), the scales agree
//!   across features (spread < 0.1 % of their mean c), and c = √((m−1)/m) — torch used the
//!   unbiased std on data Keras standardized with the population std — or c = √(m/(m−1)) for
//!   the reverse, for some m ≥ 2: m = 1/(1 − c²) (resp. c²/(c² − 1)) is reported as the
//!   number of samples the statistics were computed on. The test needs no knowledge of m
//!   and is invariant to which samples were shipped;
//! - a common scale or offset that is not a ddof factor, or the channels reversed (BGR):
//!   `imagenet-preprocess-modes`;
//! - anything else: `input-mismatch` (different samples or preprocessing).
//!
//! Labels are compared as class indices (one-hot rows are argmaxed).

use catalogue::Id;
use model_import::Bundle;
use model_ir::{BinaryOp, DataLayout, Model, Op, ParamRole, Tensor};
use report::{NotChecked, Severity, Tolerance, sig};

use crate::findings::{Findings, ev};
use crate::graph::spatial_layout;

const SAME: Tolerance = Tolerance::Custom {
    atol: 1e-6,
    rtol: 1e-5,
};

/// Row-major values with the batch axis first: (n, features).
struct Table {
    n: usize,
    f: usize,
    v: Vec<f64>,
    int: bool,
}

impl Table {
    fn of(t: &Tensor) -> Option<Table> {
        let shape = t.shape().to_vec();
        let n = *shape.first()?;
        let v: Vec<f64> = t.to_f64().iter().copied().collect();
        let f = v.len().checked_div(n).unwrap_or(0);
        Some(Table {
            n,
            f,
            v,
            int: !t.dtype().is_float(),
        })
    }

    fn row(&self, i: usize) -> &[f64] {
        &self.v[i * self.f..(i + 1) * self.f]
    }
}

fn to_channels_first(t: &Tensor) -> Option<Tensor> {
    DataLayout::last_to_first_perm(t.shape().len()).map(|perm| t.permuted(&perm))
}

/// Class indices of a label tensor: integers as they are, one-hot (or probability) rows
/// argmaxed; `None` for anything else (regression targets).
fn class_indices(t: &Tensor) -> Option<Vec<i64>> {
    let s = t.shape();
    if !t.dtype().is_float() {
        return (s.len() == 1 || (s.len() == 2 && s[1] == 1))
            .then(|| t.to_i64().iter().copied().collect());
    }
    if s.len() == 2 && s[1] > 1 {
        let v = t.to_f64();
        let c = s[1];
        let flat: Vec<f64> = v.iter().copied().collect();
        let onehot = flat
            .iter()
            .all(|x| x.abs() < 1e-9 || (x - 1.0).abs() < 1e-9)
            || flat
                .chunks(c)
                .all(|r| (r.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        if !onehot {
            return None;
        }
        return Some(
            flat.chunks(c)
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .fold((0usize, f64::NEG_INFINITY), |(bi, bv), (i, x)| {
                            if *x > bv { (i, *x) } else { (bi, bv) }
                        })
                        .0 as i64
                })
                .collect(),
        );
    }
    None
}

/// Per-feature affine fit torch ≈ a·keras + b over the samples.
struct Fit {
    a: Vec<f64>,
    b: Vec<f64>,
    /// Smallest explained-variance fraction over non-constant features.
    r2_min: f64,
    /// Standard deviation of the torch values per fitted feature.
    t_std: Vec<f64>,
}

fn affine_fit(k: &Table, t: &Table, n: usize) -> Option<Fit> {
    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut r2_min: f64 = 1.0;
    let mut t_std = Vec::new();
    for j in 0..k.f {
        let xs: Vec<f64> = (0..n).map(|i| k.v[i * k.f + j]).collect();
        let ys: Vec<f64> = (0..n).map(|i| t.v[i * t.f + j]).collect();
        let mx = xs.iter().sum::<f64>() / n as f64;
        let my = ys.iter().sum::<f64>() / n as f64;
        let vx = xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>();
        let vy = ys.iter().map(|y| (y - my).powi(2)).sum::<f64>();
        let cxy = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| (x - mx) * (y - my))
            .sum::<f64>();
        let scale = mx.abs().max(1.0);
        if vx <= 1e-12 * scale * scale * n as f64 {
            // Constant Keras feature: the torch one must be constant too.
            if vy > 1e-12 * n as f64 * my.abs().max(1.0).powi(2) {
                return None;
            }
            continue;
        }
        let aj = cxy / vx;
        let resid = vy - aj * cxy;
        let r2 = if vy > 0.0 { 1.0 - resid / vy } else { 0.0 };
        r2_min = r2_min.min(r2);
        a.push(aj);
        b.push(my - aj * mx);
        t_std.push((vy / n as f64).sqrt());
    }
    (!a.is_empty()).then_some(Fit {
        a,
        b,
        r2_min,
        t_std,
    })
}

/// For every torch row, the Keras row it equals (within float32 round-off), preferring the
/// same position; `None` when some torch row is not a Keras row.
fn match_rows(k: &Table, t: &Table) -> Option<Vec<usize>> {
    if k.f != t.f {
        return None;
    }
    let key = |r: &[f64]| {
        r.iter()
            .enumerate()
            .map(|(i, x)| x * (1.0 + i as f64 * 1e-3))
            .sum::<f64>()
    };
    let same = |j: usize, i: usize| {
        k.row(j)
            .iter()
            .zip(t.row(i))
            .all(|(a, b)| SAME.close(*b, *a))
    };
    let mut ks: Vec<(f64, usize)> = (0..k.n).map(|i| (key(k.row(i)), i)).collect();
    ks.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut map = Vec::with_capacity(t.n);
    for i in 0..t.n {
        if i < k.n && same(i, i) {
            map.push(i);
            continue;
        }
        let kt = key(t.row(i));
        let tol = 1e-6 * kt.abs().max(1.0) + 1e-6 * k.f as f64;
        let lo = ks.partition_point(|(v, _)| *v < kt - tol);
        let hit = ks[lo..]
            .iter()
            .take_while(|(v, _)| *v <= kt + tol)
            .find(|(_, j)| same(*j, i))?;
        map.push(hit.1);
    }
    Some(map)
}

/// Compares one input; returns, when every torch row is a Keras row, the Keras row of each
/// torch row. `validation_split`: Keras trains on the leading ⌊n·(1 − v)⌋ rows.
fn compare_x(
    name: &str,
    kx: &Tensor,
    tx: &Tensor,
    k_layout_cf: bool,
    validation_split: f64,
    out: &mut Findings,
) -> Option<Vec<usize>> {
    let raw_k = kx;
    let permuted = if k_layout_cf {
        to_channels_first(kx)
    } else {
        None
    };
    let kx = match &permuted {
        Some(p) if p.shape()[1..] == tx.shape()[1..] => p,
        _ => kx,
    };
    if kx.shape()[1..] != tx.shape()[1..] {
        out.add(
            Id::InputMismatch,
            Severity::High,
            2.0,
            vec![ev(
                format!("`{name}` shape"),
                format!("{:?}", raw_k.shape()),
                format!("{:?}", tx.shape()),
                None,
            )],
            "feed the torch model the same samples, permuted to its layout",
            "nothing to change on this side",
        );
        return None;
    }
    let (Some(k), Some(t)) = (Table::of(kx), Table::of(tx)) else {
        return None;
    };
    if let Some(map) = match_rows(&k, &t) {
        report_rows(name, &k, &t, &map, validation_split, out);
        return Some(map);
    }
    let n = k.n.min(t.n);
    if k.n != t.n {
        out.add(
            Id::InputMismatch,
            Severity::Medium,
            1.0,
            vec![ev(
                format!("`{name}` samples"),
                k.n.to_string(),
                t.n.to_string(),
                None,
            )],
            "ship the same samples on both sides",
            "nothing to change on this side",
        );
    }
    if n == 0 {
        return None;
    }
    // NHWC data reshaped instead of transposed.
    if permuted.is_some() && reshaped_not_transposed(name, raw_k, tx, &t, n, out) {
        return None;
    }
    if k.int || t.int {
        out.add(
            Id::InputMismatch,
            Severity::High,
            2.0,
            vec![ev(
                format!("`{name}` values"),
                "integer ids",
                "different ids",
                None,
            )],
            "feed the same ids",
            "nothing to change on this side",
        );
        return None;
    }
    if let Some(fit) = affine_fit(&k, &t, n)
        && fit.r2_min > 0.9999
    {
        report_scaling(name, &fit, out);
        return None;
    }
    // Channel order (RGB vs BGR) for 3-channel feature maps.
    if reversed_channels(name, &k, tx, n, out) {
        return None;
    }
    let diff = (0..n * k.f)
        .map(|i| (t.v[i] - k.v[i]).abs())
        .fold(0.0f64, f64::max);
    out.add(
        Id::InputMismatch,
        Severity::High,
        1.5,
        vec![ev(
            format!("`{name}` values"),
            "reference",
            format!("different samples or preprocessing (max |Δ| {})", sig(diff)),
            None,
        )],
        "feed the torch model exactly the samples (and preprocessing) of the Keras side",
        "nothing to change on this side",
    );
    None
}

/// Row matching: the torch rows are Keras rows; which ones (the training rows of
/// `validation_split`, the held-out tail, others) and in which order.
fn report_rows(
    name: &str,
    k: &Table,
    t: &Table,
    map: &[usize],
    validation_split: f64,
    out: &mut Findings,
) {
    let split = crate::measure::train_rows(validation_split, k.n);
    let identity = map.iter().enumerate().all(|(i, j)| i == *j);
    if identity && t.n == split {
        // Exactly the rows Keras trains on, in its order.
        return;
    }
    let tail = map.iter().filter(|j| **j >= split).count();
    let mut seen = vec![false; split];
    map.iter()
        .filter(|j| **j < split)
        .for_each(|j| seen[*j] = true);
    let missing = seen.iter().filter(|s| !**s).count();
    if tail > 0 {
        out.add(
            Id::ValidationSplitTail,
            if 4 * tail >= t.n { Severity::High } else { Severity::Medium },
            tail as f64 / t.n.max(1) as f64,
            vec![ev(
                format!("`{name}` training rows"),
                format!(
                    "the first {split} of {} (validation_split holds out the last {}, before any shuffling)",
                    k.n,
                    k.n - split
                ),
                format!(
                    "{} rows: {tail} of them from the Keras held-out tail, {missing} of the Keras training rows absent",
                    t.n
                ),
                None,
            )],
            format!(
                "split = int(len(x) * (1 - {v})); x_train, y_train = x[:split], y[:split]  # Keras's validation_split: the last rows, not random_split",
                v = crate::training::num(validation_split)
            ),
            "shuffle x and y once before fit(validation_split=…), or pass validation_data explicitly",
        );
        return;
    }
    let (what, ours, theirs, fix) = if missing > 0 || t.n != split {
        (
            "samples",
            format!("{split} training rows"),
            format!("{} rows, {missing} of the Keras training rows absent", t.n),
            "train on the same samples as the Keras side",
        )
    } else {
        let moved = map.iter().enumerate().filter(|(i, j)| i != *j).count();
        (
            "sample order",
            "reference order".to_string(),
            format!("the same samples, {moved} of {} in other positions", t.n),
            "ship (and feed) the samples in the Keras order",
        )
    };
    out.add(
        Id::InputMismatch,
        Severity::Medium,
        1.0,
        vec![ev(format!("`{name}` {what}"), ours, theirs, None)],
        fix,
        "nothing to change on this side",
    );
}

/// Channels-last data reshaped instead of transposed: the torch values are the NHWC bytes
/// read in the torch shape.
fn reshaped_not_transposed(
    name: &str,
    raw_k: &Tensor,
    tx: &Tensor,
    t: &Table,
    n: usize,
    out: &mut Findings,
) -> bool {
    let equal = |a: &Table, b: &Table| (0..n * a.f).all(|i| SAME.close(b.v[i], a.v[i]));
    if let Some(r) = raw_k.reshaped(tx.shape())
        && let Some(rt) = Table::of(&r)
        && equal(&rt, t)
    {
        out.add(
            Id::ChannelsLast,
            Severity::High,
            3.0,
            vec![ev(
                format!("`{name}` layout"),
                format!("{:?} NHWC", raw_k.shape()),
                format!("{:?}: the NHWC bytes reshaped, not transposed", tx.shape()),
                None,
            )],
            "x = x.permute(0, 3, 1, 2)  # NHWC → NCHW, not x.reshape(N, C, H, W)",
            "nothing to change on this side",
        );
        return true;
    }
    false
}

/// The torch values are an affine function of the Keras ones per feature: std ddof,
/// preprocessing modes (one scale or no offsets), or other normalization statistics.
fn report_scaling(name: &str, fit: &Fit, out: &mut Findings) {
    let c = fit.a.iter().sum::<f64>() / fit.a.len() as f64;
    let spread = fit.a.iter().fold(0.0f64, |m, a| m.max((a - c).abs()));
    let offsets_vanish = fit
        .b
        .iter()
        .zip(&fit.t_std)
        .all(|(b, s)| b.abs() <= 1e-3 * s.max(1e-12) + 1e-6);
    let constant_scale = spread <= 1e-3 * c.abs();
    if constant_scale && offsets_vanish && c > 0.0 && std_ddof(name, c, out) {
        return;
    }
    if constant_scale || offsets_vanish {
        let mean_b = fit.b.iter().sum::<f64>() / fit.b.len() as f64;
        out.title_item(
            Id::ImagenetPreprocessModes,
            "input preprocessing differs",
            if constant_scale {
                format!(
                    "`{name}` torch ≈ {}·keras + {} (scale and offset)",
                    sig(c),
                    sig(mean_b)
                )
            } else {
                format!("`{name}` scale per feature (no common offset)")
            },
        );
        out.add(
            Id::ImagenetPreprocessModes,
            Severity::High,
            2.0,
            vec![ev(
                format!("`{name}` preprocessing (torch ≈ a·keras + b per feature)"),
                "reference",
                if constant_scale {
                    format!("a = {}, b ≈ {}", sig(c), sig(mean_b))
                } else {
                    format!("a from {} to {}", sig(fit.a.iter().copied().fold(f64::INFINITY, f64::min)), sig(fit.a.iter().copied().fold(f64::NEG_INFINITY, f64::max)))
                },
                None,
            )],
            "apply the Keras preprocessing (same scale, offset and statistics) before the torch model",
            "nothing to change on this side",
        );
        return;
    }
    out.add(
        Id::InputMismatch,
        Severity::Medium,
        1.0,
        vec![ev(
            format!("`{name}` per-feature scale (torch ≈ a·keras + b)"),
            "reference",
            format!(
                "a from {} to {}: different normalization statistics",
                sig(fit.a.iter().copied().fold(f64::INFINITY, f64::min)),
                sig(fit.a.iter().copied().fold(f64::NEG_INFINITY, f64::max))
            ),
            None,
        )],
        "standardize with the statistics the Keras side used",
        "nothing to change on this side",
    );
}

/// Scaling by a constant with no offset: the two sides standardized with the population and
/// the unbiased std (ddof); recovers the sample count from the factor.
fn std_ddof(name: &str, c: f64, out: &mut Findings) -> bool {
    let (m, dir) = if c < 1.0 {
        (
            1.0 / (1.0 - c * c),
            "torch uses the unbiased std (n−1), Keras the population std (n)",
        )
    } else {
        (
            c * c / (c * c - 1.0),
            "Keras uses the unbiased std (n−1), torch the population std (n)",
        )
    };
    if m >= 1.5 && (c - 1.0).abs() > 1e-7 {
        let mr = m.round();
        let dev = (c - 1.0).abs();
        out.add(
            Id::StdDdof,
            if dev > 1e-2 { Severity::Medium } else { Severity::Low },
            dev,
            vec![ev(
                format!(
                    "`{name}` scale, every feature (torch = c·keras; {dir}; m = 1/(1 − c²) ≈ {mr} samples)"
                ),
                "1",
                format!("c = {} = √((m−1)/m)", sig_fine(if c < 1.0 { c } else { 1.0 / c })),
                None,
            )],
            "x.std(dim=0, correction=0)  # population std, as numpy / StandardScaler / Keras Normalization",
            "nothing to change on this side (or StandardScaler with the ddof=1 std, to copy torch.std)",
        );
        return true;
    }
    false
}

/// Channel order (RGB vs BGR) for 3-channel feature maps: the torch channels reversed fit
/// the Keras ones.
fn reversed_channels(name: &str, k: &Table, tx: &Tensor, n: usize, out: &mut Findings) -> bool {
    if tx.shape().len() != 4 || tx.shape()[1] != 3 {
        return false;
    }
    let rev = tx.select(1, &[2, 1, 0]);
    if let Some(rt) = Table::of(&rev)
        && let Some(fit) = affine_fit(k, &rt, n)
        && fit.r2_min > 0.999
    {
        out.title_item(
            Id::ImagenetPreprocessModes,
            "input preprocessing differs",
            format!("`{name}` channel order (Keras RGB, torch reversed)"),
        );
        out.add(
            Id::ImagenetPreprocessModes,
            Severity::High,
            2.0,
            vec![ev(
                format!("`{name}` channel order"),
                "RGB (reference)",
                "reversed (BGR)",
                None,
            )],
            "x = x[:, [2, 1, 0]]  # or use the Keras preprocess_input mode on both sides",
            "nothing to change on this side",
        );
        return true;
    }
    false
}

/// `c` with enough digits to show how far it is from 1 (`0.999652`).
fn sig_fine(c: f64) -> String {
    let d = (1.0 - c).abs();
    if d <= 0.0 {
        return "1".into();
    }
    let digits = (-d.log10()).ceil().max(0.0) as usize + 3;
    format!("{:.*}", digits.min(12), c)
}

/// Standardization inside the models: a Keras `Normalization` layer (population variance,
/// from `adapt`) against a torch division by a stored std (or multiplication by its inverse).
/// The same test as for the inputs: var_torch/var_keras is one constant r ≠ 1 over every
/// feature, and r = m/(m−1) (or its inverse) names the sample count.
fn in_model_standardization(k: &Model, t: &Model, out: &mut Findings) {
    let Some(kn) = k
        .nodes
        .iter()
        .find(|n| matches!(n.op, Op::Normalization { invert: false, .. }))
    else {
        return;
    };
    let Some(var) = kn
        .params
        .iter()
        .find(|p| p.role == ParamRole::Variance)
        .map(|p| p.tensor.to_f64().iter().copied().collect::<Vec<f64>>())
    else {
        return;
    };
    let torch_std = t.nodes.iter().find_map(|n| match n.op {
        Op::ConstantBinary {
            op: op @ (BinaryOp::Div | BinaryOp::Mul),
            constant_first: false,
        } => {
            let c: Vec<f64> = n.params.first()?.tensor.to_f64().iter().copied().collect();
            Some((
                n.name.clone(),
                if op == BinaryOp::Div {
                    c
                } else {
                    c.iter().map(|v| 1.0 / v).collect()
                },
            ))
        }
        _ => None,
    });
    let Some((tname, std)) = torch_std else {
        return;
    };
    if std.len() != var.len() || var.is_empty() {
        return;
    }
    let ratios: Vec<f64> = var
        .iter()
        .zip(&std)
        .filter(|(v, _)| **v > 1e-12)
        .map(|(v, s)| s * s / v)
        .collect();
    let Some(&r0) = ratios.first() else { return };
    let constant = ratios.iter().all(|r| (r - r0).abs() <= 1e-3 * r0);
    if !constant || (r0 - 1.0).abs() < 1e-6 {
        return;
    }
    let (m, dir) = if r0 > 1.0 {
        (
            r0 / (r0 - 1.0),
            "torch divides by the unbiased std (n−1), Keras's Normalization by the population std (n)",
        )
    } else {
        (
            1.0 / (1.0 - r0),
            "Keras's variance is the unbiased one, torch's the population one",
        )
    };
    if m < 1.5 {
        return;
    }
    out.add(
        Id::StdDdof,
        if (r0.sqrt() - 1.0).abs() > 1e-2 {
            Severity::Medium
        } else {
            Severity::Low
        },
        (r0.sqrt() - 1.0).abs(),
        vec![ev(
            format!(
                "stored standardization, every feature ({dir}; m ≈ {} samples)",
                m.round()
            ),
            format!("{}: variance (÷n)", kn.name),
            format!("{tname}: std² = {} × Keras variance", sig_fine(r0)),
            None,
        )],
        "std = x_train.std(dim=0, correction=0)  # population std, as Keras Normalization.adapt",
        "# nothing to change on this side",
    );
}

/// Step 4.
pub(crate) fn check(
    kb: &Bundle,
    tb: &Bundle,
    out: &mut Findings,
    not_checked: &mut Vec<NotChecked>,
) {
    in_model_standardization(&kb.model, &tb.model, out);
    let (Some(ki), Some(ti)) = (&kb.inputs, &tb.inputs) else {
        not_checked.push(NotChecked {
            what: "inputs".into(),
            reason: "both bundles need inputs.safetensors to compare what each side feeds its model (std-ddof, channels-last, imagenet-preprocess-modes)".into(),
        });
        return;
    };
    let kcf = spatial_layout(&kb.model) == Some(DataLayout::ChannelsLast)
        && spatial_layout(&tb.model) == Some(DataLayout::ChannelsFirst);
    let n_in = kb.model.inputs.len().min(tb.model.inputs.len());
    let mut row_map: Option<Vec<usize>> = None;
    for i in 0..n_in {
        let kname = format!("x.{}", kb.model.inputs[i].name);
        let tname = format!("x.{}", tb.model.inputs[i].name);
        let kx = if kb.model.inputs.len() == 1 {
            ki.get("x").or_else(|| ki.get(&kname))
        } else {
            ki.get(&kname)
        };
        let tx = if tb.model.inputs.len() == 1 {
            ti.get("x").or_else(|| ti.get(&tname))
        } else {
            ti.get(&tname)
        };
        let (Some(kx), Some(tx)) = (kx, tx) else {
            continue;
        };
        let label = if n_in == 1 {
            "x".to_string()
        } else {
            kname.clone()
        };
        let vsplit = kb
            .model
            .training
            .as_ref()
            .map_or(0.0, |t| t.validation_split);
        let map = compare_x(&label, kx, tx, kcf, vsplit, out);
        if row_map.is_none() {
            row_map = map;
        }
    }
    if let (Some(ky), Some(ty)) = (ki.get("y"), ti.get("y")) {
        match (class_indices(ky), class_indices(ty)) {
            (Some(a), Some(b)) => {
                // Torch row i holds Keras row map[i] when the rows were matched.
                let pairs: Vec<(i64, i64)> = match &row_map {
                    Some(m) if m.len() == b.len() && m.iter().all(|j| *j < a.len()) => {
                        m.iter().zip(&b).map(|(j, y)| (a[*j], *y)).collect()
                    }
                    _ => a.iter().copied().zip(b.iter().copied()).collect(),
                };
                let n = pairs.len();
                let differ = pairs.iter().filter(|(x, y)| x != y).count();
                if differ > 0 {
                    out.add(
                        Id::InputMismatch,
                        Severity::High,
                        1.5,
                        vec![ev(
                            "labels `y` (as class indices)",
                            "reference",
                            format!("{differ} of {n} differ"),
                            None,
                        )],
                        "use the same labels in the same order",
                        "nothing to change on this side",
                    );
                }
            }
            _ => {
                let (a, b) = (ky.to_f64(), ty.to_f64());
                if a.len() == b.len() && !a.iter().zip(b.iter()).all(|(x, y)| SAME.close(*y, *x)) {
                    out.add(
                        Id::InputMismatch,
                        Severity::Medium,
                        1.0,
                        vec![ev(
                            "targets `y`",
                            format!("{:?}", ky.shape()),
                            format!("{:?}: different values", ty.shape()),
                            None,
                        )],
                        "use the same targets in the same order",
                        "nothing to change on this side",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(shape: &[usize], v: Vec<f32>) -> Tensor {
        Tensor::from_f32(shape, v).unwrap()
    }

    fn standardized(n: usize, f: usize) -> Vec<f32> {
        (0..n * f)
            .map(|i| (((i * 7919) % 101) as f32 / 50.0 - 1.0) * (1.0 + (i % f) as f32))
            .collect()
    }

    #[track_caller]
    fn check_x(k: Tensor, t: Tensor, cf: bool, expect: Option<&str>) {
        check_split(k, t, cf, 0.0, expect);
    }

    #[track_caller]
    fn check_split(k: Tensor, t: Tensor, cf: bool, split: f64, expect: Option<&str>) {
        let mut out = Findings::default();
        compare_x("x", &k, &t, cf, split, &mut out);
        let found: Vec<String> = out.into_findings().into_iter().map(|f| f.id).collect();
        match expect {
            None => assert!(found.is_empty(), "{found:?}"),
            Some(id) => assert_eq!(found, vec![id.to_string()]),
        }
    }

    #[test]
    fn validation_split_rows() {
        let (n, f) = (40, 3);
        let k = standardized(n, f);
        let rows = |idx: &[usize]| -> Tensor {
            let v: Vec<f32> = idx
                .iter()
                .flat_map(|&i| k[i * f..(i + 1) * f].to_vec())
                .collect();
            tensor(&[idx.len(), f], v)
        };
        let all = tensor(&[n, f], k.clone());
        // validation_split=0.25 of 40 rows: Keras trains on rows 0..30.
        let head: Vec<usize> = (0..30).collect();
        check_split(all.clone(), rows(&head), false, 0.25, None);
        // A random 30 rows, some from the held-out tail.
        let picked: Vec<usize> = (0..30).map(|i| (i * 17 + 3) % n).collect();
        check_split(
            all.clone(),
            rows(&picked),
            false,
            0.25,
            Some("validation-split-tail"),
        );
        // All 40 rows fed to torch: it trains on the held-out rows too.
        check_split(
            all.clone(),
            all.clone(),
            false,
            0.25,
            Some("validation-split-tail"),
        );
        // Without a validation split, the same 40 rows are fine and a subset is a mismatch.
        check_split(all.clone(), all.clone(), false, 0.0, None);
        check_split(all, rows(&head), false, 0.0, Some("input-mismatch"));
        // train_rows follows Keras: floor(n·(1 − v)).
        assert_eq!(crate::measure::train_rows(0.25, 142), 106);
        assert_eq!(crate::measure::train_rows(0.0, 142), 142);
    }

    #[test]
    fn ddof_factor_is_std_ddof() {
        let (n, f) = (64, 5);
        let k = standardized(n, f);
        let m = 1437.0f64;
        let c = ((m - 1.0) / m).sqrt() as f32;
        let t: Vec<f32> = k.iter().map(|v| v * c).collect();
        check_x(
            tensor(&[n, f], k.clone()),
            tensor(&[n, f], t),
            false,
            Some("std-ddof"),
        );
        check_x(
            tensor(&[n, f], k.clone()),
            tensor(&[n, f], k.clone()),
            false,
            None,
        );
        let t: Vec<f32> = k.iter().map(|v| v / 255.0).collect();
        check_x(
            tensor(&[n, f], k.clone()),
            tensor(&[n, f], t),
            false,
            Some("imagenet-preprocess-modes"),
        );
        let t: Vec<f32> = k.iter().rev().copied().collect();
        check_x(
            tensor(&[n, f], k),
            tensor(&[n, f], t),
            false,
            Some("input-mismatch"),
        );
    }

    #[test]
    fn stored_unbiased_std_is_std_ddof() {
        use crate::testkit::{model, node, param, tensor};
        use model_ir::{Framework, ParamLayout};
        let var = vec![1.0f32, 4.0, 0.25];
        let m = 20.0f32;
        let std_t: Vec<f32> = var.iter().map(|v| (v * m / (m - 1.0)).sqrt()).collect();
        let k = model(
            Framework::Keras,
            &[3],
            vec![node(
                Framework::Keras,
                "norm",
                Op::Normalization {
                    axes: vec![-1],
                    invert: false,
                    epsilon: 1e-7,
                },
                "x",
                vec![
                    param(
                        "norm/mean",
                        ParamRole::Mean,
                        ParamLayout::Vector,
                        tensor(&[3], vec![0.0; 3]),
                    ),
                    param(
                        "norm/variance",
                        ParamRole::Variance,
                        ParamLayout::Vector,
                        tensor(&[3], var),
                    ),
                ],
            )],
        );
        let t = model(
            Framework::Torch,
            &[3],
            vec![node(
                Framework::Torch,
                "div",
                Op::ConstantBinary {
                    op: BinaryOp::Div,
                    constant_first: false,
                },
                "x",
                vec![param(
                    "div.constant",
                    ParamRole::Constant,
                    ParamLayout::AsIs,
                    tensor(&[3], std_t),
                )],
            )],
        );
        let mut out = Findings::default();
        in_model_standardization(&k, &t, &mut out);
        let f = out.into_findings();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "std-ddof");
        assert!(
            f[0].evidence[0].what.contains("m ≈ 20"),
            "{}",
            f[0].evidence[0].what
        );
    }

    #[test]
    fn nhwc_reshaped_is_channels_last() {
        let k: Vec<f32> = (0..2 * 4 * 4 * 3).map(|v| v as f32).collect();
        let kt = tensor(&[2, 4, 4, 3], k);
        let right = to_channels_first(&kt).unwrap();
        check_x(kt.clone(), right, true, None);
        let wrong = kt.reshaped(&[2, 3, 4, 4]).unwrap();
        check_x(kt, wrong, true, Some("channels-last"));
    }
}
