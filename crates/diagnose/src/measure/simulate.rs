//! The training simulation: each side's setup (data, optimizer, loss, probe), batching and
//! shuffling, dropout masks, and one training run's probe curve.

use super::*;

/// Inputs and targets, all rows.
#[derive(Debug, Clone)]
pub(super) struct Data {
    pub(super) x: Vec<ArrayD<F>>,
    pub(super) y: ArrayD<F>,
}

impl Data {
    pub(super) fn rows(&self) -> usize {
        self.y.shape().first().copied().unwrap_or(0)
    }

    /// The first `n` rows (all of them when there are fewer).
    pub(super) fn head(&self, n: usize) -> Data {
        let idx: Vec<usize> = (0..n.min(self.rows())).collect();
        let (x, y) = self.select(&idx);
        Data { x, y }
    }

    pub(super) fn select(&self, idx: &[usize]) -> (Vec<ArrayD<F>>, ArrayD<F>) {
        (
            self.x.iter().map(|x| x.select(Axis(0), idx)).collect(),
            self.y.select(Axis(0), idx),
        )
    }
}

/// Which optimizer a run steps with.
#[derive(Debug, Clone)]
pub(super) enum Opt {
    Keras(optim::keras::Config),
    Torch {
        groups: Vec<(optim::torch::Config, Vec<String>)>,
        clip: Option<model_ir::GradClip>,
        scheduler: Option<model_ir::SchedulerSpec>,
    },
}

/// One side's full training setup.
#[derive(Debug, Clone)]
pub(super) struct Setup {
    pub(super) model: Model,
    pub(super) init: ParamStore<F>,
    pub(super) data: Data,
    pub(super) loss: Loss,
    pub(super) regularizers: BTreeMap<String, engine::loss::Regularizer>,
    pub(super) opt: Opt,
    /// Coupled weight decay added to the gradients before a Keras optimizer (torch side).
    pub(super) coupled_wd: f64,
    pub(super) batch_size: usize,
    pub(super) shuffle: bool,
    pub(super) drop_last: bool,
    /// Output probabilities need a softmax/sigmoid first (the model ends in logits).
    pub(super) probe_logits: bool,
    /// What the probe scores: every row of the Keras inputs (in this side's layout), or the
    /// side's own rows when they are the same samples under its own preprocessing.
    pub(super) probe_data: Data,
    /// Keras `fit(class_weight=…)`: class index → weight, applied as per-sample weights.
    pub(super) class_weight: Option<BTreeMap<i64, F>>,
    /// Parameters whose initial value is this side's own random draw (not shared with the
    /// other side): the noise floor redraws them.
    pub(super) redraw: Vec<String>,
    /// Where each Dropout node's random field comes from ([`pair_dropout`]).
    pub(super) dropout: Vec<DropSite>,
    /// The noise floor varies this side's sample order (it shuffles and the other side's
    /// order is not the same draw).
    pub(super) vary_order: bool,
    /// Weight constraints projected after every optimizer step, by parameter name.
    pub(super) constraints: BTreeMap<String, model_ir::Constraint>,
}

pub(super) fn arr(t: &Tensor) -> ArrayD<F> {
    t.to_f32()
}

pub(super) fn input_tensor(b: &Bundle, i: usize) -> Option<&Tensor> {
    let f = b.inputs.as_ref()?;
    let name = format!("x.{}", b.model.inputs.get(i)?.name);
    if b.model.inputs.len() == 1 {
        f.get("x").or_else(|| f.get(&name))
    } else {
        f.get(&name)
    }
}

/// The Keras array in the torch model's layout.
pub(super) fn to_torch_layout(t: &ArrayD<F>, change: bool) -> ArrayD<F> {
    match DataLayout::last_to_first_perm(t.ndim()) {
        Some(perm) if change => t.view().permuted_axes(perm).as_standard_layout().to_owned(),
        _ => t.clone(),
    }
}

pub(super) fn layout_change(k: &Model, t: &Model) -> bool {
    spatial_layout(k) == Some(DataLayout::ChannelsLast)
        && spatial_layout(t) == Some(DataLayout::ChannelsFirst)
}

/// Whether the model's output is logits for the probe (no final softmax/sigmoid).
pub(super) fn ends_in_logits(m: &Model) -> bool {
    !matches!(
        output_activation(m),
        Some((_, Some(Activation::Softmax { .. } | Activation::Sigmoid)))
    )
}

