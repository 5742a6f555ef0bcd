//! The bundles' eval-mode twins (`models/<bundle>/torch/model.eval.onnx`) run by tract on the
//! bundle's `inputs.safetensors` `x` match PyTorch's eval-mode `expected.safetensors` `output`.
//!
//! cnn's expected output was computed by torch from a non-contiguous NCHW tensor and differs
//! from any contiguous evaluation by about 2e-7: well inside the 1e-5 tolerance.

use crate::{check_outputs, load, workspace_root};

const TOL: f64 = 1e-5;

#[track_caller]
fn check(bundle: &str) {
    let dir = workspace_root().join("models").join(bundle).join("torch");
    let inputs = load(&dir.join("inputs.safetensors"));
    let inputs = inputs.into_iter().filter(|(k, _)| k == "x").collect();
    let expected = load(&dir.join("expected.safetensors"));
    match check_outputs(&dir.join("model.eval.onnx"), &inputs, &expected, TOL) {
        Ok(err) => eprintln!("{bundle}: relative error {err:.2e}"),
        Err(e) => panic!("{bundle}: {e}"),
    }
}

#[test]
fn seed_mlp() {
    check("seed-mlp");
}

#[test]
fn cnn() {
    check("cnn");
}

#[test]
fn rnn() {
    check("rnn");
}

#[test]
fn functional() {
    check("functional");
}
