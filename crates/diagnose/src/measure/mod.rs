//! Steps 5–7: the measured stages, run in the reference engine.
//!
//! - **Forward parity**: the Keras initial weights mapped into the torch model (correct
//!   mapping), both models run in inference mode on the Keras inputs (NHWC → NCHW for the
//!   torch side); per aligned layer (at the end of its activation chain) max-abs and relative
//!   error and cosine, carried forward and isolated (the torch segment since the previous
//!   aligned layer fed the Keras value at that point).
//! - **Training**: each side's full semantics (optimizer emulator, loss with the Keras
//!   TF-backend logits shortcut, regularizers, batch size, shuffling with one shared sample
//!   order, dropout off) from the same start: the torch parameters are the Keras initial
//!   weights mapped, except those whose own initial value is a finding (a wrong mapping, an
//!   initialisation that differs). Every `probe` steps both models are scored in inference
//!   mode on all rows of their inputs (crossentropy of the predicted probabilities clipped
//!   to [1e-7, 1 − 1e-7], or MSE for regression losses): the gap is the mean absolute
//!   difference of the two probe curves.
//! - **Ablation**: the torch side re-run with one finding aligned to Keras (and with all of
//!   them); impact = gap closed / gap.
//! - **Noise floor**: each side against itself over K seeds (shuffled sample order, dropout
//!   masks), in the units of the gap.

use std::collections::{BTreeMap, BTreeSet};

use catalogue::Id;
use engine::loss::Loss;
use engine::{Batch, DropoutMasks, Mode, ParamStore, Program, TrainConfig, forward, train};
use model_import::Bundle;
use model_ir::{Activation, DataLayout, Framework, Model, Node, Op, Tensor, ValueInfo};
use ndarray::{ArrayD, Axis, IxDyn};
use optim::driver::{Driver, Grads};
use report::{
    Ablation, Curve, Finding, ForwardReport, Impact, LayerError, NoiseFloor, NotChecked,
    TrainingReport,
};

use crate::align::{Aligned, Group};
use crate::graph::{activation_chain, output_activation, spatial_layout};
use crate::weights::WeightReport;

type F = f32;

/// Default training steps and seeds.
pub(crate) const DEFAULT_STEPS: usize = 200;
pub(crate) const DEFAULT_SEEDS: usize = 5;
/// Forward outputs further apart than this (max-abs) count as parted.
const FORWARD_THRESHOLD: f64 = 1e-4;
/// Rows used for forward parity.
const FORWARD_ROWS: usize = 64;
/// Probe points per training run (plus the start).
const PROBES: usize = 20;
/// The metric of the gap.
const METRIC: &str = "mean |Δ probe loss| over the run";
/// What the curves show.
const CURVE: &str = "probe loss (crossentropy of the inference-mode predictions on all rows)";

/// What the measured stages produced.
#[derive(Debug, Default)]
pub(crate) struct Measured {
    pub(crate) forward: Option<ForwardReport>,
    pub(crate) training: Option<TrainingReport>,
    pub(crate) noise: Option<NoiseFloor>,
    /// Per finding id: the measured impact, or why there is none.
    pub(crate) impacts: BTreeMap<String, Result<Impact, String>>,
    /// Per finding id: the other findings one and the same switch aligns (the whole Keras
    /// optimizer, loss or inputs), whose measured impact it therefore shares.
    pub(crate) shared: BTreeMap<String, Vec<String>>,
    pub(crate) not_checked: Vec<NotChecked>,
}

mod ablation;
mod constraints;
mod parity;
mod simulate;
mod switch;

use ablation::*;
use parity::*;
use simulate::*;
pub(crate) use simulate::{keras_train_rows, train_rows};
use switch::*;

fn mean_gap(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()).max(1);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / n as f64
}

/// Everything the stages share.
struct Ctx<'a> {
    kb: &'a Bundle,
    tb: &'a Bundle,
    aligned: &'a Aligned<'a>,
    w: &'a WeightReport,
    /// Keras data in the torch layout.
    kdata_t: Data,
}