pub(super) fn keras_optimizer(m: &Model) -> Result<optim::keras::Config, String> {
    let spec = m
        .training
        .as_ref()
        .and_then(|t| t.optimizer.as_ref())
        .ok_or("the Keras bundle records no optimizer")?;
    optim::keras::Config::from_spec(spec).map_err(|e| e.to_string())
}

pub(super) fn torch_optimizer(m: &Model) -> Result<Opt, String> {
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

pub(super) fn side(
    b: &Bundle,
    data: Data,
    probe_data: Data,
    init: ParamStore<F>,
) -> Result<Setup, String> {
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
        dropout: Vec::new(),
        vary_order: false,
        constraints: super::constraints::of_side(m)?,
    })
}

/// Another draw of the same initialisation: each tensor's entries permuted (rows and columns
/// of a matrix, which keeps an orthogonal matrix orthogonal), so every marginal distribution
/// is the one the framework drew from.
pub(super) fn redraw(init: &ParamStore<F>, trainable: &[String], rng: &mut Rng) -> ParamStore<F> {
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

/// What the probe scores, built from the typed Keras loss: the clipped crossentropy of the
/// inference-mode probabilities for classification, the Keras loss itself (with its
/// arguments) for the regression losses it can compute exactly, else the mean squared error,
/// saying which loss it stands in for.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Probe {
    /// Binary crossentropy, element-wise (sigmoid first when the model ends in logits).
    Binary,
    /// Categorical crossentropy over the last axis (softmax first when the model ends in
    /// logits); one-hot rows or class indices as targets.
    Categorical,
    /// Mean squared error; `stands_in_for` names the Keras loss the probe cannot compute.
    Mse { stands_in_for: Option<String> },
    /// Mean absolute error.
    Mae,
    /// Keras `huber` with its `delta`.
    Huber { delta: f64 },
}

/// The clip of the crossentropy probe's probabilities.
const PROBE_CLIP: f64 = 1e-7;

impl Probe {
    /// The probe for the Keras loss `spec` (the mean squared error when there is none).
    pub(super) fn of_keras(spec: Option<&model_ir::LossSpec>) -> Probe {
        use model_ir::loss::{KerasLoss, LossFamily, TypedLoss};
        let Some(spec) = spec else {
            return Probe::Mse {
                stands_in_for: Some("no Keras loss recorded".into()),
            };
        };
        match (&spec.typed, spec.family()) {
            (_, LossFamily::Binary) => Probe::Binary,
            (_, LossFamily::CrossEntropy) => Probe::Categorical,
            (TypedLoss::Keras(Ok(KerasLoss::MeanSquaredError { .. })), _) => Probe::Mse {
                stands_in_for: None,
            },
            (TypedLoss::Keras(Ok(KerasLoss::MeanAbsoluteError { .. })), _) => Probe::Mae,
            (TypedLoss::Keras(Ok(KerasLoss::Huber { delta, .. })), _) => {
                Probe::Huber { delta: *delta }
            }
            _ => Probe::Mse {
                stands_in_for: Some(format!(
                    "the Keras loss `{}` is not computed by the probe",
                    spec.class_name
                )),
            },
        }
    }

    /// The quantity's name (`mean absolute error`, `Huber loss (delta=1.5)`).
    pub(super) fn name(&self) -> String {
        match self {
            Probe::Binary => "binary crossentropy".into(),
            Probe::Categorical => "categorical crossentropy".into(),
            Probe::Mse { .. } => "mean squared error".into(),
            Probe::Mae => "mean absolute error".into(),
            Probe::Huber { delta } => format!("Huber loss (delta={})", report::sig(*delta)),
        }
    }

    /// What the curves show.
    pub(super) fn curve_text(&self) -> String {
        match self {
            Probe::Binary | Probe::Categorical => format!(
                "probe loss: {} of the inference-mode predictions on all rows (probabilities clipped to [{PROBE_CLIP:e}, 1 − {PROBE_CLIP:e}])",
                self.name()
            ),
            Probe::Mse {
                stands_in_for: Some(why),
            } => format!(
                "probe loss: mean squared error of the inference-mode outputs on all rows ({why})"
            ),
            _ => format!(
                "probe loss: {} of the inference-mode outputs on all rows",
                self.name()
            ),
        }
    }

    /// The unit of the gap: the mean absolute difference of the two probe curves.
    pub(super) fn metric_text(&self) -> String {
        format!("mean |Δ {}| over the run", self.name())
    }
}

