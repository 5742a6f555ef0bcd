//! Steps 5–7: the measured stages, run in the reference engine.
//!
//! - **Forward parity**: the Keras initial weights mapped into the torch model (correct
//!   mapping), both models run in inference mode on the Keras inputs (NHWC → NCHW for the
//!   torch side); per aligned layer (at the end of its activation chain) max-abs and relative
//!   error and cosine, carried forward and isolated (the torch segment since the previous
//!   aligned layer fed the Keras value at that point).
//! - **Training**: each side's full semantics (optimizer emulator, loss with the Keras
//!   TF-backend logits shortcut, regularizers, batch size, shuffling, dropout on) from the
//!   same start: the torch parameters are the Keras initial weights mapped, except those
//!   whose own initial value is a finding (a wrong mapping, an initialisation that differs).
//!   The two sides share their randomness (common random numbers): one sample order, and
//!   each pair of corresponding Dropout nodes one uniform field, thresholded at each side's
//!   own rate ([`simulate::pair_dropout`]). Every `probe` steps both models are scored in
//!   inference mode on all rows of their inputs with a probe built from the typed Keras loss
//!   ([`simulate::Probe`]: clipped crossentropy for classification, the Keras regression
//!   loss itself, else the mean squared error, named as such): the gap is the mean absolute
//!   difference of the two probe curves.
//! - **Ablation**: the torch side re-run with one finding aligned to Keras (and with all of
//!   them), and the Shapley attribution over the distinct switches (exact over every
//!   coalition up to 6, sampled orders with standard errors above; runs deduplicated by
//!   setup): shares that add up, with the rest of the gap not explained by the findings.
//! - **Noise floor**: each side against itself over K seeds varying only the randomness the
//!   measured runs do not share (unpaired dropout nodes, a sample order only one side
//!   draws, the torch side's own initial draws), in the units of the gap.

use std::collections::{BTreeMap, BTreeSet};

use catalogue::Id;
use engine::loss::Loss;
use engine::{Batch, DropoutMasks, Mode, ParamStore, Program, TrainConfig, forward, train};
use model_import::Bundle;
use model_ir::{Activation, DataLayout, Framework, Model, Node, Op, Tensor, ValueInfo};
use ndarray::{ArrayD, Axis, IxDyn};
use optim::driver::{Driver, Grads};
use report::{
    Ablation, Attribution, Curve, Finding, ForwardReport, Impact, LayerError, NoiseFloor,
    NotChecked, TrainingReport,
};

use crate::align::{Aligned, Group};
use crate::graph::{activation_chain, output_activation, source_of, spatial_layout};
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

/// The training runs of the torch side's coalitions, deduplicated by setup: a coalition
/// whose setup equals one already run reuses its curve.
struct Runs<'a> {
    steps: usize,
    probe: &'a Probe,
    keras_curve: &'a [f64],
    done: Vec<(u64, Setup, Vec<f64>)>,
}

impl Runs<'_> {
    /// The curve of `s` and its gap to the Keras curve.
    fn curve(&mut self, s: Setup) -> Result<(Vec<f64>, f64), String> {
        let fp = fingerprint(&s);
        let found = self
            .done
            .iter()
            .find(|(f, d, _)| *f == fp && same_setup(d, &s))
            .map(|(_, _, c)| c.clone());
        let c = match found {
            Some(c) => c,
            None => {
                let c = run(&s, self.steps, None, self.probe)?;
                self.done.push((fp, s, c.clone()));
                c
            }
        };
        let g = mean_gap(self.keras_curve, &c);
        Ok((c, g))
    }
}

