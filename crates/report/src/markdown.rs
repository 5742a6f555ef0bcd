//! The Markdown report: the terminal summary's content plus the layer alignment, the
//! per-layer forward table and the ablation table when they were measured.

use std::fmt::Write as _;

use crate::fmt::{impact_detail, md_cell, percent, sig};
use crate::model::{Diagnosis, Finding, ModelSummary};

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(md_cell).unwrap_or_else(|| "—".into())
}

fn models(o: &mut String, k: &ModelSummary, t: &ModelSummary) {
    o.push_str("| | Keras | PyTorch |\n|---|---|---|\n");
    let rows: [(&str, String, String); 7] = [
        (
            "bundle",
            format!("`{}`", k.source),
            format!("`{}`", t.source),
        ),
        (
            "model",
            format!("`{}` ({})", k.name, opt(&k.producer)),
            format!("`{}` ({})", t.name, opt(&t.producer)),
        ),
        ("layers", k.layers.to_string(), t.layers.to_string()),
        (
            "trainable scalars",
            k.trainable.to_string(),
            t.trainable.to_string(),
        ),
        ("optimizer", opt(&k.optimizer), opt(&t.optimizer)),
        ("loss", opt(&k.loss), opt(&t.loss)),
        ("inputs", opt(&k.inputs), opt(&t.inputs)),
    ];
    for (what, a, b) in rows {
        let _ = writeln!(o, "| {what} | {a} | {b} |");
    }
}

fn code_block(o: &mut String, lang: &str, code: &str) {
    let _ = writeln!(o, "```{lang}\n{code}\n```");
}

fn finding(o: &mut String, rank: usize, f: &Finding) {
    let _ = writeln!(
        o,
        "### {rank}. `{}`: {} ({})\n",
        f.id,
        md_cell(&f.title),
        f.severity
    );
    match &f.impact {
        Some(i) => {
            let _ = writeln!(
                o,
                "Impact: share **{}** of the gap ({}).\n",
                percent(i.share),
                impact_detail(i)
            );
        }
        None => o.push_str("Impact: not measured.\n\n"),
    }
    if !f.evidence.is_empty() {
        o.push_str("| evidence | layer | Keras | PyTorch |\n|---|---|---|---|\n");
        for e in &f.evidence {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                md_cell(&e.what),
                e.layer.as_deref().map(md_cell).unwrap_or_default(),
                md_cell(&e.keras),
                md_cell(&e.torch)
            );
        }
        o.push('\n');
    }
    o.push_str("Fix, PyTorch side:\n\n");
    code_block(o, "python", &f.fix.torch);
    o.push_str("\nFix, Keras side:\n\n");
    code_block(o, "python", &f.fix.keras);
    o.push('\n');
}

