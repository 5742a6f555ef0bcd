//! Keras 3 resizing layers (`UpSampling2D` with every interpolation, `Resizing`) against their
//! real outputs and input gradients on the TensorFlow backend (`models/resize/gen_keras.py`):
//! each lifted model runs in the engine (f32 and f64) and must give Keras's output within
//! 1e-5 and `d(Σ r·y)/dx` within 1e-4; each configuration parallax refuses must be refused
//! with one line naming what it does not compute.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::{Float, Mode, OutputGrad, ParamStore, Program, backward, forward};
use model_ir::Op;
use ndarray::ArrayD;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/resize")
}

fn refused() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("refused.json")).expect("refused.json");
    serde_json::from_str(&text).expect("refused.json maps names to refusal texts")
}

fn max_diff<F: Float>(a: &ArrayD<F>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x.to_f64().unwrap() - y).abs())
        .fold(0.0, f64::max)
}

/// The worst forward and input-gradient differences of the engine in precision `F`.
fn run<F: Float>(dir: &Path) -> (f64, f64, Vec<Op>) {
    let model = runner::load_model(&dir.join("model.keras")).unwrap_or_else(|e| panic!("{e}"));
    let ops = model.nodes.iter().map(|n| n.op.clone()).collect();
    let data = model_import::load_safetensors(&dir.join("data.safetensors")).expect("data");
    let get = |k: &str| <f64 as Float>::array_from(data.get(k).expect(k));
    let program = Program::new(&model).unwrap_or_else(|e| panic!("{e}"));
    let params: ParamStore<F> = ParamStore::from_model(&model);
    let x = <F as Float>::array_from(data.get("x").expect("x"));
    let f = forward(&program, &params, &[x], Mode::Inference, &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let fwd = max_diff(&f.outputs[0], &get("y"));
    let r = <F as Float>::array_from(data.get("r").expect("r"));
    let grads = backward(&f.tape, &[OutputGrad::Value(r)]).unwrap_or_else(|e| panic!("{e}"));
    let bwd = max_diff(&grads.inputs[0], &get("dx"));
    (fwd, bwd, ops)
}

#[test]
fn keras_resizing_layers_match_tensorflow() {
    let refused = refused();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("models/resize")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if let Some(why) = refused.get(&name) {
            match runner::load_model(&dir.join("model.keras")) {
                Ok(_) => failures.push(format!("{name}: lifted, expected a refusal ({why})")),
                Err(e) => {
                    println!("  refused {name}: {e}");
                    if !e.contains("unsupported") || !e.contains(why.as_str()) || e.contains('\n') {
                        failures.push(format!("{name}: refusal `{e}` does not name `{why}`"));
                    }
                }
            }
            continue;
        }
        let (f32_fwd, f32_bwd, ops) = run::<f32>(dir);
        let (f64_fwd, f64_bwd, _) = run::<f64>(dir);
        let kind: Vec<&str> = ops.iter().map(Op::kind).filter(|k| *k != "input").collect();
        println!(
            "  {name:36} {kind:?}: forward f32 {f32_fwd:.1e} f64 {f64_fwd:.1e}, dx f32 {f32_bwd:.1e} f64 {f64_bwd:.1e}"
        );
        // Keras computes in float32: its own rounding bounds what f64 can match.
        if f32_fwd.max(f64_fwd) > 1e-5 || f32_bwd.max(f64_bwd) > 1e-4 {
            failures.push(format!(
                "{name}: forward {f32_fwd:e}/{f64_fwd:e}, input gradient {f32_bwd:e}/{f64_bwd:e}"
            ));
        }
        checked += 1;
    }
    println!(
        "{checked} Keras resizing models match, {} refused",
        refused.len()
    );
    assert!(checked >= 16, "only {checked} cases found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
