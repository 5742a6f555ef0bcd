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

/// How a finding is aligned in simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    /// Torch parameters replaced by the correctly mapped Keras values.
    Weights,
    /// The Keras optimizer (its schedule, clipping, EMA) on the torch side; `decay`: torch's
    /// coupled weight decay dropped too.
    Optimizer { decay: bool },
    /// Only SGD's learning rate and momentum: the exact torch equivalent's values in every
    /// torch parameter group, everything else torch's (the whole Keras optimizer when the
    /// torch side is not SGD or Keras's SGD has no exact torch equivalent).
    SgdLrMomentum,
    /// Only Adam's epsilon placement: the Keras Adam step (ε̂) with the torch learning rate,
    /// betas, AMSGrad and weight decay.
    EpsilonPlacement,
    /// Keras regularizers on the torch side instead of torch weight decay.
    Regularizer,
    /// The Keras loss (and targets) on the torch side.
    Loss,
    /// The Keras inputs (after the layout change) on the torch side.
    Inputs,
    /// Keras batch size and shuffling on the torch side.
    Batching,
    /// A node attribute copied from Keras into a clone of the torch IR.
    Attr(Attr),
}

/// The node attribute a [`Switch::Attr`] copies from Keras into the torch IR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    /// The parameters of every activation of one family, paired in graph order.
    Activation(Family),
    /// Pooling padding, divisor and ceil mode, paired in graph order.
    Pooling,
    /// Transposed-convolution padding (its crop), paired in graph order.
    ConvTransposeCrop,
    /// Upsampling interpolation, paired in graph order.
    Resize,
    /// One BatchNorm field of each aligned pair.
    BatchNorm(BnField),
    /// LayerNorm / GroupNorm epsilon of each aligned pair.
    NormEpsilon,
    /// Convolution padding of each aligned pair (constant Pad layers become no-ops).
    SamePadding,
}

/// An activation family whose parameters differ between the frameworks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    LeakyRelu,
    Gelu,
    HardSigmoid,
}

/// The BatchNorm field a switch copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BnField {
    Epsilon,
    Momentum,
    RunningVariance,
    /// `trainable`, with torch's explicit training mode dropped.
    Frozen,
}

/// Why a finding has no simulation switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoSwitch {
    /// Both sides start from the same weights in the simulation.
    SameStart,
    /// Nothing in the simulation aligns it (yet).
    NotYet,
}

impl NoSwitch {
    /// The reason the report shows instead of an impact.
    fn reason(self) -> &'static str {
        match self {
            NoSwitch::SameStart => {
                "the simulation starts both sides from the same (Keras) weights already"
            }
            NoSwitch::NotYet => "no simulation switch aligns this finding yet",
        }
    }
}

/// The switch that aligns finding `id` in simulation: an exhaustive decision per id, so a new
/// id does not compile until its switch (or the reason there is none) is chosen.
fn switch(id: Id, w: &WeightReport) -> Result<Switch, NoSwitch> {
    if w.own.values().any(|i| *i == id) {
        return Ok(Switch::Weights);
    }
    Ok(match id {
        Id::AdamWeightDecayCoupling | Id::AdamwDefaultDecay => Switch::Optimizer { decay: true },
        Id::AdamEpsilonHat => Switch::EpsilonPlacement,
        Id::SgdDefaultLr => Switch::SgdLrMomentum,
        Id::SgdMomentumLrInBuffer
        | Id::RmspropEpsAndRho
        | Id::AdagradInitEps
        | Id::AdadeltaDefaults
        | Id::NadamMomentumSchedule
        | Id::AdamaxEpsPlacement
        | Id::ClipnormPerTensorVsGlobal
        | Id::EmaWeights
        | Id::LegacyDecayKwarg
        | Id::LrScheduleGranularity
        | Id::CosineDecaySemantics
        | Id::NoCounterpartOptimizers
        | Id::OptimizerMismatch => Switch::Optimizer { decay: false },
        Id::L2RegularizerFactorTwo => Switch::Regularizer,
        Id::DoubleSoftmax
        | Id::BceClipping
        | Id::CceProbabilityClipping
        | Id::LabelSmoothing
        | Id::LossPerSampleMeanAndSum
        | Id::TargetShapeBroadcast
        | Id::KldPoissonCosine
        | Id::LossReductionWeights
        | Id::LossMismatch => Switch::Loss,
        Id::StdDdof
        | Id::ImagenetPreprocessModes
        | Id::ChannelsLast
        | Id::InputMismatch
        | Id::ValidationSplitTail => Switch::Inputs,
        Id::FitBatchShuffleDefaults => Switch::Batching,
        Id::BnEpsilon => Switch::Attr(Attr::BatchNorm(BnField::Epsilon)),
        Id::BnMomentumConvention => Switch::Attr(Attr::BatchNorm(BnField::Momentum)),
        Id::BnRunningVarBias => Switch::Attr(Attr::BatchNorm(BnField::RunningVariance)),
        Id::BnFrozenMeansInference => Switch::Attr(Attr::BatchNorm(BnField::Frozen)),
        Id::LayernormEpsAxis => Switch::Attr(Attr::NormEpsilon),
        Id::LeakyReluSlope => Switch::Attr(Attr::Activation(Family::LeakyRelu)),
        Id::GeluApproximate => Switch::Attr(Attr::Activation(Family::Gelu)),
        Id::HardSigmoidDefinition => Switch::Attr(Attr::Activation(Family::HardSigmoid)),
        Id::SamePaddingAsymmetric => Switch::Attr(Attr::SamePadding),
        Id::ConvTransposeSameCrop => Switch::Attr(Attr::ConvTransposeCrop),
        Id::PoolingPadding => Switch::Attr(Attr::Pooling),
        Id::ResizeSemantics => Switch::Attr(Attr::Resize),
        Id::SeedingDeterminism => return Err(NoSwitch::SameStart),
        // Aligned by `Switch::Weights` above when a torch parameter's own value is the
        // finding; otherwise nothing carries it.
        Id::DenseInit
        | Id::ConvInit
        | Id::DepthwiseInit
        | Id::EmbeddingInit
        | Id::RnnInit
        | Id::DenseLayout
        | Id::ConvLayout
        | Id::ConvTransposeLayout
        | Id::DepthwiseSeparableLayout
        | Id::FlattenOrder
        | Id::LstmLayout
        | Id::GruLayoutResetAfter => return Err(NoSwitch::NotYet),
        Id::RnnDropoutAndMasking
        | Id::ReduceLrOnPlateauThreshold
        | Id::DefaultTrainMode
        | Id::SoftmaxImplicitDim
        | Id::ReportedLossSemantics
        | Id::Tf32Defaults
        | Id::MixedPrecisionLossScale
        | Id::ArchitectureMismatch => return Err(NoSwitch::NotYet),
    })
}

/// Inputs and targets, all rows.
#[derive(Debug, Clone)]
struct Data {
    x: Vec<ArrayD<F>>,
    y: ArrayD<F>,
}

