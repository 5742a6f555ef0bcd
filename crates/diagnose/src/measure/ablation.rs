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