/// The probe's value for the outputs `out` of the rows with targets `y`; `logits`: the model
/// ends in logits (probabilities need a sigmoid/softmax first). An error names what does not
/// fit (targets and outputs of different sizes).
pub(super) fn probe_value(
    p: &Probe,
    y: &ArrayD<F>,
    out: &ArrayD<F>,
    logits: bool,
) -> Result<f64, String> {
    let n = out.shape().first().copied().unwrap_or(0);
    if n == 0 || out.is_empty() {
        return Err("the probe has no rows to score".into());
    }
    let c = out.len() / n;
    let o: Vec<f64> = out.iter().map(|&v| f64::from(v)).collect();
    let y: Vec<f64> = y.iter().map(|&v| f64::from(v)).collect();
    let same = || {
        if y.len() == o.len() {
            Ok(())
        } else {
            Err(format!(
                "the probe's targets ({} values) do not match the outputs ({} values)",
                y.len(),
                o.len()
            ))
        }
    };
    let mean = |f: &dyn Fn(f64, f64) -> f64| -> f64 {
        o.iter().zip(&y).map(|(a, b)| f(*a, *b)).sum::<f64>() / o.len() as f64
    };
    let clip = |q: f64| q.clamp(PROBE_CLIP, 1.0 - PROBE_CLIP);
    match p {
        Probe::Mse { .. } => {
            same()?;
            Ok(mean(&|a, b| (a - b).powi(2)))
        }
        Probe::Mae => {
            same()?;
            Ok(mean(&|a, b| (a - b).abs()))
        }
        Probe::Huber { delta } => {
            same()?;
            // keras/src/losses/losses.py::huber: ½e² where |e| ≤ δ, else δ|e| − ½δ²; mean.
            let d = *delta;
            Ok(mean(&|a, b| {
                let e = (a - b).abs();
                if e <= d {
                    0.5 * e * e
                } else {
                    d * e - 0.5 * d * d
                }
            }))
        }
        Probe::Binary => {
            same()?;
            Ok(mean(&|a, t| {
                let q = clip(if logits { 1.0 / (1.0 + (-a).exp()) } else { a });
                -(t * q.ln() + (1.0 - t) * (1.0 - q).ln())
            }))
        }
        Probe::Categorical => {
            if c < 2 {
                return Err(format!(
                    "categorical crossentropy of {c} output column: the probe needs a class axis"
                ));
            }
            if y.len() != o.len() && y.len() != n {
                return Err(format!(
                    "the probe's targets ({} values) are neither one-hot rows nor class indices of {n} rows",
                    y.len()
                ));
            }
            let mut total = 0.0;
            for i in 0..n {
                let row = &o[i * c..(i + 1) * c];
                let probs: Vec<f64> = if logits {
                    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
                    let s: f64 = e.iter().sum();
                    e.iter().map(|v| v / s).collect()
                } else {
                    row.to_vec()
                };
                total += if y.len() == o.len() {
                    -(0..c)
                        .map(|j| y[i * c + j] * clip(probs[j]).ln())
                        .sum::<f64>()
                } else {
                    let k = y[i];
                    if k < 0.0 || k.fract() != 0.0 || k as usize >= c {
                        return Err(format!("class index {k} outside 0..{c}"));
                    }
                    -clip(probs[k as usize]).ln()
                };
            }
            Ok(total / n as f64)
        }
    }
}

/// A small deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn shuffle(&mut self, v: &mut [usize]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Sample indices of each of `steps` batches.
pub(super) fn batch_plan(
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
pub(super) fn stepper(s: &Setup, names: &[String], program: &Program) -> Result<Driver<F>, String> {
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

/// Where one Dropout node's uniform random field comes from. A paired node draws the field
/// its counterpart on the other side draws (the same seed, in a canonical shape mapped to
/// each side's layout), and each side keeps an element where the field is at least its own
/// rate: identical rates give identical masks, a rate difference still shows. An unpaired
/// node draws its own field from the run's seed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DropSite {
    pub(super) node: String,
    /// Index of the pair (shared by both sides), or `None` (independent field).
    pub(super) pair: Option<usize>,
    /// This node's index among the side's Dropout nodes (salts an independent field).
    pub(super) index: usize,
    /// From the canonical field to this side's mask.
    pub(super) map: FieldMap,
}

/// How a side's mask is laid out relative to the canonical field (the Keras side's).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum FieldMap {
    /// The same shape and element order (a spatial dropout: the `(N, C)` field).
    Same,
    /// `mask = field.permuted_axes(perm)` (Keras NHWC → torch NCHW).
    Permute(Vec<usize>),
    /// A flattened vector: the field is `(N, *spatial, C)` flattened (Keras's order), the
    /// mask the same elements flattened `(N, C, *spatial)` (torch's order); `dims` =
    /// `(*spatial, C)`.
    Unflatten(Vec<usize>),
}