impl Data {
    fn rows(&self) -> usize {
        self.y.shape().first().copied().unwrap_or(0)
    }

    /// The first `n` rows (all of them when there are fewer).
    fn head(&self, n: usize) -> Data {
        let idx: Vec<usize> = (0..n.min(self.rows())).collect();
        let (x, y) = self.select(&idx);
        Data { x, y }
    }

    fn select(&self, idx: &[usize]) -> (Vec<ArrayD<F>>, ArrayD<F>) {
        (
            self.x.iter().map(|x| x.select(Axis(0), idx)).collect(),
            self.y.select(Axis(0), idx),
        )
    }
}

/// Which optimizer a run steps with.
#[derive(Debug, Clone)]
enum Opt {
    Keras(optim::keras::Config),
    Torch {
        groups: Vec<(optim::torch::Config, Vec<String>)>,
        clip: Option<model_ir::GradClip>,
        scheduler: Option<model_ir::SchedulerSpec>,
    },
}

/// One side's full training setup.
#[derive(Debug, Clone)]
struct Setup {
    model: Model,
    init: ParamStore<F>,
    data: Data,
    loss: Loss,
    regularizers: BTreeMap<String, engine::loss::Regularizer>,
    opt: Opt,
    /// Coupled weight decay added to the gradients before a Keras optimizer (torch side).
    coupled_wd: f64,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    /// Output probabilities need a softmax/sigmoid first (the model ends in logits).
    probe_logits: bool,
    /// What the probe scores: every row of the Keras inputs (in this side's layout), or the
    /// side's own rows when they are the same samples under its own preprocessing.
    probe_data: Data,
    /// Keras `fit(class_weight=…)`: class index → weight, applied as per-sample weights.
    class_weight: Option<BTreeMap<i64, F>>,
    /// Parameters whose initial value is this side's own random draw (not shared with the
    /// other side): the noise floor redraws them.
    redraw: Vec<String>,
}

fn arr(t: &Tensor) -> ArrayD<F> {
    t.to_f32()
}

fn input_tensor(b: &Bundle, i: usize) -> Option<&Tensor> {
    let f = b.inputs.as_ref()?;
    let name = format!("x.{}", b.model.inputs.get(i)?.name);
    if b.model.inputs.len() == 1 {
        f.get("x").or_else(|| f.get(&name))
    } else {
        f.get(&name)
    }
}

/// The Keras array in the torch model's layout.
fn to_torch_layout(t: &ArrayD<F>, change: bool) -> ArrayD<F> {
    match DataLayout::last_to_first_perm(t.ndim()) {
        Some(perm) if change => t.view().permuted_axes(perm).as_standard_layout().to_owned(),
        _ => t.clone(),
    }
}

fn layout_change(k: &Model, t: &Model) -> bool {
    spatial_layout(k) == Some(DataLayout::ChannelsLast)
        && spatial_layout(t) == Some(DataLayout::ChannelsFirst)
}

/// Whether the model's output is logits for the probe (no final softmax/sigmoid).
fn ends_in_logits(m: &Model) -> bool {
    !matches!(
        output_activation(m),
        Some((_, Some(Activation::Softmax { .. } | Activation::Sigmoid)))
    )
}

fn keras_optimizer(m: &Model) -> Result<optim::keras::Config, String> {
    let spec = m
        .training
        .as_ref()
        .and_then(|t| t.optimizer.as_ref())
        .ok_or("the Keras bundle records no optimizer")?;
    optim::keras::Config::from_spec(spec).map_err(|e| e.to_string())
}

fn torch_optimizer(m: &Model) -> Result<Opt, String> {
    let t = m
        .training
        .as_ref()
        .ok_or("the torch bundle records no training configuration")?;
    let spec = t
        .optimizer
        .as_ref()
        .ok_or("the torch bundle records no optimizer")?;
    let names: Vec<String> = m
        .params()
        .filter(|(_, p)| p.trainable)
        .map(|(_, p)| p.name.clone())
        .collect();
    let groups = optim::driver::torch_param_groups(spec, t.param_groups.as_deref(), &names)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(c, idx)| (c, idx.into_iter().map(|i| names[i].clone()).collect()))
        .collect();
    Ok(Opt::Torch {
        groups,
        clip: t.grad_clip,
        scheduler: t.scheduler.clone(),
    })
}

fn side(b: &Bundle, data: Data, probe_data: Data, init: ParamStore<F>) -> Result<Setup, String> {
    let m = &b.model;
    let t = m
        .training
        .as_ref()
        .ok_or("no training configuration in the bundle")?;
    let cfg = TrainConfig::from_model(m, 1).map_err(|e| e.to_string())?;
    let opt = match m.framework {
        Framework::Keras => Opt::Keras(keras_optimizer(m)?),
        Framework::Torch => torch_optimizer(m)?,
    };
    Ok(Setup {
        model: m.clone(),
        init,
        data,
        loss: cfg.loss,
        regularizers: cfg.regularizers,
        opt,
        coupled_wd: 0.0,
        batch_size: t.batch_size.max(1),
        shuffle: t.shuffle,
        drop_last: t.drop_last,
        probe_logits: ends_in_logits(m),
        probe_data,
        class_weight: t.class_weight.as_ref().map(|cw| {
            cw.iter()
                .filter_map(|(k, v)| Some((k.parse::<i64>().ok()?, *v as F)))
                .collect()
        }),
        redraw: Vec::new(),
    })
}

/// Another draw of the same initialisation: each tensor's entries permuted (rows and columns
/// of a matrix, which keeps an orthogonal matrix orthogonal), so every marginal distribution
/// is the one the framework drew from.
fn redraw(init: &ParamStore<F>, trainable: &[String], rng: &mut Rng) -> ParamStore<F> {
    let mut out = init.clone();
    for name in trainable {
        let Some(a) = init.values.get(name) else {
            continue;
        };
        let shape = a.shape().to_vec();
        let flat: Vec<F> = a.iter().copied().collect();
        let v: Vec<F> = if shape.len() == 2 {
            let (r, c) = (shape[0], shape[1]);
            let mut pr: Vec<usize> = (0..r).collect();
            let mut pc: Vec<usize> = (0..c).collect();
            rng.shuffle(&mut pr);
            rng.shuffle(&mut pc);
            (0..r * c)
                .map(|i| flat[pr[i / c] * c + pc[i % c]])
                .collect()
        } else {
            let mut p: Vec<usize> = (0..flat.len()).collect();
            rng.shuffle(&mut p);
            p.iter().map(|&i| flat[i]).collect()
        };
        if let Ok(b) = ArrayD::from_shape_vec(IxDyn(&shape), v) {
            out.values.insert(name.clone(), b);
        }
    }
    out
}

/// Keras `fit(validation_split=v)`: the rows it trains on are the first ⌊n·(1 − v)⌋, taken
/// before any shuffling (`keras/src/trainers/data_adapters/array_slicing.py`,
/// `train_validation_split`).
pub(crate) fn keras_train_rows(m: &Model, n: usize) -> usize {
    train_rows(m.training.as_ref().map_or(0.0, |t| t.validation_split), n)
}

