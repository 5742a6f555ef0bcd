//! tract as an oracle on real exports: the bundles' eval-mode twins, the ONNX importer's zoo and
//! the ONNX project's PyTorch conformance cases. One test binary, so tract is linked once.
//!
//! Every comparison goes through [`check_outputs`]: the outputs tract returns, by graph output
//! name, against the reference file's `output` / `output.<name>` tensors, at a relative
//! tolerance ‖a−b‖∞ / ‖b‖∞ (integer outputs exactly).

mod conformance;
mod fixtures;
mod zoo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model_ir::Tensor;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn load(path: &Path) -> BTreeMap<String, Tensor> {
    model_import::load_safetensors(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .tensors
}

/// Binds the tensors named `prefix` / `prefix.<name>` to the graph's names: a bare `prefix`
/// stands for the only name there is.
fn bind(
    file: &BTreeMap<String, Tensor>,
    prefix: &str,
    names: &[String],
) -> Result<BTreeMap<String, Tensor>, String> {
    let mut out = BTreeMap::new();
    for (key, tensor) in file {
        let name = if key == prefix {
            match names {
                [only] => only.clone(),
                _ => return Err(format!("`{key}` is ambiguous: the graph has {names:?}")),
            }
        } else if let Some(name) = key.strip_prefix(prefix).and_then(|k| k.strip_prefix('.')) {
            name.to_owned()
        } else {
            continue;
        };
        if !names.contains(&name) {
            return Err(format!("`{key}` names no graph tensor (graph: {names:?})"));
        }
        out.insert(name, tensor.clone());
    }
    Ok(out)
}

/// ‖a−b‖∞ / ‖b‖∞ (the absolute error when b is all zeros); exact for integer tensors.
fn rel_error(actual: &Tensor, expected: &Tensor) -> Result<f64, String> {
    if actual.shape() != expected.shape() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            actual.shape(),
            expected.shape()
        ));
    }
    if actual.dtype() != expected.dtype() {
        return Err(format!(
            "dtype {}, expected {}",
            actual.dtype(),
            expected.dtype()
        ));
    }
    if !actual.dtype().is_float() {
        return if actual == expected {
            Ok(0.0)
        } else {
            Err("integer values differ".into())
        };
    }
    let (a, b) = (actual.to_f64(), expected.to_f64());
    if a.iter().any(|v| v.is_nan()) != b.iter().any(|v| v.is_nan()) {
        return Err("NaN in one tensor only".into());
    }
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    Ok(if scale > 0.0 { diff / scale } else { diff })
}

/// Runs `model` on the `x`/`x.<input>` tensors of `inputs` and compares every graph output
/// with the `output`/`output.<name>` tensor of `reference` at `tol`. Returns the worst
/// relative error, or why the case fails.
fn check_outputs(
    model: &Path,
    inputs: &BTreeMap<String, Tensor>,
    reference: &BTreeMap<String, Tensor>,
    tol: f64,
) -> Result<f64, String> {
    let io = oracle_tract::graph_io(model).map_err(|e| e.kind.to_string())?;
    let feed = bind(inputs, "x", &io.inputs)?;
    let expected = bind(reference, "output", &io.outputs)?;
    if expected.len() != io.outputs.len() {
        return Err(format!(
            "reference has {:?}, the graph outputs {:?}",
            reference.keys(),
            io.outputs
        ));
    }
    let actual = oracle_tract::run(model, &feed).map_err(|e| e.kind.to_string())?;
    let mut worst = 0.0_f64;
    for (name, want) in &expected {
        let got = actual
            .get(name)
            .ok_or_else(|| format!("tract returned no `{name}`"))?;
        let err = rel_error(got, want).map_err(|e| format!("output `{name}`: {e}"))?;
        if err > tol {
            return Err(format!(
                "output `{name}`: relative error {err:.3e} > {tol:.0e}"
            ));
        }
        worst = worst.max(err);
    }
    Ok(worst)
}

#[test]
fn errors_are_typed_and_name_the_file() {
    use oracle_tract::ErrorKind;
    let root = workspace_root();
    let training = root.join("models/cnn/torch/model.onnx");
    let x = load(&root.join("models/cnn/torch/inputs.safetensors"))["x"].clone();
    let feed = BTreeMap::from([("x".to_owned(), x.clone())]);
    let e = oracle_tract::run(&training, &feed).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::TrainingBatchNorm { .. }), "{e}");
    assert!(
        e.to_string().starts_with(&training.display().to_string()),
        "{e}"
    );

    let eval = root.join("models/cnn/torch/model.eval.onnx");
    let e = oracle_tract::run(&eval, &BTreeMap::new()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingInput { name: "x".into() });
    let wrong = BTreeMap::from([("y".to_owned(), x)]);
    let e = oracle_tract::run(&eval, &wrong).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: tensor `y` is not a graph input (graph inputs: x)",
            eval.display()
        )
    );

    let source = oracle_tract::ModelSource::Bytes {
        name: "garbage.onnx",
        bytes: b"\xff\xff\xff",
    };
    let e = oracle_tract::run(source, &feed).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Decode(_)), "{e}");
    assert!(
        e.to_string()
            .starts_with("garbage.onnx: not an ONNX model: "),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "{e}");

    let missing = root.join("models/nope.onnx");
    let e = oracle_tract::run(&missing, &feed).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Io(_)), "{e}");
}

#[test]
fn bytes_and_file_agree_and_compiled_plans_rerun() {
    let dir = workspace_root().join("models/seed-mlp/torch");
    let model = dir.join("model.eval.onnx");
    let inputs = load(&dir.join("inputs.safetensors"));
    let feed = BTreeMap::from([("x".to_owned(), inputs["x"].clone())]);
    let from_file = oracle_tract::run(&model, &feed).unwrap();
    let bytes = std::fs::read(&model).unwrap();
    let source = oracle_tract::ModelSource::Bytes {
        name: "seed-mlp",
        bytes: &bytes,
    };
    let compiled = oracle_tract::compile(source, &feed).unwrap();
    assert_eq!(compiled.io.outputs, ["y"]);
    assert_eq!(compiled.run(&feed).unwrap(), from_file);
    assert_eq!(compiled.run(&feed).unwrap(), from_file);

    let half = inputs["x"].select(0, &(0..128).collect::<Vec<_>>());
    let e = compiled
        .run(&BTreeMap::from([("x".to_owned(), half)]))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "seed-mlp: input `x` is f32 [128, 64], the plan was compiled for f32 [256, 64]"
    );
}
