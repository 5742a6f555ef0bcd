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

/// How the probe scores.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    pub(super) classification: bool,
}

pub(super) fn probe_value(p: &Probe, y: &ArrayD<F>, out: &ArrayD<F>, logits: bool) -> f64 {
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

/// Dropout keep-masks for every element-wise Dropout node, for inputs of these shapes.
pub(super) fn masks(
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

pub(super) fn has_dropout(m: &Model) -> bool {
    m.nodes.iter().any(|n| matches!(n.op, Op::Dropout { .. }))
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
