//! The diagnosis on the committed fixtures made by the real frameworks: the seed example's
//! expected findings, no weight-mapping finding on the correct ports, and insta snapshots of
//! the terminal and Markdown reports of the seed example and of every bundled case.

use std::path::{Path, PathBuf};

use diagnose::report::{Diagnosis, Severity, render_markdown, render_terminal};
use diagnose::{Options, diagnose};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("workspace root")
        .to_path_buf()
}

/// Diagnoses `<dir>/keras` against `<dir>/torch` (dir relative to the workspace root), with
/// the bundle paths shown relative to the root.
fn run(dir: &str) -> Diagnosis {
    let base = root().join(dir);
    let k = model_import::load_bundle(&base.join("keras")).expect("keras bundle");
    let t = model_import::load_bundle(&base.join("torch")).expect("torch bundle");
    let mut d = diagnose(&k, &t, &Options::default()).expect("diagnosis");
    d.keras.source = format!("{dir}/keras");
    d.torch.source = format!("{dir}/torch");
    d
}

fn ids(d: &Diagnosis) -> Vec<&str> {
    d.findings.iter().map(|f| f.id.as_str()).collect()
}

const MAPPING_IDS: [&str; 8] = [
    "dense-layout",
    "conv-layout",
    "conv-transpose-layout",
    "depthwise-separable-layout",
    "flatten-order",
    "lstm-layout",
    "gru-layout-reset-after",
    "channels-last",
];

#[test]
fn seed_mlp_names_the_planted_differences() {
    let d = run("models/seed-mlp");
    let found = ids(&d);
    assert_eq!(found.first(), Some(&"double-softmax"), "{found:?}");
    for id in ["dense-init", "adam-epsilon-hat", "std-ddof"] {
        assert!(found.contains(&id), "{id} missing from {found:?}");
    }
    // dense-init is about the biases: zeros in Keras, U(±1/√fan_in) in torch.
    let init = d
        .findings
        .iter()
        .find(|f| f.id == "dense-init")
        .expect("dense-init");
    // (Evidence without a layer is the measurement's own note.)
    let layers: Vec<_> = init.evidence.iter().filter(|e| e.layer.is_some()).collect();
    assert!(layers.iter().all(|e| e.what.starts_with("bias")));
    assert!(
        layers
            .iter()
            .all(|e| e.keras.to_lowercase().contains("zeros"))
    );
    assert!(
        init.evidence[0]
            .torch
            .contains("torch default U(±1/√fan_in)")
    );
    // std-ddof recovers the 1437 samples the statistics were computed on.
    let ddof = d
        .findings
        .iter()
        .find(|f| f.id == "std-ddof")
        .expect("std-ddof");
    assert!(
        ddof.evidence[0].what.contains("1437"),
        "{}",
        ddof.evidence[0].what
    );
    assert!(d.verdict.contains("double-softmax"));
    // Measured: double-softmax closes most of the training gap, ranked first by impact.
    let top = d.findings[0]
        .impact
        .as_ref()
        .expect("double-softmax measured");
    assert!(top.share > 0.5, "{top:?}");
    assert!(top.gap_total > 0.0 && top.gap_closed <= top.gap_total * 1.0001);
    for f in &d.findings[1..] {
        if let Some(i) = &f.impact {
            assert!(i.share <= top.share, "{}: {i:?}", f.id);
        }
    }
    let t = d.training.as_ref().expect("training measured");
    assert_eq!((t.steps, t.seeds), (200, 5));
    assert_eq!(t.keras.values.len(), t.torch.values.len());
    let noise = d.noise_floor.as_ref().expect("noise floor");
    assert!(
        t.gap > noise.keras.max(noise.torch),
        "gap {} vs {noise:?}",
        t.gap
    );
    // Every finding aligned: the curves meet again, within the noise.
    let all = t.all_aligned.as_ref().expect("all aligned");
    assert!(all.gap <= noise.keras.max(noise.torch), "{all:?}");
    assert_eq!(t.unexplained, None);
    // Forward parity from the same weights: the two MLPs agree layer by layer.
    let fwd = d.forward.as_ref().expect("forward parity");
    assert_eq!(fwd.layers.len(), 2);
    assert_eq!(fwd.first_divergence, None);
    assert!(
        fwd.layers
            .iter()
            .all(|l| l.cosine > 0.9999 && l.isolated_max_abs.is_some())
    );
}