/// A Dropout node's view for pairing: its rate-independent description.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum DropView {
    /// Element-wise on a tensor of this shape (batch excluded), not a flattened feature map.
    Plain(Vec<usize>),
    /// Element-wise on a flattened feature map: flatten order and logical dims
    /// `(*spatial, C)`.
    Flat(DataLayout, Vec<usize>),
    /// Spatial dropout: the layout, logical spatial dims and channel count.
    Spatial(DataLayout, Vec<usize>, usize),
    /// Something this pairing does not describe.
    Unknown,
}

/// Logical `(*spatial, C)` of a shape (batch included) in `layout`.
fn logical(shape: &[usize], layout: DataLayout) -> Option<(Vec<usize>, usize)> {
    if shape.len() < 3 {
        return None;
    }
    let r = shape.len();
    Some(match layout {
        DataLayout::ChannelsLast => (shape[1..r - 1].to_vec(), shape[r - 1]),
        DataLayout::ChannelsFirst => (shape[2..].to_vec(), shape[1]),
    })
}

fn drop_views(m: &Model, x: &[ArrayD<F>]) -> Result<Vec<(String, DropView)>, String> {
    let program = Program::new(m).map_err(|e| e.to_string())?;
    let shapes: Vec<&[usize]> = x.iter().map(|a| a.shape()).collect();
    let all = program.infer_shapes(&shapes).map_err(|e| e.to_string())?;
    let layout = spatial_layout(m);
    let mut out = Vec::new();
    for n in &m.nodes {
        let Op::Dropout { spatial, .. } = &n.op else {
            continue;
        };
        let Some(shape) = n.inputs.first().and_then(|v| all.get(v)) else {
            out.push((n.name.clone(), DropView::Unknown));
            continue;
        };
        let view = match spatial {
            Some(l) => match logical(shape, *l) {
                Some((sp, c)) => DropView::Spatial(*l, sp, c),
                None => DropView::Unknown,
            },
            None => {
                // A flattened feature map: the Flatten (or Reshape to one axis) it comes from.
                let src = n.inputs.first().and_then(|v| source_of(m, v));
                let flat = src.and_then(|f| {
                    let order = match &f.op {
                        Op::Flatten { order, .. } => Some(*order),
                        Op::Reshape { target_shape } if target_shape.len() == 1 => layout,
                        _ => return None,
                    };
                    let ins = all.get(f.inputs.first()?)?;
                    Some((order, ins.clone()))
                });
                match flat {
                    Some((_, ins)) if ins.len() < 3 => DropView::Plain(shape[1..].to_vec()),
                    Some((Some(order), ins)) => match layout.and_then(|l| logical(&ins, l)) {
                        Some((mut sp, c)) => {
                            sp.push(c);
                            DropView::Flat(order, sp)
                        }
                        None => DropView::Unknown,
                    },
                    Some((None, _)) => DropView::Unknown,
                    None => DropView::Plain(shape[1..].to_vec()),
                }
            }
        };
        out.push((n.name.clone(), view));
    }
    Ok(out)
}

/// The torch side's field map for a pair of views, or `None` when they cannot be paired
/// exactly. `change`: Keras is channels-last and torch channels-first.
pub(super) fn pair_map(k: &DropView, t: &DropView, change: bool) -> Option<FieldMap> {
    match (k, t) {
        (DropView::Plain(a), DropView::Plain(b)) => {
            let perm = DataLayout::last_to_first_perm(a.len() + 1).filter(|_| change);
            match perm {
                None => (a == b).then_some(FieldMap::Same),
                Some(p) => {
                    let permuted: Vec<usize> = p[1..].iter().map(|&i| a[i - 1]).collect();
                    // Under a layout change a tensor equal both ways is ambiguous.
                    (permuted == *b && a != b).then_some(FieldMap::Permute(p))
                }
            }
        }
        (DropView::Flat(ko, a), DropView::Flat(to, b)) if a == b => match (ko, to) {
            _ if ko == to => Some(FieldMap::Same),
            (DataLayout::ChannelsLast, DataLayout::ChannelsFirst) => {
                Some(FieldMap::Unflatten(a.clone()))
            }
            _ => None,
        },
        (DropView::Spatial(_, a, c), DropView::Spatial(_, b, d)) => {
            (a == b && c == d).then_some(FieldMap::Same)
        }
        _ => None,
    }
}

