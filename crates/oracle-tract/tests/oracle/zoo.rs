//! The ONNX importer's zoo (`models/zoo/torch/<name>.onnx`) run by tract against the eval-mode
//! output in `<name>.io.safetensors`.
//!
//! tract 0.23 cannot run a training-mode `BatchNormalization` (`training_mode=1`); the exports
//! that have one are listed in [`SKIPPED`] with the reason, and the test asserts that the oracle
//! refuses exactly those with `ErrorKind::TrainingBatchNorm` (so the list cannot go stale).

use std::collections::BTreeSet;

use oracle_tract::ErrorKind;

use crate::{check_outputs, load, workspace_root};

const TOL: f64 = 1e-5;

/// Exports tract cannot run, with the reason.
const SKIPPED: &[(&str, &str)] = &[
    (
        "cnn",
        "BatchNormalization training_mode=1 (bn1, bn2); cnn_eval is its eval-mode export",
    ),
    ("conv1d", "BatchNormalization training_mode=1 (bn)"),
];

#[test]
fn zoo() {
    let dir = workspace_root().join("models/zoo/torch");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".onnx")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 20,
        "{} zoo exports in {}",
        names.len(),
        dir.display()
    );

    let skipped: BTreeSet<&str> = SKIPPED.iter().map(|(n, _)| *n).collect();
    let mut failures = Vec::new();
    let mut passed = 0;
    for name in &names {
        let model = dir.join(format!("{name}.onnx"));
        let io = load(&dir.join(format!("{name}.io.safetensors")));
        if skipped.contains(name.as_str()) {
            let reason = SKIPPED
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, r)| r);
            match oracle_tract::graph_io(&model).and_then(|g| {
                let x = io["x"].clone();
                oracle_tract::run(&model, &[(g.inputs[0].clone(), x)].into())
            }) {
                Err(e) if matches!(e.kind, ErrorKind::TrainingBatchNorm { .. }) => {
                    eprintln!("zoo {name}: skipped: {reason}");
                }
                other => failures.push(format!(
                    "{name}: listed as skipped ({reason}) but got {other:?}"
                )),
            }
            continue;
        }
        match check_outputs(&model, &io, &io, TOL) {
            Ok(err) => {
                passed += 1;
                eprintln!("zoo {name}: relative error {err:.2e}");
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!(
        "zoo: {passed} passed, {} skipped, {} failed",
        skipped.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "zoo failures:\n{}",
        failures.join("\n")
    );
}