/// The leading rows `fit(validation_split=v)` trains on, out of `n`.
pub(crate) fn train_rows(v: f64, n: usize) -> usize {
    if v > 0.0 && v < 1.0 {
        ((n as f64) * (1.0 - v)).floor() as usize
    } else {
        n
    }
}

/// How the probe scores.
#[derive(Debug, Clone)]
struct Probe {
    classification: bool,
}

fn probe_value(p: &Probe, y: &ArrayD<F>, out: &ArrayD<F>, logits: bool) -> f64 {
    let n = out.shape().first().copied().unwrap_or(0).max(1);
    let c = out.len() / n;
    let o: Vec<f64> = out.iter().map(|&v| f64::from(v)).collect();
    let y: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
    if !p.classification || c == 0 {
        if y.len() != o.len() {
            return f64::NAN;
        }
        return o.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / o.len() as f64;
    }
    let clip = |q: f64| q.clamp(1e-7, 1.0 - 1e-7);
    let mut total = 0.0;
    for i in 0..n {
        let row = &o[i * c..(i + 1) * c];
        let probs: Vec<f64> = if !logits {
            row.to_vec()
        } else if c == 1 {
            vec![1.0 / (1.0 + (-row[0]).exp())]
        } else {
            let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        total += if c == 1 {
            let t = y.get(i).copied().unwrap_or(0.0);
            let q = clip(probs[0]);
            -(t * q.ln() + (1.0 - t) * (1.0 - q).ln())
        } else if y.len() == o.len() {
            -(0..c)
                .map(|j| y[i * c + j] * clip(probs[j]).ln())
                .sum::<f64>()
        } else {
            let k = y.get(i).copied().unwrap_or(0.0).max(0.0) as usize;
            -clip(probs.get(k).copied().unwrap_or(0.0)).ln()
        };
    }
    total / n as f64
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Sample indices of each of `steps` batches.
fn batch_plan(
    rows: usize,
    size: usize,
    shuffle: bool,
    drop_last: bool,
    steps: usize,
    seed: u64,
) -> Vec<Vec<usize>> {
    let mut rng = Rng(seed);
    let mut plan = Vec::with_capacity(steps);
    while plan.len() < steps {
        let mut order: Vec<usize> = (0..rows).collect();
        if shuffle {
            rng.shuffle(&mut order);
        }
        let before = plan.len();
        for chunk in order.chunks(size) {
            if drop_last && chunk.len() < size {
                break;
            }
            plan.push(chunk.to_vec());
            if plan.len() == steps {
                break;
            }
        }
        if plan.len() == before {
            break;
        }
    }
    plan
}

/// The optimizer of one side as its framework steps it ([`optim::driver::Driver`]: the same
/// rules the engine's fixture validation runs). The simulation hands it dense gradients.
fn stepper(s: &Setup, names: &[String], program: &Program) -> Result<Driver<F>, String> {
    let shapes = program.param_shapes();
    let vars: Vec<optim::Variable> = names
        .iter()
        .map(|n| optim::Variable::new(n.clone(), shapes.get(n).map_or(&[][..], |v| v)))
        .collect();
    match &s.opt {
        Opt::Keras(c) => Ok(Driver::keras(c.clone(), &vars)),
        Opt::Torch {
            groups,
            clip,
            scheduler,
        } => {
            let g: Vec<(optim::torch::Config, Vec<usize>)> = groups
                .iter()
                .map(|(c, members)| {
                    (
                        c.clone(),
                        members
                            .iter()
                            .filter_map(|m| names.iter().position(|n| n == m))
                            .collect(),
                    )
                })
                .collect();
            let steps_per_epoch =
                optim::driver::steps_per_epoch(s.data.rows(), s.batch_size, s.drop_last);
            Driver::torch(g, *clip, scheduler.as_ref(), Some(steps_per_epoch), &vars)
                .map_err(|e| e.to_string())
        }
    }
}

/// Dropout keep-masks for every element-wise Dropout node, for inputs of these shapes.
fn masks(
    model: &Model,
    program: &Program,
    x: &[ArrayD<F>],
    rng: &mut Rng,
) -> Result<DropoutMasks<F>, String> {
    let mut out = DropoutMasks::new();
    let drops: Vec<(&Node, f64)> = model
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            Op::Dropout {
                rate,
                spatial: None,
            } if rate > 0.0 => Some((n, rate)),
            _ => None,
        })
        .collect();
    if drops.is_empty() {
        return Ok(out);
    }
    let shapes: Vec<&[usize]> = x.iter().map(|a| a.shape()).collect();
    let all = program.infer_shapes(&shapes).map_err(|e| e.to_string())?;
    for (n, rate) in drops {
        let Some(shape) = n.inputs.first().and_then(|v| all.get(v)) else {
            continue;
        };
        let m = ArrayD::from_shape_fn(IxDyn(shape), |_| if rng.unit() < rate { 0.0 } else { 1.0 });
        out.insert(n.name.clone(), m);
    }
    Ok(out)
}

/// One training run: the probe curve (start, then every `every` steps).
fn run(s: &Setup, steps: usize, seed: Option<u64>, probe: &Probe) -> Result<Vec<f64>, String> {
    let program = Program::new(&s.model).map_err(|e| e.to_string())?;
    let names: Vec<String> = program.trainable().to_vec();
    let mut params = match seed {
        Some(seed) if !s.redraw.is_empty() => redraw(&s.init, &s.redraw, &mut Rng(seed ^ 0x1417)),
        _ => s.init.clone(),
    };
    let mut opt = stepper(s, &names, &program)?;
    // A seed varies the sample order only where the side shuffles.
    let shuffle = s.shuffle;
    let plan = batch_plan(
        s.data.rows(),
        s.batch_size,
        shuffle,
        s.drop_last,
        steps,
        seed.unwrap_or(0),
    );
    if plan.is_empty() {
        return Err("no batches".into());
    }
    let mut rng = Rng(seed.unwrap_or(0) ^ 0x5EED);
    let mut batches = Vec::with_capacity(plan.len());
    for idx in &plan {
        let (x, y) = s.data.select(idx);
        let sample_weight = s.class_weight.as_ref().map(|cw| class_weights(cw, &y));
        let masks = if seed.is_some() {
            masks(&s.model, &program, &x, &mut rng)?
        } else {
            DropoutMasks::new()
        };
        batches.push(Batch {
            inputs: x,
            target: y,
            sample_weight,
            masks,
        });
    }
    let mut config = TrainConfig::new(0, s.loss.clone());
    config.regularizers = s.regularizers.clone();
    let every = (steps / PROBES).max(1);
    let score = |params: &ParamStore<F>| -> Result<f64, String> {
        let f = forward(
            &program,
            params,
            &s.probe_data.x,
            Mode::Inference,
            &DropoutMasks::new(),
        )
        .map_err(|e| e.to_string())?;
        Ok(probe_value(
            probe,
            &s.probe_data.y,
            &f.outputs[0],
            s.probe_logits,
        ))
    };
    let mut curve = vec![score(&params)?];
    let shapes = program.param_shapes().clone();
    let wd = s.coupled_wd as F;
    let mut done = 0;
    while done < steps {
        let n = every.min(steps - done);
        config.steps = n;
        let chunk: Vec<Batch<F>> = (done..done + n)
            .map(|i| batches[i % batches.len()].clone())
            .collect();
        train(&program, &mut params, &chunk, &config, |_, p, g| {
            let mut gs: Vec<Vec<F>> = names
                .iter()
                .map(|n| g.params.get(n).map(|a| a.iter().copied().collect()))
                .map(Option::unwrap_or_default)
                .collect();
            let mut ps: Vec<Vec<F>> = names
                .iter()
                .map(|n| p.values.get(n).map(|a| a.iter().copied().collect()))
                .map(Option::unwrap_or_default)
                .collect();
            if wd != 0.0 {
                for (gv, pv) in gs.iter_mut().zip(&ps) {
                    for (a, b) in gv.iter_mut().zip(pv) {
                        *a += wd * *b;
                    }
                }
            }
            opt.step(Grads::dense(&mut gs), &mut ps);
            for (n, v) in names.iter().zip(ps) {
                if let Some(shape) = shapes.get(n)
                    && let Ok(a) = ArrayD::from_shape_vec(IxDyn(shape), v)
                {
                    p.values.insert(n.clone(), a);
                }
            }
        })
        .map_err(|e| e.to_string())?;
        done += n;
        curve.push(score(&params)?);
    }
    if curve.iter().any(|v| !v.is_finite()) {
        return Err("the probe loss is not finite".into());
    }
    Ok(curve)
}

