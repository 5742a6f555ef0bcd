//! The Keras layer sweep (`models/keras-sweep/cases/`, made by
//! `models/keras-sweep/gen_keras.py`): every Keras layer class the importer lifts, each
//! argument varied around a default configuration, as a tiny `Input → layer` model with the
//! real Keras 3 inference output and the gradients of `Σ output · r` (training-mode call,
//! except for dropout layers) w.r.t. the input and every trainable weight.
//!
//! Each case is loaded with `runner::load_model` (the `.keras` file), run by the engine in
//! f64, and classified:
//! - **pass**: the output within 1e-5 of Keras relative to the output's scale (its largest
//!   magnitude, at least 1), and every gradient within 1e-4 relative to its own scale;
//! - **refused**: loading or running fails with one line naming the layer, the argument and
//!   the value;
//! - **wrong**: anything else (other shape, other values, a missing or extra gradient). Any
//!   wrong case fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::{Float, Mode, OutputGrad, ParamStore, Program, backward, forward};
use model_ir::Model;
use ndarray::ArrayD;

mod common;
use common::{Outcome, one_line};

const FWD_TOL: f64 = 1e-5;
const GRAD_TOL: f64 = 1e-4;

/// Sweep cases that pass today (raise it as layers are fixed; never lower it).
const PASS_FLOOR: usize = 389;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/keras-sweep/cases")
}