/// The randomness one side's noise-floor seeds vary: what the measured runs do not share
/// with the other side.
fn unshared(s: &Setup, order: bool) -> Vec<String> {
    let mut out = Vec::new();
    let side = match s.model.framework {
        Framework::Keras => "Keras",
        Framework::Torch => "torch",
    };
    let own: Vec<String> =
        s.dropout
            .iter()
            .filter(|d| d.pair.is_none())
            .filter(|d| {
                s.model.nodes.iter().any(|n| {
                    n.name == d.node && matches!(n.op, Op::Dropout { rate, .. } if rate > 0.0)
                })
            })
            .map(|d| format!("`{}`", d.node))
            .collect();
    if !own.is_empty() {
        out.push(format!(
            "the masks of the {side} dropout node{} without a counterpart ({})",
            if own.len() == 1 { "" } else { "s" },
            own.join(", ")
        ));
    }
    if order {
        out.push(format!(
            "the {side} sample order (the other side's is not the same draw)"
        ));
    }
    if !s.redraw.is_empty() {
        out.push(format!(
            "the {side} side's own initial draws ({} tensor{})",
            s.redraw.len(),
            if s.redraw.len() == 1 { "" } else { "s" }
        ));
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
    let mut keras = side(ctx.kb, ktrain, kdata, kinit).map_err(|e| format!("Keras side: {e}"))?;
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
    // Common random numbers: dropout on in every run, corresponding Dropout nodes drawing
    // one field; one sample order when both sides shuffle the same rows.
    let change = layout_change(&ctx.kb.model, &ctx.tb.model);
    let paired = pair_dropout(&mut keras, &mut torch, change);
    let order_shared = keras.shuffle && torch.shuffle && keras.data.rows() == torch.data.rows();
    keras.vary_order = keras.shuffle && !order_shared;
    torch.vary_order = torch.shuffle && !order_shared;
    let probe = Probe::of_keras(ctx.kb.model.training.as_ref().and_then(|t| t.loss.as_ref()));
    let metric = probe.metric_text();
    let kc = run(&keras, steps, None, &probe).map_err(|e| format!("Keras run: {e}"))?;
    let tc = run(&torch, steps, None, &probe).map_err(|e| format!("torch run: {e}"))?;
    let gap = mean_gap(&kc, &tc);

    let ids: Vec<Id> = findings.iter().filter_map(|f| Id::parse(&f.id)).collect();
    let sgd_exact = sgd_lr_momentum(&torch.opt, &keras.opt).is_some();
    out.shared = shared_switches(&ids, ctx.w, sgd_exact);
    progress("ablations");
    let closed = |g: f64| {
        if gap > 0.0 {
            ((gap - g) / gap).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let mut runs = Runs {
        steps,
        probe: &probe,
        keras_curve: &kc,
        done: vec![(fingerprint(&torch), torch.clone(), tc.clone())],
    };
    // The players: one per simulation switch (findings one switch aligns together are one).
    let mut players: Vec<Vec<Id>> = Vec::new();
    // Per finding: its player and its aligned-alone run.
    let mut alone: Vec<(usize, f64)> = Vec::new();
    let mut ablations = Vec::new();
    for f in findings {
        // Every finding diagnose builds carries a catalogue id's name.
        let id = Id::parse(&f.id).ok_or_else(|| NoSwitch::NotYet.reason().to_string());
        let res = id.and_then(|id| {
            let s = ctx.aligned_setup(&torch, &keras, &[id])?;
            Ok((id, runs.curve(s)?))
        });
        match res {
            Ok((id, (curve, g))) => {
                let together = out.shared.get(&f.id);
                let p = players.iter().position(|p| {
                    together.is_some_and(|t| p.iter().any(|o| t.iter().any(|n| n == o.name())))
                });
                let p = match p {
                    Some(p) => {
                        players[p].push(id);
                        p
                    }
                    None => {
                        players.push(vec![id]);
                        players.len() - 1
                    }
                };
                ablations.push(Ablation {
                    label: format!("{} aligned", f.id),
                    ids: vec![f.id.clone()],
                    curve,
                    gap: g,
                    closed: closed(g),
                });
                alone.push((p, g));
            }
            Err(e) => {
                out.impacts.insert(f.id.clone(), Err(e));
                alone.push((usize::MAX, f64::NAN));
            }
        }
    }
    let n = players.len();
    let coalition = |mask: u64| -> Vec<Id> {
        (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .flat_map(|i| players[i].iter().copied())
            .collect()
    };
    let all_aligned = if n == 0 {
        None
    } else {
        let ids: Vec<Id> = players.iter().flatten().copied().collect();
        let s = ctx.aligned_setup(&torch, &keras, &ids)?;
        let (curve, g) = runs.curve(s)?;
        Some(Ablation {
            label: "all aligned".into(),
            ids: ids.iter().map(|id| id.name().to_string()).collect(),
            curve,
            gap: g,
            closed: closed(g),
        })
    };
    // Shapley attribution: v(S) = gap − gap(S aligned).
    let before = runs.done.len();
    let sh = if n == 0 {
        shapley(0, 0, &mut |_| Ok(0.0))
    } else if n >= 64 {
        Err(format!("{n} switches are more than a coalition mask holds"))
    } else {
        let mut value = |mask: u64| -> Result<f64, String> {
            if mask == 0 {
                return Ok(0.0);
            }
            let s = ctx.aligned_setup(&torch, &keras, &coalition(mask))?;
            Ok(gap - runs.curve(s)?.1)
        };
        shapley(n, sampled_orders(n), &mut value)
    };
    let coalition_runs = runs.done.len() - before;
    for (f, (p, g)) in findings.iter().zip(&alone) {
        if *p == usize::MAX {
            continue;
        }
        let impact = match &sh {
            Ok(sh) => {
                let phi = sh.values[*p];
                Ok(Impact {
                    share: if gap > 0.0 { phi / gap } else { 0.0 },
                    gap_closed: phi,
                    sampling_error: sh.errors.as_ref().map(|e| e[*p]),
                    alone_share: if gap > 0.0 { (gap - g) / gap } else { 0.0 },
                    alone_closed: gap - g,
                    gap_total: gap,
                    metric: metric.clone(),
                })
            }
            Err(e) => Err(format!(
                "the Shapley attribution could not run every coalition ({e}); aligned alone this finding closes {} of {}",
                report::sig(gap - g),
                report::sig(gap)
            )),
        };
        out.impacts.insert(f.id.clone(), impact);
    }
    let attribution = match (&sh, &all_aligned) {
        (Ok(sh), Some(a)) => Some(Attribution {
            players: n,
            orders: sh.orders,
            explained: sh.values.iter().sum(),
            rest: a.gap,
            runs: coalition_runs,
            metric: metric.clone(),
        }),
        _ => None,
    };

    progress("noise floor");
    let kvar = unshared(&keras, keras.vary_order);
    let tvar = unshared(&torch, torch.vary_order);
    let spread = |s: &Setup, base: &[f64], varies: bool| -> Result<f64, String> {
        // A side none of whose randomness is its own gives the same run for every seed.
        if !varies {
            return Ok(0.0);
        }
        let mut worst = 0.0f64;
        for seed in 1..=seeds as u64 {
            let c = run(s, steps, Some(seed), &probe)?;
            worst = worst.max(mean_gap(base, &c));
        }
        Ok(worst)
    };
    let nk = spread(&keras, &kc, !kvar.is_empty())?;
    let nt = spread(&torch, &tc, !tvar.is_empty())?;
    let mut shared = Vec::new();
    if order_shared {
        shared.push("one sample order".to_string());
    }
    if paired > 0 {
        shared.push(format!(
            "the random fields of {paired} paired dropout node{}",
            if paired == 1 { "" } else { "s" }
        ));
    }
    let sources: Vec<String> = kvar.into_iter().chain(tvar).collect();
    let sources = if !sources.is_empty() {
        sources.join(", ")
    } else if shared.is_empty() {
        "nothing: neither side shuffles or drops out, and both start from the same weights, so the floor is float32 round-off"
            .to_string()
    } else {
        format!(
            "nothing: the measured runs of both sides share every random draw ({}), so the floor is float32 round-off",
            shared.join(" and ")
        )
    };
    // Float32 round-off: 0.1 % of the mean Keras probe loss.
    let numerical = 1e-3 * kc.iter().map(|v| v.abs()).sum::<f64>() / kc.len().max(1) as f64;
    let floor = NoiseFloor {
        seeds,
        metric: metric.clone(),
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
        metric: probe.curve_text(),
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
        attribution,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{act, keras_dense, model, node, tensor, torch_dense, train, uniform};
    use model_import::TensorFile;
    use report::Severity;

    const ROWS: usize = 64;
    const IN: usize = 6;
    const HIDDEN: usize = 8;
    const OUT: usize = 2;

    /// A regression MLP `Dense(6→8, relu) → Dropout(0.3) → Dense(8→2)` on both sides with
    /// copied weights, SGD, mean absolute error (L1Loss), and 64 rows of inputs; the torch
    /// learning rate is `torch_lr` (Keras's is 0.05).
    fn dropout_pair(torch_lr: f64) -> (Bundle, Bundle, Vec<f32>, Vec<f32>) {
        let k1 = tensor(&[IN, HIDDEN], uniform(IN * HIDDEN, 0.6, 11));
        let k2 = tensor(&[HIDDEN, OUT], uniform(HIDDEN * OUT, 0.6, 12));
        let drop = Op::Dropout {
            rate: 0.3,
            spatial: None,
        };
        let mut keras = model(
            Framework::Keras,
            &[IN],
            vec![
                keras_dense("d1", "x", k1.clone(), vec![0.0; HIDDEN], Activation::RELU),
                node(Framework::Keras, "drop", drop.clone(), "d1", vec![]),
                keras_dense("d2", "drop", k2.clone(), vec![0.0; OUT], Activation::Linear),
            ],
        );
        let mut torch = model(
            Framework::Torch,
            &[IN],
            vec![
                torch_dense("fc1", "x", k1.permuted(&[1, 0]), vec![0.0; HIDDEN]),
                act(Framework::Torch, "relu", "fc1", Activation::RELU),
                node(Framework::Torch, "drop", drop, "relu", vec![]),
                torch_dense("fc2", "drop", k2.permuted(&[1, 0]), vec![0.0; OUT]),
            ],
        );
        train(
            &mut keras,
            "SGD",
            serde_json::json!({"learning_rate": 0.05}),
            "mean_absolute_error",
            serde_json::json!({}),
        );
        train(
            &mut torch,
            "SGD",
            serde_json::json!({"lr": torch_lr}),
            "L1Loss",
            serde_json::json!({"reduction": "mean"}),
        );
        let x = uniform(ROWS * IN, 1.0, 13);
        let y: Vec<f32> = (0..ROWS)
            .flat_map(|r| {
                let row = &x[r * IN..(r + 1) * IN];
                [row[0] + 0.5 * row[1], row[2] * row[3] - row[4]]
            })
            .collect();
        let inputs = TensorFile {
            tensors: [
                ("x".to_string(), tensor(&[ROWS, IN], x.clone())),
                ("y".to_string(), tensor(&[ROWS, OUT], y.clone())),
            ]
            .into_iter()
            .collect(),
            metadata: Default::default(),
        };
        let mut kb = crate::testkit::bundle(keras);
        kb.inputs = Some(inputs);
        (kb, crate::testkit::bundle(torch), x, y)
    }

    fn diagnose(k: &Bundle, t: &Bundle) -> report::Diagnosis {
        crate::diagnose(
            k,
            t,
            &crate::Options {
                steps: Some(40),
                seeds: Some(3),
            },
        )
        .expect("diagnosis runs")
    }

    #[test]
    fn regression_probe_is_the_keras_loss_named_and_computed() {
        let (k, t, x, y) = dropout_pair(0.05);
        let d = diagnose(&k, &t);
        let tr = d.training.as_ref().expect("training measured");
        assert_eq!(
            tr.metric,
            "probe loss: mean absolute error of the inference-mode outputs on all rows"
        );
        assert_eq!(
            d.noise_floor.as_ref().expect("floor").metric,
            "mean |Δ mean absolute error| over the run"
        );
        // The start of the Keras curve by hand: relu(x·K1)·K2 (zero biases), then the mean
        // absolute error over every output of every row.
        let k1 = uniform(IN * HIDDEN, 0.6, 11);
        let k2 = uniform(HIDDEN * OUT, 0.6, 12);
        let mut sum = 0.0f64;
        for r in 0..ROWS {
            let h: Vec<f64> = (0..HIDDEN)
                .map(|j| {
                    (0..IN)
                        .map(|i| f64::from(x[r * IN + i]) * f64::from(k1[i * HIDDEN + j]))
                        .sum::<f64>()
                        .max(0.0)
                })
                .collect();
            for o in 0..OUT {
                let out: f64 = (0..HIDDEN).map(|j| h[j] * f64::from(k2[j * OUT + o])).sum();
                sum += (out - f64::from(y[r * OUT + o])).abs();
            }
        }
        let want = sum / (ROWS * OUT) as f64;
        let got = tr.keras.values[0];
        assert!((got - want).abs() < 1e-5 * want.max(1.0), "{got} vs {want}");

        // Huber with its delta; the fallback says which loss it stands in for.
        let huber = model_ir::LossSpec::new(
            Framework::Keras,
            "Huber".into(),
            serde_json::json!({"delta": 0.5}),
        );
        let p = Probe::of_keras(Some(&huber));
        assert_eq!(p, Probe::Huber { delta: 0.5 });
        assert_eq!(
            p.metric_text(),
            "mean |Δ Huber loss (delta=0.5)| over the run"
        );
        let yy = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![0.0f32, 1.0, 2.0, -1.0]).unwrap();
        let oo = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![0.25f32, 1.0, 0.0, 0.0]).unwrap();
        // |e| = 0.25 → ½·0.0625; 0 → 0; 2 → 0.5·2 − ½·0.25; 1 → 0.5·1 − ½·0.25.
        let want = (0.03125 + 0.0 + 0.875 + 0.375) / 4.0;
        let got = probe_value(&p, &yy, &oo, true).expect("computed");
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let poisson =
            model_ir::LossSpec::new(Framework::Keras, "poisson".into(), serde_json::json!({}));
        let p = Probe::of_keras(Some(&poisson));
        assert!(
            p.curve_text()
                .contains("mean squared error of the inference-mode outputs on all rows (the Keras loss `poisson` is not computed by the probe)"),
            "{}",
            p.curve_text()
        );
    }

    #[test]
    fn dropout_pair_without_difference_is_at_the_numerical_floor() {
        let (k, t, _, _) = dropout_pair(0.05);
        let d = diagnose(&k, &t);
        let tr = d.training.as_ref().expect("training measured");
        let n = d.noise_floor.as_ref().expect("floor");
        assert!(tr.gap <= n.numerical, "gap {} vs {n:?}", tr.gap);
        assert!(n.keras.abs() < 1e-300 && n.torch.abs() < 1e-300, "{n:?}");
        assert!(
            n.sources.starts_with(
                "nothing: the measured runs of both sides share every random draw (one sample order and the random fields of 1 paired dropout node)"
            ),
            "{}",
            n.sources
        );
        // Dropout was on: the curve differs from a run without masks.
        let (kb, _, _, _) = dropout_pair(0.05);
        let mut s = side(
            &kb,
            data_of(&kb).unwrap(),
            data_of(&kb).unwrap(),
            ParamStore::from_model(&kb.model),
        )
        .unwrap();
        let probe = Probe::Mae;
        let without = run(&s, 40, None, &probe).unwrap();
        let mut ts = s.clone();
        pair_dropout(&mut s, &mut ts, false);
        let with = run(&s, 40, None, &probe).unwrap();
        assert!(mean_gap(&with, &without) > 1e-6);
        assert!(mean_gap(&with, &tr.keras.values) < 1e-12);
    }

    #[test]
    fn planted_difference_with_dropout_stands_above_the_floor() {
        let (k, t, _, _) = dropout_pair(0.2);
        let d = diagnose(&k, &t);
        let tr = d.training.as_ref().expect("training measured");
        let n = d.noise_floor.as_ref().expect("floor");
        assert!(tr.gap > 10.0 * n.floor(), "gap {} vs {n:?}", tr.gap);
        assert!(!d.verdict.contains("noise"), "{}", d.verdict);
        let measured: Vec<&report::Finding> =
            d.findings.iter().filter(|f| f.impact.is_some()).collect();
        assert!(!measured.is_empty(), "{:?}", d.findings);
        for f in &measured {
            assert!(
                f.severity < Severity::Low
                    || !f.evidence.iter().any(|e| e.what.contains("noise floor")),
                "{f:?}"
            );
        }
        // Shares add up: the Shapley values of the distinct switches and the unexplained rest
        // make the gap (exact case).
        let a = tr.attribution.as_ref().expect("attribution");
        assert_eq!(a.orders, 0);
        let mut seen = Vec::new();
        let mut sum = 0.0;
        for f in &measured {
            let i = f.impact.as_ref().unwrap();
            // Findings one switch aligns share one value: count it once.
            if !seen.iter().any(|s: &f64| (s - i.gap_closed).abs() < 1e-15) {
                seen.push(i.gap_closed);
                sum += i.gap_closed;
            }
            assert!((i.share * tr.gap - i.gap_closed).abs() < 1e-12);
        }
        assert!(
            (sum + a.rest - tr.gap).abs() < 1e-9,
            "{sum} + {} vs {}",
            a.rest,
            tr.gap
        );
        assert!((a.explained + a.rest - tr.gap).abs() < 1e-9);
    }

    #[test]
    fn flattened_fields_map_keras_hwc_to_torch_chw() {
        let (h, w, c) = (3, 4, 5);
        let field: Vec<f32> = (0..2 * h * w * c).map(|v| v as f32).collect();
        let k = lay_out(field.clone(), &[2, h * w * c], &FieldMap::Same).unwrap();
        let t = lay_out(
            field.clone(),
            &[2, c * h * w],
            &FieldMap::Unflatten(vec![h, w, c]),
        )
        .unwrap();
        for n in 0..2 {
            for i in 0..h {
                for j in 0..w {
                    for ch in 0..c {
                        assert_eq!(
                            k[[n, (i * w + j) * c + ch]].to_bits(),
                            t[[n, ch * h * w + i * w + j]].to_bits()
                        );
                    }
                }
            }
        }
        // NHWC → NCHW.
        let p = DataLayout::last_to_first_perm(4).unwrap();
        let t = lay_out(field.clone(), &[2, c, h, w], &FieldMap::Permute(p.clone())).unwrap();
        let k = lay_out(field, &[2, h, w, c], &FieldMap::Same).unwrap();
        assert_eq!(k[[1, 2, 3, 4]].to_bits(), t[[1, 4, 2, 3]].to_bits());
        // Pairing: shapes modulo the layout change; an ambiguous square tensor is not paired.
        let v = |s: &[usize]| DropView::Plain(s.to_vec());
        assert_eq!(
            pair_map(&v(&[h, w, c]), &v(&[c, h, w]), true),
            Some(FieldMap::Permute(p))
        );
        assert_eq!(pair_map(&v(&[4, 4, 4]), &v(&[4, 4, 4]), true), None);
        assert_eq!(pair_map(&v(&[8]), &v(&[8]), true), Some(FieldMap::Same));
        assert_eq!(pair_map(&v(&[8]), &v(&[9]), false), None);
    }
}