/// Appends `act` after the model's first output.
fn append_activation(m: &mut Model, act: Activation) {
    let Some(out) = m.outputs.first().cloned() else {
        return;
    };
    let name = "parallax.output_activation".to_string();
    let value = format!("{name}.out");
    m.nodes.push(Node {
        name: name.clone(),
        op: Op::Activation { function: act },
        inputs: vec![out],
        outputs: vec![value.clone()],
        params: vec![],
        origin: model_ir::Origin {
            framework: m.framework,
            name,
            class: "Activation (added by the loss ablation)".into(),
        },
    });
    m.outputs[0] = value;
}

fn has_dropout(m: &Model) -> bool {
    m.nodes.iter().any(|n| matches!(n.op, Op::Dropout { .. }))
}

/// The coupled weight decay a run on `opt` adds to the gradients once the Keras optimizer
/// replaces it: the first torch group's, or `current` when `opt` is Keras's already.
fn coupled_decay(opt: &Opt, current: f64) -> f64 {
    match opt {
        Opt::Torch { groups, .. } => groups.first().map_or(0.0, |(c, _)| c.weight_decay),
        Opt::Keras(_) => current,
    }
}

/// The torch SGD groups with the learning rate, momentum, dampening and Nesterov flag of the
/// Keras SGD's exact torch equivalent; `None` when either side is not (exactly) SGD.
fn sgd_lr_momentum(torch: &Opt, keras: &Opt) -> Option<Opt> {
    use optim::torch::Kind as T;
    let Opt::Keras(k) = keras else { return None };
    let Opt::Torch {
        groups,
        clip,
        scheduler,
    } = torch
    else {
        return None;
    };
    let e = optim::equiv::keras_to_torch(k).ok()?;
    let T::Sgd {
        momentum,
        dampening,
        nesterov,
    } = e.config.kind
    else {
        return None;
    };
    if e.scheduler.is_some() {
        return None;
    }
    let mut groups = groups.clone();
    for (c, _) in &mut groups {
        let T::Sgd {
            momentum: m,
            dampening: d,
            nesterov: n,
        } = &mut c.kind
        else {
            return None;
        };
        (*m, *d, *n) = (momentum, dampening, nesterov);
        c.lr = e.config.lr;
    }
    Some(Opt::Torch {
        groups,
        clip: *clip,
        scheduler: scheduler.clone(),
    })
}

/// The torch Adam/AdamW run with Keras's epsilon placement (ε̂ = ε·√(1−β2^t), added to √v
/// before bias correction) and every other setting torch's: the Keras Adam step with the torch
/// learning rate, betas and AMSGrad, decoupled decay as Keras `weight_decay`, coupled decay
/// returned to be added to the gradients. Errors when that is not one plain Adam group.
fn epsilon_only(torch: &Opt, keras: &Opt) -> Result<(Opt, f64), String> {
    use optim::keras::Kind as K;
    use optim::torch::Kind as T;
    let Opt::Keras(k) = keras else {
        return Err("no Keras optimizer".into());
    };
    let (K::Adam { epsilon, .. } | K::AdamW { epsilon, .. }) = k.kind else {
        return Err("the Keras optimizer is not Adam or AdamW".into());
    };
    let Opt::Torch {
        groups,
        clip,
        scheduler,
    } = torch
    else {
        return Err("the torch side already runs the Keras optimizer".into());
    };
    let [(c, _)] = groups.as_slice() else {
        return Err(
            "several torch parameter groups: the epsilon placement alone is not aligned".into(),
        );
    };
    if clip.is_some() || scheduler.is_some() || c.maximize {
        return Err(
            "torch clipping, a scheduler or maximize: the epsilon placement alone is not aligned"
                .into(),
        );
    }
    let (betas, amsgrad, decoupled) = match c.kind {
        T::Adam {
            betas,
            amsgrad,
            decoupled_weight_decay,
            ..
        } => (betas, amsgrad, decoupled_weight_decay),
        T::AdamW { betas, amsgrad, .. } => (betas, amsgrad, true),
        _ => return Err("the torch optimizer is not Adam or AdamW".into()),
    };
    let wd = (decoupled && c.weight_decay != 0.0).then_some(c.weight_decay);
    let spec = model_ir::OptimizerSpec {
        class_name: "Adam".into(),
        config: serde_json::json!({
            "learning_rate": c.lr,
            "beta_1": betas.0,
            "beta_2": betas.1,
            "epsilon": epsilon,
            "amsgrad": amsgrad,
            "weight_decay": wd,
        }),
    };
    let cfg = optim::keras::Config::from_spec(&spec).map_err(|e| e.to_string())?;
    Ok((
        Opt::Keras(cfg),
        if decoupled { 0.0 } else { c.weight_decay },
    ))
}

