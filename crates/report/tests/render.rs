//! Rendering tests: a hand-built diagnosis with every section, snapshotted as terminal and
//! Markdown text, plus structural checks on the HTML and JSON.

use report::{
    Ablation, Alignment, Attribution, Curve, Diagnosis, Evidence, Finding, Fix, ForwardReport,
    Impact, LayerError, LayerPair, ModelSummary, NoiseFloor, NotChecked, ParamPair, Settings,
    Severity, TrainingReport, WIDTH, rank_findings, render_html, render_json, render_markdown,
    render_terminal,
};

fn summary(framework: &str, name: &str) -> ModelSummary {
    ModelSummary {
        framework: framework.into(),
        source: format!("models/example/{framework}"),
        name: name.into(),
        producer: Some(format!("{framework} 1.0")),
        layers: 3,
        trainable: 9610,
        optimizer: Some("Adam(lr=0.001)".into()),
        loss: Some("cross-entropy".into()),
        inputs: Some("x [256,64] f32".into()),
    }
}

fn finding(id: &str, severity: Severity, share: Option<f64>) -> Finding {
    Finding {
        id: id.into(),
        title: format!("title of {id}"),
        severity,
        impact: share.map(|s| Impact {
            share: s,
            gap_closed: s * 0.6604,
            sampling_error: None,
            alone_share: (s * 1.1).min(1.0),
            alone_closed: (s * 1.1).min(1.0) * 0.6604,
            gap_total: 0.6604,
            metric: "mean |Δ training loss| over the run".into(),
        }),
        evidence: vec![Evidence {
            what: "a value that differs between the two sides and needs a long explanation to make the line wrap".into(),
            keras: "0.123456789".into(),
            torch: "0.987654321".into(),
            layer: Some("dense ↔ fc1".into()),
        }],
        fix: Fix {
            torch: "torch.optim.Adam(params, lr=0.001, eps=1e-07)  # and a long comment that goes on and on past the width of one terminal line".into(),
            keras: "keras.optimizers.Adam(learning_rate=0.001)".into(),
        },
    }
}

fn sample() -> Diagnosis {
    let mut findings = vec![
        finding("adam-epsilon-hat", Severity::Low, Some(0.012)),
        finding("dense-init", Severity::Medium, None),
        finding("double-softmax", Severity::High, Some(0.7312)),
        finding("bn-running-var-bias", Severity::Info, None),
    ];
    rank_findings(&mut findings);
    let curve =
        |a: f64, b: f64| -> Vec<f64> { (0..20).map(|i| a + b / (1.0 + f64::from(i))).collect() };
    Diagnosis {
        verdict: "The port differs in 4 ways; the most serious is double-softmax.".into(),
        keras: summary("keras", "sequential"),
        torch: summary("torch", "main_graph"),
        alignment: Alignment {
            pairs: vec![LayerPair {
                keras: "dense".into(),
                torch: "fc1".into(),
                kind: "dense".into(),
                params: vec![ParamPair {
                    keras: "dense/kernel".into(),
                    torch: "fc1.weight".into(),
                    mapping: "permute [1, 0]".into(),
                }],
                weights: "independent".into(),
            }],
            keras_only: vec![],
            torch_only: vec!["extra".into()],
        },
        findings,
        forward: Some(ForwardReport {
            mode: "inference".into(),
            layers: vec![
                LayerError {
                    keras: "dense".into(),
                    torch: "fc1".into(),
                    max_abs: 1.2345e-7,
                    rel: 2.0e-7,
                    cosine: 1.0,
                    isolated_max_abs: Some(1.1e-7),
                },
                LayerError {
                    keras: "dense_1".into(),
                    torch: "fc2".into(),
                    max_abs: 0.4321,
                    rel: 0.5,
                    cosine: 0.81234,
                    isolated_max_abs: Some(0.4),
                },
            ],
            first_divergence: Some("dense_1 / fc2".into()),
            first_divergence_isolated: Some("dense_1 / fc2".into()),
            threshold: 1e-4,
        }),
        training: Some(TrainingReport {
            steps: 20,
            seeds: 5,
            metric: "training loss".into(),
            keras: Curve {
                label: "keras".into(),
                values: curve(1.0, 1.5),
            },
            torch: Curve {
                label: "torch".into(),
                values: curve(2.0, 0.3),
            },
            gap: 0.6604,
            ablations: vec![Ablation {
                label: "torch + double-softmax aligned".into(),
                ids: vec!["double-softmax".into()],
                curve: curve(1.1, 1.4),
                gap: 0.1775,
                closed: 0.7312,
            }],
            all_aligned: Some(Ablation {
                label: "torch, everything aligned".into(),
                ids: vec!["double-softmax".into(), "adam-epsilon-hat".into()],
                curve: curve(1.0, 1.5),
                gap: 0.004,
                closed: 0.994,
            }),
            unexplained: None,
            attribution: Some(Attribution {
                players: 2,
                orders: 0,
                explained: 0.6564,
                rest: 0.004,
                runs: 1,
                metric: "mean |Δ training loss| over the run".into(),
            }),
        }),
        noise_floor: Some(NoiseFloor {
            seeds: 5,
            metric: "final training loss".into(),
            keras: 0.0123,
            torch: 0.0151,
            sources: "the sample order, the initialisation (each initial tensor redrawn)".into(),
            numerical: 0.000412,
        }),
        not_checked: vec![NotChecked {
            what: "tf32-defaults".into(),
            reason: "GPU-only behaviour; the bundles do not say which device trained".into(),
        }],
        settings: Settings {
            steps: Some(20),
            seeds: Some(5),
        },
    }
}