/// Pairs the Dropout nodes of the two sides by their order among the Dropout nodes and
/// their input shapes modulo the layout change (through a Flatten: Keras flattens
/// `(h, w, c)`, torch `(c, h, w)`); sets both setups' [`DropSite`]s. Nodes on a side with
/// another number of Dropout nodes, or whose shapes do not correspond exactly, get
/// independent fields. Returns the number of pairs.
pub(super) fn pair_dropout(keras: &mut Setup, torch: &mut Setup, change: bool) -> usize {
    let kv = drop_views(&keras.model, &keras.data.x).unwrap_or_default();
    let tv = drop_views(&torch.model, &torch.data.x).unwrap_or_default();
    let mut ks = Vec::new();
    let mut ts = Vec::new();
    let mut pairs = 0;
    for (i, (kn, k)) in kv.iter().enumerate() {
        let partner = (kv.len() == tv.len())
            .then(|| &tv[i])
            .and_then(|(tn, t)| pair_map(k, t, change).map(|m| (tn, m)));
        match partner {
            Some((tn, map)) => {
                ks.push(DropSite {
                    node: kn.clone(),
                    pair: Some(pairs),
                    index: i,
                    map: FieldMap::Same,
                });
                ts.push(DropSite {
                    node: tn.clone(),
                    pair: Some(pairs),
                    index: i,
                    map,
                });
                pairs += 1;
            }
            None => ks.push(DropSite {
                node: kn.clone(),
                pair: None,
                index: i,
                map: FieldMap::Same,
            }),
        }
    }
    for (i, (tn, _)) in tv.iter().enumerate() {
        if !ts.iter().any(|s| &s.node == tn) {
            ts.push(DropSite {
                node: tn.clone(),
                pair: None,
                index: i,
                map: FieldMap::Same,
            });
        }
    }
    keras.dropout = ks;
    torch.dropout = ts;
    pairs
}

/// A seed from several parts (SplitMix64 of each, chained).
fn mix(parts: &[u64]) -> u64 {
    let mut r = Rng(0x243F_6A88_85A3_08D3);
    for p in parts {
        r.0 ^= p.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        r.next();
    }
    r.next()
}

/// Salt of the shared fields: the same on both sides.
const PAIRED: u64 = 0x5041_4952;

/// A field drawn in the canonical (Keras) element order, laid out as this side's mask of
/// `shape`; `None` when it does not fit.
pub(super) fn lay_out(field: Vec<F>, shape: &[usize], map: &FieldMap) -> Option<ArrayD<F>> {
    match map {
        FieldMap::Same => ArrayD::from_shape_vec(IxDyn(shape), field).ok(),
        FieldMap::Permute(p) => {
            // The canonical shape c with shape[i] = c[p[i]].
            if p.len() != shape.len() {
                return None;
            }
            let mut c = vec![0; shape.len()];
            for (i, &a) in p.iter().enumerate() {
                *c.get_mut(a)? = shape[i];
            }
            let f = ArrayD::from_shape_vec(IxDyn(&c), field).ok()?;
            Some(f.permuted_axes(IxDyn(p)).as_standard_layout().into_owned())
        }
        FieldMap::Unflatten(dims) => {
            let mut c = vec![*shape.first()?];
            c.extend(dims);
            if c.iter().product::<usize>() != shape.iter().product::<usize>() {
                return None;
            }
            let p = DataLayout::last_to_first_perm(c.len())?;
            let f = ArrayD::from_shape_vec(IxDyn(&c), field).ok()?;
            let f = f.permuted_axes(IxDyn(&p)).as_standard_layout().into_owned();
            f.into_shape_with_order(IxDyn(shape)).ok()
        }
    }
}

