//! The ONNX project's PyTorch-export conformance data (`../shared/onnx-conformance/`, see its
//! README): every case runs through exactly the code of `cargo xtask run CASE/model.onnx
//! --inputs CASE/inputs.safetensors --out OUT` (the `runner` library the command calls) and
//! must match `reference.safetensors` to 1e-4 relative
//! (‖a−b‖∞ / ‖b‖∞). Prints the pass count per suite and every failing case with its reason,
//! and asserts the floors.

use std::path::{Path, PathBuf};

const TOL: f64 = 1e-4;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/onnx-conformance")
}

/// Runs one case; `Err` holds the reason it fails.
fn run_case(dir: &Path) -> Result<(), String> {
    let model = runner::load_model(&dir.join("model.onnx")).map_err(|e| one_line(&e))?;
    let inputs = model_import::load_safetensors(&dir.join("inputs.safetensors"))
        .map_err(|e| e.to_string())?;
    let reference = model_import::load_safetensors(&dir.join("reference.safetensors"))
        .map_err(|e| e.to_string())?;
    let out =
        runner::run_model(&model, &inputs, runner::Options::default()).map_err(|e| one_line(&e))?;
    for (name, want) in &reference.tensors {
        let got = match out.get(name) {
            Some(t) => t,
            None if reference.tensors.len() == 1 && out.len() == 1 => out.values().next().unwrap(),
            None => {
                return Err(format!(
                    "no `{name}` among the outputs {:?}",
                    out.keys().collect::<Vec<_>>()
                ));
            }
        };
        if got.shape() != want.shape() {
            return Err(format!(
                "`{name}` has shape {:?}, the reference {:?}",
                got.shape(),
                want.shape()
            ));
        }
        let (a, b) = (got.to_f64(), want.to_f64());
        // NaN must meet NaN and an infinity the same infinity; the scale is over finite values.
        let scale = b
            .iter()
            .filter(|v| v.is_finite())
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(b.iter()).fold(0.0f64, |m, (x, y)| {
            if x.is_nan() && y.is_nan() || (x.is_infinite() && x.to_bits() == y.to_bits()) {
                m
            } else if !(x - y).is_finite() {
                f64::INFINITY
            } else {
                m.max((x - y).abs())
            }
        });
        let rel = if scale > 0.0 { diff / scale } else { diff };
        if rel.is_nan() || rel > TOL {
            return Err(format!(
                "`{name}` differs: relative error {rel:.2e} > {TOL:.0e}"
            ));
        }
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// Runs a suite; returns (passed, total, failures).
fn run_suite(name: &str) -> (usize, usize, Vec<(String, String)>) {
    let dir = root().join(name);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for c in &cases {
        let case = c.file_name().unwrap().to_string_lossy().to_string();
        if let Err(reason) = run_case(c) {
            failures.push((case, reason));
        }
    }
    let passed = cases.len() - failures.len();
    println!("{name}: {passed}/{} pass", cases.len());
    for (case, reason) in &failures {
        println!("  FAIL {case}: {reason}");
    }
    (passed, cases.len(), failures)
}

#[test]
fn onnx_conformance_suite() {
    let r = root();
    assert!(
        r.is_dir(),
        "the ONNX conformance data is missing: expected {} (../shared/onnx-conformance next to the workspace; see its README)",
        r.display()
    );
    let (conv_pass, conv_total, _) = run_suite("pytorch-converted");
    let (op_pass, op_total, _) = run_suite("pytorch-operator");
    assert_eq!(conv_total, 82, "pytorch-converted should hold 82 cases");
    assert_eq!(op_total, 35, "pytorch-operator should hold 35 cases");
    assert!(
        conv_pass >= 78,
        "pytorch-converted: {conv_pass}/82 pass, the floor is 78"
    );
    assert!(
        op_pass >= OPERATOR_FLOOR,
        "pytorch-operator: {op_pass}/35 pass, the floor is {OPERATOR_FLOOR}"
    );
}

/// pytorch-operator cases the IR expresses today (raise as ops are added).
const OPERATOR_FLOOR: usize = 33;
