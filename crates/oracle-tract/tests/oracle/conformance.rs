//! The ONNX project's PyTorch-export conformance data (`../shared/onnx-conformance`, beside the
//! clone): every case run by tract and compared with its `reference.safetensors` at 1e-4
//! relative. Prints the pass count per suite and every failure with its reason.
//!
//! The cases tract does not pass are listed in [`KNOWN_FAILURES`] with the reason; the test
//! asserts that exactly those fail (so the list stays true when tract changes) and that at
//! least 78 of the 82 `pytorch-converted` cases pass (what tract's own manifest claims).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::{check_outputs, load, workspace_root};

const TOL: f64 = 1e-4;

/// `(suite/case, why tract 0.23.9 does not pass it)`.
const KNOWN_FAILURES: &[(&str, &str)] = &[
    ("pytorch-converted/test_PReLU_1d_multiparam", OPSET6_PRELU),
    ("pytorch-converted/test_PReLU_2d_multiparam", OPSET6_PRELU),
    ("pytorch-converted/test_PReLU_3d_multiparam", OPSET6_PRELU),
];

const OPSET6_PRELU: &str = "opset-6 PRelu with a per-channel slope of shape (C,): opset 6 applies it \
    along axis 1, tract broadcasts it numpy-style against the last axis and fails typing the node";

fn conformance_dir() -> PathBuf {
    let dir = workspace_root().join("../shared/onnx-conformance");
    assert!(
        dir.join("pytorch-converted").is_dir(),
        "ONNX conformance data missing: expected {} (the shared/onnx-conformance folder beside the clone)",
        dir.display()
    );
    dir
}

/// Runs every case of `suite`; returns (passed, failures as case -> reason).
fn run_suite(suite: &str) -> (usize, BTreeMap<String, String>) {
    let dir = conformance_dir().join(suite);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    cases.sort();
    let mut passed = 0;
    let mut failures = BTreeMap::new();
    for case in &cases {
        let name = format!(
            "{suite}/{}",
            case.file_name().unwrap_or_default().to_string_lossy()
        );
        let inputs = load(&case.join("inputs.safetensors"));
        let reference = load(&case.join("reference.safetensors"));
        match check_outputs(&case.join("model.onnx"), &inputs, &reference, TOL) {
            Ok(_) => passed += 1,
            Err(reason) => {
                failures.insert(name, reason);
            }
        }
    }
    eprintln!("{suite}: {passed} of {} passed", cases.len());
    for (name, reason) in &failures {
        eprintln!("  FAIL {name}: {reason}");
    }
    (passed, failures)
}

#[test]
fn onnx_conformance() {
    let (converted, mut failures) = run_suite("pytorch-converted");
    let (operator, operator_failures) = run_suite("pytorch-operator");
    failures.extend(operator_failures);
    eprintln!(
        "conformance: pytorch-converted {converted}/82, pytorch-operator {operator}/35 with tract"
    );

    let mut surprises = Vec::new();
    for (name, reason) in &failures {
        if !KNOWN_FAILURES.iter().any(|(n, _)| n == name) {
            surprises.push(format!("{name} fails, not listed: {reason}"));
        }
    }
    for (name, why) in KNOWN_FAILURES {
        if !failures.contains_key(*name) {
            surprises.push(format!(
                "{name} passes now, remove it from KNOWN_FAILURES ({why})"
            ));
        }
    }
    assert!(surprises.is_empty(), "{}", surprises.join("\n"));
    assert!(
        converted >= 78,
        "tract passes {converted} of 82 pytorch-converted cases, expected at least 78"
    );
}
