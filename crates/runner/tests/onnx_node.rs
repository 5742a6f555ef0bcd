//! The ONNX project's own node tests for every op type the importer lifts
//! (`models/onnx-node/cases/`, made by `models/onnx-node/gen_onnx.py` from
//! `onnx.backend.test.case.node.collect_testcases()`; the operands a real export stores as
//! initializers are initializers). Every case runs through exactly the code of
//! `cargo xtask run` (the `runner` library) and is judged with the ONNX backend runner's own
//! tolerance, |got − ref| ≤ 1e-7 + 1e-3·|ref|:
//!
//! - **pass**: every output has the reference's shape and values;
//! - **refused**: loading or running fails with a one-line reason (the node, the attribute,
//!   the value);
//! - **wrong**: an output with another shape or other values. Any wrong case fails the test:
//!   a silently wrong number is the worst defect parallax can have.
//!
//! Every passing case with a parameter or a floating-point input also has its backward pass
//! checked against central finite differences in f64 (`backward_matches_finite_differences`).
//!
//! Prints per op type how many cases pass, how many ONNX Runtime passes (`ort.json`, measured
//! by the generator), and every refusal's reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::{Float, Mode, OutputGrad, ParamStore, Program, backward, forward};
use model_ir::{DType, Model, Op, Tensor, UnaryOp};
use ndarray::ArrayD;

mod common;
use common::{Outcome, one_line};

const ATOL: f64 = 1e-7;
const RTOL: f64 = 1e-3;

/// Node-test cases that pass today (raise it as ops are added; never lower it).
const PASS_FLOOR: usize = 419;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/onnx-node")
}

struct Case {
    name: String,
    dir: PathBuf,
    op_type: String,
    ort_pass: bool,
}