/// For each finding, the other findings that one coarse switch (the whole Keras optimizer,
/// loss, inputs or batching) aligns as well: their measured impacts are one and the same.
/// `sgd_exact`: the SGD learning-rate switch aligns only those fields (else it falls back to
/// the whole Keras optimizer).
fn shared_switches(ids: &[Id], w: &WeightReport, sgd_exact: bool) -> BTreeMap<String, Vec<String>> {
    let coarse: Vec<(Id, Switch)> = ids
        .iter()
        .filter_map(|&id| switch(id, w).ok().map(|s| (id, s)))
        .map(|(id, s)| match s {
            Switch::SgdLrMomentum if !sgd_exact => (id, Switch::Optimizer { decay: false }),
            s => (id, s),
        })
        .filter(|(_, s)| !matches!(s, Switch::Weights | Switch::Attr(_)))
        .collect();
    let mut out = BTreeMap::new();
    for (id, sw) in &coarse {
        let others: Vec<String> = coarse
            .iter()
            .filter(|(o, s)| o != id && s == sw)
            .map(|(o, _)| o.name().to_string())
            .collect();
        if !others.is_empty() {
            out.insert(id.name().to_string(), others);
        }
    }
    out
}

/// Keras `class_weight` as per-sample weights: the weight of each row's class (integer
/// targets, or the argmax of one-hot rows); classes without an entry weigh 1.
fn class_weights(cw: &BTreeMap<i64, F>, y: &ArrayD<F>) -> ArrayD<F> {
    let idx = if y.ndim() >= 2 && y.shape()[1] > 1 {
        argmax_rows(y)
    } else {
        y.clone()
    };
    let w: Vec<F> = idx
        .iter()
        .map(|c| cw.get(&(c.round() as i64)).copied().unwrap_or(1.0))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&[w.len()]), w).unwrap_or_else(|_| y.clone())
}

/// Class indices (as floats) of one-hot or probability rows.
fn argmax_rows(y: &ArrayD<F>) -> ArrayD<F> {
    let rows: Vec<F> = y
        .outer_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold((0usize, F::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv { (i, v) } else { (bi, bv) }
                })
                .0 as F
        })
        .collect();
    ArrayD::from_shape_vec(IxDyn(&[rows.len()]), rows).unwrap_or_else(|_| y.clone())
}

fn mean_gap(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()).max(1);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / n as f64
}