#[test]
fn faithful_port_gap_is_inside_the_noise_floor() {
    let d = run("models/cases/faithful-mlp-sgd");
    let t = d.training.as_ref().expect("training measured");
    let noise = d.noise_floor.as_ref().expect("noise floor");
    assert!(t.gap < 0.1 * noise.floor(), "gap {} vs {noise:?}", t.gap);
    assert!(
        d.verdict.contains("inside the noise floor"),
        "{}",
        d.verdict
    );
    assert!(d.findings.iter().all(|f| f.severity == Severity::Info));
}

#[test]
fn ranking_follows_the_measured_impact() {
    // Three differences: flatten-order and adam-epsilon-hat are present, but the LeakyReLU
    // slope explains the gap (models/cases/multi-flatten-adam-leaky/measured.json).
    let d = run("models/cases/multi-flatten-adam-leaky");
    assert_eq!(ids(&d).first(), Some(&"leaky-relu-slope"), "{:?}", ids(&d));
    let fwd = d.forward.as_ref().expect("forward parity");
    assert!(fwd.first_divergence.is_some(), "{fwd:?}");
}

#[test]
fn correct_ports_have_no_weight_mapping_finding() {
    for fixture in ["models/cnn", "models/rnn", "models/functional"] {
        let d = run(fixture);
        let found = ids(&d);
        for id in MAPPING_IDS {
            assert!(!found.contains(&id), "{fixture}: {id} in {found:?}");
        }
        assert!(d.alignment.keras_only.is_empty() && d.alignment.torch_only.is_empty());
        for p in &d.alignment.pairs {
            // BatchNorm parameters start as constants (ones and zeros) on both sides.
            assert!(
                matches!(
                    p.weights.as_str(),
                    "copied (exact mapping)" | "equal (constants)"
                ),
                "{fixture}: {} ↔ {}: {}",
                p.keras,
                p.torch,
                p.weights
            );
        }
        // The ports are faithful up to conventions without a flag (info) and Adam's epsilon.
        for f in &d.findings {
            assert!(
                f.severity == Severity::Info || f.id == "adam-epsilon-hat",
                "{fixture}: {} ({})",
                f.id,
                f.severity
            );
        }
    }
}

#[test]
fn functional_l2_port_is_recognised() {
    // 2λ coupled weight decay on branch_a's kernel only: exactly Keras's L2.
    let d = run("models/functional");
    assert!(
        !ids(&d).contains(&"l2-regularizer-factor-two"),
        "{:?}",
        ids(&d)
    );
}

#[track_caller]
fn snapshot(name: &str, d: &Diagnosis) {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots");
    settings.bind(|| {
        insta::assert_snapshot!(format!("{name}.terminal"), render_terminal(d));
        insta::assert_snapshot!(format!("{name}.markdown"), render_markdown(d));
    });
}

#[test]
fn seed_mlp_reports() {
    snapshot("seed-mlp", &run("models/seed-mlp"));
}

/// Case directories with an `expected.json` and both bundles (cases still being generated are
/// left out).
fn complete_cases() -> Vec<String> {
    let dir = root().join("models/cases");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.join("expected.json").is_file()
                && p.join("keras/model.keras").is_file()
                && p.join("torch/model.onnx").is_file()
                && p.join("torch/train.json").is_file()
        })
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n != "_lib")
        .collect();
    v.sort();
    v
}

#[test]
fn bundled_case_reports() {
    for case in complete_cases() {
        let base = root().join("models/cases").join(&case);
        // Every bundled case imports: one that does not fails here, named.
        if let Err(e) = model_import::load_bundle(&base.join("keras"))
            .and_then(|_| model_import::load_bundle(&base.join("torch")))
        {
            panic!("bundled case {case} does not import: {e}");
        }
        let d = run(&format!("models/cases/{case}"));
        snapshot(&format!("case-{case}"), &d);
    }
}