/// The Markdown report of a diagnosis.
pub fn render_markdown(d: &Diagnosis) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# parallax: `{}` vs `{}`\n\n**Verdict.** {}\n",
        d.keras.source, d.torch.source, d.verdict
    );
    o.push_str("## Models\n\n");
    models(&mut o, &d.keras, &d.torch);
    o.push('\n');

    o.push_str("## Findings\n\n");
    if d.findings.is_empty() {
        o.push_str("None.\n\n");
    } else {
        let measured = d.findings.iter().any(|f| f.impact.is_some());
        o.push_str(if measured {
            "Ranked by measured impact (Shapley share of the gap, defined under Training), then severity.\n\n"
        } else {
            "Ranked by severity; impact is not measured in this report.\n\n"
        });
        o.push_str("| # | id | severity | share | alone | title |\n|---|---|---|---|---|---|\n");
        for (i, f) in d.findings.iter().enumerate() {
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {} | {} | {} |",
                i + 1,
                f.id,
                f.severity,
                f.impact
                    .as_ref()
                    .map(|i| percent(i.share))
                    .unwrap_or_else(|| "—".into()),
                f.impact
                    .as_ref()
                    .map(|i| percent(i.alone_share))
                    .unwrap_or_else(|| "—".into()),
                md_cell(&f.title)
            );
        }
        o.push('\n');
        for (i, f) in d.findings.iter().enumerate() {
            finding(&mut o, i + 1, f);
        }
    }

    if let Some(fw) = &d.forward {
        let _ = writeln!(
            o,
            "## Forward parity ({})\n\nSame weights, same inputs. First layer above {} max-abs error: **{}** with errors carried forward, **{}** with each layer fed the reference input (isolated).\n",
            fw.mode,
            sig(fw.threshold),
            fw.first_divergence.as_deref().unwrap_or("none"),
            fw.first_divergence_isolated.as_deref().unwrap_or("none"),
        );
        o.push_str("| Keras layer | PyTorch layer | max abs | relative | cosine | isolated max abs |\n|---|---|---|---|---|---|\n");
        for l in &fw.layers {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                md_cell(&l.keras),
                md_cell(&l.torch),
                sig(l.max_abs),
                sig(l.rel),
                sig(l.cosine),
                l.isolated_max_abs.map(sig).unwrap_or_else(|| "—".into())
            );
        }
        o.push('\n');
    }

    if let Some(t) = &d.training {
        let _ = writeln!(
            o,
            "## Training ({} steps, {} seed{})\n\nGap ({}): **{}**.",
            t.steps,
            t.seeds,
            if t.seeds == 1 { "" } else { "s" },
            t.metric,
            sig(t.gap)
        );
        if let Some(u) = t.unexplained {
            let _ = writeln!(
                o,
                "\n**Something unexplained remains:** with every finding aligned, {} of the gap is left, beyond the noise floor.",
                sig(u)
            );
        }
        if let Some(a) = &t.attribution {
            let _ = writeln!(o, "\n{}", a.explain());
        }
        o.push('\n');
        let last = |v: &[f64]| v.last().copied().map(sig).unwrap_or_else(|| "—".into());
        let _ = writeln!(
            o,
            "Final {}: Keras {}, PyTorch {}.\n",
            t.metric,
            last(&t.keras.values),
            last(&t.torch.values)
        );
        if !t.ablations.is_empty() || t.all_aligned.is_some() {
            o.push_str("### Ablation\n\n| aligned | findings | gap left | share closed |\n|---|---|---|---|\n");
            for a in t.ablations.iter().chain(t.all_aligned.iter()) {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    md_cell(&a.label),
                    a.ids
                        .iter()
                        .map(|i| format!("`{i}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    sig(a.gap),
                    percent(a.closed)
                );
            }
            o.push('\n');
        }
    }

    if let Some(n) = &d.noise_floor {
        let _ = writeln!(
            o,
            "## Noise floor\n\nSpread of each side against itself over {} seeds varying {} ({}): Keras {}, PyTorch {}. Float32 round-off floor: {}.\n",
            n.seeds,
            n.sources,
            n.metric,
            sig(n.keras),
            sig(n.torch),
            sig(n.numerical)
        );
    }

    o.push_str("## Layer alignment\n\n");
    let a = &d.alignment;
    if a.pairs.is_empty() {
        o.push_str("No layer with parameters could be paired.\n\n");
    } else {
        o.push_str("| Keras layer | PyTorch layer | kind | initial weights | parameters (Keras → PyTorch: mapping) |\n|---|---|---|---|---|\n");
        for p in &a.pairs {
            let params: Vec<String> = p
                .params
                .iter()
                .map(|q| format!("`{}` → `{}`: {}", q.keras, q.torch, q.mapping))
                .collect();
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                md_cell(&p.keras),
                md_cell(&p.torch),
                p.kind,
                md_cell(&p.weights),
                md_cell(&params.join("<br>"))
            );
        }
        o.push('\n');
    }
    if !a.keras_only.is_empty() {
        let _ = writeln!(o, "Only in Keras: {}.\n", a.keras_only.join(", "));
    }
    if !a.torch_only.is_empty() {
        let _ = writeln!(o, "Only in PyTorch: {}.\n", a.torch_only.join(", "));
    }

    if !d.not_checked.is_empty() {
        o.push_str("## Not checked\n\n| what | why |\n|---|---|\n");
        for n in &d.not_checked {
            let _ = writeln!(o, "| {} | {} |", md_cell(&n.what), md_cell(&n.reason));
        }
        o.push('\n');
    }
    let s = &d.settings;
    if s.steps.is_some() || s.seeds.is_some() {
        let show = |v: Option<usize>| v.map(|v| v.to_string()).unwrap_or_else(|| "default".into());
        let _ = writeln!(
            o,
            "Requested: {} training steps, {} seeds.\n",
            show(s.steps),
            show(s.seeds)
        );
    }
    while o.ends_with("\n\n") {
        o.pop();
    }
    o
}