fn cases() -> Vec<Case> {
    let r = root();
    let text = std::fs::read_to_string(r.join("ort.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", r.join("ort.json").display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("ort.json is JSON");
    let listed = json["cases"].as_object().expect("ort.json has `cases`");
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(r.join("cases"))
        .expect("models/onnx-node/cases exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.onnx").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let entry = listed
            .get(&name)
            .unwrap_or_else(|| panic!("case {name} is not in ort.json"));
        out.push(Case {
            op_type: entry["op_type"].as_str().unwrap_or("?").to_string(),
            ort_pass: entry["ort"].as_str() == Some("pass"),
            name,
            dir,
        });
    }
    assert_eq!(
        out.len(),
        listed.len(),
        "ort.json and cases/ list different cases"
    );
    out
}

struct Loaded {
    model: Model,
    inputs: model_import::TensorFile,
    reference: model_import::TensorFile,
}

fn load(dir: &Path) -> Result<Loaded, String> {
    let model = runner::load_model(&dir.join("model.onnx")).map_err(|e| one_line(&e))?;
    let inputs = model_import::load_safetensors(&dir.join("inputs.safetensors"))
        .map_err(|e| e.to_string())?;
    let reference = model_import::load_safetensors(&dir.join("reference.safetensors"))
        .map_err(|e| e.to_string())?;
    Ok(Loaded {
        model,
        inputs,
        reference,
    })
}

fn judge(dir: &Path) -> Outcome {
    let l = match load(dir) {
        Ok(l) => l,
        Err(e) => return Outcome::Refused(e),
    };
    let out = match runner::run_model(&l.model, &l.inputs, runner::Options::default()) {
        Ok(o) => o,
        Err(e) => return Outcome::Refused(one_line(&e)),
    };
    for (name, want) in &l.reference.tensors {
        let Some(got) = out.get(name) else {
            return Outcome::Wrong(format!(
                "no `{name}` among the outputs {:?}",
                out.keys().collect::<Vec<_>>()
            ));
        };
        if got.shape() != want.shape() {
            return Outcome::Wrong(format!(
                "`{name}` has shape {:?}, the reference {:?}",
                got.shape(),
                want.shape()
            ));
        }
        let (a, b) = (got.to_f64(), want.to_f64());
        for (k, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            let same_special =
                (x.is_nan() && y.is_nan()) || (x.is_infinite() && x.to_bits() == y.to_bits());
            let within = (x - y).abs() <= ATOL + RTOL * y.abs();
            if !same_special && !within {
                return Outcome::Wrong(format!(
                    "`{name}` element {k}: {x} where the reference has {y}"
                ));
            }
        }
    }
    if out.len() != l.reference.tensors.len() {
        return Outcome::Wrong(format!(
            "{} outputs, the reference has {}",
            out.len(),
            l.reference.tensors.len()
        ));
    }
    Outcome::Pass
}

#[test]
fn onnx_node_tests_are_exact_or_refused() {
    let cases = cases();
    let mut by_op: BTreeMap<String, (usize, usize, usize, usize)> = BTreeMap::new();
    let mut refused = Vec::new();
    let mut wrong = Vec::new();
    for c in &cases {
        let o = judge(&c.dir);
        let e = by_op.entry(c.op_type.clone()).or_default();
        e.0 += 1;
        e.3 += usize::from(c.ort_pass);
        match o {
            Outcome::Pass => e.1 += 1,
            Outcome::Refused(r) => {
                e.2 += 1;
                refused.push((c.name.clone(), r));
            }
            Outcome::Wrong(w) => wrong.push((c.name.clone(), w)),
        }
    }
    let total = cases.len();
    let passed: usize = by_op.values().map(|e| e.1).sum();
    let ort: usize = by_op.values().map(|e| e.3).sum();
    println!(
        "{:<24} {:>5} {:>5} {:>7} {:>5}",
        "op type", "cases", "pass", "refused", "ORT"
    );
    for (op, (n, p, r, o)) in &by_op {
        println!("{op:<24} {n:>5} {p:>5} {r:>7} {o:>5}");
    }
    println!(
        "ONNX node tests: {passed}/{total} pass, {} refused, {} wrong; ONNX Runtime passes {ort}",
        refused.len(),
        wrong.len()
    );
    for (name, r) in &refused {
        println!("  refused {name}: {r}");
    }
    for (name, w) in &wrong {
        println!("  WRONG {name}: {w}");
    }
    for (name, r) in &refused {
        assert!(
            !r.contains('\n') && !r.is_empty(),
            "{name}: a refusal is one non-empty line"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} node tests give a wrong answer without a word: {:?}",
        wrong.len(),
        wrong.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert!(
        passed >= PASS_FLOOR,
        "{passed}/{total} node tests pass, the floor is {PASS_FLOOR}"
    );
}

// ---------------------------------------------------------------------------------------------
// backward
// ---------------------------------------------------------------------------------------------

/// Deterministic uniform numbers in [-1, 1) (a 64-bit LCG; the check needs no statistics).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// At most this many coordinates of each tensor are checked (evenly spread).
const FD_SAMPLES: usize = 24;
const FD_STEP: f64 = 1e-6;
const FD_TOL: f64 = 1e-5;

/// `Σ r·y` over every output, the objective whose gradient is checked.
fn objective(
    program: &Program,
    params: &ParamStore<f64>,
    xs: &[ArrayD<f64>],
    r: &[ArrayD<f64>],
) -> Result<f64, String> {
    let f = forward(program, params, xs, Mode::Inference, &BTreeMap::new())
        .map_err(|e| e.to_string())?;
    Ok(f.outputs
        .iter()
        .zip(r)
        .map(|(y, r)| y.iter().zip(r.iter()).map(|(a, b)| a * b).sum::<f64>())
        .sum())
}

fn sample_indices(len: usize) -> Vec<usize> {
    if len <= FD_SAMPLES {
        (0..len).collect()
    } else {
        (0..FD_SAMPLES)
            .map(|k| k * (len - 1) / (FD_SAMPLES - 1))
            .collect()
    }
}

/// The worst relative error of the engine's gradient against central differences, over the
/// sampled coordinates of every trainable parameter and floating-point input; `None` when the
/// model has nothing to differentiate.
fn gradcheck(
    model: &Model,
    inputs: &[ArrayD<f64>],
    float_input: &[bool],
) -> Result<Option<(f64, String)>, String> {
    let program = Program::new(model).map_err(|e| e.to_string())?;
    let params: ParamStore<f64> = ParamStore::from_model(model);
    if program.trainable().is_empty() && !float_input.iter().any(|&f| f) {
        return Ok(None);
    }
    let f = forward(&program, &params, inputs, Mode::Inference, &BTreeMap::new())
        .map_err(|e| e.to_string())?;
    let mut rng = Lcg(0x5eed);
    // Outputs that are NaN or infinite (the node tests feed NaN and inf through casts and
    // max/min) do not enter the objective: their derivative is not a number to compare.
    let r: Vec<ArrayD<f64>> = f
        .outputs
        .iter()
        .map(|y| {
            y.mapv(|v| {
                let w = rng.next();
                if v.is_finite() { w } else { 0.0 }
            })
        })
        .collect();
    let d: Vec<OutputGrad<f64>> = r.iter().map(|r| OutputGrad::Value(r.clone())).collect();
    let grads = backward(&f.tape, &d).map_err(|e| e.to_string())?;
    // Rounding in the objective's f64 sum, divided by the step: the finite differences cannot
    // resolve a gradient error below this (it matters for saturated tanh/sigmoid layers, whose
    // true gradients are tiny).
    let magnitude: f64 = f
        .outputs
        .iter()
        .zip(&r)
        .map(|(y, r)| {
            y.iter()
                .zip(r.iter())
                .map(|(a, b)| (a * b).abs())
                .sum::<f64>()
        })
        .sum();
    let noise = 64.0 * f64::EPSILON * magnitude / FD_STEP;
    let mut worst: Option<(f64, String)> = None;
    let mut record = |what: String, analytic: Vec<f64>, fd: Vec<f64>| {
        let scale = fd
            .iter()
            .chain(&analytic)
            .fold(0.0f64, |m, v| m.max(v.abs()));
        // A NaN anywhere is a failure (`f64::max` would drop it).
        let diff = analytic.iter().zip(&fd).fold(0.0f64, |m, (a, b)| {
            let d = (a - b).abs();
            if d.is_nan() { f64::INFINITY } else { m.max(d) }
        });
        let diff = (diff - noise).max(0.0);
        let rel = if scale < 1e-8 { diff } else { diff / scale };
        let rel = if rel.is_nan() { f64::INFINITY } else { rel };
        if worst.as_ref().is_none_or(|w| rel > w.0) {
            worst = Some((rel, what));
        }
    };
    for name in program.trainable() {
        let base = params.get(name).unwrap().as_standard_layout().into_owned();
        let g = grads.params[name].as_standard_layout().into_owned();
        let (mut an, mut fd) = (Vec::new(), Vec::new());
        for i in sample_indices(base.len()) {
            if !base.as_slice().unwrap()[i].is_finite() {
                continue;
            }
            let mut p = params.clone();
            let v = p.get_mut(name).unwrap();
            *v = base.clone();
            v.as_slice_mut().unwrap()[i] += FD_STEP;
            let up = objective(&program, &p, inputs, &r)?;
            p.get_mut(name).unwrap().as_slice_mut().unwrap()[i] -= 2.0 * FD_STEP;
            let down = objective(&program, &p, inputs, &r)?;
            fd.push((up - down) / (2.0 * FD_STEP));
            an.push(g.as_slice().unwrap()[i]);
        }
        record(format!("parameter `{name}`"), an, fd);
    }
    for (k, x) in inputs.iter().enumerate() {
        if !float_input[k] {
            continue;
        }
        let x = x.as_standard_layout().into_owned();
        let g = grads.inputs[k].as_standard_layout().into_owned();
        let (mut an, mut fd) = (Vec::new(), Vec::new());
        for i in sample_indices(x.len()) {
            if !x.as_slice().unwrap()[i].is_finite() {
                continue;
            }
            let mut xs = inputs.to_vec();
            xs[k] = x.clone();
            xs[k].as_slice_mut().unwrap()[i] += FD_STEP;
            let up = objective(&program, &params, &xs, &r)?;
            xs[k].as_slice_mut().unwrap()[i] -= 2.0 * FD_STEP;
            let down = objective(&program, &params, &xs, &r)?;
            fd.push((up - down) / (2.0 * FD_STEP));
            an.push(g.as_slice().unwrap()[i]);
        }
        record(format!("input {k}"), an, fd);
    }
    Ok(worst)
}

/// The case's inputs in f64 (and which are floating point), optionally moved off the kinks
/// and ties of piecewise ops (relu at 0, equal elements of Max/Min, pooling windows with
/// equal maxima) by a relative jitter of 1e-3 plus 1e-4 absolute away from zero.
fn f64_inputs(
    program: &Program,
    file: &model_import::TensorFile,
    jitter: bool,
) -> Result<(Vec<ArrayD<f64>>, Vec<bool>), String> {
    let ts: Vec<&Tensor> = runner::graph_inputs(program, file)?;
    let mut rng = Lcg(0xa11ce);
    let mut xs = Vec::new();
    let mut float = Vec::new();
    for t in ts {
        let is_float = matches!(
            t.dtype(),
            DType::F32 | DType::F64 | DType::F16 | DType::BF16
        );
        let mut a = <f64 as Float>::array_from(t);
        if jitter && is_float {
            a.mapv_inplace(|v| {
                let u = rng.next();
                v * (1.0 + 1e-3 * u) + 1e-4 * u.abs() * if v < 0.0 { -1.0 } else { 1.0 }
            });
        }
        xs.push(a);
        float.push(is_float);
    }
    Ok((xs, float))
}

#[test]
fn backward_matches_finite_differences() {
    let mut checked = 0;
    let mut nothing = 0;
    let mut rounding = Vec::new();
    let mut failures = Vec::new();
    for c in cases() {
        if !matches!(judge(&c.dir), Outcome::Pass) {
            continue;
        }
        let l = load(&c.dir).expect("a passing case loads");
        // A cast to a lower precision is a staircase whose gradient the engine passes through
        // (as torch does); finite differences of a staircase measure nothing.
        if l.model.nodes.iter().any(|n| {
            matches!(
                n.op,
                Op::Unary {
                    op: UnaryOp::RoundF32 | UnaryOp::RoundF16 | UnaryOp::RoundBf16
                }
            )
        }) {
            rounding.push(c.name.clone());
            continue;
        }
        let program = Program::new(&l.model).expect("a passing case compiles");
        let run = |jitter| -> Result<Option<(f64, String)>, String> {
            let (xs, float) = f64_inputs(&program, &l.inputs, jitter)?;
            gradcheck(&l.model, &xs, &float)
        };
        let result = match run(false) {
            Ok(Some((e, _))) if e > FD_TOL => run(true),
            other => other,
        };
        match result {
            Ok(None) => nothing += 1,
            Ok(Some((e, what))) if e <= FD_TOL => {
                checked += 1;
                let _ = what;
            }
            Ok(Some((e, what))) => failures.push(format!(
                "{} ({}): gradient of {what} off by {e:.2e} relative",
                c.name, c.op_type
            )),
            Err(e) => failures.push(format!("{} ({}): backward failed: {e}", c.name, c.op_type)),
        }
    }
    println!(
        "backward: {checked} passing node tests match finite differences (≤ {FD_TOL:e}); {nothing} have nothing to differentiate; {} round to a lower precision (straight-through gradient, not checkable: {}); {} fail",
        rounding.len(),
        rounding.join(", "),
        failures.len()
    );
    for f in &failures {
        println!("  {f}");
    }
    assert!(
        failures.is_empty(),
        "{} gradient checks failed",
        failures.len()
    );
}