/// The IR's parameter name for a Keras variable path: the RNN cell's own scope
/// (`lstm_cell`, `gru_cell`, `simple_rnn_cell`) is not part of it.
fn ir_name(keras_path: &str) -> String {
    keras_path
        .split('/')
        .filter(|s| !s.ends_with("_cell"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Largest |a − b| over the largest |b| (at least `floor`), or a shape mismatch.
fn rel_err(got: &ArrayD<f64>, want: &ArrayD<f64>, floor: f64) -> Result<f64, String> {
    if got.shape() != want.shape() {
        return Err(format!("shape {:?}, Keras {:?}", got.shape(), want.shape()));
    }
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want.iter())
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    Ok(if diff.is_nan() {
        f64::INFINITY
    } else {
        diff / scale
    })
}

fn judge(dir: &Path, meta: &serde_json::Value) -> Outcome {
    let model: Model = match runner::load_model(&dir.join("model.keras")) {
        Ok(m) => m,
        Err(e) => return Outcome::Refused(one_line(&e)),
    };
    let data = model_import::load_safetensors(&dir.join("data.safetensors"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let get = |k: &str| -> ArrayD<f64> {
        <f64 as Float>::array_from(
            data.get(k)
                .unwrap_or_else(|| panic!("{}: no `{k}`", dir.display())),
        )
    };
    let program = match Program::new(&model) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(one_line(&e.to_string())),
    };
    let params: ParamStore<f64> = ParamStore::from_model(&model);
    let xs: Vec<ArrayD<f64>> = match runner::graph_inputs(&program, &data) {
        Ok(ts) => ts.into_iter().map(<f64 as Float>::array_from).collect(),
        Err(e) => return Outcome::Wrong(format!("inputs: {e}")),
    };
    let inf = match forward(&program, &params, &xs, Mode::Inference, &BTreeMap::new()) {
        Ok(f) => f,
        Err(e) => return Outcome::Refused(one_line(&e.to_string())),
    };
    let n_out = meta["outputs"].as_u64().unwrap_or(1) as usize;
    if inf.outputs.len() != n_out {
        return Outcome::Wrong(format!("{} outputs, Keras {n_out}", inf.outputs.len()));
    }
    // One output: `output`, `r`; several: `output.<k>`, `r.<k>` in Keras's order.
    let suffix = |k: usize| {
        if n_out == 1 {
            String::new()
        } else {
            format!(".{k}")
        }
    };
    for (k, y) in inf.outputs.iter().enumerate() {
        let key = format!("output{}", suffix(k));
        match rel_err(y, &get(&key), 1.0) {
            Ok(e) if e <= FWD_TOL => {}
            Ok(e) => return Outcome::Wrong(format!("{key} off by {e:.2e} relative")),
            Err(e) => return Outcome::Wrong(format!("{key} {e}")),
        }
    }
    // Gradients of Σ output · r.
    let mode = if meta["training_gradients"].as_bool() == Some(true) {
        Mode::Training
    } else {
        Mode::Inference
    };
    let f = match forward(&program, &params, &xs, mode, &BTreeMap::new()) {
        Ok(f) => f,
        Err(e) => return Outcome::Refused(one_line(&e.to_string())),
    };
    let d: Vec<OutputGrad<f64>> = (0..n_out)
        .map(|k| OutputGrad::Value(get(&format!("r{}", suffix(k)))))
        .collect();
    let grads = match backward(&f.tape, &d) {
        Ok(g) => g,
        Err(e) => return Outcome::Refused(one_line(&e.to_string())),
    };
    if meta["input_kind"].as_str() == Some("float") {
        let names = program.input_names();
        for (k, n) in names.iter().enumerate() {
            let key = if names.len() == 1 {
                "grad.input".to_string()
            } else {
                format!("grad.input.{n}")
            };
            match rel_err(&grads.inputs[k], &get(&key), 1e-6) {
                Ok(e) if e <= GRAD_TOL => {}
                Ok(e) => return Outcome::Wrong(format!("{key} off by {e:.2e} relative")),
                Err(e) => return Outcome::Wrong(format!("{key} {e}")),
            }
        }
    }
    let keras_weights: Vec<&str> = meta["weights"]
        .as_array()
        .map(|a| a.iter().filter_map(|w| w.as_str()).collect())
        .unwrap_or_default();
    let mut seen = Vec::new();
    for w in &keras_weights {
        let name = ir_name(w);
        let Some(g) = grads.params.get(&name) else {
            return Outcome::Wrong(format!(
                "no gradient for `{name}` (Keras `{w}`); the engine has {:?}",
                grads.params.keys().collect::<Vec<_>>()
            ));
        };
        match rel_err(g, &get(&format!("grad.{w}")), 1e-6) {
            Ok(e) if e <= GRAD_TOL => {}
            Ok(e) => return Outcome::Wrong(format!("grad of `{name}` off by {e:.2e} relative")),
            Err(e) => return Outcome::Wrong(format!("grad of `{name}` {e}")),
        }
        seen.push(name);
    }
    if let Some(extra) = grads.params.keys().find(|k| !seen.contains(k)) {
        return Outcome::Wrong(format!("the engine trains `{extra}`, which Keras does not"));
    }
    Outcome::Pass
}

#[test]
fn keras_sweep_is_exact_or_refused() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("models/keras-sweep/cases exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("model.keras").is_file())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no sweep cases");
    let mut by_class: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut refused = Vec::new();
    let mut wrong = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(dir.join("config.json"))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let meta: serde_json::Value = serde_json::from_str(&text).expect("config.json is JSON");
        let class = meta["class"].as_str().unwrap_or("?").to_string();
        let args = meta["args"].to_string();
        let e = by_class.entry(class).or_default();
        match judge(dir, &meta) {
            Outcome::Pass => e.0 += 1,
            Outcome::Refused(r) => {
                e.1 += 1;
                refused.push((name, args, r));
            }
            Outcome::Wrong(w) => {
                e.2 += 1;
                wrong.push((name, args, w));
            }
        }
    }
    println!(
        "{:<24} {:>5} {:>7} {:>5}",
        "layer class", "pass", "refused", "wrong"
    );
    for (c, (p, r, w)) in &by_class {
        println!("{c:<24} {p:>5} {r:>7} {w:>5}");
    }
    let passed: usize = by_class.values().map(|e| e.0).sum();
    println!(
        "Keras sweep: {passed}/{} pass, {} refused, {} wrong",
        dirs.len(),
        refused.len(),
        wrong.len()
    );
    for (name, args, r) in &refused {
        println!("  refused {name} {args}: {r}");
    }
    for (name, args, w) in &wrong {
        println!("  WRONG {name} {args}: {w}");
    }
    for (name, _, r) in &refused {
        assert!(
            !r.contains('\n') && !r.is_empty(),
            "{name}: a refusal is one non-empty line"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} sweep cases give a wrong answer without a word: {:?}",
        wrong.len(),
        wrong.iter().map(|(n, _, _)| n).collect::<Vec<_>>()
    );
    assert!(
        passed >= PASS_FLOOR,
        "{passed}/{} sweep cases pass, the floor is {PASS_FLOOR}",
        dirs.len()
    );
}
