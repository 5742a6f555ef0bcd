//! Compares a Keras model with its PyTorch port and names every difference by its catalogue
//! id, with evidence from both sides and the fix for each.
//!
//! [`diagnose`] runs, in order:
//! 1. **align** ([`align`]): pair the layers with parameters by graph order, kind and
//!    parameter shapes modulo layouts; list what has no counterpart;
//! 2. **weights** ([`weights`]): decide whether the torch initial weights are the Keras
//!    weights under the correct mapping, under a known wrong one, or independent draws whose
//!    distributions are compared with each framework's default initializers;
//! 3. **conventions** decidable from the two configurations: layers ([`layers`]) and
//!    training ([`training`]: optimizer via `optim::equiv`, clipping, schedules, loss,
//!    regularizers, batch size and shuffling);
//! 4. **inputs** ([`inputs`]): what each side feeds its model.
//!
//! 5. **measured stages** (`measure`): forward parity, training from the same start,
//!    one ablation per finding (and all together), the Shapley attribution of the gap over
//!    the findings' switches and the noise floor, in the reference engine; each finding
//!    gets its measured `impact` (Shapley share and aligned-alone figure) and findings are
//!    ranked by the Shapley share ([`report::rank_findings`]).
//!
//! The ids the analysis cannot decide from two bundles are in [`catalogue::UNDECIDABLE`].
//!
//! Findings are keyed by [`catalogue::Id`]; the catalogue itself (numbers, names, titles) is
//! the `catalogue` crate. Report values carry the kebab-case name.

mod align;
mod findings;
mod graph;
mod inputs;
mod layers;
mod measure;
mod stats;
#[cfg(test)]
mod testkit;
mod training;
mod weights;

use anyhow::bail;
use model_import::Bundle;
use model_ir::{Framework, Model, TrainingConfig};
use report::{
    Alignment, Diagnosis, LayerPair, ModelSummary, NotChecked, ParamPair, Settings, Severity,
};

pub use report;

/// What to run: the settings of the measured stages (`None` = 200 steps, 5 seeds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Training steps per run (the training and ablation stages).
    pub steps: Option<usize>,
    /// Seeds for the noise floor.
    pub seeds: Option<usize>,
}

fn optimizer_text(t: &TrainingConfig) -> Option<String> {
    let spec = t.optimizer.as_ref()?;
    Some(match t.framework {
        Framework::Keras => optim::keras::Config::from_spec(spec)
            .map(|c| optim::equiv::render_keras(&c))
            .unwrap_or_else(|_| spec.class_name.clone()),
        Framework::Torch => optim::torch::Config::from_spec(spec)
            .map(|c| optim::equiv::render_torch(&c))
            .unwrap_or_else(|_| spec.class_name.clone()),
    })
}

