//! Step 2: how the torch initial weights relate to the Keras ones.
//!
//! For every paired parameter, in this order:
//! 1. the correct mapping (the layout counterpart, gate reorder, RNN bias split, and the row
//!    permutation of a Dense after a Flatten whose order differs) reproduces the torch tensor:
//!    the weights were copied correctly;
//! 2. a known wrong mapping reproduces it: kernel reshaped instead of transposed
//!    (`dense-layout`, `conv-layout`, `conv-transpose-layout`, `depthwise-separable-layout`),
//!    spatially flipped or axes swapped (`conv-layout`), Dense rows not permuted (or permuted
//!    when they should not be) after a Flatten (`flatten-order`), gate blocks in another order
//!    or the LSTM bias copied into both torch biases (`lstm-layout`), GRU gates not reordered
//!    or its bias rows swapped (`gru-layout-reset-after`);
//! 3. otherwise the two were initialised independently: their distributions are compared
//!    (constant vs random, standard deviation within sampling error, uniform vs bell-shaped,
//!    orthogonality of recurrent kernels) and named after the framework initializer they fit
//!    (`dense-init`, `conv-init`, `depthwise-init`, `embedding-init`, `rnn-init`).

mod candidates;
mod constraints;
mod fit;
mod init;
mod mapping;

use std::collections::BTreeMap;

use catalogue::Id;
use model_ir::{DataLayout, Model, Op, ParamRole};
use report::{Evidence, Severity};

use crate::align::{Aligned, Group, ParamMatch};
use crate::findings::{Findings, ev, pair_label};
use crate::graph::Shapes;
use crate::stats::{Stats, describe, orthogonal, same_distribution};
use candidates::values;
use init::{init_fix, init_id, known_inits, matrix_dims, name_dist, role_word};
use mapping::{
    cell_of, flatten_context, mapped_values, mapping_code, relate, separable_code, torch_names,
    torch_values,
};

/// How one paired parameter's torch values relate to the Keras values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Relation {
    /// The correct mapping reproduces the torch tensor (and the values are not constant).
    Copied,
    /// Equal constants (zero biases, unit gammas): says nothing about copying.
    EqualConstant,
    /// A known wrong mapping reproduces the torch tensor.
    Wrong { id: Id, how: String },
    /// Drawn independently.
    Independent,
    /// Not comparable (non-float storage, shapes no mapping explains).
    Unknown,
}

/// The result of step 2 for every pair, in the order of [`Aligned::pairs`].
#[derive(Debug, Default)]
pub(crate) struct WeightReport {
    /// Per pair: the layer's summary (`copied`, `independent draws`, ...) and, per parameter
    /// match, the mapping description.
    pub(crate) layers: Vec<(String, Vec<String>)>,
    /// Every paired torch parameter under the correct mapping of the Keras initial value
    /// (torch name → values in the torch shape), for the engine-based stages.
    pub(crate) mapped: BTreeMap<String, (Vec<f64>, Vec<usize>)>,
    /// Torch parameters whose own initial value is part of a finding (a wrong mapping or an
    /// initialisation that differs), by torch name: the finding's id. The simulation keeps
    /// them as they are, and aligning that finding replaces them by `mapped`.
    pub(crate) own: BTreeMap<String, Id>,
    /// The Keras weight constraints under the torch parameter names and axes (what the
    /// `weight-constraints` switch projects on the torch side).
    pub(crate) constraints: BTreeMap<String, model_ir::Constraint>,
    /// Keras parameters whose constraint has no exact torch counterpart (layout or grouping).
    pub(crate) constraints_unmapped: Vec<String>,
}

/// Rows of the Dense kernel after a Flatten: `Some((perm, keras order, torch order))` when the
/// two flatten orders differ, i.e. when the correct mapping permutes the kernel rows.
/// The row permutation of a Dense kernel after a Flatten whose order differs between the two
/// models.
#[derive(Debug, Clone)]
pub(crate) struct Flat {
    perm: Vec<usize>,
    from: DataLayout,
    to: DataLayout,
    spatial: Vec<usize>,
    channels: usize,
}

