//! Ablation: the torch setup with findings aligned to Keras (optimizer pieces, loss,
//! regularizers, switched attributes), and which findings one switch aligns together.

use super::*;

/// The coupled weight decay a run on `opt` adds to the gradients once the Keras optimizer
/// replaces it: the first torch group's, or `current` when `opt` is Keras's already.
pub(super) fn coupled_decay(opt: &Opt, current: f64) -> f64 {
    match opt {
        Opt::Torch { groups, .. } => groups.first().map_or(0.0, |(c, _)| c.weight_decay),
        Opt::Keras(_) => current,
    }
}

/// The torch SGD groups with the learning rate, momentum, dampening and Nesterov flag of the
/// Keras SGD's exact torch equivalent; `None` when either side is not (exactly) SGD.
pub(super) fn sgd_lr_momentum(torch: &Opt, keras: &Opt) -> Option<Opt> {
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
pub(super) fn epsilon_only(torch: &Opt, keras: &Opt) -> Result<(Opt, f64), String> {
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
pub(super) fn shared_switches(
    ids: &[Id],
    w: &WeightReport,
    sgd_exact: bool,
) -> BTreeMap<String, Vec<String>> {
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
impl Ctx<'_> {
    /// The torch setup with `ids` aligned to Keras.
    pub(super) fn aligned_setup(
        &self,
        base: &Setup,
        keras: &Setup,
        ids: &[Id],
    ) -> Result<Setup, String> {
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
                Switch::Constraints => s.constraints = super::constraints::for_torch(self.w)?,
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
    pub(super) fn torch_regularizers(
        &self,
        keras: &Setup,
    ) -> BTreeMap<String, engine::loss::Regularizer> {
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

/// Players up to which the Shapley values are exact (every coalition run).
pub(super) const EXACT_PLAYERS: usize = 6;

/// Shapley values of `n` players, or estimates with their standard errors.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Shapley {
    pub(super) values: Vec<f64>,
    /// Standard error of each value when estimated from sampled orders; `None` when exact.
    pub(super) errors: Option<Vec<f64>>,
    /// Orders sampled (0 when exact).
    pub(super) orders: usize,
}

/// The Shapley values of the game `v` (a coalition is a bitmask of the `n` players, `v(0)`
/// is the empty coalition's value): exact over all 2^n coalitions for n ≤
/// [`EXACT_PLAYERS`], else the mean marginal contribution over about `orders` random
/// orders (fixed seed; blocks of rotations, so each player takes each position equally
/// often) with its standard error. Either way the values add up to `v(all) − v(∅)`
/// exactly (every order's marginal contributions do). `v` is asked each coalition at most
/// once per call site's cache (callers cache).
pub(super) fn shapley(
    n: usize,
    orders: usize,
    v: &mut dyn FnMut(u64) -> Result<f64, String>,
) -> Result<Shapley, String> {
    if n == 0 {
        return Ok(Shapley {
            values: Vec::new(),
            errors: None,
            orders: 0,
        });
    }
    if n <= EXACT_PLAYERS {
        return Ok(Shapley {
            values: exact_shapley(n, v)?,
            errors: None,
            orders: 0,
        });
    }
    // Blocks of the n rotations of a random order: every player takes every position once
    // per block (stratified by position), so the spread of the marginal contributions
    // treated as independent draws bounds the estimate's error conservatively.
    let blocks = orders.div_ceil(n).max(2);
    let orders = blocks * n;
    let mut rng = Rng(0x5348_4150);
    let mut sum = vec![0.0; n];
    let mut sq = vec![0.0; n];
    let v0 = v(0)?;
    let mut base: Vec<usize> = (0..n).collect();
    for k in 0..orders {
        if k % n == 0 {
            rng.shuffle(&mut base);
        }
        let mut order = base.clone();
        order.rotate_left(k % n);
        let (mut s, mut prev) = (0u64, v0);
        for &i in &order {
            s |= 1 << i;
            let cur = v(s)?;
            let d = cur - prev;
            sum[i] += d;
            sq[i] += d * d;
            prev = cur;
        }
    }
    let m = orders as f64;
    let values: Vec<f64> = sum.iter().map(|x| x / m).collect();
    let errors = values
        .iter()
        .zip(&sq)
        .map(|(mean, q)| ((q / m - mean * mean).max(0.0) * m / (m - 1.0) / m).sqrt())
        .collect();
    Ok(Shapley {
        values,
        errors: Some(errors),
        orders,
    })
}

/// The exact Shapley values over all 2^n coalitions:
/// `φ_i = Σ_{S ∌ i} |S|! (n − |S| − 1)! / n! · (v(S ∪ i) − v(S))`.
pub(super) fn exact_shapley(
    n: usize,
    v: &mut dyn FnMut(u64) -> Result<f64, String>,
) -> Result<Vec<f64>, String> {
    let fact = |k: usize| (1..=k).map(|x| x as f64).product::<f64>();
    let weight: Vec<f64> = (0..n)
        .map(|s| fact(s) * fact(n - s - 1) / fact(n))
        .collect();
    let all: Vec<f64> = (0..1u64 << n).map(&mut *v).collect::<Result<_, _>>()?;
    Ok((0..n)
        .map(|i| {
            (0..1u64 << n)
                .filter(|s| s & (1 << i) == 0)
                .map(|s| {
                    weight[s.count_ones() as usize] * (all[(s | 1 << i) as usize] - all[s as usize])
                })
                .sum()
        })
        .collect())
}

/// Orders sampled for `n` players above [`EXACT_PLAYERS`]: 2n, so a compare runs at most
/// about 2n(n − 1) coalitions besides the base and the singles.
pub(super) fn sampled_orders(n: usize) -> usize {
    2 * n
}

/// A hash of everything a run reads from a setup (the values of every array bit for bit,
/// the rest through its exact `Debug` form): equal setups hash equal, and a hash match is
/// confirmed with [`same_setup`] before a run is reused.
pub(super) fn fingerprint(s: &Setup) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let arr = |a: &ArrayD<F>, h: &mut std::collections::hash_map::DefaultHasher| {
        a.shape().hash(h);
        a.iter().for_each(|v| v.to_bits().hash(h));
    };
    for n in &s.model.nodes {
        (&n.name, format!("{:?}", n.op), &n.inputs, &n.outputs).hash(&mut h);
        for p in &n.params {
            (&p.name, p.trainable, p.tensor.shape()).hash(&mut h);
        }
    }
    (&s.model.outputs, format!("{:?}", s.model.inputs)).hash(&mut h);
    for (name, a) in &s.init.values {
        name.hash(&mut h);
        arr(a, &mut h);
    }
    for d in [&s.data, &s.probe_data] {
        d.x.iter().for_each(|a| arr(a, &mut h));
        arr(&d.y, &mut h);
    }
    format!(
        "{:?}|{:?}|{:?}|{}|{}|{}|{}|{}|{:?}|{:?}|{:?}|{}|{:?}",
        s.loss,
        s.regularizers,
        s.opt,
        s.coupled_wd.to_bits(),
        s.batch_size,
        s.shuffle,
        s.drop_last,
        s.probe_logits,
        s.class_weight,
        s.redraw,
        s.dropout,
        s.vary_order,
        s.constraints
    )
    .hash(&mut h);
    h.finish()
}

/// Whether two setups train identically (every field that a run reads); the coalition runs
/// are deduplicated with it.
pub(super) fn same_setup(a: &Setup, b: &Setup) -> bool {
    let Setup {
        model,
        init,
        data,
        loss,
        regularizers,
        opt,
        coupled_wd,
        batch_size,
        shuffle,
        drop_last,
        probe_logits,
        probe_data,
        class_weight,
        redraw,
        dropout,
        vary_order,
        constraints,
    } = a;
    same_model(model, &b.model)
        && *init == b.init
        && data.x == b.data.x
        && data.y == b.data.y
        && *loss == b.loss
        && *regularizers == b.regularizers
        && same_opt(opt, &b.opt)
        && coupled_wd.to_bits() == b.coupled_wd.to_bits()
        && *batch_size == b.batch_size
        && *shuffle == b.shuffle
        && *drop_last == b.drop_last
        && *probe_logits == b.probe_logits
        && probe_data.x == b.probe_data.x
        && probe_data.y == b.probe_data.y
        && *class_weight == b.class_weight
        && *redraw == b.redraw
        && *dropout == b.dropout
        && *vary_order == b.vary_order
        && *constraints == b.constraints
}

fn same_opt(a: &Opt, b: &Opt) -> bool {
    match (a, b) {
        (Opt::Keras(x), Opt::Keras(y)) => x == y,
        (
            Opt::Torch {
                groups: g1,
                clip: c1,
                scheduler: s1,
            },
            Opt::Torch {
                groups: g2,
                clip: c2,
                scheduler: s2,
            },
        ) => g1 == g2 && c1 == c2 && s1 == s2,
        _ => false,
    }
}

/// The parts of a model a run reads: its graph (ops with their attributes, wiring, inputs,
/// outputs) and parameter declarations (the values are the setup's `init`).
fn same_model(a: &Model, b: &Model) -> bool {
    a.framework == b.framework
        && a.inputs == b.inputs
        && a.outputs == b.outputs
        && a.nodes.len() == b.nodes.len()
        && a.nodes.iter().zip(&b.nodes).all(|(x, y)| {
            x.name == y.name
                && x.op == y.op
                && x.inputs == y.inputs
                && x.outputs == y.outputs
                && x.params.len() == y.params.len()
                && x.params.iter().zip(&y.params).all(|(p, q)| {
                    p.name == q.name
                        && p.trainable == q.trainable
                        && p.tensor.shape() == q.tensor.shape()
                        && p.tensor.to_f64() == q.tensor.to_f64()
                })
        })
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

    #[test]
    fn shapley_of_an_additive_game_is_each_players_own_value() {
        let own = [0.5, -0.2, 0.125, 0.0];
        let mut v = |s: u64| -> Result<f64, String> {
            Ok((0..4).filter(|i| s & (1 << i) != 0).map(|i| own[i]).sum())
        };
        let sh = shapley(4, 0, &mut v).expect("exact");
        assert!(sh.errors.is_none());
        for (phi, o) in sh.values.iter().zip(own) {
            assert!((phi - o).abs() < 1e-12, "{phi} vs {o}");
        }
    }

    #[test]
    fn shapley_of_overlapping_players_adds_up_to_the_grand_coalition() {
        // Players 0 and 1 close the same 0.6 (either alone, not more together); player 2
        // closes 0.3 alone but only 0.1 more once 0 is in.
        let mut v = |s: u64| -> Result<f64, String> {
            let (a, b, c) = (s & 1 != 0, s & 2 != 0, s & 4 != 0);
            let mut x = if a || b { 0.6 } else { 0.0 };
            x += match (c, a) {
                (true, true) => 0.1,
                (true, false) => 0.3,
                _ => 0.0,
            };
            Ok(x)
        };
        let sh = shapley(3, 0, &mut v).expect("exact");
        let total: f64 = sh.values.iter().sum();
        assert!((total - 0.7).abs() < 1e-12, "{total}");
        // By hand over the 6 orders (a, b, c = players 0, 1, 2): a's marginals 0.6, 0.6, 0,
        // −0.2, 0.4, −0.2 → 0.2; b's 0, 0, 0.6, 0.6, 0, 0.6 → 0.3; c's 0.1 when a precedes
        // it (3 orders), else 0.3 → 0.2.
        for (phi, want) in sh.values.iter().zip([0.2, 0.3, 0.2]) {
            assert!((phi - want).abs() < 1e-12, "{:?}", sh.values);
        }
        // The old "aligned alone" shares would add up to 0.6 + 0.6 + 0.3 = 1.5 > 0.7.
    }

    #[test]
    fn sampled_shapley_error_covers_the_exact_value() {
        // A 7-player game with overlaps and interactions.
        let w = [0.3, 0.25, -0.1, 0.4, 0.05, 0.2, 0.15];
        let value = |s: u64| -> f64 {
            let base: f64 = (0..7).filter(|i| s & (1 << i) != 0).map(|i| w[i]).sum();
            let overlap = if s & 0b11 == 0b11 { -0.2 } else { 0.0 };
            let synergy = if s & 0b1001000 == 0b1001000 { 0.3 } else { 0.0 };
            base + overlap + synergy + 0.1 * (s.count_ones() as f64).sqrt()
        };
        let exact = exact_shapley(7, &mut |s| Ok(value(s))).expect("exact");
        let mut calls = std::collections::BTreeSet::new();
        let sh = shapley(7, sampled_orders(7), &mut |s| {
            calls.insert(s);
            Ok(value(s))
        })
        .expect("sampled");
        let errors = sh
            .errors
            .expect("sampled values carry their standard errors");
        assert_eq!(sh.orders, 14);
        for ((est, e), x) in sh.values.iter().zip(&errors).zip(&exact) {
            assert!((est - x).abs() <= 3.0 * e + 1e-12, "{est} ± {e} vs {x}");
        }
        // Every order's contributions add up to v(all): so do the estimates.
        let total: f64 = sh.values.iter().sum();
        assert!((total - value(127)).abs() < 1e-12);
        // At most 14 orders × 7 coalitions (plus the empty one) were asked.
        assert!(calls.len() <= 14 * 6 + 2, "{}", calls.len());
    }
}