/// Keep-masks of one batch (step `step`) for every Dropout node of the setup with a rate
/// above 0, for inputs of these shapes. `seed` varies the independent fields only.
pub(super) fn masks(
    s: &Setup,
    program: &Program,
    x: &[ArrayD<F>],
    step: usize,
    seed: u64,
) -> Result<DropoutMasks<F>, String> {
    let mut out = DropoutMasks::new();
    if s.dropout.is_empty() {
        return Ok(out);
    }
    let shapes: Vec<&[usize]> = x.iter().map(|a| a.shape()).collect();
    let all = program.infer_shapes(&shapes).map_err(|e| e.to_string())?;
    let side = match s.model.framework {
        Framework::Keras => 1,
        Framework::Torch => 2,
    };
    for site in &s.dropout {
        let Some(node) = s.model.nodes.iter().find(|n| n.name == site.node) else {
            continue;
        };
        let Op::Dropout { rate, spatial } = &node.op else {
            continue;
        };
        let Some(shape) = node.inputs.first().and_then(|v| all.get(v)) else {
            continue;
        };
        let mut rng = Rng(match site.pair {
            Some(p) => mix(&[PAIRED, step as u64, p as u64]),
            None => mix(&[seed, side, step as u64, site.index as u64]),
        });
        let keep = |u: f64| if u < *rate { 0.0 } else { 1.0 };
        let bad = || {
            format!(
                "dropout `{}`: the paired random field does not fit its input {shape:?}",
                site.node
            )
        };
        let mask = match spatial {
            Some(l) => {
                let (sp, c) = logical(shape, *l).ok_or_else(bad)?;
                let n = shape[0];
                let field: Vec<F> = (0..n * c).map(|_| keep(rng.unit())).collect();
                let mut ms = vec![n];
                match l {
                    DataLayout::ChannelsLast => {
                        ms.extend(sp.iter().map(|_| 1));
                        ms.push(c);
                    }
                    DataLayout::ChannelsFirst => {
                        ms.push(c);
                        ms.extend(sp.iter().map(|_| 1));
                    }
                }
                ArrayD::from_shape_vec(IxDyn(&ms), field).map_err(|_| bad())?
            }
            None => {
                let len: usize = shape.iter().product();
                let field: Vec<F> = (0..len).map(|_| keep(rng.unit())).collect();
                lay_out(field, shape, &site.map).ok_or_else(bad)?
            }
        };
        out.insert(node.name.clone(), mask);
    }
    Ok(out)
}

/// One training run: the probe curve (start, then every `every` steps).
pub(super) fn run(
    s: &Setup,
    steps: usize,
    seed: Option<u64>,
    probe: &Probe,
) -> Result<Vec<f64>, String> {
    let program = Program::new(&s.model).map_err(|e| e.to_string())?;
    let names: Vec<String> = program.trainable().to_vec();
    let mut params = match seed {
        Some(seed) if !s.redraw.is_empty() => redraw(&s.init, &s.redraw, &mut Rng(seed ^ 0x1417)),
        _ => s.init.clone(),
    };
    let mut opt = stepper(s, &names, &program)?;
    // A seed varies the sample order only where it is this side's own draw (`vary_order`);
    // the measured runs of both sides draw the same order.
    let order_seed = match seed {
        Some(k) if s.vary_order => k,
        _ => 0,
    };
    let plan = batch_plan(
        s.data.rows(),
        s.batch_size,
        s.shuffle,
        s.drop_last,
        steps,
        order_seed,
    );
    if plan.is_empty() {
        return Err("no batches".into());
    }
    let mut batches = Vec::with_capacity(plan.len());
    for (step, idx) in plan.iter().enumerate() {
        let (x, y) = s.data.select(idx);
        let sample_weight = s.class_weight.as_ref().map(|cw| class_weights(cw, &y));
        // Dropout on, in every run: paired nodes share their fields with the other side,
        // independent ones draw from the seed.
        let masks = masks(s, &program, &x, step, seed.unwrap_or(0))?;
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
        let out = f.outputs.first().ok_or("the model has no output")?;
        probe_value(probe, &s.probe_data.y, out, s.probe_logits)
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
            super::constraints::apply(&s.constraints, &names, &shapes, &mut ps);
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
pub(super) fn append_activation(m: &mut Model, act: Activation) {
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

/// Keras `class_weight` as per-sample weights: the weight of each row's class (integer
/// targets, or the argmax of one-hot rows); classes without an entry weigh 1.
pub(super) fn class_weights(cw: &BTreeMap<i64, F>, y: &ArrayD<F>) -> ArrayD<F> {
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
pub(super) fn argmax_rows(y: &ArrayD<F>) -> ArrayD<F> {
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

pub(super) fn store_from(
    values: &BTreeMap<String, (Vec<f64>, Vec<usize>)>,
    into: &mut ParamStore<F>,
) {
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