#[test]
fn findings_rank_by_impact_then_severity() {
    let d = sample();
    let ids: Vec<&str> = d.findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "double-softmax",
            "adam-epsilon-hat",
            "dense-init",
            "bn-running-var-bias"
        ]
    );
}

#[test]
fn terminal_summary() {
    let text = render_terminal(&sample());
    for l in text.lines() {
        assert!(l.chars().count() <= WIDTH, "line too long: {l}");
    }
    assert!(text.starts_with("Verdict: "));
    insta::assert_snapshot!("terminal", text);
}

#[test]
fn markdown_report() {
    insta::assert_snapshot!("markdown", render_markdown(&sample()));
}

#[test]
fn html_report() {
    insta::assert_snapshot!("html", render_html(&sample()));
}

#[test]
fn html_is_self_contained() {
    let html = render_html(&sample());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"));
    assert!(!html.contains(" src="));
    assert!(!html.contains("href=\"http"));
    // Curves of both sides and of each ablation, per-layer error bars, fixes.
    assert!(html.contains("<polyline"));
    assert_eq!(html.matches("<polyline").count(), 4);
    assert!(html.contains("Per-layer max-abs output error"));
    assert!(html.contains("Fix, PyTorch side"));
    // Both figures of each measured finding, and the one sentence saying what they mean.
    assert!(html.contains("Shapley value"));
    assert!(html.contains("alone it closes"));
    assert_eq!(
        html.matches("Share: a finding&#39;s Shapley value").count(),
        1
    );
    assert!(html.contains("torch.optim.Adam(params, lr=0.001, eps=1e-07)"));
    // Escaping.
    let mut d = sample();
    d.findings[0].title = "<b>&".into();
    assert!(render_html(&d).contains("&lt;b&gt;&amp;"));
}

#[test]
fn json_has_the_documented_shape() {
    let v: serde_json::Value = serde_json::from_str(&render_json(&sample())).expect("valid JSON");
    for k in ["findings", "forward", "training", "noise_floor", "verdict"] {
        assert!(v.get(k).is_some(), "missing `{k}`");
    }
    let f = &v["findings"][0];
    for k in ["id", "title", "severity", "impact", "evidence", "fix"] {
        assert!(f.get(k).is_some(), "finding lacks `{k}`");
    }
    assert_eq!(f["severity"], "high");
    assert!(f["fix"]["torch"].is_string() && f["fix"]["keras"].is_string());
    assert!(f["impact"]["share"].is_number());
    assert!(f["impact"]["alone_share"].is_number());
    assert!(f["impact"]["sampling_error"].is_null());
    assert!(v["training"]["attribution"]["explained"].is_number());
    assert_eq!(v["findings"][2]["impact"], serde_json::Value::Null);
}

#[test]
fn empty_diagnosis_renders() {
    let mut d = sample();
    d.findings.clear();
    d.forward = None;
    d.training = None;
    d.noise_floor = None;
    d.not_checked.clear();
    d.settings = Settings::default();
    assert!(render_terminal(&d).contains("Findings: none."));
    assert!(render_markdown(&d).contains("## Findings\n\nNone."));
    assert!(!render_html(&d).contains("<polyline"));
}