fn data_of(b: &Bundle) -> Option<Data> {
    let x: Option<Vec<ArrayD<F>>> = (0..b.model.inputs.len())
        .map(|i| input_tensor(b, i).map(arr))
        .collect();
    let y = b.inputs.as_ref()?.get("y").map(arr)?;
    Some(Data { x: x?, y })
}

fn skip(stage: &str, reason: impl Into<String>) -> NotChecked {
    NotChecked {
        what: stage.into(),
        reason: reason.into(),
    }
}

/// Torch parameters: the torch bundle's own, with the Keras initial weights (correct mapping)
/// where `all` or where the torch value is not itself a finding.
fn torch_init(tb: &Bundle, w: &WeightReport, all: bool) -> ParamStore<F> {
    let mut s = ParamStore::from_model(&tb.model);
    let chosen: BTreeMap<String, (Vec<f64>, Vec<usize>)> = w
        .mapped
        .iter()
        .filter(|(n, _)| all || !w.own.contains_key(*n))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    store_from(&chosen, &mut s);
    s
}

/// Runs the measured stages. `progress` is told when a stage starts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn measure(
    kb: &Bundle,
    tb: &Bundle,
    aligned: &Aligned<'_>,
    w: &WeightReport,
    findings: &[Finding],
    steps: usize,
    seeds: usize,
    progress: &dyn Fn(&str),
) -> Measured {
    let mut out = Measured::default();
    let (Some(kdata), Some(tdata_own)) = (data_of(kb), data_of(tb).or_else(|| data_of(kb))) else {
        for stage in ["forward parity", "training", "ablation", "noise floor"] {
            out.not_checked.push(skip(
                stage,
                "the Keras bundle needs inputs.safetensors with x and y to run the models",
            ));
        }
        return out;
    };
    let change = layout_change(&kb.model, &tb.model);
    let kdata_t = Data {
        x: kdata.x.iter().map(|x| to_torch_layout(x, change)).collect(),
        y: kdata.y.clone(),
    };
    let tdata = if tb.inputs.is_some() {
        tdata_own
    } else {
        kdata_t.clone()
    };
    let ctx = Ctx {
        kb,
        tb,
        aligned,
        w,
        kdata_t,
    };
    progress("forward parity");
    match forward_parity(&ctx, &kdata) {
        Ok(f) => out.forward = Some(f),
        Err(e) => out.not_checked.push(skip("forward parity", e)),
    }
    progress("training");
    if let Err(e) = training(
        &ctx, kdata, tdata, findings, steps, seeds, progress, &mut out,
    ) {
        for stage in ["training", "ablation", "noise floor"] {
            out.not_checked.push(skip(stage, e.clone()));
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn training(
    ctx: &Ctx<'_>,
    kdata: Data,
    tdata: Data,
    findings: &[Finding],
    steps: usize,
    seeds: usize,
    progress: &dyn Fn(&str),
    out: &mut Measured,
) -> Result<(), String> {
    let kinit = ParamStore::from_model(&ctx.kb.model);
    let ktrain = kdata.head(keras_train_rows(&ctx.kb.model, kdata.rows()));
    let keras = side(ctx.kb, ktrain, kdata, kinit).map_err(|e| format!("Keras side: {e}"))?;
    // The torch side is scored on its own rows when they are the Keras samples (possibly
    // preprocessed its own way), else on every Keras row.
    let tprobe = if tdata.rows() == ctx.kdata_t.rows() {
        tdata.clone()
    } else {
        ctx.kdata_t.clone()
    };
    let mut torch = side(ctx.tb, tdata, tprobe, torch_init(ctx.tb, ctx.w, false))
        .map_err(|e| format!("torch side: {e}"))?;
    // The simulation starts both sides from the same weights, so the initial draw is not a
    // source of the gap, except where a finding keeps the torch side's own initialisation
    // (`dense-init`, ...): those tensors are a second draw, which the floor redraws.
    torch.redraw = ctx
        .w
        .own
        .iter()
        .filter(|(_, id)| id.category() == "init" && findings.iter().any(|f| f.id == id.name()))
        .map(|(n, _)| n.clone())
        .collect();
    let fresh = !torch.redraw.is_empty();
    let classification = ctx
        .kb
        .model
        .training
        .as_ref()
        .and_then(|t| t.loss.as_ref())
        .is_some_and(|l| l.class_name.to_lowercase().contains("crossentropy"));
    let probe = Probe { classification };
    let kc = run(&keras, steps, None, &probe).map_err(|e| format!("Keras run: {e}"))?;
    let tc = run(&torch, steps, None, &probe).map_err(|e| format!("torch run: {e}"))?;
    let gap = mean_gap(&kc, &tc);

    let ids: Vec<Id> = findings.iter().filter_map(|f| Id::parse(&f.id)).collect();
    let sgd_exact = sgd_lr_momentum(&torch.opt, &keras.opt).is_some();
    out.shared = shared_switches(&ids, ctx.w, sgd_exact);
    progress("ablations");
    let mut ablations = Vec::new();
    let mut alignable = Vec::new();
    let closed = |g: f64| {
        if gap > 0.0 {
            ((gap - g) / gap).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    for f in findings {
        // Every finding diagnose builds carries a catalogue id's name.
        let id = Id::parse(&f.id).ok_or_else(|| NoSwitch::NotYet.reason().to_string());
        let res = id.and_then(|id| {
            let s = ctx.aligned_setup(&torch, &keras, &[id])?;
            Ok((id, run(&s, steps, None, &probe)?))
        });
        match res {
            Ok((id, curve)) => {
                let g = mean_gap(&kc, &curve);
                alignable.push(id);
                out.impacts.insert(
                    f.id.clone(),
                    Ok(Impact {
                        share: closed(g),
                        gap_closed: gap - g,
                        gap_total: gap,
                        metric: METRIC.into(),
                    }),
                );
                ablations.push(Ablation {
                    label: format!("{} aligned", f.id),
                    ids: vec![f.id.clone()],
                    curve,
                    gap: g,
                    closed: closed(g),
                });
            }
            Err(e) => {
                out.impacts.insert(f.id.clone(), Err(e));
            }
        }
    }
    let all_aligned = if alignable.is_empty() {
        None
    } else {
        let s = ctx.aligned_setup(&torch, &keras, &alignable)?;
        let curve = run(&s, steps, None, &probe)?;
        let g = mean_gap(&kc, &curve);
        Some(Ablation {
            label: "all aligned".into(),
            ids: alignable.iter().map(|id| id.name().to_string()).collect(),
            curve,
            gap: g,
            closed: closed(g),
        })
    };

    progress("noise floor");
    let spread = |s: &Setup, base: &[f64]| -> Result<f64, String> {
        let mut worst = 0.0f64;
        for seed in 1..=seeds as u64 {
            let c = run(s, steps, Some(seed), &probe)?;
            worst = worst.max(mean_gap(base, &c));
        }
        Ok(worst)
    };
    let nk = spread(&keras, &kc)?;
    let nt = spread(&torch, &tc)?;
    let mut sources = Vec::new();
    if keras.shuffle || torch.shuffle {
        sources.push("the sample order");
    }
    if has_dropout(&keras.model) || has_dropout(&torch.model) {
        sources.push("the dropout masks");
    }
    if fresh {
        sources.push("the torch side's own initial draws");
    }
    let sources = if sources.is_empty() {
        "nothing: neither side shuffles or drops out, and both start from the same weights"
            .to_string()
    } else {
        sources.join(", ")
    };
    // Float32 round-off: 0.1 % of the mean Keras probe loss.
    let numerical = 1e-3 * kc.iter().map(|v| v.abs()).sum::<f64>() / kc.len().max(1) as f64;
    let floor = NoiseFloor {
        seeds,
        metric: METRIC.into(),
        keras: nk,
        torch: nt,
        sources,
        numerical,
    };
    let noise = floor.floor();
    let unexplained = match &all_aligned {
        Some(a) if a.gap > noise => Some(a.gap),
        None if gap > noise => Some(gap),
        _ => None,
    };
    out.noise = Some(floor);
    out.training = Some(TrainingReport {
        steps,
        seeds,
        metric: CURVE.into(),
        keras: Curve {
            label: "keras".into(),
            values: kc,
        },
        torch: Curve {
            label: "torch".into(),
            values: tc,
        },
        gap,
        ablations,
        all_aligned,
        unexplained,
    });
    Ok(())
}
