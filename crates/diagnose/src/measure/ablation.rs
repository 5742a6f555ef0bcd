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
}