/// Step 2 over every pair.
pub(crate) fn check(
    keras: &Model,
    torch: &Model,
    aligned: &Aligned<'_>,
    kshapes: &Shapes,
    out: &mut Findings,
) -> WeightReport {
    let mut layers = Vec::new();
    let mut mapped = BTreeMap::new();
    let mut own = BTreeMap::new();
    let mut any_copied = false;
    let mut same_dist_evidence: Vec<Evidence> = Vec::new();
    let mut torch_constraints = constraints::Mapped::default();
    for pair in &aligned.pairs {
        let cell = cell_of(pair.keras);
        let flatten = flatten_context(keras, torch, pair, kshapes);
        let label = pair_label(&pair.keras.name, &pair.torch_name());
        let mut maps = Vec::new();
        let mut rels = Vec::new();
        for m in &pair.params {
            let (rel, desc) = relate(m, cell, flatten.as_ref());
            let torch_names_of = |m: &ParamMatch<'_>| -> Vec<String> {
                m.torch.iter().map(|p| p.name.clone()).collect()
            };
            for (name, v, shape) in mapped_values(m, cell, flatten.as_ref()) {
                mapped.insert(name, (v, shape));
            }
            if let Relation::Wrong { id, .. } = &rel {
                for n in torch_names_of(m) {
                    own.insert(n, *id);
                }
            }
            maps.push(desc);
            rels.push(rel.clone());
            match rel {
                Relation::Wrong { id, how } => {
                    any_copied = true;
                    let what = format!(
                        "{} copied with the wrong mapping: {how}",
                        role_word(m.keras.role)
                    );
                    let units = match &pair.keras.op {
                        Op::Rnn { units, .. } => Some(*units),
                        _ => None,
                    };
                    let separable = matches!(
                        m.keras.role,
                        ParamRole::DepthwiseKernel | ParamRole::PointwiseKernel
                    )
                    .then(|| separable_code(pair))
                    .flatten();
                    let fix_t = separable.unwrap_or_else(|| {
                        format!(
                            "{}  # exact mapping",
                            mapping_code(m, flatten.as_ref(), units)
                        )
                    });
                    out.add(
                        id,
                        Severity::High,
                        2.0,
                        vec![ev(
                            what,
                            format!("{} {:?}", m.keras.name, m.keras.tensor.shape()),
                            torch_names(m),
                            label.clone(),
                        )],
                        fix_t,
                        "nothing to change on this side",
                    );
                }
                Relation::Copied => any_copied = true,
                Relation::Independent => {
                    if let Some(id) =
                        independent(keras, pair, m, label.clone(), out, &mut same_dist_evidence)
                    {
                        for n in torch_names_of(m) {
                            own.insert(n, id);
                        }
                    }
                }
                Relation::EqualConstant | Relation::Unknown => {}
            }
        }
        constraints::check_pair(keras, pair, label.clone(), out, &mut torch_constraints);
        let summary = summarize(&rels);
        layers.push((summary, maps));
    }
    if !same_dist_evidence.is_empty() && !any_copied {
        same_dist_evidence.truncate(4);
        out.add(
            Id::SeedingDeterminism,
            Severity::Info,
            0.0,
            same_dist_evidence,
            "to compare like with like, copy the Keras initial weights into the torch model (the layer alignment gives each mapping)",
            "keras.utils.set_random_seed(s) fixes Keras's draws only; the frameworks' random streams never agree",
        );
    }
    WeightReport {
        layers,
        mapped,
        own,
        constraints: torch_constraints.mapped,
        constraints_unmapped: torch_constraints.unmapped,
    }
}