fn loss_text(t: &TrainingConfig) -> Option<String> {
    let l = t.loss.as_ref()?;
    let args: Vec<String> = l
        .config
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| {
            !v.is_null()
                && !matches!(
                    (k.as_str(), v.to_string().as_str()),
                    ("name" | "dtype", _)
                        | ("reduction", "\"mean\"")
                        | ("reduction", "\"sum_over_batch_size\"")
                        | ("ignore_index", "-100")
                        | ("label_smoothing", "0.0" | "0")
                        | ("from_logits", "false")
                        | ("axis", "-1")
                )
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Some(if args.is_empty() {
        l.class_name.clone()
    } else {
        format!("{}({})", l.class_name, args.join(", "))
    })
}

fn summary(b: &Bundle) -> ModelSummary {
    let m = &b.model;
    let inputs = b.inputs.as_ref().map(|f| {
        f.tensors
            .iter()
            .map(|(k, t)| {
                let s: Vec<String> = t.shape().iter().map(usize::to_string).collect();
                format!("{k} [{}] {}", s.join(","), t.dtype())
            })
            .collect::<Vec<_>>()
            .join(", ")
    });
    ModelSummary {
        framework: m.framework.name().into(),
        source: b.dir.display().to_string(),
        name: m.name.clone(),
        producer: m.producer.clone(),
        layers: m.nodes.len(),
        trainable: m.trainable_count(),
        optimizer: m.training.as_ref().and_then(optimizer_text),
        loss: m.training.as_ref().and_then(loss_text),
        inputs,
    }
}

fn verdict(findings: &[report::Finding]) -> String {
    let serious: Vec<&report::Finding> = findings
        .iter()
        .filter(|f| f.severity < Severity::Info)
        .collect();
    let infos = findings.len() - serious.len();
    let notes = if infos == 0 {
        String::new()
    } else {
        format!(
            "; {infos} informational note{} besides",
            if infos == 1 { "" } else { "s" }
        )
    };
    let Some(top) = serious.first() else {
        let notes = if infos == 0 {
            String::new()
        } else {
            format!(
                " ({infos} informational note{})",
                if infos == 1 { "" } else { "s" }
            )
        };
        return format!(
            "No difference that changes training or inference was found{notes}; the port looks faithful as far as the bundles show."
        );
    };
    let count = |s: Severity| serious.iter().filter(|f| f.severity == s).count();
    let mut parts = Vec::new();
    for s in [Severity::High, Severity::Medium, Severity::Low] {
        let n = count(s);
        if n > 0 {
            parts.push(format!("{n} {s}"));
        }
    }
    format!(
        "The port differs from the Keras model in {} way{} ({}{notes}); the most serious is `{}`: {}.",
        serious.len(),
        if serious.len() == 1 { "" } else { "s" },
        parts.join(", "),
        top.id,
        top.title
    )
}

/// Fills each finding's measured impact (or says in its evidence why there is none). When
/// the whole training gap lies inside the noise floor, the measured findings above `low` are
/// lowered to `low`, with a note in their evidence.
fn apply_impacts(findings: &mut [report::Finding], m: &measure::Measured) {
    let noise = m.noise.as_ref().map(|n| n.floor());
    let gap = m.training.as_ref().map(|t| t.gap);
    for f in findings.iter_mut() {
        match m.impacts.get(&f.id) {
            Some(Ok(i)) => {
                if let (Some(n), Some(g)) = (noise, gap)
                    && g <= n
                    && f.severity < Severity::Low
                {
                    f.evidence.push(findings::ev(
                        "measured training gap inside the noise floor (severity lowered to low)",
                        format!("noise floor {}", report::sig(n)),
                        format!("gap {}", report::sig(g)),
                        None,
                    ));
                    f.severity = Severity::Low;
                }
                if let Some(others) = m.shared.get(&f.id) {
                    let list: Vec<String> = others.iter().map(|o| format!("`{o}`")).collect();
                    f.evidence.push(findings::ev(
                        "impact measured together with the findings the same switch aligns",
                        "-",
                        format!(
                            "{}: one simulation switch aligns them all, so they share this impact",
                            list.join(", ")
                        ),
                        None,
                    ));
                }
                f.impact = Some(i.clone());
            }
            Some(Err(why)) => {
                f.evidence
                    .push(findings::ev("impact not measured", "-", why.clone(), None))
            }
            None => {}
        }
    }
}

/// The verdict, with what the measurement says when training ran.
fn measured_verdict(findings: &[report::Finding], m: &measure::Measured) -> String {
    let base = verdict(findings);
    let (Some(t), Some(n)) = (&m.training, &m.noise) else {
        return base;
    };
    let noise = n.floor();
    // Findings above `info` whose impact could not be measured (no simulation switch).
    let unmeasured: Vec<String> = findings
        .iter()
        .filter(|f| f.impact.is_none() && f.severity < Severity::Info)
        .map(|f| format!("`{}`", f.id))
        .collect();
    let mut s = if t.gap <= noise {
        format!(
            "{base} Measured: the training gap ({}) is inside the noise floor ({}), i.e. noise.",
            report::sig(t.gap),
            report::sig(noise)
        )
    } else {
        let top = findings
            .iter()
            .find(|f| f.impact.as_ref().is_some_and(|i| i.share > 0.0));
        match top {
            Some(f) => format!(
                "{base} Measured: `{}` explains the most of the training gap (Shapley share {:.0} % of {}).",
                f.id,
                f.impact.as_ref().map_or(0.0, |i| i.share * 100.0),
                report::sig(t.gap)
            ),
            None if unmeasured.is_empty() => format!(
                "{base} Measured: a training gap of {} to which no finding contributes a positive Shapley share.",
                report::sig(t.gap)
            ),
            None => format!(
                "{base} Measured: a training gap of {} to which no measured finding contributes a positive Shapley share; {} cannot be aligned in the simulation, so the gap may be {}.",
                report::sig(t.gap),
                unmeasured.join(", "),
                if unmeasured.len() == 1 {
                    "its"
                } else {
                    "theirs"
                }
            ),
        }
    };
    if let Some(u) = t.unexplained {
        let aligned = if unmeasured.is_empty() {
            "every finding aligned".to_string()
        } else {
            format!(
                "every finding the simulation can align aligned (not {})",
                unmeasured.join(", ")
            )
        };
        s.push_str(&format!(
            " Something unexplained remains: {} of the gap is left with {aligned} (noise floor {}).",
            report::sig(u),
            report::sig(noise)
        ));
    }
    s
}

fn check_sides(keras: &Model, torch: &Model) -> anyhow::Result<()> {
    if keras.framework != Framework::Keras {
        bail!(
            "the first bundle must be the Keras side, but it holds a {} model",
            keras.framework
        );
    }
    if torch.framework != Framework::Torch {
        bail!(
            "the second bundle must be the PyTorch side, but it holds a {} model",
            torch.framework
        );
    }
    Ok(())
}

/// Compares a Keras bundle with the bundle of its PyTorch port.
///
/// Errors only on unusable input (the sides swapped); everything the analysis cannot decide
/// is listed in [`Diagnosis::not_checked`].
pub fn diagnose(keras: &Bundle, torch: &Bundle, opts: &Options) -> anyhow::Result<Diagnosis> {
    diagnose_with_progress(keras, torch, opts, &|_| {})
}

/// [`diagnose`], telling `progress` the name of each measured stage as it starts (forward
/// parity, training, ablations, noise floor).
pub fn diagnose_with_progress(
    keras: &Bundle,
    torch: &Bundle,
    opts: &Options,
    progress: &dyn Fn(&str),
) -> anyhow::Result<Diagnosis> {
    check_sides(&keras.model, &torch.model)?;
    let mut out = findings::Findings::default();
    let mut not_checked = Vec::new();

    let kshapes = graph::infer_shapes(&keras.model);
    let tshapes = graph::infer_shapes(&torch.model);
    let aligned = align::align(&keras.model, &torch.model);
    let w = weights::check(&keras.model, &torch.model, &aligned, &kshapes, &mut out);
    let ctx = layers::Ctx {
        keras: &keras.model,
        torch: &torch.model,
        kshapes: &kshapes,
        tshapes: &tshapes,
    };
    layers::check(&ctx, &aligned, &mut out);
    training::check(keras, torch, &aligned, &mut out, &mut not_checked);
    inputs::check(keras, torch, &mut out, &mut not_checked);

    let alignment = Alignment {
        pairs: aligned
            .pairs
            .iter()
            .zip(&w.layers)
            .map(|(p, (weights, maps))| LayerPair {
                keras: p.keras.name.clone(),
                torch: p.torch_name(),
                kind: p.keras.op.kind().into(),
                params: p
                    .params
                    .iter()
                    .zip(maps)
                    .map(|(m, map)| ParamPair {
                        keras: m.keras.name.clone(),
                        torch: m
                            .torch
                            .iter()
                            .map(|q| q.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        mapping: map.clone(),
                    })
                    .collect(),
                weights: weights.clone(),
            })
            .collect(),
        keras_only: aligned.keras_only.iter().map(|n| n.name.clone()).collect(),
        torch_only: aligned.torch_only.iter().map(|n| n.name.clone()).collect(),
    };

    for (id, why) in catalogue::UNDECIDABLE {
        not_checked.push(NotChecked {
            what: id.name().into(),
            reason: why.into(),
        });
    }

    let mut findings = out.into_findings();
    let steps = opts.steps.unwrap_or(measure::DEFAULT_STEPS);
    let seeds = opts.seeds.unwrap_or(measure::DEFAULT_SEEDS);
    let m = measure::measure(
        keras, torch, &aligned, &w, &findings, steps, seeds, progress,
    );
    apply_impacts(&mut findings, &m);
    not_checked.splice(0..0, m.not_checked.iter().cloned());
    report::rank_findings(&mut findings);
    Ok(Diagnosis {
        verdict: measured_verdict(&findings, &m),
        keras: summary(keras),
        torch: summary(torch),
        alignment,
        findings,
        forward: m.forward,
        training: m.training,
        noise_floor: m.noise,
        not_checked,
        settings: Settings {
            steps: opts.steps,
            seeds: opts.seeds,
        },
    })
}
