//! The terminal summary: the verdict in one sentence, then the ranked findings with their
//! fixes. Plain text (no colour), every line at most [`WIDTH`] characters.

use std::fmt::Write as _;

use crate::fmt::{impact_detail, percent, sig, wrap};
use crate::model::{Diagnosis, Finding, ModelSummary};

/// Maximum line width of the terminal summary.
pub const WIDTH: usize = 100;

struct Out {
    s: String,
}

impl Out {
    /// Writes `text` wrapped to [`WIDTH`], the first line after `first`, the rest indented
    /// by `indent` spaces.
    fn para(&mut self, first: &str, indent: usize, text: &str) {
        let first_w = WIDTH.saturating_sub(first.chars().count()).max(20);
        let rest_w = WIDTH.saturating_sub(indent).max(20);
        let mut rest = Vec::new();
        let mut head = String::new();
        for (i, p) in text.split('\n').enumerate() {
            if i == 0 {
                let mut it = wrap(p, first_w).into_iter();
                head = it.next().unwrap_or_default();
                let tail: Vec<String> = it.collect();
                if !tail.is_empty() {
                    rest.extend(wrap(&tail.join(" "), rest_w));
                }
            } else {
                rest.extend(wrap(p, rest_w));
            }
        }
        let _ = writeln!(self.s, "{first}{head}");
        for l in rest.into_iter().filter(|l| !l.is_empty()) {
            let _ = writeln!(self.s, "{:indent$}{l}", "");
        }
    }

    fn blank(&mut self) {
        self.s.push('\n');
    }
}

fn side(out: &mut Out, m: &ModelSummary) {
    let label = format!("  {:<6} ", m.framework);
    let producer = m
        .producer
        .as_deref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let mut text = format!(
        "{}: `{}`{producer}, {} layers, {} trainable scalars.",
        m.source, m.name, m.layers, m.trainable
    );
    if let Some(o) = &m.optimizer {
        let _ = write!(text, " Optimizer {o}.");
    }
    if let Some(l) = &m.loss {
        let _ = write!(text, " Loss {l}.");
    }
    if let Some(i) = &m.inputs {
        let _ = write!(text, " Inputs {i}.");
    }
    out.para(&label, label.len(), &text);
}

fn finding(out: &mut Out, rank: usize, f: &Finding) {
    let head = format!("{rank:>3}. ");
    out.para(
        &head,
        head.len(),
        &format!("[{}] {}: {}", f.severity, f.id, f.title),
    );
    let ind = head.len();
    let pad = " ".repeat(ind);
    if let Some(i) = &f.impact {
        out.para(
            &format!("{pad}impact: "),
            ind + 4,
            &format!(
                "share {} of the gap ({})",
                percent(i.share),
                impact_detail(i)
            ),
        );
    }
    for e in &f.evidence {
        let layer = e
            .layer
            .as_deref()
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default();
        out.para(
            &format!("{pad}- "),
            ind + 4,
            &format!("{}{layer}: keras {}; torch {}", e.what, e.keras, e.torch),
        );
    }
    out.para(&format!("{pad}fix (torch): "), ind + 4, &f.fix.torch);
    out.para(&format!("{pad}fix (keras): "), ind + 4, &f.fix.keras);
}

/// The terminal summary of a diagnosis.
pub fn render_terminal(d: &Diagnosis) -> String {
    let mut out = Out { s: String::new() };
    out.para("", 0, &format!("Verdict: {}", d.verdict));
    out.blank();
    out.s.push_str("Models\n");
    side(&mut out, &d.keras);
    side(&mut out, &d.torch);
    let a = &d.alignment;
    let unmatched = a.keras_only.len() + a.torch_only.len();
    let mut text = format!(
        "{} layer pair{} with parameters",
        a.pairs.len(),
        if a.pairs.len() == 1 { "" } else { "s" }
    );
    if unmatched == 0 {
        text.push_str("; every layer with parameters has a counterpart.");
    } else {
        if !a.keras_only.is_empty() {
            let _ = write!(text, "; only in keras: {}", a.keras_only.join(", "));
        }
        if !a.torch_only.is_empty() {
            let _ = write!(text, "; only in torch: {}", a.torch_only.join(", "));
        }
        text.push('.');
    }
    out.para("  aligned ", 9, &text);
    out.blank();
    if d.findings.is_empty() {
        out.s.push_str("Findings: none.\n");
    } else {
        let measured = d.findings.iter().any(|f| f.impact.is_some());
        out.s.push_str(if measured {
            "Findings, ranked by measured impact\n"
        } else {
            "Findings, ranked by severity (impact not measured)\n"
        });
        for (i, f) in d.findings.iter().enumerate() {
            finding(&mut out, i + 1, f);
        }
    }
    if let Some(fw) = &d.forward {
        out.blank();
        let first = fw.first_divergence.as_deref().unwrap_or("none");
        let iso = fw.first_divergence_isolated.as_deref().unwrap_or("none");
        out.para(
            "",
            2,
            &format!(
                "Forward parity ({}, {} aligned outputs): first layer above {} max-abs error: {first} (carried forward), {iso} (isolated).",
                fw.mode,
                fw.layers.len(),
                sig(fw.threshold)
            ),
        );
    }
    if let Some(t) = &d.training {
        out.blank();
        let mut text = format!(
            "Training ({} steps, {} seed{}): {} gap {}.",
            t.steps,
            t.seeds,
            if t.seeds == 1 { "" } else { "s" },
            t.metric,
            sig(t.gap)
        );
        if let Some(all) = &t.all_aligned {
            let _ = write!(
                text,
                " Aligning every finding closes {} of it.",
                percent(all.closed)
            );
        }
        if let Some(u) = t.unexplained {
            let _ = write!(
                text,
                " Something unexplained remains: {} beyond the noise floor.",
                sig(u)
            );
        }
        if let Some(a) = &t.attribution {
            let _ = write!(text, " {}", a.explain());
        }
        out.para("", 2, &text);
    }
    if let Some(n) = &d.noise_floor {
        out.para(
            "",
            2,
            &format!(
                "Noise floor ({} seeds varying {}; {}): keras {}, torch {}; float32 round-off {}.",
                n.seeds,
                n.sources,
                n.metric,
                sig(n.keras),
                sig(n.torch),
                sig(n.numerical)
            ),
        );
    }
    if !d.not_checked.is_empty() {
        out.blank();
        let whats: Vec<&str> = d.not_checked.iter().map(|n| n.what.as_str()).collect();
        out.para(
            "Not checked: ",
            2,
            &format!("{} (reasons in report.md).", whats.join(", ")),
        );
    }
    out.s
}
