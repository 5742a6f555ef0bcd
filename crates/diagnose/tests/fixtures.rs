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
    assert!(init.evidence.iter().all(|e| e.what.starts_with("bias")));
    assert!(init.evidence.iter().all(|e| e.keras.contains("zeros")));
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
    assert!(d.findings.iter().all(|f| f.impact.is_none()));
    assert!(d.verdict.contains("double-softmax"));
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
        let d = run(&format!("models/cases/{case}"));
        snapshot(&format!("case-{case}"), &d);
    }
}