fn store_from(values: &BTreeMap<String, (Vec<f64>, Vec<usize>)>, into: &mut ParamStore<F>) {
    for (name, (v, shape)) in values {
        if let Some(cur) = into.values.get(name)
            && cur.shape() == shape.as_slice()
            && let Ok(a) =
                ArrayD::from_shape_vec(IxDyn(shape), v.iter().map(|&x| x as F).collect::<Vec<F>>())
        {
            into.values.insert(name.clone(), a);
        }
    }
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

impl Family {
    /// Whether `a` belongs to the family.
    fn contains(self, a: &Activation) -> bool {
        match self {
            Family::LeakyRelu => {
                matches!(a, Activation::LeakyRelu { .. })
                    || matches!(a, Activation::Relu { negative_slope, .. } if *negative_slope > 0.0)
            }
            Family::Gelu => matches!(a, Activation::Gelu { .. }),
            Family::HardSigmoid => {
                matches!(a, Activation::HardSigmoid(_) | Activation::HardSwish)
            }
        }
    }
}

/// Copies the Keras attribute `attr` into the torch IR.
fn copy_attr(attr: Attr, keras: &Model, torch: &mut Model, aligned: &Aligned<'_>) -> bool {
    let mut changed = false;
    match attr {
        Attr::Activation(family) => {
            let ks: Vec<Activation> = keras
                .nodes
                .iter()
                .filter_map(|n| n.op.activation())
                .filter(|a| family.contains(a))
                .cloned()
                .collect();
            let mut i = 0;
            for n in &mut torch.nodes {
                if let Some(a) = n.op.activation_mut()
                    && family.contains(a)
                {
                    if let Some(k) = ks.get(i).or(ks.last()) {
                        *a = k.clone();
                        changed = true;
                    }
                    i += 1;
                }
            }
        }
        Attr::Pooling => {
            let kp: Vec<&Op> = keras
                .nodes
                .iter()
                .map(|n| &n.op)
                .filter(|o| matches!(o, Op::Pool { .. }))
                .collect();
            let mut i = 0;
            for n in &mut torch.nodes {
                if let Op::Pool {
                    padding,
                    count_include_pad,
                    ceil_mode,
                    ..
                } = &mut n.op
                {
                    if let Some(Op::Pool {
                        padding: p,
                        count_include_pad: c,
                        ceil_mode: m,
                        ..
                    }) = kp.get(i)
                    {
                        *padding = p.clone();
                        *count_include_pad = *c;
                        *ceil_mode = *m;
                        changed = true;
                    }
                    i += 1;
                }
            }
        }
        Attr::ConvTransposeCrop => {
            // Transposed convolutions pair in graph order; the Keras padding rule (its crop)
            // replaces torch's, and the Slices that cropped the torch output become no-ops.
            let kp: Vec<(model_ir::Padding, Option<Vec<usize>>)> = keras
                .nodes
                .iter()
                .filter_map(|n| match &n.op {
                    Op::ConvTranspose {
                        padding,
                        output_padding,
                        ..
                    } => Some((padding.clone(), output_padding.clone())),
                    _ => None,
                })
                .collect();
            let slices: BTreeSet<String> = torch
                .nodes
                .iter()
                .flat_map(|n| crate::graph::crop_slices(torch, n))
                .map(|(_, n)| n.name.clone())
                .collect();
            let mut i = 0;
            for n in &mut torch.nodes {
                if slices.contains(&n.name) {
                    n.op = Op::Identity;
                    changed = true;
                } else if let Op::ConvTranspose {
                    padding,
                    output_padding,
                    ..
                } = &mut n.op
                {
                    if let Some((p, o)) = kp.get(i) {
                        *padding = p.clone();
                        *output_padding = o.clone();
                        changed = true;
                    }
                    i += 1;
                }
            }
        }
        Attr::Resize => {
            // Upsampling layers pair in graph order (as the detector pairs them); the Keras
            // interpolation and its coordinate convention replace torch's.
            let ki: Vec<model_ir::Interpolation> = keras
                .nodes
                .iter()
                .filter_map(|n| match &n.op {
                    Op::UpSampling { interpolation, .. } => Some(*interpolation),
                    _ => None,
                })
                .collect();
            let mut i = 0;
            for n in &mut torch.nodes {
                if let Op::UpSampling { interpolation, .. } = &mut n.op {
                    if let Some(k) = ki.get(i) {
                        *interpolation = *k;
                        changed = true;
                    }
                    i += 1;
                }
            }
        }
        Attr::BatchNorm(_) | Attr::NormEpsilon | Attr::SamePadding => {
            for pair in &aligned.pairs {
                // A separable pair's padding lives on its depthwise half.
                let target = if attr == Attr::SamePadding {
                    pair.torch_window()
                } else {
                    pair.torch
                };
                let Some(tn) = torch.nodes.iter_mut().find(|n| n.name == target.name) else {
                    continue;
                };
                match (&pair.keras.op, &mut tn.op) {
                    (
                        Op::BatchNorm {
                            epsilon,
                            momentum,
                            running_variance,
                            trainable,
                            ..
                        },
                        Op::BatchNorm {
                            epsilon: te,
                            momentum: tm,
                            running_variance: tv,
                            trainable: tt,
                            training_mode,
                            ..
                        },
                    ) => {
                        let Attr::BatchNorm(field) = attr else {
                            continue;
                        };
                        match field {
                            BnField::Epsilon => *te = *epsilon,
                            BnField::Momentum => *tm = *momentum,
                            BnField::RunningVariance => *tv = *running_variance,
                            BnField::Frozen => {
                                *tt = *trainable;
                                *training_mode = None;
                            }
                        }
                        changed = true;
                    }
                    (
                        Op::LayerNorm { epsilon, .. } | Op::GroupNorm { epsilon, .. },
                        Op::LayerNorm { epsilon: te, .. } | Op::GroupNorm { epsilon: te, .. },
                    ) if attr == Attr::NormEpsilon => {
                        *te = *epsilon;
                        changed = true;
                    }
                    (
                        Op::Conv { padding, .. }
                        | Op::DepthwiseConv { padding, .. }
                        | Op::SeparableConv { padding, .. },
                        Op::Conv { padding: tp, .. }
                        | Op::DepthwiseConv { padding: tp, .. }
                        | Op::SeparableConv { padding: tp, .. },
                    ) if attr == Attr::SamePadding => {
                        *tp = padding.clone();
                        changed = true;
                    }
                    _ => {}
                }
            }
            if attr == Attr::SamePadding {
                // A constant Pad layer in front of a torch conv stands for the asymmetric
                // padding: the conv takes Keras's rule instead, the Pad becomes a no-op.
                for n in &mut torch.nodes {
                    if let Op::Pad { begin, end, .. } = &mut n.op {
                        begin.iter_mut().chain(end.iter_mut()).for_each(|p| *p = 0);
                        changed = true;
                    }
                }
            }
        }
    }
    changed
}

impl Ctx<'_> {
    /// The torch setup with `ids` aligned to Keras.
    fn aligned_setup(&self, base: &Setup, keras: &Setup, ids: &[Id]) -> Result<Setup, String> {
        let mut s = base.clone();
        for &id in ids {
            match switch(id, self.w).map_err(|e| e.reason().to_string())? {
                Switch::Weights => {
                    let only: BTreeMap<String, (Vec<f64>, Vec<usize>)> = self
                        .w
                        .mapped
                        .iter()
                        .filter(|(n, _)| self.w.own.get(*n) == Some(&id))
                        .map(|(n, v)| (n.clone(), v.clone()))
                        .collect();
                    store_from(&only, &mut s.init);
                }
                Switch::Optimizer { decay } => {
                    let Opt::Keras(k) = &keras.opt else {
                        return Err("no Keras optimizer".into());
                    };
                    if matches!(s.opt, Opt::Keras(_)) {
                        // Another finding put the Keras optimizer in already: only the decay
                        // may still have to go.
                        if decay {
                            s.coupled_wd = 0.0;
                        }
                    } else if !decay {
                        s.coupled_wd = coupled_decay(&base.opt, base.coupled_wd);
                    } else {
                        s.coupled_wd = 0.0;
                    }
                    s.opt = Opt::Keras(k.clone());
                }
                // Already on the whole Keras optimizer (another finding's switch): nothing
                // left to align.
                Switch::EpsilonPlacement | Switch::SgdLrMomentum
                    if matches!(s.opt, Opt::Keras(_)) => {}
                Switch::SgdLrMomentum => match sgd_lr_momentum(&s.opt, &keras.opt) {
                    Some(o) => s.opt = o,
                    None => {
                        let Opt::Keras(k) = &keras.opt else {
                            return Err("no Keras optimizer".into());
                        };
                        s.coupled_wd = coupled_decay(&s.opt, s.coupled_wd);
                        s.opt = Opt::Keras(k.clone());
                    }
                },
                Switch::EpsilonPlacement => {
                    let (opt, wd) = epsilon_only(&s.opt, &keras.opt)?;
                    s.opt = opt;
                    s.coupled_wd = wd;
                }
                Switch::Regularizer => {
                    s.regularizers = self.torch_regularizers(keras);
                    match &mut s.opt {
                        Opt::Torch { groups, .. } => {
                            groups.iter_mut().for_each(|(c, _)| c.weight_decay = 0.0)
                        }
                        Opt::Keras(_) => s.coupled_wd = 0.0,
                    }
                }
                Switch::Loss => {
                    s.loss = keras.loss.clone();
                    s.class_weight = keras.class_weight.clone();
                    if s.probe_logits && !keras.probe_logits {
                        // Keras's loss takes the probabilities of its output activation: the
                        // torch model (ending in logits) gets that activation appended.
                        if let Some((_, Some(act))) = output_activation(&self.kb.model) {
                            append_activation(&mut s.model, act.clone());
                            s.probe_logits = false;
                        }
                    }
                    if s.data.rows() == keras.data.rows() {
                        s.data.y = keras.data.y.clone();
                    }
                    if s.probe_data.rows() == keras.probe_data.rows() {
                        s.probe_data.y = keras.probe_data.y.clone();
                    }
                }
                Switch::Inputs => {
                    // The rows Keras trains on, in the torch layout; scored on every row.
                    let torch_ints = s.data.y.ndim() == 1 && keras.data.y.ndim() == 2;
                    s.data = self.kdata_t.head(keras.data.rows());
                    s.probe_data = self.kdata_t.clone();
                    if torch_ints {
                        // The torch loss takes class indices where Keras has one-hot rows.
                        s.data.y = argmax_rows(&s.data.y);
                    }
                }
                Switch::Batching => {
                    s.batch_size = keras.batch_size;
                    s.shuffle = keras.shuffle;
                    s.drop_last = false;
                }
                Switch::Attr(attr) => {
                    if !copy_attr(attr, &self.kb.model, &mut s.model, self.aligned) {
                        return Err("no torch node carries the attribute to align".into());
                    }
                }
            }
        }
        Ok(s)
    }

    /// The Keras regularizers under the torch parameter names.
    fn torch_regularizers(&self, keras: &Setup) -> BTreeMap<String, engine::loss::Regularizer> {
        let mut out = BTreeMap::new();
        for pair in &self.aligned.pairs {
            for m in &pair.params {
                if m.group != Group::One {
                    continue;
                }
                if let (Some(r), Some(t)) = (keras.regularizers.get(&m.keras.name), m.torch.first())
                {
                    out.insert(t.name.clone(), *r);
                }
            }
        }
        out
    }
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

/// The node whose output a pair is compared at: the end of its activation chain.
fn chain_end<'a>(m: &'a Model, n: &'a Node) -> &'a Node {
    // The end of the activation chain, else the last Slice cropping a transposed conv.
    let crop = crate::graph::crop_slices(m, n)
        .last()
        .map(|(_, s)| s.name.as_str());
    let name = activation_chain(m, n)
        .last()
        .map(|&(_, name)| name)
        .or(crop)
        .unwrap_or(n.name.as_str());
    m.nodes.iter().find(|x| x.name == name).unwrap_or(n)
}

fn errors(a: &ArrayD<F>, b: &ArrayD<F>) -> Option<(f64, f64, f64)> {
    if a.shape() != b.shape() {
        return None;
    }
    let (mut max, mut amax, mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        max = max.max((x - y).abs());
        amax = amax.max(x.abs());
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let cos = if na == 0.0 || nb == 0.0 {
        // Both all-zero: identical; one all-zero: orthogonal.
        if na + nb == 0.0 { 1.0 } else { 0.0 }
    } else {
        dot / (na.sqrt() * nb.sqrt())
    };
    Some((max, if amax > 0.0 { max / amax } else { max }, cos))
}

/// The torch nodes computing `end` from `cut` (a chain segment), as a model with one input.
fn segment(m: &Model, cut: &str, end: &str, shape: &[usize]) -> Option<Model> {
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let mut stack = vec![end.to_string()];
    let mut nodes = Vec::new();
    let mut seen = BTreeSet::new();
    while let Some(v) = stack.pop() {
        if v == cut || !needed.insert(v.clone()) {
            continue;
        }
        let n = m.nodes.iter().find(|n| n.outputs.contains(&v))?;
        if matches!(n.op, Op::Input { .. }) {
            return None;
        }
        if seen.insert(n.name.clone()) {
            nodes.push(n.clone());
            stack.extend(n.inputs.iter().cloned());
        }
    }
    let order: Vec<&str> = m.nodes.iter().map(|n| n.name.as_str()).collect();
    nodes.sort_by_key(|n| order.iter().position(|o| *o == n.name));
    let mut dims: Vec<Option<usize>> = shape.iter().map(|&d| Some(d)).collect();
    if let Some(d) = dims.first_mut() {
        *d = None;
    }
    let input = Node {
        name: cut.to_string(),
        op: Op::Input {
            shape: dims.clone(),
            dtype: model_ir::DType::F32,
        },
        inputs: vec![],
        outputs: vec![cut.to_string()],
        params: vec![],
        origin: nodes.first()?.origin.clone(),
    };
    let mut all = vec![input];
    all.extend(nodes);
    Some(Model {
        framework: m.framework,
        name: format!("{}[{cut}..{end}]", m.name),
        inputs: vec![ValueInfo {
            name: cut.to_string(),
            shape: dims,
            dtype: model_ir::DType::F32,
        }],
        outputs: vec![end.to_string()],
        nodes: all,
        training: None,
        notes: vec![],
        producer: None,
    })
}

fn forward_parity(ctx: &Ctx<'_>, kdata: &Data) -> Result<ForwardReport, String> {
    let (km, tm) = (&ctx.kb.model, &ctx.tb.model);
    let kp = Program::new(km).map_err(|e| format!("Keras model: {e}"))?;
    let tp = Program::new(tm).map_err(|e| format!("torch model: {e}"))?;
    let kparams = ParamStore::<F>::from_model(km);
    let tparams = torch_init(ctx.tb, ctx.w, true);
    let rows = kdata.rows().min(FORWARD_ROWS);
    let idx: Vec<usize> = (0..rows).collect();
    let kx: Vec<ArrayD<F>> = kdata.x.iter().map(|x| x.select(Axis(0), &idx)).collect();
    let tx: Vec<ArrayD<F>> = ctx
        .kdata_t
        .x
        .iter()
        .map(|x| x.select(Axis(0), &idx))
        .collect();
    let none = DropoutMasks::new();
    let kf = forward(&kp, &kparams, &kx, Mode::Inference, &none).map_err(|e| e.to_string())?;
    let tf = forward(&tp, &tparams, &tx, Mode::Inference, &none).map_err(|e| e.to_string())?;
    let change = layout_change(km, tm);
    let mut layers = Vec::new();
    let (mut first, mut first_iso) = (None, None);
    // The previous cut: (torch value name, Keras value in the torch layout).
    let mut cut: Option<(String, ArrayD<F>)> =
        match (tm.inputs.len(), tm.inputs.first(), tx.first()) {
            (1, Some(i), Some(x)) => Some((i.name.clone(), x.clone())),
            _ => None,
        };
    for pair in &ctx.aligned.pairs {
        let ke = chain_end(km, pair.keras);
        let te = chain_end(tm, pair.torch);
        let (Some(kv), Some(tv)) = (
            ke.outputs.first().and_then(|v| kf.tape.value(v)),
            te.outputs.first().and_then(|v| tf.tape.value(v)),
        ) else {
            continue;
        };
        // Keras's channels-last value in torch's layout, when the transposed shape fits
        // (square shapes included); as is otherwise (dense, recurrent outputs).
        let transposed = to_torch_layout(kv, change);
        let kv_t = if transposed.shape() == tv.shape() {
            transposed
        } else {
            kv.clone()
        };
        // A port returning logits where Keras returns probabilities (the loss applies the
        // softmax/sigmoid) is compared in probabilities.
        let (kprob, tprob) = (ends_in_prob(km, pair.keras), ends_in_prob(tm, pair.torch));
        let squash = |v: &ArrayD<F>| match (kprob, tprob) {
            (Some(a), None) => apply(a, v),
            _ => v.clone(),
        };
        let kv_t = match (kprob, tprob) {
            (None, Some(a)) => apply(a, &kv_t),
            _ => kv_t,
        };
        let tv = &squash(tv);
        let Some((max_abs, rel, cosine)) = errors(&kv_t, tv) else {
            cut = None;
            continue;
        };
        let tout = te.outputs.first().cloned().unwrap_or_default();
        let isolated = cut.as_ref().and_then(|(cv, cx)| {
            let sub = segment(tm, cv, &tout, cx.shape())?;
            let p = Program::new(&sub).ok()?;
            let f = forward(
                &p,
                &tparams,
                std::slice::from_ref(cx),
                Mode::Inference,
                &none,
            )
            .ok()?;
            errors(&kv_t, &squash(&f.outputs[0])).map(|e| e.0)
        });
        if first.is_none() && max_abs > FORWARD_THRESHOLD {
            first = Some(pair_name(&pair.keras.name, &pair.torch_name()));
        }
        if first_iso.is_none() && isolated.is_some_and(|e| e > FORWARD_THRESHOLD) {
            first_iso = Some(pair_name(&pair.keras.name, &pair.torch_name()));
        }
        layers.push(LayerError {
            keras: pair.keras.name.clone(),
            torch: pair.torch_name(),
            max_abs,
            rel,
            cosine,
            isolated_max_abs: isolated,
        });
        cut = Some((tout, kv_t));
    }
    Ok(ForwardReport {
        mode: "inference".into(),
        layers,
        first_divergence: first,
        first_divergence_isolated: first_iso,
        threshold: FORWARD_THRESHOLD,
    })
}

/// The softmax (`true`) or sigmoid (`false`) at the end of a node's activation chain.
fn ends_in_prob(m: &Model, n: &Node) -> Option<bool> {
    match activation_chain(m, n).last().map(|(a, _)| *a) {
        Some(Activation::Softmax { .. }) => Some(true),
        Some(Activation::Sigmoid) => Some(false),
        _ => None,
    }
}

/// Softmax over the last axis, or the sigmoid.
fn apply(softmax: bool, v: &ArrayD<F>) -> ArrayD<F> {
    if !softmax {
        return v.mapv(|z| 1.0 / (1.0 + (-z).exp()));
    }
    let mut out = v.clone();
    let last = Axis(v.ndim().saturating_sub(1));
    for mut lane in out.lanes_mut(last) {
        let m = lane.iter().copied().fold(F::NEG_INFINITY, F::max);
        lane.mapv_inplace(|z| (z - m).exp());
        let s: F = lane.sum();
        lane.mapv_inplace(|z| z / s);
    }
    out
}

fn pair_name(k: &str, t: &str) -> String {
    if k == t {
        k.to_string()
    } else {
        format!("{k} ↔ {t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_under_one_switch_share_their_impact() {
        let w = WeightReport::default();
        let s = shared_switches(
            &[
                Id::AdamEpsilonHat,
                Id::SgdDefaultLr,
                Id::RmspropEpsAndRho,
                Id::NadamMomentumSchedule,
                Id::DoubleSoftmax,
                Id::BnEpsilon,
                Id::LeakyReluSlope,
                Id::AdamWeightDecayCoupling,
            ],
            &w,
            true,
        );
        // Both swap in the whole Keras optimizer; decay coupling also drops torch's decay.
        assert_eq!(
            s.get("rmsprop-eps-and-rho"),
            Some(&vec!["nadam-momentum-schedule".to_string()])
        );
        assert_eq!(
            s.get("nadam-momentum-schedule"),
            Some(&vec!["rmsprop-eps-and-rho".to_string()])
        );
        assert!(!s.contains_key("sgd-default-lr"));
        // Without an exact torch SGD, the SGD switch is the whole optimizer too.
        let s = shared_switches(&[Id::SgdDefaultLr, Id::RmspropEpsAndRho], &w, false);
        assert_eq!(
            s.get("sgd-default-lr"),
            Some(&vec!["rmsprop-eps-and-rho".to_string()])
        );
        // Aligned on its own (epsilon placement, attributes) or alone under its switch.
        for id in [
            "adam-epsilon-hat",
            "double-softmax",
            "bn-epsilon",
            "leaky-relu-slope",
            "adam-weight-decay-coupling",
        ] {
            assert!(!s.contains_key(id), "{id}");
        }
    }

    #[test]
    fn ids_without_a_switch_say_why() {
        let w = WeightReport::default();
        assert_eq!(
            switch(Id::SeedingDeterminism, &w).map_err(NoSwitch::reason),
            Err("the simulation starts both sides from the same (Keras) weights already")
        );
        for id in [Id::ArchitectureMismatch, Id::DenseInit, Id::Tf32Defaults] {
            assert_eq!(
                switch(id, &w).map_err(NoSwitch::reason),
                Err("no simulation switch aligns this finding yet"),
                "{id}"
            );
        }
        let mut w = WeightReport::default();
        w.own.insert("fc.weight".into(), Id::DenseInit);
        assert_eq!(switch(Id::DenseInit, &w), Ok(Switch::Weights));
        assert_eq!(
            switch(Id::BnEpsilon, &w),
            Ok(Switch::Attr(Attr::BatchNorm(BnField::Epsilon)))
        );
    }

    fn torch_adam(wd: f64, decoupled: bool) -> Opt {
        let mut c = optim::torch::Config::default_for(if decoupled { "AdamW" } else { "Adam" })
            .expect("torch default");
        c.lr = 0.01;
        c.weight_decay = wd;
        Opt::Torch {
            groups: vec![(c, vec!["w".into()])],
            clip: None,
            scheduler: None,
        }
    }

    #[test]
    fn epsilon_placement_alone_keeps_torch_settings() {
        let spec = model_ir::OptimizerSpec {
            class_name: "Adam".into(),
            config: serde_json::json!({"learning_rate": 0.001, "epsilon": 1e-7}),
        };
        let keras = Opt::Keras(optim::keras::Config::from_spec(&spec).expect("keras adam"));
        // Coupled decay stays torch's, added to the gradients; lr is torch's.
        let (opt, wd) = epsilon_only(&torch_adam(1e-4, false), &keras).expect("aligned");
        assert!((wd - 1e-4).abs() < 1e-15);
        let Opt::Keras(k) = opt else {
            panic!("Keras step")
        };
        assert!(
            matches!(k.learning_rate, optim::keras::LearningRate::Constant(lr) if (lr - 0.01).abs() < 1e-12)
        );
        assert!(
            matches!(k.kind, optim::keras::Kind::Adam { epsilon, .. } if (epsilon - 1e-7).abs() < 1e-20)
        );
        assert_eq!(k.weight_decay, None);
        // Decoupled (AdamW) decay becomes Keras's decoupled weight_decay.
        let (opt, wd) = epsilon_only(&torch_adam(0.01, true), &keras).expect("aligned");
        assert!(wd.abs() < 1e-300, "{wd}");
        let Opt::Keras(k) = opt else {
            panic!("Keras step")
        };
        assert!(k.weight_decay.is_some_and(|w| (w - 0.01).abs() < 1e-15));
        // Not a plain Adam on the torch side: no partial alignment.
        let mut sgd = torch_adam(0.0, false);
        if let Opt::Torch { groups, .. } = &mut sgd {
            groups[0].0 = optim::torch::Config::default_for("SGD").expect("sgd");
        }
        assert!(epsilon_only(&sgd, &keras).is_err());
    }

    #[test]
    fn sgd_switch_takes_lr_and_momentum_only() {
        let spec = model_ir::OptimizerSpec {
            class_name: "SGD".into(),
            config: serde_json::json!({"learning_rate": 0.05, "momentum": 0.9}),
        };
        let keras = Opt::Keras(optim::keras::Config::from_spec(&spec).expect("keras sgd"));
        let mut c = optim::torch::Config::default_for("SGD").expect("torch sgd");
        c.weight_decay = 0.01;
        let torch = Opt::Torch {
            groups: vec![(c.clone(), vec!["a".into()]), (c, vec!["b".into()])],
            clip: None,
            scheduler: None,
        };
        let Some(Opt::Torch { groups, .. }) = sgd_lr_momentum(&torch, &keras) else {
            panic!("aligned torch SGD");
        };
        for (c, _) in &groups {
            assert!((c.lr - 0.05).abs() < 1e-12);
            assert!((c.weight_decay - 0.01).abs() < 1e-12, "torch's decay kept");
            assert!(
                matches!(c.kind, optim::torch::Kind::Sgd { momentum, .. } if (momentum - 0.9).abs() < 1e-12)
            );
        }
        // A torch Adam is not aligned field by field.
        assert!(sgd_lr_momentum(&torch_adam(0.0, false), &keras).is_none());
    }
}
