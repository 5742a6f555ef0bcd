//! The HTML report: one self-contained page (inline CSS, inline SVG, no scripts, no network)
//! with the verdict, the ranked findings and their fixes, the loss curves of both sides and of
//! each ablation, and per-layer error bars when they were measured.

use std::fmt::Write as _;

use crate::fmt::{html_escape as esc, impact_detail, percent, sig};
use crate::model::{Diagnosis, Finding, ForwardReport, NoiseFloor, Severity, TrainingReport};
use crate::svg::{Bar, Series, bar_chart, line_chart};

const CSS: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:980px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
h3{font-size:1.05em;margin:1.4em 0 .4em}
.verdict{font-size:1.1em;background:#f4f6fa;border-left:4px solid #1f4e9c;padding:.6em 1em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f6f6f6}code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f7f7f7;border:1px solid #e2e2e2;padding:.5em .7em;white-space:pre-wrap;margin:.3em 0}
.sev{display:inline-block;padding:0 .45em;border-radius:3px;color:#fff;font-size:.85em;font-weight:600}
.high{background:#b03a2e}.medium{background:#b9770e}.low{background:#1f618d}.info{background:#7f8c8d}
.finding{border:1px solid #e4e4e4;border-radius:4px;padding:.2em 1em .8em;margin:1em 0}
.fix{display:grid;grid-template-columns:1fr 1fr;gap:1em}.muted{color:#666}
svg{max-width:100%;height:auto;display:block;margin:.6em 0}
svg .ct{font:600 13px sans-serif}svg .ax{font:11px sans-serif;fill:#444}svg .lg{font:12px sans-serif;fill:#222}
";

fn sev(s: Severity) -> String {
    format!(r#"<span class="sev {0}">{0}</span>"#, s.name())
}

fn finding(o: &mut String, rank: usize, f: &Finding) {
    let _ = write!(
        o,
        r#"<div class="finding" id="f-{id}"><h3>{rank}. <code>{id}</code> {title} {sev}</h3>"#,
        id = esc(&f.id),
        title = esc(&f.title),
        sev = sev(f.severity)
    );
    match &f.impact {
        Some(i) => {
            let _ = write!(
                o,
                "<p>Impact: share <b>{}</b> of the gap ({}).</p>",
                percent(i.share),
                esc(&impact_detail(i))
            );
        }
        None => o.push_str(r#"<p class="muted">Impact: not measured.</p>"#),
    }
    if !f.evidence.is_empty() {
        o.push_str("<table><tr><th>evidence</th><th>layer</th><th>Keras</th><th>PyTorch</th></tr>");
        for e in &f.evidence {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.what),
                esc(e.layer.as_deref().unwrap_or("")),
                esc(&e.keras),
                esc(&e.torch)
            );
        }
        o.push_str("</table>");
    }
    let _ = write!(
        o,
        r#"<div class="fix"><div><b>Fix, PyTorch side</b><pre><code>{}</code></pre></div><div><b>Fix, Keras side</b><pre><code>{}</code></pre></div></div></div>"#,
        esc(&f.fix.torch),
        esc(&f.fix.keras)
    );
}

/// The self-contained HTML page of a diagnosis.
pub fn render_html(d: &Diagnosis) -> String {
    let mut o = String::new();
    let title = format!("parallax: {} vs {}", d.keras.source, d.torch.source);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    let _ = write!(
        o,
        r#"<h1>{}</h1><p class="verdict">{}</p>"#,
        esc(&title),
        esc(&d.verdict)
    );

    models(&mut o, d);
    findings(&mut o, d);
    if let Some(fw) = &d.forward {
        forward(&mut o, fw);
    }
    if let Some(t) = &d.training {
        training(&mut o, t);
    }
    if let Some(n) = &d.noise_floor {
        noise_floor(&mut o, n);
    }
    alignment(&mut o, d);
    not_checked(&mut o, d);
    o.push_str("</body></html>\n");
    o
}

/// The two models side by side.
fn models(o: &mut String, d: &Diagnosis) {
    o.push_str("<h2>Models</h2><table><tr><th></th><th>Keras</th><th>PyTorch</th></tr>");
    let (k, t) = (&d.keras, &d.torch);
    let none = || "—".to_string();
    let rows = [
        ("bundle", k.source.clone(), t.source.clone()),
        ("model", k.name.clone(), t.name.clone()),
        (
            "producer",
            k.producer.clone().unwrap_or_else(none),
            t.producer.clone().unwrap_or_else(none),
        ),
        ("layers", k.layers.to_string(), t.layers.to_string()),
        (
            "trainable scalars",
            k.trainable.to_string(),
            t.trainable.to_string(),
        ),
        (
            "optimizer",
            k.optimizer.clone().unwrap_or_else(none),
            t.optimizer.clone().unwrap_or_else(none),
        ),
        (
            "loss",
            k.loss.clone().unwrap_or_else(none),
            t.loss.clone().unwrap_or_else(none),
        ),
        (
            "inputs",
            k.inputs.clone().unwrap_or_else(none),
            t.inputs.clone().unwrap_or_else(none),
        ),
    ];
    for (w, a, b) in rows {
        let _ = write!(
            o,
            "<tr><th>{w}</th><td>{}</td><td>{}</td></tr>",
            esc(&a),
            esc(&b)
        );
    }
    o.push_str("</table>");
}

/// The findings: chart of measured shares, summary table, one section each.
fn findings(o: &mut String, d: &Diagnosis) {
    o.push_str("<h2>Findings</h2>");
    if d.findings.is_empty() {
        o.push_str("<p>None.</p>");
    } else {
        let measured: Vec<&Finding> = d.findings.iter().filter(|f| f.impact.is_some()).collect();
        if measured.is_empty() {
            o.push_str(
                r#"<p class="muted">Ranked by severity; impact is not measured in this report.</p>"#,
            );
        } else {
            let bars: Vec<Bar<'_>> = measured
                .iter()
                .map(|f| Bar {
                    label: &f.id,
                    value: f.impact.as_ref().map_or(0.0, |i| i.share),
                    second: f.impact.as_ref().map(|i| i.alone_share),
                })
                .collect();
            o.push_str(&bar_chart(
                "Shapley share of the gap, and the share closed aligned alone",
                ("Shapley share (0–1)", Some("alone (0–1)")),
                &bars,
                false,
                None,
            ));
        }
        o.push_str(
            "<table><tr><th>#</th><th>id</th><th>severity</th><th>share</th><th>alone</th><th>title</th></tr>",
        );
        for (i, f) in d.findings.iter().enumerate() {
            let _ = write!(
                o,
                "<tr><td>{}</td><td><a href=\"#f-{id}\"><code>{id}</code></a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                i + 1,
                sev(f.severity),
                f.impact
                    .as_ref()
                    .map(|i| percent(i.share))
                    .unwrap_or_else(|| "—".into()),
                f.impact
                    .as_ref()
                    .map(|i| percent(i.alone_share))
                    .unwrap_or_else(|| "—".into()),
                esc(&f.title),
                id = esc(&f.id)
            );
        }
        o.push_str("</table>");
        for (i, f) in d.findings.iter().enumerate() {
            finding(o, i + 1, f);
        }
    }
}

/// Forward parity per aligned layer.
fn forward(o: &mut String, fw: &ForwardReport) {
    let _ = write!(
        o,
        "<h2>Forward parity ({})</h2><p>First layer above {} max-abs error: <b>{}</b> (errors carried forward), <b>{}</b> (isolated).</p>",
        esc(&fw.mode),
        sig(fw.threshold),
        esc(fw.first_divergence.as_deref().unwrap_or("none")),
        esc(fw.first_divergence_isolated.as_deref().unwrap_or("none"))
    );
    let labels: Vec<String> = fw
        .layers
        .iter()
        .map(|l| format!("{} / {}", l.keras, l.torch))
        .collect();
    let bars: Vec<Bar<'_>> = fw
        .layers
        .iter()
        .zip(&labels)
        .map(|(l, label)| Bar {
            label,
            value: l.max_abs,
            second: l.isolated_max_abs,
        })
        .collect();
    let isolated = fw.layers.iter().any(|l| l.isolated_max_abs.is_some());
    o.push_str(&bar_chart(
        "Per-layer max-abs output error",
        (
            "carried forward",
            if isolated { Some("isolated") } else { None },
        ),
        &bars,
        true,
        Some(fw.threshold),
    ));
    o.push_str("<table><tr><th>Keras layer</th><th>PyTorch layer</th><th>max abs</th><th>relative</th><th>cosine</th><th>isolated max abs</th></tr>");
    for l in &fw.layers {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&l.keras),
            esc(&l.torch),
            sig(l.max_abs),
            sig(l.rel),
            sig(l.cosine),
            l.isolated_max_abs.map(sig).unwrap_or_else(|| "—".into())
        );
    }
    o.push_str("</table>");
}

/// The simulated training runs and the ablations.
fn training(o: &mut String, t: &TrainingReport) {
    let _ = write!(
        o,
        "<h2>Training ({} steps, {} seed{})</h2><p>Gap ({}): <b>{}</b>.</p>",
        t.steps,
        t.seeds,
        if t.seeds == 1 { "" } else { "s" },
        esc(&t.metric),
        sig(t.gap)
    );
    if let Some(u) = t.unexplained {
        let _ = write!(
            o,
            "<p><b>Something unexplained remains:</b> {} of the gap is left with every finding aligned, beyond the noise floor.</p>",
            sig(u)
        );
    }
    if let Some(a) = &t.attribution {
        let _ = write!(o, "<p>{}</p>", esc(&a.explain()));
    }
    let mut series = vec![
        Series {
            label: &t.keras.label,
            values: &t.keras.values,
            dashed: false,
        },
        Series {
            label: &t.torch.label,
            values: &t.torch.values,
            dashed: false,
        },
    ];
    for a in t.ablations.iter().chain(t.all_aligned.iter()) {
        series.push(Series {
            label: &a.label,
            values: &a.curve,
            dashed: true,
        });
    }
    o.push_str(&line_chart("Loss curves", &t.metric, &series));
    if !t.ablations.is_empty() || t.all_aligned.is_some() {
        o.push_str("<h3>Ablation</h3><table><tr><th>aligned</th><th>findings</th><th>gap left</th><th>share closed</th></tr>");
        for a in t.ablations.iter().chain(t.all_aligned.iter()) {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.label),
                a.ids
                    .iter()
                    .map(|i| format!("<code>{}</code>", esc(i)))
                    .collect::<Vec<_>>()
                    .join(", "),
                sig(a.gap),
                percent(a.closed)
            );
        }
        o.push_str("</table>");
    }
}

/// The noise floor of the training comparison.
fn noise_floor(o: &mut String, n: &NoiseFloor) {
    let _ = write!(
        o,
        "<h2>Noise floor</h2><p>Spread of each side against itself over {} seeds varying {} ({}): Keras {}, PyTorch {}. Float32 round-off floor: {}.</p>",
        n.seeds,
        esc(&n.sources),
        esc(&n.metric),
        sig(n.keras),
        sig(n.torch),
        sig(n.numerical)
    );
}

/// Which layers were paired, and how their parameters map.
fn alignment(o: &mut String, d: &Diagnosis) {
    o.push_str("<h2>Layer alignment</h2>");
    let a = &d.alignment;
    if a.pairs.is_empty() {
        o.push_str("<p>No layer with parameters could be paired.</p>");
    } else {
        o.push_str("<table><tr><th>Keras layer</th><th>PyTorch layer</th><th>kind</th><th>initial weights</th><th>parameters (Keras → PyTorch: mapping)</th></tr>");
        for p in &a.pairs {
            let params: Vec<String> = p
                .params
                .iter()
                .map(|q| {
                    format!(
                        "<code>{}</code> → <code>{}</code>: {}",
                        esc(&q.keras),
                        esc(&q.torch),
                        esc(&q.mapping)
                    )
                })
                .collect();
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.keras),
                esc(&p.torch),
                esc(&p.kind),
                esc(&p.weights),
                params.join("<br>")
            );
        }
        o.push_str("</table>");
    }
    for (label, list) in [("Keras", &a.keras_only), ("PyTorch", &a.torch_only)] {
        if !list.is_empty() {
            let _ = write!(o, "<p>Only in {label}: {}.</p>", esc(&list.join(", ")));
        }
    }
}

/// What the analysis could not check, and why.
fn not_checked(o: &mut String, d: &Diagnosis) {
    if !d.not_checked.is_empty() {
        o.push_str("<h2>Not checked</h2><table><tr><th>what</th><th>why</th></tr>");
        for n in &d.not_checked {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&n.what),
                esc(&n.reason)
            );
        }
        o.push_str("</table>");
    }
}