/// Two independently initialised tensors: the Keras side's initializer from its config (or
/// its observed values when the config records none), the torch side's fitted with its
/// confidence; an initialisation finding when they differ. Returns the finding's id.
fn independent(
    keras: &Model,
    pair: &crate::align::Pair<'_>,
    m: &ParamMatch<'_>,
    label: Option<String>,
    out: &mut Findings,
    same_dist_evidence: &mut Vec<Evidence>,
) -> Option<Id> {
    let kv = values(&m.keras.tensor)?;
    let (tv, tshape) = torch_values(m)?;
    let (ks, ts) = (Stats::of(&kv), Stats::of(&tv));
    let (kr, kc) = matrix_dims(m.keras.tensor.shape());
    let ko = m.keras.role == ParamRole::RecurrentKernel && orthogonal(&kv, kr, kc);
    let to = m.keras.role == ParamRole::RecurrentKernel && m.group == Group::One && {
        let (tr, tc) = matrix_dims(m.torch[0].tensor.shape());
        orthogonal(&tv, tr, tc)
    };
    let kinit = keras.initializers.get(&m.keras.name);
    let klaw = kinit.and_then(|i| fit::keras_law(i, m.keras));
    let kdesc = match kinit {
        Some(i) => format!("{} (layer config)", i.display()),
        None => format!(
            "{} (observed; the config records no initializer)",
            describe(&ks, &kv)
        ),
    };
    let known = known_inits(m.keras, pair.torch, &m.torch);
    let (tdesc, same, tfit) = match (m.group, m.torch.first()) {
        (Group::One, Some(tp)) => {
            let cands =
                fit::torch_candidates(m.keras, pair.torch, tp, &tv, kinit.zip(klaw.as_ref()));
            let f = fit::torch_fit(&tv, &tshape, &cands);
            let same = match &klaw {
                // Identified as the Keras law, or tied with it: nothing says they differ.
                Some(kl) => f.laws.iter().any(|l| l.same(kl)),
                None => same_distribution(&ks, &ts, ko, to),
            };
            (f.text.clone(), same, Some(f))
        }
        _ => (
            name_dist(&ts, &tv, to, &known),
            same_distribution(&ks, &ts, ko, to),
            None,
        ),
    };
    let what = format!("{} initialisation", role_word(m.keras.role));
    let e = ev(
        what,
        format!("{}: {kdesc}", m.keras.name),
        format!("{}: {tdesc}", torch_names(m)),
        label,
    );
    if same {
        if !ks.constant() {
            same_dist_evidence.push(e);
        }
        return None;
    }
    let id = init_id(&pair.keras.op, m.keras.role)?;
    let magnitude = if ks.constant() || ts.constant() {
        1.0
    } else {
        (ts.std / ks.std).ln().abs().min(3.0)
    };
    let tname = m.torch.first().map_or("?", |p| p.name.as_str());
    let (old_t, old_k) = init_fix(&pair.keras.op, m, &kdesc);
    let fix_t = match kinit {
        Some(i) if m.group == Group::One => fit::torch_code(i, m.keras, tname).unwrap_or(old_t),
        _ => old_t,
    };
    let tname_fit = tfit.as_ref().and_then(|f| f.name.clone());
    let fix_k = match (&tfit, &tname_fit) {
        (Some(f), Some(name)) if !name.contains("kaiming_uniform_(a=√5)") && f.laws.len() == 1 => {
            fit::keras_arg(
                &format!("{}_initializer", keras_arg_name(m.keras.role)),
                &f.laws[0],
            )
            .unwrap_or(old_k)
        }
        _ => old_k,
    };
    let kshow = kinit.map_or_else(|| describe(&ks, &kv), |i| i.display());
    // `torch default kaiming_uniform_(a=√5) = U(±1/√fan_in), fan_in 64` → `kaiming_uniform_(a=√5)
    // (its default)`.
    let tshow = tname_fit.map_or_else(
        || "unknown (see the fit)".to_string(),
        |n| {
            let short = n.split(" = ").next().unwrap_or(&n).to_string();
            match short.strip_prefix("torch default ") {
                Some(rest) => format!("{rest} (its default)"),
                None => short,
            }
        },
    );
    let title = if id == Id::BnAffineInit {
        format!(
            "BatchNorm {} initialised differently: Keras {kshow}, torch {tshow}",
            role_word(m.keras.role)
        )
    } else {
        format!(
            "{} {} initialiser differs: Keras {kshow}, torch {tshow}",
            pair.keras.origin.class,
            role_word(m.keras.role)
        )
    };
    out.add(id, Severity::Medium, magnitude, vec![e], fix_t, fix_k);
    out.set_title(id, title);
    Some(id)
}

