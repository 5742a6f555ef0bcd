//! The exhaustive decision of how each finding is aligned in simulation ([`Switch`], or
//! [`NoSwitch`] with its reason), and the copy of one Keras node attribute into the torch IR.

use super::*;

/// How a finding is aligned in simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Switch {
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
    /// The Keras weight constraints projected on the torch side after every step.
    Constraints,
    /// A node attribute copied from Keras into a clone of the torch IR.
    Attr(Attr),
}

/// The node attribute a [`Switch::Attr`] copies from Keras into the torch IR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attr {
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
pub(super) enum Family {
    LeakyRelu,
    Gelu,
    HardSigmoid,
}

/// The BatchNorm field a switch copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BnField {
    Epsilon,
    Momentum,
    RunningVariance,
    /// `trainable`, with torch's explicit training mode dropped.
    Frozen,
}

/// Why a finding has no simulation switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NoSwitch {
    /// Both sides start from the same weights in the simulation.
    SameStart,
    /// Nothing in the simulation aligns it (yet).
    NotYet,
}

impl NoSwitch {
    /// The reason the report shows instead of an impact.
    pub(super) fn reason(self) -> &'static str {
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
pub(super) fn switch(id: Id, w: &WeightReport) -> Result<Switch, NoSwitch> {
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
        Id::WeightConstraints => Switch::Constraints,
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
        | Id::GruLayoutResetAfter
        | Id::BnAffineInit => return Err(NoSwitch::NotYet),
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

impl Family {
    /// Whether `a` belongs to the family.
    pub(super) fn contains(self, a: &Activation) -> bool {
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
pub(super) fn copy_attr(
    attr: Attr,
    keras: &Model,
    torch: &mut Model,
    aligned: &Aligned<'_>,
) -> bool {
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
            // General resizes pair the same way; Keras's sampling (mode, coordinate
            // transformation, taps outside, antialias) replaces torch's, the sizes stay.
            let kr: Vec<&Op> = keras
                .nodes
                .iter()
                .map(|n| &n.op)
                .filter(|op| matches!(op, Op::Resize { .. }))
                .collect();
            let mut i = 0;
            for n in &mut torch.nodes {
                if let Op::Resize {
                    mode,
                    coordinate,
                    exclude_outside,
                    antialias,
                    ..
                } = &mut n.op
                {
                    if let Some(Op::Resize {
                        mode: km,
                        coordinate: kc,
                        exclude_outside: ke,
                        antialias: ka,
                        ..
                    }) = kr.get(i)
                    {
                        (*mode, *coordinate, *exclude_outside, *antialias) = (*km, *kc, *ke, *ka);
                        changed = true;
                    }
                    i += 1;
                }
            }
        }
        Attr::BatchNorm(_) | Attr::NormEpsilon | Attr::SamePadding => {
            changed = copy_per_pair(attr, torch, aligned);
        }
    }
    changed
}

/// The BatchNorm fields, norm epsilons and `same` padding: copied pair by pair.
fn copy_per_pair(attr: Attr, torch: &mut Model, aligned: &Aligned<'_>) -> bool {
    let mut changed = false;
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
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