/// The Keras layer argument prefix of a variable's initializer (`kernel`, `recurrent`, ...).
fn keras_arg_name(r: ParamRole) -> &'static str {
    match r {
        ParamRole::RecurrentKernel => "recurrent",
        ParamRole::Bias | ParamRole::InputBias | ParamRole::RecurrentBias => "bias",
        ParamRole::Embeddings => "embeddings",
        ParamRole::DepthwiseKernel => "depthwise",
        ParamRole::PointwiseKernel => "pointwise",
        ParamRole::Gamma => "gamma",
        ParamRole::Beta => "beta",
        _ => "kernel",
    }
}

fn summarize(rels: &[Relation]) -> String {
    let wrong: Vec<Id> = rels
        .iter()
        .filter_map(|r| match r {
            Relation::Wrong { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    if let Some(id) = wrong.first() {
        return format!("copied under a wrong mapping ({id})");
    }
    let copied = rels.iter().filter(|r| **r == Relation::Copied).count();
    let indep = rels.iter().filter(|r| **r == Relation::Independent).count();
    match (copied, indep) {
        (0, 0) if rels.iter().all(|r| *r == Relation::EqualConstant) => "equal (constants)".into(),
        (0, 0) => "not compared".into(),
        (_, 0) => "copied (exact mapping)".into(),
        (0, _) => "independent draws".into(),
        _ => "partly copied".into(),
    }
}

#[cfg(test)]
mod tests {
    use model_ir::{Activation, DataLayout, Framework, Op, Padding, ParamLayout, ParamRole};
    use report::Severity;

    use crate::testkit::*;

    /// Runs the diagnosis and returns the ids of the weight step (layouts and inits).
    #[track_caller]
    fn check(keras: model_ir::Model, torch: model_ir::Model, expect: &[&str]) {
        let found: Vec<String> = ids(keras, torch)
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| {
                id.ends_with("-layout")
                    || id.ends_with("-init")
                    || matches!(
                        id.as_str(),
                        "flatten-order" | "gru-layout-reset-after" | "seeding-determinism"
                    )
            })
            .collect();
        assert_eq!(found, expect);
    }

    #[test]
    fn copied_dense_weights_are_fine() {
        let (k, t) = faithful_mlp();
        check(k, t, &[]);
    }

    #[test]
    fn dense_kernel_reshaped_is_dense_layout() {
        let (k, mut t) = faithful_mlp();
        let kk = k.nodes[0].params[0].tensor.clone();
        t.nodes[0].params[0].tensor = kk.reshaped(&[5, 6]).unwrap();
        check(k, t, &["dense-layout"]);
    }

    #[test]
    fn zero_bias_vs_uniform_bias_is_dense_init() {
        let (k, mut t) = faithful_mlp();
        t.nodes[0].params[1].tensor = tensor(&[5], uniform(5, 0.4, 9));
        let d = run(k, t);
        let f = d
            .findings
            .iter()
            .find(|f| f.id == "dense-init")
            .expect("dense-init");
        assert_eq!(f.severity, Severity::Medium);
        assert!(f.evidence[0].what.contains("bias"));
        assert!(f.evidence[0].keras.contains("zeros"));
        assert_eq!(f.fix.torch, "nn.init.zeros_(model.fc1.bias)");
    }

    #[test]
    fn independent_draws_of_one_distribution_are_seeding_only() {
        let (mut k, mut t) = faithful_mlp();
        // Same glorot bound, other draws (large enough tensors for the test to have power).
        let (i, h) = (64, 128);
        let b = (6.0f32 / (i + h) as f32).sqrt();
        k.nodes[0].params[0].tensor = tensor(&[i, h], uniform(i * h, b, 3));
        k.nodes[0].params[1].tensor = tensor(&[h], vec![0.0; h]);
        k.nodes[1].params[0].tensor = tensor(&[h, 3], uniform(h * 3, (6.0f32 / 131.0).sqrt(), 4));
        k.inputs[0].shape = vec![None, Some(i)];
        t.nodes[0].params[0].tensor = tensor(&[h, i], uniform(i * h, b, 5));
        t.nodes[0].params[1].tensor = tensor(&[h], vec![0.0; h]);
        t.nodes[2].params[0].tensor = tensor(&[3, h], uniform(h * 3, (6.0f32 / 131.0).sqrt(), 6));
        t.inputs[0].shape = vec![None, Some(i)];
        check(k, t, &["seeding-determinism"]);
    }

    fn conv_pair(wrong: bool) -> (model_ir::Model, model_ir::Model) {
        let kk = tensor(&[3, 3, 2, 4], uniform(72, 0.3, 7));
        let tw = if wrong {
            kk.reshaped(&[4, 2, 3, 3]).unwrap()
        } else {
            kk.permuted(&[3, 2, 0, 1])
        };
        let k = model(
            Framework::Keras,
            &[8, 8, 2],
            vec![node(
                Framework::Keras,
                "conv",
                conv_op(4, 3, 1, Padding::SameUpper, DataLayout::ChannelsLast),
                "x",
                vec![
                    param(
                        "conv/kernel",
                        ParamRole::Kernel,
                        ParamLayout::ConvSpatialInOut { rank: 2 },
                        kk,
                    ),
                    param(
                        "conv/bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        tensor(&[4], vec![0.0; 4]),
                    ),
                ],
            )],
        );
        let t = model(
            Framework::Torch,
            &[2, 8, 8],
            vec![node(
                Framework::Torch,
                "conv",
                conv_op(
                    4,
                    3,
                    1,
                    Padding::symmetric(&[1, 1]),
                    DataLayout::ChannelsFirst,
                ),
                "x",
                vec![
                    param(
                        "conv.weight",
                        ParamRole::Kernel,
                        ParamLayout::ConvOutInSpatial { rank: 2 },
                        tw,
                    ),
                    param(
                        "conv.bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        tensor(&[4], vec![0.0; 4]),
                    ),
                ],
            )],
        );
        (k, t)
    }

    #[test]
    fn conv_kernels() {
        let (k, t) = conv_pair(false);
        check(k, t, &[]);
        let (k, t) = conv_pair(true);
        check(k, t, &["conv-layout"]);
    }

    fn flatten_pair(permute_rows: bool) -> (model_ir::Model, model_ir::Model) {
        // Feature map 2×2×3 (H, W, C) → flatten → Dense(12 → 2).
        let kk = tensor(&[12, 2], uniform(24, 0.5, 11));
        let perm = model_ir::layout::flatten_permutation(
            &[2, 2],
            3,
            DataLayout::ChannelsLast,
            DataLayout::ChannelsFirst,
        );
        let rows = if permute_rows {
            kk.select(0, &perm)
        } else {
            kk.clone()
        };
        let tw = rows.permuted(&[1, 0]);
        let flat = |fw, order| {
            node(
                fw,
                "flatten",
                Op::Flatten {
                    start_axis: 1,
                    order,
                },
                "x",
                vec![],
            )
        };
        let k = model(
            Framework::Keras,
            &[2, 2, 3],
            vec![
                flat(Framework::Keras, DataLayout::ChannelsLast),
                keras_dense("fc", "flatten", kk, vec![0.0; 2], Activation::Linear),
            ],
        );
        let t = model(
            Framework::Torch,
            &[3, 2, 2],
            vec![
                flat(Framework::Torch, DataLayout::ChannelsFirst),
                torch_dense("fc", "flatten", tw, vec![0.0; 2]),
            ],
        );
        (k, t)
    }

    #[test]
    fn dense_after_flatten() {
        let (k, t) = flatten_pair(true);
        check(k, t, &[]);
        let (k, t) = flatten_pair(false);
        check(k, t, &["flatten-order"]);
    }

    /// How the torch port of a SeparableConv copies the Keras kernels.
    #[derive(Clone, Copy, PartialEq)]
    enum SepCopy {
        /// Depthwise `K.reshape(kh, kw, C*M).transpose(2, 0, 1)[:, None]`, pointwise
        /// `P.transpose(3, 2, 0, 1)`.
        Faithful,
        /// Depthwise `K.reshape(C*M, 1, kh, kw)` (the plant of the bundled case).
        DepthwiseReshaped,
        /// Depthwise transposed like a regular conv kernel: channel `m·C + c`.
        DepthwiseMultMajor,
        /// Pointwise `P.reshape(out, C*M, 1, 1)`.
        PointwiseReshaped,
    }

    /// Keras `SeparableConv2D(f, 3, depth_multiplier=M)` on a 6×6×C input and its usual torch
    /// port `Conv2d(C, C*M, 3, groups=C, bias=False) → Conv2d(C*M, f, 1)`; the torch
    /// tensors are built index by index here (not with the code under test).
    fn separable_pair(c: usize, mult: usize, how: SepCopy) -> (model_ir::Model, model_ir::Model) {
        let (k, f) = (3, 4);
        let cm = c * mult;
        let dk = tensor(&[k, k, c, mult], uniform(k * k * cm, 0.4, 31));
        let pk = tensor(&[1, 1, cm, f], uniform(cm * f, 0.5, 32));
        let bias = uniform(f, 0.2, 33);
        let (dv, pv) = (dk.to_f64(), pk.to_f64());
        let (dv, pv): (Vec<f64>, Vec<f64>) =
            (dv.iter().copied().collect(), pv.iter().copied().collect());
        // Keras depthwise index (i, j, ch, m); pointwise (0, 0, q, o).
        let kd = |i: usize, j: usize, ch: usize, m: usize| dv[((i * k + j) * c + ch) * mult + m];
        let mut tw = vec![0.0f32; cm * k * k];
        for ch in 0..c {
            for m in 0..mult {
                for i in 0..k {
                    for j in 0..k {
                        let o = match how {
                            SepCopy::DepthwiseMultMajor => m * c + ch,
                            _ => ch * mult + m,
                        };
                        tw[(o * k + i) * k + j] = kd(i, j, ch, m) as f32;
                    }
                }
            }
        }
        if how == SepCopy::DepthwiseReshaped {
            tw = dv.iter().map(|&x| x as f32).collect();
        }
        let mut tp = vec![0.0f32; f * cm];
        for o in 0..f {
            for q in 0..cm {
                tp[o * cm + q] = pv[q * f + o] as f32;
            }
        }
        if how == SepCopy::PointwiseReshaped {
            tp = pv.iter().map(|&x| x as f32).collect();
        }
        let keras = model(
            Framework::Keras,
            &[6, 6, c],
            vec![node(
                Framework::Keras,
                "sep",
                Op::SeparableConv {
                    rank: 2,
                    filters: f,
                    depth_multiplier: mult,
                    kernel_size: vec![k, k],
                    strides: vec![1, 1],
                    dilation: vec![1, 1],
                    padding: Padding::Valid,
                    layout: DataLayout::ChannelsLast,
                    use_bias: true,
                    activation: Activation::Linear,
                },
                "x",
                vec![
                    param(
                        "sep/depthwise_kernel",
                        ParamRole::DepthwiseKernel,
                        ParamLayout::DepthwiseSpatialInMult { rank: 2 },
                        dk,
                    ),
                    param(
                        "sep/pointwise_kernel",
                        ParamRole::PointwiseKernel,
                        ParamLayout::ConvSpatialInOut { rank: 2 },
                        pk,
                    ),
                    param(
                        "sep/bias",
                        ParamRole::Bias,
                        ParamLayout::Vector,
                        tensor(&[f], bias.clone()),
                    ),
                ],
            )],
        );
        let torch = model(
            Framework::Torch,
            &[c, 6, 6],
            vec![
                node(
                    Framework::Torch,
                    "sep_dw",
                    Op::DepthwiseConv {
                        rank: 2,
                        depth_multiplier: mult,
                        kernel_size: vec![k, k],
                        strides: vec![1, 1],
                        dilation: vec![1, 1],
                        padding: Padding::Valid,
                        layout: DataLayout::ChannelsFirst,
                        use_bias: false,
                        activation: Activation::Linear,
                    },
                    "x",
                    vec![param(
                        "sep_dw.weight",
                        ParamRole::Kernel,
                        ParamLayout::DepthwiseOutOneSpatial { rank: 2 },
                        tensor(&[cm, 1, k, k], tw),
                    )],
                ),
                node(
                    Framework::Torch,
                    "sep_pw",
                    conv_op(f, 1, 1, Padding::Valid, DataLayout::ChannelsFirst),
                    "sep_dw",
                    vec![
                        param(
                            "sep_pw.weight",
                            ParamRole::Kernel,
                            ParamLayout::ConvOutInSpatial { rank: 2 },
                            tensor(&[f, cm, 1, 1], tp),
                        ),
                        param(
                            "sep_pw.bias",
                            ParamRole::Bias,
                            ParamLayout::Vector,
                            tensor(&[f], bias),
                        ),
                    ],
                ),
            ],
        );
        (keras, torch)
    }

    #[test]
    fn faithful_separable_port_is_one_copied_pair() {
        for mult in [1, 2] {
            let (k, t) = separable_pair(3, mult, SepCopy::Faithful);
            let d = run(k.clone(), t.clone());
            assert_eq!(d.alignment.pairs.len(), 1, "mult {mult}");
            let p = &d.alignment.pairs[0];
            assert_eq!(
                (p.keras.as_str(), p.torch.as_str()),
                ("sep", "sep_dw + sep_pw")
            );
            assert_eq!(p.weights, "copied (exact mapping)", "mult {mult}");
            assert!(d.alignment.keras_only.is_empty() && d.alignment.torch_only.is_empty());
            assert!(
                d.findings
                    .iter()
                    .all(|f| f.id != "architecture-mismatch" && f.id != "same-padding-asymmetric"),
                "{:?}",
                d.findings
            );
            check(k, t, &[]);
        }
    }

    #[test]
    fn separable_kernels_copied_wrongly_are_depthwise_separable_layout() {
        for (mult, how) in [
            (1, SepCopy::DepthwiseReshaped),
            (2, SepCopy::DepthwiseReshaped),
            (2, SepCopy::DepthwiseMultMajor),
            (2, SepCopy::PointwiseReshaped),
        ] {
            let (k, t) = separable_pair(3, mult, how);
            check(k.clone(), t.clone(), &["depthwise-separable-layout"]);
            let d = run(k, t);
            let f = d
                .findings
                .iter()
                .find(|f| f.id == "depthwise-separable-layout")
                .expect("finding");
            assert_eq!(f.severity, Severity::High);
            // The fix maps both halves exactly.
            assert!(
                f.fix.torch.contains(
                    "model.sep_dw.weight.data = torch.from_numpy(K.reshape(3, 3, -1).transpose(2, 0, 1)[:, None].copy())"
                ),
                "{}",
                f.fix.torch
            );
            assert!(
                f.fix.torch.contains(
                    "model.sep_pw.weight.data = torch.from_numpy(K.transpose(3, 2, 0, 1).copy())"
                ),
                "{}",
                f.fix.torch
            );
            let e = &f.evidence[0];
            let part = if how == SepCopy::PointwiseReshaped {
                "pointwise"
            } else {
                "depthwise"
            };
            assert!(
                e.what
                    .starts_with(&format!("{part} kernel copied with the wrong mapping"))
            );
            assert_eq!(e.layer.as_deref(), Some("sep ↔ sep_dw + sep_pw"));
        }
    }

    /// The correct mapping (`WeightReport::mapped`) of a SeparableConv with depth multiplier 2
    /// makes the two-convolution torch port compute what Keras computes, and the wrong
    /// torch tensor is the one the finding owns.
    #[test]
    fn separable_mapping_reproduces_keras_output() {
        use engine::{DropoutMasks, Mode, ParamStore, Program, forward};
        use ndarray::{ArrayD, IxDyn};

        let (c, mult) = (3, 2);
        let (k, t) = separable_pair(c, mult, SepCopy::DepthwiseReshaped);
        let aligned = crate::align::align(&k, &t);
        let kshapes = crate::graph::infer_shapes(&k);
        let mut out = crate::findings::Findings::default();
        let w = super::check(&k, &t, &aligned, &kshapes, &mut out);
        assert_eq!(
            w.own.get("sep_dw.weight").copied(),
            Some(catalogue::Id::DepthwiseSeparableLayout)
        );
        assert_eq!(w.own.len(), 1, "{:?}", w.own);
        for n in ["sep_dw.weight", "sep_pw.weight", "sep_pw.bias"] {
            assert!(w.mapped.contains_key(n), "{n} not mapped");
        }
        let xk: Vec<f32> = uniform(2 * 6 * 6 * c, 1.0, 41);
        let xk = ArrayD::from_shape_vec(IxDyn(&[2, 6, 6, c]), xk).unwrap();
        let xt = xk
            .clone()
            .permuted_axes(IxDyn(&[0, 3, 1, 2]))
            .as_standard_layout()
            .to_owned();
        let run = |m: &model_ir::Model, x: ArrayD<f32>, mapped: bool| -> ArrayD<f32> {
            let p = Program::new(m).expect("program");
            let mut s = ParamStore::<f32>::from_model(m);
            if mapped {
                for (name, (v, shape)) in &w.mapped {
                    let a =
                        ArrayD::from_shape_vec(IxDyn(shape), v.iter().map(|&x| x as f32).collect())
                            .unwrap();
                    s.values.insert(name.clone(), a);
                }
            }
            let f = forward(&p, &s, &[x], Mode::Inference, &DropoutMasks::new()).expect("runs");
            f.outputs[0].clone()
        };
        let yk = run(&k, xk, false);
        let yk = yk.permuted_axes(IxDyn(&[0, 3, 1, 2]));
        let max = |a: &ArrayD<f32>| {
            a.iter()
                .zip(yk.iter())
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max)
        };
        let yt = run(&t, xt.clone(), true);
        assert_eq!(yt.shape(), yk.shape());
        assert!(max(&yt) < 1e-5, "mapped port differs by {}", max(&yt));
        // The planted port's own weights do not.
        assert!(max(&run(&t, xt, false)) > 1e-2);
    }

    #[test]
    fn recurrent_layouts() {
        let (k, t) = rnn_pair(true, false);
        check(k, t, &[]);
        let (k, t) = rnn_pair(false, false);
        check(k, t, &["gru-layout-reset-after"]);
        let (k, t) = rnn_pair(true, true);
        check(k, t, &[]);
        let (k, t) = rnn_pair(false, true);
        check(k, t, &["lstm-layout"]);
    }
}
